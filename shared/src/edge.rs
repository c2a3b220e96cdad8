//! What the edge and the core must agree on about the edge: the headers it adds, its rate limits,
//! the feed-cache keys and the rule that finds the client's address.
//!
//! The edge (a Spin component, `edge/component`) verifies the access token, checks revocation,
//! rate-limits and answers cached feed pages; everything else it forwards to the core with the
//! identity it verified in [`MEMBER_ID_HEADER`] and [`SESSION_ID_HEADER`], and the shared secret in
//! [`EDGE_SECRET_HEADER`]. The core trusts the identity headers only when the secret matches.
//!
//! Feed pages are cached under a key that contains the [feed version](KeySpace::feed_version):
//! the core `INCR`s that key after every committed write that changes what a feed shows, so the
//! next read looks up a new key and never sees a page from before the write.

use sha2::{Digest, Sha256};

use crate::cache_keys::KeySpace;
use crate::rate_limit::RateLimit;

/// Set by the edge on forwarded requests: the verified member id (decimal).
pub const MEMBER_ID_HEADER: &str = "x-heart-member-id";
/// Set by the edge on forwarded requests: the verified session id (the token's `sid`).
pub const SESSION_ID_HEADER: &str = "x-heart-session-id";
/// Set by the edge on every forwarded request: the secret shared with the core (variable `edge_secret`).
pub const EDGE_SECRET_HEADER: &str = "x-heart-edge-secret";
/// Set by the edge on every forwarded request: the client address it rate-limited by.
pub const CLIENT_IP_HEADER: &str = "x-heart-client-ip";
/// Set by the edge on feed answers: `hit` (from the cache), `miss` (forwarded, then stored) or
/// `bypass` (forwarded, not cacheable: the cache is down or the query is unusual).
pub const CACHE_STATUS_HEADER: &str = "x-heart-cache";

/// Every header the edge sets for the core. The edge removes them from incoming requests first, so
/// a client can never send them itself.
pub const EDGE_HEADERS: [&str; 4] = [
    MEMBER_ID_HEADER,
    SESSION_ID_HEADER,
    EDGE_SECRET_HEADER,
    CLIENT_IP_HEADER,
];

/// How long the edge keeps a feed page, by default (seconds). Versioned keys make staleness after
/// a write impossible; the TTL only bounds memory.
pub const DEFAULT_FEED_PAGE_TTL_SECS: u32 = 60;

/// The edge's own rate limits, counted on every request it forwards or answers from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EdgeRateLimitRule {
    /// Requests from one client address. Generous: mobile carriers put many phones behind one address.
    RequestsPerIp,
    /// Requests by one member (authenticated routes only).
    RequestsPerMember,
}

impl EdgeRateLimitRule {
    /// Every rule.
    pub const ALL: [EdgeRateLimitRule; 2] = [
        EdgeRateLimitRule::RequestsPerIp,
        EdgeRateLimitRule::RequestsPerMember,
    ];

