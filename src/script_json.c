/* script_json.c - JSON encoding of Lua values (decoding is in
 * script_json_decode.c, over json_parse).
 *
 * The rules are described in script_json.h. Notes on how:
 * - Encoding recurses over the value. An object's keys and values are left
 *   on the Lua stack while it is written, which keeps the key strings alive,
 *   so sorting works on plain (pointer, length) entries. The entries of all
 *   objects on the current path share one array: it lives in the encoder
 *   state on the C stack, and only a path holding more than INLINE_KEYS keys
 *   spills it into a Lua userdata (never malloc, so a Lua memory error that
 *   unwinds through us leaks nothing).
 * - Each level keeps a frame on the C stack that links to its parent; the
 *   path in an error message is rendered from these frames only on failure.
 * - Strings and numbers are written by json.c, the writers every JSON
 *   answer of h1mock uses.
 */
#include "script_json.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "json.h"
#include "text.h"

#define MAX_DEPTH SCRIPT_JSON_MAX_DEPTH
#define INLINE_KEYS 128

/* Cold paths stay out of the recursive functions so that their frames (and
 * the C stack used at depth 1000) stay small. */
#define COLD __attribute__((cold, noinline))
#define NOINLINE __attribute__((noinline))

/* Their addresses are the identities of json.empty_array and of the registry
 * slot that holds json.array_mt. */
static char empty_array_tag;
static char array_mt_key;

/* ---- Error messages ------------------------------------------------------ */

typedef json_msg_t sink_t;

/* Writes a key in double quotes, escaped and cut to a readable length. */
static void sink_quoted(sink_t *s, const char *k, size_t n) {
  size_t lim = n > 40 ? 40 : n;
  while (lim < n && lim > 0 && ((unsigned char)k[lim] & 0xC0) == 0x80)
    lim--;
  json_msg_put(s, "\"", 1);
  for (size_t i = 0; i < lim;) {
    unsigned char c = (unsigned char)k[i];
    size_t bad = 1, len = text_utf8_seq(k + i, lim - i, &bad);
    if (c == '"' || c == '\\') {
      json_msg_put(s, "\\", 1);
      json_msg_put(s, k + i, 1);
    } else if (c < 0x20 || c == 0x7F || len == 0) {
      json_msg_printf(s, "\\x%02X", c);
    } else {
      json_msg_put(s, k + i, len);
      i += len;
      continue;
    }
    i++;
  }
  if (lim < n)
    json_msg_puts(s, "...");
  json_msg_put(s, "\"", 1);
}

/* ---- Encoder ------------------------------------------------------------- */

/* Where a value sits: its parent and the key or index that leads to it. */
typedef struct frame {
  const struct frame *up; /* NULL for the top-level value */
  const char *key;        /* object key as written, NULL for an array element */
  size_t keylen;
  lua_Integer index; /* array index, 1-based, when key is NULL */
  int numkey;        /* the Lua key was a number: shown as [key] */
  int idx;           /* absolute stack index of the value */
} frame_t;

/* One member of an object being written: the key's text and where its value
 * is on the Lua stack. */
typedef struct entry {
  const char *key;
  size_t len;
  int vidx;
  int numkey;
} entry_t;

typedef struct enc {
  lua_State *L;
  buf_t *out;
  sink_t err;
  int mt;    /* stack index of json.array_mt */
  int spill; /* stack slot anchoring the spilled entry array */
  int depth;
  size_t start;    /* out->len on entry */
  int64_t allowed; /* the allowance less the values so far: the text may not outgrow it */
  entry_t *ent;    /* the entries of every object on the current path */
  size_t nent, cap;
  entry_t inline_ent[INLINE_KEYS];
} enc_t;

