"""CORS (#16 point 6): --cors off|*|ORIGIN (H1MOCK_CORS), "*" for the
built-in default and off for the user's provisions unless --cors or their
own app.cors{...} says otherwise; preflights answered 204 with the path's
methods; headers a provision sets itself win. The last test runs a real
headless Chromium: a page from one origin fetches from h1mock on another.

README: "CORS", "Command line".
"""

import json
import re
import shutil
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import assert_exit_2, http, run_h1mock

ORDERS = r'''
function registerRules()
  %s
  app.add_url_rule("/orders", "create", function(req)
    local order = req.get_json{force = true, silent = true} or {}
    order.id = 7
    return order, 201, {Location = "/orders/7"}
  end, {"POST", "PUT"})
  app.get("/own", function()
    return "own", {["Access-Control-Allow-Origin"] = "http://mine.test"}
  end)
end
'''


def orders(cors_call=""):
    return ORDERS % cors_call


def preflight(srv, path, method="POST", origin="http://page.test", headers="content-type"):
    h = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        h["Access-Control-Request-Headers"] = headers
    return http("OPTIONS", srv.url + path, headers=h)


def cors_headers(r):
    return {k.lower(): v for k, v in r.headers.items()
            if k.lower().startswith("access-control-") or k.lower() == "vary"}


# --------------------------------------------------------------------------
# over HTTP
# --------------------------------------------------------------------------

def test_the_built_in_default_answers_any_origin(h1mock):
    srv = h1mock()
    r = preflight(srv, "/api/items")
    assert r.status_code == 204 and r.content == b""
    assert cors_headers(r) == {
        "access-control-allow-origin": "*",
        "access-control-allow-methods": "GET, HEAD, OPTIONS, POST",
        "access-control-allow-headers": "content-type",
        "access-control-max-age": "600",
        "vary": "Access-Control-Request-Headers",
    }
    assert r.headers["Allow"] == "GET, HEAD, OPTIONS, POST"
    r = http("POST", srv.url + "/api/items", json={"name": "pen"},
             headers={"Origin": "http://page.test"})
    assert r.status_code == 200 and r.json()["name"] == "pen"
    assert cors_headers(r) == {"access-control-allow-origin": "*"}
    # errors too, and requests without an Origin
    for method, path in [("GET", "/nope"), ("DELETE", "/api/items"), ("GET", "/health")]:
        assert http(method, srv.url + path).headers["Access-Control-Allow-Origin"] == "*", path
    # a preflight for a path without rules lets the request through to its 404
    r = preflight(srv, "/nope", method="PUT", headers=None)
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Methods"] == "PUT"
    # an OPTIONS that is no preflight stays the automatic 200
    r = http("OPTIONS", srv.url + "/api/items", headers={"Origin": "http://page.test"})
    assert (r.status_code, r.headers["Access-Control-Allow-Origin"]) == (200, "*")


def test_a_provision_of_yours_has_no_cors_until_it_asks(h1mock):
    srv = h1mock(orders())
    r = preflight(srv, "/orders")
    assert r.status_code == 200 and cors_headers(r) == {}  # the plain automatic OPTIONS
    r = http("POST", srv.url + "/orders", json={}, headers={"Origin": "http://page.test"})
    assert r.status_code == 201 and cors_headers(r) == {}


def test_app_cors_with_an_origin(h1mock):
    srv = h1mock(orders('app.cors{origins = "http://page.test", headers = {"Content-Type", '
                        '"X-Token"}, max_age = 60}'))
    r = preflight(srv, "/orders", method="PUT", headers="x-token")
    assert r.status_code == 204
    assert cors_headers(r) == {
        "access-control-allow-origin": "http://page.test",
        "access-control-allow-credentials": "true",
        "vary": "Origin",
        "access-control-allow-methods": "OPTIONS, POST, PUT",
        "access-control-allow-headers": "Content-Type, X-Token",
        "access-control-max-age": "60",
    }
    r = http("POST", srv.url + "/orders", json={}, headers={"Origin": "http://page.test"})
    assert r.status_code == 201
    # Location is the answer's own header: exposed so that the page can read it
    assert r.headers["Access-Control-Expose-Headers"] == "Location"
    assert r.headers["Access-Control-Allow-Origin"] == "http://page.test"
    # a header the view set itself wins, and nothing else is added then
    r = http("GET", srv.url + "/own", headers={"Origin": "http://page.test"})
    assert cors_headers(r) == {"access-control-allow-origin": "http://mine.test"}


