//! Moderation use cases: reporting a member, and listing reports for admins.

use heart_shared::wire::{format_timestamp, ReportPage, ReportView};
use heart_shared::ErrorCode;

use super::repo;
use crate::auth::AuthenticatedMember;
use crate::error::ApiError;
use crate::member::repo as members;
use crate::paging::Page;
use crate::state::AppState;

/// Longest reason kept.
pub const REASON_MAX: usize = 1000;

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
        return Err(ApiError::no_such_member("target_id", target));
    }
    repo::insert_once(&state.db, reporter, target, reason, state.clock.now()).await?;
    Ok(())
}

/// One page of reports, newest first: `GLOBAL_105` unless the caller has the `ADMIN` role.
pub async fn list_reports(
    state: &AppState,
    caller: &AuthenticatedMember,
    page: Page,
) -> Result<ReportPage, ApiError> {
    let member = members::find_by_id(&state.db, caller.member_id).await?;
    if member.is_none_or(|m| m.role != "ADMIN") {
        return Err(ApiError::with_message(ErrorCode::Forbidden, "Admins only"));
    }
    let reports: Vec<ReportView> = repo::page(&state.db, page)
        .await?
        .into_iter()
        .map(|r| ReportView {
            id: r.id,
            reporter_id: r.reporter_id,
            target_id: r.target_id,
            reason: r.reason,
            created_at: format_timestamp(r.created_at),
        })
        .collect();
    Ok(ReportPage {
        size: reports.len(),
        reports,
    })
}
