//! The edge component in the host, black-box: token checks, revocation, forwarding, the feed
//! cache and rate limits, each on real Redis and on the in-process store; and what happens
//! without Redis or without the core.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations
)]

// The core's fault proxy (not every mode is used here).
#[allow(dead_code)]
use heart_testkit::fault_proxy;
mod binary;
mod front_door;
mod helpers;
mod redis_faults;

use std::time::{Duration, Instant, SystemTime};

use heart_edge_host::HostConfig;
use heart_shared::edge::FeedKind;
use helpers::{Backend, Options, Signer, StreamEnd, TestEdge};

/// Runs `check(backend)` as one test per store: `<name>::redis` and `<name>::in_process`.
macro_rules! on_both_stores {
    ($name:ident, $check:ident) => {
        mod $name {
            /// On real Redis when `HEART_TEST_REDIS_URL` is set (CI sets it), like the core's
            /// tests; the README's test command runs on a machine with nothing installed.
            #[tokio::test]
            async fn redis() {
                if crate::helpers::real_redis_url().is_none() {
                    return;
                }
                super::$check(super::Backend::Redis).await;
            }

            #[tokio::test]
            async fn in_process() {
                super::$check(super::Backend::InProcess).await;
            }
        }
    };
}

on_both_stores!(missing_token_is_global_103, missing_token);
async fn missing_token(backend: Backend) {
    let edge = TestEdge::start(backend).await;
    edge.send("GET", "/member/profile?member_id=1", &[], "")
        .await
        .assert_error(401, "GLOBAL_103");
    edge.send(
        "GET",
        "/post/posts?page=0&size=10",
        &[("authorization", "Basic abc")],
        "",
    )
    .await
    .assert_error(401, "GLOBAL_103");
    edge.send("POST", "/auth/logout", &[], "")
        .await
        .assert_error(401, "GLOBAL_103");
    assert!(edge.core.received().is_empty(), "nothing reaches the core");
}

on_both_stores!(bad_signature_is_global_103, bad_signature);
async fn bad_signature(backend: Backend) {
    let edge = TestEdge::start(backend).await;
    // Another key, presenting our key's id.
    let forger = Signer::generate();
    let forged = forger.token_with(1, "s1", 600, heart_shared::token::key_id(&edge.signer.jwk));
    edge.get_as(&forged, "/member/profile?member_id=1")
        .await
        .assert_error(401, "GLOBAL_103");
    edge.get_as("not-a-jwt", "/auth/verifyAccessToken")
        .await
        .assert_error(401, "GLOBAL_103");
    assert!(edge.core.received().is_empty());
}

on_both_stores!(expired_token_is_global_104, expired_token);
async fn expired_token(backend: Backend) {
    let edge = TestEdge::start(backend).await;
    let expired =
        edge.signer
            .token_with(1, "s1", -5, heart_shared::token::key_id(&edge.signer.jwk));
    edge.get_as(&expired, "/auth/verifyAccessToken")
        .await
        .assert_error(401, "GLOBAL_104");
    assert!(edge.core.received().is_empty());
}

/// The component reads the host's wall clock (`HostConfig::wall_clock`): a day ahead, a token
/// minted for ten minutes has expired.
#[tokio::test]
async fn the_component_reads_the_hosts_wall_clock() {
    let edge = TestEdge::start_with(Options::on(Backend::InProcess).host(|config| {
        config.wall_clock = Some(std::sync::Arc::new(|| {
            SystemTime::now() + Duration::from_secs(86_400)
        }));
    }))
    .await;
    let token = edge.signer.token(1, "s1");
    edge.get_as(&token, "/auth/verifyAccessToken")
        .await
        .assert_error(401, "GLOBAL_104");
    assert!(edge.core.received().is_empty());
}

on_both_stores!(unknown_kid_is_global_103, unknown_kid);
async fn unknown_kid(backend: Backend) {
    let edge = TestEdge::start(backend).await;
    let token = edge.signer.token_with(1, "s1", 600, "some-other-kid");
    edge.get_as(&token, "/member/profile?member_id=1")
        .await
        .assert_error(401, "GLOBAL_103");
    assert!(edge.core.received().is_empty());
}

