//! Serving the component over HTTP: one instance per request from a pre-instantiated component,
//! wasi:http through hyper, Spin's variables and Redis, outbound HTTP to the core only.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use heart_shared::{ErrorBody, ErrorCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{
    RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView,
};

use crate::compile;
use crate::spin::{self, SpinState, Stores};
use crate::store::EdgeStore;

/// How often the epoch advances; the per-request CPU deadline is counted in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The largest request body: the component's own limit (`heart_edge::MAX_REQUEST_BODY_BYTES`).
/// A request whose `Content-Length` says more is refused (`GLOBAL_008`) before its body is read.
pub const MAX_REQUEST_BODY_BYTES: u64 = 128 * 1024 * 1024;

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
    /// The Spin application variables (`core_url`, `jwks`, `redis_url`, `cache_prefix`, `edge_secret`, …).
    pub variables: HashMap<String, String>,
    /// Wall-clock limit of one request, and CPU limit of its instance (epoch interruption).
    pub request_timeout: Duration,
    /// Instances in the pool; requests beyond wait for a free one.
    pub max_concurrent_requests: u32,
    /// Where compiled components are cached between starts; `None`: compile on every start.
    pub cache_dir: Option<PathBuf>,
    /// The store behind `redis_url = "memory:"`; `None`: a fresh [`crate::store::InProcessStore`].
    pub in_process_store: Option<Arc<dyn EdgeStore>>,
    /// How long connecting to Redis may take before the request goes on without it.
    pub redis_connect_timeout: Duration,
}

impl std::fmt::Debug for HostConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Variables hold the edge secret and Redis credentials: print their names only.
        let names: Vec<&String> = self.variables.keys().collect();
        f.debug_struct("HostConfig")
            .field("component", &self.component)
            .field("variables", &names)
            .field("request_timeout", &self.request_timeout)
            .field("max_concurrent_requests", &self.max_concurrent_requests)
            .field("cache_dir", &self.cache_dir)
            .finish_non_exhaustive()
    }
}

impl HostConfig {
    /// A configuration with defaults: 30 s per request, 64 instances, no compile cache.
    pub fn new(component: impl Into<PathBuf>, variables: HashMap<String, String>) -> HostConfig {
        HostConfig {
            component: component.into(),
            variables,
            request_timeout: Duration::from_secs(30),
            max_concurrent_requests: 64,
            cache_dir: None,
            in_process_store: None,
            redis_connect_timeout: Duration::from_millis(500),
        }
    }

    /// The configuration from the environment: `HEART_EDGE_COMPONENT` (default: the component
    /// built next to this host), `HEART_EDGE_VAR_<NAME>` for every Spin variable,
    /// `HEART_EDGE_REQUEST_TIMEOUT_SECS`, `HEART_EDGE_MAX_CONCURRENCY`, `HEART_EDGE_CACHE_DIR`.
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
        if let Ok(secs) = std::env::var("HEART_EDGE_REQUEST_TIMEOUT_SECS") {
            config.request_timeout = Duration::from_secs(
                secs.parse()
                    .context("HEART_EDGE_REQUEST_TIMEOUT_SECS must be a number")?,
            );
        }
        if let Ok(n) = std::env::var("HEART_EDGE_MAX_CONCURRENCY") {
            config.max_concurrent_requests = n
                .parse()
                .context("HEART_EDGE_MAX_CONCURRENCY must be a number")?;
        }
        config.cache_dir = std::env::var_os("HEART_EDGE_CACHE_DIR").map(PathBuf::from);
        Ok(config)
    }
}

/// The scheme and authority the component may send HTTP requests to (the core).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: String,
    authority: String,
}

impl Origin {
    fn parse(url: &str) -> anyhow::Result<Origin> {
        let uri: http::Uri = url
            .parse()
            .with_context(|| format!("core_url {url:?} is not a URL"))?;
        match (uri.scheme_str(), uri.authority()) {
            (Some(scheme @ ("http" | "https")), Some(authority)) => Ok(Origin {
                scheme: scheme.to_owned(),
                authority: authority.as_str().to_owned(),
            }),
            _ => anyhow::bail!("core_url {url:?} must be an http(s) origin"),
        }
    }

