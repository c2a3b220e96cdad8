//! Operations endpoints: health, readiness, profile, metrics, OpenAPI and Swagger UI.

use axum::http::StatusCode;
use heart_testkit::log::LogCapture;

use crate::helpers::*;

#[tokio::test]
async fn healthz_answers_ok() {
    let app = TestApp::spawn().await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.text(), "ok");
}

#[tokio::test]
async fn readyz_reports_database_and_cache() {
    let app = TestApp::spawn().await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status, StatusCode::OK);
    let body = response.json();
    let expected = Backends::requested();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["database"]["status"], "up");
    assert_eq!(body["database"]["backend"], expected.database);
    assert_eq!(body["cache"]["status"], "up");
    assert_eq!(body["cache"]["backend"], expected.cache);
}

#[tokio::test]
async fn readyz_is_503_when_the_database_is_gone() {
    let app = TestApp::spawn().await;
    app.state.db.pool.close().await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.json()["database"]["status"], "down");
}

#[tokio::test]
async fn a_database_outage_is_global_503() {
    let app = TestApp::spawn().await;
    app.state.db.pool.close().await;
    assert_code(&app.send_code(&unique_email("outage")).await, "GLOBAL_503");
    assert_code(
        &app.login(&unique_email("outage"), PASSWORD).await,
        "GLOBAL_503",
    );
}

#[tokio::test]
async fn profile_names_the_active_profile() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/profile").await.text(), "local");
    let staging = TestApp::spawn_with(&[
        ("HEART_PROFILE", "staging"),
        ("HEART_ARGON2_MEMORY_KIB", "19456"),
        ("HEART_ARGON2_ITERATIONS", "2"),
        // staging refuses the public development key
        ("HEART_JWT_SIGNING_KEY", crate::hostile_core::A_SIGNING_KEY),
    ])
    .await;
    assert_eq!(staging.get("/profile").await.text(), "staging");
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_on_the_admin_router() {
    let app = TestApp::spawn().await;
    app.get("/healthz").await;
    app.login(&unique_email("metrics"), PASSWORD).await;
    app.get("/some/unknown/path/12345").await;
    let response = app.admin_get("/metrics").await;
    assert_eq!(response.status, StatusCode::OK);
    let text = response.text();
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="/healthz",status="200"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"route="/auth/login",status="401""#),
        "{text}"
    );
    assert!(
        text.contains("http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains(r#"route="unmatched""#));
    // Every series' name and labels (a sample line up to its value) and every comment line: a
    // sample's value may well hold these digits (a duration sum of 0.0123456…), a label may not.
    let series = text
        .lines()
        .map(|line| match (line.starts_with('#'), line.find('}')) {
            (true, _) => line,
            (false, Some(end)) => &line[..=end],
            (false, None) => line.split(' ').next().unwrap_or(line),
        });
    for series in series {
        assert!(
            !series.contains("12345") && !series.contains("/some/unknown"),
            "raw paths never become labels: {series}"
        );
    }
    // Not on the public port.
    assert_code(&app.get("/metrics").await, "GLOBAL_001");
}

#[tokio::test]
async fn the_openapi_document_covers_every_auth_endpoint() {
    let app = TestApp::spawn().await;
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status, StatusCode::OK);
    let doc = response.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for (path, method) in [
        ("/auth/emailVerificationCode", "post"),
        ("/auth/confirmVerificationCode", "post"),
        ("/auth/join", "post"),
        ("/auth/login", "post"),
        ("/auth/verifyAccessToken", "get"),
        ("/auth/reissueToken", "post"),
        ("/auth/logout", "post"),
        ("/healthz", "get"),
        ("/readyz", "get"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} documented"
        );
    }
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

#[tokio::test]
async fn swagger_ui_is_served() {
    let app = TestApp::spawn().await;
    let response = app.get("/swagger-ui/").await;
    assert_eq!(response.status, StatusCode::OK);
    assert!(response.text().contains("swagger"), "{}", response.text());
}

#[tokio::test]
async fn every_request_writes_one_access_line_with_route_status_member_and_request_id() {
    let app = TestApp::spawn().await;
    let member = app.member("access").await;
    // tracing caches each callsite's interest process-wide: while another test's thread rebuilds
    // it (its own `set_default`), this thread's first event can be dropped. One more request then
    // sees the line; each attempt is captured on its own.
    let mut attempts = 0;
    let (text, lines) = loop {
        attempts += 1;
        let captured = LogCapture::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || writer.clone())
            .finish();
        // This test's runtime has one thread, so every event of the request lands here.
        let guard = tracing::subscriber::set_default(subscriber);
        let request = axum::http::Request::get(format!("/member/profile?member_id={}", member.id))
            .header("authorization", format!("Bearer {}", member.access_token))
            .header("x-request-id", "edge-made-id-42")
            .body(axum::body::Body::empty())
            .unwrap();
        let answer = app.send(request).await;
        drop(guard);
        assert_eq!(answer.status, StatusCode::OK);
        let text = captured.text();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .filter(|l: &serde_json::Value| l["target"] == "access")
            .collect();
        if !lines.is_empty() || attempts == 3 {
            break (text, lines);
        }
    };
    assert_eq!(lines.len(), 1, "{text}");
    let fields = &lines[0]["fields"];
    assert_eq!(fields["route"], "/member/profile");
    assert_eq!(fields["status"], 200);
    assert_eq!(fields["member_id"], member.id);
    assert_eq!(fields["request_id"], "edge-made-id-42");
    assert!(fields["latency_ms"].as_f64().is_some(), "{fields}");
}
