//! The Heart to Heart edge: a Spin HTTP component in front of the core.
//!
//! For every request it
//! 1. answers `/healthz` itself;
//! 2. on `/member/*`, `/post/*`, `GET /auth/verifyAccessToken`, `POST /auth/logout` and
//!    `POST /auth/changePassword` verifies the
//!    access token with the core's public keys (no call to the core): `GLOBAL_103` / `GLOBAL_104`;
//! 3. makes one Redis round trip ([`gate`]): revocation, rate limits per address and per member,
//!    and on feed reads the feed version and the cached page;
//! 4. decides ([`decide`]: revoked → per-IP → token → per-member → cache) and answers a refusal or
//!    a cached feed page ([`page`]: gzip, `ETag`, `304`), or forwards to the core with the verified
//!    identity, the edge secret and the client address, streaming the body both ways within the
//!    route's body limit; a `200` feed page is then stored (a second round trip).
//!
//! Redis is an optimisation: when it cannot be reached the request is forwarded as if nothing were
//! cached and nothing limited, and the core still checks revocation itself.

pub mod config;
pub mod decide;
pub mod gate;
pub mod page;
pub mod route;

#[cfg(target_arch = "wasm32")]
mod component;

use heart_shared::{ErrorBody, ErrorCode};

/// An answer the component has fully built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Headers.
    pub headers: Vec<route::Header>,
    /// Body.
    pub body: Vec<u8>,
}

impl Reply {
    /// A JSON answer.
    pub fn json(status: u16, body: Vec<u8>) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), b"application/json".to_vec())],
            body,
        }
    }

    /// A contract error answer: `{"status","code","message"}` with the code's status.
    pub fn error(code: ErrorCode, message: &str) -> Reply {
        Reply::json(code.status(), ErrorBody::new(code, message).to_json())
    }

    /// `GLOBAL_106` with `Retry-After`.
    pub fn rate_limited(retry_after_secs: u32) -> Reply {
        Reply::error(
            ErrorCode::RateLimited,
            ErrorCode::RateLimited.default_message(),
        )
        .with_header("retry-after", &retry_after_secs.to_string())
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        self.headers
            .push((name.to_owned(), value.as_bytes().to_vec()));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_in_the_contract_format() {
        let reply = Reply::rate_limited(7);
        assert_eq!(reply.status, 429);
        let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(body["status"], 429);
        assert_eq!(body["code"], "GLOBAL_106");
        assert!(body["message"].is_string());
        assert_eq!(
            route::header_value(&reply.headers, "retry-after"),
            Some("7")
        );
        assert_eq!(
            route::header_value(&reply.headers, "content-type"),
            Some("application/json")
        );
    }
}
