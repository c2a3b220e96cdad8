//! The stack under test: the real edge component on the wasmtime host in front of the real core,
//! both in this process, reached over TCP like the app reaches them.
//!
//! By default every stack runs on embedded backends in a temporary folder (SQLite, the in-process
//! store shared by edge and core, outbox mail, local media). With `HEART_TEST_DATABASE_URL`
//! (`mysql://root@127.0.0.1:3306`: a fresh database per test, dropped after) and
//! `HEART_TEST_REDIS_URL` (`redis://127.0.0.1:6379`: a key prefix per test) the same tests run on
//! MariaDB/MySQL and Redis. `HEART_TEST_LOG=1` prints the logs.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use heart_core::clock::Clock;
use heart_core::{AppState, Config};
use heart_shared::ErrorCode;
use heart_stack::{Stack, StackOptions};
use heart_testkit::mail::Mailbox;
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The password of every test member.
pub const PASSWORD: &str = "correct-horse-7";

/// Where the compiled edge component is cached between the tests of a run (only the first compiles).
fn edge_cache_dir() -> PathBuf {
    std::env::temp_dir().join("heart-stack-tests-edge-cache")
}

/// Held by the first stack while it compiles the component into the cache; the others then load it.
static FIRST_BUILD: tokio::sync::Mutex<bool> = tokio::sync::Mutex::const_new(false);

pub fn random_suffix() -> String {
    heart_core::auth::tokens::random_hex_id()[..12].to_owned()
}

/// A unique email for one test.
pub fn unique_email(tag: &str) -> String {
    format!("{tag}-{}@example.com", random_suffix())
}

/// How a test wants its stack.
#[derive(Debug, Default, Clone)]
pub struct Setup {
    /// `HEART_*` settings on top of the test defaults (and of the backends the environment asks for).
    pub core: Vec<(String, String)>,
    /// The edge's Spin variables on top of the stack's.
    pub edge: Vec<(String, String)>,
    /// Run as one replica of a service on these backends (database, Redis, media folder, secrets)
    /// instead of on backends of its own.
    pub shared: Option<Arc<SharedBackends>>,
}

impl Setup {
    pub fn core(mut self, name: &str, value: &str) -> Setup {
        self.core.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn edge(mut self, name: &str, value: &str) -> Setup {
        self.edge.push((name.to_owned(), value.to_owned()));
        self
    }

    /// A replica on `shared`'s backends.
    pub fn replica_of(mut self, shared: &Arc<SharedBackends>) -> Setup {
        self.shared = Some(shared.clone());
        self
    }
}

/// What the replicas of one service share: one MySQL database, one Redis key prefix, one data
/// folder (media and the mail outbox: what S3 and SMTP would be), the token signing key (the
/// development key of every test stack) and the edge secret. The database is dropped with it.
#[derive(Debug)]
pub struct SharedBackends {
    pub database_url: String,
    pub redis_url: String,
    pub cache_prefix: String,
    pub edge_secret: String,
    pub data_dir: tempfile::TempDir,
    mysql_database: (String, String),
}

impl SharedBackends {
    /// A fresh database and key prefix; `None` (with a note) unless both `HEART_TEST_DATABASE_URL`
    /// and `HEART_TEST_REDIS_URL` are set: replicas share state only through MySQL and Redis (the
    /// embedded SQLite file and in-process store belong to one process).
    pub async fn create(what: &str) -> Option<Arc<SharedBackends>> {
        let server = std::env::var("HEART_TEST_DATABASE_URL")
            .ok()
            .filter(|v| !v.is_empty());
        let (Some(server), Some(redis_url)) = (server, redis_url()) else {
            eprintln!(
                "note: {what} needs HEART_TEST_DATABASE_URL and HEART_TEST_REDIS_URL (replicas share \
                 MySQL and Redis); skipped"
            );
            return None;
        };
        let server = server.trim_end_matches('/').to_owned();
        let name = format!("heart_stack_test_{}", random_suffix());
        heart_testkit::mysql::create_database(&server, &name).await;
        Some(Arc::new(SharedBackends {
            database_url: format!("{server}/{name}"),
            redis_url,
            cache_prefix: format!("stack-test-{}", random_suffix()),
            edge_secret: format!("replicas-{}{}", random_suffix(), random_suffix()),
            data_dir: tempfile::tempdir().expect("temp dir"),
            mysql_database: (server, name),
        }))
    }

