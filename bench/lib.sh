# shellcheck shell=bash
# Shell helpers of the benchmark scripts (sourced by bench/run.sh, bench/storm.sh and
# bench/edge-ab.sh from the repository root).

# stop_pid <pid>: ends a background process of this script, if any, and waits for it to be gone.
stop_pid() {
  if [ -n "${1:-}" ]; then
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
  fi
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
