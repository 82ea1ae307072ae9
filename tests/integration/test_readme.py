"""README.md stays true: its Lua examples load, its Python examples parse,
its links and contents point somewhere, and the tutorial answers what the
README says it answers.

README: "Quick start (Debian 12, from a clean clone)", "Tutorial: a mock in five minutes".
"""

import ast
import json
import re
import subprocess

import pytest
import yaml

from conftest import BIN, ROOT, http

README = ROOT / "README.md"
TEXT = README.read_text(encoding="utf-8")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)
# A block whose first line names a file ("-- orders.lua: ..." or
# "-- provisions/lib/fixtures.lua") is written under that name, so that
# later blocks can require it.
FILE_HEADER = re.compile(r"^-- ((?:[\w.-]+/)*[\w-]+\.lua)(?::|[ \t]*\n)")


def blocks(lang):
    return [m.group(2) for m in FENCE.finditer(TEXT) if m.group(1) == lang]


def lua_block_id(i, text):
    return "lua-%02d-%s" % (i, (text.strip().splitlines() or ["empty"])[0][:40])


LUA = blocks("lua")


def test_readme_has_lua_and_python_examples():
    assert len(LUA) >= 20, len(LUA)
    assert len(blocks("python")) >= 6


def test_every_lua_example_loads(tmp_path):
    """`h1mock --check` on each block in README order. A block without
    registerRules() is a fragment: it gets an empty one; a block that
    returns a module is only written, for the blocks that require it."""
    failures = []
    for i, text in enumerate(LUA):
        m = FILE_HEADER.match(text)
        path = tmp_path / (m.group(1) if m else "example%02d.lua" % i)
        path.parent.mkdir(parents=True, exist_ok=True)
        is_module = re.search(r"^return \w+\s*$", text, re.M) is not None
        if "function registerRules" not in text and not is_module:
            text += "\nfunction registerRules() end\n"
        path.write_text(text)
        if is_module:
            continue
        p = subprocess.run([BIN, "--check", str(path)], capture_output=True, text=True,
                           cwd=path.parent, timeout=30)
        if p.returncode != 0 or not re.search(r": ok \(\d+ rules?\)", p.stdout):
            failures.append("%s:\n%s%s" % (lua_block_id(i, text), p.stdout, p.stderr))
    assert not failures, "README Lua examples that do not load:\n" + "\n".join(failures)


def test_every_python_example_parses():
    for i, text in enumerate(blocks("python")):
        compile(text, "README python block %d" % i, "exec")


def test_json_examples_parse():
    for text in blocks("json"):
        json.loads(text)


def test_yaml_examples_parse():
    for text in blocks("yaml"):
        if "{{" in text:  # a helm template, not YAML until rendered
            continue
        yaml.safe_load(text)


def slug(heading):
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def test_links_point_to_headings_and_files():
    outside = FENCE.sub("", TEXT)
    anchors = set()
    for h in re.findall(r"^#{1,6} (.+)$", outside, re.M):
        s = slug(h)
        n = 1
        base = s
        while s in anchors:
            s = "%s-%d" % (base, n)
            n += 1
        anchors.add(s)
    for target in re.findall(r"\]\(([^)\s]+)\)", outside):
        if target.startswith(("http://", "https://")):
            continue
        if target.startswith("#"):
            assert target[1:] in anchors, "no heading for link %s" % target
        else:
            assert (ROOT / target.split("#")[0]).exists(), "link to a missing file: %s" % target
    # the table of contents names every top-level section, in order
    toc = re.search(r"^## Contents\n\n(.*?)\n\n", outside, re.M | re.S).group(1)
    listed = re.findall(r"\]\(#([^)]+)\)", toc)
    sections = [slug(h) for h in re.findall(r"^## (.+)$", outside, re.M) if h != "Contents"]
    assert listed == sections, (listed, sections)


def test_quick_start_commands_and_the_one_docs_page():
    assert ("deps/install.sh && (test -d build || meson setup build) && meson compile -C build"
            " && build/h1mock\n") in TEXT
    test_command = "deps/install.sh --containers && tests/run-all.sh"
    assert test_command + "\n" in TEXT
    # CI runs exactly the README's test command
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert ci[-1] == test_command
    # The README is the user's manual; docs/ holds one page for developers,
    # the architecture, which the README's Development section points to.
    assert sorted(p.name for p in (ROOT / "docs").iterdir()) == ["ARCHITECTURE.md"]
    assert "(docs/ARCHITECTURE.md)" in TEXT


