//! The database: SQLite (embedded default) or MySQL/MariaDB, behind one sqlx `Any` pool.
//!
//! Queries are written once in the SQL both dialects share (`?` placeholders, no `RETURNING`,
//! integer timestamps); the few statements that differ branch on [`DbKind`]. Each dialect has its
//! own migrations folder, applied at startup. Never edit an applied migration: add a new one.
//!
//! With `HEART_DATABASE_READ_URL` the [`Db`] also has a [`Reader`] (a MySQL/MariaDB replica):
//! services run the reads it may serve (feeds, profiles, lists) through [`Db::read`], which
//! picks the replica or the primary per read; everything else uses `pool`, the primary.

mod deadlocks;
mod recent_writes;
mod replica;

use std::future::Future;
use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::AnyPool;

use crate::config::Config;
use crate::health::{Breaker, ProbePolicy};
pub use deadlocks::{is_deadlock, retrying_deadlocks, DEADLOCK_TRIES};
pub use recent_writes::RecentWrites;
pub use replica::{Bypass, Reader};

/// How long a request waits for a pooled connection (or a new one) before `GLOBAL_503`.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// Idle connections close after this (before the server's `wait_timeout` kills them).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Connections are replaced after this (failovers, DNS changes).
pub const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// How the database is probed: every 500 ms while up, with `SELECT 1` on a connection of its own;
/// a probe that has no answer within 500 ms has failed, two failures in a row (the second 100 ms
/// after the first) open the breaker, and while down it is probed every 100 ms. A stalled or
/// packet-losing database is so found 1.1–1.6 s after it stopped answering (a killed one at the
/// first request's I/O error). A healthy MySQL answers `SELECT 1` in about a millisecond, under
/// load too (the probe does not wait for the pool); two answers over 500 ms in a row mean the
/// database is not serving anyway. `docs/faults.md` has the measurements.
pub const PROBE_POLICY: ProbePolicy = ProbePolicy {
    retry: Duration::from_millis(100),
    watch: Some(Duration::from_millis(500)),
    timeout: Duration::from_millis(500),
    failures_to_open: 2,
    successes_to_close: 1,
};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static MYSQL_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/mysql");

/// The name of the lock that serialises the migrations of cores starting at once on one MySQL
/// database (an SQL expression: a lock per database, within the server's 64-character limit).
pub const MIGRATION_LOCK: &str = "LEFT(CONCAT('heart-migrations:', DATABASE()), 64)";
/// How long a starting core waits for another core's migrations before it gives up (and its
/// orchestrator restarts it).
pub const MIGRATION_LOCK_WAIT_SECS: i64 = 600;

/// Applies `migrator` holding [`MIGRATION_LOCK`] on the migrating connection. sqlx's MySQL
/// migrator locks with `GET_LOCK(…, -1)` and ignores the answer; MariaDB answers a negative
/// timeout with `NULL` at once instead of waiting, so on MariaDB two replicas starting together
/// would both apply the same migration. This lock waits (finitely) and is checked.
async fn migrate_under_lock(pool: &AnyPool, migrator: &Migrator) -> Result<(), sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let locked: Option<i64> = sqlx::query_scalar(&format!(
        "SELECT CAST(GET_LOCK({MIGRATION_LOCK}, ?) AS SIGNED)"
    ))
    .bind(MIGRATION_LOCK_WAIT_SECS)
    .fetch_one(&mut *conn)
    .await?;
    if locked != Some(1) {
        return Err(sqlx::Error::Configuration(
            format!("another core held the migrations' lock for {MIGRATION_LOCK_WAIT_SECS} s")
                .into(),
        ));
    }
    let applied = migrator.run_direct(&mut *conn).await;
    // Also released when the connection closes, should this fail.
    sqlx::query(&format!("SELECT RELEASE_LOCK({MIGRATION_LOCK})"))
        .execute(&mut *conn)
        .await?;
    Ok(applied?)
}

