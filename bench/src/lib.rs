//! Benchmark tools for Heart to Heart: the `heart-datagen`, `heart-load`, `heart-s3` and
//! `heart-plot` binaries; see BENCHMARKS.md.

pub mod plot;
