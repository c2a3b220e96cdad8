//! The Heart to Heart core API.
//!
//! Layout: one module per domain (`auth`, `member`, `follow`, `post`, `moderation`), each with its
//! routes, service logic and queries; cross-cutting plumbing (`config`, `error`, `db`, `cache`, `mail`, `telemetry`) beside them.
//! `app` assembles everything from the configuration.

pub mod app;
pub mod auth;
pub mod cache;
pub mod clock;
pub mod config;
pub mod db;
pub mod error;
pub mod extract;
pub mod follow;
pub mod garbage;
pub mod images;
pub mod mail;
pub mod member;
pub mod moderation;
pub mod openapi;
pub mod ops;
pub mod paging;
pub mod post;
pub mod storage;
pub mod telemetry;
pub mod upload;

pub use app::{App, AppState};
pub use config::Config;
