//! The edge's decision for one request, once the token is checked and the gate has answered:
//! refuse, answer from the cache, or forward. Pure and native, so the order is unit-tested:
//!
//! 1. a **revoked** session → `401 GLOBAL_103`;
//! 2. the address over its **per-IP** limit → `429 GLOBAL_106` (refused tokens are counted too);
//! 3. a refused **token** → its `401`;
//! 4. the member over its **per-member** limit → `429 GLOBAL_106`;
//! 5. a cached feed page → answered from the **cache** (`304` when the client has it);
//! 6. otherwise → forwarded.
//!
//! Without a gate answer (no Redis, or Redis failed) only the token is checked: nothing is
//! limited or cached, and the core checks revocation itself.

use heart_shared::ErrorCode;

use crate::config::EdgeConfig;
use crate::gate::GateAnswer;
use crate::route::Identity;
use crate::Reply;

/// The outcome of the token check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenCheck {
    /// The route needs no token.
    NotNeeded,
    /// A valid token.
    Valid(Identity),
    /// Missing, malformed, badly signed, expired: the `401` to answer.
    Refused(Reply),
}

/// What the edge does with the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Answer this error; `outcome` names why (access log, metrics).
    Refuse {
        /// The contract error.
        reply: Reply,
        /// `revoked`, `rate_limited` or `token_refused`.
        outcome: &'static str,
    },
    /// Answer the cached page (stored as the edge answers it: see [`crate::page`]).
    Hit(Vec<u8>),
    /// Forward to the core.
    Forward,
}

/// Decides, in the order of the module documentation.
pub fn decide(
    config: &EdgeConfig,
    token: &TokenCheck,
    answer: Option<&GateAnswer>,
    now: i64,
) -> Decision {
    let refuse = |reply, outcome| Decision::Refuse { reply, outcome };
    let Some(answer) = answer else {
        return match token {
            TokenCheck::Refused(reply) => refuse(reply.clone(), "token_refused"),
            _ => Decision::Forward,
        };
    };
    let identity = match token {
        TokenCheck::Valid(identity) => Some(identity),
        _ => None,
    };
    if identity.is_some() && answer.revoked {
        return refuse(
            Reply::error(ErrorCode::InvalidAccessToken, "Revoked access token"),
            "revoked",
        );
    }
    if address_over_limit(config, answer) {
        return refuse(
            Reply::rate_limited(config.per_ip.retry_after(now)),
            "rate_limited",
        );
    }
    if let TokenCheck::Refused(reply) = token {
        return refuse(reply.clone(), "token_refused");
    }
    if identity.is_some() && !config.per_member.allows(count(answer.member_count)) {
        return refuse(
            Reply::rate_limited(config.per_member.retry_after(now)),
            "rate_limited",
        );
    }
    match &answer.page {
        Some(page) if identity.is_some() => Decision::Hit(page.clone()),
        _ => Decision::Forward,
    }
}

/// Whether the gate found the address over its per-IP limit: then the answer is `429` whatever
/// the token (step 2 comes before step 3).
pub fn address_over_limit(config: &EdgeConfig, answer: &GateAnswer) -> bool {
    !config.per_ip.allows(count(answer.ip_count))
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> EdgeConfig {
        EdgeConfig::read(|name| match name {
            "core_url" => Some("http://core".into()),
            "jwks" => Some("{}".into()),
            "edge_secret" => Some("s".into()),
            "rate_limit_edge_requests_per_ip" => Some("3/60s".into()),
            "rate_limit_edge_requests_per_member" => Some("2/60s".into()),
            _ => None,
        })
        .unwrap()
    }

    fn valid() -> TokenCheck {
        TokenCheck::Valid(Identity {
            member_id: 7,
            session_id: "s".into(),
        })
    }

    fn refused() -> TokenCheck {
        TokenCheck::Refused(Reply::error(ErrorCode::ExpiredAccessToken, "Expired"))
    }

    fn answer(ip: i64, revoked: bool, member: i64, page: Option<&[u8]>) -> GateAnswer {
        GateAnswer {
            ip_count: ip,
            revoked,
            member_count: member,
            feed_version: 1,
            page: page.map(<[u8]>::to_vec),
            marked: true,
        }
    }

    fn outcome(decision: &Decision) -> (&'static str, u16) {
        match decision {
            Decision::Refuse { reply, outcome } => (outcome, reply.status),
            Decision::Hit(_) => ("hit", 200),
            Decision::Forward => ("forward", 0),
        }
    }

    #[test]
    fn revoked_comes_before_every_limit() {
        let d = decide(
            &config(),
            &valid(),
            Some(&answer(99, true, 99, Some(b"p"))),
            0,
        );
        assert_eq!(outcome(&d), ("revoked", 401));
    }

    #[test]
    fn per_ip_comes_before_the_token_and_the_member() {
        let d = decide(&config(), &valid(), Some(&answer(4, false, 99, None)), 0);
        assert_eq!(outcome(&d), ("rate_limited", 429));
        let d = decide(&config(), &refused(), Some(&answer(4, false, 0, None)), 0);
        assert_eq!(outcome(&d), ("rate_limited", 429));
        let d = decide(&config(), &refused(), Some(&answer(3, false, 0, None)), 0);
        assert_eq!(outcome(&d), ("token_refused", 401));
    }

    #[test]
    fn per_member_comes_before_the_cache() {
        let d = decide(
            &config(),
            &valid(),
            Some(&answer(1, false, 3, Some(b"p"))),
            0,
        );
        assert_eq!(outcome(&d), ("rate_limited", 429));
        if let Decision::Refuse { reply, .. } = d {
            assert_eq!(
                crate::route::header_value(&reply.headers, "retry-after"),
                Some("60")
            );
        }
        let d = decide(
            &config(),
            &valid(),
            Some(&answer(1, false, 2, Some(b"p"))),
            0,
        );
        assert_eq!(d, Decision::Hit(b"p".to_vec()));
        let d = decide(&config(), &valid(), Some(&answer(1, false, 2, None)), 0);
        assert_eq!(d, Decision::Forward);
    }

    #[test]
    fn public_routes_are_only_limited_by_address() {
        let d = decide(
            &config(),
            &TokenCheck::NotNeeded,
            Some(&answer(3, false, 0, None)),
            0,
        );
        assert_eq!(d, Decision::Forward);
    }

    #[test]
    fn without_the_gate_only_the_token_counts() {
        assert_eq!(
            outcome(&decide(&config(), &refused(), None, 0)),
            ("token_refused", 401)
        );
        assert_eq!(decide(&config(), &valid(), None, 0), Decision::Forward);
    }
}
