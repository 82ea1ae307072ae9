#!/usr/bin/env bash
# tests/bench/matrix.sh - the benchmark matrix: one table, h1mock against
# nginx + Lua in the same run, each row a ratio h1mock/nginx.
#
# Rows (BENCH_ROWS picks some, in this order):
#   get          GET /app/v1/foo/bar: h1mock's foo-bar view against
#                content_by_lua_block printing the same JSON
#   pipeline     the same GET, 16 requests per write (wrk-pipeline.lua)
#   upload       POST /upload with a 1 MiB body; both answer its length
#   journal      h1mock with the journal on (default) against off
#                (--journal-size 0): h1mock against itself
#   rest         REST read-by-id and create at BENCH_LEVELS documents:
#                h1mock's rest.mount against the nginx shared-dict stand-in
#                of rest.sh; the collection is emptied and filled to each
#                level (at least 1,000 documents, the read set) first
#   idle         RSS per idle keep-alive connection: BENCH_IDLE connections,
#                each after one GET, from several 127.0.0.x addresses
#   held         h1mock only: the most idle connections the open-files limit
#                lets one client hold, and the latency of GETs on another
#                connection meanwhile, against without them
#   instructions user-space instructions per GET (callgrind): a fixed count
#                of keep-alive GETs after a warm-up and a zeroing of the
#                counters, on servers started under valgrind for this row
# Servers pinned to one core, clients (wrk, conns.py) to the other. Never
# part of the test suite. See tests/bench/README.md.
#
# Environment:
#   H1MOCK_BIN          binary to measure                   (default build/h1mock)
#   BENCH_SECONDS       measured wrk run, s                 (default 4)
#   BENCH_ROUNDS        wrk runs per server and row, alternating (default 2)
#   BENCH_WARMUP        warm-up before each, s              (default 1)
#   BENCH_CONNECTIONS   wrk connections                     (default 50)
#   BENCH_ROWS          rows to run                         (default: all of the above)
#   BENCH_LEVELS        store sizes of the REST rows        (default "0 100000 1000000")
#   BENCH_IDLE          connections of the idle row         (default 10000)
#   BENCH_CG_WARMUP     GETs before the counters are zeroed (default 1000)
#   BENCH_CG_REQUESTS   GETs counted                        (default 5000)
#   BENCH_NGINX_DICT    nginx's lua_shared_dict size        (default 768m)
#   BENCH_BASELINE      a saved table to compare with       (default tests/bench/matrix-baseline.txt)
#   BENCH_SERVER_CPU    core for the servers                (default 0)
#   BENCH_CLIENT_CPU    core for the clients                (default 1)
#   H1MOCK_REV          the revision H1MOCK_BIN was built from, for the report
#                       (default: this checkout's, when H1MOCK_BIN is one of its builds)
#   NGINX_MODULES_DIR   where ndk_http_module.so and ngx_http_lua_module.so are
set -eu
# shellcheck source=tests/bench/lib.sh
. "$(dirname "$0")/lib.sh"

seconds=${BENCH_SECONDS:-4}
rounds=${BENCH_ROUNDS:-2}
warmup=${BENCH_WARMUP:-1}
conns=${BENCH_CONNECTIONS:-50}
all_rows="get pipeline upload journal rest idle held instructions"
rows=${BENCH_ROWS:-$all_rows}
levels=${BENCH_LEVELS:-0 100000 1000000}
idle_n=${BENCH_IDLE:-10000}
cg_warm=${BENCH_CG_WARMUP:-1000}
cg_n=${BENCH_CG_REQUESTS:-5000}
dict_size=${BENCH_NGINX_DICT:-768m}
baseline=${BENCH_BASELINE:-$here/matrix-baseline.txt}
moddir=${NGINX_MODULES_DIR:-/usr/lib/nginx/modules}
threads=1
py=/usr/bin/python3
results=$results_dir/matrix-latest.txt

