//! The edge under test: the real component in the host on a random port, a stand-in core that
//! records what it receives, and a store (real Redis or the in-process one) with a random prefix.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use ed25519_dalek::SigningKey;
use heart_edge_host::store::{EdgeStore, InProcessStore};
use heart_edge_host::telemetry::AccessRecord;
use heart_edge_host::{EdgeHost, HostConfig};
use heart_shared::cache_keys::KeySpace;
use heart_shared::token::{ed25519_jwk, key_id, AccessClaims, Jwk, Jwks};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::RngCore;
use tokio::net::{TcpListener, TcpStream};

/// Which store backs the component's Redis connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Real Redis at `HEART_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`).
    Redis,
    /// The host's in-process store (`redis_url = "memory:"`).
    InProcess,
    /// A Redis address where nothing listens.
    Unreachable,
}

/// `HEART_TEST_REDIS_URL` when tests on real Redis run (CI sets it). Otherwise `None`, and the
/// calling test is said to be skipped: the README's test command runs with nothing installed.
pub fn real_redis_url() -> Option<String> {
    let url = std::env::var("HEART_TEST_REDIS_URL").ok();
    if url.is_none() {
        eprintln!("skipped: HEART_TEST_REDIS_URL is not set");
    }
    url
}

pub fn redis_url() -> String {
    std::env::var("HEART_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A request the stand-in core received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path_and_query: String,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What the stand-in core answers: status, content type, body.
type Answer = (u16, &'static str, String);

/// A tiny HTTP server standing in for the core.
#[derive(Clone)]
pub struct FakeCore {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    answer: Arc<Mutex<Answer>>,
    delay: Arc<Mutex<Duration>>,
    stream: Arc<Mutex<Option<Streamed>>>,
    /// TCP connections the edge opened to this core.
    pub connections: Arc<std::sync::atomic::AtomicUsize>,
}

impl FakeCore {
    async fn start() -> FakeCore {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let core = FakeCore {
            addr: listener.local_addr().unwrap(),
            received: Arc::default(),
            answer: Arc::new(Mutex::new((
                200,
                "application/json",
                r#"{"size":0,"posts":[],"next_cursor":null}"#.to_owned(),
            ))),
            delay: Arc::default(),
            stream: Arc::default(),
            connections: Arc::default(),
        };
        let served = core.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let core = served.clone();
                core.connections
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let core = core.clone();
                        async move { Ok::<_, std::convert::Infallible>(core.answer(request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        core
    }

    async fn answer(
        &self,
        request: hyper::Request<hyper::body::Incoming>,
    ) -> hyper::Response<BoxBody<Bytes, std::io::Error>> {
        let (parts, body) = request.into_parts();
        // A request whose body broke off is not a request the core would act on: not recorded.
        let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
            return hyper::Response::builder()
                .status(400)
                .body(full(Bytes::new()))
                .unwrap();
        };
        self.received.lock().unwrap().push(Received {
            method: parts.method.to_string(),
            path_and_query: parts
                .uri
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            headers: parts.headers,
            body,
        });
        let delay = *self.delay.lock().unwrap();
        tokio::time::sleep(delay).await;
        let (status, content_type, body) = self.answer.lock().unwrap().clone();
        let body = match *self.stream.lock().unwrap() {
            None => full(Bytes::from(body)),
            Some(streamed) => streamed.body(),
        };
        hyper::Response::builder()
            .status(status)
            .header("content-type", content_type)
            .header("x-request-id", "from-core")
            .body(body)
            .unwrap()
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// From now on, answer only after `delay`.
    pub fn answer_after(&self, delay: Duration) {
        *self.delay.lock().unwrap() = delay;
    }

    /// From now on, answer with a streamed body: `chunks` chunks of `CHUNK` bytes, each after
    /// `every` (zero: as fast as they are taken), and then `end`.
    pub fn answer_streaming(&self, chunks: usize, every: Duration, end: StreamEnd) {
        *self.stream.lock().unwrap() = Some(Streamed { chunks, every, end });
    }

    /// From now on, answer `status` with `body` (JSON).
    pub fn answer_with(&self, status: u16, body: &str) {
        *self.answer.lock().unwrap() = (status, "application/json", body.to_owned());
    }
}

/// A streamed answer of the stand-in core (like an export): see [`FakeCore::answer_streaming`].
#[derive(Debug, Clone, Copy)]
struct Streamed {
    chunks: usize,
    every: Duration,
    end: StreamEnd,
}

/// How a streamed answer of the stand-in core ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// Whole: the last chunk, then the end of the body.
    Complete,
    /// Nothing more, never ending.
    Stall,
    /// The body fails (the core's connection is cut without the final chunk).
    Break,
}

fn full(bytes: Bytes) -> BoxBody<Bytes, std::io::Error> {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}

/// The size of one chunk of a streamed answer.
pub const CHUNK: usize = 1024;

impl Streamed {
    fn body(self) -> BoxBody<Bytes, std::io::Error> {
        let frames = futures_util::stream::unfold(0, move |sent| async move {
            if sent == self.chunks {
                return match self.end {
                    StreamEnd::Complete => None,
                    StreamEnd::Stall => std::future::pending().await,
                    StreamEnd::Break => Some((Err(std::io::Error::other("cut")), sent + 1)),
                };
            }
            if !self.every.is_zero() {
                tokio::time::sleep(self.every).await;
            }
            let frame = hyper::body::Frame::data(Bytes::from(vec![b'z'; CHUNK]));
            Some((Ok::<_, std::io::Error>(frame), sent + 1))
        });
        StreamBody::new(frames).boxed()
    }
}

/// Signs access tokens like the core (`core-api/src/auth/tokens.rs`).
pub struct Signer {
    key: EncodingKey,
    pub jwk: Jwk,
}

impl Signer {
    pub fn generate() -> Signer {
        let signing = SigningKey::generate(&mut rand::rngs::OsRng);
        let der = signing.to_pkcs8_der().unwrap();
        Signer {
            key: EncodingKey::from_ed_der(der.as_bytes()),
            jwk: ed25519_jwk(signing.verifying_key().as_bytes()),
        }
    }

    /// A token for `member_id` in session `sid`, expiring `ttl` seconds from now, under `kid`.
    pub fn token_with(&self, member_id: i64, sid: &str, ttl: i64, kid: &str) -> String {
        let now = now();
        let claims = AccessClaims {
            sub: member_id.to_string(),
            sid: sid.to_owned(),
            jti: random_hex(8),
            iat: now,
            exp: now + ttl,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
    }

    /// A valid ten-minute token.
    pub fn token(&self, member_id: i64, sid: &str) -> String {
        self.token_with(member_id, sid, 600, key_id(&self.jwk))
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A port on which nothing listens.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// An answer of the edge.
#[derive(Debug)]
pub struct Answered {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Answered {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// Asserts a contract error: status, `code`, the body's `status` and JSON content type.
    pub fn assert_error(&self, status: u16, code: &str) {
        let body = self.json();
        assert_eq!(self.status, status, "{body}");
        assert_eq!(body["code"], code, "{body}");
        assert_eq!(body["status"], status, "{body}");
        assert!(body["message"].is_string(), "{body}");
        assert_eq!(self.header("content-type"), Some("application/json"));
    }
}

/// Options for one edge.
/// Wraps the in-process store a test edge uses (to count or fail its calls).
pub type WrapStore = fn(Arc<InProcessStore>) -> Arc<dyn EdgeStore>;

#[derive(Clone)]
pub struct Options {
    pub backend: Backend,
    pub variables: Vec<(&'static str, String)>,
    pub request_timeout: Duration,
    /// Changes to the host's configuration (limits).
    pub host: Option<fn(&mut HostConfig)>,
    /// The in-process store (default: a fresh one).
    pub store: Option<Arc<InProcessStore>>,
    /// Wraps the in-process store the component sees (e.g. to count round trips).
    pub wrap_store: Option<WrapStore>,
    /// The `redis_url` instead of the backend's (e.g. real Redis through a fault proxy).
    pub redis_url: Option<String>,
    /// Serve on this many threads of their own, as `heart-edge-host` does, instead of on the
    /// test's runtime.
    pub threads: Option<usize>,
    /// The component's wall clock stands still at the edge's start (see [`Options::frozen_clock`]).
    pub frozen_clock: bool,
}

impl Options {
    pub fn on(backend: Backend) -> Options {
        Options {
            backend,
            variables: Vec::new(),
            request_timeout: Duration::from_secs(10),
            host: None,
            store: None,
            wrap_store: None,
            redis_url: None,
            threads: None,
            frozen_clock: false,
        }
    }

    /// The component's wall clock stands still at the second the edge starts, so a test's
    /// requests all fall in one rate-limit window (windows are fixed to the epoch: a burst that
    /// crossed a window's end would be counted in two, and a limit test would flake).
    pub fn frozen_clock(mut self) -> Options {
        self.frozen_clock = true;
        self
    }

    pub fn threads(mut self, threads: usize) -> Options {
        self.threads = Some(threads);
        self
    }

    pub fn redis_url(mut self, url: &str) -> Options {
        self.redis_url = Some(url.to_owned());
        self
    }

    pub fn host(mut self, configure: fn(&mut HostConfig)) -> Options {
        self.host = Some(configure);
        self
    }

    pub fn var(mut self, name: &'static str, value: &str) -> Options {
        self.variables.push((name, value.to_owned()));
        self
    }
}

/// One edge under test.
pub struct TestEdge {
    pub addr: SocketAddr,
    pub core: FakeCore,
    pub signer: Signer,
    pub keys: KeySpace,
    pub secret: String,
    pub backend: Backend,
    pub in_process: Arc<InProcessStore>,
    /// What the access log recorded.
    pub records: Arc<Mutex<Vec<AccessRecord>>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestEdge {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// Where every test's compiled component is cached, so only the first test compiles it.
pub fn compile_cache_dir() -> std::path::PathBuf {
    std::env::temp_dir().join("heart-edge-host-tests")
}

impl TestEdge {
    pub async fn start(backend: Backend) -> TestEdge {
        TestEdge::start_with(Options::on(backend)).await
    }

    pub async fn start_with(options: Options) -> TestEdge {
        // The host's log in a failing test's output (the harness keeps it from passing ones).
        let _ = tracing_subscriber::fmt()
            .with_env_filter("heart_edge_host=info")
            .with_test_writer()
            .try_init();
        let core = FakeCore::start().await;
        let signer = Signer::generate();
        let prefix = format!("heart-edge-test-{}", random_hex(6));
        let secret = random_hex(16);
        let redis_url = match (&options.redis_url, options.backend) {
            (Some(url), _) => url.clone(),
            (None, Backend::Redis) => redis_url(),
            (None, Backend::InProcess) => "memory:".to_owned(),
            (None, Backend::Unreachable) => format!("redis://127.0.0.1:{}", closed_port()),
        };
        let jwks = serde_json::to_string(&Jwks {
            keys: vec![signer.jwk.clone()],
        })
        .unwrap();
        let mut variables: HashMap<String, String> = [
            ("core_url", format!("http://{}", core.addr)),
            ("jwks", jwks),
            ("redis_url", redis_url),
            ("cache_prefix", prefix.clone()),
            ("edge_secret", secret.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        for (name, value) in options.variables {
            variables.insert(name.to_owned(), value);
        }
        let in_process = options.store.clone().unwrap_or_default();
        let records: Arc<Mutex<Vec<AccessRecord>>> = Arc::default();
        let component =
            heart_edge_host::BUILT_COMPONENT.expect("the component is built by build.rs");
        let mut config = HostConfig::new(component, variables);
        config.cache_dir = Some(compile_cache_dir());
        config.max_concurrent_requests = 8;
        config.request_timeout = options.request_timeout;
        if options.frozen_clock {
            let frozen = SystemTime::now();
            config.wall_clock = Some(Arc::new(move || frozen));
        }
        config.in_process_store = Some(match options.wrap_store {
            Some(wrap) => wrap(in_process.clone()),
            None => in_process.clone() as Arc<dyn EdgeStore>,
        });
        let sink = records.clone();
        config.access_log = Some(Arc::new(move |record: &AccessRecord| {
            sink.lock().unwrap().push(record.clone());
        }));
        if let Some(configure) = options.host {
            configure(&mut config);
        }
        let host = EdgeHost::new(config).unwrap();
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let addr = match options.threads {
            None => {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                tokio::spawn(async move {
                    host.serve(listener, async {
                        let _ = stop.await;
                    })
                    .await
                    .unwrap();
                });
                addr
            }
            Some(threads) => {
                let (stop_threads, stopped) = tokio::sync::watch::channel(false);
                let serving = heart_edge_host::threads::serve_on_threads(
                    &host,
                    "127.0.0.1:0".parse().unwrap(),
                    threads,
                    stopped,
                )
                .unwrap();
                let addr = serving.address;
                tokio::spawn(async move {
                    let _ = stop.await;
                    stop_threads.send_replace(true);
                    tokio::task::spawn_blocking(move || serving.join().unwrap());
                });
                addr
            }
        };
        TestEdge {
            addr,
            core,
            signer,
            keys: KeySpace::new(prefix),
            secret,
            backend: options.backend,
            in_process,
            records,
            shutdown: Some(shutdown),
        }
    }

    /// A new HTTP/1.1 connection to the edge.
    async fn connect(&self) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
        let stream = TcpStream::connect(self.addr).await.unwrap();
        let (sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(connection);
        sender
    }

    /// Sends a request to the edge.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Answered {
        let mut sender = self.connect().await;
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "api.example.com");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let (parts, body) = response.into_parts();
        Answered {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: body.collect().await.unwrap().to_bytes(),
        }
    }

    /// `GET path` as `token`: the status, and the body or how it broke off.
    pub async fn get_streamed(&self, token: &str, path: &str) -> (u16, Result<Bytes, String>) {
        let mut sender = self.connect().await;
        let request = hyper::Request::get(path)
            .header("host", "api.example.com")
            .header("authorization", format!("Bearer {token}"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await;
        (
            status,
            body.map(|b| b.to_bytes()).map_err(|e| e.to_string()),
        )
    }

    /// `GET path` with `Authorization: Bearer token`.
    pub async fn get_as(&self, token: &str, path: &str) -> Answered {
        let bearer = format!("Bearer {token}");
        self.send("GET", path, &[("authorization", &bearer)], "")
            .await
    }

    /// Writes `key = value` (with `ttl` seconds) into the edge's store, as the core would.
    pub async fn store_set(&self, key: &str, value: &str, ttl: u64) {
        match self.backend {
            Backend::Redis => {
                let client = redis::Client::open(redis_url()).unwrap();
                let mut connection = client.get_multiplexed_async_connection().await.unwrap();
                redis::cmd("SET")
                    .arg(key)
                    .arg(value)
                    .arg("EX")
                    .arg(ttl)
                    .query_async::<()>(&mut connection)
                    .await
                    .unwrap();
            }
            Backend::InProcess => self
                .in_process
                .set(key, value.as_bytes(), Some(Duration::from_secs(ttl)))
                .await
                .unwrap(),
            Backend::Unreachable => panic!("no store to write to"),
        }
    }

    /// The value at `key` in the edge's store.
    pub async fn store_get(&self, key: &str) -> Option<Vec<u8>> {
        match self.backend {
            Backend::Redis => {
                let client = redis::Client::open(redis_url()).unwrap();
                let mut connection = client.get_multiplexed_async_connection().await.unwrap();
                redis::cmd("GET")
                    .arg(key)
                    .query_async::<Option<Vec<u8>>>(&mut connection)
                    .await
                    .unwrap()
            }
            Backend::InProcess => self.in_process.get(key).await.unwrap(),
            Backend::Unreachable => panic!("no store to read"),
        }
    }

    /// `INCR key` in the edge's store, as the core does on feed writes.
    pub async fn store_incr(&self, key: &str) {
        match self.backend {
            Backend::Redis => {
                let client = redis::Client::open(redis_url()).unwrap();
                let mut connection = client.get_multiplexed_async_connection().await.unwrap();
                redis::cmd("INCR")
                    .arg(key)
                    .query_async::<i64>(&mut connection)
                    .await
                    .unwrap();
                redis::cmd("EXPIRE")
                    .arg(key)
                    .arg(600)
                    .query_async::<()>(&mut connection)
                    .await
                    .unwrap();
            }
            Backend::InProcess => {
                self.in_process.incr(key).await.unwrap();
            }
            Backend::Unreachable => panic!("no store to write to"),
        }
    }
}
