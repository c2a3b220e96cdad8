//! Health of the dependencies: one [`Breaker`] per dependency, so that a dependency that is down
//! or hanging costs a request microseconds instead of a timeout.
//!
//! A breaker is *closed* (up) until a call fails the way an unreachable dependency fails (refused,
//! reset, timed out); then it *opens*: calls fail at once without trying, and a background task
//! probes the dependency every `retry` interval. The first probe that succeeds closes it again,
//! so the first request after recovery goes through without a restart. A dependency with a
//! `watch` interval is also probed while up (the database): an outage is then detected even when
//! no request is running, and a dependency that accepts connections but never answers is found
//! by the probe's timeout. Each breaker publishes `heart_dependency_up{dependency}` (1 or 0).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};

use crate::error::BoxError;

/// A probe of a dependency: `Ok` when it answered.
pub type ProbeFuture = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;
type Probe = Arc<dyn Fn() -> ProbeFuture + Send + Sync>;

/// When and how a breaker probes its dependency.
#[derive(Debug, Clone, Copy)]
pub struct ProbePolicy {
    /// How often to probe while the dependency is down.
    pub retry: Duration,
    /// How often to probe while it is up (`None`: only requests find an outage).
    pub watch: Option<Duration>,
    /// How long one probe may take before it counts as failed.
    pub timeout: Duration,
    /// How many failed probes in a row open the breaker while up.
    pub failures_to_open: u32,
    /// How many successful probes in a row close it while down (more than one for a dependency
    /// whose lossy path lets a single probe through: each closing costs the requests a timeout).
    pub successes_to_close: u32,
}

/// The health of one dependency. Cheap to clone.
#[derive(Clone)]
pub struct Breaker {
    inner: Arc<Inner>,
}

struct Inner {
    dependency: &'static str,
    up: AtomicBool,
    /// When the dependency last came back (or the breaker was made).
    since: Mutex<Instant>,
    /// `true` while up; requests in flight watch it.
    state: watch::Sender<bool>,
    /// Wakes the probing task when the breaker opens.
    wake: Arc<Notify>,
    probe: Probe,
    timeout: Duration,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The probing task holds only a weak reference: wake it so it sees it is alone and ends.
        self.wake.notify_one();
    }
}

impl std::fmt::Debug for Breaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Breaker")
            .field("dependency", &self.inner.dependency)
            .field("up", &self.is_up())
            .finish()
    }
}

