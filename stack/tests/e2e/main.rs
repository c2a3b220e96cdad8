//! End-to-end tests of the whole stack: the app's requests over TCP to the edge (the real
//! component on the wasmtime host), forwarded to the real core, on embedded backends or on
//! MariaDB/MySQL and Redis (see `helpers`).

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod account;
mod app_flow;
mod cli;
mod console_browser;
mod feed_cache;
mod front_door;
mod helpers;
mod limits;
mod moderation;
mod rate_limits;
mod redis_outage;
mod replicas;
mod tokens;
