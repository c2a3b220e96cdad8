//! Logs and metrics, set up once per process.
//!
//! Logs are JSON lines (for Fluent Bit) unless standard error is a terminal, with the request id
//! on every line of a request. Metrics are Prometheus counters and histograms labelled by the
//! route *template* (`/post/posts/{member_id}`), never the raw path, so their number stays bounded.

use std::io::IsTerminal;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderName;
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tower_http::trace::MakeSpan;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// The request-id header, set by us when the client (or the edge) did not.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Installs the global log subscriber. `RUST_LOG` overrides the default filter.
pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,sqlx=warn,tower_http=info,hyper=warn,lettre=warn")
    });
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let registry = tracing_subscriber::registry().with(filter);
    let result = if json {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            )
            .try_init()
    } else {
        registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .try_init()
    };
    // A second call (tests) keeps the first subscriber.
    drop(result);
}

/// The process's Prometheus recorder, installed on first use.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("http_request_duration_seconds".to_owned()),
                    &[
                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                        10.0,
                    ],
                )
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
            }
            spawn_upkeep(handle.clone());
            handle
        })
        .clone()
}

/// How often the recorder's histogram samples are folded into its summaries between scrapes.
pub const METRICS_UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Folds the recorder's histogram samples into their summaries every [`METRICS_UPKEEP_EVERY`], on
/// a thread of its own (`metrics-upkeep`). A recorder made by `build_recorder` keeps every sample
/// until `/metrics` is rendered: with nobody scraping (the local stack, a scrape outage) its memory
/// would grow with every request.
fn spawn_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".to_owned())
        .spawn(move || loop {
            std::thread::sleep(METRICS_UPKEEP_EVERY);
            handle.run_upkeep();
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no metrics upkeep thread: samples are kept until scraped");
    }
}

/// Where the auth extractor leaves the caller's member id, so the access line can name it.
#[derive(Debug, Clone, Default)]
pub struct CallerSlot(Arc<OnceLock<i64>>);

impl CallerSlot {
    /// Records the authenticated member of this request.
    pub fn set(&self, member_id: i64) {
        let _ = self.0.set(member_id);
    }

    /// The authenticated member of this request, once the handler's extractor ran.
    pub fn get(&self) -> Option<i64> {
        self.0.get().copied()
    }
}

/// Middleware: counts requests and records their latency by method, route template and status,
/// and writes one access line per request at INFO (target `access`): method, route, status,
/// latency, the member when the request was authenticated, and the request id (the edge's
/// `x-request-id`, or one made here), so a request can be followed from the edge to the core.
pub async fn observe(mut request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let request_id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let caller = CallerSlot::default();
    request.extensions_mut().insert(caller.clone());
    let started = Instant::now();
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    tracing::info!(
        target: "access",
        method = %method,
        route = %route,
        status,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        member_id = caller.0.get().copied(),
        request_id = %request_id,
        "request"
    );
    let labels = [
        ("method", method),
        ("route", route),
        ("status", status.to_string()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(elapsed.as_secs_f64());
    response
}

/// Names each request's span with its method, path and request id.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &axum::http::Request<B>) -> tracing::Span {
        let request_id = request
            .headers()
            .get(&REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %request_id)
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn the_metrics_recorder_is_kept_up_by_a_thread_of_its_own() {
        let _handle = super::metrics_handle();
        // A thread names itself once it runs: look a few times.
        let mut threads = Vec::new();
        for _ in 0..100 {
            threads = std::fs::read_dir("/proc/self/task")
                .unwrap()
                .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
                .map(|name| name.trim().to_owned())
                .collect();
            if threads.iter().any(|name| name == "metrics-upkeep") {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("no metrics-upkeep thread among {threads:?}");
    }
}
