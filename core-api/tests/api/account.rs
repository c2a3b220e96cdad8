//! Extensions (2026-12): password reset by mailed code, password change, data export.

use std::io::Read as _;
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use heart_testkit::fixtures;
use serde_json::{json, Value};

use crate::helpers::*;

const NEW_PASSWORD: &str = "brand-new-pass-9";

/// The code of the newest reset mail to `email`, waiting for it (the mail is sent in the background).
async fn reset_code_for(app: &TestApp, email: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let code = app.mails_to(email).iter().rev().find_map(|mail| {
            let marker = "Your password reset code is: ";
            let start = mail.find(marker)? + marker.len();
            let code: String = mail[start..]
                .chars()
                .take_while(char::is_ascii_alphanumeric)
                .collect();
            (code.len() == 8).then_some(code)
        });
        if let Some(code) = code {
            return code;
        }
        assert!(Instant::now() < deadline, "no reset mail to {email}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn request_reset(app: &TestApp, email: &str) -> TestResponse {
    app.post_json("/auth/passwordResetCode", json!({ "email": email }))
        .await
}

async fn reset(app: &TestApp, email: &str, code: &str, new_password: &str) -> TestResponse {
    app.post_json(
        "/auth/resetPassword",
        json!({ "email": email, "verification_code": code, "new_password": new_password }),
    )
    .await
}

async fn change(app: &TestApp, member: &TestMember, current: &str, new: &str) -> TestResponse {
    app.post_json_as(
        member,
        "/auth/changePassword",
        json!({ "member_id": member.id, "current_password": current, "new_password": new }),
    )
    .await
}

/// Waits until the background task stored the reset row of `email`.
async fn wait_for_reset_row(app: &TestApp, email: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM password_resets WHERE email = ?")
            .bind(email)
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
        if n == 1 {
            return;
        }
        assert!(Instant::now() < deadline, "no reset row for {email}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn reset_code_requests_answer_alike_for_members_and_strangers() {
    let app = TestApp::spawn().await;
    let member = app.member("reset-alike").await;
    let stranger = unique_email("stranger");
    let for_member = request_reset(&app, &member.email).await;
    let for_stranger = request_reset(&app, &stranger).await;
    assert_eq!(for_member.status, StatusCode::OK);
    assert_eq!(for_stranger.status, StatusCode::OK);
    assert_eq!(for_member.json(), json!({ "message": "Email sent." }));
    assert_eq!(for_member.body, for_stranger.body);
    assert_eq!(reset_code_for(&app, &member.email).await.len(), 8);
    wait_for_reset_row(&app, &stranger).await;
    assert!(app.mails_to(&stranger).is_empty(), "only members get mail");
}

#[tokio::test]
async fn a_wrong_code_answers_alike_for_members_and_strangers() {
    let app = TestApp::spawn().await;
    let member = app.member("wrong-alike").await;
    let stranger = unique_email("stranger");
    // Nothing requested yet: AUTH_002 for both.
    assert_code(
        &reset(&app, &member.email, "AAAA1111", NEW_PASSWORD).await,
        "AUTH_002",
    );
    assert_code(
        &reset(&app, &stranger, "AAAA1111", NEW_PASSWORD).await,
        "AUTH_002",
    );
    request_reset(&app, &member.email).await;
    request_reset(&app, &stranger).await;
    reset_code_for(&app, &member.email).await;
    wait_for_reset_row(&app, &stranger).await;
    let for_member = reset(&app, &member.email, "AAAA1111", NEW_PASSWORD).await;
    let for_stranger = reset(&app, &stranger, "AAAA1111", NEW_PASSWORD).await;
    assert_code(&for_member, "AUTH_003");
    assert_eq!(for_member.body, for_stranger.body);
}

#[tokio::test]
async fn reset_sets_the_new_password_and_revokes_every_session_at_once() {
    let app = TestApp::spawn().await;
    let phone = app.member("reset-all").await;
    let tablet_login = app.login(&phone.email, PASSWORD).await.json();
    let tablet_access = tablet_login["access_token"].as_str().unwrap().to_owned();

    request_reset(&app, &phone.email).await;
    let code = reset_code_for(&app, &phone.email).await;
    let answer = reset(&app, &phone.email, &code, NEW_PASSWORD).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json(), json!({ "message": "Password changed." }));

    for access in [&phone.access_token, &tablet_access] {
        assert_code(&app.verify_token(access).await, "GLOBAL_103");
    }
    assert_code(
        &app.reissue(json!(phone.id), &phone.refresh_token).await,
        "AUTH_007",
    );
    assert_code(
        &app.reissue(
            json!(phone.id),
            tablet_login["refresh_token"].as_str().unwrap(),
        )
        .await,
        "AUTH_007",
    );
    assert_code(&app.login(&phone.email, PASSWORD).await, "AUTH_006");
    assert_eq!(
        app.login(&phone.email, NEW_PASSWORD).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn reset_codes_are_single_use() {
    let app = TestApp::spawn().await;
    let member = app.member("reset-once").await;
    request_reset(&app, &member.email).await;
    let code = reset_code_for(&app, &member.email).await;
    assert_eq!(
        reset(&app, &member.email, &code, NEW_PASSWORD).await.status,
        StatusCode::OK
    );
    assert_code(
        &reset(&app, &member.email, &code, "another-pass-8").await,
        "AUTH_002",
    );
    assert_eq!(
        app.login(&member.email, NEW_PASSWORD).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn reset_codes_expire_after_ten_minutes() {
    let app = TestApp::spawn().await;
    let member = app.member("reset-expiry").await;
    request_reset(&app, &member.email).await;
    let code = reset_code_for(&app, &member.email).await;
    app.clock.advance(10 * 60);
    assert_code(
        &reset(&app, &member.email, &code, NEW_PASSWORD).await,
        "AUTH_004",
    );
    assert_eq!(
        app.login(&member.email, PASSWORD).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn five_wrong_codes_burn_the_reset_code() {
    let app = TestApp::spawn().await;
    let member = app.member("reset-burn").await;
    request_reset(&app, &member.email).await;
    let code = reset_code_for(&app, &member.email).await;
    for _ in 0..5 {
        assert_code(
            &reset(&app, &member.email, "zzzz9999", NEW_PASSWORD).await,
            "AUTH_003",
        );
    }
    assert_code(
        &reset(&app, &member.email, &code, NEW_PASSWORD).await,
        "AUTH_002",
    );
}

#[tokio::test]
async fn reset_codes_are_stored_only_as_hashes() {
    let app = TestApp::spawn().await;
    let member = app.member("reset-hash").await;
    request_reset(&app, &member.email).await;
    let code = reset_code_for(&app, &member.email).await;
    let (stored,): (String,) =
        sqlx::query_as("SELECT code_hash FROM password_resets WHERE email = ?")
            .bind(&member.email)
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
    assert_ne!(stored, code);
    assert_eq!(stored, heart_core::auth::tokens::sha256_hex(&code));
}

#[tokio::test]
async fn the_new_password_follows_joins_rules() {
    let app = TestApp::spawn().await;
    let member = app.member("reset-rules").await;
    request_reset(&app, &member.email).await;
    let code = reset_code_for(&app, &member.email).await;
    for weak in ["short1", "onlyletters", "12345678901"] {
        let answer = reset(&app, &member.email, &code, weak).await;
        assert_code(&answer, "GLOBAL_002");
        assert_eq!(answer.json()["errors"][0]["field"], "new_password");
    }
    // A refused password did not use the code up.
    assert_eq!(
        reset(&app, &member.email, &code, NEW_PASSWORD).await.status,
        StatusCode::OK
    );
}

/// At most `MAX_PENDING_RESET_MAILS` reset mails wait on the mail server at once. With a mail
/// server that accepts connections and never says a word, the next request is answered
/// `GLOBAL_503` with `Retry-After` at once, and the turns come back once the sends give up
/// (`SMTP_TIMEOUT`): bounded in memory and in time.
#[tokio::test]
async fn reset_mails_waiting_on_a_silent_mail_server_are_bounded() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use heart_core::auth::recovery::MAX_PENDING_RESET_MAILS;
    use heart_core::mail::SMTP_TIMEOUT;

    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port().to_string();
    let accepted = Arc::new(AtomicUsize::new(0));
    let server = tokio::spawn({
        let accepted = accepted.clone();
        async move {
            let mut open = Vec::new(); // held open, silent
            while let Ok((stream, _)) = silent.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                open.push(stream);
            }
        }
    });
    let app = TestApp::spawn_on_env(&[
        ("HEART_SMTP_HOST", "127.0.0.1"),
        ("HEART_SMTP_PORT", &port),
        ("HEART_SMTP_TLS", "none"),
        ("HEART_RATE_LIMITS_ENABLED", "false"),
    ])
    .await;
    // A member (inserted directly: signing up would itself wait on the silent server).
    let email = unique_email("silent-mail");
    let mut conn = app.state.db.pool.acquire().await.unwrap();
    let member = heart_core::member::repo::NewMember {
        email: &email,
        name: "Silent",
        nickname: &email[..email.find('@').unwrap()],
        password_hash: "unused",
    };
    heart_core::member::repo::insert(&mut conn, &member, 0)
        .await
        .unwrap();
    drop(conn);

    // Every request is taken until the turns are all held by mails waiting on the silent server
    // (a send that fails sooner gives its turn back, so more may be taken, never fewer).
    let mut taken = 0;
    let refused = loop {
        let answer = request_reset(&app, &email).await;
        if answer.status != StatusCode::OK {
            break answer;
        }
        taken += 1;
        assert!(
            taken <= 4 * MAX_PENDING_RESET_MAILS,
            "never refused: the reset mails are not bounded"
        );
    };
    assert!(
        taken >= MAX_PENDING_RESET_MAILS,
        "refused after {taken} requests, before the bound: {}",
        refused.text()
    );
    assert_code(&refused, "GLOBAL_503");
    assert!(refused.header("retry-after").is_some());

    let deadline = Instant::now() + SMTP_TIMEOUT * 4;
    loop {
        if request_reset(&app, &email).await.status == StatusCode::OK {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the turns did not come back after the sends gave up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        accepted.load(Ordering::SeqCst) >= 1,
        "the mails went to the silent server"
    );
    server.abort();
}

#[tokio::test]
async fn reset_mail_shares_the_verification_mail_limits() {
    let app =
        TestApp::spawn_with(&[("HEART_RATE_LIMIT_VERIFICATION_SEND_PER_EMAIL", "2/600")]).await;
    app.clock.freeze();
    let email = unique_email("reset-limit");
    assert_eq!(app.send_code(&email).await.status, StatusCode::ACCEPTED);
    assert_eq!(request_reset(&app, &email).await.status, StatusCode::OK);
    let limited = request_reset(&app, &email).await;
    assert_code(&limited, "GLOBAL_106");
    assert!(limited.header("retry-after").is_some());
}

#[tokio::test]
async fn the_answer_does_not_wait_for_a_hanging_mail_server() {
    // An SMTP server that accepts connections and never speaks: the member's request answers as
    // fast as a stranger's, so the answer's timing says nothing about the address.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let _held = std::thread::spawn(move || {
        let connections: Vec<_> = listener.incoming().take(4).collect();
        std::thread::sleep(Duration::from_secs(30));
        drop(connections);
    });
    let app = TestApp::spawn_with(&[
        ("HEART_SMTP_HOST", "127.0.0.1"),
        ("HEART_SMTP_PORT", &port),
        ("HEART_SMTP_TLS", "none"),
    ])
    .await;
    let email = unique_email("hanging");
    sqlx::query("INSERT INTO members (email, name, nickname, password_hash, role, created_at, updated_at) VALUES (?, 'n', 'n', 'x', 'USER', 0, 0)")
        .bind(&email)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    let started = Instant::now();
    let answer = request_reset(&app, &email).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn change_password_keeps_this_session_and_revokes_the_others() {
    let app = TestApp::spawn().await;
    let phone = app.member("change").await;
    let tablet = app.login(&phone.email, PASSWORD).await.json();
    let answer = change(&app, &phone, PASSWORD, NEW_PASSWORD).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json(), json!({ "message": "Password changed." }));
    assert_eq!(
        app.verify_token(&phone.access_token).await.status,
        StatusCode::OK
    );
    assert_code(
        &app.verify_token(tablet["access_token"].as_str().unwrap())
            .await,
        "GLOBAL_103",
    );
    assert_code(
        &app.reissue(json!(phone.id), tablet["refresh_token"].as_str().unwrap())
            .await,
        "AUTH_007",
    );
    assert_eq!(
        app.reissue(json!(phone.id), &phone.refresh_token)
            .await
            .status,
        StatusCode::OK
    );
    assert_code(&app.login(&phone.email, PASSWORD).await, "AUTH_006");
    assert_eq!(
        app.login(&phone.email, NEW_PASSWORD).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn change_password_needs_the_current_password() {
    let app = TestApp::spawn().await;
    let member = app.member("change-wrong").await;
    assert_code(
        &change(&app, &member, "not-my-pass-1", NEW_PASSWORD).await,
        "AUTH_006",
    );
    assert_eq!(
        app.login(&member.email, PASSWORD).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn change_password_acts_for_the_caller_only() {
    let app = TestApp::spawn().await;
    let member = app.member("change-self").await;
    let other = app.member("change-other").await;
    let answer = app
        .post_json_as(
            &member,
            "/auth/changePassword",
            json!({ "member_id": other.id, "current_password": PASSWORD, "new_password": NEW_PASSWORD }),
        )
        .await;
    assert_code(&answer, "GLOBAL_105");
    let missing = app
        .post_json_as(
            &member,
            "/auth/changePassword",
            json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD }),
        )
        .await;
    assert_code(&missing, "GLOBAL_002");
    let anonymous = app
        .post_json(
            "/auth/changePassword",
            json!({ "member_id": member.id, "current_password": PASSWORD, "new_password": NEW_PASSWORD }),
        )
        .await;
    assert_code(&anonymous, "GLOBAL_103");
    assert_code(&change(&app, &member, PASSWORD, "weak").await, "GLOBAL_002");
}

#[tokio::test]
async fn guesses_of_the_current_password_are_rate_limited() {
    // The login that made the session counts too: one login and two guesses use up three.
    let app = TestApp::spawn_with(&[("HEART_RATE_LIMIT_LOGIN_PER_EMAIL", "3/300")]).await;
    app.clock.freeze();
    let member = app.member("change-limit").await;
    for _ in 0..2 {
        assert_code(
            &change(&app, &member, "guess-pass-1", NEW_PASSWORD).await,
            "AUTH_006",
        );
    }
    assert_code(
        &change(&app, &member, PASSWORD, NEW_PASSWORD).await,
        "GLOBAL_106",
    );
}

// --- Data export ------------------------------------------------------------------------------

fn unzip(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).expect("a zip");
    (0..zip.len())
        .map(|i| {
            let mut file = zip.by_index(i).unwrap();
            let mut data = Vec::new();
            file.read_to_end(&mut data).expect("entry with a good CRC");
            (file.name().to_owned(), data)
        })
        .collect()
}

fn entry<'a>(entries: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    &entries
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name} in the archive"))
        .1
}

/// Posts of `writer` with these contents, written straight into the database, all at the same time.
async fn write_posts(app: &TestApp, writer: i64, contents: impl IntoIterator<Item = String>) {
    let now = app.clock.now();
    for content in contents {
        sqlx::query(
            "INSERT INTO posts (writer_id, content, created_at, updated_at) VALUES (?, ?, ?, ?)",
        )
        .bind(writer)
        .bind(content)
        .bind(now)
        .bind(now)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    }
}

async fn export(app: &TestApp, member: &TestMember) -> TestResponse {
    app.get_as(member, &format!("/member/export?member_id={}", member.id))
        .await
}

#[tokio::test]
async fn export_is_a_zip_of_the_members_data_and_stored_images() {
    let app = TestApp::spawn().await;
    let member = app.member("export").await;
    let friend = app.member("friend").await;
    let pest = app.member("pest").await;
    let target = |t: &TestMember| json!({ "member_id": member.id, "target_id": t.id });
    assert_eq!(
        app.post_json_as(&member, "/member/follow", target(&friend))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.post_json_as(&member, "/member/block", target(&pest))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.post_json_as(
            &member,
            "/member/report",
            json!({ "member_id": member.id, "target_id": pest.id, "reason": "spam" })
        )
        .await
        .status,
        StatusCode::OK
    );
    app.post_json_as(
        &friend,
        "/member/follow",
        json!({ "member_id": friend.id, "target_id": member.id }),
    )
    .await;
    let avatar = app
        .multipart_as(
            &member,
            "/member/uploadAvatar",
            &[
                Part::text("member_id", &member.id.to_string()),
                Part::file("file", "me.png", fixtures::png(3, 3)),
            ],
        )
        .await;
    assert_eq!(avatar.status, StatusCode::CREATED, "{}", avatar.text());
    let with_images = app
        .register_post(
            &member,
            "two pictures",
            &[fixtures::png(4, 4), fixtures::jpeg(8, 8)],
        )
        .await
        .json();
    app.register_post(&member, "words only", &[]).await;
    app.register_post(&friend, "not mine", &[fixtures::png(5, 5)])
        .await;

    let answer = export(&app, &member).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(
        answer.header("content-type").as_deref(),
        Some("application/zip")
    );
    assert!(answer
        .header("content-disposition")
        .unwrap()
        .starts_with("attachment; filename=\"heart-to-heart-"));
    let entries = unzip(&answer.body);

    let profile: Value = serde_json::from_slice(entry(&entries, "member.json")).unwrap();
    assert_eq!(profile["member"]["member_id"], member.id);
    assert_eq!(profile["member"]["email"], member.email);
    assert_eq!(profile["follows"][0]["member_id"], friend.id);
    assert_eq!(profile["followers"][0]["member_id"], friend.id);
    assert_eq!(profile["blocks"][0]["member_id"], pest.id);
    assert_eq!(profile["reports_made"][0]["target_id"], pest.id);
    assert_eq!(profile["reports_made"][0]["reason"], "spam");
    assert_eq!(profile["sessions"].as_array().unwrap().len(), 1);
    let text = String::from_utf8_lossy(entry(&entries, "member.json")).into_owned();
    assert!(
        !text.contains("password") && !text.contains("argon2"),
        "no secrets: {text}"
    );
    assert!(!text.contains(&member.refresh_token));

    let posts: Value = serde_json::from_slice(entry(&entries, "posts.json")).unwrap();
    let posts = posts.as_array().unwrap();
    assert_eq!(posts.len(), 2, "only the member's posts");
    assert_eq!(posts[0]["content"], "two pictures");
    assert_eq!(posts[1]["images"], json!([]));
    let urls = with_images["image_urls"].as_array().unwrap();
    let names = posts[0]["images"].as_array().unwrap();
    assert_eq!(names.len(), 2);
    for (url, name) in urls.iter().zip(names) {
        let stored = app.fetch_media(url.as_str().unwrap()).await;
        assert_eq!(entry(&entries, name.as_str().unwrap()), stored.as_slice());
    }
    let avatar_file = profile["member"]["avatar_file"].as_str().unwrap();
    assert_eq!(
        entry(&entries, avatar_file),
        app.fetch_media(avatar.json()["avatar_url"].as_str().unwrap())
            .await
            .as_slice()
    );
    assert_eq!(
        entries.len(),
        2 + 3,
        "two JSON files, the avatar and two images"
    );
}

#[tokio::test]
async fn export_is_for_its_owner_only() {
    let app = TestApp::spawn().await;
    let member = app.member("export-owner").await;
    let other = app.member("export-other").await;
    let answer = app
        .get_as(&member, &format!("/member/export?member_id={}", other.id))
        .await;
    assert_code(&answer, "GLOBAL_105");
    assert_code(&app.get_as(&member, "/member/export").await, "GLOBAL_007");
    assert_code(
        &app.get(&format!("/member/export?member_id={}", member.id))
            .await,
        "GLOBAL_103",
    );
}

#[tokio::test]
async fn one_export_per_member_per_hour() {
    let app = TestApp::spawn().await;
    let member = app.member("export-hourly").await;
    let other = app.member("export-hourly-other").await;
    assert_eq!(export(&app, &member).await.status, StatusCode::OK);
    let again = export(&app, &member).await;
    assert_code(&again, "GLOBAL_106");
    let retry: i64 = again.header("retry-after").unwrap().parse().unwrap();
    assert!((3590..=3600).contains(&retry), "{retry}");
    assert_eq!(
        export(&app, &other).await.status,
        StatusCode::OK,
        "per member"
    );
    exports_again_an_hour_later(&app, member).await;
}

/// An hour later `member` (logged in anew: the access token expired meanwhile) may export again;
/// returns the member with the new token.
async fn exports_again_an_hour_later(app: &TestApp, member: TestMember) -> TestMember {
    app.clock.advance(3600);
    let login = app.login(&member.email, PASSWORD).await.json();
    let member = TestMember {
        access_token: login["access_token"].as_str().unwrap().to_owned(),
        ..member
    };
    assert_eq!(export(app, &member).await.status, StatusCode::OK);
    member
}

/// Starts `member`'s export and reads only its first frame, then drops the answer: the phone that
/// loses its connection part-way through a large archive.
async fn cut_export(app: &TestApp, member: &TestMember) {
    drop(started_export(app, member).await);
}

/// Starts `member`'s export and reads its first frame; the rest is left unread.
async fn started_export(app: &TestApp, member: &TestMember) -> axum::body::Body {
    use http_body_util::BodyExt as _;
    let request = axum::http::Request::get(format!("/member/export?member_id={}", member.id))
        .header("authorization", format!("Bearer {}", member.access_token))
        .body(axum::body::Body::empty())
        .unwrap();
    let response = app.answer_from([127, 0, 0, 1], request).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let first = body.frame().await.expect("a first frame").unwrap();
    assert!(first.is_data());
    body
}

/// Whether `member` may start an export within `secs` seconds, waiting for a cut one to be given
/// back (the export's writer notices the dropped answer at its next write).
async fn export_allowed_within(app: &TestApp, member: &TestMember, secs: u64) -> bool {
    let path = format!("/member/export?member_id={}", member.id);
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let head = app
            .with_token(Method::HEAD, &path, &member.access_token)
            .await;
        if head.status == StatusCode::OK {
            return true;
        }
        // A HEAD has no body: the status and Retry-After of the GET's GLOBAL_106.
        assert_eq!(head.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(head.header("retry-after").is_some());
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An export the phone stops reading may be started again within its hour, up to three starts;
/// a completed one still closes the hour.
#[tokio::test]
async fn a_cut_export_may_be_started_again_three_times_an_hour() {
    let app = TestApp::spawn().await;
    let member = app.member("export-cut").await;
    let finisher = app.member("export-finisher").await;
    // About 2 MB of posts.json: far more than the export's channel holds, so the writer is still
    // writing when the answer is dropped.
    for writer in [member.id, finisher.id] {
        write_posts(&app, writer, (0..500).map(|_| "x".repeat(4000))).await;
    }
    for start in 1..=3 {
        cut_export(&app, &member).await;
        if start < 3 {
            assert!(
                export_allowed_within(&app, &member, 10).await,
                "start {start} was cut: it may be started again"
            );
        }
    }
    assert!(
        !export_allowed_within(&app, &member, 2).await,
        "three starts in the hour, all cut: the fourth waits for the next hour"
    );
    let refused = export(&app, &member).await;
    assert_code(&refused, "GLOBAL_106");
    let retry: i64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((3500..=3600).contains(&retry), "{retry}");

    // A cut and then a whole download: the whole one closes the hour.
    cut_export(&app, &finisher).await;
    assert!(export_allowed_within(&app, &finisher, 10).await);
    let whole = export(&app, &finisher).await;
    assert_eq!(whole.status, StatusCode::OK);
    assert_eq!(unzip(&whole.body).len(), 2, "member.json and posts.json");
    assert_code(&export(&app, &finisher).await, "GLOBAL_106");

    // The next hour starts afresh.
    exports_again_an_hour_later(&app, member).await;
}

/// An export that outlasts its hour and is cut after the next hour's export has completed gives
/// back only its own hour: the next hour stays closed.
#[tokio::test]
async fn a_cut_export_of_an_earlier_hour_leaves_the_next_hour_closed() {
    let app = TestApp::spawn().await;
    let member = app.member("export-long").await;
    write_posts(&app, member.id, (0..500).map(|_| "x".repeat(4000))).await;
    let slow = started_export(&app, &member).await;
    let member = exports_again_an_hour_later(&app, member).await;
    drop(slow);
    assert!(
        !export_allowed_within(&app, &member, 3).await,
        "the earlier hour's cut does not open the next hour"
    );
}

/// A `HEAD` of the export answers what a `GET` would (status, headers, no body) and starts
/// nothing: the member's hourly export is still there to take.
#[tokio::test]
async fn a_head_of_the_export_starts_nothing() {
    let app = TestApp::spawn().await;
    let member = app.member("export-head").await;
    let other = app.member("export-head-other").await;
    let path = format!("/member/export?member_id={}", member.id);
    let head = app
        .with_token(Method::HEAD, &path, &member.access_token)
        .await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(
        head.header("content-type").as_deref(),
        Some("application/zip")
    );
    assert!(head
        .header("content-disposition")
        .is_some_and(|d| d.starts_with("attachment;") && d.ends_with(".zip\"")));
    assert_eq!(
        head.header("content-length"),
        None,
        "the archive's length is not known"
    );
    assert!(head.body.is_empty());
    let (claimed,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM data_exports WHERE member_id = ?")
            .bind(member.id)
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
    assert_eq!(claimed, 0, "no export started");

    assert_eq!(export(&app, &member).await.status, StatusCode::OK);
    let head = app
        .with_token(Method::HEAD, &path, &member.access_token)
        .await;
    assert_eq!(head.status, StatusCode::TOO_MANY_REQUESTS, "as a GET would");
    assert!(head.header("retry-after").is_some());
    let theirs = app
        .with_token(
            Method::HEAD,
            &format!("/member/export?member_id={}", other.id),
            &member.access_token,
        )
        .await;
    assert_eq!(theirs.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn an_export_pages_through_more_rows_than_one_page() {
    let app = TestApp::spawn().await;
    let member = app.member("export-pages").await;
    write_posts(&app, member.id, (0..450).map(|i| format!("post {i}"))).await;
    let answer = export(&app, &member).await;
    assert_eq!(answer.status, StatusCode::OK);
    let posts: Value = serde_json::from_slice(entry(&unzip(&answer.body), "posts.json")).unwrap();
    let contents: Vec<&str> = posts
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents.len(), 450);
    assert_eq!(contents[0], "post 0");
    assert_eq!(contents[449], "post 449");
}

/// Members deleting their accounts at the same moment all get their deletion. On SQLite a deletion
/// that read the member's sessions before writing failed at once with `SQLITE_BUSY` (`503`) when
/// another deletion had written meanwhile.
#[tokio::test]
async fn accounts_deleted_at_once_all_go() {
    let app = TestApp::spawn().await;
    let mut members = Vec::new();
    for n in 0..8 {
        members.push(app.member(&format!("leaving-{n}")).await);
    }
    let paths: Vec<String> = members
        .iter()
        .map(|member| format!("/member/delete/{}", member.id))
        .collect();
    let deletions = members
        .iter()
        .zip(&paths)
        .map(|(member, path)| app.delete_as(member, path));
    for response in futures_util::future::join_all(deletions).await {
        assert_eq!(
            response.status,
            StatusCode::NO_CONTENT,
            "{}",
            response.text()
        );
    }
    assert_eq!(app.count("members").await, 0);
}