    /// A connection pool of the test's own on the shared database.
    pub async fn database(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::AnyPool::connect(&self.database_url)
            .await
            .expect("connect to the shared database")
    }
}

impl Drop for SharedBackends {
    fn drop(&mut self) {
        let (server, name) = self.mysql_database.clone();
        heart_testkit::mysql::drop_database(server, name);
    }
}

/// Whether the environment asks for real Redis.
pub fn redis_url() -> Option<String> {
    std::env::var("HEART_TEST_REDIS_URL")
        .ok()
        .filter(|v| !v.is_empty())
}

/// One whole stack, served until dropped.
pub struct TestStack {
    /// The edge: the app's entry point.
    pub addr: SocketAddr,
    /// The core behind the edge (loopback; it takes `Authorization: Bearer` itself too).
    pub core_addr: SocketAddr,
    /// The edge's client: every request helper of [`Client`] is callable on the stack.
    pub client: Client,
    /// The admin port (`/metrics`: the core's and the edge's).
    pub admin_addr: SocketAddr,
    /// The core's state (its configuration, token keys, database).
    pub state: AppState,
    mysql_database: Option<(String, String)>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    _shared: Option<Arc<SharedBackends>>,
    _dir: tempfile::TempDir,
}

impl TestStack {
    pub async fn start() -> TestStack {
        TestStack::start_with(Setup::default()).await
    }

    pub async fn start_with(setup: Setup) -> TestStack {
        if std::env::var_os("HEART_TEST_LOG").is_some() {
            heart_core::telemetry::init_logging(heart_core::config::LogFormat::Pretty);
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let mut vars: HashMap<String, String> = HashMap::new();
        let mut set = |k: &str, v: &str| {
            vars.insert(k.to_owned(), v.to_owned());
        };
        let data_dir = setup.shared.as_ref().map_or_else(
            || dir.path().to_owned(),
            |shared| shared.data_dir.path().to_owned(),
        );
        set("HEART_DATA_DIR", &data_dir.display().to_string());
        set("HEART_LISTEN_ADDR", "127.0.0.1:0");
        set("HEART_ADMIN_LISTEN_ADDR", "127.0.0.1:0");
        // Cheap hashing keeps the suite fast (as in the core's tests).
        set("HEART_ARGON2_MEMORY_KIB", "1024");
        set("HEART_ARGON2_ITERATIONS", "1");
        // Every request comes from 127.0.0.1: the core's own per-IP limits must not get in the way
        // of a test that signs up several members (the edge's limits are what these tests probe).
        for rule in [
            "VERIFICATION_SEND_PER_IP",
            "CONFIRM_PER_IP",
            "JOIN_PER_IP",
            "LOGIN_PER_IP",
            "REISSUE_PER_IP",
        ] {
            set(&format!("HEART_RATE_LIMIT_{rule}"), "1000/60s");
        }
        let mut mysql_database = None;
        if let Some(shared) = &setup.shared {
            set("HEART_DATABASE_URL", &shared.database_url);
            set("HEART_REDIS_URL", &shared.redis_url);
            set("HEART_CACHE_PREFIX", &shared.cache_prefix);
            set("HEART_EDGE_SECRET", &shared.edge_secret);
        } else if let Ok(server) = std::env::var("HEART_TEST_DATABASE_URL") {
            let server = server.trim_end_matches('/').to_owned();
            let name = format!("heart_stack_test_{}", random_suffix());
            heart_testkit::mysql::create_database(&server, &name).await;
            set("HEART_DATABASE_URL", &format!("{server}/{name}"));
            mysql_database = Some((server, name));
        }
        if let (None, Some(redis)) = (&setup.shared, redis_url()) {
            set("HEART_REDIS_URL", &redis);
            set(
                "HEART_CACHE_PREFIX",
                &format!("stack-test-{}", random_suffix()),
            );
        }
        for (k, v) in &setup.core {
            set(k, v);
        }
        let config = Config::from_vars(&vars).expect("test configuration");

        let mut options = StackOptions::for_tests();
        options.edge_cache_dir = Some(edge_cache_dir());
        options.edge_max_concurrency = 8;
        options.edge_request_timeout = Duration::from_secs(20);
        options.edge_variables = setup.edge.into_iter().collect();

        let stack = {
            let mut compiled = FIRST_BUILD.lock().await;
            if *compiled {
                drop(compiled);
                Stack::build(config, Clock::system(), options).await
            } else {
                let stack = Stack::build(config, Clock::system(), options).await;
                *compiled = stack.is_ok();
                stack
            }
        }
        .expect("the stack starts");
        let state = stack.core.state.clone();
        let addr = stack.public_addr;
        let core_addr = stack.core_addr;
        let admin_addr = stack.admin_addr;
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let stopped = async {
                let _ = stop.await;
            };
            if let Err(error) = stack.serve_until(stopped).await {
                eprintln!("the stack failed: {error:#}");
            }
        });
        TestStack {
            addr,
            core_addr,
            client: Client::new(addr, data_dir.join("outbox")),
            admin_addr,
            state,
            mysql_database,
            shutdown: Some(shutdown),
            _shared: setup.shared,
            _dir: dir,
        }
    }

