//! Access tokens: their claims, the public keys that verify them, and the verification itself.
//!
//! The core signs access tokens with an Ed25519 key (`alg: EdDSA`) and names the key in the
//! header (`kid`), so keys can rotate: verifiers accept every key of the current key set (JWKS).
//! The edge verifies here, in wasm, without calling the core; the core verifies with the same code.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The member id, as a decimal string (JWT `sub` is a string).
    pub sub: String,
    /// The session (one per login) the token belongs to; logout revokes it.
    pub sid: String,
    /// A unique id of this token.
    pub jti: String,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// Expires at, seconds since the Unix epoch.
    pub exp: i64,
}

impl AccessClaims {
    /// The member id carried in `sub`, if it is a number.
    pub fn member_id(&self) -> Option<i64> {
        self.sub.parse().ok()
    }
}

/// One public key in JWK form; ours are RFC 8037 Ed25519 keys (`kty` `OKP`, `crv` `Ed25519`).
pub use jsonwebtoken::jwk::Jwk;
/// A JWK set, as served at `/.well-known/jwks.json` and given to the edge: the signing key first,
/// then older keys still accepted.
pub use jsonwebtoken::jwk::JwkSet as Jwks;

/// The JWK of an Ed25519 public key (`use` `sig`, `alg` `EdDSA`); its `kid` is the RFC 7638
/// thumbprint of the key, so no key id is configured by hand.
pub fn ed25519_jwk(public_key: &[u8; 32]) -> Jwk {
    use jsonwebtoken::jwk::{
        AlgorithmParameters, CommonParameters, EllipticCurve, KeyAlgorithm, OctetKeyPairParameters,
        OctetKeyPairType, PublicKeyUse, ThumbprintHash,
    };
    let mut jwk = Jwk {
        common: CommonParameters {
            public_key_use: Some(PublicKeyUse::Signature),
            key_algorithm: Some(KeyAlgorithm::EdDSA),
            ..CommonParameters::default()
        },
        algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
            key_type: OctetKeyPairType::OctetKeyPair,
            curve: EllipticCurve::Ed25519,
            x: URL_SAFE_NO_PAD.encode(public_key),
        }),
    };
    jwk.common.key_id = jwk.thumbprint(ThumbprintHash::SHA256).ok();
    jwk
}

/// The key id of `jwk` (`""` when it has none).
pub fn key_id(jwk: &Jwk) -> &str {
    jwk.common.key_id.as_deref().unwrap_or_default()
}

/// Why a key set could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySetError(pub String);

impl std::fmt::Display for KeySetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid key set: {}", self.0)
    }
}

impl std::error::Error for KeySetError {}

/// What a verifier reads of a token's header (RFC 7515): the algorithm and the key id.
#[derive(Deserialize)]
struct HeaderFields<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(default, borrow)]
    kid: Option<Cow<'a, str>>,
}

/// What a verifier reads of a JWKS document: `{"keys": [...]}`, other members ignored.
#[derive(Deserialize)]
struct KeySetFields<'a> {
    #[serde(borrow)]
    keys: Vec<KeyFields<'a>>,
}

/// What a verifier reads of one JWK (RFC 7517, RFC 8037): its id, type, curve and public key;
/// other members (`use`, `alg`, …) are ignored.
#[derive(Deserialize)]
struct KeyFields<'a> {
    #[serde(default, borrow)]
    kid: Option<Cow<'a, str>>,
    #[serde(borrow)]
    kty: Cow<'a, str>,
    #[serde(default, borrow)]
    crv: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    x: Option<Cow<'a, str>>,
}

/// Why an access token was refused. Each maps to one contract code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// No `Authorization: Bearer` header, or not a JWT at all.
    Malformed,
    /// The header names a key we do not have (or none).
    UnknownKey,
    /// The signature does not verify, or the algorithm is not EdDSA.
    BadSignature,
    /// The claims are missing or malformed.
    BadClaims,
    /// Valid, but `exp` has passed.
    Expired,
}

impl TokenError {
    /// The contract code the app expects: `GLOBAL_104` for expiry (it reissues), else `GLOBAL_103`.
    pub fn error_code(self) -> crate::ErrorCode {
        match self {
            TokenError::Expired => crate::ErrorCode::ExpiredAccessToken,
            _ => crate::ErrorCode::InvalidAccessToken,
        }
    }
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TokenError::Malformed => "malformed access token",
            TokenError::UnknownKey => "access token signed with an unknown key",
            TokenError::BadSignature => "bad access token signature",
            TokenError::BadClaims => "malformed access token claims",
            TokenError::Expired => "expired access token",
        })
    }
}

