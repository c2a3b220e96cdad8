//! The `/auth/*` endpoints: extract, call the service, answer.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use heart_shared::wire::{
    ChangePasswordRequest, ConfirmVerificationCodeRequest, JoinRequest, JoinResponse, LoginRequest,
    LoginResponse, MessageResponse, PasswordResetCodeRequest, ReissueTokenRequest,
    ReissueTokenResponse, ResetPasswordRequest, SendVerificationCodeRequest,
};
use heart_shared::ErrorBody;

use super::extractor::AuthenticatedMember;
use super::{recovery, service};
use crate::error::ApiError;
use crate::extract::{ApiJson, ClientIp};
use crate::state::AppState;

/// Mails a verification code.
#[utoipa::path(post, path = "/auth/emailVerificationCode", tag = "auth",
    request_body = SendVerificationCodeRequest,
    responses(
        (status = 202, description = "Code sent", body = MessageResponse),
        (status = 400, description = "GLOBAL_002 invalid email", body = ErrorBody),
        (status = 409, description = "AUTH_000 already a member", body = ErrorBody),
        (status = 429, description = "GLOBAL_106 rate limited", body = ErrorBody),
        (status = 503, description = "AUTH_001 mail not sent", body = ErrorBody),
    ))]
pub async fn send_verification_code(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(request): ApiJson<SendVerificationCodeRequest>,
) -> Result<(StatusCode, Json<MessageResponse>), ApiError> {
    service::send_verification_code(&state, &request.email, &ip.subject()).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(MessageResponse::new("Email sent.")),
    ))
}

/// Confirms a verification code.
#[utoipa::path(post, path = "/auth/confirmVerificationCode", tag = "auth",
    request_body = ConfirmVerificationCodeRequest,
    responses(
        (status = 200, description = "Code valid; email verified for 30 minutes", body = MessageResponse),
        (status = 400, description = "AUTH_002 no code sent, GLOBAL_002 invalid input", body = ErrorBody),
        (status = 401, description = "AUTH_003 wrong code, AUTH_004 expired code", body = ErrorBody),
        (status = 429, description = "GLOBAL_106 rate limited", body = ErrorBody),
    ))]
pub async fn confirm_verification_code(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(request): ApiJson<ConfirmVerificationCodeRequest>,
) -> Result<Json<MessageResponse>, ApiError> {
    service::confirm_verification_code(
        &state,
        &request.email,
        &request.verification_code,
        &ip.subject(),
    )
    .await?;
    Ok(Json(MessageResponse::new("Valid Verification Code.")))
}

/// Creates a member from a confirmed email.
#[utoipa::path(post, path = "/auth/join", tag = "auth",
    request_body = JoinRequest,
    responses(
        (status = 201, description = "Member created", body = JoinResponse),
        (status = 400, description = "GLOBAL_002 invalid input", body = ErrorBody),
        (status = 403, description = "AUTH_012 email not verified", body = ErrorBody),
        (status = 409, description = "AUTH_000 email taken", body = ErrorBody),
        (status = 429, description = "GLOBAL_106 rate limited", body = ErrorBody),
    ))]
pub async fn join(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(request): ApiJson<JoinRequest>,
) -> Result<(StatusCode, Json<JoinResponse>), ApiError> {
    let member_id = service::join(&state, &request, &ip.subject()).await?;
    Ok((StatusCode::CREATED, Json(JoinResponse { member_id })))
}

/// Logs in, starting a new session.
#[utoipa::path(post, path = "/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = LoginResponse),
        (status = 401, description = "AUTH_006 wrong email or password", body = ErrorBody),
        (status = 403, description = "AUTH_013 the member is suspended", body = ErrorBody),
        (status = 429, description = "GLOBAL_106 rate limited", body = ErrorBody),
    ))]
pub async fn login(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(request): ApiJson<LoginRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    Ok(Json(
        service::login(&state, &request.email, &request.password, &ip.subject()).await?,
    ))
}

/// Checks the access token (the app's splash screen).
#[utoipa::path(get, path = "/auth/verifyAccessToken", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, description = "Token valid", body = MessageResponse),
        (status = 401, description = "GLOBAL_103 invalid or revoked, GLOBAL_104 expired, AUTH_010 member gone", body = ErrorBody),
    ))]
pub async fn verify_access_token(
    State(state): State<AppState>,
    caller: AuthenticatedMember,
) -> Result<Json<MessageResponse>, ApiError> {
    service::verify_member_exists(&state, &caller).await?;
    Ok(Json(MessageResponse::new("verified")))
}

