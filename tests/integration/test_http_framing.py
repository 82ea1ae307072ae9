"""Strict HTTP/1.1 framing (RFC 9112), over raw sockets.

Each shape that a front end and h1mock could frame differently (request
smuggling) must get exactly one error response and a closed connection, and
nothing after it may be served. Also: the Host of an absolute-form target,
and request bytes quoted in log lines.

README: "Command line".
"""

import json
import re

import pytest

from conftest import http, read_response
from test_wire import assert_server_error, parse, read_all, rq

APP = r"""
function registerRules()
  app.add_url_rule("/echo", "echo", echo, {"GET", "POST"})
  app.add_url_rule("/host", "host", host)
  app.add_url_rule("/smuggled", "smuggled", smuggled)
  app.add_url_rule("/boom/<path:rest>", "boom", boom)
  app.add_url_rule("/hello", "hello", function() return "hello world" end)
end

function echo(req) return req.data end

function host(req)
  return {host = req.host, header = req.headers["Host"], url = req.url}
end

function smuggled(req)
  log.warning("the smuggled request was served")
  return "smuggled"
end

function boom(req, rest)
  log.info("boom path=%s value=%s", req.path, req.headers["X-Val"] or "-")
  error("boom " .. (req.headers["X-Val"] or "-"))
end
"""

CHUNKED = ["Transfer-Encoding: chunked"]
SMUGGLED = rq("GET", "/smuggled")


@pytest.fixture
def srv(h1mock):
    return h1mock(APP)


def assert_one_error(srv, data, status, body_has=()):
    """Exactly one `status` answer to `data` (a smuggled request after it
    would be a second), the close, then a fresh connection is served."""
    body = assert_server_error(srv, data, status, body_has)
    assert "smuggled request was served" not in srv.log
    return body


# --------------------------------------------------------------------------
# the shapes of issue #12 that used to get a 200
# --------------------------------------------------------------------------

@pytest.mark.parametrize("after", [b"XX", b"\rX", b"\n0", b"X\n"])
def test_chunk_data_not_followed_by_crlf(srv, after):
    data = rq("POST", "/echo", CHUNKED) + b"3\r\nabc" + after + b"0\r\n\r\n" + SMUGGLED
    assert_one_error(srv, data, 400, ["not followed by CRLF"])


def test_chunk_crlf_checked_across_writes(srv):
    with srv.connect() as s:
        s.sendall(rq("POST", "/echo", CHUNKED) + b"3\r\nabc\r")
        s.sendall(b"X0\r\n\r\n" + SMUGGLED)
        got, closed = read_all(s)
    assert closed
    (resp,), rest = parse(got, 1)
    assert resp[0] == 400 and rest == b""


@pytest.mark.parametrize("line", [b"Bad Name: x", b"Host : t", b"X-A\t: x", b"X\x7f: y",
                                  b"Caf\xc3\xa9: x", b"Content-Length : 5"])
def test_header_name_must_be_a_token(srv, line):
    data = b"POST /echo HTTP/1.1\r\nHost: t\r\n" + line + b"\r\n\r\nhello" + SMUGGLED
    assert_one_error(srv, data, 400)


def test_two_host_headers(srv):
    assert_one_error(srv, b"GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400,
                     ["more than one Host"])
    assert_one_error(srv, b"GET /hello HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n", 400)


@pytest.mark.parametrize("value", [b"a b", b"a/b", b"user@a", b"a:80x", b"[::1", b"a\xff"])
def test_invalid_host_value(srv, value):
    assert_one_error(srv, b"GET /hello HTTP/1.1\r\nHost: " + value + b"\r\n\r\n", 400, ["Host"])


def test_transfer_encoding_in_http10(srv):
    data = rq("POST", "/echo", CHUNKED, version="1.0") + b"5\r\nhello\r\n0\r\n\r\n" + SMUGGLED
    assert_one_error(srv, data, 400, ["HTTP/1.0"])


