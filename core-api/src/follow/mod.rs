//! The follow graph: who follows whom, with real counts on profiles.

pub mod repo;
pub mod routes;
pub mod service;
