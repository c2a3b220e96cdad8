//! Rate-limit policy, the core's and the edge's: what is limited, by which subject, and how much
//! by default. One rule enum; the key a counter lives under is [`crate::cache_keys::KeySpace::rate_limit`].
//!
//! Limits are fixed windows counted in the cache (Redis, or in-process on embedded defaults):
//! one `INCR` (plus `EXPIRE` on the first hit) per check, which Spin's Redis interface can do too.
//! A fixed window lets a client make up to twice the limit across a window boundary; the defaults
//! are chosen with that in mind.

use std::str::FromStr;

/// An action that is rate-limited, and by what.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateLimitRule {
    /// Verification mails sent to one email.
    VerificationSendPerEmail,
    /// Verification mails requested from one IP.
    VerificationSendPerIp,
    /// Code confirmations (right or wrong) for one email: bounds brute force of the code.
    ConfirmPerEmail,
    /// Code confirmations from one IP.
    ConfirmPerIp,
    /// Sign-ups from one IP.
    JoinPerIp,
    /// Logins from one IP.
    LoginPerIp,
    /// Logins for one email: bounds password guessing against one account.
    LoginPerEmail,
    /// Token reissues from one IP.
    ReissuePerIp,
    /// Token reissues for one member.
    ReissuePerMember,
    /// Edge: requests from one client address, counted on every request the edge does not answer
    /// alone (`/healthz`), refused tokens included. Generous: mobile carriers put many phones
    /// behind one address.
    EdgeRequestsPerIp,
    /// Edge: requests by one member (authenticated routes only).
    EdgeRequestsPerMember,
}

impl RateLimitRule {
    /// The rules the core checks (its `HEART_RATE_LIMIT_<NAME>` settings).
    pub const CORE: [RateLimitRule; 9] = [
        RateLimitRule::VerificationSendPerEmail,
        RateLimitRule::VerificationSendPerIp,
        RateLimitRule::ConfirmPerEmail,
        RateLimitRule::ConfirmPerIp,
        RateLimitRule::JoinPerIp,
        RateLimitRule::LoginPerIp,
        RateLimitRule::LoginPerEmail,
        RateLimitRule::ReissuePerIp,
        RateLimitRule::ReissuePerMember,
    ];

    /// The rules the edge checks (its `rate_limit_<name>` variables).
    pub const EDGE: [RateLimitRule; 2] = [
        RateLimitRule::EdgeRequestsPerIp,
        RateLimitRule::EdgeRequestsPerMember,
    ];

    /// The core's rules: the name the core's configuration reads them by (same as [`Self::CORE`]).
    pub const ALL: [RateLimitRule; 9] = Self::CORE;

    /// The rule's name: in cache keys, metrics and the core's `HEART_RATE_LIMIT_<NAME>` setting
    /// (upper-cased) or the edge's `rate_limit_<name>` variable.
    pub const fn name(self) -> &'static str {
        match self {
            RateLimitRule::VerificationSendPerEmail => "verification_send_per_email",
            RateLimitRule::VerificationSendPerIp => "verification_send_per_ip",
            RateLimitRule::ConfirmPerEmail => "confirm_per_email",
            RateLimitRule::ConfirmPerIp => "confirm_per_ip",
            RateLimitRule::JoinPerIp => "join_per_ip",
            RateLimitRule::LoginPerIp => "login_per_ip",
            RateLimitRule::LoginPerEmail => "login_per_email",
            RateLimitRule::ReissuePerIp => "reissue_per_ip",
            RateLimitRule::ReissuePerMember => "reissue_per_member",
            RateLimitRule::EdgeRequestsPerIp => "edge_requests_per_ip",
            RateLimitRule::EdgeRequestsPerMember => "edge_requests_per_member",
        }
    }

    /// The default limit of the rule.
    pub const fn default_limit(self) -> RateLimit {
        match self {
            RateLimitRule::VerificationSendPerEmail => RateLimit::new(5, 600),
            RateLimitRule::VerificationSendPerIp => RateLimit::new(20, 600),
            RateLimitRule::ConfirmPerEmail => RateLimit::new(10, 600),
            RateLimitRule::ConfirmPerIp => RateLimit::new(30, 600),
            RateLimitRule::JoinPerIp => RateLimit::new(10, 3600),
            RateLimitRule::LoginPerIp => RateLimit::new(30, 300),
            RateLimitRule::LoginPerEmail => RateLimit::new(10, 300),
            RateLimitRule::ReissuePerIp => RateLimit::new(60, 60),
            RateLimitRule::ReissuePerMember => RateLimit::new(20, 60),
            RateLimitRule::EdgeRequestsPerIp => RateLimit::new(600, 60),
            RateLimitRule::EdgeRequestsPerMember => RateLimit::new(240, 60),
        }
    }
}

