//! What the edge and the core must agree on about the edge: the headers it adds, the routes it
//! knows (methods, token, body limit), the feed pages it caches and the rule that finds the
//! client's address. The Redis keys are in [`crate::cache_keys`], the limits in
//! [`crate::rate_limit`].
//!
//! The edge (a Spin component, `edge/component`) verifies the access token, checks revocation,
//! rate-limits and answers cached feed pages; everything else it forwards to the core with the
//! identity it verified in [`MEMBER_ID_HEADER`] and [`SESSION_ID_HEADER`], and the shared secret in
//! [`EDGE_SECRET_HEADER`]. The core trusts the identity headers only when the secret matches.

pub use crate::cache_keys::{FeedKind, FeedPageKey};
/// Set by the edge on forwarded requests: the verified member id (decimal).
pub const MEMBER_ID_HEADER: &str = "x-heart-member-id";
/// Set by the edge on forwarded requests: the verified session id (the token's `sid`).
pub const SESSION_ID_HEADER: &str = "x-heart-session-id";
/// Set by the edge on every forwarded request: the secret shared with the core (variable `edge_secret`).
pub const EDGE_SECRET_HEADER: &str = "x-heart-edge-secret";
/// Set by the edge on every forwarded request: the client address it rate-limited by.
pub const CLIENT_IP_HEADER: &str = "x-heart-client-ip";
/// Set by the edge on forwarded requests with an identity, to `1`, when its Redis gate found the
/// session not revoked: the core then skips its own revocation check (one Redis round trip per
/// request). Absent when the edge could not reach Redis, so the core checks (Redis, else the
/// sessions table). Trusted only with the edge secret, like the identity.
pub const REVOCATION_CHECKED_HEADER: &str = "x-heart-revocation-checked";
/// Set by the edge on feed answers: `hit` (from the cache), `miss` (forwarded, then stored) or
/// `bypass` (forwarded, not cacheable: the cache is down or the query is unusual).
pub const CACHE_STATUS_HEADER: &str = "x-heart-cache";

/// Internal, from the component to our host only (variable `host_telemetry = on`), removed by the
/// host before the answer leaves: what the edge did (`hit`, `miss`, `bypass`, `forward`,
/// `not_modified`, `rate_limited`, `token_refused`, `revoked`, `refused`).
pub const EDGE_OUTCOME_HEADER: &str = "x-heart-edge-outcome";
/// Internal, like [`EDGE_OUTCOME_HEADER`]: the verified member id, for the access log.
pub const EDGE_MEMBER_HEADER: &str = "x-heart-edge-member";

/// Every header the edge sets for the core. The edge removes them from incoming requests first, so
/// a client can never send them itself.
pub const EDGE_HEADERS: [&str; 5] = [
    MEMBER_ID_HEADER,
    SESSION_ID_HEADER,
    REVOCATION_CHECKED_HEADER,
    EDGE_SECRET_HEADER,
    CLIENT_IP_HEADER,
];

/// Carried from the edge to the core and back on every answer: the request's id. The edge keeps a
/// well-formed one sent by the client (at most 64 of `[A-Za-z0-9._-]`) and makes one otherwise.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Whether a client-sent request id is kept: 1 to 64 characters of `[A-Za-z0-9._-]`.
pub fn is_valid_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// How long the edge keeps a feed page, by default (seconds). Versioned keys make staleness after
/// a write impossible; the TTL only bounds memory.
pub const DEFAULT_FEED_PAGE_TTL_SECS: u32 = 60;

/// The largest body of a JSON (non-upload) route, by default: the core's `HEART_MAX_JSON_BODY_BYTES`.
pub const DEFAULT_MAX_JSON_BODY_BYTES: u64 = 64 * 1024;

/// The largest body of an upload (multipart) route, by default: the core's
/// `HEART_MAX_UPLOAD_REQUEST_BYTES`.
pub const DEFAULT_MAX_UPLOAD_REQUEST_BYTES: u64 = 64 * 1024 * 1024;

