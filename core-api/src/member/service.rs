//! Member use cases: profile, avatar, blocks, account deletion.

use bytes::Bytes;
use heart_shared::wire::{AvatarResponse, MemberListResponse, MemberSummary, ProfileResponse};
use heart_shared::ErrorCode;

use super::repo;
use crate::auth::AuthenticatedMember;
use crate::error::ApiError;
use crate::state::AppState;
use crate::storage::uncommitted::Uncommitted;
use crate::{images, storage};

/// Any member's profile with their counts, seen by `viewer`. A suspended member's profile is
/// hidden from everyone else (`MEMBER_005`, as if they did not exist).
pub async fn profile(
    state: &AppState,
    viewer: i64,
    member_id: i64,
) -> Result<ProfileResponse, ApiError> {
    // From the read replica when it may serve `viewer` (`Db::read_found`): the row and its counts.
    let (member, (post_size, follower_size, following_size)) = state
        .db
        .read_found(Some(viewer), |db| async move {
            let Some(member) = repo::find_by_id(&db, member_id).await? else {
                return Ok(None);
            };
            Ok(Some((member, repo::counts(&db, member_id).await?)))
        })
        .await?
        .ok_or_else(|| ApiError::no_such_member("member_id", member_id))?;
    if member.suspended_at.is_some() && member.id != viewer {
        return Err(ApiError::no_such_member("member_id", member_id));
    }
    Ok(ProfileResponse {
        member_id: member.id,
        email: member.email,
        name: member.name,
        nickname: member.nickname,
        avatar_url: member.avatar_key.map(|k| state.media_url(&k)),
        post_size,
        follower_size,
        following_size,
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
    let image = images::clean(&state.decodes, file, ErrorCode::AvatarNotAnImage).await?;
    let now = state.clock.now();
    let key = storage::object_key("avatars", now, image.kind.extension());
    let pending = Uncommitted::new(state.cleanup.clone(), vec![key.clone()]);
    if let Err(e) = state
        .storage
        .put(&key, image.bytes, image.kind.mime())
        .await
    {
        pending.discard_only(Vec::new()).await;
        return Err(ApiError::Unavailable {
            dependency: "storage",
            code: ErrorCode::AvatarUploadFailed,
            source: e.into(),
        });
    }
    let previous = match repo::replace_avatar(&state.db, caller.member_id, &key, now).await {
        Ok(Some(previous)) => {
            pending.committed();
            previous
        }
        Ok(None) => {
            pending.discard().await;
            return Err(ApiError::code(ErrorCode::MemberNotFound));
        }
        Err(e) => {
            pending.discard().await;
            return Err(e.into());
        }
    };
    state.feed_version.bump().await;
    if let Some(previous) = previous {
        state.cleanup.delete_or_queue(vec![previous]).await;
    }
    Ok(AvatarResponse {
        member_id: caller.member_id,
        avatar_url: state.media_url(&key),
    })
}

/// The members the caller blocks.
pub async fn blocking_members(
    state: &AppState,
    member_id: i64,
) -> Result<MemberListResponse, ApiError> {
    let members: Vec<MemberSummary> = state
        .db
        .read(Some(member_id), |db| async move {
            repo::blocked_by(&db, member_id).await
        })
        .await?
        .into_iter()
        .map(|r| r.into_summary(&state.config.storage.public_base_url))
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
        return Err(ApiError::no_such_member("target_id", target));
    }
    let blocked = match repo::block(&state.db, caller, target, state.clock.now()).await {
        Ok(blocked) => blocked,
        Err(e) if repo::target_gone(&state.db, caller, &e).await => {
            return Err(ApiError::no_such_member("target_id", target));
        }
        Err(e) => return Err(e.into()),
    };
    if !blocked {
        return Err(ApiError::code(ErrorCode::AlreadyBlocking));
    }
    state.feed_version.bump().await;
    Ok(())
}

/// The caller unblocks `target` (idempotent).
pub async fn unblock(state: &AppState, caller: i64, target: i64) -> Result<(), ApiError> {
    if !repo::exists(&state.db, target).await? {
        return Err(ApiError::no_such_member("target_id", target));
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
    let mut sessions = repo::delete(
        &state.db,
        member.id,
        &member.email,
        &member.nickname,
        state.clock.now(),
    )
    .await?;
    state.feed_version.bump().await;
    if !sessions.contains(&caller.session_id) {
        sessions.push(caller.session_id.clone());
    }
    for sid in &sessions {
        state.revocations.publish(sid).await;
    }
    state.cleanup.delete_or_queue(keys).await;
    tracing::info!(
        member_id = member.id,
        sessions = sessions.len(),
        "account deleted"
    );
    Ok(())
}
