"""lua/h1mock.d.lua (the LuaLS type stubs) against the running server.

A provision asks the sandbox which globals it holds and which keys its API
tables, request, responses, headers and error objects have; every one must be
declared in the stubs, and everything the stubs declare must exist, so the
stubs cannot silently fall behind the runtime (or run ahead of it).
The request object is a userdata whose fields cannot be listed: the server is
asked about each candidate name (those of the stubs, and those the C source
compares against), and a name exists when reading it does not raise.

README: "Provision reference".
"""

import json
import re

import pytest

from conftest import ROOT, http

STUBS = ROOT / "lua" / "h1mock.d.lua"

# What Lua 5.4 itself provides; lua-language-server knows these already.
LUA_GLOBALS = {
    "_G", "_VERSION", "assert", "collectgarbage", "dofile", "error", "getmetatable", "ipairs",
    "load", "loadfile", "next", "pairs", "pcall", "print", "rawequal", "rawget", "rawlen",
    "rawset", "require", "select", "setmetatable", "tonumber", "tostring", "type", "warn",
    "xpcall", "coroutine", "debug", "io", "math", "os", "package", "string", "table", "utf8",
}
LUA_LIBS = {
    "coroutine": {"close", "create", "isyieldable", "resume", "running", "status", "wrap",
                  "yield"},
    "math": {"abs", "acos", "asin", "atan", "ceil", "cos", "deg", "exp", "floor", "fmod", "huge",
             "log", "max", "maxinteger", "min", "mininteger", "modf", "pi", "rad", "random",
             "randomseed", "sin", "sqrt", "tan", "tointeger", "type", "ult"},
    "string": {"byte", "char", "dump", "find", "format", "gmatch", "gsub", "len", "lower",
               "match", "pack", "packsize", "rep", "reverse", "sub", "unpack", "upper"},
    "table": {"concat", "insert", "move", "pack", "remove", "sort", "unpack"},
    "utf8": {"char", "charpattern", "codepoint", "codes", "len", "offset"},
    "package": {"config", "cpath", "loaded", "loadlib", "path", "preload", "searchers",
                "searchpath"},
}
# Global tables of the h1mock API whose keys the stubs declare one by one.
API_TABLES = ["app", "json", "log", "store", "rest", "journal", "os", "http"]

INTROSPECT = r'''
local function keys(t)
  local out = setmetatable({}, json.array_mt)
  for k in pairs(t) do
    if type(k) == "string" and k:sub(1, 1) ~= "_" then out[#out + 1] = k end
  end
  table.sort(out)
  return out
end

-- the names among `names` that `read(name)` finds: no error and not nil
local function present(read, names, nil_counts)
  local out = setmetatable({}, json.array_mt)
  for _, n in ipairs(names) do
    local ok, v = pcall(read, n)
    if ok and (nil_counts or v ~= nil) then out[#out + 1] = n end
  end
  return out
end

local TABLES = {"app", "json", "log", "store", "rest", "journal", "os", "http",
                "coroutine", "math", "string", "table", "utf8", "package"}

function registerRules()
  app.register_error_handler(418, function(e) return {keys = keys(e)}, 200 end)
  app.get("/teapot", function() abort(418, "short and stout") end)
  app.get("/probe", function() return "probed" end)

  app.post("/introspect", function(req)
    local want = req.json
    local tables = {}
    for _, name in ipairs(TABLES) do
      local t = rawget(_G, name)
      tables[name] = type(t) == "table" and keys(t) or json.null
    end
    -- a JSON response: content_type, mimetype, json are then all set
    local resp = jsonify{a = 1}
    local empty = make_response("")
    return {
      globals = keys(_G),
      tables = tables,
      -- reading a missing request field raises; nil is a valid value
      request = present(function(n) return req[n] end, want.request, true),
      response_raw = keys(resp),
      response = present(function(n) return resp[n] end, want.response),
      -- a Headers object with no lines: only methods are non-nil
      headers = present(function(n) return empty.headers[n] end, want.headers),
    }
  end)

  app.get("/journal-entry", function()
    local found = journal.find{path = "/probe", limit = 1}
    return {count = #found, keys = found[1] and keys(found[1]) or json.empty_array}
  end)
end
'''


# --------------------------------------------------------------------------
# reading the stubs
# --------------------------------------------------------------------------

