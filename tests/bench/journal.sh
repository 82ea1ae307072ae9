#!/usr/bin/env bash
# tests/bench/journal.sh - what the request journal costs: h1mock serving
# provisions/foo-bar.lua with the journal off (--journal-size 0) and on
# (the default 10000 entries), in the same run.
#
# Both servers run side by side, pinned to the same core; the measured runs
# alternate off, on, off, on... (BENCH_ROUNDS pairs) so that a slow moment
# of the machine hits both, and the figures are summed over the rounds.
# The "on" server's ring is full and wrapping during the measured runs, the
# steady state where entries are reused rather than allocated. Checked
# after the runs: the journal of "on" holds 10000 entries and dropped
# the rest; "off" says enabled:false.
# Target: requests/s with the journal on >= 0.90 of off.
# Never part of the test suite. See tests/bench/README.md.
#
# Environment:
#   H1MOCK_BIN          binary to measure            (default build/h1mock)
#   BENCH_SECONDS       measured run per round and server, s (default 10)
#   BENCH_WARMUP        warm-up per server, s        (default 2)
#   BENCH_ROUNDS        off/on pairs                 (default 2)
#   BENCH_CONNECTIONS   wrk connections              (default 50)
#   BENCH_THREADS       wrk threads                  (default 1)
#   BENCH_SERVER_CPU    core for the servers         (default 0)
#   BENCH_CLIENT_CPU    core for wrk                 (default 1)
#   BENCH_STRICT        1: exit 1 when the target is missed
set -eu
# shellcheck source=tests/bench/lib.sh
. "$(dirname "$0")/lib.sh"

seconds=${BENCH_SECONDS:-10}
warmup=${BENCH_WARMUP:-2}
rounds=${BENCH_ROUNDS:-2}
conns=${BENCH_CONNECTIONS:-50}
threads=${BENCH_THREADS:-1}
results=$results_dir/journal-latest.txt
journal_size=10000
target=0.90

path=/app/v1/foo/bar
body='{"resultCode":0,"resultData":"answering a get"}'

# ---------------------------------------------------------------- checks
case $seconds in ''|*[!0-9]*|0) die "BENCH_SECONDS must be a positive integer (got '$seconds')";; esac
case $warmup in ''|*[!0-9]*) die "BENCH_WARMUP must be an integer (got '$warmup')";; esac
case $rounds in ''|*[!0-9]*|0) die "BENCH_ROUNDS must be a positive integer (got '$rounds')";; esac

need_bin
[ -f provisions/foo-bar.lua ] || die "provisions/foo-bar.lua is missing"
need_tools wrk taskset curl awk
[ -r /proc/self/stat ] || die "/proc is needed to measure CPU time and RSS"

check_cpus "servers and wrk"

# ---------------------------------------------------------------- cleanup
tmp=$(mktemp -d "${TMPDIR:-/tmp}/h1mock-bench.XXXXXX")
off_pid=
on_pid=
h1_pid=
wrk_pid=

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
    stop "$wrk_pid"
    stop "$off_pid"
    stop "$on_pid"
    stop "$h1_pid"   # one started, not yet handed over to off_pid or on_pid
    end_run "$status" "$tmp/off.log" "$tmp/on.log"
}
on_exit cleanup

# ---------------------------------------------------------------- servers
mkdir -p "$tmp/provisions"
cp provisions/foo-bar.lua "$tmp/provisions/initial.lua"

# start NAME ARGS...: log in $tmp/NAME.log; sets h1_pid, h1_port, h1_admin
start() {
    name=$1
    shift
    launch_h1mock "$name: h1mock" "$tmp/$name.log" "$tmp/provisions" "$@"
    url=http://127.0.0.1:$h1_port$path
    wait_http "$url" "$h1_pid" 10 || die "$name: h1mock does not answer on $url"
    got=$(curl -sS --max-time 5 "$url") || die "$name: GET $url failed"
    [ "$got" = "$body" ] || die "$name: GET $url answered '$got', expected '$body'"
}

start off --journal-size 0
off_pid=$h1_pid off_port=$h1_port off_admin=$h1_admin h1_pid=
start on --journal-size "$journal_size"
on_pid=$h1_pid on_port=$h1_port on_admin=$h1_admin h1_pid=
say "journal off: pid $off_pid port $off_port; journal on ($journal_size entries): pid $on_pid port $on_port"

# ---------------------------------------------------------------- load
# measure NAME PID PORT: one measured run; sets r_* (lib.sh) and r_ticks
measure() {
    name=$1 pid=$2 port=$3
    out=$tmp/wrk.$name.$round
    t0=$(cpu_ticks "$pid")
    wrk_ -t"$threads" -c"$conns" -d"${seconds}s" --latency "http://127.0.0.1:$port$path" >"$out"
    t1=$(cpu_ticks "$pid")
    kill -0 "$pid" 2>/dev/null || die "$name: server died during the run"
    bad=$(awk '/^  Non-2xx or 3xx responses:/ { print $NF }' "$out")
    [ -z "$bad" ] || die "$name: $bad responses were not 2xx"
    wrk_figures "$name" "$out" "$t0" "$t1" "$seconds"
    r_ticks=$((t1 - t0))
    say "$name round $round: $r_rps requests/s, p99 ${r_p99} us, ${r_cpu} us CPU/request"
}