    /// The rule's name: in cache keys and the edge variable `rate_limit_<name>` (a `count/window`,
    /// e.g. `600/60s`). Distinct from every [`crate::rate_limit::RateLimitRule`] name.
    pub const fn name(self) -> &'static str {
        match self {
            EdgeRateLimitRule::RequestsPerIp => "edge_requests_per_ip",
            EdgeRateLimitRule::RequestsPerMember => "edge_requests_per_member",
        }
    }

    /// The default limit of the rule.
    pub const fn default_limit(self) -> RateLimit {
        match self {
            EdgeRateLimitRule::RequestsPerIp => RateLimit::new(600, 60),
            EdgeRateLimitRule::RequestsPerMember => RateLimit::new(240, 60),
        }
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

/// The edge's one Redis round trip per request, as a Lua script (run with `EVALSHA`/`EVAL`).
///
/// KEYS: 1 the per-IP counter; then, on authenticated routes, 2 the session's revocation flag
/// ([`KeySpace::revoked_session`]) and 3 the per-member counter; then, on cacheable feed reads,
/// 4 the feed version ([`KeySpace::feed_version`]).
/// ARGV: 1 the per-IP window (seconds), 2 the per-member window, 3 and 4 the
/// [`FeedPageKey`] head and tail.
/// Answer: `{ip count, revoked 0/1, member count, feed version, page body or nil}`; the page is
/// only read when the session is not revoked. Counters get their expiry on the first hit of a window.
///
/// The page key is built inside the script from the version it reads, so the script runs on one
/// Redis node (not across a cluster's slots); Spin's Redis interface connects to one node anyway.
pub const GATE_SCRIPT: &str = r"
local out = {0, 0, 0, 0, false}
out[1] = redis.call('INCR', KEYS[1])
if out[1] == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
if #KEYS >= 3 then
  out[2] = redis.call('EXISTS', KEYS[2])
  out[3] = redis.call('INCR', KEYS[3])
  if out[3] == 1 then redis.call('EXPIRE', KEYS[3], ARGV[2]) end
end
if #KEYS >= 4 then
  local version = tonumber(redis.call('GET', KEYS[4]) or '0') or 0
  out[4] = version
  if out[2] == 0 then out[5] = redis.call('GET', ARGV[3] .. version .. ARGV[4]) end
end
return out
";

/// The query parameters a feed request may carry and still be cached. A request with anything
/// else (or a parameter twice) is forwarded uncached, so clients cannot fill the cache with
/// variants of one page.
pub const FEED_QUERY_PARAMETERS: [&str; 4] = ["member_id", "page", "size", "cursor"];

impl KeySpace {
    /// The feed version: an integer the core `INCR`s after every committed write that changes what
    /// a feed shows (post created or deleted, block, unblock, account deleted, avatar or nickname
    /// changed). Missing means `0`.
    pub fn feed_version(&self) -> String {
        format!("{}:feed:version", self.prefix())
    }

    /// The key of a cached feed page for `feed` and the request's (already canonical, see
    /// [`canonical_feed_query`]) `query`, still without the feed version. Value: the `200` JSON body.
    pub fn feed_page(&self, feed: FeedKind, query: &str) -> FeedPageKey {
        let scope = match feed {
            FeedKind::Home { viewer } => format!("home:{viewer}"),
            FeedKind::Member { member_id } => format!("member:{member_id}"),
        };
        FeedPageKey {
            head: format!("{}:feed:v", self.prefix()),
            tail: format!(":{scope}:{}", digest(query)),
        }
    }

    /// The counter of edge rule `rule` for `subject` in fixed window `window_index`, laid out like
    /// [`KeySpace::rate_limit`]. Value: an integer.
    pub fn edge_rate_limit(
        &self,
        rule: EdgeRateLimitRule,
        subject: &str,
        window_index: i64,
    ) -> String {
        format!(
            "{}:rl:{}:{}:{window_index}",
            self.prefix(),
            rule.name(),
            digest(subject)
        )
    }
}

/// Which feed `method path` reads, if it is a feed read the edge may cache; `viewer` is the
/// verified caller.
pub fn feed_kind(method: &str, path: &str, viewer: i64) -> Option<FeedKind> {
    if method != "GET" {
        return None;
    }
    if path == "/post/posts" {
        return Some(FeedKind::Home { viewer });
    }
    let id = path.strip_prefix("/post/posts/")?;
    if id.is_empty() || id.len() > 19 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    id.parse()
        .ok()
        .map(|member_id| FeedKind::Member { member_id })
}

/// The query of a feed request in one canonical form (parameters sorted), or `None` when it must
/// not be cached: an unknown or repeated parameter, or a value that is not plain
/// (`[A-Za-z0-9_-]`, at most 128 characters).
pub fn canonical_feed_query(query: &str) -> Option<String> {
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let plain = value.len() <= 128
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !FEED_QUERY_PARAMETERS.contains(&name) || !plain || pairs.iter().any(|(n, _)| *n == name)
        {
            return None;
        }
        pairs.push((name, value));
    }
    pairs.sort_unstable();
    let parts: Vec<String> = pairs.iter().map(|(n, v)| format!("{n}={v}")).collect();
    Some(parts.join("&"))
}

