/* script_string.c - the string and table functions that can run long
 * inside C, rebuilt so that the instruction budget sees them.
 *
 * The count hook runs between VM instructions; a C function is one
 * instruction however long it takes. Lua's pattern matcher backtracks
 * without bound (ten `a*` items against 25 bytes take seconds) and
 * string.rep, table.concat, gsub build strings of any size. So
 * string.find/match/gmatch/gsub run on pattern.c's step-counted matcher,
 * with what is left of the budget as their allowance, and the builders
 * charge the budget in proportion to the bytes they write. A request that
 * spends its budget in here is stopped exactly as one that loops in Lua
 * (script_charge).
 *
 * Argument handling follows Lua 5.4's own functions: positions may be
 * negative, find's fourth argument asks for a plain search, gmatch takes a
 * start position, gsub a string, table or function replacement and a
 * maximum count. The error messages are Lua's.
 */
#include <errno.h>
#include <stdalign.h>
#include <stddef.h>
#include <string.h>

#include "pattern.h"
#include "script_int.h"

/* Patterns up to about 90 bytes compile on the C stack; longer ones into a
 * userdata, so that an error or a budget stop, which leave the function by
 * longjmp, leak nothing. */
#define LOCAL_PATTERN_BYTES 8192

typedef struct compiled {
  pattern_t *p;
  alignas(max_align_t) char local[LOCAL_PATTERN_BYTES];
} compiled_t;

/* Compiles pat into c (flags as pattern_compile). Returns the pattern, or
 * NULL with Lua's message in err. A long pattern pushes a userdata that
 * holds it; the caller's stack indices below the top are unaffected. */
static pattern_t *try_compile(lua_State *L, compiled_t *c, const char *pat, size_t len,
                              unsigned flags, char *err, size_t errlen) {
  size_t need = pattern_size(len);
  if (need == 0)
    luaL_error(L, "pattern too long");
  c->p = need <= sizeof c->local ? (pattern_t *)c->local : lua_newuserdatauv(L, need, 0);
  return pattern_compile(c->p, pat, len, flags, err, errlen) ? NULL : c->p;
}

/* The same, raising Lua's message for a malformed pattern. */
static pattern_t *compile(lua_State *L, compiled_t *c, const char *pat, size_t len,
                          unsigned flags) {
  char err[128];
  pattern_t *p = try_compile(L, c, pat, len, flags, err, sizeof err);
  if (p == NULL)
    luaL_error(L, "%s", err);
  return p;
}

/* The allowance given to one matcher run, and the charge for what it took.
 * Running out stops the request (script_charge does not return then). */
static int64_t allowance(lua_State *L) { return script_budget_left(L); }

static void settle(lua_State *L, int64_t allowed, int64_t left, enum pattern_result r) {
  script_charge(L, r == PATTERN_OUT_OF_STEPS ? SCRIPT_CHARGE_ALL : allowed - left);
}

/* Lua's start positions: 1-based, negative from the end, 0 and anything
 * before the start mean 1. Returns a 0-based offset (may exceed len). */
static size_t start_offset(lua_Integer pos, size_t len) {
  if (pos > 0)
    return (size_t)pos - 1;
  if (pos == 0 || pos < -(lua_Integer)len)
    return 0;
  return len + (size_t)pos;
}

/* Pushes capture i of m, or the whole match when the pattern has none and
 * i is 0. Position captures are 1-based integers. */
static void push_capture(lua_State *L, const char *s, const pattern_match_t *m, int i) {
  if (m->ncap == 0) {
    if (i != 0)
      luaL_error(L, "invalid capture index %%%d", i + 1);
    lua_pushlstring(L, s + m->start, m->end - m->start);
  } else if (i >= m->ncap) {
    luaL_error(L, "invalid capture index %%%d", i + 1);
  } else if (m->cap[i].position) {
    lua_pushinteger(L, (lua_Integer)m->cap[i].start + 1);
  } else {
    lua_pushlstring(L, s + m->cap[i].start, m->cap[i].len);
  }
}

