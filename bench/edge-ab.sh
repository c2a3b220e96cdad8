#!/usr/bin/env bash
# The edge's hot paths, two builds side by side in one run: A and B alternate (A B A B), so a
# change is judged against the build before it on the same machine minutes apart, never against
# a number from another day.
#
#   A=/var/tmp/bin-before B=/var/tmp/heart-release-target/release bash bench/edge-ab.sh
#   PERF=1 B=… bash bench/edge-ab.sh     # B only, under `perf record` (guest functions named);
#                                        # PERF_CASES="0 2 7" picks the cases (numbers in CASES),
#                                        # PERF_KEEP=<folder> keeps the recordings,
#                                        # PERF_GRAPH=dwarf names the host's callers too
#   SYSCALLS=1 A=… B=… bash bench/edge-ab.sh  # system calls, page faults and context switches
#                                        # of the edge process per request (PERF_CASES too)
#   CPU=1 A=… B=… bash bench/edge-ab.sh  # CPU µs per request of every process a request touches
#                                        # (edge, core, Redis, MariaDB, wrk), without perf, and
#                                        # Redis' commands per request (INFO commandstats);
#                                        # CPU_CASES="0 1 2 3 7" picks the cases
#   UPLOADS=1 A=… B=… bash bench/edge-ab.sh  # the edge's resident memory under 16 concurrent
#                                        # 10 MB uploads (as bench/run.sh), ROUNDS times
#
# A and B are folders holding the release binaries `heart` (the stack: edge on :8080 in front of
# the core on :8081) and `heart-datagen`, and the component `heart_edge.wasm` the build made (a
# release binary names the one in its target directory, which the next build overwrites). To
# build B from a second checkout (a git worktree) into the same target directory, build it after
# copying A out; cargo compares modification times only, so going back to the first checkout
# needs its changed files touched. Check with `cmp` that the two `heart_edge.wasm` differ when the
# component does. To compare one build under two environments (an allocator's tunables, say), B
# can be a folder of symlinks to A's files whose `heart-edge-host` is a script that runs
# `exec env NAME=value /path/to/A/heart-edge-host "$@"` (exec keeps the process id the script
# measures). Each round starts the stack on a private Redis and the
# machine's MariaDB (database heart_edge_ab, kept between runs with KEEP_DATA=1) and loads, with
# wrk, the rows the issue names: the cached feed page through the edge and the same page from the
# core directly, a forwarded request (profile) and the same from the core, at 32 connections and
# at 1; and the floor, `/healthz` through the edge (a fresh instance that only answers) beside the
# core's own. Every row of the table names what it is compared with.
#
# A folder followed by `:split` runs that build as deployed, edge and core as two processes
# (`heart-edge-host` in front of `heart-core`) instead of the one-process stack, so
#   A=/var/tmp/bin B=/var/tmp/bin:split bash bench/edge-ab.sh
# compares the two layouts of one build.
set -euo pipefail
cd "$(dirname "$0")/.."
A="${A:-}"
B="${B:?B=<folder with the release binaries to measure>}"
DURATION="${DURATION:-8s}"
ROUNDS="${ROUNDS:-2}"
DB=heart_edge_ab
REDIS_PORT="${REDIS_PORT:-6391}"
. bench/lib.sh
edge_bench_setup "$DB" "$REDIS_PORT"

machine_line
echo "A=${A:-none} B=$B duration $DURATION, $ROUNDS rounds"
edge_bench_data "$DB" "${B%:split}"

