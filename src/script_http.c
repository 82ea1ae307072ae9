/* script_http.c - the `http` global: outbound HTTP calls from a provision
 * over the server's http_client_t.
 *
 * http.request(opts) parks the request's thread as sleep() does: it sets
 * `sleeping`, yields, and the client's callback resumes it through
 * ctx->resume; the continuation turns the answer into a table. The wait
 * runs no Lua, so it costs no instruction budget. The answer is kept in a
 * userdata on the waiting thread's stack, so that a request abandoned
 * while it waits (its call is then cancelled, and the callback never
 * runs) leaves nothing behind but garbage.
 *
 * http.request_async(opts) starts a call that no thread waits for: its
 * callback holds only C memory (the log, the metrics, a line of text), so
 * it may outlive the provision that made it, and its outcome is logged.
 *
 * Misuse (a wrong type in opts, a call outside a request) raises; every
 * failure of the call itself is `nil, message`. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_client.h"
#include "log.h"
#include "metrics.h"
#include "proxy.h"
#include "script_int.h"
#include "text.h"

/* Outbound calls in flight at once over the whole server (http.request and
 * request_async together): a provision cannot open connections without
 * bound, e.g. by firing request_async in a loop. */
#define HTTP_MAX_IN_FLIGHT 256
#define STR(x) #x
#define XSTR(x) STR(x)
#define IN_FLIGHT_TEXT XSTR(HTTP_MAX_IN_FLIGHT)
/* Calls a journal entry lists (later ones still run), and how much of a
 * call's URL it keeps: an entry stays small whatever the view does. */
#define CALLS_KEPT 64
#define CALL_URL_KEPT 2048
/* The longest timeout opts.timeout takes: a day, in seconds. */
#define TIMEOUT_MAX 86400.0

static const char key_response_mt; /* registry: the metatable of answers */
static const char key_wait_mt;     /* registry: the metatable of waits */

static script_t *script_of(lua_State *L) { return lua_touserdata(L, lua_upvalueindex(1)); }

/* What a call sends: the request, and room for its headers. The strings
 * it points to are Lua values kept on the calling function's stack. */
struct call_opts {
  http_client_request_t req;
  http_header_t headers[HTTP_MAX_HEADERS + 1];
};

/* Reads opts.headers (a table of name = value, the values strings or
 * numbers) into o; the strings stay on the stack. */
static void read_headers(lua_State *L, int t, const char *fn, struct call_opts *o) {
  size_t n = 0;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_error(L, "%s: opts.headers must be keyed by header name", fn);
    int vt = lua_type(L, -1);
    if (vt != LUA_TSTRING && vt != LUA_TNUMBER)
      luaL_error(L, "%s: opts.headers['%s'] is a %s, not a string", fn, lua_tostring(L, -2),
                 luaL_typename(L, -1));
    if (n == HTTP_MAX_HEADERS)
      luaL_error(L, "%s: more than %d headers", fn, HTTP_MAX_HEADERS);
    luaL_checkstack(L, 4, fn);
    /* Copies of the key and value stay below the key lua_next goes on
     * from (a number value is turned into text in its copy only). */
    lua_pushvalue(L, -2);
    lua_pushvalue(L, -2);
    http_header_t *h = &o->headers[n++];
    h->name = lua_tolstring(L, -2, &h->name_len);
    h->value = lua_tolstring(L, -1, &h->value_len);
    lua_rotate(L, -4, 2);
    lua_pop(L, 1);
  }
  o->req.nheaders = n;
}

/* True when o already has a header `name`. */
static bool has_header(const struct call_opts *o, const char *name) {
  for (size_t i = 0; i < o->req.nheaders; i++)
    if (http_name_is(o->headers[i].name, o->headers[i].name_len, name))
      return true;
  return false;
}

/* Reads the options table at index 1 into o, leaving the strings it points
 * to on the stack. Raises on misuse, naming `fn`. */
