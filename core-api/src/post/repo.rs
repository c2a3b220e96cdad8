//! Queries on `posts` and `post_images`, and the feeds.

use std::collections::HashMap;

use sqlx::{FromRow, Row as _};

use crate::db::{Db, DbKind};
use crate::paging::Cursor;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Feed {
    /// Every post, minus writers the viewer blocks.
    Home { viewer: i64 },
    /// One writer's posts.
    Writer { writer: i64 },
    /// Posts by the members the viewer follows, and the viewer's own, minus blocked writers.
    Following { viewer: i64 },
}

impl Feed {
    /// The member the feed is about (viewer or writer).
    pub fn subject(self) -> i64 {
        match self {
            Feed::Home { viewer } | Feed::Following { viewer } => viewer,
            Feed::Writer { writer } => writer,
        }
    }

    /// Whether the feed hides the writers its viewer blocks.
    pub fn hides_blocked(self) -> bool {
        !matches!(self, Feed::Writer { .. })
    }
}

/// How a feed query hides the writers the viewer blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocked<'a> {
    /// A correlated `NOT EXISTS` on `blocks` per index entry: one statement, cheap when the page
    /// is found after few entries (page 0, or a keyset seek), dear behind a deep offset.
    AntiJoin,
    /// The viewer's blocked writers and every suspended member, read beforehand in one list
    /// ([`hidden_writers`]): `writer_id NOT IN (…)` is checked on the covering feed index
    /// itself, and an empty list is no filter at all. The ids statement then needs no subquery
    /// on `members` for suspended writers, which behind a deep offset costs as much as the index
    /// scan itself.
    Listed(&'a [i64]),
}

/// What a feed query asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedQuery<'a> {
    pub feed: Feed,
    /// Only posts after this one (keyset seek).
    pub after: Option<Cursor>,
    pub blocked: Blocked<'a>,
    /// Page size.
    pub size: i64,
    /// Posts to skip (after `after`).
    pub offset: i64,
}

const SELECT_POSTS: &str =
    "SELECT p.id, p.writer_id, m.email AS writer_email, m.nickname AS writer_nickname, \
     m.avatar_key AS writer_avatar_key, p.content, p.created_at, p.updated_at \
     FROM posts p JOIN members m ON m.id = p.writer_id";

/// The condition on `members s` that a member is suspended.
const SUSPENDED: &str = "s.suspended_at IS NOT NULL";

/// Past this offset a cold page of a feed that hides blocked writers reads the viewer's blocks
/// and the suspended members first (one more round trip) instead of an anti-join and a
/// subquery probe per skipped index entry.
pub const LIST_BLOCKS_PAST_OFFSET: i64 = 1_000;

/// Above this many blocked writers and suspended members the list is not spelled out; the
/// anti-join and the suspended-writers subquery are used.
pub const MAX_LISTED_BLOCKS: usize = 1_000;

/// The filter on a viewer's listed blocked writers, with their ids added to `binds`. `+ 0`: not a
/// range on `writer_id` (MariaDB would then read another index and sort); the list is checked on
/// the entries of the feed index as they come.
fn listed_blocks(ids: &[i64], binds: &mut Vec<i64>) -> String {
    binds.extend_from_slice(ids);
    format!(
        "p.writer_id + 0 NOT IN ({})",
        vec!["?"; ids.len()].join(", ")
    )
}

/// MySQL's hint that keeps the home feed's ids on its index in order (see [`feed_ids_sql`]):
/// `FORCE INDEX` without `FOR …` covers the `ORDER BY` too, so a sort of the whole index is
/// never preferred to reading it in order.
pub const HOME_FEED_INDEX_HINT: &str = "FORCE INDEX (posts_feed_idx)";

