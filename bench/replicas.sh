#!/usr/bin/env bash
# Replicas on one machine (issue 15; docs/replicas.md): REPLICAS core processes (`heart-core`) and
# REPLICAS edge hosts (`heart-edge-host`) on one MariaDB database and one Redis, with a round-robin
# balancer (`heart-rr`) in front of the edges and another in front of the cores:
#
#   client ──► heart-rr :FRONT_PORT ──► edge i (:EDGE_PORT+i) ──► heart-rr :CORE_LB_PORT ──► core i (:CORE_PORT+i)
#
# Every replica shares the database, the Redis key prefix, the token signing key (a fresh Ed25519
# key) and the edge secret. The balancers hand out connections in turn (like an NLB or a Service):
# heart-load's virtual users each keep one connection, so they are spread over the replicas.
# The same path is taken with REPLICAS=1 (one replica behind each balancer), so 1 and 2 compare.
#
#   bash bench/replicas.sh                         # 2 replicas, release build, checks + heart-load
#   REPLICAS=1 bash bench/replicas.sh              # the same with one replica, to compare
#   PROFILE=debug DURATION=10s bash bench/replicas.sh
#   HOLD=1 bash bench/replicas.sh                  # keep everything running until Ctrl-C
#   LOAD=0 bash bench/replicas.sh                  # the checks only
#   MIX=feed=100 EXTRA_MIXES="post_photo=100 follow=100" bash bench/replicas.sh   # other mixes too
#   HEART_DATABASE_READ_URL=mysql://… bash bench/replicas.sh   # cores read from a replica
#
# It first checks that the replicas behave as one service (a logout on one edge is refused on every
# edge and core; a post written through one edge is on the feed page every edge serves), then runs
# heart-load through the front balancer (and wrk on a cached feed page, if wrk is installed).
# Needs: MariaDB (MYSQL_URL, default the machine's on 127.0.0.1:3306, root without password; the
# database `heart_replicas` is dropped and created), redis-server (a private one on REDIS_PORT is
# started unless REDIS_URL is given), curl, python3, openssl.
# Load generator and servers share this machine's cores: compare 1 and 2 replicas knowing that.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"

REPLICAS="${REPLICAS:-2}"
PROFILE="${PROFILE:-release}"
MYSQL_URL="${MYSQL_URL:-mysql://root@127.0.0.1:3306}"
DB="${DB:-heart_replicas}"
REDIS_PORT="${REDIS_PORT:-16392}"
FRONT_PORT="${FRONT_PORT:-18380}"
EDGE_PORT="${EDGE_PORT:-18381}"
CORE_LB_PORT="${CORE_LB_PORT:-18390}"
CORE_PORT="${CORE_PORT:-18391}"
ADMIN_PORT="${ADMIN_PORT:-18491}"
MEMBERS="${MEMBERS:-1000}"
POSTS="${POSTS:-20000}"
CONNECTIONS="${CONNECTIONS:-32}"
DURATION="${DURATION:-15s}"
LOAD="${LOAD:-1}"
case "$REPLICAS" in 1 | 2 | 3 | 4) ;; *) echo "REPLICAS must be 1 to 4" >&2; exit 2 ;; esac
case "$PROFILE" in release | debug) ;; *) echo "PROFILE must be release or debug" >&2; exit 2 ;; esac

