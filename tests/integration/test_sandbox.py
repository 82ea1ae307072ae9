"""The Lua sandbox.

Each check is a Lua function in the provision that returns true or a string
saying what is wrong; the view /check/<name> reports PASS / FAIL / ERR.

README: "The sandbox".
"""

import subprocess

import pytest

from conftest import BIN, http

SANDBOX = r'''
local mod_at_load = require("mymod")
checks = {}

local function raises_unknown(fn, name)
  local ok, err = pcall(fn)
  if ok then return "reading " .. name .. " did not raise" end
  if not tostring(err):find("unknown global '" .. name .. "'", 1, true) then
    return "unexpected message: " .. tostring(err)
  end
  return true
end

checks.io_absent = function()
  if rawget(_G, "io") ~= nil then return "io is present" end
  return raises_unknown(function() return io end, "io")
end

checks.debug_absent = function()
  if rawget(_G, "debug") ~= nil then return "debug is present" end
  return raises_unknown(function() return debug end, "debug")
end

checks.no_io_through_package = function()
  local p = rawget(_G, "package")
  if p ~= nil and type(p.loaded) == "table" then
    for _, name in ipairs({"io", "debug"}) do
      if p.loaded[name] ~= nil then return "package.loaded." .. name .. " is reachable" end
    end
  end
  for _, name in ipairs({"io", "debug"}) do
    local ok, m = pcall(require, name)
    if ok and type(m) == "table" and (m.open or m.getinfo or m.sethook) then
      return "require('" .. name .. "') gives the real module"
    end
  end
  return true
end

checks.os_limited = function()
  for _, k in ipairs({"time", "clock", "date", "getenv", "difftime"}) do
    if type(os[k]) ~= "function" then return "os." .. k .. " is " .. type(os[k]) end
  end
  for _, k in ipairs({"execute", "exit", "remove", "rename", "tmpname", "setlocale"}) do
    if os[k] ~= nil then return "os." .. k .. " is present" end
  end
  local allowed = {time = true, clock = true, date = true, getenv = true, difftime = true}
  for k in pairs(os) do
    if not allowed[k] then return "os has " .. tostring(k) end
  end
  local ok = pcall(function() return os.execute("true") end)
  if ok then return "calling os.execute did not fail" end
  return true
end

checks.os_works = function()
  if math.type(os.time()) ~= "integer" then return "os.time() not an integer" end
  if os.time() < 1600000000 then return "os.time() implausible" end
  if os.date("!%Y-%m-%d", 0) ~= "1970-01-01" then return "os.date: " .. os.date("!%Y-%m-%d", 0) end
  if os.difftime(5, 3) ~= 2 then return "os.difftime" end
  if type(os.clock()) ~= "number" then return "os.clock" end
  if os.getenv("H1MOCK_SANDBOX_T") ~= "hello sandbox" then
    return "os.getenv: " .. tostring(os.getenv("H1MOCK_SANDBOX_T"))
  end
  if os.getenv("SURELY_NOT_SET_ANYWHERE_42") ~= nil then return "os.getenv of unset" end
  return true
end

checks.package_loadlib_nil = function()
  local p = rawget(_G, "package")
  if p ~= nil and p.loadlib ~= nil then return "package.loadlib is present" end
  return true
end

checks.dofile_loadfile_nil = function()
  if rawget(_G, "dofile") ~= nil then return "dofile is present" end
  if rawget(_G, "loadfile") ~= nil then return "loadfile is present" end
  return true
end

checks.load_text = function()
  local f, err = load("return 1 + 2")
  if not f then return "load failed: " .. tostring(err) end
  if f() ~= 3 then return "wrong result" end
  local g = load("return x * 2", "chunk", "t", {x = 21})
  if not g or g() ~= 42 then return "load with env failed" end
  local h, herr = load("return (")
  if h ~= nil or not herr then return "syntax error not reported" end
  return true
end

local function binary_refused(...)
  local ok, f, err = pcall(load, ...)
  if ok and f ~= nil then return false, "binary chunk loaded" end
  local msg = ok and err or f
  if not tostring(msg):find("binary", 1, true) then return false, "message: " .. tostring(msg) end
  return true
end

checks.load_binary_refused = function()
  local chunk = "\27LuaT\0\25\147\r\n\26\n\4\8\8\120\86\0\0\0\0\0\0\0\0\0\0\0\40\119\64\1"
  local cases = {
    {chunk},
    {chunk, "=b", "b"},
    {chunk, "=bt", "bt"},
    {"\27Lua"},
  }
  for i, args in ipairs(cases) do
    local ok, why = binary_refused(table.unpack(args))
    if not ok then return "case " .. i .. ": " .. why end
  end
  -- a reader function handing out the chunk in pieces
  local pieces = {"\27", "Lua", chunk:sub(5)}
  local n = 0
  local ok, why = binary_refused(function() n = n + 1; return pieces[n] end)
  if not ok then return "reader: " .. why end
  return true
end

checks.string_dump_absent = function()
  if string.dump ~= nil then return "string.dump is present" end
  if ("x").dump ~= nil then return "string metatable still has dump" end
  return true
end

checks.require_local_module = function()
  local m = require("mymod")
  if type(m) ~= "table" or m.answer ~= 42 then return "mymod: " .. tostring(m) end
  if m.twice(4) ~= 8 then return "mymod.twice" end
  if m ~= mod_at_load then return "require is not cached (different table than at load)" end
  return true
end

checks.require_missing_module = function()
  local ok, err = pcall(require, "no_such_module_xyz")
  if ok then return "require of a missing module succeeded" end
  if not tostring(err):find("no_such_module_xyz", 1, true) then return "message: " .. tostring(err) end
  return true
end

function registerRules()
  app.get("/check/<name>", function(req, name)
    local fn = checks[name]
    if fn == nil then return "NO SUCH CHECK", 404 end
    local ok, res = pcall(fn)
    if not ok then return "ERR " .. tostring(res) end
    if res == true then return "PASS" end
    return "FAIL " .. tostring(res)
  end)
  app.get("/top", function() return tostring(mod_at_load.answer) end)
end
'''