/* Pushes every capture (the whole match when there are none and `whole`).
 * Returns how many values were pushed. */
static int push_captures(lua_State *L, const char *s, const pattern_match_t *m, bool whole) {
  int n = m->ncap == 0 && whole ? 1 : m->ncap;
  luaL_checkstack(L, n, "too many captures");
  for (int i = 0; i < n; i++)
    push_capture(L, s, m, i);
  return n;
}

/* A plain search costs one step per SCRIPT_BYTES_PER_STEP bytes searched:
 * memmem is linear, unlike Lua's own plain search. */
static const char *plain_find(lua_State *L, const char *s, size_t len, size_t init,
                              const char *needle, size_t nlen) {
  script_charge(L, script_bytes_cost(len - init + nlen) + 1);
  return memmem(s + init, len - init, needle, nlen);
}

static int find_or_match(lua_State *L, bool find) {
  size_t len, plen;
  const char *s = luaL_checklstring(L, 1, &len);
  const char *pat = luaL_checklstring(L, 2, &plen);
  size_t init = start_offset(luaL_optinteger(L, 3, 1), len);
  if (init > len) {
    luaL_pushfail(L);
    return 1;
  }
  if (find && (lua_toboolean(L, 4) || pattern_is_plain(pat, plen))) {
    const char *at = plain_find(L, s, len, init, pat, plen);
    if (at == NULL) {
      luaL_pushfail(L);
      return 1;
    }
    lua_pushinteger(L, (lua_Integer)(at - s) + 1);
    lua_pushinteger(L, (lua_Integer)(at - s + plen));
    return 2;
  }
  compiled_t c;
  pattern_t *p = compile(L, &c, pat, plen, 0);
  pattern_match_t m;
  int64_t allowed = allowance(L), left = allowed;
  enum pattern_result r = pattern_find(p, s, len, init, &left, &m);
  settle(L, allowed, left, r);
  if (r != PATTERN_MATCH) {
    luaL_pushfail(L);
    return 1;
  }
  if (!find)
    return push_captures(L, s, &m, true);
  lua_pushinteger(L, (lua_Integer)m.start + 1);
  lua_pushinteger(L, (lua_Integer)m.end);
  return 2 + push_captures(L, s, &m, false);
}

static int str_find(lua_State *L) { return find_or_match(L, true); }

static int str_match(lua_State *L) { return find_or_match(L, false); }

/* gmatch's state, in the iterator's upvalue 3; the subject and the pattern
 * text are upvalues 1 and 2 (kept alive), the compiled pattern follows the
 * struct in the same userdata. */
typedef struct gmatch_state {
  size_t next;      /* where the next search starts */
  size_t lastmatch; /* end of the last match, SIZE_MAX before the first */
  pattern_t *p;
} gmatch_state_t;

static int gmatch_next(lua_State *L) {
  size_t len;
  const char *s = lua_tolstring(L, lua_upvalueindex(1), &len);
  gmatch_state_t *g = lua_touserdata(L, lua_upvalueindex(3));
  pattern_match_t m;
  int64_t allowed = allowance(L), left = allowed;
  enum pattern_result r = PATTERN_NOMATCH;
  for (size_t at = g->next; at <= len; at++) {
    r = pattern_match_at(g->p, s, len, at, &left, &m);
    /* An empty match where the last one ended is skipped, as in Lua 5.4. */
    if (r == PATTERN_MATCH && m.end == g->lastmatch)
      r = PATTERN_NOMATCH;
    if (r != PATTERN_NOMATCH)
      break;
  }
  settle(L, allowed, left, r);
  if (r != PATTERN_MATCH) {
    g->next = len + 1;
    return 0;
  }
  g->next = g->lastmatch = m.end;
  return push_captures(L, s, &m, true);
}

/* A '^' in gmatch is a literal: an anchored iteration would make no sense
 * (Lua 5.4 reads it the same way). */
