#!/usr/bin/env bash
# Scripted, repeatable faults against the release stack (`heart`: edge in front of the core) on its
# own MariaDB + Redis + S3-compatible server (heart-s3) + SMTP sink. Each scenario prints PASS/FAIL
# with its numbers; the script exits 1 if any FAIL. docs/faults.md describes the scenarios.
#
#   bash bench/faults.sh                 # all scenarios (a few minutes after the build)
#   SCENARIOS="smtp s3" bash bench/faults.sh
#   SCENARIOS="mariadb-stall redis-drop" bash bench/faults.sh
#   SKIP_BUILD=1 bash bench/faults.sh     # binaries already built in $CARGO_TARGET_DIR/$PROFILE
#
# Stopped dependencies: smtp s3 redis mariadb. Slow and half-broken ones (bench/fault_proxy.py in
# front of each dependency; bench/fault_probe.py measures): <dep>-slow (every chunk +250 ms, so
# +500 ms a round trip), <dep>-stall (connections accepted, nothing answered), <dep>-drop (30 % of
# chunks lost: the connection hangs) for mariadb and redis; s3-slow, s3-stall; smtp-stall.
#
# Everything it needs runs on its own ports, started here and stopped on exit: mariadbd (own datadir,
# port 3307), redis-server (16390), heart-s3 (19000), the SMTP sink (12525, started mid-scenario),
# the stack (edge 18080, core 18081, admin 18090), and a fault proxy per dependency (13307, 16391,
# 19001, 12526) that the stack talks through. The machine's MariaDB (3306) and Redis (6379)
# are never touched. Needs: mariadbd + mariadb-install-db, redis-server, curl, python3 with aiosmtpd
# (python3 -m pip install aiosmtpd).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"

MARIADB_PORT="${MARIADB_PORT:-3307}"
REDIS_PORT="${REDIS_PORT:-16390}"
S3_PORT="${S3_PORT:-19000}"
SMTP_PORT="${SMTP_PORT:-12525}"
EDGE_PORT="${EDGE_PORT:-18080}"
CORE_PORT="${CORE_PORT:-18081}"
ADMIN_PORT="${ADMIN_PORT:-18090}"
MEMBERS="${MEMBERS:-200}"
POSTS="${POSTS:-5000}"
CONNECTIONS="${CONNECTIONS:-16}"
DEGRADED="mariadb-slow mariadb-stall mariadb-drop redis-slow redis-stall redis-drop s3-slow s3-stall smtp-stall"
SCENARIOS="${SCENARIOS:-smtp s3 redis mariadb $DEGRADED}"
MARIADB_PROXY_PORT="${MARIADB_PROXY_PORT:-13307}"
REDIS_PROXY_PORT="${REDIS_PROXY_PORT:-16391}"
S3_PROXY_PORT="${S3_PROXY_PORT:-19001}"
SMTP_PROXY_PORT="${SMTP_PROXY_PORT:-12526}"
# How the database dies: KILL (a crash: acknowledged posts must survive it) or TERM (clean shutdown).
MARIADB_STOP_SIGNAL="${MARIADB_STOP_SIGNAL:-KILL}"

API="http://127.0.0.1:$EDGE_PORT"
ADMIN="http://127.0.0.1:$ADMIN_PORT"
# PROFILE=debug runs a debug build (faster to build; the timeouts measured here do not depend on it).
PROFILE="${PROFILE:-release}"
bin="$CARGO_TARGET_DIR/$PROFILE"
work="$(mktemp -d /tmp/heart-faults.XXXXXX)"
S3_KEY=HEARTFAULTSKEY
S3_SECRET="faults-secret-$RANDOM$RANDOM"
S3_BUCKET=heart-media

stack_pid="" s3_pid="" smtp_pid="" mariadb_pid="" load_pid="" proxy_pids=()
failures=0
results=()

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

stop_pid() { # stop_pid <pid>: TERM, then KILL after 5 s; only a process this script started
  local pid="$1"
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill "$pid" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  return 0
}