    fn allows(&self, uri: &http::Uri) -> bool {
        uri.scheme_str() == Some(self.scheme.as_str())
            && uri.authority().map(|a| a.as_str()) == Some(self.authority.as_str())
    }
}

/// Outbound HTTP policy: only the core, with time limits.
struct OutboundPolicy {
    core: Origin,
    timeout: Duration,
}

impl WasiHttpHooks for OutboundPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<WasiBody>,
                        Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                    ),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        drop(fut);
        let allowed = self.core.allows(request.uri());
        let timeout = self.timeout;
        Box::new(async move {
            if !allowed {
                tracing::warn!(uri = %request.uri(), "component sent a request outside the core; refused");
                return Err(wasmtime_wasi_http::Error::HttpRequestDenied);
            }
            let options = options.unwrap_or_default();
            let options = RequestOptions {
                connect_timeout: Some(options.connect_timeout.unwrap_or(timeout).min(timeout)),
                first_byte_timeout: Some(
                    options.first_byte_timeout.unwrap_or(timeout).min(timeout),
                ),
                between_bytes_timeout: Some(
                    options
                        .between_bytes_timeout
                        .unwrap_or(timeout)
                        .min(timeout),
                ),
            };
            let (response, io) =
                wasmtime_wasi_http::default_send_request(request, Some(options)).await?;
            Ok((
                response.map(|body| body.boxed_unsync()),
                Box::new(io) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
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

struct Inner {
    engine: Engine,
    pre: ProxyPre<RequestState>,
    variables: Arc<HashMap<String, String>>,
    stores: Arc<Stores>,
    core: Origin,
    request_timeout: Duration,
    permits: Arc<Semaphore>,
    max_concurrent: u32,
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
        Ok(EdgeHost {
            inner: Arc::new(Inner {
                engine,
                pre,
                stores: Arc::new(Stores::new(
                    allowed_redis,
                    config.in_process_store,
                    config.redis_connect_timeout,
                )),
                variables: Arc::new(config.variables),
                core,
                request_timeout: config.request_timeout,
                permits: Arc::new(Semaphore::new(
                    config.max_concurrent_requests.max(1) as usize
                )),
                max_concurrent: config.max_concurrent_requests.max(1),
            }),
        })
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
            let host = self.clone();
            connections.spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let host = host.clone();
                    async move { Ok::<_, Infallible>(host.handle(request, peer).await) }
                });
                if let Err(e) = http1::Builder::new()
                    .keep_alive(true)
                    .max_headers(HYPER_MAX_HEADERS)
                    .max_buf_size(HYPER_MAX_BUF_BYTES)
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                }
            });
        }
        // Requests in flight (each holds a permit) get their time limit to finish; then the
        // connections, idle keep-alive ones included, are closed.
        let in_flight = self.inner.permits.acquire_many(self.inner.max_concurrent);
        let _ = tokio::time::timeout(self.inner.request_timeout, in_flight).await;
        connections.abort_all();
        Ok(())
    }

    /// Answers one request with a fresh instance of the component.
    pub async fn handle(
        &self,
        mut request: hyper::Request<Incoming>,
        peer: SocketAddr,
    ) -> hyper::Response<HyperOutgoingBody> {
        if let Some(refusal) = refuse_early(&request) {
            return refusal;
        }
        let inner = self.inner.clone();
        let Ok(permit) = inner.permits.clone().acquire_owned().await else {
            return contract_error(
                ErrorCode::DependencyUnavailable,
                "The edge is shutting down",
            );
        };
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
                wasi: WasiCtx::builder().inherit_stderr().build(),
                http: WasiHttpCtx::new(),
                table: ResourceTable::new(),
                hooks: OutboundPolicy {
                    core: inner.core.clone(),
                    timeout: inner.request_timeout,
                },
                variables: inner.variables.clone(),
                stores: inner.stores.clone(),
            },
        );
        let ticks = (inner.request_timeout.as_millis() / EPOCH_TICK.as_millis()).max(1);
        store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX));
        store.epoch_deadline_trap();

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
        let timeout = inner.request_timeout;
        let task = tokio::spawn(async move {
            let _permit = permit;
            let run = async {
                let proxy = pre.instantiate_async(&mut store).await?;
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, req, out)
                    .await
            };
            match tokio::time::timeout(timeout, run).await {
                Ok(result) => result.map_err(|e| format!("{e:?}")),
                Err(_) => Err("the component ran past the request time limit".to_owned()),
            }
        });

        match tokio::time::timeout(timeout, receiver).await {
            Ok(Ok(Ok(response))) => response,
            Ok(Ok(Err(code))) => {
                tracing::error!(error = ?code, "the component answered with an error");
                contract_error(ErrorCode::Internal, ErrorCode::Internal.default_message())
            }
            Ok(Err(_)) => {
                // The component ended without answering: it trapped or returned early.
                let cause = match task.await {
                    Ok(Ok(())) => "the component never set a response".to_owned(),
                    Ok(Err(e)) => e,
                    Err(e) => e.to_string(),
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
            Err(_) => {
                task.abort();
                tracing::error!(
                    limit_secs = timeout.as_secs(),
                    "request timed out in the edge"
                );
                contract_error(
                    ErrorCode::DependencyUnavailable,
                    "The request took too long",
                )
            }
        }
    }
}

