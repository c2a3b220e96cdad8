//! Request extractors whose rejections answer in the contract's error format.
//!
//! axum's own extractors answer with plain-text bodies; these wrap them and map every rejection
//! to the contract's code: unreadable bodies `GLOBAL_004`, too-large bodies `GLOBAL_008`,
//! bad query or path parameters `GLOBAL_007`.

use std::net::{IpAddr, SocketAddr};

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts};
use axum::http::request::Parts;
use axum::http::StatusCode;
use heart_shared::ErrorCode;

use crate::error::ApiError;
use crate::state::AppState;

/// A JSON body (`Content-Type: application/json`).
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::code(ErrorCode::PayloadTooLarge);
        }
        let message = match &rejection {
            JsonRejection::MissingJsonContentType(_) => {
                "Expected Content-Type: application/json".to_owned()
            }
            JsonRejection::JsonSyntaxError(_) => "Malformed JSON".to_owned(),
            JsonRejection::JsonDataError(e) => format!("Wrong JSON shape: {}", e.body_text()),
            other => other.body_text(),
        };
        ApiError::with_message(ErrorCode::UnreadableBody, message)
    }
}

/// Query parameters.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::with_message(ErrorCode::InvalidParameter, rejection.body_text())
    }
}

/// Path parameters.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::with_message(ErrorCode::InvalidParameter, rejection.body_text())
    }
}

/// The client's IP address, for rate limits.
///
/// Behind `trusted_proxy_hops` reverse proxies (the ALB, the edge) it is read from
/// `X-Forwarded-For`, counting that many entries from the right: entries further left were
/// written by the client and cannot be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub Option<IpAddr>);

impl ClientIp {
    /// The address as a rate-limit subject.
    pub fn subject(&self) -> String {
        self.0
            .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
    }
}

/// Whether the request carries the edge's secret, so the identity and client address the edge
/// verified can be trusted. Compared in constant time.
pub fn from_trusted_edge(parts: &Parts, state: &AppState) -> bool {
    use secrecy::ExposeSecret;
    use subtle::ConstantTimeEq;
    let expected = state.config.edge_secret.as_ref();
    let given = parts.headers.get(heart_shared::edge::EDGE_SECRET_HEADER);
    match (expected, given) {
        (Some(expected), Some(given)) => expected
            .expose_secret()
            .as_bytes()
            .ct_eq(given.as_bytes())
            .into(),
        _ => false,
    }
}

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if from_trusted_edge(parts, state) {
            let from_edge = parts
                .headers
                .get(heart_shared::edge::CLIENT_IP_HEADER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok());
            if from_edge.is_some() {
                return Ok(ClientIp(from_edge));
            }
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let hops = state.config.trusted_proxy_hops;
        if hops == 0 {
            return Ok(ClientIp(peer));
        }
        let forwarded: Vec<&str> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let from_proxy = forwarded
            .len()
            .checked_sub(hops)
            .and_then(|i| forwarded.get(i))
            .and_then(|s| s.parse().ok());
        Ok(ClientIp(from_proxy.or(peer)))
    }
}
