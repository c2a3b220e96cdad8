//! The core's HTTP/1.1 server: hyper under the axum router, with the limits `axum::serve` does not
//! set. `axum::serve` gives hyper no timer, so hyper's header-read timeout never applies and a
//! client trickling its request head holds a connection for ever; nor does it cap connections.
//! Here a request head (and an idle keep-alive connection) has `header_read_timeout` to arrive,
//! at most `max_connections` are open (more wait in the listen backlog), and a graceful stop gives
//! requests in flight their time limit to finish. JSON bodies have their own time limit, applied by
//! [`body_time_limit`] in the router.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

use heart_shared::ErrorCode;

use crate::config::ConnectionLimits;
use crate::error::error_response;

/// Serves `router` on `listener` until `shutdown` resolves; then requests in flight get `grace`
/// to finish before their connections are closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    grace: Duration,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let max_connections = limits.max_connections.clamp(1, 1 << 20);
    let slots = Arc::new(Semaphore::new(max_connections));
    let header_read_timeout = Duration::from_secs(limits.header_read_timeout_secs);
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        // Reap finished connections so the set does not grow with every connection.
        while connections.try_join_next().is_some() {}
        // At most `max_connections` open: beyond, clients wait in the listen backlog.
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let router = router.clone();
            async move {
                let response = router
                    .oneshot(request.map(axum::body::Body::new))
                    .await
                    .unwrap_or_else(|never: Infallible| match never {});
                Ok::<_, Infallible>(response)
            }
        });
        let mut stopping = stopping.clone();
        metrics::gauge!("heart_http_connections_open").increment(1.0);
        connections.spawn(async move {
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout)
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                // `.map(drop)`: the watch guard must not be held across the await below.
                _ = async { stopping.wait_for(|stop| *stop).await.map(drop) } => {
                    // Finish the request in flight, take no new one.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = ended {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
            metrics::gauge!("heart_http_connections_open").decrement(1.0);
            drop(slot);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    // Every connection holds a slot: all slots back means all connections ended.
    let all_ended = slots.acquire_many(u32::try_from(max_connections).unwrap_or(1 << 20));
    if tokio::time::timeout(grace, all_ended).await.is_err() {
        tracing::warn!(
            grace_secs = grace.as_secs(),
            "connections still open after the grace period are closed"
        );
    }
    connections.abort_all();
    Ok(())
}

/// A JSON (or any non-multipart) body must arrive whole within `limit` of its head, and be at
/// most `max_bytes`: a client trickling one is answered `GLOBAL_004` and disconnected, a larger
/// one `GLOBAL_008`. The body is handed on already read. Multipart uploads stream on, bounded by
/// the request's time limit and their own size limits.
pub async fn body_time_limit(
    limit: Duration,
    max_bytes: usize,
    request: Request,
    next: Next,
) -> Response {
    let multipart = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/")
        });
    if multipart || http_body::Body::is_end_stream(request.body()) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let read = Limited::new(body, max_bytes).collect();
    match tokio::time::timeout(limit, read).await {
        Ok(Ok(collected)) => {
            let request = Request::from_parts(parts, axum::body::Body::from(collected.to_bytes()));
            next.run(request).await
        }
        Ok(Err(error)) if error.downcast_ref::<LengthLimitError>().is_some() => {
            error_response(ErrorCode::PayloadTooLarge, "Request body too large")
        }
        Ok(Err(_)) => error_response(
            ErrorCode::UnreadableBody,
            ErrorCode::UnreadableBody.default_message(),
        ),
        Err(_) => {
            tracing::info!(
                limit_secs = limit.as_secs(),
                "request body not received in time"
            );
            let mut response = error_response(
                ErrorCode::UnreadableBody,
                "Request body not received in time",
            )
            .into_response();
            response.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
            response
        }
    }
}
