//! Shows that a data export's memory stays flat: builds the core in this process (embedded
//! backends in a temporary folder, or whatever `HEART_*` says, e.g. MySQL and S3), gives one
//! member `--posts` posts with `--images` stored images of `--image-kib` KiB each (spread over the
//! posts, at most 10 a post), then reads that member's export to the end while sampling this
//! process's resident memory (`VmRSS`) every 20 ms. A small member's export is read first, for
//! comparison: flat means the big one's growth is about the small one's, not the archive's size.
//!
//! ```sh
//! cargo run --release -p heart-bench --bin heart-export-rss -- --posts 1000 --images 3000 --image-kib 100
//! ```

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use heart_core::auth::AuthenticatedMember;
use heart_core::clock::Clock;
use heart_core::{App, AppState, Config};
use http_body_util::BodyExt as _;

#[derive(Debug, Clone, Copy)]
struct Sizes {
    posts: i64,
    images: i64,
    image_kib: usize,
}

fn parse_args() -> Result<Sizes, String> {
    let mut sizes = Sizes {
        posts: 1000,
        images: 3000,
        image_kib: 100,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let n: i64 = value
            .parse()
            .map_err(|_| format!("{flag} {value}: not a number"))?;
        match flag.as_str() {
            "--posts" => sizes.posts = n.max(1),
            "--images" => sizes.images = n.max(0),
            "--image-kib" => sizes.image_kib = usize::try_from(n.max(1)).unwrap_or(1),
            other => {
                return Err(format!(
                    "unknown flag {other}; flags: --posts --images --image-kib"
                ))
            }
        }
    }
    if sizes.images > sizes.posts * 10 {
        return Err("at most 10 images a post: raise --posts".into());
    }
    Ok(sizes)
}

/// This process's resident memory, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Creates a member with `posts` posts and `images` stored images; returns its id.
async fn seed(
    state: &AppState,
    tag: &str,
    sizes: Sizes,
) -> Result<i64, Box<dyn std::error::Error>> {
    let now = state.clock.now();
    let db = &state.db;
    sqlx::query("INSERT INTO members (email, name, nickname, password_hash, role, created_at, updated_at) VALUES (?, 'Bench', ?, 'not-a-hash', 'USER', ?, ?)")
        .bind(format!("{tag}@example.com"))
        .bind(tag)
        .bind(now)
        .bind(now)
        .execute(&db.pool)
        .await?;
    let (member_id,): (i64,) = sqlx::query_as("SELECT id FROM members WHERE email = ?")
        .bind(format!("{tag}@example.com"))
        .fetch_one(&db.pool)
        .await?;
    let mut post_ids = Vec::new();
    for n in 0..sizes.posts {
        sqlx::query(
            "INSERT INTO posts (writer_id, content, created_at, updated_at) VALUES (?, ?, ?, ?)",
        )
        .bind(member_id)
        .bind(format!(
            "Post {n} of the export benchmark. {}",
            "Some words. ".repeat(20)
        ))
        .bind(now - sizes.posts + n)
        .bind(now - sizes.posts + n)
        .execute(&db.pool)
        .await?;
    }
    let rows: Vec<(i64,)> = sqlx::query_as("SELECT id FROM posts WHERE writer_id = ? ORDER BY id")
        .bind(member_id)
        .fetch_all(&db.pool)
        .await?;
    post_ids.extend(rows.into_iter().map(|(id,)| id));
    // Not a real image: the export copies bytes, it does not decode them.
    let image = Bytes::from(
        (0..sizes.image_kib * 1024)
            .map(|i| (i * 31 % 251) as u8)
            .collect::<Vec<u8>>(),
    );
    for n in 0..sizes.images {
        let post = post_ids[usize::try_from(n % sizes.posts).unwrap_or(0)];
        let position = n / sizes.posts;
        let key = format!("bench/{tag}/{n}.jpg");
        state.storage.put(&key, image.clone(), "image/jpeg").await?;
        sqlx::query("INSERT INTO post_images (post_id, position, object_key) VALUES (?, ?, ?)")
            .bind(post)
            .bind(position)
            .bind(&key)
            .execute(&db.pool)
            .await?;
    }
    Ok(member_id)
}

struct Measured {
    bytes: u64,
    elapsed: Duration,
    before_kib: u64,
    peak_kib: u64,
}

/// Reads `member_id`'s export to the end, discarding it, sampling RSS meanwhile.
async fn measure(state: &AppState, member_id: i64) -> Result<Measured, Box<dyn std::error::Error>> {
    let before_kib = rss_kib();
    let peak = Arc::new(AtomicU64::new(before_kib));
    let sampling = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_kib(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let started = Instant::now();
    let caller = AuthenticatedMember {
        member_id,
        session_id: "benchmark".into(),
    };
    let export = heart_core::export::service::start(state, &caller)
        .await
        .map_err(|e| e.to_string())?;
    let mut body = export.body;
    let mut bytes = 0u64;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            bytes += data.len() as u64;
        }
    }
    let elapsed = started.elapsed();
    sampling.abort();
    peak.fetch_max(rss_kib(), Ordering::Relaxed);
    Ok(Measured {
        bytes,
        elapsed,
        before_kib,
        peak_kib: peak.load(Ordering::Relaxed),
    })
}

fn report(what: &str, m: &Measured) {
    println!(
        "{what}: archive {:.1} MiB in {:.1} s; RSS before {:.1} MiB, peak {:.1} MiB, growth {:.1} MiB",
        m.bytes as f64 / 1_048_576.0,
        m.elapsed.as_secs_f64(),
        m.before_kib as f64 / 1024.0,
        m.peak_kib as f64 / 1024.0,
        m.peak_kib.saturating_sub(m.before_kib) as f64 / 1024.0,
    );
}

async fn run(sizes: Sizes) -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("heart-export-rss-{}", std::process::id()));
    let mut vars: HashMap<String, String> = std::env::vars()
        .filter(|(k, _)| k.starts_with("HEART_"))
        .collect();
    vars.entry("HEART_DATA_DIR".into())
        .or_insert_with(|| dir.display().to_string());
    let config = Config::from_vars(&vars)?;
    let app = App::build(config, Clock::system()).await?;
    let state = app.state.clone();
    let suffix = std::process::id();
    let small = Sizes {
        posts: 10,
        images: 30,
        image_kib: sizes.image_kib,
    };
    println!(
        "seeding: a small member ({} posts, {} images) and a big one ({} posts, {} images), {} KiB each",
        small.posts, small.images, sizes.posts, sizes.images, sizes.image_kib
    );
    let small_id = seed(&state, &format!("small{suffix}"), small).await?;
    let big_id = seed(&state, &format!("big{suffix}"), sizes).await?;
    println!(
        "storage: {}, database: {:?}",
        state.storage.backend(),
        state.db.kind
    );
    let first = measure(&state, small_id).await?;
    report("small export", &first);
    let second = measure(&state, big_id).await?;
    report("big export  ", &second);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let sizes =
        heart_bench::args_or_exit(parse_args().map_err(|m| format!("heart-export-rss: {m}")));
    match run(sizes).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("heart-export-rss: {error}");
            ExitCode::FAILURE
        }
    }
}
