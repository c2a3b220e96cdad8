//! Follow use cases: follow, unfollow, and the lists of either side.

use heart_shared::wire::MemberListResponse;
use heart_shared::ErrorCode;

use super::repo::{self, Direction};
use crate::error::ApiError;
use crate::member::repo as members;
use crate::paging::Page;
use crate::state::AppState;

/// `follower` follows `followee`. Idempotent; refused while either blocks the other.
pub async fn add(state: &AppState, follower: i64, followee: i64) -> Result<(), ApiError> {
    if follower == followee {
        return Err(ApiError::invalid_field(
            "target_id",
            "cannot follow yourself",
        ));
    }
    if !members::exists(&state.db, followee).await? {
        return Err(ApiError::no_such_member("target_id", followee));
    }
    if members::blocked_either_way(&state.db, follower, followee).await? {
        return Err(ApiError::with_message(
            ErrorCode::Forbidden,
            "Cannot follow while blocked",
        ));
    }
    if let Err(e) = repo::insert_once(&state.db, follower, followee, state.clock.now()).await {
        if members::target_gone(&state.db, follower, &e).await {
            return Err(ApiError::no_such_member("target_id", followee));
        }
        return Err(e.into());
    }
    state.feed_version.bump().await;
    Ok(())
}

/// `follower` stops following `followee` (idempotent).
pub async fn remove(state: &AppState, follower: i64, followee: i64) -> Result<(), ApiError> {
    if !members::exists(&state.db, followee).await? {
        return Err(ApiError::no_such_member("target_id", followee));
    }
    repo::delete(&state.db, follower, followee).await?;
    state.feed_version.bump().await;
    Ok(())
}

/// One page of the members on the `direction` side of `member_id`, newest follow first, as
/// `viewer` asked for it.
pub async fn list(
    state: &AppState,
    viewer: i64,
    member_id: i64,
    page: Page,
    direction: Direction,
) -> Result<MemberListResponse, ApiError> {
    // From the read replica when it may serve `viewer` (`Db::read_found`).
    let rows = state
        .db
        .read_found(Some(viewer), |db| async move {
            if !members::exists(&db, member_id).await? {
                return Ok(None);
            }
            repo::page(&db, member_id, direction, page).await.map(Some)
        })
        .await?
        .ok_or_else(|| ApiError::no_such_member("member_id", member_id))?;
    let base_url = &state.config.storage.public_base_url;
    let members: Vec<_> = rows
        .into_iter()
        .map(|row| row.into_summary(base_url))
        .collect();
    Ok(MemberListResponse {
        size: members.len(),
        members,
    })
}
