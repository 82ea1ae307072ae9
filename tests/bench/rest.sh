#!/usr/bin/env bash
# tests/bench/rest.sh - REST creates and get-by-id, h1mock against nginx
# with a Lua shared dict, same machine, same run. Target: h1mock creates at
# least 40,000 documents a second on one core.
#
# Scenarios, each against both servers:
#   creates     POST {"name":"bench","n":1} (application/json) to /api/items:
#               a document with an _id is stored and echoed
#   get-by-id   GET /api/items/<id>, the id drawn at random from BENCH_SEED
#               documents created through the API beforehand
#   h1mock      the built-in default (empty provisions directory): rest.mount("/api")
#   nginx       one process, lua_shared_dict, content_by_lua_block handlers
#               doing the same (cjson decode, add _id, encode, store; or get)
# Servers pinned to one core, wrk to another; 50 keep-alive connections.
# Never part of the test suite. See tests/bench/README.md.
#
# Environment:
#   H1MOCK_BIN          binary to measure            (default build/h1mock)
#   BENCH_SECONDS       measured run per scenario, s (default 10)
#   BENCH_WARMUP        warm-up per scenario, s      (default 2)
#   BENCH_CONNECTIONS   wrk connections              (default 50)
#   BENCH_THREADS       wrk threads                  (default 1)
#   BENCH_SERVER_CPU    core for the servers         (default 0)
#   BENCH_CLIENT_CPU    core for wrk and curl        (default 1)
#   BENCH_SEED          documents created before get-by-id (default 10000)
#   BENCH_NGINX_DICT    size of nginx's lua_shared_dict      (default 256m)
#   BENCH_STRICT        1: exit 1 when the creates target is missed
#   NGINX_MODULES_DIR   where ndk_http_module.so and ngx_http_lua_module.so are
#                       (default /usr/lib/nginx/modules)
set -eu
# shellcheck source=tests/bench/lib.sh
. "$(dirname "$0")/lib.sh"

seconds=${BENCH_SECONDS:-10}
warmup=${BENCH_WARMUP:-2}
conns=${BENCH_CONNECTIONS:-50}
threads=${BENCH_THREADS:-1}
seed=${BENCH_SEED:-10000}
dict_size=${BENCH_NGINX_DICT:-256m}
moddir=${NGINX_MODULES_DIR:-/usr/lib/nginx/modules}
results=$results_dir/rest-latest.txt
post_lua=$here/wrk-post.lua
get_lua=$here/wrk-get.lua

# the body wrk-post.lua sends (keep the two in step)
doc='{"name":"bench","n":1}'
target_rps=40000

# ---------------------------------------------------------------- checks
case $seconds in ''|*[!0-9]*|0) die "BENCH_SECONDS must be a positive integer (got '$seconds')";; esac
case $warmup in ''|*[!0-9]*) die "BENCH_WARMUP must be an integer (got '$warmup')";; esac
case $seed in ''|*[!0-9]*|0) die "BENCH_SEED must be a positive integer (got '$seed')";; esac
case $dict_size in *[!0-9kKmMgG]*|'') die "BENCH_NGINX_DICT must be a size like 256m (got '$dict_size')";; esac

need_bin
for f in "$post_lua" "$get_lua"; do
    [ -f "$f" ] || die "$f is missing"
done
need_tools wrk nginx taskset curl awk
for mod in ndk_http_module.so ngx_http_lua_module.so; do
    [ -f "$moddir/$mod" ] || die "$moddir/$mod not found (libnginx-mod-http-lua); run deps/install.sh --bench or set NGINX_MODULES_DIR"
done
[ -r /proc/self/stat ] || die "/proc is needed to measure CPU time and RSS"
# JSON from the servers is read with jq, else with the system's Python
if command -v jq >/dev/null 2>&1; then
    json_tool=jq
elif [ -x /usr/bin/python3 ]; then
    json_tool=python3
else
    die "jq or /usr/bin/python3 is needed to read the servers' JSON"
fi

check_cpus "servers and wrk"

