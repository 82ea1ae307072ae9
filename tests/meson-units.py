#!/usr/bin/python3
"""Summarise a `meson test --suite unit` run for tests/run-all.sh.

Reads BUILDDIR/meson-logs/testlog.json (one JSON object per test program)
and prints, per program, its "not ok" lines and "NAME: N passed, N failed"
from the program's own last line. A program that crashed, timed out or
ended without that line counts as one failure, so a unit test that dies
early cannot pass by printing nothing. A program meson skipped (exit 77)
prints "skipped unit NAME" for the expected-skips check. Ends with the
total line "N passed, N failed, N skipped".
"""
import json
import re
import sys

RESULT = re.compile(r"^(\d+) passed, (\d+) failed")


def main(builddir):
    passed = failed = skipped = 0
    with open(builddir + "/meson-logs/testlog.json", encoding="utf-8") as log:
        for line in log:
            test = json.loads(line)
            name = test["name"].split(" / ")[-1]
            out = test.get("stdout", "") or ""
            for text in out.splitlines():
                if text.startswith("not ok"):
                    print(text)
            if test["result"] == "SKIP":
                print("skipped unit %s" % name)
                skipped += 1
                continue
            lines = [t for t in out.splitlines() if t.strip()]
            m = RESULT.match(lines[-1]) if lines else None
            p, f = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
            if test["result"] != "OK" and f == 0:
                f = 1
                print("not ok %s: %s (exit %s)" % (name, test["result"], test.get("returncode")))
            print("%s: %d passed, %d failed" % (name, p, f))
            passed += p
            failed += f
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
