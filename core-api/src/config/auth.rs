//! Tokens and password hashing.

use secrecy::SecretString;

use super::vars::Vars;
use super::ConfigError;

/// The development signing key. Public in the repository, so never acceptable in production.
pub const DEV_SIGNING_KEY_PEM: &str = include_str!("../../dev/jwt-signing-key.dev.pem");

/// Token settings.
#[derive(Debug, Clone)]
pub struct TokenConfig {
    /// PKCS#8 PEM of the Ed25519 key that signs access tokens.
    pub signing_key_pem: SecretString,
    /// JWKS JSON of older public keys still accepted while tokens they signed live out.
    pub previous_keys_jwks: Option<String>,
    /// Access token lifetime in seconds.
    pub access_ttl_secs: i64,
    /// Refresh token lifetime in seconds.
    pub refresh_ttl_secs: i64,
}

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordHashing {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
    /// The most of one core each hashing thread may spend hashing, in percent (1–100): after a
    /// hash that took `t`, the thread rests `t × (100 − p) / p`.
    pub cpu_percent: u32,
}

/// OWASP's Argon2id configurations of equal strength, as (memory in KiB, passes), one lane each:
/// less memory is made up for by more passes (the Password Storage Cheat Sheet). The second is
/// [`PasswordHashing::RECOMMENDED`].
pub const OWASP_EQUIVALENTS: [(u32, u32); 5] = [
    (47_104, 1),
    (19_456, 2),
    (12_288, 3),
    (9_216, 4),
    (7_168, 5),
];

impl PasswordHashing {
    /// Whether this cost reaches one of [`OWASP_EQUIVALENTS`]: its memory and its passes both at
    /// least that configuration's. Outside profile `local` a lower cost is refused.
    pub fn meets_owasp_minimum(&self) -> bool {
        OWASP_EQUIVALENTS
            .iter()
            .any(|&(memory_kib, passes)| self.memory_kib >= memory_kib && self.iterations >= passes)
    }

    /// OWASP's recommendation for Argon2id: 19 MiB, 2 passes, 1 lane; each hashing thread at most
    /// half a core (measured: the feed's p99 during a login storm 4.6× its p99 alone uncapped,
    /// 2.1× capped, for a quarter fewer logins a second; BENCHMARKS.md).
    pub const RECOMMENDED: PasswordHashing = PasswordHashing {
        memory_kib: 19_456,
        iterations: 2,
        parallelism: 1,
        cpu_percent: 50,
    };
}

impl TokenConfig {
    pub(super) fn from_vars(env: &Vars<'_>) -> Result<TokenConfig, ConfigError> {
        let signing_key_pem = match (
            env.get("HEART_JWT_SIGNING_KEY"),
            env.get("HEART_JWT_SIGNING_KEY_FILE"),
        ) {
            (Some(pem), _) => pem.replace("\\n", "\n"),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|e| ConfigError(format!("HEART_JWT_SIGNING_KEY_FILE {path}: {e}")))?,
            (None, None) => DEV_SIGNING_KEY_PEM.to_owned(),
        };
        Ok(TokenConfig {
            signing_key_pem: SecretString::from(signing_key_pem),
            previous_keys_jwks: env.get("HEART_JWT_PREVIOUS_KEYS").map(str::to_owned),
            access_ttl_secs: env.parse("HEART_ACCESS_TOKEN_TTL_SECS")?.unwrap_or(15 * 60),
            refresh_ttl_secs: env
                .parse("HEART_REFRESH_TOKEN_TTL_SECS")?
                .unwrap_or(14 * 24 * 3600),
        })
    }
}

impl PasswordHashing {
    pub(super) fn from_vars(env: &Vars<'_>) -> Result<PasswordHashing, ConfigError> {
        Ok(PasswordHashing {
            memory_kib: env
                .parse("HEART_ARGON2_MEMORY_KIB")?
                .unwrap_or(PasswordHashing::RECOMMENDED.memory_kib),
            iterations: env
                .parse("HEART_ARGON2_ITERATIONS")?
                .unwrap_or(PasswordHashing::RECOMMENDED.iterations),
            parallelism: env
                .parse("HEART_ARGON2_PARALLELISM")?
                .unwrap_or(PasswordHashing::RECOMMENDED.parallelism),
            cpu_percent: match env.parse("HEART_PASSWORD_HASHING_CPU_PERCENT")? {
                None => PasswordHashing::RECOMMENDED.cpu_percent,
                Some(p @ 1..=100) => p,
                Some(p) => {
                    return Err(ConfigError(format!(
                        "HEART_PASSWORD_HASHING_CPU_PERCENT must be 1 to 100, not {p}"
                    )))
                }
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn the_hashing_cpu_share_is_a_percent_of_one_core() {
        let share = |value: Option<&str>| {
            let vars: HashMap<String, String> = value
                .map(|v| {
                    (
                        "HEART_PASSWORD_HASHING_CPU_PERCENT".to_owned(),
                        v.to_owned(),
                    )
                })
                .into_iter()
                .collect();
            PasswordHashing::from_vars(&Vars(&vars)).map(|cost| cost.cpu_percent)
        };
        assert_eq!(share(None).unwrap(), 50);
        assert_eq!(share(Some("100")).unwrap(), 100);
        assert_eq!(share(Some("1")).unwrap(), 1);
        for refused in ["0", "101", "half"] {
            assert!(share(Some(refused)).is_err(), "{refused} was accepted");
        }
    }
}
