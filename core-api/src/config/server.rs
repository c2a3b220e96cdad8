//! The server itself: profile, listeners, limits, logs and the edge in front.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use secrecy::SecretString;

use super::vars::Vars;
use super::ConfigError;

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

/// The server's own settings.
#[derive(Debug, Clone)]
pub(super) struct ServerSettings {
    pub(super) profile: Profile,
    pub(super) listen_addr: SocketAddr,
    pub(super) admin_listen_addr: SocketAddr,
    pub(super) data_dir: PathBuf,
    pub(super) edge_secret: Option<SecretString>,
    pub(super) trusted_proxy_hops: usize,
    pub(super) max_json_body_bytes: usize,
    pub(super) request_timeout_secs: u64,
    pub(super) connections: ConnectionLimits,
    pub(super) log_format: LogFormat,
}

/// What one client connection may hold: the limits `axum::serve` does not set (see `serve.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Seconds a client may take to send a request head, and an idle keep-alive connection may
    /// wait for the next one; past it the connection is closed.
    pub header_read_timeout_secs: u64,
    /// Seconds a client may take to send a JSON body once its head is in; past it the answer is
    /// `GLOBAL_004` and the connection is closed. Uploads have the request's time limit.
    pub body_read_timeout_secs: u64,
    /// Open client connections at most; more wait in the listen backlog.
    pub max_connections: usize,
}

impl ServerSettings {
    pub(super) fn from_vars(env: &Vars<'_>) -> Result<ServerSettings, ConfigError> {
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
        Ok(ServerSettings {
            profile: env.parse("HEART_PROFILE")?.unwrap_or(Profile::Local),
            listen_addr: env
                .parse("HEART_LISTEN_ADDR")?
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8080))),
            admin_listen_addr: env
                .parse("HEART_ADMIN_LISTEN_ADDR")?
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 9090))),
            data_dir: PathBuf::from(env.get("HEART_DATA_DIR").unwrap_or("data")),
            edge_secret: env
                .get("HEART_EDGE_SECRET")
                .map(|s| SecretString::from(s.to_owned())),
            trusted_proxy_hops: env.parse("HEART_TRUSTED_PROXY_HOPS")?.unwrap_or(0),
            max_json_body_bytes: env.parse("HEART_MAX_JSON_BODY_BYTES")?.unwrap_or(64 * 1024),
            request_timeout_secs: env.parse("HEART_REQUEST_TIMEOUT_SECS")?.unwrap_or(30),
            connections: ConnectionLimits {
                header_read_timeout_secs: env
                    .parse("HEART_HEADER_READ_TIMEOUT_SECS")?
                    .unwrap_or(10)
                    .max(1),
                body_read_timeout_secs: env
                    .parse("HEART_BODY_READ_TIMEOUT_SECS")?
                    .unwrap_or(10)
                    .max(1),
                max_connections: env.parse("HEART_MAX_CONNECTIONS")?.unwrap_or(4096).max(1),
            },
            log_format,
        })
    }
}
