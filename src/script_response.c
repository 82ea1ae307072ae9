/* script_response.c - from what a view returns to an http_response_t, in
 * one place (Flask's return conventions), and the functions that build
 * responses on purpose: make_response, jsonify, redirect, abort. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "script_int.h"
#include "script_json.h"

const char script_key_response_mt;
const char script_key_exception_mt;
const char script_key_response_new;

static const char *default_description(int code) {
  switch (code) {
  case 400: return "The server could not understand this request.";
  case 404: return "Nothing is mapped to this URL in the active provision.";
  case 405: return "This URL does not accept the method of the request.";
  case 308: return "This URL lives at the same address with a trailing slash.";
  case 500: return "The provision failed while answering; the server log says where.";
  default: return NULL;
  }
}

static void html_escaped(buf_t *b, const char *s) {
  for (; *s; s++) {
    switch (*s) {
    case '<': buf_puts(b, "&lt;"); break;
    case '>': buf_puts(b, "&gt;"); break;
    case '&': buf_puts(b, "&amp;"); break;
    case '"': buf_puts(b, "&quot;"); break;
    default: buf_putc(b, *s);
    }
  }
}

void script_error_page(http_response_t *out, int code, const char *description) {
  http_response_reset(out);
  out->status = code;
  const char *reason = http_reason(code);
  if (description == NULL)
    description = default_description(code);
  http_response_header(out, "Content-Type", 12, "text/html; charset=utf-8", 24);
  buf_printf(&out->body, "<!doctype html>\n<html lang=en>\n<title>%d %s</title>\n<h1>%s</h1>\n",
             code, reason, reason);
  if (description) {
    buf_puts(&out->body, "<p>");
    html_escaped(&out->body, description);
    buf_puts(&out->body, "</p>\n");
  }
}

void script_exception_push(lua_State *L, int code, const char *description) {
  if (description == NULL)
    description = default_description(code);
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, code);
  lua_setfield(L, -2, "code");
  lua_pushstring(L, http_reason(code));
  lua_setfield(L, -2, "name");
  if (description) {
    lua_pushstring(L, description);
    lua_setfield(L, -2, "description");
  }
  lua_rawgetp(L, LUA_REGISTRYINDEX, &script_key_exception_mt);
  lua_setmetatable(L, -2);
}

int script_exception_code(lua_State *L, int idx) {
  if (!lua_istable(L, idx) || !lua_getmetatable(L, idx))
    return 0;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &script_key_exception_mt);
  bool is = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  if (!is)
    return 0;
  lua_pushliteral(L, "code");
  lua_rawget(L, idx < 0 ? idx - 1 : idx);
  int code = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  return code > 0 ? code : 500;
}

static bool is_response(lua_State *L, int idx) {
  if (!lua_istable(L, idx) || !lua_getmetatable(L, idx))
    return false;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &script_key_response_mt);
  bool is = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return is;
}

static int header_pair(lua_State *L, int name_idx, int value_idx, http_response_t *out, char *err,
                       size_t errlen) {
  size_t nl, vl;
  const char *name = lua_tolstring(L, name_idx, &nl);
  if (name == NULL || lua_type(L, name_idx) != LUA_TSTRING) {
    snprintf(err, errlen, "a header name must be a string, not a %s", luaL_typename(L, name_idx));
    return -EINVAL;
  }
  int vt = lua_type(L, value_idx);
  if (vt != LUA_TSTRING && vt != LUA_TNUMBER && vt != LUA_TBOOLEAN) {
    snprintf(err, errlen, "header '%s' has a %s value; use a string or a number", name,
             luaL_typename(L, value_idx));
    return -EINVAL;
  }
  const char *value = luaL_tolstring(L, value_idx, &vl);
  int rc = http_response_header(out, name, nl, value, vl);
  lua_pop(L, 1);
  if (rc == -EINVAL)
    snprintf(err, errlen,
             "header '%s' is not allowed: a name must be a token and a value must "
             "not hold CR, LF or NUL",
             name);
  else if (rc)
    snprintf(err, errlen, "out of memory");
  return rc;
}

/* Headers from a table: {name = value}, {name = {v1, v2}} or a list of
 * pairs {{name, value}, ...}. */
