//! `/member/*`: profile, avatar, block, report, account deletion.

use axum::http::StatusCode;
use serde_json::json;

use crate::fixtures;
use crate::helpers::*;

fn pair(a: &TestMember, b: &TestMember) -> serde_json::Value {
    json!({ "member_id": a.id, "target_id": b.id })
}

#[tokio::test]
async fn profile_shows_any_member_with_real_counts() {
    let app = TestApp::spawn().await;
    let (kim, lee) = (app.member("kim").await, app.member("lee").await);
    app.register_post(&lee, "hello", &[]).await;
    app.post_json_as(&kim, "/member/follow", pair(&kim, &lee))
        .await;
    let response = app
        .get_as(&kim, &format!("/member/profile?member_id={}", lee.id))
        .await;
    assert_eq!(response.status, StatusCode::OK);
    let body = response.json();
    assert_eq!(body["member_id"], lee.id);
    assert_eq!(body["email"], lee.email);
    assert_eq!(body["name"], "Test Name");
    assert_eq!(body["nickname"], "tester");
    assert!(body["avatar_url"].is_null());
    assert_eq!(
        (
            body["post_size"].as_i64(),
            body["follower_size"].as_i64(),
            body["following_size"].as_i64()
        ),
        (Some(1), Some(1), Some(0))
    );
    let own = app
        .get_as(&kim, &format!("/member/profile?member_id={}", kim.id))
        .await
        .json();
    assert_eq!(
        (
            own["post_size"].as_i64(),
            own["follower_size"].as_i64(),
            own["following_size"].as_i64()
        ),
        (Some(0), Some(0), Some(1))
    );
}

#[tokio::test]
async fn profile_of_nobody_is_member_005_and_bad_ids_are_global_007() {
    let app = TestApp::spawn().await;
    let kim = app.member("kim").await;
    assert_code(
        &app.get_as(&kim, "/member/profile?member_id=999999999")
            .await,
        "MEMBER_005",
    );
    assert_code(&app.get_as(&kim, "/member/profile").await, "GLOBAL_007");
    assert_code(
        &app.get_as(&kim, "/member/profile?member_id=abc").await,
        "GLOBAL_007",
    );
    assert_code(&app.get("/member/profile?member_id=1").await, "GLOBAL_103");
}

#[tokio::test]
async fn avatar_upload_stores_a_clean_image_and_links_it() {
    let app = TestApp::spawn().await;
    let kim = app.member("kim").await;
    let parts = [
        Part::text("member_id", &kim.id.to_string()),
        Part::file("file", "me.jpg", fixtures::jpeg_with_gps(32, 24, 1)),
    ];
    let response = app.multipart_as(&kim, "/member/uploadAvatar", &parts).await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
    let body = response.json();
    assert_eq!(body["member_id"], kim.id);
    let url = body["avatar_url"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with(&app.state.config.storage.public_base_url),
        "{url}"
    );
    assert!(
        url.contains("/avatars/") && url.ends_with(".jpg") && !url.contains("me.jpg"),
        "{url}"
    );
    let stored = app.fetch_media(&url).await;
    assert!(!fixtures::contains(&stored, b"Exif"), "EXIF stripped");
    let profile = app
        .get_as(&kim, &format!("/member/profile?member_id={}", kim.id))
        .await
        .json();
    assert_eq!(profile["avatar_url"], url);
}

#[tokio::test]
async fn a_new_avatar_replaces_and_deletes_the_old_object() {
    let app = TestApp::spawn().await;
    let kim = app.member("kim").await;
    let upload = |bytes: Vec<u8>| {
        vec![
            Part::text("member_id", &kim.id.to_string()),
            Part::file("file", "a.png", bytes),
        ]
    };
    let first = app
        .multipart_as(&kim, "/member/uploadAvatar", &upload(fixtures::png(8, 8)))
        .await
        .json();
    let second = app
        .multipart_as(&kim, "/member/uploadAvatar", &upload(fixtures::png(9, 9)))
        .await
        .json();
    assert_ne!(first["avatar_url"], second["avatar_url"]);
    let objects = app.stored_objects().await;
    assert_eq!(objects.len(), 1, "only the new avatar is left: {objects:?}");
    assert!(second["avatar_url"]
        .as_str()
        .unwrap()
        .ends_with(&objects[0]));
}

#[tokio::test]
async fn avatar_errors_follow_the_contract() {
    let app = TestApp::spawn().await;
    let kim = app.member("kim").await;
    let id = kim.id.to_string();
    let not_image = app
        .multipart_as(
            &kim,
            "/member/uploadAvatar",
            &[
                Part::text("member_id", &id),
                Part::file("file", "x.png", b"GIF87 but not really".to_vec()),
            ],
        )
        .await;
    assert_code(&not_image, "MEMBER_004");
    assert_code(
        &app.multipart_as(
            &kim,
            "/member/uploadAvatar",
            &[Part::text("member_id", &id)],
        )
        .await,
        "GLOBAL_009",
    );
    assert_code(
        &app.multipart_as(
            &kim,
            "/member/uploadAvatar",
            &[Part::file("file", "a.png", fixtures::png(4, 4))],
        )
        .await,
        "GLOBAL_007",
    );
    assert_code(
        &app.post_json_as(&kim, "/member/uploadAvatar", json!({ "member_id": kim.id }))
            .await,
        "GLOBAL_004",
    );
    assert!(app.stored_objects().await.is_empty());
}