/// The pool's settings, for the primary and the replica alike. No ping per acquire: a dead
/// connection fails its query, which opens `health`'s breaker; connections opened before the
/// database last came back (`Breaker::up_since`) are dropped instead of used.
fn pool_options(
    max_connections: u32,
    acquire_timeout: Duration,
    health: &Breaker,
) -> AnyPoolOptions {
    let since = health.clone();
    AnyPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire_timeout)
        .idle_timeout(IDLE_TIMEOUT)
        .max_lifetime(MAX_LIFETIME)
        .test_before_acquire(false)
        // A feed page's image keys come joined by `GROUP_CONCAT`, which MySQL 8 cuts at 1,024
        // bytes by default (`post::repo::IMAGE_KEY_SEPARATOR`): raised once per connection.
        .after_connect(|conn, _| {
            Box::pin(async move {
                if conn.backend_name().eq_ignore_ascii_case("mysql") {
                    sqlx::Executor::execute(conn, RAISE_GROUP_CONCAT_MAX_LEN).await?;
                }
                Ok(())
            })
        })
        .before_acquire(move |_, meta| {
            let fresh = meta.age < since.up_since().elapsed();
            Box::pin(async move { Ok::<bool, sqlx::Error>(fresh) })
        })
}

/// Run on every new MySQL connection: see `pool_options`.
const RAISE_GROUP_CONCAT_MAX_LEN: &str = "SET SESSION group_concat_max_len = 1048576";

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    /// SQLite file.
    Sqlite,
    /// MySQL 8 or MariaDB ≥ 10.6.
    MySql,
}

impl DbKind {
    /// The backend's name, for logs and `/readyz`.
    pub fn name(self) -> &'static str {
        match self {
            DbKind::Sqlite => "sqlite",
            DbKind::MySql => "mysql",
        }
    }
}

/// The connection pool and what it talks to.
#[derive(Debug, Clone)]
pub struct Db {
    /// The primary: every write, and every read not routed by [`Db::read`].
    pub pool: AnyPool,
    /// The dialect.
    pub kind: DbKind,
    /// Up or down; requests short-circuit while down (see [`crate::ops::database_gate`]).
    pub health: Breaker,
    /// The read replica, when one is configured.
    reader: Option<Arc<Reader>>,
}

impl Db {
    /// Connects, creating the SQLite file's folder if needed, and applies the migrations.
    pub async fn connect(config: &Config) -> Result<Db, sqlx::Error> {
        sqlx::any::install_default_drivers();
        let url = config.database_url.expose_secret();
        let kind = if url.starts_with("sqlite:") {
            DbKind::Sqlite
        } else {
            DbKind::MySql
        };
        if kind == DbKind::Sqlite {
            std::fs::create_dir_all(&config.data_dir).map_err(sqlx::Error::Io)?;
        }
        let url = url.replacen("mariadb://", "mysql://", 1);
        let options = AnyConnectOptions::from_str(&url)?;
        let health = Breaker::new("database", probe_policy(kind), probe(options.clone()));
        let pool = pool_options(config.database_max_connections, ACQUIRE_TIMEOUT, &health)
            .connect_with(options)
            .await?;
        let reader = match (&config.database_read.url, kind) {
            (Some(url), DbKind::MySql) => Some(Arc::new(Reader::connect(
                url.expose_secret(),
                config.database_max_connections,
                config.database_read.max_lag,
            )?)),
            _ => None,
        };
        let db = Db {
            pool,
            kind,
            health,
            reader,
        };
        db.migrate().await?;
        Ok(db)
    }

