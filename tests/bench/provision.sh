#!/usr/bin/env bash
# tests/bench/provision.sh - provision load time, and throughput while swapping.
#
# Part 1, load time: provisions of 10, 100 and 1,000 generated rules (groups
#   of five per resource: static and <int:id> / <name> paths, GET and POST,
#   one small view function per rule returning a table) are POSTed to the
#   admin API, alternating two names so that every POST is a real swap.
#   Per size: median and max of the server-side time to validate and
#   activate (the "provision 'NAME' loaded: N rules in X.X ms" log line;
#   closing the replaced provision runs on a pool thread and is not in it)
#   and of the POST round trip seen by curl (time_total).
# Part 2, throughput while swapping: a fresh h1mock serving
#   provisions/foo-bar.lua (GET /app/v1/foo/bar), wrk as in run.sh; once
#   without swaps, once while a background loop POSTs foo-bar.lua under two
#   alternating names 10 times a second.
# Server pinned to one core, wrk and curl to another.
# Never part of the test suite. See tests/bench/README.md.
#
# Environment:
#   H1MOCK_BIN             binary to measure                  (default build/h1mock)
#   BENCH_RULE_COUNTS      provision sizes of part 1          (default "10 100 1000")
#   BENCH_LOADS            measured POSTs per size            (default 20)
#   BENCH_SECONDS          measured wrk run, s                (default 10)
#   BENCH_WARMUP           wrk warm-up before each run, s     (default 2)
#   BENCH_SWAP_RATE        swaps per second in part 2         (default 10)
#   BENCH_CONNECTIONS      wrk connections                    (default 50)
#   BENCH_THREADS          wrk threads                        (default 1)
#   BENCH_SERVER_CPU       core for h1mock                    (default 0)
#   BENCH_CLIENT_CPU       core for wrk and curl              (default 1)
#   BENCH_STRICT           1: exit 1 when a target is missed
#   TMPDIR                 where the provisions directory is created (default /tmp);
#                          its file system matters: each POST fsyncs the stored file
set -eu
# shellcheck source=tests/bench/lib.sh
. "$(dirname "$0")/lib.sh"
export LC_ALL=C


rule_counts=${BENCH_RULE_COUNTS:-10 100 1000}
loads=${BENCH_LOADS:-20}
seconds=${BENCH_SECONDS:-10}
warmup=${BENCH_WARMUP:-2}
swap_rate=${BENCH_SWAP_RATE:-10}
conns=${BENCH_CONNECTIONS:-50}
threads=${BENCH_THREADS:-1}
results=$results_dir/provision-latest.txt

path=/app/v1/foo/bar
body='{"resultCode":0,"resultData":"answering a get"}'
load_target_ms=5        # 1,000 rules validated and activated
swap_target_ratio=0.95  # requests/s while swapping / without swaps

# ---------------------------------------------------------------- checks
positive() { # NAME VALUE
    case $2 in ''|*[!0-9]*|0) die "$1 must be a positive integer (got '$2')";; esac
}
positive BENCH_SECONDS "$seconds"
positive BENCH_LOADS "$loads"
positive BENCH_SWAP_RATE "$swap_rate"
case $warmup in ''|*[!0-9]*) die "BENCH_WARMUP must be an integer (got '$warmup')";; esac
[ -n "$rule_counts" ] || die "BENCH_RULE_COUNTS is empty"
for n in $rule_counts; do
    positive "BENCH_RULE_COUNTS (each)" "$n"
done
[ "$swap_rate" -le 1000 ] || die "BENCH_SWAP_RATE above 1000 makes no sense"

need_bin
[ -f provisions/foo-bar.lua ] || die "provisions/foo-bar.lua is missing"
need_tools wrk taskset curl awk sort
[ -r /proc/self/stat ] || die "/proc is needed to measure CPU time"
[ -n "${EPOCHREALTIME:-}" ] || die "bash 5 or later is needed (EPOCHREALTIME)"

check_cpus "h1mock and its clients"

