"""Protected mode of the admin API: without a token, only loopback peers
may call it (others get 403 and a sentence on how to open it), unless
--admin-open says otherwise; /healthz and /metrics answer every peer.

Each server runs in a network namespace of its own, where the peers that
are not loopback come from NS_V4 / NS_V6 (see conftest's in_netns); skipped
with the reason where namespaces cannot be made.

README: "Who may call it without a token".
"""

import os
import subprocess

import pytest

from conftest import (BIN, NS_V4 as V4, NS_V6 as V6, START_TIMEOUT, Server, clean_env, in_netns,
                      netns_problem, ns_curl, ns_run, stop_checked)

APP = r'''
function registerRules()
  app.add_url_rule("/hello", "hello", function() return "v1" end)
end
'''
POSTED = APP.replace('"v1"', '"posted"')
REFUSAL = ("failed: without a token this admin API answers calls from this host only: start "
           "h1mock with --admin-token or --admin-token-file, or with --admin-open to allow "
           "unauthenticated admin calls from other hosts")

pytestmark = pytest.mark.skipif(netns_problem() is not None, reason=str(netns_problem()))


class NsServer(Server):
    def has_v6(self):
        return V6 in ns_run(self.proc.pid, ["ip", "-6", "addr", "show", "dev", "lo"]).stdout

    def call(self, method, path, source, port=None, body=None, headers=()):
        """(status, body) of one request from `source` to itself, on the
        admin port unless `port` is given."""
        url = "http://%s:%d%s" % ("[%s]" % source if ":" in source else source,
                                  port or self.admin_port, path)
        return ns_curl(self.proc.pid, method, url, source, body, headers)


@pytest.fixture
def ns_h1mock(tmp_path):
    """ns_h1mock(*args, address="0.0.0.0", env=None): h1mock in its own
    network namespace, serving APP; stopped by PID after the test."""
    servers = []

    def start(*args, address="0.0.0.0", env=None):
        pdir = tmp_path / ("provisions%d" % len(servers))
        pdir.mkdir()
        (pdir / "initial.lua").write_text(APP)
        cmd = in_netns([BIN, "--address", address, "--port", "0", "--admin-port", "0",
                        "--provisions", str(pdir), *args])
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, env=clean_env(env))
        srv = NsServer(proc, pdir)
        servers.append(srv)
        srv.port = int(srv.wait_log(r"traffic on (\S+):(\d+)", START_TIMEOUT).group(2))
        srv.admin_port = int(srv.wait_log(r"admin on (\S+):(\d+)", START_TIMEOUT).group(2))
        return srv

    yield start
    stop_checked(servers)


ADMIN_CALLS = [
    ("POST", "/app/v1/provision/posted", POSTED),
    ("GET", "/app/v1/provision", None),
    ("GET", "/app/v1/provision/initial", None),
    ("DELETE", "/app/v1/provision/initial", None),
    ("POST", "/app/v1/store/c", '[{"a":1}]'),
    ("GET", "/app/v1/store", None),
    ("DELETE", "/app/v1/requests", None),
    ("GET", "/app/v1/requests", None),
    ("GET", "/app/v1/openapi.yaml", None),
    ("GET", "/no/such/admin/path", None),
]


def test_other_hosts_get_403_and_change_nothing_without_a_token(ns_h1mock):
    srv = ns_h1mock()
    srv.wait_log(r"INFO admin API: no token, so only loopback peers may call it")
    assert srv.call("GET", "/hello", V4, port=srv.port) == (200, "v1")  # traffic: everyone
    for method, path, body in ADMIN_CALLS:
        status, text = srv.call(method, path, V4, body=body)
        assert (status, text) == (403, '{"result":"%s"}\n' % REFUSAL), (method, path)
    # nothing happened: not stored, not activated, not seeded, journal kept
    assert not (srv.provisions / "posted.lua").exists()
    assert (srv.provisions / "initial.lua").exists()
    assert srv.call("GET", "/hello", V4, port=srv.port) == (200, "v1")
    status, text = srv.call("GET", "/app/v1/store", "127.0.0.1")
    assert (status, text) == (200, '{"collections":[]}\n')
    status, text = srv.call("GET", "/app/v1/requests/count", "127.0.0.1")
    assert status == 200 and '"count":2' in text, text
    # probes and scrapers come from other hosts
    assert srv.call("GET", "/healthz", V4) == (200, '{"status":"ok"}\n')
    status, text = srv.call("GET", "/metrics", V4)
    assert status == 200 and "h1mock_requests_total" in text
    # the host itself may do everything
    assert srv.call("POST", "/app/v1/provision/posted", "127.0.0.1", body=POSTED)[0] == 201
    assert srv.call("GET", "/hello", V4, port=srv.port) == (200, "posted")
    # one warning in the log, not one per call
    assert srv.log.count("WARN admin: refused a call from %s" % V4) == 1, srv.log


def test_dual_stack_tells_mapped_loopback_from_other_peers(ns_h1mock):
    srv = ns_h1mock(address="::")
    status, _ = srv.call("GET", "/app/v1/provision", "127.0.0.1")  # ::ffff:127.0.0.1
    assert status == 200
    assert srv.call("GET", "/app/v1/provision", "::1")[0] == 200
    assert srv.call("GET", "/app/v1/provision", V4)[0] == 403  # ::ffff:192.0.2.1
    if srv.has_v6():
        assert srv.call("GET", "/app/v1/provision", V6)[0] == 403
        assert srv.call("GET", "/healthz", V6)[0] == 200


@pytest.mark.parametrize("how", ["option", "variable"])
def test_admin_open_lets_other_hosts_in_with_a_warning(ns_h1mock, how):
    if how == "option":
        srv = ns_h1mock("--admin-open")
    else:
        srv = ns_h1mock(env={"H1MOCK_ADMIN_OPEN": "1"})
    srv.wait_log(r"WARN the admin API listens on 0\.0\.0\.0 without --admin-token, and "
                 r"--admin-open lets anyone who can reach it post provisions")
    assert srv.call("POST", "/app/v1/provision/posted", V4, body=POSTED)[0] == 201
    assert srv.call("GET", "/hello", V4, port=srv.port) == (200, "posted")
    assert "refused" not in srv.log


def test_a_token_lifts_protected_mode(ns_h1mock, tmp_path):
    f = tmp_path / "token"
    f.write_text("ns-token\n")
    os.chmod(f, 0o600)
    srv = ns_h1mock("--admin-token-file", str(f))
    status, text = srv.call("POST", "/app/v1/provision/posted", V4, body=POSTED)
    assert status == 401 and "Authorization: Bearer" in text  # asked for, not forbidden
    status, _ = srv.call("POST", "/app/v1/provision/posted", V4, body=POSTED,
                         headers=["Authorization: Bearer ns-token"])
    assert status == 201
    assert "only loopback peers" not in srv.log and " WARN " not in srv.log
