/* router.c - Werkzeug-syntax URL rules compiled into a segment trie.
 *
 * Nodes, dynamic edges and rules live in flat arrays and refer to each other
 * by index; static edges live in one open-addressing table keyed by (parent
 * node, segment bytes). router_add parses a rule completely, then reserves
 * every slot the rule can need, and only then links it in: linking cannot
 * fail, which is how a refused rule (bad syntax or -ENOMEM) leaves the router
 * exactly as it was.
 *
 * Matching walks the trie depth first: static child, then dynamic edges in
 * priority order, backtracking on failure. It does not stop at the first
 * rule found, because m->allowed must be the union over every rule matching
 * the path (405 and OPTIONS need it); the first rule found that allows the
 * method is the answer.
 */
#include "router.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NONE UINT32_MAX
/* Matching steps before router_match gives up. Real rule sets take tens;
 * only several path converters in one rule against a path of thousands of
 * segments (or variables packed in one long segment) get near, and the
 * search would then be polynomial in the path length: a hung event loop. */
#define MAX_STEPS 1000000
/* Room for one converter in an edge key: "<", seven 16-digit fields, ":", ">". */
#define CONV_KEY_MAX (1 + 7 * 16 + 1 + 1)

typedef struct conv {
  enum router_conv kind;
  bool sign, has_min, has_max;
  uint32_t fixed;          /* int: exact number of digits, 0 = any; string: length= given */
  uint32_t minlen, maxlen; /* string: in code points */
  uint32_t nwords;         /* any */
  int64_t imin, imax;
  double fmin, fmax;
  const char *words; /* any: nwords NUL-terminated words back to back */
} conv_t;

typedef struct piece {
  bool is_conv;
  const char *text; /* static text; while parsing `any`, its argument text */
  size_t len;
  conv_t conv;
} piece_t;

typedef struct edge {
  uint32_t next; /* the next dynamic edge of the same node, in priority order */
  uint32_t child;
  uint8_t rank;     /* 0 int/float, 1 mixed, 2 string/uuid/any, 3 has a path */
  bool spans;       /* has a path converter: may cover several path segments */
  uint32_t statlen; /* static bytes in the segment; more come first in a rank */
  uint32_t npieces;
  char *key; /* canonical form: equal keys are the same edge; pieces point in */
  size_t keylen;
  piece_t *pieces;
} edge_t;

typedef struct node {
  uint32_t first_edge, first_rule, last_rule, nstatic;
} node_t;

typedef struct rule {
  int id;
  bool strict, trailing;
  bool path_end; /* ends with a path converter, whose value takes a final "/" */
  uint32_t next; /* the next rule ending at the same node, in insertion order */
  uint64_t methods;
  size_t nvars;
  char **names; /* one allocation: nvars pointers, then the strings */
} rule_t;

typedef struct sentry {
  uint32_t parent, child, hash, off, len; /* off/len: the segment in r->keys */
} sentry_t;

struct router {
  node_t *nodes;
  size_t nnodes, nodes_cap;
  edge_t *edges;
  size_t nedges, edges_cap;
  rule_t *rules;
  size_t nrules, rules_cap;
  /* Static edges, and under the parent NONE (never a node) the map from an
   * id to its first rule. child == NONE marks a free slot. */
  sentry_t *stab;
  size_t stab_count, stab_cap;
  char *keys; /* the bytes of static segments and ids */
  size_t keys_len, keys_cap;
};

/* ---- allocation ---------------------------------------------------------- */

static long fail_after = -1;

void router_test_fail_alloc(long n) { fail_after = n; }

static bool alloc_refused(void) {
  if (fail_after < 0)
    return false;
  if (fail_after == 0)
    return true;
  fail_after--;
  return false;
}

static void *xmalloc(size_t n) { return alloc_refused() ? NULL : malloc(n); }

static void *xrealloc(void *p, size_t n) { return alloc_refused() ? NULL : realloc(p, n); }

/* Grows an array to hold `need` elements; returns the (maybe moved) array, or
 * NULL with the old one untouched. An array that needs no room is returned as
 * it is, NULL included. */
static void *grow(void *p, size_t *cap, size_t need, size_t size) {
  if (need <= *cap)
    return p;
  size_t c = *cap ? *cap : 16;
  while (c < need) {
    if (c > SIZE_MAX / 4 / size)
      return NULL;
    c *= 2;
  }
  void *np = xrealloc(p, c * size);
  if (np)
    *cap = c;
  return np;
}

/* ---- hashing ------------------------------------------------------------- */

/* FNV-1a over the bytes, seeded with the parent so that the same segment
 * under different nodes lands in different slots, then a murmur finalizer
 * so that the low bits used as the slot index depend on every byte. */
static uint32_t seg_hash(uint32_t parent, const char *s, size_t n) {
  uint64_t h = 0xcbf29ce484222325ULL ^ (parent * 0x9e3779b97f4a7c15ULL);
  for (size_t i = 0; i < n; i++)
    h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
  h ^= n;
  h = (h ^ (h >> 33)) * 0xff51afd7ed558ccdULL;
  h = (h ^ (h >> 33)) * 0xc4ceb9fe1a85ec53ULL;
  return (uint32_t)(h ^ (h >> 33));
}

static uint32_t stab_find(const router_t *r, uint32_t parent, const char *s, size_t n,
                          uint32_t h) {
  size_t mask = r->stab_cap - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    const sentry_t *e = &r->stab[i];
    if (e->child == NONE)
      return NONE;
    if (e->hash == h && e->parent == parent && e->len == n &&
        (n == 0 || memcmp(r->keys + e->off, s, n) == 0))
      return e->child;
  }
}

