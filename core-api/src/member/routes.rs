//! The `/member/*` endpoints. Identity comes from the access token; a `member_id` in the request
//! that names someone else is `GLOBAL_105`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use heart_shared::wire::{
    AvatarResponse, MemberListResponse, MemberTargetRequest, MemberTargetResponse, ProfileResponse,
};
use heart_shared::{ErrorBody, ErrorCode};
use serde::Deserialize;

use super::service;
use crate::auth::AuthenticatedMember;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use crate::upload::{read_form, ApiMultipart};

/// `?member_id=n`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct MemberQuery {
    /// The member.
    pub member_id: Option<i64>,
}

impl MemberQuery {
    fn member_id(&self) -> Result<i64, ApiError> {
        self.member_id.ok_or_else(|| {
            ApiError::with_message(
                ErrorCode::InvalidParameter,
                "Missing query parameter member_id",
            )
        })
    }
}

/// Replaces the caller's avatar.
#[utoipa::path(post, path = "/member/uploadAvatar", tag = "member", security(("bearer" = [])),
    request_body(content = inline(AvatarUpload), content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Avatar stored; the old one is deleted", body = AvatarResponse),
        (status = 400, description = "GLOBAL_007 member_id missing, GLOBAL_009 file missing", body = ErrorBody),
        (status = 403, description = "GLOBAL_105 member_id is not the caller", body = ErrorBody),
        (status = 404, description = "MEMBER_001 member does not exist", body = ErrorBody),
        (status = 413, description = "GLOBAL_008 file too large", body = ErrorBody),
        (status = 415, description = "MEMBER_004 not a PNG/JPEG/WebP/GIF image", body = ErrorBody),
        (status = 503, description = "MEMBER_002 storage upload failed", body = ErrorBody),
    ))]
pub async fn upload_avatar(
    State(state): State<AppState>,
    caller: AuthenticatedMember,
    form: ApiMultipart,
) -> Result<(StatusCode, Json<AvatarResponse>), ApiError> {
    let limits = crate::config::UploadLimits {
        max_files: 1,
        ..state.config.uploads
    };
    let mut form = read_form(form, limits, &["file"]).await?;
    caller.require_is(form.number("member_id")?)?;
    let file = form
        .files
        .iter()
        .position(|f| f.field == "file")
        .map(|i| form.files.swap_remove(i));
    let Some(file) = file else {
        return Err(ApiError::with_message(
            ErrorCode::MissingFilePart,
            "Missing file part file",
        ));
    };
    let answer = service::upload_avatar(&state, &caller, file.bytes).await?;
    Ok((StatusCode::CREATED, Json(answer)))
}

/// The multipart body of `uploadAvatar`.
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct AvatarUpload {
    /// The caller's id.
    member_id: i64,
    /// The image.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// Any member's profile.
#[utoipa::path(get, path = "/member/profile", tag = "member", security(("bearer" = [])), params(MemberQuery),
    responses(
        (status = 200, body = ProfileResponse),
        (status = 400, description = "GLOBAL_007 member_id missing or malformed", body = ErrorBody),
        (status = 404, description = "MEMBER_005 no such member (or suspended, to anyone but themself)", body = ErrorBody),
    ))]
pub async fn profile(
    State(state): State<AppState>,
    caller: AuthenticatedMember,
    ApiQuery(query): ApiQuery<MemberQuery>,
) -> Result<Json<ProfileResponse>, ApiError> {
    Ok(Json(
        service::profile(&state, caller.member_id, query.member_id()?).await?,
    ))
}

/// The caller blocks a member; follows between them end, and the feed hides their posts.
#[utoipa::path(post, path = "/member/block", tag = "member", security(("bearer" = [])), request_body = MemberTargetRequest,
    responses(
        (status = 200, body = MemberTargetResponse),
        (status = 400, description = "GLOBAL_002 blocking yourself or ids missing", body = ErrorBody),
        (status = 403, description = "GLOBAL_105 member_id is not the caller", body = ErrorBody),
        (status = 404, description = "MEMBER_005 no such target", body = ErrorBody),
        (status = 409, description = "MEMBER_006 already blocking", body = ErrorBody),
    ))]
pub async fn block(
    State(state): State<AppState>,
    caller: AuthenticatedMember,
    ApiJson(request): ApiJson<MemberTargetRequest>,
) -> Result<Json<MemberTargetResponse>, ApiError> {
    let (member_id, target_id) = caller.caller_and_target(request.member_id, request.target_id)?;
    service::block(&state, member_id, target_id).await?;
    Ok(Json(MemberTargetResponse {
        member_id,
        target_id,
    }))
}

/// The caller unblocks a member (idempotent).
#[utoipa::path(post, path = "/member/unblock", tag = "member", security(("bearer" = [])), request_body = MemberTargetRequest,
    responses(
        (status = 200, body = MemberTargetResponse),
        (status = 403, description = "GLOBAL_105 member_id is not the caller", body = ErrorBody),
        (status = 404, description = "MEMBER_005 no such target", body = ErrorBody),
    ))]
pub async fn unblock(
    State(state): State<AppState>,
    caller: AuthenticatedMember,
    ApiJson(request): ApiJson<MemberTargetRequest>,
) -> Result<Json<MemberTargetResponse>, ApiError> {
    let (member_id, target_id) = caller.caller_and_target(request.member_id, request.target_id)?;
    service::unblock(&state, member_id, target_id).await?;
    Ok(Json(MemberTargetResponse {
        member_id,
        target_id,
    }))
}

/// The members the caller blocks.
#[utoipa::path(get, path = "/member/getBlockingMembers", tag = "member", security(("bearer" = [])), params(MemberQuery),
    responses(
        (status = 200, body = MemberListResponse),
        (status = 400, description = "GLOBAL_007 member_id missing or malformed", body = ErrorBody),
        (status = 403, description = "GLOBAL_105 member_id is not the caller", body = ErrorBody),
    ))]
pub async fn blocking_members(
    State(state): State<AppState>,
    caller: AuthenticatedMember,
    ApiQuery(query): ApiQuery<MemberQuery>,
) -> Result<Json<MemberListResponse>, ApiError> {
    let member_id = query.member_id()?;
    caller.require_is(member_id)?;
    Ok(Json(service::blocking_members(&state, member_id).await?))
}

/// Deletes the caller's account and everything of theirs.
#[utoipa::path(delete, path = "/member/delete/{id}", tag = "member", security(("bearer" = [])),
    params(("id" = i64, Path, description = "The caller's member id")),
    responses(
        (status = 204, description = "Deleted; every session of the member is revoked"),
        (status = 400, description = "GLOBAL_007 id malformed", body = ErrorBody),
        (status = 403, description = "GLOBAL_105 not the caller's account", body = ErrorBody),
        (status = 503, description = "MEMBER_007 storage unavailable; nothing was deleted", body = ErrorBody),
    ))]
pub async fn delete_account(
    State(state): State<AppState>,
    caller: AuthenticatedMember,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    caller.require_is(id)?;
    service::delete_account(&state, &caller).await?;
    Ok(StatusCode::NO_CONTENT)
}
