/* script_request.c - the `request` object.
 *
 * A full userdata holding a pointer to the call; every field is built when a
 * view first reads it (headers, args, form, cookies and JSON are cached in
 * the userdata's user value), so a view that reads nothing costs nothing.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "script_int.h"
#include "script_json.h"

static script_call_t *check_call(lua_State *L, int idx) {
  struct script_req *r = luaL_checkudata(L, idx, REQUEST_MT);
  if (r->call == NULL)
    luaL_error(L, "request: this request has ended; a request object cannot be kept for later "
                  "requests");
  return r->call;
}

/* Pushes the form-decoded ("+" is a space) string. */
static void push_decoded(lua_State *L, const char *s, size_t n) {
  luaL_Buffer b;
  char *out = luaL_buffinitsize(L, &b, n);
  luaL_pushresultsize(&b, http_percent_decode(out, s, n, true));
}

/* Parses "k=v<sep>k=v..." and pushes a table of the first value per key,
 * or, with `want`, the list of every value of that key. `trim` is for
 * cookies: spaces after the separator are dropped and nothing is decoded. */
static void parse_pairs(lua_State *L, const char *s, size_t n, char sep, const char *want,
                        size_t want_len, bool trim) {
  lua_newtable(L);
  int t = lua_gettop(L);
  lua_Integer count = 0;
  size_t i = 0;
  while (i < n) {
    size_t end = i;
    while (end < n && s[end] != sep)
      end++;
    size_t a = i, e = end;
    if (trim)
      while (a < e && s[a] == ' ')
        a++;
    if (a < e) {
      const char *eq = memchr(s + a, '=', e - a);
      size_t klen = eq ? (size_t)(eq - (s + a)) : e - a;
      const char *v = eq ? eq + 1 : s + e;
      size_t vlen = eq ? (size_t)(s + e - v) : 0;
      if (trim) { /* cookies: taken as sent */
        lua_pushlstring(L, s + a, klen);
        lua_pushlstring(L, v, vlen);
      } else {
        push_decoded(L, s + a, klen);
        push_decoded(L, v, vlen);
      }
      size_t kl;
      const char *k = lua_tolstring(L, -2, &kl);
      if (want) {
        if (kl == want_len && memcmp(k, want, kl) == 0)
          lua_rawseti(L, t, ++count);
        else
          lua_pop(L, 1);
        lua_pop(L, 1);
      } else {
        lua_pushvalue(L, -2);
        if (lua_rawget(L, t) == LUA_TNIL) {
          lua_pop(L, 1);
          lua_rawset(L, t);
        } else {
          lua_pop(L, 3);
        }
      }
    }
    i = end + 1;
  }
}

static const char *header_value(script_call_t *c, const char *name, size_t *len) {
  const http_header_t *h = http_request_header(c->req, name);
  if (h == NULL)
    return NULL;
  *len = h->value_len;
  return h->value;
}

static int headers_index(lua_State *L) {
  /* Stored lower case; look up any case. */
  size_t n;
  const char *k = luaL_checklstring(L, 2, &n);
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, n);
  text_lower(p, k, n);
  luaL_pushresultsize(&b, n);
  lua_rawget(L, 1);
  return 1;
}

static void push_headers(lua_State *L, script_call_t *c) {
  const http_request_t *r = c->req;
  lua_createtable(L, 0, (int)r->nheaders);
  for (size_t i = 0; i < r->nheaders; i++) {
    const http_header_t *h = &r->headers[i];
    char name[256];
    size_t n = h->name_len < sizeof name ? h->name_len : sizeof name - 1;
    text_lower(name, h->name, n);
    lua_pushlstring(L, name, n);
    lua_pushvalue(L, -1);
    if (lua_rawget(L, -3) == LUA_TSTRING) {
      /* Repeated fields combine with ", " (RFC 9110 5.3). */
      lua_pushliteral(L, ", ");
      lua_pushlstring(L, h->value, h->value_len);
      lua_concat(L, 3);
    } else {
      lua_pop(L, 1);
      lua_pushlstring(L, h->value, h->value_len);
    }
    lua_rawset(L, -3);
  }
  if (luaL_newmetatable(L, "h1mock.headers")) {
    lua_pushcfunction(L, headers_index);
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, "headers");
    lua_setfield(L, -2, "__metatable"); /* see REQUEST_MT */
  }
  lua_setmetatable(L, -2);
}

static bool mimetype_is(const char *ct, size_t n, const char *want) {
  size_t w = strlen(want);
  return n >= w && strncasecmp(ct, want, w) == 0 && (n == w || ct[w] == ';' || ct[w] == ' ');
}

/* Pushes the decoded body; on bad JSON raises abort(400) unless silent,
 * in which case pushes nil. */
