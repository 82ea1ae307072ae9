"""The provision lifecycle: the watched provisions directory, Kubernetes ConfigMap
updates, swaps that lose nothing, one log line per load.

README: "Changing the provision while it runs".
"""

import collections
import os
import re
import shutil
import socket
import threading
import time

import pytest
import requests

from conftest import (body_of, header, http, log_caught_up, read_response, wait_until,
                      watcher_quiet)

API = "/app/v1/provision"
TS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|\+00:00)"
# "Nothing else happens" checks wait on the watcher's own counters in
# /metrics (conftest.watcher_quiet), not on a fixed pause.


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


def slow_prov(text):
    """"/" answers `text`; "/slow/<t>" sleeps t seconds, then answers `text slow`."""
    return ('function registerRules()\n'
            '  app.get("/", function() return "%s" end)\n'
            '  app.get("/slow/<float:t>", function(req, t)\n'
            '    log.info("sleeping %%s", t); sleep(t); return "%s slow"\n'
            '  end)\n'
            'end\n' % (text, text))


BROKEN = ('function registerRules()\n'
          '  app.get("/", function() return "broken" end)\n'
          '  local t = nil\n'
          '  return t.field\n'
          'end\n')  # fails at broken.lua:4




def serves(srv, text, timeout=5.0):
    """Waits until "/" answers `text`; returns the seconds it took."""
    t0 = time.monotonic()
    last = []

    def check():
        last[:] = [body_of(srv)]
        return last[0] == text
    try:
        wait_until(check, timeout=timeout, what="serving %r" % text)
    except AssertionError:
        raise AssertionError("not serving %r within %.1fs (last answer %r); log:\n%s"
                             % (text, timeout, last, srv.log))
    return time.monotonic() - t0


def post(srv, name, source, **kw):
    return http("POST", srv.admin_url + API + "/" + name, data=source.encode(), **kw)


def listing(srv):
    r = http("GET", srv.admin_url + API)
    assert r.status_code == 200, r.text
    return r.json()


def entry(doc, name):
    found = [e for e in doc["provisions"] if e["name"] == name]
    assert len(found) == 1, "%d entries named %r in %r" % (len(found), name, doc)
    return found[0]


LOAD_RX = r"^%s INFO provision '%s' loaded: (\d+) rules? in \d+(?:\.\d+)? ms$"
FAIL_RX = r"^%s ERROR provision '%s' failed to load: (.+)$"


def load_lines(srv, name):
    log_caught_up(srv)
    return re.findall(LOAD_RX % (TS, re.escape(name)), srv.log, re.M)


def fail_lines(srv, name):
    log_caught_up(srv)
    return re.findall(FAIL_RX % (TS, re.escape(name)), srv.log, re.M)


def write_file(path, text):
    with open(path, "w") as f:
        f.write(text)


# --------------------------------------------------------------------------
# the watcher
# --------------------------------------------------------------------------

def test_new_file_becomes_active(h1mock):
    srv = h1mock(prov("initial"))
    assert body_of(srv) == "initial"
    write_file(srv.provisions / "new.lua", prov("new", rules=2))
    took = serves(srv, "new")
    assert took >= 0.15, "loaded %.3fs after the write: before the burst settled" % took
    assert took < 2.5, "loaded only %.3fs after the write" % took
    watcher_quiet(srv)
    assert load_lines(srv, "new") == ["2"], srv.log
    assert fail_lines(srv, "new") == []
    doc = listing(srv)
    assert doc["active"] == "new"
    assert entry(doc, "new")["rules"] == 2


def test_edit_of_active_file_reloads(h1mock):
    srv = h1mock(prov("v1"))
    assert body_of(srv) == "v1"
    write_file(srv.provisions / "initial.lua", prov("v2"))
    serves(srv, "v2")
    write_file(srv.provisions / "initial.lua", prov("v3", rules=3))
    serves(srv, "v3")
    watcher_quiet(srv)
    assert load_lines(srv, "initial") == ["1", "1", "3"], srv.log
    assert listing(srv)["active"] == "initial"


