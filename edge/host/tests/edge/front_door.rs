//! The edge as a front door (issue 10): hostile clients bounded (slow heads and bodies, permit
//! waits), per-route body limits while streaming, pooled connections to the core, one store
//! round trip per request, normalised cache keys, ETag/304 and gzip, request ids, access records,
//! and unrouted methods.

use std::io::Read as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use heart_edge_host::store::{EdgeStore, InProcessStore, StoreArg, StoreError, StoreValue};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::helpers::{Backend, Options, TestEdge};

const PAGE: &str =
    r#"{"size":1,"posts":[{"id":1,"content":"hello hello hello hello"}],"next_cursor":null}"#;

fn quick_limits(config: &mut heart_edge_host::HostConfig) {
    config.header_read_timeout = Duration::from_secs(1);
    config.body_timeout = Duration::from_secs(1);
    config.permit_wait = Duration::from_millis(300);
}

/// Opens a connection and sends `bytes`: a whole request, or the start of one never finished.
async fn start_slow(edge: &TestEdge, bytes: &str) -> TcpStream {
    let mut stream = TcpStream::connect(edge.addr).await.unwrap();
    stream.write_all(bytes.as_bytes()).await.unwrap();
    stream
}

/// A login whose JSON body promises 1000 bytes and sends one.
const SLOW_LOGIN: &str = "POST /auth/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{";

/// Waits for the edge to cut a slow body: `400 GLOBAL_004`, then the connection closed. Answers
/// what it sent.
async fn assert_cut_with_global_004(slow: &mut TcpStream) -> String {
    let (closed, answer) = read_until_closed(slow, Duration::from_secs(5)).await;
    assert!(closed);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("GLOBAL_004"), "{answer}");
    answer
}

/// No slow login reached the core.
fn assert_no_login_reached_the_core(edge: &TestEdge) {
    assert!(edge
        .core
        .received()
        .iter()
        .all(|r| r.path_and_query != "/auth/login"));
}

/// Reads what the edge sends until it closes (or `limit` passes): (closed, bytes).
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (bool, String) {
    let mut out = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (true, String::from_utf8_lossy(&out).into_owned()),
            Ok(Ok(n)) => out.extend_from_slice(&buffer[..n]),
            Err(_) => return (false, String::from_utf8_lossy(&out).into_owned()),
        }
    }
}

#[tokio::test]
async fn slow_heads_are_closed_and_do_not_block_others() {
    let edge = TestEdge::start_with(Options::on(Backend::InProcess).host(quick_limits)).await;
    let mut slow = Vec::new();
    for _ in 0..20 {
        slow.push(start_slow(&edge, "GET /healthz HTTP/1.1\r\nhost: x\r\n").await);
    }
    let started = Instant::now();
    assert_eq!(edge.send("GET", "/healthz", &[], "").await.status, 200);
    assert!(started.elapsed() < Duration::from_millis(500));
    let (closed, _) = read_until_closed(&mut slow[0], Duration::from_secs(5)).await;
    assert!(
        closed,
        "a head not finished within the limit closes the connection"
    );
}

