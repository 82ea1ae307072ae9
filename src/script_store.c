/* script_store.c - the `store` global: one C document store shared by
 * every provision (it outlives provision swaps), holding JSON-encoded Lua
 * values. */
#include <errno.h>
#include <string.h>

#include "script_int.h"
#include "script_json.h"
#include "store.h"

/* The store is the first upvalue of every function of the `store` table. */
static store_t *need_store(lua_State *L, const char *fn) {
  store_t *st = lua_touserdata(L, lua_upvalueindex(1));
  if (st == NULL)
    luaL_error(L, "%s: no store is attached", fn);
  return st;
}

/* A write the running code made: its request (or load) answers only once
 * the write is durable (script.c). Coroutines share their creator's ctx. */
static void note_write(lua_State *L, const store_t *st) {
  script_ctx_t *ctx = script_ctx(L);
  if (ctx)
    ctx->wrote = store_seq(st);
}

/* Write results: misuse raises, a store that refuses writes answers nil,
 * message. */
static int write_result(lua_State *L, store_t *st, int rc, const char *fn) {
  if (rc == 0) {
    note_write(L, st);
    return lua_pushboolean(L, 1), 1;
  }
  if (rc == -ENOMEM)
    return luaL_error(L, "%s: out of memory", fn);
  if (rc == -EINVAL)
    return luaL_error(L, "%s: collection and id must be 1 to 1024 bytes", fn);
  char why[256];
  store_status(st, why, sizeof why);
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", fn, why[0] ? why : strerror(-rc));
  return 2;
}

static int l_put(lua_State *L) {
  store_t *st = need_store(L, "store.put");
  size_t clen, idlen;
  const char *coll = luaL_checklstring(L, 1, &clen);
  const char *id = luaL_checklstring(L, 2, &idlen);
  luaL_checkany(L, 3);
  buf_t text = BUF_INIT;
  char err[256];
  int rc = script_json_encode(L, 3, &text, err, sizeof err);
  if (rc == 0)
    rc = store_put(st, coll, clen, id, idlen, text.data ? text.data : "", text.len);
  else if (rc == -EINVAL) {
    buf_free(&text);
    return luaL_error(L, "store.put: %s", err);
  }
  buf_free(&text);
  return write_result(L, st, rc, "store.put");
}

static void push_value(lua_State *L, const void *val, size_t len) {
  char err[128];
  if (script_json_decode(L, val, len, err, sizeof err))
    lua_pushnil(L); /* cannot happen: we wrote it */
}

static int l_get(lua_State *L) {
  store_t *st = need_store(L, "store.get");
  size_t clen, idlen, vlen;
  const char *coll = luaL_checklstring(L, 1, &clen);
  const char *id = luaL_checklstring(L, 2, &idlen);
  const void *val;
  if (store_get(st, coll, clen, id, idlen, &val, &vlen) != 0)
    return lua_pushnil(L), 1;
  push_value(L, val, vlen);
  return 1;
}

static int l_delete(lua_State *L) {
  store_t *st = need_store(L, "store.delete");
  size_t clen, idlen;
  const char *coll = luaL_checklstring(L, 1, &clen);
  const char *id = luaL_checklstring(L, 2, &idlen);
  int rc = store_delete(st, coll, clen, id, idlen);
  if (rc == -ENOENT)
    return lua_pushboolean(L, 0), 1;
  return write_result(L, st, rc, "store.delete");
}

struct list_ctx {
  lua_State *L;
  lua_Integer n;
};

static int list_one(void *arg, const char *id, size_t idlen, const void *val, size_t vlen) {
  (void)id, (void)idlen;
  struct list_ctx *lc = arg;
  push_value(lc->L, val, vlen);
  lua_rawseti(lc->L, -2, ++lc->n);
  return 0;
}

static void push_array(lua_State *L, int n) {
  lua_createtable(L, n, 0);
  script_json_push_array_mt(L);
  lua_setmetatable(L, -2);
}

static lua_Integer opt_field(lua_State *L, int t, const char *k) {
  lua_getfield(L, t, k);
  lua_Integer v = luaL_optinteger(L, -1, 0);
  lua_pop(L, 1);
  if (v < 0)
    luaL_error(L, "store.list: %s must be >= 0", k);
  return v;
}

static int l_list(lua_State *L) {
  store_t *st = need_store(L, "store.list");
  size_t clen;
  const char *coll = luaL_checklstring(L, 1, &clen);
  lua_Integer offset = 0, limit = 0;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    offset = opt_field(L, 2, "offset");
    limit = opt_field(L, 2, "limit");
  }
  size_t count = store_count(st, coll, clen);
  push_array(L, (int)(count < 1024 ? count : 1024));
  struct list_ctx lc = {L, 0};
  store_list(st, coll, clen, (size_t)offset, (size_t)limit, list_one, &lc);
  return 1;
}

static int l_count(lua_State *L) {
  store_t *st = need_store(L, "store.count");
  size_t clen;
  const char *coll = luaL_checklstring(L, 1, &clen);
  lua_pushinteger(L, (lua_Integer)store_count(st, coll, clen));
  return 1;
}

static int collection_one(void *arg, const char *name, size_t len, size_t count) {
  (void)count;
  struct list_ctx *lc = arg;
  lua_pushlstring(lc->L, name, len);
  lua_rawseti(lc->L, -2, ++lc->n);
  return 0;
}

static int l_collections(lua_State *L) {
  store_t *st = need_store(L, "store.collections");
  push_array(L, 0);
  struct list_ctx lc = {L, 0};
  store_collections(st, collection_one, &lc);
  return 1;
}

static int l_clear(lua_State *L) {
  store_t *st = need_store(L, "store.clear");
  size_t clen = 0;
  const char *coll = luaL_optlstring(L, 1, NULL, &clen);
  return write_result(L, st, store_clear(st, coll, clen), "store.clear");
}

/* "ok", or "degraded" and why: the store refuses writes. */
static int l_status(lua_State *L) {
  store_t *st = need_store(L, "store.status");
  char why[256];
  if (store_status(st, why, sizeof why) == 0)
    return lua_pushliteral(L, "ok"), 1;
  lua_pushliteral(L, "degraded");
  lua_pushstring(L, why);
  return 2;
}

static int l_uuid(lua_State *L) {
  char id[37];
  store_uuid(id);
  lua_pushlstring(L, id, 36);
  return 1;
}

void script_store_open(lua_State *L, store_t *store) {
  static const luaL_Reg fns[] = {
      {"put", l_put},     {"get", l_get},     {"delete", l_delete},
      {"list", l_list},   {"count", l_count}, {"collections", l_collections},
      {"clear", l_clear}, {"uuid", l_uuid},   {"status", l_status},
      {NULL, NULL},
  };
  luaL_newlibtable(L, fns);
  lua_pushlightuserdata(L, store);
  luaL_setfuncs(L, fns, 1);
  lua_setglobal(L, "store");
}
