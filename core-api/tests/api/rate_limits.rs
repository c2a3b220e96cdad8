//! Rate limits: per IP and per email on the auth endpoints, `429` `GLOBAL_106` with `Retry-After`.
//!
//! The tests that count requests freeze the clock first: windows are fixed (aligned to the
//! epoch), and a burst that crossed a window's end in real time would be counted in two.

use axum::http::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[track_caller]
fn assert_rate_limited(response: &TestResponse) {
    assert_code(response, "GLOBAL_106");
    let retry: u64 = response
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=3600).contains(&retry), "Retry-After {retry}");
}

#[tokio::test]
async fn verification_sends_are_limited_per_email() {
    let app =
        TestApp::spawn_with(&[("HEART_RATE_LIMIT_VERIFICATION_SEND_PER_EMAIL", "2/600")]).await;
    app.clock.freeze();
    let email = unique_email("limit");
    assert_eq!(app.send_code(&email).await.status, StatusCode::ACCEPTED);
    assert_eq!(app.send_code(&email).await.status, StatusCode::ACCEPTED);
    assert_rate_limited(&app.send_code(&email).await);
    // Another email is not affected, and no third mail went out.
    assert_eq!(
        app.send_code(&unique_email("other")).await.status,
        StatusCode::ACCEPTED
    );
    assert_eq!(app.mails_to(&email).len(), 2);
}

