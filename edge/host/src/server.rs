//! Serving the component over HTTP: one instance per request from a pre-instantiated component,
//! wasi:http through hyper, Spin's variables and Redis, outbound HTTP to the core only.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use heart_shared::edge::{self, BodyKind, REQUEST_ID_HEADER};
use heart_shared::{ErrorBody, ErrorCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioTimer;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::body::{self, BodyLimits};
use crate::compile;
use crate::deadline::{self, Deadline};
use crate::outbound::{self, CorePool, Origin, OutboundPolicy};
use crate::spin::{self, SpinState, Stores};
use crate::store::{EdgeStore, RedisTimeouts};
use crate::telemetry::{self, AccessRecord, AccessSink};

/// How often the epoch advances; the per-request CPU deadline is counted in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// At most this many request headers; more are refused with a contract error (`GLOBAL_004`).
/// Below the core's own limit (hyper's default, 100) less the headers the edge adds
/// (`x-heart-*`, `x-forwarded-for`), so the core never answers a forwarded request with hyper's
/// bare 431.
pub const MAX_REQUEST_HEADERS: usize = 90;

/// At most this many bytes of request line and headers; more are refused with a contract error
/// (`GLOBAL_004`).
pub const MAX_REQUEST_HEAD_BYTES: usize = 32 * 1024;

/// hyper's own parsing limits, well above ours so that hyper parses what our limits refuse and the
/// client gets a contract error. Beyond these, hyper itself answers a bare
/// `431 Request Header Fields Too Large` with an empty body and closes the connection.
const HYPER_MAX_HEADERS: usize = 1024;
const HYPER_MAX_BUF_BYTES: usize = 1024 * 1024;

/// Everything the host needs to serve the component.
#[derive(Clone)]
pub struct HostConfig {
    /// The component (`heart_edge.wasm`).
    pub component: PathBuf,
    /// The Spin application variables (`core_url`, `jwks`, `redis_url`, `cache_prefix`,
    /// `edge_secret`, …).
    pub variables: HashMap<String, String>,
    /// Wall-clock limit of one request until its answer's head, and CPU limit of its instance
    /// (epoch interruption); after the head, the longest the answer's body may stand still.
    pub request_timeout: Duration,
    /// The longest an answer's body may stream while it moves (a data export), from the start
    /// of the request (see [`crate::deadline`]).
    pub stream_timeout: Duration,
    /// Streamed answers past the request time limit at once, at most (see [`crate::deadline`]).
    pub max_long_streams: u32,
    /// Instances in the pool; requests beyond wait for a free one.
    pub max_concurrent_requests: u32,
    /// Where compiled components are cached between starts; `None`: compile on every start.
    pub cache_dir: Option<PathBuf>,
    /// The store behind `redis_url = "memory:"`; `None`: a fresh [`crate::store::InProcessStore`].
    pub in_process_store: Option<Arc<dyn EdgeStore>>,
    /// How long a Redis connect and a whole Redis call may take before the request goes on
    /// without the cache, and how often Redis is probed while it is down (see
    /// [`crate::store::RedisStore`]).
    pub redis_timeouts: RedisTimeouts,
    /// How long a client may take to send a request head (and an idle keep-alive connection may
    /// wait for the next one); past it the connection is closed.
    pub header_read_timeout: Duration,
    /// How long a client may take to send the body of a JSON route; past it `GLOBAL_004`. Such
    /// bodies are read whole before an instance is taken, so a slow client holds no instance.
    pub body_timeout: Duration,
    /// Open client connections at most; more wait in the listen backlog.
    pub max_connections: usize,
    /// How long a request waits for an instance (or an upload slot); past it `GLOBAL_503` with
    /// `Retry-After`.
    pub permit_wait: Duration,
    /// Upload requests (streamed, up to `request_timeout`) holding instances at once, at most.
    pub max_concurrent_uploads: u32,
    /// Where access records go; `None`: one JSON line per request through `tracing`.
    pub access_log: Option<AccessSink>,
    /// The wall clock the component reads (`wasi:clocks/wall-clock`: token expiry, rate-limit
    /// windows); `None`: the system's. The stack gives the core's clock, so a test that freezes
    /// it freezes the edge's windows too.
    pub wall_clock: Option<WallClock>,
}

/// A wall clock for the component (see [`HostConfig::wall_clock`]).
pub type WallClock = Arc<dyn Fn() -> std::time::SystemTime + Send + Sync>;

/// [`WallClock`] as the `wasi:clocks/wall-clock` of one instance.
struct ComponentClock(WallClock);

impl wasmtime_wasi::HostWallClock for ComponentClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        (self.0)()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
    }
}

