//! The one Redis round trip before a request is answered or forwarded: rate-limit counters,
//! the revocation flag, the feed version and the cached page, in one Lua script.
//!
//! Spin's Redis interface sends one command per call, so batching happens server-side in a script
//! ([`GATE_SCRIPT`], defined in heart-shared) run with `EVALSHA`, falling back to `EVAL` once when
//! Redis has not seen the script yet.

use heart_shared::edge::FeedPageKey;
use heart_shared::rate_limit::RateLimitRule;
use spin_sdk::redis::{Connection, RedisParameter, RedisResult};

use crate::config::EdgeConfig;

pub use heart_shared::edge::GATE_SCRIPT;

/// What the gate should look at for one request.
#[derive(Debug, Clone)]
pub struct GateQuery {
    /// The client address (rate-limit subject).
    pub client_ip: String,
    /// The verified session and member, on authenticated routes.
    pub caller: Option<(String, i64)>,
    /// The page key, on cacheable feed reads.
    pub page: Option<FeedPageKey>,
}

/// What the gate found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateAnswer {
    /// This request's number in its IP window.
    pub ip_count: i64,
    /// Whether the session is revoked.
    pub revoked: bool,
    /// This request's number in its member window (0 when unauthenticated).
    pub member_count: i64,
    /// The feed version read (0 when not a feed read).
    pub feed_version: i64,
    /// The cached page body, on a hit.
    pub page: Option<Vec<u8>>,
}

/// Redis could not be used; the request is forwarded without the gate.
#[derive(Debug)]
pub struct CacheUnavailable(pub String);

impl std::fmt::Display for CacheUnavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cache unavailable: {}", self.0)
    }
}

fn unavailable(e: impl std::fmt::Debug) -> CacheUnavailable {
    CacheUnavailable(format!("{e:?}"))
}

/// The script's SHA-1, as `EVALSHA` wants it.
pub fn script_sha() -> String {
    sha1_smol::Sha1::from(GATE_SCRIPT).digest().to_string()
}

/// The `EVALSHA`/`EVAL` arguments after the script (or its SHA) for `query` at `now`.
pub fn script_arguments(config: &EdgeConfig, query: &GateQuery, now: i64) -> Vec<RedisParameter> {
    let keys = &config.keys;
    let ip = config.per_ip;
    let member = config.per_member;
    let mut key_args = vec![keys.rate_limit(
        RateLimitRule::EdgeRequestsPerIp,
        &query.client_ip,
        ip.window_index(now),
    )];
    if let Some((sid, member_id)) = &query.caller {
        key_args.push(keys.revoked_session(sid));
        key_args.push(keys.rate_limit(
            RateLimitRule::EdgeRequestsPerMember,
            &member_id.to_string(),
            member.window_index(now),
        ));
        if query.page.is_some() {
            key_args.push(keys.feed_version());
        }
    }
    let (head, tail) = query
        .page
        .as_ref()
        .map_or((String::new(), String::new()), |p| {
            (p.head.clone(), p.tail.clone())
        });
    let mut args = vec![RedisParameter::Int64(key_args.len() as i64)];
    args.extend(
        key_args
            .into_iter()
            .map(|k| RedisParameter::Binary(k.into_bytes())),
    );
    args.push(RedisParameter::Int64(i64::from(ip.window_secs)));
    args.push(RedisParameter::Int64(i64::from(member.window_secs)));
    args.push(RedisParameter::Binary(head.into_bytes()));
    args.push(RedisParameter::Binary(tail.into_bytes()));
    args.push(RedisParameter::Int64(i64::from(ip.limit)));
    args.push(RedisParameter::Int64(i64::from(member.limit)));
    args
}

/// Runs the gate: one round trip (two the first time Redis sees the script). Every request but
/// `/healthz` runs it, refused tokens included (counted against their address).
pub fn run(
    connection: &Connection,
    config: &EdgeConfig,
    query: &GateQuery,
    now: i64,
) -> Result<GateAnswer, CacheUnavailable> {
    let arguments = script_arguments(config, query, now);
    let mut with_sha = vec![RedisParameter::Binary(script_sha().into_bytes())];
    with_sha.extend(arguments.iter().cloned());
    let results = match connection.execute("EVALSHA", &with_sha) {
        Ok(results) => results,
        // Redis answers `NOSCRIPT`; hosts built on redis-rs (Spin's too) spell it `NoScriptError`.
        Err(e) if is_no_script(&format!("{e:?}")) => {
            let mut with_script = vec![RedisParameter::Binary(GATE_SCRIPT.as_bytes().to_vec())];
            with_script.extend(arguments);
            connection
                .execute("EVAL", &with_script)
                .map_err(unavailable)?
        }
        Err(e) => return Err(unavailable(e)),
    };
    parse_answer(results)
}

fn is_no_script(error: &str) -> bool {
    let error = error.to_ascii_lowercase();
    error.contains("noscript") || error.contains("no matching script")
}

