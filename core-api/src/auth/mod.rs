//! Sign-up with email verification, login, token reissue and logout (`/auth/*`).

pub mod extractor;
pub mod password;
pub mod routes;
pub mod service;
pub mod sessions;
pub mod tokens;
pub mod validation;
pub mod verification;

pub use extractor::AuthenticatedMember;
pub use routes::router;
