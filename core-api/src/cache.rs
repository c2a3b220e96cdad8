//! The cache: session revocations and rate-limit counters, in process or in Redis.
//!
//! [`Cache`] is the small set of primitives both backends implement; [`Revocations`] and
//! [`RateLimiter`] put the shared key layout (`heart_shared::cache_keys`) and policy on top.
//! With Redis configured, every core replica (and the edge) sees the same revocations and counts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use heart_shared::cache_keys::KeySpace;
use heart_shared::rate_limit::{RateLimit, RateLimitRule};
use redis::aio::ConnectionManager;

use crate::error::{ApiError, BoxError};

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

/// The embedded cache: a map in this process. Enough for one core replica.
#[derive(Debug, Default)]
pub struct InProcessCache {
    entries: Mutex<HashMap<String, (u64, Instant)>>,
}

impl InProcessCache {
    /// Above this many entries, expired ones are swept on the next write.
    const SWEEP_ABOVE: usize = 10_000;

    fn with_entries<T>(&self, f: impl FnOnce(&mut HashMap<String, (u64, Instant)>) -> T) -> T {
        // A poisoned lock only means another thread panicked mid-update of plain counters.
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut entries)
    }
}

#[async_trait]
impl Cache for InProcessCache {
    async fn increment(&self, key: &str, ttl: Duration) -> Result<u64, CacheError> {
        let now = Instant::now();
        Ok(self.with_entries(|entries| {
            if entries.len() > Self::SWEEP_ABOVE {
                entries.retain(|_, (_, expires)| *expires > now);
            }
            let entry = entries.entry(key.to_owned()).or_insert((0, now + ttl));
            if entry.1 <= now {
                *entry = (0, now + ttl);
            }
            entry.0 += 1;
            entry.0
        }))
    }

    async fn set_flag(&self, key: &str, ttl: Duration) -> Result<(), CacheError> {
        let expires = Instant::now() + ttl;
        self.with_entries(|entries| entries.insert(key.to_owned(), (1, expires)));
        Ok(())
    }

    async fn exists(&self, key: &str) -> Result<bool, CacheError> {
        let now = Instant::now();
        Ok(
            self.with_entries(|entries| {
                entries.get(key).is_some_and(|(_, expires)| *expires > now)
            }),
        )
    }

    async fn bump(&self, key: &str) -> Result<i64, CacheError> {
        let forever = Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600);
        Ok(self.with_entries(|entries| {
            let entry = entries.entry(key.to_owned()).or_insert((0, forever));
            entry.0 += 1;
            i64::try_from(entry.0).unwrap_or(i64::MAX)
        }))
    }

    async fn counter(&self, key: &str) -> Result<i64, CacheError> {
        let now = Instant::now();
        Ok(self.with_entries(|entries| match entries.get(key) {
            Some((count, expires)) if *expires > now => i64::try_from(*count).unwrap_or(i64::MAX),
            _ => 0,
        }))
    }

    async fn ping(&self) -> Result<(), CacheError> {
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "in-process"
    }
}

/// Redis (ElastiCache in production), through a reconnecting connection manager.
///
/// When Redis fails (down, unreachable, too slow), the cache fails fast for [`RedisCache::BACKOFF`]
/// instead of making every request wait for its own connection attempt; callers already treat a
/// cache error as "go on without it" (rate limits open, revocations from the database).
#[derive(Clone)]
pub struct RedisCache {
    connection: ConnectionManager,
    /// Until when calls fail without trying (`None`: Redis answered last time).
    failing_until: Arc<Mutex<Option<Instant>>>,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache").finish_non_exhaustive()
    }
}

impl RedisCache {
    /// How long calls fail fast after Redis failed; then one call tries again.
    pub const BACKOFF: Duration = Duration::from_secs(1);

