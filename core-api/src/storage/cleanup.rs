//! Objects to delete from storage after their rows are gone.
//!
//! The database is the source of truth: rows are removed first, in a transaction, and their
//! objects afterwards. An object whose deletion fails is recorded in `storage_garbage` and retried
//! by a background sweeper, so a storage hiccup never leaves a row pointing at a missing object
//! and never leaves an object behind for good.

use std::sync::Arc;
use std::time::Duration;

use super::Storage;
use crate::clock::Clock;
use crate::db::{Db, DbKind};

/// Deletes objects, queueing the ones storage refuses for a later sweep.
#[derive(Debug, Clone)]
pub struct Cleanup {
    db: Db,
    storage: Arc<dyn Storage>,
    clock: Clock,
}

impl Cleanup {
    /// Deletions from `storage`, queued in `db`.
    pub fn new(db: Db, storage: Arc<dyn Storage>, clock: Clock) -> Cleanup {
        Cleanup { db, storage, clock }
    }

    /// Deletes `keys` from storage; any that fail are queued for the sweeper.
    pub async fn delete_or_queue(&self, keys: Vec<String>) {
        let deletions = keys.into_iter().map(|key| async move {
            let result = self.storage.delete(&key).await;
            (key, result)
        });
        for (key, result) in futures_util::future::join_all(deletions).await {
            if let Err(error) = result {
                tracing::warn!(%key, error = %crate::error::cause_chain(&error), "object deletion failed; queued for retry");
                if let Err(error) = self.queue(&key).await {
                    tracing::error!(%key, %error, "object deletion could not even be queued; it is orphaned");
                }
            }
        }
    }

    async fn queue(&self, key: &str) -> Result<(), sqlx::Error> {
        let sql = match self.db.kind {
            DbKind::Sqlite => {
                "INSERT OR IGNORE INTO storage_garbage (object_key, queued_at) VALUES (?, ?)"
            }
            DbKind::MySql => {
                "INSERT IGNORE INTO storage_garbage (object_key, queued_at) VALUES (?, ?)"
            }
        };
        sqlx::query(sql)
            .bind(key)
            .bind(self.clock.now())
            .execute(&self.db.pool)
            .await
            .map(|_| ())
    }

    /// Retries every queued deletion once; returns how many objects are still queued.
    pub async fn sweep(&self) -> Result<usize, sqlx::Error> {
        let queued: Vec<(String,)> =
            sqlx::query_as("SELECT object_key FROM storage_garbage ORDER BY queued_at LIMIT 1000")
                .fetch_all(&self.db.pool)
                .await?;
        let mut remaining = 0;
        for (key,) in queued {
            match self.storage.delete(&key).await {
                Ok(()) => {
                    sqlx::query("DELETE FROM storage_garbage WHERE object_key = ?")
                        .bind(&key)
                        .execute(&self.db.pool)
                        .await?;
                }
                Err(_) => {
                    remaining += 1;
                    sqlx::query(
                        "UPDATE storage_garbage SET attempts = attempts + 1 WHERE object_key = ?",
                    )
                    .bind(&key)
                    .execute(&self.db.pool)
                    .await?;
                }
            }
        }
        metrics::gauge!("heart_storage_garbage_pending").set(remaining as f64);
        Ok(remaining)
    }

    /// Runs [`Cleanup::sweep`] every `interval` for as long as the process lives.
    pub fn spawn_sweeper(self, interval: Duration) {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                if let Err(error) = self.sweep().await {
                    tracing::warn!(%error, "storage garbage sweep failed");
                }
            }
        });
    }
}
