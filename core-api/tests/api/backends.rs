//! The backends in use are the ones asked for: a real-backend run never silently falls back.

use crate::helpers::*;

#[tokio::test]
async fn the_requested_backends_are_the_ones_in_use() {
    let app = TestApp::spawn().await;
    let requested = Backends::requested();
    assert_eq!(app.state.db.kind.name(), requested.database);
    assert_eq!(app.state.cache.backend(), requested.cache);
    assert_eq!(app.state.mailer.backend(), requested.mail);
}

#[tokio::test]
async fn the_whole_sign_up_flow_works_on_these_backends() {
    let app = TestApp::spawn().await;
    let member = app.member("flow").await;
    assert_eq!(
        app.verify_token(&member.access_token).await.status.as_u16(),
        200
    );
    let reissued = app
        .reissue(
            serde_json::json!(member.id.to_string()),
            &member.refresh_token,
        )
        .await;
    assert_eq!(reissued.status.as_u16(), 200);
    let access = reissued.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(app.logout(&access).await.status.as_u16(), 200);
    assert_code(&app.verify_token(&access).await, "GLOBAL_103");
}
