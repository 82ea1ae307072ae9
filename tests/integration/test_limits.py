"""Connection limits, running out of file descriptors, and the body timeout.

--max-connections bounds the traffic port; the admin port has 64 of its
own. The surplus is accepted, answered 503 with Connection: close, and
closed; a log line says so at most once a minute per port. Out of file
descriptors, the server answers 503 the same way (a spare descriptor makes
room to accept) and serves again once descriptors free up. A request body
must arrive whole within --body-timeout seconds of the end of its head.

README: "Command line".
"""

import re
import resource
import socket
import subprocess
import time

import pytest

from conftest import (BIN, SANITIZER_REPORT, START_TIMEOUT, Server, assert_exit_2, clean_env,
                      header, http, read_response, run_h1mock, wait_until)

APP = r'''
function registerRules()
  app.get("/hello", function() return "hello" end)
  app.post("/upload", function(req) return "got " .. #req.data end)
end
'''

FULL_LINE = r"traffic: (\d+) connections? refused with 503: (\d+) are open"
FDS_LINE = r"ERROR traffic: out of file descriptors \(open-files limit (\d+)\)"


def get(sock, path="/hello", host="t"):
    """One keep-alive GET on a raw socket; returns (status, headers, body)."""
    sock.sendall(b"GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path.encode(), host.encode()))
    return read_response(sock)


def read_until_closed(sock, timeout=5.0):
    """Everything the server sends until it closes (a reset counts as a close)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk
    except ConnectionResetError:
        return data


def refused_answer(port):
    """Connects, sends a GET, and returns all the server sent before closing."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        return read_until_closed(s)
    finally:
        s.close()


def held_connections(port, n):
    """n keep-alive connections, each with one request answered (so each is
    surely accepted and counted)."""
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        socks.append(s)
        assert get(s)[0] in (200, 404)
    return socks


def test_the_connection_over_the_limit_gets_503_and_a_close(h1mock):
    srv = h1mock(APP, "--max-connections", "3")
    srv.wait_log(r"connections: up to 3 on the traffic port and 64 on the admin port")
    held = held_connections(srv.port, 3)
    try:
        answer = refused_answer(srv.port)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"), answer
        assert b"\r\nConnection: close\r\n" in head + b"\r\n", head
        length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
        assert len(body) == length and b"3 connections are open" in body, body
        # The held connections are untouched and still served.
        for s in held:
            assert get(s)[2] == b"hello"
        # The admin port has connections of its own.
        assert http("GET", srv.admin_url + "/healthz").status_code == 200
    finally:
        for s in held:
            s.close()
    # Once they are gone, new connections are served again.
    wait_until(lambda: http("GET", srv.url + "/hello").status_code == 200,
               what="a new connection served after the held ones closed")


def test_refusals_are_logged_once_a_minute_with_a_count(h1mock):
    srv = h1mock(APP, "--max-connections", "2")
    held = held_connections(srv.port, 2)
    try:
        for _ in range(5):
            assert refused_answer(srv.port).startswith(b"HTTP/1.1 503 ")
        m = srv.wait_log(FULL_LINE)
        assert m.group(1) == "1" and m.group(2) == "2", m.group(0)
        # The four refusals after the first wait for the next minute.
        assert http("GET", srv.admin_url + "/healthz").status_code == 200
        assert len(re.findall(FULL_LINE, srv.log)) == 1, srv.log
    finally:
        for s in held:
            s.close()


def test_the_admin_port_stays_reachable_when_the_traffic_port_is_full(h1mock):
    srv = h1mock(APP, "--max-connections", "1")
    held = held_connections(srv.port, 1)
    try:
        assert refused_answer(srv.port).startswith(b"HTTP/1.1 503 ")
        r = http("GET", srv.admin_url + "/app/v1/requests/count")
        assert r.status_code == 200 and r.json()["count"] == 1, r.text
    finally:
        held[0].close()


def test_the_admin_port_takes_64_connections(h1mock):
    srv = h1mock(APP)
    held = held_connections(srv.admin_port, 64)
    try:
        answer = refused_answer(srv.admin_port)
        assert answer.startswith(b"HTTP/1.1 503 "), answer
        assert b"64 connections are open" in answer
        srv.wait_log(r"admin: 1 connection refused with 503: 64 are open, the most this port "
                     r"takes \(the admin port's own limit\)")
        # The traffic port is not affected.
        assert http("GET", srv.url + "/hello").text == "hello"
    finally:
        for s in held:
            s.close()
    wait_until(lambda: http("GET", srv.admin_url + "/healthz").status_code == 200,
               what="the admin port served again")


@pytest.mark.parametrize("value", ["0", "-1", "abc", "10000001", "2.5", ""])
def test_bad_max_connections_exit_2(tmp_path, value):
    assert_exit_2(run_h1mock(["--max-connections", value], provisions=tmp_path),
                  "--max-connections: '%s' is not a number of connections (1 to 10000000)" % value)


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_bad_body_timeout_exit_2(tmp_path, value):
    assert_exit_2(run_h1mock(["--body-timeout", value], provisions=tmp_path),
                  "--body-timeout: '%s' is not a number of seconds (> 0)" % value)


def test_max_connections_from_the_environment(h1mock):
    srv = h1mock(APP, env={"H1MOCK_MAX_CONNECTIONS": "5"})
    srv.wait_log(r"connections: up to 5 on the traffic port")


def test_help_explains_the_connection_options():
    out = subprocess.run([BIN, "--help"], capture_output=True, check=True).stdout.decode()
    assert "--max-connections N" in out and "--body-timeout SECONDS" in out, out


# ------------------------------------------------------------ descriptors


@pytest.fixture
def limited(tmp_path):
    """Factory: limited(soft, hard, *args) starts h1mock under an open-files
    limit set in the child before it runs (as `ulimit -n` would)."""
    servers = []

    def factory(soft, hard, *args):
        pdir = tmp_path / ("p%d" % len(servers))
        pdir.mkdir()
        (pdir / "initial.lua").write_text(APP)
        cmd = [BIN, "--address", "127.0.0.1", "--port", "0", "--admin-port", "0",
               "--provisions", str(pdir), *args]
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env=clean_env(),
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard)))
        srv = Server(proc, pdir)
        servers.append(srv)
        srv.port = int(srv.wait_log(r"traffic on (\S+):(\d+)", START_TIMEOUT).group(2))
        srv.admin_port = int(srv.wait_log(r"admin on (\S+):(\d+)", START_TIMEOUT).group(2))
        return srv

    yield factory
    for srv in servers:
        assert srv.stop() == 0, srv.log
        assert not SANITIZER_REPORT.search(srv.log), srv.log


