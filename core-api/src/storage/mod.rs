//! Object storage for uploaded images: a local folder (embedded default) or S3, behind [`Storage`].
//!
//! Keys are made here ([`object_key`]): random, dated, never derived from a client's file name, and
//! never reused, which is why the objects can be cached forever. Every backend refuses keys that
//! [`is_valid_key`] rejects, so no key can walk out of the local folder.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use bytes::Bytes;
use heart_shared::ErrorCode;
use rand::RngCore as _;

use crate::config::{StorageBackend, StorageConfig};
use crate::error::{error_response, BoxError};

pub mod cleanup;
mod local;
mod s3;
pub mod uncommitted;

pub use self::local::LocalStorage;
pub use self::s3::S3Storage;

/// Objects are never overwritten under a key that was handed out, so caches may keep them forever.
pub const IMMUTABLE_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

/// The longest key any backend accepts.
pub const MAX_KEY_LEN: usize = 512;

/// A storage operation failed (unreachable backend, refused credentials, invalid key, I/O).
#[derive(Debug, thiserror::Error)]
#[error("storage: {0}")]
pub struct StorageError(#[source] pub BoxError);

impl StorageError {
    fn msg(message: impl Into<String>) -> StorageError {
        StorageError(message.into().into())
    }

    fn invalid_key(key: &str) -> StorageError {
        StorageError::msg(format!("invalid object key {key:?}"))
    }
}

/// An object's bytes, chunk by chunk.
pub type ObjectStream = futures_util::stream::BoxStream<'static, Result<Bytes, StorageError>>;

/// Stores objects under keys.
#[async_trait]
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// Stores `bytes` under `key`, replacing any object there.
    async fn put(
        &self,
        key: &str,
        bytes: Bytes,
        content_type: &'static str,
    ) -> Result<(), StorageError>;
    /// Removes the object under `key`; a missing object is not an error.
    async fn delete(&self, key: &str) -> Result<(), StorageError>;
    /// Whether an object is stored under `key`.
    async fn exists(&self, key: &str) -> Result<bool, StorageError>;
    /// The object under `key` as a stream of chunks, never read whole into memory (data export).
    async fn read(&self, key: &str) -> Result<ObjectStream, StorageError>;
    /// Every key that starts with `prefix` (`""`: all), sorted. For tests and operations, not requests.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError>;
    /// The backend's name: `local` or `s3`.
    fn backend(&self) -> &'static str;
}

/// The storage `config` asks for. The local folder is created if missing; S3 is not contacted yet.
pub async fn from_config(config: &StorageConfig) -> Result<Arc<dyn Storage>, StorageError> {
    Ok(match &config.backend {
        StorageBackend::Local { dir } => {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| StorageError::msg(format!("creating {}: {e}", dir.display())))?;
            Arc::new(LocalStorage::new(dir.clone()))
        }
        StorageBackend::S3(s3) => Arc::new(S3Storage::connect(s3).await?),
    })
}

/// A fresh key for an upload of `kind` (`posts`, `avatars`): `kind/yyyy/mm/dd/<random>.<extension>`,
/// dated in UTC from `now_unix_secs`, with 128 random bits from the OS as 22 base64url characters.
pub fn object_key(kind: &str, now_unix_secs: i64, extension: &str) -> String {
    let (year, month, day) = utc_date(now_unix_secs);
    let mut random = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut random);
    let name = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random);
    format!("{kind}/{year:04}/{month:02}/{day:02}/{name}.{extension}")
}
/// The civil date (UTC) of a Unix time.
fn utc_date(unix_secs: i64) -> (i64, i64, i64) {
    let date = heart_shared::wire::utc_datetime(unix_secs).date();
    (
        i64::from(date.year()),
        i64::from(u8::from(date.month())),
        i64::from(date.day()),
    )
}

/// The absolute link to `key`: `<base>/<key>`.
pub fn public_url(base_url: &str, key: &str) -> String {
    format!("{}/{key}", base_url.trim_end_matches('/'))
}

/// Whether `key` is acceptable: `/`-separated segments of `[A-Za-z0-9._-]`, none empty, `.` or
/// `..`, no leading `/`, at most [`MAX_KEY_LEN`] characters. Such a key is also a safe relative path.
pub fn is_valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && key.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
}

