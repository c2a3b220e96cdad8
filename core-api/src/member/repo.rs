//! Queries on `members`.

use sqlx::FromRow;

use heart_shared::wire::MemberSummary;

use crate::db::Db;

/// A member row.
#[derive(Debug, Clone, FromRow)]
pub struct Member {
    pub id: i64,
    /// Lower-cased email.
    pub email: String,
    pub name: String,
    pub nickname: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// `USER` or `ADMIN`.
    pub role: String,
    /// Object-storage key of the avatar.
    pub avatar_key: Option<String>,
    /// Since when a moderator has suspended the member, epoch seconds.
    pub suspended_at: Option<i64>,
}

impl Member {
    /// Whether the member may use the moderation endpoints and console.
    pub fn is_admin(&self) -> bool {
        self.role == "ADMIN" && self.suspended_at.is_none()
    }
}

const COLUMNS: &str = "id, email, name, nickname, password_hash, role, avatar_key, suspended_at";

/// A member about to be created.
#[derive(Debug, Clone)]
pub struct NewMember<'a> {
    /// Lower-cased email.
    pub email: &'a str,
    /// Trimmed name.
    pub name: &'a str,
    /// Trimmed nickname.
    pub nickname: &'a str,
    /// Argon2id PHC string.
    pub password_hash: &'a str,
}

/// The member with `email` (already lower-cased).
pub async fn find_by_email(db: &Db, email: &str) -> Result<Option<Member>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM members WHERE email = ?"))
        .bind(email)
        .fetch_optional(&db.pool)
        .await
}

/// The member with `id`.
pub async fn find_by_id(db: &Db, id: i64) -> Result<Option<Member>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM members WHERE id = ?"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await
}

/// The members with these ids (those that exist), in no particular order.
pub async fn find_many(db: &Db, ids: &[i64]) -> Result<Vec<Member>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders = vec!["?"; ids.len()].join(", ");
    let sql = format!("SELECT {COLUMNS} FROM members WHERE id IN ({placeholders})");
    let mut query = sqlx::query_as(&sql);
    for id in ids {
        query = query.bind(id);
    }
    query.fetch_all(&db.pool).await
}

/// Whether a member with `email` exists.
pub async fn email_exists(db: &Db, email: &str) -> Result<bool, sqlx::Error> {
    let found: Option<(i64,)> = sqlx::query_as("SELECT id FROM members WHERE email = ?")
        .bind(email)
        .fetch_optional(&db.pool)
        .await?;
    Ok(found.is_some())
}

/// Inserts `member`; a duplicate email fails with a unique violation.
pub async fn insert(
    conn: &mut sqlx::AnyConnection,
    member: &NewMember<'_>,
    now: i64,
) -> Result<i64, sqlx::Error> {
    let result = sqlx::query(
        "INSERT INTO members (email, name, nickname, password_hash, role, created_at, updated_at) \
         VALUES (?, ?, ?, ?, 'USER', ?, ?)",
    )
    .bind(member.email)
    .bind(member.name)
    .bind(member.nickname)
    .bind(member.password_hash)
    .bind(now)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    crate::db::inserted_id(conn, &result).await
}

/// A member as shown in lists.
#[derive(Debug, Clone, FromRow)]
pub struct MemberRow {
    pub id: i64,
    pub email: String,
    pub nickname: String,
    pub name: String,
    /// Avatar object key.
    pub avatar_key: Option<String>,
}

impl MemberRow {
    /// The row as the wire's member summary, its avatar linked under `media_base_url`.
    pub fn into_summary(self, media_base_url: &str) -> MemberSummary {
        MemberSummary {
            avatar_url: self
                .avatar_key
                .map(|key| crate::storage::public_url(media_base_url, &key)),
            id: self.id,
            email: self.email,
            nickname: self.nickname,
            name: self.name,
        }
    }
}

