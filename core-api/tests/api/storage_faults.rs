//! Storage failing part-way: nothing is half-written, always against a real S3 server that fails.

use axum::http::StatusCode;

use crate::fixtures;
use crate::helpers::*;

#[tokio::test]
async fn a_post_whose_upload_fails_part_way_leaves_no_rows_and_no_objects() {
    let app = TestApp::spawn_with_s3(&[]).await;
    let kim = app.member("kim").await;
    let s3 = app.s3.as_ref().unwrap();
    s3.fail_puts_after(2);
    let images: Vec<Vec<u8>> = (0..4).map(|i| fixtures::png(3 + i, 3)).collect();
    assert_code(
        &app.register_post(&kim, "doomed", &images).await,
        "POST_002",
    );
    assert_eq!(
        (app.count("posts").await, app.count("post_images").await),
        (0, 0)
    );
    assert!(
        s3.keys().is_empty(),
        "uploaded objects were removed: {:?}",
        s3.keys()
    );
    s3.heal();
    assert_eq!(
        app.register_post(&kim, "fine now", &images).await.status,
        StatusCode::CREATED
    );
    assert_eq!(s3.keys().len(), 4);
}

#[tokio::test]
async fn an_avatar_upload_failure_is_member_002_and_keeps_the_old_avatar() {
    let app = TestApp::spawn_with_s3(&[]).await;
    let kim = app.member("kim").await;
    let upload = |n: u32| {
        vec![
            Part::text("member_id", &kim.id.to_string()),
            Part::file("file", "a.png", fixtures::png(n, n)),
        ]
    };
    let first = app
        .multipart_as(&kim, "/member/uploadAvatar", &upload(4))
        .await
        .json();
    let s3 = app.s3.as_ref().unwrap();
    s3.fail_puts_after(0);
    assert_code(
        &app.multipart_as(&kim, "/member/uploadAvatar", &upload(5))
            .await,
        "MEMBER_002",
    );
    let profile = app
        .get_as(&kim, &format!("/member/profile?member_id={}", kim.id))
        .await
        .json();
    assert_eq!(profile["avatar_url"], first["avatar_url"]);
    assert_eq!(s3.keys().len(), 1);
}

