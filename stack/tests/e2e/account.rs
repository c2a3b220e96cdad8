//! Extensions (2026-12) through the edge: a password reset or change refuses the old tokens at
//! the edge right after the answer (cached feed pages included); the data export streams through.

use std::io::Read as _;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{Member, TestStack};

/// The code of the newest reset mail to `email`, waiting for it (it is sent in the background).
async fn reset_code_for(stack: &TestStack, email: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = stack.mails_to(email).iter().rev().find_map(|mail| {
            let marker = "Your password reset code is: ";
            let start = mail.find(marker)? + marker.len();
            Some(mail[start..start + 8].to_owned())
        });
        if let Some(code) = found {
            return code;
        }
        assert!(Instant::now() < deadline, "no reset mail to {email}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Warms the edge's feed cache for `member`: a cached page must not let a revoked token through.
async fn warm_feed(stack: &TestStack, member: &Member) -> String {
    let feed = format!("/post/posts?member_id={}&page=0&size=10", member.id);
    assert_eq!(stack.get_as(member, &feed).await.status, 200);
    assert_eq!(stack.get_as(member, &feed).await.cache(), Some("hit"));
    feed
}

#[tokio::test]
async fn a_password_reset_refuses_every_old_token_at_the_edge_at_once() {
    let stack = TestStack::start().await;
    let phone = stack.member("reset-edge").await;
    let tablet = stack.session(phone.id, &phone.email).await;
    let feed = warm_feed(&stack, &phone).await;
    warm_feed(&stack, &tablet).await;

    let sent = stack
        .post_json("/auth/passwordResetCode", json!({ "email": phone.email }))
        .await;
    assert_eq!(sent.status, 200, "{}", sent.text());
    let code = reset_code_for(&stack, &phone.email).await;
    let reset = stack
        .post_json(
            "/auth/resetPassword",
            json!({ "email": phone.email, "verification_code": code, "new_password": "brand-new-pass-9" }),
        )
        .await;
    assert_eq!(reset.status, 200, "{}", reset.text());

    for member in [&phone, &tablet] {
        stack
            .with_token("GET", "/auth/verifyAccessToken", &member.access_token)
            .await
            .assert_error("GLOBAL_103");
        stack.get_as(member, &feed).await.assert_error("GLOBAL_103");
        stack
            .reissue(json!(member.id), &member.refresh_token)
            .await
            .assert_error("AUTH_007");
    }
    let login = stack
        .post_json(
            "/auth/login",
            json!({ "email": phone.email, "password": "brand-new-pass-9" }),
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.text());
}

#[tokio::test]
async fn a_password_change_refuses_the_other_sessions_at_the_edge_at_once() {
    let stack = TestStack::start().await;
    let phone = stack.member("change-edge").await;
    let tablet = stack.session(phone.id, &phone.email).await;
    let feed = warm_feed(&stack, &tablet).await;
    let changed = stack
        .post_json_as(
            &phone,
            "/auth/changePassword",
            json!({ "member_id": phone.id, "current_password": crate::helpers::PASSWORD, "new_password": "brand-new-pass-9" }),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text());
    stack
        .get_as(&tablet, &feed)
        .await
        .assert_error("GLOBAL_103");
    assert_eq!(
        stack
            .with_token("GET", "/auth/verifyAccessToken", &phone.access_token)
            .await
            .status,
        200
    );
    // The edge checks the token of changePassword itself.
    stack
        .with_token("POST", "/auth/changePassword", "not-a-token")
        .await
        .assert_error("GLOBAL_103");
}

#[tokio::test]
async fn the_data_export_streams_through_the_edge() {
    let stack = TestStack::start().await;
    // The second export is refused by its rate limit: one window for the whole test.
    stack.state.clock.freeze();
    let member = stack.member("export-edge").await;
    let posted = stack
        .register_post(
            &member,
            "with a picture",
            &[heart_testkit::fixtures::png(6, 6)],
        )
        .await;
    assert_eq!(posted.status, 201, "{}", posted.text());
    let answer = stack
        .get_as(&member, &format!("/member/export?member_id={}", member.id))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.header("content-type"), Some("application/zip"));
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(answer.body.to_vec())).expect("zip");
    let mut posts = String::new();
    zip.by_name("posts.json")
        .expect("posts.json")
        .read_to_string(&mut posts)
        .expect("read");
    let posts: Value = serde_json::from_str(&posts).expect("JSON");
    let image = posts[0]["images"][0]
        .as_str()
        .expect("an image name")
        .to_owned();
    let mut bytes = Vec::new();
    zip.by_name(&image)
        .expect("the image")
        .read_to_end(&mut bytes)
        .expect("read");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    stack
        .get_as(&member, &format!("/member/export?member_id={}", member.id))
        .await
        .assert_error("GLOBAL_106");
}