    /// Connects to `url` (`redis://` or `rediss://`).
    pub async fn connect(url: &str) -> Result<RedisCache, CacheError> {
        let client = redis::Client::open(url).map_err(|e| CacheError(e.into()))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_millis(500))
            .set_response_timeout(Duration::from_secs(1))
            .set_number_of_retries(1);
        let connection = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| CacheError(e.into()))?;
        Ok(RedisCache {
            connection,
            failing_until: Arc::default(),
        })
    }

    /// Runs one Redis call, unless Redis failed less than [`RedisCache::BACKOFF`] ago.
    async fn call<T>(
        &self,
        f: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, CacheError> {
        let now = Instant::now();
        let failing = {
            let mut until = self
                .failing_until
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match *until {
                Some(t) if t > now => true,
                Some(_) => {
                    // The backoff is over: this call tries; others keep failing fast meanwhile.
                    *until = Some(now + Self::BACKOFF);
                    false
                }
                None => false,
            }
        };
        if failing {
            return Err(CacheError(
                "redis failed less than a second ago; not trying".into(),
            ));
        }
        let result = f.await;
        let mut until = self
            .failing_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match result {
            Ok(value) => {
                *until = None;
                Ok(value)
            }
            Err(e) => {
                if e.is_io_error()
                    || e.is_timeout()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                {
                    *until = Some(Instant::now() + Self::BACKOFF);
                } else {
                    // Redis answered (with an error of the command): it is there.
                    *until = None;
                }
                Err(redis_error(e))
            }
        }
    }
}

fn redis_error(e: redis::RedisError) -> CacheError {
    CacheError(e.into())
}

fn ttl_secs(ttl: Duration) -> u64 {
    ttl.as_secs().max(1)
}

#[async_trait]
impl Cache for RedisCache {
    async fn increment(&self, key: &str, ttl: Duration) -> Result<u64, CacheError> {
        // One round trip: INCR, and EXPIRE only if the key has none yet (NX), so the window never slides.
        let mut connection = self.connection.clone();
        let (count,): (u64,) = self
            .call(
                redis::pipe()
                    .atomic()
                    .incr(key, 1)
                    .cmd("EXPIRE")
                    .arg(key)
                    .arg(ttl_secs(ttl))
                    .arg("NX")
                    .ignore()
                    .query_async(&mut connection),
            )
            .await?;
        Ok(count)
    }

    async fn set_flag(&self, key: &str, ttl: Duration) -> Result<(), CacheError> {
        let mut connection = self.connection.clone();
        self.call(
            redis::cmd("SET")
                .arg(key)
                .arg(1)
                .arg("EX")
                .arg(ttl_secs(ttl))
                .query_async::<()>(&mut connection),
        )
        .await
    }

    async fn exists(&self, key: &str) -> Result<bool, CacheError> {
        let mut connection = self.connection.clone();
        self.call(
            redis::cmd("EXISTS")
                .arg(key)
                .query_async::<bool>(&mut connection),
        )
        .await
    }

    async fn bump(&self, key: &str) -> Result<i64, CacheError> {
        let mut connection = self.connection.clone();
        self.call(
            redis::cmd("INCR")
                .arg(key)
                .query_async::<i64>(&mut connection),
        )
        .await
    }

    async fn counter(&self, key: &str) -> Result<i64, CacheError> {
        let mut connection = self.connection.clone();
        let value: Option<i64> = self
            .call(redis::cmd("GET").arg(key).query_async(&mut connection))
            .await?;
        Ok(value.unwrap_or(0))
    }

    async fn ping(&self) -> Result<(), CacheError> {
        let mut connection = self.connection.clone();
        self.call(redis::cmd("PING").query_async::<String>(&mut connection))
            .await
            .map(|_| ())
    }

    fn backend(&self) -> &'static str {
        "redis"
    }
}

/// Revoked sessions, so that their access tokens are refused before they expire.
#[derive(Debug, Clone)]
pub struct Revocations {
    cache: Arc<dyn Cache>,
    keys: KeySpace,
    /// How long a revocation must be remembered: the longest an access token lives.
    ttl: Duration,
    /// Revocations the cache could not take (it was down), with when they may be forgotten. This
    /// process refuses those sessions meanwhile, and hands them to the cache as soon as it answers
    /// again: without this, a logout during a Redis outage would be undone when Redis comes back.
    unpublished: Arc<Mutex<HashMap<String, Instant>>>,
}

