//! Login, access tokens, reissue with rotation and reuse detection, logout.

use axum::http::{Method, StatusCode};
use ed25519_dalek::pkcs8::EncodePrivateKey;
use heart_shared::token::{ed25519_jwk, key_id, AccessClaims};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn login_answers_the_member_and_a_token_pair() {
    let app = TestApp::spawn().await;
    let email = unique_email("login");
    let id = app.sign_up(&email, PASSWORD).await;
    let response = app.login(&email.to_uppercase(), PASSWORD).await;
    assert_eq!(response.status, StatusCode::OK);
    let body = response.json();
    assert_eq!(body["member_id"], id);
    assert_eq!(body["name"], "Test Name");
    assert_eq!(body["nickname"], "tester");
    assert!(
        body["access_token"].as_str().unwrap().split('.').count() == 3,
        "a JWT"
    );
    assert!(
        body["refresh_token"].as_str().unwrap().len() >= 43,
        "256 random bits"
    );
}

#[tokio::test]
async fn the_access_token_carries_kid_sub_sid_jti_iat_exp() {
    let app = TestApp::spawn().await;
    let member = app.member("claims").await;
    let header = jsonwebtoken::decode_header(&member.access_token).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.kid.as_deref(), Some(app.state.tokens.kid()));
    let claims = app
        .state
        .tokens
        .verifier()
        .verify(&member.access_token, app.clock.now())
        .unwrap();
    assert_eq!(claims.sub, member.id.to_string());
    assert_eq!(claims.sid.len(), 32);
    assert!(!claims.jti.is_empty());
    assert_eq!(claims.exp - claims.iat, 15 * 60, "default lifetime");
}

#[tokio::test]
async fn wrong_password_and_unknown_email_answer_alike() {
    let app = TestApp::spawn().await;
    let email = unique_email("creds");
    app.sign_up(&email, PASSWORD).await;
    let wrong = app.login(&email, "wrong-password-1").await;
    let unknown = app.login(&unique_email("nobody"), PASSWORD).await;
    assert_code(&wrong, "AUTH_006");
    assert_code(&unknown, "AUTH_006");
    assert_eq!(wrong.json(), unknown.json());
}

#[tokio::test]
async fn each_login_is_its_own_session() {
    let app = TestApp::spawn().await;
    let email = unique_email("phones");
    app.sign_up(&email, PASSWORD).await;
    let phone_a = app.login(&email, PASSWORD).await.json();
    let phone_b = app.login(&email, PASSWORD).await.json();
    let sid = |login: &Value| {
        app.state
            .tokens
            .verifier()
            .verify(login["access_token"].as_str().unwrap(), app.clock.now())
            .unwrap()
            .sid
    };
    assert_ne!(sid(&phone_a), sid(&phone_b));
    // Logging out phone A leaves phone B logged in.
    assert_eq!(
        app.logout(phone_a["access_token"].as_str().unwrap())
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.verify_token(phone_b["access_token"].as_str().unwrap())
            .await
            .status,
        StatusCode::OK
    );
    let reissued = app
        .reissue(
            json!(phone_b["member_id"]),
            phone_b["refresh_token"].as_str().unwrap(),
        )
        .await;
    assert_eq!(reissued.status, StatusCode::OK);
}

#[tokio::test]
async fn a_valid_token_is_verified() {
    let app = TestApp::spawn().await;
    let member = app.member("verify").await;
    let response = app.verify_token(&member.access_token).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json(), json!({ "message": "verified" }));
}

#[tokio::test]
async fn a_missing_or_malformed_token_is_global_103() {
    let app = TestApp::spawn().await;
    assert_code(&app.get("/auth/verifyAccessToken").await, "GLOBAL_103");
    assert_code(&app.verify_token("not-a-jwt").await, "GLOBAL_103");
    assert_code(&app.verify_token("a.b.c").await, "GLOBAL_103");
}

fn foreign_signed(kid: &str, claims: &AccessClaims) -> String {
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let der = key.to_pkcs8_der().unwrap();
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(der.as_bytes())).unwrap()
}

fn claims_of(app: &TestApp, member: &TestMember) -> AccessClaims {
    app.state
        .tokens
        .verifier()
        .verify(&member.access_token, app.clock.now())
        .unwrap()
}

#[tokio::test]
async fn a_token_with_a_bad_signature_is_global_103() {
    let app = TestApp::spawn().await;
    let member = app.member("forged").await;
    let forged = foreign_signed(app.state.tokens.kid(), &claims_of(&app, &member));
    assert_code(&app.verify_token(&forged).await, "GLOBAL_103");
}

#[tokio::test]
async fn a_token_with_an_unknown_kid_is_global_103() {
    let app = TestApp::spawn().await;
    let member = app.member("kid").await;
    let other_kid = key_id(&ed25519_jwk(&[7u8; 32])).to_owned();
    assert_code(
        &app.verify_token(&foreign_signed(&other_kid, &claims_of(&app, &member)))
            .await,
        "GLOBAL_103",
    );
}

