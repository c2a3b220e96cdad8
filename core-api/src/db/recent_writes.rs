//! Read-your-writes: the members who wrote within the last few seconds read from the primary.
//!
//! The mark lives in the shared cache (Redis when configured), under `<prefix>:wrote:<member id>`
//! with the window as its TTL: the member's next request may land on any core replica, and every
//! replica sees the mark, so no sticky routing is needed. (Without Redis the cache is in-process,
//! as are revocations and rate limits: one core replica only.) Routing a read costs one `EXISTS`,
//! and only while a replica is configured and usable. When the cache does not answer, the member is
//! taken to have written: their reads go to the primary, never to possibly stale data.

use std::sync::Arc;
use std::time::Duration;

use crate::cache::Cache;

/// Where the core remembers who wrote recently.
#[derive(Clone)]
pub struct RecentWrites {
    cache: Arc<dyn Cache>,
    prefix: String,
    window: Duration,
}

impl std::fmt::Debug for RecentWrites {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecentWrites")
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl RecentWrites {
    /// Marks kept in `cache` under `prefix`, for `window` (`HEART_READ_YOUR_WRITES_SECS`).
    pub fn new(cache: Arc<dyn Cache>, prefix: &str, window: Duration) -> RecentWrites {
        RecentWrites {
            cache,
            prefix: prefix.to_owned(),
            window,
        }
    }

    fn key(&self, member_id: i64) -> String {
        format!("{}:wrote:{member_id}", self.prefix)
    }

    /// `member_id` just wrote (or tried to): their reads go to the primary for the window.
    pub async fn mark(&self, member_id: i64) {
        if let Err(error) = self.cache.set_flag(&self.key(member_id), self.window).await {
            // Until the cache answers again, `wrote_recently` says yes for everyone.
            tracing::warn!(member_id, error = %crate::error::cause_chain(&error), "write not marked for read-your-writes");
        }
    }

    /// Whether `member_id` wrote within the window (yes when the cache cannot say).
    pub async fn wrote_recently(&self, member_id: i64) -> bool {
        self.cache
            .exists(&self.key(member_id))
            .await
            .unwrap_or(true)
    }
}