class Stubs:
    """What h1mock.d.lua declares: globals, fields of global tables, class fields."""

    def __init__(self, text):
        self.globals = set()
        self.fields = {}        # table or class variable -> set of names
        self.class_of = {}      # variable -> class name
        self.class_fields = {}  # class name -> set of ---@field names
        lines = text.splitlines()
        pending_class = None
        pending_type = None
        for line in lines:
            m = re.match(r"---@class ([\w.]+)", line)
            if m:
                pending_class = m.group(1)
                self.class_fields.setdefault(pending_class, set())
                continue
            m = re.match(r"---@field (\w+)", line)
            if m and pending_class:
                self.class_fields[pending_class].add(m.group(1))
                continue
            m = re.match(r"---@type ([\w.]+)", line)
            if m:
                pending_type = m.group(1)
                continue
            if line.startswith("--"):
                continue
            m = re.match(r"(local\s+)?(\w+)\s*=", line)
            if m:
                var = m.group(2)
                if not m.group(1):
                    self.globals.add(var)
                if pending_class:
                    self.class_of[var] = pending_class
                elif pending_type:
                    self.class_of[var] = pending_type
            m = re.match(r"function (\w+)\s*\(", line)
            if m:
                self.globals.add(m.group(1))
            m = re.match(r"function (\w+)[.:](\w+)\s*\(", line) or \
                re.match(r"(\w+)\.(\w+)\s*=", line)
            if m:
                self.fields.setdefault(m.group(1), set()).add(m.group(2))
            pending_class = pending_type = None

    def members(self, var):
        """Fields declared for a variable: assigned or defined functions plus its class's."""
        out = set(self.fields.get(var, set()))
        cls = self.class_of.get(var)
        if cls:
            out |= self.class_fields.get(cls, set())
            # methods are defined on the local that names the class
            for v, c in self.class_of.items():
                if c == cls:
                    out |= self.fields.get(v, set())
        return out

    def class_members(self, cls):
        out = set(self.class_fields.get(cls, set()))
        for v, c in self.class_of.items():
            if c == cls:
                out |= self.fields.get(v, set())
        return out


@pytest.fixture(scope="module")
def stubs():
    return Stubs(STUBS.read_text())


def candidates(path, pattern):
    """Names a source file mentions: candidates to ask the server about."""
    found = re.findall(pattern, (ROOT / path).read_text())
    return {n for m in found for n in (m if isinstance(m, tuple) else (m,)) if n}


@pytest.fixture
def runtime(h1mock, stubs):
    srv = h1mock(INTROSPECT)
    request_names = stubs.class_members("h1mock.Request") | candidates(
        "src/script_request.c", r'strcmp\(k(?:ey)?, "(\w+)"\)') | {"no_such_field"}
    response_names = stubs.class_members("h1mock.Response") | candidates(
        "lua/h1mock.lua", r'response_methods\.(\w+)|key == "(\w+)"') | {"no_such_field"}
    headers_names = stubs.class_members("h1mock.Headers") | candidates(
        "lua/h1mock.lua", r'headers_methods\.(\w+)') | {"no_such_method"}
    r = http("POST", srv.url + "/introspect", json={
        "request": sorted(request_names), "response": sorted(response_names),
        "headers": sorted(headers_names)})
    assert r.status_code == 200, srv.log
    return srv, r.json()


# --------------------------------------------------------------------------
# the parser itself, on a sample, so a broken parser cannot pass everything
# --------------------------------------------------------------------------

def test_stub_parser_reads_each_declaration_form():
    s = Stubs("---@meta _\n-- comment = 1\n---@class X\nx = {}\nfunction x.f(a) end\n"
              "x.g = nil\n---@class Y\n---@field a integer\n---@field b string\nlocal Y = {}\n"
              "function Y.m() end\n---@type Y\ny = nil\nfunction top() end\n")
    assert s.globals == {"x", "y", "top"}
    assert s.members("x") == {"f", "g"}
    assert s.class_members("Y") == {"a", "b", "m"}
    assert s.members("y") == {"a", "b", "m"}


def test_stubs_are_a_meta_file_that_is_not_embedded():
    text = STUBS.read_text()
    assert text.startswith("---@meta")
    assert "workspace" in text and "Lua 5.4" in text  # how to use it, at the top
    # only the runtime modules are compiled into the binary
    assert "h1mock.d.lua" not in (ROOT / "meson.build").read_text()


# --------------------------------------------------------------------------
# stubs against the runtime
# --------------------------------------------------------------------------

