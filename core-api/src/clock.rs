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
    /// The system time this clock stands still at, once a test froze it (0: it follows the
    /// system time).
    frozen_at: Arc<AtomicI64>,
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
            frozen_at: Arc::new(AtomicI64::new(0)),
        }
    }

    /// Seconds since the Unix epoch.
    pub fn now(&self) -> i64 {
        secs_since_epoch(self.system_time())
    }

    /// This clock as a [`SystemTime`]: the system's, to the nanosecond, while it runs free;
    /// the second it stands at once frozen. (The stack gives it to the edge component as its wall
    /// clock, so one clock rules both sides in tests.)
    pub fn system_time(&self) -> SystemTime {
        let offset = self.offset.load(Ordering::Relaxed);
        let frozen_at = self.frozen_at.load(Ordering::Relaxed);
        let base = if frozen_at != 0 {
            UNIX_EPOCH + std::time::Duration::from_secs(frozen_at.unsigned_abs())
        } else {
            SystemTime::now()
        };
        let shift = std::time::Duration::from_secs(offset.unsigned_abs());
        if offset >= 0 {
            base + shift
        } else {
            base - shift
        }
    }

    /// Stops this clock (and every clone of it) at the present second, so only
    /// [`Clock::advance`] moves it: a test that checks an expiry from one second before it
    /// must not fail because a real second passed meanwhile. For tests.
    pub fn freeze(&self) {
        let _ =
            self.frozen_at
                .compare_exchange(0, system_secs(), Ordering::Relaxed, Ordering::Relaxed);
    }

    /// Moves this clock (and every clone of it) forward by `secs`. For tests.
    pub fn advance(&self, secs: i64) {
        self.offset.fetch_add(secs, Ordering::Relaxed);
    }
}

/// The system time, in whole seconds since the Unix epoch.
fn system_secs() -> i64 {
    secs_since_epoch(SystemTime::now())
}

/// `time` in whole seconds since the Unix epoch (0 before it).
fn secs_since_epoch(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frozen_clock_moves_only_when_advanced() {
        let clock = Clock::system();
        clock.freeze();
        let frozen = clock.now();
        // Past the next whole second of the system clock.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert_eq!(clock.clone().now(), frozen);
        clock.advance(59);
        assert_eq!(clock.now(), frozen + 59);
    }

    #[test]
    fn the_system_time_follows_the_clock() {
        use std::time::Duration;
        let clock = Clock::system();
        assert!((secs_since_epoch(clock.system_time()) - system_secs()).abs() <= 1);
        clock.freeze();
        let frozen = clock.system_time();
        let since_epoch = frozen.duration_since(UNIX_EPOCH).unwrap();
        assert_eq!(since_epoch.subsec_nanos(), 0, "frozen at a whole second");
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(clock.system_time(), frozen);
        clock.advance(-30);
        assert_eq!(clock.system_time(), frozen - Duration::from_secs(30));
        clock.advance(90);
        assert_eq!(clock.system_time(), frozen + Duration::from_secs(60));
    }
}
