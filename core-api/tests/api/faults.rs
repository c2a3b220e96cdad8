//! Real faults of the backends, quick enough for CI: a TCP proxy in front of the real database or
//! Redis that the test cuts and restores, a SQLite file locked by another process, and mail pointed
//! at a closed port. No mocks: the app talks to the real servers through the proxy.
//!
//! Storage failing in the middle of a post (a real S3 server that stops) is covered in
//! `storage_faults.rs`, not repeated here.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::fixtures;
use crate::helpers::*;

/// A TCP proxy to `upstream` that can be cut (every connection dropped, new ones refused, as when
/// the server dies) and restored on the same address.
struct Proxy {
    addr: SocketAddr,
    upstream: String,
    accept: Mutex<Option<JoinHandle<()>>>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Proxy {
            addr: listener.local_addr().unwrap(),
            upstream: upstream.to_owned(),
            accept: Mutex::new(None),
            connections: Arc::default(),
        };
        proxy.listen(listener);
        proxy
    }

    fn listen(&self, listener: TcpListener) {
        let upstream = self.upstream.clone();
        let connections = self.connections.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                let upstream = upstream.clone();
                let connection = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                connections.lock().unwrap().push(connection);
            }
        });
        *self.accept.lock().unwrap() = Some(task);
    }

    /// Drops every connection and stops listening: connecting is refused.
    async fn cut(&self) {
        let accept = self.accept.lock().unwrap().take();
        if let Some(accept) = accept {
            accept.abort();
            let _ = accept.await;
        }
        let connections: Vec<_> = self.connections.lock().unwrap().drain(..).collect();
        for connection in connections {
            connection.abort();
            let _ = connection.await;
        }
    }

    /// Listens again on the same address.
    async fn restore(&self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.listen(listener);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(accept) = self.accept.lock().unwrap().take() {
            accept.abort();
        }
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }
}

/// `scheme://[user@]host:port[/rest]` → (`host:port`, the URL with `addr` instead).
fn through(url: &str, addr: SocketAddr) -> (String, String) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let (user, host_port) = authority
        .rsplit_once('@')
        .map_or(("", authority), |(u, h)| (u, h));
    let user = if user.is_empty() {
        String::new()
    } else {
        format!("{user}@")
    };
    let path = if path.is_empty() {
        String::new()
    } else {
        format!("/{path}")
    };
    (
        host_port.to_owned(),
        format!("{scheme}://{user}{addr}{path}"),
    )
}