/// The SQL that finds a feed page's post ids, newest first with the id as tie-break (on the
/// feed's index alone: a deep offset skips index entries, not rows), and its binds in order.
///
/// In MySQL the home feed names its index ([`HOME_FEED_INDEX_HINT`]): MariaDB 10.11 was seen
/// switching, for minutes after a load of cold deep pages, from reading `posts_feed_idx` in order
/// (100,080 rows examined for `OFFSET 100000`, 50 ms) to reading all of it and sorting (1,100,070
/// rows, 500–700 ms) for the same statement and binds (`BENCHMARKS.md`).
pub fn feed_ids_sql(query: &FeedQuery<'_>, kind: DbKind) -> (String, Vec<i64>) {
    let subject = query.feed.subject();
    let mut binds = Vec::new();
    let mut filters: Vec<String> = Vec::new();
    match query.feed {
        Feed::Home { .. } => {}
        Feed::Writer { .. } => {
            filters.push("p.writer_id = ?".into());
            binds.push(subject);
        }
        Feed::Following { .. } => {
            filters.push("(p.writer_id = ? OR p.writer_id IN (SELECT f.followee_id FROM follows f WHERE f.follower_id = ?))".into());
            binds.extend([subject, subject]);
        }
    }
    if query.feed.hides_blocked() {
        match query.blocked {
            Blocked::AntiJoin => {
                filters.push("NOT EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = ? AND b.blocked_id = p.writer_id)".into());
                binds.push(subject);
            }
            Blocked::Listed([]) => {}
            Blocked::Listed(ids) => filters.push(listed_blocks(ids, &mut binds)),
        }
    }
    // Suspended writers' posts leave every feed. The few suspended ids are read once per statement
    // (an uncorrelated subquery on `members_suspended_idx`) and checked on the feed index entries.
    match query.feed {
        Feed::Writer { .. } => {
            filters.push(format!(
                "NOT EXISTS (SELECT 1 FROM members s WHERE s.id = ? AND {SUSPENDED})"
            ));
            binds.push(subject);
        }
        // Listed with the blocked writers above.
        _ if matches!(query.blocked, Blocked::Listed(_)) => {}
        _ => filters.push(format!(
            "p.writer_id + 0 NOT IN (SELECT s.id FROM members s WHERE {SUSPENDED})"
        )),
    }
    if let Some(after) = query.after {
        filters.push("(p.created_at < ? OR (p.created_at = ? AND p.id < ?))".into());
        binds.extend([after.created_at, after.created_at, after.id]);
    }
    let mut sql = String::from("SELECT p.id FROM posts p");
    if kind == DbKind::MySql && matches!(query.feed, Feed::Home { .. }) {
        sql.push(' ');
        sql.push_str(HOME_FEED_INDEX_HINT);
    }
    if !filters.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&filters.join(" AND "));
    }
    sql.push_str(" ORDER BY p.created_at DESC, p.id DESC LIMIT ? OFFSET ?");
    binds.extend([query.size, query.offset]);
    (sql, binds)
}

/// The columns of a feed page: the post, its writer, and its image keys in upload order joined
/// by [`IMAGE_KEY_SEPARATOR`] (`NULL` without images), one result row per post. The keys are
/// read by a correlated subquery on `post_images`' primary key, for the page's own rows only.
fn page_columns(kind: DbKind) -> &'static str {
    match kind {
        DbKind::Sqlite => {
            "p.id, p.writer_id, m.email AS writer_email, m.nickname AS writer_nickname, \
             m.avatar_key AS writer_avatar_key, p.content, p.created_at, p.updated_at, \
             (SELECT group_concat(i.object_key, char(10) ORDER BY i.position) \
              FROM post_images i WHERE i.post_id = p.id) AS image_keys"
        }
        DbKind::MySql => {
            "p.id, p.writer_id, m.email AS writer_email, m.nickname AS writer_nickname, \
             m.avatar_key AS writer_avatar_key, p.content, p.created_at, p.updated_at, \
             (SELECT GROUP_CONCAT(i.object_key ORDER BY i.position SEPARATOR 0x0a) \
              FROM post_images i WHERE i.post_id = p.id) AS image_keys"
        }
    }
}

/// Between two image keys in a page row. Keys are made by [`crate::storage::object_key`]
/// (base64url, `/` and `.`), never with a line break. MySQL cuts a `GROUP_CONCAT` at
/// `group_concat_max_len` (1,024 bytes by default in MySQL 8), so every pooled connection raises
/// it first ([`crate::db`]).
pub const IMAGE_KEY_SEPARATOR: char = '\n';

