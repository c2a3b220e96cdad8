//! What a data export reads, a page at a time in key order (so memory does not grow with the
//! member's history), and the `data_exports` table that allows one export an hour.

use heart_shared::wire::format_timestamp;
use serde::{Serialize, Serializer};
use sqlx::FromRow;

use crate::db::Db;

/// Times in the export read like the posts': `yyyy-MM-ddTHH:mm:ss`, UTC.
fn timestamp<S: Serializer>(secs: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format_timestamp(*secs))
}

fn optional_timestamp<S: Serializer>(secs: &Option<i64>, serializer: S) -> Result<S::Ok, S::Error> {
    match secs {
        Some(secs) => timestamp(secs, serializer),
        None => serializer.serialize_none(),
    }
}

/// Rows per page read from the database.
pub const PAGE_ROWS: i64 = 200;

/// A member on the other side of a follow or block.
#[derive(Debug, Serialize, FromRow)]
pub struct Relation {
    pub member_id: i64,
    pub nickname: String,
    #[serde(serialize_with = "timestamp")]
    pub since: i64,
}

/// Which list of [`Relation`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelationKind {
    /// Members the exporter follows.
    Follows,
    /// Members following the exporter.
    Followers,
    /// Members the exporter blocks.
    Blocks,
}

/// Members in `kind` relation to `member_id` with ids above `after`, by id.
pub async fn relations(
    db: &Db,
    kind: RelationKind,
    member_id: i64,
    after: i64,
) -> Result<Vec<Relation>, sqlx::Error> {
    let sql = match kind {
        RelationKind::Follows => "SELECT m.id AS member_id, m.nickname, f.created_at AS since FROM follows f JOIN members m ON m.id = f.followee_id WHERE f.follower_id = ? AND m.id > ? ORDER BY m.id LIMIT ?",
        RelationKind::Followers => "SELECT m.id AS member_id, m.nickname, f.created_at AS since FROM follows f JOIN members m ON m.id = f.follower_id WHERE f.followee_id = ? AND m.id > ? ORDER BY m.id LIMIT ?",
        RelationKind::Blocks => "SELECT m.id AS member_id, m.nickname, b.created_at AS since FROM blocks b JOIN members m ON m.id = b.blocked_id WHERE b.blocker_id = ? AND m.id > ? ORDER BY m.id LIMIT ?",
    };
    sqlx::query_as(sql)
        .bind(member_id)
        .bind(after)
        .bind(PAGE_ROWS)
        .fetch_all(&db.pool)
        .await
}

/// A report the exporter filed.
#[derive(Debug, Serialize, FromRow)]
pub struct ReportMade {
    pub id: i64,
    pub target_id: i64,
    pub reason: Option<String>,
    #[serde(serialize_with = "timestamp")]
    pub created_at: i64,
}

/// Reports filed by `member_id` with ids above `after`.
pub async fn reports_made(
    db: &Db,
    member_id: i64,
    after: i64,
) -> Result<Vec<ReportMade>, sqlx::Error> {
    sqlx::query_as("SELECT id, target_id, reason, created_at FROM reports WHERE reporter_id = ? AND id > ? ORDER BY id LIMIT ?")
        .bind(member_id)
        .bind(after)
        .bind(PAGE_ROWS)
        .fetch_all(&db.pool)
        .await
}

/// A session, without anything that could act as it.
#[derive(Debug, Serialize, FromRow)]
pub struct SessionRecord {
    /// Only the paging cursor: a session id is the tokens' `sid`, not exported.
    #[serde(skip)]
    pub id: String,
    #[serde(serialize_with = "timestamp")]
    pub created_at: i64,
    #[serde(serialize_with = "optional_timestamp")]
    pub revoked_at: Option<i64>,
    pub revoked_reason: Option<String>,
}

/// Sessions of `member_id` with ids above `after`.
pub async fn sessions(
    db: &Db,
    member_id: i64,
    after: &str,
) -> Result<Vec<SessionRecord>, sqlx::Error> {
    sqlx::query_as("SELECT id, created_at, revoked_at, revoked_reason FROM sessions WHERE member_id = ? AND id > ? ORDER BY id LIMIT ?")
        .bind(member_id)
        .bind(after)
        .bind(PAGE_ROWS)
        .fetch_all(&db.pool)
        .await
}

