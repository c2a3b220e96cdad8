//! Benchmark tools for Heart to Heart: the `heart-*` binaries of `src/bin`; see BENCHMARKS.md.

pub mod plot;

/// What a binary's `parse_args` read; on a usage error, its message on stderr and exit code 2,
/// the bench binaries' convention for a bad command line (before anything has started).
pub fn args_or_exit<T>(parsed: Result<T, String>) -> T {
    parsed.unwrap_or_else(|message| {
        eprintln!("{message}");
        std::process::exit(2)
    })
}
