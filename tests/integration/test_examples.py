"""The example provisions in provisions/: each one loads, passes --check, has a
header comment that says what it shows and how to try it, and does what that
comment says over real HTTP.

A new file in provisions/ without a test here fails test_every_example_is_exercised.

README: "Provision reference".
"""

import json
import re
import subprocess
import time

import pytest

from conftest import BIN, PROVISIONS, http, read_response, header

JSON = {"Content-Type": "application/json"}


def source(name):
    return (PROVISIONS / name).read_text()


def provision_files():
    return sorted(p for p in PROVISIONS.iterdir() if p.suffix == ".lua")


# The tests below, by file. initial.lua is a link to default.lua (README).
EXERCISED = {
    "initial.lua": "test_initial_is_the_default",
    "default.lua": "test_default",
    "foo-bar.lua": "test_foo_bar",
    "rest-api.lua": "test_rest_api",
    "healthz.lua": "test_healthz",
    "converters.lua": "test_converters",
    "headers-status.lua": "test_headers_status_*",
    "delays.lua": "test_delays_*",
    "sequence.lua": "test_sequence_*",
    "cors.lua": "test_cors_*",
    "json-body.lua": "test_json_body_*",
}


def test_every_example_is_exercised():
    names = {p.name for p in provision_files()}
    assert names == set(EXERCISED), (
        "provisions/ and the tests of test_examples.py disagree: untested %s, gone %s"
        % (sorted(names - set(EXERCISED)), sorted(set(EXERCISED) - names)))
    defined = set(globals())
    for name, pattern in EXERCISED.items():
        rx = re.compile(pattern.replace("*", ".+") + "$")
        assert any(rx.match(d) for d in defined), "no test matches %s for %s" % (pattern, name)


