/* script_load.c - a provision's Lua state: made, sandboxed, the runtime
 * and the provision run in it, registerRules() called; counted and
 * limited memory; reference counted and closed off the loop when the last
 * request on it ends. */
#include "script.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "proxy.h"
#include "script_int.h"
#include "watchdog.h"

script_runtime_t *script_runtime_new(void) { return calloc(1, sizeof(script_runtime_t)); }

void script_runtime_free(script_runtime_t *rt) {
  if (rt == NULL)
    return;
  for (size_t i = 0; i < SCRIPT_EMBEDDED_MAX; i++)
    buf_free(&rt->compiled[i].code);
  free(rt);
}

/* The allocator of every provision's state: realloc, counted, refused past
 * the limit. Lua never needs a shrinking call to fail, and when a growing
 * one fails it runs an emergency full collection (even after
 * collectgarbage("stop")) and tries once more before it raises
 * "not enough memory". */
static void *heap_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  script_heap_t *h = ud;
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    free(ptr);
    h->used -= old;
    return NULL;
  }
  /* used <= limit holds: only growth is refused, and it starts at 0. */
  if (h->limit && nsize > old && nsize - old > h->limit - h->used) {
    h->refused = true;
    return NULL;
  }
  void *p = realloc(ptr, nsize);
  if (p)
    h->used = h->used - old + nsize;
  return p;
}

/* Every call into Lua is protected, so this is a bug of h1mock's; Lua
 * aborts when it returns. Said in the log, not only on a bare stderr. */
static int on_panic(lua_State *L) {
  void *heap;
  lua_getallocf(L, &heap);
  const script_t *s = (const script_t *)((char *)heap - offsetof(script_t, heap));
  log_error(s->opts.log, "Lua panic (an unprotected call into Lua): %s",
            lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?");
  return 0;
}

const char *script_memory_text(const script_t *s, char *out, size_t n) {
  size_t lim = s->heap.limit;
  if (lim == 0 || !s->heap.refused) {
    snprintf(out, n, "not enough memory");
    return out;
  }
  char size[32];
  if (lim % (1u << 30) == 0)
    snprintf(size, sizeof size, "%zuG", lim >> 30);
  else if (lim % (1u << 20) == 0)
    snprintf(size, sizeof size, "%zuM", lim >> 20);
  else if (lim % (1u << 10) == 0)
    snprintf(size, sizeof size, "%zuk", lim >> 10);
  else
    snprintf(size, sizeof size, "%zu", lim);
  snprintf(out, n,
           "not enough memory: the provision's Lua state reached its limit "
           "(--max-lua-memory %s)",
           size);
  return out;
}

/* The error value of a failed thread, as a message. Strings and numbers are
 * read as they are (converted here, not by Lua: no allocation); any other
 * value is named by its type and where it was raised. Its __tostring is
 * provision code and is not run, as at request time. */
static void error_text(lua_State *co, char *out, size_t n) {
  int isnum;
  if (lua_type(co, -1) == LUA_TSTRING) {
    snprintf(out, n, "%s", lua_tostring(co, -1));
  } else if (lua_type(co, -1) == LUA_TNUMBER) {
    lua_Integer i = lua_tointegerx(co, -1, &isnum);
    if (isnum)
      snprintf(out, n, LUA_INTEGER_FMT, i);
    else
      snprintf(out, n, LUA_NUMBER_FMT, lua_tonumber(co, -1));
  } else {
    char at[300];
    script_where(co, at, sizeof at);
    snprintf(out, n, "%s: (error object is a %s value)", at, luaL_typename(co, -1));
  }
}

/* Runs the function under `nargs` arguments on top of L's stack in a fresh
 * thread under the load budget. Pops them. Returns 0, -EINVAL or -ENOMEM
 * with the message in err. Raises only on a memory error of its own. */
static int run_loading(script_t *s, int nargs, char *err, size_t errlen) {
  lua_State *L = s->L;
  lua_State *co = lua_newthread(L);
  lua_insert(L, -(nargs + 2));
  lua_xmove(L, co, nargs + 1);
  script_ctx_t ctx = {.kind = CTX_LOAD, .thread = co, .budget = s->opts.max_instructions};
  script_set_ctx(co, &ctx);
  int nres, rc = 0;
  s->heap.refused = false;
  watchdog_enter(s->opts.watchdog, NULL, NULL, 0, NULL, s->file);
  int st = lua_resume(co, L, nargs, &nres);
  watchdog_leave(s->opts.watchdog);
  char at[300];
  if (ctx.killed) {
    /* Whether our thread yielded or a coroutine of the file's raised, the
     * budget is what stopped it. */
    snprintf(err, errlen, "%s: stopped: the instruction budget (%lld) ran out while loading",
             ctx.where, (long long)s->opts.max_instructions);
    rc = -EINVAL;
  } else if (st == LUA_YIELD) {
    script_where(co, at, sizeof at);
    snprintf(err, errlen, "%s: %s", at,
             ctx.sleeping ? "sleep() is only allowed inside a request"
                          : "coroutine.yield() outside a coroutine");
    rc = -EINVAL;
  } else if (st == LUA_ERRMEM) {
    char what[200];
    script_where(co, at, sizeof at);
    snprintf(err, errlen, "%s: %s", at, script_memory_text(s, what, sizeof what));
    rc = -ENOMEM;
  } else if (st != LUA_OK) {
    error_text(co, err, errlen);
    rc = -EINVAL;
  }
  script_set_ctx(co, NULL);
  lua_pop(L, 1); /* the thread */
  if (ctx.wrote > s->wrote)
    s->wrote = ctx.wrote;
  return rc;
}

static int unknown_global(lua_State *L) {
  return luaL_error(L, "unknown global '%s'", luaL_tolstring(L, 2, NULL));
}

/* Makes reading an undefined global raise "unknown global 'x'". */
static void guard_globals(lua_State *L) {
  lua_pushglobaltable(L);
  lua_newtable(L);
  lua_pushcfunction(L, unknown_global);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);
  lua_pop(L, 1);
}