/// The same hostile clients against `heart-edge-host`'s way of serving, two threads of their own:
/// slow heads and slow JSON bodies, spread over both threads, hold no instance and starve
/// neither thread.
#[tokio::test]
async fn slow_clients_starve_no_serving_thread() {
    let edge = TestEdge::start_with(Options::on(Backend::InProcess).threads(2).host(|config| {
        quick_limits(config);
        config.max_concurrent_requests = 2;
    }))
    .await;
    let mut slow_heads = Vec::new();
    let mut slow_bodies = Vec::new();
    for _ in 0..20 {
        slow_heads.push(start_slow(&edge, "GET /healthz HTTP/1.1\r\nhost: x\r\n").await);
        slow_bodies.push(start_slow(&edge, SLOW_LOGIN).await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let token = edge.signer.token(1, "s1");
    edge.core.answer_with(200, PAGE);
    // New connections land on either thread; each is answered at once.
    for _ in 0..8 {
        let started = Instant::now();
        assert_eq!(edge.send("GET", "/healthz", &[], "").await.status, 200);
        let page = edge.get_as(&token, "/post/posts/1?page=0&size=10").await;
        assert_eq!(page.status, 200);
        assert!(started.elapsed() < Duration::from_millis(500));
    }
    let (closed, _) = read_until_closed(&mut slow_heads[0], Duration::from_secs(5)).await;
    assert!(
        closed,
        "a head not finished within the limit closes the connection"
    );
    for slow in &mut slow_bodies {
        assert_cut_with_global_004(slow).await;
    }
    assert_no_login_reached_the_core(&edge);
}

#[tokio::test]
async fn slow_json_bodies_hold_no_instance_and_are_cut_with_global_004() {
    let edge = TestEdge::start_with(Options::on(Backend::InProcess).host(|config| {
        quick_limits(config);
        config.max_concurrent_requests = 2;
    }))
    .await;
    let mut slow = Vec::new();
    for _ in 0..10 {
        slow.push(start_slow(&edge, SLOW_LOGIN).await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Ten slow bodies, two instances: other requests still get one at once.
    let token = edge.signer.token(1, "s1");
    edge.core.answer_with(200, PAGE);
    let started = Instant::now();
    assert_eq!(
        edge.get_as(&token, "/post/posts/1?page=0&size=10")
            .await
            .status,
        200
    );
    assert!(started.elapsed() < Duration::from_millis(500));
    let answer = assert_cut_with_global_004(&mut slow[0]).await;
    assert!(answer.contains("x-request-id"), "{answer}");
    assert_no_login_reached_the_core(&edge);
}

#[tokio::test]
async fn waiting_for_an_instance_is_bounded_with_global_503_and_retry_after() {
    let edge = TestEdge::start_with(Options::on(Backend::InProcess).host(|config| {
        quick_limits(config);
        config.max_concurrent_requests = 1;
    }))
    .await;
    edge.core.answer_after(Duration::from_secs(2));
    let addr = edge.addr;
    let holder = tokio::spawn(async move {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(connection);
        let request = hyper::Request::post("/auth/login")
            .header("host", "x")
            .body(http_body_util::Full::new(bytes::Bytes::from_static(b"{}")))
            .unwrap();
        sender.send_request(request).await.unwrap().status()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let busy = edge.send("POST", "/auth/login", &[], "{}").await;
    busy.assert_error(503, "GLOBAL_503");
    assert_eq!(busy.header("retry-after"), Some("1"));
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(holder.await.unwrap(), 200);
    let records = edge.records.lock().unwrap().clone();
    assert!(records
        .iter()
        .any(|r| r.outcome == "busy" && r.status == 503));
}

#[tokio::test]
async fn bodies_over_the_routes_limit_are_refused_at_the_edge() {
    let edge = TestEdge::start_with(
        Options::on(Backend::InProcess).var("max_upload_request_bytes", "100000"),
    )
    .await;
    // Declared: refused before the body is read.
    let big_json = "x".repeat(64 * 1024 + 1);
    edge.send(
        "POST",
        "/auth/login",
        &[("content-type", "application/json")],
        &big_json,
    )
    .await
    .assert_error(413, "GLOBAL_008");
    // An upload route takes more than a JSON route, up to its own limit.
    let token = edge.signer.token(3, "s3");
    let bearer = format!("Bearer {token}");
    let upload = "y".repeat(90_000);
    let ok = edge
        .send(
            "POST",
            "/post/registerPost",
            &[
                ("authorization", &bearer),
                ("content-type", "multipart/form-data; boundary=b"),
            ],
            &upload,
        )
        .await;
    assert_eq!(ok.status, 200);
    let received = edge.core.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].body.len(), 90_000, "streamed whole to the core");
    edge.send(
        "POST",
        "/post/registerPost",
        &[("authorization", &bearer)],
        &"y".repeat(100_001),
    )
    .await
    .assert_error(413, "GLOBAL_008");
    assert_eq!(edge.core.received().len(), 1);
}

/// Sends a chunked body of `chunks` chunks of `size` bytes.
async fn send_chunked(
    edge: &TestEdge,
    path: &str,
    token: Option<&str>,
    chunks: usize,
    size: usize,
) -> String {
    let mut stream = TcpStream::connect(edge.addr).await.unwrap();
    let auth = token.map_or(String::new(), |t| format!("authorization: Bearer {t}\r\n"));
    let head = format!("POST {path} HTTP/1.1\r\nhost: x\r\n{auth}transfer-encoding: chunked\r\nconnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = format!("{size:x}\r\n{}\r\n", "z".repeat(size));
    for _ in 0..chunks {
        if stream.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    read_until_closed(&mut stream, Duration::from_secs(10))
        .await
        .1
}

#[tokio::test]
async fn chunked_bodies_are_counted_while_streaming() {
    let edge = TestEdge::start_with(
        Options::on(Backend::InProcess).var("max_upload_request_bytes", "50000"),
    )
    .await;
    let answer = send_chunked(&edge, "/auth/login", None, 20, 4096).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("GLOBAL_008"));
    let token = edge.signer.token(3, "s3");
    let answer = send_chunked(&edge, "/post/registerPost", Some(&token), 20, 4096).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // The core never saw a cut body as a whole request.
    assert!(
        edge.core.received().is_empty(),
        "{:?}",
        edge.core.received().len()
    );
    let answer = send_chunked(&edge, "/post/registerPost", Some(&token), 10, 4096).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(edge.core.received()[0].body.len(), 40960);
}

#[tokio::test]
async fn connections_to_the_core_are_pooled() {
    let edge = TestEdge::start(Backend::InProcess).await;
    for _ in 0..10 {
        assert_eq!(
            edge.send("POST", "/auth/login", &[], "{}").await.status,
            200
        );
    }
    assert_eq!(edge.core.received().len(), 10);
    assert_eq!(edge.core.connections.load(Ordering::SeqCst), 1);
}

/// The component's store round trips (`execute` calls) seen by [`CountingGlobal`].
static ROUND_TRIPS: AtomicUsize = AtomicUsize::new(0);

#[tokio::test]
async fn one_round_trip_per_request_and_bad_tokens_count_per_address() {
    let mut options = Options::on(Backend::InProcess)
        .frozen_clock()
        .var("rate_limit_edge_requests_per_ip", "12/60s");
    options.wrap_store = Some(|store| Arc::new(CountingGlobal(store)) as Arc<dyn EdgeStore>);
    let edge = TestEdge::start_with(options).await;
    let token = edge.signer.token(8, "s8");
    edge.core.answer_with(200, PAGE);
    let trips = || ROUND_TRIPS.load(Ordering::SeqCst);
    let path = "/post/posts/8?page=0&size=10";
    let before = trips();
    // A new token on a miss: the gate, the token's verified mark, the page's store.
    edge.get_as(&token, path).await;
    assert_eq!(trips() - before, 3);
    for (what, request) in [("hit", path), ("forward", "/member/profile?member_id=8")] {
        let before = trips();
        assert_eq!(edge.get_as(&token, request).await.status, 200, "{what}");
        assert_eq!(trips() - before, 1, "{what}");
    }
    let before = trips();
    edge.send("POST", "/auth/login", &[], "{}").await;
    assert_eq!(trips() - before, 1, "public route");
    // Bad tokens: one round trip each, counted against the address until it is limited.
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let before = trips();
        statuses.push(
            edge.get_as("not-a-token", "/member/profile?member_id=8")
                .await
                .status,
        );
        assert_eq!(trips() - before, 1);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        8,
        "{statuses:?}"
    );
    assert_eq!(&statuses[8..], &[429, 429]);
    let records = edge.records.lock().unwrap().clone();
    assert_eq!(
        records
            .iter()
            .filter(|r| r.outcome == "token_refused")
            .count(),
        8
    );
}

/// Counts every `execute` (one per round trip the component makes) in [`ROUND_TRIPS`]; only
/// one test uses it.
#[derive(Debug)]
struct CountingGlobal(Arc<InProcessStore>);

#[async_trait]
impl EdgeStore for CountingGlobal {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.get(key).await
    }
    async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), StoreError> {
        self.0.set(key, value, ttl).await
    }
    async fn incr(&self, key: &str) -> Result<i64, StoreError> {
        self.0.incr(key).await
    }
    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        self.0.expire(key, ttl).await
    }
    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        self.0.exists(key).await
    }
    async fn del(&self, keys: &[String]) -> Result<u32, StoreError> {
        self.0.del(keys).await
    }
    async fn execute(
        &self,
        command: &str,
        args: &[StoreArg],
    ) -> Result<Vec<StoreValue>, StoreError> {
        ROUND_TRIPS.fetch_add(1, Ordering::SeqCst);
        self.0.execute(command, args).await
    }
}

