"""Command line, environment, startup, --check, signals and the admin port.

Every assertion here is about behaviour seen from outside the process: exit
codes, what it writes on stdout/stderr, and what it answers on real sockets.

README: "Command line".
"""

import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest
import requests

from conftest import BIN, PROVISIONS, Server, raw_exchange, read_response

RUN_TIMEOUT = 15.0
TS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|\+00:00)"

HELLO = """
function registerRules()
  app.add_url_rule("/hello", "hello", hello)
  app.add_url_rule("/echo", "echo", echo, {"POST"})
end

function hello(req) return "hello from initial" end

function echo(req) return req.data end
"""


def _env(extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("H1MOCK_")}
    env.update(extra or {})
    return env


def run(args, env=None, cwd=None, timeout=RUN_TIMEOUT):
    """Runs h1mock to completion; fails the test if it does not exit in time."""
    try:
        return subprocess.run([BIN, *args], stdin=subprocess.DEVNULL, capture_output=True,
                              env=_env(env), cwd=cwd, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        pytest.fail("h1mock %s did not exit within %ss (stderr so far: %r)"
                    % (" ".join(args), timeout, e.stderr))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def has_ipv6_loopback():
    if not socket.has_ipv6:
        return False
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        try:
            s.bind(("::1", 0))
        finally:
            s.close()
        return True
    except OSError:
        return False


def get(host, port, path, extra=b"", timeout=5.0):
    """One request on a fresh raw connection; returns (status, headers, body)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((host, port))
        s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: t\r\n" + extra + b"\r\n")
        return read_response(s, timeout=timeout)
    finally:
        s.close()


@pytest.fixture
def spawn(tmp_path):
    """Starts h1mock with exactly the given arguments (no defaults added).

    spawn(args, env={}, host="127.0.0.1") -> Server (ports read from the log).
    Runs in tmp_path so a missing --provisions never picks up ./provisions of
    the repo. Stopped by PID at the end of the test.
    """
    servers = []

    def factory(args, env=None, host="127.0.0.1", wait=True):
        proc = subprocess.Popen([BIN, *args], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env=_env(env), cwd=str(tmp_path))
        srv = Server(proc, tmp_path)
        servers.append(srv)
        srv.host = host
        if wait:
            m = srv.wait_log(r"traffic on (\S+):(\d+)", 15)
            srv.port = int(m.group(2))
            m = srv.wait_log(r"admin on (\S+):(\d+)", 15)
            srv.admin_port = int(m.group(2))
        return srv

    yield factory
    for srv in servers:
        srv.stop()


def assert_usage_error(res, *must_contain):
    err = res.stderr.decode("utf-8", "replace")
    assert res.returncode == 2, "exit %r, stderr %r" % (res.returncode, err)
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1, "expected one line on stderr, got %r" % err
    assert lines[0].startswith("h1mock: "), lines[0]
    for s in must_contain:
        assert s in lines[0], "%r not in %r" % (s, lines[0])
    return lines[0]


# --------------------------------------------------------------------------
# --help / --version
# --------------------------------------------------------------------------

def test_help_lists_every_option():
    res = run(["--help"])
    assert res.returncode == 0, res.stderr
    out = res.stdout.decode()
    for opt in ("--port", "--admin-port", "--address", "--provisions", "--verbose",
                "--max-body", "--header-timeout", "--idle-timeout", "--check",
                "--help", "--version"):
        assert opt in out, "%s missing from --help output:\n%s" % (opt, out)
    assert "h1mock" in out


def test_version():
    res = run(["--version"])
    assert res.returncode == 0, res.stderr
    assert res.stdout.decode().strip() == "h1mock 0.1.0"


# --------------------------------------------------------------------------
# usage errors
# --------------------------------------------------------------------------

def test_unknown_option(tmp_path):
    res = run(["--nope", "--port", "0", "--admin-port", "0", "--address", "127.0.0.1",
               "--provisions", str(tmp_path)])
    line = assert_usage_error(res, "--nope")
    assert "unknown option" in line


@pytest.mark.parametrize("opt", ["--port", "--admin-port", "--max-body", "--provisions",
                                 "--address", "--header-timeout", "--idle-timeout"])
def test_missing_value(tmp_path, opt):
    args = ["--address", "127.0.0.1", "--provisions", str(tmp_path)]
    if opt != "--port":
        args += ["--port", "0"]
    if opt != "--admin-port":
        args += ["--admin-port", "0"]
    res = run(args + [opt])
    assert_usage_error(res, opt)


@pytest.mark.parametrize("opt,value", [
    ("--port", "abc"),
    ("--port", "70000"),
    ("--port", "80x"),
    ("--admin-port", "eighty"),
    ("--admin-port", "65536"),
    ("--max-body", "lots"),
    ("--max-body", "12q"),
    ("--header-timeout", "soon"),
    ("--idle-timeout", "forever"),
])
def test_bad_value(tmp_path, opt, value):
    base = {"--port": "0", "--admin-port": "0"}
    base.pop(opt, None)
    args = ["--address", "127.0.0.1", "--provisions", str(tmp_path)]
    for k, v in base.items():
        args += [k, v]
    res = run(args + [opt, value])
    assert_usage_error(res, opt, value)


def test_bad_port_message_exact(tmp_path):
    res = run(["--admin-port", "0", "--address", "127.0.0.1", "--provisions", str(tmp_path),
               "--port", "abc"])
    line = assert_usage_error(res)
    assert line == "h1mock: --port: 'abc' is not a port (0-65535)"


def test_bad_value_in_equals_form(tmp_path):
    res = run(["--admin-port", "0", "--address", "127.0.0.1", "--provisions", str(tmp_path),
               "--port=abc"])
    assert_usage_error(res, "--port", "abc")


@pytest.mark.parametrize("var,value,args", [
    ("H1MOCK_PORT", "abc", ["--admin-port", "0"]),
    ("H1MOCK_ADMIN_PORT", "99999", ["--port", "0"]),
    ("H1MOCK_MAX_BODY", "lots", ["--port", "0", "--admin-port", "0"]),
    ("H1MOCK_IDLE_TIMEOUT", "never", ["--port", "0", "--admin-port", "0"]),
])
def test_bad_env_value_names_variable(tmp_path, var, value, args):
    res = run(args + ["--address", "127.0.0.1", "--provisions", str(tmp_path)],
              env={var: value})
    line = assert_usage_error(res, var, value)
    if var == "H1MOCK_PORT":
        assert line == "h1mock: H1MOCK_PORT: 'abc' is not a port (0-65535)"


# --------------------------------------------------------------------------
# --opt=value, environment, precedence
# --------------------------------------------------------------------------

def post(srv, path, body, timeout=5.0):
    s = srv.connect(timeout)
    try:
        s.sendall(b"POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n"
                  % (path.encode(), len(body)) + body)
        return read_response(s, timeout=timeout)
    finally:
        s.close()


def test_equals_form(tmp_path, spawn):
    pdir = tmp_path / "p"
    pdir.mkdir()
    (pdir / "initial.lua").write_text(HELLO)
    port = free_port()
    srv = spawn(["--address=127.0.0.1", "--port=%d" % port, "--admin-port=0",
                 "--provisions=%s" % pdir, "--max-body=100"])
    assert srv.port == port
    status, _, body = get("127.0.0.1", port, "/hello")
    assert (status, body) == (200, b"hello from initial")
    assert post(srv, "/echo", b"x" * 100)[0] == 200
    assert post(srv, "/echo", b"x" * 200)[0] == 413


def test_env_vars_take_effect(tmp_path, spawn):
    pdir = tmp_path / "envdir"
    pdir.mkdir()
    (pdir / "initial.lua").write_text(HELLO)
    port, admin = free_port(), free_port()
    while admin == port:
        admin = free_port()
    srv = spawn([], env={"H1MOCK_PORT": str(port), "H1MOCK_ADMIN_PORT": str(admin),
                         "H1MOCK_ADDRESS": "127.0.0.1", "H1MOCK_PROVISIONS": str(pdir),
                         "H1MOCK_MAX_BODY": "100"})
    assert srv.port == port
    assert srv.admin_port == admin
    assert re.search(r"traffic on 127\.0\.0\.1:%d\b" % port, srv.log)
    # the provisions directory came from H1MOCK_PROVISIONS
    status, _, body = get("127.0.0.1", port, "/hello")
    assert (status, body) == (200, b"hello from initial")
    r = requests.get("http://127.0.0.1:%d/healthz" % admin, timeout=5)
    assert r.status_code == 200
    # the body limit came from H1MOCK_MAX_BODY
    status, _, body = post(srv, "/echo", b"y" * 100)
    assert (status, body) == (200, b"y" * 100)
    assert post(srv, "/echo", b"y" * 101)[0] == 413


def test_env_max_body_via_fixture(h1mock):
    srv = h1mock(HELLO, env={"H1MOCK_MAX_BODY": "100"})
    assert post(srv, "/echo", b"z" * 100)[0] == 200
    assert post(srv, "/echo", b"z" * 150)[0] == 413


def test_command_line_wins_over_env_max_body(h1mock):
    srv = h1mock(HELLO, "--max-body", "1000", env={"H1MOCK_MAX_BODY": "100"})
    status, _, body = post(srv, "/echo", b"z" * 500)
    assert (status, body) == (200, b"z" * 500)
    assert post(srv, "/echo", b"z" * 1500)[0] == 413


def test_command_line_wins_over_env_port(tmp_path, spawn):
    pdir = tmp_path / "p"
    pdir.mkdir()
    (pdir / "initial.lua").write_text(HELLO)
    env_port, cli_port = free_port(), free_port()
    while cli_port == env_port:
        cli_port = free_port()
    srv = spawn(["--port", str(cli_port), "--admin-port", "0", "--provisions", str(pdir)],
                env={"H1MOCK_PORT": str(env_port), "H1MOCK_ADDRESS": "127.0.0.1"})
    assert srv.port == cli_port
    assert get("127.0.0.1", cli_port, "/hello")[0] == 200
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", env_port), timeout=2).close()


@pytest.mark.parametrize("env,args", [
    ({"H1MOCK_PORT": "abc"}, ["--port", "0"]),
    ({"H1MOCK_PORT": "abc"}, ["--port=0"]),
    ({"H1MOCK_MAX_BODY": "lots", "H1MOCK_IDLE_TIMEOUT": "never"},
     ["--max-body", "1k", "--idle-timeout=5"]),
    ({"H1MOCK_VERBOSE": "maybe"}, ["--verbose"]),
])
def test_command_line_wins_over_a_bad_variable(tmp_path, spawn, env, args):
    # an overridden variable is not even parsed (#16 point 10)
    pdir = tmp_path / "p"
    pdir.mkdir()
    (pdir / "initial.lua").write_text(HELLO)
    base = ["--address", "127.0.0.1", "--admin-port", "0", "--provisions", str(pdir)]
    if "--port" not in args and "--port=0" not in args:
        base += ["--port", "0"]
    srv = spawn(base + args, env=env)
    assert get("127.0.0.1", srv.port, "/hello")[2] == b"hello from initial"
    # the same variable without its option still stops the start, naming it
    var, value = next(iter(env.items()))
    ports = [] if var == "H1MOCK_PORT" else ["--port", "0"]
    res = run(["--address", "127.0.0.1", "--admin-port", "0", "--provisions", str(pdir)] + ports,
              env={var: value})
    assert_usage_error(res, var, value)


def test_admin_token_file_overrides_a_bad_token_variable(tmp_path, spawn):
    pdir = tmp_path / "p"
    pdir.mkdir()
    tok = tmp_path / "token"
    tok.write_text("file-token\n")
    tok.chmod(0o600)
    srv = spawn(["--address", "127.0.0.1", "--port", "0", "--admin-port", "0",
                 "--provisions", str(pdir), "--admin-token-file", str(tok)],
                env={"H1MOCK_ADMIN_TOKEN": "has a space"})
    r = requests.get("http://127.0.0.1:%d/app/v1/requests/count" % srv.admin_port, timeout=5,
                     headers={"Authorization": "Bearer file-token"})
    assert r.status_code == 200


VERBOSE_LUA = """
function registerRules()
  app.add_url_rule("/log", "logit", logit)
end

function logit(req)
  log.debug("debug-marker-%d", 42)
  log.info("info-marker-%s", "x")
  return "logged"
end
"""


@pytest.mark.parametrize("how", ["flag", "env"])
def test_verbose_shows_debug_lines(h1mock, how):
    if how == "flag":
        srv = h1mock(VERBOSE_LUA, "--verbose")
    else:
        srv = h1mock(VERBOSE_LUA, env={"H1MOCK_VERBOSE": "1"})
    assert get("127.0.0.1", srv.port, "/log")[2] == b"logged"
    srv.wait_log(r"INFO info-marker-x")
    assert re.search(r"^%s DEBUG debug-marker-42$" % TS, srv.log, re.M), srv.log


def test_not_verbose_hides_debug_lines(h1mock):
    srv = h1mock(VERBOSE_LUA)
    assert get("127.0.0.1", srv.port, "/log")[2] == b"logged"
    srv.wait_log(r"INFO info-marker-x")
    assert "debug-marker" not in srv.log


# --------------------------------------------------------------------------
# startup failures
# --------------------------------------------------------------------------

def _bound_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s


def test_traffic_port_in_use(tmp_path):
    busy = _bound_socket()
    try:
        port = busy.getsockname()[1]
        res = run(["--address", "127.0.0.1", "--port", str(port), "--admin-port", "0",
                   "--provisions", str(tmp_path)])
    finally:
        busy.close()
    err = res.stderr.decode()
    assert res.returncode == 1, (res.returncode, err)
    lines = [l for l in err.splitlines() if "cannot listen" in l]
    assert len(lines) == 1, err
    assert "cannot listen on 127.0.0.1:%d" % port in lines[0]
    assert "address already in use" in lines[0]
    # what to do about it, e.g. with the quick start's server still running
    assert lines[0].endswith("address already in use; another program (another h1mock?) has "
                             "that port: stop it, or choose another with --port (0 picks a "
                             "free one)"), lines[0]


def test_admin_port_in_use(tmp_path):
    busy = _bound_socket()
    try:
        port = busy.getsockname()[1]
        res = run(["--address", "127.0.0.1", "--port", "0", "--admin-port", str(port),
                   "--provisions", str(tmp_path)])
    finally:
        busy.close()
    err = res.stderr.decode()
    assert res.returncode == 1, (res.returncode, err)
    assert "cannot listen on 127.0.0.1:%d" % port in err
    assert "address already in use" in err
    assert "choose another with --admin-port (0 picks a free one)" in err


def test_missing_provisions_dir(tmp_path):
    missing = tmp_path / "no" / "such-dir"
    res = run(["--address", "127.0.0.1", "--port", "0", "--admin-port", "0",
               "--provisions", str(missing)])
    err = res.stderr.decode()
    assert res.returncode == 1, (res.returncode, err)
    lines = [l for l in err.splitlines() if "does not exist" in l]
    assert len(lines) == 1, err
    assert str(missing) in lines[0]


# --------------------------------------------------------------------------
# IPv6
# --------------------------------------------------------------------------

@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback (::1) on this machine")
def test_ipv6_loopback(tmp_path, spawn):
    pdir = tmp_path / "p6"
    pdir.mkdir()
    (pdir / "initial.lua").write_text(HELLO)
    srv = spawn(["--address", "::1", "--port", "0", "--admin-port", "0",
                 "--provisions", str(pdir)], host="::1")
    assert re.search(r"INFO traffic on \[::1\]:%d$" % srv.port, srv.log, re.M), srv.log
    assert re.search(r"INFO admin on \[::1\]:%d$" % srv.admin_port, srv.log, re.M), srv.log
    status, _, body = get("::1", srv.port, "/hello")
    assert (status, body) == (200, b"hello from initial")
    status, _, body = get("::1", srv.admin_port, "/healthz")
    assert status == 200
    assert json.loads(body) == {"status": "ok"}
    # bound to ::1 only: not reachable over IPv4 loopback on that port
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", srv.port), timeout=2).close()


# --------------------------------------------------------------------------
# host names for --address (#16 point 10)
# --------------------------------------------------------------------------

def test_address_localhost_is_resolved_at_start(tmp_path, spawn):
    pdir = tmp_path / "p"
    pdir.mkdir()
    (pdir / "initial.lua").write_text(HELLO)
    srv = spawn(["--address", "localhost", "--port", "0", "--admin-port", "0",
                 "--provisions", str(pdir)])
    srv.wait_log(r"provision 'initial' loaded")
    assert re.search(r"INFO traffic on 127\.0\.0\.1:%d$" % srv.port, srv.log, re.M), srv.log
    assert get("127.0.0.1", srv.port, "/hello")[2] == b"hello from initial"
    status, _, body = get("127.0.0.1", srv.admin_port, "/app/v1/provision/initial")
    assert status == 200
    # localhost is loopback, so nothing is said about other hosts reaching the admin API
    assert "only loopback peers may call it" not in srv.log


def test_address_that_does_not_resolve_is_refused(tmp_path):
    res = run(["--address", "nosuch.invalid", "--port", "0", "--admin-port", "0",
               "--provisions", str(tmp_path)])
    err = res.stderr.decode()
    assert res.returncode == 1, err
    assert "h1mock: --address: 'nosuch.invalid' is neither an IPv4 or IPv6 address nor a host " \
        "name that resolves" in err
    assert "traffic on" not in err


def hosts_problem():
    """None when h1mock can run with an /etc/hosts of its own (a mount
    namespace: nothing under /etc changes), else why not."""
    import shutil
    if shutil.which("unshare") is None:
        return "unshare is not installed"
    res = subprocess.run(["unshare", "--mount", "sh", "-c", "mount --bind /dev/null /etc/hosts"],
                         capture_output=True, text=True, timeout=20)
    if res.returncode != 0:
        return "cannot make a mount namespace here: %s" % res.stderr.strip()
    return None


def spawn_with_hosts(tmp_path, hosts, name):
    """h1mock (same PID) serving HELLO on --address `name`, ports 0, in a
    mount namespace where /etc/hosts is `hosts`."""
    why = hosts_problem()
    if why:
        pytest.skip(why)
    hfile = tmp_path / "hosts"
    hfile.write_text(hosts)
    pdir = tmp_path / "p"
    pdir.mkdir()
    (pdir / "initial.lua").write_text(HELLO)
    proc = subprocess.Popen(["unshare", "--mount", "sh", "-c",
                             'mount --bind "$0" /etc/hosts && exec "$@"', str(hfile), BIN,
                             "--address", name, "--port", "0", "--admin-port", "0",
                             "--provisions", str(pdir)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=_env(), cwd=str(tmp_path))
    return Server(proc, tmp_path)


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback (::1) on this machine")
def test_address_name_with_two_addresses_listens_on_both(tmp_path):
    srv = spawn_with_hosts(tmp_path, "127.0.0.1 both.test\n::1 both.test\n", "both.test")
    try:
        srv.wait_log(r"provision 'initial' loaded")
        ports = {}
        for kind in ("traffic", "admin"):
            found = re.findall(r"INFO %s on (\S+):(\d+)$" % kind, srv.log, re.M)
            assert sorted(h for h, _ in found) == ["127.0.0.1", "[::1]"], srv.log
            # one port for both addresses, even when the port was 0
            assert len({p for _, p in found}) == 1, srv.log
            ports[kind] = int(found[0][1])
        for host in ("127.0.0.1", "::1"):
            assert get(host, ports["traffic"], "/hello")[2] == b"hello from initial"
            assert get(host, ports["admin"], "/healthz")[0] == 200
        assert "only loopback peers may call it" not in srv.log
    finally:
        assert srv.stop() == 0, srv.log


def test_address_name_leaves_out_an_address_it_cannot_bind(tmp_path):
    # 192.0.2.1 (TEST-NET-1) is no address of this host: h1mock listens on
    # the other one, says so, and is then reachable from other hosts by name
    srv = spawn_with_hosts(tmp_path, "127.0.0.1 mixed.test\n192.0.2.1 mixed.test\n",
                           "mixed.test")
    try:
        m = srv.wait_log(r"INFO traffic on 127\.0\.0\.1:(\d+)$")
        srv.wait_log(r"WARN traffic: cannot listen on 192\.0\.2\.1:\d+, an address of "
                     r"'mixed\.test': .*; leaving it out")
        srv.wait_log(r"provision 'initial' loaded")
        assert get("127.0.0.1", int(m.group(1)), "/hello")[2] == b"hello from initial"
        # not all of the name is loopback: the admin API's limit is explained
        assert "only loopback peers may call it" in srv.log
    finally:
        assert srv.stop() == 0, srv.log


# --------------------------------------------------------------------------
# log lines at start
# --------------------------------------------------------------------------

def test_startup_log_lines(h1mock):
    srv = h1mock(HELLO)
    srv.wait_log(r"provision 'initial' loaded")
    log = srv.log
    assert re.search(r"^%s INFO traffic on 127\.0\.0\.1:%d$" % (TS, srv.port), log, re.M), log
    assert re.search(r"^%s INFO admin on 127\.0\.0\.1:%d$" % (TS, srv.admin_port), log, re.M), log
    m = re.search(r"^%s INFO provision 'initial' loaded: (\d+) rules? in [0-9.]+ ms$" % TS,
                  log, re.M)
    assert m, log
    assert int(m.group(1)) == 2
    for line in log.splitlines():
        assert re.match(r"^%s (DEBUG|INFO|WARN|ERROR) " % TS, line), "bad log line %r" % line
    # the ports in the log are the real ones
    assert get("127.0.0.1", srv.port, "/hello")[0] == 200
    assert requests.get(srv.admin_url + "/healthz", timeout=5).status_code == 200


def test_one_rule_is_counted_in_the_singular(h1mock, tmp_path):
    one = 'function registerRules() app.get("/", function() return "x" end) end\n'
    srv = h1mock(one)
    srv.wait_log(r"INFO provision 'initial' loaded: 1 rule in [0-9.]+ ms$")
    assert "1 rules" not in srv.log
    f = tmp_path / "one.lua"
    f.write_text(one)
    res = run(["--check", str(f)])
    assert res.returncode == 0
    assert res.stdout.decode() == "%s: ok (1 rule)\n" % f


def test_initial_without_lua_extension(h1mock):
    srv = h1mock(None, files={"initial": HELLO})
    status, _, body = get("127.0.0.1", srv.port, "/hello")
    assert (status, body) == (200, b"hello from initial")


# --------------------------------------------------------------------------
# built-in default and broken initial provisions
# --------------------------------------------------------------------------

def assert_default_page(srv):
    # "/" is the default's homepage and /api its REST API (test_rest.py);
    # every other path is the 404 guide.
    for path in ("/hello", "/some/where?x=1", "/apis"):
        r = requests.get(srv.url + path, timeout=5)
        assert r.status_code == 404, (path, r.status_code, r.text[:200])
        assert r.headers["Content-Type"] == "text/html; charset=utf-8"
        assert "app.add_url_rule" in r.text
        assert "/app/v1/provision" in r.text
    r = requests.post(srv.url + "/x", data=b"abc", timeout=5)
    assert r.status_code == 404
    assert "app.add_url_rule" in r.text


def test_builtin_default_without_initial(h1mock):
    srv = h1mock(None)
    assert_default_page(srv)


BROKEN = {
    "syntax": ("-- a provision with a syntax error\n"
               "function registerRules() end\n"
               "local x = = 1\n", 3, r"unexpected symbol|near"),
    "runtime_top": ("-- raises while the file runs\n"
                    "error(\"boom at top level\")\n"
                    "function registerRules() end\n", 2, r"boom at top level"),
    "runtime_register": ("function registerRules()\n"
                         "  local t = nil\n"
                         "  app.add_url_rule('/hello', 'hello', function() return 'x' end)\n"
                         "  return t.field\n"
                         "end\n", 4, r"attempt to index a nil value"),
    "endless_loop": ("-- spins forever at load\n"
                     "local n = 0\n"
                     "while true do n = n + 1 end\n"
                     "function registerRules() end\n", 3, r""),
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_broken_initial_logged_and_default_serves(h1mock, kind):
    src, line, msg = BROKEN[kind]
    t0 = time.monotonic()
    srv = h1mock(src)
    m = srv.wait_log(r"ERROR .*initial\.lua:(\d+):(.*)", timeout=15)
    assert int(m.group(1)) == line, m.group(0)
    assert re.search(msg, m.group(2)), m.group(0)
    assert re.match(r"^%s ERROR " % TS, m.string), m.string
    assert_default_page(srv)
    # the broken rule of runtime_register must not be serving either
    assert requests.get(srv.url + "/hello", timeout=5).status_code == 404
    assert time.monotonic() - t0 < 20
    assert srv.proc.poll() is None


# --------------------------------------------------------------------------
# --check
# --------------------------------------------------------------------------

GOOD = """
function registerRules()
  app.add_url_rule("/a", "a", a)
  app.add_url_rule("/b/<int:id>", "b", b, {"GET", "POST"})
  app.add_url_rule("/c", "c", c, {methods = {"PUT"}})
end
function a() return "a" end
function b(req, id) return "b" end
function c() return "c" end
"""

BAD_SYNTAX = "function registerRules()\n  app.add_url_rule('/a', 'a', a\nend\nlocal = 3\n"
# line 3 is where Lua notices the missing ')': "')' expected (to close '(' at line 2) near 'end'"

BAD_RUNTIME = """function registerRules()
  app.add_url_rule("/a", "a", a)
  local n = nil
  local y = n + 1
end
function a() return "a" end
"""

BAD_GLOBAL = """function registerRules()
  app.add_url_rule("/a", "a", no_such_view)
end
"""


def check(args, tmp_path):
    return run(["--check", *args], cwd=str(tmp_path))


def test_check_good_file(tmp_path):
    (tmp_path / "good.lua").write_text(GOOD)
    res = check(["good.lua"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.decode().strip().splitlines() == ["good.lua: ok (3 rules)"]
    assert b"error" not in res.stderr.lower()


def test_check_syntax_error(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "bad.lua").write_text(BAD_SYNTAX)
    res = check(["sub/bad.lua"], tmp_path)
    err = res.stderr.decode()
    assert res.returncode == 1, (res.returncode, err)
    assert re.search(r"^sub/bad\.lua:3: .*expected", err, re.M), err
    assert b"ok" not in res.stdout


def test_check_runtime_error_in_register_rules(tmp_path):
    (tmp_path / "rt.lua").write_text(BAD_RUNTIME)
    res = check(["rt.lua"], tmp_path)
    err = res.stderr.decode()
    assert res.returncode == 1, (res.returncode, err)
    assert re.search(r"^rt\.lua:4: .*arithmetic", err, re.M), err


def test_check_unknown_global(tmp_path):
    (tmp_path / "glob.lua").write_text(BAD_GLOBAL)
    res = check(["glob.lua"], tmp_path)
    err = res.stderr.decode()
    assert res.returncode == 1, (res.returncode, err)
    assert re.search(r"^glob\.lua:2: .*unknown global 'no_such_view'", err, re.M), err


@pytest.mark.parametrize("rule", ["/a/<int:id", "/a/<nope:x>", "/a/<x>/<x>", "no-slash"])
def test_check_bad_rule(tmp_path, rule):
    src = ("function registerRules()\n"
           "  app.add_url_rule('/ok', 'ok', v)\n"
           "  app.add_url_rule('%s', 'bad', v)\n"
           "end\n"
           "function v() return 'v' end\n") % rule
    (tmp_path / "rule.lua").write_text(src)
    res = check(["rule.lua"], tmp_path)
    err = res.stderr.decode()
    assert res.returncode == 1, (res.returncode, err)
    m = re.search(r"^rule\.lua:3: (.*)$", err, re.M)
    assert m, err
    assert rule in m.group(1), err


def test_check_missing_file(tmp_path):
    res = check(["missing.lua"], tmp_path)
    err = res.stderr.decode()
    assert res.returncode == 1, (res.returncode, err)
    assert "missing.lua: cannot read: No such file or directory" in err


def test_check_mixed_files(tmp_path):
    (tmp_path / "good.lua").write_text(GOOD)
    (tmp_path / "glob.lua").write_text(BAD_GLOBAL)
    res = check(["good.lua", "glob.lua", "missing.lua"], tmp_path)
    out, err = res.stdout.decode(), res.stderr.decode()
    assert res.returncode == 1, (res.returncode, err)
    assert "good.lua: ok (3 rules)" in out
    assert re.search(r"^glob\.lua:2: ", err, re.M), err
    assert "missing.lua: cannot read: No such file or directory" in err
    assert "glob.lua" not in out


def test_check_several_good_files(tmp_path):
    (tmp_path / "one.lua").write_text(GOOD)
    (tmp_path / "two.lua").write_text(HELLO)
    res = check(["one.lua", "two.lua"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.decode().splitlines() == ["one.lua: ok (3 rules)", "two.lua: ok (2 rules)"]


def test_check_without_files(tmp_path):
    res = check([], tmp_path)
    assert res.returncode == 2, res
    assert res.stderr.decode().startswith("h1mock: ")


def test_check_opens_no_ports(tmp_path):
    """--check while the default ports are taken still works (no listener opened)."""
    (tmp_path / "good.lua").write_text(GOOD)
    busy = []
    try:
        for port in (8000, 8074):
            s = socket.socket()
            try:
                s.bind(("0.0.0.0", port))
                s.listen(1)
                busy.append(s)
            except OSError:
                s.close()  # somebody else holds it: just as good for this test
        res = check(["good.lua"], tmp_path)
    finally:
        for s in busy:
            s.close()
    assert res.returncode == 0, res.stderr
    assert res.stdout.decode().strip() == "good.lua: ok (3 rules)"


# --------------------------------------------------------------------------
# signals
# --------------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_exits_zero(h1mock, sig):
    srv = h1mock(HELLO)
    assert get("127.0.0.1", srv.port, "/hello")[0] == 200
    assert srv.stop(sig) == 0
    assert re.search(r"^%s INFO stopping\b" % TS, srv.log, re.M), srv.log


SLOW = """
function registerRules()
  app.add_url_rule("/slow", "slow", slow)
  app.add_url_rule("/hello", "hello", function() return "hi" end)
end

function slow(req)
  log.info("slow request sleeping")
  sleep(1)
  return "slept well"
end
"""


def test_sigterm_drains_sleeping_request(h1mock):
    srv = h1mock(SLOW)
    s = srv.connect()
    s.sendall(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
    srv.wait_log(r"slow request sleeping")
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    srv.wait_log(r"INFO stopping", timeout=5)
    # no new connection is served once stopping
    try:
        s2 = socket.create_connection(("127.0.0.1", srv.port), timeout=1)
        try:
            late = raw_exchange(s2, b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", timeout=1.5)
        except OSError:
            late = b""
        finally:
            s2.close()
    except OSError:
        late = b""
    assert not late.startswith(b"HTTP/1.1 200"), late
    status, headers, body = read_response(s, timeout=5)
    s.close()
    assert (status, body) == (200, b"slept well")
    assert srv.proc.wait(10) == 0
    assert time.monotonic() - t0 < 8


# --------------------------------------------------------------------------
# admin port
# --------------------------------------------------------------------------

def test_admin_healthz(h1mock):
    srv = h1mock(HELLO)
    r = requests.get(srv.admin_url + "/healthz", timeout=5)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == {"status": "ok"}
    # healthz is on the admin port, not the traffic port
    assert requests.get(srv.url + "/healthz", timeout=5).status_code == 404


@pytest.mark.parametrize("path", ["/", "/nope", "/healthz/extra", "/metricsz"])
def test_admin_unknown_path_404_json(h1mock, path):
    srv = h1mock(HELLO)
    r = requests.get(srv.admin_url + path, timeout=5)
    assert r.status_code == 404
    assert r.headers["Content-Type"].startswith("application/json")
    doc = r.json()
    assert isinstance(doc.get("error"), str) and doc["error"], doc
    # still healthy afterwards
    assert requests.get(srv.admin_url + "/healthz", timeout=5).status_code == 200


# --------------------------------------------------------------------------
# the repo's example provision
# --------------------------------------------------------------------------

def test_foo_bar_example(h1mock):
    src = PROVISIONS / "foo-bar.lua"
    if not src.exists():
        pytest.skip("provisions/foo-bar.lua does not exist yet")
    srv = h1mock(src.read_text())
    r = requests.get(srv.url + "/app/v1/foo/bar", timeout=5)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == {"resultCode": 0, "resultData": "answering a get"}
    r = requests.post(srv.url + "/app/v1/foo/bar", json={"x": 1}, timeout=5)
    assert r.status_code == 200
    assert r.json() == {"resultCode": 0, "resultData": "answering a post"}
    assert r.headers["x-version"] == "1.1.0"
    m = re.fullmatch(r"/app/v1/foo/bar/(\d+)", r.headers["location"])
    assert m, r.headers["location"]
    assert 10000 <= int(m.group(1)) <= 20000
    # other methods: 405 with Allow
    r = requests.delete(srv.url + "/app/v1/foo/bar", timeout=5)
    assert r.status_code == 405
    allow = [m.strip() for m in r.headers["Allow"].split(",")]
    assert {"GET", "POST"} <= set(allow)