/// Whether member `id` exists.
pub async fn exists(db: &Db, id: i64) -> Result<bool, sqlx::Error> {
    let found: Option<(i64,)> = sqlx::query_as("SELECT id FROM members WHERE id = ?")
        .bind(id)
        .fetch_optional(&db.pool)
        .await?;
    Ok(found.is_some())
}

/// Post, follower and following counts of member `id`.
pub async fn counts(db: &Db, id: i64) -> Result<(i64, i64, i64), sqlx::Error> {
    let (posts, followers, followings): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM posts WHERE writer_id = ?), \
                (SELECT COUNT(*) FROM follows WHERE followee_id = ?), \
                (SELECT COUNT(*) FROM follows WHERE follower_id = ?)",
    )
    .bind(id)
    .bind(id)
    .bind(id)
    .fetch_one(&db.pool)
    .await?;
    Ok((posts, followers, followings))
}

/// Sets the avatar of member `id`; returns the previous key.
pub async fn replace_avatar(
    db: &Db,
    id: i64,
    key: &str,
    now: i64,
) -> Result<Option<Option<String>>, sqlx::Error> {
    let mut tx = db.begin().await?;
    // Lock the member's row before reading it: MySQL then holds it until commit, so two uploads
    // of one member cannot both read the same previous key (and leave one new object
    // unreferenced). SQLite's lock is taken by `Db::begin` already.
    sqlx::query("UPDATE members SET avatar_key = avatar_key WHERE id = ?")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let previous: Option<(Option<String>,)> =
        sqlx::query_as("SELECT avatar_key FROM members WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((previous,)) = previous else {
        return Ok(None);
    };
    sqlx::query("UPDATE members SET avatar_key = ?, updated_at = ? WHERE id = ?")
        .bind(key)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some(previous))
}

/// The members `blocker` blocks, newest block first.
pub async fn blocked_by(db: &Db, blocker: i64) -> Result<Vec<MemberRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT m.id, m.email, m.nickname, m.name, m.avatar_key FROM blocks b JOIN members m ON m.id = b.blocked_id \
         WHERE b.blocker_id = ? ORDER BY b.created_at DESC, m.id DESC",
    )
    .bind(blocker)
    .fetch_all(&db.pool)
    .await
}

/// Records that `blocker` blocks `blocked` and removes follows both ways. False if already blocking.
/// Run again when the database breaks a deadlock with a concurrent follow or block of the pair.
pub async fn block(db: &Db, blocker: i64, blocked: i64, now: i64) -> Result<bool, sqlx::Error> {
    crate::db::retrying_deadlocks(|| block_once(db, blocker, blocked, now)).await
}

async fn block_once(db: &Db, blocker: i64, blocked: i64, now: i64) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin().await?;
    let inserted =
        sqlx::query("INSERT INTO blocks (blocker_id, blocked_id, created_at) VALUES (?, ?, ?)")
            .bind(blocker)
            .bind(blocked)
            .bind(now)
            .execute(&mut *tx)
            .await;
    match inserted {
        Ok(_) => {}
        Err(e) if Db::is_unique_violation(&e) => return Ok(false),
        Err(e) => return Err(e),
    }
    sqlx::query("DELETE FROM follows WHERE (follower_id = ? AND followee_id = ?) OR (follower_id = ? AND followee_id = ?)")
        .bind(blocker)
        .bind(blocked)
        .bind(blocked)
        .bind(blocker)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

/// Removes a block; fine if there was none.
pub async fn unblock(db: &Db, blocker: i64, blocked: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM blocks WHERE blocker_id = ? AND blocked_id = ?")
        .bind(blocker)
        .bind(blocked)
        .execute(&db.pool)
        .await
        .map(|_| ())
}

/// Whether either member blocks the other.
pub async fn blocked_either_way(db: &Db, a: i64, b: i64) -> Result<bool, sqlx::Error> {
    let found: Option<(i64,)> = sqlx::query_as(
        "SELECT blocker_id FROM blocks WHERE (blocker_id = ? AND blocked_id = ?) OR (blocker_id = ? AND blocked_id = ?) LIMIT 1",
    )
    .bind(a)
    .bind(b)
    .bind(b)
    .bind(a)
    .fetch_optional(&db.pool)
    .await?;
    Ok(found.is_some())
}

