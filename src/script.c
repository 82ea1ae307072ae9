/* script.c - driving one request through a provision.
 *
 * A request runs in a coroutine taken from the provision's pool. Its stages
 * (before_request hooks, the view, an error handler, after_request hooks)
 * are each one function resumed on that coroutine, so any of them may sleep:
 * sleep() yields, a uv timer (or idle handle) resumes. The count hook
 * (script_budget.c) charges every stage to one instruction budget; when it
 * runs out the hook yields too, and a thread that yielded that way is
 * dropped, which no pcall can catch.
 */
#include "script.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "script_int.h"
#include "watchdog.h"

/* A new pooled call's thread and request slot, pinned in the registry;
 * under lua_pcall, as both allocate. */
static int new_call_thread(lua_State *L) {
  script_call_t *c = lua_touserdata(L, 1);
  c->co = lua_newthread(L);
  c->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushboolean(L, 0);
  c->req_slot = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

static script_call_t *call_get(script_t *s) {
  script_call_t *c = s->free_calls;
  if (c) {
    s->free_calls = c->next_free;
  } else {
    if ((c = calloc(1, sizeof *c)) == NULL)
      return NULL;
    lua_State *L = s->L;
    lua_pushcfunction(L, new_call_thread);
    lua_pushlightuserdata(L, c);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
      /* The thread, if made, is garbage; the slot, if taken, a leak of
       * one registry entry in a state that is out of memory anyway. */
      lua_settop(L, 0);
      free(c);
      return NULL;
    }
    script_set_ctx(c->co, &c->ctx);
    c->ctx.thread = c->co;
    c->ctx.sleep = script_sleep_start;
    c->ctx.resume = script_resume_parked;
    c->s = s;
  }
  c->ctx.kind = CTX_CALL;
  script_rearm(c->co, &c->ctx, s->opts.max_instructions);
  c->ctx.slice = SLICE_INSTRUCTIONS;
  c->ctx.sleeping = false;
  c->ctx.wrote = 0;
  c->holding = false;
  c->ctx.outbound = NULL;
  buf_reset(&c->ctx.calls);
  c->ctx.ncalls = 0;
  c->err_desc[0] = c->err_msg[0] = '\0';
  c->rule = -1;
  c->step = 0;
  c->err_code = 0;
  c->handled_error = false;
  c->proxied = false;
  c->ud = NULL;
  script_retain(s);
  return c;
}

void script_call_put(script_call_t *c) {
  script_t *s = c->s;
  if (c->ud) {
    c->ud->call = NULL; /* a kept request object now raises */
    lua_pushboolean(s->L, 0);
    lua_rawseti(s->L, LUA_REGISTRYINDEX, c->req_slot);
    c->ud = NULL;
  }
  if (lua_status(c->co) != LUA_OK)
    lua_resetthread(c->co);
  lua_settop(c->co, 0);
  c->req = NULL;
  c->resp = NULL;
  c->origin = NULL;
  c->done = NULL;
  c->next_free = s->free_calls;
  s->free_calls = c;
  script_release(s); /* last: may free s */
}

/* Everything h1mock does with Lua values between two resumes runs in
 * protected mode on the main state: a metamethod of the provision's, a
 * memory error or the budget running out there becomes an error we catch,
 * never a panic. Values cross between the main state and the request's
 * thread with lua_xmove, which does not raise. */

const char *script_method_of(const script_call_t *c) {
  const char *m = http_method_name(c->req->method);
  return m ? m : "?";
}

/* The request's decoded path for a log line, escaped into `scratch`. */
const char *script_log_path(const script_call_t *c, buf_t *scratch) {
  return text_escape_str(scratch, c->req->path, c->req->path_len, LOG_PATH_MAX, TEXT_ESCAPE_VALUE);
}

static void fail_plain(script_call_t *c, int code, enum call_stage next) {
  script_error_page(c->resp, code, c->err_desc[0] ? c->err_desc : NULL);
  c->handled_error = true;
  c->stage = next;
  c->step = 0;
}

/* An HTTP error for this request: the provision's handler when it has one
 * (and is not what failed), else the default page. */
static void http_error(script_call_t *c, int code) {
  if (code >= 0 && code < 600 && c->s->handlers[code] && !c->handled_error) {
    c->err_code = code;
    c->stage = STAGE_HANDLER;
  } else {
    fail_plain(c, code, STAGE_AFTER);
  }
}

static const char *stage_name(const script_call_t *c) {
  switch (c->stage) {
  case STAGE_BEFORE: return "before_request hook";
  case STAGE_VIEW: return "view";
  case STAGE_HANDLER: return "error handler";
  default: return "after_request hook";
  }
}