#[tokio::test]
async fn an_expired_token_is_global_104() {
    let app = TestApp::spawn().await;
    let member = app.member("expired").await;
    app.clock.advance(15 * 60);
    assert_code(&app.verify_token(&member.access_token).await, "GLOBAL_104");
}

#[tokio::test]
async fn access_token_lifetime_is_configurable() {
    let app = TestApp::spawn_with(&[("HEART_ACCESS_TOKEN_TTL_SECS", "60")]).await;
    app.clock.freeze();
    let member = app.member("ttl").await;
    app.clock.advance(59);
    assert_eq!(
        app.verify_token(&member.access_token).await.status,
        StatusCode::OK
    );
    app.clock.advance(1);
    assert_code(&app.verify_token(&member.access_token).await, "GLOBAL_104");
}

#[tokio::test]
async fn tokens_signed_with_a_previous_key_are_accepted_after_rotation() {
    let old = TestApp::spawn().await;
    let member = old.member("rotation").await;
    let previous = serde_json::to_string(old.state.tokens.jwks()).unwrap();
    let new_key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let pem = new_key.to_pkcs8_pem(Default::default()).unwrap();
    let rotated = TestApp::spawn_with(&[
        ("HEART_JWT_SIGNING_KEY", pem.as_str()),
        ("HEART_JWT_PREVIOUS_KEYS", previous.as_str()),
    ])
    .await;
    assert_ne!(rotated.state.tokens.kid(), old.state.tokens.kid());
    let claims = rotated
        .state
        .tokens
        .verifier()
        .verify(&member.access_token, rotated.clock.now())
        .unwrap();
    assert_eq!(claims.sub, member.id.to_string());
    let jwks = rotated.get("/.well-known/jwks.json").await.json();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, [rotated.state.tokens.kid(), old.state.tokens.kid()]);
}

#[tokio::test]
async fn the_public_keys_are_served_as_jwks() {
    let app = TestApp::spawn().await;
    let response = app.get("/.well-known/jwks.json").await;
    assert_eq!(response.status, StatusCode::OK);
    let body = response.json();
    let key = &body["keys"][0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["alg"], "EdDSA");
    assert_eq!(key["kid"], app.state.tokens.kid());
    assert!(key.get("d").is_none(), "no private part");
    // The edge builds its verifier from exactly this document.
    let member = app.member("jwks").await;
    let verifier = heart_shared::token::TokenVerifier::from_jwks_json(&response.text()).unwrap();
    assert!(verifier
        .verify(&member.access_token, app.clock.now())
        .is_ok());
}

#[tokio::test]
async fn verify_for_a_member_who_no_longer_exists_is_auth_010() {
    let app = TestApp::spawn().await;
    let member = app.member("gone").await;
    // Account deletion comes with the member endpoints; remove the row directly, as it will.
    sqlx::query("DELETE FROM members WHERE id = ?")
        .bind(member.id)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    // The session went with the member (cascade), so the database says revoked; the cache does not know yet.
    let response = app.verify_token(&member.access_token).await;
    assert_code(&response, "AUTH_010");
}

#[tokio::test]
async fn reissue_accepts_member_id_as_number_or_string() {
    let app = TestApp::spawn().await;
    let member = app.member("reissue").await;
    let first = app.reissue(json!(member.id), &member.refresh_token).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    let body = first.json();
    for field in [
        "member_id",
        "access_token",
        "refresh_token",
        "name",
        "nickname",
        "email",
        "avatar_url",
    ] {
        assert!(
            body.as_object().unwrap().contains_key(field),
            "{field} in {body}"
        );
    }
    assert_eq!(body["email"], member.email);
    assert!(body["avatar_url"].is_null());
    let second = app
        .reissue(
            json!(member.id.to_string()),
            body["refresh_token"].as_str().unwrap(),
        )
        .await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text());
}