/// The one statement that reads a whole feed page: its posts with their writers and image keys,
/// one result row per post ([`page_columns`]).
///
/// - At the top of a feed or after a keyset seek (no offset) of the home feed or a writer's, it
///   reads the feed's index in order and stops after `size` posts that pass: the writer is read by
///   key and must not be suspended, and a blocked writer is found by key in `blocks` (a `LEFT
///   JOIN … IS NULL`). MariaDB runs this about 1.4× as fast as the form below (`BENCHMARKS.md`):
///   no temporary tables for a derived table, a sort, or a materialised subquery.
/// - Behind an offset, and for the following feed (whose index entries mostly fail its filter),
///   the ids are found first on the index alone ([`feed_ids_sql`]): a deep offset skips index
///   entries, not rows. The join keeps the planner on that order, the few ids first and then rows
///   by key (`CROSS JOIN` in SQLite, `STRAIGHT_JOIN` in MySQL); left free, both were seen scanning
///   `members` first.
pub fn feed_page_sql(query: &FeedQuery<'_>, kind: DbKind) -> (String, Vec<i64>) {
    let join = match kind {
        DbKind::Sqlite => "CROSS JOIN",
        DbKind::MySql => "STRAIGHT_JOIN",
    };
    let columns = page_columns(kind);
    let top = query.offset == 0 && !matches!(query.feed, Feed::Following { .. });
    if !top {
        let (ids, binds) = feed_ids_sql(query, kind);
        let sql = format!(
            "SELECT {columns} FROM ({ids}) page_ids {join} posts p ON p.id = page_ids.id \
             {join} members m ON m.id = p.writer_id \
             ORDER BY p.created_at DESC, p.id DESC"
        );
        return (sql, binds);
    }
    let mut sql = format!("SELECT {columns} FROM posts p {join} members m ON m.id = p.writer_id");
    let mut binds = Vec::new();
    let mut filters = vec!["m.suspended_at IS NULL".to_owned()];
    if let Feed::Writer { writer } = query.feed {
        filters.push("p.writer_id = ?".into());
        binds.push(writer);
    }
    if query.feed.hides_blocked() {
        match query.blocked {
            Blocked::AntiJoin => {
                sql.push_str(
                    " LEFT JOIN blocks b ON b.blocker_id = ? AND b.blocked_id = p.writer_id",
                );
                binds.insert(0, query.feed.subject());
                filters.push("b.blocker_id IS NULL".into());
            }
            Blocked::Listed([]) => {}
            Blocked::Listed(ids) => filters.push(listed_blocks(ids, &mut binds)),
        }
    }
    if let Some(after) = query.after {
        filters.push("(p.created_at < ? OR (p.created_at = ? AND p.id < ?))".into());
        binds.extend([after.created_at, after.created_at, after.id]);
    }
    sql.push_str(" WHERE ");
    sql.push_str(&filters.join(" AND "));
    sql.push_str(" ORDER BY p.created_at DESC, p.id DESC LIMIT ?");
    binds.push(query.size);
    (sql, binds)
}

/// The image keys of a page row ([`page_columns`]). MySQL types a `GROUP_CONCAT` that may be
/// longer than 512 bytes (`group_concat_max_len`, raised per connection) as a `BLOB`, which
/// sqlx's `Any` driver reads as bytes only; a shorter one is a `VARCHAR`, as SQLite's is text.
fn image_keys_of(row: &sqlx::any::AnyRow, kind: DbKind) -> Result<Vec<String>, sqlx::Error> {
    let bytes = || -> Result<Option<String>, sqlx::Error> {
        row.try_get::<Option<Vec<u8>>, _>("image_keys")?
            .map(String::from_utf8)
            .transpose()
            .map_err(|e| sqlx::Error::ColumnDecode {
                index: "image_keys".into(),
                source: e.into(),
            })
    };
    let text = || row.try_get::<Option<String>, _>("image_keys");
    let joined = match kind {
        DbKind::MySql => bytes().or_else(|_| text())?,
        DbKind::Sqlite => text().or_else(|_| bytes())?,
    };
    Ok(joined
        .as_deref()
        .map(|keys| keys.split(IMAGE_KEY_SEPARATOR).map(str::to_owned).collect())
        .unwrap_or_default())
}

