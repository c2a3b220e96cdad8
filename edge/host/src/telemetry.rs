//! What the host reports about each request: the request id, one JSON access line and the
//! Prometheus metrics (names prefixed `heart_edge_`), recorded through the `metrics` facade, so
//! they appear wherever the process exports metrics (the stack: its admin port's `/metrics`).

use std::sync::Arc;
use std::time::Duration;

use heart_shared::edge::{is_valid_request_id, EDGE_MEMBER_HEADER, EDGE_OUTCOME_HEADER};

/// One request as the access log records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRecord {
    /// `x-request-id` (the client's when well-formed, else made by the edge).
    pub request_id: String,
    /// The method.
    pub method: String,
    /// The route template (`/post/posts/{member_id}`) or `unknown`.
    pub route: &'static str,
    /// The status answered.
    pub status: u16,
    /// Time from the request head to the answer head, in microseconds.
    pub latency_us: u64,
    /// What the edge did: `hit`, `miss`, `bypass`, `not_modified`, `forward`, `edge`,
    /// `rate_limited`, `token_refused`, `revoked`, `refused` (the component), or the host's own
    /// `busy` (no instance in time), `too_large`, `slow_body`, `failed`.
    pub outcome: String,
    /// The verified member, when the route had a token.
    pub member_id: Option<i64>,
}

impl AccessRecord {
    /// `hit`, `miss`, `bypass` on feed reads, else `none`.
    pub fn cache(&self) -> &'static str {
        match self.outcome.as_str() {
            "hit" | "not_modified" => "hit",
            "miss" => "miss",
            "bypass" => "bypass",
            _ => "none",
        }
    }
}

/// Where access records go; by default [`log_access`].
pub type AccessSink = Arc<dyn Fn(&AccessRecord) + Send + Sync>;

/// The default sink: one `tracing` event per request (target `heart_edge::access`, message
/// `access`) with the record's parts as fields, so the JSON log ([`json_layer`]) writes them as
/// top-level keys of one line: `type`, `request_id`, `method`, `route`, `status`, `latency_ms`,
/// `cache`, `outcome` and, when the route had a verified token, `member_id`.
pub fn log_access(record: &AccessRecord) {
    tracing::info!(
        target: "heart_edge::access",
        r#type = "access",
        request_id = %record.request_id,
        method = %record.method,
        route = record.route,
        status = record.status,
        latency_ms = record.latency_us as f64 / 1000.0,
        cache = record.cache(),
        outcome = %record.outcome,
        member_id = record.member_id,
        "access"
    );
}

/// How `heart-edge-host` writes its log (`HEART_LOG_FORMAT`, as the core reads it): `json`,
/// `pretty`, or `auto` (the default: JSON unless stderr is a terminal).
pub fn log_is_json(format: Option<&str>) -> anyhow::Result<bool> {
    use std::io::IsTerminal as _;
    match format.map(str::trim) {
        None | Some("" | "auto") => Ok(!std::io::stderr().is_terminal()),
        Some("json") => Ok(true),
        Some("pretty") => Ok(false),
        Some(other) => anyhow::bail!("HEART_LOG_FORMAT {other:?}: auto, json or pretty"),
    }
}

/// The JSON log layer, shaped as the core's (`heart_core::telemetry::init_logging`): one object
/// per line, an event's fields at the top level beside `timestamp`, `level`, `message` and
/// `target`.
pub fn json_layer<S, W>(writer: W) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_writer(writer)
}

/// The request id to use: the client's when well-formed, else a new random one (128 bits, hex).
pub fn request_id(sent: Option<&http::HeaderValue>) -> String {
    sent.and_then(|v| v.to_str().ok())
        .filter(|id| is_valid_request_id(id))
        .map_or_else(|| format!("{:032x}", rand::random::<u128>()), str::to_owned)
}

/// Takes the component's internal telemetry headers off `headers`: (outcome, member id).
pub fn take_internal_headers(headers: &mut http::HeaderMap) -> (Option<String>, Option<i64>) {
    let outcome = headers
        .remove(EDGE_OUTCOME_HEADER)
        .and_then(|v| v.to_str().ok().map(str::to_owned));
    let member = headers
        .remove(EDGE_MEMBER_HEADER)
        .and_then(|v| v.to_str().ok()?.parse().ok());
    (outcome, member)
}

