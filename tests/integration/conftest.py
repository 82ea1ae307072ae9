"""Fixtures that start the real h1mock binary on ephemeral loopback ports.

The binary is taken from $H1MOCK_BIN (tests/run-all.sh sets it for the plain
and the sanitizer build), else build/h1mock. Each server gets its own
provisions directory in a temp folder; ports are 0 and the real ones are
read from the startup log lines "traffic on HOST:PORT" / "admin on HOST:PORT".
Every server started here is stopped by PID at the end of its test.
"""

import os
import re
import signal
import socket
import subprocess
import threading
import time
import weakref
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("H1MOCK_BIN", str(ROOT / "build" / "h1mock"))
PROVISIONS = ROOT / "provisions"
START_TIMEOUT = 15.0
SANITIZER_REPORT = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error: ")
_LEFTOVER = weakref.WeakKeyDictionary()  # socket -> bytes read past a response


class Server:
    """A running h1mock. `log` holds everything it wrote to stderr so far."""

    def __init__(self, proc, provisions):
        self.proc = proc
        self.provisions = Path(provisions)
        self._lines = []
        self._lock = threading.RLock()  # wait_log formats .log while holding it
        self._cond = threading.Condition(self._lock)
        self.port = None
        self.admin_port = None
        self.host = "127.0.0.1"
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace")
            with self._cond:
                self._lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._lines.append(None)  # EOF marker
            self._cond.notify_all()

    @property
    def log(self):
        with self._lock:
            return "".join(l for l in self._lines if l is not None)

    def wait_log(self, pattern, timeout=10.0):
        """Waits until a stderr line matches `pattern` (a regex); returns the match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                while seen < len(self._lines):
                    line = self._lines[seen]
                    seen += 1
                    if line is None:
                        raise AssertionError(
                            "h1mock exited before logging %r; log:\n%s" % (pattern, self.log))
                    m = rx.search(line)
                    if m:
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no log line matched %r; log:\n%s" % (pattern, self.log))
                self._cond.wait(left)

    @property
    def url(self):
        return "http://%s:%d" % (self.host, self.port)

    @property
    def admin_url(self):
        return "http://%s:%d" % (self.host, self.admin_port)

    def connect(self, timeout=5.0):
        """A raw socket to the traffic port."""
        s = socket.create_connection((self.host, self.port), timeout=timeout)
        return s

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Stops the server; returns its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("h1mock did not stop within %ss of %s" % (timeout, sig))
        self._reader.join(5)
        return self.proc.returncode


def clean_env(extra=None):
    """The test's environment without any H1MOCK_* variable, then `extra`.

    The runner's own H1MOCK_* settings (a port, a token...) must not reach a
    server under test; a test that wants one passes it in `extra`.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("H1MOCK_")}
    env.update(extra or {})
    return env


def start_server(provisions, *args, env=None, wait=True):
    """Starts h1mock on ephemeral ports with `provisions` as its directory."""
    cmd = [BIN, "--address", "127.0.0.1", "--port", "0", "--admin-port", "0",
           "--provisions", str(provisions), *args]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=clean_env(env))
    srv = Server(proc, provisions)
    if wait:
        m = srv.wait_log(r"traffic on (\S+):(\d+)", START_TIMEOUT)
        srv.port = int(m.group(2))
        m = srv.wait_log(r"admin on (\S+):(\d+)", START_TIMEOUT)
        srv.admin_port = int(m.group(2))
    return srv


def run_h1mock(args, env=None, provisions=None, timeout=START_TIMEOUT):
    """Runs h1mock to its exit; returns the subprocess.CompletedProcess.

    For command lines that end by themselves, typically a bad option or
    variable (exit 2, one line on stderr). The command line is the one
    start_server uses: loopback, ports 0, then --provisions `provisions` when
    given, then `args`. `env` is added to clean_env(). stdin is empty, stdout
    and stderr are captured as bytes; a run longer than `timeout` seconds
    fails the test.
    """
    cmd = [BIN, "--address", "127.0.0.1", "--port", "0", "--admin-port", "0"]
    if provisions is not None:
        cmd += ["--provisions", str(provisions)]
    cmd += args
    try:
        return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                              env=clean_env(env), timeout=timeout)
    except subprocess.TimeoutExpired as e:
        pytest.fail("h1mock %s did not exit within %ss (stderr so far: %r)"
                    % (" ".join(cmd[1:]), timeout, e.stderr))


