//! The embedded cache: a map in this process.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{Cache, CacheError};

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
}