impl std::error::Error for TokenError {}

/// Verifies access tokens against a set of public keys.
pub struct TokenVerifier {
    keys: Vec<(String, DecodingKey)>,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|(kid, _)| kid.as_str()).collect();
        f.debug_struct("TokenVerifier")
            .field("kids", &kids)
            .finish()
    }
}

impl TokenVerifier {
    /// A verifier accepting every Ed25519 key of `jwks`.
    pub fn from_jwks(jwks: &Jwks) -> Result<TokenVerifier, KeySetError> {
        TokenVerifier::from_keys(jwks.keys.iter().map(|jwk| {
            let x = match &jwk.algorithm {
                jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(okp)
                    if okp.curve == jsonwebtoken::jwk::EllipticCurve::Ed25519 =>
                {
                    Some(okp.x.as_str())
                }
                _ => None,
            };
            (key_id(jwk), x)
        }))
    }

    /// A verifier from a JWKS JSON document. Only the fields a verifier needs are read
    /// ([`KeyFields`]): the edge parses its key set on every request (a Spin instance lives for
    /// one), and reading it as jsonwebtoken's [`Jwk`] cost about a fifth of the edge
    /// component's own work on a cached page (`BENCHMARKS.md`).
    pub fn from_jwks_json(json: &str) -> Result<TokenVerifier, KeySetError> {
        let set: KeySetFields<'_> =
            serde_json::from_str(json).map_err(|e| KeySetError(e.to_string()))?;
        TokenVerifier::from_keys(set.keys.iter().map(|key| {
            let ed25519 = key.kty == "OKP" && key.crv.as_deref() == Some("Ed25519");
            (
                key.kid.as_deref().unwrap_or_default(),
                key.x.as_deref().filter(|_| ed25519),
            )
        }))
    }

    /// A verifier from `(kid, x)` pairs: `x` is the base64url public key of an Ed25519 key,
    /// `None` for a key of another type (refused).
    fn from_keys<'a>(
        keys: impl ExactSizeIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> Result<TokenVerifier, KeySetError> {
        if keys.len() == 0 {
            return Err(KeySetError("no keys".into()));
        }
        let mut verifier_keys = Vec::with_capacity(keys.len());
        for (kid, x) in keys {
            let x = x.ok_or_else(|| KeySetError(format!("key {kid} is not an Ed25519 key")))?;
            let raw = URL_SAFE_NO_PAD
                .decode(x)
                .map_err(|_| KeySetError(format!("key {kid} has a malformed x")))?;
            if raw.len() != 32 {
                return Err(KeySetError(format!("key {kid} is not 32 bytes")));
            }
            let key = DecodingKey::from_ed_components(x)
                .map_err(|e| KeySetError(format!("key {kid}: {e}")))?;
            verifier_keys.push((kid.to_owned(), key));
        }
        Ok(TokenVerifier {
            keys: verifier_keys,
        })
    }

    /// The key ids this verifier accepts.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|(kid, _)| kid.as_str())
    }

    /// Verifies `token` at `now` (seconds since the epoch): signature, key id, algorithm, claims, expiry.
    pub fn verify(&self, token: &str, now: i64) -> Result<AccessClaims, TokenError> {
        let key = self.key_of(token)?;
        let data =
            jsonwebtoken::decode::<AccessClaims>(token, key, &validation()).map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                match e.kind() {
                    ErrorKind::InvalidSignature
                    | ErrorKind::InvalidAlgorithm
                    | ErrorKind::InvalidEddsaKey => TokenError::BadSignature,
                    ErrorKind::Json(_)
                    | ErrorKind::MissingRequiredClaim(_)
                    | ErrorKind::InvalidClaimFormat(_) => TokenError::BadClaims,
                    _ => TokenError::Malformed,
                }
            })?;
        accept(data.claims, now)
    }

    /// The key `token`'s header names, if the header is EdDSA and names one of ours. The header
    /// is found as `jsonwebtoken::decode_header` finds it (before the last two dots), and only
    /// its `alg` and `kid` are read ([`HeaderFields`]: the edge reads every token's header, and
    /// jsonwebtoken's whole `Header` cost about 1 % of its CPU on a cached page). `verify` then
    /// has jsonwebtoken read it again, whole, before it checks the signature.
    fn key_of(&self, token: &str) -> Result<&DecodingKey, TokenError> {
        let header = token
            .rsplit_once('.')
            .and_then(|(message, _signature)| message.rsplit_once('.'))
            .map(|(header, _payload)| header)
            .ok_or(TokenError::Malformed)?;
        let json = URL_SAFE_NO_PAD
            .decode(header)
            .map_err(|_| TokenError::Malformed)?;
        let header: HeaderFields<'_> =
            serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
        let alg: Algorithm = header.alg.parse().map_err(|_| TokenError::Malformed)?;
        if alg != Algorithm::EdDSA {
            return Err(TokenError::BadSignature);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        self.keys
            .iter()
            .find(|(k, _)| *k == kid)
            .map(|(_, key)| key)
            .ok_or(TokenError::UnknownKey)
    }
}

