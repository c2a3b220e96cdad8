//! A member's data export: `member.json`, `posts.json` and `images/…`, written as a zip into a
//! bounded channel that the answer's body reads. The writer waits whenever the client reads
//! slower than we produce, so memory holds a few chunks, one page of rows and the zip's
//! directory, whatever the size of the archive.

use std::future::Future;

use axum::body::Body;
use futures_util::StreamExt as _;
use heart_shared::wire::format_timestamp;
use heart_shared::ErrorCode;
use serde::Serialize;
use serde_json::json;
use tokio::sync::mpsc;

use super::repo::{self, RelationKind, PAGE_ROWS};
use super::zip::{ArchiveChunk, OpenEntry, ReaderGone, ZipStream};
use crate::auth::AuthenticatedMember;
use crate::error::ApiError;
use crate::member::repo::{self as members, Member};
use crate::state::AppState;
use crate::storage::StorageError;

/// At most one export per member in this many seconds.
pub const EXPORT_WINDOW_SECS: i64 = 60 * 60;
/// Chunks (of up to 64 KiB) waiting for the client, at most.
const CHANNEL_CHUNKS: usize = 8;

/// Why an export stopped part-way.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    ReaderGone(#[from] ReaderGone),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

/// A started export: the archive's file name and its body, produced while it is read.
#[derive(Debug)]
pub struct Export {
    pub file_name: String,
    pub body: Body,
}

/// The archive's file name if the caller's export may start now; what [`start`] would refuse
/// otherwise. Starts nothing and uses up nothing (the answer to `HEAD`).
pub async fn preview(state: &AppState, caller: &AuthenticatedMember) -> Result<String, ApiError> {
    let (member, now) = caller_now(state, caller).await?;
    repo::peek_slot(&state.db, member.id, now, EXPORT_WINDOW_SECS)
        .await?
        .map_err(too_soon)?;
    Ok(file_name(member.id, now))
}

/// The caller's member row (`AUTH_010` when it is gone) and the time now.
async fn caller_now(
    state: &AppState,
    caller: &AuthenticatedMember,
) -> Result<(Member, i64), ApiError> {
    let member = members::find_by_id(&state.db, caller.member_id)
        .await?
        .ok_or_else(|| ApiError::code(ErrorCode::MemberGone))?;
    Ok((member, state.clock.now()))
}

fn too_soon(retry_after: i64) -> ApiError {
    ApiError::RateLimited {
        retry_after_secs: u32::try_from(retry_after).unwrap_or(u32::MAX),
    }
}

fn file_name(member_id: i64, now: i64) -> String {
    format!(
        "heart-to-heart-{member_id}-{}.zip",
        format_timestamp(now).replace(':', "-")
    )
}

/// Starts the caller's export: `GLOBAL_106` (with `Retry-After`) within an hour of the last one,
/// unless that one was cut off and fewer than [`repo::MAX_ATTEMPTS`] have started in the hour.
pub async fn start(state: &AppState, caller: &AuthenticatedMember) -> Result<Export, ApiError> {
    let (member, now) = caller_now(state, caller).await?;
    repo::claim_slot(&state.db, member.id, now, EXPORT_WINDOW_SECS)
        .await?
        .map_err(too_soon)?;
    let (sender, receiver) = mpsc::channel::<ArchiveChunk>(CHANNEL_CHUNKS);
    let file_name = file_name(member.id, now);
    let state = state.clone();
    tokio::spawn(async move {
        let mut zip = ZipStream::new(sender, now);
        let member_id = member.id;
        match write_archive(&state, member, now, &mut zip).await {
            Ok(()) => match zip.finish().await {
                Ok(()) => {
                    tracing::info!(member_id, "data export sent");
                    return;
                }
                Err(ReaderGone) => tracing::info!(member_id, "data export abandoned by the client"),
            },
            Err(ExportError::ReaderGone(_)) => {
                tracing::info!(member_id, "data export abandoned by the client");
            }
            Err(error) => {
                tracing::error!(member_id, error = %crate::error::cause_chain(&error), "data export failed part-way");
                zip.abort("the export failed").await;
            }
        }
        // Cut off: the member may start it again within the hour (up to repo::MAX_ATTEMPTS).
        if let Err(error) = repo::release_slot(&state.db, member_id, now).await {
            tracing::error!(member_id, error = %crate::error::cause_chain(&error), "a cut export's slot was not given back");
        }
    });
    let chunks = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });
    Ok(Export {
        file_name,
        body: Body::from_stream(chunks),
    })
}

async fn write_archive(
    state: &AppState,
    member: Member,
    now: i64,
    zip: &mut ZipStream,
) -> Result<(), ExportError> {
    write_member_json(state, &member, now, zip).await?;
    write_posts_json(state, member.id, zip).await?;
    if let Some(avatar) = &member.avatar_key {
        write_object(state, avatar, zip).await?;
    }
    let mut after = (0, -1);
    loop {
        let page = repo::images(&state.db, member.id, after).await?;
        for image in &page {
            write_object(state, &image.object_key, zip).await?;
        }
        match page.last() {
            Some(last) if page.len() as i64 == PAGE_ROWS => after = (last.post_id, last.position),
            _ => return Ok(()),
        }
    }
}

/// Where an object goes in the archive (keys are safe relative paths).
fn archive_name(key: &str) -> String {
    format!("images/{key}")
}

