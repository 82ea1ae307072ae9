# lib.sh - helpers shared by the benchmark scripts (sourced, not run).
# They read the callers' globals at call time: client_cpu, clk_tck, wrk_pid,
# and set r_* figures for them (wrk_figures).
# shellcheck shell=bash

die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

say() { printf 'bench: %s\n' "$*" >&2; }

stop() { # stop PID: SIGTERM, up to 5 s, then SIGKILL; only the PID we started
    pid=$1
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    i=0
    while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 50 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "pid $pid still alive after 5 s, SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

descendants() { # PID and all its descendants
    printf '%s\n' "$1"
    kids=$(cat /proc/"$1"/task/*/children 2>/dev/null) || kids=
    for c in $kids; do
        descendants "$c"
    done
}

cpu_ticks() { # utime+stime (all threads) of PID and its descendants, in ticks
    total=0
    for p in $(descendants "$1"); do
        # fields after "(comm) ": state=1 ... utime=12 stime=13
        t=$(sed 's/^.*) //' /proc/"$p"/stat 2>/dev/null | awk '{ print $12 + $13 }') || t=0
        total=$((total + ${t:-0}))
    done
    printf '%s\n' "$total"
}

rss_kb() { # VmRSS of PID and its descendants, kB
    total=0
    for p in $(descendants "$1"); do
        r=$(awk '/^VmRSS:/ { print $2 }' /proc/"$p"/status 2>/dev/null) || r=0
        total=$((total + ${r:-0}))
    done
    printf '%s\n' "$total"
}

wait_http() { # URL PID SECONDS: until URL answers, PID dies, or timeout
    i=0
    while [ "$i" -lt $(($3 * 10)) ]; do
        kill -0 "$2" 2>/dev/null || return 1
        curl -s --max-time 1 -o /dev/null "$1" && return 0
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

to_us() { # wrk latency ("312.00us", "1.20ms", "2.01s") -> microseconds
    printf '%s\n' "$1" | awk '{
        v = $1; n = v + 0
        if (v ~ /us$/) print n
        else if (v ~ /ms$/) print n * 1000
        else if (v ~ /m$/) print n * 60000000
        else if (v ~ /s$/) print n * 1000000
        else print n
    }'
}

# shellcheck disable=SC2154  # client_cpu is set by the sourcing script
wrk_() { # wrk pinned to the client CPU, in the background so that a signal is
         # handled at once (bash defers traps until a foreground child ends)
    taskset -c "$client_cpu" wrk "$@" &
    wrk_pid=$!
    wait "$wrk_pid" || die "wrk $* failed"
    wrk_pid=
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }

now_us() { # wall clock, microseconds
    printf '%s\n' "${EPOCHREALTIME//[!0-9]/}"
}

verdict_le() { # A B: "ok" when A <= B
    awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 <= b + 0) ? "ok" : "MISSED" }'
}

# NAME WRK-OUTPUT T0 T1 SECONDS: sets r_reqs r_rps r_p50 r_p99 (us) from wrk's
# report, and r_cpu (server CPU us per request) and r_core (% of one core)
# from the server's CPU ticks before and after the run.
# shellcheck disable=SC2034,SC2154  # sets figures for, and reads clk_tck of, the caller
wrk_figures() {
    r_reqs=$(awk '/ requests in / { print $1; exit }' "$2")
    r_rps=$(awk '/^Requests\/sec:/ { print $2; exit }' "$2")
    r_p50=$(to_us "$(awk '$1 == "50%" { print $2; exit }' "$2")")
    r_p99=$(to_us "$(awk '$1 == "99%" { print $2; exit }' "$2")")
    if [ -z "$r_reqs" ] || [ "$r_reqs" -eq 0 ]; then
        die "$1: wrk made no request: $(cat "$2")"
    fi
    r_cpu=$(awk -v a="$3" -v b="$4" -v hz="$clk_tck" -v n="$r_reqs" \
        'BEGIN { printf "%.2f", (b - a) / hz * 1000000 / n }')
    r_core=$(awk -v a="$3" -v b="$4" -v hz="$clk_tck" -v s="$5" \
        'BEGIN { printf "%.0f", (b - a) / hz / s * 100 }')
}