static const char *endpoint_of(const script_call_t *c) {
  return c->rule >= 0 ? c->s->rules[c->rule].endpoint : "-";
}

/* The provision failed in the current stage: log it, answer 500 (through
 * the 500 handler when the view or a before hook failed). */
static void stage_failed(script_call_t *c, const char *what) {
  buf_t path = BUF_INIT, msg = BUF_INIT;
  /* The path and the message may quote what the client sent (a decoded
   * %0a, a header value): escaped, so that they cannot forge a log line. */
  log_error(c->s->opts.log, "%s %s: %s '%s' failed: %s", script_method_of(c),
            script_log_path(c, &path), stage_name(c), endpoint_of(c),
            text_escape_str(&msg, what, strlen(what), LOG_MESSAGE_MAX, TEXT_ESCAPE_MESSAGE));
  buf_free(&path);
  buf_free(&msg);
  c->err_desc[0] = '\0';
  snprintf(c->err_msg, sizeof c->err_msg, "%.399s", what);
  if (c->stage == STAGE_VIEW || c->stage == STAGE_BEFORE)
    http_error(c, 500);
  else
    fail_plain(c, 500, c->stage == STAGE_HANDLER ? STAGE_AFTER : STAGE_DONE);
}

/* Runs f(c, values...) on the main state under lua_pcall, with the `n`
 * values on top of the main stack as arguments. Returns LUA_OK, or an error
 * status for step_failed (the error value, if any, on the main stack). */
static int protect(script_call_t *c, lua_CFunction f, int n, int nresults) {
  script_t *s = c->s;
  lua_State *L = s->L;
  script_rearm(L, &s->main_ctx, s->opts.max_instructions);
  s->heap.refused = false;
  if (!lua_checkstack(L, 3))
    return LUA_ERRMEM; /* step_failed reads no error value for this status */
  lua_pushcfunction(L, f);
  lua_pushlightuserdata(L, c);
  lua_rotate(L, -(n + 2), 2);
  return lua_pcall(L, n + 1, nresults, 0);
}

static script_call_t *call_arg(lua_State *L) {
  script_call_t *c = lua_touserdata(L, 1);
  lua_remove(L, 1);
  return c;
}

static void push_request(lua_State *L, script_call_t *c) {
  if (c->ud == NULL) {
    script_push_request(L, c);
    lua_pushvalue(L, -1);
    lua_rawseti(L, LUA_REGISTRYINDEX, c->req_slot);
  } else {
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->req_slot);
  }
}

/* Makes `request` the global for this call's request (rawset: a provision's
 * __newindex on _G must not run here). */
static void set_request_global(lua_State *L, script_call_t *c) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
  lua_pushliteral(L, "request");
  push_request(L, c);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

static int request_global_step(lua_State *L) {
  set_request_global(L, call_arg(L));
  return 0;
}

/* Returns the function of the current stage and its arguments, or nothing
 * when the stage has nothing (more) to run (the stage moves on). */
static int stage_setup(lua_State *L) {
  script_call_t *c = call_arg(L);
  script_t *s = c->s;
  set_request_global(L, c);
  switch (c->stage) {
  case STAGE_BEFORE:
    if (c->step >= s->nbefore) {
      c->stage = STAGE_VIEW;
      return 0;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->before[c->step]);
    return 1;
  case STAGE_VIEW: {
    const struct script_rule *r = &s->rules[c->rule];
    luaL_checkstack(L, (int)c->match.nvars + r->ndefaults + 4, NULL);
    lua_rawgeti(L, LUA_REGISTRYINDEX, r->view_ref);
    push_request(L, c);
    for (size_t i = 0; i < c->match.nvars; i++)
      script_push_var(L, &c->match.vars[i]);
    if (r->ndefaults) {
      lua_rawgeti(L, LUA_REGISTRYINDEX, r->defaults_ref);
      int t = lua_gettop(L);
      for (int i = 1; i <= r->ndefaults; i++) {
        lua_rawgeti(L, t, i);
        lua_rawgeti(L, -1, 2);
        lua_remove(L, -2);
      }
      lua_remove(L, t);
    }
    return 2 + (int)c->match.nvars + r->ndefaults;
  }
  case STAGE_HANDLER:
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->handlers[c->err_code]);
    script_exception_push(L, c->err_code, c->err_desc[0] ? c->err_desc : NULL);
    if (c->err_code == 500 && c->err_msg[0]) {
      lua_pushstring(L, c->err_msg);
      lua_setfield(L, -2, "original_exception");
    }
    return 2;
  case STAGE_AFTER:
    if (c->step >= s->nafter) {
      c->stage = STAGE_DONE;
      return 0;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->after[s->nafter - 1 - c->step]);
    script_response_push(L, c->resp);
    return 2;
  default: return 0;
  }
}