impl std::fmt::Debug for HostConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Variables hold the edge secret and Redis credentials: print their names only.
        let names: Vec<&String> = self.variables.keys().collect();
        f.debug_struct("HostConfig")
            .field("component", &self.component)
            .field("variables", &names)
            .field("request_timeout", &self.request_timeout)
            .field("stream_timeout", &self.stream_timeout)
            .field("max_long_streams", &self.max_long_streams)
            .field("max_concurrent_requests", &self.max_concurrent_requests)
            .field("cache_dir", &self.cache_dir)
            .field("redis_timeouts", &self.redis_timeouts)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("body_timeout", &self.body_timeout)
            .field("max_connections", &self.max_connections)
            .field("permit_wait", &self.permit_wait)
            .field("max_concurrent_uploads", &self.max_concurrent_uploads)
            .finish_non_exhaustive()
    }
}

impl HostConfig {
    /// A configuration with defaults: 30 s per request (and per stall of a streamed answer, 30 min
    /// for the whole stream, at most 16 such streams), 64 instances (at most 32 of them for
    /// uploads), 1 s wait for one, 10 s for a head or a JSON body, 1024 connections, no compile
    /// cache.
    pub fn new(component: impl Into<PathBuf>, variables: HashMap<String, String>) -> HostConfig {
        HostConfig {
            component: component.into(),
            variables,
            request_timeout: Duration::from_secs(30),
            stream_timeout: Duration::from_secs(30 * 60),
            max_long_streams: 16,
            max_concurrent_requests: 64,
            cache_dir: None,
            in_process_store: None,
            redis_timeouts: RedisTimeouts::default(),
            header_read_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            max_connections: 1024,
            permit_wait: Duration::from_secs(1),
            max_concurrent_uploads: 32,
            access_log: None,
            wall_clock: None,
        }
    }

    /// Reads the host's limits from `HEART_EDGE_*` through `var` (unset: keep the current value).
    pub fn read_limits(&mut self, var: impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        let number = |name: &str| read_number(name, var(name));
        if let Some(secs) = number("HEART_EDGE_REQUEST_TIMEOUT_SECS")? {
            self.request_timeout = Duration::from_secs(secs.max(1));
        }
        if let Some(secs) = number("HEART_EDGE_STREAM_TIMEOUT_SECS")? {
            self.stream_timeout = Duration::from_secs(secs.max(1));
        }
        if let Some(n) = number("HEART_EDGE_MAX_LONG_STREAMS")? {
            self.max_long_streams = u32::try_from(n).unwrap_or(u32::MAX);
        }
        if let Some(n) = number("HEART_EDGE_MAX_CONCURRENCY")? {
            self.max_concurrent_requests = u32::try_from(n.max(1)).unwrap_or(u32::MAX);
            self.max_concurrent_uploads = self.max_concurrent_requests.div_ceil(2);
            self.max_long_streams = self.max_concurrent_requests.div_ceil(4);
        }
        if let Some(secs) = number("HEART_EDGE_HEADER_TIMEOUT_SECS")? {
            self.header_read_timeout = Duration::from_secs(secs.max(1));
        }
        if let Some(secs) = number("HEART_EDGE_BODY_TIMEOUT_SECS")? {
            self.body_timeout = Duration::from_secs(secs.max(1));
        }
        if let Some(n) = number("HEART_EDGE_MAX_CONNECTIONS")? {
            self.max_connections = usize::try_from(n.max(1)).unwrap_or(usize::MAX);
        }
        if let Some(ms) = number("HEART_EDGE_PERMIT_WAIT_MS")? {
            self.permit_wait = Duration::from_millis(ms);
        }
        if let Some(n) = number("HEART_EDGE_MAX_CONCURRENT_UPLOADS")? {
            self.max_concurrent_uploads = u32::try_from(n.max(1)).unwrap_or(u32::MAX);
        }
        Ok(())
    }

