//! Assembling the server: backends chosen from the configuration, the state, the router and its layers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use heart_shared::cache_keys::KeySpace;
use heart_shared::ErrorCode;
use metrics_exporter_prometheus::PrometheusHandle;
use secrecy::ExposeSecret;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::auth::password::PasswordHasher;
use crate::auth::tokens::TokenIssuer;
use crate::cache::{Cache, FeedVersion, InProcessCache, RateLimiter, RedisCache, Revocations};
use crate::clock::Clock;
use crate::config::{Config, ConfigError, StorageBackend};
use crate::db::Db;
use crate::error::{error_response, BoxError};
use crate::mail::{self, Mailer};
use crate::storage::{self, Storage};
use crate::telemetry::{self, RequestSpan, REQUEST_ID};
use crate::{auth, follow, garbage, member, moderation, openapi, ops, post};

/// What every handler can reach. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The configuration.
    pub config: Arc<Config>,
    /// The database.
    pub db: Db,
    /// The cache behind revocations and rate limits.
    pub cache: Arc<dyn Cache>,
    /// Revoked sessions.
    pub revocations: Revocations,
    /// Rate limits.
    pub rate_limiter: RateLimiter,
    /// The feed version the edge's cached pages are keyed by.
    pub feed_version: FeedVersion,
    /// Outgoing mail.
    pub mailer: Arc<dyn Mailer>,
    /// Object storage for images.
    pub storage: Arc<dyn Storage>,
    /// Access-token signing and verification.
    pub tokens: Arc<TokenIssuer>,
    /// Password hashing.
    pub passwords: PasswordHasher,
    /// The clock.
    pub clock: Clock,
    /// The Prometheus handle, for `/metrics`.
    pub metrics: Option<PrometheusHandle>,
}

/// The server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A backend could not be reached or prepared.
    #[error("{backend}: {source}")]
    Backend {
        /// Which one.
        backend: &'static str,
        /// Why.
        #[source]
        source: BoxError,
    },
}

fn backend(backend: &'static str) -> impl FnOnce(BoxError) -> StartupError {
    move |source| StartupError::Backend { backend, source }
}

/// A ready-to-serve application: its state, public router and admin router.
#[derive(Debug)]
pub struct App {
    /// The state.
    pub state: AppState,
    /// The public API.
    pub router: Router,
    /// `/metrics` and probes, for the admin port.
    pub admin_router: Router,
}

impl App {
    /// Connects every backend `config` names, applies migrations and builds the routers.
    pub async fn build(config: Config, clock: Clock) -> Result<App, StartupError> {
        App::build_with_cache(config, clock, None).await
    }

