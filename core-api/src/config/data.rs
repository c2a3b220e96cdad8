//! The database and the cache.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use heart_shared::rate_limit::{RateLimit, RateLimitRule};
use secrecy::SecretString;

use super::vars::Vars;
use super::ConfigError;

/// The database settings.
#[derive(Debug, Clone)]
pub(super) struct DatabaseSettings {
    pub(super) url: SecretString,
    pub(super) max_connections: u32,
    pub(super) read: ReadReplicaConfig,
}

/// The optional read replica (`HEART_DATABASE_READ_*`, `HEART_READ_YOUR_WRITES_SECS`).
#[derive(Debug, Clone)]
pub struct ReadReplicaConfig {
    /// `mysql://…` of a replica of the primary; `None`: every read on the primary.
    pub url: Option<SecretString>,
    /// Past this lag (the replica's `Seconds_Behind_Master`) reads go to the primary.
    pub max_lag: Duration,
    /// A member's reads go to the primary for this long after their last write.
    pub read_your_writes: Duration,
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
        let read_url = env.get("HEART_DATABASE_READ_URL").map(str::to_owned);
        if let Some(read_url) = &read_url {
            if !(read_url.starts_with("mysql://") || read_url.starts_with("mariadb://")) {
                return Err(ConfigError(
                    "HEART_DATABASE_READ_URL must start with mysql:// (a replica of HEART_DATABASE_URL)"
                        .into(),
                ));
            }
            if url.starts_with("sqlite:") {
                return Err(ConfigError(
                    "HEART_DATABASE_READ_URL needs a MySQL/MariaDB HEART_DATABASE_URL".into(),
                ));
            }
        }
        let read = ReadReplicaConfig {
            url: read_url.map(SecretString::from),
            max_lag: Duration::from_secs(
                env.parse("HEART_DATABASE_READ_MAX_LAG_SECS")?.unwrap_or(2),
            ),
            read_your_writes: Duration::from_secs(
                env.parse("HEART_READ_YOUR_WRITES_SECS")?.unwrap_or(5),
            ),
        };
        Ok(DatabaseSettings {
            read,
            url: SecretString::from(url),
            max_connections: env
                .parse("HEART_DATABASE_MAX_CONNECTIONS")?
                .unwrap_or_else(default_pool_size),
        })
    }
}

impl ReadReplicaConfig {
    /// For `check-config`: the replica's URL without its password, and the bounds.
    pub(super) fn describe(&self) -> String {
        use secrecy::ExposeSecret;
        match &self.url {
            Some(url) => format!(
                "{} max lag {}s, read-your-writes {}s",
                super::redact_url_password(url.expose_secret()),
                self.max_lag.as_secs(),
                self.read_your_writes.as_secs()
            ),
            None => "(none: every read on the primary)".into(),
        }
    }
}

/// Two connections per CPU of this process, within 4..=32: a feed page is one statement on one
/// connection, so more connections than the database can run at once only queue inside it. On the
/// 2-core benchmark machine, with MariaDB on the same cores, a pool of 8 served the same rate as 32
/// with a lower p99 (16 vs 22 ms), and a pool of 4 the rate of 8 with a lower p99 again (12.4 vs
/// 15–31 ms, BENCHMARKS.md). A database across a network keeps more statements in flight per
/// CPU of the core: the Helm values set the pool for RDS (`values-production.yaml`), and
/// `HEART_DATABASE_MAX_CONNECTIONS` should not exceed the database's own capacity divided by the
/// number of core replicas.
pub fn default_pool_size() -> u32 {
    let cpus = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    u32::try_from(cpus.saturating_mul(2))
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

#[cfg(test)]
mod tests {
    use super::super::Config;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, String> {
        let vars: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_vars(&vars).map_err(|e| e.to_string())
    }

    #[test]
    fn a_read_replica_is_optional_and_its_bounds_have_defaults() {
        let plain = config(&[]).unwrap();
        assert!(plain.database_read.url.is_none());
        let replica = config(&[
            ("HEART_DATABASE_URL", "mysql://u:p@primary/heart"),
            ("HEART_DATABASE_READ_URL", "mysql://u:hunter2@replica/heart"),
            ("HEART_READ_YOUR_WRITES_SECS", "9"),
        ])
        .unwrap();
        assert_eq!(replica.database_read.max_lag.as_secs(), 2);
        assert_eq!(replica.database_read.read_your_writes.as_secs(), 9);
        let described = replica.describe();
        assert!(
            described.contains("mysql://u:***@replica/heart max lag 2s"),
            "{described}"
        );
        assert!(!described.contains("hunter2"));
    }

    #[test]
    fn a_read_replica_needs_a_mysql_primary() {
        let err = config(&[("HEART_DATABASE_READ_URL", "mysql://replica/heart")]).unwrap_err();
        assert!(err.contains("HEART_DATABASE_READ_URL"), "{err}");
        let err = config(&[
            ("HEART_DATABASE_URL", "mysql://primary/heart"),
            ("HEART_DATABASE_READ_URL", "sqlite://x.db"),
        ])
        .unwrap_err();
        assert!(err.contains("HEART_DATABASE_READ_URL"), "{err}");
    }
}
