/* seed.c - the documents of a seeding body (seed.h).
 *
 * Two passes of json_parse over the body. The first only checks it: JSON,
 * the shape of the top level, numbers that fit a double. The second builds
 * each element as a small tree (nodes in one array, bytes in one arena),
 * sorts every object's members when the object closes, and writes the
 * element out when it ends. Sorting pointers rather than rewriting text
 * keeps a deeply nested element linear in its size.
 */
#include "seed.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "json.h"

/* ---- First pass: is it an array of something, all numbers finite? ----- */

typedef struct check {
  int top;     /* '{', '[' or 0 for a scalar */
  int members; /* the top-level object has a key */
} check_t;

static int check_begin_object(json_parser_t *p) {
  check_t *c = p->ud;
  if (p->depth == 1)
    c->top = '{';
  return 0;
}

static int check_begin_array(json_parser_t *p) {
  check_t *c = p->ud;
  if (p->depth == 1)
    c->top = '[';
  return 0;
}

static int check_key(json_parser_t *p, const char *s, size_t n) {
  (void)s, (void)n;
  check_t *c = p->ud;
  if (p->depth == 1)
    c->members = 1;
  return 0;
}

static int check_number(json_parser_t *p, double d) {
  if (isfinite(d))
    return 0;
  json_fail(p, "a number too large for a double");
  return -ERANGE;
}

static const json_events_t check_events = {
    .begin_object = check_begin_object,
    .begin_array = check_begin_array,
    .key = check_key,
    .number = check_number,
};

/* ---- Second pass: each element as a tree -------------------------------- */

enum { N_OBJECT, N_ARRAY, N_STRING, N_INT, N_DOUBLE, N_TEXT };

typedef struct node {
  int type;
  size_t off, len;   /* string, text: bytes in the arena; object, array: a run of kids */
  size_t koff, klen; /* the key, in an object */
  int keyed;
  double num; /* a double's value, for an `_id` */
  int64_t ival;
} node_t;

/* A member being sorted: its key, and its node (later ones win a tie). */
typedef struct member {
  const char *key;
  size_t len;
  size_t node;
} member_t;

typedef struct build {
  const seed_opts_t *o;
  buf_t arena;
  node_t *nodes;
  size_t nnodes, capnodes;
  size_t *kids; /* finished containers' children, a run each */
  size_t nkids, capkids;
  size_t *pending; /* children of the open containers, innermost last */
  size_t npending, cappending;
  size_t base[JSON_MAX_DEPTH]; /* where each open container's children start */
  size_t open_node[JSON_MAX_DEPTH];
  member_t *members;
  size_t capmembers;
  int has_key;
  size_t koff, klen;
  size_t element; /* 1-based index of the element being read */
  size_t *stored;
  buf_t doc;
  char *err;
  size_t errlen;
} build_t;

static int grow(void **v, size_t *cap, size_t need, size_t size) {
  if (need <= *cap)
    return 0;
  size_t n = *cap ? *cap * 2 : 64;
  while (n < need)
    n *= 2;
  void *p = realloc(*v, n * size);
  if (p == NULL)
    return -ENOMEM;
  *v = p;
  *cap = n;
  return 0;
}

/* A new node for the value starting now, child of the open container. */
static node_t *add_node(build_t *b, int type) {
  if (grow((void **)&b->nodes, &b->capnodes, b->nnodes + 1, sizeof(node_t)) ||
      grow((void **)&b->pending, &b->cappending, b->npending + 1, sizeof(size_t)))
    return NULL;
  node_t *n = &b->nodes[b->nnodes];
  memset(n, 0, sizeof *n);
  n->type = type;
  n->keyed = b->has_key;
  n->koff = b->koff;
  n->klen = b->klen;
  b->has_key = 0;
  b->pending[b->npending++] = b->nnodes++;
  return n;
}

static int not_an_object(json_parser_t *p) {
  build_t *b = p->ud;
  snprintf(b->err, b->errlen, "element %zu is not a JSON object; nothing after it was stored",
           b->element);
  return -ECANCELED;
}

