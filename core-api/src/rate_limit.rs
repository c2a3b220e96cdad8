//! Fixed-window rate limits, counted in the cache; the rules and their defaults are in
//! `heart_shared::rate_limit`, shared with the edge.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use heart_shared::cache_keys::KeySpace;
use heart_shared::rate_limit::{RateLimit, RateLimitRule};

use crate::cache::Cache;
use crate::error::ApiError;

/// Fixed-window rate limits, counted in the cache.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    cache: Arc<dyn Cache>,
    keys: KeySpace,
    limits: Arc<HashMap<RateLimitRule, RateLimit>>,
    enabled: bool,
}

impl RateLimiter {
    /// A limiter with `limits` (rules missing from it use their defaults).
    pub fn new(
        cache: Arc<dyn Cache>,
        keys: KeySpace,
        limits: HashMap<RateLimitRule, RateLimit>,
        enabled: bool,
    ) -> RateLimiter {
        RateLimiter {
            cache,
            keys,
            limits: Arc::new(limits),
            enabled,
        }
    }

    /// Counts one hit of `rule` by `subject` at `now`; `GLOBAL_106` with `Retry-After` when over the limit.
    ///
    /// If the cache is down the hit is allowed (and logged): an outage of Redis must not lock every
    /// member out, and the database still enforces the code and password checks themselves.
    pub async fn check(
        &self,
        rule: RateLimitRule,
        subject: &str,
        now: i64,
    ) -> Result<(), ApiError> {
        self.check_scaled(rule, subject, now, 1).await
    }

    /// [`RateLimiter::check`] with `factor` times the rule's limit (same window): one rule
    /// counted on a narrow subject at its limit and on a wide one at a multiple.
    pub async fn check_scaled(
        &self,
        rule: RateLimitRule,
        subject: &str,
        now: i64,
        factor: u32,
    ) -> Result<(), ApiError> {
        if !self.enabled {
            return Ok(());
        }
        let mut limit = self
            .limits
            .get(&rule)
            .copied()
            .unwrap_or_else(|| rule.default_limit());
        limit.limit = limit.limit.saturating_mul(factor.max(1));
        let key = self.keys.rate_limit(rule, subject, limit.window_index(now));
        match self
            .cache
            .increment(&key, Duration::from_secs(u64::from(limit.window_secs)))
            .await
        {
            Ok(count) if limit.allows(count) => Ok(()),
            Ok(_) => {
                metrics::counter!("heart_rate_limited_total", "rule" => rule.name()).increment(1);
                Err(ApiError::RateLimited {
                    retry_after_secs: limit.retry_after(now),
                })
            }
            Err(error) => {
                tracing::warn!(rule = rule.name(), error = %crate::error::cause_chain(&error), "rate limit not checked: cache unavailable");
                metrics::counter!("heart_dependency_errors_total", "dependency" => "cache")
                    .increment(1);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::InProcessCache;

    #[tokio::test]
    async fn limiter_refuses_past_the_limit_with_retry_after() {
        let cache: Arc<dyn Cache> = Arc::new(InProcessCache::default());
        let limits = HashMap::from([(RateLimitRule::LoginPerIp, RateLimit::new(2, 60))]);
        let limiter = RateLimiter::new(cache, KeySpace::new("t"), limits, true);
        assert!(limiter
            .check(RateLimitRule::LoginPerIp, "1.2.3.4", 130)
            .await
            .is_ok());
        assert!(limiter
            .check(RateLimitRule::LoginPerIp, "1.2.3.4", 130)
            .await
            .is_ok());
        match limiter
            .check(RateLimitRule::LoginPerIp, "1.2.3.4", 130)
            .await
        {
            Err(ApiError::RateLimited { retry_after_secs }) => assert_eq!(retry_after_secs, 50),
            other => panic!("expected rate limit, got {other:?}"),
        }
        assert!(
            limiter
                .check(RateLimitRule::LoginPerIp, "5.6.7.8", 130)
                .await
                .is_ok(),
            "other subjects unaffected"
        );
        assert!(
            limiter
                .check(RateLimitRule::LoginPerIp, "1.2.3.4", 180)
                .await
                .is_ok(),
            "next window"
        );
    }
}
