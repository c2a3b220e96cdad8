//! HTTP-level tests of the core API. See `helpers.rs` for how backends are chosen.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations,
    dead_code
)]

mod helpers;

mod auth_sessions;
mod auth_signup;
mod backends;
mod errors;
mod operations;
mod rate_limits;