    /// A client of this stack's core, bypassing its edge.
    pub fn core(&self) -> Client {
        Client::new(self.core_addr, self.client.outbox.clone())
    }
}

impl std::ops::Deref for TestStack {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

/// The app's requests to one address: an edge, a core, or a balancer in front of several.
#[derive(Debug, Clone)]
pub struct Client {
    pub addr: SocketAddr,
    /// Where the verification mails are delivered (the outbox folder).
    outbox: PathBuf,
}

impl Client {
    /// A client of `addr`, reading mails from `outbox`.
    pub fn new(addr: SocketAddr, outbox: PathBuf) -> Client {
        Client { addr, outbox }
    }

    /// Sends one request on a new connection and reads the whole answer. (A new connection each
    /// time: behind a balancer of connections, consecutive requests go to different replicas.)
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Answer {
        let stream = TcpStream::connect(self.addr)
            .await
            .expect("connect to the edge");
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .expect("HTTP handshake");
        tokio::spawn(connection);
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(body.into()))
            .expect("a valid request");
        let response = tokio::time::timeout(Duration::from_secs(30), sender.send_request(request))
            .await
            .unwrap_or_else(|_| panic!("{method} {path}: no answer in 30 s"))
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let (parts, body) = response.into_parts();
        Answer {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: body.collect().await.expect("answer body").to_bytes(),
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send("GET", path, &[], Bytes::new()).await
    }

    pub async fn post_json(&self, path: &str, body: Value) -> Answer {
        self.send(
            "POST",
            path,
            &[("content-type", "application/json")],
            body.to_string(),
        )
        .await
    }

    /// `method path` with `Authorization: Bearer token` and no body.
    pub async fn with_token(&self, method: &str, path: &str, token: &str) -> Answer {
        let bearer = format!("Bearer {token}");
        self.send(method, path, &[("authorization", &bearer)], Bytes::new())
            .await
    }

    pub async fn get_as(&self, member: &Member, path: &str) -> Answer {
        self.with_token("GET", path, &member.access_token).await
    }

    pub async fn delete_as(&self, member: &Member, path: &str) -> Answer {
        self.with_token("DELETE", path, &member.access_token).await
    }

