//! [`InProcessStore`]: the edge's store in this process (`redis_url = "memory:"`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{EdgeStore, StoreError};

/// A value and when it expires (never: `None`).
type Entry = (Vec<u8>, Option<Instant>);

/// What an entry costs in the size bound: its key, its value and a fixed overhead.
fn cost(key: &str, value: &[u8]) -> usize {
    key.len() + value.len() + 64
}

/// A store in this process: a map with expiry and a size bound. Enough for one edge in front of
/// one core.
///
/// Past `max_bytes` (keys + values + 64 bytes each), expired entries are dropped, then cached feed
/// pages (`…:feed:v…`), then rate-limit counters (`…:rl:…`), soonest-expiring first, down to 90 %
/// of the bound. Other entries (revocations, the feed version) are never evicted: losing a
/// revocation would let a revoked token through.
#[derive(Debug)]
pub struct InProcessStore {
    entries: Mutex<Entries>,
    max_bytes: usize,
}

#[derive(Debug, Default)]
struct Entries {
    map: HashMap<String, Entry>,
    bytes: usize,
}

impl Default for InProcessStore {
    fn default() -> Self {
        InProcessStore::with_max_bytes(Self::DEFAULT_MAX_BYTES)
    }
}

impl Entries {
    fn insert(&mut self, key: &str, entry: Entry) {
        self.bytes += cost(key, &entry.0);
        if let Some(old) = self.map.insert(key.to_owned(), entry) {
            self.bytes -= cost(key, &old.0);
        }
    }

    fn remove(&mut self, key: &str) -> Option<Entry> {
        let old = self.map.remove(key)?;
        self.bytes -= cost(key, &old.0);
        Some(old)
    }

    /// Drops expired entries, then evictable ones (pages, then counters) until `target` bytes.
    fn shrink(&mut self, now: Instant, target: usize) {
        let expired: Vec<String> = self
            .map
            .iter()
            .filter(|(_, (_, expires))| expires.is_some_and(|e| e <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in expired {
            self.remove(&key);
        }
        let page = |key: &str| {
            key.split_once(":feed:v")
                .is_some_and(|(_, rest)| rest.starts_with(|c: char| c.is_ascii_digit()))
        };
        let counter = |key: &str| key.contains(":rl:");
        for class in [&page as &dyn Fn(&str) -> bool, &counter] {
            if self.bytes <= target {
                return;
            }
            let mut candidates: Vec<(Option<Instant>, String)> = self
                .map
                .iter()
                .filter(|(k, _)| class(k))
                .map(|(k, (_, expires))| (*expires, k.clone()))
                .collect();
            candidates.sort_unstable();
            for (_, key) in candidates {
                if self.bytes <= target {
                    return;
                }
                self.remove(&key);
            }
        }
    }
}

impl InProcessStore {
    /// The default bound: 64 MiB.
    pub const DEFAULT_MAX_BYTES: usize = 64 * 1024 * 1024;

    /// A store bounded to about `max_bytes`.
    pub fn with_max_bytes(max_bytes: usize) -> InProcessStore {
        InProcessStore {
            entries: Mutex::new(Entries::default()),
            max_bytes,
        }
    }

    /// Bytes held (keys, values and the per-entry overhead).
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether the store holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A poisoned lock only means another thread panicked mid-update of plain values.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn with_entries<T>(&self, f: impl FnOnce(&mut Entries, Instant) -> T) -> T {
        let mut entries = self.lock();
        let now = Instant::now();
        let out = f(&mut entries, now);
        if entries.bytes > self.max_bytes {
            entries.shrink(now, self.max_bytes / 10 * 9);
        }
        out
    }
}

fn live(entry: Option<&Entry>, now: Instant) -> bool {
    entry.is_some_and(|(_, expires)| expires.is_none_or(|e| e > now))
}

#[async_trait]
impl EdgeStore for InProcessStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.with_entries(|entries, now| {
            let entry = entries.map.get(key);
            live(entry, now)
                .then(|| entry.map(|(v, _)| v.clone()))
                .flatten()
        }))
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), StoreError> {
        self.with_entries(|entries, now| {
            entries.insert(key, (value.to_vec(), ttl.map(|t| now + t)));
        });
        Ok(())
    }

    async fn incr(&self, key: &str) -> Result<i64, StoreError> {
        self.with_entries(|entries, now| {
            let current = entries
                .map
                .get(key)
                .filter(|_| live(entries.map.get(key), now));
            let (value, expires) = match current {
                Some((value, expires)) => (
                    std::str::from_utf8(value)
                        .ok()
                        .and_then(|s| s.parse::<i64>().ok())
                        .ok_or_else(|| StoreError("ERR value is not an integer".into()))?,
                    *expires,
                ),
                None => (0, None),
            };
            let n = value + 1;
            entries.insert(key, (n.to_string().into_bytes(), expires));
            Ok(n)
        })
    }

    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        Ok(self.with_entries(|entries, now| {
            if !live(entries.map.get(key), now) {
                return false;
            }
            if let Some(entry) = entries.map.get_mut(key) {
                entry.1 = Some(now + ttl);
            }
            true
        }))
    }

    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.with_entries(|entries, now| live(entries.map.get(key), now)))
    }

    async fn del(&self, keys: &[String]) -> Result<u32, StoreError> {
        Ok(self.with_entries(|entries, now| {
            let mut n = 0;
            for key in keys {
                if let Some(entry) = entries.remove(key) {
                    n += u32::from(live(Some(&entry), now));
                }
            }
            n
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_store_is_bounded_and_evicts_pages_then_counters_never_revocations() {
        let store = InProcessStore::with_max_bytes(10_000);
        store
            .set("p:revoked:s", b"1", Some(Duration::from_secs(900)))
            .await
            .unwrap();
        store.set("p:feed:version", b"3", None).await.unwrap();
        store.incr("p:rl:edge_requests_per_ip:a:1").await.unwrap();
        for i in 0..100 {
            let key = format!("p:feed:v3:member:{i}:q");
            store
                .set(&key, &[b'x'; 500], Some(Duration::from_secs(60)))
                .await
                .unwrap();
            assert!(store.bytes() <= 10_000, "{} bytes", store.bytes());
        }
        assert!(store.exists("p:revoked:s").await.unwrap());
        assert_eq!(
            store.get("p:feed:version").await.unwrap(),
            Some(b"3".to_vec())
        );
        // The newest page is kept, the oldest went first.
        assert!(store.exists("p:feed:v3:member:99:q").await.unwrap());
        assert!(!store.exists("p:feed:v3:member:0:q").await.unwrap());
        store
            .del(&["p:feed:v3:member:99:q".to_owned()])
            .await
            .unwrap();
        let before = store.bytes();
        store.set("k", b"v", None).await.unwrap();
        assert_eq!(store.bytes(), before + cost("k", b"v"));
    }

    #[tokio::test]
    async fn expired_entries_are_gone() {
        let store = InProcessStore::default();
        store
            .set("k", b"v", Some(Duration::from_millis(1)))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(store.get("k").await.unwrap(), None);
        assert_eq!(store.incr("k").await.unwrap(), 1);
    }
}