static void stab_put(sentry_t *tab, size_t cap, const sentry_t *e) {
  size_t i = e->hash & (cap - 1);
  while (tab[i].child != NONE)
    i = (i + 1) & (cap - 1);
  tab[i] = *e;
}

/* Keeps the table at most half full, so probes stay short and one always ends. */
static int stab_reserve(router_t *r, size_t extra) {
  size_t need = (r->stab_count + extra) * 2;
  if (need <= r->stab_cap)
    return 0;
  size_t cap = r->stab_cap ? r->stab_cap : 64;
  while (cap < need)
    cap *= 2;
  sentry_t *tab = xmalloc(cap * sizeof *tab);
  if (tab == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < cap; i++)
    tab[i].child = NONE;
  for (size_t i = 0; i < r->stab_cap; i++)
    if (r->stab[i].child != NONE)
      stab_put(tab, cap, &r->stab[i]);
  free(r->stab);
  r->stab = tab;
  r->stab_cap = cap;
  return 0;
}

static uint32_t id_find(const router_t *r, int id) {
  const char *key = (const char *)&id;
  return r->stab_count ? stab_find(r, NONE, key, sizeof id, seg_hash(NONE, key, sizeof id)) : NONE;
}

/* ---- rule parsing -------------------------------------------------------- */

typedef struct pseg {
  bool dyn;
  const char *text; /* static: the segment in the rule text */
  size_t len;
  edge_t e; /* dynamic: key and pieces are owned here until linked */
} pseg_t;

typedef struct parsed {
  const char *rule;
  char *err;
  size_t errlen;
  pseg_t *segs;
  size_t nsegs, ndyn, static_bytes;
  size_t nvars;
  const char *name[ROUTER_MAX_VARS];
  size_t namelen[ROUTER_MAX_VARS];
  char **names;
} parsed_t;