    /// [`App::build`], with the embedded cache replaced by `embedded_cache` when Redis is not
    /// configured: the local stack passes a store it shares with the edge in the same process,
    /// so the edge sees the core's revocations and feed versions as it would in Redis.
    pub async fn build_with_cache(
        config: Config,
        clock: Clock,
        embedded_cache: Option<Arc<dyn Cache>>,
    ) -> Result<App, StartupError> {
        for setting in config.development_settings() {
            tracing::warn!("using {setting}");
        }
        let tokens = TokenIssuer::from_config(&config.tokens)?;
        let db = Db::connect(&config)
            .await
            .map_err(|e| backend("database")(e.into()))?;
        let cache: Arc<dyn Cache> = match &config.redis_url {
            Some(url) => Arc::new(
                RedisCache::connect(url.expose_secret())
                    .await
                    .map_err(|e| backend("redis")(e.into()))?,
            ),
            None => embedded_cache.unwrap_or_else(|| Arc::new(InProcessCache::default())),
        };
        let mailer: Arc<dyn Mailer> =
            Arc::from(mail::from_config(&config.mail).map_err(|e| backend("mail")(e.into()))?);
        let storage = storage::from_config(&config.storage)
            .await
            .map_err(|e| backend("storage")(e.into()))?;
        let passwords = PasswordHasher::new(config.password_hashing)
            .map_err(|e| ConfigError(format!("Argon2 parameters: {e}")))?;
        let keys = KeySpace::new(config.cache_prefix.clone());
        // A revocation must outlive every access token of the session, plus clock skew.
        let revocation_ttl =
            Duration::from_secs(u64::try_from(tokens.access_ttl_secs()).unwrap_or(900) + 60);
        let revocations = Revocations::new(cache.clone(), keys.clone(), revocation_ttl);
        let feed_version = FeedVersion::new(cache.clone(), &keys);
        let rate_limiter = RateLimiter::new(
            cache.clone(),
            keys,
            config.rate_limits.clone(),
            config.rate_limits_enabled,
        );

        // The cache may be new (in-process after a restart, or a flushed Redis): refill it from the database.
        let since = clock.now() - tokens.access_ttl_secs() - 60;
        let revoked = auth::sessions::revoked_since(&db, since)
            .await
            .map_err(|e| backend("database")(e.into()))?;
        for sid in &revoked {
            revocations
                .revoke(sid)
                .await
                .map_err(|e| backend("cache")(e.into()))?;
        }

        tracing::info!(
            profile = config.profile.name(),
            database = db.kind.name(),
            cache = cache.backend(),
            mail = mailer.backend(),
            storage = storage.backend(),
            signing_kid = tokens.kid(),
            "backends ready"
        );
        let state = AppState {
            config: Arc::new(config),
            db,
            cache,
            revocations,
            rate_limiter,
            feed_version,
            mailer,
            storage,
            tokens: Arc::new(tokens),
            passwords,
            clock,
            metrics: Some(telemetry::metrics_handle()),
        };
        garbage::spawn_sweeper(
            state.clone(),
            Duration::from_secs(state.config.storage_sweep_secs.max(1)),
        );
        Ok(App {
            router: router(state.clone()),
            admin_router: ops::admin_router(state.clone()),
            state,
        })
    }

    /// Serves the public API on `listener` and the admin router on `admin_listener` until SIGTERM or Ctrl-C.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        admin_listener: tokio::net::TcpListener,
    ) -> std::io::Result<()> {
        self.serve_until(listener, admin_listener, shutdown_signal())
            .await
    }

    /// [`App::serve`] until `shutdown` resolves (the local stack and tests stop the core themselves).
    pub async fn serve_until(
        self,
        listener: tokio::net::TcpListener,
        admin_listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop.send(true);
        });
        let signal = move || {
            let mut stopped = stopped.clone();
            async move {
                // An error means the sender is gone, which only happens after it sent.
                let _ = stopped.wait_for(|stop| *stop).await;
            }
        };
        let api = axum::serve(
            listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(signal());
        let admin = axum::serve(admin_listener, self.admin_router).with_graceful_shutdown(signal());
        let (api, admin) = tokio::join!(api, admin);
        api.and(admin)
    }
}

/// The public router with every layer, on `state`.
pub fn router(state: AppState) -> Router {
    let timeout = Duration::from_secs(state.config.request_timeout_secs);
    let mut api = Router::new()
        .merge(auth::router())
        .merge(member::router(&state))
        .merge(follow::router())
        .merge(post::router(&state))
        .merge(moderation::router())
        .merge(ops::router())
        .merge(openapi::router());
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
    api.fallback(|| async { error_response(ErrorCode::NoSuchRoute, "No such route") })
        .method_not_allowed_fallback(|| async {
            error_response(ErrorCode::MethodNotAllowed, "Method not allowed")
        })
        .layer(DefaultBodyLimit::max(state.config.max_json_body_bytes))
        .layer(middleware::from_fn(telemetry::record_metrics))
        .layer(middleware::from_fn(move |request, next| {
            time_limit(timeout, request, next)
        }))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(RequestSpan))
                .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
                .layer(middleware::from_fn(contract_error_bodies))
                .layer(CatchPanicLayer::custom(panic_response)),
        )
        .with_state(state)
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
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
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

/// Resolves on SIGTERM (Kubernetes) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
