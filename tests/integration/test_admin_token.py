"""--admin-token / H1MOCK_ADMIN_TOKEN: every admin call except /healthz and
/metrics needs "Authorization: Bearer <token>"; a refused call is a 401
with WWW-Authenticate and changes nothing. Without a token and with
--admin-open, a non-loopback admin address is warned about at start (the
decision is unit-tested in tests/unit/test_config.c; other hosts' calls in
test_admin_protected.py, the token file in test_secrets.py).

README: "Token".
"""

import socket
import subprocess

import pytest

from conftest import BIN, assert_exit_2, clean_env, http, read_response, run_h1mock

TOKEN = "s3cret-T0ken_~+/="
APP = r'''
function registerRules()
  app.add_url_rule("/hello", "hello", function() return "v1" end)
end
'''
APP2 = APP.replace('"v1"', '"v2"')
CHALLENGE = 'Bearer realm="h1mock admin"'


def bearer(token):
    return {"Authorization": "Bearer " + token}


def assert_401(r):
    assert r.status_code == 401, (r.status_code, r.text)
    assert r.headers["WWW-Authenticate"] == CHALLENGE
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json()["result"].startswith("failed: ")


CALLS = [
    ("GET", "/app/v1/provision", None),
    ("GET", "/app/v1/provision/initial", None),
    ("POST", "/app/v1/provision/posted", APP2),
    ("DELETE", "/app/v1/provision/initial", None),
    ("GET", "/app/v1/store", None),
    ("DELETE", "/app/v1/store", None),
    ("GET", "/app/v1/requests", None),
    ("GET", "/app/v1/requests/count", None),
    ("GET", "/app/v1/requests/unmatched", None),
    ("DELETE", "/app/v1/requests", None),
    ("GET", "/no/such/admin/path", None),
]


@pytest.mark.parametrize("method,path,body", CALLS)
def test_missing_or_wrong_token_is_401_and_changes_nothing(h1mock, method, path, body):
    srv = h1mock(APP, "--admin-token", TOKEN)
    assert http("GET", srv.url + "/hello").text == "v1"
    wrong = [
        {},
        bearer("wrong"),
        bearer(TOKEN + "x"),
        bearer(TOKEN[:-1]),
        bearer(""),
        {"Authorization": "Bearer"},
        {"Authorization": "Basic " + TOKEN},
        {"Authorization": TOKEN},
        {"Authorization": "Bearer " + TOKEN.upper()},
    ]
    for headers in wrong:
        assert_401(http(method, srv.admin_url + path, data=body, headers=headers))
    # Nothing happened: not stored, not activated, journal not cleared.
    assert not (srv.provisions / "posted.lua").exists()
    assert (srv.provisions / "initial.lua").exists()
    assert http("GET", srv.url + "/hello").text == "v1"
    r = http("GET", srv.admin_url + "/app/v1/requests/count", headers=bearer(TOKEN))
    assert r.status_code == 200 and r.json()["count"] == 2


def test_missing_and_wrong_say_which(h1mock):
    srv = h1mock(APP, "--admin-token", TOKEN)
    r = http("GET", srv.admin_url + "/app/v1/provision")
    assert "needs 'Authorization: Bearer <token>'" in r.json()["result"]
    r = http("GET", srv.admin_url + "/app/v1/provision", headers=bearer("nope"))
    assert r.json() == {"result": "failed: the admin token is wrong"}
    r = http("GET", srv.admin_url + "/app/v1/provision", headers={"Authorization": "Basic x"})
    assert "takes 'Authorization: Bearer <token>'" in r.json()["result"]
    assert TOKEN not in r.text


