//! The route table — every endpoint once, with its OpenAPI entry — and the layers around it.

use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use heart_shared::ErrorCode;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use crate::config::{Profile, StorageBackend};
use crate::error::error_response;
use crate::openapi::{self, ApiDoc};
use crate::state::AppState;
use crate::telemetry::{self, RequestSpan, REQUEST_ID};
use crate::{auth, console, export, follow, member, moderation, ops, post, storage};

/// The public API on `state`, with every layer. `into_make_service_with_connect_info::<SocketAddr>`
/// it: the client address is read from the connection.
pub fn router(state: AppState) -> Router {
    let (mut api, openapi) = route_table(state.config.uploads.max_request_bytes);
    let production = state.config.profile == Profile::Production;
    if production {
        // Only `/healthz` of the operations stays public; the rest is on the admin port.
        api = api.layer(middleware::from_fn(admin_port_only));
    } else {
        api = api.merge(SwaggerUi::new("/swagger-ui").url("/openapi.json", openapi));
    }
    if let StorageBackend::Local { dir } = &state.config.storage.backend {
        let dir = dir.clone();
        api = api.route(
            "/media/{*key}",
            axum::routing::get(
                move |axum::extract::Path(key): axum::extract::Path<String>| {
                    let dir = dir.clone();
                    async move { storage::serve_local(&dir, &key).await }
                },
            ),
        );
    }
    with_layers(api, &state).with_state(state)
}

/// The OpenAPI document of the public API, as served at `/openapi.json`.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    route_table(0).1
}

/// Every route with its OpenAPI operation; multipart uploads may be `upload_limit` bytes.
fn route_table(upload_limit: usize) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let upload_limit = DefaultBodyLimit::max(upload_limit);
    let uploads = OpenApiRouter::new()
        .routes(routes!(member::routes::upload_avatar))
        .routes(routes!(post::routes::register_post))
        .layer(upload_limit);
    let (router, mut document) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(auth::routes::send_verification_code))
        .routes(routes!(auth::routes::confirm_verification_code))
        .routes(routes!(auth::routes::join))
        .routes(routes!(auth::routes::login))
        .routes(routes!(auth::routes::verify_access_token))
        .routes(routes!(auth::routes::reissue_token))
        .routes(routes!(auth::routes::logout))
        // Extensions (2026-12): account recovery and data export.
        .routes(routes!(auth::routes::send_password_reset_code))
        .routes(routes!(auth::routes::reset_password))
        .routes(routes!(auth::routes::change_password))
        .routes(routes!(export::routes::export))
        .routes(routes!(member::routes::profile))
        .routes(routes!(member::routes::block))
        .routes(routes!(member::routes::unblock))
        .routes(routes!(member::routes::blocking_members))
        .routes(routes!(member::routes::delete_account))
        .routes(routes!(moderation::routes::report))
        .routes(routes!(follow::routes::follow))
        .routes(routes!(follow::routes::unfollow))
        .routes(routes!(follow::routes::followers))
        .routes(routes!(follow::routes::followings))
        .routes(routes!(post::routes::home_feed))
        .routes(routes!(post::routes::writer_feed))
        .routes(routes!(post::routes::following_feed))
        .routes(routes!(post::routes::delete_post))
        .routes(routes!(moderation::routes::list_reports))
        .routes(routes!(moderation::routes::resolve_report))
        .routes(routes!(moderation::routes::suspend))
        .routes(routes!(moderation::routes::unsuspend))
        .routes(routes!(console::home))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::profile))
        .routes(routes!(ops::jwks))
        .merge(uploads)
        .split_for_parts();
    openapi::finish(&mut document);
    // The console's other pages are HTML forms for a browser, not API operations.
    (router.merge(console::router()), document)
}