/// A post of the exporter.
#[derive(Debug, FromRow)]
pub struct PostRecord {
    pub id: i64,
    pub content: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Posts of `member_id` with ids above `after`, by id.
pub async fn posts(db: &Db, member_id: i64, after: i64) -> Result<Vec<PostRecord>, sqlx::Error> {
    sqlx::query_as("SELECT id, content, created_at, updated_at FROM posts WHERE writer_id = ? AND id > ? ORDER BY id LIMIT ?")
        .bind(member_id)
        .bind(after)
        .bind(PAGE_ROWS)
        .fetch_all(&db.pool)
        .await
}

/// An image of a post: where it is in the post and its object key.
#[derive(Debug, Clone, FromRow)]
pub struct ImageRecord {
    pub post_id: i64,
    pub position: i64,
    pub object_key: String,
}

/// Images of `member_id`'s posts after `(post_id, position)`, in that order.
pub async fn images(
    db: &Db,
    member_id: i64,
    after: (i64, i64),
) -> Result<Vec<ImageRecord>, sqlx::Error> {
    sqlx::query_as(
        "SELECT i.post_id, i.position, i.object_key FROM post_images i JOIN posts p ON p.id = i.post_id \
         WHERE p.writer_id = ? AND (i.post_id > ? OR (i.post_id = ? AND i.position > ?)) \
         ORDER BY i.post_id, i.position LIMIT ?",
    )
    .bind(member_id)
    .bind(after.0)
    .bind(after.0)
    .bind(after.1)
    .bind(PAGE_ROWS)
    .fetch_all(&db.pool)
    .await
}

/// Images of posts `first..=last` of `member_id` (the posts of one page), by post and position.
pub async fn images_of_posts(
    db: &Db,
    member_id: i64,
    first: i64,
    last: i64,
) -> Result<Vec<ImageRecord>, sqlx::Error> {
    sqlx::query_as(
        "SELECT i.post_id, i.position, i.object_key FROM post_images i JOIN posts p ON p.id = i.post_id \
         WHERE p.writer_id = ? AND i.post_id BETWEEN ? AND ? ORDER BY i.post_id, i.position",
    )
    .bind(member_id)
    .bind(first)
    .bind(last)
    .fetch_all(&db.pool)
    .await
}

/// Starts of one hour's exports, cut ones included: an export that was cut off may be started again
/// until this many have started in its hour.
pub const MAX_ATTEMPTS: i64 = 3;

/// `member_id`'s export hour, if one ever started: when its first export started, how many have
/// started in it, and whether the last one was cut off.
async fn last_window(db: &Db, member_id: i64) -> Result<Option<(i64, i64, bool)>, sqlx::Error> {
    let window: Option<(i64, i64, i64)> =
        sqlx::query_as("SELECT started_at, attempts, cut FROM data_exports WHERE member_id = ?")
            .bind(member_id)
            .fetch_optional(&db.pool)
            .await?;
    Ok(window.map(|(started_at, attempts, cut)| (started_at, attempts, cut != 0)))
}

/// The seconds from `now` until the next export may start after one at `started_at` (at least 1).
fn seconds_left(started_at: i64, now: i64, window: i64) -> i64 {
    (started_at + window - now).max(1)
}

/// What [`claim_slot`] would answer at `now`, claiming nothing (for `HEAD`).
pub async fn peek_slot(
    db: &Db,
    member_id: i64,
    now: i64,
    window: i64,
) -> Result<Result<(), i64>, sqlx::Error> {
    Ok(match last_window(db, member_id).await? {
        Some((started_at, attempts, cut))
            if started_at > now - window && !(cut && attempts < MAX_ATTEMPTS) =>
        {
            Err(seconds_left(started_at, now, window))
        }
        _ => Ok(()),
    })
}

/// Claims `member_id`'s export slot at `now`: the first export of an hour, or a new start of one
/// that was cut off (at most [`MAX_ATTEMPTS`] starts an hour). Otherwise the seconds until the
/// hour is over. Racing claims: one wins.
pub async fn claim_slot(
    db: &Db,
    member_id: i64,
    now: i64,
    window: i64,
) -> Result<Result<(), i64>, sqlx::Error> {
    let inserted = sqlx::query("INSERT INTO data_exports (member_id, started_at) VALUES (?, ?)")
        .bind(member_id)
        .bind(now)
        .execute(&db.pool)
        .await;
    match inserted {
        Ok(_) => return Ok(Ok(())),
        Err(e) if Db::is_unique_violation(&e) => {}
        Err(e) => return Err(e),
    }
    let renewed = sqlx::query(
        "UPDATE data_exports SET started_at = ?, attempts = 1, cut = 0 \
         WHERE member_id = ? AND started_at <= ?",
    )
    .bind(now)
    .bind(member_id)
    .bind(now - window)
    .execute(&db.pool)
    .await?;
    if renewed.rows_affected() == 1 {
        return Ok(Ok(()));
    }
    let retried = sqlx::query(
        "UPDATE data_exports SET attempts = attempts + 1, cut = 0 \
         WHERE member_id = ? AND cut = 1 AND attempts < ?",
    )
    .bind(member_id)
    .bind(MAX_ATTEMPTS)
    .execute(&db.pool)
    .await?;
    if retried.rows_affected() == 1 {
        return Ok(Ok(()));
    }
    let (started_at, _, _) = last_window(db, member_id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    Ok(Err(seconds_left(started_at, now, window)))
}

/// Marks `member_id`'s export claimed at `claimed_at` as cut off, so it may be started again
/// within its hour. Only that export's hour is marked: a later hour starts after `claimed_at`
/// (an export can outlast its hour), and its own export is not this one.
pub async fn release_slot(db: &Db, member_id: i64, claimed_at: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE data_exports SET cut = 1 WHERE member_id = ? AND started_at <= ?")
        .bind(member_id)
        .bind(claimed_at)
        .execute(&db.pool)
        .await?;
    Ok(())
}
