//! The feeds read their indexes: no table scan, no sort, whatever the depth. Checked with the
//! database's own query planner, on SQLite by default and on MySQL/MariaDB in the real-backend run.

use heart_core::db::DbKind;
use heart_core::paging::Cursor;
use heart_core::post::repo::{feed_ids_sql, feed_page_sql, Blocked, Feed, FeedQuery};
use sqlx::Row;

use crate::helpers::*;

/// Fills the tables enough that the planner's choices are the ones it makes in production.
async fn seed(app: &TestApp) -> (i64, i64) {
    let (kim, lee) = (app.member("kim").await, app.member("lee").await);
    let db = &app.state.db;
    let mut tx = db.begin().await.unwrap();
    // Members enough that reading writers by key beats scanning them, as in production.
    let mut others = Vec::new();
    for i in 0..500i64 {
        let result = sqlx::query(
            "INSERT INTO members (email, name, nickname, password_hash, created_at, updated_at) \
             VALUES (?, 'n', 'n', 'x', 0, 0)",
        )
        .bind(format!("plan-{i}@example.com"))
        .execute(&mut *tx)
        .await
        .unwrap();
        others.push(heart_core::db::inserted_id(&mut tx, &result).await.unwrap());
    }
    for i in 0..3000i64 {
        let writer = match i % 3 {
            0 => lee.id,
            1 => kim.id,
            _ => others[(i as usize) % others.len()],
        };
        let result = sqlx::query(
            "INSERT INTO posts (writer_id, content, created_at, updated_at) VALUES (?, 'x', ?, ?)",
        )
        .bind(writer)
        .bind(1_700_000_000 + i / 2)
        .bind(1_700_000_000 + i / 2)
        .execute(&mut *tx)
        .await
        .unwrap();
        let post = heart_core::db::inserted_id(&mut tx, &result).await.unwrap();
        for position in 0..(i % 3) {
            sqlx::query("INSERT INTO post_images (post_id, position, object_key) VALUES (?, ?, ?)")
                .bind(post)
                .bind(position)
                .bind(format!("posts/{post}-{position}.png"))
                .execute(&mut *tx)
                .await
                .unwrap();
        }
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
        DbKind::MySql => "ANALYZE TABLE posts, post_images, follows, blocks, members",
    };
    sqlx::query(analyze).fetch_all(&db.pool).await.unwrap();
    (kim.id, lee.id)
}

