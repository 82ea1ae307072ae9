"""--data-dir under load and under faults (README: "Durability and
recovery"): every acknowledged write survives kill -9 in the middle of group
commits; a full disk (ENOSPC) or a failing one (EIO), injected by a small
LD_PRELOAD shim the suite builds, turns the answers of the writes it undid
into 503s, shows in /healthz and /health, and ends as the README says.

README: "Durability and recovery", "Admin API", "The REST API".
"""

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import requests

from conftest import BIN, http, start_server, wait_until

# tests/faults/store_faults.c, built beside the binary under test (or named
# by STORE_FAULTS_SO, to run these tests against another binary).
SHIM = Path(os.environ.get("STORE_FAULTS_SO") or Path(BIN).parent / "tests" / "store_faults.so")


def provisions(tmp_path):
    pdir = tmp_path / "provisions"
    pdir.mkdir(exist_ok=True)
    return pdir


def test_kill_9_under_load_loses_no_acknowledged_write(tmp_path):
    """16 clients create documents as fast as they can; h1mock is killed
    with SIGKILL while group commits are in flight. After a restart every
    document whose creation was answered 200 is there."""
    data = tmp_path / "data"
    srv = start_server(provisions(tmp_path), "--data-dir", str(data))
    acked, lock, stop = [], threading.Lock(), threading.Event()

    def client(k):
        s = requests.Session()
        s.trust_env = False
        n = 0
        while not stop.is_set():
            try:
                r = s.post(srv.url + "/api/items", json={"client": k, "n": n}, timeout=10)
            except requests.RequestException:
                return  # the server is gone
            if r.status_code == 200:
                with lock:
                    acked.append(r.json()["_id"])
            n += 1

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(16)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: len(acked) >= 3000, timeout=60, what="3000 acknowledged creates")
    finally:
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait(10)
        stop.set()
        for t in threads:
            t.join(15)
    with lock:
        answered = set(acked)
    srv = start_server(provisions(tmp_path), "--data-dir", str(data))
    try:
        present = {d["_id"] for d in http("GET", srv.url + "/api/items", timeout=60).json()}
    finally:
        assert srv.stop() == 0
    missing = answered - present
    assert not missing, "%d of %d acknowledged documents lost" % (len(missing), len(answered))
    # What was written but never answered may be there too, but not more
    # than the requests in flight when the kill came.
    assert len(present) - len(answered) <= 16


def faulty(tmp_path):
    """(data dir, control dir, env): h1mock's store in `data`, its writes
    and syncs failing while control/ENOSPC or control/EIO exists."""
    data, ctl = tmp_path / "data", tmp_path / "control"
    data.mkdir()
    ctl.mkdir()
    assert SHIM.exists(), "%s is missing: build it (meson compile)" % SHIM
    libs = []
    ldd = subprocess.run(["ldd", BIN], capture_output=True, text=True, timeout=30).stdout
    m = re.search(r"libasan\.so\S* => (\S+)", ldd)
    if m:
        libs.append(m.group(1))  # ASan wants its runtime first in the list
    libs.append(str(SHIM))
    env = {"LD_PRELOAD": ":".join(libs), "STORE_FAULTS_DIR": os.path.realpath(data),
           "STORE_FAULTS_CONTROL": str(ctl)}
    return data, ctl, env


def create(srv, n):
    return http("POST", srv.url + "/api/items", json={"n": n})


def health(srv):
    """(admin /healthz status and JSON, REST /health status and JSON)"""
    a = http("GET", srv.admin_url + "/healthz")
    b = http("GET", srv.url + "/health")
    return a.status_code, a.json(), b.status_code, b.json()