def test_editor_save_renamed_into_place_reloads_once(h1mock):
    srv = h1mock(prov("v1"))
    assert body_of(srv) == "v1"  # started: initial loaded, directory watched
    tmp = srv.provisions / "initial.lua.new"  # not a .lua file: ignored by itself
    write_file(tmp, prov("v2"))
    os.rename(tmp, srv.provisions / "initial.lua")
    serves(srv, "v2")
    # a dot-file temp renamed into place (what many editors and tools do)
    tmp = srv.provisions / ".initial.lua.swp"
    write_file(tmp, prov("v3"))
    os.rename(tmp, srv.provisions / "initial.lua")
    serves(srv, "v3")
    watcher_quiet(srv)
    assert len(load_lines(srv, "initial")) == 3, srv.log
    assert not [l for l in srv.log.splitlines() if "initial.lua.new" in l or ".swp" in l], srv.log


def test_touch_of_non_active_file_makes_it_active(h1mock):
    srv = h1mock(prov("initial"), files={"other.lua": prov("other")})
    assert body_of(srv) == "initial"
    watcher_quiet(srv)  # the fixture's writes are older than the server; nothing pending
    assert load_lines(srv, "other") == []
    os.utime(srv.provisions / "other.lua")
    serves(srv, "other")
    assert listing(srv)["active"] == "other"
    # touching the previous one (explicit times) switches back
    t = time.time() + 5
    os.utime(srv.provisions / "initial.lua", (t, t))
    serves(srv, "initial")
    watcher_quiet(srv)
    assert len(load_lines(srv, "other")) == 1, srv.log
    assert len(load_lines(srv, "initial")) == 2, srv.log


def test_broken_file_dropped_in_old_stays(h1mock):
    srv = h1mock(prov("initial"))
    assert body_of(srv) == "initial"  # started: initial loaded, directory watched
    write_file(srv.provisions / "broken.lua", BROKEN)
    srv.wait_log(r"^%s ERROR provision 'broken' failed to load: (?:\S*/)?broken\.lua:4: " % TS,
                 timeout=5)
    assert body_of(srv) == "initial"
    doc = listing(srv)
    assert doc["active"] == "initial"
    e = entry(doc, "broken")
    assert e["active"] is False
    assert e["error"] is not None and re.search(r"(?:^|[\s/])broken\.lua:4: ", e["error"]), e
    watcher_quiet(srv)
    assert len(fail_lines(srv, "broken")) == 1, srv.log
    assert load_lines(srv, "broken") == []
    assert body_of(srv) == "initial"
    # fixed in place: loads, error cleared
    write_file(srv.provisions / "broken.lua", prov("repaired"))
    serves(srv, "repaired")
    e = entry(listing(srv), "broken")
    assert e["active"] is True and e["error"] is None and e["rules"] == 1, e


CHUNKS = [
    "function registerRules()\n",
    '  app.get("/", function()\n',
    '    return "chunked"\n',
    '  end)\n  app.get("/two", function() return "two" end)\n',
    "end\n",
]


def test_file_written_in_chunks_loads_once(h1mock):
    srv = h1mock(prov("initial"))
    assert body_of(srv) == "initial"  # started: initial loaded, directory watched
    t_last = None
    with open(srv.provisions / "chunked.lua", "w") as f:
        for i, chunk in enumerate(CHUNKS):
            if i:
                time.sleep(0.05)
            f.write(chunk)
            f.flush()
            t_last = time.monotonic()
    serves(srv, "chunked")
    watcher_quiet(srv)
    assert fail_lines(srv, "chunked") == [], "a half-written file was loaded:\n" + srv.log
    assert load_lines(srv, "chunked") == ["2"], srv.log
    assert body_of(srv, "/two") == "two"
    assert t_last is not None


def test_big_file_copied_in_loads_once(h1mock, tmp_path):
    srv = h1mock(prov("initial"))
    assert body_of(srv) == "initial"  # started: initial loaded, directory watched
    src = prov("big", rules=3) + "".join("-- padding line %06d %s\n" % (i, "x" * 60)
                                         for i in range(40000))  # ~3 MB
    outside = tmp_path / "big-source.lua"
    outside.write_text(src)
    shutil.copyfile(outside, srv.provisions / "big.lua")
    serves(srv, "big", timeout=10)
    watcher_quiet(srv)
    assert fail_lines(srv, "big") == [], srv.log
    assert load_lines(srv, "big") == ["3"], srv.log


