//! Moderation: members report members; admins list the reports.

pub mod repo;
pub mod routes;
pub mod service;
