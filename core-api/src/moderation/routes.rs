//! The moderation endpoints: `/member/report` for members, `/admin/reports` for admins.

use axum::extract::State;
use axum::Json;
use heart_shared::wire::{MemberTargetResponse, ReportPage, ReportRequest};
use heart_shared::ErrorBody;

use super::service;
use crate::auth::AuthenticatedMember;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};
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
    Ok(Json(
        service::list_reports(&state, &caller, query.page()?).await?,
    ))
}