# ---------------------------------------------------------------- cleanup
tmp=$(mktemp -d "${TMPDIR:-/tmp}/h1mock-rest.XXXXXX")
h1_pid=
ngx_pid=
wrk_pid=
curl_pid=

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
    stop "$wrk_pid"
    stop "$curl_pid"
    stop "$h1_pid"
    stop "$ngx_pid"
    end_run "$status" "$tmp/h1mock.log" "$tmp/nginx/error.log" "$tmp/nginx/stderr.log"
}
on_exit cleanup

# ---------------------------------------------------------------- /proc helpers

core_jiffies() { # CPU: "busy total" jiffies of that core from /proc/stat
    awk -v c="cpu$1" '$1 == c {
        busy = $2 + $3 + $4 + $7 + $8          # user nice system irq softirq
        print busy, busy + $5 + $6 + $9 }' /proc/stat   # + idle iowait steal
}

# ---------------------------------------------------------------- JSON
json_ids() { # FILE: the _id of each JSON value in FILE (objects, or arrays of
             # objects; one after the other), one a line
    if [ "$json_tool" = jq ]; then
        jq -r 'if type == "array" then .[]._id else ._id end' "$1"
    else
        /usr/bin/python3 - "$1" <<'EOF'
import json, sys
text = open(sys.argv[1], encoding="utf-8").read()
dec, pos = json.JSONDecoder(), 0
while True:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    if pos >= len(text):
        break
    value, pos = dec.raw_decode(text, pos)
    for item in value if isinstance(value, list) else [value]:
        print(item["_id"])
EOF
    fi
}

json_is_created() { # FILE: the created document: an object with a string
                    # _id, name "bench" and n 1, nothing else
    if [ "$json_tool" = jq ]; then
        jq -e 'type == "object" and (._id | type) == "string" and (._id | length) > 0
               and .name == "bench" and .n == 1 and length == 3' "$1" >/dev/null 2>&1
    else
        /usr/bin/python3 - "$1" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
ok = (isinstance(d, dict) and isinstance(d.get("_id"), str) and d["_id"] != ""
      and d.get("name") == "bench" and d.get("n") == 1 and len(d) == 3)
sys.exit(0 if ok else 1)
EOF
    fi
}

json_same() { # FILE FILE: the same JSON value
    if [ "$json_tool" = jq ]; then
        [ "$(jq -cS . "$1" 2>/dev/null)" = "$(jq -cS . "$2" 2>/dev/null)" ]
    else
        /usr/bin/python3 -c 'import json, sys
a, b = (json.load(open(f, encoding="utf-8")) for f in sys.argv[1:3])
sys.exit(0 if a == b else 1)' "$1" "$2" 2>/dev/null
    fi
}

# ---------------------------------------------------------------- verification
request() { # METHOD URL [BODY]: sets q_code q_ctype, body in $tmp/answer
    if [ $# -ge 3 ]; then
        meta=$(curl -sS --max-time 5 -X "$1" -H 'Content-Type: application/json' \
            --data-binary "$3" -o "$tmp/answer" -w '%{http_code} %{content_type}' "$2") ||
            die "curl -X $1 $2 failed"
    else
        meta=$(curl -sS --max-time 5 -X "$1" -o "$tmp/answer" -w '%{http_code} %{content_type}' "$2") ||
            die "curl -X $1 $2 failed"
    fi
    q_code=${meta%% *}
    q_ctype=${meta#* }
}

expect_json() { # NAME WHAT CODE: the last answer had status CODE and is JSON
    [ "$q_code" = "$3" ] ||
        die "$1: $2 answered $q_code, expected $3 (body: $(head -c 200 "$tmp/answer"))"
    case $q_ctype in
        application/json*) ;;
        *) die "$1: $2 content type '$q_ctype', expected application/json" ;;
    esac
}

