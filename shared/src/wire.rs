//! Request and response bodies of the Android app's contract (`api-contract.md`).
//!
//! Field names are the wire names (snake_case). Optional values are serialised as `null`, never
//! omitted. Request string fields default to empty so that a missing field is reported as a
//! validation error (`GLOBAL_002`) naming it, as the original server did, rather than as an
//! unreadable body.

use serde::{Deserialize, Deserializer, Serialize};

/// A member id as the app may send it: a JSON number or a numeric string (`"42"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct MemberId(pub i64);

impl<'de> Deserialize<'de> for MemberId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum NumberOrString {
            Number(i64),
            String(String),
        }
        match NumberOrString::deserialize(deserializer)? {
            NumberOrString::Number(n) => Ok(MemberId(n)),
            NumberOrString::String(s) => s.trim().parse::<i64>().map(MemberId).map_err(|_| {
                serde::de::Error::custom("member_id must be a number or a numeric string")
            }),
        }
    }
}

/// A plain `{"message": "..."}` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageResponse {
    /// The message, e.g. `"Email sent."`.
    pub message: String,
}

impl MessageResponse {
    /// A message answer.
    pub fn new(message: impl Into<String>) -> Self {
        MessageResponse {
            message: message.into(),
        }
    }
}

/// `POST /auth/emailVerificationCode`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SendVerificationCodeRequest {
    /// Where to send the code.
    #[serde(default)]
    pub email: String,
}

/// `POST /auth/confirmVerificationCode`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConfirmVerificationCodeRequest {
    /// The email the code was sent to.
    #[serde(default)]
    pub email: String,
    /// The 8-character code from the mail (case-sensitive).
    #[serde(default)]
    pub verification_code: String,
}

/// `POST /auth/join`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JoinRequest {
    /// A confirmed email, at most 200 characters.
    #[serde(default)]
    pub email: String,
    /// 1–20 characters after trimming.
    #[serde(default)]
    pub name: String,
    /// 1–20 characters after trimming.
    #[serde(default)]
    pub nickname: String,
    /// 8–64 characters with at least one letter and one digit.
    #[serde(default)]
    pub password: String,
}

/// `201` answer of `POST /auth/join`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JoinResponse {
    /// The new member's id.
    pub member_id: i64,
}

/// `POST /auth/login`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginRequest {
    /// The member's email (case-insensitive).
    #[serde(default)]
    pub email: String,
    /// The member's password.
    #[serde(default)]
    pub password: String,
}

/// `200` answer of `POST /auth/login`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginResponse {
    /// The member's id.
    pub member_id: i64,
    /// A short-lived signed JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// An opaque token for `POST /auth/reissueToken`; rotated on every use.
    pub refresh_token: String,
    /// The member's name.
    pub name: String,
    /// The member's nickname.
    pub nickname: String,
}

/// `POST /auth/reissueToken`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReissueTokenRequest {
    /// The member the refresh token belongs to, as a number or a numeric string.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "42"))]
    pub member_id: MemberId,
    /// The refresh token from the last login or reissue.
    #[serde(default)]
    pub refresh_token: String,
}

/// `200` answer of `POST /auth/reissueToken`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReissueTokenResponse {
    /// The member's id.
    pub member_id: i64,
    /// A new access token.
    pub access_token: String,
    /// A new refresh token; the one presented is now rotated.
    pub refresh_token: String,
    /// The member's name.
    pub name: String,
    /// The member's nickname.
    pub nickname: String,
    /// The member's email.
    pub email: String,
    /// Absolute URL of the member's avatar, or `null`.
    pub avatar_url: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_id_accepts_number_and_numeric_string() {
        let a: ReissueTokenRequest =
            serde_json::from_str(r#"{"member_id": 7, "refresh_token": "x"}"#).unwrap();
        let b: ReissueTokenRequest =
            serde_json::from_str(r#"{"member_id": "7", "refresh_token": "x"}"#).unwrap();
        assert_eq!(a.member_id, MemberId(7));
        assert_eq!(a, b);
    }

    #[test]
    fn member_id_rejects_non_numeric_string() {
        assert!(serde_json::from_str::<ReissueTokenRequest>(
            r#"{"member_id": "seven", "refresh_token": "x"}"#
        )
        .is_err());
        assert!(serde_json::from_str::<ReissueTokenRequest>(
            r#"{"member_id": true, "refresh_token": "x"}"#
        )
        .is_err());
    }

    #[test]
    fn missing_string_fields_default_to_empty_for_validation() {
        let join: JoinRequest = serde_json::from_str(r#"{"email": "a@b.c"}"#).unwrap();
        assert_eq!(join.password, "");
    }

    #[test]
    fn optional_values_are_sent_as_null() {
        let r = ReissueTokenResponse {
            member_id: 1,
            access_token: "a".into(),
            refresh_token: "r".into(),
            name: "n".into(),
            nickname: "k".into(),
            email: "e@x.io".into(),
            avatar_url: None,
        };
        let v = serde_json::to_value(&r).unwrap();
        assert!(v.as_object().unwrap().contains_key("avatar_url"));
        assert!(v["avatar_url"].is_null());
    }
}