@pytest.mark.parametrize("te", [["Transfer-Encoding: gzip, chunked"],
                                ["Transfer-Encoding: gzip", "Transfer-Encoding: chunked"],
                                ["Transfer-Encoding: x-custom;q=1 ,Chunked"]])
def test_other_coding_before_chunked_is_501(srv, te):
    data = rq("POST", "/echo", te) + b"5\r\nhello\r\n0\r\n\r\n" + SMUGGLED
    assert_one_error(srv, data, 501, ["chunked"])


@pytest.mark.parametrize("te", [["Transfer-Encoding: chunked, gzip"],
                                ["Transfer-Encoding: gzip"],
                                ["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"]])
def test_chunked_not_last_or_twice_is_400(srv, te):
    assert_one_error(srv, rq("POST", "/echo", te) + b"0\r\n\r\n" + SMUGGLED, 400)


@pytest.mark.parametrize("value", ["Chunked", "  chunked  ", ", chunked"])
def test_chunked_in_any_case_and_spacing_is_read(srv, value):
    with srv.connect() as s:
        s.sendall(rq("POST", "/echo", ["Transfer-Encoding: " + value])
                  + b"5\r\nhello\r\n0\r\n\r\n" + rq("GET", "/hello"))
        r1, r2 = read_response(s), read_response(s)
    assert (r1[0], r1[2]) == (200, b"hello")
    assert (r2[0], r2[2]) == (200, b"hello world")


@pytest.mark.parametrize("version", ["2.0", "1.2", "3.0", "9.9"])
def test_unknown_version_is_505(srv, version):
    assert_one_error(srv, rq("GET", "/hello", version=version), 505, ["HTTP/" + version])


@pytest.mark.parametrize("data", [b"GET /hello HTTP/0.9\r\nHost: t\r\n\r\n", b"GET /hello\r\n\r\n"])
def test_http09_is_400(srv, data):
    assert_one_error(srv, data, 400, ["HTTP/0.9"])


def test_empty_connect_target_is_400(srv):
    # fuzz_request found this one: the parser saw an empty target before
    # any header byte was kept (undefined behaviour that only clang's UBSan
    # shows; the answer was already a 400).
    assert_one_error(srv, b"CONNECT  \r\n\r\n" + SMUGGLED, 400, ["must be a path"])


# --------------------------------------------------------------------------
# line ends and folding
# --------------------------------------------------------------------------

@pytest.mark.parametrize("data", [
    b"GET /hello HTTP/1.1\r\nHost: t\r\nX-F: a\r\n b\r\n\r\n",
    b"GET /hello HTTP/1.1\r\nHost: t\r\nX-F:\r\n\tb\r\n\r\n",
    b"GET /hello HTTP/1.1\r\n Host: t\r\n\r\n",
])
def test_obs_fold_is_400(srv, data):
    assert_one_error(srv, data, 400)


@pytest.mark.parametrize("data", [
    b"GET /hello HTTP/1.1\nHost: t\r\n\r\n",
    b"GET /hello HTTP/1.1\r\nHost: t\r\n\n",
    b"GET /hello HTTP/1.1\r\nHost: t\nX: y\r\n\r\n",
    b"GET /hello HTTP/1.1\r\nHost: t\rX: y\r\n\r\n",
    b"GET /hello\r HTTP/1.1\r\nHost: t\r\n\r\n",
])
def test_bare_lf_or_cr_is_400(srv, data):
    assert_one_error(srv, data + SMUGGLED, 400)


def test_empty_lines_before_a_request_are_skipped(srv):
    with srv.connect() as s:
        s.sendall(b"\r\n\r\n" + rq("GET", "/hello"))
        assert read_response(s)[2] == b"hello world"


