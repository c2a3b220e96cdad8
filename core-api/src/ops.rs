//! Operations endpoints: liveness, readiness, profile, the token keys, and (admin port) metrics.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use heart_shared::token::Jwks;
use heart_shared::ErrorCode;
use serde::Serialize;

use crate::error::error_response;
use crate::state::AppState;

/// Admin routes, served on the admin port only.
pub fn admin_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

/// Readiness of one dependency.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DependencyStatus {
    /// `up` or `down`.
    pub status: &'static str,
    /// The backend in use, e.g. `mysql`, `redis`.
    pub backend: &'static str,
}

/// Readiness of the server.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ready` or `not ready`.
    pub status: &'static str,
    pub database: DependencyStatus,
    pub cache: DependencyStatus,
}

/// Alive: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Alive", body = String)))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready: the database and the cache answer.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "Ready", body = Readiness), (status = 503, description = "A dependency is down", body = Readiness)))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let (db, cache) = tokio::join!(state.db.ping(), state.cache.ping());
    let up = |ok: bool| if ok { "up" } else { "down" };
    let ready = db.is_ok() && cache.is_ok();
    if let Err(e) = &db {
        tracing::warn!(error = %e, "readiness: database down");
    }
    if let Err(e) = &cache {
        tracing::warn!(error = %crate::error::cause_chain(e), "readiness: cache down");
    }
    let body = Readiness {
        status: if ready { "ready" } else { "not ready" },
        database: DependencyStatus {
            status: up(db.is_ok()),
            backend: state.db.kind.name(),
        },
        cache: DependencyStatus {
            status: up(cache.is_ok()),
            backend: state.cache.backend(),
        },
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

/// The active profile's name.
#[utoipa::path(get, path = "/profile", tag = "operations", responses((status = 200, description = "local, staging or production", body = String)))]
pub async fn profile(State(state): State<AppState>) -> &'static str {
    state.config.profile.name()
}

/// The public keys that verify access tokens (JWKS), for the edge.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "operations", responses((status = 200, description = "JWK set", body = Object)))]
pub async fn jwks(State(state): State<AppState>) -> Json<Jwks> {
    Json(state.tokens.jwks().clone())
}

/// Prometheus metrics.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    match &state.metrics {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => error_response(ErrorCode::DependencyUnavailable, "Metrics are not enabled"),
    }
}
