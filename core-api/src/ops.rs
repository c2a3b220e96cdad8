//! Operations endpoints: liveness, readiness, profile, the token keys, and (admin port) metrics.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use heart_shared::token::Jwks;
use heart_shared::ErrorCode;
use serde::Serialize;

use crate::error::{error_response, DependencyDown, RETRY_AFTER_SECS};
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

/// Ready: the database answers. The cache's state is reported, but without it the server still
/// serves (degraded: rate limits open, revocations from the database), so it does not fail readiness.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "Ready (the cache may be down: degraded)", body = Readiness), (status = 503, description = "The database is down", body = Readiness)))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let (db, cache) = tokio::join!(state.db.check(), state.cache.ping());
    let up = |ok: bool| if ok { "up" } else { "down" };
    let ready = db.is_ok();
    if let Err(e) = &db {
        tracing::warn!(error = %crate::error::cause_chain(e.as_ref()), "readiness: database down");
    }
    if let Err(e) = &cache {
        tracing::warn!(error = %crate::error::cause_chain(e), "readiness: cache down (degraded, still ready)");
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

/// The public paths that answer without the database.
fn needs_database(path: &str) -> bool {
    !matches!(
        path,
        "/healthz" | "/readyz" | "/profile" | "/.well-known/jwks.json" | "/openapi.json"
    ) && !path.starts_with("/swagger-ui")
        && !path.starts_with("/media/")
}

/// `GLOBAL_503` with `Retry-After`, for a request refused because a dependency is down.
pub fn unavailable_response() -> Response {
    let mut response = error_response(
        ErrorCode::DependencyUnavailable,
        ErrorCode::DependencyUnavailable.default_message(),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    response
}

/// While the database is down, requests that need it answer `GLOBAL_503` at once; requests in
/// flight when it goes down answer so too instead of waiting for a timeout. An answer that found
/// the database unreachable opens its breaker.
pub async fn database_gate(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if !needs_database(request.uri().path()) {
        return next.run(request).await;
    }
    let health = state.db.health.clone();
    if !health.is_up() {
        metrics::counter!("heart_dependency_short_circuits_total", "dependency" => "database")
            .increment(1);
        return unavailable_response();
    }
    let opened = health.opened();
    let response = tokio::select! {
        biased;
        response = next.run(request) => response,
        () = opened => return unavailable_response(),
    };
    if response.extensions().get::<DependencyDown>() == Some(&DependencyDown("database")) {
        health.trip("a request found the database unreachable");
    }
    response
}

/// Read-your-writes: after a request that may have written (any method but `GET`, `HEAD`,
/// `OPTIONS`) by an authenticated member, that member's reads go to the primary for the window
/// (see [`crate::db::RecentWrites`]). One place for every write route; marked before the answer
/// leaves, so the member's next read sees the mark. Nothing happens without a read replica.
pub async fn mark_writes(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if state.db.reader().is_none()
        || matches!(
            *request.method(),
            axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
        )
    {
        return next.run(request).await;
    }
    let caller = request
        .extensions()
        .get::<crate::telemetry::CallerSlot>()
        .cloned();
    let response = next.run(request).await;
    if let Some(member_id) = caller.and_then(|slot| slot.get()) {
        state.db.mark_write(member_id).await;
    }
    response
}