/// A feed query as the core sends it.
fn query(feed: Feed, keyset: bool, blocked: Blocked<'_>, offset: i64) -> FeedQuery<'_> {
    FeedQuery {
        feed,
        after: keyset.then_some(Cursor {
            created_at: 1_700_000_500,
            id: 1000,
        }),
        blocked,
        size: 10,
        offset,
    }
}

/// The planner's description of `sql` with `binds`, one line per step.
async fn explain(app: &TestApp, (sql, binds): (String, Vec<i64>)) -> Vec<String> {
    let explain = match app.state.db.kind {
        DbKind::Sqlite => format!("EXPLAIN QUERY PLAN {sql}"),
        DbKind::MySql => format!("EXPLAIN {sql}"),
    };
    let mut query = sqlx::query(&explain);
    for bind in binds {
        query = query.bind(bind);
    }
    let rows = query.fetch_all(&app.state.db.pool).await.unwrap();
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

async fn plan(app: &TestApp, query: FeedQuery<'_>) -> Vec<String> {
    explain(app, feed_ids_sql(&query, app.state.db.kind)).await
}

#[tokio::test]
async fn every_feed_reads_its_index_at_any_depth() {
    let app = TestApp::spawn().await;
    let (kim, lee) = seed(&app).await;
    let home = Feed::Home { viewer: kim };
    for offset in [0, 2_000] {
        for blocked in [
            Blocked::AntiJoin,
            Blocked::Listed(&[]),
            Blocked::Listed(&[lee, 999]),
        ] {
            assert_uses_index(
                &plan(&app, query(home, false, blocked, offset)).await,
                "posts_feed_idx",
            );
        }
        assert_uses_index(
            &plan(
                &app,
                query(
                    Feed::Writer { writer: lee },
                    false,
                    Blocked::AntiJoin,
                    offset,
                ),
            )
            .await,
            "posts_writer_feed_idx",
        );
    }
    assert_uses_index(
        &plan(&app, query(home, true, Blocked::AntiJoin, 0)).await,
        "posts_feed_idx",
    );
    assert_uses_index(
        &plan(
            &app,
            query(Feed::Writer { writer: lee }, true, Blocked::AntiJoin, 0),
        )
        .await,
        "posts_writer_feed_idx",
    );
}

/// A cold deep page that lists the blocked writers and the suspended members reads the covering
/// feed index alone: on MySQL the posts step is "Using index" (no row is read for the offset), on
/// SQLite a covering index; neither `blocks` nor `members` is read.
#[tokio::test]
async fn a_listed_block_filter_is_checked_on_the_covering_index() {
    let app = TestApp::spawn().await;
    let (kim, lee) = seed(&app).await;
    let home = Feed::Home { viewer: kim };
    // Unlisted, the suspended writers' subquery reads `members_suspended_idx`.
    let unlisted = plan(&app, query(home, false, Blocked::AntiJoin, 2_000)).await;
    let text = unlisted.join("\n");
    assert!(text.contains("members_suspended_idx"), "{text}");
    let plan = plan(&app, query(home, false, Blocked::Listed(&[lee]), 2_000)).await;
    let text = plan.join("\n");
    assert!(!text.contains("blocks"), "no anti-join:\n{text}");
    assert!(
        !text.contains("members_suspended_idx"),
        "no suspended subquery:\n{text}"
    );
    match app.state.db.kind {
        DbKind::Sqlite => assert!(text.contains("COVERING INDEX posts_feed_idx"), "{text}"),
        DbKind::MySql => assert!(
            text.contains("key=posts_feed_idx") && text.contains("Using index"),
            "{text}"
        ),
    }
}

/// The whole page (posts, writers, image keys) is one statement whose posts step reads the feed's
/// index; writers, blocks and images are read by key. At the top or after a seek it is the flat
/// form (no sort at all), behind an offset the ids-first form (only the page's own rows sorted).
#[tokio::test]
async fn a_feed_page_is_one_statement_on_the_indexes() {
    let app = TestApp::spawn().await;
    let (kim, lee) = seed(&app).await;
    for (feed, index) in [
        (Feed::Home { viewer: kim }, "posts_feed_idx"),
        (Feed::Writer { writer: lee }, "posts_writer_feed_idx"),
        (Feed::Following { viewer: kim }, "posts_"),
    ] {
        for (keyset, offset) in [(false, 0), (false, 2_000), (true, 0)] {
            let plan = explain(
                &app,
                feed_page_sql(
                    &query(feed, keyset, Blocked::AntiJoin, offset),
                    app.state.db.kind,
                ),
            )
            .await;
            let text = plan.join("\n");
            assert!(text.contains(index), "{feed:?}: expected {index}:\n{text}");
            assert!(
                !plan.iter().any(|line| (["p", "m", "i", "b"]
                    .iter()
                    .any(|table| { line.split_whitespace().take(2).eq(["SCAN", table]) })
                    && !line.contains("INDEX"))
                    || ((line.contains("table=p ")
                        || line.contains("table=m ")
                        || line.contains("table=i ")
                        || line.contains("table=b "))
                        && line.contains("type=ALL"))),
                "{feed:?}: a table is scanned:\n{text}"
            );
            if offset == 0 && !matches!(feed, Feed::Following { .. }) {
                // (SQLite's `USE TEMP B-TREE FOR group_concat(ORDER BY)` orders one post's few
                // image keys; the page itself must come in index order.)
                assert!(
                    !text.contains("TEMP B-TREE FOR ORDER BY")
                        && !text.contains("Using temporary")
                        && !text.contains("Using filesort")
                        && !text.contains("MATERIALIZE"),
                    "{feed:?}: the flat page sorts or materialises:\n{text}"
                );
            }
        }
    }
}

/// The following feed reads each followed writer's posts through `posts_writer_feed_idx` and sorts
/// only those (fan-out on read); it never scans the posts table.
#[tokio::test]
async fn the_following_feed_only_searches_indexes() {
    let app = TestApp::spawn().await;
    let (kim, _) = seed(&app).await;
    let plan = plan(
        &app,
        query(Feed::Following { viewer: kim }, false, Blocked::AntiJoin, 0),
    )
    .await;
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
