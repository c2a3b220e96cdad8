//! Password hashing with Argon2id, on the blocking thread pool.
//!
//! Verifying against an unknown email still runs one full Argon2 verification (against a dummy
//! hash with the same parameters), so the answer takes the same time whether or not the email is
//! a member: login cannot be used to find out who has an account.

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
        Ok(PasswordHasher { argon, dummy_hash })
    }

    /// The PHC string of `password` with a fresh salt.
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let argon = self.argon.clone();
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            argon
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
        })
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| ApiError::internal(e.to_string()))
    }

    /// Whether `password` matches `hash`; with no hash (unknown member) it does the same work and answers false.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, ApiError> {
        let argon = self.argon.clone();
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.clone());
        tokio::task::spawn_blocking(move || {
            let parsed = PasswordHash::new(&hash).map_err(|e| e.to_string())?;
            Ok::<bool, String>(argon.verify_password(password.as_bytes(), &parsed).is_ok())
        })
        .await
        .map_err(ApiError::internal)?
        .map(|matched| known && matched)
        .map_err(ApiError::internal)
    }
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