static void read_opts(lua_State *L, const char *fn, struct call_opts *o) {
  if (lua_type(L, 1) != LUA_TTABLE)
    luaL_error(L, "%s: expects a table of options ({url = ..., method = ...}), got %s", fn,
               luaL_typename(L, 1));
  memset(o, 0, sizeof *o);
  o->req.headers = o->headers;
  luaL_checkstack(L, 8, fn);
  if (lua_getfield(L, 1, "url") != LUA_TSTRING)
    luaL_error(L, "%s: opts.url must be a string (\"http://host:port/path\")", fn);
  o->req.url = lua_tostring(L, -1);
  int t = lua_getfield(L, 1, "method");
  if (t != LUA_TNIL && t != LUA_TSTRING)
    luaL_error(L, "%s: opts.method must be a string", fn);
  o->req.method = lua_tostring(L, -1);
  t = lua_getfield(L, 1, "headers");
  if (t == LUA_TTABLE)
    read_headers(L, lua_gettop(L), fn, o);
  else if (t != LUA_TNIL)
    luaL_error(L, "%s: opts.headers must be a table", fn);
  t = lua_getfield(L, 1, "timeout");
  if (t != LUA_TNIL) {
    lua_Number sec = lua_tonumber(L, -1);
    if (t != LUA_TNUMBER || !(sec > 0) || sec > TIMEOUT_MAX)
      luaL_error(L, "%s: opts.timeout must be a number of seconds (> 0, at most a day)", fn);
    o->req.timeout_ms = (uint64_t)ceil(sec * 1000);
  }
  t = lua_getfield(L, 1, "body");
  if (t == LUA_TTABLE) {
    /* json.encode (an upvalue: the provision may change the global) is
     * h1mock's own C function: it charges the budget and reads tables
     * raw. */
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_insert(L, -2);
    lua_call(L, 1, 1);
    t = LUA_TSTRING;
    if (!has_header(o, "Content-Type")) {
      if (o->req.nheaders == HTTP_MAX_HEADERS)
        luaL_error(L, "%s: more than %d headers", fn, HTTP_MAX_HEADERS);
      o->headers[o->req.nheaders++] = (http_header_t){"Content-Type", 12, "application/json", 16};
    }
  }
  if (t == LUA_TSTRING) {
    o->req.body = lua_tolstring(L, -1, &o->req.body_len);
    o->req.has_body = true;
  } else if (t != LUA_TNIL) {
    luaL_error(L, "%s: opts.body must be a string, or a table to send as JSON", fn);
  }
}

/* Starts the call, unless the server has no client or too many calls are
 * in flight. Returns NULL, or why not. */
static const char *start(script_t *s, const struct call_opts *o, http_client_cb cb, void *arg,
                         http_client_call_t **call) {
  http_client_t *c = s->opts.client;
  if (c == NULL)
    return "outbound HTTP is not available here";
  http_client_stats_t st;
  http_client_stats(c, &st);
  if (st.in_flight >= HTTP_MAX_IN_FLIGHT)
    return "too many outbound calls in flight (" IN_FLIGHT_TEXT " at most)";
  int rc = http_client_request(c, &o->req, cb, arg, call);
  if (rc == -ECANCELED)
    return "the server is shutting down";
  return rc ? "out of memory" : NULL;
}

/* Appends `{"method":..,"url":..` for the journal entry, the URL cut to
 * CALL_URL_KEPT bytes. */
static int call_head_json(buf_t *out, const http_client_request_t *req) {
  const char *m = req->method ? req->method : "GET";
  size_t ulen = strlen(req->url);
  buf_puts(out, "{\"method\":");
  text_json_string(out, m, strlen(m));
  buf_puts(out, ",\"url\":");
  return text_json_string(out, req->url, ulen < CALL_URL_KEPT ? ulen : CALL_URL_KEPT);
}

/* ---- http.request --------------------------------------------------------- */

/* A call that a request waits for; a userdata on the waiting thread's
 * stack. */
struct wait {
  script_ctx_t *ctx;
  script_t *s;
  uint64_t duration_us;
  int status;      /* 0 when the call failed: `error` says why */
  buf_t error;     /* NUL-terminated */
  buf_t headers;   /* packed: u32 name length, u32 value length, name, value */
  size_t nheaders; /* in `headers` */
  buf_t body;
  buf_t record; /* the journal's `{"method":..,"url":..`, completed on the answer */
  bool forward; /* http.forward: the answer goes to `resp`, not the fields above */
  http_response_t resp;
};

static int wait_gc(lua_State *L) {
  struct wait *w = lua_touserdata(L, 1);
  buf_free(&w->error);
  buf_free(&w->headers);
  buf_free(&w->body);
  buf_free(&w->record);
  http_response_free(&w->resp);
  return 0;
}

