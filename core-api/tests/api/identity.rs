//! Identity comes from the token: member B's token against every endpoint that names member A or
//! A's posts answers `GLOBAL_105`, and nothing changes.

use axum::http::StatusCode;
use serde_json::json;

use crate::fixtures;
use crate::helpers::*;

async fn snapshot(app: &TestApp) -> Vec<i64> {
    let mut counts = Vec::new();
    for table in [
        "members",
        "posts",
        "post_images",
        "blocks",
        "follows",
        "reports",
        "sessions",
    ] {
        counts.push(app.count(table).await);
    }
    counts.push(app.stored_objects().await.len() as i64);
    counts
}

#[tokio::test]
async fn member_b_cannot_act_as_member_a_anywhere() {
    let app = TestApp::spawn().await;
    let (a, b, c) = (
        app.member("a").await,
        app.member("b").await,
        app.member("c").await,
    );
    let post = app
        .register_post(&a, "a's post", &[fixtures::png(3, 3)])
        .await
        .json();
    let post_id = post["post_id"].as_i64().unwrap();
    let as_a = json!({ "member_id": a.id, "target_id": c.id });
    let as_a_string = json!({ "member_id": a.id.to_string(), "target_id": c.id });
    let before = snapshot(&app).await;

    let attempts = vec![
        (
            "block",
            app.post_json_as(&b, "/member/block", as_a.clone()).await,
        ),
        (
            "block (string id)",
            app.post_json_as(&b, "/member/block", as_a_string).await,
        ),
        (
            "unblock",
            app.post_json_as(&b, "/member/unblock", as_a.clone()).await,
        ),
        (
            "report",
            app.post_json_as(&b, "/member/report", as_a.clone()).await,
        ),
        (
            "follow",
            app.post_json_as(&b, "/member/follow", as_a.clone()).await,
        ),
        (
            "unfollow",
            app.post_json_as(&b, "/member/unfollow", as_a.clone()).await,
        ),
        (
            "blocking list",
            app.get_as(
                &b,
                &format!("/member/getBlockingMembers?member_id={}", a.id),
            )
            .await,
        ),
        (
            "home feed",
            app.get_as(
                &b,
                &format!("/post/posts?member_id={}&page=0&size=10", a.id),
            )
            .await,
        ),
        (
            "following feed",
            app.get_as(
                &b,
                &format!("/post/following?member_id={}&page=0&size=10", a.id),
            )
            .await,
        ),
        (
            "delete account",
            app.delete_as(&b, &format!("/member/delete/{}", a.id)).await,
        ),
        (
            "delete post",
            app.delete_as(&b, &format!("/post/delete/{post_id}")).await,
        ),
        (
            "avatar",
            app.multipart_as(
                &b,
                "/member/uploadAvatar",
                &[
                    Part::text("member_id", &a.id.to_string()),
                    Part::file("file", "x.png", fixtures::png(2, 2)),
                ],
            )
            .await,
        ),
        (
            "post",
            app.register_post(
                &TestMember {
                    id: a.id,
                    ..b.clone()
                },
                "as a",
                &[fixtures::png(2, 2)],
            )
            .await,
        ),
    ];
    for (what, response) in &attempts {
        assert_eq!(
            response.status,
            StatusCode::FORBIDDEN,
            "{what}: {}",
            response.text()
        );
        assert_code(response, "GLOBAL_105");
    }
    assert_eq!(snapshot(&app).await, before, "nothing changed");
    assert_eq!(
        app.verify_token(&a.access_token).await.status,
        StatusCode::OK,
        "a's session untouched"
    );
}

#[tokio::test]
async fn every_member_and_post_endpoint_needs_a_token() {
    let app = TestApp::spawn().await;
    for (method, path) in [
        ("POST", "/member/uploadAvatar"),
        ("GET", "/member/profile?member_id=1"),
        ("POST", "/member/block"),
        ("POST", "/member/unblock"),
        ("GET", "/member/getBlockingMembers?member_id=1"),
        ("POST", "/member/report"),
        ("DELETE", "/member/delete/1"),
        ("POST", "/member/follow"),
        ("POST", "/member/unfollow"),
        ("GET", "/member/followers?member_id=1"),
        ("GET", "/member/followings?member_id=1"),
        ("POST", "/post/registerPost"),
        ("GET", "/post/posts?member_id=1&page=0&size=10"),
        ("GET", "/post/posts/1?page=0&size=10"),
        ("GET", "/post/following?member_id=1"),
        ("DELETE", "/post/delete/1"),
        ("GET", "/admin/reports"),
    ] {
        let request = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .body(axum::body::Body::empty())
            .unwrap();
        assert_code(&app.send(request).await, "GLOBAL_103");
    }
}
