//! The health of the edge's Redis: a [`Breaker`] that is *closed* (up) until a call fails the way
//! an unreachable Redis fails (refused, reset, no answer in time), then *open*: calls fail at once
//! without trying, so a request costs microseconds instead of a timeout, until a probe succeeds.
//! Who probes is the owner's business ([`super::RedisStore`] probes in the background).
//!
//! Published as `heart_edge_redis_up` (1 or 0) and `heart_edge_redis_trips_total`.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;

/// Up or down, and a way for calls in flight to learn that it went down.
#[derive(Debug)]
pub struct Breaker {
    up: AtomicBool,
    /// `true` while up; calls in flight watch it.
    state: watch::Sender<bool>,
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker::new()
    }
}

impl Breaker {
    /// A closed breaker.
    pub fn new() -> Breaker {
        publish(true);
        Breaker {
            up: AtomicBool::new(true),
            state: watch::Sender::new(true),
        }
    }

    /// Whether calls may go to Redis.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// A call failed as an unreachable Redis fails: open the breaker. `true` for the call that
    /// opened it (the one that should start probing), `false` if it was open already.
    pub fn trip(&self, why: &str) -> bool {
        if !self.up.swap(false, Ordering::AcqRel) {
            return false;
        }
        tracing::warn!(
            why,
            "edge Redis down: requests go on without it until a probe succeeds"
        );
        metrics::counter!("heart_edge_redis_trips_total").increment(1);
        publish(false);
        self.state.send_replace(false);
        true
    }

    /// A probe succeeded: calls go to Redis again.
    pub fn close(&self) {
        if !self.up.swap(true, Ordering::AcqRel) {
            tracing::info!("edge Redis up again");
            publish(true);
            self.state.send_replace(true);
        }
    }

    /// Resolves when the breaker opens (at once if it is open).
    pub fn opened(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut state = self.state.subscribe();
        async move {
            let _ = state.wait_for(|up| !*up).await;
        }
    }
}

fn publish(up: bool) {
    metrics::gauge!("heart_edge_redis_up").set(if up { 1.0 } else { 0.0 });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn only_the_first_trip_opens_and_calls_in_flight_learn_it() {
        let breaker = Breaker::new();
        assert!(breaker.is_up());
        let waiting = tokio::spawn(breaker.opened());
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "opened() waits while closed");
        assert!(breaker.trip("test"));
        assert!(!breaker.trip("again"), "only the first trip starts a probe");
        assert!(!breaker.is_up());
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("a call in flight is released when the breaker opens")
            .unwrap();
        tokio::time::timeout(Duration::from_millis(100), breaker.opened())
            .await
            .expect("opened() resolves at once while open");
        breaker.close();
        assert!(breaker.is_up());
        assert!(breaker.trip("after recovery"), "it can open again");
    }
}
