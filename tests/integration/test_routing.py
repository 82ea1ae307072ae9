"""Routing: add_url_rule forms, shortcuts, converters, HEAD/OPTIONS/405/308,
bad rules and endpoint conflicts.

README: "Registering rules", "How a request is matched".
"""

import re
import subprocess

import requests

from conftest import BIN, read_response, header, http

ISSUE_EXAMPLE = r'''function registerRules()
  app.add_url_rule("/app/v1/foo/bar", "answer_get", answer_get, {"GET"})
  app.add_url_rule("/app/v1/foo/bar", "answer_post", answer_post, {"POST"})
  app.add_url_rule("/items/<int:id>", "item", item, {methods = {"GET", "DELETE"}})
  app.register_error_handler(404, not_found)
end
function answer_get() return {resultCode = 0, resultData = "answering a get"} end
function answer_post()
  return {resultCode = 0}, 201, {["x-version"] = "1.1.0", location = request.path .. "/1"}
end
function item(req, id) return jsonify{id = id, q = req.args.q} end
function not_found(e) return "nothing at " .. request.path, 404 end
'''




def raw(srv, data, head=False):
    """Sends raw bytes on a new connection; returns (status, headers, body) of one response."""
    s = srv.connect()
    try:
        s.sendall(data)
        return read_response(s, head_request=head)
    finally:
        s.close()


def check(path, timeout=15):
    """Runs `h1mock --check NAME` in the file's directory with the bare file name, so
    the FILE:LINE: prefix is short and exact (long paths are tested on their own)."""
    return subprocess.run([BIN, "--check", path.name], stdin=subprocess.DEVNULL, cwd=str(path.parent),
                          capture_output=True, timeout=timeout, text=True)


def line_of(text, needle):
    """1-based line number of the first line of `text` containing `needle`."""
    for i, line in enumerate(text.split("\n"), 1):
        if needle in line:
            return i
    raise AssertionError("%r not in provision" % needle)


# --------------------------------------------------------------------------
# The issue's example provision, every line of it


def test_issue_example_get(h1mock):
    srv = h1mock(ISSUE_EXAMPLE)
    srv.wait_log(r"provision 'initial' loaded: 3 rules")
    r = http("GET", srv.url + "/app/v1/foo/bar")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.content == b'{"resultCode":0,"resultData":"answering a get"}\n'


def test_issue_example_post(h1mock):
    srv = h1mock(ISSUE_EXAMPLE)
    r = http("POST", srv.url + "/app/v1/foo/bar", data=b"whatever")
    assert r.status_code == 201
    assert r.headers["Content-Type"] == "application/json"
    assert r.content == b'{"resultCode":0}\n'
    assert r.headers["x-version"] == "1.1.0"
    assert r.headers["Location"] == "/app/v1/foo/bar/1"


def test_issue_example_item_int_and_args(h1mock):
    srv = h1mock(ISSUE_EXAMPLE)
    r = http("GET", srv.url + "/items/42?q=hello")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.content == b'{"id":42,"q":"hello"}\n'
    r = http("DELETE", srv.url + "/items/7")
    assert r.status_code == 200
    assert r.content == b'{"id":7}\n'


def test_issue_example_not_found_handler(h1mock):
    srv = h1mock(ISSUE_EXAMPLE)
    r = http("GET", srv.url + "/nowhere/here")
    assert r.status_code == 404
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert r.text == "nothing at /nowhere/here"
    # a value the int converter refuses is not a match either -> the 404 handler
    r = http("GET", srv.url + "/items/abc")
    assert r.status_code == 404
    assert r.text == "nothing at /items/abc"


def test_issue_example_405_head_options(h1mock):
    srv = h1mock(ISSUE_EXAMPLE)
    r = http("PUT", srv.url + "/app/v1/foo/bar")
    assert r.status_code == 405
    assert r.headers["Allow"] == "GET, HEAD, OPTIONS, POST"
    r = http("POST", srv.url + "/items/3")
    assert r.status_code == 405
    assert r.headers["Allow"] == "DELETE, GET, HEAD, OPTIONS"
    r = http("OPTIONS", srv.url + "/app/v1/foo/bar")
    assert r.status_code == 200
    assert r.headers["Allow"] == "GET, HEAD, OPTIONS, POST"
    assert r.content == b""
    r = http("HEAD", srv.url + "/app/v1/foo/bar")
    assert r.status_code == 200
    assert r.headers["Content-Length"] == str(len(b'{"resultCode":0,"resultData":"answering a get"}\n'))
    assert r.content == b""