bin="$CARGO_TARGET_DIR/$PROFILE"
work="$(mktemp -d /tmp/heart-replicas.XXXXXX)"
pids=()
redis_pid=""
failures=0

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
cleanup() {
  set +e
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
  if [ -n "${KEEP:-}" ]; then log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_http() { # wait_http <url> <pid> <log>: until the URL answers 2xx, or the process died
  for _ in $(seq 1 600); do
    curl -sf "$1" >/dev/null 2>&1 && return 0
    kill -0 "$2" 2>/dev/null || { echo "it died; its log:" >&2; tail -30 "$3" >&2; exit 1; }
    sleep 0.1
  done
  echo "$1 did not answer in 60 s" >&2
  tail -30 "$3" >&2
  exit 1
}
check() { # check PASS|FAIL <text>
  printf '%-4s %s\n' "$1" "$2"
  [ "$1" = PASS ] || failures=$((failures + 1))
}
status_of() { # status_of <curl args…>: the HTTP status only
  curl -s -o /dev/null -w '%{http_code}' --max-time 30 "$@" || true
}
json_of() { # json_of <field>: reads JSON on stdin
  python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

for i in $(seq 0 $((REPLICAS - 1))); do
  for p in $((EDGE_PORT + i)) $((CORE_PORT + i)) $((ADMIN_PORT + i)); do
    port_free "$p" || { echo "port $p is in use; set the *_PORT variables" >&2; exit 2; }
  done
done
for p in "$FRONT_PORT" "$CORE_LB_PORT"; do
  port_free "$p" || { echo "port $p is in use; set the *_PORT variables" >&2; exit 2; }
done
for tool in mariadb curl python3 openssl; do
  command -v "$tool" >/dev/null || { echo "$tool is missing" >&2; exit 2; }
done

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  log "building ($PROFILE)"
  flag=(); [ "$PROFILE" = release ] && flag=(--release)
  cargo build "${flag[@]}" -q -p heart-core -p heart-edge-host -p heart-bench
fi

echo "== heart replicas: $REPLICAS core(s) + $REPLICAS edge(s), $PROFILE build, $(nproc) cores, $(date -u '+%Y-%m-%d %H:%M UTC')"

# --- shared backends -----------------------------------------------------------------------------
if [ -z "${REDIS_URL:-}" ]; then
  port_free "$REDIS_PORT" || { echo "port $REDIS_PORT is in use; set REDIS_PORT or REDIS_URL" >&2; exit 2; }
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no >"$work/redis.log" 2>&1 &
  redis_pid=$!
  until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do sleep 0.05; done
  REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
fi
mysql_host_port="${MYSQL_URL#*://}"; mysql_host_port="${mysql_host_port#*@}"; mysql_host_port="${mysql_host_port%%/*}"
mariadb --no-defaults -uroot -h"${mysql_host_port%%:*}" -P"${mysql_host_port##*:}" -e \
  "DROP DATABASE IF EXISTS \`$DB\`; CREATE DATABASE \`$DB\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"

openssl genpkey -algorithm ed25519 -out "$work/signing-key.pem" 2>/dev/null
export HEART_DATABASE_URL="${MYSQL_URL%/}/$DB"
export HEART_REDIS_URL="$REDIS_URL"
export HEART_CACHE_PREFIX="replicas-$$"
export HEART_JWT_SIGNING_KEY_FILE="$work/signing-key.pem"
HEART_EDGE_SECRET="$(head -c 48 /dev/urandom | od -An -tx1 | tr -d ' \n' | head -c 48)"
export HEART_EDGE_SECRET
# One media folder and one outbox for all replicas (what S3 and SMTP are in production).
export HEART_DATA_DIR="$work/data"
. bench/load-env.sh # the scripts run from the repository root

# --- the cores: started together on the empty database (the migrations' lock serialises them) ---
for i in $(seq 0 $((REPLICAS - 1))); do
  HEART_LISTEN_ADDR="127.0.0.1:$((CORE_PORT + i))" HEART_ADMIN_LISTEN_ADDR="127.0.0.1:$((ADMIN_PORT + i))" \
    "$bin/heart-core" >"$work/core-$i.log" 2>&1 &
  pids+=($!)
  core_pids[i]=$!
done
cores=()
for i in $(seq 0 $((REPLICAS - 1))); do
  wait_http "http://127.0.0.1:$((CORE_PORT + i))/readyz" "${core_pids[i]}" "$work/core-$i.log"
  cores+=(--backend "127.0.0.1:$((CORE_PORT + i))")
done
applied="$(mariadb --no-defaults -uroot -h"${mysql_host_port%%:*}" -P"${mysql_host_port##*:}" -N -B "$DB" \
  -e 'SELECT COUNT(*) FROM _sqlx_migrations')"
files="$(find core-api/migrations/mysql -name '*.sql' | wc -l)"
if [ "$applied" = "$files" ]; then
  check PASS "$REPLICAS core(s) started at once; $applied migrations applied once"
else
  check FAIL "migrations: $applied rows in _sqlx_migrations for $files files"
fi
"$bin/heart-rr" --listen "127.0.0.1:$CORE_LB_PORT" "${cores[@]}" 2>"$work/rr-cores.log" &
pids+=($!)

# --- the edges, each forwarding to the cores' balancer -------------------------------------------
jwks="$(curl -sf "http://127.0.0.1:$CORE_PORT/.well-known/jwks.json")"
edges=()
for i in $(seq 0 $((REPLICAS - 1))); do
  HEART_EDGE_VAR_CORE_URL="http://127.0.0.1:$CORE_LB_PORT" HEART_EDGE_VAR_JWKS="$jwks" \
    HEART_EDGE_VAR_EDGE_SECRET="$HEART_EDGE_SECRET" HEART_EDGE_VAR_REDIS_URL="$REDIS_URL" \
    HEART_EDGE_VAR_CACHE_PREFIX="$HEART_CACHE_PREFIX" HEART_EDGE_LISTEN="127.0.0.1:$((EDGE_PORT + i))" \
    "$bin/heart-edge-host" >"$work/edge-$i.log" 2>&1 &
  pids+=($!)
  wait_http "http://127.0.0.1:$((EDGE_PORT + i))/healthz" "$!" "$work/edge-$i.log"
  edges+=(--backend "127.0.0.1:$((EDGE_PORT + i))")
done
"$bin/heart-rr" --listen "127.0.0.1:$FRONT_PORT" "${edges[@]}" 2>"$work/rr-edges.log" &
pids+=($!)
FRONT="http://127.0.0.1:$FRONT_PORT"
wait_http "$FRONT/healthz" "$!" "$work/rr-edges.log"

echo "== addresses"
echo "the app's entry (round robin over the edges): $FRONT"
for i in $(seq 0 $((REPLICAS - 1))); do
  echo "replica $i: edge http://127.0.0.1:$((EDGE_PORT + i)), core http://127.0.0.1:$((CORE_PORT + i)), metrics http://127.0.0.1:$((ADMIN_PORT + i))/metrics"
done
echo "the cores' balancer (the edges forward to it): http://127.0.0.1:$CORE_LB_PORT"
echo "database $HEART_DATABASE_URL, Redis $REDIS_URL (prefix $HEART_CACHE_PREFIX), logs in $work"

# --- data and checks ------------------------------------------------------------------------------
log "generating $MEMBERS members, $POSTS posts"
"$bin/heart-datagen" --members "$MEMBERS" --posts "$POSTS" --follows-per-member 5 --blocks-per-member 1 \
  >"$work/datagen.log" 2>&1 || { tail -20 "$work/datagen.log" >&2; exit 1; }

echo "== one service?"
login() {
  curl -sf -X POST "$FRONT/auth/login" -H 'content-type: application/json' \
    -d "{\"email\":\"bench$1@example.com\",\"password\":\"benchmark-pass-1\"}"
}
entries=()
for i in $(seq 0 $((REPLICAS - 1))); do
  entries+=("http://127.0.0.1:$((EDGE_PORT + i))" "http://127.0.0.1:$((CORE_PORT + i))")
done
token="$(login 3 | json_of access_token)"
last=$((REPLICAS - 1))
logout="$(status_of -X POST -H "Authorization: Bearer $token" "http://127.0.0.1:$((EDGE_PORT + last))/auth/logout")"
refused=0
for url in "${entries[@]}"; do
  s="$(status_of -H "Authorization: Bearer $token" "$url/auth/verifyAccessToken")"
  [ "$s" = 401 ] && refused=$((refused + 1)) || echo "  $url answered $s after the logout"
done
if [ "$logout" = 200 ] && [ "$refused" = "${#entries[@]}" ]; then
  check PASS "a logout on edge $last is refused at once by all ${#entries[@]} edges and cores"
else
  check FAIL "logout $logout; refused by $refused of ${#entries[@]} edges and cores"
fi

member="$(login 4)"
member_id="$(echo "$member" | json_of member_id)"
token="$(echo "$member" | json_of access_token)"
page="/post/posts?member_id=$member_id&page=0&size=10"
for url in "${entries[@]}"; do curl -s -o /dev/null -H "Authorization: Bearer $token" "$url$page"; done
post_id="$(curl -sf -X POST -H "Authorization: Bearer $token" -F "member_id=$member_id" -F "content=replicas $$" \
  "http://127.0.0.1:$EDGE_PORT/post/registerPost" | json_of post_id)"
fresh=0
for i in $(seq 0 $((REPLICAS - 1))); do
  first="$(curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$((EDGE_PORT + i))$page" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["posts"][0]["id"])')"
  [ "$first" = "$post_id" ] && fresh=$((fresh + 1)) || echo "  edge $i served post $first first, not $post_id"
done
if [ "$fresh" = "$REPLICAS" ]; then
  check PASS "a post written through edge 0 is on the page every edge serves right after"
else
  check FAIL "only $fresh of $REPLICAS edges served the new post"
fi

# --- load -----------------------------------------------------------------------------------------
if [ "$LOAD" = 1 ]; then
  echo "== the app's mix through the front balancer (heart-load, $CONNECTIONS virtual users, $DURATION)"
  "$bin/heart-load" --url "$FRONT" --connections "$CONNECTIONS" --duration "$DURATION" \
    --members "$MEMBERS" ${MIX:+--mix "$MIX"} --allow-5xx | tee "$work/load.txt"
  for mix in ${EXTRA_MIXES:-}; do
    echo "== heart-load --mix $mix through the front balancer ($CONNECTIONS virtual users, $DURATION)"
    "$bin/heart-load" --url "$FRONT" --connections "$CONNECTIONS" --duration "$DURATION" \
      --members "$MEMBERS" --mix "$mix" --allow-5xx
  done
  if command -v wrk >/dev/null; then
    token="$(login 5 | json_of access_token)"
    echo "== wrk: a forwarded request (profile) through the front balancer, $CONNECTIONS connections, $DURATION"
    wrk -t2 -c "$CONNECTIONS" -d "$DURATION" -H "Authorization: Bearer $token" "$FRONT/member/profile?member_id=2"
    echo "== wrk: home feed page 0 (cached at the edges) through the front balancer"
    wrk -t2 -c "$CONNECTIONS" -d "$DURATION" -H "Authorization: Bearer $token" "$FRONT/post/posts?member_id=5&page=0&size=10"
    echo "== wrk: home feed page 0 from the cores directly (their balancer, no edge cache)"
    wrk -t2 -c "$CONNECTIONS" -d "$DURATION" -H "Authorization: Bearer $token" "http://127.0.0.1:$CORE_LB_PORT/post/posts?member_id=5&page=0&size=10"
  else
    echo "(wrk is not installed: apt-get install wrk for the wrk runs)"
  fi
fi

if [ "${HOLD:-0}" = 1 ]; then
  echo "== running; Ctrl-C stops everything"
  wait "${pids[0]}" || true
fi
echo "== $failures check(s) failed"
[ "$failures" = 0 ]
