#!/usr/bin/env bash
# What the edge's work costs natively, beside what the edge costs, in one run: the floor under
# the issue's edge targets on this machine.
#
# Forwarded (a member's profile, the issue's forward rows): from the core directly; through a
# bare native proxy (`heart-proxy`: hyper in, a pooled hyper client out, one thread per core with
# a runtime each, like the edge host); through the same proxy with one Redis round trip per
# request (the trip the edge must make), as a plain GET and as the edge's own gate script with a
# verified token's keys; and through the edge (a fresh component instance, the token read, the
# gate script, the forward over wasi-http).
# Cached (feed page 0, gzip, the issue's cached row): from the core directly; a native cache hit
# (`heart-proxy --redis-work page`: the gate script of a cacheable feed read, the edge's own gzip
# page from Redis, answered without the core); and the edge's cached page.
# Edge and core run as two processes, as deployed; every row runs in every round.
#
#   B=<folder with heart-core, heart-edge-host, heart-proxy, heart-datagen, heart_edge.wasm> \
#     ROUNDS=3 KEEP_DATA=1 bash bench/proxy-floor.sh
#   PERF=1 B=… bash bench/proxy-floor.sh   # where the front process's CPU goes (see below)
#
# For each row: req/s per round, the mean's ratio to the core direct, the CPU µs per request of
# the process in front (proxy or edge), the core and this run's Redis at 32 connections (from
# /proc/<pid>/stat deltas; nothing watches the load), and for the forwarded rows the p50 at one
# connection beside the core direct's.
set -euo pipefail
cd "$(dirname "$0")/.."
B="${B:?B=<folder with the release binaries to measure>}"
DURATION="${DURATION:-8s}"
ROUNDS="${ROUNDS:-3}"
DB=heart_edge_ab
REDIS_PORT="${REDIS_PORT:-6391}"
. bench/lib.sh
edge_bench_setup "$DB" "$REDIS_PORT"
[ -x "$B/heart-proxy" ] || { echo "$B/heart-proxy is missing" >&2; exit 2; }

machine_line
echo "B=$B duration $DURATION, $ROUNDS rounds"
edge_bench_data "$DB" "$B"

PAGE="/post/posts?member_id=1&page=0&size=10"
PROFILE="/member/profile?member_id=2"
proxies=()
stop_proxies() { for p in "${proxies[@]}"; do stop_pid "$p"; done; proxies=(); }
trap 'stop_proxies; stop_pid "$pid"; stop_pid "$core_pid"; stop_pid "$redis_pid"; rm -rf "$work"' EXIT

# name|port|index in $proxies of the process in front ("" for none, "edge" for the edge)|path|extra header|connections
CASES=(
  "core direct|8081||$PROFILE|X-Bench: 1|32 1"
  "bare native proxy|8082|0|$PROFILE|X-Bench: 1|32 1"
  "native proxy + one Redis GET|8083|1|$PROFILE|X-Bench: 1|32 1"
  "native proxy + the edge's gate script|8084|2|$PROFILE|X-Bench: 1|32 1"
  "edge (instance, token, gate script, forward)|8080|edge|$PROFILE|X-Bench: 1|32 1"
  "core direct: feed page 0 (gzip)|8081||$PAGE|Accept-Encoding: gzip|32"
  "native cache hit (gate script with the page)|8085|3|$PAGE|Accept-Encoding: gzip|32"
  "edge: feed page 0, cached (gzip)|8080|edge|$PAGE|Accept-Encoding: gzip|32"
)

hz=$(getconf CLK_TCK)

front_pid_of() { # front_pid_of <a case's front field>: the pid of the process in front, if any
  case "$1" in
    "") echo "" ;;
    edge) echo "$pid" ;;
    *) echo "${proxies[$1]}" ;;
  esac
}

run_case() { # run_case <case> <connections>: a row into $work/<case>.<connections>
  local i="$1" c="$2" name port front path header t=2 procs before after n cpu front_pid
  IFS='|' read -r name port front path header _ <<<"${CASES[$i]}"
  front_pid="$(front_pid_of "$front")"
  [ "$c" -lt 2 ] && t=1
  procs=("$front_pid" "$core_pid" "$redis_pid")
  before=(); for p in "${procs[@]}"; do before+=("$(cpu_ticks "$p")"); done
  wrk -t"$t" -c"$c" -d"$DURATION" --timeout 10s --latency -H "Authorization: Bearer $token" \
    -H "$header" "http://127.0.0.1:$port$path" >"$work/wrk.out"
  after=(); for p in "${procs[@]}"; do after+=("$(cpu_ticks "$p")"); done
  n=$(awk '/requests in/ {print $1}' "$work/wrk.out")
  cpu=$(awk -v n="$n" -v hz="$hz" -v b="${before[*]}" -v a="${after[*]}" 'BEGIN {
      split(b, B, " "); split(a, A, " ")
      for (k = 1; k <= 3; k++) printf "%s%.1f", (k > 1 ? " " : ""), (A[k] - B[k]) / hz * 1e6 / n
    }')
  echo "$(wrk_row "$work/wrk.out") $cpu" >>"$work/$i.$c"
  echo "  $name ($c): $(tail -1 "$work/$i.$c")"
}

start_proxy() { # start_proxy <port> <heart-proxy options…>: appended to $proxies
  local port="$1"; shift
  "$B/heart-proxy" --listen "127.0.0.1:$port" "$@" >"$work/proxy-$port.log" 2>&1 &
  proxies+=($!)
}

