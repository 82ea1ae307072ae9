"""The request journal: GET/DELETE /app/v1/requests, /count, /unmatched on
the admin port, and the `journal` global in provisions.

Every traffic request is recorded after its response; the ring keeps
--journal-size entries and counts what it evicted in `dropped`.

README: "The journal", "The request journal".
"""

import base64
import re
import socket
import threading
import time

import pytest

from conftest import BIN, assert_exit_2, http, read_response, run_h1mock

APP = r'''
function registerRules()
  app.add_url_rule("/app/v1/foo/bar", "answer_get", answer_get, {"GET"})
  app.add_url_rule("/app/v1/foo/bar", "answer_post", answer_post, {"POST"})
  app.add_url_rule("/items/<int:id>", "item", item, {methods = {"GET", "DELETE"}})
  app.add_url_rule("/slow", "slow", slow)
end
function answer_get() return {resultCode = 0} end
function answer_post() return {resultCode = 0}, 201 end
function item(req, id) if req.method == "DELETE" then return "", 204 end return {id = id} end
function slow() sleep(0.4) return "slept" end
'''

ENTRY_KEYS = {"seq", "time", "remote", "method", "path", "query", "headers", "body",
              "body_encoding", "body_truncated", "body_bytes", "status", "endpoint",
              "provision", "proxied", "fault", "calls", "duration_us"}
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def journal(srv, query="", sub=""):
    r = http("GET", srv.admin_url + "/app/v1/requests" + sub + query)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    return r.json()


def count(srv, query=""):
    return journal(srv, query, "/count")


def seqs(doc):
    return [e["seq"] for e in doc["requests"]]


def traffic(srv):
    """A fixed mix: seq 1..7."""
    assert http("GET", srv.url + "/app/v1/foo/bar").status_code == 200            # 1
    assert http("POST", srv.url + "/app/v1/foo/bar", data="x").status_code == 201  # 2
    assert http("GET", srv.url + "/app/v1/foo/bar/x").status_code == 404          # 3
    assert http("DELETE", srv.url + "/items/7").status_code == 204                # 4
    assert http("GET", srv.url + "/other?q=1").status_code == 404                 # 5
    assert http("PUT", srv.url + "/app/v1/foo/bar").status_code == 405            # 6
    assert http("GET", srv.url + "/items/8?a=1&b=2").status_code == 200           # 7


def test_an_entry_holds_what_was_received_and_answered(h1mock):
    srv = h1mock(APP)
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    try:
        s.sendall(b"POST /app/v1/foo/bar?a=1&b=%20 HTTP/1.1\r\nHost: mock\r\n"
                  b"X-Tag: one\r\nContent-Type: application/json\r\nx-tag: two\r\n"
                  b"Content-Length: 9\r\n\r\n{\"k\":\"v\"}")
        status, _, _ = read_response(s)
        local_port = s.getsockname()[1]
    finally:
        s.close()
    assert status == 201
    doc = journal(srv)
    assert doc["enabled"] is True
    assert doc["dropped"] == 0 and doc["count"] == 1
    assert doc["first_seq"] == doc["last_seq"] == 1
    e = doc["requests"][0]
    assert set(e) == ENTRY_KEYS
    assert e["seq"] == 1
    assert TIME.match(e["time"]), e["time"]
    assert abs(time.mktime(time.strptime(e["time"][:19], "%Y-%m-%dT%H:%M:%S"))
               - time.mktime(time.gmtime())) < 60
    assert e["remote"] == "127.0.0.1:%d" % local_port
    assert e["method"] == "POST"
    assert e["path"] == "/app/v1/foo/bar"
    assert e["query"] == "a=1&b=%20"
    assert e["headers"] == {"host": "mock", "x-tag": "one, two",
                            "content-type": "application/json", "content-length": "9"}
    assert e["body"] == '{"k":"v"}'
    assert e["body_encoding"] == "utf-8"
    assert e["body_truncated"] is False
    assert e["body_bytes"] == 9
    assert e["status"] == 201
    assert e["endpoint"] == "answer_post"
    assert e["provision"] == "initial"
    assert isinstance(e["duration_us"], int) and 0 <= e["duration_us"] < 5000000


