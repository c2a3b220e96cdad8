#!/usr/bin/env bash
# Does the stack's memory grow with requests while nobody scrapes /metrics? Two builds side by
# side (A B A B): each round starts the stack (`heart`, embedded backends, in a fresh temporary
# folder), loads `/healthz` through the edge and then on the core directly for DURATION each
# (wrk, 32 connections), and prints the resident memory idle, right after the load and 6 s later.
# Nothing reads /metrics meanwhile, as on a machine without Prometheus.
#
#   A=/var/tmp/bin-before B=/var/tmp/bin-after bash bench/metrics-upkeep.sh
#
# A and B are folders holding a release `heart`. Uses the stack's default ports (8080, 8081, 9090).
set -euo pipefail
A="${A:?A=<folder with the release heart before>}"
B="${B:?B=<folder with the release heart after>}"
DURATION="${DURATION:-30s}"
ROUNDS="${ROUNDS:-2}"
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 2; }
rss_mb() { awk '/VmRSS/ {printf "%d", $2 / 1024}' "/proc/$1/status"; }

echo "== $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "A=$A B=$B, $DURATION per load, $ROUNDS rounds"
for round in $(seq 1 "$ROUNDS"); do
  for label in A B; do
    dir="$(mktemp -d)"
    (cd "$dir" && exec "${!label}/heart" >out.log 2>err.log) &
    pid=$!
    for _ in $(seq 1 120); do
      curl -sf -o /dev/null http://127.0.0.1:8080/healthz && break
      kill -0 "$pid" 2>/dev/null || { cat "$dir/err.log" >&2; exit 1; }
      sleep 1
    done
    sleep 2
    idle="$(rss_mb "$pid")"
    edge="$(wrk -t2 -c32 -d"$DURATION" http://127.0.0.1:8080/healthz | awk '/Requests\/sec/ {print $2}')"
    core="$(wrk -t2 -c32 -d"$DURATION" http://127.0.0.1:8081/healthz | awk '/Requests\/sec/ {print $2}')"
    loaded="$(rss_mb "$pid")"
    sleep 6
    later="$(rss_mb "$pid")"
    echo "round $round $label: edge $edge req/s, core $core req/s; RSS idle $idle MB, after the load $loaded MB (+$((loaded - idle)) MB), 6 s later $later MB"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    rm -rf "$dir"
  done
done
