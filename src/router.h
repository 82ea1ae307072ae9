/* router.h - Werkzeug-syntax URL rules compiled into a segment trie.
 *
 * A rule is a path such as "/users/<int:id>/posts/<slug>". Each "/"-separated
 * segment of a rule becomes a trie edge: a whole-static segment is found
 * through one hash table shared by the router, so lookup cost does not grow
 * with the number of rules; dynamic segments (converters, or static text
 * mixed with converters such as "<name>.json") are tried in priority order
 * and the search backtracks when a deeper segment fails.
 *
 * The router knows nothing of Lua or HTTP: methods are small integers
 * (0..63) chosen by the caller, and a rule carries the caller's integer id.
 * Matching does not allocate.
 */
#ifndef H1MOCK_ROUTER_H
#define H1MOCK_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ROUTER_MAX_VARS 16

enum router_conv {
  ROUTER_CONV_STRING, /* <x>, <string:x>: one segment, no slash */
  ROUTER_CONV_INT,    /* <int:x>: digits (a sign with signed=True), fits int64 */
  ROUTER_CONV_FLOAT,  /* <float:x>: digits "." digits (a sign with signed=True) */
  ROUTER_CONV_PATH,   /* <path:x>: one or more segments, slashes included */
  ROUTER_CONV_UUID,   /* <uuid:x>: 8-4-4-4-12 hex digits */
  ROUTER_CONV_ANY,    /* <any(a,b,c):x>: one of the listed words */
};

enum router_result {
  ROUTER_FOUND,              /* m->rule, m->vars are set */
  ROUTER_NOT_FOUND,          /* no rule matches the path */
  ROUTER_METHOD_NOT_ALLOWED, /* the path matches, the method does not; m->allowed */
  ROUTER_REDIRECT_SLASH,     /* only "path/" matches (a strict rule): answer 308 to it */
};

typedef struct router_var {
  const char *value; /* points into the path given to router_match */
  size_t len;
  enum router_conv conv;
  const char *name; /* the rule's name for it; owned by the router */
} router_var_t;

typedef struct router_match {
  int rule;         /* the id given to router_add (ROUTER_FOUND) */
  uint64_t allowed; /* union of the methods of every rule whose path matches */
  size_t nvars;
  router_var_t vars[ROUTER_MAX_VARS]; /* in the order they appear in the rule */
} router_match_t;

typedef struct router router_t;

/* Returns a new, empty router, or NULL when out of memory. */
router_t *router_new(void);

/* How a router gets memory: realloc's contract (p NULL: a new block; n is
 * never 0), blocks released with free(). Tests pass one that fails on
 * purpose, to prove that -ENOMEM leaves a router as it was. */
typedef void *(*router_alloc_fn)(void *arg, void *p, size_t n);

/* router_new, with every allocation of this router (its own struct first)
 * made by alloc(arg, ...). */
router_t *router_new_with(router_alloc_fn alloc, void *arg);
void router_free(router_t *r);

/* Adds a rule. `methods` is a bitmask (1 << method); the router does not
 * imply HEAD from GET, the caller does. `strict_slashes` false lets "/a"
 * and "/a/" both match the rule without a redirect. `id` is returned by
 * router_match. Returns 0, or -EINVAL with a sentence in `err` (e.g.
 * "rule '/a/<int:x': '<' is never closed"), or -ENOMEM. A rule that is
 * refused leaves the router as it was. Rules added later with the same
 * path and overlapping methods are shadowed by earlier ones (first wins).
 *
 * Syntax, as Werkzeug's: "<name>" or "<conv:name>" or "<conv(args):name>",
 * several per segment if wanted ("/<name>.json", "/v<int:n>/x"); args are
 * Python-like, positional or name=value, ints, True/False/None, quoted or
 * bare strings. string(minlength=1, maxlength=None, length=None),
 * int(fixed_digits=0, min=None, max=None, signed=False),
 * float(min=None, max=None, signed=False), path, uuid, any(word, ...);
 * "default" is string. A value a converter refuses is no match. Rules
 * sharing a pattern share trie edges whatever their variable names. `err`
 * may be NULL; `id`s may repeat (router_var_name then answers for the first
 * rule with the id). Not to be called while another thread matches. */
int router_add(router_t *r, const char *rule, uint64_t methods, bool strict_slashes, int id,
               char *err, size_t errlen);

/* Matches an already percent-decoded path (it starts with "/"). `method`
 * is 0..63 (anything else matches no method). Fills `m` and returns:
 *  - ROUTER_FOUND: m->rule and m->vars (pointing into `path`, valid while
 *    it is) come from the first rule matching the path that allows the
 *    method. Priority follows Werkzeug, not the order of router_add: a
 *    static segment beats a dynamic one; then int/float, static text mixed
 *    with variables (more text first), string/uuid/any, path. A branch that
 *    leads to no rule is backed out of. A rule with strict_slashes false
 *    that matches once a final "/" is added or dropped takes its place in
 *    that order, after the rules that match exactly at the same node.
 *  - ROUTER_METHOD_NOT_ALLOWED: rules match the path, none with the method.
 *  - ROUTER_REDIRECT_SLASH: nothing matches, but path + "/" matches a rule
 *    with strict_slashes that allows the method (as in Werkzeug; otherwise
 *    NOT_FOUND). m->allowed has the methods of those rules.
 *  - ROUTER_NOT_FOUND.
 * m->allowed is the union of the methods of every rule matching the path,
 * set for FOUND too (for an Allow header); m->rule is -1 unless FOUND.
 * Does not allocate; several threads may match at once. A search that
 * backtracks through a million steps (only rules with several path
 * converters and paths of thousands of segments get there) stops and
 * answers from what it found so far, rather than hang the caller. */
enum router_result router_match(const router_t *r, const char *path, size_t len, int method,
                                router_match_t *m);

/* The name of variable `i` of rule `id` (rule order), or NULL. The string
 * belongs to the router. */
const char *router_var_name(const router_t *r, int id, size_t i);
size_t router_var_count(const router_t *r, int id);

/* How many rules have been added. */
size_t router_count(const router_t *r);

#endif
