//! Revoked sessions, so that their access tokens are refused before they expire.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use heart_shared::cache_keys::KeySpace;

use crate::cache::{Cache, CacheError};

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

    /// [`Revocations::revoke`], logging a failure: the database already says the session is
    /// revoked, and the core falls back to it when the cache is down.
    pub async fn publish(&self, sid: &str) {
        if let Err(error) = self.revoke(sid).await {
            tracing::error!(session_id = %sid, error = %crate::error::cause_chain(&error), "revocation not published to the cache");
        }
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

    /// Whether `sid` is among the revocations this process could not hand to the cache yet (and
    /// hands those over if the cache answers now). No cache call when there are none: what a
    /// request costs when the edge's gate has already checked the cache, which cannot know these.
    pub async fn is_revoked_unpublished(&self, sid: &str) -> bool {
        let (unpublished, pending) = {
            let unpublished = self.lock_unpublished();
            (unpublished.contains_key(sid), !unpublished.is_empty())
        };
        if pending {
            self.publish_pending().await;
        }
        unpublished
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
