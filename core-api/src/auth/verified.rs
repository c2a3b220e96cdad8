//! Access tokens already verified, remembered for their remaining lifetime.
//!
//! Checking an Ed25519 signature costs about a tenth of the CPU of a feed page (the profile in
//! BENCHMARKS.md), and the app sends the same access token with every request for its whole
//! lifetime. A token whose signature and claims were checked once is remembered under the SHA-256
//! of its text, with its member, session and expiry: a later request with the same token costs a
//! hash and a lookup. Only what [`TokenVerifier::verify`] accepted is remembered, and only until
//! its `exp`; refused tokens are checked (and counted by the rate limits) every time. Revocation is
//! not remembered here: the caller checks the session on every request.
//!
//! The cache is bounded ([`CAPACITY`] entries, evicted by `quick_cache`'s CLOCK-Pro policy when
//! full), so a flood of distinct valid tokens costs at most a few megabytes.

use heart_shared::token::{TokenError, TokenVerifier};
use sha2::{Digest, Sha256};

/// Tokens remembered at most: about 100 bytes each, so a few megabytes when full — more than the
/// members active within one access-token lifetime on one replica.
pub const CAPACITY: usize = 65_536;

/// What a verified token proved.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Verified {
    member_id: i64,
    session_id: Box<str>,
    expires_at: i64,
}

/// Verified access tokens by the SHA-256 of their text.
pub struct VerifiedTokens {
    tokens: quick_cache::sync::Cache<[u8; 32], Verified>,
}

impl std::fmt::Debug for VerifiedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedTokens")
            .field("len", &self.tokens.len())
            .finish()
    }
}

impl VerifiedTokens {
    /// An empty cache of at most `capacity` tokens.
    pub fn new(capacity: usize) -> VerifiedTokens {
        VerifiedTokens {
            tokens: quick_cache::sync::Cache::new(capacity.max(1)),
        }
    }

    /// The member and session `token` proves at `now`: from the cache while it has not expired,
    /// else verified by `verifier` (and remembered when valid).
    pub fn verify(
        &self,
        verifier: &TokenVerifier,
        token: &str,
        now: i64,
    ) -> Result<(i64, String), TokenError> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(known) = self.tokens.get(&key) {
            if known.expires_at > now {
                metrics::counter!("heart_access_tokens_verified_total", "cached" => "true")
                    .increment(1);
                return Ok((known.member_id, known.session_id.into()));
            }
            self.tokens.remove(&key);
            return Err(TokenError::Expired);
        }
        let claims = verifier.verify(token, now)?;
        let member_id = claims.member_id().ok_or(TokenError::BadClaims)?;
        metrics::counter!("heart_access_tokens_verified_total", "cached" => "false").increment(1);
        self.tokens.insert(
            key,
            Verified {
                member_id,
                session_id: claims.sid.as_str().into(),
                expires_at: claims.exp,
            },
        );
        Ok((member_id, claims.sid))
    }

    /// How many tokens are remembered.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.tokens.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::tokens::TokenIssuer;
    use crate::config::Config;

    fn issuer() -> TokenIssuer {
        let config = Config::from_vars(&Default::default()).expect("default configuration");
        TokenIssuer::from_config(&config.tokens).expect("development key")
    }

    #[test]
    fn a_verified_token_is_remembered_until_it_expires() {
        let issuer = issuer();
        let cache = VerifiedTokens::new(8);
        let token = issuer.issue_access_token(7, "session-a", 1_000).unwrap();
        let expires = 1_000 + issuer.access_ttl_secs();
        assert_eq!(
            cache.verify(issuer.verifier(), &token, 1_001),
            Ok((7, "session-a".to_owned()))
        );
        assert_eq!(cache.len(), 1);
        // Remembered: answered the same by the cache (a verifier of another key would refuse).
        let other_key = heart_shared::token::ed25519_jwk(&[7u8; 32]);
        let other = TokenVerifier::from_jwks(&heart_shared::token::Jwks {
            keys: vec![other_key],
        })
        .unwrap();
        assert!(other.verify(&token, 1_001).is_err());
        assert_eq!(
            cache.verify(&other, &token, expires - 1),
            Ok((7, "session-a".to_owned()))
        );
        // At its expiry it is refused and forgotten.
        assert_eq!(
            cache.verify(issuer.verifier(), &token, expires),
            Err(TokenError::Expired)
        );
        assert!(cache.is_empty());
    }

    #[test]
    fn refused_tokens_are_not_remembered_and_the_cache_is_bounded() {
        let issuer = issuer();
        let cache = VerifiedTokens::new(4);
        let token = issuer.issue_access_token(7, "session-a", 1_000).unwrap();
        // One character of the signature changed.
        let at = token.len() - 10;
        let swapped = if &token[at..=at] == "A" { "B" } else { "A" };
        let forged = format!("{}{swapped}{}", &token[..at], &token[at + 1..]);
        assert!(cache.verify(issuer.verifier(), &forged, 1_001).is_err());
        assert!(cache
            .verify(issuer.verifier(), "not a token", 1_001)
            .is_err());
        assert!(cache.is_empty());
        for n in 0..100 {
            let token = issuer
                .issue_access_token(n, &format!("session-{n}"), 1_000)
                .unwrap();
            assert!(cache.verify(issuer.verifier(), &token, 1_001).is_ok());
        }
        assert!(cache.len() <= 4, "{} tokens remembered", cache.len());
    }
}