# --------------------------------------------------------------------------
# add_url_rule forms and shortcuts


FORMS = r'''
function v_pos(req) return "pos " .. req.method .. " " .. req.endpoint end
function v_tab(req) return "tab " .. req.method .. " " .. req.endpoint end
function v_opt(req, page) return "opt " .. req.method .. " " .. req.endpoint .. " page=" .. tostring(page) end
function v_colon(req) return "colon " .. req.endpoint end
function registerRules()
  app.add_url_rule("/pos", "pos_ep", v_pos, {"GET", "POST"})
  app.add_url_rule{rule = "/tab", endpoint = "tab_ep", view_func = v_tab, methods = {"PUT"}}
  app.add_url_rule("/opt/", nil, v_opt, {methods = {"PATCH"}, defaults = {page = 3},
                                          strict_slashes = false, endpoint = "opt_ep"})
  app:add_url_rule("/colon", "colon_ep", v_colon)
  app:get("/colon_get", function(req) return "colon get" end)
  app:route("/colon_route", {methods = {"DELETE"}}, function(req) return "colon route" end)
end
'''


def test_add_url_rule_positional(h1mock):
    srv = h1mock(FORMS)
    assert http("GET", srv.url + "/pos").text == "pos GET pos_ep"
    assert http("POST", srv.url + "/pos").text == "pos POST pos_ep"
    r = http("PUT", srv.url + "/pos")
    assert r.status_code == 405
    assert r.headers["Allow"] == "GET, HEAD, OPTIONS, POST"


def test_add_url_rule_table_form(h1mock):
    srv = h1mock(FORMS)
    r = http("PUT", srv.url + "/tab")
    assert r.status_code == 200
    assert r.text == "tab PUT tab_ep"
    r = http("GET", srv.url + "/tab")
    assert r.status_code == 405
    assert r.headers["Allow"] == "OPTIONS, PUT"


def test_add_url_rule_options_table(h1mock):
    srv = h1mock(FORMS)
    # strict_slashes = false: both forms match, no redirect
    for path in ("/opt/", "/opt"):
        r = http("PATCH", srv.url + path)
        assert r.status_code == 200, path
        assert r.text == "opt PATCH opt_ep page=3", path
    r = http("GET", srv.url + "/opt/")
    assert r.status_code == 405
    assert r.headers["Allow"] == "OPTIONS, PATCH"


def test_colon_and_dot_calls(h1mock):
    srv = h1mock(FORMS)
    r = http("GET", srv.url + "/colon")  # default method GET
    assert r.status_code == 200
    assert r.text == "colon colon_ep"
    assert http("GET", srv.url + "/colon_get").text == "colon get"
    r = http("DELETE", srv.url + "/colon_route")
    assert r.status_code == 200
    assert r.text == "colon route"
    assert http("GET", srv.url + "/colon_route").status_code == 405


SHORTCUTS = r'''
function registerRules()
  app.route("/r", function(req) return "route " .. req.method end)
  app.route("/ro", {methods = {"GET", "POST"}, endpoint = "ro_ep"},
            function(req) return "ro " .. req.method .. " " .. req.endpoint end)
  app.get("/m", function(req) return "get" end)
  app.post("/m", function(req) return "post" end)
  app.put("/m", function(req) return "put" end)
  app.patch("/m", function(req) return "patch" end)
  app.delete("/m", function(req) return "delete" end)
  app.get("/defep", function(req) return req.endpoint end)
  app.add_url_rule("/ci", "ci", function(req) return "ci " .. req.method end, {"get", "Post", "pUT"})
end
'''