    /// The configuration from the environment: `HEART_EDGE_COMPONENT` (default: the component
    /// built next to this host), `HEART_EDGE_VAR_<NAME>` for every Spin variable,
    /// `HEART_EDGE_CACHE_DIR` and the limits of [`HostConfig::read_limits`].
    pub fn from_env() -> anyhow::Result<HostConfig> {
        let component = std::env::var_os("HEART_EDGE_COMPONENT")
            .map(PathBuf::from)
            .or_else(|| crate::BUILT_COMPONENT.map(PathBuf::from))
            .context("HEART_EDGE_COMPONENT is not set and no component was built with the host")?;
        let variables = std::env::vars()
            .filter_map(|(k, v)| {
                k.strip_prefix("HEART_EDGE_VAR_")
                    .map(|name| (name.to_ascii_lowercase(), v))
            })
            .collect();
        let mut config = HostConfig::new(component, variables);
        config.read_limits(|name| std::env::var(name).ok())?;
        config.cache_dir = std::env::var_os("HEART_EDGE_CACHE_DIR").map(PathBuf::from);
        Ok(config)
    }
}

/// The number in `value`, the setting `name` (unset or blank: `None`; not a number: an error
/// naming it).
pub(crate) fn read_number(name: &str, value: Option<String>) -> anyhow::Result<Option<u64>> {
    value
        .filter(|v| !v.trim().is_empty())
        .map(|v| {
            v.trim()
                .parse::<u64>()
                .with_context(|| format!("{name} must be a number, not {v:?}"))
        })
        .transpose()
}

/// The data of one request's store.
struct RequestState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: OutboundPolicy,
    variables: Arc<HashMap<String, String>>,
    stores: Arc<Stores>,
}

impl WasiView for RequestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for RequestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

fn spin_state(state: &mut RequestState) -> SpinState<'_> {
    SpinState {
        table: &mut state.table,
        variables: &state.variables,
        stores: &state.stores,
    }
}

/// A loaded component, ready to serve.
#[derive(Clone)]
pub struct EdgeHost {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EdgeHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeHost")
            .field("core", &self.inner.core)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct Inner {
    engine: Engine,
    pre: ProxyPre<RequestState>,
    variables: Arc<HashMap<String, String>>,
    stores: Arc<Stores>,
    core: Origin,
    pool: CorePool,
    request_timeout: Duration,
    stream_timeout: Duration,
    long_streams: Arc<Semaphore>,
    header_read_timeout: Duration,
    body_timeout: Duration,
    permit_wait: Duration,
    permits: Arc<Semaphore>,
    max_concurrent: u32,
    uploads: Arc<Semaphore>,
    connections: Arc<Semaphore>,
    limits: BodyLimits,
    access_log: AccessSink,
    wall_clock: Option<WallClock>,
}

impl EdgeHost {
    /// Compiles (or loads from the cache) and links the component.
    pub fn new(config: HostConfig) -> anyhow::Result<EdgeHost> {
        let core = Origin::parse(
            config
                .variables
                .get("core_url")
                .context("variable core_url is not set")?,
        )?;
        let engine = compile::engine(config.max_concurrent_requests)?;
        let component =
            compile::load_component(&engine, &config.component, config.cache_dir.as_deref())?;
        let mut linker: Linker<RequestState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(wasm_error)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(wasm_error)?;
        spin::add_to_linker(&mut linker, spin_state).map_err(wasm_error)?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| anyhow::anyhow!("linking the component: {e:?}"))?;
        let pre = ProxyPre::new(pre)
            .map_err(|e| anyhow::anyhow!("the component is not a wasi:http handler: {e:?}"))?;
        spawn_epoch_ticker(&engine);
        let allowed_redis = config
            .variables
            .get("redis_url")
            .filter(|v| !v.trim().is_empty())
            .cloned();
        let limits = BodyLimits::from_variables(&config.variables)?;
        let mut variables = config.variables;
        // Our host reads the component's outcome and member headers (and removes them).
        variables.insert("host_telemetry".to_owned(), "on".to_owned());
        let max_concurrent = config.max_concurrent_requests.max(1);
        Ok(EdgeHost {
            inner: Arc::new(Inner {
                engine,
                pre,
                stores: Arc::new(Stores::new(
                    allowed_redis,
                    config.in_process_store,
                    config.redis_timeouts,
                )),
                variables: Arc::new(variables),
                core,
                pool: outbound::core_pool(max_concurrent as usize, config.request_timeout),
                request_timeout: config.request_timeout,
                stream_timeout: config.stream_timeout,
                long_streams: Arc::new(Semaphore::new(
                    config.max_long_streams.min(max_concurrent) as usize
                )),
                header_read_timeout: config.header_read_timeout,
                body_timeout: config.body_timeout,
                permit_wait: config.permit_wait,
                permits: Arc::new(Semaphore::new(max_concurrent as usize)),
                max_concurrent,
                uploads: Arc::new(Semaphore::new(
                    config.max_concurrent_uploads.clamp(1, max_concurrent) as usize,
                )),
                connections: Arc::new(Semaphore::new(config.max_connections.max(1))),
                limits,
                access_log: config
                    .access_log
                    .unwrap_or_else(|| Arc::new(telemetry::log_access)),
                wall_clock: config.wall_clock,
            }),
        })
    }

