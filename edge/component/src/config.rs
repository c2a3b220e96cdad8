//! The component's settings, read from Spin variables on every request (a Spin instance lives
//! for one request, so there is nothing to keep between them).

use heart_shared::cache_keys::{KeySpace, DEFAULT_PREFIX};
use heart_shared::edge::{
    BodyKind, DEFAULT_FEED_PAGE_TTL_SECS, DEFAULT_MAX_JSON_BODY_BYTES,
    DEFAULT_MAX_UPLOAD_REQUEST_BYTES,
};
use heart_shared::rate_limit::{RateLimit, RateLimitRule};

/// Variable names, as `spin.toml` declares them.
pub mod var {
    /// The core's origin, e.g. `http://heart-core:8080` (no path).
    pub const CORE_URL: &str = "core_url";
    /// The core's JWKS document (`GET /.well-known/jwks.json`).
    pub const JWKS: &str = "jwks";
    /// `redis://…`; empty: no cache (every request is forwarded, nothing is rate-limited here).
    pub const REDIS_URL: &str = "redis_url";
    /// Key prefix shared with the core (`HEART_CACHE_PREFIX`).
    pub const CACHE_PREFIX: &str = "cache_prefix";
    /// The secret the core checks before trusting identity headers.
    pub const EDGE_SECRET: &str = "edge_secret";
    /// Reverse proxies in front of the edge whose `X-Forwarded-For` entries are trusted.
    pub const TRUSTED_PROXY_HOPS: &str = "trusted_proxy_hops";
    /// Seconds a feed page is kept.
    pub const FEED_PAGE_TTL_SECS: &str = "feed_page_ttl_secs";
    /// `count/window` overrides of the edge rate limits; empty: the default.
    pub const RATE_LIMIT_PER_IP: &str = "rate_limit_edge_requests_per_ip";
    /// See [`RATE_LIMIT_PER_IP`].
    pub const RATE_LIMIT_PER_MEMBER: &str = "rate_limit_edge_requests_per_member";
    /// The largest body of a JSON route (the core's `HEART_MAX_JSON_BODY_BYTES`).
    pub const MAX_JSON_BODY_BYTES: &str = "max_json_body_bytes";
    /// The largest body of an upload route (the core's `HEART_MAX_UPLOAD_REQUEST_BYTES`).
    pub const MAX_UPLOAD_REQUEST_BYTES: &str = "max_upload_request_bytes";
    /// `on`: add the internal `x-heart-edge-*` answer headers our host reads for its access log
    /// and metrics (and removes). Set by our host only; under Spin they are never added.
    pub const HOST_TELEMETRY: &str = "host_telemetry";
}

/// Everything the component needs to handle one request.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// The core's origin without a trailing slash.
    pub core_url: String,
    /// The JWKS JSON.
    pub jwks: String,
    /// Redis, if configured.
    pub redis_url: Option<String>,
    /// The key layout.
    pub keys: KeySpace,
    /// Sent to the core in `x-heart-edge-secret`.
    pub edge_secret: String,
    /// See [`var::TRUSTED_PROXY_HOPS`].
    pub trusted_proxy_hops: usize,
    /// How long feed pages are kept.
    pub feed_page_ttl_secs: u32,
    /// Per-IP limit.
    pub per_ip: RateLimit,
    /// Per-member limit.
    pub per_member: RateLimit,
    /// Body limit of JSON routes (bytes).
    pub max_json_body_bytes: u64,
    /// Body limit of upload routes (bytes).
    pub max_upload_request_bytes: u64,
    /// See [`var::HOST_TELEMETRY`].
    pub host_telemetry: bool,
}

/// A required variable is missing or a value is malformed: the edge cannot serve at all.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "edge configuration: {}", self.0)
    }
}