static int str_gmatch(lua_State *L) {
  size_t len, plen;
  luaL_checklstring(L, 1, &len);
  const char *pat = luaL_checklstring(L, 2, &plen);
  size_t init = start_offset(luaL_optinteger(L, 3, 1), len);
  lua_settop(L, 2);
  size_t need = pattern_size(plen);
  if (need == 0 || need > SIZE_MAX - sizeof(gmatch_state_t) - 16)
    return luaL_error(L, "pattern too long");
  gmatch_state_t *g = lua_newuserdatauv(L, sizeof *g + 16 + need, 0);
  g->next = init > len ? len + 1 : init;
  g->lastmatch = SIZE_MAX;
  g->p = (pattern_t *)((char *)g + ((sizeof *g + 15) & ~(size_t)15));
  char err[128];
  if (pattern_compile(g->p, pat, plen, PATTERN_NO_ANCHOR, err, sizeof err))
    return luaL_error(L, "%s", err);
  lua_pushcclosure(L, gmatch_next, 3);
  return 1;
}

/* Appends the string replacement `r` for match m: `%0` is the match,
 * `%1`..`%9` a capture, `%%` a percent sign. */
static void add_template(lua_State *L, luaL_Buffer *b, const char *s, const pattern_match_t *m,
                         const char *r, size_t rlen) {
  const char *end = r + rlen;
  while (r < end) {
    const char *pct = memchr(r, '%', (size_t)(end - r));
    if (pct == NULL) {
      luaL_addlstring(b, r, (size_t)(end - r));
      return;
    }
    luaL_addlstring(b, r, (size_t)(pct - r));
    char d = pct + 1 < end ? pct[1] : '\0';
    if (d == '%') {
      luaL_addchar(b, '%');
    } else if (d == '0') {
      luaL_addlstring(b, s + m->start, m->end - m->start);
    } else if (d >= '1' && d <= '9') {
      push_capture(L, s, m, d - '1');
      luaL_tolstring(L, -1, NULL); /* a position capture is a number */
      lua_remove(L, -2);
      luaL_addvalue(b);
    } else {
      luaL_error(L, "invalid use of '%%' in replacement string");
    }
    r = pct + 2;
  }
}

/* Appends the replacement of match m as gsub's third argument says;
 * returns the bytes appended, for the charge. */
static size_t add_replacement(lua_State *L, luaL_Buffer *b, const char *s,
                              const pattern_match_t *m) {
  size_t before = luaL_bufflen(b);
  int t = lua_type(L, 3);
  if (t == LUA_TSTRING || t == LUA_TNUMBER) {
    size_t rlen;
    const char *r = lua_tolstring(L, 3, &rlen);
    add_template(L, b, s, m, r, rlen);
    return luaL_bufflen(b) - before;
  }
  if (t == LUA_TFUNCTION) {
    lua_pushvalue(L, 3);
    int n = push_captures(L, s, m, true);
    lua_call(L, n, 1);
  } else {
    push_capture(L, s, m, 0);
    lua_gettable(L, 3);
  }
  if (!lua_toboolean(L, -1)) { /* nil or false: keep the match */
    lua_pop(L, 1);
    luaL_addlstring(b, s + m->start, m->end - m->start);
  } else if (!lua_isstring(L, -1)) {
    return (size_t)luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
  } else {
    luaL_addvalue(b);
  }
  return luaL_bufflen(b) - before;
}