def test_admin_calls_are_not_recorded(h1mock):
    srv = h1mock(APP)
    http("GET", srv.admin_url + "/healthz")
    http("GET", srv.admin_url + "/app/v1/provision")
    assert journal(srv)["requests"] == []
    assert count(srv) == {"count": 0, "dropped": 0, "enabled": True}


def test_provision_name_follows_the_active_provision(h1mock):
    srv = h1mock(APP)
    http("GET", srv.url + "/app/v1/foo/bar")
    r = http("POST", srv.admin_url + "/app/v1/provision/mine", data=APP)
    assert r.status_code == 201, r.text
    http("GET", srv.url + "/app/v1/foo/bar")
    assert [e["provision"] for e in journal(srv)["requests"]] == ["initial", "mine"]


def test_the_default_provision_is_named(h1mock):
    srv = h1mock(None)
    http("GET", srv.url + "/nothing/here")
    e = journal(srv)["requests"][0]
    assert e["provision"] == "(default)" and e["status"] == 404 and e["endpoint"] is None


@pytest.mark.parametrize("query,expected", [
    ("", [1, 2, 3, 4, 5, 6, 7]),
    ("?method=GET", [1, 3, 5, 7]),
    ("?method=get", [1, 3, 5, 7]),
    ("?method=PATCH", []),
    ("?path=/app/v1/foo/bar", [1, 2, 6]),
    ("?path=/app/v1/foo", []),
    ("?path=%2Fitems%2F7", [4]),
    ("?path_prefix=/app/v1/foo", [1, 2, 3, 6]),
    ("?path_prefix=/items/", [4, 7]),
    ("?endpoint=answer_get", [1]),
    ("?endpoint=item", [4, 7]),
    ("?endpoint=nope", []),
    ("?status=404", [3, 5]),
    ("?status=204", [4]),
    ("?since=4", [5, 6, 7]),
    ("?since=0", [1, 2, 3, 4, 5, 6, 7]),
    ("?since=7", []),
    ("?since=2&limit=2", [3, 4]),
    ("?limit=2", [6, 7]),
    ("?limit=0", []),
    ("?method=GET&limit=2", [5, 7]),
    ("?method=GET&status=404&path_prefix=/app", [3]),
])
def test_every_filter(h1mock, query, expected):
    srv = h1mock(APP)
    traffic(srv)
    doc = journal(srv, query)
    assert seqs(doc) == expected, doc
    assert doc["count"] == len(expected)
    assert (doc["first_seq"], doc["last_seq"], doc["dropped"]) == (1, 7, 0)
    assert count(srv, query) == {"count": len(expected), "dropped": 0, "enabled": True}


def test_query_and_endpoint_of_each_entry(h1mock):
    srv = h1mock(APP)
    traffic(srv)
    doc = journal(srv)
    assert [e["endpoint"] for e in doc["requests"]] == [
        "answer_get", "answer_post", None, "item", None, None, "item"]
    assert [e["status"] for e in doc["requests"]] == [200, 201, 404, 204, 404, 405, 200]
    assert doc["requests"][6]["query"] == "a=1&b=2"
    assert doc["requests"][4]["query"] == "q=1"


def test_unmatched_lists_what_no_rule_matched(h1mock):
    srv = h1mock(APP)
    traffic(srv)
    doc = journal(srv, sub="/unmatched")
    assert seqs(doc) == [3, 5, 6]
    assert [e["status"] for e in doc["requests"]] == [404, 404, 405]
    assert all(e["endpoint"] is None for e in doc["requests"])
    assert (doc["first_seq"], doc["last_seq"], doc["dropped"], doc["enabled"]) == (1, 7, 0, True)
    assert seqs(journal(srv, "?method=PUT", "/unmatched")) == [6]
    assert seqs(journal(srv, "?limit=1", "/unmatched")) == [6]
    assert seqs(journal(srv, "?since=5", "/unmatched")) == [6]


