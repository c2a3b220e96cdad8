//! Objects to delete from storage after their rows are gone.
//!
//! The database is the source of truth: rows are removed first, in a transaction, and their
//! objects afterwards. An object whose deletion fails is recorded in `storage_garbage` and retried
//! by a background sweeper, so a storage hiccup never leaves a row pointing at a missing object
//! and never leaves an object behind for good.

use std::time::Duration;

use crate::app::AppState;
use crate::db::DbKind;

/// Deletes `keys` from storage; any that fail are queued for the sweeper.
pub async fn delete_or_queue(state: &AppState, keys: Vec<String>) {
    let deletions = keys.into_iter().map(|key| async move {
        let result = state.storage.delete(&key).await;
        (key, result)
    });
    for (key, result) in futures_util::future::join_all(deletions).await {
        if let Err(error) = result {
            tracing::warn!(%key, error = %crate::error::cause_chain(&error), "object deletion failed; queued for retry");
            if let Err(error) = queue(state, &key).await {
                tracing::error!(%key, %error, "object deletion could not even be queued; it is orphaned");
            }
        }
    }
}

async fn queue(state: &AppState, key: &str) -> Result<(), sqlx::Error> {
    let sql = match state.db.kind {
        DbKind::Sqlite => {
            "INSERT OR IGNORE INTO storage_garbage (object_key, queued_at) VALUES (?, ?)"
        }
        DbKind::MySql => "INSERT IGNORE INTO storage_garbage (object_key, queued_at) VALUES (?, ?)",
    };
    sqlx::query(sql)
        .bind(key)
        .bind(state.clock.now())
        .execute(&state.db.pool)
        .await
        .map(|_| ())
}

/// Retries every queued deletion once; returns how many objects are still queued.
pub async fn sweep(state: &AppState) -> Result<usize, sqlx::Error> {
    let queued: Vec<(String,)> =
        sqlx::query_as("SELECT object_key FROM storage_garbage ORDER BY queued_at LIMIT 1000")
            .fetch_all(&state.db.pool)
            .await?;
    let mut remaining = 0;
    for (key,) in queued {
        match state.storage.delete(&key).await {
            Ok(()) => {
                sqlx::query("DELETE FROM storage_garbage WHERE object_key = ?")
                    .bind(&key)
                    .execute(&state.db.pool)
                    .await?;
            }
            Err(_) => {
                remaining += 1;
                sqlx::query(
                    "UPDATE storage_garbage SET attempts = attempts + 1 WHERE object_key = ?",
                )
                .bind(&key)
                .execute(&state.db.pool)
                .await?;
            }
        }
    }
    metrics::gauge!("heart_storage_garbage_pending").set(remaining as f64);
    Ok(remaining)
}

/// Runs [`sweep`] every `interval` for as long as the process lives.
pub fn spawn_sweeper(state: AppState, interval: Duration) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            if let Err(error) = sweep(&state).await {
                tracing::warn!(%error, "storage garbage sweep failed");
            }
        }
    });
}
