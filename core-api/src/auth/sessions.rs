//! Sessions and their refresh tokens: the `sessions` and `refresh_tokens` tables.
//!
//! One login is one session. A session's refresh tokens form a chain: every reissue rotates the
//! presented token (marks it `rotated_at`) and issues a child. Presenting a rotated token again is
//! reuse — a sign the token leaked — and revokes the whole session, except in one case: the direct
//! predecessor of a live token, within [`GRACE_SECS`] of its rotation, once. That is a phone whose
//! two requests raced to refresh; it gets a valid sibling token instead of a logout.

use sqlx::{Any, Transaction};

use super::tokens::{random_hex_id, random_urlsafe, sha256_hex};
use crate::db::Db;

/// How long after its rotation a refresh token may be presented once more.
pub const GRACE_SECS: i64 = 30;

/// Bytes of randomness in a refresh token (256 bits).
const REFRESH_TOKEN_BYTES: usize = 32;

/// How long an expired refresh token is kept (answered `AUTH_008` rather than `AUTH_007`; the app
/// treats both alike) before the sweep deletes it.
pub const EXPIRED_TOKEN_RETENTION_SECS: i64 = 7 * 24 * 3600;

/// Rows deleted by one statement of the sweep, so no statement holds locks for long.
const SWEEP_BATCH: i64 = 1000;

/// A fresh refresh token and the session it belongs to.
#[derive(Debug, Clone)]
pub struct IssuedRefreshToken {
    /// The session id (the access token's `sid`).
    pub session_id: String,
    /// The token, shown to the client once and never stored.
    pub refresh_token: String,
}

/// What presenting a refresh token led to.
#[derive(Debug)]
pub enum Rotation {
    /// A new token was issued; `member_id` owns the session.
    Rotated {
        /// The session's member.
        member_id: i64,
        /// The new token.
        issued: IssuedRefreshToken,
    },
    /// Unknown token, another member's, or its session is revoked: `AUTH_007`.
    Invalid,
    /// The token expired: `AUTH_008`.
    Expired,
    /// A rotated token was reused outside the grace rule; the session is now revoked: `AUTH_007`.
    ReuseDetected {
        /// The revoked session, for publishing the revocation.
        session_id: String,
    },
}

/// Starts a session for `member_id` with its first refresh token.
pub async fn start(
    db: &Db,
    member_id: i64,
    now: i64,
    refresh_ttl: i64,
) -> Result<IssuedRefreshToken, sqlx::Error> {
    let session_id = random_hex_id();
    let mut tx = db.begin().await?;
    sqlx::query("INSERT INTO sessions (id, member_id, created_at) VALUES (?, ?, ?)")
        .bind(&session_id)
        .bind(member_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    let refresh_token = insert_token(&mut tx, &session_id, None, now, refresh_ttl).await?;
    tx.commit().await?;
    Ok(IssuedRefreshToken {
        session_id,
        refresh_token,
    })
}

async fn insert_token(
    tx: &mut Transaction<'_, Any>,
    session_id: &str,
    parent_hash: Option<&str>,
    now: i64,
    ttl: i64,
) -> Result<String, sqlx::Error> {
    let token = random_urlsafe(REFRESH_TOKEN_BYTES);
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, session_id, parent_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(sha256_hex(&token))
    .bind(session_id)
    .bind(parent_hash)
    .bind(now)
    .bind(now + ttl)
    .execute(&mut **tx)
    .await?;
    Ok(token)
}

#[derive(Debug, sqlx::FromRow)]
struct PresentedToken {
    session_id: String,
    parent_hash: Option<String>,
    member_id: i64,
    expires_at: i64,
    rotated_at: Option<i64>,
    session_revoked_at: Option<i64>,
}

/// Exchanges `presented` (claimed by `member_id`) for a new refresh token, applying the reuse rules.
pub async fn rotate(
    db: &Db,
    member_id: i64,
    presented: &str,
    now: i64,
    refresh_ttl: i64,
) -> Result<Rotation, sqlx::Error> {
    // SQLite refuses a transaction that read before another writer committed and then writes
    // (SQLITE_BUSY at once, whatever the busy timeout): racing reissues of one token do exactly
    // that. The transaction was rolled back, so it is simply run again, a few times.
    let mut attempt = 0;
    loop {
        match rotate_once(db, member_id, presented, now, refresh_ttl).await {
            Err(sqlx::Error::Database(e)) if attempt < 8 && crate::error::is_busy(e.as_ref()) => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(5 * attempt)).await;
            }
            other => return other,
        }
    }
}

