#!/usr/bin/env bash
# tests/bench/durable.sh - what --data-dir costs: REST creates on a durable
# store against a memory-only one, and what a reader waits for while
# durable writes go on, in the same run.
#
# Two h1mock servers side by side, both the built-in default (rest.mount
# "/api"), pinned to the same core: "memory" (no --data-dir) and "durable"
# (--data-dir on $TMPDIR's file system). For each, in turn:
#   alone    wrk -c1 GET /health: the reader's latency with no writes
#   loaded   wrk -cBENCH_CONNECTIONS POST /api/items (creates) and, at the
#            same time, wrk -c1 GET /health: the reader under that write load
# Targets (issue #13): durable creates/s >= 0.5 x memory-only creates/s,
# and the GET p99 under the durable write load within 2 ms of the GET p99
# alone.
# Never part of the test suite. See tests/bench/README.md.
#
# Environment:
#   H1MOCK_BIN          binary to measure            (default build/h1mock)
#   BENCH_SECONDS       measured run per phase, s    (default 10)
#   BENCH_WARMUP        warm-up before the creates, s (default 2)
#   BENCH_CONNECTIONS   wrk connections of the creates (default 32)
#   BENCH_SERVER_CPU    core for the servers         (default 0)
#   BENCH_CLIENT_CPU    core for wrk                 (default 1)
#   BENCH_STRICT        1: exit 1 when a target is missed
#   TMPDIR              where the data directory goes (default /tmp): put it
#                       on the disk you mean to measure, not on tmpfs
set -eu
# shellcheck source=tests/bench/lib.sh
. "$(dirname "$0")/lib.sh"

seconds=${BENCH_SECONDS:-10}
warmup=${BENCH_WARMUP:-2}
conns=${BENCH_CONNECTIONS:-32}
results=$results_dir/durable-latest.txt
post_lua=$here/wrk-post.lua
target_ratio=0.5
target_p99_us=2000

case $seconds in ''|*[!0-9]*|0) die "BENCH_SECONDS must be a positive integer (got '$seconds')";; esac
case $warmup in ''|*[!0-9]*) die "BENCH_WARMUP must be an integer (got '$warmup')";; esac
case $conns in ''|*[!0-9]*|0) die "BENCH_CONNECTIONS must be a positive integer (got '$conns')";; esac
need_bin
[ -f "$post_lua" ] || die "$post_lua is missing"
need_tools wrk taskset curl awk stat
check_cpus "servers and wrk"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/h1mock-durable.XXXXXX")
mem_pid=
dur_pid=
wrk_pid=
bg_pid=

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
    stop "$bg_pid"
    stop "$wrk_pid"
    stop "$mem_pid"
    stop "$dur_pid"
    end_run "$status" "$tmp/memory.log" "$tmp/durable.log"
}
on_exit cleanup

mkdir -p "$tmp/provisions" "$tmp/data"
launch_h1mock memory "$tmp/memory.log" "$tmp/provisions"
mem_pid=$h1_pid mem_port=$h1_port
launch_h1mock durable "$tmp/durable.log" "$tmp/provisions" --data-dir "$tmp/data"
dur_pid=$h1_pid dur_port=$h1_port
for port in "$mem_port" "$dur_port"; do
    code=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
        -d '{"name":"check"}' "http://127.0.0.1:$port/api/check") || code=000
    [ "$code" = 200 ] || die "POST /api/check on port $port answered $code"
done
fs=$(stat -f -c %T "$tmp/data")
[ "$fs" != tmpfs ] || say "warning: $tmp/data is on tmpfs: fdatasync costs nothing there"