    /// A host for another thread's runtime (see [`crate::threads`]): the same component, instance
    /// pool, limits, semaphores and in-process store, with connections of its own (to Redis and
    /// the core), so none of its requests waits on another thread's I/O.
    pub fn for_another_thread(&self) -> EdgeHost {
        let mut inner = (*self.inner).clone();
        inner.stores = Arc::new(self.inner.stores.sibling());
        inner.pool = outbound::core_pool(inner.max_concurrent as usize, inner.request_timeout);
        EdgeHost {
            inner: Arc::new(inner),
        }
    }

    /// Serves HTTP/1.1 on `listener` until `shutdown` resolves; requests in flight get their time
    /// limit to finish.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        tokio::pin!(shutdown);
        let mut connections = tokio::task::JoinSet::new();
        loop {
            // Reap finished connections so the set does not grow with every connection.
            while connections.try_join_next().is_some() {}
            // At most `max_connections` open: beyond, clients wait in the listen backlog.
            let slot = tokio::select! {
                () = &mut shutdown => break,
                slot = self.inner.connections.clone().acquire_owned() => match slot {
                    Ok(slot) => slot,
                    Err(_) => break,
                },
            };
            let (stream, peer) = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let host = self.clone();
            metrics::gauge!("heart_edge_connections_open").increment(1.0);
            connections.spawn(async move {
                let _slot = slot;
                let header_read_timeout = host.inner.header_read_timeout;
                let service = hyper::service::service_fn(move |request| {
                    let host = host.clone();
                    async move { Ok::<_, Infallible>(host.handle(request, peer).await) }
                });
                if let Err(e) = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(header_read_timeout)
                    .keep_alive(true)
                    .max_headers(HYPER_MAX_HEADERS)
                    .max_buf_size(HYPER_MAX_BUF_BYTES)
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                }
                metrics::gauge!("heart_edge_connections_open").decrement(1.0);
            });
        }
        // Requests in flight (each holds a permit) get their time limit to finish; then the
        // connections, idle keep-alive ones included, are closed.
        let in_flight = self.inner.permits.acquire_many(self.inner.max_concurrent);
        let _ = tokio::time::timeout(self.inner.request_timeout, in_flight).await;
        connections.abort_all();
        Ok(())
    }

    /// Answers one request with a fresh instance of the component, and logs and counts it.
    pub async fn handle(
        &self,
        mut request: hyper::Request<Incoming>,
        peer: SocketAddr,
    ) -> hyper::Response<HyperOutgoingBody> {
        let started = Instant::now();
        let request_id = telemetry::request_id(request.headers().get(REQUEST_ID_HEADER));
        if let Ok(value) = http::HeaderValue::from_str(&request_id) {
            request.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        let method = request.method().as_str().to_owned();
        let matched = edge::match_route(&method, request.uri().path());
        let (mut response, host_outcome) = self.answer(request, peer, matched.body()).await;
        let (outcome, member_id) = telemetry::take_internal_headers(response.headers_mut());
        if let Ok(value) = http::HeaderValue::from_str(&request_id) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        let latency = started.elapsed();
        let record = AccessRecord {
            request_id,
            method,
            route: matched.label(),
            status: response.status().as_u16(),
            latency_us: u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
            outcome: host_outcome
                .map(str::to_owned)
                .or(outcome)
                .unwrap_or_else(|| "failed".to_owned()),
            member_id,
        };
        telemetry::record_metrics(&record, latency);
        (self.inner.access_log)(&record);
        response
    }

    /// The answer, and the host's own outcome when the host answered without the component.
    async fn answer(
        &self,
        request: hyper::Request<Incoming>,
        peer: SocketAddr,
        kind: BodyKind,
    ) -> (hyper::Response<HyperOutgoingBody>, Option<&'static str>) {
        let inner = self.inner.clone();
        let limit = inner.limits.of(kind);
        if let Some(refusal) = refuse_early(&request, limit) {
            return (refusal, Some("too_large"));
        }
        // JSON bodies are read before an instance is taken, within the body time limit: a slow
        // client holds a connection, never an instance. Uploads stream, at most
        // `max_concurrent_uploads` at once, within the request time limit.
        let (parts, incoming) = request.into_parts();
        let (body, upload_slot) = match kind {
            BodyKind::Json => match body::read_within(incoming, limit, inner.body_timeout).await {
                Ok(bytes) => (body::full(bytes), None),
                Err(body::ReadError::TooLarge) => {
                    return (too_large(limit), Some("too_large"));
                }
                Err(body::ReadError::TooSlow) => {
                    let mut response = contract_error(
                        ErrorCode::UnreadableBody,
                        "Request body not received in time",
                    );
                    response.headers_mut().insert(
                        hyper::header::CONNECTION,
                        http::HeaderValue::from_static("close"),
                    );
                    return (response, Some("slow_body"));
                }
                Err(body::ReadError::Failed) => {
                    return (
                        contract_error(
                            ErrorCode::UnreadableBody,
                            ErrorCode::UnreadableBody.default_message(),
                        ),
                        Some("failed"),
                    );
                }
            },
            BodyKind::Upload => {
                let slot =
                    tokio::time::timeout(inner.permit_wait, inner.uploads.clone().acquire_owned())
                        .await;
                match slot {
                    Ok(Ok(slot)) => (
                        body::with_deadline(incoming, inner.request_timeout),
                        Some(slot),
                    ),
                    Ok(Err(_)) => return (shutting_down(), Some("failed")),
                    Err(_) => return (busy(), Some("busy")),
                }
            }
        };
        let request = hyper::Request::from_parts(parts, body);

        let permit =
            match tokio::time::timeout(inner.permit_wait, inner.permits.clone().acquire_owned())
                .await
            {
                Ok(Ok(permit)) => permit,
                Ok(Err(_)) => return (shutting_down(), Some("failed")),
                Err(_) => {
                    tracing::warn!(
                        wait_ms = inner.permit_wait.as_millis() as u64,
                        "no instance free in time; answered busy"
                    );
                    return (busy(), Some("busy"));
                }
            };
        let in_use = inner.max_concurrent as usize - inner.permits.available_permits();
        metrics::gauge!("heart_edge_permits_in_use").set(in_use as f64);
        (self.run(request, peer, permit, upload_slot).await, None)
    }
    /// Runs the component on `request` with `permit` (and the upload slot) held to the end.
    async fn run(
        &self,
        mut request: hyper::Request<body::HostBody>,
        peer: SocketAddr,
        permit: tokio::sync::OwnedSemaphorePermit,
        upload_slot: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> hyper::Response<HyperOutgoingBody> {
        let inner = self.inner.clone();
        // Like Spin: the client's address for the component, and no client-sent spin-* headers.
        let spoofed: Vec<_> = request
            .headers()
            .keys()
            .filter(|name| name.as_str().starts_with("spin-"))
            .cloned()
            .collect();
        for name in spoofed {
            request.headers_mut().remove(name);
        }
        if let Ok(value) = http::HeaderValue::from_str(&peer.to_string()) {
            request.headers_mut().insert("spin-client-addr", value);
        }

        let mut store = Store::new(
            &inner.engine,
            RequestState {
                wasi: wasi_ctx(inner.wall_clock.as_ref()),
                http: WasiHttpCtx::new(),
                table: ResourceTable::new(),
                hooks: OutboundPolicy {
                    core: inner.core.clone(),
                    timeout: inner.request_timeout,
                    pool: inner.pool.clone(),
                },
                variables: inner.variables.clone(),
                stores: inner.stores.clone(),
            },
        );
        // The head within the request time limit; a streamed body for as long as it moves.
        let deadline = Deadline::new(
            inner.request_timeout,
            inner.stream_timeout,
            inner.long_streams.clone(),
        );
        store.set_epoch_deadline(epoch_ticks(deadline.remaining()));
        let watch = deadline.clone();
        store.epoch_deadline_callback(move |_| {
            let left = watch.remaining();
            if left.is_zero() {
                Err(wasmtime::Error::msg(deadline::EXPIRED))
            } else {
                Ok(wasmtime::UpdateDeadline::Continue(epoch_ticks(left)))
            }
        });

        let (sender, receiver) = tokio::sync::oneshot::channel();
        let prepared = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request)
            .and_then(|req| {
                let out = store.data_mut().http().new_response_outparam(sender)?;
                Ok((req, out))
            });
        let (req, out) = match prepared {
            Ok(resources) => resources,
            Err(e) => {
                tracing::error!(error = ?e, "could not hand the request to the component");
                return contract_error(ErrorCode::Internal, ErrorCode::Internal.default_message());
            }
        };

        let pre = inner.pre.clone();
        let running = deadline.clone();
        let permits = inner.permits.clone();
        let max_concurrent = inner.max_concurrent as usize;
        // The instance, from instantiation to the end of its handler, within the deadline (which
        // also bounds the wait for the head: an instance that has not answered in time ends).
        let mut instance = Instance(Some(Box::pin(async move {
            let held = (permit, upload_slot);
            let run = async {
                let proxy = pre.instantiate_async(&mut store).await?;
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, req, out)
                    .await
            };
            let result = match running.run(run).await {
                Ok(result) => result.map_err(|e| format!("{e:?}")),
                Err(expired) => Err(expired.to_owned()),
            };
            if let Err(e) = &result {
                // Before the store (and with it the body's sender) is dropped below.
                running.cut();
                if running.is_answered() {
                    // The client has the head; the body is cut off where it stood.
                    tracing::warn!(error = %e, "a streamed answer was cut off");
                }
            }
            // The store holds the instance's slot in the engine's pool until it is dropped: it
            // goes first, so a request that gets the permit next (on any thread) finds a slot.
            drop(store);
            drop(held);
            let in_use = max_concurrent - permits.available_permits();
            metrics::gauge!("heart_edge_permits_in_use").set(in_use as f64);
            result
        })));

        // The instance runs in this task until it answers the head. A whole answer (a cached page,
        // an error, a small core answer) has usually ended its instance by then, and no task is
        // spawned; an instance still streaming its body goes on in a task of its own when
        // `instance` is dropped.
        let mut receiver = receiver;
        let head = tokio::select! {
            biased;
            ended = &mut instance => receiver.try_recv().map_err(|_| ended),
            head = &mut receiver => match head {
                Ok(head) => Ok(head),
                // It let go of the answer without setting it: its end says why.
                Err(_) => Err((&mut instance).await),
            },
        };
        match head {
            Ok(Ok(response)) => {
                deadline.answered();
                response.map(|body| deadline.track(body))
            }
            Ok(Err(code)) => {
                tracing::error!(error = ?code, "the component answered with an error");
                contract_error(ErrorCode::Internal, ErrorCode::Internal.default_message())
            }
            Err(ended) => {
                // The component ended without answering: it trapped, ran past the time limit or
                // returned early.
                let cause = match ended {
                    Ok(()) => "the component never set a response".to_owned(),
                    Err(e) => e,
                };
                tracing::error!(error = %cause, "the component failed");
                if cause.contains("interrupt") || cause.contains("time limit") {
                    contract_error(
                        ErrorCode::DependencyUnavailable,
                        "The request took too long",
                    )
                } else {
                    contract_error(ErrorCode::Internal, ErrorCode::Internal.default_message())
                }
            }
        }
    }
}

