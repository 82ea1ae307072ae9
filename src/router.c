/* router.c - Werkzeug-syntax URL rules compiled into a segment trie: the
 * router object and building the trie (router_parse.c reads a rule,
 * router_match.c walks the trie).
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
#include "router_int.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- allocation ---------------------------------------------------------- */

void *router_realloc(const router_t *r, void *p, size_t n) {
  return r->alloc ? r->alloc(r->alloc_arg, p, n) : realloc(p, n);
}

/* Grows an array to hold `need` elements; returns the (maybe moved) array, or
 * NULL with the old one untouched. An array that needs no room is returned as
 * it is, NULL included. */
static void *grow(const router_t *r, void *p, size_t *cap, size_t need, size_t size) {
  if (need <= *cap)
    return p;
  size_t c = *cap ? *cap : 16;
  while (c < need) {
    if (c > SIZE_MAX / 4 / size)
      return NULL;
    c *= 2;
  }
  void *np = router_realloc(r, p, c * size);
  if (np)
    *cap = c;
  return np;
}

/* ---- hashing ------------------------------------------------------------- */

/* FNV-1a over the bytes, seeded with the parent so that the same segment
 * under different nodes lands in different slots, then a murmur finalizer
 * so that the low bits used as the slot index depend on every byte. */
uint32_t router_seg_hash(uint32_t parent, const char *s, size_t n) {
  uint64_t h = 0xcbf29ce484222325ULL ^ (parent * 0x9e3779b97f4a7c15ULL);
  for (size_t i = 0; i < n; i++)
    h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
  h ^= n;
  h = (h ^ (h >> 33)) * 0xff51afd7ed558ccdULL;
  h = (h ^ (h >> 33)) * 0xc4ceb9fe1a85ec53ULL;
  return (uint32_t)(h ^ (h >> 33));
}

uint32_t router_stab_find(const router_t *r, uint32_t parent, const char *s, size_t n,
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
  sentry_t *tab = router_realloc(r, NULL, cap * sizeof *tab);
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
  return r->stab_count
             ? router_stab_find(r, NONE, key, sizeof id, router_seg_hash(NONE, key, sizeof id))
             : NONE;
}

/* ---- building ------------------------------------------------------------ */

router_t *router_new(void) { return router_new_with(NULL, NULL); }

router_t *router_new_with(router_alloc_fn alloc, void *arg) {
  router_t *r = alloc ? alloc(arg, NULL, sizeof *r) : malloc(sizeof *r);
  if (r == NULL)
    return NULL;
  memset(r, 0, sizeof *r);
  r->alloc = alloc;
  r->alloc_arg = arg;
  r->nodes = router_realloc(r, NULL, 16 * sizeof *r->nodes);
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
    void *p_ = grow(r, arr, &(cap), need, sizeof *(arr));                                         \
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
  assert(r->nnodes < r->nodes_cap); /* reserve() made room: linking cannot fail */
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
  assert(r->nedges < r->edges_cap);
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
  assert((r->stab_count + 1) * 2 <= r->stab_cap && r->keys_len + n <= r->keys_cap);
  sentry_t e = {parent, child, h, (uint32_t)r->keys_len, (uint32_t)n};
  if (n)
    memcpy(r->keys + r->keys_len, s, n);
  r->keys_len += n;
  stab_put(r->stab, r->stab_cap, &e);
  r->stab_count++;
}

static uint32_t link_static(router_t *r, uint32_t node, const pseg_t *seg) {
  uint32_t h = router_seg_hash(node, seg->text, seg->len);
  uint32_t child = r->stab_count ? router_stab_find(r, node, seg->text, seg->len, h) : NONE;
  if (child == NONE) {
    child = new_node(r);
    stab_add(r, node, child, h, seg->text, seg->len);
    r->nodes[node].nstatic++;
  }
  return child;
}

int router_add(router_t *r, const char *rule, uint64_t methods, bool strict_slashes, int id,
               char *err, size_t errlen) {
  parsed_t pr = {.r = r, .rule = rule ? rule : "(null)", .err = err, .errlen = errlen};
  int rc = -EINVAL;
  if (err && errlen)
    err[0] = '\0';
  if (r == NULL || rule == NULL) {
    router_parse_fail(&pr, "no router or no rule");
    goto out;
  }
  rc = router_parse_rule(&pr);
  if (rc)
    goto out;
  rc = reserve(r, &pr);
  if (rc) {
    router_parse_nomem(&pr);
    goto out;
  }
  uint32_t node = 0;
  for (size_t i = 0; i < pr.nsegs; i++)
    node = pr.segs[i].dyn ? link_dynamic(r, node, &pr.segs[i]) : link_static(r, node, &pr.segs[i]);
  assert(r->nrules < r->rules_cap && pr.nvars <= ROUTER_MAX_VARS);
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
    stab_add(r, NONE, ri, router_seg_hash(NONE, key, sizeof id), key, sizeof id);
  }
out:
  router_parsed_free(&pr);
  return rc;
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