# ---------------------------------------------------------------- cleanup
tmp=$(mktemp -d "${TMPDIR:-/tmp}/h1mock-bench.XXXXXX")
h1_pid=
h1_log=
wrk_pid=
swap_pid=

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
    stop "$swap_pid"
    stop "$wrk_pid"
    stop "$h1_pid"
    end_run "$status" ${h1_log:+"$h1_log"}
}
on_exit cleanup

# ---------------------------------------------------------------- helpers

stats() { # FILE DECIMALS: "median max" of the numbers in FILE, one a line
    sort -g "$1" | awk -v d="$2" '{ v[NR] = $1 } END {
        if (NR == 0) { print "n/a n/a"; exit }
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.*f %.*f\n", d, m, d, v[NR]
    }'
}

# ---------------------------------------------------------------- h1mock
start_h1mock() { # TAG: fresh provisions dir with foo-bar as initial; sets h1_pid h1_port h1_admin h1_log
    dir=$tmp/$1
    mkdir -p "$dir/provisions"
    cp provisions/foo-bar.lua "$dir/provisions/initial.lua"
    h1_log=$dir/h1mock.log
    launch_h1mock "h1mock ($1)" "$h1_log" "$dir/provisions"
    wait_http "http://127.0.0.1:$h1_port$path" "$h1_pid" 10 ||
        die "h1mock does not answer on http://127.0.0.1:$h1_port$path"
    expect_body "http://127.0.0.1:$h1_port$path" h1mock "$body"
    say "h1mock ($1) pid $h1_pid, traffic $h1_port, admin $h1_admin"
}

stop_h1mock() {
    stop "$h1_pid"
    h1_pid=
}

post() { # NAME FILE: POST FILE as provision NAME, expect 201; sets p_ms (curl time_total, ms)
    out=$tmp/post.body
    meta=$(taskset -c "$client_cpu" curl -sS --max-time 10 -o "$out" \
        -w '%{http_code} %{time_total}' --data-binary @"$2" \
        "http://127.0.0.1:$h1_admin/app/v1/provision/$1") || die "POST provision $1 failed"
    [ "${meta%% *}" = 201 ] ||
        die "POST provision $1 answered ${meta%% *}, expected 201: $(head -c 300 "$out")"
    p_ms=$(awk -v s="${meta#* }" 'BEGIN { printf "%.3f", s * 1000 }')
}

loaded_lines() { # FROM NAME-PATTERN: "rules ms" of the load log lines after line FROM
    tail -n +"$(($1 + 1))" "$h1_log" |
        sed -n "s/.* INFO provision '$2' loaded: \([0-9][0-9]*\) rules\{0,1\} in \([0-9.][0-9.]*\) ms.*/\1 \2/p"
}

# ---------------------------------------------------------------- part 1: load time
gen_provision() { # N FILE: N rules, five per resource, each with its own view
    awk -v n="$1" 'BEGIN {
        print "-- generated by tests/bench/provision.sh: " n " rules, one view each"
        print "function registerRules()"
        for (i = 0; i < n; i++) {
            b = "/api/v1/svc" int(i / 5); k = i % 5
            if (k == 0)
                printf "  app.add_url_rule(\"%s/items\", \"list_%d\", v%d, {\"GET\"})\n", b, i, i
            else if (k == 1)
                printf "  app.add_url_rule(\"%s/items/<int:id>\", \"item_%d\", v%d, {\"GET\"})\n", b, i, i
            else if (k == 2)
                printf "  app.add_url_rule(\"%s/users/<name>\", \"user_%d\", v%d, {\"GET\"})\n", b, i, i
            else if (k == 3)
                printf "  app.add_url_rule(\"%s/orders\", \"create_%d\", v%d, {\"POST\"})\n", b, i, i
            else
                printf "  app.add_url_rule(\"%s/users/<name>/orders/<int:id>\", \"update_%d\", v%d, {\"POST\"})\n", b, i, i
        }
        print "end"
        for (i = 0; i < n; i++) {
            b = "/api/v1/svc" int(i / 5); k = i % 5
            print ""
            if (k == 0)
                printf "function v%d(req)\n  return {resultCode = 0, resultData = \"list %d\", page = 1}\nend\n", i, i
            else if (k == 1)
                printf "function v%d(req, id)\n  return {resultCode = 0, rule = %d, id = id}\nend\n", i, i
            else if (k == 2)
                printf "function v%d(req, name)\n  return {resultCode = 0, rule = %d, user = name}\nend\n", i, i
            else if (k == 3)
                printf "function v%d(req)\n  return {resultCode = 0, resultData = \"created %d\"}, 201, {Location = \"%s/orders/1\"}\nend\n", i, i, b
            else
                printf "function v%d(req, name, id)\n  return {resultCode = 0, rule = %d, user = name, order = id}\nend\n", i, i
        }
    }' >"$2"
}

