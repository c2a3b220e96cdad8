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

/// Queued deletions one sweep takes on.
pub const SWEEP_BATCH: i64 = 1000;

/// How long a sweep's claim on its queued rows lasts: long enough for a batch of slow deletions,
/// short enough that the rows of a replica that died mid-sweep are soon retried by another.
pub const CLAIM_SECS: i64 = 300;

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

    /// Those of `keys` that no post image and no avatar refers to (for the objects of an abandoned
    /// write, `super::uncommitted`; rare, so a scan of the image keys is acceptable).
    pub async fn unreferenced(&self, keys: &[String]) -> Result<Vec<String>, sqlx::Error> {
        let mut orphans = Vec::with_capacity(keys.len());
        for key in keys {
            let referenced: Option<(i64,)> = sqlx::query_as(
                "SELECT 1 FROM post_images WHERE object_key = ? \
                 UNION ALL SELECT 1 FROM members WHERE avatar_key = ? LIMIT 1",
            )
            .bind(key)
            .bind(key)
            .fetch_optional(&self.db.pool)
            .await?;
            if referenced.is_none() {
                orphans.push(key.clone());
            }
        }
        Ok(orphans)
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

    /// Retries the queued deletions once, at most [`SWEEP_BATCH`] of them, oldest first; returns
    /// how many of those are still queued (their deletion failed again).
    ///
    /// Every core replica runs this sweeper; none is elected. A sweep claims its batch first (one
    /// atomic `UPDATE` sets `claimed_by` to a token of this sweep and `claimed_until` to a lease)
    /// and then works only on the rows it claimed, so two replicas, or two sweeps of one, never
    /// delete the same object or count the same failure at once. A replica that dies mid-sweep
    /// leaves its claims behind; they are claimable again when the lease ([`CLAIM_SECS`]) ends,
    /// and deleting an object twice is harmless (storage deletion is idempotent).
    pub async fn sweep(&self) -> Result<usize, sqlx::Error> {
        let claimant = format!("{:032x}", rand::random::<u128>());
        let now = self.clock.now();
        let claim = match self.db.kind {
            // MySQL/MariaDB update in index order with ORDER BY/LIMIT; concurrent claims wait on
            // each other's row locks and then see the rows taken.
            DbKind::MySql => {
                "UPDATE storage_garbage SET claimed_by = ?, claimed_until = ? \
                 WHERE claimed_until IS NULL OR claimed_until < ? ORDER BY queued_at LIMIT ?"
            }
            // SQLite has one writer at a time: the statement is atomic as it stands.
            DbKind::Sqlite => {
                "UPDATE storage_garbage SET claimed_by = ?, claimed_until = ? WHERE object_key IN \
                 (SELECT object_key FROM storage_garbage \
                  WHERE claimed_until IS NULL OR claimed_until < ? ORDER BY queued_at LIMIT ?)"
            }
        };
        sqlx::query(claim)
            .bind(&claimant)
            .bind(now + CLAIM_SECS)
            .bind(now)
            .bind(SWEEP_BATCH)
            .execute(&self.db.pool)
            .await?;
        let claimed: Vec<(String,)> =
            sqlx::query_as("SELECT object_key FROM storage_garbage WHERE claimed_by = ?")
                .bind(&claimant)
                .fetch_all(&self.db.pool)
                .await?;
        let mut remaining = 0;
        for (key,) in claimed {
            match self.storage.delete(&key).await {
                Ok(()) => {
                    sqlx::query(
                        "DELETE FROM storage_garbage WHERE object_key = ? AND claimed_by = ?",
                    )
                    .bind(&key)
                    .bind(&claimant)
                    .execute(&self.db.pool)
                    .await?;
                }
                Err(_) => {
                    remaining += 1;
                    // Released at once: the next sweep, of any replica, tries it again.
                    sqlx::query(
                        "UPDATE storage_garbage SET attempts = attempts + 1, claimed_by = NULL, \
                         claimed_until = NULL WHERE object_key = ? AND claimed_by = ?",
                    )
                    .bind(&key)
                    .bind(&claimant)
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
