//! Password reset by mailed code, and password change: both end every other session at once.
//!
//! A reset request answers the same, in the same time, whether or not a member has the address:
//! after the rate limits the request is answered, and the lookup, the stored code and the mail
//! happen in a background task (at most [`MAX_PENDING_RESET_MAILS`] at a time). A stranger's
//! address gets a code too, stored and never mailed, so a wrong code answers `AUTH_003` for both.

use heart_shared::rate_limit::RateLimitRule;
use heart_shared::wire::ChangePasswordRequest;
use heart_shared::{ErrorCode, FieldError};

use super::extractor::AuthenticatedMember;
use super::service::{limit_codes, mail_code, CodeLimit, LOGIN_EMAIL_FACTOR};
use super::tokens::sha256_hex;
use super::validation::{check_email, check_password, normalize_email};
use super::{reset_codes, sessions, verification};
use crate::error::{ApiError, RETRY_AFTER_SECS};
use crate::mail::OutgoingMail;
use crate::member::repo as members;
use crate::state::AppState;

/// Reset requests being processed in the background at once, per app ([`AppState::reset_mails`]);
/// more answer `GLOBAL_503` with `Retry-After` (members and strangers alike). Each finishes
/// within the mail timeout ([`crate::mail::SMTP_TIMEOUT`]), so a silent mail server holds them
/// for seconds, not forever.
pub const MAX_PENDING_RESET_MAILS: usize = 64;

fn validation(errors: impl IntoIterator<Item = FieldError>) -> Result<(), ApiError> {
    let errors: Vec<FieldError> = errors.into_iter().collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// Mails a reset code to `email` if a member has it; answers the same either way.
/// Limited like verification mails: one budget per address and per IP for every mail we send.
pub async fn send_reset_code(
    state: &AppState,
    email: &str,
    client_ip: &str,
) -> Result<(), ApiError> {
    let email = normalize_email(email);
    validation(check_email(&email))?;
    let now = state.clock.now();
    limit_codes(state, CodeLimit::Mail, &email, client_ip, now).await?;
    let Ok(permit) = state.reset_mails.clone().try_acquire_owned() else {
        return Err(ApiError::Busy {
            what: "password reset mail",
            code: ErrorCode::DependencyUnavailable,
            retry_after_secs: RETRY_AFTER_SECS,
        });
    };
    let state = state.clone();
    tokio::spawn(async move {
        let _permit = permit;
        if let Err(error) = store_and_mail_reset_code(&state, &email, now).await {
            tracing::error!(%email, error = %crate::error::cause_chain(&error), "password reset code not sent");
        }
    });
    Ok(())
}

async fn store_and_mail_reset_code(
    state: &AppState,
    email: &str,
    now: i64,
) -> Result<(), ApiError> {
    let member = members::find_by_email(&state.db, email).await?;
    let code = verification::new_code();
    reset_codes::replace(&state.db, email, &code, now).await?;
    if member.is_none() {
        return Ok(());
    }
    let mail = OutgoingMail {
        to: email.to_owned(),
        subject: format!("[Heart to Heart] Your password reset code: {code}"),
        body: format!(
            "Someone asked to reset the password of your Heart to Heart account.\n\n\
             Your password reset code is: {code}\n\n\
             Enter it in the app within 10 minutes. If you did not ask for it, ignore this mail: \
             your password stays as it is.\n"
        ),
    };
    let withdraw = reset_codes::withdraw(&state.db, email);
    mail_code(state, mail, &code, "password reset code", withdraw).await
}

/// Sets a new password with a mailed reset code; every session of the member ends.
pub async fn reset_password(
    state: &AppState,
    email: &str,
    code: &str,
    new_password: &str,
    client_ip: &str,
) -> Result<(), ApiError> {
    let email = normalize_email(email);
    let code = code.trim();
    validation(
        check_email(&email)
            .into_iter()
            .chain(code.is_empty().then(|| FieldError {
                field: "verification_code".into(),
                message: "must not be blank".into(),
            }))
            .chain(check_password("new_password", new_password)),
    )?;
    let now = state.clock.now();
    limit_codes(state, CodeLimit::Attempt, &email, client_ip, now).await?;

    let Some(row) = reset_codes::find(&state.db, &email).await? else {
        return Err(ApiError::code(ErrorCode::NoVerificationCode));
    };
    if row.expires_at <= now {
        return Err(ApiError::code(ErrorCode::VerificationCodeExpired));
    }
    if !row.matches(code) {
        reset_codes::record_failure(&state.db, &email).await?;
        return Err(ApiError::code(ErrorCode::WrongVerificationCode));
    }
    // Only a member's code was ever mailed; a stranger's matching is a guess of 62^8.
    let Some(member) = members::find_by_email(&state.db, &email).await? else {
        return Err(ApiError::code(ErrorCode::WrongVerificationCode));
    };
    let password_hash = state.passwords.hash(new_password.to_owned()).await?;
    let mut tx = state.db.begin().await?;
    if !reset_codes::consume(&mut *tx, &email, &sha256_hex(code)).await? {
        // Another request used the code first: single use.
        return Err(ApiError::code(ErrorCode::NoVerificationCode));
    }
    members::set_password_hash(&mut *tx, member.id, &password_hash, now).await?;
    let revoked = sessions::revoke_all_of(&mut tx, member.id, None, "password_reset", now).await?;
    tx.commit().await?;
    for sid in &revoked {
        state.revocations.publish(sid).await;
    }
    tracing::info!(
        member_id = member.id,
        sessions = revoked.len(),
        "password reset"
    );
    Ok(())
}

/// Changes the caller's password; every other session of theirs ends.
pub async fn change_password(
    state: &AppState,
    caller: &AuthenticatedMember,
    request: &ChangePasswordRequest,
    client_ip: &str,
) -> Result<(), ApiError> {
    let Some(member_id) = request.member_id else {
        return Err(ApiError::invalid_field("member_id", "must not be null"));
    };
    caller.require_is(member_id.0)?;
    validation(check_password("new_password", &request.new_password))?;
    let member = members::find_by_id(&state.db, caller.member_id)
        .await?
        .ok_or_else(|| ApiError::code(ErrorCode::MemberGone))?;
    // Guesses of the current password count against the same limits as logins to the account.
    let now = state.clock.now();
    let limiter = &state.rate_limiter;
    limiter
        .check(
            RateLimitRule::LoginPerEmail,
            &format!("{client_ip}|{}", member.email),
            now,
        )
        .await?;
    limiter
        .check_scaled(
            RateLimitRule::LoginPerEmail,
            &member.email,
            now,
            LOGIN_EMAIL_FACTOR,
        )
        .await?;
    let matched = state
        .passwords
        .verify(request.current_password.clone(), Some(member.password_hash))
        .await?;
    if !matched {
        return Err(ApiError::code(ErrorCode::WrongCredentials));
    }
    let password_hash = state.passwords.hash(request.new_password.clone()).await?;
    let mut tx = state.db.begin().await?;
    members::set_password_hash(&mut *tx, member.id, &password_hash, now).await?;
    let revoked = sessions::revoke_all_of(
        &mut tx,
        member.id,
        Some(&caller.session_id),
        "password_change",
        now,
    )
    .await?;
    tx.commit().await?;
    for sid in &revoked {
        state.revocations.publish(sid).await;
    }
    tracing::info!(
        member_id = member.id,
        sessions = revoked.len(),
        "password changed"
    );
    Ok(())
}