/// The edge's one Redis round trip per request, as a Lua script (run with `EVALSHA`/`EVAL`).
///
/// KEYS: 1 the per-IP counter; then, on authenticated routes, 2 the session's revocation flag
/// ([`KeySpace::revoked_session`](crate::cache_keys::KeySpace::revoked_session)), 3 the
/// per-member counter and 4 the token's verified mark
/// ([`KeySpace::verified_token`](crate::cache_keys::KeySpace::verified_token)); then, on
/// cacheable feed reads, 5 the feed version.
/// ARGV: 1 the per-IP window (seconds), 2 the per-member window, 3 and 4 the [`FeedPageKey`] head
/// and tail, 5 the per-IP limit, 6 the per-member limit.
/// Answer: `{ip count, revoked 0/1, member count, feed version, page body or nil, marked 0/1}`.
///
/// It stops as soon as the answer is known, in the edge's decision order: a revoked session or an
/// address over its limit does not count against the member; a member over the limit reads no
/// page. Counters get their expiry on the first hit of a window.
///
/// The member is counted only when the token is marked as verified: the claims of an unmarked
/// token are not yet checked (the edge checks its signature after this answer), and a forged
/// token naming someone else must not spend that member's limit. A token seen for the first time
/// is counted by [`VERIFIED_SCRIPT`] once its signature checks out.
///
/// The page key is built inside the script from the version it reads, so the script runs on one
/// Redis node (not across a cluster's slots); Spin's Redis interface connects to one node anyway.
pub const GATE_SCRIPT: &str = r"
local out = {0, 0, 0, 0, false, 0}
out[1] = redis.call('INCR', KEYS[1])
if out[1] == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
if #KEYS >= 4 then
  out[2] = redis.call('EXISTS', KEYS[2])
  if out[2] == 1 or out[1] > tonumber(ARGV[5]) then return out end
  out[6] = redis.call('EXISTS', KEYS[4])
  if out[6] == 1 then
    out[3] = redis.call('INCR', KEYS[3])
    if out[3] == 1 then redis.call('EXPIRE', KEYS[3], ARGV[2]) end
    if out[3] > tonumber(ARGV[6]) then return out end
  end
elseif out[1] > tonumber(ARGV[5]) then
  return out
end
if #KEYS >= 5 then
  local version = tonumber(redis.call('GET', KEYS[5]) or '0') or 0
  out[4] = version
  out[5] = redis.call('GET', ARGV[3] .. version .. ARGV[4])
end
return out
";

/// The SHA-1 of [`GATE_SCRIPT`], as `EVALSHA` names it (written out, so a wasm instance, which
/// lives for one request, does not hash the script on every request; a test checks it).
pub const GATE_SCRIPT_SHA1: &str = "cb19f24cc8d57c0ff5c20f506db61a027dc50c0f";

/// The SHA-1 of [`VERIFIED_SCRIPT`] (see [`GATE_SCRIPT_SHA1`]).
pub const VERIFIED_SCRIPT_SHA1: &str = "0991a448cec066c7faf75cebb7d4f27c431ba8af";

/// The second round trip of a request whose token the gate did not know as verified and whose
/// signature the edge has just checked: marks the token (KEYS 1, for ARGV 1 seconds: the token's
/// remaining life) and counts the member (KEYS 2, a window of ARGV 2 seconds), answering the
/// member's count. Once per token: later requests with it take the gate's single round trip.
pub const VERIFIED_SCRIPT: &str = r"
redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
local n = redis.call('INCR', KEYS[2])
if n == 1 then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
return n
";

/// What a route's body may weigh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// JSON or no body: at most `max_json_body_bytes`.
    Json,
    /// A multipart upload: at most `max_upload_request_bytes`.
    Upload,
}

/// A route of the core the edge knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The path as the core's router spells it, e.g. `/post/posts/{member_id}`; also the `route`
    /// of the edge's access log and metrics.
    pub template: &'static str,
    /// The methods it answers (`GET` routes answer `HEAD` too).
    pub methods: &'static [&'static str],
    /// What its body may weigh.
    pub body: BodyKind,
}

const GET: &[&str] = &["GET", "HEAD"];
const POST: &[&str] = &["POST"];
const DELETE: &[&str] = &["DELETE"];

