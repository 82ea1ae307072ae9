#!/bin/sh
# Runs every libFuzzer target for a bounded time: builds build-fuzz (clang,
# ASan + UBSan + libFuzzer), then runs each target for FUZZ_SECONDS,
# seeded with its regression corpus (tests/fuzz/regression/<target>/) and
# a few inputs made here, with its dictionary (tests/fuzz/dict/).
#
# Prints one line per target, "ok", "not ok" or "skipped" with the reason,
# and ends with "N passed, N failed, N skipped" (tests/run-all.sh adds it
# to its count). A finding (crash, sanitizer report, leak, timeout, out of
# memory) fails the run; its input is copied to
# tests/fuzz/regression/<target>/ under its SHA-1 so that the normal test
# suite replays it from then on: commit it with the fix. Work files (the
# grown corpus, logs) go to a temporary directory, removed at the end.
#
#   tests/fuzz/run.sh                 every target
#   tests/fuzz/run.sh admin rest      some of them
#
# Environment:
#   FUZZ_SECONDS   time per target (60)
#   FUZZ_TIMEOUT   seconds one input may take before it is a finding (10)
#   FUZZ_RSS_MB    memory limit of a fuzzer process in MiB (2048)
#   FUZZ_KEEP      set: keep the work directory and print where it is
set -u
cd "$(dirname "$0")/../.." || exit 2

targets=${*:-"request provision admin rest"}
seconds=${FUZZ_SECONDS:-60}
timeout=${FUZZ_TIMEOUT:-10}
rss_mb=${FUZZ_RSS_MB:-2048}
build="build-fuzz"

passed=0
failed=0
skipped=0

finish() {
  echo "$passed passed, $failed failed, $skipped skipped"
  [ "$failed" -eq 0 ]
  exit $?
}

skip_all() { # reason
  for t in $targets; do
    echo "skipped fuzz-$t: $1"
    skipped=$((skipped + 1))
  done
  finish
}

for t in $targets; do
  if [ ! -f "tests/fuzz/fuzz_$t.c" ]; then
    echo "run.sh: no fuzz target '$t' (tests/fuzz/fuzz_$t.c)" >&2
    exit 2
  fi
done

# libFuzzer comes with clang; Debian ships its runtime apart
# (libclang-rt-14-dev), and clang prints the bare name when it is missing.
if ! command -v clang >/dev/null 2>&1; then
  skip_all "clang is not installed (deps/install.sh installs it)"
