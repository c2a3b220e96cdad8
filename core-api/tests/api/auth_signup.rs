//! Sign-up: verification codes by mail, confirmation, join.

use axum::http::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn sending_a_code_answers_202_and_mails_an_8_character_code() {
    let app = TestApp::spawn().await;
    let email = unique_email("send");
    let response = app.send_code(&email).await;
    assert_eq!(response.status, StatusCode::ACCEPTED);
    assert_eq!(response.json(), json!({ "message": "Email sent." }));
    let mails = app.mails_to(&email);
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0].contains("Heart to Heart"),
        "mail names the app: {}",
        mails[0]
    );
    let code = app.last_code_for(&email);
    assert_eq!(code.len(), 8);
    assert!(code.chars().all(|c| c.is_ascii_alphanumeric()));
}

#[tokio::test]
async fn the_correct_code_is_valid() {
    let app = TestApp::spawn().await;
    let email = unique_email("confirm");
    app.send_code(&email).await;
    let response = app.confirm(&email, &app.last_code_for(&email)).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        response.json(),
        json!({ "message": "Valid Verification Code." })
    );
}

#[tokio::test]
async fn email_case_and_spaces_do_not_matter() {
    let app = TestApp::spawn().await;
    let email = unique_email("case");
    app.send_code(&format!("  {}  ", email.to_uppercase()))
        .await;
    let code = app.last_code_for(&email);
    assert_eq!(
        app.confirm(&email.to_uppercase(), &code).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_resend_replaces_the_code() {
    let app = TestApp::spawn().await;
    let email = unique_email("resend");
    app.send_code(&email).await;
    let first = app.last_code_for(&email);
    app.send_code(&email).await;
    let second = app.last_code_for(&email);
    assert_eq!(app.mails_to(&email).len(), 2);
    if first != second {
        assert_code(&app.confirm(&email, &first).await, "AUTH_003");
    }
    assert_eq!(app.confirm(&email, &second).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_wrong_code_is_auth_003() {
    let app = TestApp::spawn().await;
    let email = unique_email("wrong");
    app.send_code(&email).await;
    let code = app.last_code_for(&email);
    let wrong = if code == "AAAAAAAA" {
        "BBBBBBBB"
    } else {
        "AAAAAAAA"
    };
    assert_code(&app.confirm(&email, wrong).await, "AUTH_003");
}

#[tokio::test]
async fn codes_are_case_sensitive() {
    let app = TestApp::spawn().await;
    let email = unique_email("sensitive");
    // Resend until the code has letters, so that swapping case changes it.
    let mut code = String::new();
    for _ in 0..5 {
        app.send_code(&email).await;
        code = app.last_code_for(&email);
        if code.chars().any(|c| c.is_ascii_alphabetic()) {
            break;
        }
    }
    let swapped: String = code
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    assert_ne!(swapped, code);
    assert_code(&app.confirm(&email, &swapped).await, "AUTH_003");
    assert_eq!(app.confirm(&email, &code).await.status, StatusCode::OK);
}

#[tokio::test]
async fn confirming_without_a_code_sent_is_auth_002() {
    let app = TestApp::spawn().await;
    assert_code(
        &app.confirm(&unique_email("never"), "ABCD1234").await,
        "AUTH_002",
    );
}

#[tokio::test]
async fn a_code_expires_after_5_minutes() {
    let app = TestApp::spawn().await;
    let email = unique_email("expire");
    app.send_code(&email).await;
    let code = app.last_code_for(&email);
    app.clock.advance(5 * 60);
    assert_code(&app.confirm(&email, &code).await, "AUTH_004");
}

#[tokio::test]
async fn a_code_is_still_valid_just_before_5_minutes() {
    let app = TestApp::spawn().await;
    app.clock.freeze();
    let email = unique_email("notyet");
    app.send_code(&email).await;
    let code = app.last_code_for(&email);
    app.clock.advance(5 * 60 - 2);
    assert_eq!(app.confirm(&email, &code).await.status, StatusCode::OK);
}

#[tokio::test]
async fn five_wrong_codes_discard_the_code() {
    let app = TestApp::spawn().await;
    let email = unique_email("brute");
    app.send_code(&email).await;
    let code = app.last_code_for(&email);
    let wrong = if code == "AAAAAAAA" {
        "BBBBBBBB"
    } else {
        "AAAAAAAA"
    };
    for _ in 0..5 {
        assert_code(&app.confirm(&email, wrong).await, "AUTH_003");
    }
    // Even the right code no longer works: a new one must be requested.
    assert_code(&app.confirm(&email, &code).await, "AUTH_002");
}

#[tokio::test]
async fn sending_a_code_to_a_member_is_auth_000() {
    let app = TestApp::spawn().await;
    let email = unique_email("member");
    app.sign_up(&email, PASSWORD).await;
    assert_code(&app.send_code(&email).await, "AUTH_000");
    assert_code(&app.send_code(&email.to_uppercase()).await, "AUTH_000");
}

#[tokio::test]
async fn sending_a_code_to_an_invalid_email_is_global_002() {
    let app = TestApp::spawn().await;
    for bad in ["", "not-an-email", "a@b", "two@@example.com"] {
        let response = app.send_code(bad).await;
        assert_code(&response, "GLOBAL_002");
        assert_eq!(response.json()["errors"][0]["field"], "email");
    }
    let long = format!("{}@example.com", "a".repeat(60)).repeat(4);
    assert_code(&app.send_code(&long).await, "GLOBAL_002");
}

#[tokio::test]
async fn join_after_confirmation_creates_the_member() {
    let app = TestApp::spawn().await;
    let email = unique_email("join");
    app.send_code(&email).await;
    app.confirm(&email, &app.last_code_for(&email)).await;
    let response = app.join(&email, PASSWORD).await;
    assert_eq!(response.status, StatusCode::CREATED);
    assert!(response.json()["member_id"].as_i64().unwrap() > 0);
    assert_eq!(app.login(&email, PASSWORD).await.status, StatusCode::OK);
}

#[tokio::test]
async fn join_without_confirmation_is_auth_012() {
    let app = TestApp::spawn().await;
    let email = unique_email("unverified");
    assert_code(&app.join(&email, PASSWORD).await, "AUTH_012");
    // A code that was only sent, never confirmed, is not enough either.
    app.send_code(&email).await;
    assert_code(&app.join(&email, PASSWORD).await, "AUTH_012");
}

#[tokio::test]
async fn a_confirmation_lasts_30_minutes() {
    let app = TestApp::spawn().await;
    let email = unique_email("late");
    app.send_code(&email).await;
    app.confirm(&email, &app.last_code_for(&email)).await;
    app.clock.advance(30 * 60);
    assert_code(&app.join(&email, PASSWORD).await, "AUTH_012");
}

#[tokio::test]
async fn join_with_a_taken_email_is_auth_000_whatever_its_case() {
    let app = TestApp::spawn().await;
    let email = unique_email("taken");
    app.sign_up(&email, PASSWORD).await;
    assert_code(&app.join(&email.to_uppercase(), PASSWORD).await, "AUTH_000");
}

#[tokio::test]
async fn join_validates_every_field_and_names_them() {
    let app = TestApp::spawn().await;
    let response = app
        .post_json("/auth/join", json!({ "email": "nope", "name": "   ", "nickname": "x".repeat(21), "password": "short" }))
        .await;
    assert_code(&response, "GLOBAL_002");
    let fields: Vec<String> = response.json()["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fields, ["email", "name", "nickname", "password"]);
}

#[tokio::test]
async fn join_requires_a_letter_and_a_digit_in_the_password() {
    let app = TestApp::spawn().await;
    let email = unique_email("pw");
    for weak in ["onlyletters", "12345678", &"a1".repeat(33)] {
        let response = app.join(&email, weak).await;
        assert_code(&response, "GLOBAL_002");
        assert_eq!(response.json()["errors"][0]["field"], "password");
    }
}

#[tokio::test]
async fn missing_fields_are_validation_errors_not_unreadable_bodies() {
    let app = TestApp::spawn().await;
    let response = app
        .post_json("/auth/join", json!({ "email": unique_email("missing") }))
        .await;
    assert_code(&response, "GLOBAL_002");
    let body = response.json();
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["name", "nickname", "password"]);
}

#[tokio::test]
async fn names_are_stored_trimmed() {
    let app = TestApp::spawn().await;
    let email = unique_email("trim");
    app.send_code(&email).await;
    app.confirm(&email, &app.last_code_for(&email)).await;
    let joined = app.post_json("/auth/join", json!({ "email": email, "name": "  Kim  ", "nickname": " kimmy ", "password": PASSWORD })).await;
    assert_eq!(joined.status, StatusCode::CREATED);
    let login = app.login(&email, PASSWORD).await.json();
    assert_eq!(login["name"], "Kim");
    assert_eq!(login["nickname"], "kimmy");
}

#[tokio::test]
async fn a_confirmation_is_used_up_by_join() {
    let app = TestApp::spawn().await;
    let email = unique_email("once");
    app.sign_up(&email, PASSWORD).await;
    // The verification row is gone: confirming again says no code was sent.
    assert_code(&app.confirm(&email, "ABCD1234").await, "AUTH_002");
}

#[tokio::test]
async fn mail_failure_is_auth_001_and_leaves_no_usable_code() {
    // Nothing listens on port 9: the SMTP connection is refused.
    let app = TestApp::spawn_with(&[
        ("HEART_SMTP_HOST", "127.0.0.1"),
        ("HEART_SMTP_PORT", "9"),
        ("HEART_SMTP_TLS", "none"),
    ])
    .await;
    let email = unique_email("nomail");
    assert_code(&app.send_code(&email).await, "AUTH_001");
    assert_code(&app.confirm(&email, "ABCD1234").await, "AUTH_002");
}

#[tokio::test]
async fn an_unwritable_outbox_is_auth_001() {
    let app = TestApp::spawn_with(&[
        ("HEART_SMTP_HOST", ""),
        ("HEART_MAIL_OUTBOX_DIR", "/proc/heart-outbox"),
    ])
    .await;
    assert_code(&app.send_code(&unique_email("outbox")).await, "AUTH_001");
}
