//! Members (`/member/*`): profiles, avatars, blocks and account deletion.

pub mod repo;
pub mod routes;
pub mod service;

pub use repo::Member;
