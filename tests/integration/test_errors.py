"""abort, error handlers, views that raise / loop / return nothing, the
budget, unknown globals.

README: "Errors and where they show up", "Error handlers".
"""

import re
import subprocess
import threading
import time


from conftest import BIN, ROOT, raw_exchange, read_response, header, http, wait_until




def line_of(text, needle):
    for i, line in enumerate(text.split("\n"), 1):
        if needle in line:
            return i
    raise AssertionError("%r not in provision" % needle)


ABORTS = r'''
function registerRules()
  app.get("/a404", function() abort(404); return "not reached" end)
  app.get("/a403", function() abort(403, "go away, you <b>"); return "not reached" end)
  app.get("/a_resp", function() abort(make_response("teapot body", 418, {["X-T"] = "1"})) end)
  app.get("/a_json", function() abort(jsonify{error = "bad"}) end)
  app.get("/ok", function() return "ok" end)
end
'''


def test_abort_default_page(h1mock):
    srv = h1mock(ABORTS)
    r = http("GET", srv.url + "/a404")
    assert r.status_code == 404
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "<title>404 Not Found</title>" in r.text
    assert "not reached" not in r.text


def test_routing_404_default_page(h1mock):
    srv = h1mock(ABORTS)
    r = http("GET", srv.url + "/no/such/thing")
    assert r.status_code == 404
    assert "<title>404 Not Found</title>" in r.text


def test_abort_with_description(h1mock):
    srv = h1mock(ABORTS)
    r = http("GET", srv.url + "/a403")
    assert r.status_code == 403
    assert "<title>403 Forbidden</title>" in r.text
    assert "go away, you" in r.text


def test_abort_response_object(h1mock):
    srv = h1mock(ABORTS)
    r = http("GET", srv.url + "/a_resp")
    assert r.status_code == 418
    assert r.text == "teapot body"
    assert r.headers["X-T"] == "1"
    r = http("GET", srv.url + "/a_json")
    assert r.status_code == 200
    assert r.content == b'{"error":"bad"}\n'


HANDLERS = r'''
function fmt(e) return string.format("%s|%s|%s", tostring(e.code), tostring(e.name), tostring(e.description)) end
function registerRules()
  app.register_error_handler(404, function(e) return "H404 " .. fmt(e) .. " " .. request.path, 404 end)
  app.errorhandler(405, function(e) return "H405 " .. tostring(e.code), 405 end)
  app.register_error_handler(500, function(e) return "H500 " .. tostring(e.code), 500 end)
  app.register_error_handler(418, function(e) return "H418 " .. fmt(e), 418, {["X-Tea"] = "pot"} end)
  app.get("/raise", function() error("boom") end)
  app.get("/tea", function() abort(418, "short and stout") end)
  app.get("/abort404", function() abort(404, "gone fishing") end)
  app.post("/only_post", function() return "posted" end)
  app.get("/ok", function() return "ok" end)
end
'''


def test_handler_for_routing_404(h1mock):
    srv = h1mock(HANDLERS)
    r = http("GET", srv.url + "/missing")
    assert r.status_code == 404
    assert r.text.startswith("H404 404|Not Found|")
    assert r.text.endswith(" /missing")


def test_handler_for_abort_404_gets_description(h1mock):
    srv = h1mock(HANDLERS)
    r = http("GET", srv.url + "/abort404")
    assert r.status_code == 404
    assert r.text == "H404 404|Not Found|gone fishing /abort404"


def test_handler_for_405(h1mock):
    srv = h1mock(HANDLERS)
    r = http("GET", srv.url + "/only_post")
    assert r.status_code == 405
    assert r.text == "H405 405"


def test_405_page_and_description_name_the_methods(h1mock):
    srv = h1mock(r'''
function registerRules()
  app.route("/d", {methods = {"PUT", "DELETE"}}, function() return "d" end)
  app.errorhandler(405, function(e) return "H " .. e.description, 405 end)
end
''')
    r = http("PUT", srv.url + "/d")
    assert r.status_code == 200
    r = http("GET", srv.url + "/d")
    assert (r.status_code, r.text) == (405, "H This URL does not accept GET; it accepts DELETE, "
                                            "OPTIONS, PUT.")
    assert r.headers["Allow"] == "DELETE, OPTIONS, PUT"
    srv2 = h1mock('function registerRules() app.post("/p", function() return "p" end) end')
    r = http("DELETE", srv2.url + "/p")
    assert r.status_code == 405
    assert "<h1>Method Not Allowed</h1>\n<p>This URL does not accept DELETE; it accepts " \
        "OPTIONS, POST.</p>" in r.text


