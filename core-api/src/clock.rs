//! Time, as seconds since the Unix epoch.
//!
//! Expiries (verification codes, refresh tokens, the reissue grace period) are business rules, so
//! tests must be able to move time forward without sleeping: a manual clock does that.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The server's clock.
#[derive(Debug, Clone)]
pub struct Clock {
    /// Seconds added to the system time (0 in production; tests advance it).
    offset: Arc<AtomicI64>,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock {
            offset: Arc::new(AtomicI64::new(0)),
        }
    }

    /// Seconds since the Unix epoch.
    pub fn now(&self) -> i64 {
        let system = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        system + self.offset.load(Ordering::Relaxed)
    }

    /// Moves this clock (and every clone of it) forward by `secs`. For tests.
    pub fn advance(&self, secs: i64) {
        self.offset.fetch_add(secs, Ordering::Relaxed);
    }
}
