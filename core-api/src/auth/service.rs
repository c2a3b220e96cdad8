//! The auth use cases, independent of HTTP: each takes the state and plain inputs.

use heart_shared::rate_limit::RateLimitRule;
use heart_shared::wire::{JoinRequest, LoginResponse, ReissueTokenResponse};
use heart_shared::ErrorCode;

use super::extractor::AuthenticatedMember;
use super::sessions::{self, Rotation};
use super::validation::{check_email, check_join, normalize_email, normalize_name};
use super::verification;
use crate::error::ApiError;
use crate::mail::OutgoingMail;
use crate::member::repo::{self as members, NewMember};
use crate::state::AppState;

/// The per-email login limit across every address, as a multiple of the per-(IP, email) limit.
pub const LOGIN_EMAIL_FACTOR: u32 = 10;

fn require_valid_email(email: &str) -> Result<(), ApiError> {
    match check_email(email) {
        Some(error) => Err(ApiError::Validation(vec![error])),
        None => Ok(()),
    }
}

/// The limits on mailed codes (verification and password reset alike), each counted per IP and
/// per address.
#[derive(Debug, Clone, Copy)]
pub(super) enum CodeLimit {
    /// Sending one: one budget for every code mail we send.
    Mail,
    /// Trying one.
    Attempt,
}

/// Counts one [`CodeLimit`] for `email` asked from `client_ip`; `GLOBAL_106` past either limit.
pub(super) async fn limit_codes(
    state: &AppState,
    limit: CodeLimit,
    email: &str,
    client_ip: &str,
    now: i64,
) -> Result<(), ApiError> {
    let (per_ip, per_email) = match limit {
        CodeLimit::Mail => (
            RateLimitRule::VerificationSendPerIp,
            RateLimitRule::VerificationSendPerEmail,
        ),
        CodeLimit::Attempt => (RateLimitRule::ConfirmPerIp, RateLimitRule::ConfirmPerEmail),
    };
    let limiter = &state.rate_limiter;
    limiter.check(per_ip, client_ip, now).await?;
    limiter.check(per_email, email, now).await
}

/// Mails `mail`, which carries `code` (`what`: its kind, for the log). When it cannot be sent
/// the code is withdrawn first (`withdraw`: no code the member never received may stay usable)
/// and the answer is `MailNotSent`. With the outbox mailer (local development) the code is
/// also logged.
pub(super) async fn mail_code<W>(
    state: &AppState,
    mail: OutgoingMail,
    code: &str,
    what: &'static str,
    withdraw: W,
) -> Result<(), ApiError>
where
    W: std::future::Future<Output = Result<(), sqlx::Error>>,
{
    if let Err(error) = state.mailer.send(&mail).await {
        withdraw.await?;
        return Err(ApiError::Unavailable {
            dependency: "mail",
            code: ErrorCode::MailNotSent,
            source: error.into(),
        });
    }
    if state.mailer.backend() == "outbox" {
        tracing::info!(email = %mail.to, %code, what, "code mailed to the outbox (local development)");
    }
    Ok(())
}

/// Mails a new verification code to `email`, replacing any earlier one.
pub async fn send_verification_code(
    state: &AppState,
    email: &str,
    client_ip: &str,
) -> Result<(), ApiError> {
    let email = normalize_email(email);
    require_valid_email(&email)?;
    let now = state.clock.now();
    limit_codes(state, CodeLimit::Mail, &email, client_ip, now).await?;
    if members::email_exists(&state.db, &email).await? {
        return Err(ApiError::code(ErrorCode::EmailTaken));
    }

    let code = verification::new_code();
    verification::replace_code(&state.db, &email, &code, now).await?;
    let mail = OutgoingMail {
        to: email.clone(),
        subject: format!("[Heart to Heart] Your verification code: {code}"),
        body: format!(
            "Welcome to Heart to Heart!\n\nYour verification code is: {code}\n\n\
             Enter it in the app within 5 minutes. If you did not ask for it, ignore this mail.\n"
        ),
    };
    let withdraw = verification::withdraw_code(&state.db, &email);
    mail_code(state, mail, &code, "verification code", withdraw).await
}

