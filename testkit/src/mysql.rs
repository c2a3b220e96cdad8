//! Per-test MySQL/MariaDB databases: each test that runs on `HEART_TEST_DATABASE_URL` creates its own
//! database and drops it when its harness is dropped, so tests never see each other's rows.

/// Creates the per-test database `name` on the MySQL `server` (`HEART_TEST_DATABASE_URL`).
pub async fn create_database(server: &str, name: &str) {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(server)
        .await
        .expect("connect to HEART_TEST_DATABASE_URL");
    sqlx::query(&format!(
        "CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
    ))
    .execute(&mut conn)
    .await
    .expect("create the test database");
}

/// Drops the per-test database `name`, ending the connections still open to it; called from
/// `Drop`, which runs inside the test's runtime, so a thread with its own runtime does the work.
pub fn drop_database(server: String, name: String) {
    let _ = std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async move {
            use sqlx::Connection;
            let Ok(mut conn) = sqlx::AnyConnection::connect(&server).await else {
                return;
            };
            // The test's app still holds its pool here (a harness's `Drop` runs before its fields
            // are dropped). A connection that went back to that pool with its rollback still
            // queued holds a metadata lock, and DROP DATABASE would wait for it forever: the
            // test's runtime, which would send the rollback, is blocked on this thread. So end
            // the database's other connections first, and never wait long for a lock.
            let others: Vec<(i64,)> = sqlx::query_as(
                "SELECT CAST(id AS SIGNED) FROM information_schema.processlist \
                 WHERE db = ? AND id <> CONNECTION_ID()",
            )
            .bind(&name)
            .fetch_all(&mut conn)
            .await
            .unwrap_or_default();
            for (id,) in others {
                let _ = sqlx::query(&format!("KILL CONNECTION {id}"))
                    .execute(&mut conn)
                    .await;
            }
            let _ = sqlx::query("SET SESSION lock_wait_timeout = 30")
                .execute(&mut conn)
                .await;
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS `{name}`"))
                .execute(&mut conn)
                .await;
        });
    })
    .join();
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sqlx::Connection;

    use super::*;

    /// Only with `HEART_TEST_DATABASE_URL` (a MySQL/MariaDB server); passes trivially without one.
    #[tokio::test]
    async fn a_transaction_left_open_on_the_database_does_not_stop_the_drop() {
        let Ok(server) = std::env::var("HEART_TEST_DATABASE_URL") else {
            return;
        };
        let server = server.trim_end_matches('/').to_owned();
        let name = format!("heart_test_testkit_{:08x}", rand::random::<u32>());
        create_database(&server, &name).await;
        let mut held = sqlx::AnyConnection::connect(&format!("{server}/{name}"))
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (id INT)")
            .execute(&mut held)
            .await
            .unwrap();
        // An open transaction that read the table holds its metadata lock until it ends.
        sqlx::query("BEGIN").execute(&mut held).await.unwrap();
        sqlx::query("SELECT id FROM t")
            .fetch_all(&mut held)
            .await
            .unwrap();

        let drop = tokio::task::spawn_blocking({
            let (server, name) = (server.clone(), name.clone());
            move || drop_database(server, name)
        });
        tokio::time::timeout(Duration::from_secs(60), drop)
            .await
            .expect("DROP DATABASE waited for the open transaction")
            .unwrap();

        let mut conn = sqlx::AnyConnection::connect(&server).await.unwrap();
        let left: Vec<(String,)> = sqlx::query_as(
            "SELECT schema_name FROM information_schema.schemata WHERE schema_name = ?",
        )
        .bind(&name)
        .fetch_all(&mut conn)
        .await
        .unwrap();
        assert!(left.is_empty(), "{name} is still there");
    }
}
