/* script_value.c - values that cross between C and a provision's Lua
 * state, shared by the driver (script.c) and the binding files: what a
 * view returns turned into an http_response_t (Flask's return
 * conventions, in one place), a response handed to Lua, error pages,
 * abort()'s exceptions, a request object, a URL variable. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dribble.h"
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

void script_html_escape(buf_t *b, const char *s) {
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
    script_html_escape(&out->body, description);
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

bool script_is_response(lua_State *L, int idx) {
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
  /* The fields' private names (lua/h1mock.lua): their setters check them. */
  raw_field(L, idx, "_status");
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
  raw_field(L, idx, "_data");
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
  /* fault() and dribble() mark the object; only their own values get
   * here (the Lua side checks them), still read with care. */
  if (raw_field(L, idx, "_fault") == LUA_TSTRING) {
    size_t len;
    const char *name = lua_tolstring(L, -1, &len);
    out->fault = http_fault_number(name, len);
  }
  lua_pop(L, 1);
  raw_field(L, idx, "_dribble_chunks");
  lua_Integer chunks = lua_tointeger(L, -1);
  raw_field(L, idx, "_dribble_ms");
  lua_Integer ms = lua_tointeger(L, -1);
  lua_pop(L, 2);
  if (chunks > 0 && chunks <= DRIBBLE_MAX_CHUNKS && ms >= 0 && ms <= DRIBBLE_MAX_MS) {
    out->dribble_chunks = (unsigned)chunks;
    out->dribble_ms = (unsigned)ms;
  }
  raw_field(L, idx, "_headers");
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
  } else if (t == LUA_TTABLE && script_is_response(L, first)) {
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
  if (r->fault) {
    lua_pushstring(L, http_fault_name(r->fault));
    lua_setfield(L, -2, "_fault");
  }
  if (r->dribble_chunks) {
    lua_pushinteger(L, r->dribble_chunks);
    lua_setfield(L, -2, "_dribble_chunks");
    lua_pushinteger(L, r->dribble_ms);
    lua_setfield(L, -2, "_dribble_ms");
  }
}

void script_push_var(lua_State *L, const router_var_t *v) {
  if (v->conv == ROUTER_CONV_INT || v->conv == ROUTER_CONV_FLOAT) {
    /* The router checked the syntax and the range; leading zeros are the
     * only reason a number can be long. */
    const char *p = v->value;
    size_t n = v->len;
    bool neg = n && *p == '-';
    if (neg)
      p++, n--;
    while (n > 1 && *p == '0' && p[1] != '.')
      p++, n--;
    char num[64];
    if (n + 2 <= sizeof num) {
      size_t k = 0;
      if (neg)
        num[k++] = '-';
      memcpy(num + k, p, n);
      num[k + n] = '\0';
      if (v->conv == ROUTER_CONV_INT)
        lua_pushinteger(L, (lua_Integer)strtoll(num, NULL, 10));
      else
        lua_pushnumber(L, strtod(num, NULL));
      return;
    }
  }
  lua_pushlstring(L, v->value, v->len);
}

void script_push_request(lua_State *L, script_call_t *call) {
  struct script_req *r = lua_newuserdatauv(L, sizeof *r, 1);
  r->call = call;
  luaL_setmetatable(L, REQUEST_MT);
  call->ud = r;
}
