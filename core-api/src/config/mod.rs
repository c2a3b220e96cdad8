//! One typed configuration, read from `HEART_*` environment variables at startup, one file per
//! concern: `server`, `data` (database and cache), `mail`, `storage`, `auth`; `vars` lists every
//! variable once, for `--help` and the README.
//!
//! Every setting has a default that runs locally with nothing installed (profile `local`):
//! SQLite under `./data`, mail to an outbox folder, in-process cache, a development signing key.
//! Profile `production` refuses to start with the development key or any embedded backend.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use heart_shared::rate_limit::{RateLimit, RateLimitRule};
use secrecy::{ExposeSecret, SecretString};

mod auth;
mod data;
mod mail;
mod server;
mod storage;
pub mod vars;

pub use self::auth::{PasswordHashing, TokenConfig, DEV_SIGNING_KEY_PEM};
pub use self::data::ReadReplicaConfig;
pub use self::mail::{MailConfig, MailTransport, SmtpConfig, SmtpTls};
pub use self::server::{ConnectionLimits, LogFormat, Profile};
pub use self::storage::{S3Config, StorageBackend, StorageConfig, UploadLimits};
use self::vars::Vars;

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The deployment profile.
    pub profile: Profile,
    /// Address of the public API.
    pub listen_addr: SocketAddr,
    /// Address of the admin endpoints (`/metrics`).
    pub admin_listen_addr: SocketAddr,
    /// Folder for the embedded backends' files.
    pub data_dir: PathBuf,
    /// `sqlite://…` (embedded) or `mysql://…`.
    pub database_url: SecretString,
    /// Connection pool size (of the replica's pool too).
    pub database_max_connections: u32,
    /// The optional read replica and its routing.
    pub database_read: ReadReplicaConfig,
    /// Redis URL; `None` keeps cache, revocations and rate limits in process.
    pub redis_url: Option<SecretString>,
    /// Prefix of every cache key.
    pub cache_prefix: String,
    pub mail: MailConfig,
    /// Object storage.
    pub storage: StorageConfig,
    /// Upload limits.
    pub uploads: UploadLimits,
    /// Images decoded at once in the process (`HEART_IMAGE_DECODES`); others wait their turn.
    pub image_decodes: usize,
    /// Seconds between retries of failed object deletions.
    pub storage_sweep_secs: u64,
    pub tokens: TokenConfig,
    /// Password hashing cost.
    pub password_hashing: PasswordHashing,
    /// Whether rate limits are enforced at all.
    pub rate_limits_enabled: bool,
    /// Limits per rule.
    pub rate_limits: HashMap<RateLimitRule, RateLimit>,
    /// The secret the edge sends with the identities it verified; without it those headers are ignored.
    pub edge_secret: Option<SecretString>,
    /// How many reverse proxies in front of us append to `X-Forwarded-For` (0: use the peer address).
    pub trusted_proxy_hops: usize,
    /// Largest JSON body accepted, in bytes.
    pub max_json_body_bytes: usize,
    /// Time limit of one request, in seconds.
    pub request_timeout_secs: u64,
    /// Time limits of request heads and JSON bodies, and the cap on open connections.
    pub connections: ConnectionLimits,
    /// Log line format.
    pub log_format: LogFormat,
}

