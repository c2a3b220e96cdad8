//! HTTP-level tests of the core API. See `helpers.rs` for how backends are chosen.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations,
    dead_code
)]

mod fixtures;
mod helpers;
mod s3_server;

mod auth_sessions;
mod auth_signup;
mod backends;
mod cli;
mod concurrency;
mod docs;
mod edge_contract;
mod errors;
mod faults;
mod feed_paging;
mod follows;
mod hostile;
mod identity;
mod members;
mod operations;
mod posts;
mod query_plans;
mod rate_limits;
mod storage_faults;