    pub async fn post_json_as(&self, member: &Member, path: &str, body: Value) -> Answer {
        let bearer = format!("Bearer {}", member.access_token);
        self.send(
            "POST",
            path,
            &[
                ("content-type", "application/json"),
                ("authorization", &bearer),
            ],
            body.to_string(),
        )
        .await
    }

    pub async fn multipart_as(&self, member: &Member, path: &str, parts: &[Part]) -> Answer {
        let (content_type, body) = multipart_body(parts);
        let bearer = format!("Bearer {}", member.access_token);
        self.send(
            "POST",
            path,
            &[("content-type", &content_type), ("authorization", &bearer)],
            body,
        )
        .await
    }

    /// A post as the app sends it: `member_id`, `content` and one `files` part per image.
    pub async fn register_post(
        &self,
        member: &Member,
        content: &str,
        images: &[Vec<u8>],
    ) -> Answer {
        let mut parts = vec![
            Part::text("member_id", &member.id.to_string()),
            Part::text("content", content),
        ];
        for (i, bytes) in images.iter().enumerate() {
            parts.push(Part::file("files", &format!("IMG_{i}.png"), bytes.clone()));
        }
        self.multipart_as(member, "/post/registerPost", &parts)
            .await
    }

    /// The code in the newest verification mail to `email` (from the outbox folder).
    pub fn last_code_for(&self, email: &str) -> String {
        Mailbox::Outbox(self.outbox.clone()).last_code_for(email)
    }

    /// Every mail delivered to `email` (from the outbox folder), oldest first.
    pub fn mails_to(&self, email: &str) -> Vec<String> {
        Mailbox::Outbox(self.outbox.clone()).mails_to(email)
    }

    /// Sends a code, confirms it and joins, through the edge; returns the member id.
    pub async fn sign_up(&self, email: &str, nickname: &str) -> i64 {
        let sent = self
            .post_json("/auth/emailVerificationCode", json!({ "email": email }))
            .await;
        assert_eq!(sent.status, 202, "{}", sent.text());
        let code = self.last_code_for(email);
        let confirmed = self
            .post_json(
                "/auth/confirmVerificationCode",
                json!({ "email": email, "verification_code": code }),
            )
            .await;
        assert_eq!(confirmed.status, 200, "{}", confirmed.text());
        let joined = self
            .post_json(
                "/auth/join",
                json!({ "email": email, "name": "Test Name", "nickname": nickname, "password": PASSWORD }),
            )
            .await;
        assert_eq!(joined.status, 201, "{}", joined.text());
        joined.json()["member_id"].as_i64().expect("member_id")
    }

    pub async fn login(&self, email: &str) -> Answer {
        self.post_json(
            "/auth/login",
            json!({ "email": email, "password": PASSWORD }),
        )
        .await
    }

    /// A new session of an existing member.
    pub async fn session(&self, id: i64, email: &str) -> Member {
        let login = self.login(email).await;
        assert_eq!(login.status, 200, "{}", login.text());
        let body = login.json();
        assert_eq!(body["member_id"], id, "{body}");
        Member {
            id,
            email: email.to_owned(),
            access_token: body["access_token"].as_str().expect("access").to_owned(),
            refresh_token: body["refresh_token"].as_str().expect("refresh").to_owned(),
        }
    }

    /// A signed-up, logged-in member.
    pub async fn member(&self, tag: &str) -> Member {
        let email = unique_email(tag);
        let id = self.sign_up(&email, tag).await;
        self.session(id, &email).await
    }

    pub async fn reissue(&self, member_id: Value, refresh_token: &str) -> Answer {
        self.post_json(
            "/auth/reissueToken",
            json!({ "member_id": member_id, "refresh_token": refresh_token }),
        )
        .await
    }