def test_refused_head_is_journaled(srv):
    assert_one_error(srv, b"GET /hello?q=1 HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400)
    r = http("GET", srv.admin_url + "/app/v1/requests?status=400")
    (entry,) = r.json()["requests"]
    assert (entry["method"], entry["path"], entry["query"]) == ("GET", "/hello", "q=1")


# --------------------------------------------------------------------------
# absolute-form targets
# --------------------------------------------------------------------------

def test_absolute_form_host_replaces_host(srv):
    with srv.connect() as s:
        s.sendall(rq("GET", "http://target.example:8080/host?x=1")
                  + b"GET http://[::1]/host HTTP/1.0\r\n\r\n")
        r1, r2 = read_response(s), read_response(s)
    assert r1[0] == 200 and json.loads(r1[2]) == {
        "host": "target.example:8080", "header": "target.example:8080",
        "url": "http://target.example:8080/host?x=1"}
    assert r2[0] == 200 and json.loads(r2[2])["host"] == "[::1]"
    entries = http("GET", srv.admin_url + "/app/v1/requests").json()["requests"]
    assert [e["headers"].get("host") for e in entries] == ["target.example:8080", "[::1]"]


@pytest.mark.parametrize("target", [b"http://user@h/host", b"http:///host", b"http://a%zz/host"])
def test_absolute_form_bad_authority_is_400(srv, target):
    assert_one_error(srv, b"GET " + target + b" HTTP/1.1\r\nHost: t\r\n\r\n", 400)


def test_host_value_loses_trailing_whitespace(srv):
    with srv.connect() as s:
        s.sendall(b"GET /host HTTP/1.1\r\nHost: mock.test  \t\r\n\r\n")
        st, _, body = read_response(s)
    assert st == 200 and json.loads(body)["host"] == "mock.test"


# --------------------------------------------------------------------------
# request bytes in log lines
# --------------------------------------------------------------------------

def test_request_bytes_are_escaped_in_log_lines(srv):
    """A decoded %0a cannot start a forged log line, nor %1b a terminal
    escape; a view's error quoting a header value is escaped the same way
    (its traceback keeps its indented lines)."""
    with srv.connect() as s:
        s.sendall(b"GET /boom/a%0aFAKE%1b[31m%7f HTTP/1.1\r\nHost: t\r\n"
                  b"X-Val: v\xff\tw\r\n\r\n")
        assert read_response(s)[0] == 500
    err = srv.wait_log(r" ERROR GET /boom/").string
    assert " ERROR GET /boom/a\\x0aFAKE\\x1b[31m\\x7f: view 'boom' failed: " in err
    assert err.endswith(": boom v\\xff\tw\n")
    # A provision's own line keeps its newlines, indented like a traceback.
    srv.wait_log(r" INFO boom path=")
    assert " INFO boom path=/boom/a\n    FAKE\\x1b[31m\\x7f value=v\\xff\tw\n" in srv.log
    for line in srv.log.splitlines():
        assert re.match(r"\d{4}-\d\d-\d\dT\S+ [A-Z]+ |    ", line), line
    assert "\x1b" not in srv.log and "\x7f" not in srv.log


def test_control_bytes_in_a_header_value_are_refused(srv):
    """llhttp already refuses them: nothing reaches a view or the log."""
    assert_one_error(srv, b"GET /boom/x HTTP/1.1\r\nHost: t\r\nX-Val: a\x01\x7fb\r\n\r\n", 400)
    assert " ERROR GET /boom" not in srv.log


# A trailer is read and dropped, however large within the head limit.
TRAILER_APP = r'''
function registerRules()
  app.post("/echo", function(req) return req.data end)
  app.get("/ok", function() return "ok" end)
end
'''


def test_large_chunked_trailer_is_ignored(h1mock):
    srv = h1mock(TRAILER_APP)
    s = srv.connect()
    try:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"5\r\nhello\r\n0\r\nX-Trailer: " + b"t" * 3000 + b"\r\n\r\n")
        status, _, body = read_response(s)
    finally:
        s.close()
    assert status == 200 and body == b"hello"
    assert http("GET", srv.url + "/ok").text == "ok"