MYMOD = 'local M = {answer = 42}\nfunction M.twice(x) return 2 * x end\nreturn M\n'

CHECKS = ["io_absent", "debug_absent", "no_io_through_package", "os_limited", "os_works",
          "package_loadlib_nil", "dofile_loadfile_nil", "load_text", "load_binary_refused",
          "string_dump_absent", "require_local_module", "require_missing_module"]




@pytest.mark.parametrize("name", CHECKS)
def test_sandbox(h1mock, name):
    srv = h1mock(SANDBOX, files={"mymod.lua": MYMOD}, env={"H1MOCK_SANDBOX_T": "hello sandbox"})
    r = http("GET", srv.url + "/check/" + name)
    assert r.status_code == 200, r.text
    assert r.text == "PASS"


def test_require_at_load_time(h1mock):
    srv = h1mock(SANDBOX, files={"mymod.lua": MYMOD}, env={"H1MOCK_SANDBOX_T": "x"})
    srv.wait_log(r"provision 'initial' loaded: 2 rules")
    assert http("GET", srv.url + "/top").text == "42"


def test_check_reports_missing_module(tmp_path):
    f = tmp_path / "needs.lua"
    f.write_text('local m = require("definitely_missing_mod")\n'
                 'function registerRules() app.get("/", function() return "x" end) end\n')
    p = subprocess.run([BIN, "--check", f.name], capture_output=True, text=True, timeout=15,
                       stdin=subprocess.DEVNULL, cwd=str(tmp_path))
    assert p.returncode == 1
    assert p.stderr.startswith("needs.lua:1: "), p.stderr
    assert "definitely_missing_mod" in p.stderr


