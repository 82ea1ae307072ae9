/* pattern.c - Lua 5.4 string patterns with a step budget; see pattern.h.
 *
 * Compiling turns the pattern into a flat list of items. Every character
 * test (a literal, `.`, `%a`, a set, a frontier's set) becomes a 256-bit
 * map, so case folding and complements are settled once, not per byte.
 * Matching walks the items left to right. The items never loop back, so a
 * path through the pattern visits each item at most once, and the choices
 * still open on the current path (a repetition that could give back a
 * character, an optional item that could be skipped) fit in a stack of one
 * entry per item. Captures set on the path are recorded in a trail, so a
 * backtrack restores them by popping the trail down to the mark its
 * choice point saved.
 */
#include "pattern.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum kind {
  K_CHAR,     /* one byte in a set, with a quantifier */
  K_OPEN,     /* `(`: capture arg starts here */
  K_CLOSE,    /* `)`: capture arg ends here */
  K_POSITION, /* `()`: capture arg is this position */
  K_BACKREF,  /* `%1`..`%9`: the text of capture arg again */
  K_BALANCE,  /* `%bxy` */
  K_FRONTIER, /* `%f[set]` */
  K_END,      /* `$` at the end of the pattern */
};

enum quant { Q_ONE, Q_STAR, Q_PLUS, Q_LAZY, Q_OPT };

typedef struct item {
  uint8_t kind, quant;
  unsigned char x, y; /* %b's delimiters */
  uint32_t arg;       /* set index (K_CHAR, K_FRONTIER) or capture index */
} item_t;

typedef struct cset {
  uint32_t w[8];
} cset_t;

/* An open choice: item `item` can still be matched another way. For a
 * greedy repetition `count` bytes are taken from `pos` (the next try takes
 * one fewer); for a lazy one `pos` is where the rest was last tried; for
 * `?`, `pos` is where the rest is tried without the item. */
typedef struct choice {
  uint32_t item, trail;
  size_t pos, count;
} choice_t;

typedef struct cap_state {
  size_t start, len;
} cap_state_t;

typedef struct trail {
  uint32_t cap;
  cap_state_t old;
} trail_t;

#define UNFINISHED SIZE_MAX

struct pattern {
  uint32_t nitems, nsets;
  int ncap;
  bool anchored, caseless;
  bool position[PATTERN_MAXCAPTURES];
  item_t *items;
  cset_t *sets;
  choice_t *stack;
  cap_state_t cap[PATTERN_MAXCAPTURES];
  /* A path sets each capture at most twice (open and close). */
  trail_t trail[2 * PATTERN_MAXCAPTURES];
};

#define ALIGN8(x) (((x) + 7) & ~(size_t)7)

size_t pattern_size(size_t len) {
  /* Every item takes at least one pattern byte; +1 keeps len 0 simple. */
  size_t n = len + 1, per = sizeof(choice_t) + sizeof(item_t) + sizeof(cset_t);
  if (n == 0 || n > (SIZE_MAX - sizeof(struct pattern) - 64) / per)
    return 0;
  return ALIGN8(sizeof(struct pattern)) + n * per + 16;
}

bool pattern_anchored(const pattern_t *p) { return p->anchored; }

bool pattern_is_plain(const char *pat, size_t len) {
  static const char specials[] = "^$*+?.([%-";
  for (size_t i = 0; i < len; i++)
    if (pat[i] != '\0' && strchr(specials, pat[i]) != NULL)
      return false;
  return true;
}

/* ---- character sets ------------------------------------------------------ */

static inline bool in_set(const cset_t *m, unsigned char c) {
  return m->w[c >> 5] >> (c & 31) & 1;
}

static inline void set_add(cset_t *m, unsigned char c) { m->w[c >> 5] |= 1u << (c & 31); }

static inline bool is_lower(int c) { return c >= 'a' && c <= 'z'; }
static inline bool is_upper(int c) { return c >= 'A' && c <= 'Z'; }
static inline int fold(int c) { return is_upper(c) ? c + ('a' - 'A') : c; }

/* Whether byte c is in the class named by the lower-case letter cl, as the
 * C locale's <ctype.h> defines it. */
static bool class_has(int cl, int c) {
  bool alpha = is_lower(c) || is_upper(c), digit = c >= '0' && c <= '9';
  switch (cl) {
  case 'a': return alpha;
  case 'c': return c < 32 || c == 127;
  case 'd': return digit;
  case 'g': return c > 32 && c < 127;
  case 'l': return is_lower(c);
  case 'p': return c > 32 && c < 127 && !alpha && !digit;
  case 's': return c == ' ' || (c >= '\t' && c <= '\r');
  case 'u': return is_upper(c);
  case 'w': return alpha || digit;
  case 'x': return digit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  default: return false;
  }
}