#[tokio::test]
async fn cache_keys_ignore_what_the_route_does_not_read() {
    // One rate-limit window for the whole test: a new window would add counters to the store.
    let edge = TestEdge::start_with(Options::on(Backend::InProcess).frozen_clock()).await;
    let token = edge.signer.token(2, "s2");
    edge.core.answer_with(200, PAGE);
    let first = edge
        .get_as(&token, "/post/posts/9?member_id=1&page=0")
        .await;
    assert_eq!(first.header("x-heart-cache"), Some("miss"));
    let entries = edge.in_process.len();
    for id in 2..50 {
        let answer = edge
            .get_as(
                &token,
                &format!("/post/posts/9?member_id={id}&size=010&utm={id}"),
            )
            .await;
        assert_eq!(answer.header("x-heart-cache"), Some("hit"), "{id}");
    }
    assert_eq!(edge.core.received().len(), 1);
    assert_eq!(edge.in_process.len(), entries, "no entry per ignored value");
    // A malformed value the route reads is the core's to refuse, uncached.
    let odd = edge.get_as(&token, "/post/posts/9?member_id=x").await;
    assert_eq!(odd.header("x-heart-cache"), Some("bypass"));
}

#[tokio::test]
async fn feed_pages_carry_an_etag_and_match_with_304_without_the_core() {
    let edge = TestEdge::start(Backend::InProcess).await;
    let token = edge.signer.token(2, "s2");
    edge.core.answer_with(200, PAGE);
    let path = "/post/posts?member_id=2&page=0&size=10";
    let first = edge.get_as(&token, path).await;
    let etag = first.header("etag").unwrap().to_owned();
    assert!(etag.starts_with("W/\"0-"), "{etag}");
    assert_eq!(first.header("cache-control"), Some("private, no-cache"));
    let bearer = format!("Bearer {token}");
    let cached = edge
        .send(
            "GET",
            path,
            &[("authorization", &bearer), ("if-none-match", &etag)],
            "",
        )
        .await;
    assert_eq!(cached.status, 304);
    assert!(cached.body.is_empty());
    assert_eq!(cached.header("etag"), Some(etag.as_str()));
    assert!(cached.header("x-request-id").is_some());
    // Even when the page itself is no longer cached.
    edge.in_process
        .del(&[edge
            .keys
            .feed_page(
                heart_shared::edge::FeedKind::Home { viewer: 2 },
                "page=0&size=10",
            )
            .with_version(0)])
        .await
        .unwrap();
    let again = edge
        .send(
            "GET",
            path,
            &[("authorization", &bearer), ("if-none-match", &etag)],
            "",
        )
        .await;
    assert_eq!(again.status, 304);
    assert_eq!(edge.core.received().len(), 1);
    // After a write the tag no longer matches.
    edge.store_incr(&edge.keys.feed_version()).await;
    let fresh = edge
        .send(
            "GET",
            path,
            &[("authorization", &bearer), ("if-none-match", &etag)],
            "",
        )
        .await;
    assert_eq!(fresh.status, 200);
    assert_ne!(fresh.header("etag"), Some(etag.as_str()));
}

