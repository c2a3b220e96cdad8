//! Whatever goes wrong, the answer is a contract error body: never a framework default, HTML or empty.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn an_unknown_route_is_global_001() {
    let app = TestApp::spawn().await;
    assert_code(&app.get("/no/such/route").await, "GLOBAL_001");
    assert_code(
        &app.post_json("/auth/nothing", json!({})).await,
        "GLOBAL_001",
    );
    assert_code(&app.get("/swagger-ui/no-such-file.js").await, "GLOBAL_001");
}

#[tokio::test]
async fn a_wrong_method_is_global_003() {
    let app = TestApp::spawn().await;
    assert_code(&app.get("/auth/login").await, "GLOBAL_003");
    let delete = Request::delete("/auth/join").body(Body::empty()).unwrap();
    assert_code(&app.send(delete).await, "GLOBAL_003");
    assert_code(
        &app.post_json("/auth/verifyAccessToken", json!({})).await,
        "GLOBAL_003",
    );
}

#[tokio::test]
async fn malformed_json_is_global_004() {
    let app = TestApp::spawn().await;
    let request = Request::post("/auth/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{\"email\":"))
        .unwrap();
    assert_code(&app.send(request).await, "GLOBAL_004");
}

#[tokio::test]
async fn a_wrong_content_type_is_global_004() {
    let app = TestApp::spawn().await;
    let request = Request::post("/auth/login")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from("{}"))
        .unwrap();
    assert_code(&app.send(request).await, "GLOBAL_004");
    let none = Request::post("/auth/login").body(Body::from("{}")).unwrap();
    assert_code(&app.send(none).await, "GLOBAL_004");
}

#[tokio::test]
async fn a_wrong_json_type_is_global_004() {
    let app = TestApp::spawn().await;
    assert_code(
        &app.post_json("/auth/login", json!({ "email": 5, "password": [] }))
            .await,
        "GLOBAL_004",
    );
    assert_code(
        &app.post_json("/auth/login", json!([1, 2])).await,
        "GLOBAL_004",
    );
}

#[tokio::test]
async fn an_empty_body_is_global_004() {
    let app = TestApp::spawn().await;
    let request = Request::post("/auth/join")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::empty())
        .unwrap();
    assert_code(&app.send(request).await, "GLOBAL_004");
}

#[tokio::test]
async fn a_body_over_the_limit_is_global_008() {
    let app = TestApp::spawn_with(&[("HEART_MAX_JSON_BODY_BYTES", "1024")]).await;
    let big = json!({ "email": "a@b.co", "password": "x".repeat(4096) });
    assert_code(&app.post_json("/auth/login", big).await, "GLOBAL_008");
}

#[tokio::test]
async fn a_body_over_the_limit_without_content_length_is_global_008() {
    let app = TestApp::spawn_with(&[("HEART_MAX_JSON_BODY_BYTES", "1024")]).await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![
        Ok(b"{\"email\":\"".to_vec()),
        Ok(vec![b'a'; 2048]),
        Ok(b"\"}".to_vec()),
    ];
    let body = Body::from_stream(futures_util::stream::iter(chunks));
    let request = Request::post("/auth/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .unwrap();
    assert_code(&app.send(request).await, "GLOBAL_008");
}

#[tokio::test]
async fn no_error_answer_is_html_or_empty() {
    let app = TestApp::spawn().await;
    let requests = vec![
        Request::get("/").body(Body::empty()).unwrap(),
        Request::get("/auth/verifyAccessToken")
            .body(Body::empty())
            .unwrap(),
        Request::put("/auth/login").body(Body::empty()).unwrap(),
        Request::post("/auth/reissueToken")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("nope"))
            .unwrap(),
        Request::get("/%FF%FE").body(Body::empty()).unwrap(),
    ];
    for request in requests {
        let response = app.send(request).await;
        assert_error_shape(&response);
        assert!(
            !response.text().contains('<'),
            "no HTML: {}",
            response.text()
        );
    }
}

#[tokio::test]
async fn every_answer_carries_a_request_id() {
    let app = TestApp::spawn().await;
    let response = app.get("/no/such/route").await;
    assert!(response
        .header("x-request-id")
        .is_some_and(|id| id.len() >= 32));
    let given = Request::get("/healthz")
        .header("x-request-id", "from-the-edge-1")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        app.send(given).await.header("x-request-id").as_deref(),
        Some("from-the-edge-1")
    );
}

#[tokio::test]
async fn validation_errors_list_the_fields() {
    let app = TestApp::spawn().await;
    let response = app
        .post_json("/auth/emailVerificationCode", json!({ "email": "bad" }))
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    let body = response.json();
    assert_eq!(body["code"], "GLOBAL_002");
    assert_eq!(
        body["errors"],
        json!([{ "field": "email", "message": "must be a valid email address" }])
    );
}
