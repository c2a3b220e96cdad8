#!/usr/bin/env bash
# Two builds of the core side by side on the home feed's page 0 (issue 11), on MariaDB + Redis:
# for each build, the core's rate at 32 connections, its statements and Redis commands per page
# (SHOW GLOBAL STATUS and INFO commandstats deltas over the load, on a private Redis), and MariaDB
# alone on the page statement that build sends (mariadb-slap, same concurrency), rounds
# alternating A B A B.
#
#   A=/var/tmp/ab/A B=/var/tmp/ab/B bash bench/page-ab.sh     # folders holding a `heart-core`
#   ROUNDS=2 DURATION=8s POSTS=1000000 KEEP_DATA=1 …           # the defaults; KEEP_DATA=1 reuses
#                                                              # the `heart_bench` database
#
# Needs: MariaDB on 127.0.0.1:3306 (root, no password), redis-server, wrk, and `heart-datagen`
# in $CARGO_TARGET_DIR/release (or A's folder) when the data is made here.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${A:?A=<folder with heart-core>}" "${B:?B=<folder with heart-core>}"
ROUNDS="${ROUNDS:-2}"
DURATION="${DURATION:-8s}"
CONNECTIONS="${CONNECTIONS:-32}"
POSTS="${POSTS:-1000000}"
MEMBERS="${MEMBERS:-10000}"
DB="heart_bench"
work="$(mktemp -d)"
server_pid=""
. bench/lib.sh
cleanup() {
  stop_pid "$server_pid"
  stop_pid "${redis_pid:-}"
  rm -rf "$work"
}
trap cleanup EXIT
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 2; }

ab_backends "${REDIS_PORT:-6391}" "page-ab-$$"
. bench/load-env.sh
print_machine
bench_data "$DB" "$MEMBERS" "$POSTS"

API=http://127.0.0.1:8080
PAGE="$API/post/posts?member_id=1&page=0&size=10"
executes() { mysql_q "SHOW GLOBAL STATUS LIKE 'Com_stmt_execute'" | awk '{print $2}'; }
# Every command the private Redis has run (a script's inner calls count besides the script).
redis_calls() {
  redis-cli -p "${REDIS_PORT:-6391}" info commandstats | tr -d '\r' |
    awk -F'[=,:]' '/^cmdstat_/ && $1 != "cmdstat_info" {n += $3} END {print n + 0}'
}

# run <label> <folder>: the core of <folder> on :8080, page 0 under wrk, then MariaDB alone on
# the page statement it sent (captured from the general log at its first page, before the load:
# the values of a prepared statement are logged only when the log was on at its Prepare).
run() {
  local label="$1" folder="$2"
  "$folder/heart-core" >"$work/core.log" 2>&1 &
  server_pid=$!
  wait_ready "$server_pid" "$work/core.log" "$API/readyz"
  local token
  token="$(login_token "$API")"
  mysql_q "SET GLOBAL log_output='TABLE'; TRUNCATE mysql.general_log; SET GLOBAL general_log=1"
  curl -sf -o "$work/page-$label.json" -H "Authorization: Bearer $token" "$PAGE"
  mysql_q "SET GLOBAL general_log=0"
  local sql
  sql="$(mysql_q "SELECT CONVERT(argument USING utf8mb4) FROM mysql.general_log
    WHERE command_type='Execute' AND argument LIKE '%image_key%' ORDER BY event_time DESC LIMIT 1" | tr '\n' ' ')"
  mysql_q "TRUNCATE mysql.general_log; SET GLOBAL log_output='FILE'"
  wrk -t2 -c"$CONNECTIONS" -d3s -H "Authorization: Bearer $token" "$PAGE" >/dev/null
  local before after redis_before redis_after
  before="$(executes)"
  redis_before="$(redis_calls)"
  wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -H "Authorization: Bearer $token" "$PAGE" >"$work/wrk.txt"
  after="$(executes)"
  redis_after="$(redis_calls)"
  stop_pid "$server_pid"; server_pid=""
  local rps pages
  rps="$(wrk_field "$work/wrk.txt" rps)"
  pages="$(awk '/requests in/ {print $1}' "$work/wrk.txt")"
  local slap_rate="skipped (statement not captured)"
  if [ -n "$sql" ] && [[ "$sql" != *"?"* ]]; then
    local queries=$((CONNECTIONS * 600)) secs
    secs="$(mariadb-slap -uroot -h127.0.0.1 --create-schema="$DB" --concurrency="$CONNECTIONS" \
      --iterations=1 --number-of-queries="$queries" --query="$sql" 2>&1 |
      awk '/Average number of seconds/ {print $(NF-1)}')"
    slap_rate="$(awk -v q="$queries" -v s="$secs" 'BEGIN {printf "%.0f", q / s}')"
  fi
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$round" "$label" "$rps" \
    "$(wrk_field "$work/wrk.txt" p50)" "$(wrk_field "$work/wrk.txt" p99)" \
    "$(awk -v a="$before" -v b="$after" -v n="$pages" 'BEGIN {printf "%.2f", (b - a) / n}')" \
    "$(awk -v a="$redis_before" -v b="$redis_after" -v n="$pages" 'BEGIN {printf "%.2f", (b - a) / n}')" \
    "$slap_rate" "$(awk -v r="$rps" -v m="$slap_rate" 'BEGIN {if (m + 0 > 0) printf "%.0f %%", 100 * r / m; else print "n/a"}')" |
    tee -a "$work/table.md"
}

echo "| round | build | page 0 req/s | p50 ms | p99 ms | statements per page | Redis commands per page | MariaDB alone on its statement, statements/s | core ÷ MariaDB alone |" >"$work/table.md"
echo "|---|---|---|---|---|---|---|---|---|" >>"$work/table.md"
for round in $(seq 1 "$ROUNDS"); do
  run A "$A"
  run B "$B"
done
if ! cmp -s "$work/page-A.json" "$work/page-B.json"; then
  echo "A and B answered page 0 differently:" >&2
  diff <(python3 -m json.tool "$work/page-A.json") <(python3 -m json.tool "$work/page-B.json") | head -20 >&2
fi
echo
cat "$work/table.md"