/* Copies what the answer holds into w (all of it, or an error). */
static void keep_answer(struct wait *w, const http_client_result_t *r) {
  w->duration_us = r->duration_us;
  int rc = 0;
  if (r->error == NULL) {
    w->status = r->status;
    for (size_t i = 0; i < r->nheaders && rc == 0; i++) {
      const http_header_t *h = &r->headers[i];
      uint32_t len[2] = {(uint32_t)h->name_len, (uint32_t)h->value_len};
      if ((rc = buf_append(&w->headers, len, sizeof len)) == 0 &&
          (rc = buf_append(&w->headers, h->name, h->name_len)) == 0)
        rc = buf_append(&w->headers, h->value, h->value_len);
    }
    w->nheaders = r->nheaders;
    if (rc == 0)
      rc = buf_append(&w->body, r->body, r->body_len);
    if (rc == 0)
      return;
    w->status = 0;
  }
  buf_reset(&w->error);
  if (buf_puts(&w->error, rc ? "out of memory" : r->error) || buf_putc(&w->error, '\0'))
    w->status = -1; /* no text: the continuation says "out of memory" */
}

/* Adds the finished call to the request's journal record. */
static void record_call(script_ctx_t *ctx, struct wait *w) {
  if (ctx->ncalls >= CALLS_KEPT || w->record.len == 0)
    return;
  buf_t *out = &w->record;
  if (w->status > 0)
    buf_printf(out, ",\"status\":%d,\"duration_us\":%llu,\"error\":null}", w->status,
               (unsigned long long)w->duration_us);
  else {
    buf_printf(out, ",\"status\":null,\"duration_us\":%llu,\"error\":",
               (unsigned long long)w->duration_us);
    const char *e = w->status < 0 ? "out of memory" : w->error.data;
    text_json_string(out, e, strlen(e));
    buf_putc(out, '}');
  }
  size_t before = ctx->calls.len;
  if ((before && buf_putc(&ctx->calls, ',')) || buf_append(&ctx->calls, out->data, out->len))
    ctx->calls.len = before; /* out of memory: the entry lists this call not at all */
  else
    ctx->ncalls++;
}

static void on_answer(void *arg, const http_client_result_t *r) {
  struct wait *w = arg;
  script_ctx_t *ctx = w->ctx;
  script_t *s = w->s;
  ctx->outbound = NULL;
  if (s->opts.metrics)
    metrics_http_client(s->opts.metrics, r->error == NULL, r->duration_us);
  if (w->forward) {
    /* The journal needs the status or the error; the answer itself goes
     * to the response as a proxy passes it on. */
    http_client_result_t outcome = {
        .error = r->error, .status = r->status, .duration_us = r->duration_us};
    keep_answer(w, &outcome);
    if (r->error)
      proxy_failed(&w->resp, r->error);
    else if (proxy_response(r, &w->resp))
      proxy_failed(&w->resp, "out of memory");
  } else {
    keep_answer(w, r);
  }
  record_call(ctx, w);
  ctx->resume(ctx);
}

/* Pushes `n` bytes of a header name lower-cased. */
static void push_lower(lua_State *L, const char *name, size_t n) {
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, n);
  for (size_t i = 0; i < n; i++)
    p[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
  luaL_pushresultsize(&b, n);
}

/* Pushes the answer table of w: status, headers (lower-case names, repeated
 * ones joined with ", "), header_list ({name, value} in order, names as
 * received) and body, with resp:json(). */
static void push_answer(lua_State *L, const struct wait *w) {
  luaL_checkstack(L, 8, "http.request");
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, w->status);
  lua_setfield(L, -2, "status");
  lua_createtable(L, 0, (int)w->nheaders);
  lua_createtable(L, (int)w->nheaders, 0);
  const char *p = w->headers.data;
  for (size_t i = 0; i < w->nheaders; i++) {
    uint32_t len[2];
    memcpy(len, p, sizeof len);
    const char *name = p + sizeof len, *value = name + len[0];
    p = value + len[1];
    lua_createtable(L, 2, 0);
    lua_pushlstring(L, name, len[0]);
    lua_rawseti(L, -2, 1);
    lua_pushlstring(L, value, len[1]);
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
    push_lower(L, name, len[0]);
    lua_pushvalue(L, -1);
    if (lua_rawget(L, -4) == LUA_TSTRING) {
      lua_pushliteral(L, ", ");
      lua_pushlstring(L, value, len[1]);
      lua_concat(L, 3);
    } else {
      lua_pop(L, 1);
      lua_pushlstring(L, value, len[1]);
    }
    lua_rawset(L, -4);
  }
  lua_setfield(L, -3, "header_list");
  lua_setfield(L, -2, "headers");
  lua_pushlstring(L, w->body.data ? w->body.data : "", w->body.len);
  lua_setfield(L, -2, "body");
  lua_rawgetp(L, LUA_REGISTRYINDEX, &key_response_mt);
  lua_setmetatable(L, -2);
}

