//! The moderation endpoints: `/member/report` for members, `/admin/…` for admins.

use axum::extract::State;
use axum::Json;
use heart_shared::wire::{
    MemberTargetResponse, ReportPage, ReportRequest, ReportView, ResolveReportRequest,
    SuspendRequest, SuspensionResponse,
};
use heart_shared::ErrorBody;

use super::service;
use crate::auth::AuthenticatedMember;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::paging::PageQuery;
use crate::state::AppState;

/// Reports a member for moderation (once per pair).
#[utoipa::path(post, path = "/member/report", tag = "member", security(("bearer" = [])), request_body = ReportRequest,
    responses(
        (status = 200, body = MemberTargetResponse),
        (status = 400, description = "GLOBAL_002 reporting yourself, ids missing or reason too long", body = ErrorBody),
        (status = 403, description = "GLOBAL_105 member_id is not the caller", body = ErrorBody),
        (status = 404, description = "MEMBER_005 no such target", body = ErrorBody),
    ))]
pub async fn report(
    State(state): State<AppState>,
    caller: AuthenticatedMember,
    ApiJson(request): ApiJson<ReportRequest>,
) -> Result<Json<MemberTargetResponse>, ApiError> {
    let (member_id, target_id) = caller.caller_and_target(request.member_id, request.target_id)?;
    service::report(&state, member_id, target_id, request.reason.as_deref()).await?;
    Ok(Json(MemberTargetResponse {
        member_id,
        target_id,
    }))
}

/// `?status=open|resolved&page=&size=` of `GET /admin/reports`.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportListQuery {
    /// `open` or `resolved`; every report when absent.
    pub status: Option<String>,
    /// Page number from 0 (default 0).
    pub page: Option<i64>,
    /// Page size, 1 to 100 (default 10).
    pub size: Option<i64>,
}

/// Reports, newest first, all or only the open or resolved ones. Members with the `ADMIN` role only.
#[utoipa::path(get, path = "/admin/reports", tag = "admin", security(("bearer" = [])), params(ReportListQuery),
    responses(
        (status = 200, body = ReportPage),
        (status = 400, description = "GLOBAL_007 bad status, page or size", body = ErrorBody),
        (status = 403, description = "GLOBAL_105 not an admin", body = ErrorBody),
    ))]
pub async fn list_reports(
    State(state): State<AppState>,
    caller: AuthenticatedMember,
    ApiQuery(query): ApiQuery<ReportListQuery>,
) -> Result<Json<ReportPage>, ApiError> {
    let page = PageQuery {
        page: query.page,
        size: query.size,
        ..PageQuery::default()
    }
    .page()?;
    let status = service::parse_status(query.status.as_deref())?;
    Ok(Json(
        service::list_reports(&state, caller.member_id, status, page).await?,
    ))
}

/// Suspends a member: their sessions are revoked at once, login answers `AUTH_013`, their posts
/// leave every feed and their profile answers `MEMBER_005` to others. `ADMIN` role only.
#[utoipa::path(post, path = "/admin/members/{id}/suspend", tag = "admin", security(("bearer" = [])),
    params(("id" = i64, Path, description = "The member to suspend")), request_body = SuspendRequest,
    responses(
        (status = 200, body = SuspensionResponse),
        (status = 400, description = "GLOBAL_002 reason blank or too long, or suspending yourself; GLOBAL_004 unreadable body; GLOBAL_007 bad id", body = ErrorBody),
        (status = 403, description = "GLOBAL_105 not an admin", body = ErrorBody),
        (status = 404, description = "MEMBER_005 no such member", body = ErrorBody),
    ))]
pub async fn suspend(
    State(state): State<AppState>,
    caller: AuthenticatedMember,
    ApiPath(id): ApiPath<i64>,
    ApiJson(request): ApiJson<SuspendRequest>,
) -> Result<Json<SuspensionResponse>, ApiError> {
    Ok(Json(
        service::suspend(&state, caller.member_id, id, &request.reason).await?,
    ))
}

/// Lifts a member's suspension. `ADMIN` role only.
#[utoipa::path(post, path = "/admin/members/{id}/unsuspend", tag = "admin", security(("bearer" = [])),
    params(("id" = i64, Path, description = "The suspended member")),
    responses(
        (status = 200, body = SuspensionResponse),
        (status = 400, description = "GLOBAL_007 bad id", body = ErrorBody),
        (status = 403, description = "GLOBAL_105 not an admin", body = ErrorBody),
        (status = 404, description = "MEMBER_005 no such member", body = ErrorBody),
    ))]
pub async fn unsuspend(
    State(state): State<AppState>,
    caller: AuthenticatedMember,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<SuspensionResponse>, ApiError> {
    Ok(Json(
        service::unsuspend(&state, caller.member_id, id).await?,
    ))
}

/// Resolves a report: `dismiss`, or `suspend` the reported member (which resolves every open
/// report about them). A resolved report keeps its first resolution. `ADMIN` role only.
#[utoipa::path(post, path = "/admin/reports/{id}/resolve", tag = "admin", security(("bearer" = [])),
    params(("id" = i64, Path, description = "The report")), request_body = ResolveReportRequest,
    responses(
        (status = 200, body = ReportView),
        (status = 400, description = "GLOBAL_002 action not dismiss or suspend, note too long; GLOBAL_004 unreadable body; GLOBAL_007 bad id", body = ErrorBody),
        (status = 403, description = "GLOBAL_105 not an admin", body = ErrorBody),
        (status = 404, description = "GLOBAL_001 no such report", body = ErrorBody),
    ))]
pub async fn resolve_report(
    State(state): State<AppState>,
    caller: AuthenticatedMember,
    ApiPath(id): ApiPath<i64>,
    ApiJson(request): ApiJson<ResolveReportRequest>,
) -> Result<Json<ReportView>, ApiError> {
    Ok(Json(
        service::resolve(
            &state,
            caller.member_id,
            id,
            &request.action,
            request.note.as_deref(),
        )
        .await?,
    ))
}
