"""http.request and http.request_async: outbound calls from provisions
(README "Calling other services"), with a second h1mock or a small Python
server as the upstream.

README: "Calling other services".
"""

import json
import socket
import struct
import threading
import time

import pytest

from conftest import assert_exit_2, http, run_h1mock, wait_until
from test_cli import free_port


class Upstream:
    """A loopback HTTP server on a raw socket: for each connection it reads
    one request, keeps it in `requests` (method, target, headers as a list,
    body), and sends `reply(request)` bytes, then closes; reply None holds
    the connection open until the peer closes it (counted in `closed`)."""

    def __init__(self, reply):
        self.reply = reply
        self.requests = []
        self.closed = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self._stop = False
        self._conns = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self._conns.append(c)
            threading.Thread(target=self._one, args=(c,), daemon=True).start()

    def _one(self, c):
        c.settimeout(20)
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = c.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = [tuple(x.split(": ", 1)) for x in lines[1:]]
            length = int(dict((k.lower(), v) for k, v in headers).get("content-length", "0"))
            while len(body) < length:
                body += c.recv(65536)
            req = {"method": method, "target": target, "headers": headers, "body": body}
            self.requests.append(req)
            out = self.reply(req)
            if out is None:
                while c.recv(65536):
                    pass
                self.closed += 1
            else:
                c.sendall(out)
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self._stop = True
        self.sock.close()
        for c in self._conns:
            try:
                c.close()
            except OSError:
                pass


@pytest.fixture
def upstream():
    made = []

    def factory(reply):
        u = Upstream(reply)
        made.append(u)
        return u

    yield factory
    for u in made:
        u.close()