/// A request's instance, polled by the task that waits for its answer's head. Dropped before it
/// has ended (its answer streams on, or the client went away), it goes on in a task of its own:
/// like a Spin instance, it runs to its end or its deadline, so a request the component has
/// started (and maybe sent to the core) is never cut off halfway by the client leaving.
struct Instance<F: Future + Send + 'static>(Option<std::pin::Pin<Box<F>>>)
where
    F::Output: Send;

impl<F: Future + Send + 'static> Future for Instance<F>
where
    F::Output: Send,
{
    type Output = F::Output;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let Some(running) = self.0.as_mut() else {
            panic!("an instance polled after it ended");
        };
        let output = std::task::ready!(running.as_mut().poll(cx));
        self.0 = None;
        std::task::Poll::Ready(output)
    }
}

impl<F: Future + Send + 'static> Drop for Instance<F>
where
    F::Output: Send,
{
    fn drop(&mut self) {
        if let Some(running) = self.0.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => drop(runtime.spawn(running)),
                Err(_) => tracing::warn!("an instance was dropped outside the runtime: ended"),
            }
        }
    }
}

/// `GLOBAL_503` with `Retry-After: 1`: no instance (or upload slot) free within the wait.
fn busy() -> hyper::Response<HyperOutgoingBody> {
    let mut response = contract_error(
        ErrorCode::DependencyUnavailable,
        "The edge is busy; retry shortly",
    );
    response.headers_mut().insert(
        hyper::header::RETRY_AFTER,
        http::HeaderValue::from_static("1"),
    );
    response
}

