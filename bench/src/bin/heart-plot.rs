//! Draws the summary table `bench/run.sh` prints as an SVG: one row per case, requests per second
//! and p99 latency side by side as bars, so BENCHMARKS.md shows a run at a glance.
//!
//!     heart-plot <summary.md> <out.svg> [title]
//!
//! The input is the Markdown table `| what | connections | req/s | p50 | p99 | non-2xx |`; rows
//! that do not parse are skipped (and said on stderr).

use std::fmt::Write as _;
use std::process::ExitCode;

use heart_bench::plot::{parse_summary, svg};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(input), Some(output)) = (args.first(), args.get(1)) else {
        eprintln!("usage: heart-plot <summary.md> <out.svg> [title]");
        return ExitCode::from(2);
    };
    let title = args
        .get(2)
        .cloned()
        .unwrap_or_else(|| "Heart to Heart benchmarks".into());
    let text = match std::fs::read_to_string(input) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("heart-plot: {input}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (rows, skipped) = parse_summary(&text);
    let mut note = String::new();
    for line in &skipped {
        let _ = writeln!(note, "heart-plot: skipped {line}");
    }
    eprint!("{note}");
    if rows.is_empty() {
        eprintln!("heart-plot: no rows in {input}");
        return ExitCode::FAILURE;
    }
    if let Err(e) = std::fs::write(output, svg(&title, &rows)) {
        eprintln!("heart-plot: {output}: {e}");
        return ExitCode::FAILURE;
    }
    eprintln!("heart-plot: {} rows drawn into {output}", rows.len());
    ExitCode::SUCCESS
}
