//! `GET /member/export`: extract, start the export, answer its body as it is written.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use heart_shared::{ErrorBody, ErrorCode};
use serde::Deserialize;

use super::service;
use crate::auth::AuthenticatedMember;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::state::AppState;

/// `?member_id=n`: the caller.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ExportQuery {
    /// The caller; must be the token's member.
    pub member_id: Option<i64>,
}

/// Downloads everything of the caller's as a zip (extension 2026-12): `member.json` (profile,
/// follows, followers, blocks, reports made, sessions without secrets), `posts.json` (every post
/// with its image file names) and `images/…` (the stored objects). Streamed; one per hour (a
/// cut-off one may be started again, up to three starts an hour). A `HEAD` answers what a `GET`
/// would (the same checks and headers) and starts nothing.
#[utoipa::path(get, path = "/member/export", tag = "member", security(("bearer" = [])),
    params(ExportQuery),
    responses(
        (status = 200, description = "The archive, streamed", content_type = "application/zip", body = String),
        (status = 400, description = "GLOBAL_007 member_id missing or malformed", body = ErrorBody),
        (status = 401, description = "GLOBAL_103 invalid token, GLOBAL_104 expired, AUTH_010 member gone", body = ErrorBody),
        (status = 403, description = "GLOBAL_105 member_id is not the caller", body = ErrorBody),
        (status = 429, description = "GLOBAL_106 an export started less than an hour ago and was not cut off, or three did (Retry-After)", body = ErrorBody),
    ))]
pub async fn export(
    method: Method,
    State(state): State<AppState>,
    caller: AuthenticatedMember,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let member_id = query.member_id.ok_or_else(|| {
        ApiError::with_message(
            ErrorCode::InvalidParameter,
            "Missing query parameter member_id",
        )
    })?;
    caller.require_is(member_id)?;
    let (mut response, file_name) = if method == Method::HEAD {
        let file_name = service::preview(&state, &caller).await?;
        // No length: the `GET`'s archive is streamed, its length unknown beforehand.
        let no_length = futures_util::stream::empty::<Result<bytes::Bytes, std::io::Error>>();
        (Body::from_stream(no_length).into_response(), file_name)
    } else {
        let export = service::start(&state, &caller).await?;
        (export.body.into_response(), export.file_name)
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(disposition) = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\""))
    {
        headers.insert(header::CONTENT_DISPOSITION, disposition);
    }
    Ok(response)
}
