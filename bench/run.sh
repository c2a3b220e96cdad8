#!/usr/bin/env bash
# Benchmarks of Heart to Heart on MySQL/MariaDB + Redis, on this machine. BENCHMARKS.md records
# the numbers it printed; rerun it to check them.
#
#   bash bench/run.sh                 # 1,000,000 posts (generating them takes a few minutes)
#   POSTS=100000 bash bench/run.sh    # quicker
#   KEEP_DATA=1 bash bench/run.sh     # reuse the database of the previous run (same POSTS/MEMBERS)
#
# Part 1, the core alone (release `heart-core` on :8080): start to ready, memory at idle, feed
# page 0 and a deep page, one member's posts, profile, a trivial handler (/healthz), registerPost
# with one 200 KB JPEG, login (Argon2id), the feed during a login storm, memory under load.
# Part 2, the stack (release `heart`: the edge on :8080 in front of the core on :8081): the same
# feed page cached at the edge, from the core directly, and a trivial handler; a forwarded request
# (profile) through the edge and directly, for the edge's added latency.
#
# Needs: MariaDB on 127.0.0.1:3306 (root, no password), Redis on 127.0.0.1:6379, wrk
# (apt-get install wrk), python3 (for Pillow, installed into a venv here, to make the JPEG).
# Load generator and server share this machine's cores: the numbers are for the pair.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
POSTS="${POSTS:-1000000}"
MEMBERS="${MEMBERS:-10000}"
DURATION="${DURATION:-15s}"
CONNECTIONS="${CONNECTIONS:-32}"
DB="heart_bench"
work="$(mktemp -d)"
server_pid=""
summary="$work/summary.md"
stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}
cleanup() {
  stop_server
  [ -n "${storm_pid:-}" ] && kill "$storm_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 2; }
cargo build --release -q -p heart-core -p heart-stack -p heart-bench
bin="$CARGO_TARGET_DIR/release"

export HEART_DATABASE_URL="mysql://root@127.0.0.1:3306/$DB"
export HEART_REDIS_URL="redis://127.0.0.1:6379"
export HEART_CACHE_PREFIX="bench-$$"
export HEART_DATA_DIR="$work/data"
export HEART_RATE_LIMITS_ENABLED=false
export HEART_LOG_FORMAT=json RUST_LOG=warn
export HEART_DATABASE_MAX_CONNECTIONS=32
# The edge's own limits, out of the way of a load from one address and one member.
export HEART_EDGE_VAR_RATE_LIMIT_EDGE_REQUESTS_PER_IP=100000000/60s
export HEART_EDGE_VAR_RATE_LIMIT_EDGE_REQUESTS_PER_MEMBER=100000000/60s
export HEART_EDGE_CACHE_DIR="${HEART_EDGE_CACHE_DIR:-/var/tmp/heart-edge-cache}"

echo "== machine"
echo "$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
date -u '+%Y-%m-%d %H:%M UTC'
git log -1 --format='commit %h %s' 2>/dev/null || true

echo "== data: $MEMBERS members, $POSTS posts"
if [ "${KEEP_DATA:-0}" = 1 ] && mariadb -uroot -h127.0.0.1 -e "USE $DB" 2>/dev/null; then
  echo "reusing database $DB"
else
  mariadb -uroot -h127.0.0.1 -e "DROP DATABASE IF EXISTS $DB; CREATE DATABASE $DB CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
  time "$bin/heart-datagen" --members "$MEMBERS" --posts "$POSTS" --follows-per-member 20 --blocks-per-member 1
fi

# A 200 KB JPEG (noise compresses badly, so its size is its pixels) and the multipart body of
# registerPost around it.
python3 -m venv "$work/venv" && "$work/venv/bin/pip" install -q --disable-pip-version-check pillow
"$work/venv/bin/python" - "$work" <<'PY'
import io, os, random, sys
from PIL import Image
work = sys.argv[1]
random.seed(7)
side = 445  # about 200 KB of noise at quality 92
img = Image.frombytes("RGB", (side, side), bytes(random.getrandbits(8) for _ in range(side * side * 3)))
buf = io.BytesIO(); img.save(buf, "JPEG", quality=92)
jpeg = buf.getvalue()
boundary = "heartbenchboundary"
body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"member_id\"\r\n\r\n1\r\n"
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"content\"\r\n\r\nbenchmark post\r\n"
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"photo.jpg\"\r\n"
        f"Content-Type: image/jpeg\r\n\r\n").encode() + jpeg + f"\r\n--{boundary}--\r\n".encode()
open(os.path.join(work, "post.body"), "wb").write(body)
print(f"JPEG: {len(jpeg)} bytes, request body: {len(body)} bytes")
PY
cat > "$work/post.lua" <<LUA
local f = assert(io.open("$work/post.body", "rb"))
wrk.method = "POST"
wrk.body = f:read("*all")
f:close()
wrk.headers["Content-Type"] = "multipart/form-data; boundary=heartbenchboundary"
LUA
cat > "$work/login.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"bench2@example.com","password":"benchmark-pass-1"}'
LUA

