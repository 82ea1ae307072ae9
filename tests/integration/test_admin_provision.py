"""The admin provision API: POST / GET / DELETE /app/v1/provision/<name>, the list
GET /app/v1/provision, names, sizes, read-only provisions directories and the
state dir.

README: "Provisions".
"""

import calendar
import json
import os
import re
import socket
import subprocess
import threading
import time

import pytest

from conftest import (BIN, body_of, header, http, log_caught_up, read_response, wait_until,
                      watcher_quiet)

API = "/app/v1/provision"
TS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|\+00:00)"
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|\+00:00)$")
ENTRY_KEYS = {"name", "active", "file", "loaded_at", "rules", "error"}
NAME_RULE = "use 1 to 128 letters, digits, '.', '_' or '-'"


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def prov(text, rules=1):
    """A provision whose "/" answers `text`, with `rules` rules in all."""
    assert re.match(r"^[A-Za-z0-9 _.-]*$", text)
    extra = "".join('  app.get("/extra%d", function() return "e%d" end)\n' % (i, i)
                    for i in range(rules - 1))
    return ('function registerRules()\n'
            '  app.get("/", function() return "%s" end)\n' % text + extra + 'end\n')




def post(srv, name, source, **kw):
    data = source.encode() if isinstance(source, str) else source
    return http("POST", srv.admin_url + API + "/" + name, data=data, **kw)


def listing(srv):
    r = http("GET", srv.admin_url + API)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    assert r.content.endswith(b"\n"), r.content
    doc = r.json()
    assert set(doc) == {"active", "provisions"}, doc
    for e in doc["provisions"]:
        assert set(e) == ENTRY_KEYS, e
    return doc


def entry(doc, name):
    found = [e for e in doc["provisions"] if e["name"] == name]
    assert len(found) == 1, "%d entries named %r in %r" % (len(found), name, doc)
    return found[0]


