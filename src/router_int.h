/* router_int.h - what the router*.c files share; nothing outside them
 * includes this header. router.c builds the trie (and owns the router),
 * router_parse.c reads a rule's syntax, router_match.c walks the trie. */
#ifndef H1MOCK_ROUTER_INT_H
#define H1MOCK_ROUTER_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "router.h"

#define NONE UINT32_MAX
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
  router_alloc_fn alloc; /* NULL: the C library's */
  void *alloc_arg;
};

/* A rule as router_parse_rule read it, before it is linked in. */
typedef struct pseg {
  bool dyn;
  const char *text; /* static: the segment in the rule text */
  size_t len;
  edge_t e; /* dynamic: key and pieces are owned here until linked */
} pseg_t;

typedef struct parsed {
  router_t *r; /* whose allocator the parse uses */
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

/* router.c */
/* realloc through the router's allocator (p NULL: malloc). */
void *router_realloc(const router_t *r, void *p, size_t n);
uint32_t router_seg_hash(uint32_t parent, const char *s, size_t n);
/* The child of `parent` by the static segment s[0..n) with hash h, or NONE. */
uint32_t router_stab_find(const router_t *r, uint32_t parent, const char *s, size_t n, uint32_t h);

static inline bool router_is_digit(char c) { return c >= '0' && c <= '9'; }

/* router_parse.c */
/* Reads [s, s+n) as an optionally negative decimal integer that fits
 * int64 (converter arguments, and the values of int converters). */
bool router_parse_i64(const char *s, size_t n, int64_t *out);
/* The value of the decimal ip "." fp, without allocating. Integer parts too
 * long for any double are infinite (as Python's float() says); fraction
 * digits past the buffer are dropped (at most the last bit of a value that
 * falls halfway between two doubles could depend on them). */
double router_decimal_value(bool neg, const char *ip, size_t ilen, const char *fp, size_t flen);
/* Reads pr->rule into pr's segments, variable names and edge keys.
 * Returns 0, or -EINVAL / -ENOMEM with a sentence in pr->err. */
int router_parse_rule(parsed_t *pr);
/* Fills pr->err with "rule '...': " and the sentence; returns -EINVAL. */
int router_parse_fail(parsed_t *pr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Says "out of memory" in pr->err; returns -ENOMEM. */
int router_parse_nomem(parsed_t *pr);
void router_parsed_free(parsed_t *pr);

#endif
