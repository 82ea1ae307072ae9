/* script_json.c - JSON encoding and decoding of Lua values.
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
 * - Decoding is a recursive descent that pushes values as it goes. Strings
 *   without escapes are pushed straight from the input; escaped ones are
 *   unescaped into a luaL_Buffer (on the C stack up to LUAL_BUFFERSIZE).
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

/* ---- UTF-8 --------------------------------------------------------------- */

static size_t utf8_put(char *w, unsigned long cp) {
  if (cp < 0x80) {
    w[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    w[0] = (char)(0xC0 | (cp >> 6));
    w[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    w[0] = (char)(0xE0 | (cp >> 12));
    w[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    w[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  w[0] = (char)(0xF0 | (cp >> 18));
  w[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  w[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  w[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* ---- Error messages ------------------------------------------------------ */

/* Writes into the caller's fixed err buffer, truncating with "...". */
typedef struct sink {
  char *p;
  size_t cap;
  size_t len;
  int full;
} sink_t;

static void sink_init(sink_t *s, char *p, size_t cap) {
  s->p = p;
  s->cap = p ? cap : 0;
  s->len = 0;
  s->full = 0;
  if (s->cap)
    p[0] = '\0';
}

static void sink_put(sink_t *s, const char *str, size_t n) {
  if (s->cap == 0 || s->full)
    return;
  size_t room = s->cap - 1 - s->len;
  if (n > room) {
    n = room;
    s->full = 1;
  }
  memcpy(s->p + s->len, str, n);
  s->len += n;
  s->p[s->len] = '\0';
}

static void sink_puts(sink_t *s, const char *str) { sink_put(s, str, strlen(str)); }

static void sink_vprintf(sink_t *s, const char *fmt, va_list ap) {
  if (s->cap == 0 || s->full)
    return;
  size_t room = s->cap - s->len;
  int n = vsnprintf(s->p + s->len, room, fmt, ap);
  if (n < 0)
    return;
  if ((size_t)n >= room) {
    s->len = s->cap - 1;
    s->full = 1;
  } else {
    s->len += (size_t)n;
  }
}

__attribute__((format(printf, 2, 3))) static void sink_printf(sink_t *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  sink_vprintf(s, fmt, ap);
  va_end(ap);
}

/* Marks a truncated message so that nobody mistakes it for the whole. */
static void sink_end(sink_t *s) {
  if (s->full && s->cap >= 4)
    memcpy(s->p + s->cap - 4, "...", 4);
}

/* Writes a key in double quotes, escaped and cut to a readable length. */
static void sink_quoted(sink_t *s, const char *k, size_t n) {
  size_t lim = n > 40 ? 40 : n;
  while (lim < n && lim > 0 && ((unsigned char)k[lim] & 0xC0) == 0x80)
    lim--;
  sink_put(s, "\"", 1);
  for (size_t i = 0; i < lim;) {
    unsigned char c = (unsigned char)k[i];
    size_t bad = 1, len = text_utf8_seq(k + i, lim - i, &bad);
    if (c == '"' || c == '\\') {
      sink_put(s, "\\", 1);
      sink_put(s, k + i, 1);
    } else if (c < 0x20 || c == 0x7F || len == 0) {
      sink_printf(s, "\\x%02X", c);
    } else {
      sink_put(s, k + i, len);
      i += len;
      continue;
    }
    i++;
  }
  if (lim < n)
    sink_puts(s, "...");
  sink_put(s, "\"", 1);
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
    sink_printf(s, "[%lld]", (long long)f->index);
  } else if (f->numkey) {
    sink_put(s, "[", 1);
    sink_put(s, f->key, f->keylen);
    sink_put(s, "]", 1);
  } else if (is_ident(f->key, f->keylen)) {
    sink_put(s, ".", 1);
    sink_put(s, f->key, f->keylen);
  } else {
    sink_put(s, "[", 1);
    sink_quoted(s, f->key, f->keylen);
    sink_put(s, "]", 1);
  }
}

static void sink_path(sink_t *s, const frame_t *f) {
  if (f->up == NULL) {
    sink_puts(s, "the top level");
    return;
  }
  /* jq notation: a path starts with '.', so ".[2]" or ".[\"a b\"]". */
  const frame_t *first = f;
  while (first->up->up)
    first = first->up;
  if (!(first->key && !first->numkey && is_ident(first->key, first->keylen)))
    sink_put(s, ".", 1);
  sink_segments(s, f);
}

COLD static int enc_fail(enc_t *e, const frame_t *at, const char *what) {
  sink_puts(&e->err, what);
  sink_puts(&e->err, " at ");
  sink_path(&e->err, at);
  return -EINVAL;
}

COLD static int enc_nostack(enc_t *e) {
  sink_puts(&e->err, "out of memory (the Lua stack cannot grow)");
  return -ENOMEM;
}

COLD static int enc_bad_type(enc_t *e, const frame_t *at) {
  lua_State *L = e->L;
  int t = lua_type(L, at->idx);
  sink_t *s = &e->err;
  if (t == LUA_TUSERDATA && lua_checkstack(L, 2) &&
      luaL_getmetafield(L, at->idx, "__name") == LUA_TSTRING) {
    sink_printf(s, "cannot encode a userdata (%s)", lua_tostring(L, -1));
    lua_pop(L, 1);
  } else if (t == LUA_TLIGHTUSERDATA) {
    sink_puts(s, "cannot encode a light userdata");
  } else {
    sink_printf(s, "cannot encode a %s", lua_typename(L, t));
  }
  sink_puts(s, " at ");
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
        sink_puts(&e->err, "cannot encode a cycle: the table at ");
        sink_path(&e->err, chain[i]);
        sink_puts(&e->err, " contains itself at ");
        sink_path(&e->err, chain[j]);
        return -EINVAL;
      }
    }
  }
  sink_printf(&e->err, "nesting deeper than %d", MAX_DEPTH);
  return enc_fail(e, at, "");
}

static inline int put_c(buf_t *b, char c) {
  if (b->len < b->cap) {
    b->data[b->len++] = c;
    return 0;
  }
  return buf_putc(b, c);
}

static size_t fmt_int(char tmp[static 24], lua_Integer v) {
  char rev[24];
  size_t n = 0, len = 0;
  unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
  do {
    rev[n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0)
    tmp[len++] = '-';
  while (n)
    tmp[len++] = rev[--n];
  return len;
}

/* Formats a finite double in at most 17 significant digits, the fewest of
 * 15, 16, 17 that read back as the same number; tmp holds 32 bytes. Any
 * normal double that has a shorter exact form prints it with %.15g
 * (DBL_DIG is 15); subnormals carry fewer digits, so for them the search
 * starts at 1 (5e-324, not 4.94065645841247e-324). */
static size_t fmt_float(char tmp[static 32], double d) {
  /* A local array, not tmp, is what snprintf fills: with UBSan's null
   * checks on strtod gcc otherwise sees a NULL path and warns. */
  char s[32];
  int n = 0;
  if (d > -1e15 && d < 1e15 && d == (double)(long long)d && !(d == 0 && signbit(d))) {
    /* Integral values below 1e15 print the same as %.15g would, faster. */
    n = (int)fmt_int(s, (lua_Integer)d);
    memcpy(s + n, ".0", 2);
    memcpy(tmp, s, (size_t)n + 2);
    return (size_t)n + 2;
  }
  for (int prec = fpclassify(d) == FP_SUBNORMAL ? 1 : 15; prec <= 17; prec++) {
    n = snprintf(s, sizeof s, "%.*g", prec, d);
    if (prec == 17 || strtod(s, NULL) == d)
      break;
  }
  memcpy(tmp, s, (size_t)n);
  /* A float that prints like an integer keeps a ".0" so that it reads back
   * as a float (Lua and Python print 1.0 the same way). A locale's decimal
   * comma, should anyone set LC_NUMERIC, is put back to a point. */
  int integral = 1;
  for (int i = 0; i < n; i++) {
    char c = tmp[i];
    if ((c >= '0' && c <= '9') || c == '-')
      continue;
    integral = 0;
    if (c != 'e' && c != '+')
      tmp[i] = '.';
  }
  if (integral) {
    tmp[n++] = '.';
    tmp[n++] = '0';
  }
  return (size_t)n;
}

static int enc_value(enc_t *e, const frame_t *at);

static int enc_number(enc_t *e, const frame_t *at) {
  lua_State *L = e->L;
  char tmp[32];
  if (lua_isinteger(L, at->idx))
    return buf_append(e->out, tmp, fmt_int(tmp, lua_tointeger(L, at->idx)));
  double d = (double)lua_tonumber(L, at->idx);
  if (isnan(d))
    return enc_fail(e, at, "cannot encode NaN");
  if (isinf(d))
    return enc_fail(e, at, d > 0 ? "cannot encode inf" : "cannot encode -inf");
  return buf_append(e->out, tmp, fmt_float(tmp, d));
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
    n = fmt_int(tmp, lua_tointeger(L, -2));
  } else {
    double d = (double)lua_tonumber(L, -2);
    if (isinf(d)) /* NaN cannot be a key */
      return enc_fail(
          e, at, d > 0 ? "cannot encode the table key inf" : "cannot encode the table key -inf");
    n = fmt_float(tmp, d);
  }
  en->key = lua_pushlstring(L, tmp, n);
  en->len = n;
  return 0;
}

COLD static int enc_bad_key(enc_t *e, const frame_t *at, int kt) {
  sink_printf(&e->err, "table key of type %s", lua_typename(e->L, kt));
  return enc_fail(e, at, "");
}

COLD static int enc_dup_key(enc_t *e, const frame_t *at, const entry_t *en) {
  sink_puts(&e->err, "two keys both encode as ");
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
    if ((rc = text_json_string(e->out, en.key, en.len)) || (rc = put_c(e->out, ':')))
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
  sink_puts(&e->err, "the value costs more to encode than the instruction budget has left");
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
    return text_json_string(e->out, s, n);
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
  sink_init(&e.err, err, errlen);
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
      sink_puts(&e.err, "out of memory");
    sink_end(&e.err);
  }
  return rc;
}

/* ---- Decoder ------------------------------------------------------------- */

typedef struct dec {
  lua_State *L;
  const char *start; /* positions in messages count from here */
  const char *p, *end;
  sink_t err;
  int mt; /* stack index of json.array_mt */
  int depth;
  int64_t allowed; /* what is left of the allowance */
} dec_t;

static int dec_value(dec_t *d);

static inline void skip_ws(dec_t *d) {
  const char *p = d->p, *end = d->end;
  while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
    p++;
  d->p = p;
}

static inline int is_digit(char c) { return c >= '0' && c <= '9'; }

COLD __attribute__((format(printf, 3, 4))) static int dec_fail(dec_t *d, const char *pos,
                                                               const char *fmt, ...);

/* Line and column are worked out only here, on failure, so the hot path
 * does not count newlines. */
static int dec_fail(dec_t *d, const char *pos, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  sink_vprintf(&d->err, fmt, ap);
  va_end(ap);
  size_t line = 1, col = 1;
  for (const char *q = d->start; q < pos; q++) {
    if (*q == '\n') {
      line++;
      col = 1;
    } else if (((unsigned char)*q & 0xC0) != 0x80) {
      col++;
    }
  }
  sink_printf(&d->err, " at line %zu, column %zu", line, col);
  return -EINVAL;
}

COLD static int dec_unexpected(dec_t *d, const char *pos) {
  if (pos >= d->end)
    return dec_fail(d, d->end, "unexpected end of text");
  unsigned char c = (unsigned char)*pos;
  if (c < 0x20 || c == 0x7F)
    return dec_fail(d, pos, "unexpected control character U+%04X", c);
  size_t bad = 1, len = text_utf8_seq(pos, (size_t)(d->end - pos), &bad);
  if (len == 0)
    return dec_fail(d, pos, "unexpected byte 0x%02X", c);
  return dec_fail(d, pos, "unexpected character '%.*s'", (int)len, pos);
}

COLD static int dec_nostack(dec_t *d) {
  sink_puts(&d->err, "out of memory (the Lua stack cannot grow)");
  return -ENOMEM;
}

static int dec_literal(dec_t *d, const char *lit, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (d->p + i >= d->end || d->p[i] != lit[i])
      return dec_unexpected(d, d->p + i);
  }
  d->p += n;
  return 0;
}

/* Reads 4 hex digits at p, all before end; -1 if they are not there. */
static long hex4(const char *p, const char *end) {
  if (end - p < 4)
    return -1;
  long v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    int x;
    if (c >= '0' && c <= '9')
      x = c - '0';
    else if (c >= 'a' && c <= 'f')
      x = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      x = c - 'A' + 10;
    else
      return -1;
    v = v * 16 + x;
  }
  return v;
}

/* Unescapes the body [s, q) of a string known to hold a backslash and
 * pushes it. The text never grows (an escape is at least as long as what
 * it stands for), so a buffer of q - s bytes is enough. */
NOINLINE static int dec_unescape(dec_t *d, const char *s, const char *q) {
  /* luaL_Buffer pushes a placeholder, and for long strings a box with its
   * metatable, without checking the stack itself. */
  if (!lua_checkstack(d->L, 4))
    return dec_nostack(d);
  luaL_Buffer b;
  char *w0 = luaL_buffinitsize(d->L, &b, (size_t)(q - s)), *w = w0;
  const char *r = s;
  for (;;) {
    const char *bs = memchr(r, '\\', (size_t)(q - r));
    if (bs == NULL)
      bs = q;
    memcpy(w, r, (size_t)(bs - r));
    w += bs - r;
    r = bs;
    if (r == q)
      break;
    /* The scan that found q stepped over the byte after each backslash, so
     * r[1] is inside the string. */
    char c = r[1];
    switch (c) {
    case '"':
    case '\\':
    case '/': *w++ = c; break;
    case 'b': *w++ = '\b'; break;
    case 'f': *w++ = '\f'; break;
    case 'n': *w++ = '\n'; break;
    case 'r': *w++ = '\r'; break;
    case 't': *w++ = '\t'; break;
    case 'u': {
      long cp = hex4(r + 2, q);
      if (cp < 0)
        return dec_fail(d, r, "invalid \\u escape");
      r += 6;
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        long lo = (q - r >= 6 && r[0] == '\\' && r[1] == 'u') ? hex4(r + 2, q) : -1;
        if (lo >= 0xDC00 && lo <= 0xDFFF) {
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          r += 6;
        } else {
          cp = 0xFFFD; /* a lone high surrogate */
        }
      } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        cp = 0xFFFD; /* a lone low surrogate */
      }
      w += utf8_put(w, (unsigned long)cp);
      continue;
    }
    default:
      if ((unsigned char)c > 0x20 && (unsigned char)c < 0x7F)
        return dec_fail(d, r, "invalid escape '\\%c'", c);
      return dec_fail(d, r, "invalid escape: byte 0x%02X after '\\'", (unsigned char)c);
    }
    r += 2;
  }
  luaL_pushresultsize(&b, (size_t)(w - w0));
  return 0;
}