start() { # start <bin folder>[:split]
  case "$1" in
    *:split) start_split_stack "${1%:split}" "ab-$RANDOM" ;;
    *) start_edge_stack "$1" "ab-$RANDOM" ;;
  esac
}
stop() { stop_pid "$pid"; stop_pid "$core_pid"; pid="" core_pid=""; }
PAGE="/post/posts?member_id=1&page=0&size=10"
# name|connections|url|extra header
CASES=(
  "edge: home feed page 0, cached (gzip)|32|http://127.0.0.1:8080$PAGE|Accept-Encoding: gzip"
  "core direct: the same page|32|http://127.0.0.1:8081$PAGE|Accept-Encoding: gzip"
  "edge: profile, forwarded|32|http://127.0.0.1:8080/member/profile?member_id=2|X-Bench: 1"
  "core direct: profile|32|http://127.0.0.1:8081/member/profile?member_id=2|X-Bench: 1"
  "edge: profile, forwarded|1|http://127.0.0.1:8080/member/profile?member_id=2|X-Bench: 1"
  "core direct: profile|1|http://127.0.0.1:8081/member/profile?member_id=2|X-Bench: 1"
  "edge: home feed page 0, cached (gzip)|1|http://127.0.0.1:8080$PAGE|Accept-Encoding: gzip"
  "edge: /healthz (a fresh instance that only answers)|32|http://127.0.0.1:8080/healthz|X-Bench: 1"
  "core direct: /healthz|32|http://127.0.0.1:8081/healthz|X-Bench: 1"
)
run_case() { # run_case <label> <case> → "rps p50 p99" into $work/<label>.<i>
  local label="$1" i="$2" name c url header t=2
  IFS='|' read -r name c url header <<<"${CASES[$i]}"
  [ "$c" -lt 2 ] && t=1
  wrk -t"$t" -c"$c" -d"$DURATION" --timeout 10s --latency -H "Authorization: Bearer $token" -H "$header" "$url" >"$work/wrk.out"
  wrk_row "$work/wrk.out" >>"$work/$label.$i"
  echo "  $label $name ($c): $(tail -1 "$work/$label.$i")"
}

# watched_load <case> <perf command and options…>: one 6 s wrk run of <case> at 32 connections
# while `perf <command>` watches the edge process; sets name to the case's, wrk's output in
# $work/wrk.out.
watched_load() {
  local c url header perf_pid
  IFS='|' read -r name c url header <<<"${CASES[$1]}"
  shift
  perf "$@" -p "$pid" -- sleep 6 >/dev/null 2>&1 &
  perf_pid=$!
  wrk -t2 -c32 -d6s -H "Authorization: Bearer $token" -H "$header" "$url" >"$work/wrk.out"
  wait "$perf_pid" || true
}
if [ "${PERF:-0}" = 1 ] || [ "${SYSCALLS:-0}" = 1 ]; then
  command -v perf >/dev/null || { echo "perf is missing: apt-get install linux-perf" >&2; exit 2; }
fi

if [ "${PERF:-0}" = 1 ]; then
  export HEART_EDGE_PERF_MAP=1
  start "$B"
  # PERF_GRAPH=0: no call graphs (less overhead; the per-request numbers below are closer).
  # PERF_GRAPH=dwarf: call graphs of the host's own functions too (its release build keeps no
  # frame pointers), at a quarter of the rate; the recording is large.
  hz=1999
  case "${PERF_GRAPH:-1}" in
    0) graph=(-F "$hz") ;;
    dwarf) hz=499; graph=(-F "$hz" --call-graph "dwarf,32768") ;;
    *) graph=(-F "$hz" -g) ;;
  esac
  for i in ${PERF_CASES:-0 2}; do
    watched_load "$i" record "${graph[@]}" -o "$work/perf.data"
    rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.out")
    echo "== perf: $name"
    echo "Requests/sec: $rps"
    # PERF_KEEP=<folder>: keep the recording as <folder>/perf-case-<n>.data (and the perf map
    # that names the guest's functions) for `perf report --children` and the like.
    if [ -n "${PERF_KEEP:-}" ]; then
      mkdir -p "$PERF_KEEP" && cp "$work/perf.data" "$PERF_KEEP/perf-case-$i.data"
      cp "/tmp/perf-$pid.map" "$PERF_KEEP/" 2>/dev/null || true
    fi
    # (`|| true`: `head` ending the pipe early is not a failure.)
    perf report -i "$work/perf.data" --no-inline --no-children --sort dso,symbol -g none --percent-limit "${PERF_LIMIT:-0.7}" --stdio 2>/dev/null |
      grep -v "^$" | grep -v "^#" | grep "%" | head -"${PERF_LINES:-45}" || true
    # The same by library, and as the edge process's CPU µs per request (samples at $hz of each
    # thread's running time, over the 6 s of requests): what two cases can be compared by.
    perf report -i "$work/perf.data" --no-inline --no-children --sort dso -n -g none --stdio 2>/dev/null | grep '%' | head -12 |
      awk -v rps="$rps" -v hz="$hz" '{printf "%s  %6.1f µs/request\n", $0, $2 / hz * 1e6 / (rps * 6)}' || true
  done
  stop
  exit 0
