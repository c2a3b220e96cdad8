//! Data export (extension 2026-12): a member downloads everything of theirs as one zip, streamed.

pub mod repo;
pub mod routes;
pub mod service;
pub mod zip;
