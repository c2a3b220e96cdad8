//! The feed version the edge keys its cached feed pages by.

use std::sync::Arc;
use std::time::{Duration, Instant};

use heart_shared::cache_keys::KeySpace;

use super::scroll::ScrollMemory;
use crate::cache::{Cache, CacheError};

/// The feed version the edge keys its cached feed pages by. Every committed write that changes what
/// a feed shows bumps it, so no page cached before the write is served after its answer.
#[derive(Debug, Clone)]
pub struct FeedVersion {
    cache: Arc<dyn Cache>,
    key: String,
    /// A bump failed (the cache was down) and a task is retrying it.
    retrying: Arc<std::sync::atomic::AtomicBool>,
    /// Where viewers' last pages ended, per version (the next page is a keyset seek).
    pub scroll: Arc<ScrollMemory>,
    /// The newest version this process has read, and when it first read it.
    seen: Arc<std::sync::Mutex<Option<(i64, Instant)>>>,
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
            scroll: Arc::new(ScrollMemory::new(ScrollMemory::DEFAULT_CAPACITY)),
            seen: Arc::default(),
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

    /// Whether a bump that failed during a cache outage is still being retried.
    pub fn is_retrying(&self) -> bool {
        self.retrying.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The current version.
    pub async fn current(&self) -> Result<i64, CacheError> {
        self.cache.counter(&self.key).await
    }

    /// The current version, and for how long this process has known it: at least that long ago
    /// the write that made it was committed (the bump follows the commit). A feed page read from
    /// a replica that lags less than that has that write, and every write before it.
    pub async fn current_with_age(&self) -> Result<(i64, Duration), CacheError> {
        let version = self.current().await?;
        let now = Instant::now();
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let first_seen = match *seen {
            Some((known, at)) if known == version => at,
            _ => {
                *seen = Some((version, now));
                now
            }
        };
        Ok((version, now - first_seen))
    }
}
