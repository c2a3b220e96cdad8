//! The cache (Redis) key layout: every key the core and the edge read or write, in one place.
//!
//! Every key starts with a configurable prefix (default `heart`), so several deployments or test
//! runs can share one Redis. Subjects (emails, IPs, member ids, queries) are hashed with one
//! [`digest`]: keys stay short, carry no personal data and cannot contain the separator.
//!
//! | key | value | written by | TTL |
//! |---|---|---|---|
//! | `<prefix>:revoked:<sid>` | `1` | core (logout, account deletion) | ≥ access-token life |
//! | `<prefix>:rl:<rule>:<digest(subject)>:<window>` | counter | core and edge ([`RateLimitRule`]) | the window |
//! | `<prefix>:tok:<sha256(token)>` | `1`: these exact access-token bytes passed the signature check | edge | the token's remaining life |
//! | `<prefix>:feed:version` | integer | core: `INCR` after every write that changes a feed | none |
//! | `<prefix>:feed:v<version>:home:<viewer>:<digest(query)>` | home-feed page | edge | `feed_page_ttl_secs` |
//! | `<prefix>:feed:v<version>:member:<member_id>:<digest(query)>` | member's page | edge | `feed_page_ttl_secs` |
//!
//! Feed pages are cached under a key that contains the [feed version](KeySpace::feed_version): the
//! core `INCR`s that key after every committed write that changes what a feed shows, so the next
//! read looks up a new key and never sees a page from before the write.

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

/// Which feed a cacheable request reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedKind {
    /// `GET /post/posts`: every post minus those by members the caller blocks, so it is per caller.
    Home {
        /// The caller (from the verified token).
        viewer: i64,
    },
    /// `GET /post/posts/{member_id}`: one member's posts, the same for every caller.
    Member {
        /// Whose posts.
        member_id: i64,
    },
}

/// The key of a cached feed page without its version: `head + version + tail` is the key, so the
/// edge can look the version up and the page in one Redis script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedPageKey {
    /// Everything before the version.
    pub head: String,
    /// Everything after the version.
    pub tail: String,
}

impl FeedPageKey {
    /// The full key for feed version `version`.
    pub fn with_version(&self, version: i64) -> String {
        format!("{}{version}{}", self.head, self.tail)
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

    /// Present once an edge has checked the signature of `token` (the whole `Authorization`
    /// bearer value) and found it valid, until the token expires: later requests with the same
    /// bytes skip the Ed25519 check (the expiry, key id, revocation and limits are still checked
    /// on every request). The full SHA-256, so no other bytes can share the mark. Value: `1`.
    pub fn verified_token(&self, token: &str) -> String {
        let mut key = format!("{}:tok:", self.prefix);
        push_hex(&mut key, &Sha256::digest(token.as_bytes()));
        key
    }

    /// The counter of `rule` (the core's or the edge's) for `subject` in fixed window
    /// `window_index`. Value: an integer, expiring with its window.
    pub fn rate_limit(&self, rule: RateLimitRule, subject: &str, window_index: i64) -> String {
        format!(
            "{}:rl:{}:{}:{window_index}",
            self.prefix,
            rule.name(),
            digest(subject)
        )
    }

    /// The feed version: an integer the core `INCR`s after every committed write that changes what
    /// a feed shows (post created or deleted, block, unblock, account deleted, avatar or nickname
    /// changed). Missing means `0`.
    pub fn feed_version(&self) -> String {
        format!("{}:feed:version", self.prefix)
    }

    /// The key of a cached feed page for `feed` and the request's canonical query (see
    /// `heart_shared::edge::feed_cache_query`), still without the feed version. Value: the `200`
    /// body as the edge answers it.
    pub fn feed_page(&self, feed: FeedKind, query: &str) -> FeedPageKey {
        let scope = match feed {
            FeedKind::Home { viewer } => format!("home:{viewer}"),
            FeedKind::Member { member_id } => format!("member:{member_id}"),
        };
        FeedPageKey {
            head: format!("{}:feed:v", self.prefix),
            tail: format!(":{scope}:{}", digest(query)),
        }
    }
}

/// A short, stable digest (96 bits of SHA-256, hex) of a subject: email, IP, member id, query.
pub fn digest(subject: &str) -> String {
    let mut hex = String::with_capacity(24);
    push_hex(&mut hex, &Sha256::digest(subject.as_bytes())[..12]);
    hex
}

/// Appends `bytes` to `out` in lowercase hex. By table, not `format!` per byte: the edge makes
/// four or five of these keys on every request.
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
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
        let mark = keys.verified_token("eyJ.a.b");
        assert!(mark.starts_with("t1:tok:") && mark.len() == "t1:tok:".len() + 64);
        assert_ne!(mark, keys.verified_token("eyJ.a.c"));
    }

    #[test]
    fn digests_are_lowercase_hex_of_sha256() {
        // SHA-256("abc"), FIPS 180-2's first example.
        let full = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(digest("abc"), full[..24]);
        assert_eq!(
            KeySpace::new("t").verified_token("abc"),
            format!("t:tok:{full}")
        );
        let mut out = String::from("x");
        push_hex(&mut out, &[0x00, 0x0f, 0xa0, 0xff]);
        assert_eq!(out, "x000fa0ff");
    }

    #[test]
    fn edge_and_core_counters_share_the_layout_but_not_the_keys() {
        let keys = KeySpace::new("t");
        let edge = keys.rate_limit(RateLimitRule::EdgeRequestsPerIp, "10.0.0.1", 5);
        assert!(edge.starts_with("t:rl:edge_requests_per_ip:"));
        assert!(edge.ends_with(":5"));
        assert!(!edge.contains("10.0.0.1"));
        assert_ne!(
            edge,
            keys.rate_limit(RateLimitRule::LoginPerIp, "10.0.0.1", 5)
        );
    }

    #[test]
    fn feed_page_keys_carry_the_version_and_the_viewer_of_the_home_feed() {
        let keys = KeySpace::new("t");
        let home = keys.feed_page(FeedKind::Home { viewer: 7 }, "page=0&size=10");
        assert_eq!(home.with_version(3), format!("{}3{}", home.head, home.tail));
        assert!(home.with_version(3).starts_with("t:feed:v3:home:7:"));
        assert_ne!(home.with_version(3), home.with_version(4));
        let other_viewer = keys.feed_page(FeedKind::Home { viewer: 8 }, "page=0&size=10");
        assert_ne!(home, other_viewer);
        let member = keys.feed_page(FeedKind::Member { member_id: 7 }, "page=0&size=10");
        assert!(member.with_version(0).starts_with("t:feed:v0:member:7:"));
        assert_ne!(
            member,
            keys.feed_page(FeedKind::Member { member_id: 7 }, "page=1&size=10")
        );
        assert_eq!(keys.feed_version(), "t:feed:version");
    }
}
