# shellcheck shell=bash
# Shell helpers of the benchmark scripts (sourced by bench/run.sh, bench/storm.sh,
# bench/edge-ab.sh and bench/proxy-floor.sh from the repository root).

# stop_pid <pid>: ends a background process of this script, if any, and waits for it to be gone.
stop_pid() {
  if [ -n "${1:-}" ]; then
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
  fi
}

# wait_ready <pid> <log> <url>…: until every url answers 2xx. If <pid> ends first, prints <log>
# and ends the script.
wait_ready() {
  local pid="$1" log="$2"; shift 2
  local url ready
  while true; do
    ready=1
    for url in "$@"; do curl -sf -o /dev/null "$url" || { ready=0; break; }; done
    [ "$ready" = 1 ] && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$log"; exit 1; }
    sleep 0.005
  done
}

# login_token <api base>: the access token of bench1@example.com (made by heart-datagen).
login_token() {
  curl -sf -X POST "$1/auth/login" -H 'content-type: application/json' \
    -d '{"email":"bench1@example.com","password":"benchmark-pass-1"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}

# edge_bench_setup <database> <redis port>: what the edge's scripts (edge-ab.sh,
# edge-breakdown.sh) share: a work folder, removed at exit with the stack and the private Redis
# they started; wrk checked; the stack's environment (bench/load-env.sh) on <database>; a private
# Redis on <redis port>.
edge_bench_setup() {
  work="$(mktemp -d)"
  pid="" redis_pid="" core_pid=""
  trap 'stop_pid "$pid"; stop_pid "$core_pid"; stop_pid "$redis_pid"; rm -rf "$work"' EXIT
  command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 2; }
  export MALLOC_MMAP_THRESHOLD_=4194304
  export HEART_DATABASE_URL="mysql://root@127.0.0.1:3306/$1"
  export HEART_DATA_DIR="$work/data"
  . bench/load-env.sh # the scripts run from the repository root
  start_private_redis "$2" "$work/redis.log"
}

# machine_line: the machine and the time, as a run's log begins.
machine_line() {
  echo "== $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(date -u '+%Y-%m-%d %H:%M UTC')"
}

# edge_bench_data <database> <folder with heart-datagen>: the edge scripts' data in <database>
# ($MEMBERS members, $POSTS posts), made afresh unless KEEP_DATA=1 and the database exists.
edge_bench_data() {
  if [ "${KEEP_DATA:-0}" = 1 ] && mariadb -uroot -h127.0.0.1 -e "USE $1" 2>/dev/null; then
    echo "reusing database $1"
  else
    mariadb -uroot -h127.0.0.1 -e "DROP DATABASE IF EXISTS $1; CREATE DATABASE $1 CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
    "$2/heart-datagen" --members "${MEMBERS:-1000}" --posts "${POSTS:-20000}" --follows-per-member 20 --blocks-per-member 1 >/dev/null
  fi
}

# wrk_row <wrk --latency output>: "req/s p50 p99 non-2xx" (latencies in wrk's units).
wrk_row() {
  awk '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /Non-2xx/ {bad=$5}
       END {printf "%s %s %s %s\n", rps, p50, p99, (bad==""?0:bad)}' "$1"
}

# mean_ms <row file> <column> <decimals>: the mean of a latency column of wrk_row rows (wrk's
# units: us, ms, s), in ms.
mean_ms() {
  awk -v col="$2" -v fmt="%.$3f" '{v=$col; if (v ~ /us$/) {sub("us","",v); v/=1000} else if (v ~ /ms$/) {sub("ms","",v)} else {sub("s","",v); v*=1000}; s+=v} END {printf fmt, s/NR}' "$1"
}

# cpu_ticks <pid>: the process's user + system CPU so far, in clock ticks (0 without a pid).
cpu_ticks() {
  if [ -n "${1:-}" ] && [ -r "/proc/$1/stat" ]; then
    # Fields 14 and 15 (utime, stime), counted after the command's closing parenthesis.
    sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
  else
    echo 0
  fi
}