get_path=/app/v1/foo/bar
get_body='{"resultCode":0,"resultData":"answering a get"}'
upload_bytes=1048576
depth=16
read_set=1000 # documents read by id at the lowest level
fill_chunk=20000

# ---------------------------------------------------------------- checks
posint() { case $2 in '' | *[!0-9]* | 0) die "$1 must be a positive integer (got '$2')" ;; esac }
posint BENCH_SECONDS "$seconds"
posint BENCH_ROUNDS "$rounds"
posint BENCH_IDLE "$idle_n"
posint BENCH_CG_WARMUP "$cg_warm"
posint BENCH_CG_REQUESTS "$cg_n"
case $warmup in '' | *[!0-9]*) die "BENCH_WARMUP must be an integer (got '$warmup')" ;; esac
for l in $levels; do
    case $l in '' | *[!0-9]*) die "BENCH_LEVELS must be document counts (got '$levels')" ;; esac
done
for r in $rows; do
    case " $all_rows " in
        *" $r "*) ;;
        *) die "BENCH_ROWS: no row '$r' (rows: $all_rows)" ;;
    esac
done
want() { case " $rows " in *" $1 "*) return 0 ;; esac; return 1; }

need_bin
for f in wrk-get.lua wrk-post.lua wrk-pipeline.lua wrk-upload.lua conns.py; do
    [ -f "$here/$f" ] || die "$here/$f is missing"
done
need_tools wrk nginx taskset curl awk
if want instructions; then need_tools valgrind callgrind_control; fi
for mod in ndk_http_module.so ngx_http_lua_module.so; do
    [ -f "$moddir/$mod" ] || die "$moddir/$mod not found (libnginx-mod-http-lua); run deps/install.sh --bench or set NGINX_MODULES_DIR"
done
[ -x "$py" ] || die "$py is needed for the connection clients (conns.py)"
[ -r /proc/self/stat ] || die "/proc is needed to measure CPU time and RSS"
nofile=$(ulimit -Hn)
[ "$nofile" != unlimited ] || nofile=65536
if want idle && [ "$idle_n" -gt $((nofile - 200)) ]; then
    die "BENCH_IDLE=$idle_n: the open-files limit ($nofile) allows at most $((nofile - 200))"
fi
check_cpus "servers and clients"

# ---------------------------------------------------------------- cleanup
tmp=$(mktemp -d "${TMPDIR:-/tmp}/h1mock-matrix.XXXXXX")
h1_pid=
off_pid=
ngx_pid=
wrk_pid=
cli_pid=
cg_h1=
cg_ngx=
idle_pid=

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
    exec 3>&- 2>/dev/null || true
    stop "$wrk_pid"
    stop "$cli_pid"
    stop "$h1_pid"
    stop "$off_pid"
    stop "$ngx_pid"
    stop "$cg_h1"
    stop "$cg_ngx"
    stop "$idle_pid"
    end_run "$status" "$tmp"/*.log "$tmp"/nginx*/error.log "$tmp"/nginx*/stderr.log
}
on_exit cleanup

# ---------------------------------------------------------------- servers
mkdir -p "$tmp/provisions"
cat >"$tmp/provisions/initial.lua" <<'EOF'
-- the matrix's provision: foo-bar's GET, an upload that answers the body's
-- length, and the REST API over the store
function registerRules()
  rest.mount("/api")
  app.add_url_rule("/app/v1/foo/bar", "answer_get", answer_get, {"GET"})
  app.add_url_rule("/upload", "upload", upload, {"POST"})
end

function answer_get()
  return {resultCode = 0, resultData = "answering a get"}
end