static int apply_headers(lua_State *L, int idx, http_response_t *out, char *err, size_t errlen) {
  if (!lua_istable(L, idx)) {
    snprintf(err, errlen, "headers must be a table, not a %s", luaL_typename(L, idx));
    return -EINVAL;
  }
  luaL_checkstack(L, 6, NULL);
  int rc = 0;
  lua_pushnil(L);
  while (rc == 0 && lua_next(L, idx)) {
    int k = lua_gettop(L) - 1, v = lua_gettop(L);
    if (lua_type(L, k) == LUA_TNUMBER && lua_istable(L, v)) {
      lua_rawgeti(L, v, 1);
      lua_rawgeti(L, v, 2);
      rc = header_pair(L, -2, -1, out, err, errlen);
      lua_pop(L, 2);
    } else if (lua_istable(L, v)) {
      lua_Integer n = (lua_Integer)lua_rawlen(L, v);
      for (lua_Integer i = 1; rc == 0 && i <= n; i++) {
        lua_rawgeti(L, v, i);
        rc = header_pair(L, k, lua_gettop(L), out, err, errlen);
        lua_pop(L, 1);
      }
    } else {
      rc = header_pair(L, k, v, out, err, errlen);
    }
    lua_pop(L, 1);
  }
  if (rc)
    lua_pop(L, 1); /* the key lua_next left */
  return rc;
}

/* A reason phrase goes into the status line: no control characters. */
static int set_reason(http_response_t *out, const char *reason, char *err, size_t errlen) {
  buf_reset(&out->reason);
  for (const char *p = reason; *p; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f) {
      snprintf(err, errlen, "the reason phrase must not hold control characters (CR, LF, ...)");
      return -EINVAL;
    }
  return buf_puts(&out->reason, reason);
}

static int set_status(lua_State *L, int idx, http_response_t *out, char *err, size_t errlen) {
  if (lua_type(L, idx) == LUA_TSTRING) {
    /* "201 CREATED": the number and a reason of the view's choosing. */
    const char *s = lua_tostring(L, idx);
    char *end;
    long code = strtol(s, &end, 10);
    if (end == s || code < 200 || code > 999) {
      snprintf(err, errlen, "status '%.100s' does not start with a number from 200 to 999", s);
      return -EINVAL;
    }
    while (*end == ' ')
      end++;
    out->status = (int)code;
    buf_reset(&out->reason);
    return set_reason(out, end, err, errlen);
  }
  int isint;
  lua_Integer code = lua_tointegerx(L, idx, &isint);
  if (!isint || code < 200 || code > 999) {
    /* 1xx would announce a second response that never comes. */
    if (isint)
      snprintf(err, errlen, "status must be a number from 200 to 999, not %lld", (long long)code);
    else
      snprintf(err, errlen, "status must be a number from 200 to 999, not a %s",
               luaL_typename(L, idx));
    return -EINVAL;
  }
  out->status = (int)code;
  buf_reset(&out->reason);
  return 0;
}

/* Pushes t[key] without metamethods: these are the object's own fields. */
static int raw_field(lua_State *L, int t, const char *key) {
  lua_pushstring(L, key);
  return lua_rawget(L, t < 0 ? t - 1 : t);
}