def test_refused_requests_with_a_whole_head_are_recorded(h1mock):
    """A body over --max-body is refused (413) before any rule runs; the
    journal still shows the request, so a test can tell "refused" from
    "never sent". Bytes that never made a request head are not entries."""
    srv = h1mock(APP, "--max-body", "100")
    from conftest import raw_exchange
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        got = raw_exchange(s, b"POST /app/v1/foo/bar?x=1 HTTP/1.1\r\nHost: mock\r\n"
                              b"Content-Type: text/plain\r\nContent-Length: 5000\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 413 ")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        got = raw_exchange(s, b"NOT HTTP AT ALL\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 400 ")
    assert http("GET", srv.url + "/app/v1/foo/bar").status_code == 200
    doc = journal(srv)
    assert seqs(doc) == [1, 2]
    refused, ok = doc["requests"]
    assert (refused["method"], refused["path"], refused["query"]) == ("POST", "/app/v1/foo/bar", "x=1")
    assert (refused["status"], refused["endpoint"], refused["body"]) == (413, None, "")
    assert refused["headers"]["content-length"] == "5000"
    assert ok["status"] == 200 and ok["endpoint"] == "answer_get"
    assert seqs(journal(srv, sub="/unmatched")) == [1]
    assert count(srv, "?status=413")["count"] == 1


def test_ring_wraps_with_exact_dropped_counts(h1mock):
    srv = h1mock(APP, "--journal-size", "5")
    for i in range(5):
        http("GET", srv.url + "/items/%d" % i)
    doc = journal(srv)
    assert (doc["dropped"], doc["first_seq"], doc["last_seq"], doc["count"]) == (0, 1, 5, 5)
    for i in range(5, 12):
        http("GET", srv.url + "/items/%d" % i)
    doc = journal(srv)
    assert (doc["dropped"], doc["first_seq"], doc["last_seq"], doc["count"]) == (7, 8, 12, 5)
    assert [e["path"] for e in doc["requests"]] == ["/items/%d" % i for i in range(7, 12)]
    assert count(srv) == {"count": 5, "dropped": 7, "enabled": True}
    # "since" older than the oldest kept entry: everything kept, and dropped
    # tells the reader that some are gone.
    doc = journal(srv, "?since=3")
    assert seqs(doc) == [8, 9, 10, 11, 12] and doc["dropped"] == 7
    http("GET", srv.url + "/items/12")
    assert count(srv) == {"count": 5, "dropped": 8, "enabled": True}


def test_delete_clears_resets_dropped_and_numbering_goes_on(h1mock):
    srv = h1mock(APP, "--journal-size", "3")
    for i in range(5):
        http("GET", srv.url + "/items/%d" % i)
    r = http("DELETE", srv.admin_url + "/app/v1/requests")
    assert r.status_code == 200
    assert r.json() == {"result": "success: journal cleared", "cleared": 3, "enabled": True}
    doc = journal(srv)
    assert (doc["dropped"], doc["first_seq"], doc["last_seq"], doc["count"]) == (0, 0, 0, 0)
    assert doc["requests"] == []
    http("GET", srv.url + "/items/9")
    doc = journal(srv)
    assert seqs(doc) == [6] and (doc["first_seq"], doc["last_seq"]) == (6, 6)
    assert http("DELETE", srv.admin_url + "/app/v1/requests").json()["cleared"] == 1
    assert http("DELETE", srv.admin_url + "/app/v1/requests").json()["cleared"] == 0


def test_delete_takes_no_filters_and_other_methods_are_405(h1mock):
    srv = h1mock(APP)
    traffic(srv)
    r = http("DELETE", srv.admin_url + "/app/v1/requests?status=404")
    assert r.status_code == 400
    assert r.json()["result"].startswith("failed: ")
    assert count(srv)["count"] == 7
    r = http("POST", srv.admin_url + "/app/v1/requests", data="x")
    assert r.status_code == 405 and r.headers["Allow"] == "DELETE, GET, HEAD"
    r = http("DELETE", srv.admin_url + "/app/v1/requests/count")
    assert r.status_code == 405 and r.headers["Allow"] == "GET, HEAD"
    r = http("DELETE", srv.admin_url + "/app/v1/requests/unmatched")
    assert r.status_code == 405
    assert http("GET", srv.admin_url + "/app/v1/requests/nope").status_code == 404
    assert count(srv)["count"] == 7