#[tokio::test]
async fn reissue_rotates_the_refresh_token() {
    let app = TestApp::spawn().await;
    let member = app.member("rotate").await;
    let body = app
        .reissue(json!(member.id), &member.refresh_token)
        .await
        .json();
    let new_refresh = body["refresh_token"].as_str().unwrap();
    assert_ne!(new_refresh, member.refresh_token);
    assert_ne!(body["access_token"], member.access_token);
    assert_eq!(
        app.verify_token(body["access_token"].as_str().unwrap())
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn refresh_tokens_are_stored_only_as_hashes() {
    let app = TestApp::spawn().await;
    let member = app.member("hashed").await;
    let rows: Vec<(String,)> = sqlx::query_as("SELECT token_hash FROM refresh_tokens")
        .fetch_all(&app.state.db.pool)
        .await
        .unwrap();
    assert!(!rows.is_empty());
    assert!(rows
        .iter()
        .all(|(hash,)| hash != &member.refresh_token && hash.len() == 64));
}

#[tokio::test]
async fn reusing_a_rotated_token_after_the_grace_period_revokes_the_session() {
    let app = TestApp::spawn().await;
    let member = app.member("reuse").await;
    let rotated = app
        .reissue(json!(member.id), &member.refresh_token)
        .await
        .json();
    app.clock.advance(31);
    assert_code(
        &app.reissue(json!(member.id), &member.refresh_token).await,
        "AUTH_007",
    );
    // The whole session is gone: the newest refresh token and its access token too.
    assert_code(
        &app.reissue(json!(member.id), rotated["refresh_token"].as_str().unwrap())
            .await,
        "AUTH_007",
    );
    assert_code(
        &app.verify_token(rotated["access_token"].as_str().unwrap())
            .await,
        "GLOBAL_103",
    );
}

#[tokio::test]
async fn the_direct_predecessor_may_be_presented_once_within_30_seconds() {
    let app = TestApp::spawn().await;
    app.clock.freeze();
    let member = app.member("race").await;
    // Two requests of one phone race: both present the same token.
    let winner = app.reissue(json!(member.id), &member.refresh_token).await;
    app.clock.advance(29);
    let loser = app.reissue(json!(member.id), &member.refresh_token).await;
    assert_eq!(winner.status, StatusCode::OK);
    assert_eq!(loser.status, StatusCode::OK, "grace: {}", loser.text());
    // Whichever pair the phone keeps works.
    for pair in [winner.json(), loser.json()] {
        assert_eq!(
            app.verify_token(pair["access_token"].as_str().unwrap())
                .await
                .status,
            StatusCode::OK
        );
    }
    let next = app
        .reissue(
            json!(member.id),
            loser.json()["refresh_token"].as_str().unwrap(),
        )
        .await;
    assert_eq!(next.status, StatusCode::OK);
}

#[tokio::test]
async fn the_grace_is_granted_only_once() {
    let app = TestApp::spawn().await;
    let member = app.member("twice").await;
    let winner = app
        .reissue(json!(member.id), &member.refresh_token)
        .await
        .json();
    assert_eq!(
        app.reissue(json!(member.id), &member.refresh_token)
            .await
            .status,
        StatusCode::OK
    );
    assert_code(
        &app.reissue(json!(member.id), &member.refresh_token).await,
        "AUTH_007",
    );
    assert_code(
        &app.verify_token(winner["access_token"].as_str().unwrap())
            .await,
        "GLOBAL_103",
    );
}

#[tokio::test]
async fn an_older_ancestor_gets_no_grace() {
    let app = TestApp::spawn().await;
    let member = app.member("ancestor").await;
    let second = app
        .reissue(json!(member.id), &member.refresh_token)
        .await
        .json();
    let third = app
        .reissue(json!(member.id), second["refresh_token"].as_str().unwrap())
        .await
        .json();
    // The first token is not the predecessor of the live one any more: reuse.
    assert_code(
        &app.reissue(json!(member.id), &member.refresh_token).await,
        "AUTH_007",
    );
    assert_code(
        &app.reissue(json!(member.id), third["refresh_token"].as_str().unwrap())
            .await,
        "AUTH_007",
    );
}

#[tokio::test]
async fn an_unknown_refresh_token_is_auth_007() {
    let app = TestApp::spawn().await;
    let member = app.member("unknown").await;
    assert_code(
        &app.reissue(json!(member.id), "made-up-token").await,
        "AUTH_007",
    );
    assert_code(&app.reissue(json!(member.id), "").await, "AUTH_007");
}

#[tokio::test]
async fn another_members_refresh_token_is_auth_007_and_harmless() {
    let app = TestApp::spawn().await;
    let alice = app.member("alice").await;
    let bob = app.member("bob").await;
    assert_code(
        &app.reissue(json!(bob.id), &alice.refresh_token).await,
        "AUTH_007",
    );
    assert_code(
        &app.reissue(json!(999_999_999), &alice.refresh_token).await,
        "AUTH_007",
    );
    // Alice's token still works.
    assert_eq!(
        app.reissue(json!(alice.id), &alice.refresh_token)
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_expired_refresh_token_is_auth_008() {
    let app = TestApp::spawn_with(&[("HEART_REFRESH_TOKEN_TTL_SECS", "3600")]).await;
    let member = app.member("old").await;
    app.clock.advance(3600);
    assert_code(
        &app.reissue(json!(member.id), &member.refresh_token).await,
        "AUTH_008",
    );
}

#[tokio::test]
async fn a_non_numeric_member_id_is_an_unreadable_body() {
    let app = TestApp::spawn().await;
    assert_code(&app.reissue(json!("seven"), "x").await, "GLOBAL_004");
}

#[tokio::test]
async fn logout_revokes_the_access_token_at_once() {
    let app = TestApp::spawn().await;
    let member = app.member("logout").await;
    let response = app.logout(&member.access_token).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json(), json!({ "message": "Logged out" }));
    assert_code(&app.verify_token(&member.access_token).await, "GLOBAL_103");
    assert_code(&app.logout(&member.access_token).await, "GLOBAL_103");
}

#[tokio::test]
async fn reissue_after_logout_is_auth_007() {
    let app = TestApp::spawn().await;
    let member = app.member("after").await;
    app.logout(&member.access_token).await;
    assert_code(
        &app.reissue(json!(member.id), &member.refresh_token).await,
        "AUTH_007",
    );
}

#[tokio::test]
async fn logout_needs_a_token() {
    let app = TestApp::spawn().await;
    assert_code(
        &app.post_json("/auth/logout", json!({})).await,
        "GLOBAL_103",
    );
}

#[tokio::test]
async fn revocations_survive_a_restart_of_the_in_process_cache() {
    let app = TestApp::spawn().await;
    let member = app.member("restart").await;
    app.logout(&member.access_token).await;
    // A second app on the same data (a restarted core) refuses the token too.
    let config = (*app.state.config).clone();
    let restarted = heart_core::App::build(config, app.clock.clone())
        .await
        .unwrap();
    let claims = app
        .state
        .tokens
        .verifier()
        .verify(&member.access_token, app.clock.now())
        .unwrap();
    assert!(restarted
        .state
        .revocations
        .is_revoked(&claims.sid)
        .await
        .unwrap());
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let app = TestApp::spawn().await;
    let member = app.member("scheme").await;
    let request = axum::http::Request::get("/auth/verifyAccessToken")
        .header("authorization", format!("bearer {}", member.access_token))
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(app.send(request).await.status, StatusCode::OK);
    assert_code(
        &app.with_token(Method::GET, "/auth/verifyAccessToken", "")
            .await,
        "GLOBAL_103",
    );
}

/// Long-expired refresh tokens are deleted by the sweep, in batches, and nothing else is: a
/// token expired within the retention still answers `AUTH_008`, a live one still reissues.
#[tokio::test]
async fn the_sweep_deletes_long_expired_refresh_tokens_only() {
    use heart_core::auth::sessions::{delete_expired_tokens, EXPIRED_TOKEN_RETENTION_SECS};
    let app = TestApp::spawn().await;
    let (old, recent, live) = (
        app.member("swept-old").await,
        app.member("swept-recent").await,
        app.member("swept-live").await,
    );
    let now = app.clock.now();
    let session_of = |member_id: i64| {
        let pool = app.state.db.pool.clone();
        async move {
            let (sid,): (String,) = sqlx::query_as("SELECT id FROM sessions WHERE member_id = ?")
                .bind(member_id)
                .fetch_one(&pool)
                .await
                .unwrap();
            sid
        }
    };
    let old_sid = session_of(old.id).await;
    let recent_sid = session_of(recent.id).await;
    for (sid, expires_at) in [
        (&old_sid, now - EXPIRED_TOKEN_RETENTION_SECS - 1),
        (&recent_sid, now - 60),
    ] {
        sqlx::query("UPDATE refresh_tokens SET expires_at = ? WHERE session_id = ?")
            .bind(expires_at)
            .bind(sid)
            .execute(&app.state.db.pool)
            .await
            .unwrap();
    }
    // More than one batch of long-expired rows in the old session's chain.
    let values = (0..1500)
        .map(|n| {
            format!(
                "('{n:064x}', '{old_sid}', {}, {})",
                now - 30 * 86_400,
                now - 20 * 86_400
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    sqlx::query(&format!(
        "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) VALUES {values}"
    ))
    .execute(&app.state.db.pool)
    .await
    .unwrap();
    let count = |sid: String| {
        let pool = app.state.db.pool.clone();
        async move {
            let (n,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM refresh_tokens WHERE session_id = ?")
                    .bind(sid)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            n
        }
    };
    assert_eq!(count(old_sid.clone()).await, 1501);

    let deleted = delete_expired_tokens(&app.state.db, now).await.unwrap();
    assert_eq!(deleted, 1501);
    assert_eq!(count(old_sid).await, 0);
    assert_eq!(count(recent_sid).await, 1);
    assert_code(
        &app.reissue(json!(old.id), &old.refresh_token).await,
        "AUTH_007",
    );
    assert_code(
        &app.reissue(json!(recent.id), &recent.refresh_token).await,
        "AUTH_008",
    );
    assert_eq!(
        app.reissue(json!(live.id), &live.refresh_token)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(delete_expired_tokens(&app.state.db, now).await.unwrap(), 0);
}
