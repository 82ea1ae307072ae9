"""tests/check-layers.py, the check that calls between modules go one way
(docs/ARCHITECTURE.md): it passes on src/, and fails, naming the edge, on a
copy of src/ where a fault was planted: a call up a layer (by a function
call, and by an #include), a cycle inside one layer, a binding file reached
through more than its open function, a file in no module.

README: "Development".
"""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECK = ROOT / "tests" / "check-layers.py"
PYTHON = "/usr/bin/python3"


def check(*args):
    return subprocess.run([PYTHON, str(CHECK), *args], capture_output=True, text=True,
                          timeout=60)


def test_src_passes_and_prints_the_graph():
    res = check()
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    assert lines[-1] == "1 passed, 0 failed"
    # The graph, one line per module, top layer first.
    assert lines[0].startswith("main ") and " -> " in lines[0]
    assert any(l.split() == ["buf", "->", "(nothing)"] for l in lines)
    assert not any(l.startswith("not ok") for l in lines)


def planted(tmp_path, file, text, where="end"):
    """A copy of src/ with `text` added to `file` (at its end, or after its
    first line), checked quietly."""
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src", src, ignore=shutil.ignore_patterns("*.o"))
    path = src / file
    old = path.read_text(encoding="utf-8")
    if where == "end":
        new = old + "\n" + text + "\n"
    else:
        first, rest = old.split("\n", 1)
        new = first + "\n" + text + "\n" + rest
    path.write_text(new, encoding="utf-8")
    return check("--quiet", "--src", str(src))


def failed_with(res, *words):
    assert res.returncode == 1, res.stdout + res.stderr
    assert res.stdout.splitlines()[-1] == "0 passed, 1 failed", res.stdout
    bad = [l for l in res.stdout.splitlines() if l.startswith("not ok - ")]
    hits = [l for l in bad if all(w in l for w in words)]
    assert hits, (words, res.stdout)
    return hits[0]


def test_an_upward_call_fails(tmp_path):
    # The logger (bottom layer) calling into the server (near the top).
    res = planted(tmp_path, "log.c",
                  "struct server;\nvoid server_stop(struct server *s);\n"
                  "void log_planted(struct server *s) { server_stop(s); }")
    failed_with(res, "upward: log (layer", "-> server (layer", "log.c: server_stop")
    # An upward call closes a circle too (server reaches log): named as well.
    failed_with(res, "cycle between", "log -> server (log.c: server_stop)")


def test_an_upward_include_fails(tmp_path):
    res = planted(tmp_path, "router.c", '#include "provision.h"', where="top")
    failed_with(res, "upward: router", "-> provision", 'router.c: #include "provision.h"')


def test_a_cycle_inside_a_layer_fails(tmp_path):
    # admin already calls conn (same layer); conn calling back makes a circle.
    res = planted(tmp_path, "conn.c",
                  "void admin_abandon(void *pending);\n"
                  "void conn_planted(void *p) { admin_abandon(p); }")
    failed_with(res, "cycle between admin, conn", "conn.c: admin_abandon")


def test_a_binding_reached_past_its_open_function_fails(tmp_path):
    # script.c (the driver, a layer above) calling a binding's helper: the
    # direction is right, but a binding file exposes only its open function.
    res = planted(tmp_path, "script_app.c", "int script_app_planted(void) { return 1; }")
    assert res.returncode == 0, res.stdout  # defined and not called: fine
    with open(tmp_path / "src" / "script.c", "a", encoding="utf-8") as f:
        f.write("\nint script_app_planted(void);\n"
                "int script_planted(void) { return script_app_planted(); }\n")
    failed_with(check("--quiet", "--src", str(tmp_path / "src")),
                "binding script_app is reached through more than its open function",
                "script_app_planted")


def test_a_file_in_no_module_fails(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src", src)
    (src / "stray.c").write_text("int stray(void) { return 0; }\n", encoding="utf-8")
    failed_with(check("--quiet", "--src", str(src)), "stray.c: in no module")


@pytest.mark.parametrize("args", [["--src"], ["--src", "/nonexistent/dir"]])
def test_src_needs_a_directory(args):
    res = check(*args)
    assert res.returncode == 2
    assert "--src needs a directory" in res.stderr
