"""Coroutines a provision creates itself: they work as in plain Lua, run on
the budget of the request (or load) that resumes them, and cannot sleep.

README: "The instruction budget", "sleep".
"""

import subprocess
import time

from conftest import BIN, http

CO = r'''
function registerRules()
  app.get("/gen", function()
    local gen = coroutine.wrap(function() for i = 1, 3 do coroutine.yield(i * 10) end end)
    return tostring(gen() + gen() + gen())
  end)
  app.get("/status", function()
    local co = coroutine.create(function(a) local b = coroutine.yield(a + 1) return b * 2 end)
    local _, x = coroutine.resume(co, 1)
    local _, y = coroutine.resume(co, 5)
    return x .. "," .. y .. "," .. coroutine.status(co)
  end)
  app.get("/wrapped_error", function()
    local ok, err = pcall(coroutine.wrap(function() error("inner trouble") end))
    return tostring(ok) .. " " .. err
  end)
  app.get("/spin", function() coroutine.wrap(function() while true do end end)() end)
  app.get("/spin_caught", function()
    local ok = pcall(coroutine.wrap(function() while true do end end))
    return "survived " .. tostring(ok)
  end)
  app.get("/sleepy", function()
    local ok, err = coroutine.resume(coroutine.create(function() sleep(0.01) end))
    return tostring(ok) .. " " .. err
  end)
  app.get("/cheap", function() return "cheap" end)
end
'''


def test_generators_and_resume_work_as_in_lua(h1mock):
    srv = h1mock(CO)
    assert http("GET", srv.url + "/gen").text == "60"
    assert http("GET", srv.url + "/status").text == "2,10,dead"
    r = http("GET", srv.url + "/wrapped_error")
    assert r.text.startswith("false initial.lua:")
    assert "inner trouble" in r.text


def test_loop_inside_a_coroutine_is_stopped_by_the_budget(h1mock):
    srv = h1mock(CO)
    for path in ("/spin", "/spin_caught"):
        t0 = time.monotonic()
        r = http("GET", srv.url + path, timeout=30)
        assert r.status_code == 500, (path, r.text)
        assert "survived" not in r.text
        assert time.monotonic() - t0 < 10
    srv.wait_log(r"ERROR GET /spin: .*stopped at initial\.lua:\d+: it ran past the instruction budget")
    assert http("GET", srv.url + "/cheap").text == "cheap"


def test_sleep_inside_a_coroutine_is_refused(h1mock):
    srv = h1mock(CO)
    r = http("GET", srv.url + "/sleepy")
    assert r.status_code == 200
    assert r.text.startswith("false initial.lua:")
    assert "sleep: not allowed inside a coroutine" in r.text


def test_loop_inside_a_coroutine_at_load_is_a_load_error(tmp_path):
    f = tmp_path / "spin.lua"
    f.write_text("coroutine.wrap(function()\n  while true do end\nend)()\n"
                 "function registerRules() end\n")
    p = subprocess.run([BIN, "--check", str(f)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1
    assert p.stderr.startswith(str(f) + ":2: stopped: the instruction budget"), p.stderr
