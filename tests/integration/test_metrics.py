"""GET /metrics on the admin port: the Prometheus text format 0.0.4, read
here by a small parser that checks every line (HELP and TYPE before the
samples of their family, label syntax and escapes, numeric values), and
counters that move with the traffic.

README: "Metrics".
"""

import json
import re
import socket
import threading
import time

import requests

from conftest import http, read_response, wait_until

APP = r'''
function registerRules()
  app.add_url_rule("/app/v1/foo/bar", "answer_get", function() return {resultCode = 0} end)
  app.add_url_rule("/boom", "boom", function() error("boom") end)
  app.add_url_rule("/weird", "we\"ird\\end\npoint", function() return "w" end)
end
'''

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def parse_labels(s):
    """name="value",... with \\\\, \\" and \\n escapes; returns a dict."""
    labels, i = {}, 0
    while i < len(s):
        m = LABEL_NAME.match(s, i)
        assert m, "bad label name at %r" % s[i:]
        name = m.group(0)
        i = m.end()
        assert s[i:i + 2] == '="', "expected =\" at %r" % s[i:]
        i += 2
        value = []
        while True:
            assert i < len(s), "unterminated label value in %r" % s
            c = s[i]
            if c == "\\":
                nxt = s[i + 1]
                assert nxt in '\\"n', "bad escape \\%s in %r" % (nxt, s)
                value.append({"\\": "\\", '"': '"', "n": "\n"}[nxt])
                i += 2
            elif c == '"':
                i += 1
                break
            else:
                assert c != "\n"
                value.append(c)
                i += 1
        assert name not in labels, "label %s twice" % name
        labels[name] = "".join(value)
        if i < len(s):
            assert s[i] == ",", "expected , at %r" % s[i:]
            i += 1
    return labels


def parse(text):
    """Returns {family: {"help", "type", "samples": [(name, labels, value)]}}."""
    assert text.endswith("\n")
    families, current = {}, None
    for line in text[:-1].split("\n"):
        assert line, "empty line"
        if line.startswith("# HELP "):
            name, _, help_ = line[7:].partition(" ")
            assert NAME.fullmatch(name) and help_, line
            assert name not in families, "family %s twice" % name
            families[name] = {"help": help_, "type": None, "samples": []}
            current = name
        elif line.startswith("# TYPE "):
            name, _, type_ = line[7:].partition(" ")
            assert name == current, "TYPE %s without its HELP first" % name
            assert type_ in TYPES, line
            assert families[name]["type"] is None and not families[name]["samples"]
            families[name]["type"] = type_
        else:
            assert not line.startswith("#"), line
            m = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)", line)
            assert m, "bad sample line %r" % line
            name, labels, value = m.group(1), m.group(2), m.group(3)
            fam = families.get(current)
            assert fam and fam["type"], "sample %s before HELP/TYPE" % name
            allowed = {current}
            if fam["type"] == "histogram":
                allowed = {current + "_bucket", current + "_sum", current + "_count"}
            assert name in allowed, "sample %s inside family %s" % (name, current)
            fam["samples"].append((name, parse_labels(labels or ""), float(value)))
    return families


def metrics(srv, **kw):
    r = http("GET", srv.admin_url + "/metrics", **kw)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    return parse(r.content.decode("utf-8"))


def value(fams, sample_name, **labels):
    """The value of one sample (None when absent)."""
    family = sample_name
    for suffix in ("_bucket", "_sum", "_count"):
        if sample_name.endswith(suffix) and sample_name[:-len(suffix)] in fams:
            family = sample_name[:-len(suffix)]
    found = [v for n, l, v in fams[family]["samples"] if n == sample_name and l == labels]
    assert len(found) <= 1
    return found[0] if found else None


EXPECTED = {
    "h1mock_requests_total": "counter",
    "h1mock_request_duration_seconds": "histogram",
    "h1mock_connections_active": "gauge",
    "h1mock_provision_loads_total": "counter",
    "h1mock_watcher_events_total": "counter",
    "h1mock_watcher_bursts_total": "counter",
    "h1mock_watcher_pending": "gauge",
    "h1mock_provision_active_info": "gauge",
    "h1mock_journal_dropped_total": "counter",
    "h1mock_store_documents": "gauge",
    "h1mock_store_commits_total": "counter",
    "h1mock_store_committed_writes_total": "counter",
    "h1mock_lua_memory_bytes": "gauge",
    "h1mock_lua_memory_limit_bytes": "gauge",
    "h1mock_http_client_requests_total": "counter",
    "h1mock_http_client_duration_seconds": "histogram",
    "process_resident_memory_bytes": "gauge",
    "process_start_time_seconds": "gauge",
    "h1mock_uptime_seconds": "gauge",
}