/* Called at the start of every value: a value of the top-level array is an
 * element, and only an object is one. */
static int starts_element(json_parser_t *p, int depth, int is_object) {
  build_t *b = p->ud;
  if (depth != 1 || p->open[0] != '[')
    return 0;
  b->element++;
  return is_object ? 0 : not_an_object(p);
}

static int add_bytes(build_t *b, int type, const char *s, size_t n) {
  node_t *nd = add_node(b, type);
  if (nd == NULL)
    return -ENOMEM;
  nd->off = b->arena.len;
  nd->len = n;
  return buf_append(&b->arena, s, n);
}

static int member_cmp(const void *x, const void *y) {
  const member_t *a = x, *b = y;
  size_t n = a->len < b->len ? a->len : b->len;
  int c = n ? memcmp(a->key, b->key, n) : 0;
  if (c == 0)
    c = (a->len > b->len) - (a->len < b->len);
  if (c == 0)
    c = (a->node > b->node) - (a->node < b->node);
  return c;
}

static int same_key(const member_t *a, const member_t *b) {
  return a->len == b->len && (a->len == 0 || memcmp(a->key, b->key, a->len) == 0);
}

/* Sorts an object's children by key and keeps the last of equal keys. */
static int sort_members(build_t *b, size_t *v, size_t *n) {
  if (grow((void **)&b->members, &b->capmembers, *n, sizeof(member_t)))
    return -ENOMEM;
  for (size_t i = 0; i < *n; i++) {
    const node_t *nd = &b->nodes[v[i]];
    b->members[i] = (member_t){b->arena.data + nd->koff, nd->klen, v[i]};
  }
  qsort(b->members, *n, sizeof(member_t), member_cmp);
  size_t k = 0;
  for (size_t i = 0; i < *n; i++) {
    if (i + 1 < *n && same_key(&b->members[i], &b->members[i + 1]))
      continue;
    v[k++] = b->members[i].node;
  }
  *n = k;
  return 0;
}

static int write_node(build_t *b, const node_t *nd) {
  const char *a = b->arena.data;
  int rc = 0;
  switch (nd->type) {
  case N_STRING: return json_string(&b->doc, a + nd->off, nd->len);
  case N_OBJECT:
  case N_ARRAY: {
    int obj = nd->type == N_OBJECT;
    rc = buf_putc(&b->doc, obj ? '{' : '[');
    for (size_t i = 0; i < nd->len && rc == 0; i++) {
      const node_t *k = &b->nodes[b->kids[nd->off + i]];
      if (i > 0)
        rc = buf_putc(&b->doc, ',');
      if (rc == 0 && obj && (rc = json_string(&b->doc, a + k->koff, k->klen)) == 0)
        rc = buf_putc(&b->doc, ':');
      if (rc == 0)
        rc = write_node(b, k);
    }
    return rc ? rc : buf_putc(&b->doc, obj ? '}' : ']');
  }
  default: return buf_append(&b->doc, a + nd->off, nd->len);
  }
}

/* The id of a document: a non-empty string `_id` as it is; a number as
 * Lua's tostring writes it (what store.put's seeding always did); else a
 * new one, written into the document. Returns the node of `_id`. */
