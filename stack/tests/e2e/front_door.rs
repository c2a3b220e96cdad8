//! The edge as a front door through the whole stack (issue 10): slow clients do not starve
//! others, the edge's metrics are on the admin port, every answer carries a request id, feed
//! pages come gzipped with an ETag and a 304, bad tokens count against the address, and unrouted
//! methods get contract errors.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

use crate::helpers::{Setup, TestStack};

fn p99(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[(samples.len() * 99).div_ceil(100) - 1]
}

#[tokio::test]
async fn slow_heads_and_bodies_do_not_starve_healthz_or_cached_pages() {
    let stack = TestStack::start().await;
    let ann = stack.member("slowpoke").await;
    let feed = format!("/post/posts/{}?page=0&size=10", ann.id);
    assert_eq!(stack.get_as(&ann, &feed).await.status, 200);
    // 150 clients stuck in their request head and 150 in a JSON body (the stack's edge has 8
    // instances): none of them holds an instance.
    let mut slow = Vec::new();
    for i in 0..300 {
        let mut stream = TcpStream::connect(stack.addr).await.expect("connect");
        let start: &[u8] = if i % 2 == 0 {
            b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: "
        } else {
            b"POST /auth/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 60000\r\n\r\n{\"email\":"
        };
        stream.write_all(start).await.expect("write");
        slow.push(stream);
    }
    let mut healthz = Vec::new();
    let mut cached = Vec::new();
    for _ in 0..50 {
        let started = Instant::now();
        assert_eq!(stack.get("/healthz").await.status, 200);
        healthz.push(started.elapsed());
        let started = Instant::now();
        let page = stack.get_as(&ann, &feed).await;
        assert_eq!((page.status, page.cache()), (200, Some("hit")));
        cached.push(started.elapsed());
    }
    let (healthz, cached) = (p99(healthz), p99(cached));
    eprintln!("with 300 slow clients: p99 /healthz {healthz:?}, cached page {cached:?}");
    assert!(healthz < Duration::from_millis(100), "{healthz:?}");
    assert!(cached < Duration::from_millis(100), "{cached:?}");
    drop(slow);
}

#[tokio::test]
async fn the_edges_metrics_are_on_the_admin_port() {
    let stack = TestStack::start().await;
    let ann = stack.member("metrics").await;
    let feed = format!("/post/posts/{}?page=0&size=10", ann.id);
    stack.get_as(&ann, &feed).await;
    stack.get_as(&ann, &feed).await;
    stack
        .send(
            "GET",
            "/member/profile",
            &[("authorization", "Bearer nope")],
            "",
        )
        .await;
    let stream = TcpStream::connect(stack.admin_addr).await.expect("admin");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("handshake");
    tokio::spawn(connection);
    let request = hyper::Request::get("/metrics")
        .header("host", "admin")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .expect("request");
    let response = sender.send_request(request).await.expect("metrics");
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .expect("body")
        .to_bytes();
    let text = String::from_utf8_lossy(&body);
    for name in [
        "heart_edge_requests_total{route=\"/post/posts/{member_id}\",status=\"200\"}",
        "heart_edge_cache_total{result=\"hit\"}",
        "heart_edge_cache_total{result=\"miss\"}",
        "heart_edge_token_refusals_total",
        "heart_edge_forward_duration_seconds",
        "heart_edge_permits_in_use",
        "heart_edge_connections_open",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics");
    }
}

#[tokio::test]
async fn feed_pages_come_gzipped_with_an_etag_and_a_304_from_the_edge() {
    let stack = TestStack::start().await;
    let ann = stack.member("etag").await;
    let feed = format!("/post/posts?member_id={}&page=0&size=10", ann.id);
    let bearer = format!("Bearer {}", ann.access_token);
    let first = stack
        .send(
            "GET",
            &feed,
            &[("authorization", &bearer), ("accept-encoding", "gzip")],
            "",
        )
        .await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("content-encoding"), Some("gzip"));
    let etag = first.header("etag").expect("etag").to_owned();
    assert!(etag.starts_with("W/\""), "{etag}");
    let not_modified = stack
        .send(
            "GET",
            &feed,
            &[("authorization", &bearer), ("if-none-match", &etag)],
            "",
        )
        .await;
    assert_eq!(not_modified.status, 304);
    assert!(not_modified.body.is_empty());
    assert!(not_modified.header("x-request-id").is_some());
    // A post changes the feed: the old tag no longer matches.
    assert_eq!(stack.register_post(&ann, "new", &[]).await.status, 201);
    let changed = stack
        .send(
            "GET",
            &feed,
            &[("authorization", &bearer), ("if-none-match", &etag)],
            "",
        )
        .await;
    assert_eq!(changed.status, 200);
    assert_eq!(changed.json()["posts"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn request_ids_reach_the_core_and_come_back_on_every_answer() {
    let stack = TestStack::start().await;
    let ann = stack.member("ids").await;
    let feed = format!("/post/posts/{}?page=0&size=10", ann.id);
    stack.get_as(&ann, &feed).await;
    let hit = stack.get_as(&ann, &feed).await;
    assert_eq!(hit.cache(), Some("hit"));
    let refused = stack.get("/member/profile").await;
    let forwarded = stack
        .send("GET", "/profile", &[("x-request-id", "app-req-77")], "")
        .await;
    for answer in [&hit, &refused] {
        let id = answer.header("x-request-id").expect("x-request-id");
        assert_eq!(id.len(), 32, "{id}");
    }
    assert_eq!(forwarded.header("x-request-id"), Some("app-req-77"));
}

#[tokio::test]
async fn bad_tokens_count_against_the_address() {
    let stack =
        TestStack::start_with(Setup::default().edge("rate_limit_edge_requests_per_ip", "5/60s"))
            .await;
    // One rate-limit window for the whole test (windows are fixed to the epoch).
    stack.state.clock.freeze();
    let mut statuses = Vec::new();
    for _ in 0..7 {
        let answer = stack
            .send(
                "GET",
                "/member/profile",
                &[("authorization", "Bearer bad")],
                "",
            )
            .await;
        statuses.push(answer.status);
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429]);
}

#[tokio::test]
async fn options_and_unknown_methods_get_contract_errors_not_503() {
    let stack = TestStack::start().await;
    stack
        .send("OPTIONS", "/auth/login", &[], "")
        .await
        .assert_error("GLOBAL_003");
    let star = stack
        .raw(b"OPTIONS * HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await;
    assert_eq!(star.status, 404, "{star:?}");
    crate::helpers::assert_contract_error(
        star.status,
        star.header("content-type"),
        &star.body,
        "GLOBAL_001",
    );
}