def test_route_shortcuts(h1mock):
    srv = h1mock(SHORTCUTS)
    assert http("GET", srv.url + "/r").text == "route GET"
    r = http("POST", srv.url + "/r")
    assert r.status_code == 405
    assert r.headers["Allow"] == "GET, HEAD, OPTIONS"
    assert http("GET", srv.url + "/ro").text == "ro GET ro_ep"
    assert http("POST", srv.url + "/ro").text == "ro POST ro_ep"


def test_method_shortcuts(h1mock):
    srv = h1mock(SHORTCUTS)
    for m in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        r = http(m, srv.url + "/m")
        assert r.status_code == 200, m
        assert r.text == m.lower()
    r = http("OPTIONS", srv.url + "/m")
    assert r.status_code == 200
    assert r.headers["Allow"] == "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"


def test_default_endpoint_name(h1mock):
    srv = h1mock(SHORTCUTS)
    r = http("GET", srv.url + "/defep")
    assert r.status_code == 200
    # contract: endpoint, when omitted, is "METHODS rule"
    assert re.fullmatch(r"GET(,? ?[A-Z]+)* /defep", r.text), r.text


def test_methods_case_insensitive(h1mock):
    srv = h1mock(SHORTCUTS)
    for m in ("GET", "POST", "PUT"):
        r = http(m, srv.url + "/ci")
        assert r.status_code == 200, m
        assert r.text == "ci " + m
    r = http("DELETE", srv.url + "/ci")
    assert r.status_code == 405
    assert r.headers["Allow"] == "GET, HEAD, OPTIONS, POST, PUT"


# --------------------------------------------------------------------------
# Converters


CONVERTERS = r'''
local function show(v) return math.type(v) or type(v) end
function registerRules()
  app.get("/s/<x>", function(req, x) return "s " .. type(x) .. " " .. x end)
  app.get("/ss/<string:x>", function(req, x) return "ss " .. x end)
  app.get("/len/<string(length=3):x>", function(req, x) return "len " .. x end)
  app.get("/mm/<string(minlength=2,maxlength=4):x>", function(req, x) return "mm " .. x end)
  app.get("/i/<int:id>", function(req, id) return "i " .. show(id) .. " " .. tostring(id) end)
  app.get("/ir/<int(min=1,max=10):n>", function(req, n) return "ir " .. show(n) .. " " .. tostring(n) end)
  app.get("/ifd/<int(fixed_digits=3):n>", function(req, n) return "ifd " .. tostring(n) end)
  app.get("/is/<int(signed=True):n>", function(req, n) return "is " .. show(n) .. " " .. tostring(n) end)
  app.get("/f/<float:x>", function(req, x) return "f " .. show(x) .. " " .. tostring(x) end)
  app.get("/fs/<float(signed=True):x>", function(req, x) return "fs " .. show(x) .. " " .. tostring(x) end)
  app.get("/p/<path:rest>", function(req, rest) return "p " .. rest end)
  app.get("/pe/<path:rest>/edit", function(req, rest) return "pe " .. rest end)
  app.get("/u/<uuid:id>", function(req, id) return "u " .. type(id) .. " " .. id end)
  app.get("/a/<any(red,green,blue):c>", function(req, c) return "a " .. c end)
end
'''