    /// Begins a transaction on the primary. Every transaction of the service starts here, never
    /// with `pool.begin()` (clippy's `disallowed-methods` says so).
    ///
    /// Cancel-safe: the `BEGIN` runs in a task of its own, so a request dropped while it is in
    /// flight (client gone, time limit, breaker) cannot leave the server inside a transaction that
    /// sqlx does not know about. sqlx counts a transaction only once `BEGIN` has answered; a
    /// connection whose `BEGIN` was cancelled before that went back to the pool still in the
    /// transaction, and every later statement on it — reads from an old snapshot, autocommit
    /// writes never committed — was part of it. Here the task finishes the `BEGIN`, and when
    /// nobody is left to take the transaction it is dropped, which queues its `ROLLBACK`.
    ///
    /// On SQLite the transaction takes the write lock at once (`BEGIN IMMEDIATE`), waiting for it
    /// up to the busy timeout: every transaction begun here writes, and a deferred one that read
    /// first failed its first write at once with `SQLITE_BUSY` (a `503`) when another transaction
    /// had written meanwhile (two members replacing avatars, or deleting accounts, at once).
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        let pool = self.pool.clone();
        let statement = match self.kind {
            DbKind::Sqlite => "BEGIN IMMEDIATE",
            DbKind::MySql => "BEGIN",
        };
        #[allow(clippy::disallowed_methods)] // the one place it is called
        let begun = tokio::spawn(async move { pool.begin_with(statement).await });
        match begun.await {
            Ok(result) => result,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(_) => Err(sqlx::Error::PoolClosed), // the runtime is shutting down
        }
    }

    /// The replica, when one is configured.
    pub fn reader(&self) -> Option<&Reader> {
        self.reader.as_deref()
    }

    /// Keeps the read-your-writes marks in `recent` (set once, at startup, when the cache exists).
    pub fn track_recent_writes(&self, recent: RecentWrites) {
        if let Some(reader) = &self.reader {
            let _ = reader.recent.set(recent);
        }
    }

    /// `member_id` wrote: their reads go to the primary for the read-your-writes window. Nothing
    /// to do without a replica.
    pub async fn mark_write(&self, member_id: i64) {
        if let Some(recent) = self.reader.as_ref().and_then(|r| r.recent.get()) {
            recent.mark(member_id).await;
        }
    }

    /// Runs the read `query` for `viewer` on the replica when it may serve it, else on the primary
    /// (see [`Db::read_settled`]).
    pub async fn read<T, F, Fut>(&self, viewer: Option<i64>, query: F) -> Result<T, sqlx::Error>
    where
        F: Fn(Db) -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        self.route(viewer, Settled::NotAsked, query).await
    }

    /// [`Db::read`] for something that may not exist: a replica that lags may not have it yet,
    /// so an absence is only believed from the primary (a profile answering `MEMBER_005` logs the
    /// app out). Misses cost one more query, on the primary; hits none.
    pub async fn read_found<T, F, Fut>(
        &self,
        viewer: Option<i64>,
        query: F,
    ) -> Result<Option<T>, sqlx::Error>
    where
        F: Fn(Db) -> Fut,
        Fut: Future<Output = Result<Option<T>, sqlx::Error>>,
    {
        match self.read(viewer, &query).await? {
            None if self.reader.is_some() => query(self.clone()).await,
            found => Ok(found),
        }
    }

    /// Runs `query` on the replica when one is configured and usable (answering, replicating, lag
    /// within the bound), `viewer` did not write within the read-your-writes window, and — when
    /// `unchanged_for` is given — what the read shows last changed longer ago than the replica may
    /// lag (feed pages the edge caches: see `post::service::page_rows`); `None`: unknown. Else on
    /// the primary. A query that fails on the replica, or is in flight when the replica's breaker
    /// opens, runs once more on the primary: a replica's death fails no request.
    pub async fn read_settled<T, F, Fut>(
        &self,
        viewer: Option<i64>,
        unchanged_for: Option<Duration>,
        query: F,
    ) -> Result<T, sqlx::Error>
    where
        F: Fn(Db) -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        self.route(viewer, Settled::For(unchanged_for), query).await
    }

    async fn route<T, F, Fut>(
        &self,
        viewer: Option<i64>,
        settled: Settled,
        query: F,
    ) -> Result<T, sqlx::Error>
    where
        F: Fn(Db) -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        let Some(reader) = &self.reader else {
            return query(self.clone()).await;
        };
        let bypass = match reader.unusable() {
            Some(bypass) => Some(bypass),
            None => match (settled, reader.lag_bound()) {
                (Settled::NotAsked, _) => None,
                (Settled::For(Some(age)), Some(bound)) if age > bound => None,
                (Settled::For(_), _) => Some(Bypass::RecentChange),
            },
        };
        let bypass = match (bypass, viewer, reader.recent.get()) {
            (None, Some(member), Some(recent)) if recent.wrote_recently(member).await => {
                Some(Bypass::RecentWrite)
            }
            (bypass, _, _) => bypass,
        };
        if let Some(bypass) = bypass {
            return self.read_on_primary(reader, bypass, query).await;
        }
        let opened = reader.health().opened();
        let outcome = tokio::select! {
            biased;
            outcome = query(reader.db.clone()) => outcome,
            () = opened => Err(sqlx::Error::PoolClosed),
        };
        match outcome {
            // A read is idempotent: whatever failed it on the replica (gone, or a table its
            // replication has not created yet), the primary answers it.
            Err(error) => {
                if replica::unreachable(&error) {
                    reader.health().trip(&error.to_string());
                }
                tracing::warn!(error = %error, "read failed on the replica; retried on the primary");
                self.read_on_primary(reader, Bypass::Retried, query).await
            }
            outcome => {
                reader.replica_reads.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("heart_database_reads_total", "target" => "replica").increment(1);
                outcome
            }
        }
    }

    async fn read_on_primary<T, F, Fut>(
        &self,
        reader: &Reader,
        bypass: Bypass,
        query: F,
    ) -> Result<T, sqlx::Error>
    where
        F: Fn(Db) -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        reader.primary_reads.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("heart_database_reads_total", "target" => "primary", "reason" => bypass.label())
            .increment(1);
        query(self.clone()).await
    }

    /// Reads served by the replica and reads routed to the primary since start (0, 0 without one).
    pub fn read_counts(&self) -> (u64, u64) {
        self.reader.as_ref().map_or((0, 0), |r| {
            (
                r.replica_reads.load(Ordering::Relaxed),
                r.primary_reads.load(Ordering::Relaxed),
            )
        })
    }

    async fn migrate(&self) -> Result<(), sqlx::Error> {
        if self.kind == DbKind::Sqlite {
            // WAL lets readers run beside the writer; it persists in the file.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&self.pool)
                .await?;
        }
        let migrator = match self.kind {
            DbKind::Sqlite => &SQLITE_MIGRATIONS,
            DbKind::MySql => &MYSQL_MIGRATIONS,
        };
        match self.kind {
            // `run_direct` on a connection: `run(&pool)` makes the future not `Send` for every
            // lifetime, so a core could not be started on a spawned task.
            DbKind::Sqlite => {
                migrator
                    .run_direct(&mut *self.pool.acquire().await?)
                    .await?
            }
            DbKind::MySql => migrate_under_lock(&self.pool, migrator).await?,
        }
        Ok(())
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    /// Whether the database can serve, for `/readyz`: the pool is open, the breaker closed, and
    /// `SELECT 1` answers on the probe's own connection (a saturated pool is not an outage).
    pub async fn check(&self) -> Result<(), crate::error::BoxError> {
        if self.pool.is_closed() {
            return Err("the pool is closed".into());
        }
        self.health.check().await
    }

    /// Whether `error` is a violation of a unique constraint (a duplicate).
    pub fn is_unique_violation(error: &sqlx::Error) -> bool {
        matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
    }
}

