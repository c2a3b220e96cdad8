//! The database and the cache.

use std::collections::HashMap;
use std::path::Path;

use heart_shared::rate_limit::{RateLimit, RateLimitRule};
use secrecy::SecretString;

use super::vars::Vars;
use super::ConfigError;

/// The database settings.
#[derive(Debug, Clone)]
pub(super) struct DatabaseSettings {
    pub(super) url: SecretString,
    pub(super) max_connections: u32,
}

impl DatabaseSettings {
    pub(super) fn from_vars(
        env: &Vars<'_>,
        data_dir: &Path,
    ) -> Result<DatabaseSettings, ConfigError> {
        let url = env
            .get("HEART_DATABASE_URL")
            .map(str::to_owned)
            .unwrap_or_else(|| {
                format!("sqlite://{}?mode=rwc", data_dir.join("heart.db").display())
            });
        if !(url.starts_with("sqlite:")
            || url.starts_with("mysql://")
            || url.starts_with("mariadb://"))
        {
            return Err(ConfigError(
                "HEART_DATABASE_URL must start with sqlite: or mysql://".into(),
            ));
        }
        Ok(DatabaseSettings {
            url: SecretString::from(url),
            max_connections: env
                .parse("HEART_DATABASE_MAX_CONNECTIONS")?
                .unwrap_or_else(default_pool_size),
        })
    }
}

/// Four connections per CPU of this process, within 4..=32: a feed page is one statement on one
/// connection, so more connections than the database can run at once only queue inside it. On the
/// 2-core benchmark machine a pool of 8 served the same rate as 32 with a lower p99 (16 vs 22 ms,
/// BENCHMARKS.md); set `HEART_DATABASE_MAX_CONNECTIONS` to the database's own capacity divided by
/// the number of core replicas when that is lower.
pub fn default_pool_size() -> u32 {
    let cpus = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    u32::try_from(cpus.saturating_mul(4))
        .unwrap_or(32)
        .clamp(4, 32)
}

/// The cache and the rate limits counted in it.
#[derive(Debug, Clone)]
pub(super) struct CacheSettings {
    pub(super) redis_url: Option<SecretString>,
    pub(super) prefix: String,
    pub(super) rate_limits_enabled: bool,
    pub(super) rate_limits: HashMap<RateLimitRule, RateLimit>,
}

impl CacheSettings {
    pub(super) fn from_vars(env: &Vars<'_>) -> Result<CacheSettings, ConfigError> {
        let mut rate_limits = HashMap::new();
        for rule in RateLimitRule::ALL {
            let name = format!("HEART_RATE_LIMIT_{}", rule.name().to_ascii_uppercase());
            let limit = match env.get(&name) {
                Some(v) => v.parse().map_err(|e| ConfigError(format!("{name}: {e}")))?,
                None => rule.default_limit(),
            };
            rate_limits.insert(rule, limit);
        }
        Ok(CacheSettings {
            redis_url: env
                .get("HEART_REDIS_URL")
                .map(|u| SecretString::from(u.to_owned())),
            prefix: env
                .get("HEART_CACHE_PREFIX")
                .unwrap_or(heart_shared::cache_keys::DEFAULT_PREFIX)
                .to_owned(),
            rate_limits_enabled: env.parse("HEART_RATE_LIMITS_ENABLED")?.unwrap_or(true),
            rate_limits,
        })
    }
}
