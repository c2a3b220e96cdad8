//! Password hashing with Argon2id, on a small bounded pool of dedicated threads.
//!
//! Verifying against an unknown email still runs one full Argon2 verification (against a dummy
//! hash with the same parameters), so the answer takes the same time whether or not the email is
//! a member: login cannot be used to find out who has an account.
//!
//! Bounded in CPU: hashes run on `cores − 1` dedicated threads (at least one), never on every core,
//! and at a lower priority (nice +10), each hashing at most `HEART_PASSWORD_HASHING_CPU_PERCENT`
//! (50) of its time (it rests after each hash: a 19 MiB hash streaming through the cache slows
//! everything else on the machine while it runs, whatever its priority), so a login storm leaves
//! the CPU to the feeds first. Bounded
//! in waiting: at most [`QUEUE_PER_THREAD`] hashes per thread wait; past that a login is answered
//! `GLOBAL_503` with `Retry-After` at once instead of piling up, and a login whose hash has not
//! come back within [`QUEUE_WAIT`] (a CPU busy with requests) gets the same answer then; its hash
//! is skipped if no thread has begun it. Bounded in memory: each thread
//! hashes into its own Argon2 memory (19 MiB at the recommended cost), allocated once and reused,
//! so a storm costs `threads × memory_kib` and no more, and a thread idle for a second frees it.
//! (On tokio's blocking pool every new thread got its own malloc arena and kept its 19 MiB after
//! the hash: 350–598 MB after a storm, BENCHMARKS.md.)

use std::sync::mpsc::{SyncSender, TrySendError};

use argon2::password_hash::{rand_core::OsRng, Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use heart_shared::ErrorCode;

use super::hashing_threads::{spawn_hashing_threads, with_memory, Job};
use crate::config::PasswordHashing;
use crate::error::ApiError;

/// Hashes that may wait per hashing thread before logins are refused.
pub const QUEUE_PER_THREAD: usize = 8;

/// The `Retry-After` of a login refused because the queue is full.
pub const RETRY_AFTER_SECS: u32 = 1;

/// How long a login waits for its hash (queue and hashing) before it is answered `GLOBAL_503`.
pub const QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Hashes and verifies passwords.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    /// The hashing threads' queue.
    jobs: SyncSender<Job>,
    /// A hash of a random password with the same parameters, verified when the member is unknown.
    dummy_hash: String,
    /// How long a caller waits for its hash.
    wait: std::time::Duration,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

/// Why a hash could not be made or checked.
#[derive(Debug, thiserror::Error)]
enum HashError {
    #[error("argon2: {0}")]
    Argon2(#[from] argon2::Error),
    #[error("password hash: {0}")]
    Phc(#[from] argon2::password_hash::Error),
    #[error("the stored hash has no salt or no output")]
    Incomplete,
}

/// Argon2 of `password` and raw `salt` into `out`, in this thread's reused memory.
fn hash_into(
    argon: &Argon2<'_>,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    with_memory(params.block_count(), |memory| {
        argon.hash_password_into_with_memory(password, salt, out, memory)
    })
}

/// The PHC string of `password` with a fresh salt.
fn hash_phc(params: &Params, password: &[u8]) -> Result<String, HashError> {
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let raw_salt = salt.as_salt().decode_b64(&mut salt_bytes)?;
    let output = Output::init_with(
        params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN),
        |out| {
            hash_into(&argon, params, password, raw_salt, out)
                .map_err(argon2::password_hash::Error::from)
        },
    )?;
    Ok(PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params)?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    }
    .to_string())
}

/// Whether `password` matches the PHC string `hash` (with the parameters written in it).
fn verify_phc(password: &[u8], hash: &str) -> Result<bool, HashError> {
    let parsed = PasswordHash::new(hash)?;
    let params = Params::try_from(&parsed)?;
    let algorithm = Algorithm::try_from(parsed.algorithm)?;
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()?
        .unwrap_or_default();
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Err(HashError::Incomplete);
    };
    let mut salt_bytes = [0u8; 64];
    let raw_salt = salt.decode_b64(&mut salt_bytes)?;
    let argon = Argon2::new(algorithm, version, params.clone());
    let computed = Output::init_with(expected.len(), |out| {
        hash_into(&argon, &params, password, raw_salt, out)
            .map_err(argon2::password_hash::Error::from)
    })?;
    // `Output`'s equality is constant-time.
    Ok(computed == expected)
}

impl PasswordHasher {
    /// A hasher with `cost`, on `cores − 1` threads (at least one).
    pub fn new(cost: PasswordHashing) -> Result<PasswordHasher, argon2::Error> {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        let threads = cores.saturating_sub(1).max(1);
        PasswordHasher::with_pool(cost, threads, threads * QUEUE_PER_THREAD)
    }