/// Every storage key member `id` owns: the avatar and every post image.
pub async fn object_keys(db: &Db, id: i64) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(Option<String>,)> = sqlx::query_as(
        "SELECT avatar_key FROM members WHERE id = ? \
         UNION ALL SELECT i.object_key FROM post_images i JOIN posts p ON p.id = i.post_id WHERE p.writer_id = ?",
    )
    .bind(id)
    .bind(id)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.into_iter().filter_map(|(key,)| key).collect())
}

/// Whether a write about `caller` and a target (a block, a follow, a report) failed because the
/// target was deleted since it was checked: a foreign key refused it while `caller` is still
/// there. (When `caller` is the one gone, the error's own mapping answers `AUTH_010`.)
pub async fn target_gone(db: &Db, caller: i64, error: &sqlx::Error) -> bool {
    let refused = matches!(error, sqlx::Error::Database(e) if e.is_foreign_key_violation());
    refused && matches!(exists(db, caller).await, Ok(true))
}

/// Deletes member `id` and, by cascade, their sessions, posts, images, blocks, follows and the
/// reports they filed, plus their verification row. Reports *about* them stay, with a snapshot
/// (nickname, SHA-256 of the email, deletion time) for moderators. The live sessions are recorded
/// in `revoked_sessions`, so their revocations survive a restart or a flushed cache.
/// Returns the ids of the sessions that were live.
pub async fn delete(
    db: &Db,
    id: i64,
    email: &str,
    nickname: &str,
    now: i64,
) -> Result<Vec<String>, sqlx::Error> {
    let mut tx = db.begin().await?;
    let sessions: Vec<(String,)> =
        sqlx::query_as("SELECT id FROM sessions WHERE member_id = ? AND revoked_at IS NULL")
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
    for (sid,) in &sessions {
        sqlx::query("INSERT INTO revoked_sessions (session_id, revoked_at) VALUES (?, ?)")
            .bind(sid)
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query("UPDATE reports SET target_nickname = ?, target_email_sha256 = ?, target_deleted_at = ? WHERE target_id = ?")
        .bind(nickname)
        .bind(crate::auth::tokens::sha256_hex(email))
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    // Children first: the cascade does this too, but explicit deletes keep MySQL and SQLite alike.
    sqlx::query(
        "DELETE FROM post_images WHERE post_id IN (SELECT id FROM posts WHERE writer_id = ?)",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    // (statement, how many times it binds the member id)
    for (sql, binds) in [
        ("DELETE FROM posts WHERE writer_id = ?", 1),
        ("DELETE FROM refresh_tokens WHERE session_id IN (SELECT id FROM sessions WHERE member_id = ?)", 1),
        ("DELETE FROM console_sessions WHERE session_id IN (SELECT id FROM sessions WHERE member_id = ?)", 1),
        ("DELETE FROM sessions WHERE member_id = ?", 1),
        ("DELETE FROM follows WHERE follower_id = ? OR followee_id = ?", 2),
        ("DELETE FROM blocks WHERE blocker_id = ? OR blocked_id = ?", 2),
        ("DELETE FROM reports WHERE reporter_id = ?", 1),
        ("DELETE FROM data_exports WHERE member_id = ?", 1),
    ] {
        let mut query = sqlx::query(sql);
        for _ in 0..binds {
            query = query.bind(id);
        }
        query.execute(&mut *tx).await?;
    }
    for sql in [
        "DELETE FROM email_verifications WHERE email = ?",
        "DELETE FROM password_resets WHERE email = ?",
    ] {
        sqlx::query(sql).bind(email).execute(&mut *tx).await?;
    }
    sqlx::query("DELETE FROM members WHERE id = ?")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(sessions.into_iter().map(|(sid,)| sid).collect())
}

/// Stores a new password hash for member `id` (reset, change).
pub async fn set_password_hash<'c, E>(
    executor: E,
    id: i64,
    password_hash: &str,
    now: i64,
) -> Result<(), sqlx::Error>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    sqlx::query("UPDATE members SET password_hash = ?, updated_at = ? WHERE id = ?")
        .bind(password_hash)
        .bind(now)
        .bind(id)
        .execute(executor)
        .await
        .map(|_| ())
}