fi

if [ "${SYSCALLS:-0}" = 1 ]; then
  # SYSCALLS=1: for A and B, the edge process's system calls, page faults and context switches
  # per request (`perf stat` of the edge process over one wrk run of each case in PERF_CASES).
  events=raw_syscalls:sys_enter,syscalls:sys_enter_mprotect,syscalls:sys_enter_madvise,syscalls:sys_enter_ioctl,page-faults,context-switches
  for label in A B; do
    dir="${!label}"
    [ -n "$dir" ] || continue
    start "$dir"
    for i in ${PERF_CASES:-0 2 7}; do
      watched_load "$i" stat -x, -e "$events" -o "$work/stat.csv"
      requests=$(awk '/requests in/ {print $1}' "$work/wrk.out")
      echo "== $label ($dir) $name: $requests requests; per request:"
      awk -F, -v n="$requests" '$1 ~ /^[0-9]+$/ {printf "  %-32s %8.2f\n", $3, $1 / n}' "$work/stat.csv"
    done
    stop
  done
  exit 0
fi

if [ "${CPU:-0}" = 1 ]; then
  # CPU=1: for A and B, the CPU each process spends per request over one 8 s wrk run of each
  # case (from /proc/<pid>/stat, so nothing slows the load): the edge host, the core, this run's
  # Redis, the machine's MariaDB and wrk itself; "idle" is what the two cores did not use. A
  # build without `:split` runs edge and core in one process: its "edge" column holds both.
  command -v /usr/bin/time >/dev/null || { echo "/usr/bin/time is missing: apt-get install time" >&2; exit 2; }
  hz=$(getconf CLK_TCK)
  cores=$(nproc)
  mariadb_pid=$(pgrep -o mariadbd || pgrep -o mysqld || true)
  for label in A B; do
    dir="${!label}"
    [ -n "$dir" ] || continue
    start "$dir"
    procs=("$pid" "$core_pid" "$redis_pid" "$mariadb_pid")
    echo "== $label ($dir): CPU µs per request"
    printf '  %-52s %8s %7s %7s %7s %7s %7s %7s %7s\n' case req/s edge core redis mariadb wrk all idle
    for i in ${CPU_CASES:-0 1 2 3 7}; do
      IFS='|' read -r name c url header <<<"${CASES[$i]}"
      redis-cli -p "$REDIS_PORT" CONFIG RESETSTAT >/dev/null
      before=(); for p in "${procs[@]}"; do before+=("$(cpu_ticks "$p")"); done
      /usr/bin/time -f '%e %U %S' -o "$work/time.out" \
        wrk -t2 -c"$c" -d"$DURATION" --timeout 10s -H "Authorization: Bearer $token" -H "$header" "$url" >"$work/wrk.out"
      after=(); for p in "${procs[@]}"; do after+=("$(cpu_ticks "$p")"); done
      requests=$(awk '/requests in/ {print $1}' "$work/wrk.out")
      rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.out")
      read -r elapsed wrk_user wrk_sys <"$work/time.out"
      awk -v name="$name ($c)" -v rps="$rps" -v n="$requests" -v hz="$hz" -v cores="$cores" \
        -v el="$elapsed" -v wu="$wrk_user" -v ws="$wrk_sys" \
        -v b="${before[*]}" -v a="${after[*]}" 'BEGIN {
          split(b, B, " "); split(a, A, " "); all = 0
          line = sprintf("  %-52s %8.0f", name, rps)
          for (k = 1; k <= 4; k++) { us = (A[k] - B[k]) / hz * 1e6 / n; all += us; line = line sprintf(" %7.1f", us) }
          w = (wu + ws) * 1e6 / n; all += w
          printf "%s %7.1f %7.1f %7.1f\n", line, w, all, cores * el * 1e6 / n - all
        }'
      # Redis' own count of the commands (a script's inner calls apart from it): per request,
      # the calls and the µs Redis timed inside each command.
      redis-cli -p "$REDIS_PORT" INFO commandstats | tr -d '\r' | awk -F'[:,=]' -v n="$requests" '
        /^cmdstat_/ && $1 !~ /config/ {sub("cmdstat_", "", $1); r = r sprintf(" %s %.2f× %.1f µs;", $1, $3 / n, $5 / n)}
        END {print "    Redis per request:" r}'
    done
    stop
  done
  exit 0