/// Counts the request in the metrics.
pub fn record_metrics(record: &AccessRecord, latency: Duration) {
    let status = record.status.to_string();
    metrics::counter!("heart_edge_requests_total", "route" => record.route, "status" => status)
        .increment(1);
    metrics::histogram!("heart_edge_request_duration_seconds", "route" => record.route)
        .record(latency.as_secs_f64());
    match record.outcome.as_str() {
        "hit" | "not_modified" => {
            metrics::counter!("heart_edge_cache_total", "result" => "hit").increment(1);
        }
        "miss" => metrics::counter!("heart_edge_cache_total", "result" => "miss").increment(1),
        "bypass" => {
            metrics::counter!("heart_edge_cache_total", "result" => "bypass").increment(1);
        }
        "rate_limited" => metrics::counter!("heart_edge_rate_limited_total").increment(1),
        "token_refused" | "revoked" => {
            let reason = if record.outcome == "revoked" {
                "revoked"
            } else {
                "invalid"
            };
            metrics::counter!("heart_edge_token_refusals_total", "reason" => reason).increment(1);
        }
        "busy" => metrics::counter!("heart_edge_busy_total").increment(1),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_kept_when_plain_and_made_otherwise() {
        let kept = http::HeaderValue::from_static("abc-123");
        assert_eq!(request_id(Some(&kept)), "abc-123");
        let odd = http::HeaderValue::from_static("a b");
        let made = request_id(Some(&odd));
        assert_eq!(made.len(), 32);
        assert_ne!(made, request_id(None));
    }

    /// What [`log_access`] writes through [`json_layer`] for `records`, a parsed line each. (One
    /// test builds subscribers in this binary: tracing shares each callsite's interest across
    /// threads, and another thread's subscriber coming and going could drop an event here.)
    fn logged_lines(records: &[AccessRecord]) -> Vec<serde_json::Value> {
        use tracing_subscriber::layer::SubscriberExt as _;
        let capture = heart_testkit::log::LogCapture::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::registry().with(json_layer(move || writer.clone()));
        tracing::subscriber::with_default(subscriber, || records.iter().for_each(log_access));
        let text = capture.text();
        assert_eq!(
            text.lines().count(),
            records.len(),
            "one line per request: {text}"
        );
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    #[test]
    fn access_lines_are_flat_json_with_the_cache_result() {
        let hit = AccessRecord {
            request_id: "r-1".into(),
            method: "GET".into(),
            route: "/post/posts",
            status: 200,
            latency_us: 1500,
            outcome: "hit".into(),
            member_id: Some(4),
        };
        let unknown = AccessRecord {
            request_id: "r-2".into(),
            method: "POST".into(),
            route: "unknown",
            status: 404,
            latency_us: 20,
            outcome: "edge".into(),
            member_id: None,
        };
        let lines = logged_lines(&[hit, unknown]);
        // Every part is a top-level key of its own type, not text inside `message`.
        let line = &lines[0];
        assert_eq!(line["target"], "heart_edge::access");
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["message"], "access");
        assert_eq!(line["type"], "access");
        assert_eq!(line["request_id"], "r-1");
        assert_eq!(line["method"], "GET");
        assert_eq!(line["route"], "/post/posts");
        assert_eq!(line["status"], 200);
        assert_eq!(line["latency_ms"], 1.5);
        assert_eq!(line["cache"], "hit");
        assert_eq!(line["outcome"], "hit");
        assert_eq!(line["member_id"], 4);
        assert!(line["timestamp"].is_string());
        // Without a verified member the key is left out.
        let line = &lines[1];
        assert_eq!(line["request_id"], "r-2");
        assert_eq!(line["status"], 404);
        assert_eq!(line["cache"], "none");
        assert!(line.get("member_id").is_none(), "{line}");
    }

    #[test]
    fn the_log_format_is_read_like_the_cores() {
        assert!(log_is_json(Some("json")).unwrap());
        assert!(!log_is_json(Some("pretty")).unwrap());
        let auto = log_is_json(None).unwrap();
        assert_eq!(log_is_json(Some("auto")).unwrap(), auto);
        let err = log_is_json(Some("xml")).unwrap_err().to_string();
        assert!(
            err.contains("HEART_LOG_FORMAT") && err.contains("xml"),
            "{err}"
        );
    }
}
