//! Email verification codes: the `email_verifications` table.
//!
//! A code is 8 characters `[A-Za-z0-9]` from the OS CSPRNG, stored only as a SHA-256 hash,
//! valid for [`CODE_TTL_SECS`]; a resend replaces it (but keeps a valid confirmation). A correct confirmation marks the email
//! verified for [`VERIFIED_TTL_SECS`], which join requires. After [`MAX_FAILED_ATTEMPTS`] wrong
//! codes the code is discarded and a new one must be requested.

use rand::Rng;
use sqlx::FromRow;

use super::tokens::{code_matches, sha256_hex};
use crate::db::Db;

/// How long a code is valid after it was sent.
pub const CODE_TTL_SECS: i64 = 5 * 60;
/// How long a confirmed email may be used to join.
pub const VERIFIED_TTL_SECS: i64 = 30 * 60;
/// Wrong codes allowed before the code is discarded.
pub const MAX_FAILED_ATTEMPTS: i64 = 5;
/// Length of a code.
pub const CODE_LEN: usize = 8;

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A new random code.
pub fn new_code() -> String {
    let mut rng = rand::rngs::OsRng;
    (0..CODE_LEN)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

/// A verification row.
#[derive(Debug, Clone, FromRow)]
pub struct Verification {
    /// SHA-256 of the code.
    pub code_hash: String,
    /// When the code stops working.
    pub expires_at: i64,
    /// Wrong codes so far.
    pub failed_attempts: i64,
    /// Until when the email counts as verified, once confirmed.
    pub verified_until: Option<i64>,
}

impl Verification {
    /// Whether `code` is this row's code (constant-time comparison of the hashes).
    pub fn matches(&self, code: &str) -> bool {
        code_matches(code, &self.code_hash)
    }
}

/// Stores a new code for `email`, replacing any earlier one. A confirmation still valid is kept
/// until join: anyone may ask for a code to be sent to any address, and a resend must not undo
/// the owner's confirmation (their join would answer `AUTH_012`).
pub async fn replace_code(db: &Db, email: &str, code: &str, now: i64) -> Result<(), sqlx::Error> {
    crate::db::retrying_deadlocks(|| replace_code_once(db, email, code, now)).await
}

async fn replace_code_once(db: &Db, email: &str, code: &str, now: i64) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    let earlier: Option<(Option<i64>,)> =
        sqlx::query_as("SELECT verified_until FROM email_verifications WHERE email = ?")
            .bind(email)
            .fetch_optional(&mut *tx)
            .await?;
    let verified_until = earlier
        .and_then(|(until,)| until)
        .filter(|until| *until > now);
    sqlx::query("DELETE FROM email_verifications WHERE email = ?")
        .bind(email)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO email_verifications (email, code_hash, sent_at, expires_at, failed_attempts, verified_until) VALUES (?, ?, ?, ?, 0, ?)",
    )
    .bind(email)
    .bind(sha256_hex(code))
    .bind(now)
    .bind(now + CODE_TTL_SECS)
    .bind(verified_until)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Withdraws the code of `email` that could not be mailed: the row goes, unless it carries a
/// confirmation, which stays (the code itself expires).
pub async fn withdraw_code(db: &Db, email: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM email_verifications WHERE email = ? AND verified_until IS NULL")
        .bind(email)
        .execute(&db.pool)
        .await?;
    sqlx::query("UPDATE email_verifications SET expires_at = 0, code_hash = '' WHERE email = ?")
        .bind(email)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// The verification row of `email`.
pub async fn find(db: &Db, email: &str) -> Result<Option<Verification>, sqlx::Error> {
    sqlx::query_as("SELECT code_hash, expires_at, failed_attempts, verified_until FROM email_verifications WHERE email = ?")
        .bind(email)
        .fetch_optional(&db.pool)
        .await
}

/// Counts a wrong code; discards the code once the attempts are used up. Returns whether it was discarded.
pub async fn record_failure(db: &Db, email: &str) -> Result<bool, sqlx::Error> {
    sqlx::query(
        "UPDATE email_verifications SET failed_attempts = failed_attempts + 1 WHERE email = ?",
    )
    .bind(email)
    .execute(&db.pool)
    .await?;
    let discarded = sqlx::query("DELETE FROM email_verifications WHERE email = ? AND failed_attempts >= ? AND verified_until IS NULL")
        .bind(email)
        .bind(MAX_FAILED_ATTEMPTS)
        .execute(&db.pool)
        .await?;
    Ok(discarded.rows_affected() > 0)
}

/// Marks `email` verified until `now +` [`VERIFIED_TTL_SECS`].
pub async fn mark_verified(db: &Db, email: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE email_verifications SET verified_until = ?, failed_attempts = 0 WHERE email = ?",
    )
    .bind(now + VERIFIED_TTL_SECS)
    .bind(email)
    .execute(&db.pool)
    .await
    .map(|_| ())
}

/// Removes the row of `email` (after join, or when the mail could not be sent).
pub async fn delete<'c, E>(executor: E, email: &str) -> Result<(), sqlx::Error>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    sqlx::query("DELETE FROM email_verifications WHERE email = ?")
        .bind(email)
        .execute(executor)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_eight_alphanumerics_and_vary() {
        let codes: std::collections::HashSet<String> = (0..200).map(|_| new_code()).collect();
        assert!(codes.len() > 195);
        for code in &codes {
            assert_eq!(code.len(), CODE_LEN);
            assert!(code.chars().all(|c| c.is_ascii_alphanumeric()));
        }
    }

    #[test]
    fn codes_use_both_cases_and_digits() {
        let all: String = (0..200).map(|_| new_code()).collect();
        assert!(all.chars().any(|c| c.is_ascii_lowercase()));
        assert!(all.chars().any(|c| c.is_ascii_uppercase()));
        assert!(all.chars().any(|c| c.is_ascii_digit()));
    }

    #[test]
    fn matching_is_case_sensitive() {
        let v = Verification {
            code_hash: sha256_hex("AbCd1234"),
            expires_at: 0,
            failed_attempts: 0,
            verified_until: None,
        };
        assert!(v.matches("AbCd1234"));
        assert!(!v.matches("abcd1234"));
    }
}
