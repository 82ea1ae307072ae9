#!/usr/bin/env bash
# tests/bench/proxy.sh - what --proxy costs per request: wrk against an
# upstream h1mock serving provisions/foo-bar.lua directly, and against a
# second h1mock whose provision has no rule for the path, so that --proxy
# forwards every request to that upstream (a pooled keep-alive connection).
#
# Both servers are pinned to the same core (the proxied path spends the
# time of both, as a proxy in front of a service on one host would); wrk on
# the other. The measured runs alternate direct, proxied, direct, proxied
# (BENCH_ROUNDS pairs) so that a slow moment of the machine hits both.
# Reported: requests/s, p50/p99 latency, the proxy's own CPU per request,
# and the ratios proxied/direct. The load average before and after is
# printed: figures from a busy machine mean little.
# Never part of the test suite. See tests/bench/README.md.
#
# Environment:
#   H1MOCK_BIN          binary to measure            (default build/h1mock)
#   BENCH_SECONDS       measured run per round and target, s (default 10)
#   BENCH_WARMUP        warm-up per target, s        (default 2)
#   BENCH_ROUNDS        direct/proxied pairs         (default 2)
#   BENCH_CONNECTIONS   wrk connections              (default 50)
#   BENCH_THREADS       wrk threads                  (default 1)
#   BENCH_SERVER_CPU    core for the servers         (default 0)
#   BENCH_CLIENT_CPU    core for wrk                 (default 1)
set -eu
# shellcheck source=tests/bench/lib.sh
. "$(dirname "$0")/lib.sh"

seconds=${BENCH_SECONDS:-10}
warmup=${BENCH_WARMUP:-2}
rounds=${BENCH_ROUNDS:-2}
conns=${BENCH_CONNECTIONS:-50}
threads=${BENCH_THREADS:-1}
results=$results_dir/proxy-latest.txt

path=/app/v1/foo/bar
body='{"resultCode":0,"resultData":"answering a get"}'

case $seconds in ''|*[!0-9]*|0) die "BENCH_SECONDS must be a positive integer (got '$seconds')";; esac
case $warmup in ''|*[!0-9]*) die "BENCH_WARMUP must be an integer (got '$warmup')";; esac
case $rounds in ''|*[!0-9]*|0) die "BENCH_ROUNDS must be a positive integer (got '$rounds')";; esac
need_bin
[ -f provisions/foo-bar.lua ] || die "provisions/foo-bar.lua is missing"
need_tools wrk taskset curl awk
[ -r /proc/self/stat ] || die "/proc is needed to measure CPU time"
check_cpus "servers and wrk"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/h1mock-bench.XXXXXX")
up_pid=
px_pid=
h1_pid=
wrk_pid=

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
    stop "$wrk_pid"
    stop "$px_pid"
    stop "$up_pid"
    stop "$h1_pid"
    end_run "$status" "$tmp/upstream.log" "$tmp/proxy.log"
}
on_exit cleanup

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
load_before=$(loadavg)

# ---------------------------------------------------------------- servers
mkdir -p "$tmp/up" "$tmp/px"
cp provisions/foo-bar.lua "$tmp/up/initial.lua"
printf 'function registerRules() end\n' >"$tmp/px/initial.lua"

launch_h1mock "upstream" "$tmp/upstream.log" "$tmp/up" --journal-size 0
up_pid=$h1_pid up_port=$h1_port h1_pid=
launch_h1mock "proxy" "$tmp/proxy.log" "$tmp/px" --journal-size 0 \
    --proxy "http://127.0.0.1:$up_port"
px_pid=$h1_pid px_port=$h1_port h1_pid=
for port in "$up_port" "$px_port"; do
    url=http://127.0.0.1:$port$path
    wait_http "$url" "$up_pid" 10 || die "no answer on $url"
    got=$(curl -sS --max-time 5 "$url") || die "GET $url failed"
    [ "$got" = "$body" ] || die "GET $url answered '$got', expected '$body'"
done
say "upstream: pid $up_pid port $up_port; proxy: pid $px_pid port $px_port"

