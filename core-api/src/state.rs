//! What every handler can reach: the backends chosen at startup and the policies built on them.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::auth::password::PasswordHasher;
use crate::auth::revocations::Revocations;
use crate::auth::tokens::TokenIssuer;
use crate::cache::Cache;
use crate::clock::Clock;
use crate::config::Config;
use crate::db::Db;
use crate::images;
use crate::mail::Mailer;
use crate::post::feed_version::FeedVersion;
use crate::rate_limit::RateLimiter;
use crate::storage::cleanup::Cleanup;
use crate::storage::{self, Storage};

/// The application state: one shared [`Services`]. axum clones the state for every extractor and
/// middleware of a request; sharing one allocation makes each clone one reference count, where
/// cloning the fields themselves counted a dozen shared ones (3.7 % of the core's samples on the
/// feed's page 0 in a `perf` profile; BENCHMARKS.md, where the throughput did not move with it).
#[derive(Debug, Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    /// The state of `services`.
    pub fn new(services: Services) -> AppState {
        AppState(Arc::new(services))
    }

    /// The same services under another configuration (tests of profiles).
    pub fn with_config(&self, config: Config) -> AppState {
        AppState::new(Services {
            config: Arc::new(config),
            ..(*self.0).clone()
        })
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The backends chosen at startup and the policies built on them.
#[derive(Debug, Clone)]
pub struct Services {
    pub config: Arc<Config>,
    pub db: Db,
    /// The cache behind revocations, rate limits and the feed version.
    pub cache: Arc<dyn Cache>,
    pub revocations: Revocations,
    pub rate_limiter: RateLimiter,
    /// The feed version the edge's cached pages are keyed by.
    pub feed_version: FeedVersion,
    pub mailer: Arc<dyn Mailer>,
    /// Object storage for images.
    pub storage: Arc<dyn Storage>,
    /// The turns to decode uploaded images.
    pub decodes: images::Decodes,
    /// Object deletions, retried until storage takes them.
    pub cleanup: Cleanup,
    /// Access-token signing and verification.
    pub tokens: Arc<TokenIssuer>,
    pub passwords: PasswordHasher,
    /// Turns for password reset mails sent in the background: at most
    /// [`MAX_PENDING_RESET_MAILS`](crate::auth::recovery::MAX_PENDING_RESET_MAILS) at once.
    pub reset_mails: Arc<tokio::sync::Semaphore>,
    pub clock: Clock,
    /// For `/metrics`.
    pub metrics: Option<PrometheusHandle>,
}

impl Services {
    /// The absolute URL of a stored object.
    pub fn media_url(&self, key: &str) -> String {
        storage::public_url(&self.config.storage.public_base_url, key)
    }
}
