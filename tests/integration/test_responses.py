"""Return values, response objects, cookies, redirects, before/after hooks.

README: "What a view returns", "Response objects".
"""


from conftest import read_response, header, http

RETURNS = r'''
function registerRules()
  app.get("/string", function() return "<b>hi</b>" end)
  app.get("/table", function() return {b = "x", a = 1} end)
  app.get("/nested", function()
    return {z = {y = 1, x = {2, 1}}, a = true, m = {k = "v", c = false}}
  end)
  app.get("/array", function() return {3, "two", 1} end)
  app.get("/empty", function() return {} end)
  app.get("/empty_array", function() return json.empty_array end)
  app.get("/empty_array_in", function() return {list = json.empty_array, obj = {}} end)
  app.get("/array_mt", function() return {list = setmetatable({}, json.array_mt)} end)
  app.get("/null", function() return {a = json.null, b = 1} end)
  app.get("/null_in_array", function() return {1, json.null, 3} end)
  app.get("/body_status", function() return "created", 201 end)
  app.get("/table_status", function() return {ok = false}, 422 end)
  app.get("/body_headers", function() return "with headers", {["X-A"] = "1", ["x-b"] = "two"} end)
  app.get("/body_status_headers", function() return "bsh", 202, {["X-C"] = "3"} end)
  app.get("/string_status", function() return "made", "201 CREATED" end)
  app.get("/string_status_headers", function() return "made2", "299 WHATEVER", {["X-D"] = "4"} end)
  app.get("/pairs", function() return "pairs", {{"X-A", "1"}, {"X-A", "2"}, {"X-B", "b"}} end)
  app.get("/numeric_header", function() return "num", 200, {["X-N"] = 5, ["X-F"] = 1.5} end)
  app.get("/content_type_override", function()
    return "plain", {["Content-Type"] = "text/plain"}
  end)
  app.get("/jsonify_table", function() return jsonify{b = 2, a = {c = 3}} end)
  app.get("/jsonify_args", function() return jsonify(1, "b", true) end)
  app.get("/jsonify_none", function() return jsonify() end)
  app.get("/jsonify_status", function() return jsonify{err = "no"}, 404 end)
end
'''




def raw_get(srv, path, extra=b""):
    s = srv.connect()
    try:
        s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: t\r\n" + extra + b"\r\n")
        return read_response(s)
    finally:
        s.close()


def all_headers(hs, name):
    return [v for n, v in hs if n == name.lower()]


def test_string_is_html(h1mock):
    srv = h1mock(RETURNS)
    r = http("GET", srv.url + "/string")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert r.content == b"<b>hi</b>"
    assert r.headers["Content-Length"] == "9"


def test_table_is_compact_sorted_json_with_newline(h1mock):
    srv = h1mock(RETURNS)
    r = http("GET", srv.url + "/table")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.content == b'{"a":1,"b":"x"}\n'
    r = http("GET", srv.url + "/nested")
    assert r.content == b'{"a":true,"m":{"c":false,"k":"v"},"z":{"x":[2,1],"y":1}}\n'
    r = http("GET", srv.url + "/array")
    assert r.content == b'[3,"two",1]\n'


def test_empty_table_and_empty_array(h1mock):
    srv = h1mock(RETURNS)
    r = http("GET", srv.url + "/empty")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.content == b"{}\n"
    r = http("GET", srv.url + "/empty_array")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.content == b"[]\n"
    assert http("GET", srv.url + "/empty_array_in").content == b'{"list":[],"obj":{}}\n'
    assert http("GET", srv.url + "/array_mt").content == b'{"list":[]}\n'


def test_json_null(h1mock):
    srv = h1mock(RETURNS)
    assert http("GET", srv.url + "/null").content == b'{"a":null,"b":1}\n'
    assert http("GET", srv.url + "/null_in_array").content == b'[1,null,3]\n'


def test_body_status(h1mock):
    srv = h1mock(RETURNS)
    r = http("GET", srv.url + "/body_status")
    assert r.status_code == 201
    assert r.text == "created"
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    r = http("GET", srv.url + "/table_status")
    assert r.status_code == 422
    assert r.content == b'{"ok":false}\n'
    assert r.headers["Content-Type"] == "application/json"


