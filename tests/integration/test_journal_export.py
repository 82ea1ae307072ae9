"""GET /app/v1/requests as a stream: chunked (HTTP/1.1) or until the close
(HTTP/1.0), formatted a piece at a time while other traffic is served, with
memory that does not grow with the size of the export. Entries evicted
while an export runs are left out and counted in `skipped`.

README: "The request journal".
"""

import http.client as httpclient
import json
import signal
import socket
import threading
import time

from conftest import http, raw_exchange, read_response, wait_until

APP = r'''
function registerRules()
  app.get("/hello", function() return "hello" end)
  app.post("/upload", function(req) return "got " .. #req.data end)
end
'''

KEYS = {"enabled", "dropped", "first_seq", "last_seq", "requests", "count", "skipped"}


def post_bodies(srv, n, size):
    """n POSTs of `size` bytes on one keep-alive connection; body i is made
    of the letter chr(97 + i % 26)."""
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    try:
        for i in range(n):
            body = bytes([97 + i % 26]) * size
            s.sendall(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s"
                      % (size, body))
            status, _, answer = read_response(s)
            assert (status, answer) == (200, b"got %d" % size)
    finally:
        s.close()


def export(srv, query="", on_piece=None):
    """Reads an export with http.client; returns (response, body bytes).
    on_piece(n) is called after each read with the bytes read so far."""
    conn = httpclient.HTTPConnection("127.0.0.1", srv.admin_port, timeout=30)
    try:
        conn.request("GET", "/app/v1/requests" + query)
        r = conn.getresponse()
        data = bytearray()
        while True:
            piece = r.read(64 * 1024)
            if not piece:
                break
            data += piece
            if on_piece:
                on_piece(len(data))
        return r, bytes(data)
    finally:
        conn.close()


