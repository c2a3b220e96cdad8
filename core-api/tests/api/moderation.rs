//! Moderation: suspending members and resolving reports (`/admin/…`), as the contract's
//! "Extensions (2026-12)" says, on the embedded or the real backends.

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

/// Gives `member` the ADMIN role, as `heart-core admin grant` does.
pub async fn make_admin(app: &TestApp, member: &TestMember) {
    heart_core::member::repo::set_role(&app.state.db, &member.email, "ADMIN")
        .await
        .unwrap();
}

fn contents(page: &Value) -> Vec<String> {
    page["posts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["content"].as_str().unwrap().to_owned())
        .collect()
}

async fn feeds(app: &TestApp, viewer: &TestMember, writer: i64) -> [Vec<String>; 3] {
    let home = app
        .get_as(viewer, &format!("/post/posts?member_id={}", viewer.id))
        .await;
    assert_eq!(home.status, StatusCode::OK, "{}", home.text());
    let following = app
        .get_as(viewer, &format!("/post/following?member_id={}", viewer.id))
        .await;
    assert_eq!(following.status, StatusCode::OK, "{}", following.text());
    let own = app.get_as(viewer, &format!("/post/posts/{writer}")).await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text());
    [
        contents(&home.json()),
        contents(&following.json()),
        contents(&own.json()),
    ]
}

#[tokio::test]
async fn a_suspended_member_is_signed_out_refused_and_hidden_until_unsuspended() {
    let app = TestApp::spawn().await;
    let (admin, lee, kim) = (
        app.member("admin").await,
        app.member("lee").await,
        app.member("kim").await,
    );
    make_admin(&app, &admin).await;
    let follow = app
        .post_json_as(
            &kim,
            "/member/follow",
            json!({ "member_id": kim.id, "target_id": lee.id }),
        )
        .await;
    assert_eq!(follow.status, StatusCode::OK, "{}", follow.text());
    app.register_post(&lee, "spam", &[]).await;
    app.register_post(&kim, "hello", &[]).await;
    let second_phone = app.login(&lee.email, PASSWORD).await.json();
    assert_eq!(
        feeds(&app, &kim, lee.id).await,
        [vec!["hello", "spam"], vec!["hello", "spam"], vec!["spam"]]
    );

    let suspended = app
        .post_json_as(
            &admin,
            &format!("/admin/members/{}/suspend", lee.id),
            json!({ "reason": "spam" }),
        )
        .await;
    assert_eq!(suspended.status, StatusCode::OK, "{}", suspended.text());
    let body = suspended.json();
    assert_eq!(body["member_id"], lee.id);
    assert_eq!(body["suspended"], true);
    assert_eq!(body["reason"], "spam");
    assert_eq!(body["suspended_at"].as_str().unwrap().len(), 19);

    // Every session of theirs is revoked at once: access and refresh tokens.
    assert_code(&app.verify_token(&lee.access_token).await, "GLOBAL_103");
    assert_code(
        &app.verify_token(second_phone["access_token"].as_str().unwrap())
            .await,
        "GLOBAL_103",
    );
    assert_code(
        &app.reissue(json!(lee.id), &lee.refresh_token).await,
        "AUTH_007",
    );
    // Login is refused with AUTH_013 (only with the right password: a wrong one stays AUTH_006).
    let login = app.login(&lee.email, PASSWORD).await;
    assert_eq!(login.status, StatusCode::FORBIDDEN);
    assert_code(&login, "AUTH_013");
    assert_code(&app.login(&lee.email, "wrong-password-1").await, "AUTH_006");
    // Their posts are out of every feed, and their profile is hidden.
    assert_eq!(
        feeds(&app, &kim, lee.id).await,
        [vec!["hello"], vec!["hello"], Vec::<&str>::new()]
    );
    assert_code(
        &app.get_as(&kim, &format!("/member/profile?member_id={}", lee.id))
            .await,
        "MEMBER_005",
    );
    // Suspending again keeps the first suspension.
    let again = app
        .post_json_as(
            &admin,
            &format!("/admin/members/{}/suspend", lee.id),
            json!({ "reason": "other" }),
        )
        .await;
    assert_eq!(again.json()["reason"], "spam");

    let lifted = app
        .post_json_as(
            &admin,
            &format!("/admin/members/{}/unsuspend", lee.id),
            json!({}),
        )
        .await;
    assert_eq!(lifted.status, StatusCode::OK, "{}", lifted.text());
    assert_eq!(
        lifted.json(),
        json!({ "member_id": lee.id, "suspended": false, "reason": null, "suspended_at": null })
    );
    assert_eq!(app.login(&lee.email, PASSWORD).await.status, StatusCode::OK);
    assert_eq!(
        feeds(&app, &kim, lee.id).await,
        [vec!["hello", "spam"], vec!["hello", "spam"], vec!["spam"]]
    );
    let profile = app
        .get_as(&kim, &format!("/member/profile?member_id={}", lee.id))
        .await;
    assert_eq!(profile.status, StatusCode::OK);
    // The old sessions stay revoked.
    assert_code(&app.verify_token(&lee.access_token).await, "GLOBAL_103");
}