def test_body_headers(h1mock):
    srv = h1mock(RETURNS)
    r = http("GET", srv.url + "/body_headers")
    assert r.status_code == 200
    assert r.text == "with headers"
    assert r.headers["X-A"] == "1"
    assert r.headers["X-B"] == "two"


def test_body_status_headers(h1mock):
    srv = h1mock(RETURNS)
    r = http("GET", srv.url + "/body_status_headers")
    assert r.status_code == 202
    assert r.text == "bsh"
    assert r.headers["X-C"] == "3"


def test_string_status(h1mock):
    srv = h1mock(RETURNS)
    r = http("GET", srv.url + "/string_status")
    assert r.status_code == 201
    assert r.text == "made"
    r = http("GET", srv.url + "/string_status_headers")
    assert r.status_code == 299
    assert r.text == "made2"
    assert r.headers["X-D"] == "4"


def test_header_list_of_pairs_sends_repeated_lines(h1mock):
    srv = h1mock(RETURNS)
    st, hs, body = raw_get(srv, "/pairs")
    assert st == 200
    assert body == b"pairs"
    assert all_headers(hs, "x-a") == ["1", "2"]
    assert all_headers(hs, "x-b") == ["b"]


def test_numeric_header_value(h1mock):
    srv = h1mock(RETURNS)
    st, hs, body = raw_get(srv, "/numeric_header")
    assert st == 200
    assert header(hs, "x-n") == "5"
    assert header(hs, "x-f") == "1.5"


def test_content_type_from_headers_replaces_default(h1mock):
    srv = h1mock(RETURNS)
    st, hs, body = raw_get(srv, "/content_type_override")
    assert body == b"plain"
    assert all_headers(hs, "content-type") == ["text/plain"]


def test_jsonify_forms(h1mock):
    srv = h1mock(RETURNS)
    r = http("GET", srv.url + "/jsonify_table")
    assert r.headers["Content-Type"] == "application/json"
    assert r.content == b'{"a":{"c":3},"b":2}\n'
    r = http("GET", srv.url + "/jsonify_args")
    assert r.headers["Content-Type"] == "application/json"
    assert r.content == b'[1,"b",true]\n'
    r = http("GET", srv.url + "/jsonify_none")
    assert r.headers["Content-Type"] == "application/json"
    assert r.content == b"{}\n"
    r = http("GET", srv.url + "/jsonify_status")
    assert r.status_code == 404
    assert r.content == b'{"err":"no"}\n'


# --------------------------------------------------------------------------
# make_response, set_cookie, redirect


OBJECTS = r'''
function registerRules()
  app.get("/mr", function() return make_response("hello", 202, {["X-A"] = "1"}) end)
  app.get("/mr_body_only", function() return make_response("only") end)
  app.get("/mr_headers_only", function() return make_response("h", {["X-H"] = "y"}) end)
  app.get("/mr_mutate", function()
    local r = make_response("hello", {["X-A"] = "1"})
    local before = r.status_code
    local xa = r.headers["x-a"]
    local old = r.data
    r.status_code = 203
    r.headers["X-B"] = "2"
    r.headers["x-a"] = "replaced"
    r.data = "changed:" .. tostring(before) .. ":" .. tostring(xa) .. ":" .. old .. ":" ..
             r.mimetype .. ":" .. r.content_type
    return r
  end)
  app.get("/jsonify_obj", function()
    local r = jsonify{a = 1}
    r.status_code = 201
    r.headers["X-M"] = r.mimetype
    return r
  end)
  app.get("/cookie", function()
    local r = make_response("cookies")
    r:set_cookie("sid", "abc", {max_age = 60, path = "/", domain = "example.com",
                               secure = true, httponly = true, samesite = "Lax"})
    r.set_cookie("plain", "v")
    return r
  end)
  app.get("/redir", function() return redirect("/there") end)
  app.get("/redir301", function() return redirect("http://example.com/x?y=1", 301) end)
  app.get("/redir307", function() return redirect("/t", 307) end)
end
'''


def test_make_response_status_headers(h1mock):
    srv = h1mock(OBJECTS)
    r = http("GET", srv.url + "/mr")
    assert r.status_code == 202
    assert r.text == "hello"
    assert r.headers["X-A"] == "1"
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    r = http("GET", srv.url + "/mr_body_only")
    assert r.status_code == 200 and r.text == "only"
    r = http("GET", srv.url + "/mr_headers_only")
    assert r.status_code == 200 and r.text == "h" and r.headers["X-H"] == "y"


