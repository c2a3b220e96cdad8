//! The optional read replica (`HEART_DATABASE_READ_URL`): its pool, its health, and how far it lags.
//!
//! A background probe asks the replica every 500 ms how far behind it is (`SHOW REPLICA STATUS`,
//! else `SHOW SLAVE STATUS`: `Seconds_Behind_Master`/`_Source`). The replica is *usable* while its
//! breaker is closed (it answers), both replication threads run and the lag is within
//! `HEART_DATABASE_READ_MAX_LAG_SECS`; otherwise every read goes to the primary. A replica that
//! reports no replication at all (not a replica) is never used. The verdict is kept in atomics, so
//! routing a read costs no round trip.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sqlx::any::AnyConnectOptions;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlRow};
use sqlx::{Executor, Row};

use super::recent_writes::RecentWrites;
use super::{Db, DbKind, ACQUIRE_TIMEOUT, PROBE_POLICY};
use crate::error::BoxError;
use crate::health::{Breaker, ProbeFuture};

/// The replica as the routing sees it. Shared by every clone of the [`Db`].
#[derive(Debug)]
pub struct Reader {
    /// The replica's pool, as a [`Db`] the repos can read from (its own breaker, no reader).
    pub(super) db: Db,
    lag: Arc<Lag>,
    /// Set at startup once the cache exists (see [`Db::track_recent_writes`]).
    pub(super) recent: OnceLock<RecentWrites>,
    /// Reads served by the replica, and reads it was bypassed for (tests and `/metrics`).
    pub(super) replica_reads: AtomicU64,
    pub(super) primary_reads: AtomicU64,
}

/// The last lag measured, whole seconds; -1: unknown (not replicating, threads stopped, or no answer).
#[derive(Debug)]
struct Lag {
    seconds: AtomicI64,
    max: i64,
    /// The last verdict logged, so a change of it is logged once.
    usable: AtomicBool,
}

/// Why a read went to the primary although a replica is configured (the metric's `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bypass {
    /// The replica's breaker is open: it did not answer.
    Unreachable,
    /// Replication is stopped, or the replica is further behind than the bound.
    Lagging,
    /// The viewer wrote within the read-your-writes window.
    RecentWrite,
    /// What the read shows changed more recently than the replica can be trusted to have seen.
    RecentChange,
    /// The query failed on the replica and was run again on the primary.
    Retried,
}

impl Bypass {
    pub(super) fn label(self) -> &'static str {
        match self {
            Bypass::Unreachable => "unreachable",
            Bypass::Lagging => "lagging",
            Bypass::RecentWrite => "recent_write",
            Bypass::RecentChange => "recent_change",
            Bypass::Retried => "retried",
        }
    }
}

impl Reader {
    /// A lazily connected pool on `url` (the core starts while the replica is down) and its probe.
    pub(super) fn connect(
        url: &str,
        max_connections: u32,
        max_lag: Duration,
    ) -> Result<Reader, sqlx::Error> {
        let url = url.replacen("mariadb://", "mysql://", 1);
        let options = AnyConnectOptions::from_str(&url)?;
        let status_options = MySqlConnectOptions::from_str(&url)?;
        let lag = Arc::new(Lag {
            seconds: AtomicI64::new(-1),
            max: i64::try_from(max_lag.as_secs()).unwrap_or(i64::MAX),
            usable: AtomicBool::new(false),
        });
        metrics::gauge!("heart_database_reader_lag_seconds").set(-1.0);
        metrics::gauge!("heart_database_reader_usable").set(0.0);
        let health = Breaker::new(
            "database_reader",
            PROBE_POLICY,
            lag_probe(status_options, lag.clone()),
        );
        // A shorter acquire timeout than the primary's: a replica that gives no connection is
        // skipped, not waited for.
        let pool = super::pool_options(max_connections, ACQUIRE_TIMEOUT / 3, &health)
            .connect_lazy_with(options);
        Ok(Reader {
            db: Db {
                pool,
                kind: DbKind::MySql,
                health,
                reader: None,
            },
            lag,
            recent: OnceLock::new(),
            replica_reads: AtomicU64::new(0),
            primary_reads: AtomicU64::new(0),
        })
    }

    /// The replica's breaker (its `heart_dependency_up{dependency="database_reader"}`).
    pub fn health(&self) -> &Breaker {
        &self.db.health
    }

    /// The last lag measured, or `None` while replication is not running or the replica is down.
    pub fn lag(&self) -> Option<Duration> {
        let seconds = self.lag.seconds.load(Ordering::Acquire);
        u64::try_from(seconds).ok().map(Duration::from_secs)
    }