check_rules() { # N: one <int:id> rule of the first and of the last resource answers
    for i in 1 $((($1 - 1) / 5 * 5 + 1)); do
        [ "$i" -lt "$1" ] || continue
        expect_body "http://127.0.0.1:$h1_port/api/v1/svc$((i / 5))/items/42" "provision of $1 rules" \
            "{\"id\":42,\"resultCode\":0,\"rule\":$i}"
    done
}

start_h1mock load
load_rows=
load_noisy=
prev_n=
prev_med=
scaling=
for n in $rule_counts; do
    src=$tmp/rules-$n.lua
    gen_provision "$n" "$src"
    bytes=$(wc -c <"$src")
    # one unmeasured POST per name: both files exist, the code paths are warm
    from=$(wc -l <"$h1_log")
    post "load$n-a" "$src"
    post "load$n-b" "$src"
    got=$(loaded_lines "$from" "load$n-[ab]" | awk '{ print $1 }' | sort -u)
    [ "$got" = "$n" ] || die "provision of $n rules: the log says '${got:-nothing}' rules"
    check_rules "$n"
    say "load: $n rules ($bytes bytes), $loads POSTs"
    : >"$tmp/rtt.$n"
    from=$(wc -l <"$h1_log")
    read -r run0 wait0 <<EOF
$(sched_ns "$h1_pid")
EOF
    k=0
    while [ "$k" -lt "$loads" ]; do
        if [ $((k % 2)) -eq 0 ]; then name=load$n-a; else name=load$n-b; fi
        post "$name" "$src"
        printf '%s\n' "$p_ms" >>"$tmp/rtt.$n"
        k=$((k + 1))
    done
    read -r run1 wait1 <<EOF
$(sched_ns "$h1_pid")
EOF
    cpu_post=$(awk -v a="$run0" -v b="$run1" -v n="$loads" 'BEGIN { printf "%.2f", (b - a) / 1e6 / n }')
    wait_post=$(awk -v a="$wait0" -v b="$wait1" -v n="$loads" 'BEGIN { printf "%.2f", (b - a) / 1e6 / n }')
    loaded_lines "$from" "load$n-[ab]" | awk '{ print $2 }' >"$tmp/srv.$n"
    got=$(wc -l <"$tmp/srv.$n")
    [ "$got" -eq "$loads" ] || die "$n rules: $loads POSTs but $got load lines in the log"
    read -r s_med s_max <<EOF
$(stats "$tmp/srv.$n" 1)
EOF
    read -r c_med c_max <<EOF
$(stats "$tmp/rtt.$n" 2)
EOF
    per_rule=$(awk -v m="$s_med" -v n="$n" 'BEGIN { printf "%.2f", m * 1000 / n }')
    row=$(printf '%-6s %7s %8s %8s %8s %8s %9s %9s %9s' "$n" "$bytes" "$s_med" "$s_max" "$c_med" "$c_max" \
        "$cpu_post" "$wait_post" "$per_rule")
    load_rows="$load_rows$row
"
    if [ -n "$prev_n" ]; then
        line=$(awk -v a="$prev_med" -v b="$s_med" -v na="$prev_n" -v nb="$n" 'BEGIN {
            f = (a + 0 > 0) ? sprintf("x%.1f", b / a) : "n/a"
            printf "%s -> %s rules (x%g): median load time %s, %+.1f ms: %.2f us per added rule",
                na, nb, nb / na, f, b - a, (nb != na) ? (b - a) * 1000 / (nb - na) : 0 }')
        scaling="$scaling$line
