//! What the edge and the core must agree on.
//!
//! Everything here compiles to native code (for `heart-core`) and to `wasm32-wasip2` (for the edge),
//! so a change to the wire contract, the token format or the Redis key layout is one change.
//!
//! - [`error`]: the contract's error codes, their HTTP statuses and the error body.
//! - [`wire`]: request and response bodies of the Android app's contract.
//! - [`token`]: access-token claims and their verification with the core's public keys.
//! - [`cache_keys`]: the whole Redis key layout (revocations, rate-limit windows, feed pages).
//! - [`edge`]: the edge's headers, route table, feed-cache queries and gate script.
//! - [`rate_limit`]: which actions are limited (core and edge), by what, and how much by default.
#![warn(missing_docs)]

pub mod cache_keys;
pub mod edge;
pub mod error;
pub mod rate_limit;
pub mod token;
pub mod wire;

pub use error::{ErrorBody, ErrorCode, FieldError};
