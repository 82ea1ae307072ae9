"""The request object.

README: "The request object".
"""

import json

from conftest import read_response, http

ECHO = r'''
local function nn(v) if v == nil then return "NIL" end return v end
function echo(req, rest)
  return {
    method = req.method,
    path = req.path,
    full_path = req.full_path,
    query_string = req.query_string,
    data = req.data,
    remote_addr = req.remote_addr,
    host = req.host,
    url = req.url,
    endpoint = req.endpoint,
    rest = rest,
    view_rest = req.view_args.rest,
    content_type = nn(req.content_type),
    content_length = nn(req.content_length),
    content_length_type = math.type(req.content_length) or type(req.content_length),
    same_as_global = rawequal(req, request),
  }
end
function registerRules()
  app.add_url_rule("/echo/<path:rest>", "echo", echo, {"GET", "POST", "PUT", "DELETE", "PATCH"})
  app.route("/args", function(req)
    local a = req.args
    local keys = {}
    for k in pairs(a) do keys[#keys + 1] = k end
    table.sort(keys)
    return {
      a = a.a, b = a.b, c = a.c, sp = a["s p"], empty = a.empty, missing = a.missing == nil,
      keys = keys,
      list_dot = request.args_list("a"),
      list_colon = request:args_list("a"),
      list_req = req.args_list("b"),
      list_missing_len = #request.args_list("missing"),
      list_missing = request.args_list("missing"),
    }
  end)
  app.get("/headers", function(req)
    local h = req.headers
    return {
      lower = h["x-custom"], upper = h["X-CUSTOM"], mixed = h["X-Custom"], weird = h["x-CuStOm"],
      eq = (h["x-custom"] == h["X-Custom"]),
      rep = h["x-rep"], missing = h["x-missing"] == nil,
      ua = h["User-Agent"],
    }
  end)
  app.post("/json", function(req)
    local j = req.json
    if j == nil then return "json is nil" end
    return {got = j}
  end)
  app.post("/force", function(req) return {got = req.get_json{force = true}} end)
  app.post("/silent", function(req)
    local j = req.get_json{silent = true}
    return "silent " .. tostring(j)
  end)
  app.post("/form", function(req)
    local f = req.form
    return {a = f.a, b = f.b, c = f["c d"]}
  end)
  app.get("/cookies", function(req)
    return {a = req.cookies.a, b = req.cookies.b, none = req.cookies.zzz == nil}
  end)
  app.get("/global", function(req)
    return {same = (req == request), raw = rawequal(req, request), path = request.path,
            method = request.method}
  end)
  app.get("/slept/<int:n>", function(req, n)
    sleep(0.05 * n)
    return {same = rawequal(req, request), path = request.path, n = n,
            va = request.view_args.n, arg = request.args.k}
  end)
  app.get("/stash", function(req) stashed = req; return "stashed" end)
  app.get("/use_stash", function(req) return "path was " .. stashed.path end)
  app.get("/ok", function() return "ok" end)
end
'''




def raw(srv, data):
    s = srv.connect()
    try:
        s.sendall(data)
        return read_response(s)
    finally:
        s.close()


def host_of(srv):
    return "127.0.0.1:%d" % srv.port


def test_basic_fields_get_with_query(h1mock):
    srv = h1mock(ECHO)
    r = http("GET", srv.url + "/echo/x/y?a=1&b=%20z+w")
    assert r.status_code == 200
    j = r.json()
    assert j["method"] == "GET"
    assert j["path"] == "/echo/x/y"
    assert j["query_string"] == "a=1&b=%20z+w"
    assert j["full_path"] == "/echo/x/y?a=1&b=%20z+w"
    assert j["data"] == ""
    assert j["remote_addr"] == "127.0.0.1"
    assert j["host"] == host_of(srv)
    assert j["url"] == "http://%s/echo/x/y?a=1&b=%%20z+w" % host_of(srv)
    assert j["endpoint"] == "echo"
    assert j["rest"] == "x/y" and j["view_rest"] == "x/y"
    assert j["content_type"] == "NIL"
    assert j["content_length"] == "NIL"
    assert j["same_as_global"] is True


def test_full_path_and_url_without_query(h1mock):
    srv = h1mock(ECHO)
    j = http("GET", srv.url + "/echo/plain").json()
    assert j["query_string"] == ""
    assert j["full_path"] == "/echo/plain?"
    assert j["url"] == "http://%s/echo/plain" % host_of(srv)


def test_path_percent_decoded_plus_kept(h1mock):
    srv = h1mock(ECHO)
    st, hs, body = raw(srv, b"GET /echo/a%20b/c%2Bd+e?x=%41 HTTP/1.1\r\nHost: h.example:81\r\n\r\n")
    assert st == 200
    j = json.loads(body)
    assert j["path"] == "/echo/a b/c+d+e"
    assert j["query_string"] == "x=%41"
    assert j["host"] == "h.example:81"
    assert j["url"] == "http://h.example:81/echo/a b/c+d+e?x=%41" or \
        j["url"] == "http://h.example:81/echo/a%20b/c%2Bd+e?x=%41"


def test_method_and_body_fields(h1mock):
    srv = h1mock(ECHO)
    r = http("PUT", srv.url + "/echo/b", data=b"hello body",
             headers={"Content-Type": "text/plain; charset=utf-8"})
    j = r.json()
    assert j["method"] == "PUT"
    assert j["data"] == "hello body"
    assert j["content_type"] == "text/plain; charset=utf-8"
    assert j["content_length"] == 10
    assert j["content_length_type"] == "integer"


