//! Building and serving the application: backends chosen from the configuration, the state, and
//! the routers of `router.rs` on their listeners.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use heart_shared::cache_keys::KeySpace;
use secrecy::ExposeSecret;

use crate::auth::password::PasswordHasher;
use crate::auth::revocations::Revocations;
use crate::auth::tokens::TokenIssuer;
use crate::cache::{Cache, InProcessCache, RedisCache};
use crate::clock::Clock;
use crate::config::{Config, ConfigError};
use crate::db::{Db, RecentWrites};
use crate::error::BoxError;
use crate::mail::{self, Mailer};
use crate::post::feed_version::FeedVersion;
use crate::rate_limit::RateLimiter;
use crate::state::{AppState, Services};
use crate::storage::cleanup::Cleanup;
use crate::{auth, images, router, storage, telemetry};

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
        db.track_recent_writes(RecentWrites::new(
            cache.clone(),
            &config.cache_prefix,
            config.database_read.read_your_writes,
        ));
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
        let cleanup = Cleanup::new(db.clone(), storage.clone(), clock.clone());
        cleanup
            .clone()
            .spawn_sweeper(Duration::from_secs(config.storage_sweep_secs.max(1)));
        spawn_token_sweeper(db.clone(), clock.clone());
        let state = AppState::new(Services {
            decodes: images::Decodes::new(config.image_decodes),
            config: Arc::new(config),
            db,
            cache,
            revocations,
            rate_limiter,
            feed_version,
            mailer,
            storage,
            cleanup,
            tokens: Arc::new(tokens),
            passwords,
            reset_mails: Arc::new(tokio::sync::Semaphore::new(
                auth::recovery::MAX_PENDING_RESET_MAILS,
            )),
            clock,
            metrics: Some(telemetry::metrics_handle()),
        });
        Ok(App {
            router: router::router(state.clone()),
            admin_router: router::admin_router(state.clone()),
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
        let limits = self.state.config.connections;
        let grace = Duration::from_secs(self.state.config.request_timeout_secs);
        let api = crate::serve::serve(listener, self.router, limits, grace, signal());
        let admin = crate::serve::serve(admin_listener, self.admin_router, limits, grace, signal());
        let (api, admin) = tokio::join!(api, admin);
        api.and(admin)
    }
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

/// Deletes long-expired refresh tokens every ten minutes, on every replica: the deletes are
/// idempotent, so nothing is elected. Not at start: on SQLite a write racing the first requests'
/// transactions made them fail busy (`GLOBAL_503`), and a long-expired token can wait ten minutes.
fn spawn_token_sweeper(db: Db, clock: Clock) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(600));
        ticker.tick().await;
        loop {
            ticker.tick().await;
            match auth::sessions::delete_expired_tokens(&db, clock.now()).await {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, "expired refresh tokens deleted"),
                Err(error) => tracing::warn!(%error, "expired refresh token sweep failed"),
            }
        }
    });
}
