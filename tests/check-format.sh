#!/bin/sh
# Fails when a C file of the project differs from what clang-format (Debian
# 12's version 14, with the repository's .clang-format) makes of it, and
# names each one. Ends with "N passed, N failed", one count per file.
#
#   tests/check-format.sh         check
#   tests/check-format.sh --fix   rewrite the files in place
set -u
cd "$(dirname "$0")/.." || exit 2
if ! command -v clang-format >/dev/null 2>&1; then
  echo "check-format: clang-format is missing (deps/install.sh installs it)"
  echo "0 passed, 1 failed"
  exit 1
fi
passed=0
failed=0
for f in $(git ls-files '*.c' '*.h' 2>/dev/null || find src tests -name '*.[ch]'); do
  if [ "${1:-}" = "--fix" ]; then
    clang-format -i "$f"
  fi
  if clang-format "$f" | cmp -s - "$f"; then
    passed=$((passed + 1))
  else
    echo "not ok $f: not formatted (run tests/check-format.sh --fix)"
    failed=$((failed + 1))
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