CONVERTER_CASES = {
    "string": [
        ("/s/abc", 200, "s string abc"),
        ("/s/a-b_c.d", 200, "s string a-b_c.d"),
        ("/s/a/b", 404, None),
        ("/ss/xyz", 200, "ss xyz"),
        ("/ss/x/y", 404, None),
    ],
    "string_length": [
        ("/len/abc", 200, "len abc"),
        ("/len/ab", 404, None),
        ("/len/abcd", 404, None),
        ("/mm/a", 404, None),
        ("/mm/ab", 200, "mm ab"),
        ("/mm/abcd", 200, "mm abcd"),
        ("/mm/abcde", 404, None),
    ],
    "int": [
        ("/i/42", 200, "i integer 42"),
        ("/i/0", 200, "i integer 0"),
        ("/i/-3", 404, None),
        ("/i/4.2", 404, None),
        ("/i/abc", 404, None),
        ("/i/12a", 404, None),
        ("/ir/1", 200, "ir integer 1"),
        ("/ir/10", 200, "ir integer 10"),
        ("/ir/0", 404, None),
        ("/ir/11", 404, None),
        ("/ifd/007", 200, "ifd 7"),
        ("/ifd/123", 200, "ifd 123"),
        ("/ifd/7", 404, None),
        ("/ifd/1234", 404, None),
        ("/is/-5", 200, "is integer -5"),
        ("/is/5", 200, "is integer 5"),
    ],
    "float": [
        ("/f/1.5", 200, "f float 1.5"),
        ("/f/2.0", 200, "f float 2.0"),
        ("/f/2", 404, None),
        ("/f/-1.5", 404, None),
        ("/f/x.5", 404, None),
        ("/fs/-1.5", 200, "fs float -1.5"),
    ],
    "path": [
        ("/p/a", 200, "p a"),
        ("/p/a/b/c.txt", 200, "p a/b/c.txt"),
        ("/p/", 404, None),
        ("/pe/x/y/edit", 200, "pe x/y"),
    ],
    "uuid": [
        ("/u/123e4567-e89b-12d3-a456-426614174000", 200,
         "u string 123e4567-e89b-12d3-a456-426614174000"),
        ("/u/123e4567-e89b-12d3-a456-42661417400", 404, None),
        ("/u/123e4567e89b12d3a456426614174000", 404, None),
        ("/u/123e4567-e89b-12d3-a456-42661417400g", 404, None),
        ("/u/42", 404, None),
    ],
    "any": [
        ("/a/red", 200, "a red"),
        ("/a/blue", 200, "a blue"),
        ("/a/yellow", 404, None),
        ("/a/re", 404, None),
        ("/a/redd", 404, None),
    ],
}


def _run_cases(srv, cases):
    failures = []
    for path, status, body in cases:
        r = http("GET", srv.url + path)
        if r.status_code != status or (body is not None and r.text != body):
            failures.append("%s: got %d %r, want %d %r" % (path, r.status_code, r.text[:80],
                                                          status, body))
    assert not failures, "\n".join(failures)


def test_converter_string(h1mock):
    _run_cases(h1mock(CONVERTERS), CONVERTER_CASES["string"])


def test_converter_string_length_args(h1mock):
    _run_cases(h1mock(CONVERTERS), CONVERTER_CASES["string_length"])


def test_converter_int(h1mock):
    _run_cases(h1mock(CONVERTERS), CONVERTER_CASES["int"])


def test_converter_float(h1mock):
    _run_cases(h1mock(CONVERTERS), CONVERTER_CASES["float"])


def test_converter_path(h1mock):
    _run_cases(h1mock(CONVERTERS), CONVERTER_CASES["path"])


def test_converter_uuid(h1mock):
    _run_cases(h1mock(CONVERTERS), CONVERTER_CASES["uuid"])


def test_converter_any(h1mock):
    _run_cases(h1mock(CONVERTERS), CONVERTER_CASES["any"])


def test_refused_value_falls_through_to_other_rule(h1mock):
    srv = h1mock(r'''
function registerRules()
  app.get("/x/<int:n>", function(req, n) return "int " .. tostring(n) end)
  app.get("/x/<name>", function(req, name) return "name " .. name end)
end
''')
    assert http("GET", srv.url + "/x/12").text == "int 12"
    assert http("GET", srv.url + "/x/twelve").text == "name twelve"


def test_static_beats_dynamic(h1mock):
    # the dynamic rule is registered first: priority is not registration order
    srv = h1mock(r'''
function registerRules()
  app.get("/u/<name>", function(req, name) return "dynamic " .. name end)
  app.get("/u/me", function(req) return "static" end)
  app.get("/<a>/<b>/c", function(req, a, b) return "dyn2 " .. a .. b end)
  app.get("/x/y/<c>", function(req, c) return "static-prefix " .. c end)
end
''')
    assert http("GET", srv.url + "/u/me").text == "static"
    assert http("GET", srv.url + "/u/you").text == "dynamic you"
    assert http("GET", srv.url + "/x/y/c").text == "static-prefix c"
    assert http("GET", srv.url + "/q/y/c").text == "dyn2 qy"


