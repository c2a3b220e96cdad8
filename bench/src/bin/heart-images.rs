//! `heart-images`: what one upload of a large photo costs the core: the issue-12 case, a 7000×7000
//! JPEG with EXIF orientation 6 (decoded at half size, turned, re-encoded at 3500×3500), and the
//! same concurrently through the decode bound. Prints wall time per image and the process's peak
//! resident memory.
//!
//! ```sh
//! bash bench/images.sh            # or, by hand:
//! cargo run --release -p heart-bench --bin heart-images -- --side 7000 --runs 5 --parallel 6
//! ```

use std::time::{Duration, Instant};

use bytes::Bytes;
use heart_core::images::{self, Decodes};
use heart_shared::ErrorCode;

fn arg(name: &str, default: u32) -> u32 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `VmHWM` (peak resident set) of this process, in MiB.
fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024)
}

#[tokio::main]
async fn main() {
    let side = arg("--side", 7000);
    let runs = arg("--runs", 5);
    let parallel = arg("--parallel", 6);
    let photo = Bytes::from(heart_testkit::fixtures::jpeg_with_gps(side, side, 6));
    println!(
        "{side}×{side} JPEG, orientation 6: {} KB; peak RSS before decoding {} MiB",
        photo.len() / 1024,
        peak_rss_mib()
    );
    let decodes = Decodes::new(std::thread::available_parallelism().map_or(2, |n| n.get()));
    let mut times = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let clean = images::clean(&decodes, photo.clone(), ErrorCode::PostFileNotAnImage)
            .await
            .map_err(|e| format!("{e:?}"));
        times.push(started.elapsed());
        let clean = clean.unwrap_or_else(|e| panic!("refused: {e}"));
        assert!(clean.width.max(clean.height) <= images::MAX_SIDE);
    }
    times.sort();
    let median = times.get(times.len() / 2).copied().unwrap_or_default();
    println!(
        "one at a time: median {median:?} (min {:?}, max {:?}); peak RSS {} MiB",
        times.first().copied().unwrap_or_default(),
        times.last().copied().unwrap_or_default(),
        peak_rss_mib()
    );
    let started = Instant::now();
    let all = (0..parallel)
        .map(|_| images::clean(&decodes, photo.clone(), ErrorCode::PostFileNotAnImage));
    let results = futures_util::future::join_all(all).await;
    let failed = results.iter().filter(|r| r.is_err()).count();
    let elapsed: Duration = started.elapsed();
    println!(
        "{parallel} at once ({} decoding at a time): {elapsed:?} in all, {failed} failed; \
         peak RSS {} MiB",
        decodes.limit(),
        peak_rss_mib()
    );
}