#[tokio::test]
async fn verification_sends_are_limited_per_ip() {
    let app = TestApp::spawn_with(&[("HEART_RATE_LIMIT_VERIFICATION_SEND_PER_IP", "2/600")]).await;
    app.clock.freeze();
    for _ in 0..2 {
        let r = app
            .post_json_from(
                [10, 0, 0, 1],
                "/auth/emailVerificationCode",
                json!({ "email": unique_email("ip") }),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
    }
    assert_rate_limited(
        &app.post_json_from(
            [10, 0, 0, 1],
            "/auth/emailVerificationCode",
            json!({ "email": unique_email("ip") }),
        )
        .await,
    );
    let other_ip = app
        .post_json_from(
            [10, 0, 0, 2],
            "/auth/emailVerificationCode",
            json!({ "email": unique_email("ip") }),
        )
        .await;
    assert_eq!(other_ip.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn wrong_codes_are_limited_per_email() {
    let app = TestApp::spawn_with(&[("HEART_RATE_LIMIT_CONFIRM_PER_EMAIL", "3/600")]).await;
    app.clock.freeze();
    let email = unique_email("guess");
    app.send_code(&email).await;
    for _ in 0..3 {
        assert_code(&app.confirm(&email, "00000000").await, "AUTH_003");
    }
    assert_rate_limited(&app.confirm(&email, &app.last_code_for(&email)).await);
}

#[tokio::test]
async fn confirmations_are_limited_per_ip() {
    let app = TestApp::spawn_with(&[("HEART_RATE_LIMIT_CONFIRM_PER_IP", "1/600")]).await;
    app.clock.freeze();
    let body = json!({ "email": unique_email("c"), "verification_code": "00000000" });
    assert_code(
        &app.post_json_from([10, 1, 0, 1], "/auth/confirmVerificationCode", body.clone())
            .await,
        "AUTH_002",
    );
    assert_rate_limited(
        &app.post_json_from([10, 1, 0, 1], "/auth/confirmVerificationCode", body)
            .await,
    );
}

#[tokio::test]
async fn joins_are_limited_per_ip() {
    let app = TestApp::spawn_with(&[("HEART_RATE_LIMIT_JOIN_PER_IP", "1/3600")]).await;
    app.clock.freeze();
    let body =
        |e: String| json!({ "email": e, "name": "n", "nickname": "k", "password": PASSWORD });
    assert_code(
        &app.post_json_from([10, 2, 0, 1], "/auth/join", body(unique_email("j")))
            .await,
        "AUTH_012",
    );
    assert_rate_limited(
        &app.post_json_from([10, 2, 0, 1], "/auth/join", body(unique_email("j")))
            .await,
    );
}

#[tokio::test]
async fn logins_are_limited_per_ip_and_email_pair_without_locking_the_owner_out() {
    let app = TestApp::spawn_with(&[("HEART_RATE_LIMIT_LOGIN_PER_EMAIL", "3/300")]).await;
    app.clock.freeze();
    let email = unique_email("victim");
    app.sign_up(&email, PASSWORD).await;
    let login_from = |ip: [u8; 4], password: &'static str| {
        let email = email.clone();
        let app = &app;
        async move {
            app.post_json_from(
                ip,
                "/auth/login",
                json!({ "email": email, "password": password }),
            )
            .await
        }
    };
    // One address guessing: three guesses, then it waits, even with the right password.
    for _ in 0..3 {
        assert_code(&login_from([10, 3, 0, 1], "guess-1234").await, "AUTH_006");
    }
    assert_rate_limited(&login_from([10, 3, 0, 1], PASSWORD).await);
    // Guesses from other addresses do not lock the owner out (issue 12)...
    for i in 2..9u8 {
        assert_code(&login_from([10, 3, 0, i], "guess-1234").await, "AUTH_006");
    }
    assert_eq!(
        login_from([10, 3, 1, 1], PASSWORD).await.status,
        StatusCode::OK
    );
    // ...but every address together gets ten times the pair's limit on one email.
    let factor = heart_core::auth::service::LOGIN_EMAIL_FACTOR;
    let mut answered = 0;
    for i in 0..(3 * factor) {
        let ip = [
            10,
            4,
            u8::try_from(i / 200).unwrap(),
            u8::try_from(i % 200).unwrap(),
        ];
        if login_from(ip, "guess-1234").await.status == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
        answered += 1;
    }
    // 3 + 7 + 1 hits came before; the wide counter allows 3 * factor in all.
    assert_eq!(answered, 3 * factor - 11);
}

#[tokio::test]
async fn logins_are_limited_per_ip_and_the_window_passes() {
    let app = TestApp::spawn_with(&[("HEART_RATE_LIMIT_LOGIN_PER_IP", "2/60")]).await;
    app.clock.freeze();
    let ip = [10, 4, 0, 1];
    for _ in 0..2 {
        assert_code(
            &app.post_json_from(
                ip,
                "/auth/login",
                json!({ "email": unique_email("x"), "password": "p" }),
            )
            .await,
            "AUTH_006",
        );
    }
    let limited = app
        .post_json_from(
            ip,
            "/auth/login",
            json!({ "email": unique_email("x"), "password": "p" }),
        )
        .await;
    assert_rate_limited(&limited);
    let retry: i64 = limited.header("retry-after").unwrap().parse().unwrap();
    app.clock.advance(retry);
    assert_code(
        &app.post_json_from(
            ip,
            "/auth/login",
            json!({ "email": unique_email("x"), "password": "p" }),
        )
        .await,
        "AUTH_006",
    );
}

#[tokio::test]
async fn reissues_are_limited_per_member() {
    let app = TestApp::spawn_with(&[("HEART_RATE_LIMIT_REISSUE_PER_MEMBER", "1/60")]).await;
    app.clock.freeze();
    let member = app.member("re").await;
    let first = app.reissue(json!(member.id), &member.refresh_token).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_rate_limited(
        &app.reissue(
            json!(member.id),
            first.json()["refresh_token"].as_str().unwrap(),
        )
        .await,
    );
}

#[tokio::test]
async fn reissues_are_limited_per_ip() {
    let app = TestApp::spawn_with(&[("HEART_RATE_LIMIT_REISSUE_PER_IP", "1/60")]).await;
    app.clock.freeze();
    assert_code(
        &app.post_json_from(
            [10, 5, 0, 1],
            "/auth/reissueToken",
            json!({ "member_id": 1, "refresh_token": "x" }),
        )
        .await,
        "AUTH_007",
    );
    assert_rate_limited(
        &app.post_json_from(
            [10, 5, 0, 1],
            "/auth/reissueToken",
            json!({ "member_id": 2, "refresh_token": "y" }),
        )
        .await,
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_ip_is_limited() {
    let app = TestApp::spawn_with(&[
        ("HEART_TRUSTED_PROXY_HOPS", "1"),
        ("HEART_RATE_LIMIT_LOGIN_PER_IP", "1/60"),
    ])
    .await;
    app.clock.freeze();
    let login = |forwarded: &'static str| {
        axum::http::Request::post("/auth/login")
            .header("content-type", "application/json")
            .header("x-forwarded-for", forwarded)
            .body(axum::body::Body::from(
                json!({ "email": "a@b.co", "password": "p" }).to_string(),
            ))
            .unwrap()
    };
    // The proxy appends the real client; whatever the client wrote before it is ignored.
    assert_code(&app.send(login("1.1.1.1, 203.0.113.7")).await, "AUTH_006");
    assert_rate_limited(&app.send(login("2.2.2.2, 203.0.113.7")).await);
    assert_code(&app.send(login("203.0.113.8")).await, "AUTH_006");
}

#[tokio::test]
async fn limits_can_be_switched_off() {
    let app = TestApp::spawn_with(&[
        ("HEART_RATE_LIMITS_ENABLED", "false"),
        ("HEART_RATE_LIMIT_LOGIN_PER_IP", "1/60"),
    ])
    .await;
    for _ in 0..3 {
        assert_code(&app.login(&unique_email("off"), "p").await, "AUTH_006");
    }
}
