"""The access log: one line per traffic request on stdout
(--access-log off|text|json; text by default with --verbose, else off),
while errors and provision loads go to stderr with a level.

README: "Command line".
"""

import json
import re
import socket
import subprocess
import threading
import time

import pytest

from conftest import BIN, Server, assert_exit_2, clean_env, http, read_response, run_h1mock

APP = r'''
function registerRules()
  app.add_url_rule("/app/v1/foo/bar", "answer_get", function() return {resultCode = 0} end)
  app.add_url_rule("/boom", "boom", function() error("boom in a view") end)
end
'''
BODY = b'{"resultCode":0}\n'
TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z"
TEXT_LINE = re.compile(r"^(%s) (127\.0\.0\.1:\d+) (\S+) (\S+) (\d{3}) (\d+) (\d+)us (\S+)$" % TIME)


class Logged(Server):
    """A server whose stdout is read too: `out` holds its lines."""

    def __init__(self, proc, provisions):
        super().__init__(proc, provisions)
        self.out = []
        self._out_reader = threading.Thread(target=self._read_out, daemon=True)
        self._out_reader.start()

    def _read_out(self):
        for raw in self.proc.stdout:
            with self._cond:
                self.out.append(raw.decode("utf-8"))
                self._cond.notify_all()

    def wait_out(self, n, timeout=10.0):
        """Waits until stdout has at least n lines; returns them."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.out) < n:
                left = deadline - time.monotonic()
                assert left > 0, "only %d stdout lines: %r" % (len(self.out), self.out)
                self._cond.wait(left)
            return list(self.out)

    def stop(self, *a, **kw):
        rc = super().stop(*a, **kw)
        self._out_reader.join(5)
        return rc


@pytest.fixture
def logged(tmp_path):
    servers = []

    def factory(*args, env=None):
        pdir = tmp_path / ("p%d" % len(servers))
        pdir.mkdir()
        (pdir / "initial.lua").write_text(APP)
        proc = subprocess.Popen([BIN, "--address", "127.0.0.1", "--port", "0", "--admin-port",
                                 "0", "--provisions", str(pdir), *args],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=clean_env(env))
        srv = Logged(proc, pdir)
        servers.append(srv)
        srv.port = int(srv.wait_log(r"traffic on \S+:(\d+)").group(1))
        srv.admin_port = int(srv.wait_log(r"admin on \S+:(\d+)").group(1))
        return srv

    yield factory
    for srv in servers:
        srv.stop()


def text_fields(line):
    m = TEXT_LINE.match(line.rstrip("\n"))
    assert m, "not an access log line: %r" % line
    return m.groups()


def test_text_is_the_default_with_verbose(logged):
    srv = logged("--verbose")
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    try:
        s.sendall(b"GET /app/v1/foo/bar HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(s)[2] == BODY
        port = s.getsockname()[1]
    finally:
        s.close()
    http("GET", srv.url + "/nowhere?q=1")
    http("HEAD", srv.url + "/app/v1/foo/bar")
    lines = srv.wait_out(3)
    f1, f2, f3 = (text_fields(l) for l in lines[:3])
    assert f1[1:] == ("127.0.0.1:%d" % port, "GET", "/app/v1/foo/bar", "200", str(len(BODY)),
                      f1[6], "answer_get")
    assert int(f1[6]) < 5000000
    # the target as received, query included
    assert f2[2:6] == ("GET", "/nowhere?q=1", "404", f2[5]) and f2[7] == "-"
    assert int(f2[5]) > 0
    assert f3[2:6] == ("HEAD", "/app/v1/foo/bar", "200", "0")
    t = time.strptime(f1[0][:19], "%Y-%m-%dT%H:%M:%S")
    assert abs(time.mktime(t) - time.mktime(time.gmtime())) < 60
    # The admin port is not logged here.
    http("GET", srv.admin_url + "/healthz")
    http("GET", srv.url + "/app/v1/foo/bar")
    lines = srv.wait_out(4)
    assert len(lines) == 4 and "/healthz" not in "".join(lines)


def test_json_lines(logged):
    srv = logged("--access-log", "json")
    http("GET", srv.url + "/app/v1/foo/bar")
    http("POST", srv.url + "/nowhere%20x?a=1%202", data="x")
    a, b = (json.loads(l) for l in srv.wait_out(2))
    assert set(a) == {"time", "remote", "method", "path", "target", "status", "bytes",
                      "duration_us", "endpoint"}
    assert re.fullmatch(TIME, a["time"])
    assert a["remote"].startswith("127.0.0.1:")
    assert (a["method"], a["path"], a["status"], a["bytes"], a["endpoint"]) == (
        "GET", "/app/v1/foo/bar", 200, len(BODY), "answer_get")
    assert isinstance(a["duration_us"], int)
    assert (b["method"], b["path"], b["status"], b["endpoint"]) == ("POST", "/nowhere x", 404,
                                                                     None)
    assert b["target"] == "/nowhere%20x?a=1%202"


def test_off_by_default_and_when_asked(logged):
    quiet = logged()
    off = logged("--verbose", "--access-log", "off")
    for srv in (quiet, off):
        http("GET", srv.url + "/app/v1/foo/bar")
        http("GET", srv.url + "/nowhere")
    s = socket.create_connection(("127.0.0.1", off.port), timeout=5)
    try:
        s.sendall(b"BROKEN\r\n\r\n")
        assert read_response(s)[0] == 400
    finally:
        s.close()
    off.wait_log(r" DEBUG traffic .*answered 400")  # --verbose still logs debug lines
    for srv in (quiet, off):
        srv.stop()
        assert srv.out == []


def test_access_log_from_the_environment(logged):
    srv = logged(env={"H1MOCK_ACCESS_LOG": "JSON"})
    http("GET", srv.url + "/app/v1/foo/bar")
    assert json.loads(srv.wait_out(1)[0])["endpoint"] == "answer_get"
    srv2 = logged("--access-log", "text", env={"H1MOCK_ACCESS_LOG": "json"})
    http("GET", srv2.url + "/app/v1/foo/bar")
    text_fields(srv2.wait_out(1)[0])  # the command line wins


def test_errors_and_loads_go_to_stderr_with_a_level(logged):
    srv = logged("--access-log", "json")
    srv.wait_log(r"^%s INFO provision 'initial' loaded: 2 rules" % r"\S+")
    assert http("GET", srv.url + "/boom").status_code == 500
    srv.wait_log(r"^\S+ ERROR GET /boom: view 'boom' failed: .*boom in a view")
    r = http("POST", srv.admin_url + "/app/v1/provision/bad", data="function registerRules(")
    assert r.status_code == 400
    srv.wait_log(r"^\S+ ERROR provision 'bad' failed to load")
    line = json.loads(srv.wait_out(1)[0])
    assert (line["path"], line["status"]) == ("/boom", 500)
    srv.stop()
    # stdout holds access log lines only, stderr none of them.
    assert len(srv.out) == 1
    assert "/boom 500" not in srv.log and '"path":"/boom"' not in srv.log


def test_one_line_per_request_in_order_under_pipelining(logged):
    srv = logged("--access-log", "text")
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    n = 300
    try:
        s.sendall(b"".join(b"GET /app/v1/foo/bar?i=%d HTTP/1.1\r\nHost: x\r\n\r\n" % i
                           for i in range(n - 1)) + b"GET /last HTTP/1.1\r\nHost: x\r\n\r\n")
        for _ in range(n):
            read_response(s)
    finally:
        s.close()
    lines = srv.wait_out(n)
    assert len(lines) == n
    fields = [text_fields(l) for l in lines]
    assert all(f[3] == "/app/v1/foo/bar?i=%d" % i and f[7] == "answer_get"
               for i, f in enumerate(fields[:-1]))
    assert fields[-1][3:5] == ("/last", "404")
    assert len({f[1] for f in fields}) == 1  # one connection


def logged_target(raw_target):
    """The TARGET field of the text line logged for GET raw_target (bytes)."""
    def check(srv):
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
            s.sendall(b"GET " + raw_target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(s)[0] == 404
        line = srv.wait_out(1)[0]
        assert line.count("\n") == 1
        return text_fields(line)[3]
    return check


def test_targets_are_logged_as_received(logged):
    # percent-escapes stay as sent (a space is %20, not \x20), the query too
    target = logged_target(b"/a%20b%22c%0A%FF/caf%C3%A9?q=a+b&r=%0a")
    assert target(logged("--access-log", "text")) == "/a%20b%22c%0A%FF/caf%C3%A9?q=a+b&r=%0a"


def test_odd_targets_stay_one_field(logged):
    # bytes no valid target holds (llhttp lets these through) are escaped
    target = logged_target(b"/caf\xc3\xa9\xff\"\\x")
    assert target(logged("--access-log", "text")) == "/café\\xff\\x22\\x5cx"


@pytest.mark.parametrize("args,env,message", [
    (["--access-log", "xml"], None,
     "h1mock: --access-log: 'xml' is not an access log format (off, text or json)"),
    (["--access-log="], None, "h1mock: --access-log: '' is not an access log format"),
    (["--access-log"], None, "h1mock: --access-log needs a value (off|text|json)"),
    ([], {"H1MOCK_ACCESS_LOG": "yes"}, "h1mock: H1MOCK_ACCESS_LOG: 'yes' is not an access log"),
])
def test_bad_access_log_values_exit_2(tmp_path, args, env, message):
    res = run_h1mock(args, env, provisions=tmp_path)
    assert_exit_2(res, message)
    assert res.stdout == b""


def test_a_stdout_nobody_reads_does_not_stall_serving(tmp_path):
    """stdout is a pipe the reader never drains (a stuck log collector):
    lines wait, then are dropped with one warning, and every request is
    still answered. A blocking write would hang the server after a pipe's
    worth (about 800 lines)."""
    (tmp_path / "initial.lua").write_text(APP)
    proc = subprocess.Popen([BIN, "--address", "127.0.0.1", "--port", "0", "--admin-port", "0",
                             "--provisions", str(tmp_path), "--access-log", "json"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=clean_env())
    srv = Server(proc, tmp_path)  # reads stderr only; stdout is never read
    try:
        srv.port = int(srv.wait_log(r"traffic on \S+:(\d+)").group(1))
        srv.admin_port = int(srv.wait_log(r"admin on \S+:(\d+)").group(1))
        path = "/a/" + "x" * 900  # long lines fill the pipe and the pending MiB sooner
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
            for i in range(2500):
                s.sendall(b"GET %s HTTP/1.1\r\nHost: h\r\n\r\n" % path.encode())
                status, _, _ = read_response(s)
                assert status == 404, i
        assert http("GET", srv.admin_url + "/healthz").status_code == 200
        srv.wait_log(r"WARN access log: stdout does not take lines \(nobody reads it\)")
    finally:
        srv.stop()
    assert srv.log.count("access log: stdout does not take lines") == 1