def assert_result(r, status, message):
    """The admin API's {"result": message} answer: JSON, trailing newline."""
    assert r.status_code == status, "expected %d, got %d: %r" % (status, r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    assert r.content.endswith(b"}\n"), r.content
    assert json.loads(r.content) == {"result": message}, r.content


def assert_failed_at(r, file, line, *needles):
    assert r.status_code == 400, (r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    assert r.content.endswith(b"}\n"), r.content
    doc = json.loads(r.content)
    assert set(doc) == {"result"}, doc
    prefix = "failed: %s:%d: " % (file, line)
    assert doc["result"].startswith(prefix), "%r does not start with %r" % (doc["result"], prefix)
    for n in needles:
        assert n in doc["result"], "%r not in %r" % (n, doc["result"])


def success_loaded(name):
    return "success: basename file '%s' has been loaded" % name


def load_lines(srv, name):
    log_caught_up(srv)
    return re.findall(r"^%s INFO provision '%s' loaded: (\d+) rules? in [0-9.]+ ms$"
                      % (TS, re.escape(name)), srv.log, re.M)


def fail_lines(srv, name):
    log_caught_up(srv)
    return re.findall(r"^%s ERROR provision '%s' failed to load: (.*)$"
                      % (TS, re.escape(name)), srv.log, re.M)


def admin_raw(srv, data, timeout=10.0):
    """Sends raw bytes to the admin port; returns (status, headers, body, closed)."""
    s = socket.create_connection(("127.0.0.1", srv.admin_port), timeout=timeout)
    try:
        s.sendall(data)
        st, h, b = read_response(s, timeout=timeout)
        closed = False
        s.settimeout(2.0)
        try:
            closed = s.recv(1) == b""
        except (socket.timeout, ConnectionResetError):
            closed = False
        return st, h, b, closed
    finally:
        s.close()


def raw_request(method, target, body=b"", extra=()):
    lines = ["%s %s HTTP/1.1" % (method, target), "Host: admin.test", "Connection: close"]
    lines += list(extra)
    if body or method in ("POST", "PUT"):
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def dir_state(path):
    """{name: bytes} of the regular files in a directory (symlinks followed)."""
    out = {}
    for n in sorted(os.listdir(path)):
        p = os.path.join(path, n)
        if os.path.isfile(p):
            with open(p, "rb") as f:
                out[n] = f.read()
        else:
            out[n] = None
    return out


def same_path(a, b):
    return a is not None and os.path.realpath(a) == os.path.realpath(str(b))


# --------------------------------------------------------------------------
# POST: valid
# --------------------------------------------------------------------------

def test_post_valid_201_exact_json_served_at_once_and_stored(h1mock):
    srv = h1mock(prov("initial"))
    assert body_of(srv) == "initial"
    src = prov("foo posted", rules=3) + "-- trailing comment \xe9\n"
    r = post(srv, "foo", src)
    assert r.status_code == 201, r.text
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    assert r.content == b'{"result":"success: basename file \'foo\' has been loaded"}\n'
    # the very next request, sent after the 201, is served by it (no sleep)
    assert body_of(srv) == "foo posted"
    assert body_of(srv, "/extra1") == "e1"
    # stored as foo.lua in the provisions dir, byte for byte
    stored = srv.provisions / "foo.lua"
    assert stored.read_bytes() == src.encode()
    assert sorted(os.listdir(srv.provisions)) == ["foo.lua", "initial.lua"], \
        "temp files left behind: %r" % os.listdir(srv.provisions)
    assert load_lines(srv, "foo") == ["3"], srv.log


@pytest.mark.parametrize("given", ["bar", "bar.lua"])
def test_post_name_with_and_without_lua_suffix(h1mock, given):
    srv = h1mock(prov("initial"))
    r = post(srv, given, prov("bar one"))
    assert_result(r, 201, success_loaded("bar"))
    assert body_of(srv) == "bar one"
    assert (srv.provisions / "bar.lua").read_text() == prov("bar one")
    assert not (srv.provisions / "bar.lua.lua").exists()
    # the other spelling is the same provision: it overwrites bar.lua
    other = "bar" if given == "bar.lua" else "bar.lua"
    r = post(srv, other, prov("bar two"))
    assert_result(r, 201, success_loaded("bar"))
    assert body_of(srv) == "bar two"
    assert (srv.provisions / "bar.lua").read_text() == prov("bar two")
    assert sorted(os.listdir(srv.provisions)) == ["bar.lua", "initial.lua"]
    doc = listing(srv)
    assert doc["active"] == "bar"
    assert [e["name"] for e in doc["provisions"]].count("bar") == 1, doc


@pytest.mark.parametrize("ctype", [None, "text/plain", "application/json",
                                   "application/x-www-form-urlencoded", "text/x-lua"])
def test_post_any_content_type(h1mock, ctype):
    srv = h1mock(prov("initial"))
    src = prov("typed")
    headers = {"Content-Type": ctype} if ctype else {}
    r = post(srv, "typed", src, headers=headers)
    assert_result(r, 201, success_loaded("typed"))
    assert body_of(srv) == "typed"
    assert (srv.provisions / "typed.lua").read_bytes() == src.encode()


def test_post_128_char_name_is_valid(h1mock):
    srv = h1mock(prov("initial"))
    name = "n" * 120 + "-_.x1234"[:8]
    assert len(name) == 128
    r = post(srv, name + ".lua", prov("long"))
    assert_result(r, 201, success_loaded(name))
    assert (srv.provisions / (name + ".lua")).read_text() == prov("long")
    assert body_of(srv) == "long"


# --------------------------------------------------------------------------
# POST: invalid provisions
# --------------------------------------------------------------------------

BAD = {
    # case: (source, line, needles)
    "syntax": ('function registerRules()\n'
               '  app.get("/", function() return "x" end)\n'
               '  local x = = 1\n'
               'end\n', 3, ()),
    "runtime": ('function registerRules()\n'
                '  app.get("/", function() return "x" end)\n'
                '  error("boom-in-register")\n'
                'end\n', 3, ("boom-in-register",)),
    "unknown_global": ('function registerRules()\n'
                       '  app.get("/", function() return "x" end)\n'
                       '  app.get("/u", no_such_view_fn)\n'
                       'end\n', 3, ("unknown global 'no_such_view_fn'",)),
    "bad_rule": ('function registerRules()\n'
                 '  app.get("/", function() return "x" end)\n'
                 '  app.add_url_rule("/a/<int:x", "e", function() return "y" end)\n'
                 'end\n', 3, ("/a/<int:x",)),
    "loop_in_register": ('function registerRules()\n'
                         '  app.get("/", function() return "x" end)\n'
                         '  while true do end\n'
                         'end\n', 3, ("instruction budget",)),
    "loop_at_load": ('local n = 0\n'
                     'while true do n = n + 1 end\n'
                     'function registerRules() end\n', 2, ("instruction budget",)),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_post_invalid_400_nothing_stored_old_stays(h1mock, case):
    src, line, needles = BAD[case]
    old_src = prov("old file")
    srv = h1mock(prov("initial"), files={"old.lua": old_src})
    assert body_of(srv) == "initial"
    before = dir_state(srv.provisions)

    # a new name: no file appears
    t0 = time.monotonic()
    r = post(srv, "newbad", src, timeout=30)
    assert_failed_at(r, "newbad.lua", line, *needles)
    assert time.monotonic() - t0 < 20
    assert dir_state(srv.provisions) == before, "something was stored"
    assert body_of(srv) == "initial"

    # an existing name (given with .lua): the file keeps its content
    r = post(srv, "old.lua", src, timeout=30)
    assert_failed_at(r, "old.lua", line, *needles)
    assert dir_state(srv.provisions) == before, "something was stored"
    assert (srv.provisions / "old.lua").read_text() == old_src
    assert body_of(srv) == "initial"

    # the previous provision, posted, still serves after a failed POST of its own name
    assert_result(post(srv, "cur", prov("cur good")), 201, success_loaded("cur"))
    r = post(srv, "cur", src, timeout=30)
    assert_failed_at(r, "cur.lua", line, *needles)
    assert body_of(srv) == "cur good"
    assert (srv.provisions / "cur.lua").read_text() == prov("cur good")
    doc = listing(srv)
    assert doc["active"] == "cur"
    # each failed load is one ERROR line naming file:line
    for name in ("newbad", "old", "cur"):
        lines = fail_lines(srv, name)
        assert len(lines) == 1, (name, srv.log)
        assert re.match(r"(?:\S*/)?%s\.lua:%d: " % (name, line), lines[0]), lines[0]


def test_post_empty_body_is_invalid_or_loads_without_rules(h1mock):
    """An empty body is Lua without registerRules: whatever the answer, it is
    consistent (201 and stored, or 400 and nothing stored)."""
    srv = h1mock(prov("initial"))
    before = dir_state(srv.provisions)
    r = post(srv, "empty", b"")
    assert r.status_code in (201, 400), r.text
    if r.status_code == 400:
        assert json.loads(r.content)["result"].startswith("failed: empty.lua:"), r.text
        assert dir_state(srv.provisions) == before
        assert body_of(srv) == "initial"
    else:
        assert (srv.provisions / "empty.lua").read_bytes() == b""


# --------------------------------------------------------------------------
# names
# --------------------------------------------------------------------------

BAD_NAMES = [
    # (raw path segment, the name as decoded in the message)
    ("..", ".."),
    ("a..b", "a..b"),
    ("..lua", "..lua"),
    (".hidden", ".hidden"),
    (".hidden.lua", ".hidden.lua"),
    ("x" * 129, "x" * 129),
    ("x" * 129 + ".lua", "x" * 129 + ".lua"),
    ("a%20b", "a b"),
    ("a%2Fb", "a/b"),
    ("a%2fb.lua", "a/b.lua"),
    ("..%2Fetc%2Fpasswd", "../etc/passwd"),
    ("a%5Cb", "a\\b"),
    ("caf%C3%A9", "caf\u00e9"),
    ("", ""),
    (".lua", ".lua"),
]


BAD_NAME_IDS = ["dotdot", "a..b", "..lua", "hidden", "hidden.lua", "129", "129.lua", "space",
                "slash", "slash.lua", "traversal", "backslash", "utf8", "empty", "only-suffix"]


# GET with an empty name is left out: GET /app/v1/provision/ may be read as
# the list (GET /app/v1/provision), which is no bad name.
@pytest.mark.parametrize("method,raw,decoded", [
    pytest.param(m, raw, decoded, id="%s-%s" % (m, i))
    for m in ["POST", "GET", "DELETE"]
    for (raw, decoded), i in zip(BAD_NAMES, BAD_NAME_IDS)
    if not (raw == "" and m == "GET")])
def test_bad_names_400(h1mock, raw, decoded, method):
    srv = h1mock(prov("initial"))
    before = dir_state(srv.provisions)
    parent_before = sorted(os.listdir(srv.provisions.parent))
    body = prov("evil").encode() if method == "POST" else b""
    st, h, b, _ = admin_raw(srv, raw_request(method, API + "/" + raw, body))
    assert st == 400, "%s %r: %d %r" % (method, raw, st, b)
    assert (header(h, "content-type") or "").startswith("application/json"), h
    assert b.endswith(b"\n"), b
    if decoded in ("", ".lua"):
        # the message shape; how an empty or NUL name is echoed is not pinned down
        msg = json.loads(b)["result"]
        assert msg.startswith("failed: invalid provision name '"), msg
        assert msg.endswith("': " + NAME_RULE), msg
    else:
        assert json.loads(b) == {
            "result": "failed: invalid provision name '%s': %s" % (decoded, NAME_RULE)}, b
    assert dir_state(srv.provisions) == before
    assert sorted(os.listdir(srv.provisions.parent)) == parent_before
    assert body_of(srv) == "initial"
    assert listing(srv)["active"] == "initial"


# --------------------------------------------------------------------------
# sizes
# --------------------------------------------------------------------------

def padded(text, size):
    src = prov(text)
    pad = size - len(src.encode()) - 3
    assert pad >= 0
    out = src + "--" + "p" * pad + "\n"
    assert len(out.encode()) == size
    return out.encode()


def test_oversize_body_413_nothing_stored(h1mock):
    srv = h1mock(prov("initial"), "--max-provision-bytes", "1k")
    before = dir_state(srv.provisions)
    st, h, b, closed = admin_raw(srv, raw_request("POST", API + "/big", padded("big", 1025))
                                 .replace(b"Connection: close\r\n", b""))
    assert st == 413, (st, b)
    assert header(h, "connection") == "close", h
    assert closed, "connection not closed after the 413"
    assert dir_state(srv.provisions) == before
    assert body_of(srv) == "initial"
    assert load_lines(srv, "big") == [] and fail_lines(srv, "big") == []
    # chunked, summed over chunks
    big = padded("big", 3000)
    chunked = b"".join(b"%x\r\n" % len(big[i:i + 500]) + big[i:i + 500] + b"\r\n"
                       for i in range(0, len(big), 500)) + b"0\r\n\r\n"
    st, h, b, closed = admin_raw(
        srv, b"POST " + API.encode() + b"/big HTTP/1.1\r\nHost: a\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + chunked)
    assert st == 413, (st, b)
    assert closed
    assert dir_state(srv.provisions) == before
    assert body_of(srv) == "initial"
    # exactly at the limit is accepted
    r = post(srv, "fits", padded("fits", 1024))
    assert_result(r, 201, success_loaded("fits"))
    assert body_of(srv) == "fits"


def test_oversize_default_limit_is_1m(h1mock):
    srv = h1mock(prov("initial"))
    before = dir_state(srv.provisions)
    # the declared length is enough: the head alone gets the 413
    st, _, b, closed = admin_raw(srv, raw_request("POST", API + "/huge").replace(
        b"Content-Length: 0", b"Content-Length: %d" % ((1 << 20) + 1)))
    assert st == 413, (st, b)
    assert dir_state(srv.provisions) == before
    r = post(srv, "justfits", padded("justfits", 1 << 20), timeout=30)
    assert_result(r, 201, success_loaded("justfits"))


def test_max_provision_bytes_from_env(h1mock):
    srv = h1mock(prov("initial"), env={"H1MOCK_MAX_PROVISION_BYTES": "1k"})
    st, _, b, _ = admin_raw(srv, raw_request("POST", API + "/big", padded("big", 1025)))
    assert st == 413, (st, b)
    assert not (srv.provisions / "big.lua").exists()


# --------------------------------------------------------------------------
# GET /app/v1/provision/<name>
# --------------------------------------------------------------------------

def test_get_reactivates_stored_provision(h1mock):
    srv = h1mock(prov("initial"))
    assert_result(post(srv, "a", prov("aaa")), 201, success_loaded("a"))
    assert_result(post(srv, "b", prov("bbb")), 201, success_loaded("b"))
    assert body_of(srv) == "bbb"
    r = http("GET", srv.admin_url + API + "/a")
    assert r.status_code == 200
    assert r.content == b'{"result":"success: basename file \'a\' has been loaded"}\n'
    assert body_of(srv) == "aaa"
    assert listing(srv)["active"] == "a"
    assert_result(http("GET", srv.admin_url + API + "/initial.lua"), 200,
                  success_loaded("initial"))
    assert body_of(srv) == "initial"
    assert_result(http("GET", srv.admin_url + API + "/b"), 200, success_loaded("b"))
    assert body_of(srv) == "bbb"
    assert listing(srv)["active"] == "b"
    # each activation is a load: one line each
    assert len(load_lines(srv, "a")) == 2 and len(load_lines(srv, "b")) == 2, srv.log
    assert len(load_lines(srv, "initial")) == 2, srv.log


def test_get_reads_file_as_it_is_now(h1mock):
    """GET loads the stored file: a file written by someone else (after the
    watcher is done with it) is what gets activated."""
    srv = h1mock(prov("initial"), files={"x.lua": prov("x old")})
    assert body_of(srv) == "initial"  # started: initial loaded, directory watched
    (srv.provisions / "x.lua").write_text(prov("x new"))
    wait_until(lambda: body_of(srv) == "x new", what="watcher loads x.lua")
    assert_result(http("GET", srv.admin_url + API + "/initial"), 200, success_loaded("initial"))
    assert body_of(srv) == "initial"
    assert_result(http("GET", srv.admin_url + API + "/x"), 200, success_loaded("x"))
    assert body_of(srv) == "x new"


def test_get_unknown_404_nothing_changes(h1mock):
    srv = h1mock(prov("initial"))
    assert_result(post(srv, "a", prov("aaa")), 201, success_loaded("a"))
    before_list = listing(srv)
    before = dir_state(srv.provisions)
    r = http("GET", srv.admin_url + API + "/nope")
    assert r.status_code == 404
    assert r.content == b'{"result":"failed: no provision \'nope\'"}\n'
    assert_result(http("GET", srv.admin_url + API + "/nope.lua"), 404, "failed: no provision 'nope'")
    assert body_of(srv) == "aaa"
    assert dir_state(srv.provisions) == before
    after = listing(srv)
    assert after["active"] == "a"
    assert [e["name"] for e in after["provisions"]] == [e["name"] for e in before_list["provisions"]]


BROKEN = ('function registerRules()\n'
          '  app.get("/", function() return "broken" end)\n'
          '  local t = nil\n'
          '  return t.field\n'
          'end\n')


def test_get_stored_broken_file_400_active_stays(h1mock):
    srv = h1mock(prov("initial"))
    assert_result(post(srv, "good", prov("good")), 201, success_loaded("good"))
    (srv.provisions / "broken.lua").write_text(BROKEN)
    # the watcher may try it first; it fails and the active provision stays
    srv.wait_log(r"ERROR provision 'broken' failed to load: (?:\S*/)?broken\.lua:4: ", timeout=5)
    assert body_of(srv) == "good"
    r = http("GET", srv.admin_url + API + "/broken")
    assert_failed_at(r, "broken.lua", 4, "nil")
    assert body_of(srv) == "good"
    doc = listing(srv)
    assert doc["active"] == "good"
    e = entry(doc, "broken")
    assert e["active"] is False
    assert same_path(e["file"], srv.provisions / "broken.lua"), e
    assert e["error"] is not None and re.search(r"(?:^|[\s/])broken\.lua:4: ", e["error"]), e
    assert e["loaded_at"] is None and e["rules"] is None, e
    assert (srv.provisions / "broken.lua").read_text() == BROKEN
    assert len(fail_lines(srv, "broken")) == 2, srv.log  # the watcher's and the GET's


# --------------------------------------------------------------------------
# the list
# --------------------------------------------------------------------------

def test_list_default_when_nothing_loaded(h1mock):
    srv = h1mock(None)
    doc = listing(srv)
    assert doc["active"] == "(default)", doc
    assert len(doc["provisions"]) == 1, doc
    e = doc["provisions"][0]
    assert e["name"] == "(default)" and e["active"] is True and e["file"] is None, e
    assert e["error"] is None, e
    assert e["rules"] >= 4, e  # /api (several), /health, /: what the default serves


def test_list_fields_sorting_and_errors(h1mock):
    srv = h1mock(prov("initial", rules=2), files={"zeta.lua": prov("zeta", rules=4),
                                                 "Alpha.lua": prov("Alpha", rules=1),
                                                 "notes.txt": "not a provision\n"})
    t_start = time.time()
    assert_result(post(srv, "mid-1", prov("mid", rules=3)), 201, success_loaded("mid-1"))
    doc = listing(srv)
    names = [e["name"] for e in doc["provisions"]]
    assert names == sorted(names), names
    assert set(names) >= {"Alpha", "initial", "mid-1", "zeta"}, names
    assert "notes" not in names and "notes.txt" not in names
    assert doc["active"] == "mid-1"
    assert [e["name"] for e in doc["provisions"] if e["active"]] == ["mid-1"], doc

    mid = entry(doc, "mid-1")
    assert mid["rules"] == 3 and mid["error"] is None, mid
    assert same_path(mid["file"], srv.provisions / "mid-1.lua"), mid
    assert RFC3339_UTC.match(mid["loaded_at"]), mid
    ini = entry(doc, "initial")
    assert ini["active"] is False and ini["rules"] == 2 and ini["error"] is None, ini
    assert same_path(ini["file"], srv.provisions / "initial.lua"), ini
    assert RFC3339_UTC.match(ini["loaded_at"]), ini
    for n in ("zeta", "Alpha"):  # stored, never loaded
        e = entry(doc, n)
        assert e["active"] is False and e["loaded_at"] is None and e["rules"] is None, e
        assert e["error"] is None and same_path(e["file"], srv.provisions / (n + ".lua")), e
    # loaded_at is now, in UTC
    got = calendar.timegm(time.strptime(mid["loaded_at"][:19], "%Y-%m-%dT%H:%M:%S"))
    assert abs(got - t_start) < 30, (mid["loaded_at"], t_start)

    # a failed load of a loaded provision: error set, loaded_at and rules of the last success
    t_loaded = mid["loaded_at"]
    assert post(srv, "mid-1", BAD["runtime"][0]).status_code == 400
    e = entry(listing(srv), "mid-1")
    assert e["error"] is not None and "mid-1.lua:3: " in e["error"], e
    assert "boom-in-register" in e["error"], e
    assert e["rules"] == 3 and e["loaded_at"] == t_loaded and e["active"] is True, e

    # a later successful load clears it and updates rules and loaded_at
    time.sleep(1.1)  # loaded_at has at least second resolution
    assert_result(post(srv, "mid-1", prov("mid", rules=5)), 201, success_loaded("mid-1"))
    e = entry(listing(srv), "mid-1")
    assert e["error"] is None and e["rules"] == 5, e
    assert e["loaded_at"] > t_loaded, (e["loaded_at"], t_loaded)

    # re-activating a stored one sets its fields
    assert_result(http("GET", srv.admin_url + API + "/zeta"), 200, success_loaded("zeta"))
    doc = listing(srv)
    z = entry(doc, "zeta")
    assert doc["active"] == "zeta" and z["active"] is True and z["rules"] == 4, doc
    assert RFC3339_UTC.match(z["loaded_at"]), z
    assert entry(doc, "mid-1")["active"] is False


def test_list_broken_initial_then_fixed(h1mock):
    srv = h1mock(BAD["unknown_global"][0])
    srv.wait_log(r"ERROR provision 'initial' failed to load: (?:\S*/)?initial\.lua:3: ", 5)
    doc = listing(srv)
    assert doc["active"] == "(default)", doc
    names = [e["name"] for e in doc["provisions"]]
    assert names == sorted(names) and names == ["(default)", "initial"], doc
    d = entry(doc, "(default)")
    assert d["active"] is True and d["file"] is None, d
    e = entry(doc, "initial")
    assert e["active"] is False and e["loaded_at"] is None and e["rules"] is None, e
    assert "initial.lua:3: " in e["error"] and "unknown global 'no_such_view_fn'" in e["error"], e
    # fixed by a POST: error cleared
    assert_result(post(srv, "initial", prov("fixed", rules=2)), 201, success_loaded("initial"))
    doc = listing(srv)
    assert doc["active"] == "initial"
    e = entry(doc, "initial")
    assert e["active"] is True and e["error"] is None and e["rules"] == 2, e
    assert RFC3339_UTC.match(e["loaded_at"]), e
    assert all(not x["active"] for x in doc["provisions"] if x["name"] != "initial"), doc


def test_list_other_methods_405(h1mock):
    srv = h1mock(prov("initial"))
    r = http("PUT", srv.admin_url + API, data=b"x")
    assert r.status_code == 405
    assert "GET" in [m.strip() for m in r.headers["Allow"].split(",")], r.headers
    r = http("DELETE", srv.admin_url + API)
    assert r.status_code == 405 and "Allow" in r.headers
    assert body_of(srv) == "initial"


# --------------------------------------------------------------------------
# DELETE
# --------------------------------------------------------------------------

def test_delete(h1mock):
    srv = h1mock(prov("initial"))
    assert_result(post(srv, "a", prov("aaa")), 201, success_loaded("a"))
    assert_result(post(srv, "b", prov("bbb")), 201, success_loaded("b"))
    r = http("DELETE", srv.admin_url + API + "/a")
    assert r.status_code == 200
    assert r.content == b'{"result":"success: provision \'a\' deleted"}\n'
    assert not (srv.provisions / "a.lua").exists()
    assert body_of(srv) == "bbb"
    # the active one: 409, file kept
    r = http("DELETE", srv.admin_url + API + "/b")
    assert r.status_code == 409
    assert r.content == b'{"result":"failed: provision \'b\' is active"}\n'
    assert (srv.provisions / "b.lua").read_text() == prov("bbb")
    assert_result(http("DELETE", srv.admin_url + API + "/b.lua"), 409,
                  "failed: provision 'b' is active")
    # unknown: 404
    r = http("DELETE", srv.admin_url + API + "/nope")
    assert r.status_code == 404
    assert r.content == b'{"result":"failed: no provision \'nope\'"}\n'
    # gone: 404 the second time; GET of it 404
    assert_result(http("DELETE", srv.admin_url + API + "/a"), 404, "failed: no provision 'a'")
    assert_result(http("GET", srv.admin_url + API + "/a"), 404, "failed: no provision 'a'")
    # a stored file that is not active, given with .lua
    assert_result(http("DELETE", srv.admin_url + API + "/initial.lua"), 200,
                  "success: provision 'initial' deleted")
    assert not (srv.provisions / "initial.lua").exists()
    watcher_quiet(srv)
    assert body_of(srv) == "bbb"
    doc = listing(srv)
    assert doc["active"] == "b"
    # still listed as loaded since start, but with no file
    for n in ("a", "initial"):
        assert entry(doc, n)["file"] is None, doc
    assert sorted(os.listdir(srv.provisions)) == ["b.lua"]


# --------------------------------------------------------------------------
# other methods, healthz
# --------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_other_methods_405_with_allow(h1mock, method):
    srv = h1mock(prov("initial"))
    before = dir_state(srv.provisions)
    r = http(method, srv.admin_url + API + "/x", data=prov("x").encode())
    assert r.status_code == 405, r.text
    assert "Allow" in r.headers, r.headers
    allowed = {m.strip() for m in r.headers["Allow"].split(",")}
    assert {"GET", "POST", "DELETE"} <= allowed, allowed
    assert method not in allowed
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    assert dir_state(srv.provisions) == before
    assert body_of(srv) == "initial"


def test_healthz_still_200(h1mock):
    srv = h1mock(prov("initial"))
    assert_result(post(srv, "a", prov("aaa")), 201, success_loaded("a"))
    r = http("GET", srv.admin_url + "/healthz")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == {"status": "ok"}


# --------------------------------------------------------------------------
# a writable provisions dir: posts go there, not to the state dir
# --------------------------------------------------------------------------

def test_writable_dir_posts_stored_in_provisions_dir(h1mock, tmp_path):
    state = tmp_path / "state-w"
    srv = h1mock(prov("initial"), "--state-dir", str(state))
    assert_result(post(srv, "w", prov("www")), 201, success_loaded("w"))
    assert (srv.provisions / "w.lua").read_text() == prov("www")
    assert not (state / "w.lua").exists()
    assert "is read-only" not in srv.log


# --------------------------------------------------------------------------
# read-only provisions dir: the state dir
# --------------------------------------------------------------------------

def plain_dir(base):
    d = base / "ro-provisions"
    d.mkdir()
    (d / "initial.lua").write_text(prov("ro initial"))
    (d / "other.lua").write_text(prov("ro other"))
    return d


def configmap_dir(base):
    """A ConfigMap volume as the kubelet lays it out."""
    d = base / "cm-provisions"
    d.mkdir()
    ts = d / "..2026_01_01_v1"
    ts.mkdir()
    (ts / "initial.lua").write_text(prov("ro initial"))
    (ts / "other.lua").write_text(prov("ro other"))
    os.symlink("..2026_01_01_v1", d / "..data")
    os.symlink("..data/initial.lua", d / "initial.lua")
    os.symlink("..data/other.lua", d / "other.lua")
    return d


@pytest.mark.parametrize("layout", ["plain", "configmap"])
def test_read_only_dir_uses_state_dir(h1mock, tmp_path, make_readonly, layout):
    pdir = (plain_dir if layout == "plain" else configmap_dir)(tmp_path)
    make_readonly(pdir)
    before = dir_state(pdir)
    state = tmp_path / "state"  # created if missing
    srv = h1mock(None, "--provisions", str(pdir), "--state-dir", str(state))
    srv.provisions = pdir
    m = srv.wait_log(r"^%s INFO provisions directory (.+) is read-only: posted provisions are "
                     r"stored in (.+)$" % TS, timeout=5)
    assert same_path(m.group(1), pdir) and m.group(1).rstrip("/") == str(pdir), m.group(0)
    assert m.group(2).rstrip("/") == str(state), m.group(0)
    assert body_of(srv) == "ro initial"

    # POST: stored in the state dir, byte for byte, and served
    src = prov("posted")
    assert_result(post(srv, "posted", src), 201, success_loaded("posted"))
    assert body_of(srv) == "posted"
    assert (state / "posted.lua").read_bytes() == src.encode()
    assert dir_state(pdir) == before
    assert sorted(os.listdir(state)) == ["posted.lua"], os.listdir(state)

    # a failed POST stores nothing there either
    assert post(srv, "bad", BAD["syntax"][0]).status_code == 400
    assert sorted(os.listdir(state)) == ["posted.lua"]

    doc = listing(srv)
    assert same_path(entry(doc, "posted")["file"], state / "posted.lua"), doc
    assert same_path(entry(doc, "initial")["file"], pdir / "initial.lua"), doc
    assert same_path(entry(doc, "other")["file"], pdir / "other.lua"), doc

    # GET finds files in the read-only dir
    assert_result(http("GET", srv.admin_url + API + "/other"), 200, success_loaded("other"))
    assert body_of(srv) == "ro other"

    # a POST of a name that exists in the read-only dir goes to the state dir; GET prefers it
    assert_result(post(srv, "initial", prov("initial from state")), 201,
                  success_loaded("initial"))
    assert body_of(srv) == "initial from state"
    assert_result(http("GET", srv.admin_url + API + "/other"), 200, success_loaded("other"))
    assert_result(http("GET", srv.admin_url + API + "/initial"), 200, success_loaded("initial"))
    assert body_of(srv) == "initial from state"
    assert same_path(entry(listing(srv), "initial")["file"], state / "initial.lua")
    assert dir_state(pdir) == before

    # DELETE: a file in the read-only dir -> 409; one in the state dir -> 200
    assert_result(http("DELETE", srv.admin_url + API + "/other"), 409,
                  "failed: provision 'other' is in a read-only directory")
    assert_result(http("DELETE", srv.admin_url + API + "/posted"), 200,
                  "success: provision 'posted' deleted")
    assert not (state / "posted.lua").exists()
    assert dir_state(pdir) == before
    assert http("GET", srv.admin_url + "/healthz").status_code == 200


def test_state_dir_from_env(h1mock, tmp_path, make_readonly):
    pdir = plain_dir(tmp_path)
    make_readonly(pdir)
    state = tmp_path / "env-state"
    srv = h1mock(None, "--provisions", str(pdir), env={"H1MOCK_STATE_DIR": str(state)})
    srv.wait_log(r"INFO provisions directory .* is read-only: posted provisions are stored in "
                 + re.escape(str(state)), timeout=5)
    assert_result(post(srv, "e", prov("eee")), 201, success_loaded("e"))
    assert (state / "e.lua").read_text() == prov("eee")


def test_default_state_dir_named_at_start(h1mock, tmp_path, make_readonly):
    pdir = plain_dir(tmp_path)
    make_readonly(pdir)
    srv = h1mock(None, "--provisions", str(pdir))
    srv.wait_log(r"^%s INFO provisions directory %s is read-only: posted provisions are stored "
                 r"in /tmp/h1mock-state/?$" % (TS, re.escape(str(pdir))), timeout=5)
    assert body_of(srv) == "ro initial"


@pytest.mark.parametrize("args,env,source", [
    (["--max-provision-bytes", "lots"], {}, "--max-provision-bytes"),
    (["--max-provision-bytes=-1"], {}, "--max-provision-bytes"),
    ([], {"H1MOCK_MAX_PROVISION_BYTES": "lots"}, "H1MOCK_MAX_PROVISION_BYTES"),
])
def test_max_provision_bytes_usage_error(tmp_path, args, env, source):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("H1MOCK_")}
    full_env.update(env)
    p = subprocess.run([BIN, "--port", "0", "--admin-port", "0", "--address", "127.0.0.1",
                        "--provisions", str(tmp_path), *args], stdin=subprocess.DEVNULL,
                       capture_output=True, env=full_env, timeout=10)
    assert p.returncode == 2, p
    err = p.stderr.decode()
    assert err.startswith("h1mock: ") and source in err, err
    assert len(err.strip().splitlines()) == 1, err


def test_post_whose_client_leaves_is_still_stored_and_served(h1mock):
    # The provision is written on the threadpool; the connection that posted
    # it may be gone by then: the server must neither crash nor lose it.
    srv = h1mock('function registerRules() app.get("/", function() return "v1" end) end\n')
    body = b'function registerRules() app.get("/", function() return "gone" end) end\n'
    for i in range(20):
        s = socket.create_connection(("127.0.0.1", srv.admin_port), timeout=5)
        s.sendall(b"POST /app/v1/provision/left%d HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Length: %d\r\n\r\n" % (i, len(body)) + body)
        s.close()
    wait_until((srv.provisions / "left19.lua").exists, what="left19.lua stored")
    assert (srv.provisions / "left19.lua").read_bytes() == body
    srv.wait_log(r"provision 'left19' loaded")
    assert http("GET", srv.url + "/").text == "gone"
    assert http("GET", srv.admin_url + "/healthz").status_code == 200


def test_posts_of_one_name_at_once_are_stored_in_turn(h1mock):
    """Two clients post the same name at the same moment: both are stored
    and served in the order they were taken, so the provision served at the
    end is the one left on disk (a restart serves what traffic saw)."""
    srv = h1mock(None)
    pad = "-- " + "x" * 200000 + "\n"  # big enough that the writes overlap
    texts = {k: pad + 'function registerRules() app.get("/who", function() return "%s" end) end\n'
             % k for k in "AB"}
    for round_ in range(15):
        answers = {}

        def post(k):
            answers[k] = http("POST", srv.admin_url + "/app/v1/provision/same", data=texts[k])

        threads = [threading.Thread(target=post, args=(k,)) for k in "AB"]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert [answers[k].status_code for k in "AB"] == [201, 201], \
            (round_, answers["A"].text, answers["B"].text)
        served = http("GET", srv.url + "/who").text
        on_disk = (srv.provisions / "same.lua").read_text()
        assert on_disk == texts[served], (round_, served)