static int element_id(build_t *b, node_t *root, char *idbuf, const char **id, size_t *idlen) {
  for (size_t i = 0; i < root->len; i++) {
    node_t *k = &b->nodes[b->kids[root->off + i]];
    if (k->klen != 3 || memcmp(b->arena.data + k->koff, "_id", 3) != 0)
      continue;
    if (k->type == N_STRING && k->len > 0) {
      *id = b->arena.data + k->off;
      *idlen = k->len;
      return 0;
    }
    if (k->type == N_INT || k->type == N_DOUBLE) {
      int n = k->type == N_INT ? snprintf(idbuf, 64, "%lld", (long long)k->ival)
                               : snprintf(idbuf, 64, "%.14g", k->num);
      if (k->type == N_DOUBLE && idbuf[strspn(idbuf, "-0123456789")] == '\0')
        n += snprintf(idbuf + n, 64 - (size_t)n, ".0");
      *id = idbuf;
      *idlen = (size_t)n;
      return 0;
    }
    /* Any other `_id` is replaced by a new one. */
    b->o->new_id(b->o->ud, idbuf);
    k->type = N_STRING;
    k->off = b->arena.len;
    k->len = 36;
    *id = idbuf;
    *idlen = 36;
    return buf_append(&b->arena, idbuf, 36);
  }
  /* No `_id`: add one, in its sorted place among the root's kids (the last
   * run of kids, so it can grow). */
  b->o->new_id(b->o->ud, idbuf);
  size_t koff = b->arena.len;
  if (buf_append(&b->arena, "_id", 3) || buf_append(&b->arena, idbuf, 36) ||
      grow((void **)&b->kids, &b->capkids, b->nkids + 1, sizeof(size_t)))
    return -ENOMEM;
  b->has_key = 1;
  b->koff = koff;
  b->klen = 3;
  node_t *nd = add_node(b, N_STRING);
  if (nd == NULL)
    return -ENOMEM;
  b->npending--; /* not a child of an open container */
  nd->off = koff + 3;
  nd->len = 36;
  root = &b->nodes[0]; /* add_node may have moved the nodes */
  size_t idx = b->nnodes - 1, i = root->len;
  size_t *kv = b->kids + root->off;
  member_t m = {"_id", 3, idx};
  while (i > 0) {
    const node_t *k = &b->nodes[kv[i - 1]];
    member_t o = {b->arena.data + k->koff, k->klen, kv[i - 1]};
    if (member_cmp(&o, &m) < 0)
      break;
    kv[i] = kv[i - 1];
    i--;
  }
  kv[i] = idx;
  root->len++;
  b->nkids++;
  *id = idbuf;
  *idlen = 36;
  return 0;
}

/* The element (node 0) is complete: give it its id, write it, store it. */
static int finish_element(json_parser_t *p) {
  build_t *b = p->ud;
  char idbuf[64];
  const char *id;
  size_t idlen;
  int rc = element_id(b, &b->nodes[0], idbuf, &id, &idlen);
  buf_reset(&b->doc);
  if (rc == 0)
    rc = write_node(b, &b->nodes[0]);
  if (rc)
    return rc;
  rc = b->o->put(b->o->ud, id, idlen, b->doc.data, b->doc.len);
  if (rc) {
    snprintf(b->err, b->errlen, "element %zu was not stored: %s; nothing after it was stored",
             b->element,
             rc == -EINVAL ? "a collection or id of 1 to 1024 bytes is needed" : strerror(-rc));
    return rc == -EINVAL ? -ECANCELED : rc;
  }
  (*b->stored)++;
  buf_reset(&b->arena);
  b->nnodes = b->nkids = b->npending = 0;
  return 0;
}

static int begin(json_parser_t *p, int type) {
  build_t *b = p->ud;
  int rc = starts_element(p, p->depth - 1, type == N_OBJECT);
  if (rc || p->depth == 1)
    return rc; /* the top level itself */
  if (add_node(b, type) == NULL)
    return -ENOMEM;
  b->base[p->depth - 1] = b->npending;
  b->open_node[p->depth - 1] = b->nnodes - 1;
  return 0;
}

static int begin_object(json_parser_t *p) { return begin(p, N_OBJECT); }
static int begin_array(json_parser_t *p) { return begin(p, N_ARRAY); }

