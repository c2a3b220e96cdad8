//! The core's side of the edge contract: the feed version the edge keys cached pages by, and the
//! identity headers the core trusts only with the edge's secret.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use heart_shared::edge::{
    CLIENT_IP_HEADER, EDGE_SECRET_HEADER, MEMBER_ID_HEADER, REVOCATION_CHECKED_HEADER,
    SESSION_ID_HEADER,
};
use serde_json::json;

use crate::fixtures;
use crate::helpers::*;

const SECRET: &str = "an-edge-secret-of-at-least-32-characters";

#[track_caller]
fn assert_bumped(last: &mut i64, what: &str, now: i64) {
    assert!(
        now > *last,
        "{what} must bump the feed version ({last} → {now})"
    );
    *last = now;
}

async fn version(app: &TestApp) -> i64 {
    app.state.feed_version.current().await.unwrap()
}

#[tokio::test]
async fn every_write_that_changes_a_feed_bumps_the_version_and_reads_do_not() {
    let app = TestApp::spawn().await;
    let (kim, lee) = (app.member("kim").await, app.member("lee").await);
    let pair = json!({ "member_id": kim.id, "target_id": lee.id });
    let mut last = version(&app).await;
    let post = app.register_post(&kim, "new", &[]).await.json();
    assert_bumped(&mut last, "a new post", version(&app).await);
    app.delete_as(&kim, &format!("/post/delete/{}", post["post_id"]))
        .await;
    assert_bumped(&mut last, "a deleted post", version(&app).await);
    app.post_json_as(&kim, "/member/follow", pair.clone()).await;
    assert_bumped(&mut last, "follow", version(&app).await);
    app.post_json_as(&kim, "/member/unfollow", pair.clone())
        .await;
    assert_bumped(&mut last, "unfollow", version(&app).await);
    app.post_json_as(&kim, "/member/block", pair.clone()).await;
    assert_bumped(&mut last, "block", version(&app).await);
    app.post_json_as(&kim, "/member/unblock", pair.clone())
        .await;
    assert_bumped(&mut last, "unblock", version(&app).await);
    app.multipart_as(
        &kim,
        "/member/uploadAvatar",
        &[
            Part::text("member_id", &kim.id.to_string()),
            Part::file("file", "a.png", fixtures::png(2, 2)),
        ],
    )
    .await;
    assert_bumped(&mut last, "a new avatar", version(&app).await);

    app.get_as(
        &kim,
        &format!("/post/posts?member_id={}&page=0&size=10", kim.id),
    )
    .await;
    app.get_as(&kim, &format!("/member/profile?member_id={}", lee.id))
        .await;
    assert_eq!(version(&app).await, last, "reads change nothing");

    app.delete_as(&lee, &format!("/member/delete/{}", lee.id))
        .await;
    assert_bumped(&mut last, "a deleted account", version(&app).await);
}

fn from_edge(path: &str, secret: &str, member_id: i64, session_id: &str) -> Request<Body> {
    Request::get(path)
        .header(EDGE_SECRET_HEADER, secret)
        .header(MEMBER_ID_HEADER, member_id.to_string())
        .header(SESSION_ID_HEADER, session_id)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn identity_headers_are_trusted_only_with_the_edge_secret() {
    let app = TestApp::spawn_with(&[("HEART_EDGE_SECRET", SECRET)]).await;
    let kim = app.member("kim").await;
    let sid = app
        .state
        .tokens
        .verifier()
        .verify(&kim.access_token, app.clock.now())
        .unwrap()
        .sid;
    let path = "/auth/verifyAccessToken";
    assert_eq!(
        app.send(from_edge(path, SECRET, kim.id, &sid)).await.status,
        StatusCode::OK
    );
    assert_code(
        &app.send(from_edge(
            path,
            "a-wrong-secret-of-at-least-32-characters",
            kim.id,
            &sid,
        ))
        .await,
        "GLOBAL_103",
    );
    let no_secret = Request::get(path)
        .header(MEMBER_ID_HEADER, kim.id.to_string())
        .header(SESSION_ID_HEADER, &sid)
        .body(Body::empty())
        .unwrap();
    assert_code(&app.send(no_secret).await, "GLOBAL_103");
    // The core still refuses a revoked session the edge vouches for…
    app.logout(&kim.access_token).await;
    assert_code(
        &app.send(from_edge(path, SECRET, kim.id, &sid)).await,
        "GLOBAL_103",
    );
    // …unless the edge says its gate checked the revocation (one Redis round trip per request):
    // then the core takes the edge's word, and only the edge's.
    let mut checked = from_edge(path, SECRET, kim.id, &sid);
    checked
        .headers_mut()
        .insert(REVOCATION_CHECKED_HEADER, "1".parse().unwrap());
    assert_eq!(app.send(checked).await.status, StatusCode::OK);
    let mut forged = from_edge(
        path,
        "a-wrong-secret-of-at-least-32-characters",
        kim.id,
        &sid,
    );
    forged
        .headers_mut()
        .insert(REVOCATION_CHECKED_HEADER, "1".parse().unwrap());
    assert_code(&app.send(forged).await, "GLOBAL_103");
}

#[tokio::test]
async fn without_a_configured_secret_identity_headers_are_ignored() {
    let app = TestApp::spawn().await;
    let kim = app.member("kim").await;
    let sid = app
        .state
        .tokens
        .verifier()
        .verify(&kim.access_token, app.clock.now())
        .unwrap()
        .sid;
    assert_code(
        &app.send(from_edge("/auth/verifyAccessToken", "", kim.id, &sid))
            .await,
        "GLOBAL_103",
    );
}

#[tokio::test]
async fn the_edge_client_address_counts_for_rate_limits_only_with_the_secret() {
    let app = TestApp::spawn_with(&[
        ("HEART_EDGE_SECRET", SECRET),
        ("HEART_RATE_LIMIT_LOGIN_PER_IP", "1/60"),
    ])
    .await;
    // One rate-limit window for the whole test (windows are fixed to the epoch).
    app.clock.freeze();
    let login = |ip: &str, secret: &str| {
        Request::post("/auth/login")
            .header("content-type", "application/json")
            .header(EDGE_SECRET_HEADER, secret)
            .header(CLIENT_IP_HEADER, ip)
            .body(Body::from(
                json!({ "email": "a@b.co", "password": "p" }).to_string(),
            ))
            .unwrap()
    };
    assert_code(&app.send(login("198.51.100.1", SECRET)).await, "AUTH_006");
    assert_code(&app.send(login("198.51.100.2", SECRET)).await, "AUTH_006");
    assert_code(&app.send(login("198.51.100.1", SECRET)).await, "GLOBAL_106");
    // Without the secret the header is the client's own word: the peer address counts.
    assert_code(&app.send(login("198.51.100.9", "wrong")).await, "AUTH_006");
    assert_code(
        &app.send(login("198.51.100.10", "wrong")).await,
        "GLOBAL_106",
    );
}

#[tokio::test]
async fn a_short_edge_secret_is_refused_at_startup() {
    let mut vars = std::collections::HashMap::new();
    vars.insert("HEART_EDGE_SECRET".to_owned(), "short".to_owned());
    let err = heart_core::Config::from_vars(&vars)
        .unwrap_err()
        .to_string();
    assert!(err.contains("HEART_EDGE_SECRET"), "{err}");
}
