//! Benchmark tools for Heart to Heart; see the `heart-datagen` binary and BENCHMARKS.md.