fn gunzip(body: &[u8]) -> String {
    let mut out = String::new();
    flate2::read::GzDecoder::new(body)
        .read_to_string(&mut out)
        .unwrap();
    out
}

#[tokio::test]
async fn feed_pages_are_gzipped_for_clients_that_accept_it_and_cached_encoded() {
    let edge = TestEdge::start(Backend::InProcess).await;
    let token = edge.signer.token(2, "s2");
    edge.core.answer_with(200, PAGE);
    let bearer = format!("Bearer {token}");
    let gzip = [
        ("authorization", bearer.as_str()),
        ("accept-encoding", "gzip"),
    ];
    let path = "/post/posts/9?page=0&size=10";
    for cache in ["miss", "hit"] {
        let answer = edge.send("GET", path, &gzip, "").await;
        assert_eq!(answer.header("x-heart-cache"), Some(cache));
        assert_eq!(answer.header("content-encoding"), Some("gzip"), "{cache}");
        assert_eq!(answer.header("vary"), Some("Accept-Encoding"));
        assert_eq!(gunzip(&answer.body), PAGE, "{cache}");
    }
    let plain = edge.get_as(&token, path).await;
    assert_eq!(plain.header("x-heart-cache"), Some("hit"));
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(&plain.body[..], PAGE.as_bytes());
    // What the store holds is the encoded page.
    let key = edge
        .keys
        .feed_page(
            heart_shared::edge::FeedKind::Member { member_id: 9 },
            "page=0&size=10",
        )
        .with_version(0);
    let stored = edge.in_process.get(&key).await.unwrap().unwrap();
    assert_eq!(gunzip(&stored), PAGE);
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_the_core_gets_it() {
    let edge = TestEdge::start(Backend::InProcess).await;
    let token = edge.signer.token(2, "s2");
    let hit_path = "/post/posts/9?page=0&size=10";
    edge.get_as(&token, hit_path).await;
    let answers = [
        edge.get_as(&token, hit_path).await,                // cache hit
        edge.send("GET", "/member/profile", &[], "").await, // edge 401
        edge.send("OPTIONS", "/auth/login", &[], "").await, // edge 405
        edge.send("POST", "/auth/login", &[], &"x".repeat(70_000))
            .await, // host 413
        edge.send("POST", "/auth/login", &[], "{}").await,  // forwarded
    ];
    let mut ids = std::collections::HashSet::new();
    for answer in &answers {
        let id = answer.header("x-request-id").expect("x-request-id");
        assert_eq!(id.len(), 32, "{id}");
        ids.insert(id.to_owned());
    }
    assert_eq!(ids.len(), answers.len(), "one id per request");
    let forwarded = edge.core.received().last().unwrap().clone();
    assert_eq!(
        forwarded.header("x-request-id"),
        answers[4].header("x-request-id")
    );
    // A well-formed id from the client is kept end to end.
    let kept = edge
        .send("POST", "/auth/login", &[("x-request-id", "app-1234")], "{}")
        .await;
    assert_eq!(kept.header("x-request-id"), Some("app-1234"));
    assert_eq!(
        edge.core.received().last().unwrap().header("x-request-id"),
        Some("app-1234")
    );
    // And the internal headers never leave the edge.
    assert!(answers
        .iter()
        .all(|a| a.header("x-heart-edge-outcome").is_none()
            && a.header("x-heart-edge-member").is_none()));
}

#[tokio::test]
async fn access_records_name_route_status_cache_and_member() {
    let edge = TestEdge::start(Backend::InProcess).await;
    let token = edge.signer.token(7, "s7");
    edge.get_as(&token, "/post/posts/9?page=0&size=10").await;
    edge.get_as(&token, "/post/posts/9?page=0&size=10").await;
    edge.send("GET", "/nowhere/at/all", &[], "").await;
    let records = edge.records.lock().unwrap().clone();
    assert_eq!(records.len(), 3);
    assert_eq!(records[0].route, "/post/posts/{member_id}");
    assert_eq!(records[0].cache(), "miss");
    assert_eq!(records[1].cache(), "hit");
    assert_eq!(records[1].member_id, Some(7));
    assert_eq!(records[1].status, 200);
    assert_eq!(records[2].route, "unknown");
    assert_eq!(records[2].member_id, None);
    assert!(records
        .iter()
        .all(|r| r.request_id.len() == 32 && r.method == "GET"));
}

#[tokio::test]
async fn options_and_unrouted_methods_get_contract_errors() {
    let edge = TestEdge::start(Backend::InProcess).await;
    edge.send("OPTIONS", "/auth/login", &[], "")
        .await
        .assert_error(405, "GLOBAL_003");
    edge.send("DELETE", "/post/posts", &[], "")
        .await
        .assert_error(405, "GLOBAL_003");
    edge.send("OPTIONS", "*", &[], "")
        .await
        .assert_error(404, "GLOBAL_001");
    edge.send("BREW", "/coffee", &[], "")
        .await
        .assert_error(404, "GLOBAL_001");
    assert!(edge.core.received().is_empty());
    // An unknown path with an ordinary method is the core's to answer.
    edge.send("GET", "/new/route", &[], "").await;
    assert_eq!(edge.core.received().len(), 1);
}

/// Answers of up to 64 KiB, the edge's own and the core's, leave whole with their
/// `content-length` (one write, no chunked framing); a larger answer of the core streams through.
#[tokio::test]
async fn small_answers_carry_their_length_and_large_ones_stream() {
    let edge = TestEdge::start(Backend::InProcess).await;
    let token = edge.signer.token(5, "s5");

    let health = edge.send("GET", "/healthz", &[], "").await;
    assert_eq!(health.status, 200);
    assert_eq!(
        health.header("content-length"),
        Some(health.body.len().to_string().as_str())
    );

    let small = r#"{"member_id":2,"name":"Two"}"#;
    edge.core.answer_with(200, small);
    let answered = edge.get_as(&token, "/member/profile?member_id=2").await;
    assert_whole(&answered, 200, small);

    let large = format!(r#"{{"pad":"{}"}}"#, "x".repeat(100_000));
    edge.core.answer_with(200, &large);
    let answered = edge.get_as(&token, "/member/profile?member_id=2").await;
    assert_eq!(answered.status, 200);
    assert_eq!(answered.body.len(), large.len(), "streamed whole");
    assert_eq!(answered.header("transfer-encoding"), Some("chunked"));

    let error = r#"{"status":404,"code":"MEMBER_001","message":"no such member"}"#;
    edge.core.answer_with(404, error);
    let answered = edge.get_as(&token, "/member/profile?member_id=9").await;
    assert_whole(&answered, 404, error);
}

/// `answered` is `status` with exactly `body`, sent whole with its length (not chunked).
fn assert_whole(answered: &crate::helpers::Answered, status: u16, body: &str) {
    assert_eq!(answered.status, status);
    assert_eq!(&answered.body[..], body.as_bytes());
    assert_eq!(
        answered.header("content-length"),
        Some(body.len().to_string().as_str())
    );
    assert_eq!(answered.header("transfer-encoding"), None);
}

/// Sends `head` (its lines, without the blank line) and `body` on a fresh connection, and reads
/// the answer until the edge closes.
async fn send_raw(edge: &TestEdge, head: &str, body: &str) -> String {
    let request = format!("{head}\r\nhost: x\r\nconnection: close\r\n\r\n{body}");
    let mut stream = start_slow(edge, &request).await;
    read_until_closed(&mut stream, Duration::from_secs(10))
        .await
        .1
}

#[tokio::test]
async fn requests_without_a_body_reach_the_core_without_one() {
    let edge = TestEdge::start(Backend::InProcess).await;
    let token = edge.signer.token(5, "s5");
    let auth = format!("authorization: Bearer {token}");

    let requests = [
        // A GET declaring no body, and a POST declaring an empty one: the core gets no body.
        (
            format!("GET /member/profile?member_id=2 HTTP/1.1\r\n{auth}"),
            "",
        ),
        (
            "POST /auth/login HTTP/1.1\r\ncontent-length: 0".to_owned(),
            "",
        ),
        // A GET that declares a body, and a POST with one: the body is passed on.
        (
            format!("GET /member/profile?member_id=3 HTTP/1.1\r\n{auth}\r\ncontent-length: 5"),
            "hello",
        ),
        (
            "POST /auth/login HTTP/1.1\r\ncontent-length: 2".to_owned(),
            "{}",
        ),
    ];
    for (head, body) in &requests {
        let answer = send_raw(&edge, head, body).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }

    let received = edge.core.received();
    let seen: Vec<_> = received
        .iter()
        .map(|r| {
            (
                r.method.as_str(),
                r.header("content-length"),
                r.header("transfer-encoding"),
                &r.body[..],
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("GET", None, None, &b""[..]),
            ("POST", Some("0"), None, &b""[..]),
            ("GET", Some("5"), None, &b"hello"[..]),
            ("POST", Some("2"), None, &b"{}"[..]),
        ]
    );
}
