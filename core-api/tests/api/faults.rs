//! Real faults of the backends, quick enough for CI: a TCP proxy (`heart_testkit::fault_proxy`) in front of
//! the real database, Redis, S3 server or SMTP server that the test cuts, slows, stalls or makes
//! lose or reset packets; a SQLite file locked by another process; mail pointed at a closed port.
//! No mocks: the app talks to the real servers through the proxy.
//!
//! What every scenario checks: requests that need the failing dependency answer their error code
//! within its documented timeout, and at once (half within a tenth of it) once the outage is
//! detected; requests that do not need it keep their latency (p99 within 2× of normal); nothing
//! acknowledged is lost, nothing is written twice; the same app recovers without a restart. The
//! longer scenarios (through the edge, under load) are in `bench/faults.sh`; `docs/faults.md`
//! has their numbers.
//!
//! Storage failing in the middle of a post (a real S3 server that stops) is covered in
//! `storage_faults.rs`, not repeated here.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use tokio::net::TcpListener;

use crate::fault_proxy::{proxy_to, through, Mode, Proxy};
use crate::fixtures;
use crate::helpers::*;

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
    app.clock.freeze(); // one rate-limit window for the whole test
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
    // Degraded, not an outage: still ready, the cache reported down.
    let ready = app.admin_get("/readyz").await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text());
    assert_eq!(ready.json()["cache"]["status"], "down");
    assert_eq!(ready.json()["database"]["status"], "up");
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
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.admin_get("/readyz").await.json()["cache"]["status"] != "up" {
        assert!(Instant::now() < deadline, "the cache never came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
    // And the limits count again: at once, unless a call stalled past the 1 s response timeout
    // on a loaded machine and tripped the breaker again (seen once in the whole suite); then the
    // limiter stays open until two probes close it, and no longer.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let login = app.login(&kim.email, PASSWORD).await;
        if login.status != StatusCode::OK {
            assert_code(&login, "GLOBAL_106");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the login limit never applied again after the outage"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
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

// ---------------------------------------------------------------------------------------------
// Slow and half-broken dependencies.

/// The 99th percentile of `samples` (the largest of fewer than 100).
fn p99(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[(samples.len() * 99).div_ceil(100) - 1]
}

/// The latencies of `n` requests made one after the other.
async fn timed<F, Fut>(n: usize, mut request: F) -> (Vec<Duration>, Vec<TestResponse>)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = TestResponse>,
{
    let (mut times, mut answers) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let started = Instant::now();
        answers.push(request().await);
        times.push(started.elapsed());
    }
    (times, answers)
}

/// Answers while a dependency is known to be down come at once: half of them within a tenth of
/// `timeout`, and even the slowest within half of it, where every one of them would wait the
/// whole `timeout` without the breaker. The median is what proves it: a scheduler hiccup of the
/// shared CI machine can delay one request by a few hundred milliseconds, not half of them. (A
/// fixed 100 ms bound on the median failed once, at 101 ms, in a coverage build with the other
/// tests of the binary hashing passwords beside it.)
/// Returns the median.
fn assert_fail_fast(samples: &mut [Duration], timeout: Duration, what: &str) -> Duration {
    samples.sort();
    let (median, slowest) = (samples[samples.len() / 2], samples[samples.len() - 1]);
    assert!(
        median < timeout / 10 && slowest < timeout / 2,
        "{what}: median {median:?}, slowest {slowest:?} (the dependency's timeout is {timeout:?})"
    );
    median
}

/// Within 2× of normal. The absolute slack keeps sub-millisecond baselines from failing on a
/// scheduler hiccup of the shared CI machine; it is far below any dependency timeout.
fn assert_within_twice(during: Duration, normal: Duration, what: &str) {
    let slack = Duration::from_millis(25);
    assert!(
        during <= normal * 2 + slack,
        "{what}: p99 {during:?} during the fault, {normal:?} normally"
    );
}

/// Waits for the breaker of `dependency` to say `up`, at most `within`; returns how long it took.
async fn until_health(
    app: &TestApp,
    up: bool,
    within: Duration,
    is_up: impl Fn(&TestApp) -> bool,
) -> Duration {
    let started = Instant::now();
    while is_up(app) != up {
        assert!(
            started.elapsed() < within,
            "the breaker did not turn {} within {within:?}",
            if up { "up" } else { "down" }
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}

/// MySQL behind a proxy turned bad by `mode` while a post is being written. Requests that need
/// the database answer `GLOBAL_503` with `Retry-After` once the outage is detected (the request in
/// flight included) and then at once (half within a tenth of the timeout); those that do not
/// (`/profile`, the keys) keep their latency; `/readyz` says not ready; once the proxy passes
/// again the first request succeeds, and every acknowledged post is there exactly once.
async fn database_fault(mode: Mode) {
    let Ok(server) = std::env::var("HEART_TEST_DATABASE_URL") else {
        eprintln!("skipped: needs HEART_TEST_DATABASE_URL (MySQL)");
        return;
    };
    let (proxy, via) = proxy_to(&server).await;
    let app = TestApp::spawn_with(&[(DATABASE_VIA, via.as_str())]).await;
    let kim = app.member("kim").await;
    let feed = feed_path(&kim);
    assert_eq!(
        app.register_post(&kim, "before", &[]).await.status,
        StatusCode::CREATED
    );
    let (mut normal, _) = timed(30, || app.get("/profile")).await;
    let normal = p99(&mut normal);

    proxy.set(mode);
    let started = Instant::now();
    let (in_flight, write) = tokio::join!(
        app.get_as(&kim, &feed),
        app.register_post(&kim, "during", &[])
    );
    let first_error = started.elapsed();
    assert_code(&in_flight, "GLOBAL_503");
    assert!(
        first_error < Duration::from_secs(5),
        "{mode:?}: the first answers took {first_error:?}"
    );
    let during_acknowledged = write.status == StatusCode::CREATED;
    if !during_acknowledged {
        assert_code(&write, "GLOBAL_503");
    }
    until_health(&app, false, Duration::from_secs(5), |a| {
        a.state.db.health.is_up()
    })
    .await;

    let (mut errors, answers) = timed(20, || app.get_as(&kim, &feed)).await;
    for answer in &answers {
        assert_code(answer, "GLOBAL_503");
        assert_eq!(answer.header("retry-after").as_deref(), Some("2"));
    }
    let error_median = assert_fail_fast(
        &mut errors,
        heart_core::db::ACQUIRE_TIMEOUT,
        &format!("{mode:?}: errors once the outage was known"),
    );
    let (mut unaffected, answers) = timed(30, || app.get("/profile")).await;
    assert!(answers.iter().all(|a| a.status == StatusCode::OK));
    assert_within_twice(p99(&mut unaffected), normal, "/profile");
    let ready = app.admin_get("/readyz").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.json()["database"]["status"], "down");

    proxy.restore().await;
    let recovered = until_health(&app, true, Duration::from_secs(5), |a| {
        a.state.db.health.is_up()
    })
    .await;
    let first = app.get_as(&kim, &feed).await;
    assert_eq!(first.status, StatusCode::OK, "{mode:?}: {}", first.text());
    eprintln!(
        "{mode:?}: first error after {first_error:?}, errors median {error_median:?}, \
         recovered {recovered:?} after the fault ended"
    );
    assert_eq!(
        app.register_post(&kim, "after", &[]).await.status,
        StatusCode::CREATED
    );
    let count = |content: &'static str| {
        let app = &app;
        async move {
            let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM posts WHERE content = ?")
                .bind(content)
                .fetch_one(&app.state.db.pool)
                .await
                .unwrap();
            n
        }
    };
    assert_eq!(count("before").await, 1);
    assert_eq!(count("after").await, 1);
    let during = count("during").await;
    assert!(during <= 1, "written twice");
    if during_acknowledged {
        assert_eq!(during, 1, "an acknowledged post was lost");
    }
}

#[tokio::test]
async fn a_stalled_database_fails_fast_once_detected_and_recovers() {
    database_fault(Mode::Stall).await;
}

#[tokio::test]
async fn a_database_losing_packets_fails_fast_once_detected_and_recovers() {
    database_fault(Mode::Drop(0.5)).await;
}

#[tokio::test]
async fn a_database_resetting_connections_fails_fast_and_recovers() {
    database_fault(Mode::Reset(1.0)).await;
}

/// A slow database (every chunk +150 ms) is slow, not down: requests still succeed, the
/// breaker stays closed, a post is written once.
#[tokio::test]
async fn a_slow_database_is_slow_not_down() {
    let Ok(server) = std::env::var("HEART_TEST_DATABASE_URL") else {
        eprintln!("skipped: needs HEART_TEST_DATABASE_URL (MySQL)");
        return;
    };
    let (proxy, via) = proxy_to(&server).await;
    let app = TestApp::spawn_with(&[(DATABASE_VIA, via.as_str())]).await;
    let kim = app.member("kim").await;
    // The probe keeps one connection open; opened here, before the database turns slow (a new
    // MySQL connection is several round trips, and a probe has 500 ms).
    assert_eq!(app.admin_get("/readyz").await.status, StatusCode::OK);
    proxy.set(Mode::Latency(Duration::from_millis(150)));
    let started = Instant::now();
    let post = app.register_post(&kim, "slowly", &[]).await;
    assert_eq!(post.status, StatusCode::CREATED, "{}", post.text());
    let feed = app.get_as(&kim, &feed_path(&kim)).await;
    assert_eq!(feed.status, StatusCode::OK, "{}", feed.text());
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "the latency applied"
    );
    assert_eq!(app.admin_get("/readyz").await.status, StatusCode::OK);
    assert!(app.state.db.health.is_up());
    proxy.set(Mode::Pass);
    assert_eq!(
        contents(&app.get_as(&kim, &feed_path(&kim)).await.json()),
        ["slowly"]
    );
}

/// Redis that accepts connections and answers nothing (or loses packets): after one request
/// waits for the response timeout, the cache is bypassed — feed reads keep their latency, rate
/// limits are open, `/readyz` stays ready with the cache down — and once Redis answers again
/// the limits apply again without a restart.
async fn redis_fault(mode: Mode) {
    let Ok(redis) = std::env::var("HEART_TEST_REDIS_URL") else {
        eprintln!("skipped: needs HEART_TEST_REDIS_URL");
        return;
    };
    let (proxy, via) = proxy_to(&redis).await;
    let app = TestApp::spawn_with(&[
        ("HEART_REDIS_URL", via.as_str()),
        ("HEART_RATE_LIMIT_LOGIN_PER_EMAIL", "2/10m"),
    ])
    .await;
    app.clock.freeze(); // one rate-limit window for the whole test
    let kim = app.member("kim").await; // login 1
    app.register_post(&kim, "cached or not", &[]).await;
    let feed = feed_path(&kim);
    let (mut normal, _) = timed(30, || app.get_as(&kim, &feed)).await;
    let normal = p99(&mut normal);

    proxy.set(mode);
    let started = Instant::now();
    let first = app.get_as(&kim, &feed).await;
    let first_took = started.elapsed();
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    assert!(
        first_took < Duration::from_millis(2500),
        "{mode:?}: the first read took {first_took:?} (response timeout 1 s)"
    );
    let (mut during, answers) = timed(30, || app.get_as(&kim, &feed)).await;
    assert!(answers.iter().all(|a| a.status == StatusCode::OK));
    let during = p99(&mut during);
    assert_within_twice(during, normal, "feed reads with Redis bypassed");
    for _ in 0..3 {
        assert_eq!(app.login(&kim.email, PASSWORD).await.status, StatusCode::OK);
    }
    let ready = app.admin_get("/readyz").await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.json()["cache"]["status"], "down");

    proxy.restore().await;
    let restored = Instant::now();
    while app.admin_get("/readyz").await.json()["cache"]["status"] != "up" {
        assert!(
            restored.elapsed() < Duration::from_secs(10),
            "{mode:?}: Redis never came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "{mode:?}: first read {first_took:?}, reads p99 {during:?} bypassed vs {normal:?}, \
         back after {:?}",
        restored.elapsed()
    );
    let _ = app.login(&kim.email, PASSWORD).await;
    let _ = app.login(&kim.email, PASSWORD).await;
    assert_code(&app.login(&kim.email, PASSWORD).await, "GLOBAL_106");
}

#[tokio::test]
async fn a_stalled_redis_is_bypassed_within_milliseconds() {
    redis_fault(Mode::Stall).await;
}

#[tokio::test]
async fn a_redis_losing_packets_is_bypassed_within_milliseconds() {
    redis_fault(Mode::Drop(0.5)).await;
}

/// The S3 server behind a proxy that resets every connection: the first upload answers
/// `POST_002` after the SDK's retry, later ones at once without trying; feed reads keep
/// their latency; nothing of a refused post is left; once S3 answers again uploads work.
#[tokio::test]
async fn unreachable_s3_answers_post_002_at_once_and_recovers() {
    let s3 = heart_testkit::s3::TestS3::start().await;
    let (proxy, via) = proxy_to(&s3.endpoint).await;
    let mut vars = s3.env();
    for (k, v) in &mut vars {
        if k == "HEART_S3_ENDPOINT" {
            *v = via.clone();
        }
    }
    let overrides: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let app = TestApp::spawn_on_env(&overrides).await;
    let kim = app.member("kim").await;
    let images = [fixtures::png(3, 3)];
    let ok = app.register_post(&kim, "before", &images).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.text());
    let feed = feed_path(&kim);
    let (mut normal, _) = timed(20, || app.get_as(&kim, &feed)).await;
    let normal = p99(&mut normal);

    proxy.set(Mode::Reset(1.0));
    let started = Instant::now();
    assert_code(
        &app.register_post(&kim, "refused", &images).await,
        "POST_002",
    );
    let first_error = started.elapsed();
    let (mut errors, answers) = timed(10, || app.register_post(&kim, "refused", &images)).await;
    for answer in &answers {
        assert_code(answer, "POST_002");
    }
    // 8 s: one S3 attempt's timeout (`S3_ATTEMPT_TIMEOUT`).
    let error_median = assert_fail_fast(&mut errors, Duration::from_secs(8), "POST_002");
    let (mut during, _) = timed(20, || app.get_as(&kim, &feed)).await;
    assert_within_twice(p99(&mut during), normal, "feed reads with S3 down");
    assert_eq!(app.count("posts").await, 1);
    assert_eq!(s3.keys().len(), 1);

    proxy.restore().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let answer = app.register_post(&kim, "after", &images).await;
        if answer.status == StatusCode::CREATED || Instant::now() > deadline {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(after.status, StatusCode::CREATED, "{}", after.text());
    eprintln!("S3 reset: first error {first_error:?}, errors median {error_median:?}");
    assert_eq!(app.count("posts").await, 2);
    assert_eq!(s3.keys().len(), 2);
}

/// An SMTP server that accepts and never answers: the first code waits for the SMTP timeout
/// (5 s) and answers `AUTH_001`; the next answer at once; no code is left; with a real SMTP
/// server behind the proxy, sending works again once it answers.
#[tokio::test]
async fn a_stalled_smtp_server_answers_auth_001_at_once_after_the_first_timeout() {
    let upstream = std::env::var("HEART_TEST_SMTP_ADDR").ok();
    let proxy = Proxy::start(upstream.as_deref().unwrap_or("127.0.0.1:1")).await;
    proxy.set(Mode::Stall);
    let port = proxy.addr.port().to_string();
    let app = TestApp::spawn_with(&[
        ("HEART_SMTP_HOST", "127.0.0.1"),
        ("HEART_SMTP_PORT", port.as_str()),
        ("HEART_SMTP_TLS", "none"),
        // The retries below would otherwise meet the per-IP limit on codes sent.
        ("HEART_RATE_LIMITS_ENABLED", "false"),
    ])
    .await;
    let started = Instant::now();
    assert_code(&app.send_code(&unique_email("first")).await, "AUTH_001");
    let first = started.elapsed();
    assert!(
        first < heart_core::mail::SMTP_TIMEOUT * 2,
        "the first code took {first:?}"
    );
    let emails: Vec<String> = (0..5).map(|_| unique_email("next")).collect();
    let mut next = emails.iter();
    let (mut errors, answers) = timed(5, || app.send_code(next.next().unwrap())).await;
    for answer in &answers {
        assert_code(answer, "AUTH_001");
    }
    assert_fail_fast(&mut errors, heart_core::mail::SMTP_TIMEOUT, "AUTH_001");
    assert_eq!(app.count("email_verifications").await, 0);
    if upstream.is_some() {
        proxy.restore().await;
        let email = unique_email("back");
        let answer = until_status(Duration::from_secs(10), StatusCode::ACCEPTED, || {
            app.send_code(&email)
        })
        .await;
        assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text());
    }
}
