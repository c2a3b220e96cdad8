//! Object storage for uploaded images: a local folder (embedded default) or S3, behind [`Storage`].
//!
//! Keys are made here ([`object_key`]): random, dated, never derived from a client's file name, and
//! never reused, which is why the objects can be cached forever. Every backend refuses keys that
//! [`is_valid_key`] rejects, so no key can walk out of the local folder.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::Credentials;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use bytes::Bytes;
use heart_shared::ErrorCode;
use rand::RngCore as _;
use secrecy::ExposeSecret;

use crate::config::{S3Config, StorageBackend, StorageConfig};
use crate::error::{cause_chain, error_response, BoxError};

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

/// The civil date (proleptic Gregorian, UTC) of a Unix time; Howard Hinnant's `civil_from_days`.
fn utc_date(unix_secs: i64) -> (i64, i64, i64) {
    let days = unix_secs.div_euclid(86_400) + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153; // March = 0
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
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

/// Objects as files in a folder, for local development and single-machine setups.
#[derive(Debug, Clone)]
pub struct LocalStorage {
    dir: PathBuf,
}

impl LocalStorage {
    /// Storage in `dir` (created on the first write if missing).
    pub fn new(dir: PathBuf) -> LocalStorage {
        LocalStorage { dir }
    }

    /// The folder, for [`serve_local`].
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, key: &str) -> Result<PathBuf, StorageError> {
        if is_valid_key(key) {
            Ok(self.dir.join(key))
        } else {
            Err(StorageError::invalid_key(key))
        }
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StorageError(e.into()))?
        .map_err(|e| StorageError(e.into()))
}

/// Writes a temporary file beside `path`, flushes it to disk and renames it over `path`, so readers
/// see the old object or the whole new one, never a part.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(std::io::Error::other("object path without a parent"));
    };
    std::fs::create_dir_all(parent)?;
    // '~' cannot occur in a key, so a temporary file is never listed or served as an object.
    let tmp = parent.join(format!(
        "{}~{:016x}.tmp",
        name.to_string_lossy(),
        rand::rngs::OsRng.next_u64()
    ));
    let written = std::fs::File::create_new(&tmp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

fn collect_keys(dir: &Path, prefix: &str, keys: &mut Vec<String>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let key = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        // file_type does not follow symbolic links: only real files and folders count.
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            collect_keys(&entry.path(), &key, keys)?;
        } else if file_type.is_file() && is_valid_key(&key) {
            keys.push(key);
        }
    }
    Ok(())
}

#[async_trait]
impl Storage for LocalStorage {
    async fn put(
        &self,
        key: &str,
        bytes: Bytes,
        _content_type: &'static str,
    ) -> Result<(), StorageError> {
        let path = self.path_of(key)?;
        blocking(move || write_atomically(&path, &bytes)).await
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let path = self.path_of(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError(e.into())),
        }
    }

    async fn exists(&self, key: &str) -> Result<bool, StorageError> {
        let path = self.path_of(key)?;
        match tokio::fs::metadata(&path).await {
            Ok(metadata) => Ok(metadata.is_file()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StorageError(e.into())),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let dir = self.dir.clone();
        let mut keys = blocking(move || {
            let mut keys = Vec::new();
            collect_keys(&dir, "", &mut keys)?;
            Ok(keys)
        })
        .await?;
        keys.retain(|key| key.starts_with(prefix));
        keys.sort();
        Ok(keys)
    }

    fn backend(&self) -> &'static str {
        "local"
    }
}

// A dead or hung S3 must fail a request within seconds, not hold it (and its connection) for minutes.
const S3_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const S3_READ_TIMEOUT: Duration = Duration::from_secs(5);
const S3_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(8);
const S3_OPERATION_TIMEOUT: Duration = Duration::from_secs(15);
const S3_MAX_ATTEMPTS: u32 = 2;
const S3_INITIAL_BACKOFF: Duration = Duration::from_millis(200);

