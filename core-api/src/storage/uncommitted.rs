//! Objects stored for a write whose rows are not committed yet.
//!
//! A post's images (and an avatar) are stored before their rows are written. When the write
//! fails, the service deletes them. But the request's future can also be dropped half-way: the
//! database's breaker opening releases the requests in flight, a request time limit ends, a
//! client goes away. Nothing after the `await` it stopped at runs then, so without this guard the
//! objects stayed in storage with no row and no queued deletion (`bench/faults.sh`, MariaDB killed
//! under load: 4 orphans in 2,500 posts).
//!
//! [`Uncommitted`] holds the keys until the service says the rows are committed. Dropped before
//! that, it spawns a task that waits for the database to answer, keeps every object a row refers
//! to (a `COMMIT` may have landed just before the future was dropped), and deletes the others.

use std::time::Duration;

use super::cleanup::Cleanup;

/// How often the task asks a database that does not answer again, and how many times.
const RETRY: Duration = Duration::from_secs(1);
const ATTEMPTS: u32 = 900;

/// Keys of stored objects whose rows are not committed yet; see the module's documentation.
#[derive(Debug)]
#[must_use = "dropping it deletes the objects unless a row refers to them"]
pub struct Uncommitted {
    cleanup: Option<Cleanup>,
    keys: Vec<String>,
}

impl Uncommitted {
    /// Guards `keys` (stored or about to be: deleting a key never stored is harmless).
    pub fn new(cleanup: Cleanup, keys: Vec<String>) -> Uncommitted {
        Uncommitted {
            cleanup: Some(cleanup),
            keys,
        }
    }

    /// The rows are committed: the objects stay.
    pub fn committed(mut self) {
        self.cleanup = None;
    }

    /// The write failed and nothing refers to the objects: deletes them now (queued on failure).
    pub async fn discard(self) {
        let keys = self.keys.clone();
        self.discard_only(keys).await;
    }

    /// The write failed and only `stored` of the keys were stored: deletes those now. The guard
    /// stays armed until the deletions are done: the failed write that led here is often the one
    /// that opened the database's breaker, which then drops this very request mid-deletion, and
    /// the guard's own clean-up has to finish the job.
    pub async fn discard_only(mut self, stored: Vec<String>) {
        if let Some(cleanup) = self.cleanup.clone() {
            cleanup.delete_or_queue(stored).await;
        }
        self.cleanup = None;
    }
}

impl Drop for Uncommitted {
    fn drop(&mut self) {
        let (Some(cleanup), keys) = (self.cleanup.take(), std::mem::take(&mut self.keys)) else {
            return;
        };
        if keys.is_empty() {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(delete_unreferenced(cleanup, keys));
            }
            Err(_) => tracing::error!(
                ?keys,
                "objects of an abandoned write are orphaned (no runtime)"
            ),
        }
    }
}

/// Deletes those of `keys` no row refers to, once the database answers.
async fn delete_unreferenced(cleanup: Cleanup, keys: Vec<String>) {
    metrics::counter!("heart_storage_abandoned_writes_total").increment(1);
    for attempt in 1..=ATTEMPTS {
        match cleanup.unreferenced(&keys).await {
            Ok(orphans) => {
                tracing::warn!(
                    objects = keys.len(),
                    deleted = orphans.len(),
                    "a write was abandoned mid-way; its unreferenced objects are deleted"
                );
                cleanup.delete_or_queue(orphans).await;
                return;
            }
            Err(error) if attempt == ATTEMPTS => {
                tracing::error!(?keys, %error, "objects of an abandoned write are orphaned: the database never answered");
            }
            Err(_) => tokio::time::sleep(RETRY).await,
        }
    }
}
