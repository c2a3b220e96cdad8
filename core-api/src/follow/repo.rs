//! The `follows` table.

use crate::db::{Db, DbKind};
use crate::member::repo::MemberRow;
use crate::paging::Page;

/// Which side of the follow graph a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Who follows the member.
    Followers,
    /// Whom the member follows.
    Followings,
}

/// Inserts the follow unless it exists. A follow of (or by) a member deleted meanwhile is refused
/// by the foreign keys: on MySQL not `INSERT IGNORE`, which turns that refusal into a warning
/// and answers success with nothing written (SQLite's `OR IGNORE` leaves foreign keys alone).
pub async fn insert_once(
    db: &Db,
    follower: i64,
    followee: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    let sql = match db.kind {
        DbKind::Sqlite => {
            "INSERT OR IGNORE INTO follows (follower_id, followee_id, created_at) VALUES (?, ?, ?)"
        }
        DbKind::MySql => {
            "INSERT INTO follows (follower_id, followee_id, created_at) VALUES (?, ?, ?) \
             ON DUPLICATE KEY UPDATE follower_id = follower_id"
        }
    };
    sqlx::query(sql)
        .bind(follower)
        .bind(followee)
        .bind(now)
        .execute(&db.pool)
        .await
        .map(|_| ())
}

/// Removes the follow, if any.
pub async fn delete(db: &Db, follower: i64, followee: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM follows WHERE follower_id = ? AND followee_id = ?")
        .bind(follower)
        .bind(followee)
        .execute(&db.pool)
        .await
        .map(|_| ())
}

/// One page of the members on the `direction` side of `member_id`, newest follow first (member id
/// as tie-break). With a cursor (`created_at` of the follow, member id) the page starts after it.
pub async fn page(
    db: &Db,
    member_id: i64,
    direction: Direction,
    page: Page,
) -> Result<Vec<MemberRow>, sqlx::Error> {
    let (member_column, subject_column) = match direction {
        Direction::Followers => ("f.follower_id", "f.followee_id"),
        Direction::Followings => ("f.followee_id", "f.follower_id"),
    };
    let after = if page.after.is_some() {
        " AND (f.created_at < ? OR (f.created_at = ? AND m.id < ?))"
    } else {
        ""
    };
    let sql = format!(
        "SELECT m.id, m.email, m.nickname, m.name, m.avatar_key FROM follows f JOIN members m ON m.id = {member_column} \
         WHERE {subject_column} = ?{after} ORDER BY f.created_at DESC, m.id DESC LIMIT ? OFFSET ?"
    );
    let mut query = sqlx::query_as(&sql).bind(member_id);
    if let Some(cursor) = page.after {
        query = query
            .bind(cursor.created_at)
            .bind(cursor.created_at)
            .bind(cursor.id);
    }
    query
        .bind(page.size)
        .bind(page.offset())
        .fetch_all(&db.pool)
        .await
}
