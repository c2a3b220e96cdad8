#!/usr/bin/env bash
# Hostile input against the served OpenAPI document: schemathesis generates requests for every
# operation (examples, coverage, fuzzing, stateful sequences) and fails on any 5xx or any answer
# outside the documented status codes, content types and schemas.
#
# Usage: core-api/checks/schemathesis.sh [path/to/heart-core]   (default: $CARGO_TARGET_DIR/debug/heart-core)
# The tool is installed from PyPI into a venv under ${XDG_CACHE_HOME:-~/.cache}, reused when present.
set -euo pipefail
cd "$(dirname "$0")/../.."

binary="${1:-${CARGO_TARGET_DIR:-target}/debug/heart-core}"
[ -x "$binary" ] || { echo "no server binary at $binary: run cargo build -p heart-core first" >&2; exit 2; }
version="4.32.5"
venv="${XDG_CACHE_HOME:-$HOME/.cache}/heart-schemathesis-$version"
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv --clear "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
fi

work="$(mktemp -d)"
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port="$(free_port)"
api="http://127.0.0.1:$port"

# Rate limits off: the fuzzer sends thousands of requests from one address.
HEART_DATA_DIR="$work/data" HEART_LISTEN_ADDR="127.0.0.1:$port" HEART_ADMIN_LISTEN_ADDR="127.0.0.1:$(free_port)" \
  HEART_RATE_LIMITS_ENABLED=false HEART_LOG_FORMAT=json "$binary" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 50); do curl -sf "$api/healthz" >/dev/null && break; sleep 0.2; done

# A member and a token, the way the app gets them.
email="fuzz@example.com"
post() { curl -sf -X POST "$api$1" -H 'content-type: application/json' -d "$2"; }
post /auth/emailVerificationCode "{\"email\":\"$email\"}" >/dev/null
code="$(grep -ho 'code is: [A-Za-z0-9]*' "$work"/data/outbox/*.eml | tail -1 | cut -d' ' -f3)"
post /auth/confirmVerificationCode "{\"email\":\"$email\",\"verification_code\":\"$code\"}" >/dev/null
post /auth/join "{\"email\":\"$email\",\"name\":\"Fuzz\",\"nickname\":\"fuzz\",\"password\":\"passw0rd\"}" >/dev/null
# A moderator too, so the /admin/ operations run past the role check. It is the only member, and
# suspending yourself is refused: no generated request can end the run's own session.
HEART_DATA_DIR="$work/data" "$binary" admin grant "$email" >/dev/null
token="$(post /auth/login "{\"email\":\"$email\",\"password\":\"passw0rd\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')"

# Logout and account deletion would end the run's own session; they are covered by the HTTP tests.
(cd "$work" && "$venv/bin/schemathesis" run "$api/openapi.json" \
  -H "Authorization: Bearer $token" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-50}" \
  --exclude-path /auth/logout --exclude-path '/member/delete/{id}' \
  --seed "${SCHEMATHESIS_SEED:-20261125}")

if grep -q '"level":"ERROR"' "$work/server.log"; then
  echo "the server logged errors during the run:" >&2
  grep '"level":"ERROR"' "$work/server.log" | head -20 >&2
  exit 1
fi
echo "schemathesis: no 5xx, every answer as documented"