def test_make_response_mutation(h1mock):
    srv = h1mock(OBJECTS)
    st, hs, body = raw_get(srv, "/mr_mutate")
    assert st == 203
    assert body == b"changed:200:1:hello:text/html:text/html; charset=utf-8"
    assert header(hs, "content-length") == str(len(body))
    assert header(hs, "x-b") == "2"
    assert all_headers(hs, "x-a") == ["replaced"]


def test_jsonify_response_object(h1mock):
    srv = h1mock(OBJECTS)
    r = http("GET", srv.url + "/jsonify_obj")
    assert r.status_code == 201
    assert r.content == b'{"a":1}\n'
    assert r.headers["X-M"] == "application/json"


def test_set_cookie_attributes(h1mock):
    srv = h1mock(OBJECTS)
    st, hs, body = raw_get(srv, "/cookie")
    assert st == 200 and body == b"cookies"
    cookies = all_headers(hs, "set-cookie")
    assert len(cookies) == 2, cookies
    sid = [c for c in cookies if c.startswith("sid=")]
    assert sid, cookies
    parts = [p.strip() for p in sid[0].split(";")]
    assert parts[0] == "sid=abc"
    attrs = {}
    for p in parts[1:]:
        k, _, v = p.partition("=")
        attrs[k.lower()] = v
    assert attrs.get("max-age") == "60", sid
    assert attrs.get("path") == "/", sid
    assert attrs.get("domain") in ("example.com", ".example.com"), sid
    assert "secure" in attrs and "httponly" in attrs, sid
    assert attrs.get("samesite", "").lower() == "lax", sid
    plain = [c for c in cookies if c.startswith("plain=")]
    assert plain and plain[0].split(";")[0] == "plain=v", cookies


def test_redirect(h1mock):
    srv = h1mock(OBJECTS)
    r = http("GET", srv.url + "/redir")
    assert r.status_code == 302
    assert r.headers["Location"] == "/there"
    r = http("GET", srv.url + "/redir301")
    assert r.status_code == 301
    assert r.headers["Location"] == "http://example.com/x?y=1"
    r = http("GET", srv.url + "/redir307")
    assert r.status_code == 307
    assert r.headers["Location"] == "/t"


# --------------------------------------------------------------------------
# before_request / after_request


HOOKS = r'''
trace = {}
function registerRules()
  app.before_request(function() trace[#trace + 1] = "b1:" .. request.path end)
  app.before_request(function()
    trace[#trace + 1] = "b2"
    if request.path == "/blocked" then return "short-circuit" end
    if request.path == "/denied" then return make_response("denied", 401) end
  end)
  app.before_request(function() trace[#trace + 1] = "b3" end)
  app.get("/blocked", function() trace[#trace + 1] = "VIEW-blocked"; return "view ran" end)
  app.get("/denied", function() trace[#trace + 1] = "VIEW-denied"; return "view ran" end)
  app.get("/trace", function()
    trace[#trace + 1] = "view"
    local t = table.concat(trace, ",")
    trace = {}
    return t
  end)
end
'''


def test_before_request_order_and_short_circuit(h1mock):
    srv = h1mock(HOOKS)
    r = http("GET", srv.url + "/blocked")
    assert r.status_code == 200
    assert r.text == "short-circuit"
    r = http("GET", srv.url + "/denied")
    assert r.status_code == 401
    assert r.text == "denied"
    r = http("GET", srv.url + "/trace")
    assert r.status_code == 200
    assert r.text == "b1:/blocked,b2,b1:/denied,b2,b1:/trace,b2,b3,view"


AFTER = r'''
function registerRules()
  app.after_request(function(resp)
    resp.headers["X-Order"] = (resp.headers["X-Order"] or "") .. "1"
    return resp
  end)
  app.after_request(function(resp)
    resp.headers["X-Order"] = (resp.headers["X-Order"] or "") .. "2"
    resp.headers["X-Added"] = "yes"
    resp.data = resp.data .. "!"
    return resp
  end)
  app.after_request(function(resp)
    resp.headers["X-Order"] = (resp.headers["X-Order"] or "") .. "3"
    if request.path == "/status" then resp.status_code = 299 end
    return resp
  end)
  app.get("/v", function() return "view" end)
  app.get("/status", function() return "s", 201, {["X-From-View"] = "v"} end)
end
'''


