//! The cache (Redis) key layout, shared so the edge reads what the core writes.
//!
//! Every key starts with a configurable prefix (default `heart`), so several deployments or test
//! runs can share one Redis. Subjects (emails, IPs) are hashed: keys stay short, carry no
//! personal data and cannot contain the separator.

use sha2::{Digest, Sha256};

use crate::rate_limit::RateLimitRule;

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "heart";

/// Builds cache keys under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpace {
    prefix: String,
}

impl Default for KeySpace {
    fn default() -> Self {
        KeySpace::new(DEFAULT_PREFIX)
    }
}

impl KeySpace {
    /// A key space under `prefix`.
    pub fn new(prefix: impl Into<String>) -> KeySpace {
        KeySpace {
            prefix: prefix.into(),
        }
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Present while session `sid` is revoked (logout, account deletion); its TTL outlives every
    /// access token of the session. Value: `1`.
    pub fn revoked_session(&self, sid: &str) -> String {
        format!("{}:revoked:{sid}", self.prefix)
    }

    /// The counter of `rule` for `subject` in fixed window `window_index`. Value: an integer.
    pub fn rate_limit(&self, rule: RateLimitRule, subject: &str, window_index: i64) -> String {
        format!(
            "{}:rl:{}:{}:{window_index}",
            self.prefix,
            rule.name(),
            subject_digest(subject)
        )
    }
}

/// A short, stable digest of a subject (email, IP, member id).
fn subject_digest(subject: &str) -> String {
    let digest = Sha256::digest(subject.as_bytes());
    digest.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_prefixed_and_hide_the_subject() {
        let keys = KeySpace::new("t1");
        assert_eq!(keys.revoked_session("abc"), "t1:revoked:abc");
        let k = keys.rate_limit(RateLimitRule::LoginPerEmail, "a@b.c", 7);
        assert!(k.starts_with("t1:rl:login_per_email:"));
        assert!(k.ends_with(":7"));
        assert!(!k.contains("a@b.c"));
        assert_ne!(k, keys.rate_limit(RateLimitRule::LoginPerEmail, "a@b.d", 7));
    }
}