/// Whether a read needs what it shows to have been unchanged for longer than the replica may lag.
#[derive(Debug, Clone, Copy)]
enum Settled {
    NotAsked,
    For(Option<Duration>),
}

/// SQLite is a file: only MySQL is watched while up.
fn probe_policy(kind: DbKind) -> ProbePolicy {
    match kind {
        DbKind::MySql => PROBE_POLICY,
        DbKind::Sqlite => ProbePolicy {
            watch: None,
            ..PROBE_POLICY
        },
    }
}

/// `SELECT 1` on a connection of its own (a busy pool is not an outage), reopened after a failure.
fn probe(
    options: AnyConnectOptions,
) -> impl Fn() -> crate::health::ProbeFuture + Send + Sync + 'static {
    use sqlx::ConnectOptions;
    let connection: std::sync::Arc<tokio::sync::Mutex<Option<sqlx::AnyConnection>>> =
        std::sync::Arc::default();
    move || -> crate::health::ProbeFuture {
        let (options, connection) = (options.clone(), connection.clone());
        Box::pin(async move {
            let mut slot = connection.lock().await;
            let mut conn = match slot.take() {
                Some(conn) => conn,
                None => options.connect().await?,
            };
            sqlx::query("SELECT 1").execute(&mut conn).await?;
            *slot = Some(conn);
            Ok::<(), crate::error::BoxError>(())
        })
    }
}

/// The id the last `INSERT` on `conn` generated. MySQL reports it with the result; SQLite through
/// `Any` does not, so it is asked for on the same connection.
pub async fn inserted_id(
    conn: &mut sqlx::AnyConnection,
    result: &sqlx::any::AnyQueryResult,
) -> Result<i64, sqlx::Error> {
    if let Some(id) = result.last_insert_id() {
        return Ok(id);
    }
    let (id,): (i64,) = sqlx::query_as("SELECT last_insert_rowid()")
        .fetch_one(&mut *conn)
        .await?;
    Ok(id)
}
