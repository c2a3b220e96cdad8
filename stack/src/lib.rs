//! The whole Heart to Heart stack in one process, as the README's run command starts it:
//! the edge component, on our wasmtime host, listens on the public port and forwards to the core,
//! which listens on a loopback port of its own.
//!
//! ```text
//!   app ──► edge (HEART_LISTEN_ADDR, :8080) ──► core (HEART_CORE_LISTEN_ADDR, :8081)
//!              │  token check, gate, feed cache        │  SQLite/MySQL, local/S3, outbox/SMTP
//!              └────────── one store ──────────────────┘  in-process (shared), or Redis
//! ```
//!
//! On embedded defaults the edge and the core share one in-process store ([`SharedStore`]), so the
//! edge sees the core's revocations and feed versions exactly as it would in Redis. With
//! `HEART_REDIS_URL` set, both use Redis. The edge secret that lets the core trust the edge's
//! identity headers is `HEART_EDGE_SECRET`, or a random one for this process.
//!
//! In production the two run apart (the core as a Deployment, the edge under SpinKube); this crate
//! is the local and test arrangement of the same pieces.

pub mod settings;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use heart_core::cache::{Cache, CacheError};
use heart_core::clock::Clock;
use heart_core::{App, Config};
use heart_edge_host::store::{EdgeStore, InProcessStore};
use heart_edge_host::{EdgeHost, HostConfig};
use rand::distributions::{Alphanumeric, DistString};
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpListener;

/// The core's [`Cache`] over the edge host's [`InProcessStore`]: one map that both sides read and
/// write with the key layout of `heart_shared` (revocations, rate-limit counters, feed version).
#[derive(Debug, Clone, Default)]
pub struct SharedStore(pub Arc<InProcessStore>);

fn cache_error(e: impl std::fmt::Display) -> CacheError {
    CacheError(e.to_string().into())
}

#[async_trait]
impl Cache for SharedStore {
    async fn increment(&self, key: &str, ttl: Duration) -> Result<u64, CacheError> {
        let count = self.0.incr(key).await.map_err(cache_error)?;
        if count == 1 {
            self.0.expire(key, ttl).await.map_err(cache_error)?;
        }
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn set_flag(&self, key: &str, ttl: Duration) -> Result<(), CacheError> {
        self.0.set(key, b"1", Some(ttl)).await.map_err(cache_error)
    }

    async fn exists(&self, key: &str) -> Result<bool, CacheError> {
        self.0.exists(key).await.map_err(cache_error)
    }

    async fn bump(&self, key: &str) -> Result<i64, CacheError> {
        self.0.incr(key).await.map_err(cache_error)
    }

    async fn counter(&self, key: &str) -> Result<i64, CacheError> {
        let value = self.0.get(key).await.map_err(cache_error)?;
        Ok(value
            .and_then(|v| std::str::from_utf8(&v).ok()?.parse().ok())
            .unwrap_or(0))
    }

    async fn ping(&self) -> Result<(), CacheError> {
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "in-process (shared with the edge)"
    }
}

/// How the stack is put together, besides the core's own [`Config`].
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Where the core listens (loopback; only the edge calls it). `HEART_CORE_LISTEN_ADDR`,
    /// default `127.0.0.1:8081`.
    pub core_listen_addr: SocketAddr,
    /// Extra or overriding Spin variables for the edge (`HEART_EDGE_VAR_<NAME>`), e.g. its rate limits.
    pub edge_variables: HashMap<String, String>,
    /// Compiled-component cache (`HEART_EDGE_CACHE_DIR`, default `<HEART_DATA_DIR>/edge-cache`).
    pub edge_cache_dir: Option<PathBuf>,
    /// The component (`HEART_EDGE_COMPONENT`, default: the one built with the host).
    pub component: Option<PathBuf>,
    /// Per-request time limit of the edge (`HEART_EDGE_REQUEST_TIMEOUT_SECS`, default 30).
    pub edge_request_timeout: Duration,
    /// Pooled edge instances (`HEART_EDGE_MAX_CONCURRENCY`, default 64).
    pub edge_max_concurrency: u32,
    /// The edge host's other limits as `HEART_EDGE_*` settings (`HEART_EDGE_HEADER_TIMEOUT_SECS`,
    /// `HEART_EDGE_BODY_TIMEOUT_SECS`, `HEART_EDGE_MAX_CONNECTIONS`, `HEART_EDGE_PERMIT_WAIT_MS`,
    /// `HEART_EDGE_MAX_CONCURRENT_UPLOADS`, `HEART_EDGE_STREAM_TIMEOUT_SECS`,
    /// `HEART_EDGE_MAX_LONG_STREAMS`; see `HostConfig::read_limits`).
    pub edge_limits: HashMap<String, String>,
}

