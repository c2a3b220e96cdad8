//! The `reports` table.

use crate::db::{Db, DbKind};
use crate::paging::Page;

/// Inserts the report unless the pair reported already. A report by (or about) a member deleted
/// meanwhile is refused by the foreign keys (see `follow::repo::insert_once`).
pub async fn insert_once(
    db: &Db,
    reporter: i64,
    target: i64,
    reason: Option<&str>,
    now: i64,
) -> Result<(), sqlx::Error> {
    let sql = match db.kind {
        DbKind::Sqlite => "INSERT OR IGNORE INTO reports (reporter_id, target_id, reason, created_at) VALUES (?, ?, ?, ?)",
        DbKind::MySql => "INSERT INTO reports (reporter_id, target_id, reason, created_at) VALUES (?, ?, ?, ?) \
                          ON DUPLICATE KEY UPDATE reporter_id = reporter_id",
    };
    sqlx::query(sql)
        .bind(reporter)
        .bind(target)
        .bind(reason)
        .bind(now)
        .execute(&db.pool)
        .await
        .map(|_| ())
}

/// A report as stored.
#[derive(Debug, sqlx::FromRow)]
pub struct ReportRow {
    pub id: i64,
    pub reporter_id: i64,
    pub target_id: i64,
    pub reason: Option<String>,
    pub created_at: i64,
    pub resolved_at: Option<i64>,
    pub resolved_by: Option<i64>,
    /// `dismiss` or `suspend`, once resolved.
    pub action: Option<String>,
    pub note: Option<String>,
}

const COLUMNS: &str =
    "id, reporter_id, target_id, reason, created_at, resolved_at, resolved_by, action, note";

/// Which reports a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Every report.
    Any,
    /// Not resolved yet.
    Open,
    /// Dismissed, or resolved by a suspension.
    Resolved,
}

/// One page of reports with `status`, newest first.
pub async fn page(db: &Db, status: Status, page: Page) -> Result<Vec<ReportRow>, sqlx::Error> {
    let filter = match status {
        Status::Any => "",
        Status::Open => "WHERE resolved_at IS NULL",
        Status::Resolved => "WHERE resolved_at IS NOT NULL",
    };
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM reports {filter} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
    ))
    .bind(page.size)
    .bind(page.offset())
    .fetch_all(&db.pool)
    .await
}

/// Report `id`.
pub async fn find(db: &Db, id: i64) -> Result<Option<ReportRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM reports WHERE id = ?"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await
}

/// The resolution written on reports.
#[derive(Debug, Clone, Copy)]
pub struct Resolution<'a> {
    pub admin: i64,
    /// `dismiss` or `suspend`.
    pub action: &'a str,
    pub note: Option<&'a str>,
    pub now: i64,
}

/// Resolves report `id` if it is still open.
pub async fn resolve(db: &Db, id: i64, resolution: Resolution<'_>) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE reports SET resolved_at = ?, resolved_by = ?, action = ?, note = ? WHERE id = ? AND resolved_at IS NULL")
        .bind(resolution.now)
        .bind(resolution.admin)
        .bind(resolution.action)
        .bind(resolution.note)
        .bind(id)
        .execute(&db.pool)
        .await
        .map(|_| ())
}

/// Resolves every open report about member `target` (their suspension answers them all).
pub async fn resolve_about(
    db: &Db,
    target: i64,
    resolution: Resolution<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE reports SET resolved_at = ?, resolved_by = ?, action = ?, note = ? WHERE target_id = ? AND resolved_at IS NULL")
        .bind(resolution.now)
        .bind(resolution.admin)
        .bind(resolution.action)
        .bind(resolution.note)
        .bind(target)
        .execute(&db.pool)
        .await
        .map(|_| ())
}

/// The `limit` newest reports about member `target`.
pub async fn about(db: &Db, target: i64, limit: i64) -> Result<Vec<ReportRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM reports WHERE target_id = ? ORDER BY created_at DESC, id DESC LIMIT ?"
    ))
    .bind(target)
    .bind(limit)
    .fetch_all(&db.pool)
    .await
}