/// The claims' own checks, after the signature's: a member and a session, not expired at `now`.
fn accept(claims: AccessClaims, now: i64) -> Result<AccessClaims, TokenError> {
    if claims.member_id().is_none() || claims.sid.is_empty() {
        return Err(TokenError::BadClaims);
    }
    if claims.exp <= now {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

/// How `verify` has jsonwebtoken check a token: EdDSA, `exp` and `sub` present. Expiry itself is
/// checked by `accept` against the caller's clock, so both sides use one rule. Made per check,
/// not per verifier: the edge builds a verifier on every request but checks a signature once per
/// token, and a `Validation` is three hash sets.
fn validation() -> Validation {
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.validate_exp = false;
    validation.set_required_spec_claims(&["exp", "sub"]);
    validation
}

/// What a token says of itself, read **without** checking its signature: only to be trusted for a
/// token whose exact bytes a verifier checked before (the edge's verified-token mark, see
/// `heart_shared::cache_keys::KeySpace::verified_token`). `None` for anything [`TokenVerifier::verify`]
/// would not accept apart from the signature: not three parts, not EdDSA, no key id of `verifier`,
/// claims missing or malformed, expired at `now`. Such tokens go to the full check, which gives
/// the refusal its exact reason.
pub fn read_unverified(verifier: &TokenVerifier, token: &str, now: i64) -> Option<AccessClaims> {
    verifier.key_of(token).ok()?;
    let mut parts = token.split('.');
    let (_header, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || signature.is_empty() {
        return None;
    }
    let claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    accept(claims, now).ok()
}

/// The token of an `Authorization: Bearer <token>` header value (scheme case-insensitive).
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    use ed25519_dalek::SigningKey;
    use jsonwebtoken::{EncodingKey, Header};

    struct Signer {
        key: EncodingKey,
        jwk: Jwk,
    }

    fn signer() -> Signer {
        let signing = SigningKey::generate(&mut rand::rngs::OsRng);
        let der = signing.to_pkcs8_der().unwrap();
        Signer {
            key: EncodingKey::from_ed_der(der.as_bytes()),
            jwk: ed25519_jwk(signing.verifying_key().as_bytes()),
        }
    }

    fn claims(exp: i64) -> AccessClaims {
        AccessClaims {
            sub: "42".into(),
            sid: "s1".into(),
            jti: "j1".into(),
            iat: 1_000,
            exp,
        }
    }

    /// A verifier accepting the public keys of `signers`.
    fn verifier_of(signers: &[&Signer]) -> TokenVerifier {
        let keys = signers.iter().map(|s| s.jwk.clone()).collect();
        TokenVerifier::from_jwks(&Jwks { keys }).unwrap()
    }

    fn sign(signer: &Signer, kid: Option<&str>, claims: &AccessClaims) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &signer.key).unwrap()
    }

    #[test]
    fn accepts_a_token_signed_by_a_known_key() {
        let s = signer();
        let v = verifier_of(&[&s]);
        let got = v
            .verify(&sign(&s, Some(key_id(&s.jwk)), &claims(2_000)), 1_500)
            .unwrap();
        assert_eq!(got.member_id(), Some(42));
        assert_eq!(got.sid, "s1");
    }

    #[test]
    fn accepts_every_key_of_the_set_for_rotation() {
        let (old, new) = (signer(), signer());
        let v = verifier_of(&[&new, &old]);
        assert!(v
            .verify(&sign(&old, Some(key_id(&old.jwk)), &claims(2_000)), 1_500)
            .is_ok());
        assert!(v
            .verify(&sign(&new, Some(key_id(&new.jwk)), &claims(2_000)), 1_500)
            .is_ok());
    }

    #[test]
    fn expired_token_is_expired_not_invalid() {
        let s = signer();
        let v = verifier_of(&[&s]);
        let err = v
            .verify(&sign(&s, Some(key_id(&s.jwk)), &claims(2_000)), 2_000)
            .unwrap_err();
        assert_eq!(err, TokenError::Expired);
        assert_eq!(err.error_code().as_str(), "GLOBAL_104");
    }

    #[test]
    fn token_of_another_key_under_a_known_kid_has_a_bad_signature() {
        let (ours, theirs) = (signer(), signer());
        let v = verifier_of(&[&ours]);
        let err = v
            .verify(
                &sign(&theirs, Some(key_id(&ours.jwk)), &claims(2_000)),
                1_500,
            )
            .unwrap_err();
        assert_eq!(err, TokenError::BadSignature);
        assert_eq!(err.error_code().as_str(), "GLOBAL_103");
    }

    #[test]
    fn unknown_or_missing_kid_is_refused() {
        let s = signer();
        let v = verifier_of(&[&s]);
        assert_eq!(
            v.verify(&sign(&s, Some("nope"), &claims(2_000)), 1_500),
            Err(TokenError::UnknownKey)
        );
        assert_eq!(
            v.verify(&sign(&s, None, &claims(2_000)), 1_500),
            Err(TokenError::UnknownKey)
        );
    }

    #[test]
    fn expired_token_with_a_bad_signature_is_invalid_not_expired() {
        let (ours, theirs) = (signer(), signer());
        let v = verifier_of(&[&ours]);
        let err = v
            .verify(
                &sign(&theirs, Some(key_id(&ours.jwk)), &claims(1_000)),
                5_000,
            )
            .unwrap_err();
        assert_eq!(err, TokenError::BadSignature);
    }

    #[test]
    fn garbage_and_hmac_tokens_are_refused() {
        let s = signer();
        let v = verifier_of(&[&s]);
        assert_eq!(v.verify("not.a.jwt", 1), Err(TokenError::Malformed));
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key_id(&s.jwk).to_owned());
        let hmac = jsonwebtoken::encode(
            &header,
            &claims(2_000),
            &EncodingKey::from_secret(key_id(&s.jwk).as_bytes()),
        )
        .unwrap();
        assert_eq!(v.verify(&hmac, 1_500), Err(TokenError::BadSignature));
    }

    #[test]
    fn kid_is_the_rfc7638_thumbprint() {
        // RFC 8037, appendix A.3: the thumbprint of the example key.
        let x = URL_SAFE_NO_PAD
            .decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
            .unwrap();
        let jwk = ed25519_jwk(&x.try_into().unwrap());
        assert_eq!(key_id(&jwk), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }

    #[test]
    fn jwks_round_trips_through_json() {
        let s = signer();
        let json = serde_json::to_string(&Jwks {
            keys: vec![s.jwk.clone()],
        })
        .unwrap();
        assert!(json.contains(r#""use":"sig""#));
        let v = TokenVerifier::from_jwks_json(&json).unwrap();
        assert_eq!(v.kids().collect::<Vec<_>>(), vec![key_id(&s.jwk)]);
        assert!(TokenVerifier::from_jwks_json(r#"{"keys":[]}"#).is_err());
    }

    #[test]
    fn the_lean_jwks_reading_refuses_and_accepts_what_jsonwebtoken_does() {
        let s = signer();
        let x = match &s.jwk.algorithm {
            jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(okp) => okp.x.clone(),
            _ => unreachable!(),
        };
        let kid = key_id(&s.jwk);
        let lean = |json: &str| {
            TokenVerifier::from_jwks_json(json)
                .map(|v| v.kids().map(str::to_owned).collect::<Vec<_>>())
        };
        let full = |json: &str| {
            serde_json::from_str::<Jwks>(json)
                .map_err(|e| KeySetError(e.to_string()))
                .and_then(|jwks| TokenVerifier::from_jwks(&jwks))
                .map(|v| v.kids().map(str::to_owned).collect::<Vec<_>>())
        };
        let ed = |extra: &str| {
            format!(
                r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","x":"{x}","kid":"{kid}"{extra}}}]}}"#
            )
        };
        // Accepted by both, with the same key ids.
        for json in [
            ed(""),
            ed(r#","use":"sig","alg":"EdDSA""#),
            format!(r#"{{"keys":[{{"x":"{x}","crv":"Ed25519","kty":"OKP"}}]}}"#),
            format!(r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","x":"{x}","kid":"a\u002fb"}}]}}"#),
        ] {
            assert_eq!(lean(&json).unwrap(), full(&json).unwrap(), "{json}");
        }
        assert_eq!(lean(&ed("")).unwrap(), vec![kid.to_owned()]);
        // Refused by both.
        for json in [
            r#"{"keys":[]}"#.to_owned(),
            "{}".to_owned(),
            "not json".to_owned(),
            format!(r#"{{"keys":[{{"kty":"OKP","crv":"X25519","x":"{x}"}}]}}"#),
            r#"{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","kid":"r"}]}"#.to_owned(),
            r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA"}]}"#.to_owned(),
            r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"***"}]}"#.to_owned(),
            format!(r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","x":"{x}","kid":7}}]}}"#),
        ] {
            assert!(lean(&json).is_err(), "lean accepted {json}");
            assert!(full(&json).is_err(), "jsonwebtoken accepted {json}");
        }
        // A key of another type is named in the refusal.
        assert_eq!(
            lean(r#"{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","kid":"r"}]}"#),
            Err(KeySetError("key r is not an Ed25519 key".into()))
        );
    }

    #[test]
    fn the_lean_header_reading_finds_the_key_jsonwebtoken_would() {
        let s = signer();
        let v = verifier_of(&[&s]);
        let kid = key_id(&s.jwk);
        // `key_of` as it was: jsonwebtoken's whole header.
        let by_jsonwebtoken = |token: &str| -> Result<(), TokenError> {
            let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
            if header.alg != Algorithm::EdDSA {
                return Err(TokenError::BadSignature);
            }
            let k = header.kid.ok_or(TokenError::UnknownKey)?;
            (k == kid).then_some(()).ok_or(TokenError::UnknownKey)
        };
        let good = sign(&s, Some(kid), &claims(2_000));
        let (_, rest) = good.split_once('.').unwrap();
        let with_header = |json: &str| format!("{}.{rest}", URL_SAFE_NO_PAD.encode(json));
        let tokens = [
            good.clone(),
            sign(&s, None, &claims(2_000)),
            sign(&s, Some("other"), &claims(2_000)),
            with_header(&format!(r#"{{"alg":"HS256","kid":"{kid}"}}"#)),
            with_header(&format!(r#"{{"alg":"none","kid":"{kid}"}}"#)),
            with_header(&format!(r#"{{"kid":"{kid}"}}"#)),
            with_header(&format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{kid}"}}"#)),
            with_header(&format!(r#"{{"alg":"EdDSA","kid":"{kid}","alg":"EdDSA"}}"#)),
            with_header(r#"{"alg":"EdDSA","kid":7}"#),
            with_header("[]"),
            format!("x.{good}"),
            format!("{good}.x"),
            good.replacen('.', "", 1),
            "a.b".to_owned(),
            "..".to_owned(),
            String::new(),
        ];
        for token in &tokens {
            assert_eq!(
                v.key_of(token).map(|_| ()),
                by_jsonwebtoken(token),
                "{token}"
            );
        }
        assert!(v.key_of(&good).is_ok());
    }

    #[test]
    fn unverified_reading_agrees_with_verify_on_everything_but_the_signature() {
        let (ours, theirs) = (signer(), signer());
        let v = verifier_of(&[&ours]);
        let kid = key_id(&ours.jwk);
        let good = sign(&ours, Some(kid), &claims(2_000));
        assert_eq!(
            read_unverified(&v, &good, 1_500),
            Some(v.verify(&good, 1_500).unwrap())
        );
        // A forged signature reads fine: the caller must know these bytes were verified before.
        let forged = sign(&theirs, Some(kid), &claims(2_000));
        assert_eq!(read_unverified(&v, &forged, 1_500).unwrap().sub, "42");
        assert!(v.verify(&forged, 1_500).is_err());
        // Everything verify refuses for other reasons is refused here too.
        assert_eq!(read_unverified(&v, &good, 2_000), None, "expired");
        assert_eq!(
            read_unverified(&v, &sign(&ours, Some("nope"), &claims(2_000)), 1_500),
            None
        );
        assert_eq!(
            read_unverified(&v, &sign(&ours, None, &claims(2_000)), 1_500),
            None
        );
        assert_eq!(read_unverified(&v, "not.a.jwt", 1), None);
        assert_eq!(read_unverified(&v, &format!("{good}.x"), 1_500), None);
        let unsigned = good.rsplit_once('.').unwrap().0.to_owned() + ".";
        assert_eq!(read_unverified(&v, &unsigned, 1_500), None);
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(kid.to_owned());
        let hmac =
            jsonwebtoken::encode(&header, &claims(2_000), &EncodingKey::from_secret(b"k")).unwrap();
        assert_eq!(read_unverified(&v, &hmac, 1_500), None);
        let mut no_sid = claims(2_000);
        no_sid.sid.clear();
        assert_eq!(
            read_unverified(&v, &sign(&ours, Some(kid), &no_sid), 1_500),
            None
        );
    }

    #[test]
    fn bearer_header_is_parsed() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("abc"), None);
    }
}