/* A key written as .key in a path; long ones are quoted so they get cut. */
static int is_ident(const char *k, size_t n) {
  if (n == 0 || n > 40 || (k[0] >= '0' && k[0] <= '9'))
    return 0;
  for (size_t i = 0; i < n; i++) {
    char c = k[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
      return 0;
  }
  return 1;
}

static void sink_segments(sink_t *s, const frame_t *f) {
  if (f->up == NULL)
    return;
  sink_segments(s, f->up);
  if (f->key == NULL) {
    json_msg_printf(s, "[%lld]", (long long)f->index);
  } else if (f->numkey) {
    json_msg_put(s, "[", 1);
    json_msg_put(s, f->key, f->keylen);
    json_msg_put(s, "]", 1);
  } else if (is_ident(f->key, f->keylen)) {
    json_msg_put(s, ".", 1);
    json_msg_put(s, f->key, f->keylen);
  } else {
    json_msg_put(s, "[", 1);
    sink_quoted(s, f->key, f->keylen);
    json_msg_put(s, "]", 1);
  }
}

static void sink_path(sink_t *s, const frame_t *f) {
  if (f->up == NULL) {
    json_msg_puts(s, "the top level");
    return;
  }
  /* jq notation: a path starts with '.', so ".[2]" or ".[\"a b\"]". */
  const frame_t *first = f;
  while (first->up->up)
    first = first->up;
  if (!(first->key && !first->numkey && is_ident(first->key, first->keylen)))
    json_msg_put(s, ".", 1);
  sink_segments(s, f);
}

COLD static int enc_fail(enc_t *e, const frame_t *at, const char *what) {
  json_msg_puts(&e->err, what);
  json_msg_puts(&e->err, " at ");
  sink_path(&e->err, at);
  return -EINVAL;
}

COLD static int enc_nostack(enc_t *e) {
  json_msg_puts(&e->err, "out of memory (the Lua stack cannot grow)");
  return -ENOMEM;
}

COLD static int enc_bad_type(enc_t *e, const frame_t *at) {
  lua_State *L = e->L;
  int t = lua_type(L, at->idx);
  sink_t *s = &e->err;
  if (t == LUA_TUSERDATA && lua_checkstack(L, 2) &&
      luaL_getmetafield(L, at->idx, "__name") == LUA_TSTRING) {
    json_msg_printf(s, "cannot encode a userdata (%s)", lua_tostring(L, -1));
    lua_pop(L, 1);
  } else if (t == LUA_TLIGHTUSERDATA) {
    json_msg_puts(s, "cannot encode a light userdata");
  } else {
    json_msg_printf(s, "cannot encode a %s", lua_typename(L, t));
  }
  json_msg_puts(s, " at ");
  sink_path(s, at);
  return -EINVAL;
}

/* The depth limit is reached either by honest nesting or by a table that
 * contains itself. The tables on the path are all still on the Lua stack,
 * so look for the first one that repeats and name both places. */
COLD static int enc_too_deep(enc_t *e, const frame_t *at) {
  const frame_t *chain[MAX_DEPTH + 1];
  const void *ptr[MAX_DEPTH + 1];
  size_t n = 0;
  for (const frame_t *f = at; f && n < MAX_DEPTH + 1; f = f->up)
    n++;
  size_t k = n;
  for (const frame_t *f = at; f && k > 0; f = f->up)
    chain[--k] = f;
  for (size_t j = 0; j < n; j++) {
    ptr[j] = lua_topointer(e->L, chain[j]->idx);
    for (size_t i = 0; i < j; i++) {
      if (ptr[i] == ptr[j]) {
        json_msg_puts(&e->err, "cannot encode a cycle: the table at ");
        sink_path(&e->err, chain[i]);
        json_msg_puts(&e->err, " contains itself at ");
        sink_path(&e->err, chain[j]);
        return -EINVAL;
      }
    }
  }
  json_msg_printf(&e->err, "nesting deeper than %d", MAX_DEPTH);
  return enc_fail(e, at, "");
}

static inline int put_c(buf_t *b, char c) {
  if (b->len < b->cap) {
    b->data[b->len++] = c;
    return 0;
  }
  return buf_putc(b, c);
}

static int enc_value(enc_t *e, const frame_t *at);

static int enc_number(enc_t *e, const frame_t *at) {
  lua_State *L = e->L;
  if (lua_isinteger(L, at->idx))
    return json_int(e->out, lua_tointeger(L, at->idx));
  double d = (double)lua_tonumber(L, at->idx);
  if (isnan(d))
    return enc_fail(e, at, "cannot encode NaN");
  if (isinf(d))
    return enc_fail(e, at, d > 0 ? "cannot encode inf" : "cannot encode -inf");
  return json_double(e->out, d);
}

enum { KIND_EMPTY, KIND_ARRAY, KIND_OBJECT };

/* Decides how a table is written. Tables that carry array_mt (everything
 * decode produced) skip the key scan. */
static int table_kind(enc_t *e, int t, lua_Integer *n) {
  lua_State *L = e->L;
  if (lua_getmetatable(L, t)) {
    int is = lua_rawequal(L, -1, e->mt);
    lua_pop(L, 1);
    if (is) {
      *n = (lua_Integer)lua_rawlen(L, t);
      return KIND_ARRAY;
    }
  }
  /* Keys that are distinct integers >= 1, as many as the largest of them,
   * are exactly 1..n. Stop at the first other key: most objects have a
   * string key first. */
  lua_Integer count = 0, max = 0;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    lua_pop(L, 1);
    if (lua_isinteger(L, -1)) {
      lua_Integer k = lua_tointeger(L, -1);
      if (k >= 1) {
        count++;
        if (k > max)
          max = k;
        continue;
      }
    }
    lua_pop(L, 1);
    return KIND_OBJECT;
  }
  if (count == 0)
    return KIND_EMPTY;
  if (count != max)
    return KIND_OBJECT;
  *n = max;
  return KIND_ARRAY;
}