"
    fi
    prev_n=$n
    prev_med=$s_med
    if awk -v w="$wait_post" -v c="$cpu_post" 'BEGIN { exit !(w > 0.1 * c) }'; then
        load_noisy="$load_noisy $n"
    fi
    last_n=$n last_med=$s_med last_max=$s_max
done
stop_h1mock

# ---------------------------------------------------------------- part 2: swapping under load

# run NAME URL: sets r_rps r_reqs r_p50 r_p99 r_cpu (us/request) r_core r_wait
# (% of the run h1mock was runnable but kept off its core)
# r_bad (non-2xx) r_errs (socket errors) r_t0 r_t1 (measured window, us)
run() {
    name=$1 url=$2
    if [ "$warmup" -gt 0 ]; then
        say "$name: warm-up ${warmup}s"
        wrk_ -t"$threads" -c"$conns" -d"${warmup}s" "$url" >/dev/null
    fi
    say "$name: measuring ${seconds}s"
    t0=$(cpu_ticks "$h1_pid")
    read -r _ q0 <<EOF
$(sched_ns "$h1_pid")
EOF
    r_t0=$(now_us)
    wrk_ -t"$threads" -c"$conns" -d"${seconds}s" --latency "$url" >"$tmp/wrk.$name"
    r_t1=$(now_us)
    read -r _ q1 <<EOF
$(sched_ns "$h1_pid")
EOF
    t1=$(cpu_ticks "$h1_pid")
    kill -0 "$h1_pid" 2>/dev/null || die "$name: h1mock died during the run"
    out=$tmp/wrk.$name
    wrk_figures "$name" "$out" "$t0" "$t1" "$seconds"
    r_wait=$(awk -v a="$q0" -v b="$q1" -v t0="$r_t0" -v t1="$r_t1" \
        'BEGIN { printf "%.1f", (b - a) / 1000 / (t1 - t0) * 100 }')
    r_bad=$(awk '/^  Non-2xx or 3xx responses:/ { print $NF }' "$out")
    r_bad=${r_bad:-0}
    r_errs=$(awk '/Socket errors:/ { sub(/.*Socket errors: /, ""); print }' "$out")
    r_errs=${r_errs:-none}
}

swap_src=$tmp/swap.lua
swap_log=$tmp/swaps.log    # one line per POST: http-code time_total-s

# One curl process POSTs the provision swap_rate times a second (--rate) on
# one keep-alive connection, alternating swap-a and swap-b: a process per
# POST would cost the client core far more than the swaps cost the server.
start_swaps() { # SECONDS: enough POSTs for that long; stopped by stop_swaps
    cfg=$tmp/swaps.curl
    total=$(($1 * swap_rate))
    awk -v n="$total" -v base="http://127.0.0.1:$h1_admin/app/v1/provision/swap-" 'BEGIN {
        for (i = 0; i < n; i++) printf "url = \"%s%s\"\n", base, (i % 2) ? "b" : "a" }' >"$cfg"
    : >"$swap_log"
    taskset -c "$client_cpu" curl -s --max-time 5 --rate "$swap_rate/s" -K "$cfg" \
        --data-binary @"$swap_src" -w '%{stderr}%{http_code} %{time_total}\n' \
        >/dev/null 2>"$swap_log" &
    swap_pid=$!
}

stop_swaps() {
    stop "$swap_pid"
    swap_pid=
}

iso_ms() { # microseconds since the epoch -> the log's 2026-11-23T11:42:59.689Z
    printf '%s.%03dZ\n' "$(date -u -d "@$(($1 / 1000000))" '+%Y-%m-%dT%H:%M:%S')" $(($1 / 1000 % 1000))
}

# the swapped-in provision serves the same GET answer: foo-bar itself
cp provisions/foo-bar.lua "$swap_src"

start_h1mock traffic
url=http://127.0.0.1:$h1_port$path
post swap-a "$swap_src"
expect_body "$url" "swap-a" "$body"
post swap-b "$swap_src"
expect_body "$url" "swap-b" "$body"

run no-swaps "$url"
n_rps=$r_rps n_reqs=$r_reqs n_p50=$r_p50 n_p99=$r_p99 n_cpu=$r_cpu n_core=$r_core n_wait=$r_wait n_bad=$r_bad n_errs=$r_errs