async fn write_member_json(
    state: &AppState,
    member: &Member,
    now: i64,
    zip: &mut ZipStream,
) -> Result<(), ExportError> {
    let mut entry = zip.start_entry("member.json").await?;
    let head = json!({
        "exported_at": format_timestamp(now),
        "member": {
            "member_id": member.id,
            "email": member.email,
            "name": member.name,
            "nickname": member.nickname,
            "role": member.role,
            "avatar_url": member.avatar_key.as_deref().map(|k| state.media_url(k)),
            "avatar_file": member.avatar_key.as_deref().map(archive_name),
        },
    });
    let head = serde_json::to_vec(&head)?;
    // The object without its closing brace; the lists follow.
    zip.write(&mut entry, &head[..head.len() - 1]).await?;
    let db = &state.db;
    for (name, kind) in [
        ("follows", RelationKind::Follows),
        ("followers", RelationKind::Followers),
        ("blocks", RelationKind::Blocks),
    ] {
        zip.write(&mut entry, format!(",\"{name}\":").as_bytes())
            .await?;
        write_array(zip, &mut entry, 0, |after| async move {
            let rows = repo::relations(db, kind, member.id, after).await?;
            let next = rows.last().map(|r| r.member_id);
            Ok::<_, ExportError>((rows, next))
        })
        .await?;
    }
    zip.write(&mut entry, b",\"reports_made\":").await?;
    write_array(zip, &mut entry, 0, |after| async move {
        let rows = repo::reports_made(db, member.id, after).await?;
        let next = rows.last().map(|r| r.id);
        Ok::<_, ExportError>((rows, next))
    })
    .await?;
    zip.write(&mut entry, b",\"sessions\":").await?;
    write_array(zip, &mut entry, String::new(), |after| async move {
        let rows = repo::sessions(db, member.id, &after).await?;
        let next = rows.last().map(|r| r.id.clone());
        Ok::<_, ExportError>((rows, next))
    })
    .await?;
    zip.write(&mut entry, b"}").await?;
    zip.finish_entry(entry).await?;
    Ok(())
}

/// A post as `posts.json` lists it.
#[derive(Debug, Serialize)]
struct ExportedPost {
    id: i64,
    content: String,
    created_at: String,
    updated_at: String,
    /// Names of the image files in the archive, in upload order.
    images: Vec<String>,
}

async fn write_posts_json(
    state: &AppState,
    member_id: i64,
    zip: &mut ZipStream,
) -> Result<(), ExportError> {
    let mut entry = zip.start_entry("posts.json").await?;
    let db = &state.db;
    write_array(zip, &mut entry, 0, |after| async move {
        let rows = repo::posts(db, member_id, after).await?;
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
            return Ok((Vec::new(), None));
        };
        let mut images = repo::images_of_posts(db, member_id, first.id, last.id)
            .await?
            .into_iter()
            .peekable();
        let next = Some(last.id);
        let posts = rows
            .into_iter()
            .map(|post| {
                let mut names = Vec::new();
                while let Some(image) = images.next_if(|i| i.post_id <= post.id) {
                    if image.post_id == post.id {
                        names.push(archive_name(&image.object_key));
                    }
                }
                ExportedPost {
                    id: post.id,
                    content: post.content,
                    created_at: format_timestamp(post.created_at),
                    updated_at: format_timestamp(post.updated_at),
                    images: names,
                }
            })
            .collect();
        Ok::<_, ExportError>((posts, next))
    })
    .await?;
    zip.finish_entry(entry).await?;
    Ok(())
}

/// Writes `[row, row, …]` from pages: `next_page(cursor)` gives a page and the cursor after it;
/// a page shorter than [`PAGE_ROWS`] is the last.
async fn write_array<C, T, F, Fut>(
    zip: &mut ZipStream,
    entry: &mut OpenEntry,
    mut cursor: C,
    mut next_page: F,
) -> Result<(), ExportError>
where
    T: Serialize,
    F: FnMut(C) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<C>), ExportError>>,
{
    zip.write(entry, b"[").await?;
    let mut first = true;
    loop {
        let (rows, next) = next_page(cursor).await?;
        let full = rows.len() as i64 == PAGE_ROWS;
        for row in rows {
            if !first {
                zip.write(entry, b",").await?;
            }
            first = false;
            zip.write(entry, &serde_json::to_vec(&row)?).await?;
        }
        match next {
            Some(next) if full => cursor = next,
            _ => break,
        }
    }
    zip.write(entry, b"]").await?;
    Ok(())
}

/// Streams the object `key` into the archive. An object deleted since its row was read (the
/// member deleted that post meanwhile) is left out.
async fn write_object(state: &AppState, key: &str, zip: &mut ZipStream) -> Result<(), ExportError> {
    let mut object = match state.storage.read(key).await {
        Ok(object) => object,
        Err(error) => {
            if !state.storage.exists(key).await? {
                tracing::info!(key, "object gone during an export: left out");
                return Ok(());
            }
            return Err(error.into());
        }
    };
    let mut entry = zip.start_entry(&archive_name(key)).await?;
    while let Some(chunk) = object.next().await {
        zip.write_bytes(&mut entry, chunk?).await?;
    }
    zip.finish_entry(entry).await?;
    Ok(())
}