struct load_args {
  script_t *s;
  const char *chunkname, *source;
  size_t len;
  char *err;
  size_t errlen;
  int rc;
};

/* Builds the state and loads the provision into it; run under lua_pcall,
 * since opening the libraries can raise a memory error once the state has
 * a limit. A provision's own failure is reported in args->rc and err. */
static int load_protected(lua_State *L) {
  struct load_args *a = lua_touserdata(L, 1);
  script_t *s = a->s;
  lua_settop(L, 0);
  /* Requests make short-lived garbage: generational mode suits them, and
   * switching now, on an empty heap, costs nothing (after the load it
   * meant a full collection of everything loaded). */
  lua_gc(L, LUA_GCGEN, 0, 0);

  script_sandbox_open(L, s->dir, s->opts.runtime, s->opts.log);
  script_string_open(L);
  script_jsonlib_open(L);
  lua_setglobal(L, "json");
  script_response_open(L, s->opts.started_at);
  script_string_open_runtime(L);
  script_request_open(L);
  script_app_open(L, s);
  script_store_open(L, s->opts.store);
  script_journal_open(L, s->opts.journal);
  script_http_open(L, s);
  /* `rest` is a global in every provision, like `store`: the embedded
   * lua/rest.lua. */
  lua_getglobal(L, "require");
  lua_pushliteral(L, "h1mock.rest");
  lua_call(L, 1, 1);
  lua_setglobal(L, "rest");

  char name[300];
  snprintf(name, sizeof name, "@%s", a->chunkname);
  int st = luaL_loadbufferx(L, a->source, a->len, name, "t");
  if (st == LUA_ERRMEM) {
    char what[200];
    snprintf(a->err, a->errlen, "%s: %s", a->chunkname, script_memory_text(s, what, sizeof what));
    a->rc = -ENOMEM;
    return 0;
  }
  if (st != LUA_OK) {
    snprintf(a->err, a->errlen, "%s", lua_tostring(L, -1));
    a->rc = -EINVAL;
    return 0;
  }
  /* From here on provision code can run on the main thread too (finalizers
   * during a collection, metamethods while h1mock reads results): give it
   * a budget. */
  s->main_ctx.kind = CTX_MAIN;
  s->main_ctx.budget = s->opts.max_instructions;
  script_set_ctx(L, &s->main_ctx);
  if ((a->rc = run_loading(s, 0, a->err, a->errlen)))
    return 0;
  /* The file has defined its globals; from here on a typo is an error. */
  guard_globals(L);
  lua_pushglobaltable(L);
  lua_pushliteral(L, "registerRules");
  lua_rawget(L, -2);
  lua_remove(L, -2);
  if (!lua_isfunction(L, -1)) {
    snprintf(a->err, a->errlen, "%s: defines no registerRules() function", a->chunkname);
    a->rc = -EINVAL;
    return 0;
  }
  s->loading = true;
  a->rc = run_loading(s, 0, a->err, a->errlen);
  s->loading = false;
  lua_settop(L, 0);
  return 0;
}