@pytest.mark.parametrize("query,needle", [
    ("status=abc", "status: 'abc' is not an HTTP status (100-999)"),
    ("status=42", "status: '42'"),
    ("limit=-1", "limit: '-1' is not an integer >= 0"),
    ("limit=ten", "limit: 'ten'"),
    ("since=-5", "since: '-5' is not an integer >= 0"),
    ("since=1e3", "since: '1e3'"),
    ("method=G%20T", "method: 'G T' is not an HTTP method name"),
    ("verb=GET", "unknown filter 'verb'"),
    ("status=200&status=404", "filter 'status' is given twice"),
    ("path=", "filter 'path' is empty"),
])
@pytest.mark.parametrize("sub", ["", "/count", "/unmatched"])
def test_bad_filter_values_are_400_and_change_nothing(h1mock, query, needle, sub):
    srv = h1mock(APP, "--journal-size", "4")
    for i in range(6):
        http("GET", srv.url + "/items/%d" % i)
    before = journal(srv)
    r = http("GET", srv.admin_url + "/app/v1/requests" + sub + "?" + query)
    assert r.status_code == 400, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == {"result": "failed: " + needle} or needle in r.json()["result"]
    assert r.json()["result"].startswith("failed: ")
    assert journal(srv) == before


def test_non_utf8_bodies_are_base64(h1mock):
    srv = h1mock(APP)
    raw = bytes([0xff, 0xfe, 0x00, 0x01, 0xc3, 0x28]) + "é".encode()
    http("POST", srv.url + "/app/v1/foo/bar", data=raw)
    http("POST", srv.url + "/app/v1/foo/bar", data="naïve ☃ 😀".encode())
    e1, e2 = journal(srv)["requests"]
    assert e1["body_encoding"] == "base64"
    assert base64.b64decode(e1["body"]) == raw
    assert e1["body_bytes"] == len(raw) and e1["body_truncated"] is False
    assert e2["body_encoding"] == "utf-8" and e2["body"] == "naïve ☃ 😀"


def test_long_bodies_are_truncated_and_counted(h1mock):
    srv = h1mock(APP, "--journal-body-bytes", "16")
    http("POST", srv.url + "/app/v1/foo/bar", data=b"0123456789abcdefXYZ")
    http("POST", srv.url + "/app/v1/foo/bar", data=b"0123456789abcdef")
    # A multi-byte character cut by the limit is dropped, the text stays text.
    http("POST", srv.url + "/app/v1/foo/bar", data=("x" * 15 + "é and more").encode())
    http("POST", srv.url + "/app/v1/foo/bar", data=b"\xff" * 40)
    e1, e2, e3, e4 = journal(srv)["requests"]
    assert (e1["body"], e1["body_truncated"], e1["body_bytes"]) == ("0123456789abcdef", True, 19)
    assert (e2["body"], e2["body_truncated"], e2["body_bytes"]) == ("0123456789abcdef", False, 16)
    assert (e3["body"], e3["body_truncated"], e3["body_encoding"]) == ("x" * 15, True, "utf-8")
    assert e4["body_encoding"] == "base64" and base64.b64decode(e4["body"]) == b"\xff" * 16
    assert e4["body_truncated"] is True and e4["body_bytes"] == 40


def test_default_body_limit_is_64k(h1mock):
    srv = h1mock(APP)
    http("POST", srv.url + "/app/v1/foo/bar", data=b"a" * 70000)
    e = journal(srv)["requests"][0]
    assert len(e["body"]) == 65536 and e["body_truncated"] is True and e["body_bytes"] == 70000


def test_non_utf8_path_and_headers_still_give_json(h1mock):
    srv = h1mock(APP)
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    try:
        s.sendall(b"GET /caf%E9 HTTP/1.1\r\nHost: h\r\nX-Latin: caf\xe9\r\n"
                  b"X-Cut: \xe2\x82!\r\n\r\n")
        assert read_response(s)[0] == 404
    finally:
        s.close()
    r = http("GET", srv.admin_url + "/app/v1/requests")
    r.content.decode("utf-8")  # strict: the answer is valid UTF-8
    e = r.json()["requests"][0]
    assert e["path"] == "/caf\ufffd"
    assert e["headers"]["x-latin"] == "caf\ufffd"
    # One U+FFFD per ill-formed subsequence, as Lua's json.encode and Python
    # replace them (a euro sign cut short is one, not one per byte).
    assert e["headers"]["x-cut"] == b"\xe2\x82!".decode("utf-8", "replace") == "\ufffd!"
    assert seqs(journal(srv, "?path=%2Fcaf%E9")) == [1]