/// A contract error for a request over the head or body limits, answered before an instance is
/// taken or the body is read; `None` for every other request.
fn refuse_early<B>(request: &hyper::Request<B>) -> Option<hyper::Response<HyperOutgoingBody>> {
    let headers = request.headers();
    let head_bytes = request.method().as_str().len()
        + request.uri().to_string().len()
        + headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum::<usize>();
    if headers.len() > MAX_REQUEST_HEADERS || head_bytes > MAX_REQUEST_HEAD_BYTES {
        tracing::info!(
            headers = headers.len(),
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
    if declared.is_some_and(|length| length > MAX_REQUEST_BODY_BYTES) {
        return Some(contract_error(
            ErrorCode::PayloadTooLarge,
            "Request too large",
        ));
    }
    None
}

fn wasm_error(e: wasmtime::Error) -> anyhow::Error {
    anyhow::anyhow!("{e:?}")
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
    fn only_the_cores_origin_is_reachable() {
        let core = Origin::parse("http://heart-core:8080").unwrap();
        let allowed = |uri: &str| core.allows(&uri.parse().unwrap());
        assert!(allowed("http://heart-core:8080/post/posts?page=0"));
        assert!(!allowed("https://heart-core:8080/post/posts"));
        assert!(!allowed("http://heart-core:8081/"));
        assert!(!allowed("http://evil.example.com/"));
        assert!(!allowed("http://heart-core/"));
        assert!(Origin::parse("heart-core:8080").is_err());
        assert!(Origin::parse("ftp://heart-core").is_err());
    }

    #[test]
    fn oversized_requests_are_refused_before_the_component() {
        let request = |build: http::request::Builder| build.uri("/post/posts").body(()).unwrap();
        assert!(refuse_early(&request(hyper::Request::builder())).is_none());

        let mut many = hyper::Request::builder();
        for i in 0..=MAX_REQUEST_HEADERS {
            many = many.header(format!("x-h-{i}"), "1");
        }
        assert_eq!(refuse_early(&request(many)).unwrap().status(), 400);

        let long = hyper::Request::builder().header("cookie", "a".repeat(MAX_REQUEST_HEAD_BYTES));
        assert_eq!(refuse_early(&request(long)).unwrap().status(), 400);

        let huge = hyper::Request::builder()
            .header("content-length", (MAX_REQUEST_BODY_BYTES + 1).to_string());
        assert_eq!(refuse_early(&request(huge)).unwrap().status(), 413);
        let at_limit =
            hyper::Request::builder().header("content-length", MAX_REQUEST_BODY_BYTES.to_string());
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
    }
}
