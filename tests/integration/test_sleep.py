"""sleep(seconds) suspends only the calling request.

README: "sleep".
"""

import subprocess
import threading
import time


from conftest import BIN, read_response, http

SLEEPY = r'''
function registerRules()
  app.get("/sleep/<float:s>", function(req, s)
    local t0 = os.clock()
    log.info("sleeping %s q=%s", s, request.args.q or "-")
    sleep(s)
    return {slept = s, path = request.path, same = rawequal(req, request), q = request.args.q}
  end)
  app.get("/zero", function() sleep(0); return "zero ok" end)
  app.get("/int", function() sleep(0); sleep(1 - 1); return "int ok" end)
  app.get("/neg", function() sleep(-1); return "negative accepted" end)
  app.get("/str", function() sleep("abc"); return "string accepted" end)
  app.get("/tbl", function() sleep({}); return "table accepted" end)
  app.get("/none", function() sleep(); return "nil accepted" end)
  app.get("/twice", function(req)
    sleep(0.05)
    local a = request.path
    sleep(0.05)
    return a .. " " .. request.path .. " " .. tostring(rawequal(req, request))
  end)
  app.get("/cheap", function() return "cheap" end)
end
'''




def timed_get(url, out, key):
    t0 = time.monotonic()
    try:
        r = http("GET", url)
        out[key] = (r.status_code, r.text, r, t0, time.monotonic())
    except Exception as e:
        out[key] = (None, repr(e), None, t0, time.monotonic())


def test_two_concurrent_sleeps_overlap(h1mock):
    srv = h1mock(SLEEPY)
    assert http("GET", srv.url + "/cheap").text == "cheap"  # warm
    out = {}
    threads = [threading.Thread(target=timed_get, args=(srv.url + "/sleep/0.5?q=%d" % i, out, i))
               for i in (1, 2)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    total = time.monotonic() - t0
    for i in (1, 2):
        st, text, r, start, end = out[i]
        assert st == 200, text
        assert r.json() == {"slept": 0.5, "path": "/sleep/0.5", "same": True, "q": str(i)}
        assert end - start >= 0.45, "request %d took only %.3fs" % (i, end - start)
    assert total < 0.9, "two 0.5 s sleeps took %.3fs together" % total


def test_cheap_request_answered_while_others_sleep(h1mock):
    srv = h1mock(SLEEPY)
    out = {}
    threads = [threading.Thread(target=timed_get, args=(srv.url + "/sleep/0.8?q=%d" % i, out, i))
               for i in (1, 2)]
    for t in threads:
        t.start()
    for i in (1, 2):  # both are asleep in the view
        srv.wait_log(r"sleeping 0\.8 q=%d" % i)
    t0 = time.monotonic()
    r = http("GET", srv.url + "/cheap")
    cheap_done = time.monotonic()
    for t in threads:
        t.join(15)
    assert r.status_code == 200 and r.text == "cheap"
    assert cheap_done - t0 < 0.3, "cheap request took %.3fs" % (cheap_done - t0)
    for i in (1, 2):
        st, text, _, start, end = out[i]
        assert st == 200, text
        assert cheap_done < end, "cheap request was not answered before the sleepers"


def test_sleep_zero(h1mock):
    srv = h1mock(SLEEPY)
    r = http("GET", srv.url + "/zero")
    assert r.status_code == 200 and r.text == "zero ok"
    r = http("GET", srv.url + "/int")
    assert r.status_code == 200 and r.text == "int ok"


def test_sleep_bad_arguments_500(h1mock):
    srv = h1mock(SLEEPY)
    for path in ("/neg", "/str", "/tbl", "/none"):
        t0 = time.monotonic()
        r = http("GET", srv.url + path)
        assert r.status_code == 500, "%s: %d %r" % (path, r.status_code, r.text)
        assert "accepted" not in r.text
        assert time.monotonic() - t0 < 2.0
    srv.wait_log(r"ERROR ")
    assert http("GET", srv.url + "/cheap").text == "cheap"


def test_request_global_intact_after_sleep(h1mock):
    srv = h1mock(SLEEPY)
    out = {}
    paths = {"a": "/sleep/0.3?q=a", "b": "/sleep/0.1?q=b", "c": "/twice"}
    threads = [threading.Thread(target=timed_get, args=(srv.url + p, out, k))
               for k, p in paths.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert out["a"][2] is not None and out["a"][2].json() == \
        {"slept": 0.3, "path": "/sleep/0.3", "same": True, "q": "a"}
    assert out["b"][2] is not None and out["b"][2].json() == \
        {"slept": 0.1, "path": "/sleep/0.1", "same": True, "q": "b"}
    assert out["c"][1] == "/twice /twice true"


def test_pipelined_after_sleeping_request_in_order(h1mock):
    srv = h1mock(SLEEPY)
    s = srv.connect(timeout=10)
    try:
        t0 = time.monotonic()
        s.sendall(b"GET /sleep/0.3?q=first HTTP/1.1\r\nHost: t\r\n\r\n"
                  b"GET /cheap HTTP/1.1\r\nHost: t\r\n\r\n"
                  b"GET /sleep/0.1?q=third HTTP/1.1\r\nHost: t\r\n\r\n")
        st1, _, b1 = read_response(s, timeout=10)
        t1 = time.monotonic()
        st2, _, b2 = read_response(s, timeout=10)
        st3, _, b3 = read_response(s, timeout=10)
    finally:
        s.close()
    assert st1 == 200 and b'"q":"first"' in b1, b1
    assert t1 - t0 >= 0.28
    assert st2 == 200 and b2 == b"cheap"
    assert st3 == 200 and b'"q":"third"' in b3, b3


def test_sleep_outside_request_raises(tmp_path):
    f = tmp_path / "sl.lua"
    f.write_text('function registerRules()\n'
                 '  sleep(0.01)\n'
                 '  app.get("/", function() return "x" end)\n'
                 'end\n')
    p = subprocess.run([BIN, "--check", f.name], capture_output=True, text=True, timeout=15,
                       stdin=subprocess.DEVNULL, cwd=str(tmp_path))
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert p.stderr.startswith("sl.lua:2: "), p.stderr


def test_sleep_at_load_logged_and_default_served(h1mock):
    srv = h1mock('sleep(0.01)\nfunction registerRules() app.get("/x", function() return "x" end) end\n')
    srv.wait_log(r"ERROR .*initial\.lua:1:")
    assert http("GET", srv.url + "/x").status_code == 404