/// Whether `presented` is a refresh token of a live (not revoked) session of `member_id`, rotated
/// or not: the rate limits per member count only such calls.
pub async fn belongs_to(db: &Db, member_id: i64, presented: &str) -> Result<bool, sqlx::Error> {
    let row: Option<(i64,)> = sqlx::query_as(
        "SELECT s.member_id FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id \
         WHERE t.token_hash = ? AND s.revoked_at IS NULL",
    )
    .bind(sha256_hex(presented))
    .fetch_optional(&db.pool)
    .await?;
    Ok(row.is_some_and(|(owner,)| owner == member_id))
}

async fn rotate_once(
    db: &Db,
    member_id: i64,
    presented: &str,
    now: i64,
    refresh_ttl: i64,
) -> Result<Rotation, sqlx::Error> {
    let hash = sha256_hex(presented);
    let found: Option<PresentedToken> = sqlx::query_as(
        "SELECT t.session_id, t.parent_hash, s.member_id, t.expires_at, t.rotated_at, s.revoked_at AS session_revoked_at \
         FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id WHERE t.token_hash = ?",
    )
    .bind(&hash)
    .fetch_optional(&db.pool)
    .await?;
    let Some(token) = found else {
        return Ok(Rotation::Invalid);
    };
    // Someone else's token is answered like an unknown one: the caller learns nothing.
    if token.member_id != member_id || token.session_revoked_at.is_some() {
        return Ok(Rotation::Invalid);
    }
    if token.expires_at <= now {
        return Ok(Rotation::Expired);
    }

    let mut tx = db.begin().await?;
    if token.rotated_at.is_none() {
        // Only one of several racing requests wins this update; the others take the grace path.
        let won = sqlx::query(
            "UPDATE refresh_tokens SET rotated_at = ? WHERE token_hash = ? AND rotated_at IS NULL",
        )
        .bind(now)
        .bind(&hash)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if won {
            // A grace use left a sibling of this token: one chain goes on, the other is now
            // rotated, so presenting it later is reuse and revokes the session (a replayed
            // predecessor may give a second token, never a second chain that is not flagged).
            if let Some(parent) = &token.parent_hash {
                sqlx::query("UPDATE refresh_tokens SET rotated_at = ? WHERE parent_hash = ? AND token_hash <> ? AND rotated_at IS NULL")
                    .bind(now)
                    .bind(parent)
                    .bind(&hash)
                    .execute(&mut *tx)
                    .await?;
            }
            let refresh_token =
                insert_token(&mut tx, &token.session_id, Some(&hash), now, refresh_ttl).await?;
            tx.commit().await?;
            return Ok(Rotation::Rotated {
                member_id,
                issued: IssuedRefreshToken {
                    session_id: token.session_id,
                    refresh_token,
                },
            });
        }
    }

    // A rotated token: allowed once, shortly after its rotation, while its child is still the live token.
    let graced = claim_grace(&mut tx, &hash, now).await?;
    if graced {
        let refresh_token =
            insert_token(&mut tx, &token.session_id, Some(&hash), now, refresh_ttl).await?;
        tx.commit().await?;
        return Ok(Rotation::Rotated {
            member_id,
            issued: IssuedRefreshToken {
                session_id: token.session_id,
                refresh_token,
            },
        });
    }

    revoke_in(&mut tx, &token.session_id, "refresh_token_reuse", now).await?;
    tx.commit().await?;
    Ok(Rotation::ReuseDetected {
        session_id: token.session_id,
    })
}

/// Claims the one grace use of rotated token `hash`, if it is the direct predecessor of a live
/// token and was rotated at most [`GRACE_SECS`] ago. Of racing claims, one wins.
async fn claim_grace(
    tx: &mut Transaction<'_, Any>,
    hash: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let live_child: Option<(String,)> =
        sqlx::query_as("SELECT token_hash FROM refresh_tokens WHERE parent_hash = ? AND rotated_at IS NULL LIMIT 1")
            .bind(hash)
            .fetch_optional(&mut **tx)
            .await?;
    if live_child.is_none() {
        return Ok(false);
    }
    let updated = sqlx::query("UPDATE refresh_tokens SET grace_used = 1 WHERE token_hash = ? AND grace_used = 0 AND rotated_at >= ?")
        .bind(hash)
        .bind(now - GRACE_SECS)
        .execute(&mut **tx)
        .await?;
    Ok(updated.rows_affected() == 1)
}

