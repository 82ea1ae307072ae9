#!/bin/sh
# Checks the format and the module layers, builds h1mock twice (plain
# -Werror, and ASan+UBSan) and runs the whole test suite against both: C
# unit tests and the pytest integration tests; then, once, a bounded
# libFuzzer run of every fuzz target (tests/fuzz/run.sh: FUZZ_SECONDS each,
# 60 by default) and the container test (tests/containers/run.sh: the image
# and the compose example under podman). The C unit tests run through
# `meson test --suite unit`. A skip that tests/expected-skips.txt does not
# list fails the run. Prints "N skipped" (over every suite), then ends with
# one line "N passed, N failed" summed over every suite, the line CI reads.
#
#   tests/run-all.sh            both builds, fuzzing and the container test
#   tests/run-all.sh --quick    the plain build only, no fuzzing, no container test
set -u
cd "$(dirname "$0")/.." || exit 2

builds="build build-asan"
containers=yes
fuzz=yes
if [ "${1:-}" = "--quick" ]; then
  builds="build"
  containers=""
  fuzz=""
fi

passed=0
failed=0
skipped=0
status=0
skiplog=$(mktemp)
trap 'rm -f "$skiplog"' EXIT

setup() { # dir, extra meson options...
  dir=$1
  shift
  if [ -f "$dir/build.ninja" ]; then
    meson setup "$dir" --reconfigure "$@" >/dev/null
  else
    meson setup "$dir" "$@" >/dev/null
  fi
}

count() { # log file: adds the counts of its last line ("N passed, N failed" or pytest's)
  last=$(tail -n 1 "$1")
  p=$(echo "$last" | grep -Eo "[0-9]+ passed" | grep -Eo "[0-9]+" || true)
  f=$(echo "$last" | grep -Eo "[0-9]+ (failed|error|errors)" | awk '{s+=$1} END {print s+0}')
  s=$(echo "$last" | grep -Eo "[0-9]+ skipped" | grep -Eo "[0-9]+" || true)
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0}))
  skipped=$((skipped + ${s:-0}))
}

# Formatting is checked once, not per build: a file clang-format would
# change fails the run like a failing test.
log=$(mktemp)
if ! tests/check-format.sh >"$log" 2>&1; then status=1; fi
grep -E '^not ok' "$log" || true
tail -n 1 "$log" | sed "s|^|format: |"
count "$log"
rm -f "$log"

# So are the calls between modules: a cycle or a call up a layer
# (docs/ARCHITECTURE.md) fails the run.
log=$(mktemp)
if ! /usr/bin/python3 tests/check-layers.py --quiet >"$log" 2>&1; then status=1; fi
grep -E '^not ok' "$log" || true
tail -n 1 "$log" | sed "s|^|layers: |"
count "$log"
rm -f "$log"

for b in $builds; do
  if [ "$b" = build-asan ]; then
    # Leak checks need ptrace-free LSan; both sanitizers abort on the first
    # finding so a report cannot scroll by unnoticed.
    setup "$b" -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug || exit 2
    export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1"
    export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
  else
    setup "$b" || exit 2
  fi
  if ! meson compile -C "$b" >"$b/compile.log" 2>&1; then
    cat "$b/compile.log"
    echo "$b: build failed"
    status=1
    failed=$((failed + 1))
    continue
  fi
  # meson's own exit status is ignored: tests/meson-units.py reads every
  # program's result from meson's log and counts a crash as a failure.
  meson test -C "$b" --suite unit --no-rebuild >"$b/unit-meson.log" 2>&1
  log="$b/unit.log"
  if ! tests/meson-units.py "$b" >"$log" 2>&1; then status=1; fi
  grep -E '^not ok' "$log" || true
  grep -E '^[a-z0-9_-]+: [0-9]+ passed' "$log" | sed "s|^|$b unit |"
  grep -E '^skipped ' "$log" | sed "s|^skipped ||" >>"$skiplog" || true
  count "$log"
  log="$b/integration.log"
  if ! H1MOCK_BIN="$PWD/$b/h1mock" /usr/bin/python3 -m pytest -q -rs -p no:cacheprovider \
      tests/integration >"$log" 2>&1; then
    status=1
    grep -E '^(FAILED|ERROR)' "$log" || tail -n 40 "$log"
  fi
  # "SKIPPED [1] tests/integration/test_x.py:12: why" -> "test_x.py: why"
  sed -nE 's|^SKIPPED \[[0-9]+\] ([^:]*/)?([^/:]+):[0-9]+: |\2: |p' "$log" >>"$skiplog"
  tail -n 1 "$log" | sed "s|^|$b integration: |"
  count "$log"
done

# Once, not per build: its own clang build (build-fuzz). A machine without
# clang's libFuzzer says why and counts one skip per target; a finding is
# copied into tests/fuzz/regression/ and fails the run.
if [ -n "$fuzz" ]; then
  log=build/fuzz.log
  if ! tests/fuzz/run.sh >"$log" 2>&1; then status=1; fi
  grep -E '^(ok|not ok|skipped|    )' "$log" | sed "s|^|fuzz: |" || true
  sed -nE 's|^skipped (fuzz-[a-z_]+): |\1: |p' "$log" >>"$skiplog"
  tail -n 1 "$log" | sed "s|^|fuzz: |"
  count "$log"
  # Ended before its result line (killed, a broken step): one failure.
  tail -n 1 "$log" | grep -Eq '^[0-9]+ passed' || failed=$((failed + 1))
fi

# Once, not per build: the image is built from the sources inside podman.
# A machine where podman cannot run says why and counts one skip.
if [ -n "$containers" ]; then
  log=build/containers.log
  if ! tests/containers/run.sh >"$log" 2>&1; then
    status=1
    grep -E '^(not ok|    )' "$log" || tail -n 40 "$log"
  fi
  grep -E '^containers: (skipped|image)' "$log" || true
  sed -nE 's|^containers: skipped: |containers: |p' "$log" >>"$skiplog"
  tail -n 1 "$log" | sed "s|^|containers: |"
  count "$log"
  # Ended before its result line (killed, a broken step): one failure.
  tail -n 1 "$log" | grep -Eq '^[0-9]+ passed' || failed=$((failed + 1))
fi

# Every skip must be a declared one (tests/expected-skips.txt, with why);
# each undeclared skip counts as a failure.
log=$(mktemp)
if ! tests/check-skips.sh <"$skiplog" >"$log" 2>&1; then
  cat "$log"
  n=$(grep -c '^unexpected skip' "$log")
  [ "$n" -gt 0 ] || n=1 # the check itself broke
  failed=$((failed + n))
  status=1
fi
rm -f "$log"
[ "$failed" -gt 0 ] && status=1
echo "$skipped skipped"
echo "$passed passed, $failed failed"
exit $status
