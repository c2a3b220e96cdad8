//! Moderation use cases: reporting a member; for admins, listing and resolving reports and
//! suspending members.

use heart_shared::wire::{format_timestamp, ReportPage, ReportView, SuspensionResponse};
use heart_shared::ErrorCode;

use super::repo::{self, ReportRow, Resolution, Status};
use crate::error::ApiError;
use crate::member::repo::{self as members, Member, Suspension};
use crate::paging::Page;
use crate::state::AppState;

/// Longest reason or note kept.
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
    let reason = optional_text("reason", reason)?;
    if !members::exists(&state.db, target).await? {
        return Err(ApiError::no_such_member("target_id", target));
    }
    if let Err(e) = repo::insert_once(&state.db, reporter, target, reason, state.clock.now()).await
    {
        if members::target_gone(&state.db, reporter, &e).await {
            return Err(ApiError::no_such_member("target_id", target));
        }
        return Err(e.into());
    }
    Ok(())
}

/// `text` trimmed, `None` when empty; `GLOBAL_002` on `field` past [`REASON_MAX`] characters.
fn optional_text<'a>(field: &str, text: Option<&'a str>) -> Result<Option<&'a str>, ApiError> {
    let text = text.map(str::trim).filter(|t| !t.is_empty());
    if text.is_some_and(|t| t.chars().count() > REASON_MAX) {
        return Err(ApiError::invalid_field(
            field,
            "must be at most 1000 characters",
        ));
    }
    Ok(text)
}

/// The member `member_id` if they may moderate (the `ADMIN` role, not suspended); `GLOBAL_105`
/// otherwise.
pub async fn require_admin(state: &AppState, member_id: i64) -> Result<Member, ApiError> {
    match members::find_by_id(&state.db, member_id).await? {
        Some(member) if member.is_admin() => Ok(member),
        _ => Err(ApiError::with_message(ErrorCode::Forbidden, "Admins only")),
    }
}

/// Which reports `GET /admin/reports?status=` asks for: `GLOBAL_007` for anything but `open`,
/// `resolved` or nothing (every report).
pub fn parse_status(status: Option<&str>) -> Result<Status, ApiError> {
    match status.map(str::trim) {
        None | Some("") => Ok(Status::Any),
        Some("open") => Ok(Status::Open),
        Some("resolved") => Ok(Status::Resolved),
        Some(_) => Err(ApiError::with_message(
            ErrorCode::InvalidParameter,
            "status must be open or resolved",
        )),
    }
}

/// One page of reports with `status`, newest first, for admin `admin`.
pub async fn list_reports(
    state: &AppState,
    admin: i64,
    status: Status,
    page: Page,
) -> Result<ReportPage, ApiError> {
    require_admin(state, admin).await?;
    let reports: Vec<ReportView> = repo::page(&state.db, status, page)
        .await?
        .into_iter()
        .map(report_view)
        .collect();
    Ok(ReportPage {
        size: reports.len(),
        reports,
    })
}

/// A stored report as the wire shows it.
pub fn report_view(r: ReportRow) -> ReportView {
    ReportView {
        id: r.id,
        reporter_id: r.reporter_id,
        target_id: r.target_id,
        reason: r.reason,
        created_at: format_timestamp(r.created_at),
        status: if r.resolved_at.is_some() {
            "resolved"
        } else {
            "open"
        }
        .to_owned(),
        action: r.action,
        note: r.note,
        resolved_by: r.resolved_by,
        resolved_at: r.resolved_at.map(format_timestamp),
    }
}

