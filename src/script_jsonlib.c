/* script_jsonlib.c - the `json` module of provisions: json.encode and
 * json.decode over the codec of script_json.c, charged to the instruction
 * budget of the code that calls them, and json.null, json.empty_array,
 * json.array_mt. */
#include <errno.h>

#include "script_int.h"
#include "script_json.h"

static int buffer_gc(lua_State *L) {
  buf_free(lua_touserdata(L, 1));
  return 0;
}

/* json.encode(v). The output buffer is an upvalue reused across calls; it
 * never sees two encodes at once because encoding calls no Lua code. What
 * is left of the instruction budget is the allowance: a value that shares
 * one big table many times would otherwise write for as long as it likes
 * inside one call. Running out stops the request like the count hook. */
static int l_encode(lua_State *L) {
  luaL_checkany(L, 1);
  buf_t *b = lua_touserdata(L, lua_upvalueindex(1));
  char err[256];
  b->len = 0;
  int64_t allowed = script_budget_left(L), left = allowed;
  int rc = script_json_encode_budgeted(L, 1, b, &left, err, sizeof err);
  if (rc) {
    buf_shrink(b, 1 << 16);
    if (rc == -E2BIG)
      script_charge(L, SCRIPT_CHARGE_ALL); /* does not return */
    return luaL_error(L, "json.encode: %s", err);
  }
  lua_pushlstring(L, b->data ? b->data : "", b->len);
  /* Do not pin the memory of one huge response for the life of the state. */
  buf_shrink(b, 1 << 16);
  script_charge(L, allowed - left);
  return 1;
}

/* json.decode(s): malformed text is a runtime failure (nil, message), a
 * non-string argument is misuse (raises). Charged like json.encode. */
static int l_decode(lua_State *L) {
  luaL_checktype(L, 1, LUA_TSTRING);
  size_t len;
  const char *s = lua_tolstring(L, 1, &len);
  char err[256];
  int64_t allowed = script_budget_left(L), left = allowed;
  int rc = script_json_decode_budgeted(L, s, len, &left, err, sizeof err);
  if (rc == -E2BIG)
    script_charge(L, SCRIPT_CHARGE_ALL); /* does not return */
  /* What a failed decode read is charged too. */
  script_charge(L, rc ? (int64_t)len : allowed - left);
  if (rc == 0)
    return 1;
  lua_pushnil(L);
  lua_pushfstring(L, "json.decode: %s", err);
  return 2;
}

int script_jsonlib_open(lua_State *L) {
  lua_createtable(L, 0, 5);
  buf_t *b = lua_newuserdatauv(L, sizeof *b, 0);
  *b = (buf_t)BUF_INIT;
  if (luaL_newmetatable(L, "h1mock.json.buffer")) {
    lua_pushcfunction(L, buffer_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  lua_pushcclosure(L, l_encode, 1);
  lua_setfield(L, -2, "encode");
  lua_pushcfunction(L, l_decode);
  lua_setfield(L, -2, "decode");
  script_json_push_null(L);
  lua_setfield(L, -2, "null");
  script_json_push_empty_array(L);
  lua_setfield(L, -2, "empty_array");
  script_json_push_array_mt(L);
  lua_setfield(L, -2, "array_mt");
  return 1;
}