on_both_stores!(revoked_session_is_global_103, revoked_session);
async fn revoked_session(backend: Backend) {
    let edge = TestEdge::start(backend).await;
    let token = edge.signer.token(7, "session-a");
    assert_eq!(
        edge.get_as(&token, "/auth/verifyAccessToken").await.status,
        200
    );
    // What the core's logout does (`Revocations::revoke`).
    edge.store_set(&edge.keys.revoked_session("session-a"), "1", 900)
        .await;
    edge.get_as(&token, "/auth/verifyAccessToken")
        .await
        .assert_error(401, "GLOBAL_103");
    edge.get_as(&token, "/post/posts?page=0&size=10")
        .await
        .assert_error(401, "GLOBAL_103");
    assert_eq!(
        edge.core.received().len(),
        1,
        "only the first request was forwarded"
    );
    // Another session of the same member is unaffected.
    let other = edge.signer.token(7, "session-b");
    assert_eq!(
        edge.get_as(&other, "/auth/verifyAccessToken").await.status,
        200
    );
}

on_both_stores!(
    forwarded_requests_carry_identity_and_secret,
    forwarded_identity
);
async fn forwarded_identity(backend: Backend) {
    let edge = TestEdge::start(backend).await;
    edge.core
        .answer_with(200, r#"{"member_id":42,"target_id":9}"#);
    let bearer = format!("Bearer {}", edge.signer.token(42, "sess-42"));
    let answer = edge
        .send(
            "POST",
            "/member/block?x=1",
            &[
                ("authorization", &bearer),
                ("content-type", "application/json"),
                // A client trying to act as someone else, and to look like the edge.
                ("x-heart-member-id", "1"),
                ("x-heart-session-id", "stolen"),
                ("x-heart-edge-secret", "guess"),
                ("x-heart-client-ip", "10.9.9.9"),
                ("spin-client-addr", "10.9.9.9:1"),
            ],
            r#"{"member_id":42,"target_id":9}"#,
        )
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["target_id"], 9);
    // The edge's request id, the one the core was given, is the one answered.
    let request_id = answer.header("x-request-id").unwrap().to_owned();
    let received = edge.core.received();
    assert_eq!(received.len(), 1);
    let got = &received[0];
    assert_eq!(got.header("x-request-id"), Some(request_id.as_str()));
    assert_eq!(got.method, "POST");
    assert_eq!(got.path_and_query, "/member/block?x=1");
    assert_eq!(&got.body[..], br#"{"member_id":42,"target_id":9}"#);
    assert_eq!(got.header("content-type"), Some("application/json"));
    assert_eq!(got.header("authorization"), Some(bearer.as_str()));
    assert_eq!(got.header("x-heart-member-id"), Some("42"));
    assert_eq!(got.headers.get_all("x-heart-member-id").iter().count(), 1);
    assert_eq!(got.header("x-heart-session-id"), Some("sess-42"));
    assert_eq!(
        got.header("x-heart-edge-secret"),
        Some(edge.secret.as_str())
    );
    assert_eq!(got.header("x-heart-client-ip"), Some("127.0.0.1"));
    assert_eq!(got.header("x-forwarded-for"), Some("127.0.0.1"));
    assert!(got.headers.get("spin-client-addr").is_none());
}

on_both_stores!(public_routes_are_forwarded_without_identity, public_routes);
async fn public_routes(backend: Backend) {
    let edge = TestEdge::start(backend).await;
    edge.core.answer_with(
        401,
        r#"{"status":401,"code":"AUTH_006","message":"Wrong email or password"}"#,
    );
    let answer = edge
        .send(
            "POST",
            "/auth/login",
            &[
                ("content-type", "application/json"),
                ("x-heart-member-id", "1"),
                ("x-forwarded-for", "203.0.113.5"),
            ],
            r#"{"email":"a@b.co","password":"x"}"#,
        )
        .await;
    // The core's own errors pass through unchanged.
    answer.assert_error(401, "AUTH_006");
    let received = edge.core.received();
    let got = &received[0];
    assert_eq!(got.path_and_query, "/auth/login");
    assert_eq!(got.header("x-heart-member-id"), None);
    assert_eq!(got.header("x-heart-session-id"), None);
    assert_eq!(
        got.header("x-heart-edge-secret"),
        Some(edge.secret.as_str())
    );
    // Without trusted proxies the client's X-Forwarded-For is kept but not believed.
    assert_eq!(got.header("x-heart-client-ip"), Some("127.0.0.1"));
    assert_eq!(
        got.header("x-forwarded-for"),
        Some("203.0.113.5, 127.0.0.1")
    );
}

on_both_stores!(feed_pages_are_cached_until_the_version_changes, feed_cache);
async fn feed_cache(backend: Backend) {
    let edge = TestEdge::start(backend).await;
    let token = edge.signer.token(5, "s5");
    let page = r#"{"size":1,"posts":[{"id":1}],"next_cursor":null}"#;
    edge.core.answer_with(200, page);

    let first = edge.get_as(&token, "/post/posts/9?page=0&size=10").await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("x-heart-cache"), Some("miss"));
    assert_eq!(&first.body[..], page.as_bytes());

    // The same page, parameters in another order: from the cache.
    let second = edge.get_as(&token, "/post/posts/9?size=10&page=0").await;
    assert_eq!(second.status, 200);
    assert_eq!(second.header("x-heart-cache"), Some("hit"));
    assert_eq!(second.header("content-type"), Some("application/json"));
    assert_eq!(&second.body[..], page.as_bytes());
    assert_eq!(edge.core.received().len(), 1);

    // Another member reads the same member feed from the cache too.
    let other = edge.signer.token(6, "s6");
    let third = edge.get_as(&other, "/post/posts/9?page=0&size=10").await;
    assert_eq!(third.header("x-heart-cache"), Some("hit"));

    // A write in the core bumps the version: the next read misses.
    edge.store_incr(&edge.keys.feed_version()).await;
    let fresh = r#"{"size":2,"posts":[{"id":2},{"id":1}],"next_cursor":null}"#;
    edge.core.answer_with(200, fresh);
    let after = edge.get_as(&token, "/post/posts/9?page=0&size=10").await;
    assert_eq!(after.header("x-heart-cache"), Some("miss"));
    assert_eq!(&after.body[..], fresh.as_bytes());
    assert_eq!(edge.core.received().len(), 2);
    let again = edge.get_as(&token, "/post/posts/9?page=0&size=10").await;
    assert_eq!(again.header("x-heart-cache"), Some("hit"));
    assert_eq!(&again.body[..], fresh.as_bytes());
}