/// Reads the script's five answers.
pub fn parse_answer(results: Vec<RedisResult>) -> Result<GateAnswer, CacheUnavailable> {
    let int = |r: Option<&RedisResult>| match r {
        Some(RedisResult::Int64(n)) => Ok(*n),
        Some(RedisResult::Binary(b)) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| CacheUnavailable("non-numeric script answer".into())),
        other => Err(CacheUnavailable(format!(
            "unexpected script answer {other:?}"
        ))),
    };
    if results.len() < 4 {
        return Err(CacheUnavailable(format!(
            "script answered {} values",
            results.len()
        )));
    }
    let page = match results.get(4) {
        Some(RedisResult::Binary(body)) => Some(body.clone()),
        _ => None,
    };
    Ok(GateAnswer {
        ip_count: int(results.first())?,
        revoked: int(results.get(1))? != 0,
        member_count: int(results.get(2))?,
        feed_version: int(results.get(3))?,
        page,
    })
}

/// Stores a feed page under its versioned key for `ttl_secs`: the second round trip of a miss.
pub fn store_page(
    connection: &Connection,
    key: &str,
    body: &[u8],
    ttl_secs: u32,
) -> Result<(), CacheUnavailable> {
    connection
        .execute(
            "SET",
            &[
                RedisParameter::Binary(key.as_bytes().to_vec()),
                RedisParameter::Binary(body.to_vec()),
                RedisParameter::Binary(b"EX".to_vec()),
                RedisParameter::Int64(i64::from(ttl_secs)),
            ],
        )
        .map(|_| ())
        .map_err(unavailable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use heart_shared::edge::FeedKind;

    fn config() -> EdgeConfig {
        EdgeConfig::read(|name| match name {
            "core_url" => Some("http://core".into()),
            "jwks" => Some("{}".into()),
            "edge_secret" => Some("s".into()),
            "cache_prefix" => Some("t".into()),
            _ => None,
        })
        .unwrap()
    }

    fn keys(args: &[RedisParameter]) -> Vec<String> {
        let RedisParameter::Int64(n) = args[0] else {
            panic!("no key count")
        };
        args[1..=n as usize]
            .iter()
            .map(|a| match a {
                RedisParameter::Binary(b) => String::from_utf8(b.clone()).unwrap(),
                RedisParameter::Int64(_) => panic!("numeric key"),
            })
            .collect()
    }

    #[test]
    fn anonymous_requests_only_count_the_address() {
        let query = GateQuery {
            client_ip: "1.2.3.4".into(),
            caller: None,
            page: None,
        };
        let k = keys(&script_arguments(&config(), &query, 120));
        assert_eq!(k.len(), 1);
        assert!(k[0].starts_with("t:rl:edge_requests_per_ip:"));
        assert!(k[0].ends_with(":2"));
    }

    #[test]
    fn feed_reads_check_everything_in_one_script() {
        let config = config();
        let query = GateQuery {
            client_ip: "1.2.3.4".into(),
            caller: Some(("sid".into(), 7)),
            page: Some(
                config
                    .keys
                    .feed_page(FeedKind::Home { viewer: 7 }, "page=0"),
            ),
        };
        let args = script_arguments(&config, &query, 120);
        let k = keys(&args);
        assert_eq!(k[1], "t:revoked:sid");
        assert!(k[2].starts_with("t:rl:edge_requests_per_member:"));
        assert_eq!(k[3], "t:feed:version");
        assert_eq!(args.len(), 1 + 4 + 6);
        assert!(matches!(args[9], RedisParameter::Int64(n) if n == i64::from(config.per_ip.limit)));
    }

    #[test]
    fn unknown_script_errors_are_recognised() {
        assert!(is_no_script(
            "NOSCRIPT No matching script. Please use EVAL."
        ));
        assert!(is_no_script(
            "Other(\"An error was signalled by the server - NoScriptError: No matching script.\")"
        ));
        assert!(!is_no_script("Other(\"Connection refused\")"));
    }

    #[test]
    fn answers_are_parsed_with_and_without_a_page() {
        let hit = parse_answer(vec![
            RedisResult::Int64(1),
            RedisResult::Int64(0),
            RedisResult::Int64(2),
            RedisResult::Int64(5),
            RedisResult::Binary(b"{}".to_vec()),
        ])
        .unwrap();
        assert_eq!(hit.page.as_deref(), Some(&b"{}"[..]));
        assert_eq!(hit.feed_version, 5);
        let miss = parse_answer(vec![
            RedisResult::Int64(1),
            RedisResult::Int64(1),
            RedisResult::Int64(2),
            RedisResult::Int64(0),
            RedisResult::Nil,
        ])
        .unwrap();
        assert!(miss.revoked);
        assert_eq!(miss.page, None);
        assert!(parse_answer(vec![RedisResult::Nil]).is_err());
    }
}