static int dec_string(dec_t *d) {
  const char *s = d->p + 1, *q = s, *end = d->end;
  int escaped = 0;
  for (;;) {
    while (q < end && !(text_json_class[(unsigned char)*q] & 1))
      q++;
    if (q >= end)
      return dec_unexpected(d, end);
    if (*q == '"')
      break;
    if (*q == '\\') {
      if (end - q < 2)
        return dec_unexpected(d, end);
      escaped = 1;
      q += 2;
      continue;
    }
    return dec_fail(d, q, "unescaped control character U+%04X in a string", (unsigned char)*q);
  }
  if (escaped) {
    int rc = dec_unescape(d, s, q);
    if (rc)
      return rc;
  } else {
    lua_pushlstring(d->L, s, (size_t)(q - s));
  }
  d->p = q + 1;
  return 0;
}

/* Literals too long for an int64, or with a fraction or an exponent, go
 * through Lua's own conversion: it applies the same integer-else-float rule
 * and copes with a locale's decimal comma. */
NOINLINE static int dec_number_slow(dec_t *d, const char *s, size_t n) {
  lua_State *L = d->L;
  char tmp[64];
  if (!lua_checkstack(L, 2))
    return dec_nostack(d);
  if (n < sizeof tmp) {
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    if (lua_stringtonumber(L, tmp) == n + 1)
      return 0;
  } else {
    lua_pushlstring(L, s, n); /* a NUL-terminated copy */
    if (lua_stringtonumber(L, lua_tostring(L, -1)) == n + 1) {
      lua_remove(L, -2);
      return 0;
    }
  }
  return dec_fail(d, s, "invalid number");
}