async fn revoke_in(
    tx: &mut Transaction<'_, Any>,
    session_id: &str,
    reason: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE sessions SET revoked_at = ?, revoked_reason = ? WHERE id = ? AND revoked_at IS NULL")
        .bind(now)
        .bind(reason)
        .bind(session_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Revokes session `session_id` (logout). Its refresh tokens stop working at once.
pub async fn revoke(db: &Db, session_id: &str, reason: &str, now: i64) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    revoke_in(&mut tx, session_id, reason, now).await?;
    tx.commit().await
}

/// Revokes every live session of `member_id` except `keep` (password reset and change) inside
/// `tx`; returns the ids revoked, for publishing to the cache once `tx` committed.
pub async fn revoke_all_of(
    tx: &mut Transaction<'_, Any>,
    member_id: i64,
    keep: Option<&str>,
    reason: &str,
    now: i64,
) -> Result<Vec<String>, sqlx::Error> {
    let live: Vec<(String,)> =
        sqlx::query_as("SELECT id FROM sessions WHERE member_id = ? AND revoked_at IS NULL")
            .bind(member_id)
            .fetch_all(&mut **tx)
            .await?;
    let mut revoked = Vec::with_capacity(live.len());
    for (sid,) in live {
        if keep != Some(sid.as_str()) {
            revoke_in(tx, &sid, reason, now).await?;
            revoked.push(sid);
        }
    }
    Ok(revoked)
}

/// Whether session `session_id` is revoked or gone (the database's answer, when the cache cannot give one).
pub async fn is_revoked(db: &Db, session_id: &str) -> Result<bool, sqlx::Error> {
    let row: Option<(Option<i64>,)> =
        sqlx::query_as("SELECT revoked_at FROM sessions WHERE id = ?")
            .bind(session_id)
            .fetch_optional(&db.pool)
            .await?;
    Ok(row.is_none_or(|(revoked_at,)| revoked_at.is_some()))
}

/// Sessions revoked since `since`: loaded into the cache at startup, so an in-process cache
/// that was emptied by a restart still refuses their access tokens. That includes the sessions of
/// deleted members, whose rows are gone but which `revoked_sessions` remembers; rows older than
/// `since` are no longer needed (every access token of theirs expired) and are dropped here.
pub async fn revoked_since(db: &Db, since: i64) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query("DELETE FROM revoked_sessions WHERE revoked_at < ?")
        .bind(since)
        .execute(&db.pool)
        .await?;
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT id FROM sessions WHERE revoked_at >= ? \
         UNION SELECT session_id FROM revoked_sessions WHERE revoked_at >= ?",
    )
    .bind(since)
    .bind(since)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// Deletes the refresh tokens that expired more than [`EXPIRED_TOKEN_RETENTION_SECS`] before
/// `now`, in batches; returns how many. Every reissue adds a row, so without this the table grows
/// for as long as a session lives (about 0.8 KB a reissue). Safe on several replicas at once:
/// each batch deletes what is still there.
pub async fn delete_expired_tokens(db: &Db, now: i64) -> Result<u64, sqlx::Error> {
    let before = now - EXPIRED_TOKEN_RETENTION_SECS;
    let sql = match db.kind {
        // MySQL has no LIMIT in an IN subquery, SQLite no LIMIT on DELETE (as built by sqlx).
        crate::db::DbKind::MySql => "DELETE FROM refresh_tokens WHERE expires_at < ? LIMIT ?",
        crate::db::DbKind::Sqlite => {
            "DELETE FROM refresh_tokens WHERE token_hash IN \
             (SELECT token_hash FROM refresh_tokens WHERE expires_at < ? LIMIT ?)"
        }
    };
    let mut deleted = 0;
    loop {
        let batch = sqlx::query(sql)
            .bind(before)
            .bind(SWEEP_BATCH)
            .execute(&db.pool)
            .await?
            .rows_affected();
        deleted += batch;
        if batch < SWEEP_BATCH as u64 {
            return Ok(deleted);
        }
    }
}