def answer(status=200, headers=(), body=b""):
    head = "HTTP/1.1 %d X\r\n" % status + "".join("%s: %s\r\n" % h for h in headers)
    return (head + "Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)).encode() + body


# The caller: GET /call?u=URL&... does http.request with the options in the
# query and answers what it got as JSON.
CALLER = r'''
function registerRules()
  app.get("/call", function(req)
    local a = req.args
    local opts = {url = a.u, method = a.m, timeout = tonumber(a.t)}
    if a.h then opts.headers = {["X-One"] = "1", ["X-Num"] = 42} end
    if a.b == "json" then opts.body = {name = "x", list = {1, 2}}
    elseif a.b then opts.body = a.b end
    local r, err = http.request(opts)
    if not r then return {error = err} end
    return {status = r.status, headers = r.headers, header_list = r.header_list, body = r.body,
            json = r.body:sub(1, 1) == "{" and r:json() or false}
  end)
  app.get("/fast", function() return "fast" end)
  app.get("/misuse/<what>", function(req, what)
    if what == "notable" then return http.request("http://x") end
    if what == "nourl" then return http.request({}) end
    if what == "badheader" then return http.request({url = "http://x", headers = {["a"] = {}}}) end
    if what == "badbody" then return http.request({url = "http://x", body = 5}) end
    if what == "badtimeout" then return http.request({url = "http://x", timeout = -1}) end
    if what == "coroutine" then
      local co = coroutine.create(function() return http.request({url = "http://x"}) end)
      local ok, e = coroutine.resume(co)
      error(e)
    end
  end)
end
'''


def call(srv, **params):
    r = http("GET", srv.url + "/call", params=params, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def test_request_sends_method_headers_body_and_reads_the_answer(h1mock, upstream):
    up = upstream(lambda req: answer(201, [("Content-Type", "application/json"),
                                           ("Set-Cookie", "a=1"), ("set-cookie", "b=2"),
                                           ("X-Echo", req["method"])],
                                     json.dumps({"got": req["body"].decode()}).encode()))
    srv = h1mock(CALLER)
    got = call(srv, u=up.url + "/p/q?x=1&y=%20", m="PUT", h="1", b="json")
    assert got["status"] == 201
    assert got["headers"]["set-cookie"] == "a=1, b=2"
    assert got["headers"]["x-echo"] == "PUT"
    assert got["header_list"][:4] == [["Content-Type", "application/json"], ["Set-Cookie", "a=1"],
                                      ["set-cookie", "b=2"], ["X-Echo", "PUT"]]
    sent = up.requests[0]
    assert sent["method"] == "PUT" and sent["target"] == "/p/q?x=1&y=%20"
    hdrs = dict(sent["headers"])
    assert hdrs["X-One"] == "1" and hdrs["X-Num"] == "42"
    assert hdrs["Content-Type"] == "application/json"
    assert json.loads(sent["body"]) == {"name": "x", "list": [1, 2]}
    assert got["json"] == {"got": sent["body"].decode()}
    # A string body goes as it is, with no Content-Type added.
    got = call(srv, u=up.url + "/s", m="POST", b="plain text")
    assert up.requests[1]["body"] == b"plain text"
    assert "Content-Type" not in dict(up.requests[1]["headers"])


def test_concurrent_calls_wait_together_while_others_are_served(h1mock):
    upstream_srv = h1mock('function registerRules()\n'
                          '  app.get("/slow", function() sleep(1); return "slow" end)\n'
                          'end\n')
    srv = h1mock(CALLER)
    assert http("GET", srv.url + "/fast").text == "fast"
    out = {}

    def one(i):
        out[i] = (call(srv, u=upstream_srv.url + "/slow"), time.monotonic())

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    # While the four wait on the upstream, other rules answer.
    wait_until(lambda: len(upstream_srv.log.split("\n")) > 0)
    fast = http("GET", srv.url + "/fast")
    fast_at = time.monotonic()
    for t in threads:
        t.join(30)
    assert fast.text == "fast"
    assert all(out[i][0] == {"status": 200, "headers": out[i][0]["headers"],
                             "header_list": out[i][0]["header_list"], "body": "slow",
                             "json": False} for i in range(4)), out
    assert all(fast_at < out[i][1] for i in range(4))
    # One after the other they would take 4 s; together about 1.
    assert time.monotonic() - t0 < 3.5


def test_every_failure_is_nil_and_a_message(h1mock, upstream):
    garbage = upstream(lambda req: b"this is not HTTP\r\n\r\n")
    big = upstream(lambda req: answer(200, body=b"x" * 5000))
    silent = upstream(lambda req: None)
    refused_port = free_port()
    srv = h1mock(CALLER, "--client-max-body", "4k")
    assert call(srv, u="http://127.0.0.1:%d/" % refused_port) == {"error": "connection refused"}
    assert call(srv, u=silent.url, t="0.3") == {"error": "timed out after 0.3 s"}
    err = call(srv, u="http://no-such-host.invalid/")["error"]
    assert err.startswith("cannot resolve 'no-such-host.invalid'"), err
    err = call(srv, u=garbage.url)["error"]
    assert err.startswith("the answer is malformed"), err
    assert call(srv, u=big.url) == {"error": "the answer's body is larger than 4096 bytes"}
    assert call(srv, u="https://example.com/") == {"error": "https is not supported yet"}
    assert call(srv, u="ftp://x/")["error"], "a URL that is not http:// fails"
    err = call(srv, u=big.url, m="BAD METHOD")["error"]
    assert "method" in err, err
    # Each was counted as an error; the server serves on.
    assert http("GET", srv.url + "/fast").text == "fast"
    m = http("GET", srv.admin_url + "/metrics").text
    assert 'h1mock_http_client_requests_total{result="error"} 8' in m, m


def test_misuse_raises_and_names_the_function(h1mock):
    srv = h1mock(CALLER)
    for what, msg in [("notable", "http.request: expects a table of options"),
                      ("nourl", "http.request: opts.url must be a string"),
                      ("badheader", "opts.headers['a'] is a table, not a string"),
                      ("badbody", "opts.body must be a string, or a table to send as JSON"),
                      ("badtimeout", "opts.timeout must be a number of seconds"),
                      ("coroutine", "http.request: not allowed inside a coroutine")]:
        r = http("GET", srv.url + "/misuse/" + what)
        assert r.status_code == 500, (what, r.text)
        srv.wait_log(msg.replace("(", r"\(").replace("[", r"\[").replace("'", "'"))


def test_at_load_time_it_raises(h1mock, tmp_path):
    srv = h1mock('http.request({url = "http://127.0.0.1:1/"})\n'
                 'function registerRules() app.get("/x", function() return "x" end) end\n')
    srv.wait_log(r"initial\.lua:1: http\.request is only available while a request runs")
    assert http("GET", srv.url + "/x").status_code == 404  # the default serves


def test_outbound_policy(h1mock, upstream):
    up = upstream(lambda req: answer(200, body=b"ok"))
    off = h1mock(CALLER, "--outbound", "off")
    assert call(off, u=up.url) == {"error": "outbound connections are turned off (--outbound off)"}
    assert up.requests == []
    lo = h1mock(CALLER, env={"H1MOCK_OUTBOUND": "loopback"})
    assert call(lo, u=up.url)["body"] == "ok"
    err = call(lo, u="http://192.0.2.1/")["error"]
    assert "only loopback addresses are allowed (--outbound loopback)" in err, err


def test_bad_option_values_are_refused(tmp_path):
    assert_exit_2(run_h1mock(["--outbound", "lan"], provisions=tmp_path),
                  "h1mock: --outbound: 'lan' is not an outbound policy (any, loopback or off)")
    assert_exit_2(run_h1mock([], provisions=tmp_path, env={"H1MOCK_CLIENT_MAX_BODY": "big"}),
                  "h1mock: H1MOCK_CLIENT_MAX_BODY: 'big' is not a size")


def test_journal_lists_the_calls_and_metrics_count_them(h1mock, upstream):
    up = upstream(lambda req: answer(204))
    srv = h1mock(CALLER)
    call(srv, u=up.url + "/a?b=1")
    call(srv, u="http://127.0.0.1:1/")
    http("GET", srv.url + "/fast")
    entries = http("GET", srv.admin_url + "/app/v1/requests").json()["requests"]
    c1, c2, c3 = (e["calls"] for e in entries)
    assert len(c1) == 1 and c1[0]["method"] == "GET" and c1[0]["url"] == up.url + "/a?b=1"
    assert c1[0]["status"] == 204 and c1[0]["error"] is None and c1[0]["duration_us"] > 0
    assert c2 == [{"method": "GET", "url": "http://127.0.0.1:1/", "status": None,
                   "duration_us": c2[0]["duration_us"], "error": "connection refused"}]
    assert c3 == []
    m = http("GET", srv.admin_url + "/metrics").text
    assert 'h1mock_http_client_requests_total{result="ok"} 1' in m
    assert 'h1mock_http_client_requests_total{result="error"} 1' in m
    assert "h1mock_http_client_duration_seconds_count 2" in m


def test_a_call_in_flight_keeps_its_provision_across_a_reload(h1mock, upstream):
    release = threading.Event()

    def slow(req):
        release.wait(10)
        return answer(200, body=b"late")

    up = upstream(slow)
    srv = h1mock(CALLER.replace('"/fast", function() return "fast"',
                                '"/fast", function() return "old"'))
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("r", call(srv, u=up.url)))
    t.start()
    wait_until(lambda: up.requests, what="the call reached the upstream")
    new = 'function registerRules() app.get("/fast", function() return "new" end) end\n'
    r = http("POST", srv.admin_url + "/app/v1/provision/initial", data=new)
    assert r.status_code in (200, 201), r.text
    wait_until(lambda: http("GET", srv.url + "/fast").text == "new", what="the new provision")
    release.set()
    t.join(15)
    assert out["r"]["body"] == "late"  # the old provision's view finished its work


def test_a_client_that_goes_away_cancels_its_call(h1mock, upstream):
    up = upstream(lambda req: None)
    srv = h1mock(CALLER)
    s = socket.create_connection(("127.0.0.1", srv.port))
    s.sendall(("GET /call?u=%s HTTP/1.1\r\nHost: x\r\n\r\n" % up.url).encode())
    wait_until(lambda: up.requests, what="the call reached the upstream")
    # A reset, not a half-close (after which a client may still read).
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    wait_until(lambda: up.closed == 1, what="the upstream connection closed")
    assert http("GET", srv.url + "/fast").text == "fast"
    # A cancelled call has no outcome to count.
    m = http("GET", srv.admin_url + "/metrics").text
    assert 'h1mock_http_client_requests_total{result="error"} 0' in m


ASYNC = r'''
function registerRules()
  app.get("/fire", function(req)
    local ok, err = http.request_async({url = req.args.u, method = "POST", body = {event = "x"}})
    return {ok = ok, err = err}
  end)
  app.get("/flood", function(req)
    local sent, refused, msg = 0, 0, nil
    for i = 1, 300 do
      local ok, err = http.request_async({url = req.args.u, timeout = 2})
      if ok then sent = sent + 1 else refused = refused + 1; msg = err end
    end
    return {sent = sent, refused = refused, msg = msg}
  end)
end
'''


def test_request_async_answers_at_once_and_logs_the_outcome(h1mock, upstream):
    release = threading.Event()

    def slow(req):
        release.wait(10)
        return answer(202)

    up = upstream(slow)
    srv = h1mock(ASYNC)
    r = http("GET", srv.url + "/fire", params={"u": up.url + "/hook"})
    assert r.json() == {"ok": True}  # answered before the upstream did
    wait_until(lambda: up.requests, what="the webhook reached the upstream")
    assert json.loads(up.requests[0]["body"]) == {"event": "x"}
    release.set()
    srv.wait_log(r"INFO http\.request_async POST http://127\.0\.0\.1:\d+/hook: 202 in ")
    r = http("GET", srv.url + "/fire", params={"u": "http://127.0.0.1:1/"})
    assert r.json() == {"ok": True}
    srv.wait_log(r"WARN http\.request_async POST http://127\.0\.0\.1:1/ failed after .*: "
                 r"connection refused")


def test_request_async_in_flight_is_capped(h1mock, upstream):
    up = upstream(lambda req: None)
    srv = h1mock(ASYNC)
    r = http("GET", srv.url + "/flood", params={"u": up.url})
    assert r.json() == {"sent": 256, "refused": 44,
                        "msg": "too many outbound calls in flight (256 at most)"}
    # Once they time out, calls go again.
    srv.wait_log(r"failed after .*timed out after 2 s")
    wait_until(lambda: http("GET", srv.url + "/fire", params={"u": "http://127.0.0.1:1/"})
               .json() == {"ok": True}, timeout=10)