def test_every_family_is_declared_and_typed(h1mock):
    srv = h1mock(APP)
    fams = metrics(srv)
    assert {k: v["type"] for k, v in fams.items()} == EXPECTED
    assert value(fams, "h1mock_lua_memory_bytes") > 10000
    assert value(fams, "h1mock_lua_memory_limit_bytes") == 256 * 1024 * 1024
    assert value(fams, "process_resident_memory_bytes") > 1000000
    assert abs(value(fams, "process_start_time_seconds") - time.time()) < 60
    assert 0 <= value(fams, "h1mock_uptime_seconds") < 60
    assert value(fams, "h1mock_provision_active_info", name="initial") == 1
    assert value(fams, "h1mock_provision_loads_total", result="success") == 1
    assert value(fams, "h1mock_provision_loads_total", result="failure") == 0
    assert value(fams, "h1mock_journal_dropped_total") == 0
    # No request yet: the family is declared, with no sample.
    assert fams["h1mock_requests_total"]["samples"] == []


def test_request_counters_and_histogram_move(h1mock):
    srv = h1mock(APP)
    before = metrics(srv)
    for _ in range(3):
        assert http("GET", srv.url + "/app/v1/foo/bar").status_code == 200
    assert http("GET", srv.url + "/nowhere/123").status_code == 404
    assert http("POST", srv.url + "/app/v1/foo/bar").status_code == 405
    assert http("GET", srv.url + "/boom").status_code == 500
    assert http("HEAD", srv.url + "/app/v1/foo/bar").status_code == 200
    after = metrics(srv)
    req = "h1mock_requests_total"
    assert value(after, req, method="GET", status="200", endpoint="answer_get") == 3
    assert value(after, req, method="HEAD", status="200", endpoint="answer_get") == 1
    assert value(after, req, method="GET", status="404", endpoint="") == 1
    assert value(after, req, method="POST", status="405", endpoint="") == 1
    assert value(after, req, method="GET", status="500", endpoint="boom") == 1
    assert sum(v for _, _, v in after[req]["samples"]) == 7

    hist = "h1mock_request_duration_seconds"
    assert value(after, hist + "_count") - (value(before, hist + "_count") or 0) == 7
    assert value(after, hist + "_sum") > value(before, hist + "_sum")
    buckets = [(l["le"], v) for n, l, v in after[hist]["samples"] if n == hist + "_bucket"]
    bounds = [float(le) for le, _ in buckets]
    assert bounds[0] == 0.00005 and bounds[-2] == 10 and bounds[-1] == float("inf")
    assert bounds == sorted(bounds)
    counts = [v for _, v in buckets]
    assert counts == sorted(counts), "buckets must be cumulative"
    assert counts[-1] == value(after, hist + "_count") == 7
    # Paths are never labels.
    text = http("GET", srv.admin_url + "/metrics").text
    assert "nowhere" not in text and "/app/v1" not in text

    http("GET", srv.url + "/app/v1/foo/bar")
    again = metrics(srv)
    assert value(again, req, method="GET", status="200", endpoint="answer_get") == 4
    assert value(again, hist + "_count") == 8


def test_label_values_are_escaped(h1mock):
    srv = h1mock(APP)
    http("GET", srv.url + "/weird")
    text = http("GET", srv.admin_url + "/metrics").text
    assert 'endpoint="we\\"ird\\\\end\\npoint"} 1\n' in text
    fams = parse(text)
    assert value(fams, "h1mock_requests_total", method="GET", status="200",
                 endpoint='we"ird\\end\npoint') == 1


def test_provision_loads_and_the_active_provision(h1mock):
    srv = h1mock(APP)
    assert http("POST", srv.admin_url + "/app/v1/provision/next", data=APP).status_code == 201
    assert http("POST", srv.admin_url + "/app/v1/provision/broken",
                data="function registerRules( end").status_code == 400
    (srv.provisions / "dropped.lua").write_text("syntax error here")
    srv.wait_log(r"provision 'dropped' failed to load")
    fams = metrics(srv)
    assert value(fams, "h1mock_provision_loads_total", result="success") == 2
    assert value(fams, "h1mock_provision_loads_total", result="failure") == 2
    info = fams["h1mock_provision_active_info"]["samples"]
    assert info == [("h1mock_provision_active_info", {"name": "next"}, 1.0)]


def test_watcher_counts_what_it_saw_and_what_it_handled(h1mock):
    """Ignored names count as ignored and start no burst; a .lua file is
    queued, settles into one handled burst and a load; pending is 1 only
    while a burst settles."""
    srv = h1mock(APP)
    fams = metrics(srv)
    assert value(fams, "h1mock_watcher_events_total", outcome="queued") == 0
    assert value(fams, "h1mock_watcher_events_total", outcome="ignored") == 0
    assert value(fams, "h1mock_watcher_bursts_total") == 0
    assert value(fams, "h1mock_watcher_pending") == 0
    (srv.provisions / "notes.txt").write_text("not a provision\n")
    (srv.provisions / ".hidden.lua").write_text("return 1\n")
    fams = wait_until(lambda: (lambda f: f if value(f, "h1mock_watcher_events_total",
                                                    outcome="ignored") >= 2 else None)(
        metrics(srv)), 5, 0.02, "the ignored events counted")
    assert value(fams, "h1mock_watcher_events_total", outcome="queued") == 0
    assert value(fams, "h1mock_watcher_pending") == 0
    (srv.provisions / "next.lua").write_text(APP)
    fams = wait_until(lambda: (lambda f: f if value(f, "h1mock_watcher_bursts_total") == 1
                               else None)(metrics(srv)), 5, 0.02, "one burst handled")
    assert value(fams, "h1mock_watcher_events_total", outcome="queued") >= 1
    assert value(fams, "h1mock_watcher_pending") == 0
    assert value(fams, "h1mock_provision_loads_total", result="success") == 2
    assert 'name="next"' in http("GET", srv.admin_url + "/metrics").text