    /// Why the replica may not serve now, if it may not: down, or behind by more than the bound.
    pub fn unusable(&self) -> Option<Bypass> {
        if !self.db.health.is_up() {
            return Some(Bypass::Unreachable);
        }
        let seconds = self.lag.seconds.load(Ordering::Acquire);
        if seconds < 0 || seconds > self.lag.max {
            return Some(Bypass::Lagging);
        }
        None
    }

    /// At most how far behind the primary the replica is now: the lag reported (whole seconds,
    /// rounded down by the server) plus one second. A change older than this is on the replica.
    pub fn lag_bound(&self) -> Option<Duration> {
        self.lag().map(|lag| lag + Duration::from_secs(1))
    }
}

/// The probe: reads the replication status on a connection of its own, publishes the lag, and
/// logs when the replica becomes usable or stops being so. `Ok` when the replica answered
/// (lagging or not): the breaker is about reachability, the lag is kept beside it.
fn lag_probe(
    options: MySqlConnectOptions,
    lag: Arc<Lag>,
) -> impl Fn() -> ProbeFuture + Send + Sync + 'static {
    use sqlx::ConnectOptions;
    let connection: Arc<tokio::sync::Mutex<Option<MySqlConnection>>> = Arc::default();
    move || -> ProbeFuture {
        let (options, connection, lag) = (options.clone(), connection.clone(), lag.clone());
        Box::pin(async move {
            let mut slot = connection.lock().await;
            let mut conn = match slot.take() {
                Some(conn) => conn,
                None => match options.connect().await {
                    Ok(conn) => conn,
                    Err(e) => {
                        publish(&lag, None);
                        return Err(e.into());
                    }
                },
            };
            match replication_lag(&mut conn).await {
                Ok(seconds) => {
                    publish(&lag, seconds);
                    *slot = Some(conn);
                    Ok::<(), BoxError>(())
                }
                Err(e) => {
                    publish(&lag, None);
                    Err(e)
                }
            }
        })
    }
}

fn publish(lag: &Lag, seconds: Option<i64>) {
    let seconds = seconds.unwrap_or(-1);
    lag.seconds.store(seconds, Ordering::Release);
    metrics::gauge!("heart_database_reader_lag_seconds").set(seconds as f64);
    let usable = (0..=lag.max).contains(&seconds);
    metrics::gauge!("heart_database_reader_usable").set(if usable { 1.0 } else { 0.0 });
    if lag.usable.swap(usable, Ordering::AcqRel) != usable {
        if usable {
            tracing::info!(lag_secs = seconds, "read replica in use");
        } else if seconds < 0 {
            tracing::warn!(
                "read replica not replicating or not answering: reads go to the primary"
            );
        } else {
            tracing::warn!(
                lag_secs = seconds,
                max_lag_secs = lag.max,
                "read replica lags beyond the bound: reads go to the primary"
            );
        }
    }
}

/// How many seconds the replica is behind, or `None` when it does not replicate now (a thread
/// stopped, or not a replica at all).
async fn replication_lag(conn: &mut MySqlConnection) -> Result<Option<i64>, BoxError> {
    // Text protocol (no prepared statement): `SHOW` is not preparable everywhere.
    let rows: Vec<MySqlRow> = match conn.fetch_all("SHOW REPLICA STATUS").await {
        Ok(rows) => rows,
        Err(sqlx::Error::Database(_)) => conn.fetch_all("SHOW SLAVE STATUS").await?,
        Err(e) => return Err(e.into()),
    };
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let running = |names: [&str; 2]| {
        names
            .iter()
            .any(|name| text(row, name).is_some_and(|v| v.eq_ignore_ascii_case("yes")))
    };
    if !running(["Slave_IO_Running", "Replica_IO_Running"])
        || !running(["Slave_SQL_Running", "Replica_SQL_Running"])
    {
        return Ok(None);
    }
    Ok(["Seconds_Behind_Master", "Seconds_Behind_Source"]
        .iter()
        .find_map(|name| text(row, name))
        .and_then(|v| v.trim().parse::<i64>().ok()))
}

/// A column of a status row as text, whatever type the server declared it with.
fn text(row: &MySqlRow, name: &str) -> Option<String> {
    if let Ok(v) = row.try_get::<Option<String>, _>(name) {
        return v;
    }
    if let Ok(v) = row.try_get::<Option<i64>, _>(name) {
        return v.map(|v| v.to_string());
    }
    row.try_get::<Option<u64>, _>(name)
        .ok()
        .flatten()
        .map(|v| v.to_string())
}

/// A query fails like this when the replica is gone: its breaker opens (the probe closes it).
pub(super) fn unreachable(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Io(_) | sqlx::Error::Tls(_))
}