/// At most `limit` hits per window of `window_secs` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Hits allowed per window.
    pub limit: u32,
    /// Window length in seconds (at least 1).
    pub window_secs: u32,
}

impl RateLimit {
    /// A limit of `limit` hits per `window_secs` seconds.
    pub const fn new(limit: u32, window_secs: u32) -> RateLimit {
        RateLimit { limit, window_secs }
    }

    /// The index of the window `now` falls in; part of the counter's key.
    pub fn window_index(&self, now: i64) -> i64 {
        now.div_euclid(i64::from(self.window_secs.max(1)))
    }

    /// Seconds from `now` until the current window ends (at least 1): the `Retry-After` value.
    pub fn retry_after(&self, now: i64) -> u32 {
        let window = i64::from(self.window_secs.max(1));
        let end = (self.window_index(now) + 1) * window;
        u32::try_from((end - now).max(1)).unwrap_or(self.window_secs)
    }

    /// Whether the `count`-th hit of a window is allowed.
    pub fn allows(&self, count: u64) -> bool {
        count <= u64::from(self.limit)
    }
}

/// Why a limit setting could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitParseError(pub String);

impl std::fmt::Display for RateLimitParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "invalid rate limit {:?}: expected <count>/<seconds>, e.g. 5/600",
            self.0
        )
    }
}

impl std::error::Error for RateLimitParseError {}

impl FromStr for RateLimit {
    type Err = RateLimitParseError;

    /// Reads `"<count>/<seconds>"`, e.g. `"5/600"`; the seconds may carry a unit: `s`, `m` or `h`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || RateLimitParseError(s.to_owned());
        let (count, window) = s.trim().split_once('/').ok_or_else(err)?;
        let limit: u32 = count.trim().parse().map_err(|_| err())?;
        let window = window.trim();
        let (digits, unit) = match window.char_indices().last() {
            Some((i, c)) if c.is_ascii_alphabetic() => (&window[..i], c),
            _ => (window, 's'),
        };
        let multiplier = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return Err(err()),
        };
        let n: u32 = digits.trim().parse().map_err(|_| err())?;
        let window_secs = n
            .checked_mul(multiplier)
            .filter(|w| *w > 0)
            .ok_or_else(err)?;
        Ok(RateLimit { limit, window_secs })
    }
}

impl std::fmt::Display for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}s", self.limit, self.window_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_count_and_window_with_units() {
        assert_eq!("5/600".parse(), Ok(RateLimit::new(5, 600)));
        assert_eq!("5/600s".parse(), Ok(RateLimit::new(5, 600)));
        assert_eq!(" 10 / 10m ".parse(), Ok(RateLimit::new(10, 600)));
        assert_eq!("1/1h".parse(), Ok(RateLimit::new(1, 3600)));
        assert!("5".parse::<RateLimit>().is_err());
        assert!("5/0".parse::<RateLimit>().is_err());
        assert!("x/10".parse::<RateLimit>().is_err());
        assert!("5/10d".parse::<RateLimit>().is_err());
    }

    #[test]
    fn windows_and_retry_after() {
        let l = RateLimit::new(2, 60);
        assert_eq!(l.window_index(119), 1);
        assert_eq!(l.window_index(120), 2);
        assert_eq!(l.retry_after(61), 59);
        assert_eq!(l.retry_after(119), 1);
        assert_eq!(l.retry_after(120), 60);
        assert!(l.allows(2));
        assert!(!l.allows(3));
    }

    #[test]
    fn rule_names_are_unique_across_core_and_edge() {
        let rules: Vec<RateLimitRule> = RateLimitRule::CORE
            .into_iter()
            .chain(RateLimitRule::EDGE)
            .collect();
        let names: std::collections::HashSet<_> = rules.iter().map(|r| r.name()).collect();
        assert_eq!(names.len(), rules.len());
        assert!(RateLimitRule::EDGE
            .iter()
            .all(|r| r.name().starts_with("edge_")));
        assert!(!RateLimitRule::CORE
            .iter()
            .any(|r| r.name().starts_with("edge_")));
    }
}