def slow_reader(srv, request):
    """Sends `request` to the admin port from a socket with a small receive
    buffer, so that the export stalls early until the test reads on;
    returns the socket and the first bytes of the answer."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
    s.settimeout(30)
    s.connect(("127.0.0.1", srv.admin_port))
    s.sendall(request)
    return s, s.recv(4096)


def dechunk(raw):
    """The body of a chunked transfer (after the head), without the chunk
    framing."""
    body = b""
    while True:
        size, _, raw = raw.partition(b"\r\n")
        n = int(size, 16)
        if n == 0:
            return body
        body, raw = body + raw[:n], raw[n + 2:]


def vm_hwm_kib(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_the_export_is_chunked_and_keeps_its_keys(h1mock):
    srv = h1mock(APP)
    for _ in range(3):
        assert http("GET", srv.url + "/hello").text == "hello"
    r, body = export(srv)
    assert r.status == 200
    assert r.getheader("Transfer-Encoding") == "chunked"
    assert r.getheader("Content-Length") is None
    assert r.getheader("Content-Type") == "application/json"
    assert body.endswith(b"}\n")
    doc = json.loads(body)
    assert set(doc) == KEYS
    assert (doc["enabled"], doc["dropped"], doc["first_seq"], doc["last_seq"]) == (True, 0, 1, 3)
    assert (doc["count"], doc["skipped"]) == (3, 0)
    assert [e["seq"] for e in doc["requests"]] == [1, 2, 3]
    # Filters and paging are those of before.
    doc = http("GET", srv.admin_url + "/app/v1/requests?since=1&limit=1").json()
    assert [e["seq"] for e in doc["requests"]] == [2] and doc["count"] == 1


def test_an_http10_client_reads_the_export_until_the_close(h1mock):
    srv = h1mock(APP)
    assert http("GET", srv.url + "/hello").text == "hello"
    s = socket.create_connection(("127.0.0.1", srv.admin_port), timeout=10)
    try:
        data = raw_exchange(
            s, b"GET /app/v1/requests HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", timeout=10)
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n"), head
    lower = head.lower()
    assert b"content-length" not in lower and b"transfer-encoding" not in lower, head
    assert b"\r\nconnection: close" in lower, head
    doc = json.loads(body)
    assert doc["count"] == 1 and doc["requests"][0]["path"] == "/hello"


def test_head_answers_without_a_body_and_the_connection_goes_on(h1mock):
    srv = h1mock(APP)
    assert http("GET", srv.url + "/hello").text == "hello"
    s = socket.create_connection(("127.0.0.1", srv.admin_port), timeout=10)
    try:
        s.sendall(b"HEAD /app/v1/requests HTTP/1.1\r\nHost: a\r\n\r\n"
                  b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
        status, headers, body = read_response(s, head_request=True)
        assert (status, body) == (200, b"")
        assert ("transfer-encoding", "chunked") in headers, headers
        # No stray chunk came between the two answers.
        status, _, body = read_response(s)
        assert (status, body) == (200, b'{"status":"ok"}\n')
    finally:
        s.close()


def test_a_64_mib_export_streams_in_flat_memory_while_traffic_flows(h1mock):
    srv = h1mock(APP, "--journal-body-bytes", "65536", "--journal-max-bytes", "128M")
    post_bodies(srv, 1000, 65536)

    # Alone first, so that the peak measures the export and nothing else.
    before = vm_hwm_kib(srv.proc.pid)
    r, body = export(srv)
    growth_mib = (vm_hwm_kib(srv.proc.pid) - before) / 1024
    # The whole answer is never in memory at once (before, a 346 MB answer
    # took a 1.07 GB peak).
    assert growth_mib < 32, "peak RSS grew by %.1f MiB during the export" % growth_mib
    assert r.getheader("Transfer-Encoding") == "chunked"
    assert len(body) > 64000000
    doc = json.loads(body)
    assert (doc["count"], doc["skipped"], doc["first_seq"], doc["last_seq"]) == (1000, 0, 1, 1000)
    entries = doc["requests"]
    assert [e["seq"] for e in entries] == list(range(1, 1001))
    assert entries[27]["body"] == "b" * 65536 and entries[27]["body_truncated"] is False
    del body, doc, entries

    # Then with traffic on another connection: it is answered while the
    # export is being sent, not after it.
    done = threading.Event()
    gets = []  # (answered at, status)

    def traffic():
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
        try:
            while not done.is_set():
                s.sendall(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
                gets.append((time.monotonic(), read_response(s, timeout=30)[0]))
        finally:
            s.close()

    t = threading.Thread(target=traffic)
    t.start()
    first = []
    try:
        wait_until(lambda: gets, what="traffic before the export")
        r, body = export(srv, "?path=/upload",
                         on_piece=lambda n: first or first.append(time.monotonic()))
        ended = time.monotonic()
    finally:
        done.set()
        t.join(30)
    doc = json.loads(body)
    assert (doc["count"], doc["skipped"]) == (1000, 0)
    assert all(status == 200 for _, status in gets)
    during = [at for at, _ in gets if first[0] <= at <= ended]
    assert during, "no traffic was answered while the export was sent"


def test_entries_evicted_during_an_export_are_skipped_and_counted(h1mock):
    srv = h1mock(APP, "--journal-size", "200")
    post_bodies(srv, 200, 65536)
    s, data = slow_reader(
        srv, b"GET /app/v1/requests HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    try:
        assert data.startswith(b"HTTP/1.1 200 "), data
        # 200 new requests push every entry of the selection out of the ring.
        post_bodies(srv, 200, 10)
        data += raw_exchange(s, b"", timeout=30)
    finally:
        s.close()
    head, _, raw = data.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    doc = json.loads(dechunk(raw))
    seqs = [e["seq"] for e in doc["requests"]]
    assert (doc["first_seq"], doc["last_seq"]) == (1, 200)
    assert doc["count"] == len(seqs) and doc["count"] + doc["skipped"] == 200, \
        (doc["count"], doc["skipped"])
    assert doc["skipped"] > 0 and seqs == list(range(1, len(seqs) + 1))
    # A new export sees the ring as it is now.
    doc = http("GET", srv.admin_url + "/app/v1/requests").json()
    assert (doc["first_seq"], doc["count"], doc["skipped"]) == (201, 200, 0)


def test_a_client_leaving_mid_export_does_not_disturb_the_server(h1mock):
    srv = h1mock(APP)
    post_bodies(srv, 100, 65536)
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", srv.admin_port), timeout=10)
        s.sendall(b"GET /app/v1/requests HTTP/1.1\r\nHost: a\r\n\r\n")
        assert s.recv(100 * 1024)
        s.close()
    assert http("GET", srv.url + "/hello").text == "hello"
    doc = http("GET", srv.admin_url + "/app/v1/requests").json()
    assert (doc["count"], doc["skipped"]) == (101, 0)


def test_a_stop_signal_lets_an_export_finish_then_exits(h1mock):
    srv = h1mock(APP)
    post_bodies(srv, 100, 65536)
    s, data = slow_reader(srv, b"GET /app/v1/requests HTTP/1.1\r\nHost: a\r\n\r\n")
    try:
        srv.proc.send_signal(signal.SIGTERM)
        srv.wait_log(r"stopping \(SIGTERM\)")
        # The export goes on to its end, then the server closes.
        data += raw_exchange(s, b"", timeout=30)
    finally:
        s.close()
    assert data.endswith(b"\r\n0\r\n\r\n"), data[-200:]
    assert b'"count":100,"skipped":0}\n' in data[-200:]
    assert srv.proc.wait(10) == 0, srv.log