/* Raises the sentence in err (no position: it is about a returned value). */
static int raise_text(lua_State *L, const char *err) {
  lua_pushstring(L, err);
  return lua_error(L);
}

/* A stage returned the values now on the main stack (after the call). */
static int stage_results(lua_State *L) {
  script_call_t *c = call_arg(L);
  int nres = lua_gettop(L);
  char err[512];
  switch (c->stage) {
  case STAGE_BEFORE:
    if (nres == 0 || lua_isnil(L, 1)) {
      c->step++;
      return 0;
    }
    break;
  case STAGE_AFTER:
    if (nres == 0 || script_exception_code(L, 1) != 0)
      return raise_text(L, "an after_request hook must return the response it was given");
    if (script_normalize(L, 1, 1, 200, c->resp, err, sizeof err))
      return raise_text(L, err);
    c->step++;
    return 0;
  default: break;
  }
  /* As in Flask, an error handler that gives no status answers 200. */
  if (script_normalize(L, 1, nres, 200, c->resp, err, sizeof err))
    return raise_text(L, err);
  if (c->stage == STAGE_HANDLER)
    c->handled_error = true;
  c->stage = STAGE_AFTER;
  c->step = 0;
  return 0;
}

/* The thread failed with the error value now on the main stack. */
static int stage_error(lua_State *L) {
  script_call_t *c = call_arg(L);
  int code = script_exception_code(L, 1);
  if (code > 0 && c->stage != STAGE_AFTER) {
    /* abort(): not a failure of the provision. */
    if (code < 400 || code > 599)
      code = 500;
    lua_pushliteral(L, "response");
    if (lua_rawget(L, 1) != LUA_TNIL) {
      char err[256];
      if (script_normalize(L, lua_gettop(L), 1, 200, c->resp, err, sizeof err))
        return raise_text(L, err);
      c->stage = STAGE_AFTER;
      c->step = 0;
      return 0;
    }
    lua_pushliteral(L, "description");
    lua_rawget(L, 1);
    const char *desc = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    snprintf(c->err_desc, sizeof c->err_desc, "%s", desc ? desc : "");
    if (c->stage == STAGE_HANDLER)
      c->handled_error = true;
    http_error(c, code);
    return 0;
  }
  /* Only strings and numbers are read: a __tostring is provision code. */
  const char *msg = lua_type(L, 1) == LUA_TSTRING || lua_type(L, 1) == LUA_TNUMBER
                        ? lua_tostring(L, 1)
                        : lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  luaL_traceback(L, c->co, msg, 0);
  stage_failed(c, lua_tostring(L, -1));
  snprintf(c->err_msg, sizeof c->err_msg, "%s", msg);
  return 0;
}

static size_t allow_value(uint64_t allowed, char *value, size_t size);

/* The provision's CORS headers on the final answer, after the hooks:
 * what a view or a hook set wins (cors_apply leaves such an answer). */
static void add_cors(script_call_t *c) {
  if (!c->s->cors.on)
    return;
  char allow[512];
  bool has_rule = c->match.allowed != 0;
  if (has_rule)
    allow_value(c->match.allowed, allow, sizeof allow);
  if (cors_apply(&c->s->cors, c->req, c->resp, has_rule ? allow : NULL))
    log_error(c->s->opts.log, "%s: out of memory for the CORS headers", script_method_of(c));
}

/* The answer is final: note who gave it, for the journal, the metrics and
 * the access log (copied: the provision may be gone when they read it). */
void script_note_origin(script_call_t *c) {
  add_cors(c);
  origin_t *o = c->origin;
  origin_reset(o);
  o->matched = c->rule >= 0;
  o->proxied = c->proxied;
  if (o->matched) {
    const char *e = c->s->rules[c->rule].endpoint;
    buf_append(&o->endpoint, e, strlen(e));
  }
  buf_append(&o->provision, c->s->name, c->s->name_len);
  buf_append(&o->calls, c->ctx.calls.data, c->ctx.calls.len);
}

/* A step failed for the reason `what` (a C string: pushing a Lua string
 * could itself fail); the main stack is emptied. */
static void step_failed_with(script_call_t *c, const char *what) {
  stage_failed(c, what);
  lua_settop(c->s->L, 0);
}

