//! The authenticated caller, from `Authorization: Bearer <access token>`.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use heart_shared::token::bearer_token;
use heart_shared::wire::MemberId;
use heart_shared::{ErrorCode, FieldError};

use super::sessions;
use crate::error::ApiError;
use crate::state::AppState;
use crate::telemetry::CallerSlot;

/// A member proven by a valid, unrevoked access token. Identity comes from here, never from the request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedMember {
    /// The member (`sub`).
    pub member_id: i64,
    /// The session (`sid`).
    pub session_id: String,
}

impl AuthenticatedMember {
    /// `GLOBAL_105` unless `member_id` (from the request) is the caller.
    pub fn require_is(&self, member_id: i64) -> Result<(), ApiError> {
        if member_id == self.member_id {
            Ok(())
        } else {
            Err(ApiError::with_message(
                ErrorCode::Forbidden,
                "Acting for another member is not allowed",
            ))
        }
    }
}

impl AuthenticatedMember {
    /// The `member_id` and `target_id` of a body, after checking `member_id` is the caller:
    /// `GLOBAL_002` naming each missing one, `GLOBAL_105` for another member.
    pub fn caller_and_target(
        &self,
        member_id: Option<MemberId>,
        target_id: Option<MemberId>,
    ) -> Result<(i64, i64), ApiError> {
        match (member_id, target_id) {
            (Some(member), Some(target)) => {
                self.require_is(member.0)?;
                Ok((member.0, target.0))
            }
            (member_id, target_id) => {
                let missing = [
                    ("member_id", member_id.is_none()),
                    ("target_id", target_id.is_none()),
                ]
                .into_iter()
                .filter(|(_, missing)| *missing)
                .map(|(field, _)| FieldError {
                    field: field.into(),
                    message: "must not be null".into(),
                })
                .collect();
                Err(ApiError::Validation(missing))
            }
        }
    }
}

impl FromRequestParts<AppState> for AuthenticatedMember {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let (member_id, session_id, revocation_checked) = match edge_identity(parts, state) {
            Some(identity) => identity,
            None => {
                let (member_id, session_id) = verify_bearer(parts, state)?;
                (member_id, session_id, false)
            }
        };
        // Checked here unless the edge's gate did (one Redis round trip per request): the edge
        // says so only when it reached Redis. Revocations this process could not publish (made
        // during a Redis outage) are not in Redis, so those are checked in either case.
        let revoked = if revocation_checked {
            state.revocations.is_revoked_unpublished(&session_id).await
        } else {
            match state.revocations.is_revoked(&session_id).await {
                Ok(revoked) => revoked,
                Err(error) => {
                    tracing::warn!(error = %crate::error::cause_chain(&error), "revocation check falls back to the database");
                    sessions::is_revoked(&state.db, &session_id).await?
                }
            }
        };
        if revoked {
            return Err(ApiError::with_message(
                ErrorCode::InvalidAccessToken,
                "Revoked access token",
            ));
        }
        if let Some(slot) = parts.extensions.get::<CallerSlot>() {
            slot.set(member_id);
        }
        Ok(AuthenticatedMember {
            member_id,
            session_id,
        })
    }
}

/// The identity the edge verified, and whether its gate found the session not revoked; trusted
/// only when the request carries the edge's secret.
fn edge_identity(parts: &Parts, state: &AppState) -> Option<(i64, String, bool)> {
    if !crate::extract::from_trusted_edge(parts, state) {
        return None;
    }
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let member_id = header(heart_shared::edge::MEMBER_ID_HEADER)?.parse().ok()?;
    let session_id = header(heart_shared::edge::SESSION_ID_HEADER)
        .filter(|s| !s.is_empty())?
        .to_owned();
    let revocation_checked =
        header(heart_shared::edge::REVOCATION_CHECKED_HEADER).is_some_and(|v| v == "1");
    Some((member_id, session_id, revocation_checked))
}

/// The identity in a valid `Authorization: Bearer` access token.
fn verify_bearer(parts: &Parts, state: &AppState) -> Result<(i64, String), ApiError> {
    let header = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let Some(token) = header.and_then(bearer_token) else {
        return Err(ApiError::with_message(
            ErrorCode::InvalidAccessToken,
            "Missing access token",
        ));
    };
    state
        .tokens
        .verify_access_token(token, state.clock.now())
        .map_err(|e| ApiError::with_message(e.error_code(), e.to_string()))
}
