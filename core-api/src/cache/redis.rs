//! Redis (ElastiCache in production).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::aio::ConnectionManager;

use super::{Cache, CacheError};

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