/// Redis forgets scripts (a restart, a failover, `SCRIPT FLUSH`): the gate's `EVALSHA` is then
/// answered `NOSCRIPT`, and the component sends the script whole (`EVAL`) and goes on. Real Redis
/// only: the in-process store knows the edge's scripts by heart.
#[tokio::test]
async fn scripts_redis_has_forgotten_are_sent_whole() {
    if helpers::real_redis_url().is_none() {
        return;
    }
    let edge = TestEdge::start(Backend::Redis).await;
    let client = redis::Client::open(helpers::redis_url()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async::<()>(&mut redis)
        .await
        .unwrap();
    let token = edge.signer.token(5, "s5");
    let page = r#"{"size":1,"posts":[{"id":1}],"next_cursor":null}"#;
    edge.core.answer_with(200, page);
    // A miss, not a bypass: the gate answered (and the new token's mark was set, by the other
    // script), and the page was stored.
    let first = edge.get_as(&token, "/post/posts/9?page=0&size=10").await;
    assert_eq!(first.header("x-heart-cache"), Some("miss"));
    let second = edge.get_as(&token, "/post/posts/9?page=0&size=10").await;
    assert_eq!(second.header("x-heart-cache"), Some("hit"));
    assert_eq!(edge.core.received().len(), 1);
    let known: Vec<i64> = redis::cmd("SCRIPT")
        .arg("EXISTS")
        .arg(heart_shared::edge::GATE_SCRIPT_SHA1)
        .arg(heart_shared::edge::VERIFIED_SCRIPT_SHA1)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(known, vec![1, 1], "both scripts are known to Redis again");
}

on_both_stores!(home_feed_is_cached_per_viewer, home_feed_per_viewer);
async fn home_feed_per_viewer(backend: Backend) {
    let edge = TestEdge::start(backend).await;
    let alice = edge.signer.token(1, "sa");
    let bob = edge.signer.token(2, "sb");
    edge.core
        .answer_with(200, r#"{"size":0,"posts":[],"next_cursor":null}"#);
    let path = "/post/posts?member_id=1&page=0&size=10";
    assert_eq!(
        edge.get_as(&alice, path).await.header("x-heart-cache"),
        Some("miss")
    );
    assert_eq!(
        edge.get_as(&alice, path).await.header("x-heart-cache"),
        Some("hit")
    );
    // Bob's home feed hides the members Bob blocks: never Alice's page.
    let bobs = "/post/posts?member_id=2&page=0&size=10";
    assert_eq!(
        edge.get_as(&bob, bobs).await.header("x-heart-cache"),
        Some("miss")
    );
    // Bob asking for Alice's home feed is the core's to refuse (403), never from the cache.
    assert_eq!(
        edge.get_as(&bob, path).await.header("x-heart-cache"),
        Some("bypass")
    );
    let received = edge.core.received();
    assert_eq!(received.len(), 3);
    assert_eq!(received[1].header("x-heart-member-id"), Some("2"));
    // The key layout the core and the edge share.
    let key = edge
        .keys
        .feed_page(FeedKind::Home { viewer: 1 }, "member_id=1&page=0&size=10");
    assert!(key.with_version(0).contains(":home:1:"));
}

on_both_stores!(only_successful_feed_pages_are_cached, errors_not_cached);
async fn errors_not_cached(backend: Backend) {
    let edge = TestEdge::start(backend).await;
    let token = edge.signer.token(3, "s3");
    edge.core.answer_with(
        400,
        r#"{"status":400,"code":"GLOBAL_007","message":"size must be 1..100"}"#,
    );
    for _ in 0..2 {
        let answer = edge.get_as(&token, "/post/posts/3?page=0&size=10").await;
        answer.assert_error(400, "GLOBAL_007");
        assert_eq!(answer.header("x-heart-cache"), Some("bypass"));
    }
    // A query the core would refuse is forwarded, never cached.
    for _ in 0..2 {
        let answer = edge.get_as(&token, "/post/posts/3?page=0&size=1000").await;
        answer.assert_error(400, "GLOBAL_007");
        assert_eq!(answer.header("x-heart-cache"), Some("bypass"));
    }
    assert_eq!(edge.core.received().len(), 4);
}

on_both_stores!(
    threads_of_their_own_share_the_limits_and_the_store,
    threads_share_limits
);
/// `heart-edge-host` serves on one thread per core, each with its own runtime, Redis connection
/// and pool to the core: a member's limit still holds across them (the in-process store is
/// shared, Redis is one), and every thread forwards and caches.
async fn threads_share_limits(backend: Backend) {
    let edge = TestEdge::start_with(
        Options::on(backend)
            .threads(2)
            .frozen_clock()
            .var("rate_limit_edge_requests_per_member", "10/60s"),
    )
    .await;
    let token = edge.signer.token(11, "s11");
    let path = "/post/posts?member_id=11&page=0&size=10";
    // 16 requests on 16 connections at once: the kernel spreads them over the two threads (all
    // on one thread has a chance of 1 in 32,768).
    let answers = futures_util::future::join_all((0..16).map(|_| edge.get_as(&token, path))).await;
    let mut statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    statuses.sort_unstable();
    let odd: Vec<_> = answers
        .iter()
        .filter(|a| a.status != 200 && a.status != 429)
        .map(|a| (a.status, String::from_utf8_lossy(&a.body).into_owned()))
        .collect();
    assert_eq!(&statuses[..10], &[200; 10], "{statuses:?} {odd:?}");
    assert_eq!(&statuses[10..], &[429; 6], "{statuses:?} {odd:?}");
    // The page was fetched from the core at least once and then served from the cache.
    let fetched = edge.core.received().len();
    assert!((1..=10).contains(&fetched), "{fetched} fetches");
}

/// Two threads racing for two instances: a request that gets an instance's permit always finds
/// its slot in the engine's pool free (the previous holder's store is gone before its permit is
/// given back), so no request fails for want of a slot that was about to be freed.
#[tokio::test]
async fn a_freed_instance_permit_always_comes_with_a_free_slot() {
    let edge = TestEdge::start_with(Options::on(Backend::InProcess).threads(2).host(|config| {
        config.max_concurrent_requests = 2;
        config.permit_wait = Duration::from_secs(30);
    }))
    .await;
    let token = edge.signer.token(12, "s12");
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let wave = (0..16).map(|_| edge.get_as(&token, "/member/profile?member_id=12"));
        let answers = futures_util::future::join_all(wave).await;
        statuses.extend(answers.iter().map(|a| a.status));
    }
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
}

on_both_stores!(members_over_their_limit_get_429, member_rate_limit);
async fn member_rate_limit(backend: Backend) {
    let edge = TestEdge::start_with(
        Options::on(backend)
            .frozen_clock()
            .var("rate_limit_edge_requests_per_member", "3/60s"),
    )
    .await;
    let token = edge.signer.token(11, "s11");
    for _ in 0..3 {
        assert_eq!(
            edge.get_as(&token, "/member/profile?member_id=11")
                .await
                .status,
            200
        );
    }
    let limited = edge.get_as(&token, "/member/profile?member_id=11").await;
    limited.assert_error(429, "GLOBAL_106");
    let retry: u32 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(edge.core.received().len(), 3);
    // Another member from the same address is not limited.
    let other = edge.signer.token(12, "s12");
    assert_eq!(
        edge.get_as(&other, "/member/profile?member_id=12")
            .await
            .status,
        200
    );
}

on_both_stores!(
    forged_tokens_spend_no_members_limit,
    forged_tokens_and_member_limit
);
/// The gate counts a member only for a token whose signature was checked: forged tokens naming
/// member 11 are refused and do not lock member 11 out.
async fn forged_tokens_and_member_limit(backend: Backend) {
    let edge = TestEdge::start_with(
        Options::on(backend)
            .frozen_clock()
            .var("rate_limit_edge_requests_per_member", "3/60s"),
    )
    .await;
    let forger = Signer::generate();
    let kid = heart_shared::token::key_id(&edge.signer.jwk);
    for _ in 0..5 {
        let forged = forger.token_with(11, "s11", 600, kid);
        edge.get_as(&forged, "/member/profile?member_id=11")
            .await
            .assert_error(401, "GLOBAL_103");
    }
    let token = edge.signer.token(11, "s11");
    for _ in 0..3 {
        let answer = edge.get_as(&token, "/member/profile?member_id=11").await;
        assert_eq!(answer.status, 200, "the member's own limit is whole");
    }
    edge.get_as(&token, "/member/profile?member_id=11")
        .await
        .assert_error(429, "GLOBAL_106");
    assert!(
        edge.store_get(&edge.keys.verified_token(&token))
            .await
            .is_some(),
        "the genuine token is marked as verified"
    );
}

on_both_stores!(verified_marks_are_used_and_bounded, verified_marks);
/// The mark is what lets later requests skip the signature check: a token whose exact bytes carry
/// it is taken as verified (shown with a forged token marked by hand, which only a writer of the
/// edge's Redis could do), yet its expiry and its session's revocation are still checked.
async fn verified_marks(backend: Backend) {
    let edge = TestEdge::start(backend).await;
    let forger = Signer::generate();
    let kid = heart_shared::token::key_id(&edge.signer.jwk);
    let forged = forger.token_with(21, "s21", 600, kid);
    edge.get_as(&forged, "/member/profile?member_id=21")
        .await
        .assert_error(401, "GLOBAL_103");
    assert!(
        edge.store_get(&edge.keys.verified_token(&forged))
            .await
            .is_none(),
        "a refused token is not marked"
    );
    edge.store_set(&edge.keys.verified_token(&forged), "1", 600)
        .await;
    assert_eq!(
        edge.get_as(&forged, "/member/profile?member_id=21")
            .await
            .status,
        200,
        "the mark stands for the signature check"
    );
    // A mark does not outlive the token's expiry (an expired token gets the full check, here a
    // bad signature), nor a revocation.
    let expired = forger.token_with(21, "s21", -5, kid);
    edge.store_set(&edge.keys.verified_token(&expired), "1", 600)
        .await;
    edge.get_as(&expired, "/member/profile?member_id=21")
        .await
        .assert_error(401, "GLOBAL_103");
    edge.store_set(&edge.keys.revoked_session("s21"), "1", 600)
        .await;
    edge.get_as(&forged, "/member/profile?member_id=21")
        .await
        .assert_error(401, "GLOBAL_103");
    // A mark for a token of a key no longer in the JWKS is not enough.
    let retired = forger.token_with(22, "s22", 600, "retired-kid");
    edge.store_set(&edge.keys.verified_token(&retired), "1", 600)
        .await;
    edge.get_as(&retired, "/member/profile?member_id=22")
        .await
        .assert_error(401, "GLOBAL_103");
    assert_eq!(
        edge.core.received().len(),
        1,
        "only the marked valid one was forwarded"
    );
}

on_both_stores!(addresses_over_their_limit_get_429, ip_rate_limit);
async fn ip_rate_limit(backend: Backend) {
    let edge = TestEdge::start_with(
        Options::on(backend)
            .frozen_clock()
            .var("rate_limit_edge_requests_per_ip", "2/60s")
            // Behind one trusted proxy the client is the last X-Forwarded-For entry.
            .var("trusted_proxy_hops", "1"),
    )
    .await;
    let from = |ip: &'static str| [("x-forwarded-for", ip)];
    for _ in 0..2 {
        let answer = edge
            .send("POST", "/auth/login", &from("198.51.100.1"), "{}")
            .await;
        assert_eq!(answer.status, 200);
    }
    edge.send("POST", "/auth/login", &from("198.51.100.1"), "{}")
        .await
        .assert_error(429, "GLOBAL_106");
    let elsewhere = edge
        .send("POST", "/auth/login", &from("198.51.100.2"), "{}")
        .await;
    assert_eq!(elsewhere.status, 200);
    let received = edge.core.received();
    assert_eq!(received.len(), 3);
    assert_eq!(
        received[2].header("x-heart-client-ip"),
        Some("198.51.100.2")
    );
    assert_eq!(
        received[2].header("x-forwarded-for"),
        Some("198.51.100.2, 127.0.0.1")
    );
}

#[tokio::test]
async fn without_redis_requests_are_still_forwarded() {
    let edge = TestEdge::start_with(
        Options::on(Backend::Unreachable).var("rate_limit_edge_requests_per_member", "1/60s"),
    )
    .await;
    let token = edge.signer.token(4, "s4");
    for _ in 0..3 {
        let answer = edge.get_as(&token, "/post/posts/4?page=0&size=10").await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        assert_eq!(answer.header("x-heart-cache"), Some("bypass"));
    }
    assert_eq!(
        edge.get_as(&token, "/auth/verifyAccessToken").await.status,
        200
    );
    // Tokens are still verified without Redis.
    edge.send("GET", "/member/profile?member_id=4", &[], "")
        .await
        .assert_error(401, "GLOBAL_103");
    let received = edge.core.received();
    assert_eq!(received.len(), 4);
    assert_eq!(received[0].header("x-heart-member-id"), Some("4"));
}

#[tokio::test]
async fn healthz_is_answered_by_the_edge() {
    let edge = TestEdge::start(Backend::InProcess).await;
    let answer = edge.send("GET", "/healthz", &[], "").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["status"], "ok");
    assert!(edge.core.received().is_empty());
}