static int str_gsub(lua_State *L) {
  size_t len, plen;
  const char *s = luaL_checklstring(L, 1, &len);
  const char *pat = luaL_checklstring(L, 2, &plen);
  int t = lua_type(L, 3);
  lua_Integer max = luaL_optinteger(L, 4, (lua_Integer)len + 1);
  luaL_argexpected(L,
                   t == LUA_TNUMBER || t == LUA_TSTRING || t == LUA_TFUNCTION || t == LUA_TTABLE,
                   3, "string/function/table");
  lua_settop(L, 3);
  compiled_t c;
  pattern_t *p = compile(L, &c, pat, plen, 0);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  size_t at = 0, lastmatch = SIZE_MAX;
  lua_Integer count = 0;
  while (count < max) {
    pattern_match_t m;
    int64_t allowed = allowance(L), left = allowed;
    enum pattern_result r = pattern_match_at(p, s, len, at, &left, &m);
    settle(L, allowed, left, r);
    if (r == PATTERN_MATCH && m.end != lastmatch) {
      count++;
      size_t added = add_replacement(L, &b, s, &m);
      script_charge(L, script_bytes_cost(added));
      at = lastmatch = m.end;
    } else if (at < len) {
      luaL_addchar(&b, s[at++]);
    } else {
      break;
    }
    if (pattern_anchored(p))
      break;
  }
  luaL_addlstring(&b, s + at, len - at);
  script_charge(L, script_bytes_cost(len - at));
  luaL_pushresult(&b);
  lua_pushinteger(L, count);
  return 2;
}

/* string.rep, charged for the bytes it will write before it writes them
 * (a request that cannot pay is stopped before any work). */