/* Adds the other case of every letter in m. */
static void widen_case(cset_t *m) {
  for (int c = 'a'; c <= 'z'; c++) {
    int u = c - ('a' - 'A');
    if (in_set(m, (unsigned char)c) || in_set(m, (unsigned char)u)) {
      set_add(m, (unsigned char)c);
      set_add(m, (unsigned char)u);
    }
  }
}

static void complement(cset_t *m) {
  for (int i = 0; i < 8; i++)
    m->w[i] = ~m->w[i];
}

/* The set of `%cl`: a class, or the character cl itself when cl names no
 * class (`%.`, `%%`, `%z`). */
static void escape_set(cset_t *m, unsigned char cl, bool caseless) {
  int lc = fold(cl);
  if (!strchr("acdglpsuwx", lc) || lc == 0) {
    set_add(m, cl);
  } else {
    for (int c = 0; c < 256; c++)
      if (class_has(lc, c))
        set_add(m, (unsigned char)c);
  }
  if (caseless)
    widen_case(m);
  if (is_upper(cl) && strchr("acdglpsuwx", lc))
    complement(m);
}

/* ---- compiling ----------------------------------------------------------- */

typedef struct compiler {
  pattern_t *p;
  const char *pat;
  size_t len, i;
  char *err;
  size_t errlen;
} compiler_t;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int
fail(compiler_t *c, const char *fmt, ...) {
  if (c->errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
  }
  return -EINVAL;
}

static cset_t *new_set(compiler_t *c, uint32_t *index) {
  pattern_t *p = c->p;
  *index = p->nsets;
  cset_t *m = &p->sets[p->nsets++];
  memset(m, 0, sizeof *m);
  return m;
}

/* A set `[...]` starting at c->i (the '['). Where it ends follows Lua: the
 * first byte after `[` or `[^` is a member even if it is `]`, and `%`
 * escapes the byte after it. */
static int compile_set(compiler_t *c, cset_t *m) {
  const char *pat = c->pat;
  size_t len = c->len, i = c->i + 1;
  bool negate = i < len && pat[i] == '^';
  if (negate)
    i++;
  size_t close = i;
  for (;;) {
    if (close >= len)
      return fail(c, "malformed pattern (missing ']')");
    if (pat[close++] == '%' && close < len)
      close++;
    if (close < len && pat[close] == ']')
      break;
  }
  while (i < close) {
    unsigned char a = (unsigned char)pat[i];
    if (a == '%') {
      cset_t e = {{0}};
      escape_set(&e, (unsigned char)pat[i + 1], c->p->caseless);
      for (int w = 0; w < 8; w++)
        m->w[w] |= e.w[w];
      i += 2;
    } else if (i + 2 < close && pat[i + 1] == '-') {
      for (int b = a; b <= (unsigned char)pat[i + 2]; b++)
        set_add(m, (unsigned char)b);
      i += 3;
    } else {
      set_add(m, a);
      i++;
    }
  }
  if (c->p->caseless)
    widen_case(m);
  if (negate)
    complement(m);
  c->i = close + 1;
  return 0;
}

/* One character test at c->i (a literal, `.`, `%x` or a set) and the
 * quantifier after it. */
static int compile_char(compiler_t *c, item_t *it) {
  const char *pat = c->pat;
  cset_t *m = new_set(c, &it->arg);
  unsigned char a = (unsigned char)pat[c->i];
  it->kind = K_CHAR;
  if (a == '%') {
    if (c->i + 1 >= c->len)
      return fail(c, "malformed pattern (ends with '%%')");
    escape_set(m, (unsigned char)pat[c->i + 1], c->p->caseless);
    c->i += 2;
  } else if (a == '[') {
    int rc = compile_set(c, m);
    if (rc)
      return rc;
  } else if (a == '.') {
    memset(m, 0xff, sizeof *m);
    c->i++;
  } else {
    set_add(m, a);
    if (c->p->caseless)
      widen_case(m);
    c->i++;
  }
  if (c->i < c->len) {
    switch (pat[c->i]) {
    case '*': it->quant = Q_STAR; break;
    case '+': it->quant = Q_PLUS; break;
    case '-': it->quant = Q_LAZY; break;
    case '?': it->quant = Q_OPT; break;
    default: return 0;
    }
    c->i++;
  }
  return 0;
}

/* `%b`, `%f` or `%1`..`%9` at c->i; returns 1 when the escape is none of
 * them (a character class, for compile_char). */