# start_edge_stack <bin folder> <cache prefix>: the stack (`heart`: the edge on :8080 in front of
# the core on :8081) of <bin folder> with its `heart_edge.wasm`, logging into $work/server.log; sets
# pid and token (bench1's), and warms it: the feed page $PAGE cached at the edge, connections to
# the core pooled, the token's verified mark set.
start_edge_stack() {
  : "${work:?start_edge_stack needs work set}" "${PAGE:?start_edge_stack needs PAGE set}"
  export HEART_CACHE_PREFIX="$2"
  [ -f "$1/heart_edge.wasm" ] || { echo "$1/heart_edge.wasm is missing" >&2; exit 2; }
  HEART_EDGE_COMPONENT="$1/heart_edge.wasm" "$1/heart" >"$work/server.log" 2>&1 &
  pid=$!
  wait_ready "$pid" "$work/server.log" http://127.0.0.1:8080/healthz http://127.0.0.1:8081/readyz
  token="$(login_token http://127.0.0.1:8080)"
  for _ in 1 2 3; do
    curl -sf -o /dev/null -H "Authorization: Bearer $token" -H 'Accept-Encoding: gzip' "http://127.0.0.1:8080$PAGE"
    curl -sf -o /dev/null -H "Authorization: Bearer $token" "http://127.0.0.1:8080/member/profile?member_id=2"
  done
}

# edge_host_env <core origin> <edge secret> <listen address>: sets the array edge_env to the
# environment `heart-edge-host` runs with on <listen address> in front of the core at <core origin>
# (which must be answering: its JWKS is read), on $HEART_REDIS_URL and $HEART_CACHE_PREFIX. Run it
# as `env "${edge_env[@]}" heart-edge-host`, so $! is the host's own pid.
edge_host_env() {
  edge_env=(
    HEART_EDGE_VAR_CORE_URL="$1"
    HEART_EDGE_VAR_JWKS="$(curl -sf "$1/.well-known/jwks.json")"
    HEART_EDGE_VAR_EDGE_SECRET="$2"
    HEART_EDGE_VAR_REDIS_URL="$HEART_REDIS_URL"
    HEART_EDGE_VAR_CACHE_PREFIX="$HEART_CACHE_PREFIX"
    HEART_EDGE_LISTEN="$3"
  )
}

# start_split_stack <bin folder> <cache prefix>: as start_edge_stack, but edge and core as two
# processes, as they are deployed: `heart-core` on :8081 and `heart-edge-host` on :8080 (the
# folder's `heart_edge.wasm`), each with its own runtime. Sets pid (the edge) and core_pid.
start_split_stack() {
  : "${work:?start_split_stack needs work set}" "${PAGE:?start_split_stack needs PAGE set}"
  export HEART_CACHE_PREFIX="$2"
  [ -f "$1/heart_edge.wasm" ] || { echo "$1/heart_edge.wasm is missing" >&2; exit 2; }
  local secret
  secret="$(head -c 48 /dev/urandom | od -An -tx1 | tr -d ' \n' | head -c 48)"
  HEART_EDGE_SECRET="$secret" HEART_LISTEN_ADDR=127.0.0.1:8081 HEART_ADMIN_LISTEN_ADDR=127.0.0.1:9091 \
    "$1/heart-core" >"$work/core.log" 2>&1 &
  core_pid=$!
  wait_ready "$core_pid" "$work/core.log" http://127.0.0.1:8081/readyz
  edge_host_env http://127.0.0.1:8081 "$secret" 127.0.0.1:8080
  env "${edge_env[@]}" HEART_EDGE_COMPONENT="$1/heart_edge.wasm" \
    "$1/heart-edge-host" >"$work/server.log" 2>&1 &
  pid=$!
  wait_ready "$pid" "$work/server.log" http://127.0.0.1:8080/healthz
  token="$(login_token http://127.0.0.1:8080)"
  for _ in 1 2 3; do
    curl -sf -o /dev/null -H "Authorization: Bearer $token" -H 'Accept-Encoding: gzip' "http://127.0.0.1:8080$PAGE"
    curl -sf -o /dev/null -H "Authorization: Bearer $token" "http://127.0.0.1:8080/member/profile?member_id=2"
  done
}

# start_private_redis <port> <log>: a redis-server of this run's own (so INFO commandstats counts
# this run's commands only), answering before this returns; sets redis_pid and HEART_REDIS_URL.
# A port still held by another server (an earlier run's, shutting down) is refused, not shared.
start_private_redis() {
  if redis-cli -p "$1" ping >/dev/null 2>&1; then
    echo "port $1 already has a Redis: stop it or set REDIS_PORT" >&2
    return 1
  fi
  redis-server --port "$1" --save '' --appendonly no >"$2" 2>&1 &
  redis_pid=$!
  until redis-cli -p "$1" ping >/dev/null 2>&1; do
    kill -0 "$redis_pid" 2>/dev/null || { cat "$2" >&2; return 1; }
    sleep 0.05
  done
  export HEART_REDIS_URL="redis://127.0.0.1:$1"
}