def test_io_at_load_time_is_a_load_error(h1mock):
    srv = h1mock('local f = io.open("/etc/passwd")\n'
                 'function registerRules() app.get("/", function() return "x" end) end\n')
    # (the unknown-global check covers views and registerRules; at the top level of the
    # chunk Lua's own "attempt to index a nil value (global 'io')" is fine too)
    srv.wait_log(r"ERROR .*initial\.lua:1:.*'io'")
    # fell back to the built-in default: its homepage, not the provision's "x"
    r = http("GET", srv.url + "/")
    assert r.status_code == 200 and r.text != "x"
    assert "h1mock" in r.text


def test_own_module_named_like_a_runtime_module_is_not_shadowed(h1mock):
    srv = h1mock('local d = require("default")\n'
                 'function registerRules() app.get("/", function() return d.greeting end) end\n',
                 files={"default.lua": 'return {greeting = "mine"}\n'})
    r = http("GET", srv.url + "/")
    assert r.status_code == 200 and r.text == "mine"


FINALIZERS = r'''
function registerRules()
  app.get("/arm-request", function(req)
    local mt = getmetatable(req)
    return {kind = type(mt), headers = type(getmetatable(req.headers))}
  end)
  app.get("/arm-array", function(req)
    rawset(json.array_mt, "__gc", function() log.info("FINALIZER RAN") end)
    return "armed"
  end)
  app.get("/list", function(req)
    local l = req.args_list("a")
    collectgarbage()
    return {n = #l}
  end)
end
'''


def test_provisions_cannot_get_finalizers_onto_objects_h1mock_makes(h1mock):
    """A finalizer runs with hooks off: no budget could stop a loop in it,
    and it may run on the thread that closes a retired provision. The
    metatables h1mock sets are out of reach (getmetatable gives a string)
    or cleaned of __gc before use."""
    srv = h1mock(FINALIZERS)
    assert http("GET", srv.url + "/arm-request").json() == {"kind": "string", "headers": "string"}
    assert http("GET", srv.url + "/arm-array").text == "armed"
    for _ in range(20):
        assert http("GET", srv.url + "/list?a=1").json() == {"n": 1}
    r = http("POST", srv.admin_url + "/app/v1/provision/other",
             data='function registerRules() app.get("/", function() return "x" end) end')
    assert r.status_code == 201  # the armed state is retired and closed
    assert http("GET", srv.url + "/").text == "x"
    srv.stop()
    assert "FINALIZER RAN" not in srv.log


# A provision that changes the metatables it can reach, or asks for a
# finalizer, cannot break dispatch or the server's exit.
HOSTILE_META = r'''
function registerRules()
  app.get("/newindex", function()
    setmetatable(_G, {__newindex = function() error("no globals for you") end,
                      __index = function(_, k) error("unknown global " .. k) end})
    return "set"
  end)
  app.get("/exc_mt", function()
    local ok, e = pcall(abort, 404)
    return tostring(getmetatable(e))
  end)
  app.get("/ok", function() return "ok" end)
end
'''


def test_globals_metatable_of_the_provision_does_not_break_dispatch(h1mock):
    srv = h1mock(HOSTILE_META)
    assert http("GET", srv.url + "/newindex").text == "set"
    for _ in range(3):
        assert http("GET", srv.url + "/ok").text == "ok"


def test_exception_metatable_is_hidden(h1mock):
    srv = h1mock(HOSTILE_META)
    assert http("GET", srv.url + "/exc_mt").text == "HTTPException"


def test_finalizers_are_refused(h1mock):
    # Lua runs __gc with hooks off: no budget could stop an endless one, and
    # closing the provision would hang on it.
    srv = h1mock('keep = setmetatable({}, {__gc = function() while true do end end})\n'
                 'function registerRules() end\n')
    srv.wait_log(r"initial\.lua:1: setmetatable: __gc finalizers are not available")
    assert http("GET", srv.url + "/nothing").status_code == 404
    assert srv.stop(timeout=15) == 0
