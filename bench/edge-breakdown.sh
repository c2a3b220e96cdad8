#!/usr/bin/env bash
# Where a request's time goes at one connection: for each case, wrk's p50 beside the mean the
# stack itself measured per request (from its Prometheus histograms, deltas over the run):
#   edge  = heart_edge_request_duration_seconds (the edge host, request in to answer out)
#   hop   = heart_edge_forward_duration_seconds (the component's request to the core, sent to
#           the core's answer head received)
#   core  = http_request_duration_seconds (the core's handler, database included)
# So for a forwarded request, edge − hop is what the edge spends around the forward (instance,
# settings, token, the Redis gate, reading and writing the answer), and hop − core is the
# connection to the core (pool, hyper on both sides, loopback).
#
#   B=<folder with heart, heart-datagen, heart_edge.wasm> bash bench/edge-breakdown.sh
#
# Same data and stack as bench/edge-ab.sh (database heart_edge_ab, a private Redis).
set -euo pipefail
cd "$(dirname "$0")/.."
B="${B:?B=<folder with the release binaries to measure>}"
DURATION="${DURATION:-5s}"
ROUNDS="${ROUNDS:-2}"
DB=heart_edge_ab
REDIS_PORT="${REDIS_PORT:-6391}"
ADMIN=http://127.0.0.1:9090/metrics
. bench/lib.sh
edge_bench_setup "$DB" "$REDIS_PORT"
echo "== $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "B=$B duration $DURATION, $ROUNDS rounds, 1 connection"
if mariadb -uroot -h127.0.0.1 -e "USE $DB" 2>/dev/null; then
  echo "reusing database $DB"
else
  mariadb -uroot -h127.0.0.1 -e "CREATE DATABASE $DB CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
  "$B/heart-datagen" --members 1000 --posts 20000 --follows-per-member 20 --blocks-per-member 1 >/dev/null
fi

PAGE="/post/posts?member_id=1&page=0&size=10"
# name|url|route label in the edge's metrics|route label in the core's metrics
CASES=(
  "edge: /healthz (the component answers)|http://127.0.0.1:8080/healthz|/healthz|"
  "edge: home feed page 0, cached|http://127.0.0.1:8080$PAGE|/post/posts|"
  "edge: profile, forwarded|http://127.0.0.1:8080/member/profile?member_id=2|/member/profile|/member/profile"
  "core direct: profile|http://127.0.0.1:8081/member/profile?member_id=2||/member/profile"
)

# sum_count <metric> <route or empty>: "sum count" of a histogram, over all its label sets that
# carry route="<route>" (any when empty).
sum_count() {
  curl -sf "$ADMIN" | awk -v m="$1" -v r="$2" '
    index($1, m "_sum") == 1 && (r == "" || index($1, "route=\"" r "\"")) {s += $2}
    index($1, m "_count") == 1 && (r == "" || index($1, "route=\"" r "\"")) {c += $2}
    END {printf "%.9f %d\n", s, c}'
}
# mean_us <before> <after>: microseconds per request between two "sum count" snapshots.
mean_us() {
  awk -v a="$1" -v b="$2" 'BEGIN {split(a, x, " "); split(b, y, " "); n = y[2] - x[2];
    if (n > 0) printf "%.0f", (y[1] - x[1]) / n * 1e6; else printf "–"}'
}

for round in $(seq 1 "$ROUNDS"); do
  start_edge_stack "$B" "bd-$RANDOM"
  echo
  echo "round $round"
  echo "| case | req/s | wrk p50 | edge (µs/request) | hop to the core | core handler |"
  echo "|---|---|---|---|---|---|"
  for c in "${CASES[@]}"; do
    IFS='|' read -r name url edge_route core_route <<<"$c"
    e0="$(sum_count heart_edge_request_duration_seconds "$edge_route")"
    h0="$(sum_count heart_edge_forward_duration_seconds "")"
    c0="$(sum_count http_request_duration_seconds "$core_route")"
    wrk -t1 -c1 -d"$DURATION" --latency -H "Authorization: Bearer $token" -H 'Accept-Encoding: gzip' "$url" >"$work/wrk.out"
    e1="$(sum_count heart_edge_request_duration_seconds "$edge_route")"
    h1="$(sum_count heart_edge_forward_duration_seconds "")"
    c1="$(sum_count http_request_duration_seconds "$core_route")"
    edge="–" hop="–" core="–"
    [ -n "$edge_route" ] && edge="$(mean_us "$e0" "$e1")" && hop="$(mean_us "$h0" "$h1")"
    [ -n "$core_route" ] && core="$(mean_us "$c0" "$c1")"
    echo "| $name | $(wrk_field "$work/wrk.out" rps) | $(wrk_field "$work/wrk.out" p50) ms | $edge | $hop | $core |"
  done
  stop_pid "$pid"
  pid=""
done