def test_after_request_reverse_order_and_mutation(h1mock):
    srv = h1mock(AFTER)
    st, hs, body = raw_get(srv, "/v")
    assert st == 200
    assert body == b"view!"
    assert header(hs, "content-length") == "5"
    assert all_headers(hs, "x-order") == ["321"]
    assert header(hs, "x-added") == "yes"
    r = http("GET", srv.url + "/status")
    assert r.status_code == 299
    assert r.text == "s!"
    assert r.headers["X-From-View"] == "v"
    assert r.headers["X-Order"] == "321"


RESPONSE_OBJECT = r'''
function registerRules()
  app.get("/dot_headers", function()
    local r = make_response("x")
    r.headers.set("X-A", "1")
    r.headers.add("X-B", "2")
    return r.headers.get("x-a") .. r.headers.get("X-B") .. #r.headers.getlist("x-b")
  end)
  app.get("/status_text", function()
    local r = make_response("x")
    r.status = "299 FINE"
    return r
  end)
  app.get("/status_bad", function()
    local r = make_response("x")
    r.status = "fine"
    return r
  end)
  app.get("/cookie_age", function()
    local r = make_response("x")
    r:set_cookie("c", "v", {max_age = 1.5})
    return r
  end)
end
'''


def test_headers_methods_work_with_a_dot(h1mock):
    srv = h1mock(RESPONSE_OBJECT)
    assert http("GET", srv.url + "/dot_headers").text == "121"


