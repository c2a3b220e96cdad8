#!/usr/bin/env bash
# The home feed during a login storm, for one or more settings of the core side by side (A B A B:
# a fresh core per round, so each starts alike). Per round: feed page 0 alone, then the same feed
# while 4 connections log in; the logins' rate and refusals; the core's resident memory right
# after the storm and 3 s later. Only ratios within one run compare (BENCHMARKS.md).
#
#   bash bench/storm.sh                              # 2,000 members, 20,000 posts, as configured
#   SKIP_BUILD=1 KEEP_DATA=1 DURATION=8s bash bench/storm.sh
#   # A/B: each variant is a comma-separated list of environment settings ("default": none)
#   VARIANTS="default MALLOC_MMAP_THRESHOLD_=0" bash bench/storm.sh
#   # two builds: BIN_DIR=<folder holding heart-core> in a variant runs that folder's core
#   VARIANTS="BIN_DIR=/var/tmp/binA BIN_DIR=/var/tmp/binB" bash bench/storm.sh
#
# Needs what bench/run.sh needs: MariaDB on 127.0.0.1:3306 (root), redis-server, wrk.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
POSTS="${POSTS:-20000}"
MEMBERS="${MEMBERS:-2000}"
DURATION="${DURATION:-8s}"
CONNECTIONS="${CONNECTIONS:-32}"
VARIANTS="${VARIANTS:-default}"
ROUNDS="${ROUNDS:-2}"
DB="heart_storm"
work="$(mktemp -d)"
server_pid="" storm_pid="" redis_pid=""
. bench/lib.sh
stop_server() { stop_pid "$server_pid"; server_pid=""; }
cleanup() {
  stop_server
  stop_pid "$storm_pid"
  stop_pid "$redis_pid"
  rm -rf "$work"
}
trap cleanup EXIT

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 2; }
[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release -q -p heart-core -p heart-bench
bin="$CARGO_TARGET_DIR/release"
export MALLOC_MMAP_THRESHOLD_="${MALLOC_MMAP_THRESHOLD_:-4194304}" # as the core's image
export HEART_DATABASE_URL="mysql://root@127.0.0.1:3306/$DB"
REDIS_PORT="${REDIS_PORT:-6391}"
start_private_redis "$REDIS_PORT" "$work/redis.log"
export HEART_CACHE_PREFIX="storm-$$"
export HEART_DATA_DIR="$work/data"
. bench/load-env.sh

print_machine
bench_data "$DB" "$MEMBERS" "$POSTS"
# STORM_EMAIL=nobody@example.com: logins of an unknown member (401), verified against the dummy
# hash made with the configured HEART_ARGON2_* cost rather than the stored hash's own.
cat >"$work/login.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"${STORM_EMAIL:-bench2@example.com}","password":"benchmark-pass-1"}'
LUA

rss() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$server_pid/status"; }
feed() { # feed <output file>
  wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --timeout 10s --latency \
    -H "Authorization: Bearer $token" "$API/post/posts?member_id=1&page=0&size=10" >"$1"
}

API=http://127.0.0.1:8080
echo "| round | variant | feed req/s alone | p99 alone | req/s in storm | p99 in storm | p99 ratio | logins/s | logins refused | RSS after storm | 3 s later |" >"$work/table.md"
echo "|---|---|---|---|---|---|---|---|---|---|---|" >>"$work/table.md"
for round in $(seq 1 "$ROUNDS"); do
  for variant in $VARIANTS; do
    echo "== round $round: $variant"
    settings=()
    [ "$variant" = default ] || IFS=, read -ra settings <<<"$variant"
    dir="$bin"
    for s in "${settings[@]}"; do [[ "$s" == BIN_DIR=* ]] && dir="${s#BIN_DIR=}"; done
    env "${settings[@]}" "$dir/heart-core" >"$work/server.log" 2>&1 &
    server_pid=$!
    wait_ready "$server_pid" "$work/server.log" "$API/readyz"
    token="$(login_token "$API")"
    feed "$work/warm.out" # warm-up: caches, pool, page plans
    feed "$work/alone.out"
    wrk -t1 -c4 -d"$DURATION" --timeout 10s -s "$work/login.lua" "$API/auth/login" >"$work/storm.out" &
    storm_pid=$!
    feed "$work/during.out"
    wait "$storm_pid" || true
    storm_pid=""
    after="$(rss)"
    sleep 3
    later="$(rss)"
    grep -E "Requests/sec|99%" "$work/alone.out" | sed 's/^/  alone: /'
    grep -E "Requests/sec|99%" "$work/during.out" | sed 's/^/  storm: /'
    grep -E "Requests/sec|Non-2xx|requests in" "$work/storm.out" | sed 's/^/  logins: /'
    p99a="$(wrk_field "$work/alone.out" p99)"
    p99s="$(wrk_field "$work/during.out" p99)"
    echo "| $round | \`$variant\` | $(wrk_field "$work/alone.out" rps) | $p99a ms | $(wrk_field "$work/during.out" rps) | $p99s ms | $(awk -v a="$p99a" -v s="$p99s" 'BEGIN {printf "%.2f×", s / a}') | $(wrk_field "$work/storm.out" rps) | $(wrk_field "$work/storm.out" non2xx) | $after MB | $later MB |" >>"$work/table.md"
    stop_server
  done
done
echo
echo "== summary (each row's ratio is the feed's p99 during the storm ÷ its p99 alone, same core)"
cat "$work/table.md"
