//! The follow graph.

use axum::http::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn follow_unfollow_and_lists() {
    let app = TestApp::spawn().await;
    let (kim, lee, park) = (
        app.member("kim").await,
        app.member("lee").await,
        app.member("park").await,
    );
    for fan in [&kim, &park] {
        let response = app
            .post_json_as(
                fan,
                "/member/follow",
                json!({ "member_id": fan.id, "target_id": lee.id }),
            )
            .await;
        assert_eq!(response.status, StatusCode::OK);
        assert_eq!(
            response.json(),
            json!({ "member_id": fan.id, "target_id": lee.id })
        );
    }
    // Following twice changes nothing.
    app.post_json_as(
        &kim,
        "/member/follow",
        json!({ "member_id": kim.id, "target_id": lee.id }),
    )
    .await;
    let followers = app
        .get_as(
            &kim,
            &format!("/member/followers?member_id={}&page=0&size=10", lee.id),
        )
        .await
        .json();
    assert_eq!(followers["size"], 2);
    let ids: Vec<i64> = followers["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect();
    assert!(ids.contains(&kim.id) && ids.contains(&park.id));
    let followings = app
        .get_as(
            &kim,
            &format!("/member/followings?member_id={}&page=0&size=10", kim.id),
        )
        .await
        .json();
    assert_eq!(followings["members"][0]["id"], lee.id);
    assert_eq!(followings["members"][0]["email"], lee.email);

    assert_eq!(
        app.post_json_as(
            &kim,
            "/member/unfollow",
            json!({ "member_id": kim.id, "target_id": lee.id })
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        app.post_json_as(
            &kim,
            "/member/unfollow",
            json!({ "member_id": kim.id, "target_id": lee.id })
        )
        .await
        .status,
        StatusCode::OK
    );
    let profile = app
        .get_as(&kim, &format!("/member/profile?member_id={}", lee.id))
        .await
        .json();
    assert_eq!(profile["follower_size"], 1);
}

#[tokio::test]
async fn follow_lists_page() {
    let app = TestApp::spawn().await;
    let star = app.member("star").await;
    for i in 0..3 {
        let fan = app.member(&format!("fan{i}")).await;
        app.post_json_as(
            &fan,
            "/member/follow",
            json!({ "member_id": fan.id, "target_id": star.id }),
        )
        .await;
    }
    let page0 = app
        .get_as(
            &star,
            &format!("/member/followers?member_id={}&page=0&size=2", star.id),
        )
        .await
        .json();
    let page1 = app
        .get_as(
            &star,
            &format!("/member/followers?member_id={}&page=1&size=2", star.id),
        )
        .await
        .json();
    assert_eq!(
        (page0["size"].as_i64(), page1["size"].as_i64()),
        (Some(2), Some(1))
    );
}

#[tokio::test]
async fn follow_errors_follow_the_contract() {
    let app = TestApp::spawn().await;
    let kim = app.member("kim").await;
    assert_code(
        &app.post_json_as(
            &kim,
            "/member/follow",
            json!({ "member_id": kim.id, "target_id": kim.id }),
        )
        .await,
        "GLOBAL_002",
    );
    assert_code(
        &app.post_json_as(
            &kim,
            "/member/follow",
            json!({ "member_id": kim.id, "target_id": 999_999_999 }),
        )
        .await,
        "MEMBER_005",
    );
    assert_code(
        &app.get_as(&kim, "/member/followers?member_id=999999999")
            .await,
        "MEMBER_005",
    );
    assert_code(&app.get_as(&kim, "/member/followings").await, "GLOBAL_007");
    assert_code(
        &app.get_as(
            &kim,
            &format!("/member/followers?member_id={}&size=0", kim.id),
        )
        .await,
        "GLOBAL_007",
    );
}
