//! Feed pages read by keyset seek (sequential scrolling) or with the blocked writers listed (cold
//! deep pages) are the `OFFSET` answers, on random data with blocks, deletes, follows and ties in
//! `created_at`. Runs on SQLite, and on MariaDB when `HEART_TEST_DATABASE_URL` names it.

use std::collections::{HashMap, HashSet};

use heart_core::paging::Page;
use heart_core::post::repo::{self, Feed};
use heart_core::post::service::{self, PageRead};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

use crate::helpers::*;

/// The whole world, read back, to compute feeds without SQL.
struct World {
    /// `(id, writer, created_at)`.
    posts: Vec<(i64, i64, i64)>,
    blocks: HashSet<(i64, i64)>,
    follows: HashSet<(i64, i64)>,
    images: HashMap<i64, Vec<String>>,
    /// Suspended members: their posts leave every feed.
    suspended: HashSet<i64>,
}

impl World {
    async fn read(app: &TestApp) -> World {
        let pool = &app.state.db.pool;
        let posts = sqlx::query_as("SELECT id, writer_id, created_at FROM posts")
            .fetch_all(pool)
            .await
            .unwrap();
        let pairs = |sql: &'static str| async move {
            sqlx::query_as::<_, (i64, i64)>(sql)
                .fetch_all(pool)
                .await
                .unwrap()
                .into_iter()
                .collect::<HashSet<_>>()
        };
        let blocks = pairs("SELECT blocker_id, blocked_id FROM blocks").await;
        let follows = pairs("SELECT follower_id, followee_id FROM follows").await;
        let mut images: HashMap<i64, Vec<String>> = HashMap::new();
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT post_id, object_key FROM post_images ORDER BY post_id, position",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        for (post, key) in rows {
            images.entry(post).or_default().push(key);
        }
        let suspended: Vec<(i64,)> =
            sqlx::query_as("SELECT id FROM members WHERE suspended_at IS NOT NULL")
                .fetch_all(pool)
                .await
                .unwrap();
        World {
            posts,
            blocks,
            follows,
            images,
            suspended: suspended.into_iter().map(|(id,)| id).collect(),
        }
    }

    /// The feed's post ids in order, all of them.
    fn feed(&self, feed: Feed) -> Vec<i64> {
        let mut posts: Vec<&(i64, i64, i64)> = self
            .posts
            .iter()
            .filter(|(_, writer, _)| !self.suspended.contains(writer))
            .filter(|(_, writer, _)| match feed {
                Feed::Home { viewer } => !self.blocks.contains(&(viewer, *writer)),
                Feed::Writer { writer: w } => *writer == w,
                Feed::Following { viewer } => {
                    (*writer == viewer || self.follows.contains(&(viewer, *writer)))
                        && !self.blocks.contains(&(viewer, *writer))
                }
            })
            .collect();
        posts.sort_by_key(|p| std::cmp::Reverse((p.2, p.0)));
        posts.into_iter().map(|(id, _, _)| *id).collect()
    }

    /// How many writers a feed's listing statement returns: the viewer's blocks, then every
    /// suspended member (counted twice when both).
    fn hidden_from(&self, feed: Feed) -> usize {
        let viewer = feed.subject();
        self.blocks.iter().filter(|(a, _)| *a == viewer).count() + self.suspended.len()
    }

    fn page(&self, feed: Feed, number: i64, size: i64) -> Vec<i64> {
        self.feed(feed)
            .into_iter()
            .skip((number * size) as usize)
            .take(size as usize)
            .collect()
    }
}

/// Random posts (many sharing a second), images, follows and blocks among `members`.
async fn scatter(app: &TestApp, rng: &mut StdRng, members: &[i64], posts: usize) {
    let mut tx = app.state.db.begin().await.unwrap();
    for _ in 0..posts {
        let writer = members[rng.gen_range(0..members.len())];
        let at = 1_700_000_000 + rng.gen_range(0..40i64);
        let result = sqlx::query(
            "INSERT INTO posts (writer_id, content, created_at, updated_at) VALUES (?, 'p', ?, ?)",
        )
        .bind(writer)
        .bind(at)
        .bind(at)
        .execute(&mut *tx)
        .await
        .unwrap();
        let id = heart_core::db::inserted_id(&mut tx, &result).await.unwrap();
        for position in 0..rng.gen_range(0..3i64) {
            sqlx::query("INSERT INTO post_images (post_id, position, object_key) VALUES (?, ?, ?)")
                .bind(id)
                .bind(position)
                .bind(format!("posts/{id}-{position}.png"))
                .execute(&mut *tx)
                .await
                .unwrap();
        }
    }
    for &a in members {
        for &b in members {
            if a != b && rng.gen_bool(0.2) {
                sqlx::query("DELETE FROM follows WHERE follower_id = ? AND followee_id = ?")
                    .bind(a)
                    .bind(b)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                sqlx::query(
                    "INSERT INTO follows (follower_id, followee_id, created_at) VALUES (?, ?, 0)",
                )
                .bind(a)
                .bind(b)
                .execute(&mut *tx)
                .await
                .unwrap();
            }
        }
    }
    tx.commit().await.unwrap();
    for _ in 0..3 {
        block_someone(app, rng, members).await;
    }
    if rng.gen_bool(0.5) {
        suspend_or_restore_someone(app, rng, members).await;
    }
}

/// Suspends a random member, or restores one who is suspended (then the feed version moves, as
/// the moderation service does).
async fn suspend_or_restore_someone(app: &TestApp, rng: &mut StdRng, members: &[i64]) {
    let member = members[rng.gen_range(0..members.len())];
    sqlx::query(
        "UPDATE members SET suspended_at = CASE WHEN suspended_at IS NULL THEN 1 ELSE NULL END \
         WHERE id = ?",
    )
    .bind(member)
    .execute(&app.state.db.pool)
    .await
    .unwrap();
    app.state.feed_version.bump().await;
}

