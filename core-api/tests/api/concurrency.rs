//! Races: many requests at once must leave exactly the state one at a time would.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_parallel_joins_with_one_email_make_exactly_one_member() {
    let app = Arc::new(TestApp::spawn_with(&[("HEART_RATE_LIMIT_JOIN_PER_IP", "1000/60")]).await);
    let email = unique_email("race");
    app.send_code(&email).await;
    app.confirm(&email, &app.last_code_for(&email)).await;
    let joins = (0..100).map(|_| {
        let (app, email) = (app.clone(), email.clone());
        tokio::spawn(async move { app.join(&email, PASSWORD).await })
    });
    let mut created = 0;
    for join in futures_util::future::join_all(joins).await {
        let response = join.unwrap();
        match response.status {
            StatusCode::CREATED => created += 1,
            _ => {
                let code = response.code();
                // The losers hear that the email is taken (or, once the winner consumed the
                // confirmation, that it is no longer verified), or — beyond the password
                // hashing queue's bound — GLOBAL_503 with Retry-After; never another error.
                let overloaded = code == "GLOBAL_503" && response.header("retry-after").is_some();
                assert!(
                    code == "AUTH_000" || code == "AUTH_012" || overloaded,
                    "{code}: {}",
                    response.text()
                );
            }
        }
    }
    assert_eq!(created, 1);
    let (members,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM members WHERE email = ?")
        .bind(&email)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(members, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_reissues_with_one_token_have_one_winner_and_no_extra_sessions() {
    let app = Arc::new(
        TestApp::spawn_with(&[
            ("HEART_RATE_LIMIT_REISSUE_PER_MEMBER", "1000/60"),
            ("HEART_RATE_LIMIT_REISSUE_PER_IP", "1000/60"),
        ])
        .await,
    );
    let member = app.member("racer").await;
    let sessions_before = app.count("sessions").await;
    let reissues = (0..20).map(|_| {
        let (app, token) = (app.clone(), member.refresh_token.clone());
        tokio::spawn(async move { app.reissue(json!(member.id), &token).await })
    });
    let mut ok = Vec::new();
    for reissue in futures_util::future::join_all(reissues).await {
        let response = reissue.unwrap();
        if response.status == StatusCode::OK {
            ok.push(response.json());
        } else {
            assert_code(&response, "AUTH_007");
        }
    }
    // One rotation, plus at most the one grace answer; everything after that is reuse.
    assert!((1..=2).contains(&ok.len()), "{} answers were OK", ok.len());
    assert_eq!(
        app.count("sessions").await,
        sessions_before,
        "no extra sessions"
    );
    // At least 18 requests reused the token past the grace: the session is revoked for everyone.
    for pair in &ok {
        assert_code(
            &app.verify_token(pair["access_token"].as_str().unwrap())
                .await,
            "GLOBAL_103",
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_follow_unfollow_and_block_unblock_leave_consistent_counts() {
    let app = Arc::new(TestApp::spawn().await);
    let star = Arc::new(app.member("star").await);
    let mut fans = Vec::new();
    for i in 0..8 {
        fans.push(Arc::new(app.member(&format!("fan{i}")).await));
    }
    let mut tasks = Vec::new();
    for (i, fan) in fans.iter().enumerate() {
        for round in 0..6 {
            let (app, fan, star) = (app.clone(), fan.clone(), star.clone());
            tasks.push(tokio::spawn(async move {
                let pair = json!({ "member_id": fan.id, "target_id": star.id });
                let path = match (i % 2, round % 2) {
                    (0, 0) => "/member/follow",
                    (0, _) => "/member/unfollow",
                    (_, 0) => "/member/block",
                    _ => "/member/unblock",
                };
                let response = app.post_json_as(&fan, path, pair).await;
                // A race may see the other state (already blocking, blocked while following) but never fail.
                if !response.status.is_success() {
                    let code = response.code();
                    assert!(
                        code == "MEMBER_006" || code == "GLOBAL_105",
                        "{path}: {}",
                        response.text()
                    );
                }
            }));
        }
    }
    for task in futures_util::future::join_all(tasks).await {
        task.unwrap();
    }
    // Whatever interleaving happened, the counts equal the rows, and no one both blocks and follows.
    let profile = app
        .get_as(&star, &format!("/member/profile?member_id={}", star.id))
        .await
        .json();
    let (followers,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM follows WHERE followee_id = ?")
        .bind(star.id)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(profile["follower_size"].as_i64(), Some(followers));
    let (both,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM follows f JOIN blocks b ON b.blocker_id = f.follower_id AND b.blocked_id = f.followee_id",
    )
    .fetch_one(&app.state.db.pool)
    .await
    .unwrap();
    assert_eq!(both, 0);
    let list = app
        .get_as(
            &star,
            &format!("/member/followers?member_id={}&page=0&size=100", star.id),
        )
        .await
        .json();
    assert_eq!(list["size"].as_i64(), Some(followers));
}