/// A post of a feed page with its image keys in upload order.
#[derive(Debug, Clone)]
pub struct PagePost {
    pub row: PostRow,
    pub image_keys: Vec<String>,
}

/// The writers a deep cold page of `viewer`'s feed hides, in one statement: the ones the viewer
/// blocks, then every suspended member (few: on `members_suspended_idx`). At most `max` + 1 ids;
/// more than `max` means "too many to list".
async fn hidden_writers(
    conn: &mut sqlx::AnyConnection,
    viewer: i64,
    max: usize,
) -> Result<Vec<i64>, sqlx::Error> {
    let rows: Vec<(i64,)> = sqlx::query_as(
        "SELECT blocked_id FROM blocks WHERE blocker_id = ? \
         UNION ALL SELECT id FROM members WHERE suspended_at IS NOT NULL LIMIT ?",
    )
    .bind(viewer)
    .bind(max as i64 + 1)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// When a feed page lists the writers it hides beforehand instead of an anti-join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListHidden {
    /// List them only past this offset.
    pub past_offset: i64,
    /// Above this many, do not list them.
    pub max: usize,
}

impl ListHidden {
    /// What the core uses: [`LIST_BLOCKS_PAST_OFFSET`] and [`MAX_LISTED_BLOCKS`].
    pub const DEFAULT: ListHidden = ListHidden {
        past_offset: LIST_BLOCKS_PAST_OFFSET,
        max: MAX_LISTED_BLOCKS,
    };
}

/// One page of a feed, on one connection: one statement, or two when a deep cold page of a feed
/// that hides blocked writers reads the viewer's blocks and the suspended members first (see
/// [`LIST_BLOCKS_PAST_OFFSET`]).
pub async fn feed_page(
    db: &Db,
    feed: Feed,
    after: Option<Cursor>,
    size: i64,
    offset: i64,
) -> Result<Vec<PagePost>, sqlx::Error> {
    feed_page_listing_hidden(db, feed, after, size, offset, ListHidden::DEFAULT).await
}

/// [`feed_page`], listing the writers it hides as `list` says.
pub async fn feed_page_listing_hidden(
    db: &Db,
    feed: Feed,
    after: Option<Cursor>,
    size: i64,
    offset: i64,
    list: ListHidden,
) -> Result<Vec<PagePost>, sqlx::Error> {
    let mut conn = db.pool.acquire().await?;
    let listed;
    let blocked = if feed.hides_blocked() && offset > list.past_offset {
        listed = hidden_writers(&mut conn, feed.subject(), list.max).await?;
        if listed.len() > list.max {
            Blocked::AntiJoin
        } else {
            Blocked::Listed(&listed)
        }
    } else {
        Blocked::AntiJoin
    };
    let (sql, binds) = feed_page_sql(
        &FeedQuery {
            feed,
            after,
            blocked,
            size,
            offset,
        },
        db.kind,
    );
    let mut query = sqlx::query(&sql);
    for bind in binds {
        query = query.bind(bind);
    }
    query
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|row| {
            Ok(PagePost {
                row: PostRow::from_row(row)?,
                image_keys: image_keys_of(row, db.kind)?,
            })
        })
        .collect()
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

/// The `limit` newest posts of `writer`, suspended or not (for moderators), with their image keys.
pub async fn latest_of_writer(
    db: &Db,
    writer: i64,
    limit: i64,
) -> Result<Vec<PagePost>, sqlx::Error> {
    let rows: Vec<PostRow> = sqlx::query_as(&format!(
        "{SELECT_POSTS} WHERE p.writer_id = ? ORDER BY p.created_at DESC, p.id DESC LIMIT ?"
    ))
    .bind(writer)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    let mut keys = image_keys(db, &rows.iter().map(|r| r.id).collect::<Vec<_>>()).await?;
    Ok(rows
        .into_iter()
        .map(|row| PagePost {
            image_keys: keys.remove(&row.id).unwrap_or_default(),
            row,
        })
        .collect())
}

/// Inserts a post and its images in one transaction; returns the new id.
pub async fn insert(
    db: &Db,
    writer_id: i64,
    content: &str,
    image_keys: &[String],
    now: i64,
) -> Result<i64, sqlx::Error> {
    let mut tx = db.begin().await?;
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
    let mut tx = db.begin().await?;
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