SLEEPER = r'''
function registerRules() app.add_url_rule("/slow", "slow", slow) end
function slow() log.info("slow view started") sleep(2) return "slept" end
'''


def test_a_sleeping_request_is_recorded_after_its_response(h1mock):
    srv = h1mock(SLEEPER)
    result = {}

    def call():
        result["r"] = http("GET", srv.url + "/slow")

    t = threading.Thread(target=call)
    t.start()
    srv.wait_log(r"slow view started")  # the request is in, its answer 2 s away
    assert count(srv)["count"] == 0
    t.join(10)
    assert result["r"].text == "slept"
    e = journal(srv)["requests"][0]
    assert e["endpoint"] == "slow" and e["duration_us"] >= 1900000


def test_disabled_journal_answers_empty(h1mock):
    srv = h1mock(APP, "--journal-size", "0")
    traffic(srv)
    for sub in ("", "/unmatched"):
        doc = journal(srv, sub=sub)
        assert doc == {"enabled": False, "dropped": 0, "first_seq": 0, "last_seq": 0,
                       "count": 0, "skipped": 0, "requests": []}
    assert count(srv, "?status=404") == {"count": 0, "dropped": 0, "enabled": False}
    r = http("DELETE", srv.admin_url + "/app/v1/requests")
    assert r.status_code == 200 and r.json()["cleared"] == 0 and r.json()["enabled"] is False
    assert http("GET", srv.admin_url + "/app/v1/requests?limit=x").status_code == 400


def test_journal_size_from_the_environment(h1mock):
    srv = h1mock(APP, env={"H1MOCK_JOURNAL_SIZE": "2", "H1MOCK_JOURNAL_BODY_BYTES": "3"})
    for i in range(3):
        http("POST", srv.url + "/app/v1/foo/bar", data="abcdef")
    doc = journal(srv)
    assert doc["dropped"] == 1 and doc["count"] == 2
    assert doc["requests"][0]["body"] == "abc"


# -------------------------------------------------------------------- options

@pytest.mark.parametrize("args,env,message", [
    (["--journal-size", "-1"], None,
     "h1mock: --journal-size: '-1' is not a number of entries (0 to 10000000)"),
    (["--journal-size", "many"], None, "h1mock: --journal-size: 'many' is not a number"),
    (["--journal-size", "10000001"], None, "h1mock: --journal-size: '10000001'"),
    (["--journal-size", "99999999999999999999999"], None, "--journal-size: '9999"),
    (["--journal-size", " 5"], None, "--journal-size: ' 5'"),
    (["--journal-size=5k"], None, "--journal-size: '5k'"),
    (["--journal-size"], None, "h1mock: --journal-size needs a value (N)"),
    (["--journal-body-bytes", "lots"], None,
     "h1mock: --journal-body-bytes: 'lots' is not a size (bytes, or with k/M/G, e.g. 512k)"),
    (["--journal-body-bytes", "-3"], None, "--journal-body-bytes: '-3'"),
    ([], {"H1MOCK_JOURNAL_SIZE": "x"}, "h1mock: H1MOCK_JOURNAL_SIZE: 'x' is not a number"),
    ([], {"H1MOCK_JOURNAL_BODY_BYTES": "1q"}, "h1mock: H1MOCK_JOURNAL_BODY_BYTES: '1q'"),
    (["--journal-max-bytes", "1T"], None,
     "h1mock: --journal-max-bytes: '1T' is not a size (bytes, or with k/M/G, e.g. 512k)"),
    ([], {"H1MOCK_JOURNAL_MAX_BYTES": "-1"}, "h1mock: H1MOCK_JOURNAL_MAX_BYTES: '-1'"),
])
def test_bad_journal_options_exit_2(tmp_path, args, env, message):
    assert_exit_2(run_h1mock(args, env, provisions=tmp_path), message)