def test_architecture_page_lists_the_layers_the_checker_checks():
    """docs/ARCHITECTURE.md's layer table and tests/check-layers.py's LAYERS
    are the same list, and the checker passes on the tree."""
    page = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\d+) \| ((?:`\w+` ?)+) \|", page, re.M)
    documented = [re.findall(r"`(\w+)`", mods) for _, mods in rows]
    checker = ROOT / "tests" / "check-layers.py"
    src = checker.read_text(encoding="utf-8")
    ns = {}
    exec(compile(re.search(r"^LAYERS = \[.*?^\]$", src, re.M | re.S).group(0), str(checker),
                 "exec"), ns)
    assert documented == ns["LAYERS"]
    p = subprocess.run(["/usr/bin/python3", str(checker), "--quiet"], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.endswith("1 passed, 0 failed\n"), p.stdout


def test_every_integration_test_file_names_the_readme_headings_it_guards():
    """Each tests/integration/test_*.py says in its docstring, on a line
    `README: "Heading", ...`, which parts of the README its tests hold
    true, and every heading named exists: tests are grouped by feature,
    and a renamed section shows here."""
    headings = set(re.findall(r"(?m)^#{2,4} (.+?)\s*$", TEXT))
    problems = []
    for path in sorted((ROOT / "tests" / "integration").glob("test_*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        m = re.search(r"(?m)^README: (.+)$", doc)
        if not m:
            problems.append("%s: no README: line in its docstring" % path.name)
            continue
        named = re.findall(r'"([^"]+)"', m.group(1))
        if not named:
            problems.append("%s: README: names no heading" % path.name)
        problems += ["%s: no README heading %r" % (path.name, h) for h in named
                     if h not in headings]
    assert not problems, "\n".join(problems)


def test_admin_table_matches_the_openapi_document():
    spec = yaml.safe_load((ROOT / "src" / "admin_openapi.yaml").read_text())
    documented = {(p, m.upper()) for p, item in spec["paths"].items() for m in item
                  if m in ("get", "post", "put", "patch", "delete")}
    table = re.search(r"^## Admin API\n.*?^\| call \| does \|\n\|---\|---\|\n(.*?)\n\n",
                      TEXT, re.M | re.S).group(1)
    listed = set()
    for method, path in re.findall(r"^\| `(\w+) ([^`]+)`", table, re.M):
        path = re.sub(r"<(\w+)>", r"{\1}", path)
        if path.endswith("[/{collection}]"):
            base = path[:-len("[/{collection}]")]
            listed |= {(base, method), (base + "/{collection}", method)}
        else:
            listed.add((path, method))
    assert listed == documented, "README only: %s; OpenAPI only: %s" % (
        sorted(listed - documented), sorted(documented - listed))


def tutorial_provision():
    found = [b for b in LUA if b.startswith("-- orders.lua:")]
    assert len(found) == 1, "the tutorial's orders.lua block is missing"
    return found[0]


def test_tutorial_answers_what_the_readme_shows(h1mock):
    srv = h1mock(None)
    source = tutorial_provision()
    r = http("POST", srv.admin_url + "/app/v1/provision/orders", data=source)
    assert r.status_code == 201
    assert "# " + r.text.strip() in TEXT, r.text
    r = http("POST", srv.url + "/orders", headers={"Content-Type": "application/json"},
             data='{"item":"book","qty":2}')
    assert r.status_code == 201 and r.headers["Location"] == "/orders/1", r.headers
    assert r.headers["Access-Control-Allow-Origin"] == "*"  # its app.cors("*")
    assert "# " + r.text.strip() in TEXT, r.text
    assert http("GET", srv.url + "/orders/1").text == r.text
    r = http("GET", srv.url + "/orders/7")
    assert r.status_code == 404 and "no order 7" in r.text
    r = http("PUT", srv.url + "/orders/1")
    assert r.status_code == 405 and '"Allow: %s"' % r.headers["Allow"] in TEXT, r.headers
    broken = source.replace('create_order, {"POST"}', 'create_ordr, {"POST"}')
    assert broken != source
    r = http("POST", srv.admin_url + "/app/v1/provision/orders", data=broken)
    assert r.status_code == 400
    assert "# " + r.text.strip() in TEXT, r.text
    assert http("GET", srv.url + "/orders/1").status_code == 200
    assert (srv.provisions / "orders.lua").read_text() == source


# A block that requires the module of another block cannot be served
# alone; --check covers it (test_every_lua_example_loads).
@pytest.mark.parametrize("i", [i for i, b in enumerate(LUA)
                               if "function registerRules" in b and "require(" not in b])
def test_lua_examples_serve_without_errors(h1mock, i):
    """Each complete example, served: its rules answer GET without a 500."""
    text = LUA[i]
    srv = h1mock(text)
    # A provision that fails to load leaves the default serving 404s: make
    # sure it was this block that answered.
    srv.wait_log(r"provision 'initial' loaded: \d+ rules?")
    assert "failed to load" not in srv.log, srv.log
    for rule in re.findall(r'(?:add_url_rule|app\.get|app\.route)\(\s*"([^"<]+)"', text):
        r = http("GET", srv.url + rule)
        assert r.status_code != 500, "%s: GET %s: %s\n%s" % (
            lua_block_id(i, text), rule, r.text[:200], srv.log[-2000:])
