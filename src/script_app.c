/* script_app.c - the `app` object (Flask's add_url_rule and friends),
 * plus `log` and `sleep`. Views are kept as registry references whose
 * integers live in the C rule table that the router points into. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "log.h"
#include "script_int.h"

static const char key_endpoints; /* registry: endpoint name -> view function */

static script_t *app_of(lua_State *L) { return lua_touserdata(L, lua_upvalueindex(1)); }

/* Lets `app:f(...)` work like `app.f(...)`: drops a leading app table. */
static void drop_self(lua_State *L) {
  if (lua_gettop(L) >= 1 && lua_istable(L, 1)) {
    lua_getglobal(L, "app");
    bool self = lua_rawequal(L, 1, -1);
    lua_pop(L, 1);
    if (self)
      lua_remove(L, 1);
  }
}

static void require_loading(lua_State *L, script_t *s, const char *fn, bool rules_only) {
  script_ctx_t *ctx = script_ctx(L);
  if (rules_only ? !s->loading : (ctx == NULL || ctx->kind != CTX_LOAD))
    luaL_error(L, "%s: only allowed while the provision loads%s", fn,
               rules_only ? " (inside registerRules())" : "");
}

/* Reads a methods list at idx into a mask; GET brings HEAD along. */
static uint64_t methods_mask(lua_State *L, int idx, const char *fn) {
  uint64_t mask = 0;
  luaL_checkstack(L, 4, NULL);
  lua_Integer n = luaL_len(L, idx);
  if (n == 0)
    luaL_error(L, "%s: the methods list is empty", fn);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, idx, i);
    size_t len;
    const char *m = lua_tolstring(L, -1, &len);
    if (m == NULL)
      luaL_error(L, "%s: methods[%d] is a %s, not a method name", fn, (int)i,
                 luaL_typename(L, -1));
    int num = http_method_number(m, len);
    if (num < 0)
      luaL_error(L, "%s: unknown HTTP method '%s'", fn, m);
    mask |= 1ULL << num;
    lua_pop(L, 1);
  }
  if (mask & (1ULL << HTTP_GET))
    mask |= 1ULL << HTTP_HEAD;
  return mask;
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Builds {{name, value}, ...} sorted by name from the defaults table at idx
 * and returns a registry ref; *n is the count. */
static int defaults_ref(lua_State *L, int idx, int *n, const char *fn) {
  const char *names[ROUTER_MAX_VARS];
  int count = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_error(L, "%s: defaults must be keyed by variable name", fn);
    if (count == ROUTER_MAX_VARS)
      luaL_error(L, "%s: more than %d defaults", fn, ROUTER_MAX_VARS);
    names[count++] = lua_tostring(L, -2);
    lua_pop(L, 1);
  }
  qsort(names, (size_t)count, sizeof names[0], cmp_names);
  lua_createtable(L, count, 0);
  for (int i = 0; i < count; i++) {
    lua_createtable(L, 2, 0);
    lua_pushstring(L, names[i]);
    lua_rawseti(L, -2, 1);
    lua_getfield(L, idx, names[i]);
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, -2, i + 1);
  }
  *n = count;
  return count ? luaL_ref(L, LUA_REGISTRYINDEX) : (lua_pop(L, 1), LUA_NOREF);
}

/* The heart of add_url_rule and its shortcuts. `opts` is 0 or the index of
 * a methods list or an options table; `method` >= 0 forces one method. */
