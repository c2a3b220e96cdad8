//! Deadlocks broken by the database, and running the transaction they failed again.

use std::future::Future;
use std::time::Duration;

pub use crate::error::is_deadlock;

/// Runs the short transaction `attempt` again, up to [`DEADLOCK_TRIES`] times in all, while the
/// database breaks a deadlock by failing it. Two requests that each delete a row that is not there
/// (InnoDB gap locks, which do not exclude each other) and then insert into the same gap wait for
/// each other, and InnoDB fails one: a member's password-reset mail was lost that way when a
/// stranger's reset ran at the same moment (1213 in the logs).
pub async fn retrying_deadlocks<T, F, Fut>(mut attempt: F) -> Result<T, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, sqlx::Error>>,
{
    let mut tries = 1;
    loop {
        match attempt().await {
            Err(error) if tries < DEADLOCK_TRIES && is_deadlock(&error) => {
                metrics::counter!("heart_db_deadlocks_retried_total").increment(1);
                tracing::warn!(tries, "database deadlock: the transaction runs again");
                // The winner holds its locks until it commits, so running again at once simply
                // waits for it; a few random milliseconds keep two losers apart.
                let jitter = u64::from(rand::random::<u8>() % 4);
                tokio::time::sleep(Duration::from_millis(jitter)).await;
                tries += 1;
            }
            answer => return answer,
        }
    }
}

/// How many times [`retrying_deadlocks`] runs a transaction at most.
pub const DEADLOCK_TRIES: u64 = 5;

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// What MySQL answers a transaction it fails to break a deadlock.
    #[derive(Debug)]
    struct Deadlock;

    impl std::fmt::Display for Deadlock {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("1213 (40001): Deadlock found when trying to get lock")
        }
    }

    impl std::error::Error for Deadlock {}

    impl sqlx::error::DatabaseError for Deadlock {
        fn message(&self) -> &str {
            "Deadlock found when trying to get lock; try restarting transaction"
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed("40001"))
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    fn deadlock() -> sqlx::Error {
        sqlx::Error::Database(Box::new(Deadlock))
    }

    #[tokio::test]
    async fn a_deadlocked_transaction_runs_again_and_other_errors_do_not() {
        let calls = AtomicU64::new(0);
        let answer = retrying_deadlocks(|| async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 | 1 => Err(deadlock()),
                _ => Ok(7),
            }
        })
        .await;
        assert_eq!(answer.unwrap(), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 3);

        let calls = AtomicU64::new(0);
        let answer: Result<(), _> = retrying_deadlocks(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(deadlock())
        })
        .await;
        assert!(is_deadlock(&answer.unwrap_err()));
        assert_eq!(calls.load(Ordering::SeqCst), DEADLOCK_TRIES);

        let calls = AtomicU64::new(0);
        let answer: Result<(), _> = retrying_deadlocks(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(sqlx::Error::RowNotFound)
        })
        .await;
        assert!(matches!(answer, Err(sqlx::Error::RowNotFound)));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    /// A deadlock that still fails after the retries (or in a transaction without them) is a
    /// `GLOBAL_503` the client may retry, never a `500`.
    #[test]
    fn a_deadlock_left_over_is_a_503_with_retry_after() {
        use axum::response::IntoResponse as _;
        let response = crate::error::ApiError::from(deadlock()).into_response();
        assert_eq!(response.status(), 503);
        assert!(response.headers().contains_key("retry-after"));
        let other = crate::error::ApiError::from(sqlx::Error::RowNotFound).into_response();
        assert_eq!(other.status(), 500);
    }
}