/// Exchanges a refresh token for a new token pair.
#[utoipa::path(post, path = "/auth/reissueToken", tag = "auth",
    request_body = ReissueTokenRequest,
    responses(
        (status = 200, description = "New token pair", body = ReissueTokenResponse),
        (status = 401, description = "AUTH_007 invalid, reused or logged-out token, AUTH_008 expired", body = ErrorBody),
        (status = 429, description = "GLOBAL_106 rate limited", body = ErrorBody),
    ))]
pub async fn reissue_token(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(request): ApiJson<ReissueTokenRequest>,
) -> Result<Json<ReissueTokenResponse>, ApiError> {
    Ok(Json(
        service::reissue(
            &state,
            request.member_id.0,
            &request.refresh_token,
            &ip.subject(),
        )
        .await?,
    ))
}

/// Logs out this session.
#[utoipa::path(post, path = "/auth/logout", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, description = "Logged out; the session's tokens are refused from now on", body = MessageResponse),
        (status = 401, description = "GLOBAL_103 invalid token, GLOBAL_104 expired", body = ErrorBody),
    ))]
pub async fn logout(
    State(state): State<AppState>,
    caller: AuthenticatedMember,
) -> Result<Json<MessageResponse>, ApiError> {
    service::logout(&state, &caller).await?;
    Ok(Json(MessageResponse::new("Logged out")))
}

/// Mails a password reset code, if a member has the email (extension 2026-12).
#[utoipa::path(post, path = "/auth/passwordResetCode", tag = "auth",
    request_body = PasswordResetCodeRequest,
    responses(
        (status = 200, description = "Answered alike whether or not a member has the email; only members get mail", body = MessageResponse),
        (status = 400, description = "GLOBAL_002 invalid email", body = ErrorBody),
        (status = 429, description = "GLOBAL_106 rate limited (the limits of emailVerificationCode)", body = ErrorBody),
        (status = 503, description = "GLOBAL_503 too many reset mails pending", body = ErrorBody),
    ))]
pub async fn send_password_reset_code(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(request): ApiJson<PasswordResetCodeRequest>,
) -> Result<Json<MessageResponse>, ApiError> {
    recovery::send_reset_code(&state, &request.email, &ip.subject()).await?;
    Ok(Json(MessageResponse::new("Email sent.")))
}

/// Sets a new password with a mailed reset code; every session of the member is revoked.
#[utoipa::path(post, path = "/auth/resetPassword", tag = "auth",
    request_body = ResetPasswordRequest,
    responses(
        (status = 200, description = "Password changed; every session's tokens are refused from now on", body = MessageResponse),
        (status = 400, description = "AUTH_002 no code sent (or already used), GLOBAL_002 invalid input", body = ErrorBody),
        (status = 401, description = "AUTH_003 wrong code, AUTH_004 expired code", body = ErrorBody),
        (status = 429, description = "GLOBAL_106 rate limited", body = ErrorBody),
    ))]
pub async fn reset_password(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(request): ApiJson<ResetPasswordRequest>,
) -> Result<Json<MessageResponse>, ApiError> {
    recovery::reset_password(
        &state,
        &request.email,
        &request.verification_code,
        &request.new_password,
        &ip.subject(),
    )
    .await?;
    Ok(Json(MessageResponse::new("Password changed.")))
}

/// Changes the caller's password; every other session of theirs is revoked.
#[utoipa::path(post, path = "/auth/changePassword", tag = "auth", security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 200, description = "Password changed; the member's other sessions are revoked", body = MessageResponse),
        (status = 400, description = "GLOBAL_002 invalid input", body = ErrorBody),
        (status = 401, description = "AUTH_006 wrong current password, GLOBAL_103 invalid token, GLOBAL_104 expired", body = ErrorBody),
        (status = 403, description = "GLOBAL_105 member_id is not the caller", body = ErrorBody),
        (status = 429, description = "GLOBAL_106 rate limited", body = ErrorBody),
    ))]
pub async fn change_password(
    State(state): State<AppState>,
    caller: AuthenticatedMember,
    ip: ClientIp,
    ApiJson(request): ApiJson<ChangePasswordRequest>,
) -> Result<Json<MessageResponse>, ApiError> {
    recovery::change_password(&state, &caller, &request, &ip.subject()).await?;
    Ok(Json(MessageResponse::new("Password changed.")))
}
