//! Post use cases: create with images (all or nothing), feeds, delete.

use heart_shared::wire::{format_timestamp, Post, PostBody, PostPage, RegisteredPost};
use heart_shared::ErrorCode;

use super::repo::{self, Feed, PostRow};
use crate::auth::AuthenticatedMember;
use crate::error::ApiError;
use crate::member::repo as members;
use crate::paging::{Cursor, Page};
use crate::state::AppState;
use crate::upload::UploadedFile;
use crate::{images, storage};

/// Content length, in characters after trimming.
pub const CONTENT_RANGE: std::ops::RangeInclusive<usize> = 1..=5000;

fn body(state: &AppState, row: &PostRow, image_keys: &[String]) -> PostBody {
    PostBody {
        writer_id: row.writer_id,
        writer_email: row.writer_email.clone(),
        writer_nickname: row.writer_nickname.clone(),
        avatar_url: row.writer_avatar_key.as_deref().map(|k| state.media_url(k)),
        content: row.content.clone(),
        image_urls: image_keys.iter().map(|k| state.media_url(k)).collect(),
        created_at: format_timestamp(row.created_at),
        updated_at: format_timestamp(row.updated_at),
    }
}

fn storage_failed(error: storage::StorageError) -> ApiError {
    ApiError::Unavailable {
        dependency: "storage",
        code: ErrorCode::PostStorageFailed,
        source: error.into(),
    }
}

/// Creates a post. Images are checked and cleaned, then stored, then the rows are written; any
/// failure removes what was stored, so either the whole post exists or nothing of it does.
pub async fn register(
    state: &AppState,
    caller: &AuthenticatedMember,
    content: &str,
    files: Vec<UploadedFile>,
) -> Result<RegisteredPost, ApiError> {
    let content = content.trim();
    if !CONTENT_RANGE.contains(&content.chars().count()) {
        return Err(ApiError::invalid_field(
            "content",
            "must be 1 to 5000 characters",
        ));
    }
    if !members::exists(&state.db, caller.member_id).await? {
        return Err(ApiError::code(ErrorCode::WriterNotFound));
    }
    let mut images = Vec::with_capacity(files.len());
    for file in files {
        images.push(images::clean(file.bytes, ErrorCode::PostFileNotAnImage).await?);
    }

    let now = state.clock.now();
    let keys: Vec<String> = images
        .iter()
        .map(|image| storage::object_key("posts", now, image.kind.extension()))
        .collect();
    let uploads = images
        .into_iter()
        .zip(&keys)
        .map(|(image, key)| async move {
            state
                .storage
                .put(key, image.bytes, image.kind.mime())
                .await
                .map(|()| key.clone())
        });
    let results = futures_util::future::join_all(uploads).await;
    let stored: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().cloned())
        .collect();
    if let Some(error) = results.into_iter().find_map(Result::err) {
        state.cleanup.delete_or_queue(stored).await;
        return Err(storage_failed(error));
    }

    let post_id = match repo::insert(&state.db, caller.member_id, content, &keys, now).await {
        Ok(id) => id,
        Err(error) => {
            state.cleanup.delete_or_queue(keys).await;
            return Err(error.into());
        }
    };
    state.feed_version.bump().await;
    let row = repo::find(&state.db, post_id)
        .await?
        .ok_or_else(|| ApiError::internal("the new post vanished"))?;
    tracing::info!(post_id, images = keys.len(), "post created");
    Ok(RegisteredPost {
        post_id,
        body: body(state, &row, &keys),
    })
}

/// A page of `feed`.
pub async fn feed(state: &AppState, feed: Feed, page: Page) -> Result<PostPage, ApiError> {
    let rows = repo::feed_page(&state.db, feed, page).await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut keys = repo::image_keys(&state.db, &ids).await?;
    let next_cursor = match rows.last() {
        Some(last) if rows.len() as i64 == page.size => Some(
            Cursor {
                created_at: last.created_at,
                id: last.id,
            }
            .encode(),
        ),
        _ => None,
    };
    let posts: Vec<Post> = rows
        .iter()
        .map(|row| Post {
            id: row.id,
            body: body(state, row, &keys.remove(&row.id).unwrap_or_default()),
        })
        .collect();
    Ok(PostPage {
        size: posts.len(),
        posts,
        next_cursor,
    })
}

/// Deletes a post of the caller's, then its images.
pub async fn delete(
    state: &AppState,
    caller: &AuthenticatedMember,
    post_id: i64,
) -> Result<(), ApiError> {
    let post = repo::find(&state.db, post_id)
        .await?
        .ok_or_else(|| ApiError::code(ErrorCode::NoSuchPost))?;
    if post.writer_id != caller.member_id {
        return Err(ApiError::with_message(
            ErrorCode::Forbidden,
            "Only the writer may delete a post",
        ));
    }
    let keys = repo::image_keys(&state.db, &[post_id])
        .await?
        .remove(&post_id)
        .unwrap_or_default();
    // Storage down before anything is deleted: refuse, and the post stays whole.
    if let Some(first) = keys.first() {
        state.storage.exists(first).await.map_err(storage_failed)?;
    }
    repo::delete(&state.db, post_id).await?;
    state.feed_version.bump().await;
    state.cleanup.delete_or_queue(keys).await;
    Ok(())
}
