# lib.sh - helpers shared by the benchmark scripts (sourced, not run).
# They read the callers' globals at call time: bin, server_cpu, client_cpu
# (set below from the environment; a script may change them), clk_tck, wrk_pid, moddir, ngx_dir, and the optional h1_wrap / ngx_wrap (a
# command put before the server's, e.g. valgrind), ngx_conns (nginx's
# worker_connections, default 1024) and launch_wait (seconds a server may
# take to answer, default 10); and set some for them: ncpu, clk_tck
# and client_cpu (check_cpus), h1_pid h1_port h1_admin (launch_h1mock),
# ngx_pid ngx_port (launch_nginx), r_* figures (wrk_figures).
# shellcheck shell=bash

# Sourcing also sets what every script starts with: here (tests/bench),
# root (the checkout, now the working directory), and the settings they all
# take from the environment.
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root" || exit 1
# shellcheck disable=SC2034  # read by the scripts that source this file
{
    bin=${H1MOCK_BIN:-build/h1mock}
    server_cpu=${BENCH_SERVER_CPU:-0}
    client_cpu=${BENCH_CLIENT_CPU:-1}
    strict=${BENCH_STRICT:-0}
    results_dir=$here/results
}

die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

say() { printf 'bench: %s\n' "$*" >&2; }

need_bin() { # dies unless $bin is an executable h1mock
    [ -x "$bin" ] || die "$bin not found or not executable; build it first (meson setup build && meson compile -C build) or set H1MOCK_BIN"
}

need_tools() { # TOOL...: dies naming every one that is not on PATH
    local tool missing=
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
    done
    [ -z "$missing" ] || die "missing:$missing; run deps/install.sh --bench"
}

# check_cpus WHO: sets ncpu and clk_tck. On a one-CPU machine there is no
# second core for the client: it goes on the server's, with a warning that
# WHO ("servers and wrk") share it.
# shellcheck disable=SC2034,SC2154  # sets ncpu client_cpu clk_tck for, and reads server_cpu of, the caller
check_cpus() {
    ncpu=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
    if [ "$ncpu" -lt 2 ]; then
        say "warning: only $ncpu CPU; $1 share it, figures are only comparable with each other"
        client_cpu=$server_cpu
    fi
    clk_tck=$(getconf CLK_TCK)
}