/// The client's address: with `trusted_proxy_hops` reverse proxies in front (the load balancer),
/// the entry that many from the right of `X-Forwarded-For` (entries further left were written by
/// the client and cannot be trusted), else `peer`. The core applies the same rule, counting the
/// edge as one more hop, because the edge appends its peer to `X-Forwarded-For`.
pub fn client_ip<'a>(
    forwarded_for: impl IntoIterator<Item = &'a str>,
    peer: &'a str,
    trusted_proxy_hops: usize,
) -> &'a str {
    if trusted_proxy_hops == 0 {
        return peer;
    }
    let entries: Vec<&str> = forwarded_for
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    entries
        .len()
        .checked_sub(trusted_proxy_hops)
        .and_then(|i| entries.get(i))
        .copied()
        .filter(|ip| !ip.is_empty())
        .unwrap_or(peer)
}

/// The address part of `ip:port`, `[v6]:port` or a bare address.
pub fn strip_port(addr: &str) -> &str {
    let addr = addr.trim();
    if let Some(rest) = addr.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(ip, _)| ip);
    }
    match addr.split_once(':') {
        // Exactly one colon: IPv4 with a port. More: a bare IPv6 address.
        Some((ip, port)) if !port.contains(':') => ip,
        _ => addr,
    }
}

/// A short, stable digest, so keys stay short and carry no personal data.
fn digest(subject: &str) -> String {
    Sha256::digest(subject.as_bytes())
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate_limit::RateLimitRule;

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

    #[test]
    fn edge_rate_limit_keys_do_not_collide_with_the_cores() {
        let keys = KeySpace::new("t");
        let k = keys.edge_rate_limit(EdgeRateLimitRule::RequestsPerIp, "10.0.0.1", 5);
        assert!(k.starts_with("t:rl:edge_requests_per_ip:"));
        assert!(k.ends_with(":5"));
        assert!(!k.contains("10.0.0.1"));
        for core in RateLimitRule::ALL {
            for edge in EdgeRateLimitRule::ALL {
                assert_ne!(core.name(), edge.name());
            }
        }
    }

    #[test]
    fn only_feed_reads_are_cacheable() {
        assert_eq!(
            feed_kind("GET", "/post/posts", 3),
            Some(FeedKind::Home { viewer: 3 })
        );
        assert_eq!(
            feed_kind("GET", "/post/posts/12", 3),
            Some(FeedKind::Member { member_id: 12 })
        );
        assert_eq!(feed_kind("POST", "/post/posts", 3), None);
        assert_eq!(feed_kind("GET", "/post/posts/", 3), None);
        assert_eq!(feed_kind("GET", "/post/posts/1x", 3), None);
        assert_eq!(feed_kind("GET", "/post/posts/1/2", 3), None);
        assert_eq!(feed_kind("GET", "/post/registerPost", 3), None);
    }

    #[test]
    fn feed_queries_are_sorted_and_unusual_ones_refused() {
        assert_eq!(
            canonical_feed_query("size=10&page=0&member_id=4").as_deref(),
            Some("member_id=4&page=0&size=10")
        );
        assert_eq!(canonical_feed_query("").as_deref(), Some(""));
        assert_eq!(canonical_feed_query("page=0&x=1"), None);
        assert_eq!(canonical_feed_query("page=0&page=1"), None);
        assert_eq!(canonical_feed_query("page=%20"), None);
    }

    #[test]
    fn client_ip_counts_trusted_hops_from_the_right() {
        let xff = ["203.0.113.9, 198.51.100.7", "10.0.0.2"];
        assert_eq!(client_ip(xff, "10.0.0.3", 0), "10.0.0.3");
        assert_eq!(client_ip(xff, "10.0.0.3", 1), "10.0.0.2");
        assert_eq!(client_ip(xff, "10.0.0.3", 2), "198.51.100.7");
        assert_eq!(client_ip(xff, "10.0.0.3", 9), "10.0.0.3");
        assert_eq!(client_ip([], "10.0.0.3", 1), "10.0.0.3");
    }

    #[test]
    fn ports_are_stripped() {
        assert_eq!(strip_port("10.0.0.1:5000"), "10.0.0.1");
        assert_eq!(strip_port("10.0.0.1"), "10.0.0.1");
        assert_eq!(strip_port("[::1]:80"), "::1");
        assert_eq!(strip_port("::1"), "::1");
    }
}