impl Revocations {
    /// Revocations in `cache`, remembered for `ttl` (at least the access-token lifetime).
    pub fn new(cache: Arc<dyn Cache>, keys: KeySpace, ttl: Duration) -> Revocations {
        Revocations {
            cache,
            keys,
            ttl,
            unpublished: Arc::default(),
        }
    }

    /// Marks session `sid` revoked. On failure the revocation is kept to be published later.
    pub async fn revoke(&self, sid: &str) -> Result<(), CacheError> {
        let result = self
            .cache
            .set_flag(&self.keys.revoked_session(sid), self.ttl)
            .await;
        if result.is_err() {
            self.lock_unpublished()
                .insert(sid.to_owned(), Instant::now() + self.ttl);
        }
        result
    }

    /// Whether session `sid` is revoked.
    pub async fn is_revoked(&self, sid: &str) -> Result<bool, CacheError> {
        let in_cache = self.cache.exists(&self.keys.revoked_session(sid)).await?;
        let (unpublished, pending) = {
            let unpublished = self.lock_unpublished();
            (unpublished.contains_key(sid), !unpublished.is_empty())
        };
        if pending {
            self.publish_pending().await;
        }
        Ok(in_cache || unpublished)
    }

    /// Hands the revocations the cache missed to it, now that it answers.
    async fn publish_pending(&self) {
        let now = Instant::now();
        let pending: Vec<(String, Duration)> = {
            let mut unpublished = self.lock_unpublished();
            unpublished.retain(|_, until| *until > now);
            unpublished
                .iter()
                .map(|(sid, until)| (sid.clone(), *until - now))
                .collect()
        };
        for (sid, ttl) in pending {
            if self
                .cache
                .set_flag(&self.keys.revoked_session(&sid), ttl)
                .await
                .is_err()
            {
                return;
            }
            self.lock_unpublished().remove(&sid);
            tracing::info!(session_id = %sid, "revocation published after a cache outage");
        }
    }

    fn lock_unpublished(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.unpublished
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The feed version the edge keys its cached feed pages by. Every committed write that changes what
/// a feed shows bumps it, so no page cached before the write is served after its answer.
#[derive(Debug, Clone)]
pub struct FeedVersion {
    cache: Arc<dyn Cache>,
    key: String,
    /// A bump failed (the cache was down) and a task is retrying it.
    retrying: Arc<std::sync::atomic::AtomicBool>,
}

impl FeedVersion {
    /// How often a failed bump is retried until the cache answers.
    const RETRY_EVERY: Duration = Duration::from_millis(100);

    /// The feed version in `cache` under `keys`.
    pub fn new(cache: Arc<dyn Cache>, keys: &KeySpace) -> FeedVersion {
        FeedVersion {
            cache,
            key: keys.feed_version(),
            retrying: Arc::default(),
        }
    }

    /// Bumps the version after a write. While the cache is down the edge serves no cached pages (it
    /// forwards), but the pages it cached before the outage are still there when the cache comes
    /// back: so a failed bump is retried in the background until it lands, and those pages become
    /// unreachable about a second after the cache returns (the retry period, plus the Redis
    /// client's fail-fast backoff).
    pub async fn bump(&self) {
        match self.cache.bump(&self.key).await {
            Ok(version) => tracing::debug!(version, "feed version bumped"),
            Err(error) => {
                tracing::error!(error = %crate::error::cause_chain(&error), "feed version not bumped; retrying until the cache answers");
                self.retry_in_background();
            }
        }
    }

    fn retry_in_background(&self) {
        use std::sync::atomic::Ordering;
        // One retrying task covers every write of the outage: one bump after it is enough.
        if self.retrying.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Self::RETRY_EVERY).await;
                if let Ok(version) = this.cache.bump(&this.key).await {
                    this.retrying.store(false, Ordering::Release);
                    tracing::info!(version, "feed version bumped after a cache outage");
                    return;
                }
            }
        });
    }

    /// The current version.
    pub async fn current(&self) -> Result<i64, CacheError> {
        self.cache.counter(&self.key).await
    }
}

