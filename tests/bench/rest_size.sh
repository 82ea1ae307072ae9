#!/usr/bin/env bash
# tests/bench/rest_size.sh - REST creates as the store grows: does the rate
# at a million documents hold against the rate of an empty store, measured
# in the same run? And what does a document cost in RSS?
#
# One h1mock (the built-in default, rest.mount "/api"), pinned to one core;
# wrk (-t1, BENCH_CONNECTIONS connections, POST /api/items) on the other,
# in back-to-back slices of BENCH_SLICE seconds until the collection holds
# BENCH_DOCS documents. Each slice's rate is printed with the document count
# it started at, and its ratio to the first slice's (the empty store); so is
# h1mock's CPU time per create (all its threads, /proc), which other
# processes on the machine disturb far less than the rate.
# Target (issue #17): every slice up to 1,000,000 documents >= 0.9 x the
# first. With BENCH_DATA_DIR set, the store is durable (--data-dir there).
# Never part of the test suite. See tests/bench/README.md.
#
# Environment:
#   H1MOCK_BIN          binary to measure                 (default build/h1mock)
#   BENCH_DOCS          documents to reach                (default 1700000)
#   BENCH_SLICE         seconds per wrk slice             (default 3)
#   BENCH_CONNECTIONS   wrk connections                   (default 32)
#   BENCH_SERVER_CPU    core for h1mock                   (default 0)
#   BENCH_CLIENT_CPU    core for wrk                      (default 1)
#   BENCH_DATA_DIR      empty: memory only; else --data-dir (made, then removed)
set -eu
# shellcheck source=tests/bench/lib.sh
. "$(dirname "$0")/lib.sh"

docs=${BENCH_DOCS:-1700000}
slice=${BENCH_SLICE:-3}
conns=${BENCH_CONNECTIONS:-32}
data_dir=${BENCH_DATA_DIR:-}
post_lua=$here/wrk-post.lua
results=$results_dir/rest-size-latest.txt

case $docs in ''|*[!0-9]*|0) die "BENCH_DOCS must be a positive integer";; esac
case $slice in ''|*[!0-9]*|0) die "BENCH_SLICE must be a positive integer";; esac
need_bin
need_tools wrk taskset curl awk jq
check_cpus "h1mock and wrk"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/h1mock-rest-size.XXXXXX")
h1_pid=
wrk_pid=
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
    stop "$wrk_pid"
    stop "$h1_pid"
    [ -z "$data_dir" ] || rm -rf "$data_dir"
    end_run "$status" "$tmp/h1mock.log"
}
on_exit cleanup

mkdir -p "$tmp/provisions"
set --
if [ -n "$data_dir" ]; then
    rm -rf "$data_dir"
    set -- --data-dir "$data_dir"
fi
launch_h1mock h1mock "$tmp/h1mock.log" "$tmp/provisions" --journal-size 0 "$@"
base=http://127.0.0.1:$h1_port
wait_http "$base/health" "$h1_pid" 10 || die "h1mock does not answer"
rss0=$(rss_kb "$h1_pid")
count() {
    curl -s --max-time 30 "http://127.0.0.1:$h1_admin/app/v1/store" |
        jq '[.collections[] | select(.name == "items") | .count] | add // 0'
}

load0=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -p "$results_dir"
{
    printf 'h1mock REST creates as the store grows  %s\n' "$(date -u '+%Y-%m-%dT%H:%M:%SZ')"
    printf 'h1mock: %s (rev %s), %s; wrk -t1 -c%s, slices of %ss; load average %s\n' "$bin" \
        "$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
        "${data_dir:+durable in $data_dir}${data_dir:-memory only}" "$conns" "$slice" "$load0"
    printf '%12s %12s %8s %10s %12s %8s %s\n' 'documents' 'creates/s' 'ratio' 'p99 us' \
        'CPU us/req' 'ratio' 'notes'
} | tee "$results"
first=
worst=
worst_at=
worst_cpu=
n=0
first_cpu=
while [ "$n" -lt "$docs" ]; do
    t0=$(cpu_ticks "$h1_pid")
    wrk_ -t1 -c"$conns" -d"${slice}s" --latency -s "$post_lua" "$base/api/items" >"$tmp/wrk"
    t1=$(cpu_ticks "$h1_pid")
    wrk_figures slice "$tmp/wrk" "$t0" "$t1" "$slice"
    [ -n "$first" ] || first=$r_rps
    [ -n "$first_cpu" ] || first_cpu=$r_cpu
    r=$(ratio "$r_rps" "$first")
    rc=$(ratio "$first_cpu" "$r_cpu")
    notes=
    bad=$(awk '/^  Non-2xx or 3xx responses:/ { print $NF }' "$tmp/wrk")
    [ -z "$bad" ] || notes="non-2xx=$bad"
    printf '%12s %12s %8s %10s %12s %8s %s\n' "$n" "$r_rps" "$r" "$r_p99" "$r_cpu" "$rc" "$notes" |
        tee -a "$results"
    if [ "$n" -le 1000000 ] && { [ -z "$worst" ] || awk -v a="$r" -v b="$worst" 'BEGIN { exit !(a < b) }'; }; then
        worst=$r
        worst_at=$n
    fi
    if [ "$n" -le 1000000 ] && { [ -z "$worst_cpu" ] || awk -v a="$rc" -v b="$worst_cpu" 'BEGIN { exit !(a < b) }'; }; then
        worst_cpu=$rc
    fi
    n=$(count)
done
rss1=$(rss_kb "$h1_pid")
{
    printf 'documents: %s; RSS %s kB -> %s kB: %s bytes per document\n' "$n" "$rss0" "$rss1" \
        "$(awk -v a="$rss1" -v b="$rss0" -v n="$n" 'BEGIN { printf "%.0f", (a - b) * 1024 / n }')"
    printf 'lowest ratio up to 1,000,000 documents: creates/s %s (slice from %s)  %s;' "$worst" \
        "$worst_at" "$(awk -v r="$worst" 'BEGIN { print (r + 0 >= 0.9) ? "ok" : "MISSED" }')"
    printf ' creates per CPU second %s  %s\n' "$worst_cpu" \
        "$(awk -v r="$worst_cpu" 'BEGIN { print (r + 0 >= 0.9) ? "ok" : "MISSED" }')"
} | tee -a "$results"