const fn route(template: &'static str, methods: &'static [&'static str]) -> Route {
    Route {
        template,
        methods,
        body: BodyKind::Json,
    }
}

/// Every route of the core's public router (`{name}` is one path segment, `{*rest}` the rest).
pub const ROUTES: &[Route] = &[
    route("/healthz", GET),
    route("/readyz", GET),
    route("/profile", GET),
    route("/.well-known/jwks.json", GET),
    route("/openapi.json", GET),
    route("/swagger-ui", GET),
    route("/swagger-ui/{*rest}", GET),
    route("/media/{*key}", GET),
    route("/auth/emailVerificationCode", POST),
    route("/auth/confirmVerificationCode", POST),
    route("/auth/join", POST),
    route("/auth/login", POST),
    route("/auth/verifyAccessToken", GET),
    route("/auth/reissueToken", POST),
    route("/auth/logout", POST),
    route("/auth/passwordResetCode", POST),
    route("/auth/resetPassword", POST),
    route("/auth/changePassword", POST),
    route("/member/export", GET),
    Route {
        template: "/member/uploadAvatar",
        methods: POST,
        body: BodyKind::Upload,
    },
    route("/member/profile", GET),
    route("/member/block", POST),
    route("/member/unblock", POST),
    route("/member/getBlockingMembers", GET),
    route("/member/report", POST),
    route("/member/delete/{id}", DELETE),
    route("/member/follow", POST),
    route("/member/unfollow", POST),
    route("/member/followers", GET),
    route("/member/followings", GET),
    Route {
        template: "/post/registerPost",
        methods: POST,
        body: BodyKind::Upload,
    },
    route("/post/posts", GET),
    route("/post/posts/{member_id}", GET),
    route("/post/following", GET),
    route("/post/delete/{post_id}", DELETE),
    route("/admin/reports", GET),
];

/// What the route table says about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteMatch {
    /// A known route that answers this method.
    Found(&'static Route),
    /// A known route that does not answer this method: `GLOBAL_003` (405), as the core would.
    MethodNotAllowed(&'static Route),
    /// The method is not one any route answers (`OPTIONS`, `TRACE`, …) and the path is unknown, or
    /// the target is not a path (`OPTIONS *`): `GLOBAL_001` (404), as the core's fallback would.
    NoSuchRoute,
    /// An unknown path with an ordinary method: forwarded, the core answers (so a route the core
    /// gains before the edge learns it still works).
    Unknown,
}

impl RouteMatch {
    /// The route's template, or `unknown`: the `route` label of the access log and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            RouteMatch::Found(route) | RouteMatch::MethodNotAllowed(route) => route.template,
            RouteMatch::NoSuchRoute | RouteMatch::Unknown => "unknown",
        }
    }

    /// What the request's body may weigh (unknown routes: as a JSON route).
    pub fn body(&self) -> BodyKind {
        match self {
            RouteMatch::Found(route) => route.body,
            _ => BodyKind::Json,
        }
    }
}

fn template_matches(template: &str, path: &str) -> bool {
    // The literal start of the template (up to its first `{`) must start the path. Compared
    // byte by byte, almost every route is ruled out at its first differing byte, before anything
    // is split: the edge matches every request against the table, and splitting each route
    // was 2 % of the edge's CPU on a cached page.
    let (t, p) = (template.as_bytes(), path.as_bytes());
    let mut i = 0;
    while i < t.len() && t[i] != b'{' {
        if p.get(i) != Some(&t[i]) {
            return false;
        }
        i += 1;
    }
    if i == t.len() {
        return p.len() == t.len();
    }
    segments_match(template, path)
}

/// `path` has `template`'s segments: literal ones equal, `{name}` any non-empty one, `{*rest}`
/// anything non-empty from there on.
fn segments_match(template: &str, path: &str) -> bool {
    let mut want = template.split('/');
    let mut got = path.split('/');
    loop {
        match (want.next(), got.next()) {
            (None, None) => return true,
            (Some(w), Some(g)) if w.starts_with("{*") => return !g.is_empty(),
            (Some(w), Some(g)) if w.starts_with('{') => {
                if g.is_empty() {
                    return false;
                }
            }
            (Some(w), Some(g)) if w == g => {}
            _ => return false,
        }
    }
}

