//! Reports for moderation: stored once per reporter and target, listed for admins.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use heart_shared::wire::{format_timestamp, ReportPage, ReportView};
use heart_shared::{ErrorBody, ErrorCode};

use crate::app::AppState;
use crate::auth::AuthenticatedMember;
use crate::db::{Db, DbKind};
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::member::repo as members;
use crate::paging::PageQuery;

/// Longest reason kept.
pub const REASON_MAX: usize = 1000;

/// The moderation routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/admin/reports", get(list_reports))
}

/// Stores a report by `reporter` about `target`; a second report of the same pair changes nothing.
pub async fn report(
    state: &AppState,
    reporter: i64,
    target: i64,
    reason: Option<&str>,
) -> Result<(), ApiError> {
    if reporter == target {
        return Err(ApiError::invalid_field(
            "target_id",
            "cannot report yourself",
        ));
    }
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    if reason.is_some_and(|r| r.chars().count() > REASON_MAX) {
        return Err(ApiError::invalid_field(
            "reason",
            "must be at most 1000 characters",
        ));
    }
    if !members::exists(&state.db, target).await? {
        return Err(crate::member::service::no_such_member("target_id", target));
    }
    insert_once(&state.db, reporter, target, reason, state.clock.now()).await?;
    Ok(())
}

async fn insert_once(
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

#[derive(Debug, sqlx::FromRow)]
struct ReportRow {
    id: i64,
    reporter_id: i64,
    target_id: i64,
    reason: Option<String>,
    created_at: i64,
}

/// Reports, newest first. Members with the `ADMIN` role only.
#[utoipa::path(get, path = "/admin/reports", tag = "admin", security(("bearer" = [])), params(PageQuery),
    responses(
        (status = 200, body = ReportPage),
        (status = 400, description = "GLOBAL_007 bad page or size", body = ErrorBody),
        (status = 403, description = "GLOBAL_105 not an admin", body = ErrorBody),
    ))]
pub async fn list_reports(
    State(state): State<AppState>,
    caller: AuthenticatedMember,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<ReportPage>, ApiError> {
    let member = members::find_by_id(&state.db, caller.member_id).await?;
    if member.is_none_or(|m| m.role != "ADMIN") {
        return Err(ApiError::with_message(ErrorCode::Forbidden, "Admins only"));
    }
    let page = query.page()?;
    let rows: Vec<ReportRow> = sqlx::query_as(
        "SELECT id, reporter_id, target_id, reason, created_at FROM reports ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
    )
    .bind(page.size)
    .bind(page.offset())
    .fetch_all(&state.db.pool)
    .await?;
    let reports: Vec<ReportView> = rows
        .into_iter()
        .map(|r| ReportView {
            id: r.id,
            reporter_id: r.reporter_id,
            target_id: r.target_id,
            reason: r.reason,
            created_at: format_timestamp(r.created_at),
        })
        .collect();
    Ok(Json(ReportPage {
        size: reports.len(),
        reports,
    }))
}
