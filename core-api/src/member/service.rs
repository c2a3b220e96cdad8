//! Member use cases: profile, avatar, blocks, account deletion.

use bytes::Bytes;
use heart_shared::wire::{AvatarResponse, MemberListResponse, MemberSummary, ProfileResponse};
use heart_shared::ErrorCode;

use super::repo::{self, MemberRow};
use crate::app::AppState;
use crate::auth::AuthenticatedMember;
use crate::error::ApiError;
use crate::{images, storage};

/// The absolute URL of an object key.
pub fn media_url(state: &AppState, key: &str) -> String {
    storage::public_url(&state.config.storage.public_base_url, key)
}

/// A list row as the wire's member summary.
pub fn summary(state: &AppState, row: MemberRow) -> MemberSummary {
    MemberSummary {
        id: row.id,
        email: row.email,
        nickname: row.nickname,
        name: row.name,
        avatar_url: row.avatar_key.map(|k| media_url(state, &k)),
    }
}

/// `MEMBER_005` naming which field points at no member.
pub fn no_such_member(field: &str, id: i64) -> ApiError {
    ApiError::with_message(
        ErrorCode::NoSuchMember,
        format!("{field} {id} names no member"),
    )
}

/// Any member's profile with their counts.
pub async fn profile(state: &AppState, member_id: i64) -> Result<ProfileResponse, ApiError> {
    let member = repo::find_by_id(&state.db, member_id)
        .await?
        .ok_or_else(|| no_such_member("member_id", member_id))?;
    let (post_size, follower_size, following_size) = repo::counts(&state.db, member_id).await?;
    Ok(ProfileResponse {
        member_id: member.id,
        email: member.email,
        name: member.name,
        nickname: member.nickname,
        avatar_url: member.avatar_key.map(|k| media_url(state, &k)),
        post_size,
        follower_size,
        following_size,
    })
}

/// Checks and cleans an uploaded image on the blocking pool; `not_an_image` is the domain's code.
pub async fn clean_image(
    bytes: Bytes,
    not_an_image: ErrorCode,
) -> Result<images::CleanImage, ApiError> {
    let cleaned = tokio::task::spawn_blocking(move || images::sanitize(&bytes))
        .await
        .map_err(ApiError::internal)?;
    cleaned.map_err(|error| match error {
        images::ImageError::TooLarge(detail) => ApiError::with_message(
            ErrorCode::PayloadTooLarge,
            format!("Image too large: {detail}"),
        ),
        other => ApiError::with_message(not_an_image, other.to_string()),
    })
}

/// Replaces the caller's avatar. The new object is stored first; the old one is deleted after the
/// row points at the new one, so no row ever points at a missing object.
pub async fn upload_avatar(
    state: &AppState,
    caller: &AuthenticatedMember,
    file: Bytes,
) -> Result<AvatarResponse, ApiError> {
    if !repo::exists(&state.db, caller.member_id).await? {
        return Err(ApiError::code(ErrorCode::MemberNotFound));
    }
    let image = clean_image(file, ErrorCode::AvatarNotAnImage).await?;
    let now = state.clock.now();
    let key = storage::object_key("avatars", now, image.kind.extension());
    state
        .storage
        .put(&key, image.bytes, image.kind.mime())
        .await
        .map_err(|e| ApiError::Unavailable {
            dependency: "storage",
            code: ErrorCode::AvatarUploadFailed,
            source: e.into(),
        })?;
    let previous = match repo::replace_avatar(&state.db, caller.member_id, &key, now).await {
        Ok(Some(previous)) => previous,
        Ok(None) => {
            crate::garbage::delete_or_queue(state, vec![key]).await;
            return Err(ApiError::code(ErrorCode::MemberNotFound));
        }
        Err(e) => {
            crate::garbage::delete_or_queue(state, vec![key]).await;
            return Err(e.into());
        }
    };
    state.feed_version.bump().await;
    if let Some(previous) = previous {
        crate::garbage::delete_or_queue(state, vec![previous]).await;
    }
    Ok(AvatarResponse {
        member_id: caller.member_id,
        avatar_url: media_url(state, &key),
    })
}

/// The members the caller blocks.
pub async fn blocking_members(
    state: &AppState,
    member_id: i64,
) -> Result<MemberListResponse, ApiError> {
    let members: Vec<MemberSummary> = repo::blocked_by(&state.db, member_id)
        .await?
        .into_iter()
        .map(|r| summary(state, r))
        .collect();
    Ok(MemberListResponse {
        size: members.len(),
        members,
    })
}

/// The caller blocks `target`; follows between them end.
pub async fn block(state: &AppState, caller: i64, target: i64) -> Result<(), ApiError> {
    if caller == target {
        return Err(ApiError::invalid_field(
            "target_id",
            "cannot block yourself",
        ));
    }
    if !repo::exists(&state.db, target).await? {
        return Err(no_such_member("target_id", target));
    }
    if !repo::block(&state.db, caller, target, state.clock.now()).await? {
        return Err(ApiError::code(ErrorCode::AlreadyBlocking));
    }
    state.feed_version.bump().await;
    Ok(())
}

/// The caller unblocks `target` (idempotent).
pub async fn unblock(state: &AppState, caller: i64, target: i64) -> Result<(), ApiError> {
    if !repo::exists(&state.db, target).await? {
        return Err(no_such_member("target_id", target));
    }
    repo::unblock(&state.db, caller, target).await?;
    state.feed_version.bump().await;
    Ok(())
}

/// Deletes the caller's account and everything of theirs; their tokens stop working at once.
///
/// The rows go in one transaction; the objects after it. If storage is down before anything was
/// deleted, the answer is `MEMBER_007` and the account is intact; an object whose deletion fails
/// afterwards is queued and deleted later, so nothing points at a missing object.
pub async fn delete_account(
    state: &AppState,
    caller: &AuthenticatedMember,
) -> Result<(), ApiError> {
    let member = repo::find_by_id(&state.db, caller.member_id)
        .await?
        .ok_or_else(|| ApiError::code(ErrorCode::MemberGone))?;
    let keys = repo::object_keys(&state.db, member.id).await?;
    if let Some(first) = keys.first() {
        state
            .storage
            .exists(first)
            .await
            .map_err(|e| ApiError::Unavailable {
                dependency: "storage",
                code: ErrorCode::AvatarDeleteFailed,
                source: e.into(),
            })?;
    }
    let mut sessions = repo::delete(&state.db, member.id, &member.email).await?;
    state.feed_version.bump().await;
    if !sessions.contains(&caller.session_id) {
        sessions.push(caller.session_id.clone());
    }
    for sid in &sessions {
        crate::auth::service::publish_revocation(state, sid).await;
    }
    crate::garbage::delete_or_queue(state, keys).await;
    tracing::info!(
        member_id = member.id,
        sessions = sessions.len(),
        "account deleted"
    );
    Ok(())
}