def test_handler_for_500_view_raise(h1mock):
    srv = h1mock(HANDLERS)
    r = http("GET", srv.url + "/raise")
    assert r.status_code == 500
    assert r.text == "H500 500"
    srv.wait_log(r"ERROR .*boom")


def test_handler_for_custom_abort_418(h1mock):
    srv = h1mock(HANDLERS)
    r = http("GET", srv.url + "/tea")
    assert r.status_code == 418
    assert r.headers["X-Tea"] == "pot"
    code, name, desc = r.text[len("H418 "):].split("|")
    assert r.text.startswith("H418 ")
    assert code == "418"
    assert name and name != "nil"
    assert desc == "short and stout"


def test_handler_plain_string_is_200(h1mock):
    srv = h1mock(r'''
function registerRules()
  app.register_error_handler(404, function(e) return "just a string" end)
  app.errorhandler(500, function(e) return {err = e.code} end)
  app.get("/raise", function() error("x") end)
end
''')
    r = http("GET", srv.url + "/nope")
    assert r.status_code == 200
    assert r.text == "just a string"
    r = http("GET", srv.url + "/raise")
    assert r.status_code == 200
    assert r.content == b'{"err":500}\n'


RAISES = r'''
function registerRules()
  app.get("/raise", raiser)
  app.get("/nothing", function() local x = 1 end)
  app.get("/nil", function() return nil end)
  app.get("/crlf", function() return "x", {["X-Bad"] = "a\r\nInjected: 1"} end)
  app.get("/lf", function() return "x", 200, {["X-Bad"] = "a\nInjected: 2"} end)
  app.get("/unknown", function() return "v=" .. tostring(some_undefined_name) end)
  app.get("/rawget", function()
    new_global_value = 5
    return tostring(rawget(_G, "still_undefined")) .. " " .. tostring(new_global_value)
  end)
  app.get("/ok", function() return "ok" end)
end
function raiser(req)
  local t = {}
  error("kaboom-7 " .. req.path)
end
'''


def test_view_raise_500_and_logged_with_line(h1mock):
    srv = h1mock(RAISES)
    line = line_of(RAISES, 'error("kaboom-7 "')
    r = http("GET", srv.url + "/raise")
    assert r.status_code == 500
    assert "<title>500 Internal Server Error</title>" in r.text
    srv.wait_log(r"ERROR .*initial\.lua:%d: kaboom-7 /raise" % line)
    srv.wait_log(r"stack traceback")
    assert http("GET", srv.url + "/ok").text == "ok"


RUNTIME_RAISES = """
function registerRules()
  app.get("/cookie", function()
    local r = make_response("x")
    r:set_cookie("n", "v", {max_age = "soon"})
    return r
  end)
end
"""


def test_error_inside_the_runtime_names_its_line_after_reloads(h1mock):
    """The embedded runtime is compiled once and reused by later loads:
    errors raised inside it must still name h1mock.lua and the right line."""
    srv = h1mock(RUNTIME_RAISES)
    want = re.compile(r"ERROR .*h1mock\.lua:(\d+):.*floor")
    runtime = (ROOT / "lua" / "h1mock.lua").read_text().splitlines()
    for n in range(3):
        if n:
            r = http("POST", srv.admin_url + "/app/v1/provision/again%d" % n, data=RUNTIME_RAISES)
            assert r.status_code == 201, r.text
        assert http("GET", srv.url + "/cookie").status_code == 500
        lines = wait_until(lambda: len(want.findall(srv.log)) == n + 1 and want.findall(srv.log),
                           10, what="error line %d" % (n + 1))
        assert "math.floor" in runtime[int(lines[-1]) - 1], lines[-1]