def assert_exit_2(res, message):
    """Asserts that run_h1mock's `res` is a usage error: exit status 2 and one
    line on stderr that contains `message`. Returns the stderr text."""
    err = res.stderr.decode()
    assert res.returncode == 2, err
    assert err.count("\n") == 1 and message in err, err
    return err


@pytest.fixture
def h1mock(tmp_path):
    """Factory: h1mock(initial_lua=None, *args, files={name: text}, env={}).

    Writes `initial_lua` (if given) as initial.lua and each of `files` into a
    fresh provisions directory, starts the server, and stops it after the test.
    """
    servers = []

    def factory(initial_lua=None, *args, files=None, env=None, wait=True):
        pdir = tmp_path / ("provisions%d" % len(servers))
        pdir.mkdir()
        if initial_lua is not None:
            (pdir / "initial.lua").write_text(initial_lua)
        for name, text in (files or {}).items():
            (pdir / name).write_text(text)
        srv = start_server(pdir, *args, env=env, wait=wait)
        servers.append(srv)
        return srv

    yield factory
    stop_checked(servers)


def stop_checked(servers):
    """Stops each server. Under the ASan+UBSan build a report on stderr is a
    failure of the test that provoked it, even when every response looked
    right."""
    reports = []
    for srv in servers:
        srv.stop()
        if SANITIZER_REPORT.search(srv.log):
            reports.append(srv.log)
    assert not reports, "sanitizer report:\n" + "\n".join(reports)


@pytest.fixture
def make_readonly():
    """make_readonly(dir): chmod 0555; when that does not stop writes (root),
    the immutable attribute (chattr +i) does; else the test is skipped."""
    undo = []

    def mk(path):
        path = str(path)
        os.chmod(path, 0o555)
        undo.append(("chmod", path))
        if os.access(path, os.W_OK):
            try:
                p = subprocess.run(["chattr", "+i", path], capture_output=True, timeout=10)
                if p.returncode == 0:
                    undo.append(("chattr", path))
            except (OSError, subprocess.TimeoutExpired):
                pass
        if os.access(path, os.W_OK):
            pytest.skip("cannot make %s read-only for this user (root?)" % path)

    yield mk
    for kind, path in reversed(undo):
        if kind == "chattr":
            subprocess.run(["chattr", "-i", path], capture_output=True, timeout=10)
        else:
            os.chmod(path, 0o755)


def http(method, url, **kw):
    """One request on a fresh session: no proxies from the environment, no redirects."""
    s = requests.Session()
    s.trust_env = False
    kw.setdefault("timeout", 10)
    kw.setdefault("allow_redirects", False)
    try:
        return s.request(method, url, **kw)
    finally:
        s.close()


