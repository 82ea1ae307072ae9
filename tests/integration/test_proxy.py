"""--proxy URL and http.forward(req, url): requests no rule's path matches
are forwarded (README "Calling other services", "Proxying").

README: "Proxying".
"""

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from conftest import http, run_h1mock, wait_until
from test_cli import free_port
from test_outbound import answer, upstream  # noqa: F401 - the fixture

FRONT = r'''
function registerRules()
  app.get("/local", function() return "local" end)
  app.get("/fw/<path:p>", function(req, p)
    return http.forward(req, req.args.to or ("http://" .. req.host))
  end)
  app.after_request(function(r) r.headers:set("X-After", "yes"); return r end)
end
'''


def echo(req):
    body = json.dumps({"method": req["method"], "target": req["target"],
                       "headers": req["headers"], "body": req["body"].decode()}).encode()
    return answer(201, [("Content-Type", "application/json"), ("Connection", "X-Private"),
                        ("X-Private", "hop"), ("Keep-Alive", "timeout=5"),
                        ("Proxy-Authenticate", "Basic"), ("Upgrade", "h2c"),
                        ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("X-Up", "yes")], body)


def test_unrouted_requests_go_upstream_with_method_headers_query_and_body(h1mock, upstream):
    up = upstream(echo)
    srv = h1mock(FRONT, "--proxy", up.url + "/base/")
    r = http("PATCH", srv.url + "/a/b%20c?x=1&y=%2F",
             headers={"X-Mine": "1", "Connection": "X-Hop", "X-Hop": "drop me",
                      "TE": "trailers", "Proxy-Authorization": "Basic eA=="},
             data=b"payload")
    assert r.status_code == 201, r.text
    got = r.json()
    assert got["method"] == "PATCH"
    assert got["target"] == "/base/a/b%20c?x=1&y=%2F"
    sent = {k.lower(): v for k, v in got["headers"]}
    assert sent["x-mine"] == "1" and got["body"] == "payload"
    assert sent["host"] == "127.0.0.1:%d" % up.port  # the upstream's own authority
    assert sent["via"].startswith("1.1 h1mock-")
    for hop in ("x-hop", "te", "proxy-authorization", "connection"):
        assert hop not in sent or hop == "connection" and sent[hop] == "keep-alive", (hop, sent)
    # The answer: end-to-end headers back, hop-by-hop ones dropped, hooks ran.
    assert r.headers["X-Up"] == "yes" and r.headers["X-After"] == "yes"
    assert r.raw.headers.getlist("Set-Cookie") == ["a=1", "b=2"]
    for hop in ("X-Private", "Keep-Alive", "Proxy-Authenticate", "Upgrade"):
        assert hop not in r.headers, hop
    assert r.headers["Content-Length"] == str(len(r.content))
    # Routed paths stay local; a path with rules but not this method is a 405.
    assert http("GET", srv.url + "/local").text == "local"
    r = http("DELETE", srv.url + "/local")
    assert r.status_code == 405 and len(up.requests) == 1


class KeepAliveUpstream(ThreadingHTTPServer):
    """A keep-alive HTTP/1.1 upstream that answers after 0.2 s (so that a
    wave of requests is in flight at once) and counts the connections it
    accepted."""

    daemon_threads = True

    def __init__(self):
        self.accepted = 0
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                with outer._lock:  # one thread per connection
                    outer.accepted += 1
                super().setup()

            def do_GET(self):
                time.sleep(0.2)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"up")

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


def test_a_wave_of_proxied_requests_reuses_the_connections_of_the_last(h1mock):
    up = KeepAliveUpstream()
    try:
        srv = h1mock(FRONT, "--proxy", "http://127.0.0.1:%d" % up.server_address[1])

        def wave():
            with ThreadPoolExecutor(16) as pool:
                got = list(pool.map(lambda i: http("GET", srv.url + "/w/%d" % i, timeout=20),
                                    range(16)))
            assert [(r.status_code, r.text) for r in got] == [(200, "up")] * 16

        wave()
        opened = up.accepted
        assert 1 <= opened <= 16
        wave()
        # Every connection of the first wave waited in the pool: sixteen in
        # all are enough for both waves (a pool of 4 per host:port closed 12
        # of them and opened them again).
        assert up.accepted <= 16, (opened, up.accepted)
    finally:
        up.shutdown()
        up.server_close()


