//! Password reset codes: the `password_resets` table.
//!
//! A code is 8 characters like a verification code, stored only as a SHA-256 hash, valid for
//! [`RESET_CODE_TTL_SECS`], used once; [`MAX_FAILED_ATTEMPTS`] wrong codes burn it. Rows are keyed
//! by email for members and strangers alike (a stranger's code is never mailed), so a wrong code
//! answers the same whether or not the address belongs to a member.

use sqlx::FromRow;

use super::tokens::{code_matches, sha256_hex};
use super::verification::MAX_FAILED_ATTEMPTS;
use crate::db::Db;

/// How long a reset code is valid after it was sent.
pub const RESET_CODE_TTL_SECS: i64 = 10 * 60;

/// A reset row.
#[derive(Debug, Clone, FromRow)]
pub struct ResetCode {
    /// SHA-256 of the code.
    pub code_hash: String,
    /// When the code stops working.
    pub expires_at: i64,
}

impl ResetCode {
    /// Whether `code` is this row's code (constant-time comparison of the hashes).
    pub fn matches(&self, code: &str) -> bool {
        code_matches(code, &self.code_hash)
    }
}

/// Stores `code` for `email`, replacing an earlier one; rows that expired are dropped on the way,
/// so requests for addresses nobody owns do not pile up.
pub async fn replace(db: &Db, email: &str, code: &str, now: i64) -> Result<(), sqlx::Error> {
    crate::db::retrying_deadlocks(|| replace_once(db, email, code, now)).await
}

async fn replace_once(db: &Db, email: &str, code: &str, now: i64) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM password_resets WHERE email = ? OR expires_at < ?")
        .bind(email)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO password_resets (email, code_hash, sent_at, expires_at, failed_attempts) VALUES (?, ?, ?, ?, 0)",
    )
    .bind(email)
    .bind(sha256_hex(code))
    .bind(now)
    .bind(now + RESET_CODE_TTL_SECS)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// The reset row of `email`.
pub async fn find(db: &Db, email: &str) -> Result<Option<ResetCode>, sqlx::Error> {
    sqlx::query_as("SELECT code_hash, expires_at FROM password_resets WHERE email = ?")
        .bind(email)
        .fetch_optional(&db.pool)
        .await
}

/// Counts a wrong code; burns it once the attempts are used up.
pub async fn record_failure(db: &Db, email: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE password_resets SET failed_attempts = failed_attempts + 1 WHERE email = ?")
        .bind(email)
        .execute(&db.pool)
        .await?;
    sqlx::query("DELETE FROM password_resets WHERE email = ? AND failed_attempts >= ?")
        .bind(email)
        .bind(MAX_FAILED_ATTEMPTS)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Uses up the code `code_hash` of `email`; false when another request used it first.
pub async fn consume<'c, E>(executor: E, email: &str, code_hash: &str) -> Result<bool, sqlx::Error>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    let deleted = sqlx::query("DELETE FROM password_resets WHERE email = ? AND code_hash = ?")
        .bind(email)
        .bind(code_hash)
        .execute(executor)
        .await?;
    Ok(deleted.rows_affected() == 1)
}

/// Withdraws the code of `email` that could not be mailed.
pub async fn withdraw(db: &Db, email: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM password_resets WHERE email = ?")
        .bind(email)
        .execute(&db.pool)
        .await
        .map(|_| ())
}