static int enc_array(enc_t *e, const frame_t *at, lua_Integer n) {
  lua_State *L = e->L;
  int rc = put_c(e->out, '[');
  for (lua_Integer i = 1; i <= n && rc == 0; i++) {
    if (i > 1 && (rc = put_c(e->out, ',')))
      break;
    lua_rawgeti(L, at->idx, i);
    frame_t f = {at, NULL, 0, i, 0, lua_gettop(L)};
    rc = enc_value(e, &f);
    lua_pop(L, 1);
  }
  return rc ? rc : put_c(e->out, ']');
}

/* Grows the entry array into a Lua userdata, which the GC frees even when a
 * Lua memory error unwinds through the encoder. */
NOINLINE static int ent_grow(enc_t *e) {
  if (e->cap > SIZE_MAX / 2 / sizeof(entry_t))
    return -ENOMEM;
  size_t cap = e->cap * 2;
  entry_t *p = lua_newuserdatauv(e->L, cap * sizeof *p, 0);
  memcpy(p, e->ent, e->nent * sizeof *p);
  lua_replace(e->L, e->spill);
  e->ent = p;
  e->cap = cap;
  return 0;
}

static int ent_cmp(const entry_t *a, const entry_t *b) {
  size_t n = a->len < b->len ? a->len : b->len;
  int c = n ? memcmp(a->key, b->key, n) : 0;
  if (c)
    return c;
  return (a->len > b->len) - (a->len < b->len);
}

static int ent_qcmp(const void *a, const void *b) { return ent_cmp(a, b); }

static void ent_sort(entry_t *v, size_t n) {
  if (n > 16) {
    qsort(v, n, sizeof *v, ent_qcmp);
    return;
  }
  for (size_t i = 1; i < n; i++) {
    entry_t x = v[i];
    size_t j = i;
    for (; j > 0 && ent_cmp(&v[j - 1], &x) > 0; j--)
      v[j] = v[j - 1];
    v[j] = x;
  }
}

