//! The contract's error codes and the one error body every failure answers with.
//!
//! The Android app never reads the HTTP status or the message of an error, only `code`; the status is
//! still kept equal to the code's so that operators and other clients see what happened.

use serde::{Deserialize, Serialize};

/// Every error code of the wire contract (`api-contract.md`, "Error body").
///
/// The string form (`GLOBAL_104`, …) is what the app reads, so it must never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 404: no such route.
    NoSuchRoute,
    /// 400: validation failed; the body lists the fields.
    InvalidInput,
    /// 405: the route exists, the method does not.
    MethodNotAllowed,
    /// 400: the body could not be read (bad JSON, wrong type, wrong Content-Type).
    UnreadableBody,
    /// 400: a query parameter, path parameter or text part is missing or malformed.
    InvalidParameter,
    /// 413: the upload or the request body is too large.
    PayloadTooLarge,
    /// 400: a required file part is missing.
    MissingFilePart,
    /// 401: access token missing, malformed, badly signed or revoked.
    InvalidAccessToken,
    /// 401: access token expired (the app reissues).
    ExpiredAccessToken,
    /// 403: authenticated, but acting for another member or not the owner.
    Forbidden,
    /// 429: rate limited; `Retry-After` says when to try again.
    RateLimited,
    /// 500: internal error; details are only in the logs.
    Internal,
    /// 503: a dependency (database, cache, storage, mail) is unavailable.
    DependencyUnavailable,
    /// 409: a member with this email already exists.
    EmailTaken,
    /// 503: the verification mail could not be sent.
    MailNotSent,
    /// 400: no verification code was sent to this email.
    NoVerificationCode,
    /// 401: wrong verification code.
    WrongVerificationCode,
    /// 401: the verification code expired.
    VerificationCodeExpired,
    /// 400: reserved; no longer produced.
    MemberNotFoundAtAuth,
    /// 401: wrong email or password (also for an unknown email).
    WrongCredentials,
    /// 401: refresh token unknown, revoked, reused or logged out.
    InvalidRefreshToken,
    /// 401: refresh token expired.
    ExpiredRefreshToken,
    /// 401: the token's member no longer exists.
    MemberGone,
    /// 403: the email was not verified before join.
    EmailNotVerified,
    /// 404: member does not exist (avatar).
    MemberNotFound,
    /// 503: storage upload failed (avatar).
    AvatarUploadFailed,
    /// 415: the file is not a PNG/JPEG/WebP/GIF image.
    AvatarNotAnImage,
    /// 404: `member_id` / `target_id` names no member.
    NoSuchMember,
    /// 409: already blocking.
    AlreadyBlocking,
    /// 503: storage delete failed (avatar).
    AvatarDeleteFailed,
    /// 404: the writer does not exist.
    WriterNotFound,
    /// 415: a post file is not an image.
    PostFileNotAnImage,
    /// 503: storage upload or delete failed (post).
    PostStorageFailed,
    /// 404: no such post.
    NoSuchPost,
    /// 403: the member is suspended by a moderator (login refused).
    MemberSuspended,
}

impl ErrorCode {
    /// Every code, in the contract's order (for documentation and exhaustive tests).
    pub const ALL: [ErrorCode; 35] = [
        ErrorCode::NoSuchRoute,
        ErrorCode::InvalidInput,
        ErrorCode::MethodNotAllowed,
        ErrorCode::UnreadableBody,
        ErrorCode::InvalidParameter,
        ErrorCode::PayloadTooLarge,
        ErrorCode::MissingFilePart,
        ErrorCode::InvalidAccessToken,
        ErrorCode::ExpiredAccessToken,
        ErrorCode::Forbidden,
        ErrorCode::RateLimited,
        ErrorCode::Internal,
        ErrorCode::DependencyUnavailable,
        ErrorCode::EmailTaken,
        ErrorCode::MailNotSent,
        ErrorCode::NoVerificationCode,
        ErrorCode::WrongVerificationCode,
        ErrorCode::VerificationCodeExpired,
        ErrorCode::MemberNotFoundAtAuth,
        ErrorCode::WrongCredentials,
        ErrorCode::InvalidRefreshToken,
        ErrorCode::ExpiredRefreshToken,
        ErrorCode::MemberGone,
        ErrorCode::EmailNotVerified,
        ErrorCode::MemberNotFound,
        ErrorCode::AvatarUploadFailed,
        ErrorCode::AvatarNotAnImage,
        ErrorCode::NoSuchMember,
        ErrorCode::AlreadyBlocking,
        ErrorCode::AvatarDeleteFailed,
        ErrorCode::WriterNotFound,
        ErrorCode::PostFileNotAnImage,
        ErrorCode::PostStorageFailed,
        ErrorCode::NoSuchPost,
        ErrorCode::MemberSuspended,
    ];

