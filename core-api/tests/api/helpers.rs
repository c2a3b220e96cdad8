//! The test harness: a whole app per test, driven in-process through its router.
//!
//! By default every test gets embedded backends in a temporary folder (SQLite, in-process cache,
//! outbox mail). With these variables set, the same tests run against real servers:
//! - `HEART_TEST_DATABASE_URL=mysql://root@127.0.0.1:3306`: a fresh database per test, dropped after;
//! - `HEART_TEST_REDIS_URL=redis://127.0.0.1:6379`: a key prefix per test;
//! - `HEART_TEST_SMTP_ADDR=127.0.0.1:2525` with `HEART_TEST_SMTP_MAILDIR=<dir>`: mail goes over SMTP
//!   to a sink that stores it in a Maildir, and tests read it from there;
//! - `HEART_TEST_S3=1`: images go to a real S3-compatible server (s3s-fs, started per test on a
//!   random port, checking signatures) instead of a local folder.
//!
//! `HEART_TEST_LOG=1` prints the apps' logs (filtered by `RUST_LOG`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use heart_core::clock::Clock;
use heart_core::{App, AppState, Config};
use heart_testkit::mail::Mailbox;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

/// An override naming the MySQL server URL (without database) the app connects through, e.g. a
/// test's TCP proxy in front of `HEART_TEST_DATABASE_URL`; the harness still creates and drops
/// the test database directly.
pub const DATABASE_VIA: &str = "HEART_TEST_DATABASE_VIA";

/// The password every test member gets unless a test says otherwise.
pub const PASSWORD: &str = "correct-horse-7";

/// An answer, read whole.
#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl TestResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The contract `code` of an error answer, after checking the error body's shape.
    pub fn code(&self) -> String {
        assert_error_shape(self);
        self.json()["code"].as_str().unwrap_or_default().to_owned()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

/// Every error answers `{"status", "code", "message"}` as JSON, with `status` equal to the HTTP status.
pub fn assert_error_shape(response: &TestResponse) {
    assert!(
        !response.status.is_success(),
        "expected an error, got {} {}",
        response.status,
        response.text()
    );
    let content_type = response.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "error content type {content_type:?}"
    );
    let body = response.json();
    assert_eq!(
        body["status"].as_u64(),
        Some(u64::from(response.status.as_u16())),
        "status field: {body}"
    );
    assert!(body["code"].is_string(), "code: {body}");
    assert!(body["message"].is_string(), "message: {body}");
}

/// Asserts an error answer with `code` (and that code's HTTP status).
#[track_caller]
pub fn assert_code(response: &TestResponse, code: &str) {
    let got = response.code();
    assert_eq!(got, code, "body: {}", response.text());
    let expected = heart_shared::ErrorCode::parse(code).map(|c| c.status());
    assert_eq!(
        Some(response.status.as_u16()),
        expected,
        "HTTP status for {code}"
    );
}

/// Which backends a test app runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backends {
    pub database: &'static str,
    pub cache: &'static str,
    pub mail: &'static str,
    pub storage: &'static str,
}

impl Backends {
    /// What the `HEART_TEST_*` environment asks for.
    pub fn requested() -> Backends {
        let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.is_empty());
        Backends {
            database: if set("HEART_TEST_DATABASE_URL") {
                "mysql"
            } else {
                "sqlite"
            },
            cache: if set("HEART_TEST_REDIS_URL") {
                "redis"
            } else {
                "in-process"
            },
            mail: if set("HEART_TEST_SMTP_ADDR") {
                "smtp"
            } else {
                "outbox"
            },
            storage: if set("HEART_TEST_S3") { "s3" } else { "local" },
        }
    }
}

pub struct TestApp {
    pub router: Router,
    pub admin_router: Router,
    pub state: AppState,
    pub clock: Clock,
    mail: Mailbox,
    /// The S3 server behind the app, when it stores images in S3.
    pub s3: Option<heart_testkit::s3::TestS3>,
    mysql_database: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

fn random_suffix() -> String {
    heart_core::auth::tokens::random_hex_id()[..12].to_owned()
}

/// A unique email for one test.
pub fn unique_email(tag: &str) -> String {
    format!("{tag}-{}@example.com", random_suffix())
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(&[]).await
    }