/// Objects in an S3 bucket (AWS or an S3-compatible server).
pub struct S3Storage {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl std::fmt::Debug for S3Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Storage")
            .field("bucket", &self.bucket)
            .finish_non_exhaustive()
    }
}

fn s3_error<E>(operation: &str, key: &str, error: SdkError<E, HttpResponse>) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let detail = match &error {
        // The SDK's own text for these is "service error"; the status and S3's code say more.
        SdkError::ServiceError(service) => {
            let mut detail = format!("HTTP {}", service.raw().status().as_u16());
            if let Some(code) = error.code() {
                detail.push_str(&format!(" {code}"));
            }
            if let Some(message) = error.message() {
                detail.push_str(&format!(": {message}"));
            }
            detail
        }
        // Timeouts, refused connections, TLS: the cause chain names them.
        _ => cause_chain(&error),
    };
    StorageError::msg(format!("S3 {operation} {key:?}: {detail}"))
}

impl S3Storage {
    /// A client for `config`'s bucket: static keys when both are set, otherwise the default AWS
    /// credential chain (environment, profile, web identity — IRSA on EKS —, ECS, instance metadata).
    /// Connects lazily: an unreachable S3 shows on the first operation.
    pub async fn connect(config: &S3Config) -> Result<S3Storage, StorageError> {
        // rustls with ring: no C toolchain beyond what ring needs, no aws-lc.
        let http_client = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(S3_CONNECT_TIMEOUT)
            .read_timeout(S3_READ_TIMEOUT)
            .operation_attempt_timeout(S3_ATTEMPT_TIMEOUT)
            .operation_timeout(S3_OPERATION_TIMEOUT)
            .build();
        let retries = RetryConfig::standard()
            .with_max_attempts(S3_MAX_ATTEMPTS)
            .with_initial_backoff(S3_INITIAL_BACKOFF);
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .http_client(http_client)
            .timeout_config(timeouts)
            .retry_config(retries);
        if let Some(endpoint) = &config.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        match (&config.access_key_id, &config.secret_access_key) {
            (Some(id), Some(secret)) => {
                loader = loader.credentials_provider(Credentials::new(
                    id,
                    secret.expose_secret(),
                    None,
                    None,
                    "heart-config",
                ));
            }
            (None, None) => {}
            _ => {
                return Err(StorageError::msg(
                    "HEART_S3_ACCESS_KEY_ID and HEART_S3_SECRET_ACCESS_KEY must be set together",
                ))
            }
        }
        let shared = loader.load().await;
        let s3_config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(config.force_path_style)
            .build();
        Ok(S3Storage {
            client: aws_sdk_s3::Client::from_conf(s3_config),
            bucket: config.bucket.clone(),
        })
    }

    fn check_key(key: &str) -> Result<(), StorageError> {
        if is_valid_key(key) {
            Ok(())
        } else {
            Err(StorageError::invalid_key(key))
        }
    }
}

#[async_trait]
impl Storage for S3Storage {
    async fn put(
        &self,
        key: &str,
        bytes: Bytes,
        content_type: &'static str,
    ) -> Result<(), StorageError> {
        S3Storage::check_key(key)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .cache_control(IMMUTABLE_CACHE_CONTROL)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| s3_error("PutObject", key, e))?;
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        S3Storage::check_key(key)?;
        // S3 answers 204 for a missing key too.
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| s3_error("DeleteObject", key, e))?;
        Ok(())
    }

    async fn exists(&self, key: &str) -> Result<bool, StorageError> {
        S3Storage::check_key(key)?;
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error().is_some_and(|e| e.is_not_found())
                    || e.raw_response().map(|r| r.status().as_u16()) == Some(404)
                    || e.code() == Some("NoSuchKey") =>
            {
                Ok(false)
            }
            Err(e) => Err(s3_error("HeadObject", key, e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .set_prefix((!prefix.is_empty()).then(|| prefix.to_owned()))
            .into_paginator()
            .send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| s3_error("ListObjectsV2", prefix, e))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
        }
        keys.sort();
        Ok(keys)
    }

    fn backend(&self) -> &'static str {
        "s3"
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
