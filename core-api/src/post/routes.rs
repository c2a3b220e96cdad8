//! The `/post/*` endpoints.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use heart_shared::wire::{PostPage, RegisteredPost};
use heart_shared::ErrorBody;

use super::repo::Feed;
use super::service;
use crate::auth::AuthenticatedMember;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery};
use crate::paging::PageQuery;
use crate::state::AppState;
use crate::upload::{read_form, ApiMultipart};

/// The multipart body of `registerPost`.
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct PostUpload {
    /// The caller's id.
    member_id: i64,
    /// 1 to 5000 characters.
    content: String,
    /// 0 to 10 images (PNG, JPEG, WebP, GIF), each at most 10 MB; repeat the part.
    #[schema(value_type = Vec<String>, format = Binary)]
    files: Vec<Vec<u8>>,
}

/// Creates a post with up to 10 images.
#[utoipa::path(post, path = "/post/registerPost", tag = "post", security(("bearer" = [])),
    request_body(content = inline(PostUpload), content_type = "multipart/form-data"),
    responses(
        (status = 201, body = RegisteredPost),
        (status = 400, description = "GLOBAL_002 content empty or too long, GLOBAL_007 part missing, GLOBAL_004 not multipart", body = ErrorBody),
        (status = 403, description = "GLOBAL_105 member_id is not the caller", body = ErrorBody),
        (status = 404, description = "POST_000 writer does not exist", body = ErrorBody),
        (status = 413, description = "GLOBAL_008 too many or too large files", body = ErrorBody),
        (status = 415, description = "POST_001 a file is not an image", body = ErrorBody),
        (status = 503, description = "POST_002 storage failed; nothing was stored", body = ErrorBody),
    ))]
pub async fn register_post(
    State(state): State<AppState>,
    caller: AuthenticatedMember,
    form: ApiMultipart,
) -> Result<(StatusCode, Json<RegisteredPost>), ApiError> {
    let form = read_form(form, state.config.uploads, &["files"]).await?;
    caller.require_is(form.number("member_id")?)?;
    let content = form.text("content")?.to_owned();
    let answer = service::register(&state, &caller, &content, form.files).await?;
    Ok((StatusCode::CREATED, Json(answer)))
}

/// The home feed: every post, newest first, minus members the caller blocks.
#[utoipa::path(get, path = "/post/posts", tag = "post", security(("bearer" = [])), params(PageQuery),
    responses(
        (status = 200, body = PostPage),
        (status = 400, description = "GLOBAL_007 bad member_id, page, size or cursor", body = ErrorBody),
        (status = 403, description = "GLOBAL_105 member_id is not the caller", body = ErrorBody),
    ))]
pub async fn home_feed(
    State(state): State<AppState>,
    caller: AuthenticatedMember,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<PostPage>, ApiError> {
    caller.require_is(query.member_id()?)?;
    Ok(Json(
        service::feed(
            &state,
            caller.member_id,
            Feed::Home {
                viewer: caller.member_id,
            },
            query.page()?,
        )
        .await?,
    ))
}

/// One member's posts, newest first.
#[utoipa::path(get, path = "/post/posts/{member_id}", tag = "post", security(("bearer" = [])),
    params(("member_id" = i64, Path, description = "The writer"), PageQuery),
    responses(
        (status = 200, body = PostPage),
        (status = 400, description = "GLOBAL_007 bad member_id, page, size or cursor", body = ErrorBody),
    ))]
pub async fn writer_feed(
    State(state): State<AppState>,
    caller: AuthenticatedMember,
    ApiPath(member_id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<PostPage>, ApiError> {
    Ok(Json(
        service::feed(
            &state,
            caller.member_id,
            Feed::Writer { writer: member_id },
            query.page()?,
        )
        .await?,
    ))
}

/// Posts by the members the caller follows, and the caller's own.
#[utoipa::path(get, path = "/post/following", tag = "post", security(("bearer" = [])), params(PageQuery),
    responses(
        (status = 200, body = PostPage),
        (status = 400, description = "GLOBAL_007 bad member_id, page, size or cursor", body = ErrorBody),
        (status = 403, description = "GLOBAL_105 member_id is not the caller", body = ErrorBody),
    ))]
pub async fn following_feed(
    State(state): State<AppState>,
    caller: AuthenticatedMember,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<PostPage>, ApiError> {
    caller.require_is(query.member_id()?)?;
    Ok(Json(
        service::feed(
            &state,
            caller.member_id,
            Feed::Following {
                viewer: caller.member_id,
            },
            query.page()?,
        )
        .await?,
    ))
}

/// Deletes one of the caller's posts and its images.
#[utoipa::path(delete, path = "/post/delete/{post_id}", tag = "post", security(("bearer" = [])),
    params(("post_id" = i64, Path, description = "The post")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "GLOBAL_007 post_id malformed", body = ErrorBody),
        (status = 403, description = "GLOBAL_105 not the writer", body = ErrorBody),
        (status = 404, description = "POST_004 no such post", body = ErrorBody),
        (status = 503, description = "POST_002 storage unavailable; nothing was deleted", body = ErrorBody),
    ))]
pub async fn delete_post(
    State(state): State<AppState>,
    caller: AuthenticatedMember,
    ApiPath(post_id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    service::delete(&state, &caller, post_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
