//! Post use cases: create with images (all or nothing), feeds, delete.

use heart_shared::wire::{format_timestamp, Post, PostBody, PostPage, RegisteredPost};
use heart_shared::ErrorCode;

use super::repo::{self, Feed, PostRow};
use super::scroll::ScrollKey;
use crate::auth::AuthenticatedMember;
use crate::error::ApiError;
use crate::member::repo as members;
use crate::paging::{Cursor, Page};
use crate::state::AppState;
use crate::storage::uncommitted::Uncommitted;
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
        images
            .push(images::clean(&state.decodes, file.bytes, ErrorCode::PostFileNotAnImage).await?);
    }

    let now = state.clock.now();
    let keys: Vec<String> = images
        .iter()
        .map(|image| storage::object_key("posts", now, image.kind.extension()))
        .collect();
    // Until the rows are committed: a request dropped half-way (client gone, breaker opened, time
    // limit) would otherwise leave the stored objects behind.
    let pending = Uncommitted::new(state.cleanup.clone(), keys.clone());
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
        pending.discard_only(stored).await;
        return Err(storage_failed(error));
    }

    let post_id = match repo::insert(&state.db, caller.member_id, content, &keys, now).await {
        Ok(id) => {
            pending.committed();
            id
        }
        Err(error) => {
            pending.discard().await;
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

/// How a feed page was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageRead {
    /// From the top (page 0) or with the caller's own cursor.
    Top,
    /// A keyset seek from where the viewer's previous page ended.
    Seek,
    /// Skipping `page × size` posts (a page whose previous one this instance did not serve at
    /// the current feed version).
    Offset,
}

/// A page of `feed` for `viewer`.
pub async fn feed(
    state: &AppState,
    viewer: i64,
    feed: Feed,
    page: Page,
) -> Result<PostPage, ApiError> {
    feed_read(state, viewer, feed, page)
        .await
        .map(|(page, _)| page)
}

/// A page of `feed` for `viewer`, and how it was read.
///
/// Page k right after page k−1 (same viewer, feed, size and feed version) is a keyset seek from
/// where page k−1 ended; any other page skips with the offset. Both give the same posts: the
/// version changes with every write that changes what a feed shows. (A write that commits between
/// the version read and the query can show in the page either way, as with the offset alone.)
///
/// Page 0 (and a page by cursor) is read without the version and remembers nothing: page 1 then
/// skips one page by offset, about as cheap as a seek, and remembers where it ended. So the most
/// read page costs one cache read (the revocation check) instead of two.
pub async fn feed_read(
    state: &AppState,
    viewer: i64,
    feed: Feed,
    page: Page,
) -> Result<(PostPage, PageRead), ApiError> {
    let scroll = &state.feed_version.scroll;
    let key = ScrollKey {
        viewer,
        feed,
        size: page.size,
    };
    let (rows, version, read) = if page.after.is_some() || page.number == 0 {
        // With a replica the version is read first: its age decides whether the replica may
        // serve the page (see `page_rows`). Without one the version is not needed.
        let seen = match state.db.reader() {
            Some(_) => state.feed_version.current_with_age().await.ok(),
            None => None,
        };
        let rows = page_rows(state, viewer, seen, feed, page.after, page.size, 0).await?;
        (rows, None, PageRead::Top)
    } else {
        let seen = state.feed_version.current_with_age().await.ok();
        let version = seen.map(|(v, _)| v);
        match version.and_then(|v| scroll.start_of(&key, v, page.number)) {
            Some(after) => (
                page_rows(state, viewer, seen, feed, Some(after), page.size, 0).await?,
                version,
                PageRead::Seek,
            ),
            None => (
                page_rows(state, viewer, seen, feed, None, page.size, page.offset()).await?,
                version,
                PageRead::Offset,
            ),
        }
    };
    let full = rows.len() as i64 == page.size;
    let next = rows.last().filter(|_| full).map(|last| Cursor {
        created_at: last.row.created_at,
        id: last.row.id,
    });
    // Only pages by number past 0 have a version here (page 0 and cursor pages are read without).
    if let (Some(version), Some(after)) = (version, next) {
        scroll.remember(key, version, page.number + 1, after);
    }
    let read_label = match read {
        PageRead::Top => "top",
        PageRead::Seek => "seek",
        PageRead::Offset => "offset",
    };
    metrics::counter!("heart_feed_pages_total", "read" => read_label).increment(1);
    let posts: Vec<Post> = rows
        .iter()
        .map(|post| Post {
            id: post.row.id,
            body: body(state, &post.row, &post.image_keys),
        })
        .collect();
    Ok((
        PostPage {
            size: posts.len(),
            posts,
            next_cursor: next.map(|c| c.encode()),
        },
        read,
    ))
}

/// A feed page for `viewer`, from the read replica when it may serve it. The edge stores the
/// page under the feed version it read before forwarding (this `version` or an older one), so a
/// page from a lagging replica that misses the write behind that version would be served as
/// current until the next write. Hence the replica serves a feed page only when the version
/// (read here first) has been known longer than the replica may lag, which puts the write that
/// made it on the replica; for a few seconds after every feed-changing write, feed pages come
/// from the primary (as do the writer's own reads, for the read-your-writes window).
async fn page_rows(
    state: &AppState,
    viewer: i64,
    version: Option<(i64, std::time::Duration)>,
    feed: Feed,
    after: Option<Cursor>,
    size: i64,
    offset: i64,
) -> Result<Vec<repo::PagePost>, sqlx::Error> {
    let unchanged_for = version.map(|(_, age)| age);
    state
        .db
        .read_settled(Some(viewer), unchanged_for, |db| async move {
            repo::feed_page(&db, feed, after, size, offset).await
        })
        .await
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