def test_view_argument_order_defaults_and_view_args(h1mock):
    srv = h1mock(r'''
function v(req, ...)
  local parts = {}
  for i = 1, select("#", ...) do parts[#parts + 1] = tostring((select(i, ...))) end
  local names = {}
  for k in pairs(req.view_args) do names[#names + 1] = k end
  table.sort(names)
  local va = {}
  for _, k in ipairs(names) do va[#va + 1] = k .. "=" .. tostring(req.view_args[k]) end
  return table.concat(parts, ",") .. "|" .. table.concat(va, ",") .. "|" .. tostring(select("#", ...))
end
function registerRules()
  app.add_url_rule("/v/<zeta>/<int:alpha>", "v", v,
                   {methods = {"GET"}, defaults = {mid = "m", b = 2, z = "last"}})
end
''')
    r = http("GET", srv.url + "/v/first/5")
    assert r.status_code == 200
    # URL variables in rule order (zeta, alpha), then defaults sorted by name (b, mid, z)
    assert r.text == "first,5,2,m,last|alpha=5,b=2,mid=m,z=last,zeta=first|5"


# --------------------------------------------------------------------------
# HEAD, OPTIONS, 405


METHODS = r'''
function registerRules()
  app.get("/g", function(req) return "get body" end)
  app.add_url_rule("/w", "w", function(req) return "w" end, {"PUT", "delete", "POST"})
  app.add_url_rule("/multi", "m1", function(req) return "m1" end, {"GET"})
  app.add_url_rule("/multi", "m2", function(req) return "m2" end, {"PATCH"})
  app.add_url_rule("/own", "own", function(req) return "own options " .. req.method, 200,
                   {["X-Own"] = "1"} end, {"GET", "OPTIONS"})
end
'''


def test_head_on_get_rule(h1mock):
    srv = h1mock(METHODS)
    s = srv.connect()
    try:
        s.sendall(b"HEAD /g HTTP/1.1\r\nHost: t\r\n\r\nGET /g HTTP/1.1\r\nHost: t\r\n\r\n")
        st1, h1, b1 = read_response(s, head_request=True)
        st2, h2, b2 = read_response(s)
    finally:
        s.close()
    assert st1 == 200 and st2 == 200
    assert b2 == b"get body"
    assert header(h1, "content-type") == header(h2, "content-type") == "text/html; charset=utf-8"
    assert header(h1, "content-length") == header(h2, "content-length") == str(len(b2))
    assert b1 == b""