#[tokio::test]
async fn account_deletion_with_storage_down_is_member_007_and_leaves_the_account_intact() {
    let app = TestApp::spawn_with_s3(&[]).await;
    let kim = app.member("kim").await;
    app.register_post(&kim, "keep me", &[fixtures::png(3, 3)])
        .await;
    let s3 = app.s3.as_ref().unwrap();
    s3.stop();
    assert_code(
        &app.delete_as(&kim, &format!("/member/delete/{}", kim.id))
            .await,
        "MEMBER_007",
    );
    s3.resume();
    assert_eq!(
        (app.count("members").await, app.count("posts").await),
        (1, 1)
    );
    assert_eq!(s3.keys().len(), 1);
    assert_eq!(
        app.verify_token(&kim.access_token).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn object_deletes_failing_part_way_through_account_deletion_are_retried_until_gone() {
    let app = TestApp::spawn_with_s3(&[]).await;
    let kim = app.member("kim").await;
    app.register_post(&kim, "one", &[fixtures::png(3, 3), fixtures::png(4, 4)])
        .await;
    app.register_post(&kim, "two", &[fixtures::png(5, 5)]).await;
    let s3 = app.s3.as_ref().unwrap();
    s3.fail_deletes(true);
    assert_eq!(
        app.delete_as(&kim, &format!("/member/delete/{}", kim.id))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    // The rows are gone at once, so nothing points at an object that might vanish.
    for table in ["members", "posts", "post_images", "sessions"] {
        assert_eq!(app.count(table).await, 0, "{table}");
    }
    assert_eq!(app.count("storage_garbage").await, 3);
    assert_eq!(
        app.state.cleanup.sweep().await.unwrap(),
        3,
        "still failing: kept"
    );
    s3.heal();
    assert_eq!(app.state.cleanup.sweep().await.unwrap(), 0);
    assert!(s3.keys().is_empty());
    assert_eq!(app.count("storage_garbage").await, 0);
}

#[tokio::test]
async fn deleting_a_post_with_storage_down_is_post_002_and_keeps_the_post() {
    let app = TestApp::spawn_with_s3(&[]).await;
    let kim = app.member("kim").await;
    let post = app
        .register_post(&kim, "stay", &[fixtures::png(3, 3)])
        .await
        .json();
    let s3 = app.s3.as_ref().unwrap();
    s3.stop();
    assert_code(
        &app.delete_as(&kim, &format!("/post/delete/{}", post["post_id"]))
            .await,
        "POST_002",
    );
    s3.resume();
    assert_eq!(
        (app.count("posts").await, app.count("post_images").await),
        (1, 1)
    );
    assert_eq!(s3.keys().len(), 1);
}

#[tokio::test]
async fn s3_checks_signatures() {
    let app = TestApp::spawn_with_s3(&[]).await;
    let s3 = app.s3.as_ref().unwrap();
    // An app with another server's secret cannot write to this one.
    let mut vars: Vec<(String, String)> = s3.env();
    vars.retain(|(k, _)| k != "HEART_S3_SECRET_ACCESS_KEY");
    vars.push(("HEART_S3_SECRET_ACCESS_KEY".into(), "not-the-secret".into()));
    let overrides: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let forged = TestApp::spawn_on_env(&overrides).await;
    let kim = forged.member("kim").await;
    assert_code(
        &forged
            .register_post(&kim, "sneaky", &[fixtures::png(2, 2)])
            .await,
        "POST_002",
    );
    assert!(s3.keys().is_empty());
}

/// A post whose request is dropped after its image was stored and before its rows were committed
/// (a client gone, the database's breaker releasing requests in flight, a time limit) leaves no
/// object behind: the objects are deleted once the database answers, unless a row refers to them.
#[tokio::test]
async fn a_post_abandoned_between_upload_and_commit_leaves_no_object() {
    use crate::fault_proxy::{proxy_to, Mode};
    use std::time::{Duration, Instant};
    let Ok(server) = std::env::var("HEART_TEST_DATABASE_URL") else {
        eprintln!("skipped: needs HEART_TEST_DATABASE_URL (MySQL, behind the fault proxy)");
        return;
    };
    let (proxy, via) = proxy_to(&server).await;
    let app = TestApp::spawn_with(&[(DATABASE_VIA, via.as_str())]).await;
    let kim = app.member("kim").await;
    let before = app.stored_objects().await;
    // Every round trip to the database 400 ms late: the post's transaction takes seconds, so the
    // request can be dropped between its upload and its commit.
    proxy.set(Mode::Latency(Duration::from_millis(200)));
    let images = [fixtures::png(4, 4)];
    let request = app.register_post(&kim, "abandoned", &images);
    let uploaded = async {
        loop {
            if app.stored_objects().await.len() > before.len() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::select! {
        answer = request => panic!("the post was answered before it was dropped: {}", answer.text()),
        () = uploaded => {} // the request future is dropped here, mid-transaction
    }
    proxy.set(Mode::Pass);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let objects = app.stored_objects().await;
        let rows = app.count("post_images").await;
        if objects.len() == before.len() + rows as usize {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} objects, {rows} image rows, {} before: the abandoned post's image stayed",
            objects.len(),
            before.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        app.register_post(&kim, "after", &[fixtures::png(4, 4)])
            .await
            .status,
        StatusCode::CREATED
    );
}

/// A transaction whose `BEGIN` is still in flight when its request is dropped leaves no
/// transaction open on the pooled connection. (sqlx counts a transaction once `BEGIN` has
/// answered; before `Db::begin`, such a connection went back to the pool inside the server's
/// transaction, and the abandoned-post test above failed one run in four with "the new post
/// vanished": a later read on it saw an old snapshot.)
#[tokio::test]
async fn a_begin_cancelled_in_flight_leaves_no_transaction_open() {
    use crate::fault_proxy::{proxy_to, Mode};
    use sqlx::{Connection, Executor};
    use std::time::Duration;
    let Ok(server) = std::env::var("HEART_TEST_DATABASE_URL") else {
        eprintln!("skipped: needs HEART_TEST_DATABASE_URL (MySQL, behind the fault proxy)");
        return;
    };
    let (proxy, via) = proxy_to(&server).await;
    // One connection: every statement below runs on the one whose BEGIN is cancelled.
    let app = TestApp::spawn_with(&[
        (DATABASE_VIA, via.as_str()),
        ("HEART_DATABASE_MAX_CONNECTIONS", "1"),
    ])
    .await;
    let db = &app.state.db;
    db.pool
        .execute("CREATE TABLE cancel_probe (n INT NOT NULL)")
        .await
        .unwrap();
    let (name,): (String,) = sqlx::query_as("SELECT DATABASE()")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let mut other =
        sqlx::AnyConnection::connect(&format!("{}/{name}", server.trim_end_matches('/')))
            .await
            .unwrap();
    let count = "SELECT COUNT(*) FROM cancel_probe";

    for round in 1..=3_i64 {
        // A round trip takes 200 ms; the BEGIN is on its way when the caller gives up at 100.
        proxy.set(Mode::Latency(Duration::from_millis(100)));
        let cancelled = tokio::time::timeout(Duration::from_millis(100), db.begin()).await;
        assert!(cancelled.is_err(), "BEGIN answered within 100 ms");
        proxy.set(Mode::Pass);

        // A read on the pooled connection, then a row committed by another connection: the next
        // read on the pooled one sees it (inside a forgotten transaction it would not).
        let (seen,): (i64,) = sqlx::query_as(count).fetch_one(&db.pool).await.unwrap();
        assert_eq!(seen, 2 * (round - 1));
        other
            .execute("INSERT INTO cancel_probe VALUES (1)")
            .await
            .unwrap();
        let (seen,): (i64,) = sqlx::query_as(count).fetch_one(&db.pool).await.unwrap();
        assert_eq!(
            seen,
            2 * round - 1,
            "round {round}: the pooled connection reads an old snapshot"
        );
        // And a write on the pooled connection is committed, not held in that transaction.
        db.pool
            .execute("INSERT INTO cancel_probe VALUES (2)")
            .await
            .unwrap();
        let (seen,): (i64,) = sqlx::query_as(count).fetch_one(&mut other).await.unwrap();
        assert_eq!(
            seen,
            2 * round,
            "round {round}: a write on the pooled connection was not committed"
        );
    }
}
