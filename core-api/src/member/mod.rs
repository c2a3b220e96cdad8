//! Members (`/member/*`): profiles, avatars, blocks, reports and account deletion.

pub mod repo;
pub mod routes;
pub mod service;

pub use repo::Member;
pub use routes::router;