function upload()
  return {bytes = #request.data}
end
EOF

# Options of the binary being measured that an older one may not have.
h1_opts="--max-body 2M --idle-timeout 600"
if "$bin" --help 2>&1 | grep -q -- --max-connections; then
    h1_opts="$h1_opts --max-connections $((nofile - 128))"
fi

start_h1mock() { # NAME LOG [ARG...]: sets h1_pid h1_port h1_admin
    local name=$1 log=$2
    shift 2
    # shellcheck disable=SC2086  # h1_opts is a list of options
    launch_h1mock "$name" "$log" "$tmp/provisions" $h1_opts "$@"
    wait_http "http://127.0.0.1:$h1_port/health" "$h1_pid" "${launch_wait:-10}" ||
        die "$name does not answer on port $h1_port"
}

write_nginx_conf() { # PORT
    {
        nginx_conf_head
        cat <<EOF

    lua_shared_dict items $dict_size;

EOF
        nginx_rest_lua
        cat <<EOF

    server {
        listen 127.0.0.1:$1 backlog=4096;

        location = $get_path {
            content_by_lua_block {
                ngx.header.content_type = "application/json"
                ngx.print('$get_body\n')
            }
        }

        location = /upload {
            client_max_body_size 2m;
            client_body_buffer_size 2m;
            content_by_lua_block {
                ngx.req.read_body()
                local data = ngx.req.get_body_data() or ""
                ngx.header.content_type = "application/json"
                ngx.print('{"bytes":' .. #data .. '}\n')
            }
        }

        location ~ ^/api/([^/]+)$ {
            content_by_lua_block { rest.post(ngx.var[1]) }
        }

        location ~ ^/api/([^/]+)/([^/]+)$ {
            content_by_lua_block { rest.get(ngx.var[1], ngx.var[2]) }
        }

        # documents b<from> .. b<from + n - 1>, as the h1mock fill stores them
        location = /fill {
            content_by_lua_block {
                local args = ngx.req.get_uri_args()
                local from, n = tonumber(args.from), tonumber(args.n)
                local dict = ngx.shared.items
                for i = from, from + n - 1 do
                    local id = "b" .. i
                    local ok, err = dict:safe_add("items/" .. id,
                        '{"_id":"' .. id .. '","n":1,"name":"bench"}')
                    if not ok then
                        ngx.status = 507
                        return ngx.say(err)
                    end
                end
                ngx.say(n)
            }
        }

        location = /clear {
            content_by_lua_block {
                ngx.shared.items:flush_all()
                ngx.shared.items:flush_expired(0)
                ngx.say("cleared")
            }
        }
    }
}
EOF
    } >"$ngx_dir/nginx.conf"
}

# spare_h1mock NAME LOG [ARG...] and spare_nginx DIR: another server beside
# the main ones, for a row of its own; set s_pid s_port
spare_h1mock() {
    local pid=$h1_pid port=$h1_port admin=$h1_admin
    start_h1mock "$@"
    s_pid=$h1_pid s_port=$h1_port
    h1_pid=$pid h1_port=$port h1_admin=$admin
}

spare_nginx() {
    local pid=$ngx_pid port=$ngx_port dir=$ngx_dir
    start_nginx "$1"
    s_pid=$ngx_pid s_port=$ngx_port
    ngx_pid=$pid ngx_port=$port ngx_dir=$dir
}

start_nginx() { # DIR: sets ngx_pid ngx_port
    ngx_dir=$1
    mkdir -p "$ngx_dir/logs" "$ngx_dir/temp"
    ngx_conns=$((idle_n + 1024))
    launch_nginx "$get_path"
}

# ---------------------------------------------------------------- measuring

# wrk_run NAME PID URL [SCRIPT [ARG...]]: a warm-up (unless do_warm is 0)
# and a measured run; sets r_rps r_cpu r_wait (% of the run the server
# waited for its core) r_note, and the r_* of wrk_figures
wrk_run() {
    local name=$1 pid=$2 url=$3
    shift 3
    local script=()
    if [ $# -gt 0 ]; then
        script=(-s "$1" "$url" --)
        shift
    else
        script=("$url")
    fi
    if [ "$warmup" -gt 0 ] && [ "${do_warm:-1}" = 1 ]; then
        wrk_ -t"$threads" -c"$conns" -d"${warmup}s" "${script[@]}" "$@" >/dev/null
    fi
    say "$name: ${seconds}s"
    local t0 t1 q0 q1 w0 w1
    t0=$(cpu_ticks "$pid")
    q0=$(sched_ns "$pid")
    w0=$(now_us)
    wrk_ -t"$threads" -c"$conns" -d"${seconds}s" --latency "${script[@]}" "$@" >"$tmp/wrk.$name"
    w1=$(now_us)
    q1=$(sched_ns "$pid")
    t1=$(cpu_ticks "$pid")
    kill -0 "$pid" 2>/dev/null || die "$name: the server died during the run"
    wrk_figures "$name" "$tmp/wrk.$name" "$t0" "$t1" "$seconds"
    r_wait=$(awk -v a="${q0#* }" -v b="${q1#* }" -v t0="$w0" -v t1="$w1" \
        'BEGIN { printf "%.1f", (b - a) / 1000 / (t1 - t0) * 100 }')
    r_note=
    local bad errs
    bad=$(awk '/^  Non-2xx or 3xx responses:/ { print $NF }' "$tmp/wrk.$name")
    [ -z "$bad" ] || r_note="$r_note non-2xx=$bad"
    errs=$(awk '/Socket errors:/ { sub(/.*Socket errors: /, ""); print }' "$tmp/wrk.$name")
    [ -z "$errs" ] || r_note="$r_note socket-errors($errs)"
}

# The table: one line per row, kept in $tmp/rows as
# KEY|LABEL|UNIT|H1MOCK|OTHER|RATIO|CPU-H1MOCK|CPU-OTHER|CPU-RATIO|NOTES
add_row() {
    printf '%s|%s|%s|%s|%s|%s|%s|%s|%s|%s\n' "$1" "$2" "$3" "$4" "$5" "$(ratio "$4" "$5")" \
        "${6:--}" "${7:--}" "$( [ -n "${6:-}" ] && ratio "$6" "$7" || echo -)" "${8:-}" >>"$tmp/rows"
}
: >"$tmp/rows"

# wrk_pair KEY LABEL PID-A URL-A PID-B URL-B [SCRIPT [ARG...]]: the same
# wrk run on server A (h1mock) and B, BENCH_ROUNDS times, alternating so
# that a slow moment of the machine hits both; then a row of the summed
# figures: requests/s and server CPU us per request of each
wrk_pair() {
    local key=$1 label=$2 a_pid=$3 a_url=$4 b_pid=$5 b_url=$6 round
    shift 6
    local a_reqs=0 a_cpu=0 b_reqs=0 b_cpu=0 note='' waited=0
    for round in $(seq "$rounds"); do
        do_warm=$([ "$round" = 1 ] && echo 1 || echo 0)
        wrk_run "$key-a$round" "$a_pid" "$a_url" "$@"
        a_reqs=$((a_reqs + r_reqs)) a_cpu=$(awk -v a="$a_cpu" -v c="$r_cpu" -v n="$r_reqs" 'BEGIN { print a + c * n }')
        note="$note$r_note" waited=$(awk -v a="$waited" -v b="$r_wait" 'BEGIN { print (b > a) ? b : a }')
        wrk_run "$key-b$round" "$b_pid" "$b_url" "$@"
        b_reqs=$((b_reqs + r_reqs)) b_cpu=$(awk -v a="$b_cpu" -v c="$r_cpu" -v n="$r_reqs" 'BEGIN { print a + c * n }')
        note="$note$r_note" waited=$(awk -v a="$waited" -v b="$r_wait" 'BEGIN { print (b > a) ? b : a }')
    done
    do_warm=1
    # A server kept off its core by other processes: its requests/s is not
    # comparable (CPU us per request still is).
    if awk -v w="$waited" 'BEGIN { exit !(w >= 5) }'; then
        note="$note waited-for-cpu-up-to-${waited}%"
    fi
    per_s() { awk -v r="$1" -v s="$seconds" -v k="$rounds" 'BEGIN { printf "%.0f", r / s / k }'; }
    per_req() { awk -v c="$1" -v r="$2" 'BEGIN { printf "%.2f", c / r }'; }
    add_row "$key" "$label" req/s "$(per_s "$a_reqs")" "$(per_s "$b_reqs")" \
        "$(per_req "$a_cpu" "$a_reqs")" "$(per_req "$b_cpu" "$b_reqs")" "$note"
}

post_json() { # URL FILE CODE: POSTs FILE as JSON, dies unless answered CODE
    local code
    code=$(curl -sS --max-time 60 -o "$tmp/answer" -w '%{http_code}' -H 'Content-Type: application/json' \
        --data-binary @"$2" "$1") || die "POST $1 failed"
    [ "$code" = "$3" ] || die "POST $1 answered $code, expected $3: $(head -c 300 "$tmp/answer")"
}

get_code() { # URL CODE: dies unless a GET of URL answers CODE
    local code
    code=$(curl -sS --max-time 60 -o "$tmp/answer" -w '%{http_code}' "$1") || die "GET $1 failed"
    [ "$code" = "$2" ] || die "GET $1 answered $code, expected $2: $(head -c 300 "$tmp/answer")"
}

fill_h1mock() { # N: the collection 'items' emptied, then documents b0 .. b<N-1>
    local n=$1 from=0 k
    curl -sS --max-time 60 -o /dev/null -X DELETE "http://127.0.0.1:$h1_admin/app/v1/store/items" ||
        die "h1mock: DELETE /app/v1/store/items failed"
    while [ "$from" -lt "$n" ]; do
        k=$((n - from < fill_chunk ? n - from : fill_chunk))
        awk -v a="$from" -v b="$((from + k))" 'BEGIN {
            printf "["
            for (i = a; i < b; i++)
                printf "%s{\"_id\":\"b%d\",\"name\":\"bench\",\"n\":1}", (i > a) ? "," : "", i
            print "]" }' >"$tmp/fill.json"
        post_json "http://127.0.0.1:$h1_admin/app/v1/store/items" "$tmp/fill.json" 201
        from=$((from + k))
    done
}

fill_nginx() { # N: the dict emptied, then documents b0 .. b<N-1>
    local n=$1 from=0 k
    get_code "http://127.0.0.1:$ngx_port/clear" 200
    while [ "$from" -lt "$n" ]; do
        k=$((n - from < 200000 ? n - from : 200000))
        get_code "http://127.0.0.1:$ngx_port/fill?from=$from&n=$k" 200
        from=$((from + k))
    done
}

# hold_conns PID PORT N: opens N idle connections (conns.py idle) and sets
# r_held (how many opened), r_rss0 and r_rss1 (the server's RSS before and
# with them, kB) and r_bpc (bytes of RSS per connection); the connections
# stay open until release_conns
hold_conns() {
    local pid=$1 port=$2 n=$3 i=0
    rm -f "$tmp/hold" "$tmp/held"
    mkfifo "$tmp/hold"
    r_rss0=$(rss_kb "$pid")
    taskset -c "$client_cpu" "$py" "$here/conns.py" idle "$port" "$get_path" "$n" --sources 8 \
        <"$tmp/hold" >"$tmp/held" 2>"$tmp/conns.log" &
    cli_pid=$!
    exec 3>"$tmp/hold"
    while ! grep -q '^open' "$tmp/held" 2>/dev/null; do
        kill -0 "$cli_pid" 2>/dev/null || die "conns.py idle: $(tail -n 3 "$tmp/conns.log")"
        [ "$i" -lt 1200 ] || die "conns.py idle: $n connections not open within 120 s"
        sleep 0.1
        i=$((i + 1))
    done
    r_held=$(awk '{ print $2 }' "$tmp/held")
    r_rss1=$(rss_kb "$pid")
    r_bpc=$(awk -v a="$r_rss0" -v b="$r_rss1" -v n="$r_held" 'BEGIN { printf "%.0f", (b - a) * 1024 / n }')
}

release_conns() {
    exec 3>&-
    wait "$cli_pid" 2>/dev/null || true
    cli_pid=
}

probe() { # PORT K: sets p_50 p_99 p_max (us) of K GETs in a row on one connection
    read -r p_50 p_99 p_max <<EOF
$(taskset -c "$client_cpu" "$py" "$here/conns.py" probe "$1" "$get_path" "$2")
EOF
}

# callgrind_count PID PORT: user-space instructions per GET of a server
# under callgrind: cg_warm GETs, counters zeroed, cg_n GETs, the total of
# every thread divided by cg_n
callgrind_count() {
    local pid=$1 port=$2 total
    taskset -c "$client_cpu" "$py" "$here/conns.py" requests "$port" "$get_path" "$cg_warm" ||
        die "the callgrind warm-up failed"
    callgrind_control -z "$pid" >/dev/null || die "callgrind_control -z $pid failed"
    taskset -c "$client_cpu" "$py" "$here/conns.py" requests "$port" "$get_path" "$cg_n" ||
        die "the counted GETs failed"
    total=$(callgrind_control -e "$pid" | awk '$1 == "Th" { gsub(",", "", $3); s += $3 } END { print s + 0 }')
    [ "$total" -gt 0 ] || die "callgrind_control -e $pid gave no count"
    r_ir=$(awk -v t="$total" -v n="$cg_n" 'BEGIN { printf "%.0f", t / n }')
}

# ---------------------------------------------------------------- the run
# The load average (1 and 5 minutes) before and after: other processes on
# the machine make every figure of the run less comparable.
loadavg() { awk '{ print $1 " " $2 }' /proc/loadavg; }
load_start=$(loadavg)
start_h1mock h1mock "$tmp/h1mock.log"
expect_body "http://127.0.0.1:$h1_port$get_path" h1mock "$get_body"
say "h1mock pid $h1_pid, traffic $h1_port, admin $h1_admin"
start_nginx "$tmp/nginx"
expect_body "http://127.0.0.1:$ngx_port$get_path" nginx "$get_body"
say "nginx pid $ngx_pid, port $ngx_port"
h1=http://127.0.0.1:$h1_port
ngx=http://127.0.0.1:$ngx_port

if want get; then
    wrk_pair get "static GET" "$h1_pid" "$h1$get_path" "$ngx_pid" "$ngx$get_path"
fi
if want pipeline; then
    wrk_pair pipeline "pipelined GET, depth $depth" "$h1_pid" "$h1$get_path" "$ngx_pid" "$ngx$get_path" \
        "$here/wrk-pipeline.lua" "$depth"
fi
if want upload; then
    head -c "$upload_bytes" /dev/zero | tr '\0' a >"$tmp/upload.bin"
    for u in "$h1" "$ngx"; do
        code=$(curl -sS --max-time 10 -o "$tmp/answer" -w '%{http_code}' --data-binary @"$tmp/upload.bin" \
            -H 'Content-Type: application/octet-stream' "$u/upload") || die "POST $u/upload failed"
        if [ "$code" != 200 ] || ! grep -q "\"bytes\":$upload_bytes" "$tmp/answer"; then
            die "POST $u/upload answered $code '$(head -c 200 "$tmp/answer")', expected 200 and {\"bytes\":$upload_bytes}"
        fi
    done
    wrk_pair upload "POST 1 MiB body" "$h1_pid" "$h1/upload" "$ngx_pid" "$ngx/upload" \
        "$here/wrk-upload.lua" "$upload_bytes"
fi
if want journal; then
    # A second h1mock, without a journal, beside the main one.
    spare_h1mock h1mock-off "$tmp/h1mock-off.log" --journal-size 0
    off_pid=$s_pid
    wrk_pair journal "journal on (h1mock) / off (h1mock)" "$h1_pid" "$h1$get_path" \
        "$off_pid" "http://127.0.0.1:$s_port$get_path"
    stop "$off_pid"
    off_pid=
fi
if want rest; then
    for level in $levels; do
        n=$((level > read_set ? level : read_set))
        say "REST: filling both stores with $n documents"
        fill_h1mock "$n"
        get_code "$h1/api/items/b$((n - 1))" 200
        fill_nginx "$n"
        get_code "$ngx/api/items/b$((n - 1))" 200
        awk -v n="$n" 'BEGIN { srand(1); for (i = 0; i < 10000; i++) printf "b%d\n", int(rand() * n) }' \
            >"$tmp/ids"
        lab=$(awk -v l="$level" 'BEGIN { if (l >= 1000000 && l % 1000000 == 0) printf "%dM", l / 1000000;
            else if (l >= 1000 && l % 1000 == 0) printf "%dk", l / 1000; else print l }')
        wrk_pair "read@$lab" "REST read-by-id, $n documents" "$h1_pid" "$h1/api/items" \
            "$ngx_pid" "$ngx/api/items" \
            "$here/wrk-get.lua" "$tmp/ids"
        wrk_pair "create@$lab" "REST create, from $n documents" "$h1_pid" "$h1/api/items" \
            "$ngx_pid" "$ngx/api/items" \
            "$here/wrk-post.lua"
    done
    # leave the stores small for the rows after
    fill_h1mock 0
    get_code "$ngx/clear" 200
fi
# The idle rows take fresh servers: memory that earlier rows freed (a
# cleared store) would be reused by the connections and hide their cost.
# h1mock's journal is off there: it would count each connection's one
# request (a few hundred bytes) as memory of the connection.
if want idle; then
    spare_h1mock h1mock-idle "$tmp/h1mock-idle.log" --journal-size 0
    idle_pid=$s_pid
    hold_conns "$idle_pid" "$s_port" "$idle_n"
    a_bpc=$r_bpc a_held=$r_held a0=$r_rss0 a1=$r_rss1
    release_conns
    stop "$idle_pid"
    spare_nginx "$tmp/nginx-idle"
    idle_pid=$s_pid
    hold_conns "$idle_pid" "$s_port" "$idle_n"
    b_bpc=$r_bpc b_held=$r_held b0=$r_rss0 b1=$r_rss1
    release_conns
    stop "$idle_pid"
    idle_pid=
    note=
    [ "$a_held" -eq "$idle_n" ] && [ "$b_held" -eq "$idle_n" ] || note=" held $a_held/$b_held of $idle_n"
    add_row "idle@$idle_n" "RSS per idle connection, $idle_n open" B/conn "$a_bpc" "$b_bpc" "" "" "$note"
    idle_line=$(printf 'idle: RSS with %s idle connections: h1mock %s -> %s kB, nginx %s -> %s kB' \
        "$idle_n" "$a0" "$a1" "$b0" "$b1")
fi
if want held; then
    max=$((nofile - 200)) # the client's own descriptors, and h1mock's besides the connections
    spare_h1mock h1mock-held "$tmp/h1mock-held.log" --journal-size 0
    idle_pid=$s_pid
    probe "$s_port" 2000
    q50=$p_50 q99=$p_99 qmax=$p_max
    hold_conns "$idle_pid" "$s_port" "$max"
    probe "$s_port" 2000
    held_line=$(printf 'held: h1mock held %s idle connections (RSS %s -> %s kB, %s B each); GETs on another\n      connection meanwhile: p50 %s us, p99 %s us, max %s us; without them: p50 %s us, p99 %s us, max %s us' \
        "$r_held" "$r_rss0" "$r_rss1" "$r_bpc" "$p_50" "$p_99" "$p_max" "$q50" "$q99" "$qmax")
    add_row "held@$max" "GET p50 with $r_held idle open / none (h1mock)" us "$p_50" "$q50" "" "" ""
    release_conns
    stop "$idle_pid"
    idle_pid=
fi
if want instructions; then
    stop "$h1_pid"
    h1_pid=
    stop "$ngx_pid"
    ngx_pid=
    launch_wait=60
    h1_wrap="valgrind --tool=callgrind --callgrind-out-file=$tmp/cg.h1mock.%p"
    start_h1mock h1mock-callgrind "$tmp/h1mock-cg.log"
    cg_h1=$h1_pid
    unset h1_wrap
    callgrind_count "$cg_h1" "$h1_port"
    a_ir=$r_ir
    stop "$cg_h1"
    cg_h1=
    ngx_wrap="valgrind --tool=callgrind --callgrind-out-file=$tmp/cg.nginx.%p"
    start_nginx "$tmp/nginx-cg"
    cg_ngx=$ngx_pid
    unset ngx_wrap
    callgrind_count "$cg_ngx" "$ngx_port"
    stop "$cg_ngx"
    cg_ngx=
    add_row instructions "instructions per GET (callgrind)" Ir/req "$a_ir" "$r_ir" "" "" ""
fi

# ---------------------------------------------------------------- report
h1_version=$("$bin" --version 2>&1 | head -n 1) || h1_version=unknown
load_end=$(loadavg)
case $(cd "$(dirname "$bin")" && pwd) in
    "$root"/*)
        rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null) || rev=unknown
        dirty=$(git -C "$root" status --porcelain --untracked-files=no -- src lua meson.build 2>/dev/null | head -n 1) || dirty=
        [ -z "$dirty" ] || rev="$rev, modified"
        ;;
    *) rev=unknown ;; # built from another tree
esac
rev=${H1MOCK_REV:-$rev}
base_ratio() { # KEY COLUMN: that row's ratio in the baseline table, or "-"
    [ -f "$baseline" ] || { echo -; return; }
    awk -v k="$1" -v c="$2" '$1 == k { print $c; found = 1; exit } END { if (!found) print "-" }' "$baseline"
}
mkdir -p "$results_dir"
{
    printf 'h1mock benchmark matrix  %s\n' "$(date -u '+%Y-%m-%dT%H:%M:%SZ')"
    printf 'h1mock: %s (%s, rev %s)\n' "$bin" "$h1_version" "$rev"
    printf 'nginx:  %s + lua-nginx-module, one worker; wrk %s; valgrind %s\n' \
        "$(nginx -v 2>&1 | sed 's/^nginx version: //')" "$(wrk --version 2>&1 | awk 'NR == 1 { print $2 }')" \
        "$(valgrind --version 2>/dev/null || echo none)"
    printf 'host:   %s CPUs (%s); servers on CPU %s, clients on CPU %s\n' "$ncpu" \
        "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)" "$server_cpu" "$client_cpu"
    printf 'load:   wrk -t%s -c%s keep-alive, warm-up %ss, %s x %ss measured per server, alternating;\n' \
        "$threads" "$conns" "$warmup" "$rounds" "$seconds"
    printf '        callgrind %s GETs after %s\n' "$cg_n" "$cg_warm"
    printf 'loadavg: %s at the start, %s at the end (1 and 5 min)\n' "$load_start" "$load_end"
    [ -f "$baseline" ] && printf 'base:   ratios of %s\n' "${baseline#"$root"/}"
    echo
    printf '%-15s %-7s %10s %10s %6s %6s | %7s %7s %6s %6s | %s\n' \
        key unit h1mock nginx ratio base 'CPU us' nginx ratio base row
    while IFS='|' read -r key label unit a b r ca cb cr note; do
        printf '%-15s %-7s %10s %10s %6s %6s | %7s %7s %6s %6s | %s%s\n' \
            "$key" "$unit" "$a" "$b" "$r" "$(base_ratio "$key" 5)" \
            "$ca" "$cb" "$cr" "$(base_ratio "$key" 10)" "$label" "${note:+ (notes:$note)}"
    done <"$tmp/rows"
    echo
    echo 'ratio: h1mock / nginx (journal: on / off; held: with / without the idle connections).'
    echo 'Better is higher for req/s, lower for B/conn, Ir/req, us and CPU us per request.'
    echo 'base: the same ratio in the baseline table; CPU us: server CPU time per request.'
    [ -z "${idle_line:-}" ] || printf '%s\n' "$idle_line"
    [ -z "${held_line:-}" ] || printf '%b\n' "$held_line"
} | tee "$results"
say "written to ${results#"$root"/}"