def test_head_exact_no_body_bytes(h1mock):
    srv = h1mock(METHODS)
    s = srv.connect()
    try:
        s.sendall(b"HEAD /g HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        s.settimeout(5)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head, sep, rest = data.partition(b"\r\n\r\n")
    assert sep and head.startswith(b"HTTP/1.1 200")
    assert rest == b""


def test_automatic_options(h1mock):
    srv = h1mock(METHODS)
    st, hs, body = raw(srv, b"OPTIONS /g HTTP/1.1\r\nHost: t\r\n\r\n")
    assert st == 200
    assert header(hs, "allow") == "GET, HEAD, OPTIONS"
    assert body == b""
    r = http("OPTIONS", srv.url + "/w")
    assert r.status_code == 200
    assert r.headers["Allow"] == "DELETE, OPTIONS, POST, PUT"
    r = http("OPTIONS", srv.url + "/multi")
    assert r.headers["Allow"] == "GET, HEAD, OPTIONS, PATCH"


def test_options_registered_by_rule_runs_view(h1mock):
    srv = h1mock(METHODS)
    r = http("OPTIONS", srv.url + "/own")
    assert r.status_code == 200
    assert r.text == "own options OPTIONS"
    assert r.headers["X-Own"] == "1"


def test_405_sorted_allow(h1mock):
    srv = h1mock(METHODS)
    r = http("GET", srv.url + "/w")
    assert r.status_code == 405
    assert r.headers["Allow"] == "DELETE, OPTIONS, POST, PUT"
    r = http("POST", srv.url + "/g")
    assert r.status_code == 405
    assert r.headers["Allow"] == "GET, HEAD, OPTIONS"
    # two rules on one path: the union of their methods
    r = http("DELETE", srv.url + "/multi")
    assert r.status_code == 405
    assert r.headers["Allow"] == "GET, HEAD, OPTIONS, PATCH"
    assert http("GET", srv.url + "/multi").text == "m1"
    assert http("PATCH", srv.url + "/multi").text == "m2"


# --------------------------------------------------------------------------
# Trailing slashes


SLASHES = r'''
function registerRules()
  app.get("/dir/", function(req) return "dir " .. req.path end)
  app.get("/file", function(req) return "file" end)
  app.route("/loose/", {strict_slashes = false}, function(req) return "loose " .. req.path end)
  app.route("/loose2", {strict_slashes = false}, function(req) return "loose2 " .. req.path end)
  app.get("/d/<int:id>/", function(req, id) return "d " .. tostring(id) end)
end
'''


def test_missing_slash_redirects_308(h1mock):
    srv = h1mock(SLASHES)
    r = http("GET", srv.url + "/dir")
    assert r.status_code == 308
    assert r.headers["Location"] == "/dir/"
    r = http("GET", srv.url + "/dir?x=1&y=a%20b")
    assert r.status_code == 308
    assert r.headers["Location"] == "/dir/?x=1&y=a%20b"
    r = http("GET", srv.url + "/d/12?q")
    assert r.status_code == 308
    assert r.headers["Location"] == "/d/12/?q"
    assert http("GET", srv.url + "/dir/").text == "dir /dir/"
    # following the redirect lands on the rule
    s = requests.Session()
    s.trust_env = False
    try:
        r = s.get(srv.url + "/dir?x=1", timeout=10)
    finally:
        s.close()
    assert r.status_code == 200 and r.text == "dir /dir/"


def test_extra_slash_is_404(h1mock):
    srv = h1mock(SLASHES)
    assert http("GET", srv.url + "/file").text == "file"
    assert http("GET", srv.url + "/file/").status_code == 404


def test_strict_slashes_false_matches_both(h1mock):
    srv = h1mock(SLASHES)
    for path in ("/loose/", "/loose", "/loose2", "/loose2/"):
        r = http("GET", srv.url + path)
        assert r.status_code == 200, path
        assert r.text.startswith("loose"), path


# --------------------------------------------------------------------------
# Bad rules and endpoint conflicts


BAD_RULES = ["/a/<int:x", "/a/<nope:x>", "/a/<x>/<x>", "a/b"]


def test_bad_rules_refused_by_check(tmp_path):
    failures = []
    for i, rule in enumerate(BAD_RULES):
        text = ('function registerRules()\n'
                '  app.get("/fine", function() return "ok" end)\n'
                '  app.add_url_rule("%s", "bad%d", function() return "x" end)\n'
                'end\n') % (rule, i)
        f = tmp_path / ("bad%d.lua" % i)
        f.write_text(text)
        p = check(f)
        if p.returncode != 1:
            failures.append("%s: exit %d, stderr %r" % (rule, p.returncode, p.stderr))
            continue
        m = re.search(r"^" + re.escape(f.name) + r":(\d+): (.*)", p.stderr, re.M)
        if not m:
            failures.append("%s: no FILE:LINE: in %r" % (rule, p.stderr))
        elif rule not in m.group(2):
            failures.append("%s: message does not name the rule: %r" % (rule, p.stderr))
        elif int(m.group(1)) != 3:
            failures.append("%s: line %s, want 3 (the add_url_rule call): %r"
                            % (rule, m.group(1), p.stderr))
    assert not failures, "\n".join(failures)


def test_check_error_names_long_file_path_as_given(tmp_path):
    # contract: "for each bad one prints FILE:LINE: message on stderr (the file name as
    # given on the command line)" -- also when the path is longer than Lua's chunk ids
    d = tmp_path / ("d" * 80)
    d.mkdir()
    f = d / "bad.lua"
    f.write_text('function registerRules()\n  app.add_url_rule("a/b", "x", function() end)\nend\n')
    p = subprocess.run([BIN, "--check", str(f)], stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=15, text=True)
    assert p.returncode == 1
    assert p.stderr.startswith(str(f) + ":2: "), p.stderr


def test_good_file_check_ok(tmp_path):
    f = tmp_path / "good.lua"
    f.write_text(ISSUE_EXAMPLE)
    p = check(f)
    assert p.returncode == 0, p.stderr
    assert "%s: ok (3 rules)" % f.name in p.stdout


def test_bad_rule_at_startup_logs_and_falls_back(h1mock):
    text = ('function registerRules()\n'
            '  app.get("/fine", function() return "ok" end)\n'
            '  app.add_url_rule("/a/<int:x", "bad", function() return "x" end)\n'
            'end\n')
    srv = h1mock(text)
    m = srv.wait_log(r"ERROR .*initial\.lua:(\d+):.*")
    assert "/a/<int:x" in m.group(0)
    assert m.group(1) == "3"
    # the server serves the built-in default, not a half-loaded provision
    r = http("GET", srv.url + "/fine")
    assert r.status_code == 404
    assert "app.add_url_rule" in r.text


def test_duplicate_endpoint_different_function_refused(tmp_path):
    f = tmp_path / "dup.lua"
    f.write_text('function a() return "a" end\n'
                 'function b() return "b" end\n'
                 'function registerRules()\n'
                 '  app.add_url_rule("/one", "x", a)\n'
                 '  app.add_url_rule("/two", "x", b)\n'
                 'end\n')
    p = check(f)
    assert p.returncode == 1
    assert "endpoint 'x' is already mapped to another view function" in p.stderr
    assert re.search(r"^dup\.lua:5:", p.stderr, re.M), p.stderr


def test_duplicate_endpoint_same_function_allowed(h1mock):
    srv = h1mock('function a(req) return "a " .. req.path end\n'
                 'function registerRules()\n'
                 '  app.add_url_rule("/one", "x", a)\n'
                 '  app.add_url_rule("/two", "x", a)\n'
                 'end\n')
    srv.wait_log(r"provision 'initial' loaded: 2 rules")
    assert http("GET", srv.url + "/one").text == "a /one"
    assert http("GET", srv.url + "/two").text == "a /two"


def test_duplicate_endpoint_at_startup_logged(h1mock):
    srv = h1mock('function registerRules()\n'
                 '  app.add_url_rule("/one", "x", function() return "1" end)\n'
                 '  app.add_url_rule("/two", "x", function() return "2" end)\n'
                 'end\n')
    srv.wait_log(r"ERROR .*initial\.lua:3:.*endpoint 'x' is already mapped to another view function")
    assert http("GET", srv.url + "/one").status_code == 404


def test_add_url_rule_inside_view_raises(h1mock):
    text = ('function registerRules()\n'
            '  app.get("/late", function()\n'
            '    app.add_url_rule("/added", "added", function() return "x" end)\n'
            '    return "should not get here"\n'
            '  end)\n'
            '  app.get("/ok", function() return "ok" end)\n'
            'end\n')
    srv = h1mock(text)
    r = http("GET", srv.url + "/late")
    assert r.status_code == 500
    assert "should not get here" not in r.text
    srv.wait_log(r"ERROR ")
    srv.wait_log(r"initial\.lua:3:")
    assert http("GET", srv.url + "/added").status_code == 404
    assert http("GET", srv.url + "/ok").text == "ok"


def test_percent_decoded_path_routes(h1mock):
    srv = h1mock(r'''
function registerRules()
  app.get("/a b", function(req) return "space " .. req.path end)
end
''')
    st, hs, body = raw(srv, b"GET /a%20b HTTP/1.1\r\nHost: t\r\n\r\n")
    assert st == 200
    assert body == b"space /a b"


def test_long_numbers_with_leading_zeros_stay_numbers(h1mock):
    srv = h1mock(r'''
function registerRules()
  app.get("/i/<int:n>", function(req, n) return math.type(n) .. " " .. n end)
  app.get("/f/<float:x>", function(req, x) return math.type(x) .. " " .. x end)
end
''')
    assert http("GET", srv.url + "/i/" + "0" * 80 + "42").text == "integer 42"
    assert http("GET", srv.url + "/f/" + "0" * 80 + "1.5").text == "float 1.5"
