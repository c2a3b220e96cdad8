//! The cache: a small set of key-value primitives with expiry, in process or in Redis.
//!
//! [`Cache`] is what both backends implement; the policies on top live beside the domain that owns
//! them: revocations in `auth::revocations`, the feed version in `post::feed_version`, rate limits in
//! `rate_limit`. With Redis configured, every core replica (and the edge) sees the same keys.

use std::time::Duration;

use async_trait::async_trait;

use crate::error::BoxError;

mod in_process;
mod redis;

pub use self::in_process::InProcessCache;
pub use self::redis::RedisCache;

/// The cache could not be reached or answered nonsense.
#[derive(Debug, thiserror::Error)]
#[error("cache: {0}")]
pub struct CacheError(#[source] pub BoxError);

/// Primitives over a key-value store with expiry.
#[async_trait]
pub trait Cache: Send + Sync + std::fmt::Debug {
    /// Increments the counter at `key`, giving it a lifetime of `ttl` when it is new; returns the new count.
    async fn increment(&self, key: &str, ttl: Duration) -> Result<u64, CacheError>;
    /// Sets `key` to `1` for `ttl`.
    async fn set_flag(&self, key: &str, ttl: Duration) -> Result<(), CacheError>;
    /// Whether `key` exists (and has not expired).
    async fn exists(&self, key: &str) -> Result<bool, CacheError>;
    /// Increments the counter at `key`, which never expires; returns the new value.
    async fn bump(&self, key: &str) -> Result<i64, CacheError>;
    /// The counter at `key` (0 when absent).
    async fn counter(&self, key: &str) -> Result<i64, CacheError>;
    /// Whether the store answers.
    async fn ping(&self) -> Result<(), CacheError>;
    /// The backend's name, for logs and `/readyz`.
    fn backend(&self) -> &'static str;
}
