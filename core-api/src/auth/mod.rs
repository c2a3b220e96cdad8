//! Sign-up with email verification, login, token reissue and logout (`/auth/*`), and the
//! authenticated caller every other domain takes from the access token.

pub mod extractor;
pub mod password;
pub mod revocations;
pub mod routes;
pub mod service;
pub mod sessions;
pub mod tokens;
pub mod validation;
pub mod verification;
pub mod verified;

pub use extractor::AuthenticatedMember;