/// A setting that could not be used; the server does not start.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_vars(&std::env::vars().collect())
    }

    /// Reads the configuration from `vars` (the environment, or a test's map).
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let env = Vars(vars);
        let server = server::ServerSettings::from_vars(&env)?;
        let database = data::DatabaseSettings::from_vars(&env, &server.data_dir)?;
        let cache = data::CacheSettings::from_vars(&env)?;
        let config = Config {
            profile: server.profile,
            listen_addr: server.listen_addr,
            admin_listen_addr: server.admin_listen_addr,
            database_url: database.url,
            database_max_connections: database.max_connections,
            database_read: database.read,
            redis_url: cache.redis_url,
            cache_prefix: cache.prefix,
            mail: MailConfig::from_vars(&env, &server.data_dir)?,
            storage: StorageConfig::from_vars(&env, &server.data_dir, server.listen_addr)?,
            storage_sweep_secs: env.parse("HEART_STORAGE_SWEEP_SECS")?.unwrap_or(60),
            uploads: UploadLimits::from_vars(&env)?,
            image_decodes: env.parse("HEART_IMAGE_DECODES")?.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
            }),
            tokens: TokenConfig::from_vars(&env)?,
            password_hashing: PasswordHashing::from_vars(&env)?,
            rate_limits_enabled: cache.rate_limits_enabled,
            rate_limits: cache.rate_limits,
            edge_secret: server.edge_secret,
            trusted_proxy_hops: server.trusted_proxy_hops,
            max_json_body_bytes: server.max_json_body_bytes,
            request_timeout_secs: server.request_timeout_secs,
            connections: server.connections,
            log_format: server.log_format,
            data_dir: server.data_dir,
        };
        config.check()?;
        Ok(config)
    }

    /// The effective settings, one `name = value` per line, secrets left out: what
    /// `heart-core check-config` prints.
    pub fn describe(&self) -> String {
        let database = redact_url_password(self.database_url.expose_secret());
        let redis = self
            .redis_url
            .as_ref()
            .map_or("(in-process)".to_owned(), |u| {
                redact_url_password(u.expose_secret())
            });
        let mail = match &self.mail.transport {
            MailTransport::Outbox { dir } => format!("outbox {}", dir.display()),
            MailTransport::Smtp(smtp) => {
                format!("smtp {}:{} tls={:?}", smtp.host, smtp.port, smtp.tls)
            }
        };
        let storage = match &self.storage.backend {
            StorageBackend::Local { dir } => format!("local {}", dir.display()),
            StorageBackend::S3(s3) => format!(
                "s3 bucket={} region={} endpoint={}",
                s3.bucket,
                s3.region,
                s3.endpoint.as_deref().unwrap_or("(AWS)")
            ),
        };
        let lines = [
            ("profile", self.profile.name().to_owned()),
            ("listen", self.listen_addr.to_string()),
            ("admin listen", self.admin_listen_addr.to_string()),
            ("data dir", self.data_dir.display().to_string()),
            ("database", database),
            ("database read replica", self.database_read.describe()),
            (
                "database max connections",
                self.database_max_connections.to_string(),
            ),
            ("cache", redis),
            ("cache prefix", self.cache_prefix.clone()),
            ("mail", mail),
            ("mail from", self.mail.from.clone()),
            ("storage", storage),
            ("media base url", self.storage.public_base_url.clone()),
            (
                "uploads",
                format!(
                    "{} files, {} bytes each, {} bytes per request",
                    self.uploads.max_files,
                    self.uploads.max_file_bytes,
                    self.uploads.max_request_bytes
                ),
            ),
            (
                "signing key",
                if self.uses_dev_signing_key() {
                    "development key".to_owned()
                } else {
                    "set".to_owned()
                },
            ),
            (
                "access token ttl secs",
                self.tokens.access_ttl_secs.to_string(),
            ),
            (
                "refresh token ttl secs",
                self.tokens.refresh_ttl_secs.to_string(),
            ),
            ("rate limits enabled", self.rate_limits_enabled.to_string()),
            (
                "edge secret",
                if self.edge_secret.is_some() {
                    "set"
                } else {
                    "none"
                }
                .to_owned(),
            ),
            ("trusted proxy hops", self.trusted_proxy_hops.to_string()),
            ("max json body bytes", self.max_json_body_bytes.to_string()),
            ("image decodes", self.image_decodes.to_string()),
            (
                "request timeout secs",
                self.request_timeout_secs.to_string(),
            ),
            (
                "header read timeout secs",
                self.connections.header_read_timeout_secs.to_string(),
            ),
            (
                "body read timeout secs",
                self.connections.body_read_timeout_secs.to_string(),
            ),
            (
                "max connections",
                self.connections.max_connections.to_string(),
            ),
        ];
        lines
            .iter()
            .map(|(name, value)| format!("{name} = {value}\n"))
            .collect()
    }

    /// Whether the database is the embedded SQLite file.
    pub fn uses_embedded_database(&self) -> bool {
        self.database_url.expose_secret().starts_with("sqlite:")
    }

    /// Whether the signing key is the public development key.
    pub fn uses_dev_signing_key(&self) -> bool {
        self.tokens.signing_key_pem.expose_secret().trim() == DEV_SIGNING_KEY_PEM.trim()
    }

    /// The embedded backends and development secrets this configuration uses, by name.
    pub fn development_settings(&self) -> Vec<&'static str> {
        let mut found = Vec::new();
        if self.uses_dev_signing_key() {
            found.push("the development JWT signing key (set HEART_JWT_SIGNING_KEY)");
        }
        if self.uses_embedded_database() {
            found.push("the embedded SQLite database (set HEART_DATABASE_URL)");
        }
        if self.redis_url.is_none() {
            found.push("the in-process cache (set HEART_REDIS_URL)");
        }
        if matches!(self.storage.backend, StorageBackend::Local { .. }) {
            found.push("local media storage (set HEART_S3_BUCKET)");
        }
        if matches!(self.mail.transport, MailTransport::Outbox { .. }) {
            found.push("the mail outbox folder (set HEART_SMTP_HOST)");
        }
        if let MailTransport::Smtp(smtp) = &self.mail.transport {
            if smtp.tls == SmtpTls::None {
                found.push("SMTP without TLS (set HEART_SMTP_TLS=starttls)");
            }
        }
        found
    }

    fn check(&self) -> Result<(), ConfigError> {
        if self.profile == Profile::Production {
            let found = self.development_settings();
            if !found.is_empty() {
                return Err(ConfigError(format!(
                    "profile production refuses {}",
                    found.join(", ")
                )));
            }
        }
        // The development key is public: a token forged with it is accepted by any core that
        // uses it. Only a local core reachable from this machine alone may.
        if self.uses_dev_signing_key()
            && (self.profile != Profile::Local || !self.listen_addr.ip().is_loopback())
        {
            return Err(ConfigError(format!(
                "the development JWT signing key is public: profile {} on {} refuses it \
                 (set HEART_JWT_SIGNING_KEY, or run profile local on a loopback address)",
                self.profile.name(),
                self.listen_addr
            )));
        }
        if self.profile == Profile::Production && self.edge_secret.is_none() {
            return Err(ConfigError(
                "profile production requires HEART_EDGE_SECRET (the edge's shared secret)".into(),
            ));
        }
        if self.image_decodes == 0 {
            return Err(ConfigError("HEART_IMAGE_DECODES must be at least 1".into()));
        }
        if self.tokens.access_ttl_secs < 10
            || self.tokens.refresh_ttl_secs < self.tokens.access_ttl_secs
        {
            return Err(ConfigError(
                "token lifetimes: access ≥ 10 s and refresh ≥ access".into(),
            ));
        }
        if self.profile != Profile::Local && !self.password_hashing.meets_owasp_minimum() {
            return Err(ConfigError(
                "HEART_ARGON2_MEMORY_KIB and HEART_ARGON2_ITERATIONS below OWASP's Argon2id \
                 minimum (19456 KiB and 2 passes, or 47104 × 1, 12288 × 3, 9216 × 4, 7168 × 5) \
                 are only allowed in profile local"
                    .into(),
            ));
        }
        if self
            .edge_secret
            .as_ref()
            .is_some_and(|s| s.expose_secret().len() < 32)
        {
            return Err(ConfigError(
                "HEART_EDGE_SECRET must be at least 32 characters".into(),
            ));
        }
        if self.database_max_connections == 0 {
            return Err(ConfigError(
                "HEART_DATABASE_MAX_CONNECTIONS must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// `scheme://user:***@host/…`: the URL without its password.
fn redact_url_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_run_locally_on_embedded_backends() {
        let c = Config::from_vars(&HashMap::new()).unwrap();
        assert_eq!(c.profile, Profile::Local);
        assert!(c.uses_embedded_database());
        assert!(c.uses_dev_signing_key());
        assert!(matches!(c.mail.transport, MailTransport::Outbox { .. }));
        assert!(c.redis_url.is_none());
        assert_eq!(
            c.rate_limits[&RateLimitRule::LoginPerIp],
            RateLimitRule::LoginPerIp.default_limit()
        );
    }

    #[test]
    fn production_refuses_the_development_key_and_embedded_backends() {
        let err = Config::from_vars(&vars(&[("HEART_PROFILE", "production")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("development JWT signing key"), "{err}");
        assert!(err.contains("SQLite"), "{err}");
        assert!(err.contains("in-process cache"), "{err}");
        assert!(err.contains("outbox"), "{err}");
        assert!(err.contains("local media storage"), "{err}");
    }

    #[test]
    fn media_links_default_to_the_backend() {
        let local = Config::from_vars(&HashMap::new()).unwrap();
        assert_eq!(local.storage.public_base_url, "http://127.0.0.1:8080/media");
        let s3 = Config::from_vars(&vars(&[
            ("HEART_S3_BUCKET", "b"),
            ("HEART_S3_ENDPOINT", "http://127.0.0.1:9000/"),
            ("HEART_S3_FORCE_PATH_STYLE", "true"),
        ]))
        .unwrap();
        assert_eq!(s3.storage.public_base_url, "http://127.0.0.1:9000/b");
        let aws = Config::from_vars(&vars(&[
            ("HEART_S3_BUCKET", "b"),
            ("HEART_S3_REGION", "ap-northeast-2"),
        ]))
        .unwrap();
        assert_eq!(
            aws.storage.public_base_url,
            "https://b.s3.ap-northeast-2.amazonaws.com"
        );
    }

    #[test]
    fn production_starts_with_real_backends_and_a_real_key() {
        let key = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIF2gPq8PH6LPm5cOyIj0mSJzsn5zJXgZ9nSgAq8sB8Ji\n-----END PRIVATE KEY-----\n";
        let c = Config::from_vars(&vars(&[
            ("HEART_PROFILE", "production"),
            ("HEART_JWT_SIGNING_KEY", key),
            ("HEART_DATABASE_URL", "mysql://u:p@db/heart"),
            ("HEART_REDIS_URL", "redis://cache:6379"),
            ("HEART_SMTP_HOST", "smtp.example.com"),
            ("HEART_S3_BUCKET", "heart-media"),
            ("HEART_MEDIA_BASE_URL", "https://cdn.example.com/"),
            ("HEART_EDGE_SECRET", "0123456789abcdef0123456789abcdef"),
        ]))
        .unwrap();
        assert_eq!(c.profile, Profile::Production);
        assert!(!c.uses_dev_signing_key());
        assert_eq!(c.storage.public_base_url, "https://cdn.example.com");
    }

    #[test]
    fn production_refuses_smtp_without_tls() {
        let err = Config::from_vars(&vars(&[
            ("HEART_PROFILE", "production"),
            ("HEART_SMTP_HOST", "x"),
            ("HEART_SMTP_TLS", "none"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(err.contains("SMTP without TLS"), "{err}");
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = Config::from_vars(&vars(&[
            ("HEART_SMTP_HOST", "x"),
            ("HEART_SMTP_PORT", "lots"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(err.contains("HEART_SMTP_PORT"), "{err}");
        let err = Config::from_vars(&vars(&[("HEART_RATE_LIMIT_LOGIN_PER_IP", "fast")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("HEART_RATE_LIMIT_LOGIN_PER_IP"), "{err}");
        let err = Config::from_vars(&vars(&[("HEART_DATABASE_URL", "postgres://x")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("HEART_DATABASE_URL"), "{err}");
    }

    #[test]
    fn rate_limits_are_configurable_per_rule() {
        let c = Config::from_vars(&vars(&[("HEART_RATE_LIMIT_LOGIN_PER_EMAIL", "3/1m")])).unwrap();
        assert_eq!(
            c.rate_limits[&RateLimitRule::LoginPerEmail],
            RateLimit::new(3, 60)
        );
    }

    #[test]
    fn described_settings_leave_secrets_out() {
        let c = Config::from_vars(&vars(&[
            ("HEART_DATABASE_URL", "mysql://user:hunter2@db/heart"),
            ("HEART_REDIS_URL", "redis://:sesame@cache:6379"),
        ]))
        .unwrap();
        let described = c.describe();
        assert!(
            described.contains("database = mysql://user:***@db/heart"),
            "{described}"
        );
        assert!(
            described.contains("cache = redis://:***@cache:6379"),
            "{described}"
        );
        assert!(!described.contains("hunter2") && !described.contains("sesame"));
        assert!(!described.contains("PRIVATE KEY"));
    }

    #[test]
    fn secrets_do_not_print() {
        let c = Config::from_vars(&vars(&[(
            "HEART_DATABASE_URL",
            "mysql://user:hunter2@db/heart",
        )]))
        .unwrap();
        let printed = format!("{c:?}");
        assert!(!printed.contains("hunter2"));
        assert!(!printed.contains("PRIVATE KEY"));
    }
}