static void push_json(lua_State *L, script_call_t *c, bool silent) {
  char err[200];
  if (script_json_decode(L, c->req->body, c->req->body_len, err, sizeof err) == 0)
    return;
  if (silent) {
    lua_pushnil(L);
    return;
  }
  char desc[300];
  snprintf(desc, sizeof desc, "The request body is not valid JSON: %s", err);
  script_exception_push(L, 400, desc);
  lua_error(L);
}

/* The cache table in the user value, created on first use. */
static int cache(lua_State *L, int ud) {
  if (lua_getiuservalue(L, ud, 1) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 4);
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, ud, 1);
  }
  return lua_gettop(L);
}

/* request.args_list(k) and request:args_list(k) */
static int args_list(lua_State *L) {
  if (lua_rawequal(L, 1, lua_upvalueindex(1)))
    lua_remove(L, 1);
  script_call_t *c = check_call(L, lua_upvalueindex(1));
  size_t n;
  const char *k = luaL_checklstring(L, 1, &n);
  parse_pairs(L, c->req->query, c->req->query_len, '&', k, n, false);
  /* A list even when empty: returned from a view it must be JSON []. */
  script_json_push_array_mt(L);
  lua_setmetatable(L, -2);
  return 1;
}

/* request.get_json{force=, silent=} and request:get_json{...} */
static int get_json(lua_State *L) {
  if (lua_rawequal(L, 1, lua_upvalueindex(1)))
    lua_remove(L, 1);
  script_call_t *c = check_call(L, lua_upvalueindex(1));
  bool force = false, silent = false;
  if (lua_istable(L, 1)) {
    lua_getfield(L, 1, "force");
    force = lua_toboolean(L, -1);
    lua_getfield(L, 1, "silent");
    silent = lua_toboolean(L, -1);
    lua_pop(L, 2);
  }
  size_t n = 0;
  const char *ct = header_value(c, "content-type", &n);
  if (!force && (ct == NULL || !http_mimetype_is_json(ct, n)))
    return lua_pushnil(L), 1;
  push_json(L, c, silent);
  return 1;
}

static void push_bound(lua_State *L, lua_CFunction f) {
  lua_pushvalue(L, 1);
  lua_pushcclosure(L, f, 1);
}

static void push_view_args(lua_State *L, script_call_t *c) {
  lua_newtable(L);
  if (c->rule < 0)
    return;
  script_t *s = c->s;
  for (size_t i = 0; i < c->match.nvars; i++) {
    script_push_var(L, &c->match.vars[i]);
    lua_setfield(L, -2, router_var_name(s->router, c->rule, i));
  }
  const struct script_rule *r = &s->rules[c->rule];
  if (r->ndefaults) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, r->defaults_ref);
    for (int i = 1; i <= r->ndefaults; i++) {
      lua_rawgeti(L, -1, i);
      lua_rawgeti(L, -1, 1);
      lua_rawgeti(L, -2, 2);
      lua_rawset(L, -5);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
}

/* Fields that are tables or decoded bodies: built once, then cached. */
static int cached_field(lua_State *L, script_call_t *c, const char *key) {
  int t = cache(L, 1);
  if (lua_getfield(L, t, key) != LUA_TNIL)
    return 1;
  lua_pop(L, 1);
  const http_request_t *r = c->req;
  size_t n = 0;
  const char *ct;
  if (strcmp(key, "headers") == 0) {
    push_headers(L, c);
  } else if (strcmp(key, "args") == 0) {
    parse_pairs(L, r->query, r->query_len, '&', NULL, 0, false);
  } else if (strcmp(key, "form") == 0) {
    ct = header_value(c, "content-type", &n);
    if (ct && mimetype_is(ct, n, "application/x-www-form-urlencoded"))
      parse_pairs(L, r->body, r->body_len, '&', NULL, 0, false);
    else
      lua_newtable(L);
  } else if (strcmp(key, "cookies") == 0) {
    ct = header_value(c, "cookie", &n);
    parse_pairs(L, ct ? ct : "", ct ? n : 0, ';', NULL, 0, true);
  } else if (strcmp(key, "view_args") == 0) {
    push_view_args(L, c);
  } else if (strcmp(key, "json") == 0) {
    ct = header_value(c, "content-type", &n);
    if (ct == NULL || !http_mimetype_is_json(ct, n))
      return lua_pushnil(L), 1; /* not cached: cheap to answer again */
    push_json(L, c, false);
  } else {
    return 0;
  }
  lua_pushvalue(L, -1);
  lua_setfield(L, t, key);
  return 1;
}

static void push_url(lua_State *L, script_call_t *c, bool with_query) {
  const http_request_t *r = c->req;
  size_t hn = 0;
  const char *host = header_value(c, "host", &hn);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "http://");
  luaL_addlstring(&b, host ? host : "localhost", host ? hn : 9);
  if (r->raw_path_len == 0)
    luaL_addchar(&b, '/');
  luaL_addlstring(&b, r->raw_path, r->raw_path_len);
  if (with_query && r->query_len) {
    luaL_addchar(&b, '?');
    luaL_addlstring(&b, r->query, r->query_len);
  }
  luaL_pushresult(&b);
}

