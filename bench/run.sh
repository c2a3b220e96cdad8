#!/usr/bin/env bash
# Benchmarks of Heart to Heart on MySQL/MariaDB + Redis, on this machine. BENCHMARKS.md records
# the numbers it printed; rerun it to check them.
#
#   bash bench/run.sh                 # 1,000,000 posts (generating them takes a few minutes)
#   POSTS=100000 bash bench/run.sh    # quicker
#   KEEP_DATA=1 bash bench/run.sh     # reuse the database of the previous run (same POSTS/MEMBERS)
#   EDGE_ONLY=1 bash bench/run.sh     # parts 2 and 3 only (the edge)
#
# Part 1, the core alone (release `heart-core` on :8080): start to ready, memory at idle, feed
# page 0 and a deep page, one member's posts, profile, a trivial handler (/healthz), registerPost
# with one 200 KB JPEG, login (Argon2id), the feed during a login storm, memory under load.
# Part 2, the stack (release `heart`: the edge on :8080 in front of the core on :8081): the same
# feed page cached at the edge, from the core directly, and a trivial handler; a forwarded request
# (profile) through the edge and directly, for the edge's added latency, at 32 and at 1
# connection; Redis commands per request (INFO commandstats deltas on a private redis-server).
# Part 3, the edge host alone (release `heart-edge-host` in front of `heart-core`): its resident
# memory under 16 concurrent 10 MB uploads, and /healthz and a cached page with 200 slow-head and
# 200 slow-body clients connected, side by side with the same loads without them.
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
. bench/lib.sh
stop_server() { stop_pid "$server_pid"; server_pid=""; }
cleanup() {
  stop_server
  [ -n "${core_pid:-}" ] && kill "$core_pid" 2>/dev/null
  [ -n "${slow_pid:-}" ] && kill "$slow_pid" 2>/dev/null
  stop_pid "${redis_pid:-}"
  [ -n "${storm_pid:-}" ] && kill "$storm_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 2; }
# SKIP_BUILD=1: the release binaries in $CARGO_TARGET_DIR are already built from this checkout.
[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release -q -p heart-core -p heart-stack -p heart-bench -p heart-edge-host
bin="$CARGO_TARGET_DIR/release"
# As the core's image sets it (docker/core-api.Dockerfile): large allocations always mmapped, so
# freed Argon2 memory leaves the process.
export MALLOC_MMAP_THRESHOLD_="${MALLOC_MMAP_THRESHOLD_:-4194304}"

export HEART_DATABASE_URL="mysql://root@127.0.0.1:3306/$DB"
# A private Redis, so INFO commandstats counts this run's commands only.
REDIS_PORT="${REDIS_PORT:-6390}"
start_private_redis "$REDIS_PORT" "$work/redis.log"
export HEART_CACHE_PREFIX="bench-$$"
export HEART_DATA_DIR="$work/data"
# The pool keeps its default size (2 per CPU, at least 4: 4 here).
. bench/load-env.sh # the scripts run from the repository root

print_machine
echo
bench_data "$DB" "$MEMBERS" "$POSTS"

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

rss() { awk '/VmRSS/ {printf "%.1f MB", $2/1024}' "/proc/${1:-$server_pid}/status"; }
start_server() { # start_server <binary> <ready url> [VAR=value…]: starts it in the background with
  # those variables added to its environment, and waits until it is ready
  local start; start=$(date +%s%N)
  env "${@:3}" "$1" >"$work/server.log" 2>&1 &
  server_pid=$!
  wait_ready "$server_pid" "$work/server.log" "$2"
  echo "ready after $(( ($(date +%s%N) - start) / 1000000 )) ms"
}
# db_counts <file>: MariaDB's own counters (the whole server: run on an otherwise idle database).
# Questions = statements from clients; Com_stmt_execute = prepared statements run;
# Com_admin_commands = COM_PING and the like (sqlx's pool pings on acquire by default).
db_counts() {
  mariadb -uroot -h127.0.0.1 -N -e "SHOW GLOBAL STATUS WHERE Variable_name IN
    ('Questions','Com_stmt_execute','Com_stmt_prepare','Com_admin_commands','Com_select')" |
    sort >"$1"
}
# redis_counts <file>: "<command> <calls>" per command from INFO commandstats. Redis counts a
# script's inner commands under their own names (incr, get, …) as well as the script itself
# (evalsha), so the deltas show both: round trips are the evalsha (+ set, + the core's own) calls.
redis_counts() {
  redis-cli -p "$REDIS_PORT" info commandstats | tr -d '\r' |
    awk -F'[:=,]' '/^cmdstat_/ {sub("cmdstat_", "", $1); print $1, $3}' | sort >"$1"
}
# redis_per_request <before> <after> <requests>: the deltas per request, e.g. "evalsha 1.00 get 2.00".
redis_per_request() {
  join -a2 -e0 -o 0,1.2,2.2 "$1" "$2" |
    awk -v n="$3" '$3 > $2 && n > 0 {printf "%s %.2f, ", $1, ($3-$2)/n}' | sed 's/, $//'
}
# load <label> <url> [wrk args…]: prints wrk's summary and adds a row to the summary table.
load() {
  local label="$1" url="$2"; shift 2
  local c="${LOAD_CONNECTIONS:-$CONNECTIONS}"
  local t=2; [ "$c" -lt 2 ] && t=1
  echo "== $label ($c connections, $DURATION)"
  redis_counts "$work/redis.before"
  db_counts "$work/db.before"
  wrk -t"$t" -c"$c" -d"$DURATION" --timeout 10s --latency -H "Authorization: Bearer $token" "$@" "$url" >"$work/wrk.out"
  grep -E "Requests/sec|Latency  |50%|99%|Non-2xx|Socket errors" "$work/wrk.out"
  redis_counts "$work/redis.after"
  db_counts "$work/db.after"
  local requests; requests="$(awk '/requests in/ {print $1}' "$work/wrk.out")"
  local per; per="$(redis_per_request "$work/redis.before" "$work/redis.after" "$requests")"
  # The two db_counts queries themselves add 2 Questions (and 2 Com_select): negligible.
  local db; db="$(redis_per_request "$work/db.before" "$work/db.after" "$requests")"
  echo "  redis commands per request: ${per:-none}"
  echo "  database per request: ${db:-none}"
  echo "| $label | ${per:-none} | ${db:-none} |" >>"$work/redis.md"
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

if [ "${EDGE_ONLY:-0}" != 1 ]; then
echo
echo "######## part 1: the core alone (heart-core on :8080) ########"
echo "== start to ready"
start_server "$bin/heart-core" http://127.0.0.1:8080/readyz
echo "resident memory at idle: $(rss)"
API=http://127.0.0.1:8080
token="$(login_token $API)"
# The page-0 statement as the core runs it, from the general log, for the mariadb-slap comparison
# below. Taken from the core's first page-0 request: MariaDB writes a prepared statement's values
# into the logged Execute only when the log was on at its Prepare, and the pooled connections keep
# their prepared statements for the whole run (on 2026-12-03 a capture after the loads got `?`s).
# (log_output TABLE: the server may not write into this script's private temporary folder.)
mariadb -uroot -h127.0.0.1 -e "SET GLOBAL log_output='TABLE'; TRUNCATE mysql.general_log; SET GLOBAL general_log=1"
curl -sf -o /dev/null -H "Authorization: Bearer $token" "$API/post/posts?member_id=1&page=0&size=10"
mariadb -uroot -h127.0.0.1 -e "SET GLOBAL general_log=0"
page_sql="$(mariadb -uroot -h127.0.0.1 -N --raw -e "SELECT CONVERT(argument USING utf8mb4) FROM mysql.general_log
  WHERE command_type='Execute' AND argument LIKE '%image_key%' ORDER BY event_time DESC LIMIT 1" | tr '\n' ' ')"
mariadb -uroot -h127.0.0.1 -e "TRUNCATE mysql.general_log; SET GLOBAL log_output='FILE'"
deep=10000
load "core: home feed page 0 (size 10)" "$API/post/posts?member_id=1&page=0&size=10"
echo "resident memory under load: $(rss)"
load "core: home feed page $deep (size 10), cold: never reached by scrolling" "$API/post/posts?member_id=1&page=$deep&size=10"
# A cold jump alone: the same viewer asking page $deep again is never a seek (its remembered spot
# is after page $deep by then), so every request is an OFFSET with the viewer's blocks listed.
LOAD_CONNECTIONS=1 load "core: cold jump to page $deep (1 connection)" "$API/post/posts?member_id=1&page=$deep&size=10"
LOAD_CONNECTIONS=1 load "core: home feed page 0 (1 connection)" "$API/post/posts?member_id=1&page=0&size=10"
# Sequential scrolling at depth $deep: 64 viewers (members 1..64), each first jumps to page
# $((deep - 1)) (cold, not timed), then wrk asks each viewer's next page in turn (page $deep,
# $((deep + 1)), …): the app's scrolling, which the core serves as keyset seeks.
viewers=64
: >"$work/viewers.txt"
for v in $(seq 1 $viewers); do
  t="$(curl -sf -X POST "$API/auth/login" -H 'content-type: application/json' \
    -d "{\"email\":\"bench$v@example.com\",\"password\":\"benchmark-pass-1\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')"
  echo "$v $t" >>"$work/viewers.txt"
done
while read -r v t; do
  echo "curl -sf -o /dev/null -H 'Authorization: Bearer $t' '$API/post/posts?member_id=$v&page=$((deep - 1))&size=10'"
done <"$work/viewers.txt" | xargs -d "\n" -P4 -I{} sh -c {}
# A viewer's next page is asked only once its previous page has been answered (as the app does:
# it scrolls on what it has shown); the request id carries the viewer back to `response`.
cat >"$work/scroll.lua" <<LUA
local threads = 0
function setup(thread) thread:set("id", threads); threads = threads + 1 end
function init(args)
  ids, tokens, pages, busy, turn = {}, {}, {}, {}, 0
  local n = 0
  for line in io.lines("$work/viewers.txt") do
    if n % 2 == id then
      local v, t = line:match("(%d+) (%S+)")
      ids[#ids + 1] = v; tokens[#tokens + 1] = t; pages[#pages + 1] = $deep
    end
    n = n + 1
  end
end
function request()
  for _ = 1, #ids do
    turn = turn % #ids + 1
    if not busy[turn] then break end
  end
  busy[turn] = true
  local page = pages[turn]; pages[turn] = page + 1
  return wrk.format("GET", "/post/posts?member_id=" .. ids[turn] .. "&page=" .. page .. "&size=10",
    { ["Authorization"] = "Bearer " .. tokens[turn], ["x-request-id"] = "v" .. turn .. "-p" .. page })
end
function response(status, headers, body)
  local rid = headers["x-request-id"]
  local v = rid and tonumber(rid:match("^v(%d+)-"))
  if v then busy[v] = nil end
end
LUA
load "core: home feed pages $deep, $((deep + 1)), … scrolled in order (64 viewers)" "$API/post/posts" -s "$work/scroll.lua"
# MariaDB alone on the page-0 statement (captured above), replayed by mariadb-slap at the same
# concurrency, text protocol. The core's rate is compared with it.
# A statement still showing `?` placeholders cannot be run by mariadb-slap: then the comparison is
# skipped, said plainly, rather than guessed.
if [ -n "$page_sql" ] && [[ "$page_sql" == *"?"* ]]; then
  echo "the logged page-0 statement still has ? placeholders: mariadb-slap comparison skipped" >&2
  echo "$page_sql" | cut -c1-300 >&2
elif [ -n "$page_sql" ]; then
  echo "== mariadb-slap: the page-0 statement, $CONNECTIONS clients"
  echo "$page_sql" | cut -c1-300
  queries=$((CONNECTIONS * 600))
  slap="$(mariadb-slap -uroot -h127.0.0.1 --create-schema="$DB" --concurrency="$CONNECTIONS" \
    --iterations=1 --number-of-queries="$queries" --query="$page_sql" 2>&1)"
  echo "$slap" | grep -E "Average|Minimum" || true
  secs="$(echo "$slap" | awk '/Average number of seconds/ {print $(NF-1)}')"
  echo "| mariadb-slap: the page-0 statement alone | $CONNECTIONS | $(awk -v q="$queries" -v s="$secs" 'BEGIN {printf "%.2f", q / s}') | | | |" >>"$work/slap.md"
  echo "statements/s: $(awk -v q="$queries" -v s="$secs" 'BEGIN {printf "%.0f", q / s}')"
else
  echo "the page-0 statement was not found in the general log" >&2
fi
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
# The hashing threads free their Argon2 memory after a second without work (auth/password.rs).
sleep 3
echo "resident memory 3 s after the runs: $(rss)"
grep -c '"level":"ERROR"' "$work/server.log" | sed 's/^/server errors logged: /' || true
grep '"level":"ERROR"' "$work/server.log" | cut -c1-300 | sort | uniq -c | sort -rn | head -5 || true
stop_server
fi

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
gzip=(-H "Accept-Encoding: gzip")
load "edge: home feed page 0, cached (Accept-Encoding: gzip, as OkHttp sends)" "$EDGE$page" "${gzip[@]}"
load "core direct: the same page (same header; the core answers plain JSON)" "$CORE$page" "${gzip[@]}"
load "edge: /healthz (answered by the component)" "$EDGE/healthz"
load "core direct: /healthz (trivial native handler)" "$CORE/healthz"
load "edge: profile (forwarded to the core)" "$EDGE/member/profile?member_id=2"
load "core direct: profile" "$CORE/member/profile?member_id=2"
LOAD_CONNECTIONS=1 load "edge: profile (forwarded to the core)" "$EDGE/member/profile?member_id=2"
LOAD_CONNECTIONS=1 load "core direct: profile" "$CORE/member/profile?member_id=2"
LOAD_CONNECTIONS=1 load "edge: home feed page 0, cached" "$EDGE$page" "${gzip[@]}"
load "edge: public route, bad token (401, counted per IP)" "$EDGE/member/profile?member_id=2" -H "Authorization: Bearer not-a-token"
echo "resident memory under load (edge and core): $(rss)"
echo "== the app's mix (heart-load, $CONNECTIONS virtual users, $DURATION, through the edge)"
"$bin/heart-load" --url "$EDGE" --connections "$CONNECTIONS" --duration "$DURATION" \
  --members "$MEMBERS" --allow-5xx | tee "$work/mix.txt"
stop_server

echo
echo "######## part 3: the edge host alone (heart-edge-host on :8080, heart-core on :8081) ########"
HEART_EDGE_SECRET="$(head -c 48 /dev/urandom | od -An -tx1 | tr -d ' \n' | head -c 48)"
export HEART_EDGE_SECRET
HEART_LISTEN_ADDR=127.0.0.1:8081 HEART_ADMIN_LISTEN_ADDR=127.0.0.1:9091 "$bin/heart-core" >"$work/core.log" 2>&1 &
core_pid=$!
wait_ready "$core_pid" "$work/core.log" http://127.0.0.1:8081/readyz
edge_host_env http://127.0.0.1:8081 "$HEART_EDGE_SECRET" 127.0.0.1:8080
RUST_LOG=warn start_server "$bin/heart-edge-host" http://127.0.0.1:8080/healthz "${edge_env[@]}"
token="$(login_token $EDGE)"
curl -s -o /dev/null -H "Authorization: Bearer $token" "$EDGE$page"
echo "edge host resident memory at idle: $(rss)"
upload_memory "$server_pid" "$EDGE" "$token"
echo "16 concurrent 10 MB uploads: answers $(sort "$work/uploads.txt" | uniq -c | tr '\n' ' ')"
echo "edge host resident memory: idle $((idle_kb / 1024)) MB, peak during the uploads $((peak_kb / 1024)) MB, +$(((peak_kb - idle_kb) / 1024)) MB"
echo "| edge host resident memory under 16 concurrent 10 MB uploads | idle $((idle_kb / 1024)) MB, peak $((peak_kb / 1024)) MB, **+$(((peak_kb - idle_kb) / 1024)) MB** |" >>"$work/other.md"

# Slow clients: 200 that trickle their request head and 200 that trickle a JSON body (a byte
# every 2 s, reconnecting when the edge cuts them off), while /healthz and a cached page are loaded.
cat >"$work/slow.py" <<'PY'
import socket, sys, time
host, port, n = "127.0.0.1", 8080, int(sys.argv[1])
heads = [b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: ", b"POST /auth/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 60000\r\n\r\n{"]
def connect(kind):
    s = socket.create_connection((host, port)); s.sendall(heads[kind]); return s
socks = [[connect(i % 2), i % 2] for i in range(2 * n)]
print(f"{len(socks)} slow clients connected", flush=True)
cut = 0
while True:
    time.sleep(2)
    for entry in socks:
        try:
            entry[0].sendall(b"a")
        except OSError:
            cut += 1
            try:
                entry[0] = connect(entry[1])
            except OSError:
                pass
    print(f"cut and reconnected so far: {cut}", flush=True)
PY
load "edge host: /healthz" "$EDGE/healthz"
load "edge host: home feed page 0, cached" "$EDGE$page" "${gzip[@]}"
python3 "$work/slow.py" 200 >"$work/slow.log" 2>&1 &
slow_pid=$!
sleep 1
head -1 "$work/slow.log"
load "edge host: /healthz with 200 slow-head + 200 slow-body clients" "$EDGE/healthz"
load "edge host: home feed page 0, cached, with the same slow clients" "$EDGE$page" "${gzip[@]}"
tail -1 "$work/slow.log"
kill "$slow_pid" 2>/dev/null || true
slow_pid=""
stop_server
kill "$core_pid" 2>/dev/null || true
core_pid=""

echo
echo "######## summary ########"
cat "$summary"
echo
echo "| load | Redis commands per request (INFO commandstats deltas; evalsha = round trips of the edge, other names = the script's inner calls and the core's own) | MariaDB per request (SHOW GLOBAL STATUS deltas) |"
echo "|---|---|---|"
cat "$work/redis.md"
[ -f "$work/other.md" ] && { echo; cat "$work/other.md"; }
[ -f "$work/slap.md" ] && { echo; cat "$work/slap.md"; }
# The plot BENCHMARKS.md embeds (rows of this run's summary table).
plot="${PLOT:-docs/images/benchmarks.svg}"
mkdir -p "$(dirname "$plot")"
"$bin/heart-plot" "$summary" "$plot" "bench/run.sh, $(date -u '+%Y-%m-%d'), $(nproc) cores, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