/* Where http.request carries on once the answer came. */
static int request_done(lua_State *L, int status, lua_KContext k) {
  (void)status;
  const struct wait *w = (const struct wait *)k;
  if (w->status > 0) {
    push_answer(L, w);
    return 1;
  }
  lua_pushnil(L);
  if (w->status < 0)
    lua_pushliteral(L, "out of memory");
  else
    lua_pushstring(L, w->error.data);
  return 2;
}

/* Raises unless the code on L is a request's own thread that may yield. */
static script_ctx_t *waiting_ctx(lua_State *L, const char *fn) {
  script_ctx_t *ctx = script_ctx(L);
  if (ctx == NULL || ctx->kind != CTX_CALL)
    luaL_error(L, "%s is only available while a request runs", fn);
  if (L != ctx->thread)
    luaL_error(L, "%s: not allowed inside a coroutine the provision created", fn);
  if (!lua_isyieldable(L))
    luaL_error(L, "%s: cannot wait inside a metamethod or a function called from C", fn);
  return ctx;
}

static int l_request(lua_State *L) {
  static const char fn[] = "http.request";
  script_ctx_t *ctx = waiting_ctx(L, fn);
  lua_settop(L, 1);
  struct call_opts o;
  read_opts(L, fn, &o);
  struct wait *w = lua_newuserdatauv(L, sizeof *w, 0);
  *w = (struct wait){.ctx = ctx, .s = script_of(L)};
  lua_rawgetp(L, LUA_REGISTRYINDEX, &key_wait_mt);
  lua_setmetatable(L, -2);
  if (call_head_json(&w->record, &o.req))
    buf_reset(&w->record); /* out of memory: the journal will not list it */
  http_client_call_t *call;
  const char *why = start(script_of(L), &o, on_answer, w, &call);
  if (why) {
    lua_pushnil(L);
    lua_pushstring(L, why);
    return 2;
  }
  ctx->outbound = call;
  ctx->sleeping = true;
  return lua_yieldk(L, 0, (lua_KContext)w, request_done);
}

/* ---- http.forward ---------------------------------------------------------- */

static int forward_done(lua_State *L, int status, lua_KContext k) {
  (void)status;
  script_response_push(L, &((const struct wait *)k)->resp);
  return 1;
}

/* http.forward(req, base_url): the request as a proxy sends it on, the
 * answer as a Response (a 502, 504 or 508 of its own when it fails), for
 * the view to return. */
static int l_forward(lua_State *L) {
  static const char fn[] = "http.forward";
  script_ctx_t *ctx = waiting_ctx(L, fn);
  struct script_req *ud = luaL_checkudata(L, 1, REQUEST_MT);
  if (ud->call == NULL || ud->call->req == NULL)
    return luaL_error(L, "%s: this request has ended", fn);
  const char *base = luaL_checkstring(L, 2), *why;
  if (proxy_check_base(base, &why))
    return luaL_error(L, "%s: '%s': %s", fn, base, why);
  script_t *s = script_of(L);
  const http_request_t *req = ud->call->req;
  struct wait *w = lua_newuserdatauv(L, sizeof *w, 0);
  *w = (struct wait){.ctx = ctx, .s = s, .forward = true};
  lua_rawgetp(L, LUA_REGISTRYINDEX, &key_wait_mt);
  lua_setmetatable(L, -2);
  if (proxy_loop(req, s->opts.via)) {
    proxy_looped(&w->resp);
    return forward_done(L, LUA_OK, (lua_KContext)w);
  }
  /* The client copies the request: its storage may go at once. */
  proxy_out_t *out = calloc(1, sizeof *out);
  struct call_opts o;
  why = "out of memory";
  if (out && proxy_request(req, base, s->opts.via, 0, out) == 0) {
    memset(&o, 0, sizeof o);
    o.req = out->req;
    if (call_head_json(&w->record, &o.req))
      buf_reset(&w->record);
    http_client_call_t *call;
    why = start(s, &o, on_answer, w, &call);
    if (why == NULL) {
      ctx->outbound = call;
      ctx->sleeping = true;
    }
  }
  if (out)
    proxy_out_free(out);
  free(out);
  if (why) {
    proxy_failed(&w->resp, why);
    return forward_done(L, LUA_OK, (lua_KContext)w);
  }
  return lua_yieldk(L, 0, (lua_KContext)w, forward_done);
}