def test_every_global_is_declared(runtime, stubs):
    _, rt = runtime
    runtime_globals = set(rt["globals"])
    assert {"app", "request", "jsonify", "registerRules"} <= runtime_globals  # sanity
    undeclared = runtime_globals - LUA_GLOBALS - stubs.globals
    assert not undeclared, "globals missing from lua/h1mock.d.lua: %s" % sorted(undeclared)
    # and the stubs declare nothing the sandbox lacks (journal: see its own test)
    phantom = stubs.globals - runtime_globals - {"journal"}
    assert not phantom, "lua/h1mock.d.lua declares globals h1mock lacks: %s" % sorted(phantom)


@pytest.mark.parametrize("name", [t for t in API_TABLES if t != "journal"])
def test_every_api_table_key_is_declared(runtime, stubs, name):
    _, rt = runtime
    keys = rt["tables"][name]
    assert keys, "%s is not a table in the sandbox" % name
    assert set(keys) == stubs.members(name), (
        "%s: runtime has %s, the stubs declare %s" % (name, keys, sorted(stubs.members(name))))


@pytest.mark.parametrize("name", sorted(LUA_LIBS))
def test_standard_libraries_hold_nothing_undeclared(runtime, stubs, name):
    # What the server's Lua has beyond the Lua 5.4 manual (Debian's build keeps
    # the 5.3 math functions) must be declared in the stubs, and only that.
    _, rt = runtime
    have = set(rt["tables"][name])
    assert have, "%s is not a table in the sandbox" % name
    extra = have - LUA_LIBS[name]
    assert extra == stubs.members(name), (
        "%s: beyond Lua 5.4 the runtime has %s, the stubs declare %s"
        % (name, sorted(extra), sorted(stubs.members(name))))


def test_request_fields_are_declared(runtime, stubs):
    _, rt = runtime
    have = set(rt["request"])
    assert "method" in have and "no_such_field" not in have  # the probe tells them apart
    assert have == stubs.class_members("h1mock.Request")


def test_response_fields_are_declared(runtime, stubs):
    _, rt = runtime
    have = set(rt["response"]) | set(rt["response_raw"])
    assert "status_code" in have and "no_such_field" not in have
    assert have == stubs.class_members("h1mock.Response")


def test_headers_methods_are_declared(runtime, stubs):
    _, rt = runtime
    have = set(rt["headers"])
    assert "no_such_method" not in have
    assert have == stubs.class_members("h1mock.Headers")


def test_error_handler_argument_is_declared(h1mock, stubs):
    srv = h1mock(INTROSPECT)
    r = http("GET", srv.url + "/teapot")
    assert r.status_code == 200, srv.log
    assert set(r.json()["keys"]) == stubs.class_members("h1mock.HTTPException")


def test_journal_is_declared(runtime, stubs):
    srv, rt = runtime
    assert rt["tables"]["journal"] is not None, "the sandbox has no journal global"
    assert set(rt["tables"]["journal"]) == stubs.members("journal")
    assert http("GET", srv.url + "/probe").text == "probed"
    r = http("GET", srv.url + "/journal-entry")
    assert r.status_code == 200, srv.log
    entry = r.json()
    assert entry["count"] == 1
    assert set(entry["keys"]) == stubs.class_members("h1mock.JournalEntry")


# --------------------------------------------------------------------------
# the editor configuration shown to users, and the repository's own
# --------------------------------------------------------------------------

def luarc_from_stub_header():
    lines = []
    for line in STUBS.read_text().splitlines():
        if not line.startswith("--"):
            break
        lines.append(line[2:])
    text = "\n".join(lines)
    start, end = text.index("\n   {"), text.index("\n   }") + 5
    return json.loads(text[start:end])


@pytest.mark.parametrize("which", ["stub header", ".luarc.json"])
def test_luarc_points_at_the_stubs(which):
    conf = luarc_from_stub_header() if which == "stub header" else \
        json.loads((ROOT / ".luarc.json").read_text())
    assert conf["runtime"]["version"] == "Lua 5.4"
    assert conf["runtime"]["builtin"] == {"io": "disable", "debug": "disable", "os": "disable"}
    library = conf["workspace"]["library"]
    assert len(library) == 1 and library[0].endswith("lua/h1mock.d.lua")
    if which == ".luarc.json":
        assert (ROOT / library[0]).resolve() == STUBS.resolve()
