//! Queries on `posts` and `post_images`, and the feeds.

use std::collections::HashMap;

use sqlx::FromRow;

use crate::db::Db;
use crate::paging::Page;

/// A post joined with its writer.
#[derive(Debug, Clone, FromRow)]
pub struct PostRow {
    /// Post id.
    pub id: i64,
    pub writer_id: i64,
    pub writer_email: String,
    pub writer_nickname: String,
    pub writer_avatar_key: Option<String>,
    /// Text.
    pub content: String,
    /// Created, epoch seconds.
    pub created_at: i64,
    /// Updated, epoch seconds.
    pub updated_at: i64,
}

/// Which posts a feed shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    /// Every post, minus writers the viewer blocks.
    Home {
        viewer: i64,
    },
    /// One writer's posts.
    Writer {
        writer: i64,
    },
    /// Posts by the members the viewer follows, and the viewer's own, minus blocked writers.
    Following {
        viewer: i64,
    },
}

const SELECT_POSTS: &str =
    "SELECT p.id, p.writer_id, m.email AS writer_email, m.nickname AS writer_nickname, \
     m.avatar_key AS writer_avatar_key, p.content, p.created_at, p.updated_at \
     FROM posts p JOIN members m ON m.id = p.writer_id";

/// One page of `feed`, newest first with the id as tie-break.
///
/// The page's ids are found first on the feed's index alone (a deep offset skips index entries,
/// not rows), then only those rows are read with their writers.
/// The SQL that finds a feed page's post ids (ordered, limited, offset), and how many times it
/// binds the feed's subject before the optional cursor `(created_at, created_at, id)`, size and offset.
pub fn feed_ids_sql(feed: Feed, keyset: bool) -> (String, usize) {
    let (filter, subject_binds) = match feed {
        Feed::Home { .. } => ("NOT EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = ? AND b.blocked_id = p.writer_id)", 1),
        Feed::Writer { .. } => ("p.writer_id = ?", 1),
        Feed::Following { .. } => (
            "(p.writer_id = ? OR p.writer_id IN (SELECT f.followee_id FROM follows f WHERE f.follower_id = ?)) \
             AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = ? AND b.blocked_id = p.writer_id)",
            3,
        ),
    };
    let keyset = if keyset {
        " AND (p.created_at < ? OR (p.created_at = ? AND p.id < ?))"
    } else {
        ""
    };
    (format!("SELECT p.id FROM posts p WHERE {filter}{keyset} ORDER BY p.created_at DESC, p.id DESC LIMIT ? OFFSET ?"), subject_binds)
}

impl Feed {
    /// The member the feed is about (viewer or writer).
    pub fn subject(self) -> i64 {
        match self {
            Feed::Home { viewer } | Feed::Following { viewer } => viewer,
            Feed::Writer { writer } => writer,
        }
    }
}

pub async fn feed_page(db: &Db, feed: Feed, page: Page) -> Result<Vec<PostRow>, sqlx::Error> {
    let (ids_sql, subject_binds) = feed_ids_sql(feed, page.after.is_some());
    let subject = feed.subject();
    let mut ids_query = sqlx::query_as::<_, (i64,)>(&ids_sql);
    for _ in 0..subject_binds {
        ids_query = ids_query.bind(subject);
    }
    if let Some(after) = page.after {
        ids_query = ids_query
            .bind(after.created_at)
            .bind(after.created_at)
            .bind(after.id);
    }
    let ids: Vec<i64> = ids_query
        .bind(page.size)
        .bind(page.offset())
        .fetch_all(&db.pool)
        .await?
        .into_iter()
        .map(|(id,)| id)
        .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders = vec!["?"; ids.len()].join(", ");
    let rows_sql = format!(
        "{SELECT_POSTS} WHERE p.id IN ({placeholders}) ORDER BY p.created_at DESC, p.id DESC"
    );
    let mut rows_query = sqlx::query_as::<_, PostRow>(&rows_sql);
    for id in &ids {
        rows_query = rows_query.bind(id);
    }
    rows_query.fetch_all(&db.pool).await
}

/// One post with its writer.
pub async fn find(db: &Db, id: i64) -> Result<Option<PostRow>, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT_POSTS} WHERE p.id = ?"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await
}

/// The image keys of `post_ids`, each list in upload order.
pub async fn image_keys(
    db: &Db,
    post_ids: &[i64],
) -> Result<HashMap<i64, Vec<String>>, sqlx::Error> {
    let mut keys: HashMap<i64, Vec<String>> = HashMap::new();
    if post_ids.is_empty() {
        return Ok(keys);
    }
    let placeholders = vec!["?"; post_ids.len()].join(", ");
    let sql = format!("SELECT post_id, object_key FROM post_images WHERE post_id IN ({placeholders}) ORDER BY post_id, position");
    let mut query = sqlx::query_as::<_, (i64, String)>(&sql);
    for id in post_ids {
        query = query.bind(id);
    }
    for (post_id, key) in query.fetch_all(&db.pool).await? {
        keys.entry(post_id).or_default().push(key);
    }
    Ok(keys)
}

/// Inserts a post and its images in one transaction; returns the new id.
pub async fn insert(
    db: &Db,
    writer_id: i64,
    content: &str,
    image_keys: &[String],
    now: i64,
) -> Result<i64, sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    let result = sqlx::query(
        "INSERT INTO posts (writer_id, content, created_at, updated_at) VALUES (?, ?, ?, ?)",
    )
    .bind(writer_id)
    .bind(content)
    .bind(now)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let post_id = crate::db::inserted_id(&mut tx, &result).await?;
    for (position, key) in image_keys.iter().enumerate() {
        sqlx::query("INSERT INTO post_images (post_id, position, object_key) VALUES (?, ?, ?)")
            .bind(post_id)
            .bind(position as i64)
            .bind(key)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(post_id)
}

/// Deletes a post and its image rows.
pub async fn delete(db: &Db, id: i64) -> Result<(), sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    sqlx::query("DELETE FROM post_images WHERE post_id = ?")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM posts WHERE id = ?")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}
