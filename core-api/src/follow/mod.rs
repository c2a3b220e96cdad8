//! The follow graph (`/member/follow`, `/member/unfollow`, `/member/followers`, `/member/followings`).

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use heart_shared::wire::{MemberListResponse, MemberTargetRequest, MemberTargetResponse};
use heart_shared::{ErrorBody, ErrorCode};

use crate::app::AppState;
use crate::auth::AuthenticatedMember;
use crate::db::{Db, DbKind};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};
use crate::member::repo::{self as members, MemberRow};
use crate::member::routes::caller_and_target;
use crate::member::service::{no_such_member, summary};
use crate::paging::{Page, PageQuery};

/// The follow routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/member/follow", post(follow))
        .route("/member/unfollow", post(unfollow))
        .route("/member/followers", get(followers))
        .route("/member/followings", get(followings))
}

/// `follower` follows `followee`. Idempotent; refused while either blocks the other.
pub async fn add(state: &AppState, follower: i64, followee: i64) -> Result<(), ApiError> {
    if follower == followee {
        return Err(ApiError::invalid_field(
            "target_id",
            "cannot follow yourself",
        ));
    }
    if !members::exists(&state.db, followee).await? {
        return Err(no_such_member("target_id", followee));
    }
    if members::blocked_either_way(&state.db, follower, followee).await? {
        return Err(ApiError::with_message(
            ErrorCode::Forbidden,
            "Cannot follow while blocked",
        ));
    }
    insert_once(&state.db, follower, followee, state.clock.now()).await?;
    state.feed_version.bump().await;
    Ok(())
}

async fn insert_once(db: &Db, follower: i64, followee: i64, now: i64) -> Result<(), sqlx::Error> {
    let sql = match db.kind {
        DbKind::Sqlite => {
            "INSERT OR IGNORE INTO follows (follower_id, followee_id, created_at) VALUES (?, ?, ?)"
        }
        DbKind::MySql => {
            "INSERT IGNORE INTO follows (follower_id, followee_id, created_at) VALUES (?, ?, ?)"
        }
    };
    sqlx::query(sql)
        .bind(follower)
        .bind(followee)
        .bind(now)
        .execute(&db.pool)
        .await
        .map(|_| ())
}

/// Members following `member_id` (`followers`) or followed by them (`followings`), newest first.
async fn list(
    state: &AppState,
    member_id: i64,
    page: Page,
    followers: bool,
) -> Result<MemberListResponse, ApiError> {
    if !members::exists(&state.db, member_id).await? {
        return Err(no_such_member("member_id", member_id));
    }
    let sql = if followers {
        "SELECT m.id, m.email, m.nickname, m.name, m.avatar_key FROM follows f JOIN members m ON m.id = f.follower_id \
         WHERE f.followee_id = ? ORDER BY f.created_at DESC, m.id DESC LIMIT ? OFFSET ?"
    } else {
        "SELECT m.id, m.email, m.nickname, m.name, m.avatar_key FROM follows f JOIN members m ON m.id = f.followee_id \
         WHERE f.follower_id = ? ORDER BY f.created_at DESC, m.id DESC LIMIT ? OFFSET ?"
    };
    let rows: Vec<MemberRow> = sqlx::query_as(sql)
        .bind(member_id)
        .bind(page.size)
        .bind(page.number * page.size)
        .fetch_all(&state.db.pool)
        .await?;
    let members: Vec<_> = rows.into_iter().map(|r| summary(state, r)).collect();
    Ok(MemberListResponse {
        size: members.len(),
        members,
    })
}

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
    let (member_id, target_id) = caller_and_target(&caller, request.member_id, request.target_id)?;
    add(&state, member_id, target_id).await?;
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
    let (member_id, target_id) = caller_and_target(&caller, request.member_id, request.target_id)?;
    if !members::exists(&state.db, target_id).await? {
        return Err(no_such_member("target_id", target_id));
    }
    sqlx::query("DELETE FROM follows WHERE follower_id = ? AND followee_id = ?")
        .bind(member_id)
        .bind(target_id)
        .execute(&state.db.pool)
        .await?;
    state.feed_version.bump().await;
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
    _caller: AuthenticatedMember,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<MemberListResponse>, ApiError> {
    Ok(Json(
        list(&state, query.member_id()?, query.page()?, true).await?,
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
    _caller: AuthenticatedMember,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<MemberListResponse>, ApiError> {
    Ok(Json(
        list(&state, query.member_id()?, query.page()?, false).await?,
    ))
}