rss() { awk '/VmRSS/ {printf "%.1f MB", $2/1024}' "/proc/$server_pid/status"; }
start_server() { # start_server <binary> <ready url>
  local start; start=$(date +%s%N)
  "$1" >"$work/server.log" 2>&1 &
  server_pid=$!
  until curl -sf "$2" >/dev/null; do
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log"; exit 1; }
    sleep 0.005
  done
  echo "ready after $(( ($(date +%s%N) - start) / 1000000 )) ms"
}
login_token() { # login_token <api base>
  curl -sf -X POST "$1/auth/login" -H 'content-type: application/json' \
    -d '{"email":"bench1@example.com","password":"benchmark-pass-1"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}
# load <label> <url> [wrk args…]: prints wrk's summary and adds a row to the summary table.
load() {
  local label="$1" url="$2"; shift 2
  local c="${LOAD_CONNECTIONS:-$CONNECTIONS}"
  echo "== $label ($c connections, $DURATION)"
  wrk -t2 -c"$c" -d"$DURATION" --timeout 10s --latency -H "Authorization: Bearer $token" "$@" "$url" >"$work/wrk.out"
  grep -E "Requests/sec|Latency  |50%|99%|Non-2xx|Socket errors" "$work/wrk.out"
  awk -v label="$label" -v c="$c" '
    /Requests\/sec/ {rps=$2}
    /^ +50%/ {p50=$2}
    /^ +99%/ {p99=$2}
    /Non-2xx/ {non2xx=$5}
    END {printf "| %s | %s | %s | %s | %s | %s |\n", label, c, rps, p50, p99, (non2xx==""?0:non2xx)}' \
    "$work/wrk.out" >>"$summary"
}
{
  echo "| what | connections | req/s | p50 | p99 | non-2xx |"
  echo "|---|---|---|---|---|---|"
} >"$summary"

echo
echo "######## part 1: the core alone (heart-core on :8080) ########"
echo "== start to ready"
start_server "$bin/heart-core" http://127.0.0.1:8080/readyz
echo "resident memory at idle: $(rss)"
API=http://127.0.0.1:8080
token="$(login_token $API)"
deep=10000
load "core: home feed page 0 (size 10)" "$API/post/posts?member_id=1&page=0&size=10"
echo "resident memory under load: $(rss)"
load "core: home feed page $deep (size 10)" "$API/post/posts?member_id=1&page=$deep&size=10"
# The same depth through the keyset cursor the answers carry (the app ignores it; an extra).
cursor="$(curl -sf -H "Authorization: Bearer $token" "$API/post/posts?member_id=1&page=$((deep - 1))&size=10" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["next_cursor"])')"
load "core: home feed at the same depth by cursor" "$API/post/posts?member_id=1&size=10&cursor=$cursor"
load "core: one member's posts, page 0" "$API/post/posts/2?page=0&size=10"
load "core: profile" "$API/member/profile?member_id=2"
load "core: /healthz (trivial handler)" "$API/healthz"
LOAD_CONNECTIONS=4 load "core: registerPost, one 200 KB JPEG" "$API/post/registerPost" -s "$work/post.lua"
LOAD_CONNECTIONS=4 load "core: login (Argon2id 19 MiB, 2 passes)" "$API/auth/login" -s "$work/login.lua"
echo "== home feed page 0 during a login storm (4 connections logging in meanwhile)"
wrk -t1 -c4 -d"$DURATION" -s "$work/login.lua" "$API/auth/login" >"$work/storm.out" &
storm_pid=$!
load "core: home feed page 0 during a login storm" "$API/post/posts?member_id=1&page=0&size=10"
wait "$storm_pid" || true
storm_pid=""
grep -E "Requests/sec" "$work/storm.out" | sed 's/^/logins during the storm: /'
echo "resident memory after the runs: $(rss)"
grep -c '"level":"ERROR"' "$work/server.log" | sed 's/^/server errors logged: /' || true
grep '"level":"ERROR"' "$work/server.log" | cut -c1-300 | sort | uniq -c | sort -rn | head -5 || true
stop_server

echo
echo "######## part 2: the stack (edge on :8080, core on :8081) ########"
echo "== start to ready (compiled component cached in $HEART_EDGE_CACHE_DIR after the first start)"
start_server "$bin/heart" http://127.0.0.1:8080/healthz
echo "resident memory at idle (edge and core, one process): $(rss)"
EDGE=http://127.0.0.1:8080
CORE=http://127.0.0.1:8081
token="$(login_token $EDGE)"
page="/post/posts?member_id=1&page=0&size=10"
curl -s -o /dev/null -D - -H "Authorization: Bearer $token" "$EDGE$page" | grep -i x-heart-cache || true
curl -s -o /dev/null -D - -H "Authorization: Bearer $token" "$EDGE$page" | grep -i x-heart-cache || true
load "edge: home feed page 0, cached" "$EDGE$page"
load "core direct: the same page" "$CORE$page"
load "edge: /healthz (answered by the component)" "$EDGE/healthz"
load "core direct: /healthz (trivial native handler)" "$CORE/healthz"
load "edge: profile (forwarded to the core)" "$EDGE/member/profile?member_id=2"
load "core direct: profile" "$CORE/member/profile?member_id=2"
echo "resident memory under load (edge and core): $(rss)"
stop_server

echo
echo "######## summary ########"
cat "$summary"
