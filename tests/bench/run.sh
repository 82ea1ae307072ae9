#!/usr/bin/env bash
# tests/bench/run.sh - h1mock against nginx (one process), same machine, same run.
#
# Targets, one after the other, all serving the same bytes
#   {"resultCode":0,"resultData":"answering a get"}\n   (application/json):
#   h1mock        provisions/foo-bar.lua copied as initial.lua, GET /app/v1/foo/bar
#   nginx-lua     content_by_lua_block              (the scripted reference)
#   nginx-static  return 200 '...'                  (the ceiling)
# Servers pinned to one core, wrk to another; 50 keep-alive connections.
# Never part of the test suite. See tests/bench/README.md.
#
# Environment:
#   H1MOCK_BIN          binary to measure            (default build/h1mock)
#   BENCH_SECONDS       measured run per target, s   (default 10)
#   BENCH_WARMUP        warm-up per target, s        (default 2)
#   BENCH_CONNECTIONS   wrk connections              (default 50)
#   BENCH_THREADS       wrk threads                  (default 1)
#   BENCH_SERVER_CPU    core for the servers         (default 0)
#   BENCH_CLIENT_CPU    core for wrk                 (default 1)
#   BENCH_STRICT        1: exit 1 when a target is missed (h1mock/nginx-lua:
#                       requests/s >= 1, CPU us/req <= 1, p99 <= 1; h1mock
#                       idle RSS < 10 MB)
#   NGINX_MODULES_DIR   where ndk_http_module.so and ngx_http_lua_module.so are
#                       (default /usr/lib/nginx/modules)
set -eu
# shellcheck source=tests/bench/lib.sh
. "$(dirname "$0")/lib.sh"

seconds=${BENCH_SECONDS:-10}
warmup=${BENCH_WARMUP:-2}
conns=${BENCH_CONNECTIONS:-50}
threads=${BENCH_THREADS:-1}
moddir=${NGINX_MODULES_DIR:-/usr/lib/nginx/modules}
results=$results_dir/latest.txt

path=/app/v1/foo/bar
body='{"resultCode":0,"resultData":"answering a get"}'

# ---------------------------------------------------------------- checks
case $seconds in ''|*[!0-9]*|0) die "BENCH_SECONDS must be a positive integer (got '$seconds')";; esac
case $warmup in ''|*[!0-9]*) die "BENCH_WARMUP must be an integer (got '$warmup')";; esac

need_bin
[ -f provisions/foo-bar.lua ] || die "provisions/foo-bar.lua is missing"
need_tools wrk nginx taskset curl awk
for mod in ndk_http_module.so ngx_http_lua_module.so; do
    [ -f "$moddir/$mod" ] || die "$moddir/$mod not found (libnginx-mod-http-lua); run deps/install.sh --bench or set NGINX_MODULES_DIR"
done
[ -r /proc/self/stat ] || die "/proc is needed to measure CPU time and RSS"

check_cpus "servers and wrk"

# ---------------------------------------------------------------- cleanup
tmp=$(mktemp -d "${TMPDIR:-/tmp}/h1mock-bench.XXXXXX")
h1_pid=
ngx_pid=
wrk_pid=

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
    stop "$wrk_pid"
    stop "$h1_pid"
    stop "$ngx_pid"
    end_run "$status" "$tmp/h1mock.log" "$tmp/nginx/error.log" "$tmp/nginx/stderr.log"
}
on_exit cleanup

# ---------------------------------------------------------------- /proc helpers

# ---------------------------------------------------------------- verification
# ---------------------------------------------------------------- h1mock
mkdir -p "$tmp/provisions"
cp provisions/foo-bar.lua "$tmp/provisions/initial.lua"
launch_h1mock h1mock "$tmp/h1mock.log" "$tmp/provisions"
h1_url=http://127.0.0.1:$h1_port$path
wait_http "$h1_url" "$h1_pid" 10 || die "h1mock does not answer on $h1_url"
expect_body "$h1_url" h1mock "$body"
h1_rss_idle=$(rss_kb "$h1_pid")
say "h1mock pid $h1_pid, traffic $h1_port, admin $h1_admin, idle RSS ${h1_rss_idle} kB"

