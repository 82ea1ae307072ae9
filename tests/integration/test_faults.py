"""fault(kind) and Response:dribble(chunks, ms): a view makes the connection
misbehave on purpose (README "Faults and slow answers"), as real clients
see it: Python's http.client, curl, raw sockets.

README: "Faults and slow answers".
"""

import http.client as httpclient
import socket
import subprocess
import threading
import time

import pytest

from conftest import http, wait_until

FAULTS = r'''
function registerRules()
  app.get("/f/<kind>", function(req, kind) return fault(kind) end)
  app.get("/hooked", function() return fault("empty") end)
  app.get("/slow/<int:chunks>/<int:ms>", function(req, chunks, ms)
    return make_response("0123456789abcdefghij", 200):dribble(chunks, ms)
  end)
  app.get("/badslow", function(req)
    return make_response("x"):dribble(tonumber(req.args.c) or req.args.c, tonumber(req.args.ms))
  end)
  app.get("/ok", function() return "ok" end)
  app.after_request(function(resp) resp.headers:set("X-Hook", "ran"); return resp end)
end
'''


def raw_get(srv, path, timeout=5):
    """Sends GET path on a fresh socket; returns (bytes received, how it ended)."""
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=timeout)
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data, "closed"
            data += chunk
    except ConnectionResetError:
        return data, "reset"
    finally:
        s.close()


def client_get(srv, path):
    c = httpclient.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r, r.read()
    finally:
        c.close()


def test_reset_is_a_tcp_reset(h1mock):
    srv = h1mock(FAULTS)
    assert raw_get(srv, "/f/reset") == (b"", "reset")
    with pytest.raises(ConnectionResetError):
        client_get(srv, "/f/reset")
    p = subprocess.run(["curl", "-sS", "-m", "5", srv.url + "/f/reset"], capture_output=True,
                       text=True, timeout=15)
    assert p.returncode == 56 and "reset" in p.stderr.lower(), p.stderr


def test_empty_closes_without_a_byte(h1mock):
    srv = h1mock(FAULTS)
    assert raw_get(srv, "/f/empty") == (b"", "closed")
    with pytest.raises(httpclient.RemoteDisconnected):
        client_get(srv, "/f/empty")
    p = subprocess.run(["curl", "-sS", "-m", "5", srv.url + "/hooked"], capture_output=True,
                       text=True, timeout=15)
    assert p.returncode == 52 and "Empty reply from server" in p.stderr, p.stderr


def test_random_sends_bytes_that_are_not_http(h1mock):
    srv = h1mock(FAULTS)
    data, end = raw_get(srv, "/f/random")
    assert end == "closed" and 64 <= len(data) <= 512 and not data.startswith(b"HTTP")
    assert raw_get(srv, "/f/random")[0] != data  # not the same bytes each time
    with pytest.raises(httpclient.BadStatusLine):
        client_get(srv, "/f/random")


def test_malformed_chunk_breaks_the_body_after_a_valid_head(h1mock):
    srv = h1mock(FAULTS)
    data, end = raw_get(srv, "/f/malformed_chunk")
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"Transfer-Encoding: chunked" in head
    assert b"X-Hook: ran" in head  # after_request saw it like any answer
    assert body.startswith(b"5\r\nhello\r\nzz\r\n") and end == "closed"
    c = httpclient.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    c.request("GET", "/f/malformed_chunk")
    r = c.getresponse()
    assert r.status == 200
    with pytest.raises((httpclient.IncompleteRead, ValueError)):
        r.read()
    c.close()
    p = subprocess.run(["curl", "-sS", "-m", "5", srv.url + "/f/malformed_chunk"],
                       capture_output=True, text=True, timeout=15)
    assert p.returncode == 56 and p.stdout == "hello", (p.returncode, p.stdout, p.stderr)


def test_the_journal_records_each_fault(h1mock):
    srv = h1mock(FAULTS)
    for kind in ("reset", "empty", "random", "malformed_chunk"):
        raw_get(srv, "/f/" + kind)
    http("GET", srv.url + "/ok")
    wait_until(lambda: len(http("GET", srv.admin_url + "/app/v1/requests").json()["requests"])
               == 5)
    entries = http("GET", srv.admin_url + "/app/v1/requests").json()["requests"]
    assert [(e["path"], e["status"], e["fault"]) for e in entries] == [
        ("/f/reset", 0, "reset"), ("/f/empty", 0, "empty"), ("/f/random", 0, "random"),
        ("/f/malformed_chunk", 200, "malformed_chunk"), ("/ok", 200, None)]
    # The server serves on.
    assert http("GET", srv.url + "/ok").text == "ok"


def test_an_unknown_fault_is_a_500_that_says_which(h1mock):
    srv = h1mock(FAULTS)
    r = http("GET", srv.url + "/f/explode")
    assert r.status_code == 500
    srv.wait_log(r"fault: unknown fault 'explode' \(reset, empty, random or malformed_chunk\)")


def test_dribble_trickles_the_body_while_others_are_served(h1mock):
    srv = h1mock(FAULTS)
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.sendall(b"GET /slow/4/1200 HTTP/1.1\r\nHost: x\r\n\r\n")
    t0 = time.monotonic()
    reads, data = [], b""
    ok_during = {}

    def other():
        ok_during["text"] = http("GET", srv.url + "/ok").text
        ok_during["at"] = time.monotonic()

    threading.Thread(target=other).start()
    while not data.endswith(b"0\r\n\r\n"):
        chunk = s.recv(65536)
        assert chunk, data
        data += chunk
        reads.append(time.monotonic())
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head and b"X-Hook: ran" in head
    assert body == b"5\r\n01234\r\n5\r\n56789\r\n5\r\nabcde\r\n5\r\nfghij\r\n0\r\n\r\n"
    assert len(reads) >= 4  # the pieces came apart
    assert reads[-1] - t0 >= 1.0  # spread over the time asked (a lower bound only)
    wait_until(lambda: "at" in ok_during)
    assert ok_during["text"] == "ok" and ok_during["at"] < reads[-1]
    # Python's client reads it whole.
    r, body = client_get(srv, "/slow/3/300")
    assert r.status == 200 and body == b"0123456789abcdefghij"


def test_dribble_arguments_are_checked(h1mock):
    srv = h1mock(FAULTS)
    for query, msg in [("c=0&ms=10", "dribble: chunks must be an integer from 1 to 10000"),
                       ("c=x&ms=10", "dribble: chunks must be an integer from 1 to 10000"),
                       ("c=2&ms=-1", "dribble: milliseconds must be a number from 0 to 3600000")]:
        r = http("GET", srv.url + "/badslow?" + query)
        assert r.status_code == 500, query
        srv.wait_log(msg)


def test_a_client_that_leaves_mid_dribble_is_let_go(h1mock):
    srv = h1mock(FAULTS)
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.sendall(b"GET /slow/10/5000 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert s.recv(65536).startswith(b"HTTP/1.1 200")
    s.close()
    metrics = srv.admin_url + "/metrics"
    wait_until(lambda: "h1mock_connections_active 0" in http("GET", metrics).text,
               timeout=10, what="the dribbling connection closed")