/// Gives the member with `email` the `role` (`ADMIN` or `MEMBER`); whether such a member exists.
pub async fn set_role(db: &Db, email: &str, role: &str) -> Result<bool, sqlx::Error> {
    let result = sqlx::query("UPDATE members SET role = ? WHERE email = ?")
        .bind(role)
        .bind(email)
        .execute(&db.pool)
        .await?;
    if result.rows_affected() > 0 {
        return Ok(true);
    }
    // MySQL counts only changed rows: a member who already has the role still exists.
    Ok(find_by_email(db, email).await?.is_some())
}

/// A member's suspension: since when and why.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Suspension {
    pub suspended_at: i64,
    pub reason: Option<String>,
}

/// Suspends member `id` (unless already suspended, which keeps the first suspension) and revokes
/// every live session of theirs, in one transaction. Returns `None` for no such member, else the
/// suspension in force and the ids of the sessions it revoked.
pub async fn suspend(
    db: &Db,
    id: i64,
    reason: &str,
    now: i64,
) -> Result<Option<(Suspension, Vec<String>)>, sqlx::Error> {
    let mut tx = db.begin().await?;
    sqlx::query("UPDATE members SET suspended_at = ?, suspended_reason = ? WHERE id = ? AND suspended_at IS NULL")
        .bind(now)
        .bind(reason)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let suspension: Option<Suspension> = sqlx::query_as(
        "SELECT suspended_at, suspended_reason AS reason FROM members WHERE id = ? AND suspended_at IS NOT NULL",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(suspension) = suspension else {
        return Ok(None);
    };
    // Revoked first, then read back: a session a login inserted meanwhile is in both.
    sqlx::query("UPDATE sessions SET revoked_at = ?, revoked_reason = 'suspended' WHERE member_id = ? AND revoked_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let sessions: Vec<(String,)> = sqlx::query_as(
        "SELECT id FROM sessions WHERE member_id = ? AND revoked_at = ? AND revoked_reason = 'suspended'",
    )
    .bind(id)
    .bind(now)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some((
        suspension,
        sessions.into_iter().map(|(sid,)| sid).collect(),
    )))
}

/// Lifts the suspension of member `id`; `false` for no such member.
pub async fn unsuspend(db: &Db, id: i64) -> Result<bool, sqlx::Error> {
    sqlx::query("UPDATE members SET suspended_at = NULL, suspended_reason = NULL WHERE id = ?")
        .bind(id)
        .execute(&db.pool)
        .await?;
    exists(db, id).await
}

/// The suspension of member `id`, if suspended.
pub async fn suspension(db: &Db, id: i64) -> Result<Option<Suspension>, sqlx::Error> {
    sqlx::query_as(
        "SELECT suspended_at, suspended_reason AS reason FROM members WHERE id = ? AND suspended_at IS NOT NULL",
    )
    .bind(id)
    .fetch_optional(&db.pool)
    .await
}

/// A suspended member, for the console's list.
#[derive(Debug, Clone, FromRow)]
pub struct SuspendedMember {
    pub id: i64,
    pub email: String,
    pub nickname: String,
    pub suspended_at: i64,
    pub reason: Option<String>,
}

/// The `limit` most recently suspended members.
pub async fn suspended(db: &Db, limit: i64) -> Result<Vec<SuspendedMember>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, email, nickname, suspended_at, suspended_reason AS reason FROM members \
         WHERE suspended_at IS NOT NULL ORDER BY suspended_at DESC, id DESC LIMIT ?",
    )
    .bind(limit)
    .fetch_all(&db.pool)
    .await
}
