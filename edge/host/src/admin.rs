//! The admin port of `heart-edge-host` (`HEART_EDGE_ADMIN_LISTEN`): `GET /metrics`, the
//! `heart_edge_*` metrics in Prometheus' text format, as the stack shows them on its own admin
//! port. Anything else is a `404`. Meant for a private address (the scraper's), like the core's.
//!
//! Bounded like the public port, on a smaller scale: at most [`MAX_CONNECTIONS`] open at once
//! (more wait in the listen backlog) and [`HEADER_TIMEOUT`] to send a request head.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

/// Admin connections open at once.
pub const MAX_CONNECTIONS: usize = 16;
/// To send a whole request head on the admin port (and the longest an idle keep-alive waits).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the recorder's histogram samples are folded into its summaries between scrapes.
pub const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Installs the process's metrics recorder (`metrics` facade → Prometheus) and answers its
/// handle. Fails when another recorder is installed already.
pub fn install_recorder() -> anyhow::Result<PrometheusHandle> {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)
        .map_err(|e| anyhow::anyhow!("installing the metrics recorder: {e}"))?;
    Ok(handle)
}

/// Serves the admin port on `listener` until `stopped` holds `true`, and keeps the recorder up.
pub async fn serve(
    listener: TcpListener,
    metrics: PrometheusHandle,
    mut stopped: watch::Receiver<bool>,
) {
    tokio::spawn(upkeep(metrics.clone(), stopped.clone()));
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => return,
            },
            _ = stopped.wait_for(|stop| *stop) => return,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped.wait_for(|stop| *stop) => return,
        };
        let (stream, _) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "admin port: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service = service_fn(move |request| {
                let answer = answer(&metrics, &request);
                async move { Ok::<_, std::convert::Infallible>(answer) }
            });
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(e) = served {
                tracing::debug!(error = %e, "admin connection ended");
            }
        });
    }
}

/// Folds the recorder's histogram samples into their summaries every [`UPKEEP_EVERY`] until
/// `stopped`: a recorder made by `build_recorder` keeps every sample until it is rendered, so
/// with nobody scraping its memory would grow with every request.
async fn upkeep(metrics: PrometheusHandle, mut stopped: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(UPKEEP_EVERY);
    loop {
        tokio::select! {
            _ = every.tick() => metrics.run_upkeep(),
            _ = stopped.wait_for(|stop| *stop) => return,
        }
    }
}

/// `GET /metrics` → the metrics; anything else → `404`.
fn answer<B>(
    metrics: &PrometheusHandle,
    request: &hyper::Request<B>,
) -> hyper::Response<Full<Bytes>> {
    let mut response =
        if request.method() == hyper::Method::GET && request.uri().path() == "/metrics" {
            let mut response = hyper::Response::new(Full::new(Bytes::from(metrics.render())));
            response.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            response
        } else {
            let mut response = hyper::Response::new(Full::new(Bytes::from_static(b"not found\n")));
            *response.status_mut() = hyper::StatusCode::NOT_FOUND;
            response
        };
    response.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    response
}