def test_hidden_other_and_nested_files_ignored(h1mock):
    srv = h1mock(prov("initial"))
    assert body_of(srv) == "initial"  # started: initial loaded, directory watched
    write_file(srv.provisions / ".hidden.lua", prov("hidden"))
    write_file(srv.provisions / "notes.txt", prov("notes"))
    write_file(srv.provisions / "initial.lua.bak", prov("bak"))
    (srv.provisions / "sub").mkdir()
    write_file(srv.provisions / "sub" / "deep.lua", prov("deep"))
    write_file(srv.provisions / "broken.txt", BROKEN)
    # editor backups and swap files, h1mock's own temporaries: not even the
    # extension-less names among them (#16 point 5)
    write_file(srv.provisions / "initial~", prov("tilde"))
    write_file(srv.provisions / "initial.swp", prov("swap"))
    write_file(srv.provisions / ".initial.lua.tmp-4242", prov("tmp"))
    write_file(srv.provisions / ".hidden", prov("hidden"))
    watcher_quiet(srv)
    assert body_of(srv) == "initial"
    log = srv.log
    assert not re.search(r"provision '[^']*(hidden|notes|bak|deep|broken|initial[~.])[^']*'",
                         log), log
    assert "failed to load" not in log, log
    assert listing(srv)["active"] == "initial"
    # the watcher is alive: a real provision file after those is picked up
    write_file(srv.provisions / "real.lua", prov("real"))
    serves(srv, "real")


def test_file_without_extension_copied_in_becomes_active(h1mock, tmp_path):
    # the Flask-based h1mock's style (#16 point 5): `kubectl cp foo-bar pod:/app/provision/`
    srv = h1mock(prov("initial"))
    assert body_of(srv) == "initial"
    outside = tmp_path / "foo-bar"
    outside.write_text(prov("foo bar", rules=2))
    shutil.copyfile(outside, srv.provisions / "foo-bar")
    serves(srv, "foo bar")
    watcher_quiet(srv)
    assert load_lines(srv, "foo-bar") == ["2"], srv.log
    doc = listing(srv)
    assert doc["active"] == "foo-bar" and entry(doc, "foo-bar")["rules"] == 2, doc
    # edited in place: reloads, like a .lua file
    write_file(srv.provisions / "foo-bar", prov("foo bar v2"))
    serves(srv, "foo bar v2")
    # a broken one is refused and the working one stays
    write_file(srv.provisions / "broken", BROKEN)
    srv.wait_log(r"ERROR provision 'broken' failed to load: (?:\S*/)?broken\.lua:4: ")
    assert body_of(srv) == "foo bar v2"


def test_name_lua_wins_over_name_as_at_start(h1mock):
    srv = h1mock(prov("initial"), files={"both.lua": prov("both lua")})
    assert body_of(srv) == "initial"
    write_file(srv.provisions / "both", prov("both plain"))
    srv.wait_log(r"INFO \S+/both changed, but both\.lua is there too and wins: not loaded")
    assert body_of(srv) == "initial"
    assert load_lines(srv, "both") == []
    # both.lua itself still loads
    os.utime(srv.provisions / "both.lua")
    serves(srv, "both lua")


def test_a_directory_made_after_a_save_does_not_hide_it(h1mock):
    srv = h1mock(prov("initial"))
    assert body_of(srv) == "initial"
    write_file(srv.provisions / "saved.lua", prov("saved"))
    (srv.provisions / "subdir").mkdir()  # within the watcher's settle time
    serves(srv, "saved")


def test_post_does_not_cause_a_second_load(h1mock):
    srv = h1mock(prov("initial"))
    r = post(srv, "x", prov("x one"))
    assert r.status_code == 201, r.text
    assert body_of(srv) == "x one"
    watcher_quiet(srv)
    assert len(load_lines(srv, "x")) == 1, srv.log
    r = post(srv, "x", prov("x two", rules=2))
    assert r.status_code == 201, r.text
    # over the file the server is watching, and over the active initial.lua
    r = post(srv, "initial", prov("initial two"))
    assert r.status_code == 201, r.text
    assert body_of(srv) == "initial two"
    watcher_quiet(srv)
    assert load_lines(srv, "x") == ["1", "2"], srv.log
    assert len(load_lines(srv, "initial")) == 2, srv.log
    assert body_of(srv) == "initial two"


def test_deletion_changes_nothing(h1mock):
    srv = h1mock(prov("initial"), files={"other.lua": prov("other")})
    assert body_of(srv) == "initial"
    watcher_quiet(srv)
    log_before = srv.log
    os.unlink(srv.provisions / "other.lua")
    os.unlink(srv.provisions / "initial.lua")  # the active one
    watcher_quiet(srv)
    assert body_of(srv) == "initial"
    assert listing(srv)["active"] == "initial"
    new = srv.log[len(log_before):]
    assert "provision '" not in new, new  # no load was attempted
    # the watcher still works afterwards
    write_file(srv.provisions / "after.lua", prov("after"))
    serves(srv, "after")