    /// Sends raw bytes to the edge and reads what comes back until the connection closes (or
    /// `Content-Length` bytes of body arrived, or 10 s passed).
    pub async fn raw(&self, request: &[u8]) -> RawAnswer {
        let mut stream = TcpStream::connect(self.addr).await.expect("connect");
        // The server may answer and close before it read everything; a write error then is fine.
        let _ = stream.write_all(request).await;
        let mut received = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let read = tokio::time::timeout_at(deadline, stream.read(&mut buf)).await;
            match read {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            }
            if let Some(answer) = RawAnswer::parse(&received) {
                if answer.complete {
                    break;
                }
            }
        }
        RawAnswer::parse(&received).unwrap_or_else(|| {
            panic!(
                "no HTTP answer, got {:?}",
                String::from_utf8_lossy(&received)
            )
        })
    }
}

impl Drop for TestStack {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let Some((server, name)) = self.mysql_database.take() else {
            return;
        };
        heart_testkit::mysql::drop_database(server, name);
    }
}

/// A member with a live session.
#[derive(Debug, Clone)]
pub struct Member {
    pub id: i64,
    pub email: String,
    pub access_token: String,
    pub refresh_token: String,
}

/// An answer of the edge, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }

    /// The `x-heart-cache` header (`hit`, `miss`, `bypass`), if any.
    pub fn cache(&self) -> Option<&str> {
        self.header("x-heart-cache")
    }

    /// Asserts a contract error with `code`: its HTTP status, a JSON body whose `status` equals it,
    /// a `message`, and `Content-Type: application/json`.
    #[track_caller]
    pub fn assert_error(&self, code: &str) {
        assert_contract_error(self.status, self.header("content-type"), &self.body, code);
    }

    /// Asserts a `200` whose body is JSON; returns it.
    #[track_caller]
    pub fn ok_json(&self) -> Value {
        assert_eq!(self.status, 200, "{}", self.text());
        self.json()
    }
}

#[track_caller]
pub fn assert_contract_error(status: u16, content_type: Option<&str>, body: &[u8], code: &str) {
    let text = String::from_utf8_lossy(body);
    let expected = ErrorCode::parse(code)
        .unwrap_or_else(|| panic!("{code} is not a contract code"))
        .status();
    assert_eq!(status, expected, "HTTP status for {code}: {text}");
    assert!(
        content_type.is_some_and(|t| t.starts_with("application/json")),
        "content type {content_type:?} of {text}"
    );
    let json: Value =
        serde_json::from_slice(body).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"));
    assert_eq!(json["code"], code, "{json}");
    assert_eq!(json["status"], status, "{json}");
    assert!(
        json["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{json}"
    );
}

/// An answer read off a raw connection.
#[derive(Debug)]
pub struct RawAnswer {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    complete: bool,
}

impl RawAnswer {
    fn parse(bytes: &[u8]) -> Option<RawAnswer> {
        let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let mut body = bytes[end + 4..].to_vec();
        let chunked = headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
        let complete = if chunked {
            match dechunk(&body) {
                Some(whole) => {
                    body = whole;
                    true
                }
                None => false,
            }
        } else {
            headers
                .iter()
                .find(|(n, _)| n == "content-length")
                .and_then(|(_, v)| v.parse::<usize>().ok())
                .is_some_and(|l| body.len() >= l)
        };
        Some(RawAnswer {
            status,
            headers,
            body,
            complete,
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A whole chunked body, decoded; `None` until its last chunk arrived.
fn dechunk(mut bytes: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = bytes.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&bytes[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        bytes = &bytes[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        if bytes.len() < size + 2 {
            return None;
        }
        body.extend_from_slice(&bytes[..size]);
        bytes = &bytes[size + 2..];
    }
}

/// The image makers and multipart bodies of the shared test fixtures.
pub use heart_testkit::fixtures::{multipart_body, png, Part};

/// The ids of a feed page's posts, in order.
pub fn post_ids(page: &Value) -> Vec<i64> {
    page["posts"]
        .as_array()
        .unwrap_or_else(|| panic!("no posts in {page}"))
        .iter()
        .map(|p| p["id"].as_i64().expect("post id"))
        .collect()
}