impl Breaker {
    /// A closed breaker for `dependency` (`database`, `cache`, `storage`, `mail`) that probes with
    /// `probe` as `policy` says. Must be made inside the Tokio runtime (it spawns the prober).
    pub fn new(
        dependency: &'static str,
        policy: ProbePolicy,
        probe: impl Fn() -> ProbeFuture + Send + Sync + 'static,
    ) -> Breaker {
        let wake = Arc::new(Notify::new());
        let probe: Probe = Arc::new(probe);
        let inner = Arc::new(Inner {
            dependency,
            up: AtomicBool::new(true),
            since: Mutex::new(Instant::now()),
            state: watch::Sender::new(true),
            wake: wake.clone(),
            probe: probe.clone(),
            timeout: policy.timeout,
        });
        let breaker = Breaker { inner };
        breaker.publish(true);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(prober(Arc::downgrade(&breaker.inner), wake, policy, probe));
        }
        breaker
    }

    /// The dependency's name.
    pub fn dependency(&self) -> &'static str {
        self.inner.dependency
    }

    /// Whether calls may go to the dependency.
    pub fn is_up(&self) -> bool {
        self.inner.up.load(Ordering::Acquire)
    }

    /// When the dependency last came back up (or the breaker was made): a connection opened
    /// before that may be dead.
    pub fn up_since(&self) -> Instant {
        *self
            .inner
            .since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Probes the dependency now (for `/readyz`): up when the breaker is closed and the probe
    /// answers within its timeout. Does not open the breaker by itself.
    pub async fn check(&self) -> Result<(), BoxError> {
        if !self.is_up() {
            return Err(format!("{} is down (breaker open)", self.inner.dependency).into());
        }
        match tokio::time::timeout(self.inner.timeout, (self.inner.probe)()).await {
            Ok(outcome) => outcome,
            Err(_) => Err(format!("no answer within {:?}", self.inner.timeout).into()),
        }
    }

    /// A call failed as an unreachable dependency fails: open the breaker (calls fail fast) and
    /// let the prober find when it is back.
    pub fn trip(&self, why: &str) {
        if self.inner.up.swap(false, Ordering::AcqRel) {
            tracing::warn!(
                dependency = self.inner.dependency,
                why,
                "dependency down: failing fast until a probe succeeds"
            );
            metrics::counter!("heart_dependency_trips_total", "dependency" => self.inner.dependency)
                .increment(1);
            self.publish(false);
            self.inner.state.send_replace(false);
            self.inner.wake.notify_one();
        }
    }

    fn close(&self) {
        if self.inner.up.load(Ordering::Acquire) {
            // A probe that succeeds while up changes nothing: `since` is when the dependency came
            // back, and the database pool drops every connection opened before it. (Until
            // December each watch probe moved it, so pooled MySQL connections were thrown away
            // and reopened every 500 ms under load.)
            return;
        }
        *self
            .inner
            .since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
        if !self.inner.up.swap(true, Ordering::AcqRel) {
            tracing::info!(dependency = self.inner.dependency, "dependency up again");
            self.publish(true);
            self.inner.state.send_replace(true);
        }
    }

    /// Sets `heart_dependency_up{dependency}`.
    pub fn publish(&self, up: bool) {
        metrics::gauge!("heart_dependency_up", "dependency" => self.inner.dependency).set(if up {
            1.0
        } else {
            0.0
        });
    }

    /// Resolves when the breaker opens (at once if it is open).
    pub fn opened(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut state = self.inner.state.subscribe();
        async move {
            let _ = state.wait_for(|up| !*up).await;
        }
    }
}