# ---------------------------------------------------------------- nginx
ngx_dir=$tmp/nginx
mkdir -p "$ngx_dir/logs" "$ngx_dir/temp"

write_nginx_conf() { # PORT
    {
        nginx_conf_head
        cat <<EOF

    server {
        listen 127.0.0.1:$1;

        location = $path {
            content_by_lua_block {
                ngx.header.content_type = "application/json"
                ngx.print('$body\n')
            }
        }

        location = /static {
            default_type application/json;
            return 200 '$body\n';
        }
    }
}
EOF
    } >"$ngx_dir/nginx.conf"
}

launch_nginx /static
expect_body "http://127.0.0.1:$ngx_port$path" nginx-lua "$body"
expect_body "http://127.0.0.1:$ngx_port/static" nginx-static "$body"
ngx_rss_idle=$(rss_kb "$ngx_pid")
say "nginx pid $ngx_pid, port $ngx_port, idle RSS ${ngx_rss_idle} kB"

# ---------------------------------------------------------------- load

# run NAME PID URL: sets r_rps r_reqs r_p50 r_p99 r_cpu (us/request)
# r_core (% of one core used by the server during the run) r_note
run() {
    name=$1 pid=$2 url=$3
    if [ "$warmup" -gt 0 ]; then
        say "$name: warm-up ${warmup}s"
        wrk_ -t"$threads" -c"$conns" -d"${warmup}s" "$url" >/dev/null
    fi
    say "$name: measuring ${seconds}s"
    t0=$(cpu_ticks "$pid")
    wrk_ -t"$threads" -c"$conns" -d"${seconds}s" --latency "$url" >"$tmp/wrk.$name"
    t1=$(cpu_ticks "$pid")
    kill -0 "$pid" 2>/dev/null || die "$name: server died during the run"
    out=$tmp/wrk.$name
    wrk_figures "$name" "$out" "$t0" "$t1" "$seconds"
    r_note=
    bad=$(awk '/^  Non-2xx or 3xx responses:/ { print $NF }' "$out")
    [ -z "$bad" ] || r_note="$r_note non-2xx=$bad"
    errs=$(awk '/Socket errors:/ { sub(/.*Socket errors: /, ""); print }' "$out")
    [ -z "$errs" ] || r_note="$r_note socket-errors($errs)"
}

run h1mock "$h1_pid" "$h1_url"
h1_rps=$r_rps h1_reqs=$r_reqs h1_p50=$r_p50 h1_p99=$r_p99 h1_cpu=$r_cpu h1_core=$r_core h1_note=$r_note
h1_rss_load=$(rss_kb "$h1_pid")

run nginx-lua "$ngx_pid" "http://127.0.0.1:$ngx_port$path"
nl_rps=$r_rps nl_reqs=$r_reqs nl_p50=$r_p50 nl_p99=$r_p99 nl_cpu=$r_cpu nl_core=$r_core nl_note=$r_note

run nginx-static "$ngx_pid" "http://127.0.0.1:$ngx_port/static"
ns_rps=$r_rps ns_reqs=$r_reqs ns_p50=$r_p50 ns_p99=$r_p99 ns_cpu=$r_cpu ns_core=$r_core ns_note=$r_note
ngx_rss_load=$(rss_kb "$ngx_pid")

# ---------------------------------------------------------------- report

rss_limit_kb=10240
v_rps=$(verdict_le "$nl_rps" "$h1_rps")
v_cpu=$(verdict_le "$h1_cpu" "$nl_cpu")
v_p99=$(verdict_le "$h1_p99" "$nl_p99")
v_rss=$(verdict_le "$h1_rss_idle" "$rss_limit_kb")
missed=0
case "$v_rps$v_cpu$v_p99$v_rss" in *MISSED*) missed=1 ;; esac