def test_the_default_limit_comes_from_the_raised_open_files_limit(limited):
    # The soft limit is raised to the hard one; 64 descriptors stay for
    # files and 64 for the admin port.
    srv = limited(100, 300)
    srv.wait_log(r"connections: up to 172 on the traffic port and 64 on the admin port "
                 r"\(open-files limit 300\)")
    limits = open("/proc/%d/limits" % srv.proc.pid).read()
    assert re.search(r"Max open files\s+300\s+300", limits), limits


def test_out_of_descriptors_is_logged_answered_503_and_recovers(limited):
    srv = limited(64, 64, "--max-connections", "1000")
    srv.wait_log(r"WARN --max-connections 1000 is more than the open-files limit \(64\) leaves")
    held = []
    try:
        refused = None
        for _ in range(80):  # more than 64 descriptors allow
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            status, headers, body = get(s)
            if status == 503:
                refused = (headers, body)
                s.close()
                break
            assert (status, body) == (200, b"hello")
            held.append(s)
        assert refused is not None, "80 connections served under a limit of 64 descriptors"
        headers, body = refused
        assert header(headers, "connection") == "close"
        assert b"out of file descriptors" in body, body
        assert srv.wait_log(FDS_LINE).group(1) == "64"
        # The connections it has are still served.
        assert get(held[0])[2] == b"hello"
        for s in held[-8:]:
            s.close()
        del held[-8:]
        # Descriptors are free again: new connections are served at once.
        wait_until(lambda: http("GET", srv.url + "/hello").text == "hello",
                   what="a new connection served once descriptors freed up")
        assert get(held[0])[2] == b"hello"
    finally:
        for s in held:
            s.close()


# ----------------------------------------------------------- body timeout


def trickle(srv, total, interval, budget):
    """Sends a POST head announcing `total` body bytes, then one byte every
    `interval` seconds; stops at the first byte the server answers with, or
    after `budget` seconds. Returns (what the server sent, seconds from the
    end of the head, body bytes sent)."""
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    try:
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % total)
        t0 = time.monotonic()
        sent = 0
        s.settimeout(interval)
        while sent < total and time.monotonic() - t0 < budget:
            try:
                first = s.recv(65536)
            except socket.timeout:
                try:
                    s.sendall(b"x")
                except (BrokenPipeError, ConnectionResetError):
                    return b"", time.monotonic() - t0, sent
                sent += 1
                continue
            return first + read_until_closed(s), time.monotonic() - t0, sent
        if sent == total:  # the whole body went: its answer
            s.settimeout(5)
            return s.recv(65536), time.monotonic() - t0, sent
        return b"", time.monotonic() - t0, sent
    finally:
        s.close()


def test_a_trickling_body_gets_408_after_the_body_timeout(h1mock):
    srv = h1mock(APP, "--body-timeout", "1")
    # One byte every 0.3 s never lets the idle timeout (60 s) fire; only a
    # time for the whole body stops it. The budget is far above the timeout.
    answer, elapsed, sent = trickle(srv, 100, 0.3, 8)
    assert answer.startswith(b"HTTP/1.1 408 "), (answer, elapsed, sent)
    assert b"\r\nConnection: close\r\n" in answer
    assert b"request body was not received in time" in answer
    assert sent < 100
    # Other connections were not affected.
    assert http("GET", srv.url + "/hello").text == "hello"


def test_a_body_within_the_timeout_is_served(h1mock):
    srv = h1mock(APP, "--body-timeout", "5")
    answer, _, sent = trickle(srv, 4, 0.2, 8)
    assert sent == 4
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"got 4"), answer
    r = http("POST", srv.url + "/upload", data=b"x" * 1000)
    assert r.text == "got 1000"
