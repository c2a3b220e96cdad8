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
    /// The JSON line.
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "type": "access",
            "request_id": self.request_id,
            "method": self.method,
            "route": self.route,
            "status": self.status,
            "latency_ms": self.latency_us as f64 / 1000.0,
            "cache": self.cache(),
            "outcome": self.outcome,
            "member_id": self.member_id,
        })
        .to_string()
    }

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

/// Where access records go; by default one JSON line per request through `tracing` (target
/// `heart_edge::access`, message = the JSON line).
pub type AccessSink = Arc<dyn Fn(&AccessRecord) + Send + Sync>;

/// The default sink.
pub fn log_access(record: &AccessRecord) {
    tracing::info!(target: "heart_edge::access", "{}", record.to_json());
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

    #[test]
    fn access_lines_are_json_with_the_cache_result() {
        let record = AccessRecord {
            request_id: "r".into(),
            method: "GET".into(),
            route: "/post/posts",
            status: 200,
            latency_us: 1500,
            outcome: "hit".into(),
            member_id: Some(4),
        };
        let line: serde_json::Value = serde_json::from_str(&record.to_json()).unwrap();
        assert_eq!(line["cache"], "hit");
        assert_eq!(line["route"], "/post/posts");
        assert_eq!(line["member_id"], 4);
        assert_eq!(line["latency_ms"], 1.5);
    }
}