def test_every_example_passes_check():
    files = [str(p) for p in provision_files()]
    r = subprocess.run([BIN, "--check", *files], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    for f in files:
        assert re.search(r"^%s: ok \(\d+ rules?\)$" % re.escape(f), r.stdout, re.M), (f, r.stdout)


@pytest.mark.parametrize("path", provision_files(), ids=lambda p: p.name)
def test_every_example_has_a_header_comment(path):
    lines = path.read_text().splitlines()
    header_lines = []
    for line in lines:
        if not line.startswith("--"):
            break
        header_lines.append(line)
    text = "\n".join(header_lines)
    # names itself, says what it shows over a few lines, and how to try it
    first = header_lines[0] if header_lines else ""
    assert re.match(r"-- %s(\.lua)?: \S" % re.escape(path.resolve().stem), first), (
        "%s must start with a comment '-- %s: what it shows'" % (path.name, path.resolve().stem))
    assert len(header_lines) >= 5, "%s: the header comment is too short:\n%s" % (path.name, text)
    assert "curl " in text, "%s: the header comment must show how to try it with curl" % path.name


# --------------------------------------------------------------------------
# default, initial, foo-bar, rest-api
# --------------------------------------------------------------------------

def test_initial_is_the_default():
    initial = PROVISIONS / "initial.lua"
    assert initial.is_symlink()
    assert initial.resolve() == (PROVISIONS / "default.lua").resolve()


def test_default(h1mock):
    srv = h1mock(source("default.lua"))
    r = http("GET", srv.url + "/no/such/path")
    assert r.status_code == 404
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "registerRules" in r.text and "/app/v1/provision/" in r.text
    r = http("POST", srv.url + "/api/notes", json={"text": "hi"})
    assert r.status_code == 200 and r.json()["text"] == "hi"
    health = http("GET", srv.url + "/health").json()
    assert health["status"] == "pass"
    assert health["database"]["resources"] == [{"name": "notes", "count": 1}]


def test_foo_bar(h1mock):
    srv = h1mock(source("foo-bar.lua"))
    r = http("GET", srv.url + "/app/v1/foo/bar")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.text == '{"resultCode":0,"resultData":"answering a get"}\n'
    r = http("POST", srv.url + "/app/v1/foo/bar")
    assert r.status_code == 200
    assert r.json() == {"resultCode": 0, "resultData": "answering a post"}
    assert r.headers["x-version"] == "1.1.0"
    assert re.fullmatch(r"/app/v1/foo/bar/\d{5}", r.headers["location"])
    r = http("PUT", srv.url + "/app/v1/foo/bar")
    assert r.status_code == 405
    assert r.headers["Allow"] == "GET, HEAD, OPTIONS, POST"


def test_rest_api(h1mock):
    srv = h1mock(source("rest-api.lua"))
    r = http("POST", srv.url + "/api/users", json={"name": "ada"})
    assert r.status_code == 200
    ada = r.json()
    assert ada["name"] == "ada" and len(ada["_id"]) == 36
    r = http("GET", srv.url + "/api/users?name=ada&_page=1&_limit=10")
    assert r.json() == [ada] and r.headers["X-Total-Count"] == "1"
    assert http("GET", srv.url + "/api/users/" + ada["_id"]).json() == ada
    assert http("GET", srv.url + "/api/users/nope").status_code == 404
    assert http("GET", srv.url + "/health").json()["database"]["total_resources_count"] == 1
    home = http("GET", srv.url + "/")
    assert home.status_code == 200 and "users" in home.text


# --------------------------------------------------------------------------
# healthz
# --------------------------------------------------------------------------

def test_healthz(h1mock):
    srv = h1mock(source("healthz.lua"))
    for check in ("healthz", "readyz"):
        r = http("GET", srv.url + "/" + check)
        assert r.status_code == 200
        assert r.headers["Content-Type"] == "application/json"
        assert r.headers["Cache-Control"] == "no-store"
        assert r.json() == {"status": "ok", "check": check}
    r = http("HEAD", srv.url + "/readyz")
    assert r.status_code == 200 and r.content == b""
    assert http("POST", srv.url + "/healthz").status_code == 405
    assert http("GET", srv.url + "/livez").status_code == 404


# --------------------------------------------------------------------------
# converters
# --------------------------------------------------------------------------

UUID = "0b0e2b5e-6c5f-4f0e-8d3c-2a4f6f1f9a10"


@pytest.mark.parametrize("path,body", [
    ("/users/42", {"id": 42, "type": "integer"}),
    ("/users/007", {"id": 7, "type": "integer"}),
    ("/users/me", {"id": 0, "name": "me"}),
    ("/items/1", {"id": 1, "type": "integer"}),
    ("/items/999", {"id": 999, "type": "integer"}),
    ("/prices/9.99", {"amount": 9.99, "type": "float"}),
    ("/files/docs/a/b.txt", {"name": "docs/a/b.txt", "type": "string"}),
    ("/orders/" + UUID, {"order_id": UUID, "type": "string"}),
    ("/orders/" + UUID.upper(), {"order_id": UUID.upper(), "type": "string"}),
    ("/colors/green", {"color": "green", "type": "string"}),
    ("/skus/AB-12345", {"sku": "AB-12345", "type": "string"}),
    ("/reports/2024.json", {"year": 2024, "type": "integer"}),
    ("/posts", {"page": 1, "endpoint": "posts"}),
    ("/posts/page/3", {"page": 3, "endpoint": "posts"}),
])
def test_converters(h1mock_converters, path, body):
    r = http("GET", h1mock_converters.url + path)
    assert r.status_code == 200, (path, r.text)
    assert r.json() == body


@pytest.mark.parametrize("path", [
    "/users/abc", "/users/-1", "/users/4.2", "/items/0", "/items/1000", "/prices/9",
    "/prices/abc", "/files/", "/orders/not-a-uuid", "/orders/" + UUID[:-1],
    "/colors/purple", "/skus/AB-1234", "/skus/AB-123456", "/reports/24x.json",
    "/reports/2024.xml", "/posts/page/0", "/posts/page/x",
])
def test_converters_refuse_values_that_do_not_fit(h1mock_converters, path):
    r = http("GET", h1mock_converters.url + path)
    assert r.status_code == 404, (path, r.text)
    assert "<title>404 Not Found</title>" in r.text


@pytest.fixture
def h1mock_converters(h1mock):
    return h1mock(source("converters.lua"))


# --------------------------------------------------------------------------
# headers-status
# --------------------------------------------------------------------------

@pytest.fixture
def hs(h1mock):
    return h1mock(source("headers-status.lua"))


def raw_get(srv, path, extra=""):
    with srv.connect() as s:
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n%sConnection: close\r\n\r\n"
                   % (path, extra)).encode())
        return read_response(s)


def test_headers_status_any_code(hs):
    for code in (200, 201, 418, 422, 503, 599):
        r = http("GET", "%s/status/%d" % (hs.url, code))
        assert r.status_code == code
        assert r.json() == {"status": code}
    st, headers, body = raw_get(hs, "/status/204")
    assert st == 204 and body == b"" and header(headers, "content-length") is None
    for bad in ("199", "600", "abc"):
        assert http("GET", hs.url + "/status/" + bad).status_code == 404


