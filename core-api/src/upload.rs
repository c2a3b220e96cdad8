//! Reading `multipart/form-data` as a stream, with limits, into text parts and files.
//!
//! Limits are enforced while reading, so an oversized upload is refused after at most one chunk
//! over the limit (`GLOBAL_008`), never buffered whole. Text parts are read whatever their declared
//! content type: the app sends `member_id` and `content` as `multipart/form-data` parts.

use std::collections::HashMap;

use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{FromRequest, Multipart};
use axum::http::StatusCode;
use bytes::{Bytes, BytesMut};
use heart_shared::ErrorCode;

use crate::config::UploadLimits;
use crate::error::ApiError;

/// Longest text part accepted.
const MAX_TEXT_PART_BYTES: usize = 64 * 1024;
/// Most text parts accepted in one form (the app sends two: `member_id` and `content`). Each part
/// costs parsing and memory whatever its size: a million empty parts were accepted before.
pub const MAX_TEXT_PARTS: usize = 16;

/// A multipart body, rejected in the contract's format when it is not one.
#[derive(Debug)]
pub struct ApiMultipart(pub Multipart);

impl<S: Send + Sync> FromRequest<S> for ApiMultipart {
    type Rejection = ApiError;

    async fn from_request(
        request: axum::extract::Request,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(ApiMultipart(Multipart::from_request(request, state).await?))
    }
}

impl From<MultipartRejection> for ApiError {
    fn from(rejection: MultipartRejection) -> Self {
        ApiError::with_message(ErrorCode::UnreadableBody, rejection.body_text())
    }
}

/// One uploaded file.
#[derive(Debug, Clone)]
pub struct UploadedFile {
    /// The part's name, e.g. `files`.
    pub field: String,
    /// The bytes as sent (not yet checked to be an image).
    pub bytes: Bytes,
}

/// The parts of a form.
#[derive(Debug, Default)]
pub struct Form {
    texts: HashMap<String, String>,
    /// The files, in the order they were sent.
    pub files: Vec<UploadedFile>,
}

impl Form {
    /// The text part `name`, trimmed of nothing: `GLOBAL_007` when missing.
    pub fn text(&self, name: &str) -> Result<&str, ApiError> {
        self.texts.get(name).map(String::as_str).ok_or_else(|| {
            ApiError::with_message(ErrorCode::InvalidParameter, format!("Missing part {name}"))
        })
    }

    /// The text part `name` as a number: `GLOBAL_007` when missing or not a number.
    pub fn number(&self, name: &str) -> Result<i64, ApiError> {
        self.text(name)?.trim().parse().map_err(|_| {
            ApiError::with_message(
                ErrorCode::InvalidParameter,
                format!("Part {name} must be a number"),
            )
        })
    }
}

fn read_error(error: MultipartError) -> ApiError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::with_message(ErrorCode::PayloadTooLarge, "Request too large")
    } else {
        ApiError::with_message(ErrorCode::UnreadableBody, error.body_text())
    }
}

async fn read_limited(
    field: &mut Field<'_>,
    limit: usize,
    too_large: &str,
    total: &mut usize,
    max_total: usize,
) -> Result<Bytes, ApiError> {
    let mut buffer = BytesMut::new();
    while let Some(chunk) = field.chunk().await.map_err(read_error)? {
        *total += chunk.len();
        if *total > max_total {
            return Err(ApiError::with_message(
                ErrorCode::PayloadTooLarge,
                "Request too large",
            ));
        }
        if buffer.len() + chunk.len() > limit {
            return Err(ApiError::with_message(
                ErrorCode::PayloadTooLarge,
                too_large.to_owned(),
            ));
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok(buffer.freeze())
}

/// Reads every part. Parts named in `file_fields`, or carrying a file name, are files.
pub async fn read_form(
    ApiMultipart(mut multipart): ApiMultipart,
    limits: UploadLimits,
    file_fields: &[&str],
) -> Result<Form, ApiError> {
    let mut form = Form::default();
    let mut total = 0usize;
    let (mut file_parts, mut text_parts) = (0usize, 0usize);
    while let Some(mut field) = multipart.next_field().await.map_err(read_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        let is_file = field.file_name().is_some() || file_fields.contains(&name.as_str());
        if is_file {
            // Every file part counts, empty ones too.
            file_parts += 1;
            if file_parts > limits.max_files {
                return Err(ApiError::with_message(
                    ErrorCode::PayloadTooLarge,
                    format!("At most {} files per request", limits.max_files),
                ));
            }
            let too_large = format!("Each file must be at most {} bytes", limits.max_file_bytes);
            let bytes = read_limited(
                &mut field,
                limits.max_file_bytes,
                &too_large,
                &mut total,
                limits.max_request_bytes,
            )
            .await?;
            // An empty file input (no file chosen) is not a file.
            if !bytes.is_empty() {
                form.files.push(UploadedFile { field: name, bytes });
            }
        } else {
            text_parts += 1;
            if text_parts > MAX_TEXT_PARTS {
                return Err(ApiError::with_message(
                    ErrorCode::PayloadTooLarge,
                    format!("At most {MAX_TEXT_PARTS} text parts per request"),
                ));
            }
            let bytes = read_limited(
                &mut field,
                MAX_TEXT_PART_BYTES,
                "Text part too large",
                &mut total,
                limits.max_request_bytes,
            )
            .await?;
            let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
                ApiError::with_message(
                    ErrorCode::InvalidParameter,
                    format!("Part {name} is not UTF-8 text"),
                )
            })?;
            form.texts.insert(name, text);
        }
    }
    Ok(form)
}
