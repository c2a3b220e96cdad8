//! The one error type of the core, and how it becomes a contract error answer.
//!
//! Handlers and services return [`ApiError`]. Expected failures carry their contract code;
//! unexpected ones are logged here with their cause chain and answered `GLOBAL_500` (or
//! `GLOBAL_503` when a dependency is down), never with their details.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use heart_shared::{ErrorBody, ErrorCode, FieldError};

/// Boxed cause of an unexpected error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Retry-After` (seconds) of a `GLOBAL_503` answered because a dependency is down.
pub const RETRY_AFTER_SECS: u32 = 2;

/// Marks an answer that found a dependency unreachable, so the database gate opens its breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DependencyDown(pub &'static str);

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// An expected failure with its contract code and a message safe to show.
    #[error("{code}: {message}")]
    Contract {
        /// The contract code.
        code: ErrorCode,
        message: String,
    },
    /// Validation failed (`GLOBAL_002`), field by field.
    #[error("invalid input: {0:?}")]
    Validation(Vec<FieldError>),
    /// Rate limited (`GLOBAL_106`), with the seconds until the window ends.
    #[error("rate limited for {retry_after_secs}s")]
    RateLimited {
        /// `Retry-After` in seconds.
        retry_after_secs: u32,
    },
    /// A dependency is down (`GLOBAL_503`, or a more specific code such as `AUTH_001`).
    #[error("{dependency} unavailable")]
    Unavailable {
        /// What is down: `database`, `cache`, `mail`, `storage`.
        dependency: &'static str,
        /// The code to answer with.
        code: ErrorCode,
        /// Why.
        #[source]
        source: BoxError,
    },
    /// Too busy to take the request now (`GLOBAL_503` with `Retry-After`), e.g. the password
    /// hashing queue is full.
    #[error("{what} is busy")]
    Busy {
        /// What is full.
        what: &'static str,
        /// The code to answer with.
        code: ErrorCode,
        /// `Retry-After` in seconds.
        retry_after_secs: u32,
    },
    /// A bug or an unexpected failure (`GLOBAL_500`).
    #[error("internal error")]
    Internal(#[source] BoxError),
}

impl ApiError {
    /// An expected failure with the code's default message.
    pub fn code(code: ErrorCode) -> ApiError {
        ApiError::Contract {
            code,
            message: code.default_message().to_owned(),
        }
    }

    /// An expected failure with a specific message.
    pub fn with_message(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError::Contract {
            code,
            message: message.into(),
        }
    }

    /// A validation failure of one field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::Validation(vec![FieldError {
            field: field.to_owned(),
            message: message.into(),
        }])
    }

    /// `MEMBER_005` naming which field points at no member.
    pub fn no_such_member(field: &str, id: i64) -> ApiError {
        ApiError::with_message(
            ErrorCode::NoSuchMember,
            format!("{field} {id} names no member"),
        )
    }

    /// An unexpected failure.
    pub fn internal(source: impl Into<BoxError>) -> ApiError {
        ApiError::Internal(source.into())
    }

    /// The contract code this error answers with.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            ApiError::Contract { code, .. } => *code,
            ApiError::Validation(_) => ErrorCode::InvalidInput,
            ApiError::RateLimited { .. } => ErrorCode::RateLimited,
            ApiError::Unavailable { code, .. } | ApiError::Busy { code, .. } => *code,
            ApiError::Internal(_) => ErrorCode::Internal,
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => ApiError::Unavailable {
                dependency: "database",
                code: ErrorCode::DependencyUnavailable,
                source: error.into(),
            },
            sqlx::Error::Database(ref e) if is_busy(e.as_ref()) => ApiError::Unavailable {
                dependency: "database",
                code: ErrorCode::DependencyUnavailable,
                source: error.into(),
            },
            // A deadlock the database broke by failing this transaction (rolled back, so nothing
            // of it was written) after the ones that retry it gave up, or in one that does not:
            // the client may simply try again.
            _ if is_deadlock(&error) => ApiError::Busy {
                what: "database (deadlock)",
                code: ErrorCode::DependencyUnavailable,
                retry_after_secs: RETRY_AFTER_SECS,
            },
            // A row refers to a member (or post) deleted meanwhile, e.g. a deleted member's
            // token used before its revocation reached this process: never a 500.
            sqlx::Error::Database(ref e) if e.is_foreign_key_violation() => {
                ApiError::code(ErrorCode::MemberGone)
            }
            other => ApiError::Internal(other.into()),
        }
    }
}

/// Whether `error` is the database giving up on a transaction to break a deadlock (SQLSTATE
/// `40001`: MySQL's 1213). The transaction was rolled back and may simply run again.
pub fn is_deadlock(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.code().as_deref() == Some("40001"))
}

/// Whether the database refused for being busy: SQLite locked by another connection past the busy
/// timeout (`SQLITE_BUSY`, `SQLITE_LOCKED` and their extended codes). The database is there but
/// unavailable for now: `GLOBAL_503`, not a bug.
pub(crate) fn is_busy(error: &dyn sqlx::error::DatabaseError) -> bool {
    error
        .try_downcast_ref::<sqlx::sqlite::SqliteError>()
        .and_then(sqlx::error::DatabaseError::code)
        .and_then(|code| code.parse::<u32>().ok())
        .is_some_and(|code| matches!(code & 0xFF, 5 | 6))
}

/// The cause chain of an error on one line, for the logs.
pub fn cause_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

/// A contract error answer for `code` with `message`.
pub fn error_response(code: ErrorCode, message: impl Into<String>) -> Response {
    json_error(ErrorBody::new(code, message))
}

fn json_error(body: ErrorBody) -> Response {
    let status = StatusCode::from_u16(body.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, body.to_json()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Contract { code, message } => error_response(code, message),
            ApiError::Validation(errors) => {
                let mut body = ErrorBody::of(ErrorCode::InvalidInput);
                body.errors = Some(errors);
                json_error(body)
            }
            ApiError::RateLimited { retry_after_secs } => {
                let mut response =
                    error_response(ErrorCode::RateLimited, "Too many requests; try again later");
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
                response
            }
            ApiError::Unavailable {
                dependency,
                code,
                source,
            } => {
                tracing::error!(dependency, error = %cause_chain(source.as_ref()), "dependency unavailable");
                metrics::counter!("heart_dependency_errors_total", "dependency" => dependency)
                    .increment(1);
                // A pool timeout alone may be load, not an outage: the breaker's probe decides that.
                let unreachable = source
                    .downcast_ref::<sqlx::Error>()
                    .is_some_and(|e| matches!(e, sqlx::Error::Io(_) | sqlx::Error::Tls(_)));
                let mut response = error_response(code, code.default_message());
                if code == ErrorCode::DependencyUnavailable {
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
                }
                if unreachable {
                    response.extensions_mut().insert(DependencyDown(dependency));
                }
                response
            }
            ApiError::Busy {
                what,
                code,
                retry_after_secs,
            } => {
                tracing::warn!(what, "busy; refused with Retry-After");
                let mut response = error_response(code, code.default_message());
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
                response
            }
            ApiError::Internal(source) => {
                tracing::error!(error = %cause_chain(source.as_ref()), "internal error");
                error_response(ErrorCode::Internal, ErrorCode::Internal.default_message())
            }
        }
    }
}