fn content_type_for(key: &str) -> Option<&'static str> {
    let (_, extension) = key.rsplit_once('.')?;
    match extension.to_ascii_lowercase().as_str() {
        "png" => Some("image/png"),
        "jpg" | "jpeg" => Some("image/jpeg"),
        "webp" => Some("image/webp"),
        "gif" => Some("image/gif"),
        _ => None,
    }
}

/// Answers the object `key` of the local folder `dir` (the `/media/{*key}` route of the embedded
/// backend), or the contract's `GLOBAL_001` 404 for a missing or invalid key.
pub async fn serve_local(dir: &Path, key: &str) -> Response {
    let not_found = || error_response(ErrorCode::NoSuchRoute, "No such media");
    let Some(content_type) = content_type_for(key).filter(|_| is_valid_key(key)) else {
        return not_found();
    };
    match tokio::fs::read(dir.join(key)).await {
        Ok(bytes) => {
            let mut response = (StatusCode::OK, bytes).into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            headers.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static(IMMUTABLE_CACHE_CONTROL),
            );
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            response
        }
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound
                    | std::io::ErrorKind::IsADirectory
                    | std::io::ErrorKind::NotADirectory
            ) =>
        {
            not_found()
        }
        Err(e) => {
            tracing::error!(key, error = %e, "reading local media");
            error_response(ErrorCode::Internal, ErrorCode::Internal.default_message())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_dated_in_utc_and_random() {
        // 2026-11-25T23:59:59Z
        let key = object_key("posts", 1_795_651_199, "jpg");
        let name = key
            .strip_prefix("posts/2026/11/25/")
            .unwrap_or_else(|| panic!("{key}"));
        let random = name.strip_suffix(".jpg").unwrap_or_else(|| panic!("{key}"));
        assert_eq!(random.len(), 22, "{key}");
        assert!(is_valid_key(&key), "{key}");
        assert_ne!(key, object_key("posts", 1_795_651_199, "jpg"));
        assert!(object_key("avatars", 1_795_651_200, "png").starts_with("avatars/2026/11/26/"));
    }

    #[test]
    fn civil_dates_match_known_days() {
        assert_eq!(utc_date(0), (1970, 1, 1));
        assert_eq!(utc_date(-1), (1969, 12, 31));
        assert_eq!(utc_date(951_782_400), (2000, 2, 29));
        assert_eq!(utc_date(4_107_542_400), (2100, 3, 1));
        assert_eq!(utc_date(1_709_164_800), (2024, 2, 29));
        // Extremes do not overflow.
        let _ = utc_date(i64::MAX);
        let _ = utc_date(i64::MIN);
    }

    #[test]
    fn only_plain_relative_keys_are_valid() {
        for good in [
            "a",
            "posts/2026/11/25/AbC-_x.jpg",
            "x.y.z",
            "a/.hidden",
            &"k".repeat(512),
        ] {
            assert!(is_valid_key(good), "{good}");
        }
        for bad in [
            "",
            "/a",
            "a/",
            "a//b",
            ".",
            "..",
            "a/../b",
            "a/./b",
            "../etc/passwd",
            "a\\b",
            "a b",
            "a%2fb",
            "é.jpg",
            "a\0b",
            "a~b",
            &"k".repeat(513),
        ] {
            assert!(!is_valid_key(bad), "{bad:?}");
        }
    }

    #[test]
    fn public_urls_join_base_and_key() {
        assert_eq!(
            public_url("https://cdn.example.com", "posts/a.jpg"),
            "https://cdn.example.com/posts/a.jpg"
        );
        assert_eq!(
            public_url("http://127.0.0.1:8080/media/", "a.png"),
            "http://127.0.0.1:8080/media/a.png"
        );
    }

    #[test]
    fn content_types_come_from_the_extension() {
        assert_eq!(content_type_for("a/b.png"), Some("image/png"));
        assert_eq!(content_type_for("a/b.jpg"), Some("image/jpeg"));
        assert_eq!(content_type_for("a/b.webp"), Some("image/webp"));
        assert_eq!(content_type_for("a/b.gif"), Some("image/gif"));
        assert_eq!(content_type_for("a/b.html"), None);
        assert_eq!(content_type_for("png"), None);
    }
}