def wait_until(pred, timeout=5.0, interval=0.02, what="condition"):
    """Calls pred until it returns something true (returned) or `timeout`
    seconds pass (AssertionError naming `what` and the last result or
    exception). For what the server does after an answer: reloads, closes."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = pred()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last = e
        if time.monotonic() >= deadline:
            raise AssertionError("%s not reached within %.1fs (last: %r)" % (what, timeout, last))
        time.sleep(interval)


def watcher_counts(srv):
    """(events seen, bursts handled, settling now) from the watcher's
    metrics on the admin port."""
    text = http("GET", srv.admin_url + "/metrics").text
    events = sum(int(v) for v in re.findall(r"^h1mock_watcher_events_total\{[^}]*\} (\d+)$",
                                            text, re.M))
    bursts = int(re.search(r"^h1mock_watcher_bursts_total (\d+)$", text, re.M).group(1))
    pending = re.search(r"^h1mock_watcher_pending (\d)$", text, re.M).group(1) == "1"
    return events, bursts, pending


def watcher_quiet(srv, since=None, timeout=10.0):
    """Waits until the provisions watcher has nothing left to do: no burst
    settling, and the same counts on two reads in a row (the second read is
    served on a later loop turn than any event queued before the first, so
    a file written before this call has been seen). With `since` (an
    earlier watcher_counts), also until at least one more event was seen.
    For "nothing else happens" checks, instead of sleeping."""
    last = [None]

    def settled():
        now = watcher_counts(srv)
        ok = (not now[2] and now == last[0] and (since is None or now[0] > since[0]))
        last[0] = now
        return ok
    wait_until(settled, timeout, 0.02, "the watcher quiet")
    log_caught_up(srv, timeout)
    return last[0]


def log_caught_up(srv, timeout=10.0):
    """The log is read from the server's stderr by a thread, which can lag
    on a loaded machine: waits until it holds a line for every provision
    load the server has counted, so that checks on the log see them all."""
    text = http("GET", srv.admin_url + "/metrics").text
    loads = sum(int(v) for v in re.findall(
        r"^h1mock_provision_loads_total\{[^}]*\} (\d+)$", text, re.M))
    wait_until(lambda: len(re.findall(r"provision '[^']*' (?:loaded: |failed to load)",
                                      srv.log)) >= loads,
               timeout, 0.02, "a log line for each of the %d loads" % loads)


def body_of(srv, path="/"):
    """The body of GET path on the traffic port, or "<status> start of body"."""
    r = http("GET", srv.url + path)
    return r.text if r.status_code == 200 else "<%d> %s" % (r.status_code, r.text[:80])


def raw_exchange(sock, data, timeout=5.0):
    """Sends `data` and reads until the peer closes or `timeout` passes."""
    if data:
        sock.sendall(data)
    sock.settimeout(timeout)
    chunks = []
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    except socket.timeout:
        pass
    return b"".join(chunks)


def read_response(sock, head_request=False, timeout=5.0):
    """Reads exactly one HTTP/1.1 response (Content-Length framed or bodiless).

    Returns (status, headers as a list of (lower-name, value), body bytes).
    Bytes read past the response are kept for the next call on that socket.
    """
    sock.settimeout(timeout)
    data = _LEFTOVER.pop(sock, b"")
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("connection closed before a full response head: %r" % data)
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip().lower(), value.strip()))
    length = 0
    for name, value in headers:
        if name == "content-length":
            length = int(value)
    if head_request or status in (204, 304) or 100 <= status < 200:
        length = 0
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("connection closed inside a body")
        rest += chunk
    body, _LEFTOVER[sock] = rest[:length], rest[length:]
    return status, headers, body


def header(headers, name):
    """The first value of header `name` in a read_response header list, or None."""
    for n, v in headers:
        if n == name.lower():
            return v
    return None


# --------------------------------------------------------------------------
# a second host: network namespaces
# --------------------------------------------------------------------------
# A peer that is not loopback needs an address of another host. This
# machine's own network addresses are not for test traffic, so such tests run
# h1mock in a network namespace of its own (unshare --net), whose loopback
# interface also carries NS_V4 (TEST-NET-1, RFC 5737) and, where IPv6 works,
# NS_V6 (the documentation prefix). Clients join it with nsenter; a client
# that connects to NS_V4 there has NS_V4 as its source address. No packet
# leaves the namespace. Root (CAP_SYS_ADMIN) is needed.

NS_V4 = "192.0.2.1"
NS_V6 = "2001:db8::1"
_NS_SETUP = ("ip link set lo up && ip addr add %s/32 dev lo && "
             "{ ip -6 addr add %s/128 dev lo 2>/dev/null || true; } && exec \"$@\""
             % (NS_V4, NS_V6))
_NS_PROBLEM = []


def netns_problem():
    """None when in_netns works here, else why not (for pytest.skip)."""
    if not _NS_PROBLEM:
        import shutil
        why = next(("%s is not installed" % t for t in ("unshare", "nsenter", "ip", "curl")
                    if shutil.which(t) is None), None)
        if why is None:
            res = subprocess.run(in_netns(["true"]), capture_output=True, text=True, timeout=20)
            if res.returncode != 0:
                why = "cannot make a network namespace here: %s" % res.stderr.strip()
        _NS_PROBLEM.append(why)
    return _NS_PROBLEM[0]


def in_netns(cmd):
    """`cmd` run (exec'd: same PID) in a new network namespace with NS_V4 on lo."""
    return ["unshare", "--net", "sh", "-c", _NS_SETUP, "sh", *cmd]


def ns_run(pid, cmd, env=None, timeout=30):
    """Runs `cmd` in the network namespace of process `pid`."""
    return subprocess.run(["nsenter", "--net=/proc/%d/ns/net" % pid, *cmd], env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)


def ns_curl(pid, method, url, source, body=None, headers=()):
    """(status, body) of one request made with curl from address `source`
    in the network namespace of process `pid`."""
    cmd = ["curl", "-sS", "--noproxy", "*", "--max-time", "10", "-o", "-",
           "-w", "\n%{http_code}", "--interface", source, "-X", method]
    for h in headers:
        cmd += ["-H", h]
    if body is not None:
        cmd += ["--data-binary", body]
    res = ns_run(pid, cmd + [url])
    assert res.returncode == 0, res.stderr
    text, _, status = res.stdout.rpartition("\n")
    return int(status), text