/* resp:json(): json.decode of the body (nil and a message when it is not
 * JSON). */
static int l_json(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_pushvalue(L, lua_upvalueindex(1));
  if (lua_getfield(L, 1, "body") != LUA_TSTRING)
    return luaL_error(L, "resp:json(): the answer has no body string");
  lua_call(L, 1, 2);
  return 2;
}

/* ---- http.request_async --------------------------------------------------- */

/* A call nobody waits for: what its outcome line needs, in C memory. */
struct async {
  const log_t *log;
  metrics_t *metrics;
  char what[]; /* "METHOD url", escaped for the log */
};

static void on_async_answer(void *arg, const http_client_result_t *r) {
  struct async *a = arg;
  if (a->metrics)
    metrics_http_client(a->metrics, r->error == NULL, r->duration_us);
  if (r->error)
    log_warn(a->log, "http.request_async %s failed after %.1f ms: %s", a->what,
             (double)r->duration_us / 1000, r->error);
  else
    log_info(a->log, "http.request_async %s: %d in %.1f ms", a->what, r->status,
             (double)r->duration_us / 1000);
  free(a);
}

static int l_request_async(lua_State *L) {
  static const char fn[] = "http.request_async";
  script_ctx_t *ctx = script_ctx(L);
  if (ctx == NULL || ctx->kind != CTX_CALL)
    return luaL_error(L, "%s is only available while a request runs", fn);
  script_t *s = script_of(L);
  lua_settop(L, 1);
  struct call_opts o;
  read_opts(L, fn, &o);
  buf_t line = BUF_INIT, url = BUF_INIT;
  const char *m = o.req.method ? o.req.method : "GET";
  text_escape_str(&url, o.req.url, strlen(o.req.url), LOG_PATH_MAX, TEXT_ESCAPE_VALUE);
  buf_printf(&line, "%.32s %s", m, url.data ? url.data : "");
  buf_free(&url);
  struct async *a = line.data ? malloc(sizeof *a + line.len + 1) : NULL;
  if (a == NULL) {
    buf_free(&line);
    lua_pushnil(L);
    lua_pushliteral(L, "out of memory");
    return 2;
  }
  a->log = s->opts.log;
  a->metrics = s->opts.metrics;
  memcpy(a->what, line.data, line.len + 1);
  buf_free(&line);
  const char *why = start(s, &o, on_async_answer, a, NULL);
  if (why) {
    free(a);
    lua_pushnil(L);
    lua_pushstring(L, why);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* ---- opening ---------------------------------------------------------------- */

/* Pushes the `json` module's field `name` (the module as h1mock opened it,
 * before the provision ran). */
static void push_json_fn(lua_State *L, const char *name) {
  lua_pushglobaltable(L);
  lua_pushliteral(L, "json");
  lua_rawget(L, -2);
  lua_getfield(L, -1, name);
  lua_replace(L, -3);
  lua_pop(L, 1);
}

void script_http_open(lua_State *L, script_t *s) {
  /* Answers: resp:json() through a locked metatable. */
  lua_createtable(L, 0, 2);
  lua_createtable(L, 0, 1);
  push_json_fn(L, "decode");
  lua_pushcclosure(L, l_json, 1);
  lua_setfield(L, -2, "json");
  lua_setfield(L, -2, "__index");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &key_response_mt);
  /* Waits: only h1mock reaches them (they live on a thread's stack), so
   * the __gc is h1mock's own. */
  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, wait_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &key_wait_mt);

  static const luaL_Reg fns[] = {{"request", l_request},
                                 {"request_async", l_request_async},
                                 {"forward", l_forward},
                                 {NULL, NULL}};
  luaL_newlibtable(L, fns);
  lua_pushlightuserdata(L, s);
  push_json_fn(L, "encode");
  luaL_setfuncs(L, fns, 2);
  lua_setglobal(L, "http");
}