/// Suspends member `target` for admin `admin`: their sessions are revoked (the edge refuses their
/// tokens from the answer on), login answers `AUTH_013`, and their posts leave every feed (the feed
/// version is bumped, so no page the edge cached before is served after). Suspending a suspended
/// member keeps the first suspension.
pub async fn suspend(
    state: &AppState,
    admin: i64,
    target: i64,
    reason: &str,
) -> Result<SuspensionResponse, ApiError> {
    require_admin(state, admin).await?;
    let reason = match optional_text("reason", Some(reason))? {
        Some(reason) => reason,
        None => return Err(ApiError::invalid_field("reason", "must not be blank")),
    };
    if target == admin {
        return Err(ApiError::invalid_field("id", "cannot suspend yourself"));
    }
    let Some((suspension, sessions)) =
        members::suspend(&state.db, target, reason, state.clock.now()).await?
    else {
        return Err(ApiError::no_such_member("id", target));
    };
    for sid in &sessions {
        state.revocations.publish(sid).await;
    }
    state.feed_version.bump().await;
    tracing::info!(
        admin,
        member_id = target,
        sessions = sessions.len(),
        "member suspended"
    );
    Ok(suspension_response(target, Some(suspension)))
}

/// Lifts the suspension of member `target`: they may log in again and their posts return to the
/// feeds (the feed version is bumped). Their revoked sessions stay revoked.
pub async fn unsuspend(
    state: &AppState,
    admin: i64,
    target: i64,
) -> Result<SuspensionResponse, ApiError> {
    require_admin(state, admin).await?;
    if !members::unsuspend(&state.db, target).await? {
        return Err(ApiError::no_such_member("id", target));
    }
    state.feed_version.bump().await;
    tracing::info!(admin, member_id = target, "member unsuspended");
    Ok(suspension_response(target, None))
}

fn suspension_response(member_id: i64, suspension: Option<Suspension>) -> SuspensionResponse {
    SuspensionResponse {
        member_id,
        suspended: suspension.is_some(),
        suspended_at: suspension
            .as_ref()
            .map(|s| format_timestamp(s.suspended_at)),
        reason: suspension.and_then(|s| s.reason),
    }
}

/// How a report is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing happens to the reported member.
    Dismiss,
    /// The reported member is suspended, and every open report about them resolved with it.
    Suspend,
}

impl Action {
    /// `dismiss` or `suspend`; `GLOBAL_002` on `action` otherwise.
    pub fn parse(action: &str) -> Result<Action, ApiError> {
        match action.trim() {
            "dismiss" => Ok(Action::Dismiss),
            "suspend" => Ok(Action::Suspend),
            _ => Err(ApiError::invalid_field(
                "action",
                "must be dismiss or suspend",
            )),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Action::Dismiss => "dismiss",
            Action::Suspend => "suspend",
        }
    }
}

/// Resolves report `id` with `action` and `note` for admin `admin`. A report resolved already keeps
/// its first resolution (the answer shows it). Suspending uses the note as the reason, or the
/// report's own reason when there is no note; a reported member who deleted their account is
/// not suspended (there is no one left to suspend).
pub async fn resolve(
    state: &AppState,
    admin: i64,
    id: i64,
    action: &str,
    note: Option<&str>,
) -> Result<ReportView, ApiError> {
    require_admin(state, admin).await?;
    let action = Action::parse(action)?;
    let note = optional_text("note", note)?;
    let Some(report) = repo::find(&state.db, id).await? else {
        return Err(ApiError::with_message(
            ErrorCode::NoSuchRoute,
            format!("No such report: {id}"),
        ));
    };
    if report.resolved_at.is_none() {
        let resolution = Resolution {
            admin,
            action: action.as_str(),
            note,
            now: state.clock.now(),
        };
        match action {
            Action::Dismiss => repo::resolve(&state.db, id, resolution).await?,
            Action::Suspend => {
                if members::exists(&state.db, report.target_id).await? {
                    let reason = note.or(report.reason.as_deref()).unwrap_or("reported");
                    suspend(state, admin, report.target_id, reason).await?;
                }
                repo::resolve_about(&state.db, report.target_id, resolution).await?;
            }
        }
    }
    let report = repo::find(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::code(ErrorCode::NoSuchRoute))?;
    Ok(report_view(report))
}

/// The suspension of member `id`, if any (for the console).
pub async fn suspension_of(state: &AppState, id: i64) -> Result<Option<Suspension>, ApiError> {
    Ok(members::suspension(&state.db, id).await?)
}