fi
runtime=$(clang -print-file-name="libclang_rt.fuzzer-$(uname -m).a" 2>/dev/null)
case "$runtime" in
  /*) [ -f "$runtime" ] || runtime="" ;;
  *) runtime="" ;;
esac
if [ -z "$runtime" ]; then
  skip_all "clang's libFuzzer runtime (libclang_rt.fuzzer-$(uname -m).a) is missing (Debian: libclang-rt-14-dev)"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/h1mock-fuzz.XXXXXX") || exit 2
if [ -n "${FUZZ_KEEP:-}" ]; then
  echo "work directory: $work"
else
  trap 'rm -rf "$work"' EXIT
fi

options="-Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false"
if [ -f "$build/build.ninja" ]; then
  # shellcheck disable=SC2086 # options is a list
  meson setup "$build" --reconfigure $options >"$work/setup.log" 2>&1
else
  # shellcheck disable=SC2086
  CC=clang meson setup "$build" $options >"$work/setup.log" 2>&1
fi
setup=$?
if [ "$setup" -ne 0 ] || ! meson compile -C "$build" >"$work/compile.log" 2>&1; then
  tail -n 30 "$work/setup.log" "$work/compile.log" 2>/dev/null
  echo "not ok fuzz: $build does not build"
  failed=$((failed + 1))
  finish
fi
for t in $targets; do
  if [ ! -x "$build/tests/fuzz_$t" ]; then
    echo "not ok fuzz: $build has no fuzz_$t (set up with another compiler? remove $build)"
    failed=$((failed + 1))
    finish
  fi
done

# Inputs to start from, beside the regression corpus: what each target is
# about, so that the first minute is not spent finding the request syntax.
seed() { # target name printf-format [args...]
  dir="$work/$1/seeds"
  name=$2
  shift 2
  # shellcheck disable=SC2059 # the format is the point
  printf "$@" >"$dir/$name"
}

# admin_seed file mode-byte [method path]...: pipelined admin requests.
# "POST text" sends text as the body; "GET Name: value" adds a header.
admin_seed() {
  file=$1
  # shellcheck disable=SC2059 # the mode byte is an octal escape
  printf "$2" >"$file"
  shift 2
  while [ $# -ge 2 ]; do
    method=${1%% *}
    extra=""
    [ "$method" = "$1" ] || extra=${1#* }
    if [ "$method" = POST ]; then
      printf '%s' "$extra" >"$file.body"
      printf 'POST %s HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n' "$2" \
        "$(wc -c <"$file.body")" >>"$file"
      cat "$file.body" >>"$file"
      rm "$file.body"
    else
      printf '%s %s HTTP/1.1\r\nHost: a\r\n' "$method" "$2" >>"$file"
      [ -z "$extra" ] || printf '%s\r\n' "$extra" >>"$file"
      printf '\r\n' >>"$file"
    fi
    shift 2
  done
}

make_seeds() { # target
  mkdir -p "$work/$1/seeds" "$work/$1/corpus"
  case "$1" in
    request)
      seed request get '\007GET /a/12?x=1 HTTP/1.1\r\nHost: a\r\n\r\n'
      seed request chunked '\077POST /f/x/y/edit HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n'
      seed request pipelined '\003GET /u/3fa85f64-5717-4562-b3fc-2c963f66afa6 HTTP/1.1\r\nHost: a\r\n\r\nPOST /any/z%%20z/ HTTP/1.0\r\nContent-Length: 2\r\n\r\nhiGET /v3/-1.5 HTTP/1.1\r\nHost: b\r\n\r\n'
      ;;
    provision)
      for f in provisions/*.lua; do
        [ -L "$f" ] || cp "$f" "$work/provision/seeds/"
      done
      ;;
    admin)
      # The first byte is fuzz_admin's mode: read size, abandon, caller.
      d="$work/admin/seeds"
      admin_seed "$d/reads" '\037' GET /healthz GET /metrics HEAD /app/v1/openapi.yaml \
        GET /app/v1/provision
      admin_seed "$d/provisions" '\007' GET /app/v1/provision/other \
        DELETE /app/v1/provision/plain GET /app/v1/provision/broken.lua GET /app/v1/provision/
      lua="function registerRules() app.get('/y', function() return {} end) end"
      admin_seed "$d/post" '\000' "POST $lua" /app/v1/provision/mine GET /app/v1/provision \
        DELETE /app/v1/provision/other
      admin_seed "$d/post-abandoned" '\040' "POST $lua" /app/v1/provision/gone
      admin_seed "$d/store" '\001' 'POST [{"_id":"k","a":[1,{"b":null}]},{"c":"\u00e9"}]' \
        /app/v1/store/new GET /app/v1/store DELETE /app/v1/store/items GET /app/v1/store/new
      admin_seed "$d/journal" '\002' GET '/app/v1/requests?method=get&path_prefix=/a&status=200' \
        GET '/app/v1/requests/count?endpoint=get_a' \
        GET '/app/v1/requests/unmatched?since=2&limit=1' DELETE /app/v1/requests
      admin_seed "$d/token" '\200' "GET Authorization: Bearer fuzz-token" /app/v1/store \
        "GET Authorization: Bearer nope" /app/v1/store
      admin_seed "$d/remote" '\300' GET /healthz GET /app/v1/requests
      ;;
    rest)
      seed rest list 'items'
      seed rest filters 'items?name_like=^a&age_gte=7&age_lte=40&tags.0=x&active_ne=true'
      seed rest sort 'items?_sort=age,-name&_order=desc,asc'
      seed rest page 'users?_page=2&_limit=5&g=g1&g=g2'
      seed rest slice 'users?_start=3&_end=9&q=g2'
      seed rest nested 'items?address.city_like=lon&deep.a.b.c.1.0=2&a.b=1'
      seed rest item 'items/a1'
      ;;
  esac
}

# Per target: the longest input worth trying, and whether libFuzzer looks
# for leaks after each input. The REST target keeps one Lua state across
# inputs, whose garbage makes every input look like a leak to that check
# and costs a full scan each time; its leaks are found at exit instead.
max_len() {
  case "$1" in
    rest) echo 1024 ;;
    *) echo 8192 ;;
  esac
}
detect_leaks() {
  case "$1" in
    rest) echo 0 ;;
    *) echo 1 ;;
  esac
}

# Sanitizer reports end the process so that libFuzzer keeps the input.
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"

for t in $targets; do
  make_seeds "$t"
  dir="$work/$t"
  log="$dir/fuzz.log"
  # The harness's own temporary files (fuzz_admin's provisions) go here.
  # stderr of the target is closed (-close_fd_mask=2): the server's log
  # lines would flood the log; sanitizer reports still come through.
  TMPDIR="$dir" timeout -k 10 $((seconds + 300)) "$build/tests/fuzz_$t" \
    -max_total_time="$seconds" -timeout="$timeout" -rss_limit_mb="$rss_mb" \
    -max_len="$(max_len "$t")" -detect_leaks="$(detect_leaks "$t")" \
    -dict="tests/fuzz/dict/$t.dict" -close_fd_mask=2 -print_final_stats=1 \
    -artifact_prefix="$dir/" "$dir/corpus" "tests/fuzz/regression/$t" "$dir/seeds" \
    >"$log" 2>&1
  rc=$?
  runs=$(grep -Eo '^stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$')
  found=""
  for a in "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* "$dir"/oom-*; do
    [ -f "$a" ] || continue
    kind=$(basename "$a" | cut -d- -f1)
    sum=$(sha1sum "$a" | cut -c1-40)
    cp "$a" "tests/fuzz/regression/$t/$kind-$sum"
    found="$found tests/fuzz/regression/$t/$kind-$sum"
  done
  if [ "$rc" -eq 0 ] && [ -z "$found" ]; then
    echo "ok fuzz-$t ($seconds s, ${runs:-?} inputs)"
    passed=$((passed + 1))
    continue
  fi
  failed=$((failed + 1))
  pattern='^==[0-9]+==ERROR|runtime error|^fuzz [a-z]+:|ALARM|out-of-memory'
  if [ -z "$found" ]; then
    grep -E -A 25 "$pattern" "$log" | head -n 30 | sed 's/^/    /'
    tail -n 20 "$log" | sed 's/^/    /'
    echo "not ok fuzz-$t: the fuzzer ended with status $rc and saved no input"
    continue
  fi
  # Once more with stderr open: a failed check of the harness prints its
  # reason there ("fuzz admin: status 500 ..."), which the fuzzing run
  # closed; a sanitizer prints its report again.
  first=$(echo "$found" | awk '{print $1}')
  "$build/tests/fuzz_$t" -timeout="$timeout" -rss_limit_mb="$rss_mb" "$first" \
    >"$dir/replay.log" 2>&1
  if grep -qE "$pattern" "$dir/replay.log"; then
    grep -E -A 25 "$pattern" "$dir/replay.log" | head -n 30 | sed 's/^/    /'
  else
    grep -E -A 25 "$pattern" "$log" | head -n 30 | sed 's/^/    /'
  fi
  echo "not ok fuzz-$t: a finding, saved as$found"
  echo "    reproduce with $build/tests/fuzz_$t FILE (stderr shows the server's log);"
  echo "    fix it and commit the file: the normal suite replays it from now on"
done
finish