static int req_index(lua_State *L) {
  script_call_t *c = check_call(L, 1);
  const http_request_t *r = c->req;
  size_t klen;
  const char *k = luaL_checklstring(L, 2, &klen);
  size_t n = 0;
  const char *v;
  switch (k[0]) {
  case 'a':
    if (strcmp(k, "args_list") == 0)
      return push_bound(L, args_list), 1;
    break;
  case 'b':
    if (strcmp(k, "base_url") == 0)
      return push_url(L, c, false), 1;
    break;
  case 'c':
    if (strcmp(k, "content_type") == 0) {
      v = header_value(c, "content-type", &n);
      return v ? lua_pushlstring(L, v, n) : lua_pushnil(L), 1;
    }
    if (strcmp(k, "content_length") == 0) {
      v = header_value(c, "content-length", &n);
      if (v == NULL)
        return lua_pushnil(L), 1;
      lua_pushinteger(L, (lua_Integer)r->body_len);
      return 1;
    }
    break;
  case 'd':
    if (strcmp(k, "data") == 0)
      return lua_pushlstring(L, r->body, r->body_len), 1;
    break;
  case 'e':
    if (strcmp(k, "endpoint") == 0) {
      if (c->rule < 0)
        return lua_pushnil(L), 1;
      return lua_pushstring(L, c->s->rules[c->rule].endpoint), 1;
    }
    break;
  case 'f':
    if (strcmp(k, "full_path") == 0) {
      lua_pushlstring(L, r->path, r->path_len);
      lua_pushliteral(L, "?");
      lua_pushlstring(L, r->query, r->query_len);
      lua_concat(L, 3);
      return 1;
    }
    break;
  case 'g':
    if (strcmp(k, "get_json") == 0)
      return push_bound(L, get_json), 1;
    break;
  case 'h':
    if (strcmp(k, "host") == 0) {
      v = header_value(c, "host", &n);
      return lua_pushlstring(L, v ? v : "", n), 1;
    }
    break;
  case 'i':
    if (strcmp(k, "is_json") == 0) {
      v = header_value(c, "content-type", &n);
      return lua_pushboolean(L, v && http_mimetype_is_json(v, n)), 1;
    }
    break;
  case 'm':
    if (strcmp(k, "method") == 0)
      return lua_pushstring(L, http_method_name(r->method)), 1;
    if (strcmp(k, "mimetype") == 0) {
      v = header_value(c, "content-type", &n);
      size_t m = 0;
      while (v && m < n && v[m] != ';' && v[m] != ' ')
        m++;
      return lua_pushlstring(L, v ? v : "", m), 1;
    }
    break;
  case 'p':
    if (strcmp(k, "path") == 0)
      return lua_pushlstring(L, r->path, r->path_len), 1;
    break;
  case 'q':
    if (strcmp(k, "query_string") == 0)
      return lua_pushlstring(L, r->query, r->query_len), 1;
    break;
  case 'r':
    if (strcmp(k, "remote_addr") == 0)
      return lua_pushstring(L, c->remote), 1;
    break;
  case 's':
    if (strcmp(k, "scheme") == 0)
      return lua_pushliteral(L, "http"), 1;
    break;
  case 'u':
    if (strcmp(k, "url") == 0)
      return push_url(L, c, true), 1;
    break;
  }
  if (cached_field(L, c, k))
    return 1;
  return luaL_error(L, "request has no field '%s'", k);
}

static int req_newindex(lua_State *L) {
  return luaL_error(L, "request is read-only (tried to set '%s')", luaL_tolstring(L, 2, NULL));
}

static int req_tostring(lua_State *L) {
  struct script_req *r = luaL_checkudata(L, 1, REQUEST_MT);
  if (r->call == NULL)
    lua_pushliteral(L, "<request (ended)>");
  else
    lua_pushfstring(L, "<request %s %s>", http_method_name(r->call->req->method),
                    lua_pushlstring(L, r->call->req->path, r->call->req->path_len));
  return 1;
}

void script_request_open(lua_State *L) {
  static const luaL_Reg mt[] = {
      {"__index", req_index},
      {"__newindex", req_newindex},
      {"__tostring", req_tostring},
      {NULL, NULL},
  };
  luaL_newmetatable(L, REQUEST_MT);
  luaL_setfuncs(L, mt, 0);
  lua_pushliteral(L, "request");
  lua_setfield(L, -2, "__name");
  /* getmetatable() gets a string, not the table: a provision that could
   * add __gc here would have every later request finalized, with hooks
   * off (no budget) and possibly on the thread that closes the state. */
  lua_pushliteral(L, "request");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
}
