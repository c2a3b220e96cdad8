//! Access tokens at the edge, with the real core's keys: signature, expiry, key id, revocation.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use heart_shared::token::AccessClaims;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;

use crate::helpers::{Member, TestStack};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
        .try_into()
        .expect("fits")
}

/// The claims of a token, read without verification.
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON")
}

/// Signs a token for `member` (its real session) with `pem` under `kid`, expiring at `exp`.
fn sign(pem: &str, kid: &str, member: &Member, exp: i64) -> String {
    let claims = claims_of(&member.access_token);
    let claims = AccessClaims {
        sub: member.id.to_string(),
        sid: claims["sid"].as_str().expect("sid").to_owned(),
        jti: crate::helpers::random_suffix(),
        iat: now() - 600,
        exp,
    };
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    let key = EncodingKey::from_ed_pem(pem.as_bytes()).expect("an Ed25519 PEM");
    jsonwebtoken::encode(&header, &claims, &key).expect("signed")
}

/// Another Ed25519 key (`openssl genpkey -algorithm ed25519`), not known to the stack.
const OTHER_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEILhfDkrwVjtfdC1+8P5G7pDCn/NlgwG80z/De6Lmq7Um
-----END PRIVATE KEY-----
";

#[tokio::test]
async fn the_edge_checks_tokens_with_the_cores_keys() {
    let stack = TestStack::start().await;
    let member = stack.member("tok").await;
    let kid = stack.state.tokens.kid().to_owned();
    let core_key = heart_core::config::DEV_SIGNING_KEY_PEM;
    let path = format!("/member/profile?member_id={}", member.id);
    let verify = |token: String| {
        let stack = &stack;
        async move {
            stack
                .with_token("GET", "/auth/verifyAccessToken", &token)
                .await
        }
    };

    // The stack signs with the development key: a token we sign with it and a future exp is
    // accepted, so the refusals below are about exactly what each one changes.
    let good = sign(core_key, &kid, &member, now() + 600);
    assert_eq!(verify(good.clone()).await.status, 200);
    assert_eq!(stack.with_token("GET", &path, &good).await.status, 200);

    // Expired (same key, same session, exp in the past): GLOBAL_104, so the app reissues.
    let expired = sign(core_key, &kid, &member, now() - 5);
    verify(expired.clone()).await.assert_error("GLOBAL_104");
    stack
        .with_token("GET", &path, &expired)
        .await
        .assert_error("GLOBAL_104");
    stack
        .with_token("GET", "/post/posts?page=0&size=10", &expired)
        .await
        .assert_error("GLOBAL_104");

    // Bad signature: the last byte of a real token's signature changed.
    let mut tampered = member.access_token.clone();
    let last = tampered.pop().expect("non-empty");
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    verify(tampered).await.assert_error("GLOBAL_103");
    // Signed by another key under the core's kid.
    let forged = sign(OTHER_KEY_PEM, &kid, &member, now() + 600);
    verify(forged.clone()).await.assert_error("GLOBAL_103");
    stack
        .with_token("DELETE", &format!("/member/delete/{}", member.id), &forged)
        .await
        .assert_error("GLOBAL_103");
    // A claim changed under the real signature.
    let mut parts: Vec<String> = member.access_token.split('.').map(str::to_owned).collect();
    let mut claims = claims_of(&member.access_token);
    claims["sub"] = Value::String((member.id + 1).to_string());
    parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
    verify(parts.join(".")).await.assert_error("GLOBAL_103");

    // Unknown key id, even with the right key.
    let unknown_kid = sign(core_key, "no-such-kid", &member, now() + 600);
    verify(unknown_kid).await.assert_error("GLOBAL_103");

    // Missing or malformed.
    stack
        .get("/auth/verifyAccessToken")
        .await
        .assert_error("GLOBAL_103");
    verify("not-a-jwt".to_owned())
        .await
        .assert_error("GLOBAL_103");
    stack
        .send(
            "GET",
            "/auth/verifyAccessToken",
            &[("authorization", &format!("Basic {}", member.access_token))],
            "",
        )
        .await
        .assert_error("GLOBAL_103");

    // The real token still works after all that.
    assert_eq!(verify(member.access_token.clone()).await.status, 200);
}

#[tokio::test]
async fn logout_revokes_one_session_at_once_and_not_the_others() {
    let stack = TestStack::start().await;
    let phone = stack.member("two-phones").await;
    let tablet = stack.session(phone.id, &phone.email).await;
    assert_ne!(
        claims_of(&phone.access_token)["sid"],
        claims_of(&tablet.access_token)["sid"]
    );
    let feed = format!("/post/posts?member_id={}&page=0&size=10", phone.id);
    // Warm the feed cache for the phone, so a cached page cannot let a revoked token through.
    assert_eq!(stack.get_as(&phone, &feed).await.status, 200);
    assert_eq!(stack.get_as(&phone, &feed).await.cache(), Some("hit"));

    let logout = stack
        .with_token("POST", "/auth/logout", &phone.access_token)
        .await;
    assert_eq!(logout.status, 200, "{}", logout.text());

    // Immediately: every route refuses the phone's token, cached feed pages included.
    stack
        .with_token("GET", "/auth/verifyAccessToken", &phone.access_token)
        .await
        .assert_error("GLOBAL_103");
    stack.get_as(&phone, &feed).await.assert_error("GLOBAL_103");
    stack
        .with_token("POST", "/auth/logout", &phone.access_token)
        .await
        .assert_error("GLOBAL_103");
    stack
        .register_post(&phone, "after logout", &[])
        .await
        .assert_error("GLOBAL_103");

    // The tablet's session of the same member keeps working, cache hits included.
    assert_eq!(
        stack
            .with_token("GET", "/auth/verifyAccessToken", &tablet.access_token)
            .await
            .status,
        200
    );
    let tablet_feed = format!("/post/posts/{}?page=0&size=10", phone.id);
    assert_eq!(stack.get_as(&tablet, &tablet_feed).await.status, 200);
    let again = stack.get_as(&tablet, &tablet_feed).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.cache(), Some("hit"));
    let posted = stack.register_post(&tablet, "still here", &[]).await;
    assert_eq!(posted.status, 201, "{}", posted.text());
}
