/* router_parse.c - reading a rule in Werkzeug's syntax ("/users/<int:id>",
 * converter arguments and all) into segments and canonical edge keys;
 * nothing is linked into the trie here. */
#include "router_int.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int router_parse_fail(parsed_t *pr, const char *fmt, ...) {
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

int router_parse_nomem(parsed_t *pr) {
  router_parse_fail(pr, "out of memory");
  return -ENOMEM;
}

static bool is_word(char c) {
  return router_is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_ident(const char *s, size_t n) {
  if (n == 0 || router_is_digit(s[0]))
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

bool router_parse_i64(const char *s, size_t n, int64_t *out) {
  bool neg = n > 0 && s[0] == '-';
  size_t i = neg;
  uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
  if (i == n)
    return false;
  for (; i < n; i++) {
    if (!router_is_digit(s[i]))
      return false;
    unsigned d = (unsigned)(s[i] - '0');
    if (v > (lim - d) / 10)
      return false;
    v = v * 10 + d;
  }
  *out = !neg ? (int64_t)v : v == lim ? INT64_MIN : -(int64_t)v;
  return true;
}

double router_decimal_value(bool neg, const char *ip, size_t ilen, const char *fp, size_t flen) {
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
  if (w > s && !router_is_digit(*s) && eq < end && *eq == '=') {
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
  } else if (router_parse_i64(s, n, &a->i)) {
    a->type = A_INT;
  } else if (dot && dot > s + neg) {
    const char *q = s + neg;
    while (q < dot && router_is_digit(*q))
      q++;
    const char *fe = dot + 1;
    while (fe < end && router_is_digit(*fe))
      fe++;
    if (q == dot && fe == end) {
      a->type = A_FLOAT;
      a->f = router_decimal_value(neg, s + neg, (size_t)(dot - s - neg), dot + 1,
                                  (size_t)(end - dot - 1));
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
      return router_parse_fail(pr, "bad argument '%.*s' for %.*s", (int)a.rawlen, a.raw,
                               (int)cnlen, cname);
  }
  if (c->kind == ROUTER_CONV_ANY && c->nwords == 0)
    return router_parse_fail(pr, "converter 'any' needs at least one word");
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
      return router_parse_fail(pr, "'<' is never closed");
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
    return router_parse_fail(pr, "empty variable name");
  if (!is_ident(name, namelen))
    return router_parse_fail(pr, "invalid variable name '%.*s'", (int)namelen, name);
  for (size_t k = 0; k < pr->nvars; k++)
    if (pr->namelen[k] == namelen && memcmp(pr->name[k], name, namelen) == 0)
      return router_parse_fail(pr, "variable '%.*s' appears twice", (int)namelen, name);
  if (pr->nvars == ROUTER_MAX_VARS)
    return router_parse_fail(pr, "more than %d variables", ROUTER_MAX_VARS);
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
    return router_parse_fail(pr, "empty converter name");
  if (!is_ident(cname, cnlen))
    return router_parse_fail(pr, "invalid converter name '%.*s'", (int)cnlen, cname);
  int kind = same(cname, cnlen, "default") ? ROUTER_CONV_STRING : -1;
  for (int k = 0; k < (int)(sizeof conv_names / sizeof conv_names[0]); k++)
    if (same(cname, cnlen, conv_names[k]))
      kind = k;
  if (kind < 0)
    return router_parse_fail(pr, "unknown converter '%.*s'", (int)cnlen, cname);
  pc->conv.kind = (enum router_conv)kind;
  if (!paren || paren > colon)
    return parse_args(pr, pc, cname, cnlen, rule + colon, 0);
  if (rule[colon - 1] != ')')
    return router_parse_fail(pr, "unexpected text after the arguments of '%.*s'", (int)cnlen,
                             cname);
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
  e->key = router_realloc(pr->r, NULL, cap);
  e->pieces = router_realloc(pr->r, NULL, n * sizeof *e->pieces);
  if (e->key == NULL || e->pieces == NULL)
    return router_parse_nomem(pr);
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
      return router_parse_fail(pr, "more than %d variables", ROUTER_MAX_VARS);
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

void router_parsed_free(parsed_t *pr) {
  for (size_t i = 0; pr->segs && i < pr->nsegs; i++) {
    free(pr->segs[i].e.key);
    free(pr->segs[i].e.pieces);
  }
  free(pr->segs);
  free(pr->names);
}

int router_parse_rule(parsed_t *pr) {
  const char *rule = pr->rule;
  if (rule[0] != '/')
    return router_parse_fail(pr, "must start with '/'");
  size_t maxsegs = 0;
  for (const char *p = rule; *p; p++)
    maxsegs += *p == '/';
  pr->segs = router_realloc(pr->r, NULL, maxsegs * sizeof *pr->segs);
  if (pr->segs == NULL)
    return router_parse_nomem(pr);
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
  pr->names = router_realloc(pr->r, NULL, pr->nvars * sizeof(char *) + total + 1);
  if (pr->names == NULL)
    return router_parse_nomem(pr);
  char *s = (char *)(pr->names + pr->nvars);
  for (size_t k = 0; k < pr->nvars; k++) {
    pr->names[k] = s;
    memcpy(s, pr->name[k], pr->namelen[k]);
    s[pr->namelen[k]] = '\0';
    s += pr->namelen[k] + 1;
  }
  return 0;
}