static int end(json_parser_t *p) {
  build_t *b = p->ud;
  if (p->depth == 0)
    return 0; /* the top level itself */
  size_t from = b->base[p->depth], n = b->npending - from;
  node_t *nd = &b->nodes[b->open_node[p->depth]];
  if (n > 1 && nd->type == N_OBJECT && sort_members(b, b->pending + from, &n))
    return -ENOMEM;
  if (n && grow((void **)&b->kids, &b->capkids, b->nkids + n, sizeof(size_t)))
    return -ENOMEM;
  if (n) /* never memcpy from or to NULL, even 0 bytes */
    memcpy(b->kids + b->nkids, b->pending + from, n * sizeof(size_t));
  nd->off = b->nkids;
  nd->len = n;
  b->nkids += n;
  b->npending = from;
  return p->depth == 1 ? finish_element(p) : 0;
}

static int key(json_parser_t *p, const char *s, size_t n) {
  build_t *b = p->ud;
  if (p->depth == 1)
    return 0; /* a member of a top-level `{}`: the check pass refused it */
  b->has_key = 1;
  b->koff = b->arena.len;
  b->klen = n;
  return buf_append(&b->arena, s, n);
}

static int string(json_parser_t *p, const char *s, size_t n) {
  int rc = starts_element(p, p->depth, 0);
  return rc ? rc : add_bytes(p->ud, N_STRING, s, n);
}

static int integer(json_parser_t *p, int64_t v) {
  char tmp[24];
  int rc = starts_element(p, p->depth, 0);
  if (rc || (rc = add_bytes(p->ud, N_INT, tmp, json_fmt_int(tmp, v))))
    return rc;
  build_t *b = p->ud;
  b->nodes[b->nnodes - 1].ival = v;
  return 0;
}

static int number(json_parser_t *p, double d) {
  char tmp[32];
  int rc = starts_element(p, p->depth, 0);
  if (rc || (rc = add_bytes(p->ud, N_DOUBLE, tmp, json_fmt_double(tmp, d))))
    return rc;
  build_t *b = p->ud;
  b->nodes[b->nnodes - 1].num = d;
  return 0;
}

static int boolean(json_parser_t *p, int v) {
  int rc = starts_element(p, p->depth, 0);
  return rc ? rc : add_bytes(p->ud, N_TEXT, v ? "true" : "false", v ? 4 : 5);
}

static int null(json_parser_t *p) {
  int rc = starts_element(p, p->depth, 0);
  return rc ? rc : add_bytes(p->ud, N_TEXT, "null", 4);
}

static const json_events_t build_events = {
    .begin_object = begin_object,
    .end_object = end,
    .begin_array = begin_array,
    .end_array = end,
    .key = key,
    .string = string,
    .integer = integer,
    .number = number,
    .boolean = boolean,
    .null = null,
};

int seed_documents(const char *text, size_t len, const seed_opts_t *o, size_t *stored, char *err,
                   size_t errlen) {
  char jerr[200];
  json_msg_t msg;
  *stored = 0;
  json_msg_init(&msg, jerr, sizeof jerr);
  check_t c = {0, 0};
  int rc = json_parse(text, len, &check_events, &c, &msg);
  if (rc == -ERANGE) {
    snprintf(err, errlen, "the body holds %s; nothing was stored", jerr);
    return -EINVAL;
  }
  if (rc) {
    snprintf(err, errlen, rc == -ENOMEM ? "out of memory" : "the body is not JSON: %s", jerr);
    return rc;
  }
  if (c.top != '[' && !(c.top == '{' && !c.members)) {
    snprintf(err, errlen, "the body must be a JSON array of objects");
    return -EINVAL;
  }
  build_t *b = calloc(1, sizeof *b);
  if (b == NULL) {
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
  }
  b->o = o;
  b->stored = stored;
  b->err = err;
  b->errlen = errlen;
  json_msg_init(&msg, jerr, sizeof jerr);
  rc = json_parse(text, len, &build_events, b, &msg);
  if (rc == -ECANCELED)
    rc = -EINVAL; /* the message is written */
  else if (rc == -ENOMEM)
    snprintf(err, errlen, "out of memory");
  buf_free(&b->arena);
  buf_free(&b->doc);
  free(b->nodes);
  free(b->kids);
  free(b->pending);
  free(b->members);
  free(b);
  return rc;
}