#[tokio::test]
async fn an_avatar_over_the_file_limit_is_global_008() {
    let app = TestApp::spawn_with(&[("HEART_MAX_UPLOAD_FILE_BYTES", "2048")]).await;
    let kim = app.member("kim").await;
    let big = fixtures::png(200, 200);
    assert!(big.len() > 2048);
    let parts = [
        Part::text("member_id", &kim.id.to_string()),
        Part::file("file", "big.png", big),
    ];
    assert_code(
        &app.multipart_as(&kim, "/member/uploadAvatar", &parts).await,
        "GLOBAL_008",
    );
    assert!(app.stored_objects().await.is_empty());
}

#[tokio::test]
async fn block_lists_and_unblock() {
    let app = TestApp::spawn().await;
    let (kim, lee) = (app.member("kim").await, app.member("lee").await);
    let blocked = app
        .post_json_as(&kim, "/member/block", pair(&kim, &lee))
        .await;
    assert_eq!(blocked.status, StatusCode::OK);
    assert_eq!(
        blocked.json(),
        json!({ "member_id": kim.id, "target_id": lee.id })
    );
    let list = app
        .get_as(
            &kim,
            &format!("/member/getBlockingMembers?member_id={}", kim.id),
        )
        .await
        .json();
    assert_eq!(list["size"], 1);
    assert_eq!(list["members"][0]["id"], lee.id);
    assert_eq!(list["members"][0]["email"], lee.email);
    for field in ["nickname", "name", "avatar_url"] {
        assert!(list["members"][0].as_object().unwrap().contains_key(field));
    }
    assert_eq!(
        app.post_json_as(&kim, "/member/unblock", pair(&kim, &lee))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.post_json_as(&kim, "/member/unblock", pair(&kim, &lee))
            .await
            .status,
        StatusCode::OK,
        "idempotent"
    );
    assert_eq!(
        app.get_as(
            &kim,
            &format!("/member/getBlockingMembers?member_id={}", kim.id)
        )
        .await
        .json()["size"],
        0
    );
}

#[tokio::test]
async fn block_errors_follow_the_contract() {
    let app = TestApp::spawn().await;
    let (kim, lee) = (app.member("kim").await, app.member("lee").await);
    assert_code(
        &app.post_json_as(&kim, "/member/block", pair(&kim, &kim))
            .await,
        "GLOBAL_002",
    );
    assert_code(
        &app.post_json_as(
            &kim,
            "/member/block",
            json!({ "member_id": kim.id, "target_id": 999_999_999 }),
        )
        .await,
        "MEMBER_005",
    );
    app.post_json_as(&kim, "/member/block", pair(&kim, &lee))
        .await;
    assert_code(
        &app.post_json_as(&kim, "/member/block", pair(&kim, &lee))
            .await,
        "MEMBER_006",
    );
    let missing = app
        .post_json_as(&kim, "/member/block", json!({ "member_id": kim.id }))
        .await;
    assert_code(&missing, "GLOBAL_002");
    assert_eq!(missing.json()["errors"][0]["field"], "target_id");
    assert_code(
        &app.post_json_as(
            &kim,
            "/member/unblock",
            json!({ "member_id": kim.id, "target_id": 999_999_999 }),
        )
        .await,
        "MEMBER_005",
    );
}

#[tokio::test]
async fn blocking_ends_follows_both_ways() {
    let app = TestApp::spawn().await;
    let (kim, lee) = (app.member("kim").await, app.member("lee").await);
    app.post_json_as(&kim, "/member/follow", pair(&kim, &lee))
        .await;
    app.post_json_as(&lee, "/member/follow", pair(&lee, &kim))
        .await;
    app.post_json_as(&kim, "/member/block", pair(&kim, &lee))
        .await;
    assert_eq!(app.count("follows").await, 0);
    // Neither can follow the other while the block stands.
    assert_code(
        &app.post_json_as(&lee, "/member/follow", pair(&lee, &kim))
            .await,
        "GLOBAL_105",
    );
    assert_code(
        &app.post_json_as(&kim, "/member/follow", pair(&kim, &lee))
            .await,
        "GLOBAL_105",
    );
}