/// Finds `method path` in [`ROUTES`].
pub fn match_route(method: &str, path: &str) -> RouteMatch {
    let ordinary = matches!(method, "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE");
    if !path.starts_with('/') {
        return RouteMatch::NoSuchRoute;
    }
    match ROUTES.iter().find(|r| template_matches(r.template, path)) {
        Some(route) if route.methods.contains(&method) => RouteMatch::Found(route),
        Some(route) => RouteMatch::MethodNotAllowed(route),
        None if ordinary => RouteMatch::Unknown,
        None => RouteMatch::NoSuchRoute,
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

/// The parameters the feed routes read (the core's `PageQuery`); any other is ignored by the core
/// and so by the cache key.
pub const FEED_QUERY_PARAMETERS: [&str; 4] = ["member_id", "page", "size", "cursor"];

fn plain(text: &str, max: usize) -> bool {
    text.len() <= max
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

/// The part of a feed request's query its answer depends on, in one canonical form
/// (`page=<n>&size=<n>[&cursor=<c>]`, defaults filled in, numbers without leading zeros), or `None`
/// when the request must go to the core uncached because the core would refuse or could read it
/// differently: a repeated or malformed parameter the route reads, a percent-encoded name, an
/// out-of-range page or size, or (home feed) a `member_id` that is not the caller's.
///
/// Only what the route reads enters the key: parameters the core ignores are dropped, and so is
/// `member_id` on `/post/posts/{member_id}` (checked to be a number, then ignored, as the core does;
/// on the home feed it must be the caller, who is already in the key).
pub fn feed_cache_query(feed: FeedKind, query: &str) -> Option<String> {
    let (mut member_id, mut page, mut size, mut cursor) = (None, None, None, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if !plain(name, 64) {
            return None;
        }
        let slot = match name {
            "member_id" => &mut member_id,
            "page" => &mut page,
            "size" => &mut size,
            "cursor" => &mut cursor,
            _ => continue,
        };
        if slot.is_some() || !plain(value, 128) {
            return None;
        }
        *slot = Some(value);
    }
    let number = |v: Option<&str>, default: i64| v.map_or(Some(default), |v| v.parse::<i64>().ok());
    let member_id = member_id.map(|v| v.parse::<i64>()).transpose().ok()?;
    let page = number(page, 0)?;
    let size = number(size, 10)?;
    if page < 0
        || !(1..=100).contains(&size)
        || page
            .checked_mul(size)
            .is_none_or(|offset| offset > i64::from(i32::MAX))
    {
        return None;
    }
    if let FeedKind::Home { viewer } = feed {
        if member_id != Some(viewer) {
            return None;
        }
    }
    Some(match cursor.filter(|c| !c.is_empty()) {
        Some(cursor) => format!("page={page}&size={size}&cursor={cursor}"),
        None => format!("page={page}&size={size}"),
    })
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn feed_keys_hold_only_what_the_route_reads_normalised() {
        let home = FeedKind::Home { viewer: 4 };
        let member = FeedKind::Member { member_id: 9 };
        let q = |feed, query| feed_cache_query(feed, query);
        // Defaults filled in, order and leading zeros gone.
        assert_eq!(
            q(home, "size=10&page=0&member_id=4").as_deref(),
            Some("page=0&size=10")
        );
        assert_eq!(
            q(home, "member_id=4"),
            q(home, "page=00&size=010&member_id=04")
        );
        // Parameters the core ignores do not make new keys.
        assert_eq!(q(home, "member_id=4&x=1&utm=2"), q(home, "member_id=4"));
        // The writer feed ignores member_id once it is a number.
        assert_eq!(q(member, "member_id=1"), q(member, "member_id=2"));
        assert_eq!(q(member, "member_id=1"), q(member, ""));
        assert_eq!(q(member, "member_id=x"), None);
        // The home feed belongs to the caller.
        assert_eq!(q(home, "member_id=5"), None);
        assert_eq!(q(home, ""), None);
        // What the core would refuse or read differently goes to the core.
        assert_eq!(q(home, "member_id=4&page=0&page=1"), None);
        assert_eq!(q(home, "member_id=4&page=%31"), None);
        assert_eq!(q(home, "member_id=4&pag%65=1"), None);
        assert_eq!(q(home, "member_id=4&page=-1"), None);
        assert_eq!(q(home, "member_id=4&size=101"), None);
        assert_eq!(q(home, "member_id=4&size="), None);
        // Cursors are kept; an empty one is none.
        assert_eq!(
            q(member, "cursor=MTA6Mg&page=0").as_deref(),
            Some("page=0&size=10&cursor=MTA6Mg")
        );
        assert_eq!(q(member, "cursor="), q(member, ""));
    }

    #[test]
    fn the_fast_path_matches_exactly_what_segments_match() {
        // Every template, filled in and bent every way a client could: each path is tried
        // against every route.
        let mut paths = vec![String::new(), "/".into(), "//".into(), "*".into()];
        for route in ROUTES {
            let fill = |with: &str| {
                route
                    .template
                    .split('/')
                    .map(|s| if s.starts_with('{') { with } else { s })
                    .collect::<Vec<_>>()
                    .join("/")
            };
            let (filled, empty_params) = (fill("7"), fill(""));
            for path in [
                route.template.to_owned(),
                filled.clone(),
                empty_params,
                format!("{filled}/"),
                format!("{filled}/x"),
                format!("{filled}x"),
                format!("/{filled}"),
                filled.to_uppercase(),
                filled[..filled.len() - 1].to_owned(),
                format!("{}é", &filled[..filled.len() - 1]),
            ] {
                paths.push(path);
            }
        }
        let mut matched = 0;
        for route in ROUTES {
            for path in &paths {
                let expected = segments_match(route.template, path);
                assert_eq!(
                    template_matches(route.template, path),
                    expected,
                    "{} against {path:?}",
                    route.template
                );
                matched += usize::from(expected);
            }
        }
        assert!(matched >= ROUTES.len() * 2, "only {matched} paths matched");
    }

    #[test]
    fn routes_methods_and_unrouted_requests() {
        assert!(matches!(
            match_route("GET", "/post/posts/12"),
            RouteMatch::Found(Route {
                template: "/post/posts/{member_id}",
                ..
            })
        ));
        assert_eq!(match_route("HEAD", "/healthz").label(), "/healthz");
        assert_eq!(
            match_route("POST", "/post/registerPost").body(),
            BodyKind::Upload
        );
        assert_eq!(match_route("POST", "/auth/login").body(), BodyKind::Json);
        assert!(matches!(
            match_route("OPTIONS", "/auth/login"),
            RouteMatch::MethodNotAllowed(_)
        ));
        assert!(matches!(
            match_route("DELETE", "/post/posts"),
            RouteMatch::MethodNotAllowed(_)
        ));
        assert_eq!(match_route("OPTIONS", "*"), RouteMatch::NoSuchRoute);
        assert_eq!(match_route("GET", "*"), RouteMatch::NoSuchRoute);
        assert_eq!(match_route("OPTIONS", "/nowhere"), RouteMatch::NoSuchRoute);
        assert_eq!(match_route("BREW", "/nowhere"), RouteMatch::NoSuchRoute);
        assert_eq!(match_route("GET", "/nowhere"), RouteMatch::Unknown);
        assert_eq!(match_route("GET", "/post/posts/"), RouteMatch::Unknown);
        assert!(matches!(
            match_route("GET", "/media/a/b.jpg"),
            RouteMatch::Found(_)
        ));
        assert_eq!(match_route("GET", "/media/"), RouteMatch::Unknown);
    }

    #[test]
    fn request_ids_from_clients_are_kept_only_when_plain() {
        assert!(is_valid_request_id("abc-123_x.y"));
        assert!(!is_valid_request_id(""));
        assert!(!is_valid_request_id("a b"));
        assert!(!is_valid_request_id(&"a".repeat(65)));
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