def test_proxied_requests_are_journaled_as_such_not_as_unmatched(h1mock, upstream):
    up = upstream(lambda req: answer(200, body=b"from upstream"))
    srv = h1mock(FRONT, "--proxy", up.url)
    assert http("GET", srv.url + "/elsewhere").text == "from upstream"
    assert http("DELETE", srv.url + "/local").status_code == 405
    entries = http("GET", srv.admin_url + "/app/v1/requests").json()["requests"]
    assert [(e["path"], e["status"], e["proxied"], e["endpoint"]) for e in entries] == [
        ("/elsewhere", 200, True, None), ("/local", 405, False, None)]
    unmatched = http("GET", srv.admin_url + "/app/v1/requests/unmatched").json()["requests"]
    assert [e["path"] for e in unmatched] == ["/local"]
    m = http("GET", srv.admin_url + "/metrics").text
    assert 'h1mock_http_client_requests_total{result="ok"} 1' in m


def test_the_upstream_failing_is_a_502_and_a_big_answer_too(h1mock, upstream):
    big = upstream(lambda req: answer(200, body=b"y" * 3000))
    srv = h1mock(FRONT, "--proxy", "http://127.0.0.1:%d" % free_port(), "--client-max-body", "2k")
    r = http("GET", srv.url + "/x")
    assert r.status_code == 502
    assert r.text == "502 Bad Gateway: the upstream did not answer: connection refused\n"
    assert r.headers["X-After"] == "yes"
    r = http("GET", srv.url + "/fw/y", params={"to": big.url})
    assert r.status_code == 502
    assert "the answer's body is larger than 2048 bytes" in r.text
    # The request side is capped by --max-body before anything is sent.
    r = http("POST", srv.url + "/x", data=b"z" * 2000000)
    assert r.status_code == 413 and len(big.requests) == 1


def test_a_proxy_pointing_at_itself_answers_508_instead_of_looping(h1mock):
    port = free_port()
    # --port after the fixture's --port 0: the last one wins.
    srv = h1mock(FRONT, "--port", str(port), "--proxy", "http://127.0.0.1:%d" % port)
    r = http("GET", srv.url + "/round")
    assert r.status_code == 508, r.text
    assert r.reason == "Loop Detected"
    assert "forwarded by this server already" in r.text
    entries = http("GET", srv.admin_url + "/app/v1/requests").json()["requests"]
    # The copy that came back was refused; the original got that answer.
    assert [(e["status"], "via" in e["headers"]) for e in entries] == [(508, True), (508, False)]
    # http.forward to itself: the same.
    r = http("GET", srv.url + "/fw/again")
    assert r.status_code == 508 and r.headers["X-After"] == "yes"


def test_forward_from_a_view_goes_through_after_request(h1mock, upstream):
    up = upstream(echo)
    srv = h1mock(FRONT)
    r = http("POST", srv.url + "/fw/p?q=2&to=" + up.url + "/pre", data=b"b",
             headers={"X-Keep": "k"})
    # POST is not a method of /fw/<path:p>: a 405 stays a 405.
    assert r.status_code == 405 and up.requests == []
    r = http("GET", srv.url + "/fw/p", params={"q": "2", "to": up.url + "/pre"},
             headers={"X-Keep": "k"})
    assert r.status_code == 201, r.text
    assert r.json()["target"] == "/pre/fw/p?q=2&to=" + up.url.replace(":", "%3A").replace(
        "/", "%2F") + "%2Fpre"
    assert r.headers["X-After"] == "yes" and r.headers["X-Up"] == "yes"
    assert "X-Private" not in r.headers
    e = http("GET", srv.admin_url + "/app/v1/requests").json()["requests"][-1]
    assert e["proxied"] is False and e["status"] == 201
    assert [(c["url"], c["status"]) for c in e["calls"]] == [
        (up.url + "/pre/fw/p?" + r.request.url.split("?", 1)[1], 201)]


def test_forward_misuse_raises(h1mock):
    srv = h1mock(FRONT)
    r = http("GET", srv.url + "/fw/x", params={"to": "https://example.com"})
    assert r.status_code == 500
    srv.wait_log(r"http\.forward: 'https://example\.com': https is not supported yet")


def test_a_bad_proxy_url_is_refused_at_start(tmp_path):
    res = run_h1mock(["--proxy", "https://up"], provisions=tmp_path)
    assert res.returncode == 1
    assert res.stderr.decode() == "h1mock: --proxy: 'https://up': https is not supported yet\n"
    res = run_h1mock([], provisions=tmp_path, env={"H1MOCK_PROXY": "http://up/?x"})
    assert res.returncode == 1
    assert "the URL must not hold a query or a fragment" in res.stderr.decode()


def test_the_default_provision_proxies_what_it_does_not_serve(h1mock, upstream):
    up = upstream(lambda req: answer(200, body=b"upstream"))
    srv = h1mock(None, "--proxy", up.url)
    assert http("GET", srv.url + "/not-ours").text == "upstream"
    assert http("GET", srv.url + "/health").status_code == 200
    wait_until(lambda: len(up.requests) == 1)
