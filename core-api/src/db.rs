//! The database: SQLite (embedded default) or MySQL/MariaDB, behind one sqlx `Any` pool.
//!
//! Queries are written once in the SQL both dialects share (`?` placeholders, no `RETURNING`,
//! integer timestamps); the few statements that differ branch on [`DbKind`]. Each dialect has its
//! own migrations folder, applied at startup. Never edit an applied migration: add a new one.

use std::str::FromStr;
use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::AnyPool;

use crate::config::Config;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static MYSQL_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/mysql");

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
    pub pool: AnyPool,
    /// The dialect.
    pub kind: DbKind,
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
        let pool = AnyPoolOptions::new()
            .max_connections(config.database_max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        let db = Db { pool, kind };
        db.migrate().await?;
        Ok(db)
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
        migrator.run(&self.pool).await?;
        Ok(())
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    /// Whether `error` is a violation of a unique constraint (a duplicate).
    pub fn is_unique_violation(error: &sqlx::Error) -> bool {
        matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
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