static int add_rule(lua_State *L, const char *fn, int rule_idx, int endpoint_idx, int view_idx,
                    int opts, int method) {
  script_t *s = app_of(L);
  require_loading(L, s, fn, true);
  const char *rule = luaL_checkstring(L, rule_idx);
  luaL_checktype(L, view_idx, LUA_TFUNCTION);

  uint64_t mask = 1ULL << HTTP_GET | 1ULL << HTTP_HEAD;
  bool strict = true;
  int ndefaults = 0, dref = LUA_NOREF;
  const char *endpoint =
      endpoint_idx && !lua_isnil(L, endpoint_idx) ? luaL_checkstring(L, endpoint_idx) : NULL;
  if (opts && !lua_isnil(L, opts)) {
    luaL_checktype(L, opts, LUA_TTABLE);
    if (lua_rawlen(L, opts) > 0) {
      mask = methods_mask(L, opts, fn);
    } else {
      if (lua_getfield(L, opts, "methods") != LUA_TNIL) {
        luaL_argexpected(L, lua_istable(L, -1), opts, "methods to be a list");
        mask = methods_mask(L, lua_gettop(L), fn);
      }
      if (lua_getfield(L, opts, "strict_slashes") != LUA_TNIL)
        strict = lua_toboolean(L, -1);
      if (lua_getfield(L, opts, "endpoint") != LUA_TNIL && endpoint == NULL)
        endpoint = luaL_checkstring(L, -1);
      if (lua_getfield(L, opts, "defaults") != LUA_TNIL) {
        luaL_argexpected(L, lua_istable(L, -1), opts, "defaults to be a table");
        dref = defaults_ref(L, lua_gettop(L), &ndefaults, fn);
      }
    }
  }
  if (method >= 0)
    mask = 1ULL << method | (method == HTTP_GET ? 1ULL << HTTP_HEAD : 0);

  if (endpoint == NULL) {
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int m = 0; m < 64; m++)
      if ((mask & (1ULL << m)) && !(m == HTTP_HEAD && (mask & (1ULL << HTTP_GET)))) {
        if (luaL_bufflen(&b))
          luaL_addchar(&b, ',');
        luaL_addstring(&b, http_method_name(m));
      }
    luaL_addchar(&b, ' ');
    luaL_addstring(&b, rule);
    luaL_pushresult(&b);
    endpoint = lua_tostring(L, -1);
  }

  /* Flask refuses to map one endpoint name to two functions. */
  lua_rawgetp(L, LUA_REGISTRYINDEX, &key_endpoints);
  lua_getfield(L, -1, endpoint);
  if (!lua_isnil(L, -1) && !lua_rawequal(L, -1, view_idx))
    luaL_error(L, "%s: endpoint '%s' is already mapped to another view function", fn, endpoint);
  lua_pop(L, 1);
  lua_pushvalue(L, view_idx);
  lua_setfield(L, -2, endpoint);
  lua_pop(L, 1);

  if (s->nrules == s->caprules) {
    size_t cap = s->caprules ? s->caprules * 2 : 16;
    struct script_rule *r = realloc(s->rules, cap * sizeof *r);
    if (r == NULL)
      luaL_error(L, "%s: out of memory", fn);
    s->rules = r;
    s->caprules = cap;
  }
  char err[300];
  int rc = router_add(s->router, rule, mask, strict, (int)s->nrules, err, sizeof err);
  if (rc == -ENOMEM)
    luaL_error(L, "%s: out of memory", fn);
  if (rc)
    luaL_error(L, "%s: %s", fn, err);
  struct script_rule *r = &s->rules[s->nrules++];
  lua_pushvalue(L, view_idx);
  r->view_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  r->defaults_ref = dref;
  r->ndefaults = ndefaults;
  r->endpoint = strdup(endpoint);
  return 0;
}

/* app.add_url_rule(rule, endpoint, view_func, methods_or_options)
 * app.add_url_rule{rule=, endpoint=, view_func=, methods=, defaults=, strict_slashes=} */
static int app_add_url_rule(lua_State *L) {
  drop_self(L);
  if (lua_gettop(L) == 1 && lua_istable(L, 1)) {
    lua_getfield(L, 1, "rule");      /* 2 */
    lua_getfield(L, 1, "endpoint");  /* 3 */
    lua_getfield(L, 1, "view_func"); /* 4 */
    return add_rule(L, "app.add_url_rule", 2, 3, 4, 1, -1);
  }
  lua_settop(L, 4);
  return add_rule(L, "app.add_url_rule", 1, 2, 3, 4, -1);
}

/* app.route(rule, fn) or app.route(rule, options, fn) */
static int route_with(lua_State *L, const char *fn, int method) {
  drop_self(L);
  if (lua_gettop(L) >= 3)
    return add_rule(L, fn, 1, 0, 3, 2, method);
  lua_settop(L, 2);
  return add_rule(L, fn, 1, 0, 2, 0, method);
}

static int app_route(lua_State *L) { return route_with(L, "app.route", -1); }
static int app_get(lua_State *L) { return route_with(L, "app.get", HTTP_GET); }
static int app_post(lua_State *L) { return route_with(L, "app.post", HTTP_POST); }
static int app_put(lua_State *L) { return route_with(L, "app.put", HTTP_PUT); }
static int app_patch(lua_State *L) { return route_with(L, "app.patch", HTTP_PATCH); }
static int app_delete(lua_State *L) { return route_with(L, "app.delete", HTTP_DELETE); }