/// Checks the code mailed to `email`; a correct one marks the email verified for 30 minutes.
pub async fn confirm_verification_code(
    state: &AppState,
    email: &str,
    code: &str,
    client_ip: &str,
) -> Result<(), ApiError> {
    let email = normalize_email(email);
    require_valid_email(&email)?;
    if code.trim().is_empty() {
        return Err(ApiError::invalid_field(
            "verification_code",
            "must not be blank",
        ));
    }
    let now = state.clock.now();
    limit_codes(state, CodeLimit::Attempt, &email, client_ip, now).await?;

    let Some(row) = verification::find(&state.db, &email).await? else {
        return Err(ApiError::code(ErrorCode::NoVerificationCode));
    };
    if row.expires_at <= now {
        return Err(ApiError::code(ErrorCode::VerificationCodeExpired));
    }
    if !row.matches(code.trim()) {
        let discarded = verification::record_failure(&state.db, &email).await?;
        if discarded {
            tracing::warn!(%email, "verification code discarded after too many wrong attempts");
        }
        return Err(ApiError::code(ErrorCode::WrongVerificationCode));
    }
    verification::mark_verified(&state.db, &email, now).await?;
    Ok(())
}

/// Creates a member from a verified email. Returns the new id.
pub async fn join(
    state: &AppState,
    request: &JoinRequest,
    client_ip: &str,
) -> Result<i64, ApiError> {
    let email = normalize_email(&request.email);
    let errors = check_join(request, &email);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let now = state.clock.now();
    state
        .rate_limiter
        .check(RateLimitRule::JoinPerIp, client_ip, now)
        .await?;

    let verified = verification::find(&state.db, &email)
        .await?
        .and_then(|v| v.verified_until)
        .is_some_and(|until| until > now);
    if !verified {
        if members::email_exists(&state.db, &email).await? {
            return Err(ApiError::code(ErrorCode::EmailTaken));
        }
        return Err(ApiError::code(ErrorCode::EmailNotVerified));
    }

    let password_hash = state.passwords.hash(request.password.clone()).await?;
    let (name, nickname) = (
        normalize_name(&request.name),
        normalize_name(&request.nickname),
    );
    let new_member = NewMember {
        email: &email,
        name: &name,
        nickname: &nickname,
        password_hash: &password_hash,
    };
    let mut tx = state.db.begin().await?;
    let member_id = match members::insert(&mut tx, &new_member, now).await {
        Ok(id) => id,
        // Two joins raced for one email: the unique index decides, the loser hears AUTH_000.
        Err(e) if crate::db::Db::is_unique_violation(&e) => {
            return Err(ApiError::code(ErrorCode::EmailTaken))
        }
        Err(e) => return Err(e.into()),
    };
    verification::delete(&mut *tx, &email).await?;
    tx.commit().await?;
    tracing::info!(member_id, "member joined");
    Ok(member_id)
}

/// Logs in: a new session with its own token pair. Unknown email and wrong password answer alike.
pub async fn login(
    state: &AppState,
    email: &str,
    password: &str,
    client_ip: &str,
) -> Result<LoginResponse, ApiError> {
    let member = check_credentials(state, email, password, client_ip).await?;
    let now = state.clock.now();
    let issued = sessions::start(
        &state.db,
        member.id,
        now,
        state.config.tokens.refresh_ttl_secs,
    )
    .await?;
    // A suspension that committed after the password check and before the session: refused, and
    // the session revoked (one committed before the suspension is revoked by it).
    if members::find_by_id(&state.db, member.id)
        .await?
        .is_some_and(|m| m.suspended_at.is_some())
    {
        sessions::revoke(&state.db, &issued.session_id, "suspended", now).await?;
        return Err(ApiError::code(ErrorCode::MemberSuspended));
    }
    let access_token = state
        .tokens
        .issue_access_token(member.id, &issued.session_id, now)?;
    tracing::info!(member_id = member.id, session_id = %issued.session_id, "logged in");
    Ok(LoginResponse {
        member_id: member.id,
        access_token,
        refresh_token: issued.refresh_token,
        name: member.name,
        nickname: member.nickname,
    })
}