/// Fixed-window rate limits, counted in the cache.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    cache: Arc<dyn Cache>,
    keys: KeySpace,
    limits: Arc<HashMap<RateLimitRule, RateLimit>>,
    enabled: bool,
}

impl RateLimiter {
    /// A limiter with `limits` (rules missing from it use their defaults).
    pub fn new(
        cache: Arc<dyn Cache>,
        keys: KeySpace,
        limits: HashMap<RateLimitRule, RateLimit>,
        enabled: bool,
    ) -> RateLimiter {
        RateLimiter {
            cache,
            keys,
            limits: Arc::new(limits),
            enabled,
        }
    }

    /// Counts one hit of `rule` by `subject` at `now`; `GLOBAL_106` with `Retry-After` when over the limit.
    ///
    /// If the cache is down the hit is allowed (and logged): an outage of Redis must not lock every
    /// member out, and the database still enforces the code and password checks themselves.
    pub async fn check(
        &self,
        rule: RateLimitRule,
        subject: &str,
        now: i64,
    ) -> Result<(), ApiError> {
        if !self.enabled {
            return Ok(());
        }
        let limit = self
            .limits
            .get(&rule)
            .copied()
            .unwrap_or_else(|| rule.default_limit());
        let key = self.keys.rate_limit(rule, subject, limit.window_index(now));
        match self
            .cache
            .increment(&key, Duration::from_secs(u64::from(limit.window_secs)))
            .await
        {
            Ok(count) if limit.allows(count) => Ok(()),
            Ok(_) => {
                metrics::counter!("heart_rate_limited_total", "rule" => rule.name()).increment(1);
                Err(ApiError::RateLimited {
                    retry_after_secs: limit.retry_after(now),
                })
            }
            Err(error) => {
                tracing::warn!(rule = rule.name(), error = %crate::error::cause_chain(&error), "rate limit not checked: cache unavailable");
                metrics::counter!("heart_dependency_errors_total", "dependency" => "cache")
                    .increment(1);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn in_process_counter_expires_with_its_window() {
        let cache = InProcessCache::default();
        assert_eq!(
            cache
                .increment("k", Duration::from_millis(30))
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            cache
                .increment("k", Duration::from_millis(30))
                .await
                .unwrap(),
            2
        );
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(
            cache
                .increment("k", Duration::from_millis(30))
                .await
                .unwrap(),
            1
        );
    }

    #[tokio::test]
    async fn in_process_flag_expires() {
        let cache = InProcessCache::default();
        cache
            .set_flag("f", Duration::from_millis(20))
            .await
            .unwrap();
        assert!(cache.exists("f").await.unwrap());
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(!cache.exists("f").await.unwrap());
    }

    #[tokio::test]
    async fn limiter_refuses_past_the_limit_with_retry_after() {
        let cache: Arc<dyn Cache> = Arc::new(InProcessCache::default());
        let limits = HashMap::from([(RateLimitRule::LoginPerIp, RateLimit::new(2, 60))]);
        let limiter = RateLimiter::new(cache, KeySpace::new("t"), limits, true);
        assert!(limiter
            .check(RateLimitRule::LoginPerIp, "1.2.3.4", 130)
            .await
            .is_ok());
        assert!(limiter
            .check(RateLimitRule::LoginPerIp, "1.2.3.4", 130)
            .await
            .is_ok());
        match limiter
            .check(RateLimitRule::LoginPerIp, "1.2.3.4", 130)
            .await
        {
            Err(ApiError::RateLimited { retry_after_secs }) => assert_eq!(retry_after_secs, 50),
            other => panic!("expected rate limit, got {other:?}"),
        }
        assert!(
            limiter
                .check(RateLimitRule::LoginPerIp, "5.6.7.8", 130)
                .await
                .is_ok(),
            "other subjects unaffected"
        );
        assert!(
            limiter
                .check(RateLimitRule::LoginPerIp, "1.2.3.4", 180)
                .await
                .is_ok(),
            "next window"
        );
    }
}