off_reqs=0 off_ticks=0 off_rounds=
on_reqs=0 on_ticks=0 on_rounds=
if [ "$warmup" -gt 0 ]; then
    say "warm-up ${warmup}s each (fills the journal of 'on')"
    wrk_ -t"$threads" -c"$conns" -d"${warmup}s" "http://127.0.0.1:$off_port$path" >/dev/null
    wrk_ -t"$threads" -c"$conns" -d"${warmup}s" "http://127.0.0.1:$on_port$path" >/dev/null
fi
round=1
while [ "$round" -le "$rounds" ]; do
    measure off "$off_pid" "$off_port"
    off_reqs=$((off_reqs + r_reqs)) off_ticks=$((off_ticks + r_ticks))
    off_rounds="$off_rounds $r_rps($r_p99)"
    measure on "$on_pid" "$on_port"
    on_reqs=$((on_reqs + r_reqs)) on_ticks=$((on_ticks + r_ticks))
    on_rounds="$on_rounds $r_rps($r_p99)"
    round=$((round + 1))
done
off_rss=$(rss_kb "$off_pid")
on_rss=$(rss_kb "$on_pid")

# ---------------------------------------------------------------- checks after
on_count=$(curl -sS --max-time 5 "http://127.0.0.1:$on_admin/app/v1/requests/count") ||
    die "on: cannot read the journal count"
off_count=$(curl -sS --max-time 5 "http://127.0.0.1:$off_admin/app/v1/requests/count") ||
    die "off: cannot read the journal count"
case $on_count in
    *"\"count\":$journal_size,"*'"enabled":true'*) ;;
    *) die "on: the journal does not hold $journal_size entries: $on_count" ;;
esac
case $off_count in
    *'"count":0,"dropped":0,"enabled":false'*) ;;
    *) die "off: the journal is not disabled: $off_count" ;;
esac
on_dropped=$(printf '%s\n' "$on_count" | sed -n 's/.*"dropped":\([0-9]*\).*/\1/p')

# ---------------------------------------------------------------- report
total_s=$((seconds * rounds))
off_rps=$(awk -v n="$off_reqs" -v s="$total_s" 'BEGIN { printf "%.2f", n / s }')
on_rps=$(awk -v n="$on_reqs" -v s="$total_s" 'BEGIN { printf "%.2f", n / s }')
off_cpu=$(awk -v t="$off_ticks" -v hz="$clk_tck" -v n="$off_reqs" 'BEGIN { printf "%.2f", t / hz * 1000000 / n }')
on_cpu=$(awk -v t="$on_ticks" -v hz="$clk_tck" -v n="$on_reqs" 'BEGIN { printf "%.2f", t / hz * 1000000 / n }')
rps_ratio=$(ratio "$on_rps" "$off_rps")
cpu_ratio=$(ratio "$on_cpu" "$off_cpu")
verdict=$(verdict_le "$target" "$rps_ratio")

h1_version=$("$bin" --version 2>&1 | head -n 1) || h1_version=unknown
rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null) || rev=unknown
mkdir -p "$results_dir"
{
    printf 'h1mock journal benchmark  %s\n' "$(date -u '+%Y-%m-%dT%H:%M:%SZ')"
    printf 'h1mock: %s (%s, rev %s)\n' "$bin" "$h1_version" "$rev"
    printf 'host:   %s CPUs (%s); servers on CPU %s, wrk on CPU %s\n' "$ncpu" \
        "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)" "$server_cpu" "$client_cpu"
    printf 'load:   wrk -t%s -c%s keep-alive GET %s, warm-up %ss, %s rounds of %ss per server (off, on alternating)\n' \
        "$threads" "$conns" "$path" "$warmup" "$rounds" "$seconds"
    echo
    printf '%-12s %12s %10s %12s %10s  %s\n' journal 'requests/s' 'CPU us/req' requests 'RSS kB' 'each round: requests/s(p99 us)'
    printf '%-12s %12s %10s %12s %10s %s\n' off "$off_rps" "$off_cpu" "$off_reqs" "$off_rss" "$off_rounds"
    printf '%-12s %12s %10s %12s %10s %s\n' "on ($journal_size)" "$on_rps" "$on_cpu" "$on_reqs" "$on_rss" "$on_rounds"
    echo
    printf 'on/off  requests/s  %s  (target >= %s)  %s\n' "$rps_ratio" "$target" "$verdict"
    printf 'on/off  CPU us/req  %s\n' "$cpu_ratio"
    printf 'journal of "on" after the runs: %s entries held, %s dropped by wrapping\n' "$journal_size" "$on_dropped"
} | tee "$results"
say "written to ${results#"$root"/}"

if [ "$verdict" != ok ] && [ "$strict" = 1 ]; then
    say "the journal costs more than the target allows (BENCH_STRICT=1)"
    exit 1
fi
exit 0