def test_a_full_disk_answers_503_and_writes_resume_when_it_has_room(tmp_path):
    data, ctl, env = faulty(tmp_path)
    srv = start_server(provisions(tmp_path), "--data-dir", str(data), env=env)
    try:
        before = [create(srv, n).json()["_id"] for n in range(5)]
        (ctl / "ENOSPC").touch()
        # Taken in memory, but its commit fails: the answer that would have
        # said 200 says 503, and the write is undone.
        r = create(srv, 5)
        assert r.status_code == 503, r.text
        assert "could not make this request's writes durable (No space left on device)" in \
            r.json()["message"]
        # From then on the store refuses writes until a retry commits.
        r = create(srv, 6)
        assert r.status_code == 503, r.text
        assert "is full (No space left on device)" in r.json()["message"]
        assert [d["_id"] for d in http("GET", srv.url + "/api/items").json()] == before
        hz, hz_body, h, h_body = health(srv)
        assert hz == 503 and hz_body["status"] == "degraded"
        assert "writes are refused until a retry succeeds" in hz_body["reason"]
        assert h == 503 and h_body["status"] == "fail" and "is full" in h_body["output"]
        srv.wait_log(r"ERROR store: .*a commit failed \(No space left on device\): 1 writes")
        # The admin API's store calls say so too.
        r = http("POST", srv.admin_url + "/app/v1/store/seeded", json=[{"a": 1}])
        assert r.status_code == 503 and "No space left on device" in r.json()["result"]
        r = http("DELETE", srv.admin_url + "/app/v1/store/items")
        assert r.status_code == 503 and "No space left on device" in r.json()["result"]
        (ctl / "ENOSPC").unlink()
        wait_until(lambda: health(srv)[0] == 200, timeout=10, what="/healthz ok again")
        _, _, h, h_body = health(srv)
        assert h == 200 and h_body["status"] == "pass", h_body
        srv.wait_log(r"INFO store: .*a retry committed: writes are taken again")
        after = create(srv, 7)
        assert after.status_code == 200
    finally:
        assert srv.stop() == 0
    srv = start_server(provisions(tmp_path), "--data-dir", str(data))
    try:
        ids = [d["_id"] for d in http("GET", srv.url + "/api/items").json()]
        assert ids == before + [after.json()["_id"]]
    finally:
        assert srv.stop() == 0


def test_eio_leaves_the_store_read_only_until_restarted(tmp_path):
    data, ctl, env = faulty(tmp_path)
    srv = start_server(provisions(tmp_path), "--data-dir", str(data), env=env)
    try:
        before = [create(srv, n).json()["_id"] for n in range(3)]
        (ctl / "EIO").touch()
        r = create(srv, 3)
        assert r.status_code == 503, r.text
        assert "(Input/output error)" in r.json()["message"]
        (ctl / "EIO").unlink()
        # The disk works again, but after EIO the store never pretends: it
        # stays read-only (longer than the one-second retry of a full disk).
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            hz, hz_body, h, h_body = health(srv)
            assert hz == 503 and "read-only until h1mock is restarted" in hz_body["reason"]
            assert h == 503 and h_body["status"] == "fail"
            time.sleep(0.1)
        assert create(srv, 4).status_code == 503
        # Reads go on.
        assert [d["_id"] for d in http("GET", srv.url + "/api/items").json()] == before
    finally:
        assert srv.stop() == 0
    # A restart replays what the log holds: the writes before the failure.
    srv = start_server(provisions(tmp_path), "--data-dir", str(data))
    try:
        assert [d["_id"] for d in http("GET", srv.url + "/api/items").json()] == before
        assert health(srv)[0] == 200
        assert create(srv, 5).status_code == 200
    finally:
        assert srv.stop() == 0


def test_under_load_memory_holds_exactly_the_acknowledged_writes(tmp_path):
    """8 clients create documents while the disk fills up: each create is
    answered 200 or 503, and what the store holds afterwards, before and
    after a restart, is exactly the documents answered 200 (a failed commit
    undoes the writes of its batch)."""
    data, ctl, env = faulty(tmp_path)
    srv = start_server(provisions(tmp_path), "--data-dir", str(data), env=env)
    acked, refused, other = [], [0], []
    lock, stop = threading.Lock(), threading.Event()

    def client(k):
        s = requests.Session()
        s.trust_env = False
        n = 0
        while not stop.is_set():
            r = s.post(srv.url + "/api/items", json={"client": k, "n": n}, timeout=10)
            with lock:
                if r.status_code == 200:
                    acked.append(r.json()["_id"])
                elif r.status_code == 503:
                    refused[0] += 1
                else:
                    other.append((r.status_code, r.text))
            n += 1

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(8)]
    try:
        try:
            for t in threads:
                t.start()
            wait_until(lambda: len(acked) >= 500, timeout=60, what="500 acknowledged creates")
            (ctl / "ENOSPC").touch()
            wait_until(lambda: refused[0] >= 200 or other, timeout=60, what="200 refused creates")
        finally:
            stop.set()
            for t in threads:
                t.join(15)
        assert not other
        with lock:
            answered = list(acked)
        present = [d["_id"] for d in http("GET", srv.url + "/api/items", timeout=60).json()]
        assert sorted(present) == sorted(answered)
        # Replacing or deleting a document is refused the same way.
        r = http("PUT", srv.url + "/api/items/" + answered[0], json={"x": 1})
        assert r.status_code == 503 and "is full" in r.json()["message"], r.text
        r = http("DELETE", srv.url + "/api/items/" + answered[0])
        assert r.status_code == 503 and "is full" in r.json()["message"], r.text
        (ctl / "ENOSPC").unlink()
        wait_until(lambda: health(srv)[0] == 200, timeout=10, what="/healthz ok again")
    finally:
        assert srv.stop() == 0
    srv = start_server(provisions(tmp_path), "--data-dir", str(data))
    try:
        present = [d["_id"] for d in http("GET", srv.url + "/api/items", timeout=60).json()]
        assert sorted(present) == sorted(answered)
    finally:
        assert srv.stop() == 0