/// A random new block, as the block endpoint does it (then the feed version moves).
async fn block_someone(app: &TestApp, rng: &mut StdRng, members: &[i64]) {
    let a = members[rng.gen_range(0..members.len())];
    let b = members[rng.gen_range(0..members.len())];
    if a != b {
        sqlx::query("DELETE FROM blocks WHERE blocker_id = ? AND blocked_id = ?")
            .bind(a)
            .bind(b)
            .execute(&app.state.db.pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO blocks (blocker_id, blocked_id, created_at) VALUES (?, ?, 0)")
            .bind(a)
            .bind(b)
            .execute(&app.state.db.pool)
            .await
            .unwrap();
    }
    app.state.feed_version.bump().await;
}

/// Deletes a random post, as the delete endpoint does it (then the feed version moves).
async fn delete_some_post(app: &TestApp, rng: &mut StdRng) {
    let ids: Vec<(i64,)> = sqlx::query_as("SELECT id FROM posts")
        .fetch_all(&app.state.db.pool)
        .await
        .unwrap();
    if let Some((id,)) = ids.get(rng.gen_range(0..ids.len().max(1))) {
        repo::delete(&app.state.db, *id).await.unwrap();
    }
    app.state.feed_version.bump().await;
}

fn page(number: i64, size: i64) -> Page {
    Page {
        number,
        size,
        after: None,
    }
}

/// Checks a served page against the world: ids, images, and the cursor.
fn check(
    app: &TestApp,
    world: &World,
    feed: Feed,
    number: i64,
    size: i64,
    served: &heart_shared::wire::PostPage,
) {
    let expected = world.page(feed, number, size);
    let ids: Vec<i64> = served.posts.iter().map(|p| p.id).collect();
    assert_eq!(ids, expected, "{feed:?} page {number} size {size}");
    for post in &served.posts {
        let urls: Vec<String> = world
            .images
            .get(&post.id)
            .into_iter()
            .flatten()
            .map(|key| app.state.media_url(key))
            .collect();
        assert_eq!(post.body.image_urls, urls, "images of post {}", post.id);
    }
    assert_eq!(served.next_cursor.is_some(), expected.len() as i64 == size);
}

#[tokio::test]
async fn scrolling_seeks_and_deep_pages_answer_as_the_offset_does() {
    let app = TestApp::spawn().await;
    let mut members = Vec::new();
    for n in 0..5 {
        members.push(app.member(&format!("w{n}")).await.id);
    }
    let seed = std::env::var("HEART_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    eprintln!("HEART_TEST_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut seeks = 0;
    for _round in 0..3 {
        scatter(&app, &mut rng, &members, 120).await;
        for &viewer in &members {
            let writer = members[rng.gen_range(0..members.len())];
            for feed in [
                Feed::Home { viewer },
                Feed::Following { viewer },
                Feed::Writer { writer },
            ] {
                let size = [1, 3, 7, 10][rng.gen_range(0..4)];
                // Scroll from the top to the end; now and then a write lands in the middle.
                let mut number = 0;
                loop {
                    let write = rng.gen_bool(0.1);
                    if write {
                        match rng.gen_range(0..3) {
                            0 => delete_some_post(&app, &mut rng).await,
                            1 => block_someone(&app, &mut rng, &members).await,
                            _ => suspend_or_restore_someone(&app, &mut rng, &members).await,
                        }
                    }
                    let world = World::read(&app).await;
                    let (served, read) =
                        service::feed_read(&app.state, viewer, feed, page(number, size))
                            .await
                            .unwrap();
                    check(&app, &world, feed, number, size, &served);
                    // Page 0 remembers nothing (it is read without the feed version), so
                    // page 1 skips by offset and the seeks start at page 2.
                    let expected_read = match (number, write) {
                        (0, _) => PageRead::Top,
                        (1, _) | (_, true) => PageRead::Offset,
                        (_, false) => PageRead::Seek,
                    };
                    assert_eq!(read, expected_read, "{feed:?} page {number}");
                    seeks += usize::from(read == PageRead::Seek);
                    if served.next_cursor.is_none() {
                        break;
                    }
                    number += 1;
                }
                // Jumps to random pages: read with the offset (or a seek where one fits), same answers.
                let world = World::read(&app).await;
                let total = world.feed(feed).len() as i64;
                for _ in 0..3 {
                    let number = rng.gen_range(0..=total / size + 1);
                    let (served, read) =
                        service::feed_read(&app.state, viewer, feed, page(number, size))
                            .await
                            .unwrap();
                    check(&app, &world, feed, number, size, &served);
                    if number > 0 {
                        assert_ne!(read, PageRead::Top);
                    }
                    // The same page with the hidden writers listed (as a deep cold page is), and
                    // with a cap on the list at and just below their number: at the cap they are
                    // listed, below it the anti-join is used; both answer the same.
                    let hidden = world.hidden_from(feed);
                    for max in [repo::MAX_LISTED_BLOCKS, hidden, hidden.saturating_sub(1)] {
                        let listed = repo::feed_page_listing_hidden(
                            &app.state.db,
                            feed,
                            None,
                            size,
                            number * size,
                            repo::ListHidden {
                                past_offset: -1,
                                max,
                            },
                        )
                        .await
                        .unwrap();
                        let ids: Vec<i64> = listed.iter().map(|p| p.row.id).collect();
                        assert_eq!(
                            ids,
                            world.page(feed, number, size),
                            "listed {feed:?} page {number}, at most {max} of {hidden} listed"
                        );
                    }
                }
            }
        }
    }
    assert!(seeks > 50, "only {seeks} pages were seeks");
}