# launch_h1mock NAME LOG PROVISIONS [ARG...]: starts $bin in the background,
# pinned to $server_cpu, on 127.0.0.1 with ports 0, the provisions directory
# PROVISIONS and ARGs, stderr to LOG; sets h1_pid at once (for the caller's
# cleanup), then h1_port and h1_admin from the "traffic on" and "admin on"
# lines of LOG. Dies, calling the server NAME, if it exits or has not logged
# both within 10 s. Answering requests is the caller's to check.
# shellcheck disable=SC2034,SC2154  # sets h1_* for, and reads bin server_cpu of, the caller
launch_h1mock() {
    local name=$1 log=$2 provisions=$3 i=0
    shift 3
    # shellcheck disable=SC2086  # h1_wrap is a command line, split on purpose
    taskset -c "$server_cpu" ${h1_wrap:-} "$bin" --address 127.0.0.1 --port 0 --admin-port 0 \
        --provisions "$provisions" "$@" 2>"$log" >/dev/null &
    h1_pid=$!
    h1_port=
    h1_admin=
    while [ "$i" -lt $((${launch_wait:-10} * 10)) ]; do
        kill -0 "$h1_pid" 2>/dev/null || die "$name exited at start"
        h1_port=$(sed -n 's/.*traffic on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$log" | head -n 1)
        h1_admin=$(sed -n 's/.*admin on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$log" | head -n 1)
        [ -n "$h1_port" ] && [ -n "$h1_admin" ] && break
        sleep 0.1
        i=$((i + 1))
    done
    [ -n "$h1_port" ] || die "$name did not log 'traffic on 127.0.0.1:PORT' within ${launch_wait:-10} s"
    [ -n "$h1_admin" ] || die "$name did not log 'admin on 127.0.0.1:PORT' within ${launch_wait:-10} s"
}

# end_run STATUS LOG...: the end of a script's EXIT trap: after a failure,
# the last lines of each LOG that is not empty; then $tmp goes, and the
# script exits with STATUS
# shellcheck disable=SC2154  # removes the caller's tmp
end_run() {
    local status=$1 log
    shift
    if [ "$status" -ne 0 ]; then
        for log in "$@"; do
            if [ -s "$log" ]; then
                say "last lines of $(basename "$(dirname "$log")")/$(basename "$log"):"
                tail -n 20 "$log" >&2
            fi
        done
    fi
    rm -rf "$tmp"
    exit "$status"
}

on_exit() { # FUNCTION: runs once at the exit, also after Ctrl-C, SIGTERM or
    # SIGHUP, with the exit status in $status
    # shellcheck disable=SC2064  # the function's name is meant to be fixed now
    trap "status=\$?; trap - EXIT INT TERM HUP; $1" EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP
}

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

# shellcheck disable=SC2154  # reads moddir ngx_dir of the caller
nginx_conf_head() { # the start of an nginx.conf: one worker in the foreground, the Lua
                    # module, files under $ngx_dir; ends inside "http {" for the caller
    local files
    files=$(ulimit -Hn)
    [ "$files" != unlimited ] || files=65536
    cat <<EOF
load_module $moddir/ndk_http_module.so;
load_module $moddir/ngx_http_lua_module.so;

daemon off;
master_process off;
worker_processes 1;
pid $ngx_dir/nginx.pid;
error_log $ngx_dir/error.log warn;
worker_rlimit_nofile $files;

events {
    worker_connections ${ngx_conns:-1024};
}

http {
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 75s;
    client_body_temp_path $ngx_dir/temp/client_body;
    proxy_temp_path $ngx_dir/temp/proxy;
    fastcgi_temp_path $ngx_dir/temp/fastcgi;
    uwsgi_temp_path $ngx_dir/temp/uwsgi;
    scgi_temp_path $ngx_dir/temp/scgi;
EOF
}

# shellcheck disable=SC2034,SC2154  # sets ngx_pid ngx_port for, and reads ngx_dir server_cpu of, the caller
launch_nginx() { # PROBE_PATH: starts nginx pinned to $server_cpu on a free port with the
                 # config the caller's write_nginx_conf PORT writes, waits until PROBE_PATH
                 # answers; sets ngx_pid ngx_port
    ngx_port=
    attempt=0
    while [ "$attempt" -lt 10 ]; do
        attempt=$((attempt + 1))
        port=$((20000 + RANDOM % 40000))
        if command -v ss >/dev/null 2>&1 && ss -Hltn "sport = :$port" | grep -q .; then
            continue
        fi
        write_nginx_conf "$port"
        : >"$ngx_dir/error.log"
        : >"$ngx_dir/stderr.log"
        # shellcheck disable=SC2086  # ngx_wrap is a command line, split on purpose
        taskset -c "$server_cpu" ${ngx_wrap:-} nginx -p "$ngx_dir/" -c "$ngx_dir/nginx.conf" \
            -e "$ngx_dir/error.log" >/dev/null 2>"$ngx_dir/stderr.log" &
        ngx_pid=$!
        if wait_http "http://127.0.0.1:$port$1" "$ngx_pid" "${launch_wait:-10}"; then
            ngx_port=$port
            return 0
        fi
        if grep -qs 'Address already in use' "$ngx_dir/error.log" "$ngx_dir/stderr.log"; then
            stop "$ngx_pid"
            ngx_pid=
            continue
        fi
        die "nginx did not start: $(tail -n 5 "$ngx_dir/error.log" "$ngx_dir/stderr.log" 2>/dev/null)"
    done
    die "no free port found for nginx"
}

# shellcheck disable=SC2154  # writes under the caller's tmp
expect_body() { # URL NAME BODY: 200, application/json, exactly BODY + newline
    out=$tmp/check.body
    meta=$(curl -sS --max-time 5 -o "$out" -w '%{http_code} %{content_type}' "$1") ||
        die "$2: curl $1 failed"
    code=${meta%% *}
    ctype=${meta#* }
    [ "$code" = 200 ] || die "$2: GET $1 answered $code, expected 200 (body: $(head -c 200 "$out"))"
    case $ctype in
        application/json*) ;;
        *) die "$2: GET $1 content type '$ctype', expected application/json" ;;
    esac
    printf '%s\n' "$3" | cmp -s - "$out" ||
        die "$2: GET $1 body differs: got '$(head -c 200 "$out")', expected '$3'"
}

sched_ns() { # PID: "on-CPU waiting" ns summed over its threads (/proc/PID/task/*/schedstat):
               # time run, and time runnable but kept off the CPU by other processes
    cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ r += $1; w += $2 } END { printf "%.0f %.0f\n", r, w }'
}

nginx_rest_lua() { # the init_by_lua_block of the nginx REST stand-in: rest.post(resource)
                   # and rest.get(resource, id) over the shared dict "items" (the caller
                   # declares it), as h1mock's rest.mount does for POST and GET by id
    cat <<'EOF'
    init_by_lua_block {
        -- the equivalent of h1mock's rest.mount("/api") for POST and GET by id
        local ok, cjson = pcall(require, "cjson")
        local json = ok and cjson or nil
        local dict = ngx.shared.items
        local random, format = math.random, string.format
        math.randomseed(os.time())

        local function uuid() -- random, version-4 shaped
            return format("%08x-%04x-4%03x-%04x-%04x%08x",
                random(0, 0xffffffff), random(0, 0xffff), random(0, 0xfff),
                random(0x8000, 0xbfff), random(0, 0xffff), random(0, 0xffffffff))
        end

        local function reply(status, text)
            ngx.status = status
            ngx.header.content_type = "application/json"
            ngx.print(text, "\n")
        end

        local bad = '{"message":"Unable to process request."}'

        rest = { json = json and "cjson" or "concatenation" }

        function rest.post(resource)
            if ngx.req.get_method() ~= "POST" then
                return reply(405, '{"message":"Method not allowed."}')
            end
            ngx.req.read_body()
            local body = ngx.req.get_body_data()
            if not body then return reply(400, bad) end
            local id = uuid()
            local text
            if json then
                local decoded, t = pcall(json.decode, body)
                if not decoded or type(t) ~= "table" or t[1] ~= nil then
                    return reply(400, bad)
                end
                t._id = id
                text = json.encode(t)
            else
                local inner = body:match("^%s*{(.*)$")
                if not inner then return reply(400, bad) end
                if inner:match("^%s*}") then
                    text = '{"_id":"' .. id .. '"}'
                else
                    text = '{"_id":"' .. id .. '",' .. inner
                end
            end
            -- safe_add: a full dict is an error (507), never a silent eviction
            local added, err = dict:safe_add(resource .. "/" .. id, text)
            if not added then
                return reply(507, '{"message":"' .. tostring(err) .. '"}')
            end
            reply(200, text)
        end

        function rest.get(resource, id)
            if ngx.req.get_method() ~= "GET" then
                return reply(405, '{"message":"Method not allowed."}')
            end
            local text = dict:get(resource .. "/" .. id)
            if text then
                return reply(200, text)
            end
            reply(404, '{"message":"Resource ' .. id .. ' does not exist."}')
        end
    }
EOF
}