def test_args_first_value_decoding_and_args_list(h1mock):
    srv = h1mock(ECHO)
    r = http("GET", srv.url + "/args?a=1&a=2&b=x+y&c=%41%2B%26&s%20p=q&empty=&a=3")
    assert r.status_code == 200
    j = r.json()
    assert j["a"] == "1"
    assert j["b"] == "x y"
    assert j["c"] == "A+&"
    assert j["sp"] == "q"
    assert j["empty"] == ""
    assert j["missing"] is True
    assert j["keys"] == ["a", "b", "c", "empty", "s p"]
    assert j["list_dot"] == ["1", "2", "3"]
    assert j["list_colon"] == ["1", "2", "3"]
    assert j["list_req"] == ["x y"]
    assert j["list_missing_len"] == 0
    assert j["list_missing"] == []  # a list, not {}, even when empty


def test_headers_case_insensitive(h1mock):
    srv = h1mock(ECHO)
    r = http("GET", srv.url + "/headers", headers={"X-Custom": "v1", "User-Agent": "ua/1"})
    j = r.json()
    assert j["lower"] == j["upper"] == j["mixed"] == j["weird"] == "v1"
    assert j["eq"] is True
    assert j["missing"] is True
    assert j["ua"] == "ua/1"


def test_repeated_headers_joined(h1mock):
    srv = h1mock(ECHO)
    st, hs, body = raw(srv, b"GET /headers HTTP/1.1\r\nHost: t\r\nX-Rep: a\r\n"
                            b"x-custom: c\r\nx-rep: b\r\nX-REP: c d\r\n\r\n")
    assert st == 200
    j = json.loads(body)
    assert j["rep"] == "a, b, c d"
    assert j["lower"] == "c"


def test_json_application_json(h1mock):
    srv = h1mock(ECHO)
    r = http("POST", srv.url + "/json", data=b'{"k": [1, "two", null, true], "n": {"x": 1.5}}',
             headers={"Content-Type": "application/json"})
    assert r.status_code == 200
    assert r.json() == {"got": {"k": [1, "two", None, True], "n": {"x": 1.5}}}


def test_json_with_charset_and_plus_json(h1mock):
    srv = h1mock(ECHO)
    for ct in ("application/json; charset=utf-8", "application/vnd.api+json",
               "application/problem+json"):
        r = http("POST", srv.url + "/json", data=b'{"a":1}', headers={"Content-Type": ct})
        assert r.status_code == 200, ct
        assert r.json() == {"got": {"a": 1}}, ct


def test_json_nil_for_text_plain(h1mock):
    srv = h1mock(ECHO)
    r = http("POST", srv.url + "/json", data=b'{"a":1}', headers={"Content-Type": "text/plain"})
    assert r.status_code == 200
    assert r.text == "json is nil"
    r = http("POST", srv.url + "/json", data=b'{"a":1}')  # no Content-Type at all
    assert r.text == "json is nil"


def test_malformed_json_is_400(h1mock):
    srv = h1mock(ECHO)
    r = http("POST", srv.url + "/json", data=b'{"a":', headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert "json is nil" not in r.text
    # the server keeps serving
    assert http("GET", srv.url + "/ok").text == "ok"


def test_get_json_force(h1mock):
    srv = h1mock(ECHO)
    r = http("POST", srv.url + "/force", data=b'{"a":[1,2]}', headers={"Content-Type": "text/plain"})
    assert r.status_code == 200
    assert r.json() == {"got": {"a": [1, 2]}}


def test_get_json_silent(h1mock):
    srv = h1mock(ECHO)
    r = http("POST", srv.url + "/silent", data=b'{not json',
             headers={"Content-Type": "application/json"})
    assert r.status_code == 200
    assert r.text == "silent nil"


def test_form(h1mock):
    srv = h1mock(ECHO)
    r = http("POST", srv.url + "/form", data=b"a=1&a=2&b=x+y%21&c%20d=%C3%A9",
             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200
    assert r.json() == {"a": "1", "b": "x y!", "c": "\u00e9"}


def test_cookies(h1mock):
    srv = h1mock(ECHO)
    r = http("GET", srv.url + "/cookies", headers={"Cookie": "a=1; b=two"})
    assert r.status_code == 200
    assert r.json() == {"a": "1", "b": "two", "none": True}


def test_global_request_is_first_argument(h1mock):
    srv = h1mock(ECHO)
    r = http("GET", srv.url + "/global")
    assert r.json() == {"same": True, "raw": True, "path": "/global", "method": "GET"}


def test_request_valid_after_sleep_with_overlap(h1mock):
    import threading
    srv = h1mock(ECHO)
    results = {}

    def go(n):
        results[n] = http("GET", srv.url + "/slept/%d?k=v%d" % (n, n))

    threads = [threading.Thread(target=go, args=(n,)) for n in (6, 1, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    for n in (6, 1, 3):
        r = results[n]
        assert r.status_code == 200, r.text
        assert r.json() == {"same": True, "path": "/slept/%d" % n, "n": n, "va": n,
                            "arg": "v%d" % n}


def test_stashed_request_raises_later(h1mock):
    srv = h1mock(ECHO)
    assert http("GET", srv.url + "/stash").text == "stashed"
    r = http("GET", srv.url + "/use_stash")
    assert r.status_code == 500
    assert "path was" not in r.text
    srv.wait_log(r"ERROR ")
    assert http("GET", srv.url + "/ok").text == "ok"
