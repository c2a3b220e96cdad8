//! The feeds read their indexes: no table scan, no sort, whatever the depth. Checked with the
//! database's own query planner, on SQLite by default and on MySQL/MariaDB in the real-backend run.

use heart_core::db::DbKind;
use heart_core::post::repo::{feed_ids_sql, Feed};
use sqlx::Row;

use crate::helpers::*;

/// Fills the tables enough that the planner's choices are the ones it makes in production.
async fn seed(app: &TestApp) -> (i64, i64) {
    let (kim, lee) = (app.member("kim").await, app.member("lee").await);
    let db = &app.state.db;
    let mut tx = db.pool.begin().await.unwrap();
    for i in 0..3000i64 {
        let writer = if i % 3 == 0 { lee.id } else { kim.id };
        sqlx::query(
            "INSERT INTO posts (writer_id, content, created_at, updated_at) VALUES (?, 'x', ?, ?)",
        )
        .bind(writer)
        .bind(1_700_000_000 + i / 2)
        .bind(1_700_000_000 + i / 2)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    sqlx::query("INSERT INTO follows (follower_id, followee_id, created_at) VALUES (?, ?, 0)")
        .bind(kim.id)
        .bind(lee.id)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let analyze = match db.kind {
        DbKind::Sqlite => "ANALYZE",
        DbKind::MySql => "ANALYZE TABLE posts, follows, blocks, members",
    };
    sqlx::query(analyze).fetch_all(&db.pool).await.unwrap();
    (kim.id, lee.id)
}

/// The planner's description of the feed's id query, one line per step.
async fn plan(app: &TestApp, feed: Feed, keyset: bool, offset: i64) -> Vec<String> {
    let (sql, subject_binds) = feed_ids_sql(feed, keyset);
    let explain = match app.state.db.kind {
        DbKind::Sqlite => format!("EXPLAIN QUERY PLAN {sql}"),
        DbKind::MySql => format!("EXPLAIN {sql}"),
    };
    let mut query = sqlx::query(&explain);
    for _ in 0..subject_binds {
        query = query.bind(feed.subject());
    }
    if keyset {
        query = query
            .bind(1_700_000_500i64)
            .bind(1_700_000_500i64)
            .bind(1000i64);
    }
    let rows = query
        .bind(10i64)
        .bind(offset)
        .fetch_all(&app.state.db.pool)
        .await
        .unwrap();
    rows.iter()
        .map(|row| match app.state.db.kind {
            DbKind::Sqlite => row.try_get::<String, _>("detail").unwrap(),
            DbKind::MySql => format!(
                "table={} type={} key={} extra={}",
                row.try_get::<Option<String>, _>("table")
                    .unwrap()
                    .unwrap_or_default(),
                row.try_get::<Option<String>, _>("type")
                    .unwrap()
                    .unwrap_or_default(),
                row.try_get::<Option<String>, _>("key")
                    .unwrap()
                    .unwrap_or_default(),
                row.try_get::<Option<String>, _>("Extra")
                    .unwrap()
                    .unwrap_or_default(),
            ),
        })
        .collect()
}

#[track_caller]
fn assert_uses_index(plan: &[String], index: &str) {
    let text = plan.join("\n");
    assert!(
        text.contains(index),
        "expected {index} in the plan:\n{text}"
    );
    assert!(
        !text.contains("TEMP B-TREE") && !text.contains("filesort"),
        "the feed must not sort:\n{text}"
    );
    let posts_steps: Vec<&String> = plan
        .iter()
        .filter(|line| line.contains("posts") || line.contains("table=p "))
        .collect();
    assert!(
        posts_steps.iter().all(|line| !line.starts_with("SCAN p\n")
            && *line != "SCAN p"
            && !line.contains("type=ALL")),
        "no full scan of posts:\n{text}"
    );
}

#[tokio::test]
async fn every_feed_reads_its_index_at_any_depth() {
    let app = TestApp::spawn().await;
    let (kim, lee) = seed(&app).await;
    for offset in [0, 2_000] {
        assert_uses_index(
            &plan(&app, Feed::Home { viewer: kim }, false, offset).await,
            "posts_feed_idx",
        );
        assert_uses_index(
            &plan(&app, Feed::Writer { writer: lee }, false, offset).await,
            "posts_writer_feed_idx",
        );
    }
    assert_uses_index(
        &plan(&app, Feed::Home { viewer: kim }, true, 0).await,
        "posts_feed_idx",
    );
    assert_uses_index(
        &plan(&app, Feed::Writer { writer: lee }, true, 0).await,
        "posts_writer_feed_idx",
    );
}

/// The following feed reads each followed writer's posts through `posts_writer_feed_idx` and sorts
/// only those (fan-out on read); it never scans the posts table.
#[tokio::test]
async fn the_following_feed_only_searches_indexes() {
    let app = TestApp::spawn().await;
    let (kim, _) = seed(&app).await;
    let plan = plan(&app, Feed::Following { viewer: kim }, false, 0).await;
    let text = plan.join("\n");
    assert!(
        text.contains("posts_writer_feed_idx") || text.contains("posts_feed_idx"),
        "{text}"
    );
    assert!(
        !plan.iter().any(|line| line == "SCAN p"
            || line.starts_with("SCAN p ")
            || (line.contains("table=p ") && line.contains("type=ALL"))),
        "{text}"
    );
}
