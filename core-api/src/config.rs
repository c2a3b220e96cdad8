//! One typed configuration, read from `HEART_*` environment variables at startup.
//!
//! Every setting has a default that runs locally with nothing installed (profile `local`):
//! SQLite under `./data`, mail to an outbox folder, in-process cache, a development signing key.
//! Profile `production` refuses to start with the development key or any embedded backend.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use heart_shared::rate_limit::{RateLimit, RateLimitRule};
use secrecy::{ExposeSecret, SecretString};

/// The development signing key. Public in the repository, so never acceptable in production.
pub const DEV_SIGNING_KEY_PEM: &str = include_str!("../dev/jwt-signing-key.dev.pem");

/// Which deployment this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// A developer's machine: embedded backends and the development key are fine.
    Local,
    /// Pre-production: like production, but embedded backends and the dev key only warn.
    Staging,
    /// Production: real backends and a real key are required.
    Production,
}

impl Profile {
    /// The profile's name, as served at `GET /profile`.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Local => "local",
            Profile::Staging => "staging",
            Profile::Production => "production",
        }
    }
}

impl FromStr for Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "local" | "dev" | "development" => Ok(Profile::Local),
            "staging" => Ok(Profile::Staging),
            "production" | "prod" => Ok(Profile::Production),
            other => Err(format!(
                "unknown profile {other:?} (local, staging or production)"
            )),
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// JSON, unless standard error is a terminal.
    Auto,
    /// One JSON object per line (for Fluent Bit).
    Json,
    /// Human-readable.
    Pretty,
}

/// Where mail goes.
#[derive(Debug, Clone)]
pub enum MailTransport {
    /// One `.eml` file per message in this folder (embedded default).
    Outbox { dir: PathBuf },
    /// An SMTP server.
    Smtp(SmtpConfig),
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (required, not opportunistic).
    Starttls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
    /// No TLS at all: only for a local test sink.
    None,
}

/// SMTP settings.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// Server host name.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Login, if the server wants one.
    pub username: Option<String>,
    /// Password for `username`.
    pub password: Option<SecretString>,
    /// Connection security.
    pub tls: SmtpTls,
}

/// Mail settings.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// The `From:` of every message.
    pub from: String,
    /// Where messages go.
    pub transport: MailTransport,
}

/// Where uploaded images are stored.
#[derive(Debug, Clone)]
pub enum StorageBackend {
    /// A folder, served by the core under `/media/` (embedded default).
    Local {
        /// The folder.
        dir: PathBuf,
    },
    /// S3 or an S3-compatible server.
    S3(S3Config),
}

/// S3 settings. Without static keys the default AWS credential chain is used (IRSA on EKS).
#[derive(Debug, Clone)]
pub struct S3Config {
    /// Bucket name.
    pub bucket: String,
    /// Region.
    pub region: String,
    /// Endpoint override for S3-compatible servers, e.g. `http://127.0.0.1:9000`.
    pub endpoint: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), which most S3-compatible servers need.
    pub force_path_style: bool,
    /// Static access key id (local and tests; leave unset on AWS).
    pub access_key_id: Option<String>,
    /// Static secret key.
    pub secret_access_key: Option<SecretString>,
}

/// Object storage and the links to it.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// Where objects go.
    pub backend: StorageBackend,
    /// Base of the absolute links in responses (`<base>/<key>`), e.g. a CloudFront URL. No trailing slash.
    pub public_base_url: String,
}

/// Upload limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadLimits {
    /// Files per post.
    pub max_files: usize,
    /// Bytes per file.
    pub max_file_bytes: usize,
    /// Bytes per multipart request, all parts together.
    pub max_request_bytes: usize,
}

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
}

