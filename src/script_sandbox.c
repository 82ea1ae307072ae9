/* script_sandbox.c - what a provision may reach: Lua's pure libraries, a
 * few os functions, text-only load, and require() limited to the
 * provisions directory and the runtime embedded in the binary. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lualib.h>

#include "buf.h"
#include "log.h"
#include "script_int.h"

/* load() with the mode forced to text: bytecode can crash the VM. */
static int load_text(lua_State *L) {
  lua_settop(L, 4);
  lua_pushliteral(L, "t");
  lua_replace(L, 3);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, 4, LUA_MULTRET);
  return lua_gettop(L);
}

/* coroutine.create/resume: a coroutine runs on the budget (and the
 * context) of whoever resumes it; Lua itself would give a new thread the
 * main thread's empty context, and a loop in it would never be stopped. */
static int co_create(lua_State *L) {
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  *(void **)lua_getextraspace(lua_tothread(L, -1)) = *(void **)lua_getextraspace(L);
  return 1;
}

static int co_resume(lua_State *L) {
  lua_State *co = lua_tothread(L, 1);
  luaL_argexpected(L, co != NULL, 1, "coroutine");
  *(void **)lua_getextraspace(co) = *(void **)lua_getextraspace(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

/* coroutine.wrap rebuilt on the two above, so it goes through them. */
static const char wrap_source[] = "local create, resume, pack, unpack = ...\n"
                                  "return function(f)\n"
                                  "  local co = create(f)\n"
                                  "  return function(...)\n"
                                  "    local r = pack(resume(co, ...))\n"
                                  "    if r[1] then return unpack(r, 2, r.n) end\n"
                                  "    error(r[2], 0)\n"
                                  "  end\n"
                                  "end\n";

static void wrap_coroutines(lua_State *L) {
  lua_getglobal(L, "coroutine");
  lua_getfield(L, -1, "create");
  lua_pushcclosure(L, co_create, 1);
  lua_setfield(L, -2, "create");
  lua_getfield(L, -1, "resume");
  lua_pushcclosure(L, co_resume, 1);
  lua_setfield(L, -2, "resume");
  if (luaL_loadbufferx(L, wrap_source, sizeof wrap_source - 1, "=coroutine.wrap", "t") != LUA_OK)
    lua_error(L);
  lua_getfield(L, -2, "create");
  lua_getfield(L, -3, "resume");
  lua_getglobal(L, "table");
  lua_getfield(L, -1, "pack");
  lua_getfield(L, -2, "unpack");
  lua_remove(L, -3);
  lua_call(L, 4, 1);
  lua_setfield(L, -2, "wrap");
  lua_pop(L, 1);
}

/* xpcall rebuilt on pcall. Lua calls a message handler before it unwinds,
 * from inside the function that raised: when that is the count hook
 * (the budget ran out where no yield is possible), hooks are off while the
 * handler runs, so no budget could stop a handler that loops, and the
 * server froze for good. Here the handler is called after pcall returned,
 * as ordinary code of the request, under its budget. Provisions have no
 * debug library, so the handler could not inspect the raising stack
 * anyway. It gets one argument and gives one result, as in Lua; when it
 * raises itself, xpcall returns false and "error in error handling: " with
 * its error, where Lua would call the handler again on its own error. */
static const char xpcall_source[] =
    "local pcall, select, type, error = ...\n"
    "local function finish(handler, ok, ...)\n"
    "  if ok then return true, ... end\n"
    "  local hok, v = pcall(handler, (...))\n"
    "  if hok then return false, v end\n"
    "  if type(v) == 'string' or type(v) == 'number' then\n"
    "    return false, 'error in error handling: ' .. v\n"
    "  end\n"
    "  return false, 'error in error handling'\n"
    "end\n"
    "return function(...)\n"
    "  local f, handler = ...\n"
    "  if type(handler) ~= 'function' then\n"
    "    local got = select('#', ...) < 2 and 'no value' or type(handler)\n"
    "    error(\"bad argument #2 to 'xpcall' (function expected, got \" .. got .. ')', 2)\n"
    "  end\n"
    "  return finish(handler, pcall(f, select(3, ...)))\n"
    "end\n";

static void replace_xpcall(lua_State *L) {
  if (luaL_loadbufferx(L, xpcall_source, sizeof xpcall_source - 1, "=xpcall", "t") != LUA_OK)
    lua_error(L);
  static const char *const upvalues[] = {"pcall", "select", "type", "error"};
  for (size_t i = 0; i < sizeof upvalues / sizeof upvalues[0]; i++)
    lua_getglobal(L, upvalues[i]);
  lua_call(L, 4, 1);
  lua_setglobal(L, "xpcall");
}

/* setmetatable without __gc: Lua runs finalizers with hooks off, so no
 * budget could stop one that loops, and lua_close would hang on it. */
static int setmetatable_no_gc(lua_State *L) {
  if (lua_istable(L, 2)) {
    lua_pushliteral(L, "__gc");
    if (lua_rawget(L, 2) != LUA_TNIL)
      return luaL_error(L, "setmetatable: __gc finalizers are not available to provisions");
    lua_pop(L, 1);
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

/* os.getenv without the admin API's settings: a provision (posted by
 * whoever may post) must not learn the token, and nil is what it gets for a
 * variable that is not set, so provisions that probe keep working. Names are
 * case-sensitive on Linux: exactly this prefix is hidden. */
#define HIDDEN_ENV_PREFIX "H1MOCK_ADMIN"

static int getenv_public(lua_State *L) {
  size_t len;
  const char *name = luaL_checklstring(L, 1, &len);
  if (len >= sizeof HIDDEN_ENV_PREFIX - 1 &&
      memcmp(name, HIDDEN_ENV_PREFIX, sizeof HIDDEN_ENV_PREFIX - 1) == 0) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

static int print_to_log(lua_State *L) {
  int n = lua_gettop(L);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 1; i <= n; i++) {
    size_t len;
    const char *s = luaL_tolstring(L, i, &len);
    if (i > 1)
      luaL_addchar(&b, '\t');
    luaL_addvalue(&b);
    (void)s;
    (void)len;
  }
  luaL_pushresult(&b);
  size_t len;
  const char *msg = lua_tolstring(L, -1, &len);
  buf_t line = BUF_INIT;
  log_info(lua_touserdata(L, lua_upvalueindex(1)), "%s",
           text_escape_str(&line, msg, len, LOG_MESSAGE_MAX, TEXT_ESCAPE_MESSAGE));
  buf_free(&line);
  return 0;
}

static int dump_to_buf(lua_State *L, const void *p, size_t len, void *ud) {
  (void)L;
  return buf_append(ud, p, len) ? 1 : 0;
}

/* Loads the embedded module `e` from the server's compiled copy (rt), or
 * compiles it and keeps the copy. Loads run on the loop thread. */
static int load_embedded(lua_State *L, struct script_runtime *rt, const struct script_embedded *e,
                         const char *chunkname) {
  size_t i = (size_t)(e - script_embedded);
  struct script_compiled *c = rt && i < SCRIPT_EMBEDDED_MAX ? &rt->compiled[i] : NULL;
  if (c && c->ready)
    return luaL_loadbufferx(L, c->code.data, c->code.len, chunkname, "b");
  int st = luaL_loadbufferx(L, e->text, e->len, chunkname, "t");
  if (st != LUA_OK || c == NULL)
    return st;
  /* Debug info stays in: tracebacks through the runtime keep their lines. */
  if (lua_dump(L, dump_to_buf, &c->code, 0) == 0)
    c->ready = true;
  else
    buf_free(&c->code);
  return LUA_OK;
}

static int embedded_loader(lua_State *L) {
  const struct script_embedded *e = lua_touserdata(L, lua_upvalueindex(1));
  struct script_runtime *rt = lua_touserdata(L, lua_upvalueindex(2));
  char name[128];
  const char *base = strncmp(e->name, "h1mock.", 7) == 0 ? e->name + 7 : e->name;
  snprintf(name, sizeof name, "@%s.lua", base);
  if (load_embedded(L, rt, e, name) != LUA_OK)
    return lua_error(L);
  lua_pushstring(L, e->name);
  lua_call(L, 1, 1);
  return 1;
}

static int valid_module_name(const char *s) {
  if (*s == '\0' || *s == '.' || strstr(s, "..") != NULL)
    return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
          *s == '_' || *s == '-' || *s == '.'))
      return 0;
  return 1;
}

/* package.searchers entry: DIR/name.lua, with dots as folders. */
static int dir_searcher(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  const char *dir = lua_tostring(L, lua_upvalueindex(1));
  if (dir == NULL) {
    lua_pushliteral(L, "no provisions directory");
    return 1;
  }
  if (!valid_module_name(name)) {
    lua_pushfstring(L, "'%s' is not a module name (letters, digits, '_', '-', '.')", name);
    return 1;
  }
  buf_t path = BUF_INIT, text = BUF_INIT;
  buf_printf(&path, "%s/", dir);
  for (const char *p = name; *p; p++)
    buf_putc(&path, *p == '.' ? '/' : *p);
  buf_puts(&path, ".lua");
  buf_putc(&path, '\0');
  FILE *f = fopen(path.data, "rb");
  if (f == NULL) {
    lua_pushfstring(L, "no file '%s'", path.data);
    buf_free(&path);
    return 1;
  }
  char chunk[8192];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
    buf_append(&text, chunk, n);
  fclose(f);
  char chunkname[300];
  const char *base = strrchr(path.data, '/');
  snprintf(chunkname, sizeof chunkname, "@%s", base ? base + 1 : path.data);
  int st = luaL_loadbufferx(L, text.data ? text.data : "", text.len, chunkname, "t");
  buf_free(&text);
  if (st != LUA_OK) {
    buf_free(&path);
    return luaL_error(L, "error loading module '%s': %s", name, lua_tostring(L, -1));
  }
  lua_pushstring(L, path.data);
  buf_free(&path);
  return 2;
}

static void open_lib(lua_State *L, const char *name, lua_CFunction f) {
  luaL_requiref(L, name, f, 1);
  lua_pop(L, 1);
}

void script_sandbox_open(lua_State *L, const char *dir, struct script_runtime *rt,
                         const log_t *lg) {
  open_lib(L, LUA_GNAME, luaopen_base);
  open_lib(L, LUA_LOADLIBNAME, luaopen_package);
  open_lib(L, LUA_COLIBNAME, luaopen_coroutine);
  open_lib(L, LUA_TABLIBNAME, luaopen_table);
  open_lib(L, LUA_STRLIBNAME, luaopen_string);
  open_lib(L, LUA_MATHLIBNAME, luaopen_math);
  open_lib(L, LUA_UTF8LIBNAME, luaopen_utf8);
  open_lib(L, LUA_OSLIBNAME, luaopen_os);

  wrap_coroutines(L);
  replace_xpcall(L);

  lua_pushglobaltable(L);
  lua_pushnil(L);
  lua_setfield(L, -2, "dofile");
  lua_pushnil(L);
  lua_setfield(L, -2, "loadfile");
  lua_getfield(L, -1, "load");
  lua_pushcclosure(L, load_text, 1);
  lua_setfield(L, -2, "load");
  lua_pushlightuserdata(L, (void *)lg);
  lua_pushcclosure(L, print_to_log, 1);
  lua_setfield(L, -2, "print");
  lua_getfield(L, -1, "setmetatable");
  lua_pushcclosure(L, setmetatable_no_gc, 1);
  lua_setfield(L, -2, "setmetatable");

  /* os: the clock and the environment, nothing that changes the system. */
  lua_getfield(L, -1, "os");
  lua_newtable(L);
  static const char *const keep[] = {"time", "clock", "date", "getenv", "difftime"};
  for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
    lua_getfield(L, -2, keep[i]);
    lua_setfield(L, -2, keep[i]);
  }
  lua_getfield(L, -2, "getenv");
  lua_pushcclosure(L, getenv_public, 1);
  lua_setfield(L, -2, "getenv");
  lua_setfield(L, -3, "os");
  lua_pop(L, 1);

  lua_getfield(L, -1, "string");
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");
  lua_pop(L, 1);

  lua_getfield(L, -1, "package");
  int pkg = lua_gettop(L);
  lua_pushnil(L);
  lua_setfield(L, pkg, "loadlib");
  lua_pushliteral(L, "");
  lua_setfield(L, pkg, "cpath");
  lua_pushstring(L, dir ? dir : "");
  lua_pushliteral(L, "/?.lua");
  lua_concat(L, 2);
  lua_setfield(L, pkg, "path");
  lua_pushnil(L);
  lua_setfield(L, pkg, "searchpath");
  /* Searchers: preload (which holds the embedded runtime), then DIR. */
  lua_getfield(L, pkg, "searchers");
  lua_createtable(L, 2, 0);
  lua_rawgeti(L, -2, 1);
  lua_rawseti(L, -2, 1);
  lua_pushstring(L, dir);
  lua_pushcclosure(L, dir_searcher, 1);
  lua_rawseti(L, -2, 2);
  lua_setfield(L, pkg, "searchers");
  lua_pop(L, 1);
  lua_getfield(L, pkg, "preload");
  for (const struct script_embedded *e = script_embedded; e->name; e++) {
    lua_pushlightuserdata(L, (void *)e);
    lua_pushlightuserdata(L, rt);
    lua_pushcclosure(L, embedded_loader, 2);
    lua_setfield(L, -2, e->name);
  }
  lua_pop(L, 3); /* preload, package, globals */
}
