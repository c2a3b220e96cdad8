//! The follow graph's endpoints: `/member/follow`, `/member/unfollow`, `/member/followers`,
//! `/member/followings`.

use axum::extract::State;
use axum::Json;
use heart_shared::wire::{MemberListResponse, MemberTargetRequest, MemberTargetResponse};
use heart_shared::ErrorBody;

use super::repo::Direction;
use super::service;
use crate::auth::AuthenticatedMember;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};
use crate::paging::PageQuery;
use crate::state::AppState;

/// The caller follows a member.
#[utoipa::path(post, path = "/member/follow", tag = "follow", security(("bearer" = [])), request_body = MemberTargetRequest,
    responses(
        (status = 200, body = MemberTargetResponse),
        (status = 400, description = "GLOBAL_002 following yourself or ids missing", body = ErrorBody),
        (status = 403, description = "GLOBAL_105 member_id is not the caller, or a block stands between them", body = ErrorBody),
        (status = 404, description = "MEMBER_005 no such target", body = ErrorBody),
    ))]
pub async fn follow(
    State(state): State<AppState>,
    caller: AuthenticatedMember,
    ApiJson(request): ApiJson<MemberTargetRequest>,
) -> Result<Json<MemberTargetResponse>, ApiError> {
    let (member_id, target_id) = caller.caller_and_target(request.member_id, request.target_id)?;
    service::add(&state, member_id, target_id).await?;
    Ok(Json(MemberTargetResponse {
        member_id,
        target_id,
    }))
}

/// The caller stops following a member (idempotent).
#[utoipa::path(post, path = "/member/unfollow", tag = "follow", security(("bearer" = [])), request_body = MemberTargetRequest,
    responses(
        (status = 200, body = MemberTargetResponse),
        (status = 403, description = "GLOBAL_105 member_id is not the caller", body = ErrorBody),
        (status = 404, description = "MEMBER_005 no such target", body = ErrorBody),
    ))]
pub async fn unfollow(
    State(state): State<AppState>,
    caller: AuthenticatedMember,
    ApiJson(request): ApiJson<MemberTargetRequest>,
) -> Result<Json<MemberTargetResponse>, ApiError> {
    let (member_id, target_id) = caller.caller_and_target(request.member_id, request.target_id)?;
    service::remove(&state, member_id, target_id).await?;
    Ok(Json(MemberTargetResponse {
        member_id,
        target_id,
    }))
}

/// Who follows a member.
#[utoipa::path(get, path = "/member/followers", tag = "follow", security(("bearer" = [])), params(PageQuery),
    responses(
        (status = 200, body = MemberListResponse),
        (status = 400, description = "GLOBAL_007 bad member_id, page or size", body = ErrorBody),
        (status = 404, description = "MEMBER_005 no such member", body = ErrorBody),
    ))]
pub async fn followers(
    State(state): State<AppState>,
    caller: AuthenticatedMember,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<MemberListResponse>, ApiError> {
    Ok(Json(
        service::list(
            &state,
            caller.member_id,
            query.member_id()?,
            query.page()?,
            Direction::Followers,
        )
        .await?,
    ))
}

/// Whom a member follows.
#[utoipa::path(get, path = "/member/followings", tag = "follow", security(("bearer" = [])), params(PageQuery),
    responses(
        (status = 200, body = MemberListResponse),
        (status = 400, description = "GLOBAL_007 bad member_id, page or size", body = ErrorBody),
        (status = 404, description = "MEMBER_005 no such member", body = ErrorBody),
    ))]
pub async fn followings(
    State(state): State<AppState>,
    caller: AuthenticatedMember,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<MemberListResponse>, ApiError> {
    Ok(Json(
        service::list(
            &state,
            caller.member_id,
            query.member_id()?,
            query.page()?,
            Direction::Followings,
        )
        .await?,
    ))
}
