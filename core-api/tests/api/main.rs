//! HTTP-level tests of the core API. See `helpers.rs` for how backends are chosen.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations,
    dead_code
)]

use heart_testkit::fault_proxy;
mod helpers;
use heart_testkit::fixtures;

mod account;
mod auth_sessions;
mod auth_signup;
mod backends;
mod cli;
mod concurrency;
mod connections;
mod console;
mod docs;
mod edge_contract;
mod errors;
mod faults;
mod feed_paging;
mod follows;
mod hostile;
mod hostile_core;
mod identity;
mod image_limits;
mod members;
mod moderation;
mod operations;
mod posts;
mod query_plans;
mod rate_limits;
mod read_replica;
mod storage_faults;
mod sweeper;