static int from_response_object(lua_State *L, int idx, http_response_t *out, char *err,
                                size_t errlen) {
  raw_field(L, idx, "status_code");
  int rc = set_status(L, -1, out, err, errlen);
  lua_pop(L, 1);
  if (rc)
    return rc;
  if (raw_field(L, idx, "_reason") == LUA_TSTRING) {
    raw_field(L, idx, "_reason_code");
    if (lua_tointeger(L, -1) == out->status)
      rc = set_reason(out, lua_tostring(L, -2), err, errlen);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  if (rc)
    return rc;
  raw_field(L, idx, "data");
  size_t n;
  const char *data = lua_tolstring(L, -1, &n);
  if (data == NULL) {
    snprintf(err, errlen, "response.data must be a string, not a %s", luaL_typename(L, -1));
    lua_pop(L, 1);
    return -EINVAL;
  }
  rc = buf_append(&out->body, data, n);
  lua_pop(L, 1);
  if (rc)
    return rc;
  raw_field(L, idx, "headers");
  if (lua_istable(L, -1)) {
    raw_field(L, -1, "_list");
    rc = lua_istable(L, -1) ? apply_headers(L, lua_gettop(L), out, err, errlen)
                            : apply_headers(L, lua_gettop(L) - 1, out, err, errlen);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return rc;
}

int script_normalize(lua_State *L, int first, int n, int default_status, http_response_t *out,
                     char *err, size_t errlen) {
  http_response_reset(out);
  out->status = default_status;
  if (n == 0 || lua_isnil(L, first)) {
    snprintf(err, errlen, "it returned nothing (nil); return a string, a table or a response");
    return -EINVAL;
  }
  if (n > 3) {
    snprintf(err, errlen, "it returned %d values; at most 3 (body, status, headers)", n);
    return -EINVAL;
  }
  int status_idx = 0, headers_idx = 0;
  if (n == 3) {
    status_idx = first + 1;
    headers_idx = first + 2;
  } else if (n == 2) {
    if (lua_istable(L, first + 1))
      headers_idx = first + 1;
    else
      status_idx = first + 1;
  }
  int rc = 0;
  const char *content_type = NULL;
  int t = lua_type(L, first);
  if (t == LUA_TSTRING) {
    size_t len;
    const char *s = lua_tolstring(L, first, &len);
    rc = buf_append(&out->body, s, len);
    content_type = "text/html; charset=utf-8";
  } else if (t == LUA_TTABLE && is_response(L, first)) {
    rc = from_response_object(L, first, out, err, errlen);
  } else if (t == LUA_TTABLE || t == LUA_TLIGHTUSERDATA) {
    /* Bounded by the budget: a table shared many times encodes forever. */
    int64_t allowance = script_budget_left(L);
    rc = script_json_encode_budgeted(L, first, &out->body, &allowance, err, errlen);
    if (rc == 0)
      rc = buf_putc(&out->body, '\n');
    content_type = "application/json";
  } else {
    snprintf(err, errlen, "it returned a %s; return a string, a table or a response",
             luaL_typename(L, first));
    return -EINVAL;
  }
  if (rc == 0 && status_idx && !lua_isnil(L, status_idx))
    rc = set_status(L, status_idx, out, err, errlen);
  if (rc == 0 && headers_idx && !lua_isnil(L, headers_idx))
    rc = apply_headers(L, headers_idx, out, err, errlen);
  if (rc == 0 && content_type && !out->has_content_type)
    rc = http_response_header(out, "Content-Type", 12, content_type, strlen(content_type));
  if (rc == -ENOMEM)
    snprintf(err, errlen, "out of memory");
  return rc;
}

void script_response_push(lua_State *L, const http_response_t *r) {
  luaL_checkstack(L, 8, NULL);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &script_key_response_new);
  lua_pushlstring(L, r->body.data ? r->body.data : "", r->body.len);
  lua_pushinteger(L, r->status);
  if (r->reason.len)
    lua_pushlstring(L, r->reason.data, r->reason.len);
  else
    lua_pushnil(L);
  lua_newtable(L);
  const char *p = r->headers.data, *end = p + r->headers.len;
  lua_Integer i = 0;
  while (p < end) {
    const char *colon = memchr(p, ':', (size_t)(end - p));
    const char *eol = memchr(p, '\r', (size_t)(end - p));
    if (colon == NULL || eol == NULL)
      break;
    lua_createtable(L, 2, 0);
    lua_pushlstring(L, p, (size_t)(colon - p));
    lua_rawseti(L, -2, 1);
    lua_pushlstring(L, colon + 2, (size_t)(eol - colon - 2));
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, -2, ++i);
    p = eol + 2;
  }
  lua_call(L, 4, 1);
}

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
  html_escaped(&r.body, loc);
  buf_puts(&r.body, "\">");
  html_escaped(&r.body, loc);
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
  if (is_response(L, 1)) {
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

void script_response_open(lua_State *L) {
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
  lua_pushinteger(L, (lua_Integer)script_started_at());
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
      {NULL, NULL},
  };
  lua_pushglobaltable(L);
  luaL_setfuncs(L, globals, 0);
  lua_pop(L, 1);
}