/* After a protected step failed with status `st`: its error value is on
 * the main stack. */
static void step_failed(script_call_t *c, int st) {
  lua_State *L = c->s->L;
  char what[200];
  if (st == LUA_ERRMEM)
    step_failed_with(c, script_memory_text(c->s, what, sizeof what));
  else
    step_failed_with(c, lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                                                       : "error while handling the result");
}

/* The request's thread ran out of memory: the log and the 500 say where
 * and why. Its stack is released first, and the garbage it leaves (often
 * close to the limit) is collected now rather than at the next failing
 * allocation. */
static void memory_failed(script_call_t *c) {
  lua_State *L = c->s->L, *co = c->co;
  char at[300], what[200], msg[520];
  script_where(co, at, sizeof at);
  snprintf(msg, sizeof msg, "%s: %s", at, script_memory_text(c->s, what, sizeof what));
  lua_resetthread(co);
  lua_settop(co, 0); /* resetthread leaves the error value there */
  lua_settop(L, 0);
  lua_gc(L, LUA_GCCOLLECT);
  step_failed_with(c, msg);
}

/* Runs stages until the request is answered or sleeps. `resuming` continues
 * a thread that slept. */
static enum script_status run_stages(script_call_t *c, bool resuming) {
  lua_State *L = c->s->L, *co = c->co;
  for (;;) {
    int nargs = 0, pst;
    if (resuming) {
      resuming = false;
      if ((pst = protect(c, request_global_step, 0, 0)) != LUA_OK) {
        lua_resetthread(co);
        step_failed(c, pst);
        continue;
      }
    } else {
      if (c->stage == STAGE_DONE)
        return SCRIPT_DONE;
      if ((pst = protect(c, stage_setup, 0, LUA_MULTRET)) != LUA_OK) {
        step_failed(c, pst);
        continue;
      }
      int n = lua_gettop(L);
      if (n == 0)
        continue;
      if (!lua_checkstack(co, n)) {
        step_failed_with(c, "not enough memory");
        continue;
      }
      lua_xmove(L, co, n);
      nargs = n - 1;
    }
    int nres = 0;
    c->s->heap.refused = false;
    int st = lua_resume(co, L, nargs, &nres);
    if (st == LUA_YIELD && c->ctx.sleeping)
      return SCRIPT_PENDING;
    if (c->ctx.killed) {
      buf_t path = BUF_INIT;
      log_error(c->s->opts.log,
                "%s %s: %s '%s' stopped at %s: it ran past the instruction budget (%lld)",
                script_method_of(c), script_log_path(c, &path), stage_name(c), endpoint_of(c),
                c->ctx.where, (long long)c->s->opts.max_instructions);
      buf_free(&path);
      lua_resetthread(co);
      c->err_desc[0] = '\0';
      fail_plain(c, 500, STAGE_DONE);
      continue;
    }
    if (st == LUA_YIELD) {
      lua_resetthread(co);
      step_failed_with(c, "coroutine.yield() outside a coroutine");
      continue;
    }
    if (st == LUA_ERRMEM) {
      memory_failed(c);
      continue;
    }
    if (st == LUA_OK) {
      if (!lua_checkstack(L, nres + 3)) {
        lua_settop(co, 0);
        step_failed_with(c, "not enough memory");
        continue;
      }
      lua_xmove(co, L, nres);
      pst = protect(c, stage_results, nres, 0);
    } else {
      lua_xmove(co, L, 1);
      pst = protect(c, stage_error, 1, 0);
      lua_resetthread(co);
    }
    if (pst != LUA_OK)
      step_failed(c, pst);
    lua_settop(L, 0);
    lua_settop(co, 0);
  }
}

/* run_stages, with the watchdog told which request keeps the loop busy:
 * one call of this is one event of the loop. */
enum script_status script_run(script_call_t *c, bool resuming) {
  const script_t *s = c->s;
  watchdog_enter(s->opts.watchdog, script_method_of(c), c->req->path, c->req->path_len,
                 c->rule >= 0 ? s->rules[c->rule].endpoint : NULL, s->file);
  enum script_status st = run_stages(c, resuming);
  watchdog_leave(s->opts.watchdog);
  return st;
}

/* The methods of `allowed` as an Allow header value, "GET, HEAD, OPTIONS";
 * returns its length. */