# upload_memory <edge pid> <api base> <token>: 16 concurrent uploads of a 10 MB part each through
# the edge (random bytes: the core refuses them as images after reading them, so each 10 MB goes
# through the edge whole), while the edge's resident memory is sampled every 20 ms. Sets idle_kb
# (before) and peak_kb, and the answers' status codes in $work/uploads.txt.
upload_memory() {
  local edge_pid="$1" api="$2" token="$3" now_kb
  local upload_pids=()
  if [ ! -f "$work/upload.body" ]; then
    {
      printf -- '--b\r\nContent-Disposition: form-data; name="member_id"\r\n\r\n1\r\n'
      printf -- '--b\r\nContent-Disposition: form-data; name="content"\r\n\r\nbig\r\n'
      printf -- '--b\r\nContent-Disposition: form-data; name="files"; filename="big.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
      head -c 10000000 /dev/urandom
      printf -- '\r\n--b--\r\n'
    } >"$work/upload.body"
  fi
  idle_kb="$(awk '/VmRSS/ {print $2}' "/proc/$edge_pid/status")"
  peak_kb="$idle_kb"
  : >"$work/uploads.txt"
  for _ in $(seq 16); do
    curl -s -o /dev/null -w '%{http_code}\n' -X POST -H "Authorization: Bearer $token" \
      -H 'Content-Type: multipart/form-data; boundary=b' --data-binary @"$work/upload.body" \
      "$api/post/registerPost" >>"$work/uploads.txt" &
    upload_pids+=($!)
  done
  while kill -0 "${upload_pids[@]}" 2>/dev/null; do
    now_kb="$(awk '/VmRSS/ {print $2}' "/proc/$edge_pid/status")"
    [ "$now_kb" -gt "$peak_kb" ] && peak_kb="$now_kb"
    sleep 0.02
  done
  wait "${upload_pids[@]}" 2>/dev/null || true
}

# print_machine: what the numbers were measured on, and when, and of which commit.
print_machine() {
  echo "== machine"
  echo "$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
  date -u '+%Y-%m-%d %H:%M UTC'
  git log -1 --format='commit %h %s' 2>/dev/null || true
}

# bench_data <database> <members> <posts>: a database of generated members and posts made by
# `$bin/heart-datagen`, or the one left by an earlier run with KEEP_DATA=1 (same sizes).
bench_data() {
  echo "== data: $2 members, $3 posts"
  if [ "${KEEP_DATA:-0}" = 1 ] && mariadb -uroot -h127.0.0.1 -e "USE $1" 2>/dev/null; then
    echo "reusing database $1"
  else
    mariadb -uroot -h127.0.0.1 -e "DROP DATABASE IF EXISTS $1; CREATE DATABASE $1 CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
    time "$bin/heart-datagen" --members "$2" --posts "$3" --follows-per-member 20 --blocks-per-member 1
  fi
}

# wrk_field <file> <what>: req/s, p50 or p99 (in ms), or the non-2xx count from wrk --latency output.
wrk_field() {
  awk -v what="$2" '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /Requests\/sec/ {rps = $2}
    /^ +50%/ {p50 = ms($2)}
    /^ +99%/ {p99 = ms($2)}
    /Non-2xx/ {non2xx = $5}
    END {
      if (what == "rps") printf "%.0f", rps
      else if (what == "p50") printf "%.2f", p50
      else if (what == "p99") printf "%.1f", p99
      else printf "%d", non2xx
    }' "$1"
}

# mysql_q <sql>: runs <sql> on the machine's MariaDB as root, rows without headers.
mysql_q() { mariadb -uroot -h127.0.0.1 -N --raw -e "$1"; }

# ab_backends <redis port> <cache prefix>: what an A/B script of two core builds runs on: the
# `heart_bench` database on the machine's MariaDB (`heart-datagen` from A's folder, else from
# $CARGO_TARGET_DIR/release, in `bin`), a private Redis on <redis port>, and a data folder in
# $work. Needs A, DB and work set.
ab_backends() {
  bin="$A"
  [ -x "$bin/heart-datagen" ] || bin="${CARGO_TARGET_DIR:-target}/release"
  export HEART_DATABASE_URL="mysql://root@127.0.0.1:3306/$DB"
  start_private_redis "$1" "$work/redis.log"
  export HEART_CACHE_PREFIX="$2"
  export HEART_DATA_DIR="$work/data"
}