def test_app_cors_with_several_origins_echoes_the_one_that_asks(h1mock):
    srv = h1mock(orders('app.cors{origins = {"http://a.test", "http://b.test:8080"}, '
                        'methods = "POST", credentials = false}'))
    for origin in ("http://a.test", "http://b.test:8080"):
        r = preflight(srv, "/orders", origin=origin)
        assert r.headers["Access-Control-Allow-Origin"] == origin
        assert r.headers["Access-Control-Allow-Methods"] == "POST"
        assert "Access-Control-Allow-Credentials" not in r.headers
    r = preflight(srv, "/orders", origin="http://evil.test")
    assert cors_headers(r) == {"vary": "Origin"}


@pytest.mark.parametrize("how", ["option", "variable"])
def test_cors_option_sets_what_provisions_without_app_cors_get(h1mock, how):
    args, env = (["--cors", "http://page.test"], None) if how == "option" else \
        ([], {"H1MOCK_CORS": "http://page.test"})
    srv = h1mock(orders(), *args, env=env)
    r = http("POST", srv.url + "/orders", json={}, headers={"Origin": "http://page.test"})
    assert r.headers["Access-Control-Allow-Origin"] == "http://page.test"
    # and the built-in default too
    srv = h1mock(None, *args, env=env)
    r = http("GET", srv.url + "/health")
    assert r.headers["Access-Control-Allow-Origin"] == "http://page.test"
    # a provision's own app.cors wins over --cors
    srv = h1mock(orders('app.cors(false)'), *args, env=env)
    r = http("POST", srv.url + "/orders", json={}, headers={"Origin": "http://page.test"})
    assert cors_headers(r) == {}


def test_cors_off_turns_the_default_off(h1mock):
    srv = h1mock(None, "--cors", "off")
    r = preflight(srv, "/api/items")
    assert r.status_code == 200 and cors_headers(r) == {}
    assert "Access-Control-Allow-Origin" not in http("GET", srv.url + "/health").headers


@pytest.mark.parametrize("value", ["http://page.test/", "page.test", "**", "http://a b"])
def test_bad_cors_values_exit_2(tmp_path, value):
    res = run_h1mock(["--cors", value], provisions=tmp_path)
    assert_exit_2(res, "h1mock: --cors: '%s' is not off, * or an origin" % value)
    res = run_h1mock([], env={"H1MOCK_CORS": value}, provisions=tmp_path)
    assert_exit_2(res, "h1mock: H1MOCK_CORS: '%s' is not off, * or an origin" % value)


@pytest.mark.parametrize("call,message", [
    ('app.cors{origins = "http://x/"}',
     "app.cors: origins 'http://x/': an origin is scheme://host[:port] without a path"),
    ('app.cors{origins = {"*", "http://x"}}',
     "app.cors: origins 'http://x': \"*\" cannot be combined with origins"),
    ('app.cors{origin = "*"}', "app.cors: unknown option 'origin'"),
    ('app.cors{methods = {"FETCH"}}', "app.cors: methods 'FETCH': not an HTTP method"),
    ('app.cors{headers = {"a:b"}}', "app.cors: headers 'a:b': not a header name"),
    ('app.cors{max_age = -1}', "app.cors: max_age must be a number of seconds"),
    ('app.cors{credentials = true}', "app.cors: credentials need origins"),
    ('app.cors{origins = {}}', "app.cors: origins is empty"),
    ('app.cors(42)', "app.cors: takes false"),
    ('app.cors("http://x/")', "app.cors: 'http://x/': the value is off, * or one origin"),
])
def test_app_cors_refuses_bad_settings_with_the_line(h1mock, call, message):
    srv = h1mock(orders(call))
    srv.wait_log(r"provision 'initial' failed to load: initial\.lua:3: %s" % re.escape(message))
    # the built-in default serves instead, as with any provision that does not load
    assert http("GET", srv.url + "/health").status_code == 200


# --------------------------------------------------------------------------
# in a real browser
# --------------------------------------------------------------------------

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
_CHROMIUM = []


def dump_dom(url, budget_ms=15000, timeout=120):
    """The DOM of `url` after its scripts ran, as headless Chromium shows it."""
    with tempfile.TemporaryDirectory(prefix="h1mock-chromium-") as profile:
        res = subprocess.run(["chromium", *CHROMIUM_FLAGS, "--user-data-dir=" + profile,
                              "--virtual-time-budget=%d" % budget_ms, "--dump-dom", url],
                             stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             timeout=timeout)
    return res


