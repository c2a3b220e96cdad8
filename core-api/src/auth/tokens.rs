//! Issuing access tokens (Ed25519-signed JWTs) and making opaque random secrets.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::pkcs8::DecodePrivateKey;
use ed25519_dalek::SigningKey;
use heart_shared::token::{ed25519_jwk, key_id, AccessClaims, Jwks, TokenError, TokenVerifier};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::RngCore;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use super::verified::{self, VerifiedTokens};
use crate::config::{ConfigError, TokenConfig};
use crate::error::ApiError;

/// `n` random bytes from the OS CSPRNG, base64url without padding.
pub fn random_urlsafe(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// 16 random bytes as 32 hex characters: session ids.
pub fn random_hex_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// SHA-256 of `secret` as hex: how refresh tokens and codes are stored.
pub fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether `code` hashes to `code_hash` (a stored [`sha256_hex`]), compared in constant time.
pub fn code_matches(code: &str, code_hash: &str) -> bool {
    use subtle::ConstantTimeEq as _;
    sha256_hex(code)
        .as_bytes()
        .ct_eq(code_hash.as_bytes())
        .into()
}

/// Signs access tokens and publishes the keys that verify them.
pub struct TokenIssuer {
    encoding_key: EncodingKey,
    kid: String,
    jwks: Jwks,
    verifier: TokenVerifier,
    verified: VerifiedTokens,
    access_ttl_secs: i64,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("kid", &self.kid)
            .field("access_ttl_secs", &self.access_ttl_secs)
            .finish()
    }
}

impl TokenIssuer {
    /// Loads the signing key (PKCS#8 PEM) and the previous public keys.
    pub fn from_config(config: &TokenConfig) -> Result<TokenIssuer, ConfigError> {
        let pem = config.signing_key_pem.expose_secret();
        let signing = SigningKey::from_pkcs8_pem(pem).map_err(|e| {
            ConfigError(format!(
                "HEART_JWT_SIGNING_KEY is not an Ed25519 PKCS#8 PEM key: {e}"
            ))
        })?;
        let encoding_key = EncodingKey::from_ed_pem(pem.as_bytes())
            .map_err(|e| ConfigError(format!("HEART_JWT_SIGNING_KEY: {e}")))?;
        let current = ed25519_jwk(signing.verifying_key().as_bytes());
        let kid = key_id(&current).to_owned();
        let mut jwks = Jwks {
            keys: vec![current],
        };
        if let Some(previous) = &config.previous_keys_jwks {
            let previous: Jwks = serde_json::from_str(previous).map_err(|e| {
                ConfigError(format!(
                    "HEART_JWT_PREVIOUS_KEYS is not a JWKS document: {e}"
                ))
            })?;
            jwks.keys
                .extend(previous.keys.into_iter().filter(|k| key_id(k) != kid));
        }
        let verifier =
            TokenVerifier::from_jwks(&jwks).map_err(|e| ConfigError(format!("JWT keys: {e}")))?;
        Ok(TokenIssuer {
            encoding_key,
            kid,
            jwks,
            verifier,
            verified: VerifiedTokens::new(verified::CAPACITY),
            access_ttl_secs: config.access_ttl_secs,
        })
    }

    /// A new access token for `member_id` in session `sid`, valid from `now` for the configured lifetime.
    pub fn issue_access_token(
        &self,
        member_id: i64,
        sid: &str,
        now: i64,
    ) -> Result<String, ApiError> {
        let claims = AccessClaims {
            sub: member_id.to_string(),
            sid: sid.to_owned(),
            jti: random_urlsafe(16),
            iat: now,
            exp: now + self.access_ttl_secs,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding_key).map_err(ApiError::internal)
    }

    /// The verifier for every accepted key.
    pub fn verifier(&self) -> &TokenVerifier {
        &self.verifier
    }

    /// The member and session an access token proves at `now`, remembering verified tokens for
    /// their remaining lifetime (`verified.rs`). Revocation is the caller's to check.
    pub fn verify_access_token(&self, token: &str, now: i64) -> Result<(i64, String), TokenError> {
        self.verified.verify(&self.verifier, token, now)
    }

    /// The public keys: the signing key first, then older ones still accepted.
    pub fn jwks(&self) -> &Jwks {
        &self.jwks
    }

    /// The id of the signing key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// How long an access token lives, in seconds.
    pub fn access_ttl_secs(&self) -> i64 {
        self.access_ttl_secs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEV_SIGNING_KEY_PEM;
    use secrecy::SecretString;

    fn config(previous: Option<String>) -> TokenConfig {
        TokenConfig {
            signing_key_pem: SecretString::from(DEV_SIGNING_KEY_PEM.to_owned()),
            previous_keys_jwks: previous,
            access_ttl_secs: 600,
            refresh_ttl_secs: 6000,
        }
    }

    #[test]
    fn issued_tokens_verify_with_the_published_keys() {
        let issuer = TokenIssuer::from_config(&config(None)).unwrap();
        let token = issuer.issue_access_token(7, "sid1", 1_000).unwrap();
        let claims = TokenVerifier::from_jwks(issuer.jwks())
            .unwrap()
            .verify(&token, 1_100)
            .unwrap();
        assert_eq!(claims.member_id(), Some(7));
        assert_eq!(claims.sid, "sid1");
        assert_eq!(claims.exp, 1_600);
        assert!(!claims.jti.is_empty());
    }

    #[test]
    fn previous_keys_are_published_after_the_signing_key() {
        let other = ed25519_jwk(&[9u8; 32]);
        let previous = serde_json::to_string(&Jwks {
            keys: vec![other.clone()],
        })
        .unwrap();
        let issuer = TokenIssuer::from_config(&config(Some(previous))).unwrap();
        assert_eq!(issuer.jwks().keys.len(), 2);
        assert_eq!(key_id(&issuer.jwks().keys[0]), issuer.kid());
        assert_eq!(issuer.jwks().keys[1], other);
    }

    #[test]
    fn a_non_key_is_refused_with_the_variable_name() {
        let mut c = config(None);
        c.signing_key_pem = SecretString::from("nope".to_owned());
        assert!(TokenIssuer::from_config(&c)
            .unwrap_err()
            .to_string()
            .contains("HEART_JWT_SIGNING_KEY"));
    }

    #[test]
    fn random_secrets_are_long_and_distinct() {
        assert_eq!(random_urlsafe(32).len(), 43);
        assert_ne!(random_urlsafe(32), random_urlsafe(32));
        assert_eq!(random_hex_id().len(), 32);
        assert_eq!(sha256_hex("abc").len(), 64);
    }
}