def test_view_returning_nothing_500(h1mock):
    srv = h1mock(RAISES)
    for path in ("/nothing", "/nil"):
        r = http("GET", srv.url + path)
        assert r.status_code == 500, path
    srv.wait_log(r"ERROR .*return(ed)? (nothing|nil)")
    assert http("GET", srv.url + "/ok").text == "ok"


def test_header_value_with_crlf_500(h1mock):
    srv = h1mock(RAISES)
    for path in ("/crlf", "/lf"):
        s = srv.connect()
        try:
            s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: t\r\n\r\n")
            st, hs, body = read_response(s)
        finally:
            s.close()
        assert st == 500, path
        assert header(hs, "injected") is None
        assert header(hs, "x-bad") is None
    srv.wait_log(r"ERROR ")
    assert http("GET", srv.url + "/ok").text == "ok"


def test_unknown_global_in_view(h1mock):
    srv = h1mock(RAISES)
    r = http("GET", srv.url + "/unknown")
    assert r.status_code == 500
    srv.wait_log(r"ERROR .*unknown global 'some_undefined_name'")
    r = http("GET", srv.url + "/rawget")
    assert r.status_code == 200
    assert r.text == "nil 5"


def test_unknown_global_in_register_rules_check(tmp_path):
    f = tmp_path / "ug.lua"
    f.write_text('function registerRules()\n'
                 '  app.get("/x", function() return "x" end)\n'
                 '  app.get("/y", not_defined_view)\n'
                 'end\n')
    p = subprocess.run([BIN, "--check", f.name], capture_output=True, text=True, timeout=15,
                       stdin=subprocess.DEVNULL, cwd=str(tmp_path))
    assert p.returncode == 1
    assert re.search(r"^ug\.lua:3: .*unknown global 'not_defined_view'", p.stderr, re.M), \
        p.stderr


LOOPS = r'''
function registerRules()
  app.get("/loop", function()
    log.info("loop-start")
    while true do end
  end)
  app.get("/pcall_loop", function()
    log.info("pcall-begin")
    local ok, err = pcall(function() while true do end end)
    return "caught: " .. tostring(err)
  end)
  app.get("/cheap", function() return "cheap" end)
end
'''


def _timed(url, out, key):
    t0 = time.monotonic()
    try:
        r = http("GET", url, timeout=20)
        out[key] = (r.status_code, r.text, time.monotonic() - t0, time.monotonic())
    except Exception as e:  # reported by the assertions below
        out[key] = (None, repr(e), time.monotonic() - t0, time.monotonic())


def test_endless_loop_stopped_and_others_served(h1mock):
    # A budget of ~1.5 s of looping leaves a loaded machine time to send the cheap request.
    srv = h1mock(LOOPS, "--max-instructions", "500000000")
    out = {}
    t = threading.Thread(target=_timed, args=(srv.url + "/loop", out, "loop"))
    t.start()
    srv.wait_log(r"loop-start", timeout=10)
    _timed(srv.url + "/cheap", out, "cheap")
    t.join(20)
    assert not t.is_alive()
    st, text, took, done_at = out["loop"]
    assert st == 500, out
    assert took < 6.0, "budget stop took %.2fs" % took
    cst, ctext, ctook, cdone_at = out["cheap"]
    assert cst == 200 and ctext == "cheap", out
    # A busy view yields to the event loop between slices of its budget, so the
    # cheap request, sent while the view loops, is answered before the loop is stopped.
    assert cdone_at < done_at, "cheap answered %.3fs after the loop's 500" % (cdone_at - done_at)
    assert ctook < 1.0, (ctook, took)
    srv.wait_log(r"ERROR .*instruction budget")
    assert http("GET", srv.url + "/cheap").text == "cheap"


def test_pcall_cannot_catch_budget(h1mock):
    srv = h1mock(LOOPS)
    t0 = time.monotonic()
    r = http("GET", srv.url + "/pcall_loop", timeout=20)
    took = time.monotonic() - t0
    assert r.status_code == 500
    assert "caught" not in r.text
    assert took < 6.0
    srv.wait_log(r"ERROR .*instruction budget")
    assert http("GET", srv.url + "/cheap").text == "cheap"