def test_store_documents_by_collection(h1mock):
    srv = h1mock(APP)
    r = http("POST", srv.admin_url + "/app/v1/store/users",
             data=json.dumps([{"name": "a"}, {"name": "b"}]))
    assert r.status_code == 201, r.text
    http("POST", srv.admin_url + "/app/v1/store/odd%22coll", data=json.dumps([{"x": 1}]))
    fams = metrics(srv)
    assert value(fams, "h1mock_store_documents", collection="users") == 2
    assert value(fams, "h1mock_store_documents", collection='odd"coll') == 1
    http("DELETE", srv.admin_url + "/app/v1/store/users")
    assert value(metrics(srv), "h1mock_store_documents", collection="users") is None


def commit_counts(srv):
    fams = metrics(srv)
    return (value(fams, "h1mock_store_commits_total"),
            value(fams, "h1mock_store_committed_writes_total"))


def test_store_commits_count_syncs_and_the_writes_they_made_durable(h1mock, tmp_path):
    """Memory-only, nothing is committed. With --data-dir, one client's
    creates take one commit each (each answer waits for its own), and 16
    clients creating at once share some: fewer fdatasyncs than writes."""
    mem = h1mock(None)
    assert http("POST", mem.url + "/api/items", json={"n": 1}).status_code == 200
    assert commit_counts(mem) == (0, 0)

    srv = h1mock(None, "--data-dir", str(tmp_path / "data"))
    syncs0, writes0 = commit_counts(srv)
    for n in range(20):
        assert http("POST", srv.url + "/api/items", json={"n": n}).status_code == 200
    syncs1, writes1 = commit_counts(srv)
    assert (syncs1 - syncs0, writes1 - writes0) == (20, 20)

    errors = []

    def client(k):
        s = requests.Session()
        s.trust_env = False
        for n in range(25):
            r = s.post(srv.url + "/api/items", json={"client": k, "n": n}, timeout=30)
            if r.status_code != 200:
                errors.append(r.status_code)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    syncs2, writes2 = commit_counts(srv)
    assert writes2 - writes1 == 400
    # How many share a commit depends on how fast the clients are (these
    # are slow ones); none sharing would be one fdatasync per write.
    assert 1 <= syncs2 - syncs1 < 400, "%d commits for 400 concurrent writes" % (syncs2 - syncs1)


def test_journal_dropped_total_only_grows(h1mock):
    srv = h1mock(APP, "--journal-size", "2")
    for _ in range(5):
        http("GET", srv.url + "/app/v1/foo/bar")
    assert value(metrics(srv), "h1mock_journal_dropped_total") == 3
    http("DELETE", srv.admin_url + "/app/v1/requests")
    assert value(metrics(srv), "h1mock_journal_dropped_total") == 3
    for _ in range(3):
        http("GET", srv.url + "/app/v1/foo/bar")
    assert value(metrics(srv), "h1mock_journal_dropped_total") == 4


def test_connections_active_follows_open_connections(h1mock):
    srv = h1mock(APP)
    socks = []
    try:
        for _ in range(3):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            s.sendall(b"GET /app/v1/foo/bar HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(s)[0] == 200
            socks.append(s)
        assert value(metrics(srv), "h1mock_connections_active") == 3
    finally:
        for s in socks:
            s.close()
    wait_until(lambda: value(metrics(srv), "h1mock_connections_active") == 0,
               what="no connection counted after close")


def test_metrics_answers_get_and_head_only(h1mock):
    srv = h1mock(APP)
    r = http("HEAD", srv.admin_url + "/metrics")
    assert r.status_code == 200 and r.content == b""
    r = http("POST", srv.admin_url + "/metrics", data="x")
    assert r.status_code == 405 and r.headers["Allow"] == "GET, HEAD"


def test_metrics_stay_open_with_an_admin_token(h1mock):
    srv = h1mock(APP, "--admin-token", "s3cret")
    http("GET", srv.url + "/app/v1/foo/bar")
    fams = metrics(srv)
    assert value(fams, "h1mock_requests_total", method="GET", status="200",
                 endpoint="answer_get") == 1


def test_the_built_in_default_counts_as_a_load(h1mock):
    srv = h1mock(None)  # no initial: the default serves
    fams = metrics(srv)
    assert value(fams, "h1mock_provision_loads_total", result="success") == 1
    assert value(fams, "h1mock_provision_active_info", name="(default)") == 1