cleanup() {
  stop_pid "$load_pid"
  stop_pid "$stack_pid"
  stop_pid "$s3_pid"
  stop_pid "$smtp_pid"
  stop_pid "$mariadb_pid"
  for p in "${proxy_pids[@]}"; do stop_pid "$p"; done
  if [ -f "$work/redis.pid" ]; then stop_pid "$(cat "$work/redis.pid")"; fi
  if [ -n "${KEEP:-}" ]; then log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

result() { # result PASS|FAIL <scenario> <text>
  local line
  line="$(printf '%-4s %-13s %s' "$1" "$2" "$3")"
  results+=("$line")
  echo "$line"
  [ "$1" = PASS ] || failures=$((failures + 1))
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { # wait_port <port> <seconds>
  local deadline=$((SECONDS + $2))
  until ! port_free "$1"; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.1
  done
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }

sql() { mariadb --no-defaults -h127.0.0.1 -P"$MARIADB_PORT" -uroot -N -B heart -e "$1"; }

# http <out-file> <curl args…>: prints "<status> <seconds>"; the body goes to <out-file>.
http() {
  local out="$1"; shift
  curl -s -o "$out" -w '%{http_code} %{time_total}' --max-time 60 "$@" || true
}
json_field() { # json_field <file> <field>
  python3 -c 'import json,sys
try: v = json.load(open(sys.argv[1])).get(sys.argv[2], "")
except Exception: v = ""
print(v if v is not None else "")' "$1" "$2"
}
login() { # login <email>: prints "<member_id> <access_token>"
  curl -s -X POST "$API/auth/login" -H 'content-type: application/json' \
    -d "{\"email\":\"$1\",\"password\":\"benchmark-pass-1\"}" |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["member_id"], d["access_token"])'
}
objects() { find "$work/s3/$S3_BUCKET/posts" -type f 2>/dev/null | wc -l; }

start_redis() {
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --pidfile "$work/redis.pid" --logfile "$work/redis.log" >/dev/null
  wait_port "$REDIS_PORT" 10
}
start_mariadb() {
  mariadbd --no-defaults --datadir="$work/mariadb" --port="$MARIADB_PORT" --bind-address=127.0.0.1 \
    --socket="$work/mariadb.sock" --pid-file="$work/mariadb.pid" --log-error="$work/mariadb.err" \
    --user="$(id -un)" --innodb-buffer-pool-size=128M --skip-name-resolve --max-connections=200 &
  mariadb_pid=$!
  wait_port "$MARIADB_PORT" 60
}
start_s3() {
  "$bin/heart-s3" --listen "127.0.0.1:$S3_PORT" --root "$work/s3" --bucket "$S3_BUCKET" \
    --access-key "$S3_KEY" --secret-key "$S3_SECRET" 2>>"$work/s3.log" &
  s3_pid=$!
  wait_port "$S3_PORT" 10
}
start_proxy() { # start_proxy <name> <listen port> <upstream port>: bench/fault_proxy.py, mode "pass"
  echo pass >"$work/$1.mode"
  python3 bench/fault_proxy.py --listen "127.0.0.1:$2" --upstream "127.0.0.1:$3" \
    --mode-file "$work/$1.mode" >>"$work/proxy-$1.log" 2>&1 &
  proxy_pids+=($!)
  wait_port "$2" 20
}
start_smtp() {
  mkdir -p "$work/maildir"/{tmp,new,cur}
  python3 -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" -c aiosmtpd.handlers.Mailbox "$work/maildir" \
    >>"$work/smtp.log" 2>&1 &
  smtp_pid=$!
  wait_port "$SMTP_PORT" 20
}

# ---------------------------------------------------------------------------------------------
echo "== heart faults, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, work dir $work"
for p in "$MARIADB_PORT" "$REDIS_PORT" "$S3_PORT" "$SMTP_PORT" "$EDGE_PORT" "$CORE_PORT" "$ADMIN_PORT" \
  "$MARIADB_PROXY_PORT" "$REDIS_PROXY_PORT" "$S3_PROXY_PORT" "$SMTP_PROXY_PORT"; do
  port_free "$p" || { echo "port $p is in use; set the *_PORT variables" >&2; exit 2; }
done
for tool in mariadbd mariadb-install-db mariadb redis-server redis-cli curl python3; do
  command -v "$tool" >/dev/null || { echo "$tool is missing" >&2; exit 2; }
done
python3 -c 'import aiosmtpd' 2>/dev/null || { echo "aiosmtpd is missing: python3 -m pip install aiosmtpd" >&2; exit 2; }

# SKIP_BUILD=1: the binaries in $CARGO_TARGET_DIR/$PROFILE are already built from this checkout
# (as bench/run.sh; a build of other packages there would otherwise rebuild for its features).
if [ "${SKIP_BUILD:-0}" = 1 ]; then
  log "using the $PROFILE binaries in $bin (SKIP_BUILD=1)"
elif [ "$PROFILE" = release ]; then
  log "building ($PROFILE)"
  cargo build --release -q -p heart-stack -p heart-bench || exit 2
else
  log "building ($PROFILE)"
  cargo build -q -p heart-stack -p heart-bench || exit 2
fi

log "starting redis-server :$REDIS_PORT, mariadbd :$MARIADB_PORT, heart-s3 :$S3_PORT"
start_redis || { echo "redis-server did not start" >&2; exit 2; }
mariadb-install-db --no-defaults --datadir="$work/mariadb" --auth-root-authentication-method=normal \
  --skip-test-db --user="$(id -un)" >"$work/mariadb-install.log" 2>&1 || { cat "$work/mariadb-install.log" >&2; exit 2; }
start_mariadb || { cat "$work/mariadb.err" >&2; exit 2; }
mariadb --no-defaults -h127.0.0.1 -P"$MARIADB_PORT" -uroot \
  -e 'CREATE DATABASE heart CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci' || exit 2
start_s3 || { cat "$work/s3.log" >&2; exit 2; }
log "starting the fault proxies (pass): mariadb :$MARIADB_PROXY_PORT, redis :$REDIS_PROXY_PORT, s3 :$S3_PROXY_PORT, smtp :$SMTP_PROXY_PORT"
start_proxy mariadb "$MARIADB_PROXY_PORT" "$MARIADB_PORT" || exit 2
start_proxy redis "$REDIS_PROXY_PORT" "$REDIS_PORT" || exit 2
start_proxy s3 "$S3_PROXY_PORT" "$S3_PORT" || exit 2
start_proxy smtp "$SMTP_PROXY_PORT" "$SMTP_PORT" || exit 2

# The stack reaches every dependency through its fault proxy (passing everything unless a
# scenario says otherwise); heart-datagen and the checks below talk to MariaDB directly.
export HEART_DATABASE_URL="mysql://root@127.0.0.1:$MARIADB_PROXY_PORT/heart"
export HEART_DATABASE_MAX_CONNECTIONS=16
export HEART_REDIS_URL="redis://127.0.0.1:$REDIS_PROXY_PORT"
export HEART_CACHE_PREFIX="faults"
export HEART_DATA_DIR="$work/data"
export HEART_S3_BUCKET="$S3_BUCKET" HEART_S3_ENDPOINT="http://127.0.0.1:$S3_PROXY_PORT" HEART_S3_FORCE_PATH_STYLE=true
export HEART_S3_ACCESS_KEY_ID="$S3_KEY" HEART_S3_SECRET_ACCESS_KEY="$S3_SECRET"
# The SMTP sink is not running yet: the mail scenario starts with nothing on this port.
export HEART_SMTP_HOST=127.0.0.1 HEART_SMTP_PORT="$SMTP_PROXY_PORT" HEART_SMTP_TLS=none
export HEART_LISTEN_ADDR="127.0.0.1:$EDGE_PORT" HEART_CORE_LISTEN_ADDR="127.0.0.1:$CORE_PORT"
export HEART_ADMIN_LISTEN_ADDR="127.0.0.1:$ADMIN_PORT"
export HEART_EDGE_CACHE_DIR="${HEART_EDGE_CACHE_DIR:-/var/tmp/heart-faults-edge-cache}"
export HEART_RATE_LIMITS_ENABLED=false
export HEART_EDGE_VAR_RATE_LIMIT_EDGE_REQUESTS_PER_IP=1000000/60s
export HEART_EDGE_VAR_RATE_LIMIT_EDGE_REQUESTS_PER_MEMBER=1000000/60s
export HEART_LOG_FORMAT=json RUST_LOG="${RUST_LOG:-warn}"

log "data: $MEMBERS members, $POSTS posts (heart-datagen)"
HEART_DATABASE_URL="mysql://root@127.0.0.1:$MARIADB_PORT/heart" "$bin/heart-datagen" --members "$MEMBERS" --posts "$POSTS" --follows-per-member 10 \
  --blocks-per-member 1 >"$work/datagen.log" 2>&1 || { cat "$work/datagen.log" >&2; exit 2; }

log "starting the stack (edge :$EDGE_PORT → core :$CORE_PORT)"
"$bin/heart" >"$work/stack.log" 2>&1 &
stack_pid=$!
deadline=$((SECONDS + 120))
until curl -sf "$ADMIN/readyz" >/dev/null && curl -sf "$API/healthz" >/dev/null; do
  kill -0 "$stack_pid" 2>/dev/null || { tail -20 "$work/stack.log" >&2; exit 2; }
  [ $SECONDS -lt $deadline ] || { echo "the stack did not get ready" >&2; exit 2; }
  sleep 0.2
done
log "stack ready (pid $stack_pid)"
python3 -c 'import base64,sys; sys.stdout.buffer.write(base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4nzYTAARmAf/jeRRuAAAAAElFTkSuQmCC"))' >"$work/dot.png"
read -r me token < <(login bench1@example.com)
[ -n "${token:-}" ] || { echo "login as bench1 failed" >&2; exit 2; }
auth="Authorization: Bearer $token"

# ---------------------------------------------------------------------------------------------
# until_status <status> <out-file> <curl args…>: repeats the request every 100 ms for up to 5 s until
# it answers <status> (a dependency's breaker closes at its next probe: SMTP 2 s, S3 1 s; issue 16
# asks for success within 5 s of the fault's end); prints "<last status> <seconds until then> <tries>".
until_status() {
  local want="$1" out="$2" status secs tries=0 start
  shift 2
  start=$(now_ms)
  while :; do
    tries=$((tries + 1))
    read -r status secs < <(http "$out" "$@")
    [ "$status" = "$want" ] && break
    [ $(($(now_ms) - start)) -ge 5000 ] && break
    sleep 0.1
  done
  printf '%s %s %s\n' "$status" "$(awk -v ms=$(($(now_ms) - start)) 'BEGIN {printf "%.3f", ms / 1000}')" "$tries"
}

scenario_smtp() {
  echo "== SMTP down: nothing listens on :$SMTP_PORT"
  local email="fault-smtp-$$@example.com" rows_before rows_after status secs code ok=1 detail
  rows_before=$(sql "SELECT COUNT(*) FROM email_verifications WHERE email='$email'")
  read -r status secs < <(http "$work/smtp1.json" -X POST "$API/auth/emailVerificationCode" \
    -H 'content-type: application/json' -d "{\"email\":\"$email\"}")
  code=$(json_field "$work/smtp1.json" code)
  rows_after=$(sql "SELECT COUNT(*) FROM email_verifications WHERE email='$email'")
  detail="down: $status $code in ${secs}s, verification rows $rows_before→$rows_after"
  [ "$status" = 503 ] && [ "$code" = AUTH_001 ] && [ "$rows_after" = 0 ] || ok=0

  log "starting the SMTP sink on :$SMTP_PORT"
  start_smtp || { result FAIL smtp "the sink did not start: $(tail -3 "$work/smtp.log")"; return; }
  local tries
  read -r status secs tries < <(until_status 202 "$work/smtp2.json" -X POST "$API/auth/emailVerificationCode" \
    -H 'content-type: application/json' -d "{\"email\":\"$email\"}")
  local mail verification confirm_status
  mail=$(grep -l "$email" "$work"/maildir/new/* 2>/dev/null | head -1)
  verification=$(grep -ho 'code is: [A-Za-z0-9]*' "$mail" 2>/dev/null | tail -1 | cut -d' ' -f3)
  read -r confirm_status _ < <(http "$work/smtp3.json" -X POST "$API/auth/confirmVerificationCode" \
    -H 'content-type: application/json' -d "{\"email\":\"$email\",\"verification_code\":\"$verification\"}")
  rows_after=$(sql "SELECT COUNT(*) FROM email_verifications WHERE email='$email'")
  detail="$detail; sink up (no restart): $status after ${secs}s ($tries tries), mail received $([ -n "$mail" ] && echo yes || echo no), code confirmed $confirm_status, rows $rows_after"
  [ "$status" = 202 ] && [ -n "$mail" ] && [ "$confirm_status" = 200 ] && [ "$rows_after" = 1 ] || ok=0
  if [ $ok = 1 ]; then result PASS smtp "$detail"; else result FAIL smtp "$detail"; fi
}

scenario_s3() {
  echo "== S3 stopped: heart-s3 killed during uploads"
  local ok=1 status secs code detail posts0 images0 objects0 posts1 images1 objects1
  read -r status secs < <(http "$work/s3a.json" -X POST "$API/post/registerPost" -H "$auth" \
    -F member_id="$me" -F content='before the S3 fault' -F files=@"$work/dot.png")
  detail="up: $status in ${secs}s"
  [ "$status" = 201 ] || ok=0
  posts0=$(sql "SELECT COUNT(*) FROM posts"); images0=$(sql "SELECT COUNT(*) FROM post_images"); objects0=$(objects)
  stop_pid "$s3_pid"; s3_pid=""
  read -r status secs < <(http "$work/s3b.json" -X POST "$API/post/registerPost" -H "$auth" \
    -F member_id="$me" -F content='during the S3 fault' -F files=@"$work/dot.png" -F files=@"$work/dot.png")
  code=$(json_field "$work/s3b.json" code)
  posts1=$(sql "SELECT COUNT(*) FROM posts"); images1=$(sql "SELECT COUNT(*) FROM post_images"); objects1=$(objects)
  detail="$detail; down: $status $code in ${secs}s, posts $posts0→$posts1, image rows $images0→$images1, objects $objects0→$objects1"
  [ "$status" = 503 ] && [ "$code" = POST_002 ] && [ "$posts0" = "$posts1" ] && [ "$images0" = "$images1" ] \
    && [ "$objects0" = "$objects1" ] || ok=0
  start_s3 || { result FAIL s3 "heart-s3 did not restart"; return; }
  local tries
  read -r status secs tries < <(until_status 201 "$work/s3c.json" -X POST "$API/post/registerPost" -H "$auth" \
    -F member_id="$me" -F content='after the S3 fault' -F files=@"$work/dot.png")
  detail="$detail; restarted (stack not): $status after ${secs}s ($tries tries), objects $(objects)"
  [ "$status" = 201 ] || ok=0
  if [ $ok = 1 ]; then result PASS s3 "$detail"; else result FAIL s3 "$detail"; fi
}

cache_of() { # cache_of <url>: prints "<status> <x-heart-cache>"
  curl -s -o /dev/null -D - --max-time 30 "$1" -H "$auth" |
    awk 'NR==1 {s=$2} tolower($1)=="x-heart-cache:" {c=$2} END {gsub(/\r/,"",c); print s, (c==""?"-":c)}'
}

scenario_redis() {
  echo "== Redis stopped mid-load (feed reads through the edge), then restarted"
  local ok=1 detail feed="$API/post/posts?member_id=$me&page=0&size=10" first second
  first=$(cache_of "$feed"); second=$(cache_of "$feed")
  detail="before: $first then $second"
  [ "${second#* }" = hit ] || ok=0
  "$bin/heart-load" --url "$API" -c "$CONNECTIONS" -d 24s --members "$MEMBERS" \
    --mix feed=80,member_posts=20 --json "$work/redis-load.json" --progress \
    >"$work/redis-load.txt" 2>"$work/redis-load.err" &
  load_pid=$!
  sleep 6
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1
  local down_at probes=() p
  down_at=$(now_ms)
  log "redis stopped"
  for _ in 1 2 3 4 5; do sleep 1; probes+=("$(cache_of "$feed")"); done
  local feed_secs ready_secs
  feed_secs=$(curl -s -o /dev/null -w '%{time_total}' --max-time 30 "$feed" -H "$auth")
  ready_secs=$(curl -s -o /dev/null -w '%{http_code} in %{time_total}' --max-time 30 "$ADMIN/readyz")
  detail="$detail; redis down: probes [${probes[*]}], a feed read took ${feed_secs}s, core readyz $ready_secs s"
  for p in "${probes[@]}"; do [ "$p" = "200 bypass" ] || ok=0; done
  sleep 3
  start_redis || { result FAIL redis "redis-server did not restart"; return; }
  local up_at resumed="" seen=()
  up_at=$(now_ms)
  log "redis restarted after $(( (up_at - down_at) / 1000 )) s"
  for _ in $(seq 100); do
    p=$(cache_of "$feed"); seen+=("${p#* }")
    if [ "$p" = "200 hit" ]; then resumed=$(( $(now_ms) - up_at )); break; fi
    sleep 0.1
  done
  detail="$detail; restarted: caching resumed (hit) after ${resumed:-never} ms (probes ${seen[*]})"
  [ -n "$resumed" ] || ok=0
  wait "$load_pid"; local load_rc=$?; load_pid=""
  local summary
  summary=$(python3 - "$work/redis-load.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
cache = {}
for e in s["endpoints"].values():
    for k, v in e.get("cache", {}).items():
        cache[k] = cache.get(k, 0) + v
errors = {k: v for e in s["endpoints"].values() for k, v in e["errors"].items()}
print(f'{s["requests"]} requests ({s["rps"]:.0f}/s), 5xx {s["server_errors"]}, non-2xx {s["non_2xx"]} {errors or ""}, cache hit {cache.get("hit",0)} miss {cache.get("miss",0)} bypass {cache.get("bypass",0)}')
PY
)
  detail="$detail; load: $summary, heart-load exit $load_rc"
  [ "$load_rc" = 0 ] || ok=0
  grep -q 'bypass [1-9]' <<<"$summary" || ok=0
  if [ $ok = 1 ]; then result PASS redis "$detail"; else result FAIL redis "$detail"; fi
  sed 's/^/    /' "$work/redis-load.txt"
}

# How often the database's breaker has opened (`heart_dependency_trips_total` on the admin port).
db_trips() {
  curl -s "$ADMIN/metrics" | awk '/^heart_dependency_trips_total\{dependency="database"\}/ { n = $2 } END { print n + 0 }'
}

scenario_mariadb() {
  echo "== MariaDB restarted mid-load (SIG$MARIADB_STOP_SIGNAL), the stack left running"
  local ok=1 detail posts0 status secs code trips0 trips1
  posts0=$(sql "SELECT COUNT(*) FROM posts")
  trips0=$(db_trips)
  "$bin/heart-load" --url "$API" -c "$CONNECTIONS" -d 30s --members "$MEMBERS" \
    --mix feed=45,own_posts=10,member_posts=10,profile=10,post_photo=20,reissue=5 --allow-5xx \
    --acked-posts "$work/acked.txt" --json "$work/mariadb-load.json" --progress \
    >"$work/mariadb-load.txt" 2>"$work/mariadb-load.err" &
  load_pid=$!
  sleep 8
  # 8 s of load with the database up: its breaker must not have opened (no false alarm).
  trips1=$(db_trips)
  local down_at
  kill -"$MARIADB_STOP_SIGNAL" "$mariadb_pid"; wait "$mariadb_pid" 2>/dev/null; mariadb_pid=""
  down_at=$(now_ms)
  log "mariadbd stopped"
  sleep 1
  read -r status secs < <(http "$work/db1.json" "$API/member/profile?member_id=2" -H "$auth")
  code=$(json_field "$work/db1.json" code)
  local ready
  ready=$(curl -s -o /dev/null -w '%{http_code}' "$ADMIN/readyz")
  detail="breaker trips during 8 s of load before the kill: $((trips1 - trips0)); down: profile $status $code in ${secs}s, readyz $ready"
  [ "$trips1" = "$trips0" ] && [ "$status" = 503 ] && [ "$code" = GLOBAL_503 ] || ok=0
  sleep 4
  start_mariadb || { result FAIL mariadb "mariadbd did not restart: $(tail -3 "$work/mariadb.err")"; return; }
  local up_at recovered=""
  up_at=$(now_ms)
  log "mariadbd restarted after $(( (up_at - down_at) / 1000 )) s down"
  for _ in $(seq 300); do
    read -r status _ < <(http "$work/db2.json" "$API/member/profile?member_id=2" -H "$auth")
    if [ "$status" = 200 ]; then recovered=$(( $(now_ms) - up_at )); break; fi
    sleep 0.1
  done
  detail="$detail; restarted: first 200 after ${recovered:-never} ms, same stack process: $(kill -0 "$stack_pid" 2>/dev/null && echo yes || echo NO)"
  [ -n "$recovered" ] && kill -0 "$stack_pid" 2>/dev/null || ok=0
  wait "$load_pid"; local load_rc=$?; load_pid=""
  local summary acked present missing
  summary=$(python3 - "$work/mariadb-load.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
errors = {}
for e in s["endpoints"].values():
    for k, v in e["errors"].items():
        errors[k] = errors.get(k, 0) + v
bad = {k: v for k, v in errors.items() if k.startswith(("0 ", "5")) and k != "503 GLOBAL_503"}
print(f'{s["requests"]} requests ({s["rps"]:.0f}/s), non-2xx {s["non_2xx"]} {errors}; 5xx other than GLOBAL_503: {sum(bad.values())} {bad or ""}')
PY
)
  acked=$(wc -l <"$work/acked.txt" 2>/dev/null || echo 0)
  if [ "$acked" -gt 0 ]; then
    present=$(sql "SELECT COUNT(*) FROM posts WHERE id IN ($(paste -sd, "$work/acked.txt"))")
    missing=$(sql "SELECT COUNT(*) FROM posts p WHERE p.id IN ($(paste -sd, "$work/acked.txt")) AND NOT EXISTS (SELECT 1 FROM post_images i WHERE i.post_id = p.id)")
  else
    present=0 missing=0
  fi
  local rows objs garbage
  rows=$(sql "SELECT COUNT(*) FROM post_images WHERE object_key NOT LIKE 'bench/%'")
  garbage=$(sql "SELECT COUNT(*) FROM storage_garbage")
  objs=$(objects)
  detail="$detail; load (exit $load_rc): $summary; acknowledged posts $acked, present afterwards $present, without their image $missing; posts $posts0→$(sql 'SELECT COUNT(*) FROM posts'); uploaded objects $objs vs image rows $rows (+ $garbage queued deletions)"
  grep -q "other than GLOBAL_503: 0" <<<"$summary" || ok=0
  [ "$acked" -gt 0 ] && [ "$present" = "$acked" ] && [ "$missing" = 0 ] || ok=0
  [ "$objs" -le $((rows + garbage)) ] && [ "$objs" -ge "$rows" ] || ok=0
  if [ $ok = 1 ]; then result PASS mariadb "$detail"; else result FAIL mariadb "$detail"; fi
  sed 's/^/    /' "$work/mariadb-load.txt"
}

# A slow or half-broken dependency: bench/fault_probe.py turns its proxy bad for a while, probes
# the requests that need it and one that does not, and turns it back; the verdict is computed here.
scenario_degraded() { # scenario_degraded <dep> <slow|stall|drop>
  local dep="$1" kind="$2" mode secs=8 name="$1-$2"
  case "$kind" in
    # The database's probe counts an answer over 500 ms as a failure (two in a row: down, by
    # design, docs/faults.md), so its slow mode is +200 ms a round trip: slow, not down.
    slow) if [ "$dep" = mariadb ]; then mode="latency 100"; else mode="latency 250"; fi ;;
    stall) mode="stall" ;;
    drop) mode="drop 0.3" ;;
  esac
  # S3's first error waits for the SDK's timeouts (5 s read, 8 s a try, 15 s in all).
  [ "$dep" = s3 ] && [ "$kind" = stall ] && secs=20
  echo "== $name: the $dep proxy set to '$mode' for ${secs}s, then back to pass"
  if [ "$dep" = smtp ] && [ -z "$smtp_pid" ]; then start_smtp || { result FAIL "$name" "no SMTP sink"; return; }; fi
  if ! python3 bench/fault_probe.py --dep "$dep" --mode "$mode" --mode-file "$work/$dep.mode" \
    --api "$API" --core "http://127.0.0.1:$CORE_PORT" --token "$token" --member "$me" \
    --fault-secs "$secs" --tag "$name-$$" >"$work/$name.json" 2>"$work/$name.err"; then
    result FAIL "$name" "fault_probe.py failed: $(tail -3 "$work/$name.err")"; return
  fi
  local acked present twice
  acked=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["acked"]))' "$work/$name.json")
  present=$(sql "SELECT COUNT(DISTINCT content) FROM posts WHERE content LIKE 'fault-$dep-$name-$$-%'")
  twice=$(sql "SELECT COUNT(*) FROM (SELECT content FROM posts WHERE content LIKE 'fault-$dep-$name-$$-%' GROUP BY content HAVING COUNT(*) > 1) t")
  local verdict
  verdict=$(python3 - "$work/$name.json" "$dep" "$kind" "$acked" "$present" "$twice" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); dep, kind = sys.argv[2], sys.argv[3]
acked, present, twice = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
ok, why = True, []
def need(cond, text):
    global ok
    if not cond:
        ok = False; why.append("NOT " + text)
ms = lambda s: "-" if s is None else f"{s * 1000:.0f} ms"
# Documented: first error within the dependency's timeout; errors within 100 ms once known.
first_limit = {"mariadb": 2.5, "s3": 16.0, "smtp": 6.0}.get(dep)
down = kind in ("stall", "drop")
if dep == "redis" or not down:
    need(r["errors"] == 0, "no error answers")
if not down:
    # Slow, not down: served (slowly), within the request's limits.
    need(r["successes"] > 0, "answers served")
elif dep == "redis":
    # Bypassed within milliseconds once found down: only the read that finds it down waits (the
    # edge's 500 ms call timeout, then the core's 1 s response timeout) — the first read when it
    # stalls, whichever read first loses a packet when it drops them — and no later read waits
    # again (a breaker that let Redis back in on a lossy path would make a second slow read).
    need(r["success_slow"] <= 1, "one slow read at most (the one that finds Redis gone)")
    need(r["success_detect_s"] is None or r["success_detect_s"] <= 2.0, "that read within 2 s")
    need(r["success_after_detect_p99"] is not None and r["success_after_detect_p99"] <= 0.1, "reads after it p99 within 100 ms")
else:
    need(r["first_error_s"] is not None and r["first_error_s"] <= first_limit, f"first error within {first_limit} s")
    need(r["error_p99"] is not None and r["error_p99"] <= 0.1, "error p99 within 100 ms")
    need(not r["unexpected"], "only " + r["expected_code"])
need(r["recovered_s"] is not None and r["recovered_s"] <= 5, "recovered within 5 s")
if r["unaffected_p99_before"] is not None and r["unaffected_p99_during"] is not None:
    need(r["unaffected_p99_during"] <= 2 * r["unaffected_p99_before"] + 0.025, "unaffected p99 within 2x")
need(present == acked and twice == 0, "acknowledged posts present once each")
text = (f'first answer {ms(r["first_answer_s"])}; first error {ms(r["first_error_s"])}; '
        f'errors {r["errors"]}/{r["probes"]} {r["expected_code"] or ""} p50 {ms(r["error_p50"])} p99 {ms(r["error_p99"])} max {ms(r["error_max"])} '
        f'Retry-After {",".join(r["retry_after"]) or "-"}; successes {r["successes"]} p99 {ms(r["success_p99"])}; '
        f'first success {ms(r["success_first_s"])}, later p99 {ms(r["success_later_p99"])}; '
        f'reads over 100 ms {r["success_slow"]} (first {ms(r["success_detect_s"])}), p99 after it {ms(r["success_after_detect_p99"])}; '
        f'baseline p99 {ms(r["baseline_p99"])}; recovered {ms(r["recovered_s"])} after the fault; '
        f'unaffected p99 {ms(r["unaffected_p99_before"])} -> {ms(r["unaffected_p99_during"])} ({r["unaffected_failures"]} failed); '
        f'posts acknowledged {acked}, present {present}, twice {twice}'
        + (f'; other answers {r["unexpected"]}' if r["unexpected"] else "")
        + ("" if ok else "; " + ", ".join(why)))
print(("PASS " if ok else "FAIL ") + text)
PY
)
  result "${verdict%% *}" "$name" "${verdict#* }"
}

for scenario in $SCENARIOS; do
  case "$scenario" in
    smtp | s3 | redis | mariadb) "scenario_$scenario" ;;
    mariadb-slow | mariadb-stall | mariadb-drop | redis-slow | redis-stall | redis-drop | s3-slow | s3-stall | smtp-stall)
      scenario_degraded "${scenario%-*}" "${scenario#*-}" ;;
    *) echo "unknown scenario $scenario (smtp s3 redis mariadb $DEGRADED)" >&2; exit 2 ;;
  esac
done

errors_logged=$(grep -c '"level":"ERROR"' "$work/stack.log" || true)
echo "== summary (stack logged $errors_logged ERROR lines; log kept with KEEP=1)"
printf '%s\n' "${results[@]}"
[ "$failures" = 0 ] || { echo "$failures scenario(s) FAILED"; exit 1; }
echo "all scenarios PASSED"
