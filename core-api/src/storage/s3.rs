//! Objects in an S3 bucket (AWS or an S3-compatible server).

use std::time::Duration;

use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::Credentials;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use secrecy::ExposeSecret;

use super::{is_valid_key, ObjectStream, Storage, StorageError, IMMUTABLE_CACHE_CONTROL};
use crate::config::S3Config;
use crate::error::cause_chain;
use crate::error::BoxError;
use crate::health::{Breaker, ProbeFuture, ProbePolicy};

const S3_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const S3_READ_TIMEOUT: Duration = Duration::from_secs(5);
const S3_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(8);
const S3_OPERATION_TIMEOUT: Duration = Duration::from_secs(15);
const S3_MAX_ATTEMPTS: u32 = 2;
const S3_INITIAL_BACKOFF: Duration = Duration::from_millis(200);
/// While S3 is unreachable, operations fail at once (`POST_002`, `MEMBER_002`…) and one
/// `ListObjectsV2` a second finds when it is back. An S3 that answers, even 5xx, is up.
pub const S3_PROBE_POLICY: ProbePolicy = ProbePolicy {
    retry: Duration::from_secs(1),
    watch: None,
    timeout: S3_ATTEMPT_TIMEOUT,
    failures_to_open: 1,
    successes_to_close: 1,
};

/// Objects in an S3 bucket (AWS or an S3-compatible server).
pub struct S3Storage {
    client: aws_sdk_s3::Client,
    bucket: String,
    health: Breaker,
}

impl std::fmt::Debug for S3Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Storage")
            .field("bucket", &self.bucket)
            .finish_non_exhaustive()
    }
}

fn s3_error<E>(
    health: &Breaker,
    operation: &str,
    key: &str,
    error: SdkError<E, HttpResponse>,
) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if matches!(
        error,
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
    ) {
        health.trip(&format!("S3 {operation}: {}", cause_chain(&error)));
    }
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
        let client = aws_sdk_s3::Client::from_conf(s3_config);
        let (probing, bucket) = (client.clone(), config.bucket.clone());
        let health = Breaker::new("storage", S3_PROBE_POLICY, move || -> ProbeFuture {
            let (client, bucket) = (probing.clone(), bucket.clone());
            Box::pin(async move {
                // Any answer, even a refusal (the role may not list), means S3 is reachable.
                match client
                    .list_objects_v2()
                    .bucket(bucket)
                    .max_keys(1)
                    .send()
                    .await
                {
                    Ok(_) | Err(SdkError::ServiceError(_)) => Ok::<(), BoxError>(()),
                    Err(e) => Err(e.into()),
                }
            })
        });
        Ok(S3Storage {
            client,
            bucket: config.bucket.clone(),
            health,
        })
    }

    /// Fails at once while S3 is unreachable.
    fn ready(&self) -> Result<(), StorageError> {
        if self.health.is_up() {
            Ok(())
        } else {
            Err(StorageError::msg("S3 is unreachable; not trying"))
        }
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
        self.ready()?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .cache_control(IMMUTABLE_CACHE_CONTROL)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| s3_error(&self.health, "PutObject", key, e))?;
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        S3Storage::check_key(key)?;
        self.ready()?;
        // S3 answers 204 for a missing key too.
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| s3_error(&self.health, "DeleteObject", key, e))?;
        Ok(())
    }

    async fn exists(&self, key: &str) -> Result<bool, StorageError> {
        S3Storage::check_key(key)?;
        self.ready()?;
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
            Err(e) => Err(s3_error(&self.health, "HeadObject", key, e)),
        }
    }

    async fn read(&self, key: &str) -> Result<ObjectStream, StorageError> {
        S3Storage::check_key(key)?;
        self.ready()?;
        let object = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| s3_error(&self.health, "GetObject", key, e))?;
        let key = key.to_owned();
        Ok(Box::pin(futures_util::stream::try_unfold(
            object.body,
            move |mut body| {
                let key = key.clone();
                async move {
                    match body.next().await {
                        Some(Ok(chunk)) => Ok(Some((chunk, body))),
                        Some(Err(e)) => Err(StorageError::msg(format!(
                            "S3 GetObject {key:?}: reading the body: {}",
                            cause_chain(&e)
                        ))),
                        None => Ok(None),
                    }
                }
            },
        )))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        self.ready()?;
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .set_prefix((!prefix.is_empty()).then(|| prefix.to_owned()))
            .into_paginator()
            .send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| s3_error(&self.health, "ListObjectsV2", prefix, e))?;
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