static int app_register_error_handler(lua_State *L) {
  script_t *s = app_of(L);
  drop_self(L);
  require_loading(L, s, "app.register_error_handler", false);
  lua_Integer code = luaL_checkinteger(L, 1);
  luaL_argcheck(L, code >= 400 && code <= 599, 1, "an HTTP error status (400-599)");
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_pushvalue(L, 2);
  if (s->handlers[code])
    lua_rawseti(L, LUA_REGISTRYINDEX, s->handlers[code]);
  else
    s->handlers[code] = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

static int add_hook(lua_State *L, const char *fn, int **list, size_t *n) {
  script_t *s = app_of(L);
  drop_self(L);
  require_loading(L, s, fn, false);
  luaL_checktype(L, 1, LUA_TFUNCTION);
  int *p = realloc(*list, (*n + 1) * sizeof *p);
  if (p == NULL)
    luaL_error(L, "%s: out of memory", fn);
  *list = p;
  lua_pushvalue(L, 1);
  p[(*n)++] = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

static int app_before_request(lua_State *L) {
  script_t *s = app_of(L);
  return add_hook(L, "app.before_request", &s->before, &s->nbefore);
}

static int app_after_request(lua_State *L) {
  script_t *s = app_of(L);
  return add_hook(L, "app.after_request", &s->after, &s->nafter);
}

/* Adds the string, or each string of the list, at idx to `c` with `add`;
 * a string may hold several names separated by commas. Raises with `fn`
 * and `what` on a bad one. */
static void cors_names(lua_State *L, int idx, cors_t *c, const char *what,
                       int (*add)(cors_t *, const char *, size_t, const char **)) {
  lua_Integer n = lua_type(L, idx) == LUA_TTABLE ? luaL_len(L, idx) : 1;
  for (lua_Integer i = 1; i <= n; i++) {
    if (lua_type(L, idx) == LUA_TTABLE)
      lua_geti(L, idx, i);
    else
      lua_pushvalue(L, idx);
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "app.cors: %s must be a string or a list of strings, not a %s", what,
                 luaL_typename(L, -1));
    const char *p = lua_tostring(L, -1), *why = NULL;
    while (*p) {
      size_t skip = strspn(p, ", "), len = strcspn(p + skip, ", ");
      p += skip;
      if (len == 0)
        break;
      int rc = add(c, p, len, &why);
      if (rc == -ENOMEM)
        luaL_error(L, "app.cors: out of memory");
      if (rc)
        luaL_error(L, "app.cors: %s '%s': %s", what, lua_tostring(L, -1), why);
      p += len;
    }
    lua_pop(L, 1);
  }
}

static int cors_origin(cors_t *c, const char *origin, size_t len, const char **why) {
  return len == 1 && origin[0] == '*' ? cors_allow_any(c, why)
                                      : cors_allow_origin(c, origin, len, why);
}

/* app.cors(false | "off" | "*" | origin) or app.cors{origins = ...,
 * methods = ..., headers = ..., max_age = n, credentials = bool}: this
 * provision's CORS, whatever --cors says. */
static int app_cors(lua_State *L) {
  script_t *s = app_of(L);
  drop_self(L);
  require_loading(L, s, "app.cors", false);
  /* Built in place: an error raised half-way fails the load, and the
   * script's end frees what was set. */
  cors_free(&s->cors);
  const char *why = NULL;
  int t = lua_type(L, 1);
  if (t == LUA_TBOOLEAN && !lua_toboolean(L, 1))
    return 0;
  if (t == LUA_TSTRING) {
    int rc = cors_parse(&s->cors, lua_tostring(L, 1), &why);
    if (rc == -ENOMEM)
      return luaL_error(L, "app.cors: out of memory");
    if (rc)
      return luaL_error(L, "app.cors: '%s': %s", lua_tostring(L, 1), why);
    return 0;
  }
  if (t != LUA_TTABLE)
    return luaL_error(L,
                      "app.cors: takes false, \"off\", \"*\", an origin or a table of "
                      "options, not a %s",
                      luaL_typename(L, 1));
  static const char *const known[] = {"origins", "methods", "headers", "max_age", "credentials"};
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    bool ok = false;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
      ok |= lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), known[i]) == 0;
    if (!ok)
      return luaL_error(L,
                        "app.cors: unknown option '%s' (origins, methods, headers, max_age, "
                        "credentials)",
                        lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?");
    lua_pop(L, 1);
  }
  lua_settop(L, 1);
  if (lua_getfield(L, 1, "origins") == LUA_TNIL)
    cors_allow_any(&s->cors, &why);
  else
    cors_names(L, 2, &s->cors, "origins", cors_origin);
  if (lua_getfield(L, 1, "methods") != LUA_TNIL)
    cors_names(L, 3, &s->cors, "methods", cors_add_method);
  if (lua_getfield(L, 1, "headers") != LUA_TNIL)
    cors_names(L, 4, &s->cors, "headers", cors_add_header);
  if (lua_getfield(L, 1, "max_age") != LUA_TNIL) {
    int isint;
    lua_Integer age = lua_tointegerx(L, 5, &isint);
    if (!isint || age < 0 || age > CORS_MAX_AGE_LIMIT)
      return luaL_error(L, "app.cors: max_age must be a number of seconds from 0 to %d",
                        CORS_MAX_AGE_LIMIT);
    s->cors.max_age = (int)age;
  }
  if (lua_getfield(L, 1, "credentials") != LUA_TNIL) {
    if (lua_type(L, 6) != LUA_TBOOLEAN)
      return luaL_error(L, "app.cors: credentials must be true or false");
    s->cors.credentials = lua_toboolean(L, 6);
    if (s->cors.credentials && s->cors.any)
      return luaL_error(L, "app.cors: credentials need origins: browsers refuse them with \"*\"");
  }
  if (!s->cors.on)
    return luaL_error(L, "app.cors: origins is empty");
  return 0;
}