int script_load(const char *chunkname, const char *source, size_t len, const script_opts_t *opts,
                script_t **out, char *err, size_t errlen) {
  int rc = -ENOMEM;
  char what[200];
  err[0] = '\0';
  script_t *s = calloc(1, sizeof *s);
  if (s == NULL)
    goto fail;
  s->refs = 1;
  s->opts = *opts;
  if (s->opts.started_at == 0)
    s->opts.started_at = time(NULL);
  const char *why;
  cors_init(&s->cors);
  if (opts->cors && cors_parse(&s->cors, opts->cors, &why) == -ENOMEM)
    goto fail;
  s->heap.limit = opts->max_memory;
  if (opts->dir && (s->dir = strdup(opts->dir)) == NULL)
    goto fail;
  size_t nlen = strlen(chunkname);
  if (nlen > 4 && strcmp(chunkname + nlen - 4, ".lua") == 0)
    nlen -= 4;
  if ((s->name = strndup(chunkname, nlen)) == NULL || (s->file = malloc(nlen + 5)) == NULL)
    goto fail;
  s->name_len = nlen;
  snprintf(s->file, nlen + 5, "%s.lua", s->name);
  s->opts.dir = s->dir;
  if ((s->router = router_new()) == NULL)
    goto fail;
  if ((s->L = lua_newstate(heap_alloc, &s->heap)) == NULL) {
    snprintf(err, errlen, "%s: %s", chunkname, script_memory_text(s, what, sizeof what));
    goto fail;
  }
  lua_State *L = s->L;
  lua_atpanic(L, on_panic);
  script_set_ctx(L, NULL);
  /* Threads copy the hook of the main thread when they are created. */
  script_budget_hook(L);

  struct load_args a = {s, chunkname, source, len, err, errlen, 0};
  s->heap.refused = false;
  lua_pushcfunction(L, load_protected);
  lua_pushlightuserdata(L, &a);
  int st = lua_pcall(L, 1, 0, 0);
  if (st == LUA_ERRMEM) {
    snprintf(err, errlen, "%s: %s", chunkname, script_memory_text(s, what, sizeof what));
    rc = -ENOMEM;
  } else if (st != LUA_OK) {
    /* Only h1mock's own runtime runs before the provision. */
    snprintf(err, errlen, "%s: the embedded runtime failed: %s", chunkname,
             lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?");
    rc = -EINVAL;
  } else {
    rc = a.rc;
  }
  lua_settop(L, 0);
  if (rc)
    goto fail;
  if (s->main_ctx.wrote > s->wrote)
    s->wrote = s->main_ctx.wrote;
  *out = s;
  return 0;

fail:
  if (rc == -ENOMEM && err[0] == '\0')
    snprintf(err, errlen, "out of memory");
  if (s) {
    s->refs = 0;
    script_release(s);
  }
  *out = NULL;
  return rc;
}

int script_load_default(const script_opts_t *opts, script_t **out, char *err, size_t errlen) {
  static const char builtin[] = SCRIPT_DEFAULT_NAME;
  for (const struct script_embedded *e = script_embedded; e->name; e++) {
    if (strcmp(e->name, "h1mock.default") != 0)
      continue;
    /* The help mode is a mode of the same module (lua/default.lua). */
    static const char help[] = "require(\"h1mock.default\").serve(\"help\")\n";
    int rc = opts->default_help
                 ? script_load("default.lua", help, sizeof help - 1, opts, out, err, errlen)
                 : script_load("default.lua", e->text, e->len, opts, out, err, errlen);
    char *name = rc == 0 ? strdup(builtin) : NULL;
    char *file = rc == 0 ? strdup(builtin) : NULL;
    if (rc == 0 && (name == NULL || file == NULL)) {
      free(name);
      free(file);
      script_release(*out);
      *out = NULL;
      snprintf(err, errlen, "out of memory");
      return -ENOMEM;
    }
    if (rc == 0) {
      free((*out)->name);
      free((*out)->file);
      (*out)->name = name;
      (*out)->file = file;
      (*out)->name_len = sizeof builtin - 1;
    }
    return rc;
  }
  snprintf(err, errlen, "the built-in default is missing from this binary");
  return -EINVAL;
}

void script_retain(script_t *s) { s->refs++; }

static void free_handle(uv_handle_t *h) { free(h); }

static void close_state(uv_work_t *w) {
  script_t *s = w->data;
  if (s->L)
    lua_close(s->L);
  router_free(s->router);
}

static void free_script(uv_work_t *w, int status) {
  (void)status;
  script_t *s = w->data;
  free(s->dir);
  free(s->name);
  free(s->file);
  free(s);
}

static void script_free(script_t *s) {
  script_call_t *c = s->free_calls;
  while (c) {
    script_call_t *next = c->next_free;
    if (c->timer)
      uv_close((uv_handle_t *)c->timer, free_handle);
    if (c->idle)
      uv_close((uv_handle_t *)c->idle, free_handle);
    buf_free(&c->ctx.calls);
    if (c->forward)
      proxy_out_free(c->forward);
    free(c->forward);
    free(c);
    c = next;
  }
  for (size_t i = 0; i < s->nrules; i++)
    free(s->rules[i].endpoint);
  free(s->rules);
  free(s->before);
  free(s->after);
  cors_free(&s->cors);
  s->closing.data = s;
  if (s->L)
    script_rearm(s->L, &s->main_ctx, s->opts.max_instructions);
  /* Freeing a big provision's heap takes longer than serving a request:
   * done on the loop it would stall traffic after every swap. Nothing else
   * can reach the state now, and it holds no finalizer that could touch
   * shared data: provisions cannot set __gc (setmetatable refuses it, the
   * metatables C sets are locked or cleaned), so a pool thread may close it. */
  if (s->opts.loop == NULL ||
      uv_queue_work(s->opts.loop, &s->closing, close_state, free_script) != 0) {
    close_state(&s->closing);
    free_script(&s->closing, 0);
  }
}

void script_release(script_t *s) {
  if (s && --s->refs <= 0)
    script_free(s);
}

size_t script_rule_count(const script_t *s) { return router_count(s->router); }

int script_when_durable(script_t *s, store_waiter_t *w, store_durable_fn fn) {
  return s->opts.store ? store_when_durable(s->opts.store, s->wrote, w, fn) : 0;
}

void script_when_durable_cancel(script_t *s, store_waiter_t *w) {
  if (s->opts.store)
    store_waiter_cancel(s->opts.store, w);
}

const char *script_name(const script_t *s) { return s->name; }

size_t script_memory(const script_t *s) { return s->heap.used; }

size_t script_memory_limit(const script_t *s) { return s->heap.limit; }
