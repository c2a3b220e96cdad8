//! Object storage (a local folder or S3), the links to it, and upload limits.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use secrecy::SecretString;

use super::vars::Vars;
use super::ConfigError;

/// Where uploaded images are stored.
#[derive(Debug, Clone)]
pub enum StorageBackend {
    /// A folder, served by the core under `/media/` (embedded default).
    Local {
        /// The folder.
        dir: PathBuf,
    },
    /// S3 or an S3-compatible server.
    S3(S3Config),
}

/// S3 settings. Without static keys the default AWS credential chain is used (IRSA on EKS).
#[derive(Debug, Clone)]
pub struct S3Config {
    /// Bucket name.
    pub bucket: String,
    pub region: String,
    /// Endpoint override for S3-compatible servers, e.g. `http://127.0.0.1:9000`.
    pub endpoint: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), which most S3-compatible servers need.
    pub force_path_style: bool,
    /// Static access key id (local and tests; leave unset on AWS).
    pub access_key_id: Option<String>,
    /// Static secret key.
    pub secret_access_key: Option<SecretString>,
}

/// Object storage and the links to it.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// Where objects go.
    pub backend: StorageBackend,
    /// Base of the absolute links in responses (`<base>/<key>`), e.g. a CloudFront URL. No trailing slash.
    pub public_base_url: String,
}

/// Upload limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadLimits {
    /// Files per post.
    pub max_files: usize,
    /// Bytes per file.
    pub max_file_bytes: usize,
    /// Bytes per multipart request, all parts together.
    pub max_request_bytes: usize,
}

impl StorageConfig {
    pub(super) fn from_vars(
        env: &Vars<'_>,
        data_dir: &Path,
        listen_addr: SocketAddr,
    ) -> Result<StorageConfig, ConfigError> {
        let backend = match env.get("HEART_S3_BUCKET") {
            Some(bucket) => StorageBackend::S3(S3Config {
                bucket: bucket.to_owned(),
                region: env.get("HEART_S3_REGION").unwrap_or("us-east-1").to_owned(),
                endpoint: env
                    .get("HEART_S3_ENDPOINT")
                    .map(|e| e.trim_end_matches('/').to_owned()),
                force_path_style: env.parse("HEART_S3_FORCE_PATH_STYLE")?.unwrap_or(false),
                access_key_id: env.get("HEART_S3_ACCESS_KEY_ID").map(str::to_owned),
                secret_access_key: env
                    .get("HEART_S3_SECRET_ACCESS_KEY")
                    .map(|s| SecretString::from(s.to_owned())),
            }),
            None => StorageBackend::Local {
                dir: env
                    .get("HEART_MEDIA_DIR")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| data_dir.join("media")),
            },
        };
        let public_base_url = match (env.get("HEART_MEDIA_BASE_URL"), &backend) {
            (Some(url), _) => url.trim_end_matches('/').to_owned(),
            (None, StorageBackend::Local { .. }) => format!("http://{listen_addr}/media"),
            (None, StorageBackend::S3(s3)) => match (&s3.endpoint, s3.force_path_style) {
                (Some(endpoint), true) => format!("{endpoint}/{}", s3.bucket),
                (Some(endpoint), false) => {
                    endpoint.replacen("://", &format!("://{}.", s3.bucket), 1)
                }
                (None, _) => format!("https://{}.s3.{}.amazonaws.com", s3.bucket, s3.region),
            },
        };
        Ok(StorageConfig {
            backend,
            public_base_url,
        })
    }
}

impl UploadLimits {
    pub(super) fn from_vars(env: &Vars<'_>) -> Result<UploadLimits, ConfigError> {
        Ok(UploadLimits {
            max_files: env.parse("HEART_MAX_UPLOAD_FILES")?.unwrap_or(10),
            max_file_bytes: env
                .parse("HEART_MAX_UPLOAD_FILE_BYTES")?
                .unwrap_or(10 * 1024 * 1024),
            max_request_bytes: env
                .parse("HEART_MAX_UPLOAD_REQUEST_BYTES")?
                .unwrap_or(64 * 1024 * 1024),
        })
    }
}