static size_t allow_value(uint64_t allowed, char *value, size_t size) {
  /* GET implies HEAD (set by the router's caller); OPTIONS is always served. */
  allowed |= 1ULL << HTTP_OPTIONS;
  const char *names[64];
  size_t n = 0;
  for (int m = 0; m < 64; m++)
    if (allowed & (1ULL << m))
      names[n++] = http_method_name(m);
  for (size_t i = 1; i < n; i++)
    for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
      const char *t = names[j];
      names[j] = names[j - 1];
      names[j - 1] = t;
    }
  size_t len = 0;
  value[0] = '\0';
  for (size_t i = 0; i < n && len < size - 32; i++)
    len += (size_t)snprintf(value + len, size - len, "%s%s", i ? ", " : "", names[i]);
  return len;
}

static void append_allow(http_response_t *resp, uint64_t allowed) {
  char value[512];
  size_t len = allow_value(allowed, value, sizeof value);
  http_response_header(resp, "Allow", 5, value, len);
}

/* A 405 says which method was refused and which ones the URL takes, on
 * the default page and in the error handler's e.description: the full
 * "no rule" guide of a 404 would send the reader to write a rule that
 * exists already. */
static void method_not_allowed(script_call_t *c) {
  char value[512];
  allow_value(c->match.allowed, value, sizeof value);
  snprintf(c->err_desc, sizeof c->err_desc, "This URL does not accept %s; it accepts %.300s.",
           script_method_of(c), value);
  http_error(c, 405);
}

static void redirect_slash(script_call_t *c) {
  const http_request_t *req = c->req;
  buf_t loc = BUF_INIT;
  buf_append(&loc, req->raw_path, req->raw_path_len);
  buf_putc(&loc, '/');
  if (req->query_len) {
    buf_putc(&loc, '?');
    buf_append(&loc, req->query, req->query_len);
  }
  script_error_page(c->resp, 308, NULL);
  http_response_header(c->resp, "Location", 8, loc.data, loc.len);
  buf_free(&loc);
}

enum script_status script_dispatch(script_t *s, const http_request_t *req, const char *remote_addr,
                                   http_response_t *resp, origin_t *origin, script_done_fn done,
                                   void *data, script_call_t **out) {
  script_call_t *c = call_get(s);
  *out = c;
  http_response_reset(resp);
  if (c == NULL) {
    log_error(s->opts.log, "%s %.*s: no memory for a Lua thread in provision %s",
              http_method_name(req->method) ? http_method_name(req->method) : "?",
              (int)req->path_len, req->path, s->file);
    script_error_page(resp, 503, "out of memory");
    return SCRIPT_DONE;
  }
  c->req = req;
  c->resp = resp;
  c->origin = origin;
  c->done = done;
  c->data = data;
  c->remote = remote_addr;

  enum router_result rr =
      router_match(s->router, req->path, req->path_len, req->method, &c->match);
  switch (rr) {
  case ROUTER_FOUND:
    c->rule = c->match.rule;
    c->stage = s->nbefore ? STAGE_BEFORE : STAGE_VIEW;
    break;
  case ROUTER_REDIRECT_SLASH:
    redirect_slash(c);
    c->stage = STAGE_AFTER;
    break;
  case ROUTER_METHOD_NOT_ALLOWED:
    if (req->method == HTTP_OPTIONS) {
      append_allow(resp, c->match.allowed);
      /* A CORS preflight's answer: 204, its headers added at the end. */
      if (s->cors.on && cors_is_preflight(req))
        resp->status = 204;
      c->stage = STAGE_AFTER;
    } else {
      method_not_allowed(c);
      if (c->stage == STAGE_AFTER)
        append_allow(resp, c->match.allowed);
    }
    break;
  default:
    /* Unrouted: to the upstream when there is one (it answers its own
     * preflights); else a preflight is let through, so that the request
     * itself gets the 404, which a page can read (with CORS). */
    if (s->opts.proxy != NULL) {
      if (script_forward(c))
        return SCRIPT_PENDING;
    } else if (s->cors.on && cors_is_preflight(req)) {
      resp->status = 204;
      c->stage = STAGE_AFTER;
    } else {
      http_error(c, 404);
    }
    break;
  }
  if (script_run(c, false) == SCRIPT_PENDING)
    return SCRIPT_PENDING;
  /* 405 answered by a handler still says what is allowed. */
  if (rr == ROUTER_METHOD_NOT_ALLOWED && resp->status == 405 && c->err_code == 405)
    append_allow(resp, c->match.allowed);
  script_note_origin(c);
  if (script_settle(c) == SCRIPT_PENDING)
    return SCRIPT_PENDING;
  *out = NULL; /* pooled again below: nothing left to abandon */
  script_finish(c, false);
  return SCRIPT_DONE;
}