static int dec_number(dec_t *d) {
  const char *s = d->p, *p = s, *end = d->end;
  int neg = 0, integer = 1, ndigits = 0;
  uint64_t v = 0;
  if (*p == '-') {
    neg = 1;
    p++;
  }
  if (p < end && *p == '0') {
    p++;
    ndigits = 1;
    if (p < end && is_digit(*p))
      return dec_fail(d, p - 1, "leading zero in a number");
  } else if (p < end && is_digit(*p)) {
    for (; p < end && is_digit(*p); p++, ndigits++)
      v = v * 10 + (uint64_t)(*p - '0'); /* may wrap; only used up to 18 digits */
  } else {
    return dec_unexpected(d, p);
  }
  if (p < end && *p == '.') {
    integer = 0;
    p++;
    if (p >= end || !is_digit(*p))
      return dec_unexpected(d, p);
    while (p < end && is_digit(*p))
      p++;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    integer = 0;
    p++;
    if (p < end && (*p == '+' || *p == '-'))
      p++;
    if (p >= end || !is_digit(*p))
      return dec_unexpected(d, p);
    while (p < end && is_digit(*p))
      p++;
  }
  d->p = p;
  if (integer && ndigits <= 18) {
    lua_pushinteger(d->L, neg ? -(lua_Integer)v : (lua_Integer)v);
    return 0;
  }
  return dec_number_slow(d, s, (size_t)(p - s));
}