/// Probes while the breaker lives: every `watch` while up (opening it after
/// `failures_to_open` failures in a row), every `retry` while down (closing it on success).
async fn prober(inner: Weak<Inner>, wake: Arc<Notify>, policy: ProbePolicy, probe: Probe) {
    let (mut failures, mut successes) = (0, 0);
    loop {
        let up = match inner.upgrade() {
            Some(inner) => inner.up.load(Ordering::Acquire),
            None => return,
        };
        match (up, policy.watch) {
            (true, None) => {
                wake.notified().await;
                continue;
            }
            (true, Some(every)) => {
                // After a failed probe, the next comes soon: an outage is confirmed quickly.
                let every = if failures > 0 { policy.retry } else { every };
                tokio::select! {
                    () = tokio::time::sleep(every) => {}
                    () = wake.notified() => continue,
                }
            }
            (false, _) => tokio::time::sleep(policy.retry).await,
        }
        let outcome = match tokio::time::timeout(policy.timeout, probe()).await {
            Ok(outcome) => outcome,
            Err(_) => Err(format!("no answer within {:?}", policy.timeout).into()),
        };
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let breaker = Breaker { inner };
        match outcome {
            Ok(()) => {
                failures = 0;
                successes += 1;
                if breaker.is_up() || successes >= policy.successes_to_close {
                    successes = 0;
                    breaker.close();
                }
            }
            Err(e) if breaker.is_up() => {
                successes = 0;
                failures += 1;
                tracing::warn!(dependency = breaker.dependency(), failures, error = %crate::error::cause_chain(e.as_ref()), "probe failed");
                if failures >= policy.failures_to_open {
                    failures = 0;
                    breaker.trip("probe failed");
                }
            }
            Err(e) => {
                successes = 0;
                tracing::debug!(dependency = breaker.dependency(), error = %crate::error::cause_chain(e.as_ref()), "still down");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    fn policy() -> ProbePolicy {
        ProbePolicy {
            retry: Duration::from_millis(20),
            watch: Some(Duration::from_millis(20)),
            timeout: Duration::from_millis(50),
            failures_to_open: 2,
            successes_to_close: 1,
        }
    }

    #[tokio::test]
    async fn a_tripped_breaker_fails_fast_until_a_probe_succeeds() {
        let healthy = Arc::new(AtomicBool::new(true));
        let probes = Arc::new(AtomicU32::new(0));
        let (h, p) = (healthy.clone(), probes.clone());
        let breaker = Breaker::new("database", policy(), move || -> ProbeFuture {
            let ok = h.load(Ordering::SeqCst);
            p.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                if ok {
                    Ok::<(), BoxError>(())
                } else {
                    Err("refused".into())
                }
            })
        });
        let before = breaker.up_since();
        healthy.store(false, Ordering::SeqCst);
        breaker.trip("test");
        assert!(!breaker.is_up());
        tokio::time::timeout(Duration::from_millis(100), breaker.opened())
            .await
            .expect("opened resolves while open");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!breaker.is_up(), "failed probes keep it open");
        healthy.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(2);
        while !breaker.is_up() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(breaker.is_up(), "a successful probe closes it");
        assert!(breaker.up_since() > before);
    }

    /// `up_since` is when the dependency came back, not the last successful probe: the database
    /// pool drops connections opened before it.
    #[tokio::test]
    async fn probes_that_succeed_while_up_do_not_move_up_since() {
        let probes = Arc::new(AtomicU32::new(0));
        let p = probes.clone();
        let breaker = Breaker::new("database", policy(), move || -> ProbeFuture {
            p.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Ok::<(), BoxError>(()) })
        });
        let since = breaker.up_since();
        let deadline = Instant::now() + Duration::from_secs(2);
        while probes.load(Ordering::SeqCst) < 3 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(probes.load(Ordering::SeqCst) >= 3, "the watch probes ran");
        assert_eq!(breaker.up_since(), since);
    }

    /// With `successes_to_close: 3`, one probe let through by a lossy path does not close it.
    #[tokio::test]
    async fn a_breaker_needing_three_successes_stays_open_on_one() {
        let answers = Arc::new(std::sync::Mutex::new(vec![true, true, true, false, true]));
        let a = answers.clone();
        let policy = ProbePolicy {
            successes_to_close: 3,
            ..policy()
        };
        let breaker = Breaker::new("cache", policy, move || -> ProbeFuture {
            let ok = a.lock().unwrap().pop().unwrap_or(true);
            Box::pin(async move {
                if ok {
                    Ok::<(), BoxError>(())
                } else {
                    Err("lost".into())
                }
            })
        });
        // Popped from the end: the probes answer ok, fail, ok, ok, ok.
        breaker.trip("test");
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut seen_open_after_one = false;
        while !breaker.is_up() && Instant::now() < deadline {
            if answers.lock().unwrap().len() <= 3 {
                seen_open_after_one = true;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(seen_open_after_one, "still open after the first success");
        assert!(breaker.is_up(), "three successes in a row close it");
        assert!(
            answers.lock().unwrap().is_empty(),
            "it took all five probes"
        );
    }

    #[tokio::test]
    async fn a_hanging_dependency_opens_the_breaker_after_failed_watch_probes() {
        let breaker = Breaker::new("database", policy(), || -> ProbeFuture {
            Box::pin(async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok::<(), BoxError>(())
            })
        });
        assert!(breaker.is_up());
        tokio::time::timeout(Duration::from_secs(2), breaker.opened())
            .await
            .expect("the watch probes time out and open the breaker");
        assert!(!breaker.is_up());
    }

    #[test]
    fn the_gauge_says_up_or_down() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = runtime.enter();
        metrics::with_local_recorder(&recorder, || {
            let breaker = Breaker::new("cache", policy(), || -> ProbeFuture {
                Box::pin(async { Ok::<(), BoxError>(()) })
            });
            assert!(handle
                .render()
                .contains("heart_dependency_up{dependency=\"cache\"} 1"));
            breaker.trip("test");
            assert!(handle
                .render()
                .contains("heart_dependency_up{dependency=\"cache\"} 0"));
        });
    }
}
