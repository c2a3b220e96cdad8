//! Request bodies in the host: the per-route limits, JSON bodies read whole within a time limit
//! before an instance is taken, and upload bodies streamed with a deadline.

use std::collections::HashMap;
use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Context as _;
use bytes::{Bytes, BytesMut};
use heart_shared::edge::{BodyKind, DEFAULT_MAX_JSON_BODY_BYTES, DEFAULT_MAX_UPLOAD_REQUEST_BYTES};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};

/// The body the component reads.
pub type HostBody = UnsyncBoxBody<Bytes, wasmtime_wasi_http::Error>;

/// The body limits, from the same variables the component reads (`max_json_body_bytes`,
/// `max_upload_request_bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimits {
    /// JSON routes.
    pub json: u64,
    /// Upload routes.
    pub upload: u64,
}

impl BodyLimits {
    /// The limits from the Spin variables (defaults: the core's, 64 KiB and 64 MiB).
    pub fn from_variables(variables: &HashMap<String, String>) -> anyhow::Result<BodyLimits> {
        let read = |name: &str, default: u64| -> anyhow::Result<u64> {
            variables
                .get(name)
                .filter(|v| !v.trim().is_empty())
                .map_or(Ok(default), |v| {
                    v.trim()
                        .parse()
                        .with_context(|| format!("variable {name} must be a number, not {v:?}"))
                })
        };
        Ok(BodyLimits {
            json: read("max_json_body_bytes", DEFAULT_MAX_JSON_BODY_BYTES)?,
            upload: read("max_upload_request_bytes", DEFAULT_MAX_UPLOAD_REQUEST_BYTES)?,
        })
    }

    /// The limit of a route of kind `kind`.
    pub fn of(&self, kind: BodyKind) -> u64 {
        match kind {
            BodyKind::Json => self.json,
            BodyKind::Upload => self.upload,
        }
    }
}

/// Why a body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadError {
    /// Over the limit.
    TooLarge,
    /// Not all there within the time limit.
    TooSlow,
    /// The connection failed.
    Failed,
}

/// Reads `body` whole: at most `limit` bytes, within `timeout`.
pub async fn read_within(
    body: Incoming,
    limit: u64,
    timeout: Duration,
) -> Result<Bytes, ReadError> {
    let read = async {
        let mut body = body;
        let mut buffer = BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| ReadError::Failed)?;
            if let Ok(data) = frame.into_data() {
                if (buffer.len() + data.len()) as u64 > limit {
                    return Err(ReadError::TooLarge);
                }
                buffer.extend_from_slice(&data);
            }
        }
        Ok(buffer.freeze())
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| ReadError::TooSlow)?
}

/// A body already read.
pub fn full(bytes: Bytes) -> HostBody {
    Full::new(bytes)
        .map_err(|never: std::convert::Infallible| match never {})
        .boxed_unsync()
}

/// `body`, failing with a read timeout once `limit` has passed.
pub fn with_deadline(body: Incoming, limit: Duration) -> HostBody {
    Deadline {
        inner: body,
        deadline: Box::pin(tokio::time::sleep(limit)),
    }
    .boxed_unsync()
}

struct Deadline {
    inner: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl Body for Deadline {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(wasmtime_wasi_http::Error::from)));
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(wasmtime_wasi_http::Error::ConnectionReadTimeout)));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_come_from_the_variables() {
        let limits = BodyLimits::from_variables(&HashMap::new()).unwrap();
        assert_eq!(limits.of(BodyKind::Json), 64 * 1024);
        assert_eq!(limits.of(BodyKind::Upload), 64 * 1024 * 1024);
        let set = HashMap::from([("max_json_body_bytes".to_owned(), "10".to_owned())]);
        assert_eq!(BodyLimits::from_variables(&set).unwrap().json, 10);
        let bad = HashMap::from([("max_upload_request_bytes".to_owned(), "x".to_owned())]);
        assert!(BodyLimits::from_variables(&bad).is_err());
    }
}