    /// The code string the app reads, e.g. `"GLOBAL_104"`.
    pub const fn as_str(self) -> &'static str {
        self.row().0
    }

    /// The HTTP status that goes with the code.
    pub const fn status(self) -> u16 {
        self.row().1
    }

    /// A generic, safe message for the code; callers may give a more specific one.
    pub const fn default_message(self) -> &'static str {
        self.row().2
    }

    /// The code for a bare HTTP status, for errors that arrive without one (framework rejections).
    pub fn for_status(status: u16) -> ErrorCode {
        match status {
            400 => ErrorCode::UnreadableBody,
            401 => ErrorCode::InvalidAccessToken,
            403 => ErrorCode::Forbidden,
            404 => ErrorCode::NoSuchRoute,
            405 => ErrorCode::MethodNotAllowed,
            413 => ErrorCode::PayloadTooLarge,
            415 => ErrorCode::UnreadableBody,
            422 => ErrorCode::UnreadableBody,
            429 => ErrorCode::RateLimited,
            503 | 504 => ErrorCode::DependencyUnavailable,
            _ => ErrorCode::Internal,
        }
    }

    /// Looks a code up by its string form.
    pub fn parse(code: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == code)
    }

    const fn row(self) -> (&'static str, u16, &'static str) {
        match self {
            ErrorCode::NoSuchRoute => ("GLOBAL_001", 404, "No such route"),
            ErrorCode::InvalidInput => ("GLOBAL_002", 400, "Invalid input"),
            ErrorCode::MethodNotAllowed => ("GLOBAL_003", 405, "Method not allowed"),
            ErrorCode::UnreadableBody => ("GLOBAL_004", 400, "Request body could not be read"),
            ErrorCode::InvalidParameter => ("GLOBAL_007", 400, "Missing or malformed parameter"),
            ErrorCode::PayloadTooLarge => ("GLOBAL_008", 413, "Upload too large"),
            ErrorCode::MissingFilePart => ("GLOBAL_009", 400, "Required file part missing"),
            ErrorCode::InvalidAccessToken => ("GLOBAL_103", 401, "Invalid access token"),
            ErrorCode::ExpiredAccessToken => ("GLOBAL_104", 401, "Expired access token"),
            ErrorCode::Forbidden => ("GLOBAL_105", 403, "Not allowed"),
            ErrorCode::RateLimited => ("GLOBAL_106", 429, "Too many requests"),
            ErrorCode::Internal => ("GLOBAL_500", 500, "Internal error"),
            ErrorCode::DependencyUnavailable => {
                ("GLOBAL_503", 503, "Service temporarily unavailable")
            }
            ErrorCode::EmailTaken => ("AUTH_000", 409, "A member with this email already exists"),
            ErrorCode::MailNotSent => ("AUTH_001", 503, "Mail could not be sent"),
            ErrorCode::NoVerificationCode => (
                "AUTH_002",
                400,
                "No verification code was sent to this email",
            ),
            ErrorCode::WrongVerificationCode => ("AUTH_003", 401, "Wrong verification code"),
            ErrorCode::VerificationCodeExpired => ("AUTH_004", 401, "Verification code expired"),
            ErrorCode::MemberNotFoundAtAuth => ("AUTH_005", 400, "Member not found"),
            ErrorCode::WrongCredentials => ("AUTH_006", 401, "Wrong email or password"),
            ErrorCode::InvalidRefreshToken => ("AUTH_007", 401, "Invalid refresh token"),
            ErrorCode::ExpiredRefreshToken => ("AUTH_008", 401, "Expired refresh token"),
            ErrorCode::MemberGone => ("AUTH_010", 401, "Member no longer exists"),
            ErrorCode::EmailNotVerified => ("AUTH_012", 403, "Email not verified"),
            ErrorCode::MemberNotFound => ("MEMBER_001", 404, "Member does not exist"),
            ErrorCode::AvatarUploadFailed => ("MEMBER_002", 503, "Storage upload failed"),
            ErrorCode::AvatarNotAnImage => (
                "MEMBER_004",
                415,
                "File is not a PNG, JPEG, WebP or GIF image",
            ),
            ErrorCode::NoSuchMember => ("MEMBER_005", 404, "No such member"),
            ErrorCode::AlreadyBlocking => ("MEMBER_006", 409, "Already blocking"),
            ErrorCode::AvatarDeleteFailed => ("MEMBER_007", 503, "Storage delete failed"),
            ErrorCode::WriterNotFound => ("POST_000", 404, "Writer does not exist"),
            ErrorCode::PostFileNotAnImage => ("POST_001", 415, "A file is not an image"),
            ErrorCode::PostStorageFailed => ("POST_002", 503, "Storage upload or delete failed"),
            ErrorCode::NoSuchPost => ("POST_004", 404, "No such post"),
            ErrorCode::MemberSuspended => ("AUTH_013", 403, "Member is suspended"),
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One failed field of a validation error (`GLOBAL_002`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldError {
    /// The JSON name of the field, e.g. `"password"`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// The body of every error answer: `{"status": 401, "code": "GLOBAL_104", "message": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// Equal to the HTTP status of the answer.
    pub status: u16,
    /// The contract's code, e.g. `"GLOBAL_104"`.
    pub code: String,
    /// A human-readable message; the app does not read it.
    pub message: String,
    /// Only on validation errors: which fields failed and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

impl ErrorBody {
    /// The body for `code` with a specific message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            status: code.status(),
            code: code.as_str().to_owned(),
            message: message.into(),
            errors: None,
        }
    }

    /// The body for `code` with its default message.
    pub fn of(code: ErrorCode) -> Self {
        ErrorBody::new(code, code.default_message())
    }

    /// The body serialised to JSON bytes (never fails: all fields are plain data).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_else(|_| {
            b"{\"status\":500,\"code\":\"GLOBAL_500\",\"message\":\"Internal error\"}".to_vec()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "duplicate {code}");
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
        }
        assert_eq!(ErrorCode::parse("GLOBAL_999"), None);
    }

    #[test]
    fn code_prefix_matches_its_family_and_status_is_an_error() {
        for code in ErrorCode::ALL {
            let s = code.as_str();
            assert!(
                s.starts_with("GLOBAL_")
                    || s.starts_with("AUTH_")
                    || s.starts_with("MEMBER_")
                    || s.starts_with("POST_")
            );
            assert!((400..600).contains(&code.status()), "{s}");
        }
    }

    #[test]
    fn error_body_serialises_like_the_contract() {
        let body = ErrorBody::new(ErrorCode::ExpiredAccessToken, "Expired access token");
        assert_eq!(
            String::from_utf8(body.to_json()).unwrap_or_default(),
            r#"{"status":401,"code":"GLOBAL_104","message":"Expired access token"}"#
        );
    }

    #[test]
    fn validation_errors_carry_fields() {
        let mut body = ErrorBody::of(ErrorCode::InvalidInput);
        body.errors = Some(vec![FieldError {
            field: "email".into(),
            message: "must be an email".into(),
        }]);
        let v: serde_json::Value = serde_json::from_slice(&body.to_json()).unwrap_or_default();
        assert_eq!(v["status"], 400);
        assert_eq!(v["errors"][0]["field"], "email");
    }
}