#[tokio::test]
async fn core_unreachable_is_global_503() {
    let edge = TestEdge::start_with(Options::on(Backend::InProcess).var(
        "core_url",
        &format!("http://127.0.0.1:{}", helpers::closed_port()),
    ))
    .await;
    edge.send("POST", "/auth/login", &[], "{}")
        .await
        .assert_error(503, "GLOBAL_503");
}

#[tokio::test]
async fn a_hanging_core_is_cut_off_at_the_time_limit() {
    let mut options = Options::on(Backend::InProcess);
    options.request_timeout = std::time::Duration::from_secs(1);
    let edge = TestEdge::start_with(options).await;
    edge.core.answer_after(std::time::Duration::from_secs(5));
    let started = std::time::Instant::now();
    edge.send("POST", "/auth/login", &[], "{}")
        .await
        .assert_error(503, "GLOBAL_503");
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
}

/// An export through an edge with a 1 s request time limit (and `configure`d otherwise), whose
/// core streams `chunks` chunks, one every `every_ms`, then `end`: the status, the body or how it
/// broke off, and how long it took.
async fn export_through(
    configure: fn(&mut HostConfig),
    chunks: usize,
    every_ms: u64,
    end: StreamEnd,
) -> (u16, Result<bytes::Bytes, String>, Duration) {
    let mut options = Options::on(Backend::InProcess).host(configure);
    options.request_timeout = Duration::from_secs(1);
    let edge = TestEdge::start_with(options).await;
    edge.core
        .answer_streaming(chunks, Duration::from_millis(every_ms), end);
    let token = edge.signer.token(7, "s");
    let started = Instant::now();
    let (status, body) = edge
        .get_streamed(&token, "/member/export?member_id=7")
        .await;
    (status, body, started.elapsed())
}

