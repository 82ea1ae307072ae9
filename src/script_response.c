/* script_response.c - the functions that build responses on purpose
 * (make_response, jsonify, redirect, abort), the HTTPException and
 * Response classes, and the fields of the runtime module `h1mock`. How a
 * view's return becomes a response is script_value.c's. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "script_int.h"
#include "script_json.h"

/* Normalizes the arguments like a view's return and pushes a Response. */
static int to_response(lua_State *L, int first, int n, const char *fn) {
  http_response_t r = {0};
  char err[300];
  int rc = script_normalize(L, first, n, 200, &r, err, sizeof err);
  if (rc == 0)
    script_response_push(L, &r);
  http_response_free(&r);
  if (rc)
    return luaL_error(L, "%s: %s", fn, err);
  return 1;
}

/* fault(kind): a Response the connection answers by misbehaving. */
static int fault_(lua_State *L) {
  size_t n;
  const char *kind = luaL_checklstring(L, 1, &n);
  int f = http_fault_number(kind, n);
  if (f == HTTP_FAULT_NONE)
    return luaL_error(L, "fault: unknown fault '%s' (reset, empty, random or malformed_chunk)",
                      kind);
  http_response_t r = {.status = 200, .fault = f};
  script_response_push(L, &r);
  return 1;
}

static int make_response(lua_State *L) {
  int n = lua_gettop(L);
  if (n == 0) {
    lua_pushliteral(L, "");
    n = 1;
  }
  return to_response(L, 1, n, "make_response");
}

static int jsonify(lua_State *L) {
  int n = lua_gettop(L);
  if (n == 0) {
    lua_newtable(L);
  } else if (n > 1) {
    /* Several values make an array, as Flask's jsonify(*args). */
    lua_createtable(L, n, 0);
    for (int i = 1; i <= n; i++) {
      lua_pushvalue(L, i);
      lua_rawseti(L, -2, i);
    }
  }
  int v = lua_gettop(L);
  if (lua_type(L, v) == LUA_TSTRING || lua_type(L, v) == LUA_TNUMBER ||
      lua_type(L, v) == LUA_TBOOLEAN) {
    /* A scalar is still JSON: encode it here, the normalizer would treat a
     * string as HTML. */
    http_response_t r = {0};
    char err[300];
    r.status = 200;
    int rc = script_json_encode(L, v, &r.body, err, sizeof err);
    if (rc == 0) {
      buf_putc(&r.body, '\n');
      http_response_header(&r, "Content-Type", 12, "application/json", 16);
      script_response_push(L, &r);
    }
    http_response_free(&r);
    if (rc)
      return luaL_error(L, "jsonify: %s", err);
    return 1;
  }
  return to_response(L, v, 1, "jsonify");
}

static int redirect(lua_State *L) {
  size_t n;
  const char *loc = luaL_checklstring(L, 1, &n);
  lua_Integer code = luaL_optinteger(L, 2, 302);
  luaL_argcheck(L, code >= 300 && code <= 399, 2, "a redirect status (300-399)");
  http_response_t r = {0};
  script_error_page(&r, (int)code, NULL);
  buf_reset(&r.body);
  buf_puts(&r.body, "<!doctype html>\n<html lang=en>\n<title>Redirecting</title>\n"
                    "<h1>Redirecting</h1>\n<p>This page moved to <a href=\"");
  script_html_escape(&r.body, loc);
  buf_puts(&r.body, "\">");
  script_html_escape(&r.body, loc);
  buf_puts(&r.body, "</a>.</p>\n");
  int rc = http_response_header(&r, "Location", 8, loc, n);
  if (rc == 0)
    script_response_push(L, &r);
  http_response_free(&r);
  if (rc)
    return luaL_error(L, "redirect: the location must not hold CR, LF or NUL");
  return 1;
}

static int abort_(lua_State *L) {
  if (script_is_response(L, 1)) {
    lua_createtable(L, 0, 2);
    lua_getfield(L, 1, "status_code");
    lua_setfield(L, -2, "code");
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, "response");
    lua_rawgetp(L, LUA_REGISTRYINDEX, &script_key_exception_mt);
    lua_setmetatable(L, -2);
    return lua_error(L);
  }
  lua_Integer code = luaL_checkinteger(L, 1);
  luaL_argcheck(L, code >= 400 && code <= 599, 1, "an HTTP error status (400-599)");
  script_exception_push(L, (int)code, luaL_optstring(L, 2, NULL));
  return lua_error(L);
}

static int exception_tostring(lua_State *L) {
  lua_getfield(L, 1, "code");
  lua_getfield(L, 1, "name");
  lua_getfield(L, 1, "description");
  lua_pushfstring(L, "%d %s: %s", (int)lua_tointeger(L, -3), lua_tostring(L, -2),
                  lua_isstring(L, -1) ? lua_tostring(L, -1) : "");
  return 1;
}

static int reason(lua_State *L) {
  lua_pushstring(L, http_reason((int)luaL_checkinteger(L, 1)));
  return 1;
}

void script_response_open(lua_State *L, int64_t started_at) {
  lua_newtable(L);
  lua_pushcfunction(L, exception_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "HTTPException");
  lua_setfield(L, -2, "__name");
  lua_pushliteral(L, "HTTPException");
  lua_setfield(L, -2, "__metatable"); /* getmetatable() cannot reach it */
  lua_rawsetp(L, LUA_REGISTRYINDEX, &script_key_exception_mt);

  /* The Response class is Lua (lua/h1mock.lua); C keeps its metatable and
   * constructor to recognise and build responses. */
  lua_getglobal(L, "require");
  lua_pushliteral(L, "h1mock");
  lua_call(L, 1, 1);
  lua_pushcfunction(L, reason);
  lua_setfield(L, -2, "reason");
  lua_pushliteral(L, H1MOCK_VERSION);
  lua_setfield(L, -2, "version");
  lua_pushinteger(L, (lua_Integer)started_at);
  lua_setfield(L, -2, "started_at");
  lua_pushcfunction(L, jsonify);
  lua_setfield(L, -2, "jsonify");
  lua_getfield(L, -1, "Response");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &script_key_response_mt);
  lua_getfield(L, -1, "new_response");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &script_key_response_new);
  lua_pop(L, 1);

  static const luaL_Reg globals[] = {
      {"make_response", make_response},
      {"jsonify", jsonify},
      {"redirect", redirect},
      {"abort", abort_},
      {"fault", fault_},
      {NULL, NULL},
  };
  lua_pushglobaltable(L);
  luaL_setfuncs(L, globals, 0);
  lua_pop(L, 1);
}