static int compile_escape(compiler_t *c, item_t *it, const bool *closed) {
  pattern_t *p = c->p;
  const char *pat = c->pat;
  size_t i = c->i;
  if (i + 1 >= c->len)
    return 1;
  char e = pat[i + 1];
  if (e == 'b') {
    if (i + 3 >= c->len)
      return fail(c, "malformed pattern (missing arguments to '%%b')");
    it->kind = K_BALANCE;
    it->x = (unsigned char)pat[i + 2];
    it->y = (unsigned char)pat[i + 3];
    c->i += 4;
    return 0;
  }
  if (e == 'f') {
    c->i += 2;
    if (c->i >= c->len || pat[c->i] != '[')
      return fail(c, "missing '[' after '%%f' in pattern");
    it->kind = K_FRONTIER;
    return compile_set(c, new_set(c, &it->arg));
  }
  if (e >= '0' && e <= '9') {
    int l = e - '1';
    if (l < 0 || l >= p->ncap || !closed[l])
      return fail(c, "invalid capture index %%%c", e);
    it->kind = K_BACKREF;
    it->arg = (uint32_t)l;
    c->i += 2;
    return 0;
  }
  return 1;
}

int pattern_compile(pattern_t *p, const char *pat, size_t len, unsigned flags, char *err,
                    size_t errlen) {
  size_t n = len + 1;
  char *base = (char *)p;
  memset(p, 0, sizeof *p);
  p->stack = (choice_t *)(base + ALIGN8(sizeof *p));
  p->items = (item_t *)(p->stack + n);
  p->sets = (cset_t *)(p->items + n);
  p->caseless = (flags & PATTERN_CASELESS) != 0;
  compiler_t c = {p, pat, len, 0, err, errlen};
  if (!(flags & PATTERN_NO_ANCHOR) && len > 0 && pat[0] == '^') {
    p->anchored = true;
    c.i = 1;
  }
  int open[PATTERN_MAXCAPTURES], nopen = 0, rc = 0;
  bool closed[PATTERN_MAXCAPTURES] = {false};
  while (c.i < len && rc == 0) {
    item_t *it = &p->items[p->nitems++];
    memset(it, 0, sizeof *it);
    char a = pat[c.i];
    if (a == '(') {
      if (p->ncap >= PATTERN_MAXCAPTURES)
        return fail(&c, "too many captures");
      it->arg = (uint32_t)p->ncap;
      if (c.i + 1 < len && pat[c.i + 1] == ')') {
        it->kind = K_POSITION;
        p->position[p->ncap] = closed[p->ncap] = true;
        c.i += 2;
      } else {
        it->kind = K_OPEN;
        open[nopen++] = p->ncap;
        c.i++;
      }
      p->ncap++;
    } else if (a == ')') {
      if (nopen == 0)
        return fail(&c, "invalid pattern capture");
      it->kind = K_CLOSE;
      it->arg = (uint32_t)open[--nopen];
      closed[it->arg] = true;
      c.i++;
    } else if (a == '$' && c.i + 1 == len) {
      it->kind = K_END;
      c.i++;
    } else if (a == '%' && (rc = compile_escape(&c, it, closed)) <= 0) {
      continue;
    } else {
      rc = compile_char(&c, it);
    }
  }
  if (rc == 0 && nopen > 0)
    rc = fail(&c, "unfinished capture");
  return rc;
}

/* ---- matching ------------------------------------------------------------ */

static inline bool same_byte(const pattern_t *p, unsigned char a, unsigned char b) {
  return a == b || (p->caseless && fold(a) == fold(b));
}

static void set_cap(pattern_t *p, uint32_t *tp, uint32_t cap, size_t start, size_t len) {
  p->trail[*tp].cap = cap;
  p->trail[*tp].old = p->cap[cap];
  (*tp)++;
  p->cap[cap].start = start;
  p->cap[cap].len = len;
}

static void undo(pattern_t *p, uint32_t *tp, uint32_t mark) {
  while (*tp > mark) {
    (*tp)--;
    p->cap[p->trail[*tp].cap] = p->trail[*tp].old;
  }
}

