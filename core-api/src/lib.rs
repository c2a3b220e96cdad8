//! The Heart to Heart core API.
//!
//! Layout: one module per domain (`auth`, `member`, `follow`, `post`, `moderation`, `export`), each as
//! routes → service → repo; cross-cutting plumbing (`config`, `error`, `db`, `cache`, `storage`,
//! `mail`, `images`, `telemetry`) beside them. `state` is what handlers reach, `router` the one
//! route table, `app` builds both from the configuration, `serve` serves them with their connection limits.

pub mod app;
pub mod auth;
pub mod cache;
pub mod cli;
pub mod clock;
pub mod config;
pub mod console;
pub mod db;
pub mod error;
pub mod export;
pub mod extract;
pub mod follow;
pub mod health;
pub mod images;
pub mod mail;
pub mod member;
pub mod moderation;
pub mod openapi;
pub mod ops;
pub mod paging;
pub mod post;
pub mod rate_limit;
pub mod router;
pub mod serve;
pub mod state;
pub mod storage;
pub mod telemetry;
pub mod upload;

pub use app::App;
pub use config::Config;
pub use state::AppState;