# phase NAME PORT PID: sets <NAME>_get_alone_p99, <NAME>_get_loaded_p99,
# <NAME>_post_rps, <NAME>_post_p99, <NAME>_notes
phase() {
    name=$1 port=$2 pid=$3
    url=http://127.0.0.1:$port
    say "$name: GET /health alone, ${seconds}s"
    wrk_ -t1 -c1 -d"${seconds}s" --latency "$url/health" >"$tmp/$name.alone"
    wrk_figures "$name-alone" "$tmp/$name.alone" 0 0 "$seconds"
    eval "${name}_get_alone_p99=\$r_p99"
    if [ "$warmup" -gt 0 ]; then
        wrk_ -t1 -c"$conns" -d"${warmup}s" -s "$post_lua" "$url/api/items" >/dev/null
    fi
    say "$name: creates with $conns connections and GET /health beside them, ${seconds}s"
    taskset -c "$client_cpu" wrk -t1 -c"$conns" -d"${seconds}s" --latency -s "$post_lua" \
        "$url/api/items" >"$tmp/$name.post" &
    bg_pid=$!
    wrk_ -t1 -c1 -d"${seconds}s" --latency "$url/health" >"$tmp/$name.loaded"
    wait "$bg_pid" || die "wrk (creates) failed"
    bg_pid=
    kill -0 "$pid" 2>/dev/null || die "$name: server died during the run"
    wrk_figures "$name-loaded" "$tmp/$name.loaded" 0 0 "$seconds"
    eval "${name}_get_loaded_p99=\$r_p99"
    wrk_figures "$name-post" "$tmp/$name.post" 0 0 "$seconds"
    eval "${name}_post_rps=\$r_rps ${name}_post_p99=\$r_p99"
    notes=
    for f in "$tmp/$name.post" "$tmp/$name.loaded" "$tmp/$name.alone"; do
        bad=$(awk '/^  Non-2xx or 3xx responses:/ { print $NF }' "$f")
        [ -z "$bad" ] || notes="$notes $(basename "$f"):non-2xx=$bad"
        errs=$(awk '/Socket errors:/ { sub(/.*Socket errors: /, ""); print }' "$f")
        [ -z "$errs" ] || notes="$notes $(basename "$f"):socket-errors($errs)"
    done
    eval "${name}_notes=\$notes"
}

load0=$(cut -d' ' -f1-3 /proc/loadavg)
phase memory "$mem_port" "$mem_pid"
phase durable "$dur_port" "$dur_pid"
load1=$(cut -d' ' -f1-3 /proc/loadavg)
mem_hwm=$(awk '/^VmHWM:/ { print $2 }' /proc/"$mem_pid"/status)
dur_hwm=$(awk '/^VmHWM:/ { print $2 }' /proc/"$dur_pid"/status)

# shellcheck disable=SC2154  # set by phase through eval
{
    ratio_rps=$(ratio "$durable_post_rps" "$memory_post_rps")
    extra_p99=$(awk -v a="$durable_get_loaded_p99" -v b="$durable_get_alone_p99" 'BEGIN { printf "%.0f", a - b }')
    v_ratio=$(awk -v r="$ratio_rps" -v t="$target_ratio" 'BEGIN { print (r + 0 >= t) ? "ok" : "MISSED" }')
    v_p99=$(verdict_le "$extra_p99" "$target_p99_us")
    mkdir -p "$results_dir"
    {
        printf 'h1mock durable store benchmark  %s\n' "$(date -u '+%Y-%m-%dT%H:%M:%SZ')"
        printf 'h1mock: %s (rev %s), built-in default provision\n' "$bin" \
            "$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
        printf 'host:   %s CPUs; servers on CPU %s, wrk on CPU %s; load average %s before, %s after\n' \
            "$ncpu" "$server_cpu" "$client_cpu" "$load0" "$load1"
        printf 'data:   %s (%s)\n' "$tmp/data" "$fs"
        printf 'load:   creates: wrk -t1 -c%s POST /api/items; reader: wrk -t1 -c1 GET /health; %ss each\n' \
            "$conns" "$seconds"
        echo
        printf '%-8s %12s %12s %14s %14s %10s %s\n' store 'creates/s' 'create p99' 'GET p99 alone' \
            'GET p99 loaded' 'VmHWM kB' notes
        printf '%-8s %12s %12s %14s %14s %10s %s\n' memory "$memory_post_rps" "${memory_post_p99}us" \
            "${memory_get_alone_p99}us" "${memory_get_loaded_p99}us" "$mem_hwm" "$memory_notes"
        printf '%-8s %12s %12s %14s %14s %10s %s\n' durable "$durable_post_rps" "${durable_post_p99}us" \
            "${durable_get_alone_p99}us" "${durable_get_loaded_p99}us" "$dur_hwm" "$durable_notes"
        echo
        printf 'durable / memory creates/s          %8s  (target >= %s)  %s\n' "$ratio_rps" "$target_ratio" "$v_ratio"
        printf 'durable GET p99 loaded - alone      %6sus  (target <= %sus) %s\n' "$extra_p99" "$target_p99_us" "$v_p99"
    } | tee "$results"
    say "written to ${results#"$root"/}"
    if [ "$strict" = 1 ] && { [ "$v_ratio" = MISSED ] || [ "$v_p99" = MISSED ]; }; then
        exit 1
    fi
}