# ---------------------------------------------------------------- load
# measure NAME PORT: one measured run; sets r_* (lib.sh), r_ticks (the proxy's)
measure() {
    name=$1 port=$2
    out=$tmp/wrk.$name.$round
    t0=$(cpu_ticks "$px_pid")
    wrk_ -t"$threads" -c"$conns" -d"${seconds}s" --latency "http://127.0.0.1:$port$path" >"$out"
    t1=$(cpu_ticks "$px_pid")
    if ! kill -0 "$up_pid" 2>/dev/null || ! kill -0 "$px_pid" 2>/dev/null; then
        die "$name: a server died during the run"
    fi
    bad=$(awk '/^  Non-2xx or 3xx responses:/ { print $NF }' "$out")
    [ -z "$bad" ] || die "$name: $bad responses were not 2xx"
    wrk_figures "$name" "$out" "$t0" "$t1" "$seconds"
    r_ticks=$((t1 - t0))
    say "$name round $round: $r_rps requests/s, p50 ${r_p50} us, p99 ${r_p99} us"
}

d_reqs=0 d_p50=0 d_rounds=
p_reqs=0 p_p50=0 p_ticks=0 p_rounds=
if [ "$warmup" -gt 0 ]; then
    say "warm-up ${warmup}s each"
    wrk_ -t"$threads" -c"$conns" -d"${warmup}s" "http://127.0.0.1:$up_port$path" >/dev/null
    wrk_ -t"$threads" -c"$conns" -d"${warmup}s" "http://127.0.0.1:$px_port$path" >/dev/null
fi
round=1
while [ "$round" -le "$rounds" ]; do
    measure direct "$up_port"
    d_reqs=$((d_reqs + r_reqs))
    d_p50=$(awk -v a="$d_p50" -v b="$r_p50" 'BEGIN { print a + b }')
    d_rounds="$d_rounds $r_rps($r_p50/$r_p99)"
    measure proxied "$px_port"
    p_reqs=$((p_reqs + r_reqs)) p_ticks=$((p_ticks + r_ticks))
    p_p50=$(awk -v a="$p_p50" -v b="$r_p50" 'BEGIN { print a + b }')
    p_rounds="$p_rounds $r_rps($r_p50/$r_p99)"
    round=$((round + 1))
done
load_after=$(loadavg)

# ---------------------------------------------------------------- report
total_s=$((seconds * rounds))
d_rps=$(awk -v n="$d_reqs" -v s="$total_s" 'BEGIN { printf "%.2f", n / s }')
p_rps=$(awk -v n="$p_reqs" -v s="$total_s" 'BEGIN { printf "%.2f", n / s }')
d_p50=$(awk -v a="$d_p50" -v r="$rounds" 'BEGIN { printf "%.1f", a / r }')
p_p50=$(awk -v a="$p_p50" -v r="$rounds" 'BEGIN { printf "%.1f", a / r }')
p_cpu=$(awk -v t="$p_ticks" -v hz="$clk_tck" -v n="$p_reqs" 'BEGIN { printf "%.2f", t / hz * 1000000 / n }')
d_us=$(awk -v r="$d_rps" 'BEGIN { printf "%.2f", 1000000 / r }')
p_us=$(awk -v r="$p_rps" 'BEGIN { printf "%.2f", 1000000 / r }')

h1_version=$("$bin" --version 2>&1 | head -n 1) || h1_version=unknown
rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null) || rev=unknown
mkdir -p "$results_dir"
{
    printf 'h1mock proxy benchmark  %s\n' "$(date -u '+%Y-%m-%dT%H:%M:%SZ')"
    printf 'h1mock: %s (%s, rev %s)\n' "$bin" "$h1_version" "$rev"
    printf 'host:   %s CPUs; servers on CPU %s, wrk on CPU %s; load average %s before, %s after\n' \
        "$ncpu" "$server_cpu" "$client_cpu" "$load_before" "$load_after"
    printf 'load:   wrk -t%s -c%s keep-alive GET %s, warm-up %ss, %s rounds of %ss per target\n' \
        "$threads" "$conns" "$path" "$warmup" "$rounds" "$seconds"
    echo
    printf '%-9s %12s %14s %10s %16s  %s\n' target 'requests/s' 'wall us/req' 'p50 us' 'proxy CPU us/req' \
        'each round: requests/s(p50/p99 us)'
    printf '%-9s %12s %14s %10s %16s %s\n' direct "$d_rps" "$d_us" "$d_p50" - "$d_rounds"
    printf '%-9s %12s %14s %10s %16s %s\n' proxied "$p_rps" "$p_us" "$p_p50" "$p_cpu" "$p_rounds"
    echo
    printf 'proxied/direct  time per request  %s\n' "$(ratio "$p_us" "$d_us")"
    printf 'proxied/direct  p50 latency       %s\n' "$(ratio "$p_p50" "$d_p50")"
} | tee "$results"
say "written to ${results#"$root"/}"