LOADS_AND_WRITES = """
store.put("fixtures", "1", {loaded = true})
function registerRules()
  app.get("/fixture", function() return store.get("fixtures", "1") or {} end)
end
"""


def test_a_provision_whose_load_time_writes_fail_is_not_activated(tmp_path):
    """A load is reported done only once its store writes are durable."""
    data, ctl, env = faulty(tmp_path)
    srv = start_server(provisions(tmp_path), "--data-dir", str(data), env=env)
    try:
        (ctl / "ENOSPC").touch()
        r = http("POST", srv.admin_url + "/app/v1/provision/fixtures", data=LOADS_AND_WRITES)
        assert r.status_code == 503, r.text
        assert r.json()["result"] == ("failed: the store writes of provision 'fixtures' could "
                                      "not be made durable (No space left on device)")
        assert http("GET", srv.admin_url + "/app/v1/provision").json()["active"] == "(default)"
        assert http("GET", srv.url + "/fixture").status_code == 404
        (ctl / "ENOSPC").unlink()
        wait_until(lambda: health(srv)[0] == 200, timeout=10, what="/healthz ok again")
        r = http("GET", srv.admin_url + "/app/v1/provision/fixtures")  # loads it again
        assert r.status_code == 200, r.text
        assert http("GET", srv.url + "/fixture").json() == {"loaded": True}
    finally:
        assert srv.stop() == 0


WRITES_AFTER = r"""
function registerRules()
  app.get("/page", function()
    store.put("pages", "1", {seen = true})
    return "<p>page</p>", 200, {["Link"] = "</schema.json>; rel=describedby"}
  end)
  app.after_request(function(r) store.put("log", "1", {after = true}); return r end)
end
"""


def test_held_answers_of_proxied_requests_and_html_pages_fail_as_they_should(tmp_path):
    """A proxied request's after_request hook that writes holds the answer
    like any other write, and turns it into a 503 when the commit fails;
    an HTML answer's 503 is an HTML page even when another header names a
    JSON document."""
    (tmp_path / "up").mkdir()
    upstream = start_server(provisions(tmp_path / "up"))
    data, ctl, env = faulty(tmp_path)
    pdir = provisions(tmp_path)
    (pdir / "initial.lua").write_text(WRITES_AFTER)
    srv = start_server(pdir, "--data-dir", str(data), "--proxy", upstream.url, env=env)
    try:
        assert http("GET", srv.url + "/health").status_code == 200  # forwarded
        (ctl / "ENOSPC").touch()
        r = http("GET", srv.url + "/health")
        assert r.status_code == 503, r.text
        assert r.headers["Content-Type"] == "application/json"
        assert "could not make this request's writes durable" in r.json()["message"]
        (ctl / "ENOSPC").unlink()
        wait_until(lambda: health(srv)[0] == 200, timeout=10, what="/healthz ok again")
        (ctl / "ENOSPC").touch()
        r = http("GET", srv.url + "/page")
        assert r.status_code == 503, r.text
        assert r.headers["Content-Type"].startswith("text/html"), r.headers
        assert "could not make this request&#39;s writes durable" in r.text or \
            "could not make this request's writes durable" in r.text
    finally:
        assert srv.stop() == 0
        assert upstream.stop() == 0
