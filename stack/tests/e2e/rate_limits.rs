//! Rate limits through the edge: the edge's own (per member, per client address) and the core's.
//! Each test freezes the stack's clock (the core's, which the edge component reads too): windows
//! are fixed to the epoch, so a test that ran across the end of one would have its requests
//! counted in two.

use serde_json::json;

use crate::helpers::{Answer, Setup, TestStack};

#[track_caller]
fn assert_limited(answer: &Answer, max_retry_after: u64) {
    answer.assert_error("GLOBAL_106");
    let retry_after: u64 = answer
        .header("retry-after")
        .unwrap_or_else(|| panic!("no Retry-After on {}", answer.text()))
        .parse()
        .expect("Retry-After in seconds");
    assert!(
        (1..=max_retry_after).contains(&retry_after),
        "Retry-After {retry_after}"
    );
}

#[tokio::test]
async fn the_edge_limits_each_member() {
    let stack =
        TestStack::start_with(Setup::default().edge("rate_limit_edge_requests_per_member", "3/1h"))
            .await;
    stack.state.clock.freeze();
    let busy = stack.member("busy").await;
    let calm = stack.member("calm").await;
    let profile = format!("/member/profile?member_id={}", busy.id);
    let feed = format!("/post/posts/{}?page=0&size=10", busy.id);

    // Three authenticated requests, of any kind (a cache hit counts too), then 429.
    assert_eq!(stack.get_as(&busy, &profile).await.status, 200);
    assert_eq!(stack.get_as(&busy, &feed).await.status, 200);
    let hit = stack.get_as(&busy, &feed).await;
    assert_eq!((hit.status, hit.cache()), (200, Some("hit")));
    assert_limited(&stack.get_as(&busy, &profile).await, 3600);
    assert_limited(&stack.get_as(&busy, &feed).await, 3600);
    // The limit is per member, not per session: a second login does not reset it.
    let busy_again = stack.session(busy.id, &busy.email).await;
    assert_limited(&stack.get_as(&busy_again, &profile).await, 3600);

    // Other members, and public routes of the same client, are not affected.
    assert_eq!(stack.get_as(&calm, &profile).await.status, 200);
    assert_eq!(stack.login(&busy.email).await.status, 200);

    // The edge reads the stack's one clock: an hour on, its tokens have expired and its window
    // has turned, so the member is let in again with a new session.
    stack.state.clock.advance(3600);
    let refused = stack.get_as(&busy, &profile).await;
    assert_eq!(refused.status, 401, "{}", refused.text());
    refused.assert_error("GLOBAL_104");
    let next_hour = stack.session(busy.id, &busy.email).await;
    assert_eq!(stack.get_as(&next_hour, &profile).await.status, 200);
}

#[tokio::test]
async fn the_edge_limits_each_client_address() {
    let stack =
        TestStack::start_with(Setup::default().edge("rate_limit_edge_requests_per_ip", "4/1h"))
            .await;
    stack.state.clock.freeze();
    let wrong_login = json!({ "email": "nobody@example.com", "password": "wrong-pass-1" });
    for _ in 0..4 {
        stack
            .post_json("/auth/login", wrong_login.clone())
            .await
            .assert_error("AUTH_006");
    }
    assert_limited(
        &stack.post_json("/auth/login", wrong_login.clone()).await,
        3600,
    );
    assert_limited(&stack.get("/no/such/route").await, 3600);
    // X-Forwarded-For from the client is not trusted (no proxy in front): no way around it.
    let spoofed = stack
        .send(
            "GET",
            "/no/such/route",
            &[("x-forwarded-for", "203.0.113.9")],
            "",
        )
        .await;
    assert_limited(&spoofed, 3600);
    // The edge's own health answer is not limited.
    assert_eq!(stack.get("/healthz").await.status, 200);
}

#[tokio::test]
async fn the_cores_limits_pass_through_the_edge() {
    let stack =
        TestStack::start_with(Setup::default().core("HEART_RATE_LIMIT_LOGIN_PER_EMAIL", "2/1h"))
            .await;
    stack.state.clock.freeze();
    let member = stack.member("guessed").await;
    let wrong = json!({ "email": member.email, "password": "wrong-pass-1" });
    // The member() helper logged in once already.
    stack
        .post_json("/auth/login", wrong.clone())
        .await
        .assert_error("AUTH_006");
    assert_limited(&stack.post_json("/auth/login", wrong).await, 3600);
}