# verify NAME BASE: POST creates and echoes, GET by id gives it back, an
# unknown id is a 404; on a collection of its own (/api/check), so that
# /api/items holds the seeded documents only
verify() {
    name=$1 base=$2
    request POST "$base/api/check" "$doc"
    expect_json "$name" "POST /api/check" 200
    json_is_created "$tmp/answer" ||
        die "$name: POST /api/check answered '$(head -c 200 "$tmp/answer")', expected $doc with an _id added"
    cp "$tmp/answer" "$tmp/created"
    id=$(json_ids "$tmp/created")
    request GET "$base/api/check/$id"
    expect_json "$name" "GET /api/check/$id" 200
    json_same "$tmp/created" "$tmp/answer" ||
        die "$name: GET /api/check/$id answered '$(head -c 200 "$tmp/answer")', expected '$(cat "$tmp/created")'"
    request GET "$base/api/check/no-such-id"
    expect_json "$name" "GET /api/check/no-such-id" 404
}

# ---------------------------------------------------------------- seeding
# seed NAME BASE IDS: BENCH_SEED POSTs of the body to /api/items by one curl
# process on one keep-alive connection (pinned to the client core); every
# answer must be a 200; the ids go to IDS, one a line. Sets s_ms (duration).
seed() {
    name=$1 base=$2 ids=$3
    awk -v n="$seed" -v u="$base/api/items" 'BEGIN { for (i = 0; i < n; i++) printf "url = \"%s\"\n", u }' >"$tmp/seed.curl"
    s0=$(now_us)
    taskset -c "$client_cpu" curl -s --max-time 300 -K "$tmp/seed.curl" \
        -H 'Content-Type: application/json' --data-binary "$doc" \
        -w '%{stderr}%{http_code}\n' >"$tmp/seed.out" 2>"$tmp/seed.codes" &
    curl_pid=$!
    wait "$curl_pid" || die "$name: seeding with curl failed ($(sort "$tmp/seed.codes" | uniq -c | tr '\n' ' '))"
    curl_pid=
    s1=$(now_us)
    s_ms=$(((s1 - s0) / 1000))
    ok=$(grep -c '^200$' "$tmp/seed.codes") || ok=0
    [ "$ok" -eq "$seed" ] ||
        die "$name: seeding: $ok of $seed POSTs answered 200 ($(sort "$tmp/seed.codes" | uniq -c | tr '\n' ' '))"
    json_ids "$tmp/seed.out" >"$ids" || die "$name: the seeding answers are not JSON documents with an _id"
    n=$(sort -u "$ids" | grep -c .) || n=0
    [ "$n" -eq "$seed" ] || die "$name: seeding gave $n distinct ids, expected $seed"
}

# ---------------------------------------------------------------- h1mock
mkdir -p "$tmp/provisions"   # empty: no 'initial', the built-in default serves /api
launch_h1mock h1mock "$tmp/h1mock.log" "$tmp/provisions"
h1_base=http://127.0.0.1:$h1_port
wait_http "$h1_base/health" "$h1_pid" 10 || die "h1mock does not answer on $h1_base/health"
h1_rss_idle=$(rss_kb "$h1_pid")
verify h1mock "$h1_base"
say "h1mock pid $h1_pid, traffic $h1_port, admin $h1_admin, idle RSS ${h1_rss_idle} kB"

# ---------------------------------------------------------------- nginx
ngx_dir=$tmp/nginx
mkdir -p "$ngx_dir/logs" "$ngx_dir/temp"

write_nginx_conf() { # PORT
    {
        nginx_conf_head
        cat <<EOF

    lua_shared_dict items $dict_size;

EOF
        nginx_rest_lua
        cat <<EOF

    server {
        listen 127.0.0.1:$1;

        location ~ ^/api/([^/]+)$ {
            content_by_lua_block { rest.post(ngx.var[1]) }
        }

        location ~ ^/api/([^/]+)/([^/]+)$ {
            content_by_lua_block { rest.get(ngx.var[1], ngx.var[2]) }
        }

        location = /mode {
            default_type text/plain;
            content_by_lua_block { ngx.say(rest.json) }
        }
    }
}
EOF
    } >"$ngx_dir/nginx.conf"
}