# --------------------------------------------------------------------------
# Kubernetes ConfigMap volumes
# --------------------------------------------------------------------------

def configmap(base, files, version="v1"):
    """Lays a ConfigMap volume out as the kubelet does."""
    d = base / "configmap"
    d.mkdir()
    ts = d / ("..2026_01_01_" + version)
    ts.mkdir()
    for name, text in files.items():
        (ts / name).write_text(text)
    os.symlink(ts.name, d / "..data")
    for name in files:
        os.symlink("..data/" + name, d / name)
    return d


def kubelet_update(d, version, files):
    """An update as the kubelet's AtomicWriter does it: new timestamped dir,
    ..data_tmp -> it, renamed over ..data, new user-visible links, old dir removed."""
    old = os.readlink(d / "..data")
    ts = d / ("..2026_01_01_" + version)
    ts.mkdir()
    for name, text in files.items():
        (ts / name).write_text(text)
    os.symlink(ts.name, d / "..data_tmp")
    os.rename(d / "..data_tmp", d / "..data")
    for name in files:
        if not os.path.islink(d / name):
            os.symlink("..data/" + name, d / name)
    shutil.rmtree(d / old)


def test_configmap_update_reloads_active(h1mock, tmp_path):
    d = configmap(tmp_path, {"initial.lua": prov("cm v1"), "other.lua": prov("other v1")})
    srv = h1mock(None, "--provisions", str(d))
    srv.provisions = d
    assert body_of(srv) == "cm v1"
    watcher_quiet(srv)
    kubelet_update(d, "v2", {"initial.lua": prov("cm v2", rules=2), "other.lua": prov("other v1")})
    serves(srv, "cm v2")
    watcher_quiet(srv)
    assert load_lines(srv, "initial") == ["1", "2"], srv.log
    assert load_lines(srv, "other") == [], srv.log
    assert "failed to load" not in srv.log, srv.log
    # and again: the watch survives the swap of ..data
    kubelet_update(d, "v3", {"initial.lua": prov("cm v3"), "other.lua": prov("other v1")})
    serves(srv, "cm v3")
    watcher_quiet(srv)
    assert len(load_lines(srv, "initial")) == 3, srv.log
    assert listing(srv)["active"] == "initial"


def test_configmap_update_of_other_file_does_not_reload_active(h1mock, tmp_path):
    d = configmap(tmp_path, {"initial.lua": prov("cm v1"), "other.lua": prov("other v1")})
    srv = h1mock(None, "--provisions", str(d))
    srv.provisions = d
    assert body_of(srv) == "cm v1"
    watcher_quiet(srv)
    kubelet_update(d, "v2", {"initial.lua": prov("cm v1"), "other.lua": prov("other v2")})
    watcher_quiet(srv)
    assert body_of(srv) == "cm v1"
    assert len(load_lines(srv, "initial")) == 1, srv.log
    assert load_lines(srv, "other") == [], srv.log
    # a change of the active one's content after that reloads it
    kubelet_update(d, "v3", {"initial.lua": prov("cm v3"), "other.lua": prov("other v2")})
    serves(srv, "cm v3")
    watcher_quiet(srv)
    assert len(load_lines(srv, "initial")) == 2, srv.log
    # the active provision is whichever was activated last: here 'other'
    r = http("GET", srv.admin_url + API + "/other")
    assert r.status_code == 200, r.text
    assert body_of(srv) == "other v2"
    kubelet_update(d, "v4", {"initial.lua": prov("cm v4"), "other.lua": prov("other v2")})
    watcher_quiet(srv)
    assert body_of(srv) == "other v2"
    assert len(load_lines(srv, "initial")) == 2, srv.log
    assert len(load_lines(srv, "other")) == 1, srv.log
    kubelet_update(d, "v5", {"initial.lua": prov("cm v4"), "other.lua": prov("other v5")})
    serves(srv, "other v5")
    watcher_quiet(srv)
    assert len(load_lines(srv, "other")) == 2, srv.log
    assert len(load_lines(srv, "initial")) == 2, srv.log