def test_help_explains_the_new_options():
    import subprocess
    out = subprocess.run([BIN, "--help"], capture_output=True, timeout=15).stdout.decode()
    for opt in ("--journal-size N", "--journal-body-bytes SIZE", "--journal-max-bytes SIZE",
                "--access-log off|text|json", "--admin-token TOKEN"):
        assert opt in out, out
    assert "memory the journal may hold (default 256M, 0: no limit)" in out


def test_large_bodies_meet_the_byte_limit_before_the_ring_is_full(h1mock):
    """With --journal-max-bytes 100k, 30 KB bodies leave room for three
    entries of the ten the ring has: the oldest go, and dropped says so."""
    srv = h1mock(APP, "--journal-max-bytes", "100k", "--journal-size", "10")
    body = "x" * 30000
    for _ in range(6):
        assert http("POST", srv.url + "/app/v1/foo/bar", data=body).status_code == 201
    doc = journal(srv)
    assert (doc["count"], doc["dropped"], doc["first_seq"], doc["last_seq"]) == (3, 3, 4, 6), doc
    assert all(e["body"] == body and not e["body_truncated"] for e in doc["requests"])
    for _ in range(12):  # small ones: now the ring of ten is the limit
        assert http("GET", srv.url + "/app/v1/foo/bar").status_code == 200
    doc = count(srv)
    assert (doc["count"], doc["dropped"]) == (10, 8), doc


# ------------------------------------------------------------------------ Lua

NTH = r'''
function registerRules()
  app.add_url_rule("/pay", "pay", pay, {"POST"})
  app.add_url_rule("/find", "find", find)
  app.add_url_rule("/count", "count", count)
  app.add_url_rule("/misuse/<int:n>", "misuse", misuse)
end

-- The request being served is recorded after its response: this call is
-- the count so far plus one.
function pay()
  local n = journal.count{endpoint = "pay"} + 1
  if n == 3 then return {error = "declined", call = n}, 402 end
  return {ok = true, call = n}
end

function find(req)
  return jsonify(journal.find{path = req.args.path, limit = tonumber(req.args.limit),
                              since = tonumber(req.args.since)})
end

function count(req)
  local a = req.args
  return {n = journal.count{method = a.method, path = a.path, path_prefix = a.prefix,
                            endpoint = a.endpoint, status = tonumber(a.status),
                            since = tonumber(a.since), limit = tonumber(a.limit)}}
end

local bad = {
  function() return journal.count{bogus = 1} end,
  function() return journal.count{status = "x"} end,
  function() return journal.count{status = 42} end,
  function() return journal.find{limit = -1} end,
  function() return journal.count("GET") end,
  function() return journal.count{method = "G T"} end,
  function() return journal.count{path = ""} end,
  function() return journal.count{[1] = "x"} end,
}
function misuse(req, n) return {n = bad[n]()} end
'''


def test_lua_journal_count_answers_the_third_call_differently(h1mock):
    srv = h1mock(NTH)
    got = [http("POST", srv.url + "/pay") for _ in range(4)]
    assert [r.status_code for r in got] == [200, 200, 402, 200]
    assert [r.json()["call"] for r in got] == [1, 2, 3, 4]
    assert got[2].json() == {"error": "declined", "call": 3}
    # Other traffic does not count for the endpoint.
    http("GET", srv.url + "/count")
    assert http("POST", srv.url + "/pay").json() == {"ok": True, "call": 5}
    # A cleared journal starts the sequence of calls again.
    http("DELETE", srv.admin_url + "/app/v1/requests")
    assert http("POST", srv.url + "/pay").json() == {"ok": True, "call": 1}


def test_lua_journal_count_takes_every_filter(h1mock):
    srv = h1mock(NTH)
    http("POST", srv.url + "/pay")                 # 1 200 pay
    http("GET", srv.url + "/nope")                 # 2 404
    http("POST", srv.url + "/pay")                 # 3 200 pay
    http("POST", srv.url + "/pay")                 # 4 402 pay

    def n(q):
        return http("GET", srv.url + "/count?" + q).json()["n"]

    # Each /count call is recorded too, after its answer: seq 5, 6, ...
    assert n("") == 4
    assert n("method=post") == 3
    assert n("path=/pay") == 3
    assert n("prefix=/n") == 1
    assert n("endpoint=pay") == 3
    assert n("status=402") == 1
    assert n("since=2") == 8     # seq 3 to 10
    assert n("since=2&limit=2") == 2
    assert n("limit=2&endpoint=pay") == 2
    assert n("endpoint=count") == 9