fn with_layers(api: Router<AppState>, state: &AppState) -> Router<AppState> {
    let timeout = Duration::from_secs(state.config.request_timeout_secs);
    let body_timeout = Duration::from_secs(state.config.connections.body_read_timeout_secs);
    let max_json_body_bytes = state.config.max_json_body_bytes;
    api.fallback(|| async { error_response(ErrorCode::NoSuchRoute, "No such route") })
        .method_not_allowed_fallback(|| async {
            error_response(ErrorCode::MethodNotAllowed, "Method not allowed")
        })
        .layer(DefaultBodyLimit::max(state.config.max_json_body_bytes))
        // Inside `telemetry::observe`, whose caller slot names the member who wrote.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            ops::mark_writes,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            ops::database_gate,
        ))
        .layer(middleware::from_fn(move |request, next| {
            crate::serve::body_time_limit(body_timeout, max_json_body_bytes, request, next)
        }))
        .layer(middleware::from_fn(telemetry::observe))
        .layer(middleware::from_fn(move |request, next| {
            time_limit(timeout, request, next)
        }))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(RequestSpan))
                .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
                .layer(middleware::from_fn(security_headers))
                .layer(middleware::from_fn(contract_error_bodies))
                .layer(CatchPanicLayer::custom(panic_response)),
        )
}

/// `/metrics`, the probes, `/profile` and the API document with Swagger UI, for the admin port.
pub fn admin_router(state: AppState) -> Router {
    let profile = Router::new()
        .route("/profile", axum::routing::get(ops::profile))
        .with_state(state.clone());
    ops::admin_router(state)
        .merge(profile)
        .merge(SwaggerUi::new("/swagger-ui").url("/openapi.json", openapi_document()))
}

/// Paths that name the backends or the API's shape: in production, on the admin port only.
const ADMIN_PORT_ONLY: [&str; 2] = ["/readyz", "/profile"];

/// In production the public port answers `GLOBAL_404` for [`ADMIN_PORT_ONLY`] paths.
async fn admin_port_only(request: Request, next: Next) -> Response {
    if ADMIN_PORT_ONLY.contains(&request.uri().path()) {
        return error_response(ErrorCode::NoSuchRoute, "No such route");
    }
    next.run(request).await
}

/// A request that takes longer than `limit` is answered `GLOBAL_503` (a dependency is hanging).
async fn time_limit(limit: Duration, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::error!(limit_secs = limit.as_secs(), "request timed out");
            error_response(
                ErrorCode::DependencyUnavailable,
                "The request took too long",
            )
        }
    }
}

/// A handler panicked: log it, answer `GLOBAL_500`; the server keeps running.
fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(panic = detail, "handler panicked");
    error_response(ErrorCode::Internal, ErrorCode::Internal.default_message())
}

/// The last line of defence for the contract: an error answer that is not JSON (a framework or
/// layer default) is replaced by the contract body for its status. Our own errors pass unchanged.
async fn contract_error_bodies(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    // JSON is ours; so is HTML (only the moderation console answers pages, its errors included).
    let is_ours = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| {
            v.as_bytes().starts_with(b"application/json") || v.as_bytes().starts_with(b"text/html")
        });
    if is_ours {
        return response;
    }
    let code = ErrorCode::for_status(status.as_u16());
    tracing::warn!(
        status = status.as_u16(),
        code = code.as_str(),
        "non-contract error body replaced"
    );
    let mut replaced = error_response(code, code.default_message());
    if status != StatusCode::from_u16(code.status()).unwrap_or(status) {
        *replaced.status_mut() =
            StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    }
    if let Some(retry) = response.headers().get(header::RETRY_AFTER) {
        replaced
            .headers_mut()
            .insert(header::RETRY_AFTER, retry.clone());
    }
    replaced
}

/// Headers every answer carries: `X-Content-Type-Options: nosniff` (a stored image is never run
/// as a script or page); `Cache-Control: no-store` on the auth endpoints, whose answers hold
/// tokens; `WWW-Authenticate: Bearer` on a 401, as RFC 6750 asks.
async fn security_headers(request: Request, next: Next) -> Response {
    let token_answer = request.uri().path().starts_with("/auth/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    if token_answer {
        headers.insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
    }
    if response.status() == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .entry(header::WWW_AUTHENTICATE)
            .or_insert(header::HeaderValue::from_static("Bearer"));
    }
    response
}