    /// A hasher with `cost` on `threads` threads, with at most `queue` hashes waiting.
    pub fn with_pool(
        cost: PasswordHashing,
        threads: usize,
        queue: usize,
    ) -> Result<PasswordHasher, argon2::Error> {
        let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)?;
        let dummy_hash = hash_phc(&params, super::tokens::random_urlsafe(16).as_bytes())
            .map_err(|_| argon2::Error::OutputTooShort)?;
        Ok(PasswordHasher {
            params,
            jobs: spawn_hashing_threads(threads.max(1), queue, cost.cpu_percent),
            dummy_hash,
            wait: QUEUE_WAIT,
        })
    }

    /// This hasher with callers waiting at most `wait` for their hash.
    #[cfg(test)]
    fn waiting_at_most(self, wait: std::time::Duration) -> PasswordHasher {
        PasswordHasher { wait, ..self }
    }

    /// Runs `work` on a hashing thread and waits for it without blocking the async workers;
    /// `GLOBAL_503` with `Retry-After` at once when the queue is full, or once the wait is over
    /// (the work is then skipped if no thread has begun it).
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let busy = || {
            metrics::counter!("heart_password_hashes_refused_total").increment(1);
            ApiError::Busy {
                what: "password hashing",
                code: ErrorCode::DependencyUnavailable,
                retry_after_secs: RETRY_AFTER_SECS,
            }
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            // Nobody waits any more (gone, or refused after the wait): no hash for nobody.
            if !reply.is_closed() {
                let _ = reply.send(work());
            }
        });
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(busy()),
            Err(TrySendError::Disconnected(_)) => {
                return Err(ApiError::internal("the password hashing threads are gone"))
            }
        }
        match tokio::time::timeout(self.wait, answer).await {
            Ok(answer) => {
                answer.map_err(|_| ApiError::internal("a password hashing thread dropped its job"))
            }
            Err(_) => Err(busy()),
        }
    }

    /// The PHC string of `password` with a fresh salt.
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let params = self.params.clone();
        self.run(move || hash_phc(&params, password.as_bytes()))
            .await?
            .map_err(ApiError::internal)
    }

    /// Whether `password` matches `hash`; with no hash (unknown member) it does the same work and answers false.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, ApiError> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.clone());
        self.run(move || verify_phc(password.as_bytes(), &hash))
            .await?
            .map(|matched| known && matched)
            .map_err(ApiError::internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_os = "linux")]
    use crate::auth::hashing_threads::{current_nice, nicer};
    use crate::auth::hashing_threads::{memory_held, IDLE_RELEASE};

    const CHEAP: PasswordHashing = PasswordHashing {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
        cpu_percent: 100,
    };

    #[tokio::test]
    async fn hashes_verify_and_differ_by_salt() {
        let hasher = PasswordHasher::new(CHEAP).unwrap();
        let a = hasher.hash("s3cret-pass".into()).await.unwrap();
        let b = hasher.hash("s3cret-pass".into()).await.unwrap();
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b);
        assert!(hasher
            .verify("s3cret-pass".into(), Some(a.clone()))
            .await
            .unwrap());
        assert!(!hasher.verify("wrong-pass1".into(), Some(a)).await.unwrap());
    }

    #[tokio::test]
    async fn unknown_member_never_verifies() {
        let hasher = PasswordHasher::new(CHEAP).unwrap();
        assert!(!hasher.verify(String::new(), None).await.unwrap());
        assert!(!hasher.verify("anything1".into(), None).await.unwrap());
    }

    /// Hashes made here verify with the argon2 crate's own verifier and the other way round, so
    /// every stored hash still verifies.
    #[tokio::test]
    async fn hashes_match_the_argon2_crates_own() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let hasher = PasswordHasher::new(CHEAP).unwrap();
        let ours = hasher.hash("s3cret-pass".into()).await.unwrap();
        let params =
            Params::new(CHEAP.memory_kib, CHEAP.iterations, CHEAP.parallelism, None).unwrap();
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        assert!(argon
            .verify_password(b"s3cret-pass", &PasswordHash::new(&ours).unwrap())
            .is_ok());
        let theirs = argon
            .hash_password(b"other-pass1", &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string();
        assert!(hasher
            .verify("other-pass1".into(), Some(theirs.clone()))
            .await
            .unwrap());
        assert!(!hasher
            .verify("other-pass2".into(), Some(theirs))
            .await
            .unwrap());
    }

    /// Hashing threads run at a lower priority than the request workers, and give their Argon2
    /// memory back once idle.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashing_threads_are_nice_and_release_memory_when_idle() {
        let hasher = PasswordHasher::with_pool(CHEAP, 1, 4).unwrap();
        let nice = hasher.run(current_nice).await.unwrap();
        assert_eq!(nice, nicer(current_nice()));
        assert!(
            nice > current_nice() || nice == 19,
            "hashing at nice {nice}"
        );
        hasher.hash("s3cret-pass".into()).await.unwrap();
        let held = hasher.run(memory_held).await.unwrap();
        assert!(held >= 1024, "{held} blocks held right after a hash");
        let deadline = std::time::Instant::now() + IDLE_RELEASE * 10;
        loop {
            tokio::time::sleep(IDLE_RELEASE + IDLE_RELEASE / 2).await;
            // Asking costs no memory: the job only reads the capacity.
            let held = hasher.run(memory_held).await.unwrap();
            if held == 0 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{held} blocks still held after {:?} idle",
                IDLE_RELEASE * 10
            );
        }
    }

    /// With one thread and a queue of two, a burst of logins gets at most three hashes going and
    /// the rest answered `GLOBAL_503` with `Retry-After` without waiting for any hash.
    #[tokio::test]
    async fn a_full_queue_refuses_at_once_with_retry_after() {
        use axum::response::IntoResponse as _;
        const SLOW: PasswordHashing = PasswordHashing {
            memory_kib: 8 * 1024,
            iterations: 20,
            parallelism: 1,
            cpu_percent: 100,
        };
        let hasher = PasswordHasher::with_pool(SLOW, 1, 2).unwrap();
        let started = std::time::Instant::now();
        let attempts: Vec<_> = (0..8)
            .map(|_| {
                let hasher = hasher.clone();
                tokio::spawn(async move {
                    let answer = hasher.verify("whatever1".into(), None).await;
                    (answer, started.elapsed())
                })
            })
            .collect();
        let mut refused = Vec::new();
        let mut answered = 0;
        for attempt in attempts {
            match attempt.await.unwrap() {
                (Ok(_), _) => answered += 1,
                (Err(error), took) => refused.push((error.into_response(), took)),
            }
        }
        assert!((1..=3).contains(&answered), "{answered} hashed");
        assert_eq!(refused.len(), 8 - answered);
        let slowest_hash = started.elapsed();
        for (response, took) in refused {
            assert_eq!(response.status(), 503);
            assert_eq!(response.headers()["retry-after"], "1");
            assert!(
                took * 2 < slowest_hash,
                "refused after {took:?} of {slowest_hash:?}"
            );
        }
    }

    /// A login whose hash has not come back within the wait is answered `GLOBAL_503` with
    /// `Retry-After` then, and its hash is skipped when a thread gets to it.
    #[tokio::test]
    async fn a_login_waits_a_bounded_time_and_its_hash_is_then_skipped() {
        use axum::response::IntoResponse as _;
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        use std::time::{Duration, Instant};
        let wait = Duration::from_millis(200);
        let hasher = PasswordHasher::with_pool(CHEAP, 1, 4)
            .unwrap()
            .waiting_at_most(wait);
        // The one thread, busy until released.
        let (release, released) = std::sync::mpsc::channel::<()>();
        let busy = Arc::new(AtomicBool::new(false));
        let blocker = tokio::spawn({
            let (hasher, busy) = (hasher.clone(), busy.clone());
            async move {
                hasher
                    .run(move || {
                        busy.store(true, Ordering::SeqCst);
                        released.recv_timeout(Duration::from_secs(30)).is_ok()
                    })
                    .await
            }
        });
        while !busy.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }

        let ran = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let answer = hasher
            .run({
                let ran = ran.clone();
                move || ran.store(true, Ordering::SeqCst)
            })
            .await;
        let waited = started.elapsed();
        let response = answer
            .expect_err("answered while the thread was busy")
            .into_response();
        assert_eq!(
            response.status(),
            axum::http::StatusCode::SERVICE_UNAVAILABLE
        );
        assert!(response.headers().contains_key("retry-after"));
        assert!(waited >= wait, "refused after {waited:?}, before the wait");
        assert!(waited < wait * 10, "refused only after {waited:?}");

        release.send(()).unwrap();
        // The blocker gave up waiting too; the thread, freed, skips the refused job and runs on.
        assert!(blocker.await.unwrap().is_err());
        let patient = hasher.clone().waiting_at_most(Duration::from_secs(30));
        assert!(patient.run(|| true).await.unwrap());
        assert!(
            !ran.load(Ordering::SeqCst),
            "the refused login was hashed anyway"
        );
    }
}
