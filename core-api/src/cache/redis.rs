//! Redis (ElastiCache in production).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;

use super::{Cache, CacheError};
use crate::health::{Breaker, ProbeFuture, ProbePolicy};

/// Redis (ElastiCache in production), through a reconnecting connection manager.
///
/// When Redis fails (down, unreachable, too slow), its breaker opens: calls fail at once without
/// trying, and a background `PING` every [`RedisCache::PROBE_POLICY`] retry finds when it is back,
/// so no request waits for a timeout of its own; callers already treat a cache error as "go on
/// without it" (rate limits open, revocations from the database). The probe opens a new
/// connection and swaps it in: one that timed out (a black-holed route, a failover) is not
/// reconnected by the manager itself.
#[derive(Clone)]
pub struct RedisCache {
    connection: Arc<RwLock<ConnectionManager>>,
    health: Breaker,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache").finish_non_exhaustive()
    }
}

impl RedisCache {
    /// Connecting may take 500 ms, a command 1 s (ElastiCache answers in about a millisecond).
    pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
    /// See [`RedisCache::CONNECT_TIMEOUT`].
    pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
    /// Probed every 500 ms while down; a probe has a second.
    pub const PROBE_POLICY: ProbePolicy = ProbePolicy {
        retry: Duration::from_millis(500),
        watch: None,
        timeout: Duration::from_secs(1),
        failures_to_open: 1,
        // A lossy path lets single PINGs through; closing on one made every request wait a
        // response timeout again (bench/faults.sh redis-drop). Each probe sends
        // `PROBE_PINGS` on its fresh connection, and two probes in a row must pass: 1 s of health.
        successes_to_close: 2,
    };

    /// `PING`s one probe sends on its fresh connection, all of which must be answered: a path
    /// losing 30 % of its packets passes a probe about once in a thousand (one `PING`: one in
    /// two); a healthy Redis answers them in about a millisecond.
    pub const PROBE_PINGS: usize = 10;

    /// Connects to `url` (`redis://` or `rediss://`).
    pub async fn connect(url: &str) -> Result<RedisCache, CacheError> {
        let client = redis::Client::open(url).map_err(|e| CacheError(e.into()))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Self::CONNECT_TIMEOUT)
            .set_response_timeout(Self::RESPONSE_TIMEOUT)
            .set_number_of_retries(1);
        let connection = ConnectionManager::new_with_config(client.clone(), config.clone())
            .await
            .map_err(|e| CacheError(e.into()))?;
        let connection = Arc::new(RwLock::new(connection));
        let shared = connection.clone();
        let health = Breaker::new("cache", Self::PROBE_POLICY, move || -> ProbeFuture {
            let (client, config, shared) = (client.clone(), config.clone(), shared.clone());
            Box::pin(async move {
                let mut fresh = ConnectionManager::new_with_config(client, config).await?;
                for _ in 0..Self::PROBE_PINGS {
                    redis::cmd("PING").query_async::<String>(&mut fresh).await?;
                }
                *shared
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = fresh;
                Ok::<(), crate::error::BoxError>(())
            })
        });
        Ok(RedisCache { connection, health })
    }

    /// The current connection (cheap to clone).
    fn conn(&self) -> ConnectionManager {
        self.connection
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Runs one Redis call, unless its breaker is open (then fails at once).
    async fn call<T>(
        &self,
        f: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, CacheError> {
        if !self.health.is_up() {
            return Err(CacheError("redis is down; not trying".into()));
        }
        match f.await {
            Ok(value) => Ok(value),
            Err(e) => {
                if e.is_io_error()
                    || e.is_timeout()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                {
                    self.health.trip(&e.to_string());
                }
                // Otherwise Redis answered (with an error of the command): it is there.
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
        let mut connection = self.conn();
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
        let mut connection = self.conn();
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
        let mut connection = self.conn();
        self.call(
            redis::cmd("EXISTS")
                .arg(key)
                .query_async::<bool>(&mut connection),
        )
        .await
    }

    async fn bump(&self, key: &str) -> Result<i64, CacheError> {
        let mut connection = self.conn();
        self.call(
            redis::cmd("INCR")
                .arg(key)
                .query_async::<i64>(&mut connection),
        )
        .await
    }

    async fn counter(&self, key: &str) -> Result<i64, CacheError> {
        let mut connection = self.conn();
        let value: Option<i64> = self
            .call(redis::cmd("GET").arg(key).query_async(&mut connection))
            .await?;
        Ok(value.unwrap_or(0))
    }

    async fn ping(&self) -> Result<(), CacheError> {
        let mut connection = self.conn();
        self.call(redis::cmd("PING").query_async::<String>(&mut connection))
            .await
            .map(|_| ())
    }

    fn backend(&self) -> &'static str {
        "redis"
    }
}
