//! The storage garbage sweeper with several replicas running it: every core replica sweeps, none
//! is elected, and claims on the queued rows keep the sweeps apart (see `storage::cleanup`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use heart_core::storage::cleanup::{Cleanup, CLAIM_SECS};
use heart_core::storage::{object_key, ObjectStream, Storage, StorageError};

use crate::helpers::*;

/// The app's storage, counting the deletions of each key.
#[derive(Debug)]
struct CountingStorage {
    inner: Arc<dyn Storage>,
    deletions: Mutex<HashMap<String, usize>>,
}

#[async_trait]
impl Storage for CountingStorage {
    async fn put(
        &self,
        key: &str,
        bytes: Bytes,
        content_type: &'static str,
    ) -> Result<(), StorageError> {
        self.inner.put(key, bytes, content_type).await
    }
    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        *self
            .deletions
            .lock()
            .unwrap()
            .entry(key.to_owned())
            .or_default() += 1;
        // A deletion takes a round trip in real storage: the other sweep runs meanwhile.
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        self.inner.delete(key).await
    }
    async fn exists(&self, key: &str) -> Result<bool, StorageError> {
        self.inner.exists(key).await
    }
    async fn read(&self, key: &str) -> Result<ObjectStream, StorageError> {
        self.inner.read(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        self.inner.list(prefix).await
    }
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
}

/// Stores `n` objects and queues each for deletion, as failed deletions do; returns their keys.
async fn queue_stored_objects(app: &TestApp, n: usize) -> Vec<String> {
    let now = app.clock.now();
    let mut keys = Vec::new();
    for _ in 0..n {
        let key = object_key("posts", now, "png");
        app.state
            .storage
            .put(&key, Bytes::from_static(b"garbage"), "image/png")
            .await
            .unwrap();
        sqlx::query("INSERT INTO storage_garbage (object_key, queued_at) VALUES (?, ?)")
            .bind(&key)
            .bind(now)
            .execute(&app.state.db.pool)
            .await
            .unwrap();
        keys.push(key);
    }
    keys
}

#[tokio::test]
async fn two_replicas_sweeping_at_once_delete_each_object_once_and_empty_the_queue() {
    let app = TestApp::spawn().await;
    let keys = queue_stored_objects(&app, 40).await;
    let storage = Arc::new(CountingStorage {
        inner: app.state.storage.clone(),
        deletions: Mutex::default(),
    });
    let replica = || Cleanup::new(app.state.db.clone(), storage.clone(), app.clock.clone());
    let (a, b) = (replica(), replica());

    let (left_a, left_b) = tokio::join!(a.sweep(), b.sweep());
    assert_eq!(
        (left_a.unwrap(), left_b.unwrap()),
        (0, 0),
        "no deletion failed"
    );

    assert_eq!(app.count("storage_garbage").await, 0, "the queue is empty");
    let deletions = storage.deletions.lock().unwrap().clone();
    for key in &keys {
        assert_eq!(
            deletions.get(key),
            Some(&1),
            "{key} deleted once: {deletions:?}"
        );
        assert!(
            !app.state.storage.exists(key).await.unwrap(),
            "{key} is gone"
        );
    }
}

#[tokio::test]
async fn a_claim_of_another_sweep_is_left_alone_until_its_lease_ends() {
    let app = TestApp::spawn().await;
    let keys = queue_stored_objects(&app, 2).await;
    let now = app.clock.now();
    // Another replica claimed the first (it is sweeping it now); the second's claim ran out (that
    // replica died mid-sweep).
    for (key, until) in [(&keys[0], now + CLAIM_SECS), (&keys[1], now - 1)] {
        sqlx::query("UPDATE storage_garbage SET claimed_by = 'another', claimed_until = ? WHERE object_key = ?")
            .bind(until)
            .bind(key)
            .execute(&app.state.db.pool)
            .await
            .unwrap();
    }

    assert_eq!(app.state.cleanup.sweep().await.unwrap(), 0);
    assert!(
        app.state.storage.exists(&keys[0]).await.unwrap(),
        "claimed elsewhere: untouched"
    );
    assert!(
        !app.state.storage.exists(&keys[1]).await.unwrap(),
        "an expired claim is taken over"
    );
    let left: Vec<(String,)> = sqlx::query_as("SELECT object_key FROM storage_garbage")
        .fetch_all(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(left, [(keys[0].clone(),)]);
}