impl StackOptions {
    /// The options from `HEART_CORE_LISTEN_ADDR`, `HEART_EDGE_VAR_*`, `HEART_EDGE_CACHE_DIR`,
    /// `HEART_EDGE_COMPONENT`, `HEART_EDGE_REQUEST_TIMEOUT_SECS` and `HEART_EDGE_MAX_CONCURRENCY`.
    pub fn from_env(core: &Config) -> anyhow::Result<StackOptions> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Ok(StackOptions {
            core_listen_addr: var("HEART_CORE_LISTEN_ADDR")
                .map(|a| {
                    a.parse()
                        .context("HEART_CORE_LISTEN_ADDR must be host:port")
                })
                .transpose()?
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8081))),
            edge_variables: std::env::vars()
                .filter_map(|(k, v)| {
                    k.strip_prefix("HEART_EDGE_VAR_")
                        .map(|name| (name.to_ascii_lowercase(), v))
                })
                .collect(),
            edge_cache_dir: Some(
                var("HEART_EDGE_CACHE_DIR")
                    .map_or_else(|| core.data_dir.join("edge-cache"), PathBuf::from),
            ),
            component: var("HEART_EDGE_COMPONENT").map(PathBuf::from),
            edge_request_timeout: Duration::from_secs(
                var("HEART_EDGE_REQUEST_TIMEOUT_SECS")
                    .map(|s| {
                        s.parse()
                            .context("HEART_EDGE_REQUEST_TIMEOUT_SECS must be a number")
                    })
                    .transpose()?
                    .unwrap_or(30),
            ),
            edge_max_concurrency: var("HEART_EDGE_MAX_CONCURRENCY")
                .map(|s| {
                    s.parse()
                        .context("HEART_EDGE_MAX_CONCURRENCY must be a number")
                })
                .transpose()?
                .unwrap_or(64),
            edge_limits: std::env::vars()
                .filter(|(k, _)| k.starts_with("HEART_EDGE_") && !k.starts_with("HEART_EDGE_VAR_"))
                .collect(),
        })
    }

    /// Defaults for tests: the core on any free loopback port, no compile cache.
    pub fn for_tests() -> StackOptions {
        StackOptions {
            core_listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            edge_variables: HashMap::new(),
            edge_cache_dir: None,
            component: None,
            edge_request_timeout: Duration::from_secs(30),
            edge_max_concurrency: 16,
            edge_limits: HashMap::new(),
        }
    }
}

/// A built stack with its listeners bound, ready to [`Stack::serve`].
#[derive(Debug)]
pub struct Stack {
    /// The core (its state is reachable for tests and tools).
    pub core: App,
    edge: EdgeHost,
    public_listener: TcpListener,
    core_listener: TcpListener,
    admin_listener: TcpListener,
    /// The edge's address: the app's entry point.
    pub public_addr: SocketAddr,
    /// The core's address (loopback).
    pub core_addr: SocketAddr,
    /// The core's admin address (`/metrics`).
    pub admin_addr: SocketAddr,
}