/* Pushes the text of the number key at -2 (under its value) and returns it. */
static int push_number_key(enc_t *e, const frame_t *at, entry_t *en) {
  lua_State *L = e->L;
  char tmp[32];
  size_t n;
  if (lua_isinteger(L, -2)) {
    n = json_fmt_int(tmp, lua_tointeger(L, -2));
  } else {
    double d = (double)lua_tonumber(L, -2);
    if (isinf(d)) /* NaN cannot be a key */
      return enc_fail(
          e, at, d > 0 ? "cannot encode the table key inf" : "cannot encode the table key -inf");
    n = json_fmt_double(tmp, d);
  }
  en->key = lua_pushlstring(L, tmp, n);
  en->len = n;
  return 0;
}

COLD static int enc_bad_key(enc_t *e, const frame_t *at, int kt) {
  json_msg_printf(&e->err, "table key of type %s", lua_typename(e->L, kt));
  return enc_fail(e, at, "");
}

COLD static int enc_dup_key(enc_t *e, const frame_t *at, const entry_t *en) {
  json_msg_puts(&e->err, "two keys both encode as ");
  sink_quoted(&e->err, en->key, en->len);
  return enc_fail(e, at, "");
}

static int enc_object(enc_t *e, const frame_t *at) {
  lua_State *L = e->L;
  int t = at->idx, top = lua_gettop(L), has_num = 0, rc = 0;
  size_t base = e->nent;
  /* Leave key, value (and for a number key its text) on the stack per
   * member: the stack keeps them alive while they are sorted and written. */
  lua_pushnil(L);
  for (;;) {
    if (!lua_checkstack(L, 5)) {
      rc = enc_nostack(e);
      goto out;
    }
    if (!lua_next(L, t))
      break;
    if (e->nent == e->cap && (rc = ent_grow(e)))
      goto out;
    entry_t *en = &e->ent[e->nent];
    int kt = lua_type(L, -2);
    en->vidx = lua_gettop(L);
    if (kt == LUA_TSTRING) {
      en->key = lua_tolstring(L, -2, &en->len);
      en->numkey = 0;
      lua_pushvalue(L, -2);
    } else if (kt == LUA_TNUMBER) {
      if ((rc = push_number_key(e, at, en)))
        goto out;
      en->numkey = 1;
      has_num = 1;
      lua_pushvalue(L, -3);
    } else {
      rc = enc_bad_key(e, at, kt);
      goto out;
    }
    e->nent++;
  }
  size_t n = e->nent - base;
  ent_sort(e->ent + base, n);
  /* Only a number key can give the same text as another key. */
  for (size_t i = 1; has_num && i < n; i++) {
    if (ent_cmp(&e->ent[base + i - 1], &e->ent[base + i]) == 0) {
      rc = enc_dup_key(e, at, &e->ent[base + i]);
      goto out;
    }
  }
  if ((rc = put_c(e->out, '{')))
    goto out;
  for (size_t i = 0; i < n; i++) {
    /* A copy: nested objects may move the entry array. */
    entry_t en = e->ent[base + i];
    if (i > 0 && (rc = put_c(e->out, ',')))
      goto out;
    if ((rc = json_string(e->out, en.key, en.len)) || (rc = put_c(e->out, ':')))
      goto out;
    frame_t f = {at, en.key, en.len, 0, en.numkey, en.vidx};
    if ((rc = enc_value(e, &f)))
      goto out;
  }
  rc = put_c(e->out, '}');
out:
  lua_settop(L, top);
  e->nent = base;
  return rc;
}

static int enc_table(enc_t *e, const frame_t *at) {
  if (e->depth >= MAX_DEPTH)
    return enc_too_deep(e, at);
  if (!lua_checkstack(e->L, 6))
    return enc_nostack(e);
  e->depth++;
  lua_Integer n = 0;
  int rc, kind = table_kind(e, at->idx, &n);
  if (kind == KIND_ARRAY)
    rc = enc_array(e, at, n);
  else if (kind == KIND_EMPTY)
    rc = buf_append(e->out, "{}", 2);
  else
    rc = enc_object(e, at);
  e->depth--;
  return rc;
}

COLD static int enc_too_costly(enc_t *e) {
  json_msg_puts(&e->err, "the value costs more to encode than the instruction budget has left");
  return -E2BIG;
}