enum pattern_result pattern_match_at(pattern_t *p, const char *subject, size_t n, size_t pos,
                                     int64_t *steps, pattern_match_t *m) {
  const unsigned char *s = (const unsigned char *)subject;
  int64_t left = *steps;
  uint32_t k = 0, sp = 0, tp = 0;
  size_t at = pos;
  for (int i = 0; i < p->ncap; i++)
    p->cap[i] = (cap_state_t){pos, UNFINISHED};
  for (;;) {
    if (--left < 0)
      goto out_of_steps;
    if (k == p->nitems)
      break;
    const item_t *it = &p->items[k];
    switch (it->kind) {
    case K_CHAR: {
      const cset_t *set = &p->sets[it->arg];
      if (it->quant == Q_ONE) {
        if (at < n && in_set(set, s[at])) {
          at++;
          k++;
          continue;
        }
        goto fail;
      }
      if (it->quant == Q_LAZY || it->quant == Q_OPT) {
        if (it->quant == Q_OPT && !(at < n && in_set(set, s[at]))) {
          k++;
          continue;
        }
        /* `?` takes the byte and may give it back; `-` tries the rest first. */
        p->stack[sp++] = (choice_t){k, tp, at, 0};
        if (it->quant == Q_OPT)
          at++;
        k++;
        continue;
      }
      size_t count = 0;
      while (at + count < n && in_set(set, s[at + count])) {
        if (--left < 0)
          goto out_of_steps;
        count++;
      }
      if (it->quant == Q_PLUS && count == 0)
        goto fail;
      p->stack[sp++] = (choice_t){k, tp, at, count};
      at += count;
      k++;
      continue;
    }
    case K_OPEN: set_cap(p, &tp, it->arg, at, UNFINISHED); break;
    case K_CLOSE:
      set_cap(p, &tp, it->arg, p->cap[it->arg].start, at - p->cap[it->arg].start);
      break;
    case K_POSITION: set_cap(p, &tp, it->arg, at, 0); break;
    case K_BACKREF: {
      /* Lua never matches a back-reference to a position capture. */
      if (p->position[it->arg])
        goto fail;
      size_t len = p->cap[it->arg].len, from = p->cap[it->arg].start;
      if (n - at < len)
        goto fail;
      if ((left -= (int64_t)len) < 0)
        goto out_of_steps;
      for (size_t j = 0; j < len; j++)
        if (!same_byte(p, s[from + j], s[at + j]))
          goto fail;
      at += len;
      break;
    }
    case K_BALANCE: {
      if (at >= n || !same_byte(p, s[at], it->x))
        goto fail;
      size_t depth = 1, j = at + 1;
      for (; j < n; j++) {
        if (--left < 0)
          goto out_of_steps;
        /* The closing byte is tested first: `%bxx` ends at the next x. */
        if (same_byte(p, s[j], it->y)) {
          if (--depth == 0)
            break;
        } else if (same_byte(p, s[j], it->x)) {
          depth++;
        }
      }
      if (j >= n)
        goto fail;
      at = j + 1;
      break;
    }
    case K_FRONTIER: {
      /* Outside the subject is the byte '\0', as in Lua. */
      const cset_t *set = &p->sets[it->arg];
      unsigned char before = at > 0 ? s[at - 1] : 0, here = at < n ? s[at] : 0;
      if (in_set(set, before) || !in_set(set, here))
        goto fail;
      break;
    }
    case K_END:
      if (at != n)
        goto fail;
      break;
    }
    k++;
    continue;

  fail:
    for (;;) {
      if (sp == 0) {
        *steps = left;
        return PATTERN_NOMATCH;
      }
      if (--left < 0)
        goto out_of_steps;
      choice_t *c = &p->stack[sp - 1];
      const item_t *ci = &p->items[c->item];
      undo(p, &tp, c->trail);
      if (ci->quant == Q_STAR || ci->quant == Q_PLUS) {
        if (c->count > (ci->quant == Q_PLUS ? 1u : 0u)) {
          c->count--;
          at = c->pos + c->count;
          break;
        }
      } else if (ci->quant == Q_LAZY) {
        if (c->pos < n && in_set(&p->sets[ci->arg], s[c->pos])) {
          at = ++c->pos;
          break;
        }
      } else { /* Q_OPT: the rest without the item */
        at = c->pos;
        sp--;
        k = c->item + 1;
        goto resumed;
      }
      sp--;
    }
    k = p->stack[sp - 1].item + 1;
  resumed:;
  }
  m->start = pos;
  m->end = at;
  m->ncap = p->ncap;
  for (int i = 0; i < p->ncap; i++) {
    m->cap[i].start = p->cap[i].start;
    m->cap[i].position = p->position[i];
    m->cap[i].len = p->position[i] ? 0 : p->cap[i].len;
  }
  *steps = left;
  return PATTERN_MATCH;

out_of_steps:
  *steps = 0;
  return PATTERN_OUT_OF_STEPS;
}

enum pattern_result pattern_find(pattern_t *p, const char *s, size_t n, size_t init,
                                 int64_t *steps, pattern_match_t *m) {
  for (size_t at = init; at <= n; at++) {
    enum pattern_result r = pattern_match_at(p, s, n, at, steps, m);
    if (r != PATTERN_NOMATCH || p->anchored)
      return r;
  }
  return PATTERN_NOMATCH;
}