static int dec_array(dec_t *d) {
  lua_State *L = d->L;
  if (d->depth >= MAX_DEPTH)
    return dec_fail(d, d->p, "nesting deeper than %d", MAX_DEPTH);
  if (!lua_checkstack(L, 3))
    return dec_nostack(d);
  d->depth++;
  d->p++;
  lua_createtable(L, 0, 0);
  lua_pushvalue(L, d->mt);
  lua_setmetatable(L, -2);
  skip_ws(d);
  if (d->p < d->end && *d->p == ']') {
    d->p++;
    d->depth--;
    return 0;
  }
  for (lua_Integer i = 1;; i++) {
    int rc = dec_value(d);
    if (rc)
      return rc;
    lua_rawseti(L, -2, i);
    skip_ws(d);
    if (d->p < d->end && *d->p == ',') {
      d->p++;
      skip_ws(d);
      continue;
    }
    if (d->p < d->end && *d->p == ']')
      break;
    return dec_unexpected(d, d->p);
  }
  d->p++;
  d->depth--;
  return 0;
}

static int dec_object(dec_t *d) {
  lua_State *L = d->L;
  if (d->depth >= MAX_DEPTH)
    return dec_fail(d, d->p, "nesting deeper than %d", MAX_DEPTH);
  if (!lua_checkstack(L, 3))
    return dec_nostack(d);
  d->depth++;
  d->p++;
  lua_createtable(L, 0, 0);
  skip_ws(d);
  if (d->p < d->end && *d->p == '}') {
    d->p++;
    d->depth--;
    return 0;
  }
  for (;;) {
    int rc;
    if (d->p >= d->end || *d->p != '"')
      return dec_unexpected(d, d->p);
    if ((rc = dec_string(d)))
      return rc;
    skip_ws(d);
    if (d->p >= d->end || *d->p != ':')
      return dec_unexpected(d, d->p);
    d->p++;
    skip_ws(d);
    if ((rc = dec_value(d)))
      return rc;
    lua_rawset(L, -3); /* a later duplicate overwrites: the last one wins */
    skip_ws(d);
    if (d->p < d->end && *d->p == ',') {
      d->p++;
      skip_ws(d);
      continue;
    }
    if (d->p < d->end && *d->p == '}')
      break;
    return dec_unexpected(d, d->p);
  }
  d->p++;
  d->depth--;
  return 0;
}