fn shutting_down() -> hyper::Response<HyperOutgoingBody> {
    contract_error(
        ErrorCode::DependencyUnavailable,
        "The edge is shutting down",
    )
}

fn too_large(limit: u64) -> hyper::Response<HyperOutgoingBody> {
    contract_error(
        ErrorCode::PayloadTooLarge,
        &format!("Request body over this route's limit of {limit} bytes"),
    )
}

/// A contract error for a request over the head limits or whose `Content-Length` is over the
/// route's body `limit`, answered before an instance is taken or the body is read; `None` for
/// every other request.
fn refuse_early<B>(
    request: &hyper::Request<B>,
    limit: u64,
) -> Option<hyper::Response<HyperOutgoingBody>> {
    let headers = request.headers();
    let head_bytes = request.method().as_str().len()
        + request.uri().to_string().len()
        + headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum::<usize>();
    // The request id is the edge's own header (made here, or the client's replaced by a checked
    // one), like the identity headers added later: it does not count against the client's limit.
    let client_headers = headers.len() - usize::from(headers.contains_key(REQUEST_ID_HEADER));
    if client_headers > MAX_REQUEST_HEADERS || head_bytes > MAX_REQUEST_HEAD_BYTES {
        tracing::info!(
            headers = client_headers,
            head_bytes,
            "request head over the limits; refused"
        );
        return Some(contract_error(
            ErrorCode::UnreadableBody,
            &format!(
                "Request headers too large (at most {MAX_REQUEST_HEADERS} headers and {} KiB)",
                MAX_REQUEST_HEAD_BYTES / 1024
            ),
        ));
    }
    let declared = headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Some(too_large(limit));
    }
    None
}