launch_nginx /mode
ngx_base=http://127.0.0.1:$ngx_port
ngx_json=$(curl -s --max-time 5 "$ngx_base/mode") || die "nginx: GET /mode failed"
ngx_rss_idle=$(rss_kb "$ngx_pid")
verify nginx "$ngx_base"
say "nginx pid $ngx_pid, port $ngx_port, JSON by $ngx_json, idle RSS ${ngx_rss_idle} kB"

# ---------------------------------------------------------------- load

# run NAME PID URL SCRIPT [SCRIPT ARGS...]: sets r_rps r_reqs r_p50 r_p99
# r_cpu (us/request) r_core (% of one core the server used) r_wait (% of the
# run the server was runnable but kept off its core) r_client (% busy of the
# client core) r_warm (requests of the warm-up) r_note
run() {
    name=$1 pid=$2 url=$3 script=$4
    shift 4
    r_warm=0
    if [ "$warmup" -gt 0 ]; then
        say "$name: warm-up ${warmup}s"
        wrk_ -t"$threads" -c"$conns" -d"${warmup}s" -s "$script" "$url" -- "$@" >"$tmp/wrk.$name.warm"
        r_warm=$(awk '/ requests in / { print $1; exit }' "$tmp/wrk.$name.warm")
    fi
    say "$name: measuring ${seconds}s"
    t0=$(cpu_ticks "$pid")
    q0=$(sched_ns "$pid")
    q0=${q0#* }
    read -r b0 a0 <<EOF
$(core_jiffies "$client_cpu")
EOF
    w0=$(now_us)
    wrk_ -t"$threads" -c"$conns" -d"${seconds}s" --latency -s "$script" "$url" -- "$@" >"$tmp/wrk.$name"
    w1=$(now_us)
    read -r b1 a1 <<EOF
$(core_jiffies "$client_cpu")
EOF
    q1=$(sched_ns "$pid")
    q1=${q1#* }
    t1=$(cpu_ticks "$pid")
    kill -0 "$pid" 2>/dev/null || die "$name: server died during the run"
    out=$tmp/wrk.$name
    wrk_figures "$name" "$out" "$t0" "$t1" "$seconds"
    r_wait=$(awk -v a="$q0" -v b="$q1" -v t0="$w0" -v t1="$w1" \
        'BEGIN { printf "%.1f", (b - a) / 1000 / (t1 - t0) * 100 }')
    r_client=$(awk -v b0="$b0" -v b1="$b1" -v a0="$a0" -v a1="$a1" \
        'BEGIN { if (a1 > a0) printf "%.0f", (b1 - b0) / (a1 - a0) * 100; else print "n/a" }')
    r_note=
    bad=$(awk '/^  Non-2xx or 3xx responses:/ { print $NF }' "$out")
    [ -z "$bad" ] || r_note="$r_note non-2xx=$bad"
    errs=$(awk '/Socket errors:/ { sub(/.*Socket errors: /, ""); print }' "$out")
    [ -z "$errs" ] || r_note="$r_note socket-errors($errs)"
}

# get-by-id first, on exactly the seeded documents; then creates
say "h1mock: seeding $seed documents"
seed h1mock "$h1_base" "$tmp/ids.h1mock"
h1_seed_ms=$s_ms
# the list of the collection has exactly the seeded documents
curl -sS --max-time 30 -o "$tmp/list" "$h1_base/api/items" || die "h1mock: GET /api/items failed"
json_ids "$tmp/list" | sort >"$tmp/list.ids" || die "h1mock: GET /api/items is not a JSON array of documents"
sort "$tmp/ids.h1mock" | cmp -s - "$tmp/list.ids" ||
    die "h1mock: GET /api/items does not list exactly the $seed seeded documents ($(grep -c . "$tmp/list.ids") listed)"
h1_rss_seed=$(rss_kb "$h1_pid")

run h1mock-get "$h1_pid" "$h1_base/api/items" "$get_lua" "$tmp/ids.h1mock"
hg_rps=$r_rps hg_reqs=$r_reqs hg_p50=$r_p50 hg_p99=$r_p99 hg_cpu=$r_cpu hg_core=$r_core hg_wait=$r_wait hg_client=$r_client hg_note=$r_note
run h1mock-create "$h1_pid" "$h1_base/api/items" "$post_lua"
hc_rps=$r_rps hc_reqs=$r_reqs hc_p50=$r_p50 hc_p99=$r_p99 hc_cpu=$r_cpu hc_core=$r_core hc_wait=$r_wait hc_client=$r_client hc_note=$r_note
h1_docs=$((1 + seed + r_warm + r_reqs))
h1_rss_load=$(rss_kb "$h1_pid")
request GET "$h1_base/api/items/$(head -n 1 "$tmp/ids.h1mock")"
expect_json h1mock "GET of a seeded id after the runs" 200

say "nginx: seeding $seed documents"
seed nginx "$ngx_base" "$tmp/ids.nginx"
ngx_seed_ms=$s_ms
ngx_rss_seed=$(rss_kb "$ngx_pid")

run nginx-get "$ngx_pid" "$ngx_base/api/items" "$get_lua" "$tmp/ids.nginx"
ng_rps=$r_rps ng_reqs=$r_reqs ng_p50=$r_p50 ng_p99=$r_p99 ng_cpu=$r_cpu ng_core=$r_core ng_wait=$r_wait ng_client=$r_client ng_note=$r_note
run nginx-create "$ngx_pid" "$ngx_base/api/items" "$post_lua"
nc_rps=$r_rps nc_reqs=$r_reqs nc_p50=$r_p50 nc_p99=$r_p99 nc_cpu=$r_cpu nc_core=$r_core nc_wait=$r_wait nc_client=$r_client nc_note=$r_note
ngx_docs=$((1 + seed + r_warm + r_reqs))
ngx_rss_load=$(rss_kb "$ngx_pid")
request GET "$ngx_base/api/items/$(head -n 1 "$tmp/ids.nginx")"
expect_json nginx "GET of a seeded id after the runs" 200

# ---------------------------------------------------------------- report
per_doc() { # RSS-after RSS-idle DOCS: bytes of RSS per stored document
    awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { if (n + 0 == 0) print "n/a"; else printf "%.0f", (a - b) * 1024 / n }'
}
capacity() { # CPU-us/req: requests/s one core would give at 100%
    awk -v c="$1" 'BEGIN { if (c + 0 == 0) print "n/a"; else printf "%.0f", 1000000 / c }'
}

v_target=$(awk -v a="$hc_rps" -v t="$target_rps" 'BEGIN { print (a + 0 >= t) ? "ok" : "MISSED" }')
hc_capacity=$(capacity "$hc_cpu")
v_capacity=$(awk -v a="$hc_capacity" -v t="$target_rps" 'BEGIN { print (a + 0 >= t) ? "ok" : "MISSED" }')

h1_version=$("$bin" --version 2>&1 | head -n 1) || h1_version=unknown
rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null) || rev=unknown
row() { printf '%-14s %11s %8s %8s %10s %6s %6s %6s %10s %s\n' "$@"; }
mkdir -p "$results_dir"
{
    printf 'h1mock REST benchmark  %s\n' "$(date -u '+%Y-%m-%dT%H:%M:%SZ')"
    printf 'h1mock: %s (%s, rev %s), built-in default provision\n' "$bin" "$h1_version" "$rev"
    printf 'nginx:  %s + lua_shared_dict %s, JSON by %s; wrk: %s\n' \
        "$(nginx -v 2>&1 | sed 's/^nginx version: //')" "$dict_size" "$ngx_json" \
        "$(wrk --version 2>&1 | awk 'NR == 1 { print $2 }')"
    printf 'host:   %s CPUs (%s); servers on CPU %s, wrk on CPU %s\n' "$ncpu" \
        "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)" "$server_cpu" "$client_cpu"
    printf 'load:   wrk -t%s -c%s keep-alive, warm-up %ss, measured %ss per scenario\n' \
        "$threads" "$conns" "$warmup" "$seconds"
    printf 'create: POST /api/items %s (application/json); get: GET /api/items/<id>,\n' "$doc"
    printf '        random among %s documents seeded by curl (h1mock %s ms, nginx %s ms)\n' \
        "$seed" "$h1_seed_ms" "$ngx_seed_ms"
    echo
    row scenario 'requests/s' 'p50 us' 'p99 us' 'CPU us/req' 'core%' 'wait%' 'wrk%' requests notes
    row h1mock-create "$hc_rps" "$hc_p50" "$hc_p99" "$hc_cpu" "$hc_core" "$hc_wait" "$hc_client" "$hc_reqs" "$hc_note"
    row nginx-create "$nc_rps" "$nc_p50" "$nc_p99" "$nc_cpu" "$nc_core" "$nc_wait" "$nc_client" "$nc_reqs" "$nc_note"
    row h1mock-get "$hg_rps" "$hg_p50" "$hg_p99" "$hg_cpu" "$hg_core" "$hg_wait" "$hg_client" "$hg_reqs" "$hg_note"
    row nginx-get "$ng_rps" "$ng_p50" "$ng_p99" "$ng_cpu" "$ng_core" "$ng_wait" "$ng_client" "$ng_reqs" "$ng_note"
    echo
    printf 'RSS kB        %10s %12s %12s %10s %12s\n' idle 'after seed' 'after runs' 'documents' 'B/doc (RSS)'
    printf '%-13s %10s %12s %12s %10s %12s\n' h1mock "$h1_rss_idle" "$h1_rss_seed" "$h1_rss_load" "$h1_docs" \
        "$(per_doc "$h1_rss_load" "$h1_rss_idle" "$h1_docs")"
    printf '%-13s %10s %12s %12s %10s %12s\n' nginx "$ngx_rss_idle" "$ngx_rss_seed" "$ngx_rss_load" "$ngx_docs" \
        "$(per_doc "$ngx_rss_load" "$ngx_rss_idle" "$ngx_docs")"
    echo
    printf 'ratios h1mock/nginx   requests/s  CPU us/req   p99\n'
    printf 'create                %10s  %10s  %5s\n' "$(ratio "$hc_rps" "$nc_rps")" "$(ratio "$hc_cpu" "$nc_cpu")" "$(ratio "$hc_p99" "$nc_p99")"
    printf 'get-by-id             %10s  %10s  %5s\n' "$(ratio "$hg_rps" "$ng_rps")" "$(ratio "$hg_cpu" "$ng_cpu")" "$(ratio "$hg_p99" "$ng_p99")"
    echo
    printf 'target: h1mock creates on one core >= %s/s\n' "$target_rps"
    printf '  measured requests/s                  %10s  %s\n' "$hc_rps" "$v_target"
    printf '  one core at 100%% (1e6 / CPU us/req)  %10s  %s\n' "$hc_capacity" "$v_capacity"
    printf '  during it: h1mock core%% %s, wait%% %s; wrk%% (client core busy) %s\n' "$hc_core" "$hc_wait" "$hc_client"
    if awk -v c="$hc_core" -v w="$hc_client" 'BEGIN { exit !(c < 90 && w + 0 >= 90) }'; then
        printf '  client-bound: wrk kept CPU %s %s%% busy while h1mock used %s%% of CPU %s;\n' \
            "$client_cpu" "$hc_client" "$hc_core" "$server_cpu"
        printf '  the measured figure is what wrk could send, the one-core figure is h1mock'\''s\n'
    fi
    noisy=
    for w in "$hc_wait:h1mock-create" "$nc_wait:nginx-create" "$hg_wait:h1mock-get" "$ng_wait:nginx-get"; do
        if awk -v w="${w%%:*}" 'BEGIN { exit !(w >= 5) }'; then noisy="$noisy ${w#*:}"; fi
    done
    if [ -n "$noisy" ]; then
        echo
        echo "warning: the server waited for CPU $server_cpu for 5% of the run or more (wait%):$noisy;"
        echo "         other processes ran there: requests/s and latencies of those rows are not"
        echo "         comparable, CPU us/req still is"
    fi
} | tee "$results"
say "written to ${results#"$root"/}"

if [ "$v_target" = MISSED ] && [ "$strict" = 1 ]; then
    say "h1mock creates below $target_rps/s (BENCH_STRICT=1)"
    exit 1
fi
exit 0