/* Expects d->p at the first byte of a value (whitespace already skipped). */
COLD static int dec_too_costly(dec_t *d) {
  sink_puts(&d->err, "the text costs more to decode than the instruction budget has left");
  return -E2BIG;
}

static int dec_value(dec_t *d) {
  const char *p = d->p;
  if ((d->allowed -= SCRIPT_JSON_DECODE_VALUE_COST) < 0)
    return dec_too_costly(d);
  if (p >= d->end)
    return dec_unexpected(d, p);
  switch (*p) {
  case '{': return dec_object(d);
  case '[': return dec_array(d);
  case '"': return dec_string(d);
  case 't':
    if (dec_literal(d, "true", 4))
      return -EINVAL;
    lua_pushboolean(d->L, 1);
    return 0;
  case 'f':
    if (dec_literal(d, "false", 5))
      return -EINVAL;
    lua_pushboolean(d->L, 0);
    return 0;
  case 'n':
    if (dec_literal(d, "null", 4))
      return -EINVAL;
    lua_pushlightuserdata(d->L, NULL);
    return 0;
  default:
    if (*p == '-' || is_digit(*p))
      return dec_number(d);
    return dec_unexpected(d, p);
  }
}

int script_json_decode(lua_State *L, const char *s, size_t len, char *err, size_t errlen) {
  int64_t unlimited = INT64_MAX;
  return script_json_decode_budgeted(L, s, len, &unlimited, err, errlen);
}