def test_error_in_error_handler_is_plain_500(h1mock):
    srv = h1mock(r'''
function registerRules()
  app.register_error_handler(404, function(e) error("handler broke") end)
  app.register_error_handler(500, function(e) error("500 handler broke too") end)
  app.get("/raise", function() error("view broke") end)
  app.get("/ok", function() return "ok" end)
end
''')
    r = http("GET", srv.url + "/missing")
    assert r.status_code == 500
    assert "<title>500 Internal Server Error</title>" in r.text
    r = http("GET", srv.url + "/raise")
    assert r.status_code == 500
    assert "<title>500 Internal Server Error</title>" in r.text
    srv.wait_log(r"ERROR .*handler broke")
    assert http("GET", srv.url + "/ok").text == "ok"


def test_server_keeps_serving_after_everything(h1mock):
    text = RAISES.replace('app.get("/ok"', 'app.get("/loop", function() while true do end end)\n'
                          '  app.get("/a", function() abort(409) end)\n  app.get("/ok"')
    srv = h1mock(text)
    for path, want in (("/raise", 500), ("/nothing", 500), ("/crlf", 500), ("/unknown", 500),
                       ("/loop", 500), ("/a", 409), ("/missing", 404)):
        r = http("GET", srv.url + path, timeout=20)
        assert r.status_code == want, path
        assert http("GET", srv.url + "/ok").text == "ok", "after " + path
    assert srv.proc.poll() is None


def test_500_handler_sees_the_original_error(h1mock):
    srv = h1mock(r'''
function registerRules()
  app.register_error_handler(500, function(e) return "handled: " .. e.original_exception, 500 end)
  app.get("/raise", function() error("the real cause") end)
end
''')
    r = http("GET", srv.url + "/raise")
    assert r.status_code == 500
    assert r.text.startswith("handled: initial.lua:4: the real cause"), r.text


def test_log_format_error_names_the_caller_line(h1mock):
    srv = h1mock('function registerRules()\n'
                 '  app.get("/", function()\n'
                 '    log.info("%d")\n'
                 '  end)\n'
                 'end\n')
    assert http("GET", srv.url + "/").status_code == 500
    srv.wait_log(r"initial\.lua:3: log\.info: bad argument")


# A view's hostile values: each is a 500 with a log line, and the server
# keeps serving.
HOSTILE_VIEWS = r'''
local bomb = setmetatable({}, {__tostring = function() error("tostring bomb") end})
function registerRules()
  app.get("/err_obj", function() error(bomb) end)
  app.get("/status_obj", function() return "x", bomb, {} end)
  app.get("/status_101", function() return "x", 101 end)
  app.get("/reason", function()
    local r = make_response("x")
    rawset(r, "_reason", "OK\r\nX-Injected: 1")
    rawset(r, "_reason_code", 200)
    return r
  end)
  app.get("/ok", function() return "ok" end)
end
'''


def test_error_object_with_failing_tostring_is_a_500(h1mock):
    srv = h1mock(HOSTILE_VIEWS)
    r = http("GET", srv.url + "/err_obj")
    assert r.status_code == 500
    srv.wait_log(r"error object is a table value")
    assert http("GET", srv.url + "/ok").text == "ok"


def test_status_that_is_a_hostile_table_is_a_500(h1mock):
    srv = h1mock(HOSTILE_VIEWS)
    assert http("GET", srv.url + "/status_obj").status_code == 500
    srv.wait_log(r"status must be a number from 200 to 999, not a table")
    assert http("GET", srv.url + "/ok").text == "ok"


def test_informational_status_from_a_view_is_refused(h1mock):
    srv = h1mock(HOSTILE_VIEWS)
    r = http("GET", srv.url + "/status_101")
    assert r.status_code == 500
    srv.wait_log(r"not 101")
    assert http("GET", srv.url + "/ok").text == "ok"


def test_reason_phrase_cannot_inject_headers(h1mock):
    srv = h1mock(HOSTILE_VIEWS)
    s = srv.connect()
    try:
        data = raw_exchange(s, b"GET /reason HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    finally:
        s.close()
    assert data.startswith(b"HTTP/1.1 500 ")
    assert b"X-Injected" not in data
    srv.wait_log(r"reason phrase must not hold control characters")