fi

if [ "${UPLOADS:-0}" = 1 ]; then
  # UPLOADS=1: A and B alternating, the edge process's resident memory at idle, at its peak under
  # 16 concurrent 10 MB uploads (bench/lib.sh's upload_memory, as bench/run.sh measures it) and
  # 3 s after they ended. Run the builds with `:split`: a one-process build holds the core too.
  for round in $(seq 1 "$ROUNDS"); do
    for label in A B; do
      dir="${!label}"
      [ -n "$dir" ] || continue
      start "$dir"
      upload_memory "$pid" http://127.0.0.1:8080 "$token"
      sleep 3
      after_kb="$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")"
      echo "round $round, $label ($dir): answers $(sort "$work/uploads.txt" | uniq -c | tr '\n' ' ')idle $((idle_kb / 1024)) MB, peak $((peak_kb / 1024)) MB (+$(((peak_kb - idle_kb) / 1024)) MB), 3 s later $((after_kb / 1024)) MB"
      stop
    done
  done
  exit 0
fi

for round in $(seq 1 "$ROUNDS"); do
  for label in A B; do
    dir="${!label}"
    [ -n "$dir" ] || continue
    echo "== round $round, $label ($dir)"
    start "$dir"
    for i in "${!CASES[@]}"; do run_case "$label" "$i"; done
    stop
  done
done

echo
echo "| case | connections | $( [ -n "$A" ] && echo "A req/s (p50 / p99) | ")B req/s (p50 / p99) | $( [ -n "$A" ] && echo "B ÷ A |")"
echo "|---|---|$( [ -n "$A" ] && echo "---|")---|$( [ -n "$A" ] && echo "---|")"
for i in "${!CASES[@]}"; do
  IFS='|' read -r name c url header <<<"${CASES[$i]}"
  row="| $name | $c |"
  for label in A B; do
    [ -f "$work/$label.$i" ] || continue
    row="$row $(awk '{r=r (NR>1?", ":"") sprintf("%.0f (%s / %s)", $1, $2, $3)} END {print r}' "$work/$label.$i") |"
  done
  if [ -n "$A" ]; then
    row="$row $(paste "$work/A.$i" "$work/B.$i" | awk '{a+=$1; b+=$5} END {printf "%.2f×", b/a}') |"
  fi
  echo "$row"
done
echo
echo "Ratios the issue sets (mean of the rounds, B):"
mean() { awk '{s+=$1} END {printf "%.0f", s/NR}' "$work/B.$1"; }
p50() { mean_ms "$work/B.$1" 2 2; }
echo "- cached page through the edge ÷ core direct (32 connections): $(mean 0) ÷ $(mean 1) = $(awk -v a="$(mean 0)" -v b="$(mean 1)" 'BEGIN {printf "%.2f×", a/b}')"
echo "- forwarded ÷ core direct (32 connections): $(mean 2) ÷ $(mean 3) = $(awk -v a="$(mean 2)" -v b="$(mean 3)" 'BEGIN {printf "%.2f×", a/b}')"
echo "- forwarded p50 − core direct p50 (1 connection): $(p50 4) − $(p50 5) ms = $(awk -v a="$(p50 4)" -v b="$(p50 5)" 'BEGIN {printf "+%.2f ms", a-b}')"
echo "- the floor: an instance that only answers ÷ the core's page (32 connections): $(mean 7) ÷ $(mean 1) = $(awk -v a="$(mean 7)" -v b="$(mean 1)" 'BEGIN {printf "%.2f×", a/b}'); the cached page is $(awk -v a="$(mean 0)" -v b="$(mean 7)" 'BEGIN {printf "%.0f %%", 100*a/b}') of it"
