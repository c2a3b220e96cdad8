#!/usr/bin/env bash
# The cold jump to a deep page (issue 11), two builds of the core side by side, rounds alternating
# A B A B: for each build, a fresh core on MariaDB + Redis, then `page=10000` of the home feed
# (OFFSET 100,000: never reached by scrolling) at 1 connection, at 32 connections, and at 1
# connection again right after that load and 5 s later. MariaDB's slow log (statements of 0.3 s
# or more, with their plans) counts the statements that read all of `posts` and sorted it instead
# of reading the feed's index in order.
#
#   A=/var/tmp/ab/A B=/var/tmp/ab/B bash bench/cold-jump-ab.sh   # folders holding a `heart-core`
#   ROUNDS=2 DURATION=5s KEEP_DATA=1 …                           # the defaults; KEEP_DATA=1 reuses
#                                                                # the `heart_bench` database
#   SLOW_LOGS=<folder>                                           # keeps MariaDB's slow logs there
#
# Needs: MariaDB on 127.0.0.1:3306 (root, no password; the script sets its slow log globally and
# turns it off again), redis-server, wrk, and `heart-datagen` in A's folder or
# $CARGO_TARGET_DIR/release when the data is made here.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${A:?A=<folder with heart-core>}" "${B:?B=<folder with heart-core>}"
ROUNDS="${ROUNDS:-2}"
DURATION="${DURATION:-5s}"
POSTS="${POSTS:-1000000}"
MEMBERS="${MEMBERS:-10000}"
DB="heart_bench"
work="$(mktemp -d)"
chmod 777 "$work" # MariaDB writes the slow log here
server_pid=""
. bench/lib.sh
cleanup() {
  stop_pid "$server_pid"
  stop_pid "${redis_pid:-}"
  mysql_q "SET GLOBAL slow_query_log=0; SET GLOBAL long_query_time=10" || true
  rm -rf "$work"
}
trap cleanup EXIT
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 2; }

ab_backends "${REDIS_PORT:-6392}" "cold-ab-$$"
export MALLOC_MMAP_THRESHOLD_=4194304
. bench/load-env.sh
print_machine
bench_data "$DB" "$MEMBERS" "$POSTS"

API=http://127.0.0.1:8080
DEEP="$API/post/posts?member_id=1&page=10000&size=10"

# load <label> <connections>: wrk on the deep page; prints req/s, p50, p99.
load() {
  local threads=2
  [ "$2" -lt 2 ] && threads=1
  wrk -t"$threads" -c"$2" -d"$DURATION" --timeout 10s --latency \
    -H "Authorization: Bearer $token" "$DEEP" >"$work/wrk.out"
  printf '| %s | %s | %s | %s ms | %s ms |\n' "$label" "$1" \
    "$(wrk_field "$work/wrk.out" rps)" "$(wrk_field "$work/wrk.out" p50)" "$(wrk_field "$work/wrk.out" p99)"
}

echo "| build, round | case | req/s | p50 | p99 |"
echo "|---|---|---|---|---|"
summary=()
for round in $(seq 1 "$ROUNDS"); do
  for build in A B; do
    folder="${!build}"
    label="$build, round $round"
    mysql_q "SET GLOBAL slow_query_log=0; SET GLOBAL log_output='FILE';
      SET GLOBAL slow_query_log_file='$work/slow-$build-$round.log'; SET GLOBAL long_query_time=0.3;
      SET GLOBAL log_slow_verbosity='query_plan,explain'; SET GLOBAL slow_query_log=1"
    "$folder/heart-core" >"$work/core.log" 2>&1 &
    server_pid=$!
    wait_ready "$server_pid" "$work/core.log" "$API/readyz"
    token="$(login_token "$API")"
    load "1 connection, before any load" 1
    load "32 connections" 32
    load "1 connection, right after" 1
    sleep 5
    load "1 connection, 5 s later" 1
    stop_pid "$server_pid"
    server_pid=""
    mysql_q "SET GLOBAL slow_query_log=0"
    slow="$work/slow-$build-$round.log"
    [ -n "${SLOW_LOGS:-}" ] && mkdir -p "$SLOW_LOGS" && cp "$slow" "$SLOW_LOGS/"
    summary+=("| $label | $(grep -c '^# Query_time' "$slow" || true) | $(grep -c '^# explain: 3.*DERIVED.*ALL.*filesort' "$slow" || true) |")
  done
done
echo
echo "Statements of 0.3 s or more (MariaDB's slow log), and how many of them read all of \`posts\`"
echo "and sorted it (their plan's derived table: type ALL, Using filesort):"
echo
echo "| build, round | slow statements | whole-table sorts |"
echo "|---|---|---|"
printf '%s\n' "${summary[@]}"