# --------------------------------------------------------------------------
# swaps lose nothing
# --------------------------------------------------------------------------

def _get_into(url, out, timeout=15):
    t0 = time.monotonic()
    try:
        r = http("GET", url, timeout=timeout)
        out["result"] = (r.status_code, r.text)
    except Exception as e:  # noqa: BLE001 - reported by the test
        out["result"] = (None, repr(e))
    out["t0"], out["t1"] = t0, time.monotonic()


@pytest.mark.parametrize("via", ["post", "file"])
def test_in_flight_request_completes_on_old_provision(h1mock, via):
    srv = h1mock(slow_prov("v1"))
    assert body_of(srv) == "v1"
    out = {}
    t = threading.Thread(target=_get_into, args=(srv.url + "/slow/1.0", out))
    t.start()
    srv.wait_log(r"sleeping 1\.0")  # the request is now sleeping in the view
    if via == "post":
        r = post(srv, "second", slow_prov("v2"))
        assert r.status_code == 201, r.text
        assert body_of(srv) == "v2"  # no wait: the next request is the new provision's
    else:
        write_file(srv.provisions / "initial.lua", slow_prov("v2"))
        serves(srv, "v2", timeout=0.7)
    t_swapped = time.monotonic()
    t.join(15)
    assert not t.is_alive()
    assert out["result"] == (200, "v1 slow"), out
    assert t_swapped < out["t1"], "the swap was not done while the request was running"
    assert out["t1"] - out["t0"] >= 0.95
    # the new provision's own slow route works, and the server is fine
    assert body_of(srv, "/slow/0.01") == "v2 slow"
    assert http("GET", srv.admin_url + "/healthz").status_code == 200


def _ka_get(sock, path="/"):
    sock.sendall(("GET %s HTTP/1.1\r\nHost: ka.test\r\n\r\n" % path).encode())
    st, h, b = read_response(sock)
    assert st == 200, (st, b)
    assert (header(h, "connection") or "").lower() != "close", h
    return b.decode()


def test_keep_alive_connection_survives_swaps(h1mock):
    srv = h1mock(prov("v1"))
    s = srv.connect()
    try:
        assert _ka_get(s) == "v1"
        assert post(srv, "v2", prov("v2")).status_code == 201
        assert _ka_get(s) == "v2"
        assert http("GET", srv.admin_url + API + "/initial").status_code == 200
        assert _ka_get(s) == "v1"
        write_file(srv.provisions / "v3.lua", prov("v3"))
        serves(srv, "v3")
        assert _ka_get(s) == "v3"
        # a requests.Session on keep-alive, across a swap
        with requests.Session() as sess:
            sess.trust_env = False
            assert sess.get(srv.url + "/", timeout=5).text == "v3"
            assert post(srv, "v4", prov("v4")).status_code == 201
            assert sess.get(srv.url + "/", timeout=5).text == "v4"
        assert _ka_get(s) == "v4"
    finally:
        s.close()