impl EdgeConfig {
    /// Reads the configuration through `get`, which answers `None` for an unset or empty variable.
    pub fn read(get: impl Fn(&str) -> Option<String>) -> Result<EdgeConfig, ConfigError> {
        let required = |name: &str| {
            get(name).ok_or_else(|| ConfigError(format!("variable {name} is not set")))
        };
        let core_url = required(var::CORE_URL)?.trim_end_matches('/').to_owned();
        if !(core_url.starts_with("http://") || core_url.starts_with("https://")) {
            return Err(ConfigError(format!(
                "{} must be an http(s) origin, not {core_url:?}",
                var::CORE_URL
            )));
        }
        let jwks = required(var::JWKS)?;
        let edge_secret = required(var::EDGE_SECRET)?;
        let prefix = get(var::CACHE_PREFIX).unwrap_or_else(|| DEFAULT_PREFIX.to_owned());
        let bytes = |name: &str, default: u64| -> Result<u64, ConfigError> {
            get(name).map_or(Ok(default), |v| {
                v.trim()
                    .parse()
                    .map_err(|_| ConfigError(format!("{name} must be a number, not {v:?}")))
            })
        };
        let number = |name: &str, default: u32| -> Result<u32, ConfigError> {
            get(name).map_or(Ok(default), |v| {
                v.trim()
                    .parse()
                    .map_err(|_| ConfigError(format!("{name} must be a number, not {v:?}")))
            })
        };
        let limit = |name: &str, rule: RateLimitRule| -> Result<RateLimit, ConfigError> {
            get(name).map_or(Ok(rule.default_limit()), |v| {
                v.parse().map_err(|e| ConfigError(format!("{name}: {e}")))
            })
        };
        Ok(EdgeConfig {
            core_url,
            jwks,
            redis_url: get(var::REDIS_URL),
            keys: KeySpace::new(prefix),
            edge_secret,
            trusted_proxy_hops: number(var::TRUSTED_PROXY_HOPS, 0)? as usize,
            feed_page_ttl_secs: number(var::FEED_PAGE_TTL_SECS, DEFAULT_FEED_PAGE_TTL_SECS)?.max(1),
            per_ip: limit(var::RATE_LIMIT_PER_IP, RateLimitRule::EdgeRequestsPerIp)?,
            per_member: limit(
                var::RATE_LIMIT_PER_MEMBER,
                RateLimitRule::EdgeRequestsPerMember,
            )?,
            max_json_body_bytes: bytes(var::MAX_JSON_BODY_BYTES, DEFAULT_MAX_JSON_BODY_BYTES)?,
            max_upload_request_bytes: bytes(
                var::MAX_UPLOAD_REQUEST_BYTES,
                DEFAULT_MAX_UPLOAD_REQUEST_BYTES,
            )?,
            host_telemetry: get(var::HOST_TELEMETRY).is_some_and(|v| v.trim() == "on"),
        })
    }

    /// The body limit of a route of kind `body`.
    pub fn body_limit(&self, body: BodyKind) -> u64 {
        match body {
            BodyKind::Json => self.max_json_body_bytes,
            BodyKind::Upload => self.max_upload_request_bytes,
        }
    }

    /// The core's scheme (`http` or `https`) and authority (`host:port`).
    pub fn core_scheme_and_authority(&self) -> (&str, &str) {
        let (scheme, rest) = self
            .core_url
            .split_once("://")
            .unwrap_or(("http", self.core_url.as_str()));
        (scheme, rest.split('/').next().unwrap_or(rest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn defaults_apply_to_optional_variables() {
        let config = EdgeConfig::read(vars(&[
            ("core_url", "http://core:8080/"),
            ("jwks", "{}"),
            ("edge_secret", "s"),
        ]))
        .unwrap();
        assert_eq!(config.core_url, "http://core:8080");
        assert_eq!(config.redis_url, None);
        assert_eq!(config.keys.prefix(), "heart");
        assert_eq!(
            config.per_ip,
            RateLimitRule::EdgeRequestsPerIp.default_limit()
        );
        assert_eq!(config.feed_page_ttl_secs, 60);
        assert_eq!(config.body_limit(BodyKind::Json), 64 * 1024);
        assert_eq!(config.body_limit(BodyKind::Upload), 64 * 1024 * 1024);
        assert!(!config.host_telemetry);
        assert_eq!(config.core_scheme_and_authority(), ("http", "core:8080"));
    }

    #[test]
    fn spin_manifest_gives_the_component_every_variable_it_reads() {
        let manifest: toml::Value = toml::from_str(include_str!("../../spin.toml")).unwrap();
        let given = manifest["component"]["heart-edge"]["variables"]
            .as_table()
            .unwrap();
        let declared = manifest["variables"].as_table().unwrap();
        for name in [
            var::CORE_URL,
            var::JWKS,
            var::REDIS_URL,
            var::CACHE_PREFIX,
            var::EDGE_SECRET,
            var::TRUSTED_PROXY_HOPS,
            var::FEED_PAGE_TTL_SECS,
            var::RATE_LIMIT_PER_IP,
            var::RATE_LIMIT_PER_MEMBER,
            var::MAX_JSON_BODY_BYTES,
            var::MAX_UPLOAD_REQUEST_BYTES,
        ] {
            assert_eq!(
                given[name].as_str(),
                Some(format!("{{{{ {name} }}}}").as_str()),
                "{name}"
            );
            assert!(declared.contains_key(name), "{name}");
        }
    }

    #[test]
    fn missing_or_malformed_required_variables_are_refused() {
        assert!(EdgeConfig::read(vars(&[("jwks", "{}"), ("edge_secret", "s")])).is_err());
        assert!(EdgeConfig::read(vars(&[
            ("core_url", "core:8080"),
            ("jwks", "{}"),
            ("edge_secret", "s")
        ]))
        .is_err());
        assert!(EdgeConfig::read(vars(&[
            ("core_url", "http://core"),
            ("jwks", "{}"),
            ("edge_secret", "s"),
            ("rate_limit_edge_requests_per_ip", "lots")
        ]))
        .is_err());
    }
}