static int enc_value(enc_t *e, const frame_t *at) {
  lua_State *L = e->L;
  /* Checked per value, the text overshoots the allowance by at most one
   * string or number; a table shared many times cannot make it explode. */
  e->allowed -= SCRIPT_JSON_ENCODE_VALUE_COST;
  if ((int64_t)(e->out->len - e->start) > e->allowed)
    return enc_too_costly(e);
  switch (lua_type(L, at->idx)) {
  case LUA_TNIL: return buf_append(e->out, "null", 4);
  case LUA_TBOOLEAN:
    return lua_toboolean(L, at->idx) ? buf_append(e->out, "true", 4)
                                     : buf_append(e->out, "false", 5);
  case LUA_TNUMBER: return enc_number(e, at);
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, at->idx, &n);
    return json_string(e->out, s, n);
  }
  case LUA_TTABLE: return enc_table(e, at);
  case LUA_TLIGHTUSERDATA: {
    void *p = lua_touserdata(L, at->idx);
    if (p == NULL)
      return buf_append(e->out, "null", 4);
    if (p == &empty_array_tag)
      return buf_append(e->out, "[]", 2);
    return enc_bad_type(e, at);
  }
  default: return enc_bad_type(e, at);
  }
}

/* Pushes json.array_mt, creating it on first use so that the C API works
 * without the json module (script_jsonlib.c). */
void script_json_push_array_mt(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &array_mt_key) == LUA_TTABLE) {
    /* Provisions can write into json.array_mt. A __gc in it when C sets it
     * on a new table would make that table finalized, with no budget:
     * take it out every time (setmetatable of provisions refuses __gc). */
    lua_pushliteral(L, "__gc");
    lua_pushnil(L);
    lua_rawset(L, -3);
    return;
  }
  lua_pop(L, 1);
  lua_createtable(L, 0, 1);
  /* tostring() of a decoded array then reads "json.array: 0x...". */
  lua_pushliteral(L, "json.array");
  lua_setfield(L, -2, "__name");
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &array_mt_key);
}

int script_json_encode(lua_State *L, int idx, buf_t *out, char *err, size_t errlen) {
  int64_t unlimited = INT64_MAX;
  return script_json_encode_budgeted(L, idx, out, &unlimited, err, errlen);
}

int script_json_encode_budgeted(lua_State *L, int idx, buf_t *out, int64_t *allowance, char *err,
                                size_t errlen) {
  enc_t e;
  json_msg_init(&e.err, err, errlen);
  size_t start = out->len;
  int top = lua_gettop(L), rc;
  if (!lua_checkstack(L, 8)) {
    rc = enc_nostack(&e);
    goto out;
  }
  /* Work on a copy so that any index (negative, pseudo) is fine. */
  lua_pushvalue(L, idx);
  script_json_push_array_mt(L);
  lua_pushnil(L);
  e.L = L;
  e.out = out;
  e.mt = top + 2;
  e.spill = top + 3;
  e.depth = 0;
  e.start = start;
  e.allowed = *allowance;
  e.ent = e.inline_ent;
  e.nent = 0;
  e.cap = INLINE_KEYS;
  frame_t root = {NULL, NULL, 0, 0, 0, top + 1};
  rc = enc_value(&e, &root);
  if (rc == 0 && (int64_t)(out->len - start) > e.allowed)
    rc = enc_too_costly(&e);
  if (rc == 0)
    *allowance = e.allowed - (int64_t)(out->len - start);
  lua_settop(L, top);
out:
  if (rc) {
    out->len = start;
    if (rc == -ENOMEM && e.err.len == 0)
      json_msg_puts(&e.err, "out of memory");
    json_msg_end(&e.err);
  }
  return rc;
}

void script_json_push_null(lua_State *L) { lua_pushlightuserdata(L, NULL); }

void script_json_push_empty_array(lua_State *L) { lua_pushlightuserdata(L, &empty_array_tag); }