def _read_one(sock, buf):
    """One Content-Length framed response from `sock`; returns (status, headers, body, rest)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed by the server")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    while len(rest) < n:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed inside a body")
        rest += chunk
    return status, headers, rest[:n], rest[n:]


def _churn_worker(port, stop, stats):
    req = b"GET / HTTP/1.1\r\nHost: churn.test\r\n\r\n"
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    stats["connections"] = 1
    buf = b""
    while not stop.is_set():
        try:
            sock.sendall(req)
            st, h, body, buf = _read_one(sock, buf)
            if st != 200 or body not in (b"v1", b"v2"):
                stats["failures"].append("%d %r" % (st, body[:100]))
            else:
                stats["bodies"][body.decode()] += 1
            if h.get("connection", "").lower() == "close":
                raise ConnectionError("server answered Connection: close")
        except Exception as e:  # noqa: BLE001 - every failure is counted
            stats["failures"].append(repr(e))
            try:
                sock.close()
            except OSError:
                pass
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            stats["connections"] += 1
            buf = b""
    sock.close()


def test_churn_no_request_fails(h1mock):
    srv = h1mock(prov("initial"))
    sources = {"v1": prov("v1"), "v2": prov("v2")}
    assert post(srv, "v1", sources["v1"]).status_code == 201
    stop = threading.Event()
    stats = [{"bodies": collections.Counter(), "failures": [], "connections": 0}
             for _ in range(4)]
    threads = [threading.Thread(target=_churn_worker, args=(srv.port, stop, st), daemon=True)
               for st in stats]
    for t in threads:
        t.start()
    swaps, post_failures, last = 1, [], "v1"
    admin = requests.Session()
    admin.trust_env = False
    t0 = time.monotonic()
    try:
        # A count of swaps, not a time: a loaded machine swaps slower, and
        # the test is about losing nothing, not about speed. The deadline
        # only guards against a hang.
        while swaps < 100 and time.monotonic() - t0 < 60.0:
            name = "v2" if last == "v1" else "v1"
            try:
                r = admin.post(srv.admin_url + API + "/" + name, data=sources[name].encode(),
                               timeout=10)
                if r.status_code == 201:
                    swaps += 1
                    last = name
                else:
                    post_failures.append("%d %s" % (r.status_code, r.text[:100]))
            except requests.RequestException as e:
                post_failures.append(repr(e))
    finally:
        elapsed = time.monotonic() - t0
        stop.set()
        for t in threads:
            t.join(10)
        admin.close()
    assert not any(t.is_alive() for t in threads), "a traffic thread hung"
    total = collections.Counter()
    for st in stats:
        total.update(st["bodies"])
    failures = [f for st in stats for f in st["failures"]]
    summary = ("%d swaps in %.1fs (%.0f/s); requests per connection %r; bodies %r; "
               "connections %r; failed requests %d %r; failed posts %d %r"
               % (swaps, elapsed, swaps / elapsed, [sum(st["bodies"].values()) for st in stats],
                  dict(total), [st["connections"] for st in stats], len(failures),
                  failures[:5], len(post_failures), post_failures[:5]))
    assert not failures, summary
    assert not post_failures, summary
    assert [st["connections"] for st in stats] == [1, 1, 1, 1], summary
    assert total["v1"] > 0 and total["v2"] > 0, summary
    assert swaps >= 100, summary
    assert all(sum(st["bodies"].values()) >= 10 for st in stats), summary
    # afterwards: healthy, serving the last one, one load line per swap and no more
    watcher_quiet(srv)
    assert http("GET", srv.admin_url + "/healthz").status_code == 200
    assert body_of(srv) == last
    assert listing(srv)["active"] == last
    loads = len(load_lines(srv, "v1")) + len(load_lines(srv, "v2"))
    assert loads == swaps, "%d load lines for %d swaps: %s" % (loads, swaps, summary)
    print(summary)


# --------------------------------------------------------------------------
# one log line per load
# --------------------------------------------------------------------------

def test_every_load_is_one_log_line(h1mock):
    srv = h1mock(prov("initial", rules=2))
    adm = srv.admin_url + API
    assert post(srv, "a", prov("a", rules=3)).status_code == 201                # ok a
    assert post(srv, "a", BROKEN.replace("broken", "a")).status_code == 400     # fail a
    assert http("GET", adm + "/initial").status_code == 200                     # ok initial
    assert http("GET", adm + "/a").status_code == 200                           # ok a
    write_file(srv.provisions / "w.lua", prov("w"))                             # ok w
    serves(srv, "w")
    write_file(srv.provisions / "wbad.lua", BROKEN)                             # fail wbad
    srv.wait_log(r"provision 'wbad' failed", timeout=5)
    assert http("GET", adm + "/wbad").status_code == 400                        # fail wbad
    assert http("GET", adm + "/nope").status_code == 404                        # no load
    watcher_quiet(srv)
    assert load_lines(srv, "initial") == ["2", "2"], srv.log
    assert load_lines(srv, "a") == ["3", "3"], srv.log
    assert load_lines(srv, "w") == ["1"], srv.log
    assert load_lines(srv, "wbad") == [], srv.log
    fa = fail_lines(srv, "a")
    assert len(fa) == 1 and re.match(r"(?:\S*/)?a\.lua:4: ", fa[0]), srv.log
    fw = fail_lines(srv, "wbad")
    assert len(fw) == 2 and all(re.match(r"(?:\S*/)?wbad\.lua:4: ", f) for f in fw), srv.log
    assert "'nope'" not in srv.log
    # every line about a load has exactly one of the two forms
    for line in srv.log.splitlines():
        if re.search(r"provision '[^']*' (loaded|failed)", line):
            assert (re.match(LOAD_RX % (TS, "[^']+"), line)
                    or re.match(FAIL_RX % (TS, "[^']+"), line)), "bad load line %r" % line