static int fail(parsed_t *pr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(parsed_t *pr, const char *fmt, ...) {
  if (pr->err && pr->errlen) {
    int n = snprintf(pr->err, pr->errlen, "rule '%s': ", pr->rule);
    if (n >= 0 && (size_t)n < pr->errlen) {
      va_list ap;
      va_start(ap, fmt);
      vsnprintf(pr->err + n, pr->errlen - (size_t)n, fmt, ap);
      va_end(ap);
    }
  }
  return -EINVAL;
}

static int nomem(parsed_t *pr) {
  fail(pr, "out of memory");
  return -ENOMEM;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static bool is_word(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_ident(const char *s, size_t n) {
  if (n == 0 || is_digit(s[0]))
    return false;
  for (size_t i = 0; i < n; i++)
    if (!is_word(s[i]))
      return false;
  return true;
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static bool same(const char *s, size_t n, const char *lit) {
  return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

/* Parses [s, s+n) as an optionally negative decimal integer that fits int64. */
static bool parse_i64(const char *s, size_t n, int64_t *out) {
  bool neg = n > 0 && s[0] == '-';
  size_t i = neg;
  uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
  if (i == n)
    return false;
  for (; i < n; i++) {
    if (!is_digit(s[i]))
      return false;
    unsigned d = (unsigned)(s[i] - '0');
    if (v > (lim - d) / 10)
      return false;
    v = v * 10 + d;
  }
  *out = !neg ? (int64_t)v : v == lim ? INT64_MIN : -(int64_t)v;
  return true;
}

/* The value of the decimal ip "." fp, without allocating. Integer parts too
 * long for any double are infinite (as Python's float() says); fraction
 * digits past the buffer are dropped (at most the last bit of a value that
 * falls halfway between two doubles could depend on them). */
static double decimal_value(bool neg, const char *ip, size_t ilen, const char *fp, size_t flen) {
  char buf[400];
  size_t k = 0;
  while (ilen > 1 && *ip == '0')
    ip++, ilen--;
  if (ilen > 320)
    return neg ? -HUGE_VAL : HUGE_VAL;
  if (neg)
    buf[k++] = '-';
  memcpy(buf + k, ip, ilen);
  k += ilen;
  /* strtod reads the locale's decimal point; a script may have changed it. */
  buf[k++] = localeconv()->decimal_point[0];
  if (flen > sizeof buf - k - 1)
    flen = sizeof buf - k - 1;
  memcpy(buf + k, fp, flen);
  buf[k + flen] = '\0';
  return strtod(buf, NULL);
}

/* One converter argument, Python-like: [name =] value, where value is an
 * int, a float, True/False/None, a quoted string or a bare word. */
typedef struct arg {
  const char *raw, *name, *val;
  size_t rawlen, namelen, vallen;
  enum { A_BAD, A_INT, A_FLOAT, A_BOOL, A_NONE, A_STR } type;
  int64_t i;
  double f;
} arg_t;

static void classify_arg(arg_t *a) {
  const char *s = a->raw, *end = a->raw + a->rawlen;
  a->type = A_BAD;
  const char *w = s;
  while (w < end && is_word(*w))
    w++;
  const char *eq = w;
  while (eq < end && is_space(*eq))
    eq++;
  if (w > s && !is_digit(*s) && eq < end && *eq == '=') {
    a->name = s;
    a->namelen = (size_t)(w - s);
    for (s = eq + 1; s < end && is_space(*s);)
      s++;
  }
  a->val = s;
  a->vallen = (size_t)(end - s);
  if (s == end)
    return;
  if (*s == '\'' || *s == '"') {
    if (a->vallen < 2 || end[-1] != *s || memchr(s + 1, *s, a->vallen - 2))
      return;
    a->val++;
    a->vallen -= 2;
    a->type = A_STR;
    return;
  }
  for (const char *q = s; q < end; q++)
    if (!is_word(*q) && *q != '.' && *q != '-')
      return;
  size_t n = a->vallen;
  bool neg = *s == '-';
  const char *dot = memchr(s, '.', n);
  if (same(s, n, "True") || same(s, n, "False")) {
    a->type = A_BOOL;
    a->i = *s == 'T';
  } else if (same(s, n, "None")) {
    a->type = A_NONE;
  } else if (parse_i64(s, n, &a->i)) {
    a->type = A_INT;
  } else if (dot && dot > s + neg) {
    const char *q = s + neg;
    while (q < dot && is_digit(*q))
      q++;
    const char *fe = dot + 1;
    while (fe < end && is_digit(*fe))
      fe++;
    if (q == dot && fe == end) {
      a->type = A_FLOAT;
      a->f =
          decimal_value(neg, s + neg, (size_t)(dot - s - neg), dot + 1, (size_t)(end - dot - 1));
    }
  }
  if (a->type == A_BAD && !memchr(s, '-', n))
    a->type = A_STR; /* a bare word, as Werkzeug reads `any(red, green)` */
}

/* Reads the next comma-separated argument of [*p, end): returns true with
 * *a filled (a->type A_BAD when malformed), false when none is left. */
static bool next_arg(const char **p, const char *end, arg_t *a) {
  const char *s = *p;
  while (s < end && is_space(*s))
    s++;
  if (s == end)
    return false;
  const char *q = s;
  char quote = 0;
  for (; q < end && (quote || *q != ','); q++) {
    if (quote && *q == quote)
      quote = 0;
    else if (!quote && (*q == '\'' || *q == '"'))
      quote = *q;
  }
  *p = q < end ? q + 1 : q;
  while (q > s && is_space(q[-1]))
    q--;
  memset(a, 0, sizeof *a);
  a->raw = s;
  a->rawlen = (size_t)(q - s);
  classify_arg(a);
  return true;
}

static const char *const conv_names[] = {
    [ROUTER_CONV_STRING] = "string", [ROUTER_CONV_INT] = "int",   [ROUTER_CONV_FLOAT] = "float",
    [ROUTER_CONV_PATH] = "path",     [ROUTER_CONV_UUID] = "uuid", [ROUTER_CONV_ANY] = "any",
};

/* Keyword names by position, as the Werkzeug converters declare them. */
static const char *const conv_params[ROUTER_CONV_ANY + 1][4] = {
    [ROUTER_CONV_STRING] = {"minlength", "maxlength", "length"},
    [ROUTER_CONV_INT] = {"fixed_digits", "min", "max", "signed"},
    [ROUTER_CONV_FLOAT] = {"min", "max", "signed"},
};

/* Applies argument `a` as parameter `param` of converter `c`. */
static bool apply_arg(conv_t *c, int param, const arg_t *a) {
  bool num = a->type == A_INT || (a->type == A_FLOAT && c->kind == ROUTER_CONV_FLOAT);
  double v = a->type == A_INT ? (double)a->i : a->f;
  switch (c->kind * 4 + param) {
  case ROUTER_CONV_STRING * 4 + 0:
  case ROUTER_CONV_STRING * 4 + 1:
  case ROUTER_CONV_STRING * 4 + 2:
    if (a->type == A_NONE)
      return param != 0;
    if (a->type != A_INT || a->i < 0 || a->i >= UINT32_MAX)
      return false;
    if (c->fixed && param != 2) /* length wins over min/maxlength, as in Werkzeug */
      return true;
    c->fixed = param == 2;
    if (param != 1)
      c->minlen = (uint32_t)a->i;
    if (param != 0)
      c->maxlen = (uint32_t)a->i;
    return true;
  case ROUTER_CONV_INT * 4 + 0:
    if (a->type != A_INT || a->i < 0 || a->i >= UINT32_MAX)
      return false;
    c->fixed = (uint32_t)a->i;
    return true;
  case ROUTER_CONV_INT * 4 + 1:
  case ROUTER_CONV_INT * 4 + 2:
  case ROUTER_CONV_FLOAT * 4 + 0:
  case ROUTER_CONV_FLOAT * 4 + 1:
    if (a->type == A_NONE)
      return true;
    if (!num)
      return false;
    if (param == (c->kind == ROUTER_CONV_INT ? 1 : 0)) {
      c->has_min = true;
      c->imin = a->i;
      c->fmin = v;
    } else {
      c->has_max = true;
      c->imax = a->i;
      c->fmax = v;
    }
    if (c->kind == ROUTER_CONV_INT)
      c->fmin = c->fmax = 0; /* only the int64 bounds count; keep keys canonical */
    else
      c->imin = c->imax = 0;
    return true;
  case ROUTER_CONV_INT * 4 + 3:
  case ROUTER_CONV_FLOAT * 4 + 2: c->sign = a->i != 0; return a->type == A_BOOL;
  }
  return false;
}

/* Parses the arguments [s, s+n) of converter `c` (named `cname` in the rule). */
static int parse_args(parsed_t *pr, piece_t *pc, const char *cname, size_t cnlen, const char *s,
                      size_t n) {
  conv_t *c = &pc->conv;
  const char *p = s, *end = s + n;
  unsigned seen = 0;
  int positional = 0;
  arg_t a;
  while (next_arg(&p, end, &a)) {
    int param = -1;
    bool ok = a.type != A_BAD;
    if (ok && c->kind == ROUTER_CONV_ANY) {
      ok = a.namelen == 0 && a.vallen > 0 && !memchr(a.val, '/', a.vallen);
      c->nwords++;
    } else if (ok && a.namelen) {
      for (int i = 0; i < 4; i++)
        if (conv_params[c->kind][i] && same(a.name, a.namelen, conv_params[c->kind][i]))
          param = i;
    } else if (ok) {
      param = positional < 4 && conv_params[c->kind][positional] ? positional : -1;
      positional++;
    }
    if (ok && c->kind != ROUTER_CONV_ANY) {
      ok = param >= 0 && !(seen & 1u << param) && apply_arg(c, param, &a);
      if (param >= 0)
        seen |= 1u << param;
    }
    if (!ok)
      return fail(pr, "bad argument '%.*s' for %.*s", (int)a.rawlen, a.raw, (int)cnlen, cname);
  }
  if (c->kind == ROUTER_CONV_ANY && c->nwords == 0)
    return fail(pr, "converter 'any' needs at least one word");
  if (c->kind == ROUTER_CONV_ANY) {
    pc->text = s; /* the words are copied out when the edge key is built */
    pc->len = n;
  }
  return 0;
}

/* Parses the variable "<...>" that starts at rule[*at] into *pc. */
static int parse_var(parsed_t *pr, size_t *at, piece_t *pc) {
  const char *rule = pr->rule;
  memset(pc, 0, sizeof *pc);
  size_t i = *at + 1, colon = 0, paren = 0;
  char quote = 0;
  int depth = 0;
  for (;; i++) {
    char c = rule[i];
    if (c == '\0' || (c == '/' && !depth))
      return fail(pr, "'<' is never closed");
    if (quote) {
      quote = c == quote ? 0 : quote;
    } else if (depth && (c == '\'' || c == '"')) {
      quote = c;
    } else if (c == '(') {
      paren = paren ? paren : i;
      depth++;
    } else if (c == ')' && depth) {
      depth--;
    } else if (c == ':' && !depth && !colon) {
      colon = i;
    } else if (c == '>' && !depth) {
      break;
    }
  }
  size_t start = *at + 1, close = i;
  *at = close + 1;
  const char *name = rule + (colon ? colon + 1 : start);
  size_t namelen = close - (size_t)(name - rule);
  if (namelen == 0)
    return fail(pr, "empty variable name");
  if (!is_ident(name, namelen))
    return fail(pr, "invalid variable name '%.*s'", (int)namelen, name);
  for (size_t k = 0; k < pr->nvars; k++)
    if (pr->namelen[k] == namelen && memcmp(pr->name[k], name, namelen) == 0)
      return fail(pr, "variable '%.*s' appears twice", (int)namelen, name);
  if (pr->nvars == ROUTER_MAX_VARS)
    return fail(pr, "more than %d variables", ROUTER_MAX_VARS);
  pr->name[pr->nvars] = name;
  pr->namelen[pr->nvars++] = namelen;

  pc->is_conv = true;
  pc->conv.kind = ROUTER_CONV_STRING;
  pc->conv.minlen = 1;
  pc->conv.maxlen = UINT32_MAX;
  if (!colon)
    return 0;
  const char *cname = rule + start;
  size_t cnlen = (paren && paren < colon ? paren : colon) - start;
  if (cnlen == 0)
    return fail(pr, "empty converter name");
  if (!is_ident(cname, cnlen))
    return fail(pr, "invalid converter name '%.*s'", (int)cnlen, cname);
  int kind = same(cname, cnlen, "default") ? ROUTER_CONV_STRING : -1;
  for (int k = 0; k < (int)(sizeof conv_names / sizeof conv_names[0]); k++)
    if (same(cname, cnlen, conv_names[k]))
      kind = k;
  if (kind < 0)
    return fail(pr, "unknown converter '%.*s'", (int)cnlen, cname);
  pc->conv.kind = (enum router_conv)kind;
  if (!paren || paren > colon)
    return parse_args(pr, pc, cname, cnlen, rule + colon, 0);
  if (rule[colon - 1] != ')')
    return fail(pr, "unexpected text after the arguments of '%.*s'", (int)cnlen, cname);
  return parse_args(pr, pc, cname, cnlen, rule + paren + 1, colon - 1 - (paren + 1));
}

/* Writes the converter's identity as fixed-width hex: a rule with many
 * converters is added often (every provision load), and printf's float
 * formatting was a measurable share of a 1,000-rule load. -0.0 and 0.0
 * bound the same values, so they get one key. */
static size_t conv_key(const conv_t *c, char *dst) {
  double fmin = c->fmin == 0 ? 0.0 : c->fmin, fmax = c->fmax == 0 ? 0.0 : c->fmax;
  uint64_t fields[7] = {
      (uint64_t)c->kind | (uint64_t)c->sign << 8 | (uint64_t)c->has_min << 9 |
          (uint64_t)c->has_max << 10,
      (uint64_t)c->fixed << 32 | c->minlen,
      (uint64_t)c->maxlen << 32 | c->nwords,
      (uint64_t)c->imin,
      (uint64_t)c->imax,
  };
  memcpy(&fields[5], &fmin, sizeof fmin);
  memcpy(&fields[6], &fmax, sizeof fmax);
  size_t k = 0;
  dst[k++] = '<';
  for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++)
    for (int shift = 60; shift >= 0; shift -= 4)
      dst[k++] = "0123456789abcdef"[(fields[f] >> shift) & 15];
  dst[k++] = ':';
  return k;
}

/* Builds the canonical key of a dynamic segment and the pieces pointing into it. */
static int build_edge(parsed_t *pr, edge_t *e, const piece_t *pcs, size_t n, size_t srclen) {
  size_t cap = srclen + n * CONV_KEY_MAX + 1;
  e->key = xmalloc(cap);
  e->pieces = xmalloc(n * sizeof *e->pieces);
  if (e->key == NULL || e->pieces == NULL)
    return nomem(pr);
  size_t k = 0;
  e->npieces = (uint32_t)n;
  e->rank = n == 1 ? 2 : 1;
  for (size_t i = 0; i < n; i++) {
    piece_t *pc = &e->pieces[i];
    *pc = pcs[i];
    if (!pc->is_conv) {
      memcpy(e->key + k, pc->text, pc->len);
      pc->text = e->key + k;
      k += pc->len;
      e->statlen += (uint32_t)pc->len;
      continue;
    }
    const conv_t *c = &pc->conv;
    if (c->kind == ROUTER_CONV_PATH)
      e->spans = true;
    if (n == 1 && (c->kind == ROUTER_CONV_INT || c->kind == ROUTER_CONV_FLOAT))
      e->rank = 0;
    /* Static text never holds '<', and the word count says where words end,
     * so two segments get the same key exactly when they match the same. */
    k += conv_key(c, e->key + k);
    if (c->kind == ROUTER_CONV_ANY) {
      pc->conv.words = e->key + k;
      const char *p = pc->text, *end = pc->text + pc->len;
      arg_t a;
      while (next_arg(&p, end, &a)) {
        memcpy(e->key + k, a.val, a.vallen);
        k += a.vallen;
        e->key[k++] = '\0';
      }
      pc->text = NULL;
      pc->len = 0;
    }
    e->key[k++] = '>';
  }
  if (e->spans)
    e->rank = 3;
  e->keylen = k;
  return 0;
}

static int parse_segment(parsed_t *pr, size_t *at, pseg_t *seg) {
  piece_t pcs[2 * ROUTER_MAX_VARS + 2];
  size_t n = 0, start = *at, i = *at;
  const char *rule = pr->rule;
  while (rule[i] && rule[i] != '/') {
    if (n == sizeof pcs / sizeof pcs[0]) /* only reachable past ROUTER_MAX_VARS */
      return fail(pr, "more than %d variables", ROUTER_MAX_VARS);
    if (rule[i] == '<') {
      int rc = parse_var(pr, &i, &pcs[n++]);
      if (rc)
        return rc;
      continue;
    }
    size_t j = i;
    while (rule[j] && rule[j] != '/' && rule[j] != '<')
      j++;
    pcs[n++] = (piece_t){.text = rule + i, .len = j - i};
    i = j;
  }
  *at = i;
  if (n <= 1 && (n == 0 || !pcs[0].is_conv)) {
    seg->text = rule + start;
    seg->len = i - start;
    pr->static_bytes += seg->len;
    return 0;
  }
  seg->dyn = true;
  pr->ndyn++;
  return build_edge(pr, &seg->e, pcs, n, i - start);
}

static void parsed_free(parsed_t *pr) {
  for (size_t i = 0; pr->segs && i < pr->nsegs; i++) {
    free(pr->segs[i].e.key);
    free(pr->segs[i].e.pieces);
  }
  free(pr->segs);
  free(pr->names);
}

static int parse_rule(parsed_t *pr) {
  const char *rule = pr->rule;
  if (rule[0] != '/')
    return fail(pr, "must start with '/'");
  size_t maxsegs = 0;
  for (const char *p = rule; *p; p++)
    maxsegs += *p == '/';
  pr->segs = xmalloc(maxsegs * sizeof *pr->segs);
  if (pr->segs == NULL)
    return nomem(pr);
  size_t i = 1;
  for (;;) {
    pseg_t *seg = &pr->segs[pr->nsegs++];
    memset(seg, 0, sizeof *seg);
    int rc = parse_segment(pr, &i, seg);
    if (rc)
      return rc;
    if (rule[i] != '/')
      break;
    i++;
  }
  size_t total = 0;
  for (size_t k = 0; k < pr->nvars; k++)
    total += pr->namelen[k] + 1;
  pr->names = xmalloc(pr->nvars * sizeof(char *) + total + 1);
  if (pr->names == NULL)
    return nomem(pr);
  char *s = (char *)(pr->names + pr->nvars);
  for (size_t k = 0; k < pr->nvars; k++) {
    pr->names[k] = s;
    memcpy(s, pr->name[k], pr->namelen[k]);
    s[pr->namelen[k]] = '\0';
    s += pr->namelen[k] + 1;
  }
  return 0;
}

/* ---- building ------------------------------------------------------------ */

router_t *router_new(void) {
  router_t *r = xmalloc(sizeof *r);
  if (r == NULL)
    return NULL;
  memset(r, 0, sizeof *r);
  r->nodes = xmalloc(16 * sizeof *r->nodes);
  if (r->nodes == NULL) {
    free(r);
    return NULL;
  }
  r->nodes_cap = 16;
  r->nnodes = 1;
  r->nodes[0] = (node_t){NONE, NONE, NONE, 0};
  return r;
}

void router_free(router_t *r) {
  if (r == NULL)
    return;
  for (size_t i = 0; i < r->nedges; i++) {
    free(r->edges[i].key);
    free(r->edges[i].pieces);
  }
  for (size_t i = 0; i < r->nrules; i++)
    free(r->rules[i].names);
  free(r->nodes);
  free(r->edges);
  free(r->rules);
  free(r->stab);
  free(r->keys);
  free(r);
}

/* Grows `arr` (an lvalue) to hold `need` elements, or returns -ENOMEM from
 * the calling function with `arr` untouched. */
#define RESERVE(arr, cap, need)                                                                   \
  do {                                                                                            \
    void *p_ = grow(arr, &(cap), need, sizeof *(arr));                                            \
    if (p_ == NULL && (need) > (cap))                                                             \
      return -ENOMEM;                                                                             \
    (arr) = p_;                                                                                   \
  } while (0)

/* Makes room for everything `pr` can add, without adding anything. */
static int reserve(router_t *r, const parsed_t *pr) {
  size_t keys = r->keys_len + pr->static_bytes + sizeof(int);
  if (r->nnodes + pr->nsegs >= NONE || keys >= NONE || r->nrules + 1 >= NONE)
    return -ENOMEM;
  RESERVE(r->nodes, r->nodes_cap, r->nnodes + pr->nsegs);
  RESERVE(r->edges, r->edges_cap, r->nedges + pr->ndyn);
  RESERVE(r->rules, r->rules_cap, r->nrules + 1);
  RESERVE(r->keys, r->keys_cap, keys);
  return stab_reserve(r, pr->nsegs + 1);
}

static uint32_t new_node(router_t *r) {
  r->nodes[r->nnodes] = (node_t){NONE, NONE, NONE, 0};
  return (uint32_t)r->nnodes++;
}

/* Follows or creates the dynamic edge for `seg` under `node`; takes the
 * edge's key and pieces from `seg` when it creates one. */
static uint32_t link_dynamic(router_t *r, uint32_t node, pseg_t *seg) {
  uint32_t *link = &r->nodes[node].first_edge;
  for (uint32_t i = *link; i != NONE; i = r->edges[i].next)
    if (r->edges[i].keylen == seg->e.keylen &&
        memcmp(r->edges[i].key, seg->e.key, seg->e.keylen) == 0)
      return r->edges[i].child;
  /* Werkzeug's order: int/float, mixed, string/uuid/any, path; within a rank
   * more static text first; then insertion order. */
  while (*link != NONE) {
    const edge_t *o = &r->edges[*link];
    if (o->rank > seg->e.rank || (o->rank == seg->e.rank && o->statlen < seg->e.statlen))
      break;
    link = &r->edges[*link].next;
  }
  uint32_t ei = (uint32_t)r->nedges++;
  r->edges[ei] = seg->e;
  r->edges[ei].child = new_node(r);
  r->edges[ei].next = *link;
  *link = ei;
  seg->e.key = NULL;
  seg->e.pieces = NULL;
  return r->edges[ei].child;
}

/* Adds a static-table entry; the room for it was reserved. */
static void stab_add(router_t *r, uint32_t parent, uint32_t child, uint32_t h, const char *s,
                     size_t n) {
  sentry_t e = {parent, child, h, (uint32_t)r->keys_len, (uint32_t)n};
  if (n)
    memcpy(r->keys + r->keys_len, s, n);
  r->keys_len += n;
  stab_put(r->stab, r->stab_cap, &e);
  r->stab_count++;
}

static uint32_t link_static(router_t *r, uint32_t node, const pseg_t *seg) {
  uint32_t h = seg_hash(node, seg->text, seg->len);
  uint32_t child = r->stab_count ? stab_find(r, node, seg->text, seg->len, h) : NONE;
  if (child == NONE) {
    child = new_node(r);
    stab_add(r, node, child, h, seg->text, seg->len);
    r->nodes[node].nstatic++;
  }
  return child;
}

int router_add(router_t *r, const char *rule, uint64_t methods, bool strict_slashes, int id,
               char *err, size_t errlen) {
  parsed_t pr = {.rule = rule ? rule : "(null)", .err = err, .errlen = errlen};
  int rc = -EINVAL;
  if (err && errlen)
    err[0] = '\0';
  if (r == NULL || rule == NULL) {
    fail(&pr, "no router or no rule");
    goto out;
  }
  rc = parse_rule(&pr);
  if (rc)
    goto out;
  rc = reserve(r, &pr);
  if (rc) {
    nomem(&pr);
    goto out;
  }
  uint32_t node = 0;
  for (size_t i = 0; i < pr.nsegs; i++)
    node = pr.segs[i].dyn ? link_dynamic(r, node, &pr.segs[i]) : link_static(r, node, &pr.segs[i]);
  uint32_t ri = (uint32_t)r->nrules++;
  bool trailing = rule[strlen(rule) - 1] == '/';
  const pseg_t *last = &pr.segs[pr.nsegs - 1];
  r->rules[ri] = (rule_t){.id = id,
                          .strict = strict_slashes,
                          .trailing = trailing,
                          .path_end = last->dyn && last->e.spans,
                          .next = NONE,
                          .methods = methods,
                          .nvars = pr.nvars,
                          .names = pr.names};
  pr.names = NULL;
  node_t *nd = &r->nodes[node];
  if (nd->last_rule == NONE)
    nd->first_rule = ri;
  else
    r->rules[nd->last_rule].next = ri;
  nd->last_rule = ri;
  if (id_find(r, id) == NONE) {
    const char *key = (const char *)&id;
    stab_add(r, NONE, ri, seg_hash(NONE, key, sizeof id), key, sizeof id);
  }
out:
  parsed_free(&pr);
  return rc;
}

/* ---- matching ------------------------------------------------------------ */

typedef struct search {
  const router_t *r;
  const char *p;
  size_t n;
  uint64_t bit;
  long steps; /* left before giving up */
  size_t nv;
  size_t off[ROUTER_MAX_VARS], len[ROUTER_MAX_VARS];
  enum router_conv kind[ROUTER_MAX_VARS];
  bool found;
  uint64_t allowed, redirect;
  router_match_t *m;
} search_t;

static size_t seg_end(const search_t *S, size_t pos) {
  if (pos >= S->n)
    return pos;
  const char *q = memchr(S->p + pos, '/', S->n - pos);
  return q ? (size_t)(q - S->p) : S->n;
}

static bool is_cont(unsigned char c) { return c >= 0x80 && c < 0xc0; }

static bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool fits_uuid(const char *s) {
  for (int i = 0; i < 36; i++)
    if (i == 8 || i == 13 || i == 18 || i == 23 ? s[i] != '-' : !is_hex(s[i]))
      return false;
  return true;
}

static bool fits_int(const conv_t *c, const char *s, size_t n) {
  size_t digits = n - (c->sign && n && s[0] == '-');
  int64_t v;
  if ((c->fixed && digits != c->fixed) || (n && s[0] == '-' && !c->sign) || !parse_i64(s, n, &v))
    return false;
  return !(c->has_min && v < c->imin) && !(c->has_max && v > c->imax);
}

static bool fits_float(const conv_t *c, const char *s, size_t n) {
  bool neg = c->sign && n && s[0] == '-';
  size_t i = neg, a = i;
  while (i < n && is_digit(s[i]))
    i++;
  size_t dot = i;
  if (dot == a || dot == n || s[dot] != '.')
    return false;
  for (i = dot + 1; i < n && is_digit(s[i]);)
    i++;
  if (i != n || i == dot + 1)
    return false;
  if (!c->has_min && !c->has_max)
    return true;
  double v = decimal_value(neg, s + a, dot - a, s + dot + 1, n - dot - 1);
  return !(c->has_min && v < c->fmin) && !(c->has_max && v > c->fmax);
}

/* The length of the UTF-8 character at p[i] (before e), 1 for a byte that
 * starts no valid one: like Python's decoding with errors="replace", a path
 * that is not UTF-8 still has one character per stray byte. */
static size_t char_len(const unsigned char *p, size_t i, size_t e) {
  size_t n = p[i] < 0xc2 ? 1 : p[i] < 0xe0 ? 2 : p[i] < 0xf0 ? 3 : p[i] < 0xf5 ? 4 : 1;
  if (n > e - i)
    return 1;
  for (size_t k = 1; k < n; k++)
    if (!is_cont(p[i + k]))
      return 1;
  return n;
}

/* Whether [s, t) is a value of a string or path converter; `t` must not
 * split a character, and lengths count characters as Python does. */
static bool fits_text(const search_t *S, const conv_t *c, size_t s, size_t t, size_t e) {
  const unsigned char *p = (const unsigned char *)S->p;
  for (size_t k = 1; k <= 3 && k <= t - s && t < e; k++)
    if (!is_cont(p[t - k])) {
      if (char_len(p, t - k, e) > k)
        return false;
      break;
    }
  if (c->kind == ROUTER_CONV_PATH)
    return t > s && p[s] != '/';
  /* Counting stops as soon as the answer is known: O(1) for a plain <x>. */
  size_t limit = c->maxlen == UINT32_MAX ? c->minlen : (size_t)c->maxlen + 1, chars = 0;
  for (size_t i = s; i < t && chars < limit; i += char_len(p, i, t))
    chars++;
  return chars >= c->minlen && chars <= c->maxlen;
}

static bool match_pieces(search_t *S, const piece_t *pc, size_t n, size_t s, size_t e);

static bool conv_tail(search_t *S, const piece_t *pc, size_t n, size_t v, size_t t, size_t e) {
  if (--S->steps < 0)
    return false;
  S->len[v] = t - S->off[v];
  return match_pieces(S, pc + 1, n - 1, t, e);
}

/* Whether pieces pc[0..n) match [s, e) exactly. Converters take the longest
 * value first except path, which takes the shortest (Werkzeug's `[^/].*?`),
 * and give back bytes until the rest of the segment matches. */
static bool match_pieces(search_t *S, const piece_t *pc, size_t n, size_t s, size_t e) {
  if (n == 0)
    return s == e;
  const char *p = S->p;
  if (!pc->is_conv) {
    if (e - s < pc->len || (pc->len && memcmp(p + s, pc->text, pc->len) != 0))
      return false;
    return match_pieces(S, pc + 1, n - 1, s + pc->len, e);
  }
  const conv_t *c = &pc->conv;
  size_t v = S->nv++, t, hi = e;
  S->off[v] = s;
  S->kind[v] = c->kind;
  switch (c->kind) {
  case ROUTER_CONV_ANY: {
    const char *w = c->words;
    for (uint32_t k = 0; k < c->nwords; k++, w += strlen(w) + 1) {
      size_t wl = strlen(w);
      if (wl <= e - s && memcmp(p + s, w, wl) == 0 && conv_tail(S, pc, n, v, s + wl, e))
        return true;
    }
    break;
  }
  case ROUTER_CONV_UUID:
    if (e - s >= 36 && fits_uuid(p + s) && conv_tail(S, pc, n, v, s + 36, e))
      return true;
    break;
  case ROUTER_CONV_PATH:
    for (t = n == 1 ? e : s + 1; t <= e; t++)
      if (fits_text(S, c, s, t, e) && conv_tail(S, pc, n, v, t, e))
        return true;
    break;
  default:
    if (c->kind == ROUTER_CONV_STRING) {
      const char *q = s < e ? memchr(p + s, '/', e - s) : NULL;
      hi = q ? (size_t)(q - p) : e;
    } else {
      for (hi = s + (c->sign && s < e && p[s] == '-'); hi < e; hi++)
        if (!is_digit(p[hi]) && (c->kind == ROUTER_CONV_INT || p[hi] != '.'))
          break;
    }
    if (n == 1 && hi != e)
      break;
    for (t = hi + 1; t-- > (n == 1 ? e : s);) {
      bool ok = c->kind == ROUTER_CONV_STRING ? fits_text(S, c, s, t, e)
                : c->kind == ROUTER_CONV_INT  ? fits_int(c, p + s, t - s)
                                              : fits_float(c, p + s, t - s);
      if (ok && conv_tail(S, pc, n, v, t, e))
        return true;
    }
    break;
  }
  S->nv = v;
  return false;
}

/* Counts rule `ri` as matching the path; the first such rule that allows
 * the method is the answer. */
static void accept(search_t *S, uint32_t ri) {
  const rule_t *ru = &S->r->rules[ri];
  S->allowed |= ru->methods;
  if (S->found || !(ru->methods & S->bit))
    return;
  S->found = true;
  router_match_t *m = S->m;
  m->rule = ru->id;
  m->nvars = S->nv;
  for (size_t i = 0; i < S->nv; i++)
    m->vars[i] = (router_var_t){S->p + S->off[i], S->len[i], S->kind[i], ru->names[i]};
}

/* The whole path has been consumed at `node`. */
static void at_end(search_t *S, uint32_t node) {
  const router_t *r = S->r;
  const node_t *nd = &r->nodes[node];
  for (uint32_t ri = nd->first_rule; ri != NONE; ri = r->rules[ri].next)
    accept(S, ri);
  /* Rules that would match with one more "/": the path matches those with
   * strict_slashes false; the others make it a redirect candidate. */
  uint32_t c = nd->nstatic ? stab_find(r, node, S->p, 0, seg_hash(node, S->p, 0)) : NONE;
  for (uint32_t ri = c != NONE ? r->nodes[c].first_rule : NONE; ri != NONE;
       ri = r->rules[ri].next) {
    if (r->rules[ri].strict)
      S->redirect |= r->rules[ri].methods;
    else
      accept(S, ri);
  }
}

/* Matches the path from `pos`, the start of a segment, at `node`: static
 * child, dynamic edges in priority order, and after them (as Werkzeug) the
 * rules that the path matches by dropping its trailing slash. */
static void walk(search_t *S, uint32_t node, size_t pos) {
  const router_t *r = S->r;
  const node_t *nd = &r->nodes[node];
  if (--S->steps < 0)
    return;
  if (pos > S->n) {
    at_end(S, node);
    return;
  }
  size_t e = seg_end(S, pos);
  if (nd->nstatic) {
    uint32_t c = stab_find(r, node, S->p + pos, e - pos, seg_hash(node, S->p + pos, e - pos));
    if (c != NONE)
      walk(S, c, e + 1);
  }
  for (uint32_t i = nd->first_edge; i != NONE; i = r->edges[i].next) {
    const edge_t *ed = &r->edges[i];
    size_t nv = S->nv;
    if (!ed->spans) {
      if (match_pieces(S, ed->pieces, ed->npieces, pos, e))
        walk(S, ed->child, e + 1);
      S->nv = nv;
      continue;
    }
    /* A path converter can end at any later segment boundary; when the child
     * only ends rules, the end of the path is the one that can succeed. */
    const node_t *cn = &r->nodes[ed->child];
    bool leaf = cn->first_edge == NONE && cn->nstatic == 0;
    for (size_t b = leaf ? S->n : e;; b = seg_end(S, b + 1)) {
      if (match_pieces(S, ed->pieces, ed->npieces, pos, b))
        walk(S, ed->child, b + 1);
      S->nv = nv;
      if (b == S->n)
        break;
    }
  }
  if (pos == S->n) /* what is left is the empty segment after a final "/" */
    for (uint32_t ri = nd->first_rule; ri != NONE; ri = r->rules[ri].next)
      if (!r->rules[ri].strict && !r->rules[ri].trailing && !r->rules[ri].path_end)
        accept(S, ri);
}

enum router_result router_match(const router_t *r, const char *path, size_t len, int method,
                                router_match_t *m) {
  search_t S = {.r = r, .p = path, .n = len, .steps = MAX_STEPS, .m = m};
  S.bit = method >= 0 && method < 64 ? (uint64_t)1 << method : 0;
  m->rule = -1;
  m->allowed = 0;
  m->nvars = 0;
  if (len == 0 || path[0] != '/')
    return ROUTER_NOT_FOUND;
  walk(&S, 0, 1);
  m->allowed = S.allowed;
  if (S.found)
    return ROUTER_FOUND;
  if (S.allowed)
    return ROUTER_METHOD_NOT_ALLOWED;
  /* Werkzeug redirects only when the rule behind the slash has the method. */
  if (S.redirect & S.bit) {
    m->allowed = S.redirect;
    return ROUTER_REDIRECT_SLASH;
  }
  return ROUTER_NOT_FOUND;
}

/* ---- queries ------------------------------------------------------------- */

const char *router_var_name(const router_t *r, int id, size_t i) {
  uint32_t ri = id_find(r, id);
  return ri != NONE && i < r->rules[ri].nvars ? r->rules[ri].names[i] : NULL;
}

size_t router_var_count(const router_t *r, int id) {
  uint32_t ri = id_find(r, id);
  return ri != NONE ? r->rules[ri].nvars : 0;
}

size_t router_count(const router_t *r) { return r->nrules; }