def test_right_token_passes(h1mock):
    srv = h1mock(APP, "--admin-token", TOKEN)
    for method, path, body, status in [
        ("GET", "/app/v1/provision", None, 200),
        ("POST", "/app/v1/provision/posted", APP2, 201),
        ("GET", "/app/v1/store", None, 200),
        ("GET", "/app/v1/requests", None, 200),
        ("DELETE", "/app/v1/requests", None, 200),
        ("GET", "/no/such/admin/path", None, 404),
    ]:
        r = http(method, srv.admin_url + path, data=body, headers=bearer(TOKEN))
        assert r.status_code == status, (path, r.text)
        assert "WWW-Authenticate" not in r.headers
    assert http("GET", srv.url + "/hello").text == "v2"
    # The scheme is case-insensitive and blanks around the token are fine.
    for value in ("bearer " + TOKEN, "BEARER   " + TOKEN + "  ", "Bearer\t" + TOKEN):
        s = socket.create_connection(("127.0.0.1", srv.admin_port), timeout=5)
        try:
            s.sendall(b"GET /app/v1/provision HTTP/1.1\r\nHost: a\r\nAuthorization: "
                      + value.encode() + b"\r\n\r\n")
            assert read_response(s)[0] == 200, value
        finally:
            s.close()


def test_healthz_and_metrics_stay_open(h1mock):
    srv = h1mock(APP, "--admin-token", TOKEN)
    for path in ("/healthz", "/metrics"):
        for headers in ({}, bearer("wrong")):
            r = http("GET", srv.admin_url + path, headers=headers)
            assert r.status_code == 200, path
            assert "WWW-Authenticate" not in r.headers


def test_traffic_needs_no_token(h1mock):
    srv = h1mock(APP, "--admin-token", TOKEN)
    assert http("GET", srv.url + "/hello").text == "v1"


def test_token_from_the_environment_and_the_command_line_wins(h1mock):
    srv = h1mock(APP, env={"H1MOCK_ADMIN_TOKEN": "from-env"})
    assert_401(http("GET", srv.admin_url + "/app/v1/provision"))
    assert http("GET", srv.admin_url + "/app/v1/provision",
                headers=bearer("from-env")).status_code == 200
    srv = h1mock(APP, "--admin-token", "from-flag", env={"H1MOCK_ADMIN_TOKEN": "from-env"})
    assert_401(http("GET", srv.admin_url + "/app/v1/provision", headers=bearer("from-env")))
    assert http("GET", srv.admin_url + "/app/v1/provision",
                headers=bearer("from-flag")).status_code == 200


def test_no_token_no_check(h1mock):
    srv = h1mock(APP)
    assert http("GET", srv.admin_url + "/app/v1/provision").status_code == 200
    assert http("GET", srv.admin_url + "/app/v1/provision",
                headers=bearer("anything")).status_code == 200


def test_no_exposure_warning_on_loopback(h1mock):
    srv = h1mock(APP)
    srv_ok = h1mock(APP, "--admin-token", TOKEN)
    http("GET", srv.admin_url + "/healthz")
    srv.stop()
    srv_ok.stop()
    for s in (srv, srv_ok):
        assert "without --admin-token" not in s.log
        assert " WARN " not in s.log, s.log


def test_no_exposure_warning_on_ipv6_loopback(tmp_path):
    try:
        probe = socket.socket(socket.AF_INET6)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        pytest.skip("no IPv6 loopback")
    from conftest import Server
    proc = subprocess.Popen([BIN, "--address", "::1", "--port", "0", "--admin-port", "0",
                             "--provisions", str(tmp_path)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=clean_env())
    srv = Server(proc, tmp_path)
    try:
        srv.wait_log(r"ready")
    finally:
        srv.stop()
    assert "without --admin-token" not in srv.log


@pytest.mark.parametrize("args,env,message", [
    (["--admin-token", ""], None, "h1mock: --admin-token: the value is empty"),
    (["--admin-token=two words"], None,
     "h1mock: --admin-token: the token must be printable ASCII without spaces"),
    (["--admin-token", "tab\there"], None, "--admin-token: the token must be printable ASCII"),
    (["--admin-token", "caf\u00e9"], None, "--admin-token: the token must be printable ASCII"),
    (["--admin-token"], None, "h1mock: --admin-token needs a value (TOKEN)"),
    ([], {"H1MOCK_ADMIN_TOKEN": ""}, "h1mock: H1MOCK_ADMIN_TOKEN: the value is empty"),
    ([], {"H1MOCK_ADMIN_TOKEN": "a b"}, "h1mock: H1MOCK_ADMIN_TOKEN: the token must be"),
])
def test_bad_tokens_exit_2(tmp_path, args, env, message):
    err = assert_exit_2(run_h1mock(args, env, provisions=tmp_path), message)
    assert "a b" not in err and "two words" not in err  # a secret is not echoed