#[tokio::test]
async fn reports_are_stored_once_per_pair_with_reason_and_time() {
    let app = TestApp::spawn().await;
    let (kim, lee) = (app.member("kim").await, app.member("lee").await);
    let first = app
        .post_json_as(
            &kim,
            "/member/report",
            json!({ "member_id": kim.id, "target_id": lee.id, "reason": "spam" }),
        )
        .await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(
        first.json(),
        json!({ "member_id": kim.id, "target_id": lee.id })
    );
    assert_eq!(
        app.post_json_as(&kim, "/member/report", pair(&kim, &lee))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(app.count("reports").await, 1);
    let (reason, created_at): (Option<String>, i64) =
        sqlx::query_as("SELECT reason, created_at FROM reports")
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
    assert_eq!(reason.as_deref(), Some("spam"));
    assert!(created_at > 0);
    assert_code(
        &app.post_json_as(&kim, "/member/report", pair(&kim, &kim))
            .await,
        "GLOBAL_002",
    );
    assert_code(
        &app.post_json_as(
            &kim,
            "/member/report",
            json!({ "member_id": kim.id, "target_id": 999_999_999 }),
        )
        .await,
        "MEMBER_005",
    );
    assert_code(
        &app.post_json_as(
            &kim,
            "/member/report",
            json!({ "member_id": kim.id, "target_id": lee.id, "reason": "x".repeat(1001) }),
        )
        .await,
        "GLOBAL_002",
    );
}

#[tokio::test]
async fn admins_list_reports_and_others_cannot() {
    let app = TestApp::spawn().await;
    let (kim, lee, admin) = (
        app.member("kim").await,
        app.member("lee").await,
        app.member("admin").await,
    );
    app.post_json_as(
        &kim,
        "/member/report",
        json!({ "member_id": kim.id, "target_id": lee.id, "reason": "rude" }),
    )
    .await;
    assert_code(&app.get_as(&kim, "/admin/reports").await, "GLOBAL_105");
    sqlx::query("UPDATE members SET role = 'ADMIN' WHERE id = ?")
        .bind(admin.id)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    let response = app.get_as(&admin, "/admin/reports?page=0&size=10").await;
    assert_eq!(response.status, StatusCode::OK);
    let body = response.json();
    assert_eq!(body["size"], 1);
    assert_eq!(body["reports"][0]["reporter_id"], kim.id);
    assert_eq!(body["reports"][0]["target_id"], lee.id);
    assert_eq!(body["reports"][0]["reason"], "rude");
    assert_eq!(body["reports"][0]["created_at"].as_str().unwrap().len(), 19);
}

#[tokio::test]
async fn deleting_the_account_removes_everything_and_revokes_every_session() {
    let app = TestApp::spawn().await;
    let (kim, lee) = (app.member("kim").await, app.member("lee").await);
    let second_phone = app.login(&kim.email, PASSWORD).await.json();
    app.multipart_as(
        &kim,
        "/member/uploadAvatar",
        &[
            Part::text("member_id", &kim.id.to_string()),
            Part::file("file", "a.png", fixtures::png(8, 8)),
        ],
    )
    .await;
    app.register_post(&kim, "mine", &[fixtures::png(4, 4), fixtures::jpeg(6, 6)])
        .await;
    app.register_post(&lee, "theirs", &[fixtures::png(5, 5)])
        .await;
    app.post_json_as(&kim, "/member/follow", pair(&kim, &lee))
        .await;
    app.post_json_as(&lee, "/member/follow", pair(&lee, &kim))
        .await;
    app.post_json_as(&kim, "/member/block", pair(&kim, &lee))
        .await;
    app.post_json_as(&kim, "/member/report", pair(&kim, &lee))
        .await;
    app.post_json_as(&lee, "/member/report", pair(&lee, &kim))
        .await;
    assert_eq!(app.stored_objects().await.len(), 4);

    let response = app
        .delete_as(&kim, &format!("/member/delete/{}", kim.id))
        .await;
    assert_eq!(response.status, StatusCode::NO_CONTENT);
    assert!(response.body.is_empty());

    assert_code(&app.verify_token(&kim.access_token).await, "GLOBAL_103");
    assert_code(
        &app.verify_token(second_phone["access_token"].as_str().unwrap())
            .await,
        "GLOBAL_103",
    );
    assert_code(
        &app.reissue(json!(kim.id), &kim.refresh_token).await,
        "AUTH_007",
    );
    assert_code(&app.login(&kim.email, PASSWORD).await, "AUTH_006");
    for (table, left) in [
        ("members", 1),
        ("posts", 1),
        ("post_images", 1),
        ("follows", 0),
        ("blocks", 0),
        // lee's report about kim stays for moderators; kim's own report went with kim.
        ("reports", 1),
        ("sessions", 1),
    ] {
        assert_eq!(app.count(table).await, left, "{table}");
    }
    assert_eq!(
        app.stored_objects().await.len(),
        1,
        "only lee's image is left"
    );
    // The email is free again.
    assert_eq!(app.send_code(&kim.email).await.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn deleting_another_members_account_is_global_105() {
    let app = TestApp::spawn().await;
    let (kim, lee) = (app.member("kim").await, app.member("lee").await);
    assert_code(
        &app.delete_as(&kim, &format!("/member/delete/{}", lee.id))
            .await,
        "GLOBAL_105",
    );
    assert_code(
        &app.delete_as(&kim, "/member/delete/abc").await,
        "GLOBAL_007",
    );
    assert_eq!(app.count("members").await, 2);
}