def test_response_status_text_sets_code_and_reason(h1mock):
    srv = h1mock(RESPONSE_OBJECT)
    s = srv.connect()
    try:
        s.sendall(b"GET /status_text HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = read_response(s)
    finally:
        s.close()
    assert status == 299 and body == b"x"
    r = http("GET", srv.url + "/status_bad")
    assert r.status_code == 500
    srv.wait_log(r"initial\.lua:\d+: response\.status must look like")


def test_fractional_cookie_age_is_rounded_down(h1mock):
    srv = h1mock(RESPONSE_OBJECT)
    r = http("GET", srv.url + "/cookie_age")
    assert r.status_code == 200
    assert r.headers["Set-Cookie"] == "c=v; Max-Age=1; Path=/"


# --------------------------------------------------------------------------
# Response setters (#16 points 7 and 8): content_type and mimetype change the
# Content-Type as Flask's Response does; a value of the wrong type raises at
# the assignment's line instead of being dropped.


SETTERS = r'''
local function with(fn)
  return function()
    local r = make_response("body")
    fn(r)
    return r
  end
end

function registerRules()
  app.get("/content_type", with(function(r) r.content_type = "text/csv; header=present" end))
  app.get("/content_type_nil", with(function(r) r.content_type = nil end))
  app.get("/mimetype_text", with(function(r) r.mimetype = "text/plain" end))
  app.get("/mimetype_json", with(function(r) r.mimetype = "application/json" end))
  app.get("/mimetype_xml", with(function(r) r.mimetype = "application/atom+xml" end))
  app.get("/read_back", function()
    local r = jsonify{a = 1}
    r.mimetype = "application/problem+json"
    return r.content_type .. "|" .. r.mimetype .. "|" .. tostring(r.is_json)
  end)
  app.get("/headers_table", with(function(r) r.headers = {["X-A"] = {"1", "2"}} end))
  app.get("/headers_read_after", function()
    local r = make_response("x")
    r.headers = {{"X-A", "1"}, {"x-a", "2"}}
    return r.headers["X-A"] .. #r.headers
  end)
  app.get("/status_code_string", with(function(r) r.status_code = "299 Fine" end))
  app.get("/bad/headers_number", with(function(r) r.headers = 5 end))
  app.get("/bad/headers_value", with(function(r) r.headers = {["X-A"] = {{}}} end))
  app.get("/bad/status_code_table", with(function(r) r.status_code = {} end))
  app.get("/bad/status_code_1xx", with(function(r) r.status_code = 103 end))
  app.get("/bad/status_code_float", with(function(r) r.status_code = 200.5 end))
  app.get("/bad/status_1xx", with(function(r) r.status = "101 Switching Protocols" end))
  app.get("/bad/data_table", with(function(r) r.data = {} end))
  app.get("/bad/set_data_number", with(function(r) r.set_data(5) end))
  app.get("/bad/content_type_number", with(function(r) r.content_type = 5 end))
  app.get("/bad/mimetype_params", with(function(r) r.mimetype = "text/plain; charset=x" end))
  app.get("/bad/mimetype_nil", with(function(r) r.mimetype = nil end))
  app.get("/bad/is_json", with(function(r) r.is_json = true end))
  app.get("/bad/json", with(function(r) r.json = {} end))
  app.get("/bad/method", with(function(r) r.set_cookie = 1 end))
  app.get("/own_field", function()
    local r = make_response("x")
    r.note = "kept"                       -- other names stay free for the view's use
    return r.note
  end)
end
'''


def test_response_content_type_setter(h1mock):
    srv = h1mock(SETTERS)
    r = http("GET", srv.url + "/content_type")
    assert r.status_code == 200 and r.text == "body"
    assert r.headers["Content-Type"] == "text/csv; header=present"
    st, hs, body = raw_get(srv, "/content_type_nil")
    assert st == 200 and body == b"body"
    assert header(hs, "content-type") is None


def test_response_mimetype_setter_adds_a_charset_to_text_types(h1mock):
    srv = h1mock(SETTERS)
    assert http("GET", srv.url + "/mimetype_text").headers["Content-Type"] == \
        "text/plain; charset=utf-8"
    assert http("GET", srv.url + "/mimetype_json").headers["Content-Type"] == \
        "application/json"
    assert http("GET", srv.url + "/mimetype_xml").headers["Content-Type"] == \
        "application/atom+xml; charset=utf-8"
    assert http("GET", srv.url + "/read_back").text == \
        "application/problem+json|application/problem+json|true"


def test_response_headers_and_status_code_setters_take_good_values(h1mock):
    srv = h1mock(SETTERS)
    st, hs, body = raw_get(srv, "/headers_table")
    assert st == 200 and all_headers(hs, "x-a") == ["1", "2"]
    # a plain table becomes a Headers object: reads ignore case afterwards
    assert http("GET", srv.url + "/headers_read_after").text == "12"
    s = srv.connect()
    try:
        s.sendall(b"GET /status_code_string HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 299 Fine\r\n")
    finally:
        s.close()
    assert http("GET", srv.url + "/own_field").text == "kept"


BAD_SETTERS = {
    "headers_number": "response.headers must be a table of headers, not 5",
    "headers_value": "response.headers: header 'X-A' has a table value",
    "status_code_table": "response.status_code must be an integer from 200 to 999",
    "status_code_1xx": "response.status_code must be an integer from 200 to 999 "
                       r"\(or a string like '201 Created'\), not 103",
    "status_code_float": "response.status_code must be an integer .*, not 200.5",
    "status_1xx": "response.status must look like '404 Not Found' .*, not '101 Switching",
    "data_table": "response.data must be a string, not a table",
    "set_data_number": "set_data: the body must be a string, not a number",
    "content_type_number": "response.content_type must be a string or nil, not 5",
    "mimetype_params": "response.mimetype must be a type without parameters",
    "mimetype_nil": "response.mimetype must be a type without parameters.*not a nil",
    "is_json": "response.is_json is read-only",
    "json": "response.json is read-only",
    "method": "response.set_cookie is a method and cannot be replaced",
}


def test_response_setters_raise_at_the_assignment(h1mock):
    srv = h1mock(SETTERS)
    lines = {}
    for i, line in enumerate(SETTERS.splitlines()):
        for name in BAD_SETTERS:
            if '"/bad/%s"' % name in line:
                lines[name] = i + 1
    assert len(lines) == len(BAD_SETTERS)
    for name, message in BAD_SETTERS.items():
        r = http("GET", srv.url + "/bad/" + name)
        assert r.status_code == 500, (name, r.status_code, r.text)
        srv.wait_log(r"initial\.lua:%d: %s" % (lines[name], message))
    # nothing else changed: the good setters still answer
    assert http("GET", srv.url + "/content_type").status_code == 200
