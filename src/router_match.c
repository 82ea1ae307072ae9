/* router_match.c - matching a path against the trie: depth first, static
 * child before dynamic edges in priority order, backtracking on failure,
 * allocating nothing. */
#include "router_int.h"

#include <assert.h>
#include <string.h>

/* Matching steps before router_match gives up. Real rule sets take tens;
 * only several path converters in one rule against a path of thousands of
 * segments (or variables packed in one long segment) get near, and the
 * search would then be polynomial in the path length: a hung event loop. */
#define MAX_STEPS 1000000

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
  return router_is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
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
  if ((c->fixed && digits != c->fixed) || (n && s[0] == '-' && !c->sign) ||
      !router_parse_i64(s, n, &v))
    return false;
  return !(c->has_min && v < c->imin) && !(c->has_max && v > c->imax);
}

static bool fits_float(const conv_t *c, const char *s, size_t n) {
  bool neg = c->sign && n && s[0] == '-';
  size_t i = neg, a = i;
  while (i < n && router_is_digit(s[i]))
    i++;
  size_t dot = i;
  if (dot == a || dot == n || s[dot] != '.')
    return false;
  for (i = dot + 1; i < n && router_is_digit(s[i]);)
    i++;
  if (i != n || i == dot + 1)
    return false;
  if (!c->has_min && !c->has_max)
    return true;
  double v = router_decimal_value(neg, s + a, dot - a, s + dot + 1, n - dot - 1);
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
        if (!router_is_digit(p[hi]) && (c->kind == ROUTER_CONV_INT || p[hi] != '.'))
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
  assert(S->nv == ru->nvars && S->nv <= ROUTER_MAX_VARS);
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
  uint32_t c =
      nd->nstatic ? router_stab_find(r, node, S->p, 0, router_seg_hash(node, S->p, 0)) : NONE;
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
    uint32_t c =
        router_stab_find(r, node, S->p + pos, e - pos, router_seg_hash(node, S->p + pos, e - pos));
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