/// Repeats `probe` until it answers `status`, for at most `within`.
async fn until_status<F, Fut>(within: Duration, status: StatusCode, mut probe: F) -> TestResponse
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = TestResponse>,
{
    let deadline = Instant::now() + within;
    loop {
        let response = probe().await;
        if response.status == status || Instant::now() > deadline {
            return response;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn feed_path(member: &TestMember) -> String {
    format!("/post/posts?member_id={}&page=0&size=10", member.id)
}

fn contents(page: &serde_json::Value) -> Vec<String> {
    page["posts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["content"].as_str().unwrap().to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The database.

/// MySQL behind a proxy that is cut: every request needing the database answers `GLOBAL_503` in
/// the contract's format (a post refused then leaves no object), `/readyz` says not ready; once
/// restored, the same app recovers by itself and the post acknowledged before the outage is there.
#[tokio::test]
async fn a_database_outage_answers_503_and_the_same_app_recovers() {
    let Ok(server) = std::env::var("HEART_TEST_DATABASE_URL") else {
        eprintln!(
            "skipped: needs HEART_TEST_DATABASE_URL (MySQL); SQLite is covered by \
             a_locked_sqlite_database_answers_503_and_recovers"
        );
        return;
    };
    let proxy = Proxy::start(&through(&server, "127.0.0.1:1".parse().unwrap()).0).await;
    let (_, via) = through(&server, proxy.addr);
    let app = TestApp::spawn_with(&[(DATABASE_VIA, via.as_str())]).await;
    let kim = app.member("kim").await;
    let acknowledged = app
        .register_post(
            &kim,
            "acknowledged before the outage",
            &[fixtures::png(3, 3)],
        )
        .await;
    assert_eq!(
        acknowledged.status,
        StatusCode::CREATED,
        "{}",
        acknowledged.text()
    );
    let objects = app.stored_objects().await;

    proxy.cut().await;
    let started = Instant::now();
    let feed = feed_path(&kim);
    let images = [fixtures::png(4, 4)];
    let (feed_answer, login, post, ready) = tokio::join!(
        app.get_as(&kim, &feed),
        app.login(&kim.email, PASSWORD),
        app.register_post(&kim, "during the outage", &images),
        app.admin_get("/readyz"),
    );
    eprintln!("outage answers took {:?}", started.elapsed());
    assert_code(&feed_answer, "GLOBAL_503");
    assert_code(&login, "GLOBAL_503");
    assert_code(&post, "GLOBAL_503");
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.json()["database"]["status"], "down");
    assert_eq!(
        app.stored_objects().await,
        objects,
        "no object of the refused post"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the answers waited for the request time limit"
    );

    proxy.restore().await;
    let feed_answer = until_status(Duration::from_secs(20), StatusCode::OK, || {
        app.get_as(&kim, &feed)
    })
    .await;
    assert_eq!(feed_answer.status, StatusCode::OK, "{}", feed_answer.text());
    assert_eq!(
        contents(&feed_answer.json()),
        ["acknowledged before the outage"]
    );
    assert_eq!(app.admin_get("/readyz").await.status, StatusCode::OK);
    assert_eq!(app.count("posts").await, 1);
    assert_eq!(
        app.register_post(&kim, "after the outage", &[])
            .await
            .status,
        StatusCode::CREATED
    );
}

/// SQLite has no server to cut; its real fault is another process holding the write lock. Writes
/// then answer `GLOBAL_503` (a busy dependency, not an internal error) after the busy timeout and
/// leave nothing behind; reads keep working (WAL); once the lock is released writes work again.
#[tokio::test]
async fn a_locked_sqlite_database_answers_503_and_recovers() {
    if Backends::requested().database != "sqlite" {
        eprintln!("skipped: SQLite only (MySQL is cut through a proxy in the test above)");
        return;
    }
    use secrecy::ExposeSecret;
    use sqlx::Connection;
    let app = TestApp::spawn().await;
    let kim = app.member("kim").await;
    app.register_post(&kim, "before the lock", &[]).await;
    let objects = app.stored_objects().await;

    let url = app.state.config.database_url.expose_secret().to_owned();
    let mut other_process = sqlx::AnyConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut other_process)
        .await
        .unwrap();

    let (images, feed) = ([fixtures::png(3, 3)], feed_path(&kim));
    let (post, feed) = tokio::join!(
        app.register_post(&kim, "while locked", &images),
        app.get_as(&kim, &feed),
    );
    assert_code(&post, "GLOBAL_503");
    assert_eq!(feed.status, StatusCode::OK, "{}", feed.text());
    assert_eq!(contents(&feed.json()), ["before the lock"]);
    assert_eq!(
        app.stored_objects().await,
        objects,
        "no object of the refused post"
    );

    sqlx::query("ROLLBACK")
        .execute(&mut other_process)
        .await
        .unwrap();
    assert_eq!(
        app.register_post(&kim, "after the lock", &[]).await.status,
        StatusCode::CREATED
    );
    assert_eq!(app.count("posts").await, 2);
}

// ---------------------------------------------------------------------------------------------
// Redis.

/// Redis behind a proxy that is cut: reads keep working (revocations are checked in the
/// database), a logout during the outage still refuses its token — during the outage and after
/// Redis is back — and rate limits fail open, then apply again once Redis is back.
#[tokio::test]
async fn a_redis_outage_keeps_reads_and_logout_working_and_rate_limits_open() {
    let Ok(redis) = std::env::var("HEART_TEST_REDIS_URL") else {
        eprintln!("skipped: needs HEART_TEST_REDIS_URL");
        return;
    };
    let proxy = Proxy::start(&through(&redis, "127.0.0.1:1".parse().unwrap()).0).await;
    let (_, via) = through(&redis, proxy.addr);
    let app = TestApp::spawn_with(&[
        ("HEART_REDIS_URL", via.as_str()),
        ("HEART_RATE_LIMIT_LOGIN_PER_EMAIL", "2/10m"),
    ])
    .await;
    let kim = app.member("kim").await; // login 1
    let second = app.login(&kim.email, PASSWORD).await; // login 2
    assert_eq!(second.status, StatusCode::OK);
    let doomed = second.json()["access_token"].as_str().unwrap().to_owned();
    assert_code(&app.login(&kim.email, PASSWORD).await, "GLOBAL_106");
    app.register_post(&kim, "readable in the outage", &[]).await;

    proxy.cut().await;
    let feed = app.get_as(&kim, &feed_path(&kim)).await;
    assert_eq!(feed.status, StatusCode::OK, "{}", feed.text());
    assert_eq!(contents(&feed.json()), ["readable in the outage"]);
    let ready = app.admin_get("/readyz").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.json()["cache"]["status"], "down");
    // Rate limits fail open: over the limit, still let in.
    for _ in 0..3 {
        assert_eq!(app.login(&kim.email, PASSWORD).await.status, StatusCode::OK);
    }
    // Logout works and its token is refused at once (the database says so).
    assert_eq!(app.logout(&doomed).await.status, StatusCode::OK);
    assert_code(&app.verify_token(&doomed).await, "GLOBAL_103");
    assert_eq!(
        app.verify_token(&kim.access_token).await.status,
        StatusCode::OK
    );

    proxy.restore().await;
    let ready = until_status(Duration::from_secs(20), StatusCode::OK, || {
        app.admin_get("/readyz")
    })
    .await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text());
    // Redis never heard of that logout: the token must stay refused all the same.
    assert_code(&app.verify_token(&doomed).await, "GLOBAL_103");
    assert_code(
        &app.with_token(axum::http::Method::GET, &feed_path(&kim), &doomed)
            .await,
        "GLOBAL_103",
    );
    assert_eq!(
        app.verify_token(&kim.access_token).await.status,
        StatusCode::OK
    );
    // And the limits count again.
    assert_code(&app.login(&kim.email, PASSWORD).await, "GLOBAL_106");
}

// ---------------------------------------------------------------------------------------------
// Mail.

/// SMTP pointed at a closed port: sending a code answers `AUTH_001` (503, contract body), and no
/// code is left that could be confirmed later: confirming answers `AUTH_002` (none sent) and
/// joining `AUTH_012` (not verified).
#[tokio::test]
async fn smtp_down_answers_auth_001_and_leaves_no_code() {
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let port = closed.to_string();
    let app = TestApp::spawn_with(&[
        ("HEART_SMTP_HOST", "127.0.0.1"),
        ("HEART_SMTP_PORT", port.as_str()),
        ("HEART_SMTP_TLS", "none"),
    ])
    .await;
    assert_eq!(app.state.mailer.backend(), "smtp");
    let email = unique_email("unlucky");
    let started = Instant::now();
    assert_code(&app.send_code(&email).await, "AUTH_001");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(app.count("email_verifications").await, 0);
    assert_code(&app.confirm(&email, "ABCDEFGH").await, "AUTH_002");
    assert_code(&app.join(&email, PASSWORD).await, "AUTH_012");
    assert_eq!(app.count("members").await, 0);
}
