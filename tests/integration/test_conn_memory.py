"""What a connection costs in memory.

README: "Performance", "The benchmark matrix"

An idle keep-alive connection keeps its handle, its phase and its times; the
buffers that read, parse and answer a request come from a pool when bytes
arrive and go back once the answer is written. Buffers nobody took for a
sweep (about a second) are freed, and their pages go back to the system, so
memory taken for a burst or for large requests returns once the server is
idle, connections still open.

RSS is read from /proc. Under AddressSanitizer freed memory waits in a
quarantine (256 MiB by default) and would count as held: these servers get
a 1 MiB one.
"""

import os
import resource

from conftest import http, read_response, wait_until

APP = r'''
function registerRules()
  app.get("/hello", function() return "hello" end)
  app.post("/upload", function(req) return {length = req.content_length} end)
end
'''


def asan_env():
    asan = os.environ.get("ASAN_OPTIONS", "")
    return {"ASAN_OPTIONS": (asan + ":" if asan else "") + "quarantine_size_mb=1"}


def status_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s for pid %d" % (field, pid))


def rss_kb(pid):
    return status_kb(pid, "VmRSS")


def hwm_kb(pid):
    """The peak RSS."""
    return status_kb(pid, "VmHWM")


def get(sock, path=b"/hello"):
    sock.sendall(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % path)
    return read_response(sock)


def test_idle_keepalive_connections_cost_little_memory(h1mock):
    # The journal is off: it would count each connection's one request (a
    # few hundred bytes each) as the connection's memory.
    n = 2000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 100), hard))
    srv = h1mock(APP, "--journal-size", "0", env=asan_env())
    warm = srv.connect()
    for _ in range(300):  # the Lua state, the pool and the quarantine at their working size
        assert get(warm)[0] == 200
    before = rss_kb(srv.proc.pid)
    socks = []
    try:
        for _ in range(n):
            s = srv.connect()
            status, _, body = get(s)
            assert (status, body) == (200, b"hello")
            socks.append(s)
        grown = rss_kb(srv.proc.pid) - before
        # Each idle connection held about 14 KiB before the pool (2,000:
        # about 28 MiB); now a few hundred bytes.
        assert grown < 4 * 1024, "%d idle connections grew RSS by %d KiB" % (n, grown)
        # They are idle, not closed: each still answers.
        for s in socks[:: n // 20]:
            assert get(s)[0] == 200
        assert http("GET", srv.url + "/hello").text == "hello"
    finally:
        for s in socks:
            s.close()
        warm.close()


def test_memory_taken_for_large_requests_returns_when_idle(h1mock):
    srv = h1mock(APP, "--journal-size", "0", "--max-body", "32M", env=asan_env())
    s = srv.connect(timeout=20)
    try:
        for _ in range(20):
            assert get(s)[0] == 200
        before = rss_kb(srv.proc.pid)
        body = b"x" * (16 << 20)
        for _ in range(3):
            s.sendall(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(body)
                      + body)
            status, _, answer = read_response(s, timeout=20)
            assert (status, answer) == (200, b'{"length":16777216}\n')
        # The uploads did take memory (else the wait below proves nothing).
        peak = hwm_kb(srv.proc.pid)
        assert peak - before > 8 * 1024, (before, peak)
        # The connection stays open and idle: what its requests took goes
        # back within a few sweeps (before the pool, malloc kept 16 MiB).
        wait_until(lambda: rss_kb(srv.proc.pid) - before < 4 * 1024, timeout=15,
                   what="RSS back within 4 MiB of %d KiB" % before)
        assert get(s)[0] == 200
    finally:
        s.close()


def test_a_connection_left_mid_request_does_not_disturb_the_next(h1mock):
    # Buffers go from one connection to the next: whatever a client left
    # behind (half a head, a refused request, a closing one) is gone.
    srv = h1mock(APP)
    half = srv.connect()
    half.sendall(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
    bad = srv.connect()
    bad.sendall(b"GET /hello HTTP/1.1\r\nbad header\r\n\r\n")
    assert read_response(bad)[0] == 400
    closing = srv.connect()
    closing.sendall(b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert read_response(closing)[0] == 200
    for s in (half, bad, closing):
        s.close()
    # The server has seen the closes (and pooled those buffers) before the
    # next clients come.
    wait_until(lambda: "h1mock_connections_active 0\n" in http("GET", srv.admin_url + "/metrics").text,
               what="no traffic connection open")
    for _ in range(5):
        s = srv.connect()
        status, _, body = get(s)
        assert (status, body) == (200, b"hello")
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nxyz")
        status, _, body = read_response(s)
        assert (status, body) == (200, b'{"length":3}\n')
        s.close()
