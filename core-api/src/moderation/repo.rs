//! The `reports` table.

use crate::db::{Db, DbKind};
use crate::paging::Page;

/// Inserts the report unless the pair reported already.
pub async fn insert_once(
    db: &Db,
    reporter: i64,
    target: i64,
    reason: Option<&str>,
    now: i64,
) -> Result<(), sqlx::Error> {
    let sql = match db.kind {
        DbKind::Sqlite => "INSERT OR IGNORE INTO reports (reporter_id, target_id, reason, created_at) VALUES (?, ?, ?, ?)",
        DbKind::MySql => "INSERT IGNORE INTO reports (reporter_id, target_id, reason, created_at) VALUES (?, ?, ?, ?)",
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
}

/// One page of reports, newest first.
pub async fn page(db: &Db, page: Page) -> Result<Vec<ReportRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, reporter_id, target_id, reason, created_at FROM reports ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
    )
    .bind(page.size)
    .bind(page.offset())
    .fetch_all(&db.pool)
    .await
}