/// A streamed answer (a data export) goes on past the request time limit while it moves.
#[tokio::test]
async fn a_moving_stream_outlives_the_request_time_limit() {
    // 3 s in all: a chunk every 200 ms.
    let (status, body, took) = export_through(|_| {}, 15, 200, StreamEnd::Complete).await;
    assert_eq!(status, 200);
    assert_eq!(body.unwrap().len(), 15 * helpers::CHUNK);
    assert!(took > Duration::from_secs(2), "{took:?}");
}

/// A stream that stops moving is cut the request time limit after its last chunk, and its
/// instance is freed.
#[tokio::test]
async fn a_stalled_stream_is_cut_after_the_request_time_limit() {
    let mut options = Options::on(Backend::InProcess).host(|config| {
        config.max_concurrent_requests = 1;
        config.permit_wait = Duration::from_millis(100);
    });
    options.request_timeout = Duration::from_secs(1);
    let edge = TestEdge::start_with(options).await;
    edge.core
        .answer_streaming(2, Duration::from_millis(100), StreamEnd::Stall);
    let token = edge.signer.token(7, "s");
    let started = Instant::now();
    let (status, body) = edge
        .get_streamed(&token, "/member/export?member_id=7")
        .await;
    assert_eq!(status, 200);
    assert!(body.is_err(), "a cut stream must not look complete");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1200) && took < Duration::from_secs(5),
        "{took:?}"
    );
    // The one instance is free again.
    edge.core
        .answer_streaming(1, Duration::from_millis(1), StreamEnd::Complete);
    let (status, body) = edge
        .get_streamed(&token, "/member/export?member_id=7")
        .await;
    assert_eq!(status, 200);
    assert_eq!(body.unwrap().len(), helpers::CHUNK);
}

