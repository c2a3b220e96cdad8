//! Password hashing with Argon2id, on the blocking thread pool.
//!
//! Verifying against an unknown email still runs one full Argon2 verification (against a dummy
//! hash with the same parameters), so the answer takes the same time whether or not the email is
//! a member: login cannot be used to find out who has an account.
//!
//! Hashes run on a few dedicated threads (one per CPU), not on tokio's blocking pool: a login
//! storm then costs `cores × memory_kib` of memory, and leaves the async workers' share of the CPU
//! to the other requests. (On the blocking pool every new thread got its own malloc arena and kept
//! its 19 MiB after the hash: measured 350 MB after ten seconds of logins, BENCHMARKS.md.)

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::config::PasswordHashing;
use crate::error::ApiError;

/// Hashes and verifies passwords.
#[derive(Clone)]
pub struct PasswordHasher {
    argon: Argon2<'static>,
    /// The hashing threads' queue.
    jobs: std::sync::mpsc::SyncSender<Job>,
    /// A hash of a random password with the same parameters, verified when the member is unknown.
    dummy_hash: String,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("params", self.argon.params())
            .finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// A hasher with `cost`.
    pub fn new(cost: PasswordHashing) -> Result<PasswordHasher, argon2::Error> {
        let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let salt = SaltString::generate(&mut OsRng);
        let dummy_hash = argon
            .hash_password(super::tokens::random_urlsafe(16).as_bytes(), &salt)
            .map_err(|_| argon2::Error::OutputTooShort)?
            .to_string();
        Ok(PasswordHasher {
            argon,
            jobs: spawn_hashing_threads(),
            dummy_hash,
        })
    }

    /// Runs `work` on a hashing thread and waits for it without blocking the async workers.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = reply.send(work());
        });
        // The queue is bounded; waiting for room happens off the async workers.
        let jobs = self.jobs.clone();
        tokio::task::spawn_blocking(move || jobs.send(job))
            .await
            .map_err(ApiError::internal)?
            .map_err(|_| ApiError::internal("the password hashing threads are gone"))?;
        answer
            .await
            .map_err(|_| ApiError::internal("a password hashing thread dropped its job"))
    }

    /// The PHC string of `password` with a fresh salt.
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let argon = self.argon.clone();
        self.run(move || {
            let salt = SaltString::generate(&mut OsRng);
            argon
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
        })
        .await?
        .map_err(|e| ApiError::internal(e.to_string()))
    }

    /// Whether `password` matches `hash`; with no hash (unknown member) it does the same work and answers false.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, ApiError> {
        let argon = self.argon.clone();
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.clone());
        self.run(move || {
            let parsed = PasswordHash::new(&hash).map_err(|e| e.to_string())?;
            Ok::<bool, String>(argon.verify_password(password.as_bytes(), &parsed).is_ok())
        })
        .await?
        .map(|matched| known && matched)
        .map_err(ApiError::internal)
    }
}

/// Work for a hashing thread.
type Job = Box<dyn FnOnce() + Send>;

/// One hashing thread per CPU, sharing a bounded queue; they end when every sender is dropped.
fn spawn_hashing_threads() -> std::sync::mpsc::SyncSender<Job> {
    let threads = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    let (jobs, queue) = std::sync::mpsc::sync_channel::<Job>(256);
    let queue = std::sync::Arc::new(std::sync::Mutex::new(queue));
    for n in 0..threads {
        let queue = queue.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("argon2-{n}"))
            .spawn(move || loop {
                let job = {
                    let queue = queue
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    queue.recv()
                };
                match job {
                    Ok(job) => job(),
                    Err(_) => return,
                }
            });
        if let Err(error) = spawned {
            tracing::error!(%error, "could not start a password hashing thread");
        }
    }
    jobs
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: PasswordHashing = PasswordHashing {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
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
}