static int log_at(lua_State *L, enum log_level level, const char *fn) {
  int n = lua_gettop(L);
  lua_getglobal(L, "string");
  lua_getfield(L, -1, "format");
  lua_remove(L, -2);
  lua_insert(L, 1);
  /* Re-raised from here so the message carries the caller's file:line. */
  if (lua_pcall(L, n, 1, 0) != LUA_OK)
    return luaL_error(L, "%s: %s", fn, lua_tostring(L, -1));
  size_t len;
  const char *msg = lua_tolstring(L, -1, &len);
  /* A provision logs what clients sent: escaped like h1mock's own lines. */
  buf_t b = BUF_INIT;
  log_msg(app_of(L)->opts.log, level, "%s",
          text_escape_str(&b, msg, len, LOG_MESSAGE_MAX, TEXT_ESCAPE_MESSAGE));
  buf_free(&b);
  return 0;
}

static int log_debug_(lua_State *L) { return log_at(L, LOG_DEBUG, "log.debug"); }
static int log_info_(lua_State *L) { return log_at(L, LOG_INFO, "log.info"); }
static int log_warning_(lua_State *L) { return log_at(L, LOG_WARN, "log.warning"); }
static int log_error_(lua_State *L) { return log_at(L, LOG_ERROR, "log.error"); }

static int sleep_(lua_State *L) {
  lua_Number sec = luaL_checknumber(L, 1);
  luaL_argcheck(L, sec >= 0 && !isnan(sec), 1, "seconds must be >= 0");
  script_ctx_t *ctx = script_ctx(L);
  if (ctx == NULL || ctx->kind != CTX_CALL)
    return luaL_error(L, "sleep: only allowed inside a request, not while loading");
  if (L != ctx->thread)
    return luaL_error(L, "sleep: not allowed inside a coroutine the provision created");
  if (!lua_isyieldable(L))
    return luaL_error(L, "sleep: cannot sleep inside a metamethod or a function called from C");
  ctx->sleep(ctx, sec);
  return lua_yield(L, 0);
}

void script_app_open(lua_State *L, script_t *s) {
  static const luaL_Reg app_fns[] = {
      {"add_url_rule", app_add_url_rule},
      {"route", app_route},
      {"get", app_get},
      {"post", app_post},
      {"put", app_put},
      {"patch", app_patch},
      {"delete", app_delete},
      {"register_error_handler", app_register_error_handler},
      {"errorhandler", app_register_error_handler},
      {"before_request", app_before_request},
      {"after_request", app_after_request},
      {"cors", app_cors},
      {NULL, NULL},
  };
  lua_newtable(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &key_endpoints);
  lua_newtable(L);
  lua_pushlightuserdata(L, s);
  luaL_setfuncs(L, app_fns, 1);
  lua_setglobal(L, "app");
  /* --cors as given, for the built-in default (lua/default.lua), whose
   * CORS is "*" unless the command line says otherwise. */
  lua_getglobal(L, "require");
  lua_pushliteral(L, "h1mock");
  lua_call(L, 1, 1);
  if (s->opts.cors)
    lua_pushstring(L, s->opts.cors);
  else
    lua_pushnil(L);
  lua_setfield(L, -2, "cors_option");
  lua_pop(L, 1);

  static const luaL_Reg log_fns[] = {
      {"debug", log_debug_},  {"info", log_info_},   {"warning", log_warning_},
      {"warn", log_warning_}, {"error", log_error_}, {NULL, NULL},
  };
  luaL_newlibtable(L, log_fns);
  lua_pushlightuserdata(L, s);
  luaL_setfuncs(L, log_fns, 1);
  lua_setglobal(L, "log");
  lua_pushcfunction(L, sleep_);
  lua_setglobal(L, "sleep");
}