int script_json_decode_budgeted(lua_State *L, const char *s, size_t len, int64_t *allowance,
                                char *err, size_t errlen) {
  dec_t d;
  sink_init(&d.err, err, errlen);
  int top = lua_gettop(L), rc;
  if (!lua_checkstack(L, 4)) {
    rc = dec_nostack(&d);
    goto out;
  }
  if (s == NULL) {
    s = "";
    len = 0;
  }
  d.allowed = *allowance;
  if (len > (uint64_t)d.allowed) {
    rc = dec_too_costly(&d);
    goto out;
  }
  d.allowed -= (int64_t)len;
  script_json_push_array_mt(L);
  d.L = L;
  d.mt = top + 1;
  d.depth = 0;
  d.start = d.p = s;
  d.end = s + len;
  if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
    d.start = d.p = s + 3;
  skip_ws(&d);
  rc = dec_value(&d);
  if (rc == 0) {
    skip_ws(&d);
    if (d.p != d.end)
      rc = dec_fail(&d, d.p, "trailing text");
  }
out:
  if (rc) {
    lua_settop(L, top);
    sink_end(&d.err);
    return rc;
  }
  lua_remove(L, top + 1); /* array_mt, under the value */
  *allowance = d.allowed;
  return 0;
}

void script_json_push_null(lua_State *L) { lua_pushlightuserdata(L, NULL); }

void script_json_push_empty_array(lua_State *L) { lua_pushlightuserdata(L, &empty_array_tag); }