static int str_rep(lua_State *L) {
  size_t len, seplen;
  luaL_checklstring(L, 1, &len);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_optlstring(L, 3, "", &seplen);
  if (n > 0) {
    /* A repetition costs at least one: Lua loops n times even when the
     * string and the separator are empty. */
    size_t unit = len + seplen > 0 ? len + seplen : 1;
    size_t total = (uint64_t)n > SIZE_MAX / unit ? SIZE_MAX : unit * (size_t)n;
    script_charge(L, script_bytes_cost(total));
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

/* Lua's rule for a table argument: a table, or a value whose metatable
 * has the metamethods the function uses (`meta`, NULL-terminated).
 * Raises Lua's message otherwise. */
static void check_table_like(lua_State *L, int arg, const char *const *meta) {
  if (lua_type(L, arg) == LUA_TTABLE)
    return;
  int top = lua_gettop(L);
  bool ok = lua_getmetatable(L, arg);
  for (; ok && *meta; meta++) {
    lua_pushstring(L, *meta);
    ok = lua_rawget(L, top + 1) != LUA_TNIL;
    lua_pop(L, 1);
  }
  lua_settop(L, top);
  if (!ok)
    luaL_checktype(L, arg, LUA_TTABLE);
}

/* table.concat, charged per element and per byte as it goes: its elements
 * may all be one long string, or come from an __index of any cost. */
static int tab_concat(lua_State *L) {
  static const char *const readable[] = {"__index", "__len", NULL};
  check_table_like(L, 1, readable);
  lua_Integer last = luaL_len(L, 1);
  size_t seplen;
  const char *sep = luaL_optlstring(L, 2, "", &seplen);
  lua_Integer i = luaL_optinteger(L, 3, 1);
  last = luaL_optinteger(L, 4, last);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (; i <= last; i++) {
    lua_geti(L, 1, i);
    if (!lua_isstring(L, -1))
      return luaL_error(L, "invalid value (%s) at index %I in table for 'concat'",
                        luaL_typename(L, -1), (LUAI_UACINT)i);
    size_t n;
    lua_tolstring(L, -1, &n);
    script_charge(L, 1 + script_bytes_cost(n + seplen));
    luaL_addvalue(&b);
    if (i == last)
      break;
    luaL_addlstring(&b, sep, seplen);
  }
  luaL_pushresult(&b);
  return 1;
}

/* string.lower, upper, reverse and sub: each call takes time in
 * proportion to the string it returns, which a loop can ask for over and
 * over. The arguments are checked here (so errors name the function), the
 * original (upvalue 1) runs, then its result is charged: one call
 * overshoots by at most a string that fits in memory. */
static int charge_result(lua_State *L) {
  luaL_checkstring(L, 1);
  if (lua_toboolean(L, lua_upvalueindex(2))) { /* sub(s, i [, j]) */
    luaL_checkinteger(L, 2);
    luaL_optinteger(L, 3, -1);
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  size_t len;
  lua_tolstring(L, -1, &len);
  script_charge(L, script_bytes_cost(len));
  return 1;
}

/* table.move(a1, f, e, t [, a2]) copies e - f + 1 elements in a C loop:
 * charged one instruction per element before it starts. The checks are
 * Lua's, made here so that their messages name the function. */
static int tab_move(lua_State *L) {
  static const char *const readable[] = {"__index", NULL}, *const writable[] = {"__newindex",
                                                                                NULL};
  lua_Integer f = luaL_checkinteger(L, 2), e = luaL_checkinteger(L, 3);
  lua_Integer t = luaL_checkinteger(L, 4);
  check_table_like(L, 1, readable);
  check_table_like(L, lua_isnoneornil(L, 5) ? 1 : 5, writable);
  if (e >= f) {
    luaL_argcheck(L, f > 0 || e < LUA_MAXINTEGER + f, 3, "too many elements to move");
    lua_Integer n = e - f + 1;
    luaL_argcheck(L, t <= LUA_MAXINTEGER - n + 1, 4, "destination wrap around");
    script_charge(L, n);
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

/* h1mock.like(value, pattern, max_steps): the REST API's `_like` filter, a
 * caseless search with a step limit per value. Returns true or false; nil
 * and "steps" when the pattern needed more than max_steps (or than what is
 * left of the budget, which is then spent and the request stops); nil and
 * Lua's message when the pattern is malformed. */
static int like(lua_State *L) {
  size_t len, plen;
  const char *s = luaL_checklstring(L, 1, &len);
  const char *pat = luaL_checklstring(L, 2, &plen);
  lua_Integer limit = luaL_checkinteger(L, 3);
  compiled_t c;
  char err[128];
  pattern_t *p = try_compile(L, &c, pat, plen, PATTERN_CASELESS, err, sizeof err);
  if (p == NULL) {
    luaL_pushfail(L);
    lua_pushstring(L, err);
    return 2;
  }
  int64_t budget = allowance(L), allowed = limit < budget ? (int64_t)limit : budget;
  int64_t left = allowed;
  pattern_match_t m;
  enum pattern_result r = pattern_find(p, s, len, 0, &left, &m);
  if (r == PATTERN_OUT_OF_STEPS && allowed == budget)
    script_charge(L, SCRIPT_CHARGE_ALL);
  script_charge(L, allowed - left);
  if (r == PATTERN_OUT_OF_STEPS) {
    luaL_pushfail(L);
    lua_pushliteral(L, "steps");
    return 2;
  }
  lua_pushboolean(L, r == PATTERN_MATCH);
  return 1;
}

void script_string_open(lua_State *L) {
  lua_getglobal(L, "string");
  static const luaL_Reg string_fns[] = {
      {"find", str_find}, {"match", str_match}, {"gmatch", str_gmatch},
      {"gsub", str_gsub}, {NULL, NULL},
  };
  luaL_setfuncs(L, string_fns, 0);
  lua_getfield(L, -1, "rep");
  lua_pushcclosure(L, str_rep, 1);
  lua_setfield(L, -2, "rep");
  static const char *const by_result[] = {"lower", "upper", "reverse", "sub"};
  for (size_t i = 0; i < sizeof by_result / sizeof by_result[0]; i++) {
    lua_getfield(L, -1, by_result[i]);
    lua_pushboolean(L, strcmp(by_result[i], "sub") == 0);
    lua_pushcclosure(L, charge_result, 2);
    lua_setfield(L, -2, by_result[i]);
  }
  lua_pop(L, 1);
  lua_getglobal(L, "table");
  lua_pushcfunction(L, tab_concat);
  lua_setfield(L, -2, "concat");
  lua_getfield(L, -1, "move");
  lua_pushcclosure(L, tab_move, 1);
  lua_setfield(L, -2, "move");
  lua_pop(L, 1);
}

void script_string_open_runtime(lua_State *L) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "h1mock");
  lua_call(L, 1, 1);
  lua_pushcfunction(L, like);
  lua_setfield(L, -2, "like");
  lua_pop(L, 1);
}