/// The member with `email` and `password`, under the login rate limits (per IP, per IP and
/// email, per email): `AUTH_006` for an unknown email or a wrong password alike, `AUTH_013` for a
/// suspended member. Shared by the app's login and the moderation console's sign-in.
pub async fn check_credentials(
    state: &AppState,
    email: &str,
    password: &str,
    client_ip: &str,
) -> Result<members::Member, ApiError> {
    let email = normalize_email(email);
    let now = state.clock.now();
    state
        .rate_limiter
        .check(RateLimitRule::LoginPerIp, client_ip, now)
        .await?;
    if !email.is_empty() {
        // Per (IP, email) pair at the configured limit, and per email at ten times it: wrong
        // passwords from a few addresses slow the guesser without locking the owner out.
        state
            .rate_limiter
            .check(
                RateLimitRule::LoginPerEmail,
                &format!("{client_ip}|{email}"),
                now,
            )
            .await?;
        state
            .rate_limiter
            .check_scaled(
                RateLimitRule::LoginPerEmail,
                &email,
                now,
                LOGIN_EMAIL_FACTOR,
            )
            .await?;
    }
    // Only an address join could have stored is looked up: ASCII, valid, compared byte for byte
    // (a collation that folded `ｋｉｍ@…` or `kím@…` into `kim@…` gave every variant its own
    // rate-limit counter against one account). Others are answered like a wrong password.
    let member = if check_email(&email).is_none() {
        members::find_by_email(&state.db, &email).await?
    } else {
        None
    };
    let matched = state
        .passwords
        .verify(
            password.to_owned(),
            member.as_ref().map(|m| m.password_hash.clone()),
        )
        .await?;
    let member = match member {
        Some(member) if matched => member,
        _ => return Err(ApiError::code(ErrorCode::WrongCredentials)),
    };
    // Only after the password matched: a guesser learns nothing about suspensions.
    if member.suspended_at.is_some() {
        return Err(ApiError::code(ErrorCode::MemberSuspended));
    }
    Ok(member)
}

/// Exchanges a refresh token for a new pair, detecting reuse.
pub async fn reissue(
    state: &AppState,
    member_id: i64,
    refresh_token: &str,
    client_ip: &str,
) -> Result<ReissueTokenResponse, ApiError> {
    let now = state.clock.now();
    state
        .rate_limiter
        .check(RateLimitRule::ReissuePerIp, client_ip, now)
        .await?;
    if refresh_token.trim().is_empty() {
        return Err(ApiError::code(ErrorCode::InvalidRefreshToken));
    }
    // The per-member limit counts only calls with a token of that member's live session: counted on
    // the body's unauthenticated `member_id`, junk tokens let anyone block a member's refresh.
    if sessions::belongs_to(&state.db, member_id, refresh_token.trim()).await? {
        state
            .rate_limiter
            .check(RateLimitRule::ReissuePerMember, &member_id.to_string(), now)
            .await?;
    }
    let rotation = sessions::rotate(
        &state.db,
        member_id,
        refresh_token.trim(),
        now,
        state.config.tokens.refresh_ttl_secs,
    )
    .await?;
    let (member_id, issued) = match rotation {
        Rotation::Rotated { member_id, issued } => (member_id, issued),
        Rotation::Invalid => return Err(ApiError::code(ErrorCode::InvalidRefreshToken)),
        Rotation::Expired => return Err(ApiError::code(ErrorCode::ExpiredRefreshToken)),
        Rotation::ReuseDetected { session_id } => {
            tracing::warn!(member_id, %session_id, "refresh token reuse: session revoked");
            state.revocations.publish(&session_id).await;
            return Err(ApiError::code(ErrorCode::InvalidRefreshToken));
        }
    };
    let Some(member) = members::find_by_id(&state.db, member_id).await? else {
        return Err(ApiError::code(ErrorCode::InvalidRefreshToken));
    };
    let access_token = state
        .tokens
        .issue_access_token(member.id, &issued.session_id, now)?;
    Ok(ReissueTokenResponse {
        member_id: member.id,
        access_token,
        refresh_token: issued.refresh_token,
        name: member.name,
        nickname: member.nickname,
        email: member.email,
        avatar_url: member.avatar_key.map(|key| state.media_url(&key)),
    })
}

/// Logs out: the session's refresh tokens and access tokens stop working now.
pub async fn logout(state: &AppState, caller: &AuthenticatedMember) -> Result<(), ApiError> {
    sessions::revoke(&state.db, &caller.session_id, "logout", state.clock.now()).await?;
    state.revocations.publish(&caller.session_id).await;
    tracing::info!(member_id = caller.member_id, session_id = %caller.session_id, "logged out");
    Ok(())
}

/// `AUTH_010` when the caller's member no longer exists (the account was deleted).
pub async fn verify_member_exists(
    state: &AppState,
    caller: &AuthenticatedMember,
) -> Result<(), ApiError> {
    if members::find_by_id(&state.db, caller.member_id)
        .await?
        .is_none()
    {
        return Err(ApiError::code(ErrorCode::MemberGone));
    }
    Ok(())
}
