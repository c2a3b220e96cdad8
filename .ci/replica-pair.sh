#!/usr/bin/env bash
# A MariaDB primary and a replica replicating from it, each with its own data directory and port,
# for the read-replica tests (core-api/tests/api/read_replica.rs). The machine's own MariaDB is
# never touched.
#
#   bash .ci/replica-pair.sh start <dir>   # datadirs, sockets and logs under <dir>
#   bash .ci/replica-pair.sh stop <dir>
#   bash .ci/replica-pair.sh env           # what to export for the tests
#
# Ports: PRIMARY_PORT (3317) with the binary log (row format, GTIDs), REPLICA_PORT (3318) read-only,
# replicating every database (CREATE DATABASE included) from the primary as root. Then:
#
#   HEART_TEST_REPLICA_PRIMARY_URL=mysql://root@127.0.0.1:3317 \
#   HEART_TEST_REPLICA_URL=mysql://root@127.0.0.1:3318 \
#     cargo test --workspace --test api read_replica
#
# Needs mariadbd, mariadb-install-db, mariadb and mariadb-admin (MariaDB ≥ 10.6).
set -euo pipefail

PRIMARY_PORT="${PRIMARY_PORT:-3317}"
REPLICA_PORT="${REPLICA_PORT:-3318}"

sql() { # sql <port> <statement>
  mariadb --no-defaults -h127.0.0.1 -P"$1" -uroot -N -B -e "$2"
}

replica_status() {
  mariadb --no-defaults -h127.0.0.1 -P"$REPLICA_PORT" -uroot -e "SHOW SLAVE STATUS\G"
}

wait_up() { # wait_up <port>
  for _ in $(seq 1 120); do
    sql "$1" "SELECT 1" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  echo "mariadbd on :$1 did not come up" >&2
  return 1
}

start_one() { # start_one <dir> <name> <port> <extra options...>
  local dir="$1" name="$2" port="$3"; shift 3
  if sql "$port" "SELECT 1" >/dev/null 2>&1; then
    echo "something already answers on :$port (stop it first: $0 stop <dir>)" >&2
    return 1
  fi
  mkdir -p "$dir"
  if [ ! -d "$dir/$name/mysql" ]; then
    mariadb-install-db --no-defaults --datadir="$dir/$name" --auth-root-authentication-method=normal \
      --skip-test-db --user="$(id -un)" >"$dir/$name-install.log" 2>&1 \
      || { cat "$dir/$name-install.log" >&2; return 1; }
  fi
  mariadbd --no-defaults --datadir="$dir/$name" --port="$port" --bind-address=127.0.0.1 \
    --socket="$dir/$name.sock" --pid-file="$dir/$name.pid" --log-error="$dir/$name.err" \
    --user="$(id -un)" --innodb-buffer-pool-size=64M --skip-name-resolve "$@" &
  wait_up "$port" || { tail -20 "$dir/$name.err" >&2; return 1; }
}

start() {
  local dir="$1"
  start_one "$dir" primary "$PRIMARY_PORT" \
    --server-id=1 --log-bin="$dir/primary/binlog" --binlog-format=ROW
  start_one "$dir" replica "$REPLICA_PORT" \
    --server-id=2 --read-only --relay-log="$dir/replica/relay"
  sql "$REPLICA_PORT" "STOP SLAVE; CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=$PRIMARY_PORT, MASTER_USER='root', MASTER_PASSWORD='', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1; START SLAVE;"
  # Replicating: a database made on the primary appears on the replica.
  for _ in $(seq 1 60); do
    running="$(replica_status | grep -cE 'Slave_(IO|SQL)_Running: Yes' || true)"
    [ "$running" = 2 ] && [ "$(sql "$REPLICA_PORT" "SELECT @@gtid_slave_pos")" = "$(sql "$PRIMARY_PORT" "SELECT @@gtid_binlog_pos")" ] \
      && { echo "replica pair up: primary :$PRIMARY_PORT, replica :$REPLICA_PORT"; return 0; }
    sleep 0.5
  done
  echo "the replica does not replicate:" >&2
  replica_status >&2
  return 1
}

stop() {
  local dir="$1" name pid
  for name in replica primary; do
    [ -f "$dir/$name.pid" ] || continue
    pid="$(cat "$dir/$name.pid")"
    kill "$pid" 2>/dev/null || continue
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  done
}

case "${1:-}" in
  start) start "${2:?usage: $0 start <dir>}" ;;
  stop) stop "${2:?usage: $0 stop <dir>}" ;;
  env)
    echo "export HEART_TEST_REPLICA_PRIMARY_URL=mysql://root@127.0.0.1:$PRIMARY_PORT"
    echo "export HEART_TEST_REPLICA_URL=mysql://root@127.0.0.1:$REPLICA_PORT"
    ;;
  *) echo "usage: $0 start <dir> | stop <dir> | env" >&2; exit 2 ;;
esac