def test_lua_journal_find_gives_entries(h1mock):
    srv = h1mock(NTH)
    http("POST", srv.url + "/pay?x=1", data=b"\xffbin")
    http("POST", srv.url + "/pay", data="two", headers={"X-Id": "2"})
    http("GET", srv.url + "/nope")
    got = http("GET", srv.url + "/find?path=/pay").json()
    assert [e["seq"] for e in got] == [1, 2]
    e1, e2 = got
    assert set(e1) == ENTRY_KEYS
    assert TIME.match(e1["time"])
    assert e1["query"] == "x=1" and e1["method"] == "POST" and e1["status"] == 200
    assert e1["body_encoding"] == "base64" and base64.b64decode(e1["body"]) == b"\xffbin"
    assert e2["body"] == "two" and e2["headers"]["x-id"] == "2"
    assert e2["endpoint"] == "pay" and e2["provision"] == "initial"
    # In Lua a field that is null in the admin API's JSON is false.
    assert e1["fault"] is False and e1["proxied"] is False and e1["calls"] == []
    assert e2["remote"].startswith("127.0.0.1:")
    assert [e["seq"] for e in http("GET", srv.url + "/find?limit=1").json()] == [4]
    assert [e["seq"] for e in http("GET", srv.url + "/find?since=1&limit=2").json()] == [2, 3]
    nope = http("GET", srv.url + "/find?path=/nope").json()
    assert "endpoint" not in nope[0]  # nil: no rule matched
    assert http("GET", srv.url + "/find?path=/never").text.strip() == "[]"


@pytest.mark.parametrize("n,message", [
    (1, "journal.count: unknown filter bogus"),
    (2, "journal.count: status must be an integer >= 0"),
    (3, "journal.count: status must be an HTTP status (100-999)"),
    (4, "journal.find: limit must be an integer >= 0"),
    (5, "journal.count: the filter must be a table, not a string"),
    (6, "journal.count: method 'G T' is not an HTTP method name"),
    (7, "journal.count: path is empty"),
    (8, "journal.count: unknown filter 1"),
])
def test_lua_journal_misuse_raises(h1mock, n, message):
    srv = h1mock(NTH)
    r = http("GET", srv.url + "/misuse/%d" % n)
    assert r.status_code == 500
    srv.wait_log(re.escape(message))


def test_lua_journal_when_disabled(h1mock):
    srv = h1mock(NTH, "--journal-size", "0")
    assert [http("POST", srv.url + "/pay").json()["call"] for _ in range(3)] == [1, 1, 1]
    assert http("GET", srv.url + "/find").text.strip() == "[]"


def test_check_loads_provisions_that_read_the_journal(tmp_path):
    import subprocess
    p = tmp_path / "reads.lua"
    p.write_text("local n = journal.count{}\n" + NTH)
    res = subprocess.run([BIN, "--check", str(p)], capture_output=True, timeout=15)
    assert res.returncode == 0, res.stderr
    assert b"ok (4 rules)" in res.stdout


def test_status_filters_take_every_status_a_view_can_answer(h1mock):
    srv = h1mock(r'''
function registerRules()
  app.add_url_rule("/odd", "odd", function() return "odd", 799 end)
  app.add_url_rule("/count", "count", function() return {n = journal.count{status = 799}} end)
end
''')
    assert http("GET", srv.url + "/odd").status_code == 799
    assert count(srv, "?status=799")["count"] == 1
    assert http("GET", srv.url + "/count").json() == {"n": 1}


def test_refused_filter_values_are_shown_whole(h1mock):
    srv = h1mock(APP)
    r = http("GET", srv.admin_url + "/app/v1/requests?method=G%00T")
    assert r.status_code == 400
    assert "method: 'G\\x00T'" in r.json()["result"], r.text
    r = http("GET", srv.admin_url + "/app/v1/requests?since=99999999999999999999")
    assert r.status_code == 400
    assert "(of at most 18 digits)" in r.json()["result"], r.text