#[tokio::test]
async fn only_admins_moderate_and_bad_requests_say_why() {
    let app = TestApp::spawn().await;
    let (admin, lee) = (app.member("admin").await, app.member("lee").await);
    for (path, body) in [
        (
            format!("/admin/members/{}/suspend", admin.id),
            json!({ "reason": "x" }),
        ),
        (format!("/admin/members/{}/unsuspend", admin.id), json!({})),
        (
            "/admin/reports/1/resolve".to_owned(),
            json!({ "action": "dismiss" }),
        ),
    ] {
        assert_code(&app.post_json_as(&lee, &path, body).await, "GLOBAL_105");
    }
    make_admin(&app, &admin).await;
    let suspend = |id: i64, body: Value| {
        let app = &app;
        let admin = &admin;
        async move {
            app.post_json_as(admin, &format!("/admin/members/{id}/suspend"), body)
                .await
        }
    };
    assert_code(
        &suspend(lee.id, json!({ "reason": "  " })).await,
        "GLOBAL_002",
    );
    assert_code(&suspend(lee.id, json!({})).await, "GLOBAL_002");
    assert_code(
        &suspend(lee.id, json!({ "reason": "x".repeat(1001) })).await,
        "GLOBAL_002",
    );
    assert_code(
        &suspend(admin.id, json!({ "reason": "me" })).await,
        "GLOBAL_002",
    );
    assert_code(
        &suspend(987_654, json!({ "reason": "x" })).await,
        "MEMBER_005",
    );
    assert_code(
        &app.post_json_as(&admin, "/admin/members/987654/unsuspend", json!({}))
            .await,
        "MEMBER_005",
    );
    assert_code(
        &app.post_json_as(
            &admin,
            "/admin/members/abc/suspend",
            json!({ "reason": "x" }),
        )
        .await,
        "GLOBAL_007",
    );
    // Nothing happened to lee.
    assert_eq!(
        app.verify_token(&lee.access_token).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn resolving_reports_moves_them_from_the_open_list_to_the_resolved_one() {
    let app = TestApp::spawn().await;
    let (admin, kim, lee, park) = (
        app.member("admin").await,
        app.member("kim").await,
        app.member("lee").await,
        app.member("park").await,
    );
    make_admin(&app, &admin).await;
    let report = |by: &TestMember, target: i64, reason: &str| {
        let body = json!({ "member_id": by.id, "target_id": target, "reason": reason });
        let (app, by) = (&app, by.clone());
        async move { app.post_json_as(&by, "/member/report", body).await }
    };
    report(&kim, lee.id, "spam").await;
    report(&park, lee.id, "more spam").await;
    report(&lee, park.id, "rude").await;
    let list = |status: &str| {
        let path = format!("/admin/reports?status={status}&page=0&size=10");
        let (app, admin) = (&app, &admin);
        async move {
            let answer = app.get_as(admin, &path).await;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
            answer.json()["reports"].as_array().unwrap().clone()
        }
    };
    let open = list("open").await;
    assert_eq!(open.len(), 3);
    assert!(open
        .iter()
        .all(|r| r["status"] == "open" && r["action"].is_null()));
    let about = |target: i64| {
        open.iter()
            .filter(|r| r["target_id"] == target)
            .map(|r| r["id"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    let (about_park, about_lee) = (about(park.id)[0], about(lee.id));

    let dismissed = app
        .post_json_as(
            &admin,
            &format!("/admin/reports/{about_park}/resolve"),
            json!({ "action": "dismiss", "note": "banter" }),
        )
        .await;
    assert_eq!(dismissed.status, StatusCode::OK, "{}", dismissed.text());
    let body = dismissed.json();
    assert_eq!(
        (
            &body["status"],
            &body["action"],
            &body["note"],
            &body["resolved_by"]
        ),
        (
            &json!("resolved"),
            &json!("dismiss"),
            &json!("banter"),
            &json!(admin.id)
        )
    );
    assert_eq!(list("open").await.len(), 2);
    assert_eq!(
        app.verify_token(&park.access_token).await.status,
        StatusCode::OK
    );

    // Suspending through one report resolves every open report about the member.
    let suspended = app
        .post_json_as(
            &admin,
            &format!("/admin/reports/{}/resolve", about_lee[0]),
            json!({ "action": "suspend", "note": "spam run" }),
        )
        .await;
    assert_eq!(suspended.status, StatusCode::OK, "{}", suspended.text());
    assert_eq!(suspended.json()["action"], "suspend");
    assert!(list("open").await.is_empty());
    let resolved = list("resolved").await;
    assert_eq!(resolved.len(), 3);
    assert_code(&app.login(&lee.email, PASSWORD).await, "AUTH_013");
    assert_eq!(list("").await.len(), 3, "no status: every report");

    // A resolved report keeps its first resolution.
    let again = app
        .post_json_as(
            &admin,
            &format!("/admin/reports/{about_park}/resolve"),
            json!({ "action": "suspend" }),
        )
        .await;
    assert_eq!(again.json()["action"], "dismiss");
    assert_eq!(
        app.verify_token(&park.access_token).await.status,
        StatusCode::OK
    );

    assert_code(
        &app.get_as(&admin, "/admin/reports?status=closed").await,
        "GLOBAL_007",
    );
    let missing = app
        .post_json_as(
            &admin,
            "/admin/reports/987654/resolve",
            json!({ "action": "dismiss" }),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_code(&missing, "GLOBAL_001");
    assert_code(
        &app.post_json_as(
            &admin,
            &format!("/admin/reports/{about_park}/resolve"),
            json!({ "action": "ban" }),
        )
        .await,
        "GLOBAL_002",
    );
    assert_code(
        &app.post_json_as(
            &admin,
            &format!("/admin/reports/{about_park}/resolve"),
            json!({ "action": "dismiss", "note": "n".repeat(1001) }),
        )
        .await,
        "GLOBAL_002",
    );
}