def chromium_problem():
    """None when headless Chromium runs here, else why not (for the skip)."""
    if not _CHROMIUM:
        why = None
        if shutil.which("chromium") is None:
            why = "chromium is not installed (deps/install.sh installs it)"
        else:
            res = dump_dom("data:text/html,<p id=probe>chromium%20works</p>", budget_ms=1000)
            if "chromium works" not in res.stdout:
                why = "headless chromium cannot start here: %s" % (
                    res.stderr.strip().splitlines() or ["no output"])[-1]
        _CHROMIUM.append(why)
    return _CHROMIUM[0]


class Page(BaseHTTPRequestHandler):
    html = b""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(self.html)))
        self.end_headers()
        self.wfile.write(self.html)

    def log_message(self, *args):
        pass


@pytest.fixture
def page_server():
    """A web server on 127.0.0.1, a port of its own (so an origin of its own):
    yields (url, set_html), set_html(text) choosing the page it serves."""
    handler = type("ThisPage", (Page,), {})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()

    def set_html(text):
        handler.html = text.encode()

    yield "http://127.0.0.1:%d/" % srv.server_address[1], set_html
    srv.shutdown()
    srv.server_close()
    thread.join(5)


PAGE = """<!doctype html>
<html><body><pre id="out">running</pre>
<script>
const results = {};
async function attempt(name, url, init) {
  try {
    const r = await fetch(url, init);
    const text = await r.text();
    results[name] = {status: r.status, location: r.headers.get("Location"), body: text};
  } catch (e) {
    results[name] = {error: String(e)};
  }
}
const post = {method: "POST", headers: {"Content-Type": "application/json"},
              body: JSON.stringify({item: "book"})};
(async () => {
%s
  document.getElementById("out").textContent = "RESULTS " + JSON.stringify(results);
})();
</script></body></html>
"""


def test_a_browser_page_of_another_origin_calls_the_mock(h1mock, page_server):
    why = chromium_problem()
    if why:
        pytest.skip(why)
    page_url, set_html = page_server
    origin = page_url.rstrip("/")
    default = h1mock()
    own_off = h1mock(orders())
    own_on = h1mock(orders('app.cors{origins = "%s", headers = {"Content-Type", "X-Token"}}'
                           % origin))
    other = h1mock(orders('app.cors{origins = "http://other.test"}'))
    cli = h1mock(orders(), "--cors", origin)
    default_off = h1mock(None, "--cors", "off")
    calls = [
        ("default_post", default.url + "/api/items", "post"),
        ("default_404", default.url + "/nope", "{}"),
        ("own_off", own_off.url + "/orders", "post"),
        ("own_on_put", own_on.url + "/orders",
         '{method: "PUT", credentials: "include", headers: {"Content-Type": "application/json",'
         ' "X-Token": "t"}, body: JSON.stringify({item: "pen"})}'),
        ("other_origin", other.url + "/orders", "post"),
        ("cli_origin", cli.url + "/orders", "post"),
        ("default_off", default_off.url + "/api/items", "post"),
    ]
    set_html(PAGE % "\n".join('  await attempt("%s", "%s", %s);' % c for c in calls))
    res = dump_dom(page_url)
    m = re.search(r"RESULTS (\{.*\})", res.stdout)
    assert m, "the page did not finish: %r (stderr %r)" % (res.stdout[-2000:],
                                                          res.stderr[-2000:])
    results = json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    # the built-in default: a JSON POST across origins works, a 404 is readable
    assert results["default_post"]["status"] == 200, results
    assert json.loads(results["default_post"]["body"])["item"] == "book"
    assert results["default_404"]["status"] == 404, results
    # a provision of yours without app.cors: the browser refuses, as before
    assert results["own_off"] == {"error": "TypeError: Failed to fetch"}, results
    # with app.cors for this page: a preflighted PUT with credentials and a custom
    # header, and the Location header readable
    r = results["own_on_put"]
    assert (r.get("status"), r.get("location")) == (201, "/orders/7"), results
    assert json.loads(r["body"]) == {"id": 7, "item": "pen"}
    journal = http("GET", own_on.admin_url + "/app/v1/requests?method=OPTIONS").json()
    assert journal["count"] == 1, journal  # the browser's preflight, answered
    assert journal["requests"][0]["status"] == 204
    # for another origin only: refused by the browser
    assert results["other_origin"] == {"error": "TypeError: Failed to fetch"}, results
    # --cors ORIGIN for a provision without app.cors
    assert results["cli_origin"].get("status") == 201, results
    # --cors off
    assert results["default_off"] == {"error": "TypeError: Failed to fetch"}, results