impl Stack {
    /// Connects the core's backends, compiles (or loads) the edge component and binds the
    /// public port (`config.listen_addr`), the core's port and the admin port.
    pub async fn build(
        mut config: Config,
        clock: Clock,
        options: StackOptions,
    ) -> anyhow::Result<Stack> {
        let edge_secret = match &config.edge_secret {
            Some(secret) => secret.expose_secret().to_owned(),
            None => {
                let secret = Alphanumeric.sample_string(&mut rand::thread_rng(), 48);
                config.edge_secret = Some(SecretString::from(secret.clone()));
                secret
            }
        };
        let public_listener = TcpListener::bind(config.listen_addr)
            .await
            .with_context(|| format!("binding the public address {}", config.listen_addr))?;
        let core_listener = TcpListener::bind(options.core_listen_addr)
            .await
            .with_context(|| format!("binding the core address {}", options.core_listen_addr))?;
        let admin_listener = TcpListener::bind(config.admin_listen_addr)
            .await
            .with_context(|| format!("binding the admin address {}", config.admin_listen_addr))?;
        let (public_addr, core_addr, admin_addr) = (
            public_listener.local_addr()?,
            core_listener.local_addr()?,
            admin_listener.local_addr()?,
        );
        // Local media links default to `http://<listen>/media`; with port 0 (tests) that names no
        // server, so they point at the port actually bound (the edge forwards `/media/` to the core).
        if config.listen_addr.port() == 0
            && matches!(
                config.storage.backend,
                heart_core::config::StorageBackend::Local { .. }
            )
            && config.storage.public_base_url == format!("http://{}/media", config.listen_addr)
        {
            config.storage.public_base_url = format!("http://{public_addr}/media");
        }

        let shared = Arc::new(InProcessStore::default());
        let redis_url = config
            .redis_url
            .as_ref()
            .map(|url| url.expose_secret().to_owned());
        let mut variables = HashMap::from([
            ("core_url".to_owned(), format!("http://{core_addr}")),
            ("edge_secret".to_owned(), edge_secret),
            ("cache_prefix".to_owned(), config.cache_prefix.clone()),
            (
                "redis_url".to_owned(),
                redis_url.clone().unwrap_or_else(|| "memory:".to_owned()),
            ),
            (
                "trusted_proxy_hops".to_owned(),
                config.trusted_proxy_hops.to_string(),
            ),
            // The edge refuses at the door what the core would refuse after the transfer.
            (
                "max_json_body_bytes".to_owned(),
                config.max_json_body_bytes.to_string(),
            ),
            (
                "max_upload_request_bytes".to_owned(),
                config.uploads.max_request_bytes.to_string(),
            ),
        ]);
        let embedded_cache: Option<Arc<dyn Cache>> = match redis_url {
            Some(_) => None,
            None => Some(Arc::new(SharedStore(shared.clone()))),
        };

        // One clock for both sides: the edge's token expiry and rate-limit windows read the core's.
        let edge_clock = clock.clone();
        let core = App::build_with_cache(config, clock, embedded_cache)
            .await
            .map_err(|e| anyhow::anyhow!(heart_core::error::cause_chain(&e)))?;
        variables.insert(
            "jwks".to_owned(),
            serde_json::to_string(core.state.tokens.jwks())?,
        );
        variables.extend(options.edge_variables);

        let component = match options.component {
            Some(path) => path,
            None => PathBuf::from(heart_edge_host::BUILT_COMPONENT.context(
                "the edge component was not built with the host; set HEART_EDGE_COMPONENT",
            )?),
        };
        let mut host_config = HostConfig::new(component, variables);
        host_config.cache_dir = options.edge_cache_dir;
        host_config.request_timeout = options.edge_request_timeout;
        host_config.max_concurrent_requests = options.edge_max_concurrency;
        host_config.max_concurrent_uploads = options.edge_max_concurrency.div_ceil(2);
        host_config.max_long_streams = options.edge_max_concurrency.div_ceil(4);
        host_config.read_limits(|name| options.edge_limits.get(name).cloned())?;
        host_config.in_process_store = Some(shared);
        host_config.wall_clock = Some(Arc::new(move || edge_clock.system_time()));
        // Compiling the component is CPU work: keep it off the async workers.
        let edge = tokio::task::spawn_blocking(move || EdgeHost::new(host_config))
            .await
            .context("compiling the edge component")??;

        Ok(Stack {
            core,
            edge,
            public_listener,
            core_listener,
            admin_listener,
            public_addr,
            core_addr,
            admin_addr,
        })
    }

    /// Serves the edge, the core and the admin port until SIGTERM or Ctrl-C.
    pub async fn serve(self) -> anyhow::Result<()> {
        self.serve_until(heart_core::app::shutdown_signal()).await
    }

    /// Serves the edge, the core and the admin port until `shutdown` resolves; then each stops
    /// accepting and finishes the requests in flight (tests stop a stack this way).
    pub async fn serve_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Stack {
            core,
            edge,
            public_listener,
            core_listener,
            admin_listener,
            ..
        } = self;
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
        let edge_stopped = signal();
        let edge = async move {
            edge.serve(public_listener, edge_stopped)
                .await
                .context("edge")
        };
        let core = async move {
            core.serve_until(core_listener, admin_listener, signal())
                .await
                .context("core")
        };
        tokio::try_join!(edge, core)?;
        Ok(())
    }
}