impl PasswordHashing {
    /// OWASP's recommendation for Argon2id: 19 MiB, 2 passes, 1 lane.
    pub const RECOMMENDED: PasswordHashing = PasswordHashing {
        memory_kib: 19_456,
        iterations: 2,
        parallelism: 1,
    };
}

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
    /// Connection pool size.
    pub database_max_connections: u32,
    /// Redis URL; `None` keeps cache, revocations and rate limits in process.
    pub redis_url: Option<SecretString>,
    /// Prefix of every cache key.
    pub cache_prefix: String,
    /// Mail.
    pub mail: MailConfig,
    /// Object storage.
    pub storage: StorageConfig,
    /// Upload limits.
    pub uploads: UploadLimits,
    /// Seconds between retries of failed object deletions.
    pub storage_sweep_secs: u64,
    /// Tokens.
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
        let profile: Profile = env.parse("HEART_PROFILE")?.unwrap_or(Profile::Local);
        let data_dir = PathBuf::from(env.get("HEART_DATA_DIR").unwrap_or("data"));

        let database_url = env
            .get("HEART_DATABASE_URL")
            .map(str::to_owned)
            .unwrap_or_else(|| {
                format!("sqlite://{}?mode=rwc", data_dir.join("heart.db").display())
            });
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("mysql://")
            || database_url.starts_with("mariadb://"))
        {
            return Err(ConfigError(
                "HEART_DATABASE_URL must start with sqlite: or mysql://".into(),
            ));
        }

        let transport = match env.get("HEART_SMTP_HOST") {
            Some(host) => MailTransport::Smtp(SmtpConfig {
                host: host.to_owned(),
                port: env.parse("HEART_SMTP_PORT")?.unwrap_or(587),
                username: env.get("HEART_SMTP_USERNAME").map(str::to_owned),
                password: env
                    .get("HEART_SMTP_PASSWORD")
                    .map(|p| SecretString::from(p.to_owned())),
                tls: match env
                    .get("HEART_SMTP_TLS")
                    .unwrap_or("starttls")
                    .to_ascii_lowercase()
                    .as_str()
                {
                    "starttls" => SmtpTls::Starttls,
                    "tls" | "smtps" => SmtpTls::Tls,
                    "none" | "off" => SmtpTls::None,
                    other => {
                        return Err(ConfigError(format!(
                            "HEART_SMTP_TLS {other:?}: starttls, tls or none"
                        )))
                    }
                },
            }),
            None => MailTransport::Outbox {
                dir: env
                    .get("HEART_MAIL_OUTBOX_DIR")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| data_dir.join("outbox")),
            },
        };

        let signing_key_pem = match (
            env.get("HEART_JWT_SIGNING_KEY"),
            env.get("HEART_JWT_SIGNING_KEY_FILE"),
        ) {
            (Some(pem), _) => pem.replace("\\n", "\n"),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|e| ConfigError(format!("HEART_JWT_SIGNING_KEY_FILE {path}: {e}")))?,
            (None, None) => DEV_SIGNING_KEY_PEM.to_owned(),
        };

        let listen_addr: SocketAddr = env
            .parse("HEART_LISTEN_ADDR")?
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8080)));
        let storage_backend = match env.get("HEART_S3_BUCKET") {
            Some(bucket) => StorageBackend::S3(S3Config {
                bucket: bucket.to_owned(),
                region: env.get("HEART_S3_REGION").unwrap_or("us-east-1").to_owned(),
                endpoint: env
                    .get("HEART_S3_ENDPOINT")
                    .map(|e| e.trim_end_matches('/').to_owned()),
                force_path_style: env.parse("HEART_S3_FORCE_PATH_STYLE")?.unwrap_or(false),
                access_key_id: env.get("HEART_S3_ACCESS_KEY_ID").map(str::to_owned),
                secret_access_key: env
                    .get("HEART_S3_SECRET_ACCESS_KEY")
                    .map(|s| SecretString::from(s.to_owned())),
            }),
            None => StorageBackend::Local {
                dir: env
                    .get("HEART_MEDIA_DIR")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| data_dir.join("media")),
            },
        };
        let public_base_url = match (env.get("HEART_MEDIA_BASE_URL"), &storage_backend) {
            (Some(url), _) => url.trim_end_matches('/').to_owned(),
            (None, StorageBackend::Local { .. }) => format!("http://{listen_addr}/media"),
            (None, StorageBackend::S3(s3)) => match (&s3.endpoint, s3.force_path_style) {
                (Some(endpoint), true) => format!("{endpoint}/{}", s3.bucket),
                (Some(endpoint), false) => {
                    endpoint.replacen("://", &format!("://{}.", s3.bucket), 1)
                }
                (None, _) => format!("https://{}.s3.{}.amazonaws.com", s3.bucket, s3.region),
            },
        };

        let mut rate_limits = HashMap::new();
        for rule in RateLimitRule::ALL {
            let name = format!("HEART_RATE_LIMIT_{}", rule.name().to_ascii_uppercase());
            let limit = match env.get(&name) {
                Some(v) => v.parse().map_err(|e| ConfigError(format!("{name}: {e}")))?,
                None => rule.default_limit(),
            };
            rate_limits.insert(rule, limit);
        }

        let log_format = match env
            .get("HEART_LOG_FORMAT")
            .unwrap_or("auto")
            .to_ascii_lowercase()
            .as_str()
        {
            "auto" => LogFormat::Auto,
            "json" => LogFormat::Json,
            "pretty" | "text" => LogFormat::Pretty,
            other => {
                return Err(ConfigError(format!(
                    "HEART_LOG_FORMAT {other:?}: auto, json or pretty"
                )))
            }
        };

        let config = Config {
            profile,
            listen_addr: env
                .parse("HEART_LISTEN_ADDR")?
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8080))),
            admin_listen_addr: env
                .parse("HEART_ADMIN_LISTEN_ADDR")?
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 9090))),
            data_dir,
            database_url: SecretString::from(database_url),
            database_max_connections: env.parse("HEART_DATABASE_MAX_CONNECTIONS")?.unwrap_or(10),
            redis_url: env
                .get("HEART_REDIS_URL")
                .map(|u| SecretString::from(u.to_owned())),
            cache_prefix: env
                .get("HEART_CACHE_PREFIX")
                .unwrap_or(heart_shared::cache_keys::DEFAULT_PREFIX)
                .to_owned(),
            mail: MailConfig {
                from: env
                    .get("HEART_MAIL_FROM")
                    .unwrap_or("Heart to Heart <no-reply@heart-to-heart.local>")
                    .to_owned(),
                transport,
            },
            storage: StorageConfig {
                backend: storage_backend,
                public_base_url,
            },
            storage_sweep_secs: env.parse("HEART_STORAGE_SWEEP_SECS")?.unwrap_or(60),
            uploads: UploadLimits {
                max_files: env.parse("HEART_MAX_UPLOAD_FILES")?.unwrap_or(10),
                max_file_bytes: env
                    .parse("HEART_MAX_UPLOAD_FILE_BYTES")?
                    .unwrap_or(10 * 1024 * 1024),
                max_request_bytes: env
                    .parse("HEART_MAX_UPLOAD_REQUEST_BYTES")?
                    .unwrap_or(64 * 1024 * 1024),
            },
            tokens: TokenConfig {
                signing_key_pem: SecretString::from(signing_key_pem),
                previous_keys_jwks: env.get("HEART_JWT_PREVIOUS_KEYS").map(str::to_owned),
                access_ttl_secs: env.parse("HEART_ACCESS_TOKEN_TTL_SECS")?.unwrap_or(15 * 60),
                refresh_ttl_secs: env
                    .parse("HEART_REFRESH_TOKEN_TTL_SECS")?
                    .unwrap_or(14 * 24 * 3600),
            },
            password_hashing: PasswordHashing {
                memory_kib: env
                    .parse("HEART_ARGON2_MEMORY_KIB")?
                    .unwrap_or(PasswordHashing::RECOMMENDED.memory_kib),
                iterations: env
                    .parse("HEART_ARGON2_ITERATIONS")?
                    .unwrap_or(PasswordHashing::RECOMMENDED.iterations),
                parallelism: env
                    .parse("HEART_ARGON2_PARALLELISM")?
                    .unwrap_or(PasswordHashing::RECOMMENDED.parallelism),
            },
            rate_limits_enabled: env.parse("HEART_RATE_LIMITS_ENABLED")?.unwrap_or(true),
            rate_limits,
            edge_secret: env
                .get("HEART_EDGE_SECRET")
                .map(|s| SecretString::from(s.to_owned())),
            trusted_proxy_hops: env.parse("HEART_TRUSTED_PROXY_HOPS")?.unwrap_or(0),
            max_json_body_bytes: env.parse("HEART_MAX_JSON_BODY_BYTES")?.unwrap_or(64 * 1024),
            request_timeout_secs: env.parse("HEART_REQUEST_TIMEOUT_SECS")?.unwrap_or(30),
            log_format,
        };
        config.check()?;
        Ok(config)
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
        if self.tokens.access_ttl_secs < 10
            || self.tokens.refresh_ttl_secs < self.tokens.access_ttl_secs
        {
            return Err(ConfigError(
                "token lifetimes: access ≥ 10 s and refresh ≥ access".into(),
            ));
        }
        if self.profile != Profile::Local
            && self.password_hashing.memory_kib < PasswordHashing::RECOMMENDED.memory_kib
        {
            return Err(ConfigError(
                "HEART_ARGON2_MEMORY_KIB below 19456 is only allowed in profile local".into(),
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

/// Typed access to the variables, with errors that name the variable.
struct Vars<'a>(&'a HashMap<String, String>);

impl Vars<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    fn parse<T: FromStr>(&self, name: &str) -> Result<Option<T>, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        self.get(name)
            .map(|v| {
                v.parse::<T>()
                    .map_err(|e| ConfigError(format!("{name}={v:?}: {e}")))
            })
            .transpose()
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