/// A client that takes the head of a large answer and then stops reading is cut the request time
/// limit after the last chunk it took, and frees its instance for the next client.
#[tokio::test]
async fn a_client_that_stops_reading_is_cut_and_frees_its_instance() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut options = Options::on(Backend::InProcess).host(|config| {
        config.max_concurrent_requests = 1;
        config.permit_wait = Duration::from_millis(100);
    });
    options.request_timeout = Duration::from_secs(1);
    let edge = TestEdge::start_with(options).await;
    // 64 MiB as fast as it goes: far more than the socket buffers between core, edge and client.
    edge.core
        .answer_streaming(64 * 1024, Duration::ZERO, StreamEnd::Complete);
    let token = edge.signer.token(7, "s");
    let mut reader = tokio::net::TcpStream::connect(edge.addr).await.unwrap();
    let request = format!(
        "GET /member/export?member_id=7 HTTP/1.1\r\nhost: api.example.com\r\nauthorization: Bearer {token}\r\n\r\n"
    );
    reader.write_all(request.as_bytes()).await.unwrap();
    let mut head = [0u8; 16];
    reader.read_exact(&mut head).await.unwrap();
    assert!(head.starts_with(b"HTTP/1.1 200"), "{head:?}");
    // The client reads nothing more. Within a few seconds its instance is free again.
    let started = Instant::now();
    let mut refused = 0;
    let freed = loop {
        edge.core
            .answer_streaming(1, Duration::from_millis(1), StreamEnd::Complete);
        let (status, body) = edge
            .get_streamed(&token, "/member/export?member_id=7")
            .await;
        if status == 200 {
            assert_eq!(body.unwrap().len(), helpers::CHUNK);
            break started.elapsed();
        }
        assert_eq!(status, 503, "busy while the slow reader holds the instance");
        refused += 1;
        assert!(started.elapsed() < Duration::from_secs(10), "never freed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(refused > 0, "the slow reader never held the instance");
    assert!(freed >= Duration::from_millis(500), "{freed:?}");
    drop(reader);
}

/// A core whose answer breaks off mid-stream: the client sees it break off too, never a
/// truncated answer that looks whole.
#[tokio::test]
async fn a_core_answer_that_breaks_off_breaks_off_for_the_client() {
    let (status, body, _) = export_through(|_| {}, 3, 10, StreamEnd::Break).await;
    assert_eq!(status, 200);
    assert!(body.is_err(), "a broken answer must not look complete");
}

/// With no long-stream slot free, a moving stream ends at the request time limit.
#[tokio::test]
async fn without_a_long_stream_slot_a_stream_ends_at_the_request_time_limit() {
    let no_slot = |config: &mut HostConfig| config.max_long_streams = 0;
    let (status, body, took) = export_through(no_slot, 15, 200, StreamEnd::Complete).await;
    assert_eq!(status, 200);
    assert!(body.is_err());
    assert!(took < Duration::from_millis(2500), "{took:?}");
}

/// However it moves, a stream ends at the stream time limit.
#[tokio::test]
async fn a_stream_ends_at_the_stream_time_limit() {
    let two_seconds = |config: &mut HostConfig| config.stream_timeout = Duration::from_secs(2);
    // 10 s of chunks, one every 100 ms.
    let (status, body, took) = export_through(two_seconds, 100, 100, StreamEnd::Complete).await;
    assert_eq!(status, 200);
    assert!(body.is_err());
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(6),
        "{took:?}"
    );
}

#[tokio::test]
async fn missing_configuration_is_global_503() {
    let edge = TestEdge::start_with(Options::on(Backend::InProcess).var("jwks", "not json")).await;
    let token = edge.signer.token(1, "s");
    edge.get_as(&token, "/member/profile?member_id=1")
        .await
        .assert_error(503, "GLOBAL_503");
}

#[tokio::test]
async fn compiled_component_is_cached_on_disk() {
    let _edge = TestEdge::start(Backend::InProcess).await;
    let cached = std::fs::read_dir(helpers::compile_cache_dir())
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().ends_with(".cwasm"));
    assert!(cached);
}