h1_version=$("$bin" --version 2>&1 | head -n 1) || h1_version=unknown
rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null) || rev=unknown
mkdir -p "$results_dir"
{
    printf 'h1mock benchmark  %s\n' "$(date -u '+%Y-%m-%dT%H:%M:%SZ')"
    printf 'h1mock: %s (%s, rev %s)\n' "$bin" "$h1_version" "$rev"
    printf 'nginx:  %s, wrk: %s\n' "$(nginx -v 2>&1 | sed 's/^nginx version: //')" \
        "$(wrk --version 2>&1 | awk 'NR == 1 { print $2 }')"
    printf 'host:   %s CPUs (%s); servers on CPU %s, wrk on CPU %s\n' "$ncpu" \
        "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)" "$server_cpu" "$client_cpu"
    printf 'load:   wrk -t%s -c%s keep-alive, warm-up %ss, measured %ss, GET of %s bytes\n' \
        "$threads" "$conns" "$warmup" "$seconds" "$((${#body} + 1))"
    echo
    printf '%-13s %12s %10s %10s %10s %7s %12s %s\n' target 'requests/s' 'p50 us' 'p99 us' 'CPU us/req' 'core %' requests notes
    printf '%-13s %12s %10s %10s %10s %7s %12s %s\n' h1mock "$h1_rps" "$h1_p50" "$h1_p99" "$h1_cpu" "$h1_core" "$h1_reqs" "$h1_note"
    printf '%-13s %12s %10s %10s %10s %7s %12s %s\n' nginx-lua "$nl_rps" "$nl_p50" "$nl_p99" "$nl_cpu" "$nl_core" "$nl_reqs" "$nl_note"
    printf '%-13s %12s %10s %10s %10s %7s %12s %s\n' nginx-static "$ns_rps" "$ns_p50" "$ns_p99" "$ns_cpu" "$ns_core" "$ns_reqs" "$ns_note"
    echo
    printf 'RSS kB        %12s %12s\n' idle 'after load'
    printf '%-13s %12s %12s\n' h1mock "$h1_rss_idle" "$h1_rss_load"
    printf '%-13s %12s %12s\n' nginx "$ngx_rss_idle" "$ngx_rss_load"
    echo
    printf 'ratios                               value  target\n'
    printf 'h1mock/nginx-lua     requests/s     %6s  >= 1     %s\n' "$(ratio "$h1_rps" "$nl_rps")" "$v_rps"
    printf 'h1mock/nginx-lua     CPU us/req     %6s  <= 1     %s\n' "$(ratio "$h1_cpu" "$nl_cpu")" "$v_cpu"
    printf 'h1mock/nginx-lua     p99            %6s  <= 1     %s\n' "$(ratio "$h1_p99" "$nl_p99")" "$v_p99"
    printf 'h1mock/nginx-static  requests/s     %6s  (ceiling)\n' "$(ratio "$h1_rps" "$ns_rps")"
    printf 'h1mock idle RSS      %s kB  < %s kB  %s\n' "$h1_rss_idle" "$rss_limit_kb" "$v_rss"
    if awk -v a="$h1_core" -v b="$nl_core" -v c="$ns_core" 'BEGIN { exit !(a < 80 && b < 80 && c < 80) }'; then
        echo
        echo "warning: no server got 80% of its core (core %): something else ran on CPU $server_cpu;"
        echo "         requests/s and latencies of this run are not comparable, CPU us/req still is"
    fi
} | tee "$results"
say "written to ${results#"$root"/}"

if [ "$missed" -ne 0 ] && [ "$strict" = 1 ]; then
    say "a target was missed (BENCH_STRICT=1)"
    exit 1
fi
exit 0
