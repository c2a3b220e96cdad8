//! Fills the core's database with a social network of a chosen size, for benchmarks.
//!
//! Reads the same `HEART_*` settings as the server (so `HEART_DATABASE_URL` picks SQLite or MySQL;
//! migrations run first), then inserts members, posts, image rows, follows and blocks in large
//! batches, with a progress bar per table. Every member's password is `benchmark-pass-1`, emails are
//! `bench<N>@example.com`. Post timestamps are spread over the last `--days` days.
//!
//! ```sh
//! HEART_DATABASE_URL=mysql://root@127.0.0.1:3306/heart_bench \
//!   cargo run --release -p heart-bench --bin heart-datagen -- --members 10000 --posts 1000000
//! ```
//!
//! Image rows point at keys under `bench/`, which are not uploaded: the feeds read keys, not objects.

use std::process::ExitCode;

use heart_core::clock::Clock;
use heart_core::config::Config;
use heart_core::db::Db;
use indicatif::{ProgressBar, ProgressStyle};

/// The password of every generated member.
const PASSWORD: &str = "benchmark-pass-1";
/// Rows per INSERT statement.
const BATCH: usize = 1000;

#[derive(Debug, Clone, Copy)]
struct Sizes {
    members: i64,
    posts: i64,
    images_per_post: i64,
    follows_per_member: i64,
    blocks_per_member: i64,
    days: i64,
}

fn parse_args() -> Result<Sizes, String> {
    let mut sizes = Sizes {
        members: 1000,
        posts: 10_000,
        images_per_post: 1,
        follows_per_member: 20,
        blocks_per_member: 1,
        days: 365,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let n: i64 = value
            .parse()
            .map_err(|_| format!("{flag} {value}: not a number"))?;
        match flag.as_str() {
            "--members" => sizes.members = n.max(2),
            "--posts" => sizes.posts = n.max(0),
            "--images-per-post" => sizes.images_per_post = n.clamp(0, 10),
            "--follows-per-member" => sizes.follows_per_member = n.max(0),
            "--blocks-per-member" => sizes.blocks_per_member = n.max(0),
            "--days" => sizes.days = n.max(1),
            other => return Err(format!("unknown flag {other}; flags: --members --posts --images-per-post --follows-per-member --blocks-per-member --days")),
        }
    }
    Ok(sizes)
}

fn bar(total: i64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(u64::try_from(total).unwrap_or(0));
    let style =
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style.progress_chars("=> "));
    bar.set_message(what.to_owned());
    bar
}

/// Inserts `total` rows into `table` (`columns`), each row's values from `row(i)`, in batches.
async fn insert_rows<F>(
    db: &Db,
    table: &str,
    columns: &str,
    total: i64,
    row: F,
) -> Result<(), sqlx::Error>
where
    F: Fn(i64) -> Vec<String>,
{
    let progress = bar(total, table);
    let mut i = 0;
    while i < total {
        let end = (i + BATCH as i64).min(total);
        let values: Vec<String> = (i..end)
            .map(|n| format!("({})", row(n).join(", ")))
            .collect();
        let sql = format!(
            "INSERT INTO {table} ({columns}) VALUES {}",
            values.join(", ")
        );
        sqlx::query(&sql).execute(&db.pool).await?;
        progress.inc(u64::try_from(end - i).unwrap_or(0));
        i = end;
    }
    progress.finish();
    Ok(())
}

/// A deterministic spread of `n` over `0..modulus` (no RNG needed, same data every run).
fn spread(n: i64, salt: i64, modulus: i64) -> i64 {
    ((n.wrapping_mul(2_654_435_761)
        .wrapping_add(salt.wrapping_mul(40_503)))
        & i64::MAX)
        % modulus.max(1)
}

async fn run(sizes: Sizes) -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::from_env()?;
    let db = Db::connect(&config).await?;
    let hasher = heart_core::auth::password::PasswordHasher::new(config.password_hashing)?;
    let hash = hasher
        .hash(PASSWORD.to_owned())
        .await
        .map_err(|e| e.to_string())?;
    let now = Clock::system().now();
    let (first_member,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(id), 0) + 1 FROM members")
        .fetch_one(&db.pool)
        .await?;
    let (first_post,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(id), 0) + 1 FROM posts")
        .fetch_one(&db.pool)
        .await?;
    let span = sizes.days * 86_400;
    let member = |n: i64| first_member + spread(n, 7, sizes.members);

    insert_rows(
        &db,
        "members",
        "id, email, name, nickname, password_hash, role, created_at, updated_at",
        sizes.members,
        |n| {
            let id = first_member + n;
            vec![
                id.to_string(),
                format!("'bench{id}@example.com'"),
                format!("'Bench {id}'"),
                format!("'bench{id}'"),
                format!("'{hash}'"),
                "'USER'".into(),
                now.to_string(),
                now.to_string(),
            ]
        },
    )
    .await?;
    // Posts in time order, so ids grow with created_at as they do in production.
    insert_rows(
        &db,
        "posts",
        "id, writer_id, content, created_at, updated_at",
        sizes.posts,
        |n| {
            let created = now - span + n * span / sizes.posts.max(1);
            vec![
                (first_post + n).to_string(),
                member(n).to_string(),
                format!("'benchmark post {n}'"),
                created.to_string(),
                created.to_string(),
            ]
        },
    )
    .await?;
    insert_rows(
        &db,
        "post_images",
        "post_id, position, object_key",
        sizes.posts * sizes.images_per_post,
        |n| {
            let post = first_post + n / sizes.images_per_post.max(1);
            vec![
                post.to_string(),
                (n % sizes.images_per_post.max(1)).to_string(),
                format!("'bench/{post}-{n}.jpg'"),
            ]
        },
    )
    .await?;
    // Follows: member i follows the next k members (no duplicates, nobody follows themselves).
    let k = sizes.follows_per_member.min(sizes.members - 1);
    insert_rows(
        &db,
        "follows",
        "follower_id, followee_id, created_at",
        sizes.members * k,
        |n| {
            let (i, j) = (n / k.max(1), n % k.max(1) + 1);
            vec![
                (first_member + i).to_string(),
                (first_member + (i + j) % sizes.members).to_string(),
                now.to_string(),
            ]
        },
    )
    .await?;
    // Blocks: member i blocks members further along than any it follows.
    let b = sizes.blocks_per_member.min(sizes.members - 1 - k);
    insert_rows(
        &db,
        "blocks",
        "blocker_id, blocked_id, created_at",
        sizes.members * b,
        |n| {
            let (i, j) = (n / b.max(1), n % b.max(1) + k + 1);
            vec![
                (first_member + i).to_string(),
                (first_member + (i + j) % sizes.members).to_string(),
                now.to_string(),
            ]
        },
    )
    .await?;
    let analyze = match db.kind {
        heart_core::db::DbKind::Sqlite => "ANALYZE",
        heart_core::db::DbKind::MySql => {
            "ANALYZE TABLE members, posts, post_images, follows, blocks"
        }
    };
    sqlx::query(analyze).fetch_all(&db.pool).await?;
    println!(
        "done: members {first_member}..{}, posts {first_post}..{}; password {PASSWORD}",
        first_member + sizes.members - 1,
        first_post + sizes.posts - 1
    );
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let sizes = heart_bench::args_or_exit(parse_args().map_err(|m| format!("heart-datagen: {m}")));
    match run(sizes).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("heart-datagen: {error}");
            ExitCode::FAILURE
        }
    }
}
