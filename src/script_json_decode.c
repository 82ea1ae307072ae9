/* script_json_decode.c - json.decode: the events of json_parse (json.h)
 * become Lua values, built on the Lua stack as they arrive.
 *
 * An open container sits on the stack with, for an object, the key of the
 * value being read above it; a finished value is stored into the container
 * under it. Unescaped strings go through a scratch userdata anchored on the
 * stack, and nothing is malloc'd, so a Lua memory error that unwinds
 * through json_parse leaks nothing.
 */
#include <errno.h>
#include <stdint.h>

#include <lauxlib.h>

#include "json.h"
#include "script_json.h"

typedef struct dec {
  lua_State *L;
  int mt;      /* stack index of json.array_mt */
  int scratch; /* stack slot anchoring the scratch userdata */
  char *mem;
  size_t memcap;
  int64_t allowed;                   /* what is left of the allowance */
  lua_Integer count[JSON_MAX_DEPTH]; /* elements so far, per open array */
} dec_t;

static inline lua_State *state(json_parser_t *p) { return ((dec_t *)p->ud)->L; }

static __attribute__((cold, noinline)) int too_costly(json_parser_t *p) {
  json_msg_puts(p->err, "the text costs more to decode than the instruction budget has left");
  return -E2BIG;
}

static __attribute__((cold, noinline)) int no_stack(json_parser_t *p) {
  json_msg_puts(p->err, "out of memory (the Lua stack cannot grow)");
  return -ENOMEM;
}

/* Every value costs the same; the bytes were paid for up front. */
static inline int charge(json_parser_t *p) {
  dec_t *d = p->ud;
  if ((d->allowed -= SCRIPT_JSON_DECODE_VALUE_COST) < 0)
    return too_costly(p);
  return 0;
}

/* Stores the value on top into the container under it (and its key). */
static int place(json_parser_t *p) {
  dec_t *d = p->ud;
  if (p->depth == 0)
    return 0;
  if (p->open[p->depth - 1] == '[')
    lua_rawseti(d->L, -2, ++d->count[p->depth - 1]);
  else
    lua_rawset(d->L, -3); /* a later duplicate overwrites: the last one wins */
  return 0;
}

/* An object is a plain table; begin_array adds json.array_mt. */
static int begin_object(json_parser_t *p) {
  dec_t *d = p->ud;
  int rc = charge(p);
  if (rc)
    return rc;
  if (!lua_checkstack(d->L, 3))
    return no_stack(p);
  lua_createtable(d->L, 0, 0);
  return 0;
}

static int begin_array(json_parser_t *p) {
  dec_t *d = p->ud;
  int rc = begin_object(p);
  if (rc)
    return rc;
  lua_pushvalue(d->L, d->mt);
  lua_setmetatable(d->L, -2);
  d->count[p->depth - 1] = 0;
  return 0;
}

static int key(json_parser_t *p, const char *s, size_t n) {
  lua_pushlstring(state(p), s, n);
  return 0;
}

/* A scalar is charged once it is pushed: the stack is cut back anyway when
 * the charge fails, and each callback stays one push. */
static int scalar(json_parser_t *p) {
  int rc = charge(p);
  return rc ? rc : place(p);
}

static int string(json_parser_t *p, const char *s, size_t n) {
  lua_pushlstring(state(p), s, n);
  return scalar(p);
}

static int integer(json_parser_t *p, int64_t v) {
  lua_pushinteger(state(p), (lua_Integer)v);
  return scalar(p);
}

static int number(json_parser_t *p, double v) {
  lua_pushnumber(state(p), (lua_Number)v);
  return scalar(p);
}

static int boolean(json_parser_t *p, int b) {
  lua_pushboolean(state(p), b);
  return scalar(p);
}

static int null(json_parser_t *p) {
  script_json_push_null(state(p));
  return scalar(p);
}

/* Grows the scratch userdata; the old one is left to the collector. */
static char *scratch(json_parser_t *p, size_t n) {
  dec_t *d = p->ud;
  if (n > d->memcap) {
    size_t cap = n < d->memcap * 2 ? d->memcap * 2 : n;
    d->mem = lua_newuserdatauv(d->L, cap, 0);
    lua_replace(d->L, d->scratch);
    d->memcap = cap;
  }
  return d->mem;
}

static const json_events_t events = {
    .begin_object = begin_object,
    .end_object = place,
    .begin_array = begin_array,
    .end_array = place,
    .key = key,
    .string = string,
    .integer = integer,
    .number = number,
    .boolean = boolean,
    .null = null,
    .scratch = scratch,
};

int script_json_decode(lua_State *L, const char *s, size_t len, char *err, size_t errlen) {
  int64_t unlimited = INT64_MAX;
  return script_json_decode_budgeted(L, s, len, &unlimited, err, errlen);
}

int script_json_decode_budgeted(lua_State *L, const char *s, size_t len, int64_t *allowance,
                                char *err, size_t errlen) {
  json_msg_t msg;
  json_msg_init(&msg, err, errlen);
  int top = lua_gettop(L), rc;
  dec_t d;
  if (!lua_checkstack(L, 6)) {
    json_msg_puts(&msg, "out of memory (the Lua stack cannot grow)");
    json_msg_end(&msg);
    return -ENOMEM;
  }
  if (len > (uint64_t)*allowance) {
    json_msg_puts(&msg, "the text costs more to decode than the instruction budget has left");
    json_msg_end(&msg);
    return -E2BIG;
  }
  d.allowed = *allowance - (int64_t)len;
  script_json_push_array_mt(L);
  lua_pushnil(L);
  d.L = L;
  d.mt = top + 1;
  d.scratch = top + 2;
  d.mem = NULL;
  d.memcap = 0;
  rc = json_parse(s, len, &events, &d, &msg);
  if (rc) {
    lua_settop(L, top);
    return rc;
  }
  lua_replace(L, top + 1); /* the value over array_mt */
  lua_settop(L, top + 1);
  *allowance = d.allowed;
  return 0;
}