start_all() { # the core, the edge and the four proxies, ready
  start_split_stack "$B" "floor-$RANDOM"
  # The edge's own cached variant of the page, for the native hit to answer.
  curl -sf -H "Authorization: Bearer $token" -H 'Accept-Encoding: gzip' "http://127.0.0.1:8080$PAGE" -o "$work/page.gz"
  local redis=(--redis "127.0.0.1:$REDIS_PORT") k
  start_proxy 8082 --core 127.0.0.1:8081
  start_proxy 8083 --core 127.0.0.1:8081 "${redis[@]}"
  start_proxy 8084 --core 127.0.0.1:8081 "${redis[@]}" --redis-work gate
  start_proxy 8085 --core 127.0.0.1:8081 "${redis[@]}" --redis-work page --page-file "$work/page.gz"
  for k in "${!proxies[@]}"; do
    wait_ready "${proxies[$k]}" "$work/proxy-$((8082 + k)).log" "http://127.0.0.1:$((8082 + k))/healthz"
  done
}

if [ "${PERF:-0}" = 1 ]; then
  # PERF=1: where the front process's CPU goes, native against the edge. For the forward (the
  # proxy with the gate script, then the edge) and the hit (the native hit, then the edge's
  # cached page): `perf record` of that process over one 8 s wrk run at 32 connections, as CPU
  # µs per request by library (the kernel, libc, the compiled component) and, for the process's
  # own code, by the crate its symbol names (samples at 1999 Hz of running time).
  command -v perf >/dev/null || { echo "perf is missing: apt-get install linux-perf" >&2; exit 2; }
  start_all
  for i in 3 4 6 7; do
    IFS='|' read -r name port front path header _ <<<"${CASES[$i]}"
    front_pid="$(front_pid_of "$front")"
    perf record -F 1999 -o "$work/perf.data" -p "$front_pid" -- sleep 8 >/dev/null 2>&1 &
    perf_pid=$!
    wrk -t2 -c32 -d8s -H "Authorization: Bearer $token" -H "$header" "http://127.0.0.1:$port$path" >"$work/wrk.out"
    wait "$perf_pid" || true
    rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.out")
    echo "== $name: $rps req/s; CPU µs per request of the process in front"
    perf report -i "$work/perf.data" --no-inline --no-children --sort dso,symbol -n -g none --stdio 2>/dev/null | grep '%' |
      awk -v rps="$rps" '
        { n = $2; dso = $3; sym = ""; for (f = 5; f <= NF; f++) sym = sym " " $f
          if (dso ~ /kallsyms/) k = "the kernel"
          else if (dso ~ /libc/) k = "libc"
          else if (dso ~ /cwasm/) k = "the component (compiled wasm)"
          else if (dso ~ /vdso/) k = "vdso"
          else {
            s = sym; sub(/^ */, "", s); sub(/^_?</, "", s)
            k = match(s, /^[a-z_0-9]+::/) ? "crate " substr(s, 1, RLENGTH - 2) : "other"
          }
          t[k] += n; all += n }
        END {
          printf "  %6.1f  %s\n", all / 1999 * 1e6 / (rps * 8), "all"
          for (k in t) { us = t[k] / 1999 * 1e6 / (rps * 8); if (us >= 0.5) printf "  %6.1f  %s\n", us, k; else rest += us }
          printf "  %6.1f  %s\n", rest, "(the rest, each under 0.5)"
        }' | sort -rn
  done
  exit 0
fi

for round in $(seq 1 "$ROUNDS"); do
  echo "== round $round"
  start_all
  for c in 32 1; do
    for i in "${!CASES[@]}"; do
      IFS='|' read -r _ _ _ _ _ connections <<<"${CASES[$i]}"
      case " $connections " in *" $c "*) run_case "$i" "$c" ;; esac
    done
  done
  stop_proxies; stop_pid "$pid"; stop_pid "$core_pid"; pid="" core_pid=""
done

mean() { awk -v col="$2" '{s+=$col} END {printf "%.1f", s/NR}' "$1"; }
echo
echo "| row | 32 connections: req/s per round | mean ÷ its core direct | CPU µs/request at 32: front, core, Redis | 1 connection: p50 (mean) | p50 − core direct |"
echo "|---|---|---|---|---|---|"
for i in "${!CASES[@]}"; do
  IFS='|' read -r name port _ path _ <<<"${CASES[$i]}"
  # The core-direct row of the same path is the first row with it.
  base=""
  for j in "${!CASES[@]}"; do
    IFS='|' read -r _ _ _ other_path _ <<<"${CASES[$j]}"
    if [ "$other_path" = "$path" ]; then base="$j"; break; fi
  done
  rates="$(awk '{r=r (NR>1?", ":"") sprintf("%.0f", $1)} END {print r}' "$work/$i.32")"
  ratio="$(awk -v a="$(mean "$work/$i.32" 1)" -v b="$(mean "$work/$base.32" 1)" 'BEGIN {printf "%.2f×", a/b}')"
  cpu="$(mean "$work/$i.32" 5), $(mean "$work/$i.32" 6), $(mean "$work/$i.32" 7)"
  if [ -f "$work/$i.1" ]; then
    p50="$(mean_ms "$work/$i.1" 2 3) ms"
    extra="$(awk -v a="$(mean_ms "$work/$i.1" 2 3)" -v b="$(mean_ms "$work/$base.1" 2 3)" 'BEGIN {printf "%+.2f ms", a-b}')"
  else
    p50="" extra=""
  fi
  echo "| $name | $rates | $ratio | $cpu | $p50 | $extra |"
done
if awk '$4 != 0 {bad = 1} END {exit bad ? 0 : 1}' "$work"/*.32 "$work"/*.1; then
  echo "Some runs had answers other than 2xx (4th column of the rows above): those rows do not count."
fi
