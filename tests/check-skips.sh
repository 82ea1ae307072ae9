#!/bin/sh
# Reads skipped tests on stdin, one "<file or suite>: <reason>" per line
# (tests/run-all.sh collects them from pytest, meson, the fuzz run and the
# container test), and prints "unexpected skip: <line>" for each one that
# tests/expected-skips.txt does not list. Exits 1 when there was one: a
# test that quietly stopped running must not look like a pass.
#
#   tests/check-skips.sh [EXPECTED-FILE] < skips
set -u
expected=${1:-"$(dirname "$0")/expected-skips.txt"}
if [ ! -r "$expected" ]; then
  echo "check-skips: cannot read $expected" >&2
  exit 2
fi
# Comments and blank lines of the list never match a skip line: a skip
# line always has "name: reason".
grep -vE '^[[:space:]]*(#|$)' "$expected" >"${TMPDIR:-/tmp}/h1mock-skips.$$"
unexpected=$(grep -vxF -f "${TMPDIR:-/tmp}/h1mock-skips.$$" | sed 's/^/unexpected skip: /')
rm -f "${TMPDIR:-/tmp}/h1mock-skips.$$"
[ -z "$unexpected" ] && exit 0
echo "$unexpected"
exit 1