fn wasm_error(e: wasmtime::Error) -> anyhow::Error {
    anyhow::anyhow!("{e:?}")
}

/// One instance's WASI context: stderr inherited (the component's panics reach the log), the
/// host's wall clock when one is set.
fn wasi_ctx(clock: Option<&WallClock>) -> WasiCtx {
    let mut builder = WasiCtx::builder();
    builder.inherit_stderr();
    if let Some(clock) = clock {
        builder.wall_clock(ComponentClock(clock.clone()));
    }
    builder.build()
}

/// `left` in epoch ticks, at least one.
fn epoch_ticks(left: Duration) -> u64 {
    u64::try_from(left.as_millis() / EPOCH_TICK.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// Advances the engine's epoch every [`EPOCH_TICK`] while the engine lives.
fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("heart-edge-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .map(drop)
        .unwrap_or_else(
            |e| tracing::error!(error = %e, "no epoch thread: guests cannot be interrupted"),
        );
}

/// A contract error answer produced by the host itself (the component failed or took too long).
pub fn contract_error(code: ErrorCode, message: &str) -> hyper::Response<HyperOutgoingBody> {
    let body = Full::new(Bytes::from(ErrorBody::new(code, message).to_json()))
        .map_err(|never: Infallible| match never {})
        .boxed_unsync();
    let mut response = hyper::Response::new(body);
    *response.status_mut() = hyper::StatusCode::from_u16(code.status())
        .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_requests_are_refused_before_the_component() {
        let request = |build: http::request::Builder| build.uri("/post/posts").body(()).unwrap();
        let refuse_early = |r: &hyper::Request<()>| refuse_early(r, 1000);
        assert!(refuse_early(&request(hyper::Request::builder())).is_none());

        let mut many = hyper::Request::builder();
        for i in 0..=MAX_REQUEST_HEADERS {
            many = many.header(format!("x-h-{i}"), "1");
        }
        assert_eq!(refuse_early(&request(many)).unwrap().status(), 400);

        let long = hyper::Request::builder().header("cookie", "a".repeat(MAX_REQUEST_HEAD_BYTES));
        assert_eq!(refuse_early(&request(long)).unwrap().status(), 400);

        let huge = hyper::Request::builder().header("content-length", "1001");
        assert_eq!(refuse_early(&request(huge)).unwrap().status(), 413);
        let at_limit = hyper::Request::builder().header("content-length", "1000");
        assert!(refuse_early(&request(at_limit)).is_none());
    }

    #[test]
    fn host_errors_are_in_the_contract_format() {
        let response = contract_error(
            ErrorCode::DependencyUnavailable,
            "The request took too long",
        );
        assert_eq!(response.status(), 503);
        assert_eq!(
            response.headers().get("content-type").unwrap(),
            "application/json"
        );
        let response = busy();
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers().get("retry-after").unwrap(), "1");
    }

    #[tokio::test]
    async fn an_instance_let_go_of_before_its_end_runs_on_to_it() {
        let (ended, mut end) = tokio::sync::oneshot::channel();
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let mut instance = Instance(Some(Box::pin(async move {
            let _ = wait.await;
            let _ = ended.send("ran to its end");
        })));
        // Polled once by the request's task, then dropped (the head was answered, or the client
        // left) while it waits.
        let pending = std::future::poll_fn(|cx| {
            std::task::Poll::Ready(std::pin::Pin::new(&mut instance).poll(cx).is_pending())
        })
        .await;
        assert!(pending);
        drop(instance);
        go.send(()).unwrap();
        let said = tokio::time::timeout(Duration::from_secs(5), &mut end).await;
        assert_eq!(said.unwrap().unwrap(), "ran to its end");

        // An instance that ended is not run again when dropped.
        let mut done = Instance(Some(Box::pin(async { 7 })));
        assert_eq!((&mut done).await, 7);
        drop(done);
    }

    #[test]
    fn limits_are_read_from_the_environment() {
        let mut config = HostConfig::new("x.wasm", HashMap::new());
        config
            .read_limits(|name| match name {
                "HEART_EDGE_HEADER_TIMEOUT_SECS" => Some("3".into()),
                "HEART_EDGE_MAX_CONNECTIONS" => Some("10".into()),
                "HEART_EDGE_PERMIT_WAIT_MS" => Some("250".into()),
                "HEART_EDGE_MAX_CONCURRENCY" => Some("9".into()),
                "HEART_EDGE_STREAM_TIMEOUT_SECS" => Some("600".into()),
                _ => None,
            })
            .unwrap();
        assert_eq!(config.header_read_timeout, Duration::from_secs(3));
        assert_eq!(config.max_connections, 10);
        assert_eq!(config.permit_wait, Duration::from_millis(250));
        assert_eq!(config.max_concurrent_uploads, 5);
        assert_eq!(config.max_long_streams, 3);
        assert_eq!(config.stream_timeout, Duration::from_secs(600));
        assert!(config
            .read_limits(|name| (name == "HEART_EDGE_BODY_TIMEOUT_SECS").then(|| "x".into()))
            .is_err());
    }
}