from=$(wc -l <"$h1_log")
start_swaps $((warmup + seconds + 10))
run swaps "$url"
stop_swaps
w_rps=$r_rps w_reqs=$r_reqs w_p50=$r_p50 w_p99=$r_p99 w_cpu=$r_cpu w_core=$r_core w_wait=$r_wait w_bad=$r_bad w_errs=$r_errs
expect_body "$url" "after the swaps" "$body"

# The k-th load line of the log is the k-th answered POST: the log's time
# stamps tell which swaps happened in the measured window.
swaps_all=$(wc -l <"$swap_log")
swaps_failed=$(awk '$1 != 201' "$swap_log" | wc -l)
w_from=$(iso_ms "$r_t0")
w_to=$(iso_ms "$r_t1")
tail -n +"$((from + 1))" "$h1_log" |
    sed -n "s/^\([^ ]*\) INFO provision 'swap-[ab]' loaded: [0-9]* rules\{0,1\} in \([0-9.]*\) ms.*/\1 \2/p" \
    >"$tmp/swap.loads"
swaps_logged=$(wc -l <"$tmp/swap.loads")
awk -v a="$w_from" -v b="$w_to" '$1 >= a && $1 < b { print NR, $2 }' "$tmp/swap.loads" >"$tmp/swap.window"
swaps=$(wc -l <"$tmp/swap.window")
swaps_expected=$((seconds * swap_rate))
awk '{ print $2 }' "$tmp/swap.window" >"$tmp/swap.srv"
awk 'NR == FNR { if ($1 == 201) rtt[++n] = $2; next } { printf "%.3f\n", rtt[$1] * 1000 }' \
    "$swap_log" "$tmp/swap.window" >"$tmp/swap.rtt"
read -r sw_s_med sw_s_max <<EOF
$(stats "$tmp/swap.srv" 1)
EOF
read -r sw_c_med sw_c_max <<EOF
$(stats "$tmp/swap.rtt" 2)
EOF
stop_h1mock

# ---------------------------------------------------------------- report

rps_ratio=$(ratio "$w_rps" "$n_rps")
v_load_med=$(verdict_le "$last_med" "$load_target_ms")
v_load_max=$(verdict_le "$last_max" "$load_target_ms")
v_swap=$(verdict_le "$swap_target_ratio" "$rps_ratio")
v_err=ok
[ "$n_bad" = 0 ] && [ "$w_bad" = 0 ] && [ "$n_errs" = none ] && [ "$w_errs" = none ] &&
    [ "$swaps_failed" -eq 0 ] || v_err=MISSED
v_count=$(verdict_le "$((swaps_expected * 9 / 10))" "$swaps")
missed=0
case "$v_load_med$v_load_max$v_swap$v_err$v_count" in *MISSED*) missed=1 ;; esac

