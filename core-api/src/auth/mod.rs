//! Sign-up with email verification, login, token reissue, logout, password reset and change
//! (`/auth/*`), and the authenticated caller every other domain takes from the access token.

pub mod extractor;
mod hashing_threads;
pub mod password;
pub mod recovery;
pub mod reset_codes;
pub mod revocations;
pub mod routes;
pub mod service;
pub mod sessions;
pub mod tokens;
pub mod validation;
pub mod verification;
pub mod verified;

pub use extractor::AuthenticatedMember;
