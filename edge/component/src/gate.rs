//! The one Redis round trip before a request is answered or forwarded: rate-limit counters,
//! the revocation flag, the token's verified mark, the feed version and the cached page, in one
//! Lua script; and the second one, once per token, that marks a token just verified.
//!
//! Spin's Redis interface sends one command per call, so batching happens server-side in a script
//! ([`GATE_SCRIPT`], defined in heart-shared) run with `EVALSHA`, falling back to `EVAL` once when
//! Redis has not seen the script yet.

use heart_shared::edge::{FeedPageKey, GATE_SCRIPT_SHA1, VERIFIED_SCRIPT, VERIFIED_SCRIPT_SHA1};
use heart_shared::rate_limit::RateLimitRule;
use spin_sdk::redis::{Connection, RedisParameter, RedisResult};

use crate::config::EdgeConfig;

pub use heart_shared::edge::GATE_SCRIPT;

/// What the gate should look at for one request.
#[derive(Debug, Clone)]
pub struct GateQuery {
    /// The client address (rate-limit subject).
    pub client_ip: String,
    /// The caller, on authenticated routes: as its token claims (checked or not).
    pub caller: Option<Caller>,
    /// The page key, on cacheable feed reads.
    pub page: Option<FeedPageKey>,
}

/// Who a token says it is, and the key of its verified mark.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The session (`sid`).
    pub session_id: String,
    /// The member (`sub`).
    pub member_id: i64,
    /// [`heart_shared::cache_keys::KeySpace::verified_token`] of the token.
    pub mark: String,
}

/// What the gate found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateAnswer {
    /// This request's number in its IP window.
    pub ip_count: i64,
    /// Whether the session is revoked.
    pub revoked: bool,
    /// This request's number in its member window (0 when unauthenticated or not counted: the
    /// token was not marked as verified).
    pub member_count: i64,
    /// The feed version read (0 when not a feed read).
    pub feed_version: i64,
    /// The cached page body, on a hit.
    pub page: Option<Vec<u8>>,
    /// Whether the token's exact bytes were verified before (its mark exists).
    pub marked: bool,
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
    if let Some(caller) = &query.caller {
        key_args.push(keys.revoked_session(&caller.session_id));
        key_args.push(member_counter(config, caller.member_id, now));
        key_args.push(caller.mark.clone());
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

fn member_counter(config: &EdgeConfig, member_id: i64, now: i64) -> String {
    config.keys.rate_limit(
        RateLimitRule::EdgeRequestsPerMember,
        &member_id.to_string(),
        config.per_member.window_index(now),
    )
}

/// Runs the gate: one round trip (two the first time Redis sees the script). Every request but
/// `/healthz` runs it, refused tokens included (counted against their address).
pub fn run(
    connection: &Connection,
    config: &EdgeConfig,
    query: &GateQuery,
    now: i64,
) -> Result<GateAnswer, CacheUnavailable> {
    let results = eval(
        connection,
        (GATE_SCRIPT, GATE_SCRIPT_SHA1),
        script_arguments(config, query, now),
    )?;
    parse_answer(results)
}

/// Marks `caller`'s token as verified for `ttl_secs` and counts the member: the second round
/// trip, once per token. Answers the member's count in its window.
pub fn mark_verified(
    connection: &Connection,
    config: &EdgeConfig,
    caller: &Caller,
    ttl_secs: i64,
    now: i64,
) -> Result<i64, CacheUnavailable> {
    let arguments = vec![
        RedisParameter::Int64(2),
        RedisParameter::Binary(caller.mark.clone().into_bytes()),
        RedisParameter::Binary(member_counter(config, caller.member_id, now).into_bytes()),
        RedisParameter::Int64(ttl_secs.max(1)),
        RedisParameter::Int64(i64::from(config.per_member.window_secs)),
    ];
    match eval(
        connection,
        (VERIFIED_SCRIPT, VERIFIED_SCRIPT_SHA1),
        arguments,
    )?
    .first()
    {
        Some(RedisResult::Int64(n)) => Ok(*n),
        other => Err(CacheUnavailable(format!(
            "unexpected script answer {other:?}"
        ))),
    }
}

/// `EVALSHA` of `script` (its text and its SHA-1, written out in heart-shared), falling back to
/// `EVAL` when Redis does not know it yet: the same call with the script's text in the SHA's
/// place (the arguments are not copied for the fallback that almost never comes).
fn eval(
    connection: &Connection,
    (script, sha): (&str, &str),
    arguments: Vec<RedisParameter>,
) -> Result<Vec<RedisResult>, CacheUnavailable> {
    let mut call = Vec::with_capacity(arguments.len() + 1);
    call.push(RedisParameter::Binary(sha.as_bytes().to_vec()));
    call.extend(arguments);
    match connection.execute("EVALSHA", &call) {
        Ok(results) => Ok(results),
        // Redis answers `NOSCRIPT`; hosts built on redis-rs (Spin's too) spell it `NoScriptError`.
        Err(e) if is_no_script(&format!("{e:?}")) => {
            call[0] = RedisParameter::Binary(script.as_bytes().to_vec());
            connection.execute("EVAL", &call).map_err(unavailable)
        }
        Err(e) => Err(unavailable(e)),
    }
}

fn is_no_script(error: &str) -> bool {
    let error = error.to_ascii_lowercase();
    error.contains("noscript") || error.contains("no matching script")
}

/// Reads the script's six answers.
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
        marked: int(results.get(5)).unwrap_or(0) == 1,
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
            caller: Some(Caller {
                session_id: "sid".into(),
                member_id: 7,
                mark: config.keys.verified_token("tok"),
            }),
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
        assert_eq!(k[3], config.keys.verified_token("tok"));
        assert_eq!(k[4], "t:feed:version");
        assert_eq!(args.len(), 1 + 5 + 6);
        assert!(
            matches!(args[10], RedisParameter::Int64(n) if n == i64::from(config.per_ip.limit))
        );
    }

    #[test]
    fn the_written_out_script_hashes_are_the_scripts() {
        let sha1 = |s: &str| sha1_smol::Sha1::from(s).digest().to_string();
        assert_eq!(sha1(GATE_SCRIPT), GATE_SCRIPT_SHA1);
        assert_eq!(sha1(VERIFIED_SCRIPT), VERIFIED_SCRIPT_SHA1);
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
            RedisResult::Int64(1),
        ])
        .unwrap();
        assert_eq!(hit.page.as_deref(), Some(&b"{}"[..]));
        assert!(hit.marked);
        assert_eq!(hit.feed_version, 5);
        let miss = parse_answer(vec![
            RedisResult::Int64(1),
            RedisResult::Int64(1),
            RedisResult::Int64(2),
            RedisResult::Int64(0),
            RedisResult::Nil,
            RedisResult::Int64(0),
        ])
        .unwrap();
        assert!(miss.revoked);
        assert!(!miss.marked);
        assert_eq!(miss.page, None);
        assert!(parse_answer(vec![RedisResult::Nil]).is_err());
    }
}