def test_headers_status_created_with_location_and_echo(hs):
    r = http("POST", hs.url + "/things", headers={"x-REQUEST-id": "abc-1"})
    assert r.status_code == 201
    assert r.json() == {"id": 1}
    assert r.headers["Location"] == "/things/1"
    assert r.headers["X-Request-Id"] == "abc-1"
    r = http("POST", hs.url + "/things")
    assert r.headers["Location"] == "/things/2"
    assert r.headers["X-Request-Id"] == "none"


def test_headers_status_own_reason_phrase(hs):
    with hs.connect() as s:
        s.sendall(b"GET /maintenance HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    assert data.startswith(b"HTTP/1.1 503 Down For Maintenance\r\n"), data
    assert b"\r\nRetry-After: 120\r\n" in data
    assert data.endswith(b"\r\n\r\nback soon")


def test_headers_status_content_type_of_your_own(hs):
    r = http("GET", hs.url + "/report.csv")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert r.text == "id,name\n1,ada\n"


def test_headers_status_repeated_headers(hs):
    st, headers, body = raw_get(hs, "/session")
    assert st == 200 and json.loads(body) == {"user": "ada"}
    assert [v for n, v in headers if n == "link"] == ["</users/1>; rel=self",
                                                      "</users>; rel=collection"]
    assert [v for n, v in headers if n == "set-cookie"] == [
        "sid=s3ss10n; Max-Age=3600; HttpOnly; Path=/", "theme=dark; Path=/"]


def test_headers_status_abort_with_a_response(hs):
    for auth in (None, "Bearer wrong", "letmein"):
        r = http("GET", hs.url + "/secret", headers={"Authorization": auth} if auth else {})
        assert r.status_code == 401
        assert r.headers["WWW-Authenticate"] == 'Bearer realm="mock"'
        assert r.json() == {"error": "missing or wrong token"}
    r = http("GET", hs.url + "/secret", headers={"Authorization": "Bearer letmein"})
    assert r.status_code == 200 and r.json() == {"secret": 42}
    assert "WWW-Authenticate" not in r.headers


def test_headers_status_redirect(hs):
    r = http("GET", hs.url + "/old-report")
    assert r.status_code == 301
    assert r.headers["Location"] == "/report.csv"
    r = http("GET", hs.url + "/old-report", allow_redirects=True)
    assert r.status_code == 200 and r.text == "id,name\n1,ada\n"


# --------------------------------------------------------------------------
# delays: only lower bounds, never an upper bound on time
# --------------------------------------------------------------------------

@pytest.fixture
def delays(h1mock):
    return h1mock(source("delays.lua"))


def timed(method, url, **kw):
    t0 = time.monotonic()
    r = http(method, url, **kw)
    return r, time.monotonic() - t0


def test_delays_from_the_path(delays):
    r, took = timed("GET", delays.url + "/delay/300")
    assert r.status_code == 200 and r.json() == {"delayed_ms": 300}
    assert took >= 0.3
    assert http("GET", delays.url + "/delay/10001").status_code == 404


def test_delays_from_the_query(delays):
    r, took = timed("GET", delays.url + "/slow?seconds=0.2")
    assert r.status_code == 200 and r.json() == {"slept": 0.2}
    assert took >= 0.2
    r = http("GET", delays.url + "/slow?seconds=-1")
    assert r.status_code == 400 and "seconds must be &gt;= 0" in r.text


def test_delays_at_random(delays):
    for _ in range(3):
        r, took = timed("GET", delays.url + "/jitter")
        ms = r.json()["delayed_ms"]
        assert 100 <= ms <= 300
        assert took >= ms / 1000


def test_delays_from_a_before_request_hook(delays):
    r, took = timed("GET", delays.url + "/delay/0", headers={"X-Delay": "0.25"})
    assert r.status_code == 200 and r.json() == {"delayed_ms": 0}
    assert took >= 0.25
    # an X-Delay that is not a number is ignored
    r = http("GET", delays.url + "/delay/0", headers={"X-Delay": "soon"})
    assert r.status_code == 200


# --------------------------------------------------------------------------
# sequence
# --------------------------------------------------------------------------

@pytest.fixture
def seq(h1mock):
    return h1mock(source("sequence.lua"))


def test_sequence_flaky_fails_twice_then_works(seq):
    answers = [http("GET", seq.url + "/flaky") for _ in range(4)]
    assert [r.status_code for r in answers] == [503, 503, 200, 200]
    assert [r.json()["call"] for r in answers] == [1, 2, 3, 4]
    assert answers[0].headers["Retry-After"] == "1"
    assert answers[2].json() == {"ok": True, "call": 3}
    assert "Retry-After" not in answers[2].headers
    # DELETE on the journal starts the sequence over
    r = http("DELETE", seq.admin_url + "/app/v1/requests")
    assert r.status_code == 200
    r = http("GET", seq.url + "/flaky")
    assert r.status_code == 503 and r.json()["call"] == 1


def test_sequence_job_states_per_id(seq):
    states = [http("GET", seq.url + "/jobs/7").json()["state"] for _ in range(4)]
    assert states == ["queued", "running", "done", "done"]
    # another id has its own count
    assert http("GET", seq.url + "/jobs/8").json() == {"id": "8", "state": "queued", "call": 1}


def test_sequence_store_counter_survives_reloads(seq):
    r = http("POST", seq.url + "/tickets")
    assert r.status_code == 201 and r.json() == {"ticket": 1}
    assert r.headers["Location"] == "/tickets/1"
    assert http("POST", seq.url + "/tickets").json() == {"ticket": 2}
    # reload the provision: a new Lua state, the same store
    r = http("POST", seq.admin_url + "/app/v1/provision/sequence", data=source("sequence.lua"))
    assert r.status_code == 201, r.text
    assert http("POST", seq.url + "/tickets").json() == {"ticket": 3}
    # reset, then seed, through the admin store API
    assert http("DELETE", seq.admin_url + "/app/v1/store/counters").status_code == 200
    assert http("POST", seq.url + "/tickets").json() == {"ticket": 1}
    r = http("POST", seq.admin_url + "/app/v1/store/counters",
             data='[{"_id":"tickets","value":100}]')
    assert r.status_code == 201, r.text
    assert http("POST", seq.url + "/tickets").json() == {"ticket": 101}
    assert http("GET", seq.url + "/tickets").status_code == 405


# --------------------------------------------------------------------------
# cors
# --------------------------------------------------------------------------

ORIGIN = "http://localhost:3000"


@pytest.fixture
def cors(h1mock):
    return h1mock(source("cors.lua"))


def test_cors_simple_request_from_an_allowed_origin(cors):
    r = http("GET", cors.url + "/api/items", headers={"Origin": ORIGIN})
    assert r.status_code == 200 and r.json() == [{"id": 1, "name": "pen"}]
    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert r.headers["Access-Control-Allow-Credentials"] == "true"
    assert r.headers["Access-Control-Expose-Headers"] == "Location, X-Total-Count"
    assert r.headers["Vary"] == "Origin"
    assert "Access-Control-Allow-Methods" not in r.headers
    r = http("POST", cors.url + "/api/items", json={"name": "ink"},
             headers={"Origin": "https://app.example.com"})
    assert r.status_code == 201 and r.json() == {"id": 2, "name": "ink"}
    assert r.headers["Access-Control-Allow-Origin"] == "https://app.example.com"


def test_cors_preflight_is_answered_without_a_rule(cors):
    r = http("OPTIONS", cors.url + "/api/items/1", headers={
        "Origin": ORIGIN,
        "Access-Control-Request-Method": "DELETE",
        "Access-Control-Request-Headers": "content-type, authorization"})
    assert r.status_code == 200 and r.content == b""
    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert r.headers["Access-Control-Allow-Methods"] == "DELETE, OPTIONS, PUT"
    assert r.headers["Access-Control-Allow-Headers"] == "content-type, authorization"
    assert r.headers["Access-Control-Max-Age"] == "600"
    assert r.headers["Allow"] == "DELETE, OPTIONS, PUT"
    # the preflight of the collection lists the collection's methods
    r = http("OPTIONS", cors.url + "/api/items", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST"})
    assert r.headers["Access-Control-Allow-Methods"] == "GET, HEAD, OPTIONS, POST"
    assert "Access-Control-Allow-Headers" not in r.headers
    # then the real request
    r = http("DELETE", cors.url + "/api/items/1", headers={"Origin": ORIGIN})
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN


def test_cors_other_origins_get_no_cors_headers(cors):
    for headers in ({"Origin": "https://evil.example"}, {},
                    {"Origin": "https://evil.example", "Access-Control-Request-Method": "PUT"}):
        method = "OPTIONS" if "Access-Control-Request-Method" in headers else "GET"
        r = http(method, cors.url + "/api/items", headers=headers)
        assert r.status_code == 200
        assert not [h for h in r.headers if h.lower().startswith("access-control-")], r.headers
        assert r.headers["Vary"] == "Origin"


def test_cors_errors_carry_cors_headers_too(cors):
    r = http("GET", cors.url + "/nope", headers={"Origin": ORIGIN})
    assert r.status_code == 404
    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
    r = http("PATCH", cors.url + "/api/items/1", headers={"Origin": ORIGIN})
    assert r.status_code == 405
    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN


# --------------------------------------------------------------------------
# json-body
# --------------------------------------------------------------------------

@pytest.fixture
def jb(h1mock):
    return h1mock(source("json-body.lua"))


ORDER = {"customer": "ada", "items": [{"sku": "pen", "qty": 2, "price_cents": 150},
                                      {"sku": "ink", "qty": 1, "price_cents": 99}]}


def test_json_body_valid_order_echoes_computed_values(jb):
    r = http("POST", jb.url + "/orders", json=ORDER)
    assert r.status_code == 201, r.text
    body = r.json()
    assert re.fullmatch(r"[0-9a-f-]{36}", body.pop("id"))
    assert body == {"customer": "ada", "item_count": 3, "total_cents": 399, "coupon": None}
    assert r.headers["Location"].startswith("/orders/")
    r = http("POST", jb.url + "/orders", json=dict(ORDER, coupon="SPRING"))
    assert r.status_code == 201 and r.json()["coupon"] == "SPRING"
    r = http("POST", jb.url + "/orders", json=dict(ORDER, coupon=None))
    assert r.status_code == 201 and r.json()["coupon"] is None


@pytest.mark.parametrize("body,error", [
    ({"items": []}, {"error": "missing fields", "missing": ["customer"]}),
    ({}, {"error": "missing fields", "missing": ["customer", "items"]}),
    ({"customer": None, "items": None}, {"error": "missing fields",
                                         "missing": ["customer", "items"]}),
    ({"customer": 7, "items": [1]}, {"error": "customer must be a string"}),
    ({"customer": "ada", "items": []}, {"error": "items must be a non-empty array"}),
    ({"customer": "ada", "items": {"a": 1}}, {"error": "items must be a non-empty array"}),
    ({"customer": "ada", "items": [5]}, {"error": "items[1] must be an object"}),
    ({"customer": "ada", "items": [{"qty": 1, "price_cents": 1}]},
     {"error": "items[1].sku must be a string"}),
    ({"customer": "ada", "items": [{"sku": "a", "qty": 1, "price_cents": 1},
                                   {"sku": "b", "qty": 0, "price_cents": 1}]},
     {"error": "items[2].qty must be an integer >= 1"}),
    ({"customer": "ada", "items": [{"sku": "a", "qty": 1.5, "price_cents": 1}]},
     {"error": "items[1].qty must be an integer >= 1"}),
    ({"customer": "ada", "items": [{"sku": "a", "qty": 1, "price_cents": -1}]},
     {"error": "items[1].price_cents must be an integer >= 0"}),
    ([1, 2], {"error": "the body must be a JSON object"}),
    ("text", {"error": "the body must be a JSON object"}),
])
def test_json_body_invalid_orders_name_the_problem(jb, body, error):
    r = http("POST", jb.url + "/orders", json=body)
    assert r.status_code == 400
    assert r.headers["Content-Type"] == "application/json"
    assert r.json() == error


def test_json_body_malformed_json_is_a_json_400(jb):
    r = http("POST", jb.url + "/orders", data='{"customer":', headers=JSON)
    assert r.status_code == 400
    assert r.headers["Content-Type"] == "application/json"
    assert r.json()["error"].startswith("The request body is not valid JSON: ")


def test_json_body_needs_a_json_content_type(jb):
    r = http("POST", jb.url + "/orders", data="customer=ada",
             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415
    assert r.json() == {"error": "send JSON with Content-Type: application/json"}
    r = http("POST", jb.url + "/orders", data=json.dumps(ORDER))  # no Content-Type
    assert r.status_code == 415


def test_json_body_echo_forces_json(jb):
    r = http("POST", jb.url + "/echo", data='{"any":["json",1]}',
             headers={"Content-Type": "text/plain"})
    assert r.status_code == 200
    assert r.json() == {"received": {"any": ["json", 1]}, "content_type": "text/plain"}
    r = http("POST", jb.url + "/echo", data="[]")
    assert r.json() == {"received": [], "content_type": None}
    r = http("POST", jb.url + "/echo", data="not json", headers=JSON)
    assert r.status_code == 400 and r.json() == {"error": "the body is not JSON"}