    /// An app with `overrides` on top of the test defaults.
    pub async fn spawn_with(overrides: &[(&str, &str)]) -> TestApp {
        let s3 = if Backends::requested().storage == "s3" {
            Some(heart_testkit::s3::TestS3::start().await)
        } else {
            None
        };
        TestApp::spawn_on(overrides, s3).await
    }

    /// An app storing images in `s3` (which tests may make fail).
    pub async fn spawn_with_s3(overrides: &[(&str, &str)]) -> TestApp {
        TestApp::spawn_on(overrides, Some(heart_testkit::s3::TestS3::start().await)).await
    }

    /// An app configured only by `overrides` (no S3 server of its own, even in an S3 run).
    pub async fn spawn_on_env(overrides: &[(&str, &str)]) -> TestApp {
        TestApp::spawn_on(overrides, None).await
    }

    async fn spawn_on(
        overrides: &[(&str, &str)],
        s3: Option<heart_testkit::s3::TestS3>,
    ) -> TestApp {
        if std::env::var_os("HEART_TEST_LOG").is_some() {
            heart_core::telemetry::init_logging(heart_core::config::LogFormat::Pretty);
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let mut vars: HashMap<String, String> = HashMap::new();
        let mut set = |k: &str, v: &str| {
            vars.insert(k.to_owned(), v.to_owned());
        };
        set("HEART_DATA_DIR", &dir.path().display().to_string());
        // Cheap hashing keeps the suite fast; production cost is enforced outside profile local.
        set("HEART_ARGON2_MEMORY_KIB", "1024");
        set("HEART_ARGON2_ITERATIONS", "1");

        let mut mysql_database = None;
        if let Ok(server) = std::env::var("HEART_TEST_DATABASE_URL") {
            let server = server.trim_end_matches('/').to_owned();
            let name = format!("heart_test_{}", random_suffix());
            heart_testkit::mysql::create_database(&server, &name).await;
            // The app may reach the server another way (through a test's proxy) than the harness.
            let via = overrides
                .iter()
                .find(|(k, _)| *k == DATABASE_VIA)
                .map_or(server.clone(), |(_, v)| v.trim_end_matches('/').to_owned());
            set("HEART_DATABASE_URL", &format!("{via}/{name}"));
            mysql_database = Some((server, name));
        }
        if let Ok(redis) = std::env::var("HEART_TEST_REDIS_URL") {
            set("HEART_REDIS_URL", &redis);
            set("HEART_CACHE_PREFIX", &format!("test-{}", random_suffix()));
        }
        let mail = match (
            std::env::var("HEART_TEST_SMTP_ADDR"),
            std::env::var("HEART_TEST_SMTP_MAILDIR"),
        ) {
            (Ok(addr), Ok(maildir)) => {
                let (host, port) = addr
                    .rsplit_once(':')
                    .expect("HEART_TEST_SMTP_ADDR is host:port");
                set("HEART_SMTP_HOST", host);
                set("HEART_SMTP_PORT", port);
                set("HEART_SMTP_TLS", "none");
                Mailbox::Maildir(PathBuf::from(maildir))
            }
            (Ok(_), Err(_)) => panic!("HEART_TEST_SMTP_ADDR needs HEART_TEST_SMTP_MAILDIR"),
            _ => Mailbox::Outbox(dir.path().join("outbox")),
        };
        if let Some(s3) = &s3 {
            for (k, v) in s3.env() {
                set(&k, &v);
            }
        }
        for (k, v) in overrides {
            set(k, v);
        }
        let config = Config::from_vars(&vars).expect("test configuration");
        let clock = Clock::system();
        let app = App::build(config, clock.clone()).await.expect("app starts");
        TestApp {
            router: app.router,
            admin_router: app.admin_router,
            state: app.state,
            clock,
            mail,
            s3,
            mysql_database,
            _dir: dir,
        }
    }

    /// The answer to `request` as if from `ip`, its body not read yet (to read part of it).
    pub async fn answer_from(
        &self,
        ip: [u8; 4],
        mut request: Request<Body>,
    ) -> axum::response::Response {
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from((ip, 40_000))));
        self.router
            .clone()
            .oneshot(request)
            .await
            .expect("router is infallible")
    }

    /// Sends `request` as if from `ip`.
    pub async fn send_from(&self, ip: [u8; 4], request: Request<Body>) -> TestResponse {
        let response = self.answer_from(ip, request).await;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("body").to_bytes().to_vec();
        TestResponse {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    pub async fn send(&self, request: Request<Body>) -> TestResponse {
        self.send_from([127, 0, 0, 1], request).await
    }

    pub async fn post_json(&self, path: &str, body: Value) -> TestResponse {
        self.post_json_from([127, 0, 0, 1], path, body).await
    }

    pub async fn post_json_from(&self, ip: [u8; 4], path: &str, body: Value) -> TestResponse {
        let request = Request::post(path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .expect("request");
        self.send_from(ip, request).await
    }

    pub async fn with_token(&self, method: Method, path: &str, token: &str) -> TestResponse {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .expect("request");
        self.send(request).await
    }

    pub async fn get_as(&self, member: &TestMember, path: &str) -> TestResponse {
        self.with_token(Method::GET, path, &member.access_token)
            .await
    }

    pub async fn delete_as(&self, member: &TestMember, path: &str) -> TestResponse {
        self.with_token(Method::DELETE, path, &member.access_token)
            .await
    }

    pub async fn post_json_as(&self, member: &TestMember, path: &str, body: Value) -> TestResponse {
        let request = Request::post(path)
            .header(header::CONTENT_TYPE, "application/json")
            .header(
                header::AUTHORIZATION,
                format!("Bearer {}", member.access_token),
            )
            .body(Body::from(body.to_string()))
            .expect("request");
        self.send(request).await
    }

    pub async fn multipart_as(
        &self,
        member: &TestMember,
        path: &str,
        parts: &[Part],
    ) -> TestResponse {
        let (content_type, body) = multipart_body(parts);
        let request = Request::post(path)
            .header(header::CONTENT_TYPE, content_type)
            .header(
                header::AUTHORIZATION,
                format!("Bearer {}", member.access_token),
            )
            .body(Body::from(body))
            .expect("request");
        self.send(request).await
    }

    /// Creates a post as the app does; returns the answer.
    pub async fn register_post(
        &self,
        member: &TestMember,
        content: &str,
        images: &[Vec<u8>],
    ) -> TestResponse {
        let mut parts = vec![
            Part::text("member_id", &member.id.to_string()),
            Part::text("content", content),
        ];
        for (i, bytes) in images.iter().enumerate() {
            parts.push(Part::file("files", &format!("IMG_{i}.jpg"), bytes.clone()));
        }
        self.multipart_as(member, "/post/registerPost", &parts)
            .await
    }

    /// Every stored object key (local folder or S3 bucket).
    pub async fn stored_objects(&self) -> Vec<String> {
        let mut keys = self.state.storage.list("").await.expect("list objects");
        keys.sort();
        keys
    }

    /// Downloads an image by the absolute URL the API gave.
    pub async fn fetch_media(&self, url: &str) -> Vec<u8> {
        let key = url
            .strip_prefix(&format!("{}/", self.state.config.storage.public_base_url))
            .expect("our media URL");
        match &self.s3 {
            Some(s3) => s3.object(key).expect("object in the bucket"),
            None => {
                let response = self.get(&format!("/media/{key}")).await;
                assert_eq!(response.status, StatusCode::OK, "{url}");
                response.body
            }
        }
    }

    /// Counts rows of `table` (for "nothing half-written" checks).
    pub async fn count(&self, table: &str) -> i64 {
        let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&self.state.db.pool)
            .await
            .expect("count");
        n
    }

    pub async fn get(&self, path: &str) -> TestResponse {
        self.send(Request::get(path).body(Body::empty()).expect("request"))
            .await
    }

    pub async fn admin_get(&self, path: &str) -> TestResponse {
        let response = self
            .admin_router
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).expect("request"))
            .await
            .expect("admin");
        let (parts, body) = response.into_parts();
        TestResponse {
            status: parts.status,
            headers: parts.headers,
            body: body.collect().await.expect("body").to_bytes().to_vec(),
        }
    }

    /// Every mail delivered to `email`, raw, oldest first.
    pub fn mails_to(&self, email: &str) -> Vec<String> {
        self.mail.mails_to(email)
    }

    /// The code in the newest verification mail to `email`.
    pub fn last_code_for(&self, email: &str) -> String {
        self.mail.last_code_for(email)
    }

    pub async fn send_code(&self, email: &str) -> TestResponse {
        self.post_json("/auth/emailVerificationCode", json!({ "email": email }))
            .await
    }

    pub async fn confirm(&self, email: &str, code: &str) -> TestResponse {
        self.post_json(
            "/auth/confirmVerificationCode",
            json!({ "email": email, "verification_code": code }),
        )
        .await
    }

    pub async fn join(&self, email: &str, password: &str) -> TestResponse {
        self.post_json("/auth/join", json!({ "email": email, "name": "Test Name", "nickname": "tester", "password": password })).await
    }

    /// Sends a code, confirms it and joins; returns the member id.
    pub async fn sign_up(&self, email: &str, password: &str) -> i64 {
        assert_eq!(self.send_code(email).await.status, StatusCode::ACCEPTED);
        let code = self.last_code_for(email);
        assert_eq!(self.confirm(email, &code).await.status, StatusCode::OK);
        let joined = self.join(email, password).await;
        assert_eq!(joined.status, StatusCode::CREATED, "{}", joined.text());
        joined.json()["member_id"].as_i64().expect("member_id")
    }

    pub async fn login(&self, email: &str, password: &str) -> TestResponse {
        self.post_json(
            "/auth/login",
            json!({ "email": email, "password": password }),
        )
        .await
    }

    /// A signed-up, logged-in member.
    pub async fn member(&self, tag: &str) -> TestMember {
        let email = unique_email(tag);
        let id = self.sign_up(&email, PASSWORD).await;
        let login = self.login(&email, PASSWORD).await;
        assert_eq!(login.status, StatusCode::OK, "{}", login.text());
        let body = login.json();
        TestMember {
            id,
            email,
            access_token: body["access_token"].as_str().expect("access").to_owned(),
            refresh_token: body["refresh_token"].as_str().expect("refresh").to_owned(),
        }
    }

    pub async fn reissue(&self, member_id: Value, refresh_token: &str) -> TestResponse {
        self.post_json(
            "/auth/reissueToken",
            json!({ "member_id": member_id, "refresh_token": refresh_token }),
        )
        .await
    }

    pub async fn verify_token(&self, token: &str) -> TestResponse {
        self.with_token(Method::GET, "/auth/verifyAccessToken", token)
            .await
    }

    pub async fn logout(&self, token: &str) -> TestResponse {
        self.with_token(Method::POST, "/auth/logout", token).await
    }
}

/// A member with a live session.
#[derive(Debug, Clone)]
pub struct TestMember {
    pub id: i64,
    pub email: String,
    pub access_token: String,
    pub refresh_token: String,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let Some((server, name)) = self.mysql_database.take() else {
            return;
        };
        heart_testkit::mysql::drop_database(server, name);
    }
}

/// A path under the app's data folder.
pub fn data_path(app: &TestApp, rel: &str) -> PathBuf {
    app.state.config.data_dir.join(Path::new(rel))
}

pub use heart_testkit::fixtures::{multipart_body, Part};
