//! The console's browser sessions: a cookie holding a random secret (stored only as its hash),
//! riding on a row of `sessions` so that revoking the member's sessions ends it too, with the
//! CSRF token its forms carry. Sign-in forms, before any session, use a double-submit cookie.

use axum::http::{header, HeaderMap, HeaderValue};
use subtle::ConstantTimeEq;

use crate::auth::sessions;
use crate::auth::tokens::{random_hex_id, random_urlsafe, sha256_hex};
use crate::config::Profile;
use crate::db::Db;
use crate::error::ApiError;
use crate::state::AppState;

/// The session cookie.
pub const SESSION_COOKIE: &str = "h2h_console";
/// The sign-in form's CSRF cookie (double submit: the form carries the same value).
pub const SIGNIN_COOKIE: &str = "h2h_console_signin";
/// How long a console session lasts, whatever happens in it: a moderator signs in again daily.
pub const SESSION_SECS: i64 = 12 * 3600;
/// How long a sign-in form may be left open.
const SIGNIN_SECS: i64 = 3600;
/// Longest cookie value read; anything longer is not ours.
const MAX_COOKIE_LEN: usize = 128;

/// A signed-in moderator.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    pub member_id: i64,
    pub session_id: String,
    /// Every form of the page carries it; a form without it is refused.
    pub csrf_token: String,
    token_hash: String,
}

impl ConsoleSession {
    /// Whether a submitted form's `csrf` is this session's, compared in constant time.
    pub fn csrf_matches(&self, submitted: &str) -> bool {
        csrf_equal(&self.csrf_token, submitted)
    }
}

/// Constant-time equality of a CSRF token and what a form submitted; an empty token never matches.
pub fn csrf_equal(expected: &str, submitted: &str) -> bool {
    !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(submitted.as_bytes()))
}

/// The value of cookie `name` in the request, if present and of a sane length.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty() && value.len() <= MAX_COOKIE_LEN)
}

/// Whether cookies must be `Secure`: outside the local profile, and whenever the request came
/// over TLS (a proxy in front says so with `X-Forwarded-Proto: https`).
pub fn secure_cookies(state: &AppState, headers: &HeaderMap) -> bool {
    state.config.profile != Profile::Local
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value for the console: `HttpOnly`, `SameSite=Strict`, only under `/admin/`.
/// `max_age` 0 deletes the cookie.
pub fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!(
        "{name}={value}; Path=/admin/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    );
    // Our names and values are base64url or hex: always a valid header value.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A fresh sign-in CSRF value, and the cookie that carries it.
pub fn new_signin_token(secure: bool) -> (String, HeaderValue) {
    let token = random_urlsafe(32);
    let cookie = set_cookie(SIGNIN_COOKIE, &token, SIGNIN_SECS, secure);
    (token, cookie)
}

/// Starts a console session for `member_id`; returns the cookie's secret. Expired console sessions
/// are swept on the way, so the table stays as small as the moderators signed in today.
pub async fn start(db: &Db, member_id: i64, now: i64) -> Result<String, ApiError> {
    sqlx::query("DELETE FROM console_sessions WHERE expires_at < ?")
        .bind(now)
        .execute(&db.pool)
        .await?;
    // A session row of its own (its refresh token is never handed out: the console issues no
    // bearer tokens), so suspension, deletion and revocation reach the console like the app.
    let issued = sessions::start(db, member_id, now, SESSION_SECS).await?;
    let secret = random_urlsafe(32);
    let csrf = format!("{}{}", random_hex_id(), random_hex_id());
    sqlx::query(
        "INSERT INTO console_sessions (token_hash, session_id, csrf_token, expires_at) VALUES (?, ?, ?, ?)",
    )
    .bind(sha256_hex(&secret))
    .bind(&issued.session_id)
    .bind(&csrf)
    .bind(now + SESSION_SECS)
    .execute(&db.pool)
    .await?;
    Ok(secret)
}

/// The live console session of the request's cookie: unexpired, its session not revoked.
pub async fn current(
    db: &Db,
    headers: &HeaderMap,
    now: i64,
) -> Result<Option<ConsoleSession>, ApiError> {
    let Some(secret) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let token_hash = sha256_hex(secret);
    let row: Option<(i64, String, String)> = sqlx::query_as(
        "SELECT s.member_id, s.id, c.csrf_token FROM console_sessions c \
         JOIN sessions s ON s.id = c.session_id \
         WHERE c.token_hash = ? AND c.expires_at > ? AND s.revoked_at IS NULL",
    )
    .bind(&token_hash)
    .bind(now)
    .fetch_optional(&db.pool)
    .await?;
    Ok(
        row.map(|(member_id, session_id, csrf_token)| ConsoleSession {
            member_id,
            session_id,
            csrf_token: csrf_token.trim().to_owned(),
            token_hash,
        }),
    )
}

/// Ends `session`: its row goes and its session is revoked.
pub async fn end(state: &AppState, session: &ConsoleSession) -> Result<(), ApiError> {
    sqlx::query("DELETE FROM console_sessions WHERE token_hash = ?")
        .bind(&session.token_hash)
        .execute(&state.db.pool)
        .await?;
    sessions::revoke(&state.db, &session.session_id, "console", state.clock.now()).await?;
    state.revocations.publish(&session.session_id).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("x_h2h_console=evil; h2h_console=abc ; other=1"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, SIGNIN_COOKIE), None);
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("h2h_console={}", "a".repeat(200))).unwrap(),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), None, "overlong");
    }

    #[test]
    fn csrf_tokens_compare_exactly_and_never_match_empty() {
        assert!(csrf_equal("abc", "abc"));
        assert!(!csrf_equal("abc", "abd"));
        assert!(!csrf_equal("abc", "ab"));
        assert!(!csrf_equal("", ""));
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_on_request() {
        let value = set_cookie(SESSION_COOKIE, "v", 60, true);
        let text = value.to_str().unwrap();
        for part in [
            "HttpOnly",
            "SameSite=Strict",
            "Secure",
            "Path=/admin/",
            "Max-Age=60",
        ] {
            assert!(text.contains(part), "{text}");
        }
        let local = set_cookie(SESSION_COOKIE, "v", 60, false);
        assert!(!local.to_str().unwrap().contains("Secure"));
    }
}
