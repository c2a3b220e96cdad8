#!/usr/bin/env bash
# What a large photo upload costs the core (issue 12): a 7000×7000 JPEG with EXIF orientation 6,
# five times one at a time, then six at once through the decode bound. Prints time per image and
# the peak resident memory of the process. Run it on a quiet machine before writing numbers into
# BENCHMARKS.md.
#
#   bash bench/images.sh                 # 7000×7000, 5 runs, 6 at once
#   SIDE=4000 PARALLEL=2 bash bench/images.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
cargo build --release -q -p heart-bench --bin heart-images
"$CARGO_TARGET_DIR/release/heart-images" --side "${SIDE:-7000}" --runs "${RUNS:-5}" \
  --parallel "${PARALLEL:-6}"
