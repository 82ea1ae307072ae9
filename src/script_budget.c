/* script_budget.c - the instruction budget of the code a provision runs:
 * the context every thread carries, the count hook that charges the VM's
 * instructions, and the charges of C functions the hook cannot see.
 *
 * When the budget runs out on the thread h1mock resumes, the hook yields
 * and the driver (script.c) drops the thread, which no pcall can catch;
 * elsewhere (a coroutine of the provision's, a C call that cannot yield)
 * it raises at every instruction from then on. */
#include <stdio.h>

#include "script_int.h"

script_ctx_t *script_ctx(lua_State *L) { return *(script_ctx_t **)lua_getextraspace(L); }

static void count_hook(lua_State *L, lua_Debug *ar);

void script_budget_hook(lua_State *L) { lua_sethook(L, count_hook, LUA_MASKCOUNT, HOOK_EVERY); }

void script_rearm(lua_State *L, script_ctx_t *ctx, int64_t budget) {
  if (ctx->killed)
    lua_sethook(L, count_hook, LUA_MASKCOUNT, HOOK_EVERY);
  ctx->killed = false;
  ctx->budget = budget;
}

void script_set_ctx(lua_State *L, script_ctx_t *ctx) {
  *(script_ctx_t **)lua_getextraspace(L) = ctx;
}

void script_where(lua_State *co, char *out, size_t n) {
  lua_Debug ar;
  for (int level = 0; lua_getstack(co, level, &ar); level++) {
    if (lua_getinfo(co, "Sl", &ar) && ar.currentline > 0) {
      snprintf(out, n, "%s:%d", ar.short_src, ar.currentline);
      return;
    }
  }
  snprintf(out, n, "?");
}

/* The budget of ctx ran out while L ran: stop it. On our own thread a
 * yield does it (run() drops a killed thread); inside a hook lua_yield
 * returns and the thread yields when the hook returns, inside a C function
 * it does not return. */
static void budget_spent(lua_State *L, script_ctx_t *ctx) {
  ctx->killed = true;
  if (L == ctx->thread && lua_isyieldable(L)) {
    lua_yield(L, 0);
    return;
  }
  /* In a coroutine of the provision's, or inside a C call that cannot yield
   * (a sort comparator, say): raise, and from now on at every instruction,
   * so that no pcall loop can outlast it; our own thread is dropped as soon
   * as it runs again. */
  lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
  luaL_error(L, "instruction budget exhausted");
}

static void count_hook(lua_State *L, lua_Debug *ar) {
  script_ctx_t *ctx = script_ctx(L);
  if (ctx == NULL)
    return;
  ctx->budget -= HOOK_EVERY;
  bool ours = L == ctx->thread;
  if (ctx->budget > 0) {
    if (ctx->kind == CTX_CALL && (ctx->slice -= HOOK_EVERY) <= 0 && ours && lua_isyieldable(L)) {
      ctx->slice = SLICE_INSTRUCTIONS;
      ctx->sleep(ctx, 0);
      lua_yield(L, 0);
    }
    return;
  }
  /* Read the line now: after a hook yields, Lua points at the instruction
   * before, which can be on an earlier line. Only where the budget ran out
   * first: after a kill that could only raise, every instruction raises
   * again, in whatever code (xpcall's, say) the error unwinds through. */
  if (!ctx->killed && lua_getinfo(L, "Sl", ar))
    snprintf(ctx->where, sizeof ctx->where, "%s:%d", ar->short_src, ar->currentline);
  budget_spent(L, ctx);
}

int64_t script_budget_left(lua_State *L) {
  script_ctx_t *ctx = script_ctx(L);
  if (ctx == NULL)
    return INT64_MAX;
  return ctx->budget > 0 ? ctx->budget : 0;
}

void script_charge(lua_State *L, int64_t cost) {
  script_ctx_t *ctx = script_ctx(L);
  if (ctx == NULL || cost <= 0)
    return;
  /* The time counts towards the slice too: the next hook lets other
   * connections in (a C function itself cannot be paused). */
  ctx->slice = cost >= ctx->slice ? 0 : ctx->slice - cost;
  if (cost < ctx->budget) {
    ctx->budget -= cost;
    return;
  }
  ctx->budget = 0;
  /* The C function itself has no line: name the Lua code that called it
   * (only where the budget ran out first, as count_hook does). */
  if (!ctx->killed)
    script_where(L, ctx->where, sizeof ctx->where);
  budget_spent(L, ctx);
}