h1_version=$("$bin" --version 2>&1 | head -n 1) || h1_version=unknown
rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null) || rev=unknown
dirty=$(git -C "$root" status --porcelain --untracked-files=no -- src lua meson.build 2>/dev/null | head -n 1) || dirty=
[ -z "$dirty" ] || rev="$rev, modified"
fs=$(stat -f -c %T "$tmp" 2>/dev/null) || fs=unknown
mkdir -p "$results_dir"
{
    printf 'h1mock provision benchmark  %s\n' "$(date -u '+%Y-%m-%dT%H:%M:%SZ')"
    printf 'h1mock: %s (%s, rev %s)\n' "$bin" "$h1_version" "$rev"
    printf 'wrk: %s, curl: %s\n' "$(wrk --version 2>&1 | awk 'NR == 1 { print $2 }')" \
        "$(curl --version 2>&1 | awk 'NR == 1 { print $2 }')"
    printf 'host:   %s CPUs (%s); h1mock on CPU %s, wrk and curl on CPU %s\n' "$ncpu" \
        "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)" "$server_cpu" "$client_cpu"
    printf 'provisions directory on %s (%s): each POST stores the file with fsync\n' "$fs" "${TMPDIR:-/tmp}"
    echo
    printf 'load time: %s POSTs per size after one per name unmeasured, names alternating (every POST a swap)\n' "$loads"
    printf '%-6s %7s %8s %8s %8s %8s %9s %9s %9s\n' '' '' 'server' 'ms' 'POST' 'ms' 'CPU ms' 'wait ms' 'server us'
    printf '%-6s %7s %8s %8s %8s %8s %9s %9s %9s\n' rules bytes median max median max '/POST' '/POST' '/rule'
    printf '%s' "$load_rows"
    printf '%s' "$scaling"
    echo
    printf 'throughput while swapping: GET %s, wrk -t%s -c%s keep-alive, warm-up %ss, measured %ss\n' \
        "$path" "$threads" "$conns" "$warmup" "$seconds"
    printf '%-9s %11s %8s %8s %10s %6s %6s %10s %7s %s\n' run 'requests/s' 'p50 us' 'p99 us' 'CPU us/req' 'core%' 'wait%' requests non-2xx 'socket errors'
    printf '%-9s %11s %8s %8s %10s %6s %6s %10s %7s %s\n' no-swaps "$n_rps" "$n_p50" "$n_p99" "$n_cpu" "$n_core" "$n_wait" "$n_reqs" "$n_bad" "$n_errs"
    printf '%-9s %11s %8s %8s %10s %6s %6s %10s %7s %s\n' swaps "$w_rps" "$w_p50" "$w_p99" "$w_cpu" "$w_core" "$w_wait" "$w_reqs" "$w_bad" "$w_errs"
    printf 'swaps: %s in the measured %ss (%s/s asked: %s), %s in all, %s failed; the log shows %s loads\n' \
        "$swaps" "$seconds" "$swap_rate" "$swaps_expected" "$swaps_all" "$swaps_failed" "$swaps_logged"
    printf 'swap under load: server load ms median %s max %s, POST ms median %s max %s\n' \
        "$sw_s_med" "$sw_s_max" "$sw_c_med" "$sw_c_max"
    echo
    printf 'targets                                  value  target\n'
    printf '%-6s rules server load, median      %8s  <= %s ms  %s\n' "$last_n" "$last_med" "$load_target_ms" "$v_load_med"
    printf '%-6s rules server load, max         %8s  <= %s ms  %s\n' "$last_n" "$last_max" "$load_target_ms" "$v_load_max"
    printf 'swaps/no-swaps requests/s             %8s  >= %s  %s\n' "$rps_ratio" "$swap_target_ratio" "$v_swap"
    printf 'swaps/no-swaps CPU us/req             %8s  (information)\n' "$(ratio "$w_cpu" "$n_cpu")"
    printf 'swaps/no-swaps p99                    %8s  (information)\n' "$(ratio "$w_p99" "$n_p99")"
    printf 'non-2xx, socket errors, failed swaps  %8s  none  %s\n' \
        "$((n_bad + w_bad + swaps_failed))" "$v_err"
    printf 'swaps done in the measured run        %8s  >= %s  %s\n' "$swaps" "$((swaps_expected * 9 / 10))" "$v_count"
    if awk -v a="$n_wait" -v b="$w_wait" 'BEGIN { exit !(a >= 5 || b >= 5) }'; then
        echo
        echo "warning: h1mock waited for CPU $server_cpu for 5% of a run or more (wait%): other processes"
        echo "         ran there; requests/s and latencies of the two runs are not comparable, CPU us/req"
        echo "         still is"
    fi
    if [ -n "$load_noisy" ]; then
        echo
        echo "warning: during the loads of${load_noisy} rules h1mock waited for CPU $server_cpu more than a tenth"
        echo "         of its CPU time (wait ms): other processes ran there, the load times are inflated"
    fi
    if awk -v a="$n_core" -v b="$w_core" 'BEGIN { exit !(a < 80 || b < 80) }'; then
        echo
        echo "note: h1mock used less than 80% of its core (core%): it was not the bottleneck (wrk or the"
        echo "      host was); requests/s then measure the client side more than h1mock"
    fi
} | tee "$results"
say "written to ${results#"$root"/}"

if [ "$missed" -ne 0 ] && [ "$strict" = 1 ]; then
    say "a target was missed (BENCH_STRICT=1)"
    exit 1
fi
exit 0
