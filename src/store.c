/* store.c - collections of documents keyed by id: the public writes and
 * reads.
 *
 * A write first allocates everything it may need (the new document, a
 * grown table, a new collection, undo entries), then queues its log record,
 * then links: linking cannot fail, which is how a failed write leaves the
 * store as it was. With a data directory, what a write replaces or removes
 * is kept in an undo entry until the write is durable (store_commit.c), so
 * that a failed commit can put it back; tables then only shrink when no
 * write is pending, so that putting back never needs memory.
 */
#include "store.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

static bool key_ok(const char *k, size_t n) { return k != NULL && n > 0 && n <= STORE_MAX_KEY; }

/* ---- writes (log == false: memory only, or replaying at open) ---- */

/* With `log`, the entry is noted for undo; else what it removed is freed.
 * Tables shrink only when nothing else is waiting to be undone. */
static void drop_doc(store_t *s, coll_t *c, doc_t *d, bool log, bool shrink) {
  doc_t *prev = d->prev;
  store_doc_unlink(s, c, d);
  if (log)
    store_undo_push(s, U_DELETE, c, d, prev);
  else
    free(d);
  if (shrink)
    store_tab_shrink(&c->docs);
}

static void drop_coll(store_t *s, coll_t *c, bool log, bool shrink) {
  coll_t *prev = c->prev;
  store_coll_unlink(s, c);
  if (log)
    store_undo_push(s, U_DROP_COLL, c, prev, NULL);
  else
    store_coll_free(c);
  if (shrink)
    store_tab_shrink(&s->colls);
}

int store_put_doc(store_t *s, const char *coll, size_t clen, const char *id, size_t idlen,
                  const void *val, size_t vlen, bool log) {
  int rc = -ENOMEM;
  coll_t *newc = NULL;
  doc_t *d = store_doc_new(id, idlen, val, vlen);
  if (d == NULL)
    goto out;
  d->gen = store_gen_now(s);
  coll_t *c = store_coll_get(s, coll, clen);
  if (c == NULL && (store_tab_reserve(&s->colls) || (newc = store_coll_new(coll, clen)) == NULL))
    goto out;
  if (newc)
    newc->gen = d->gen;
  doc_t *old = c ? store_doc_get(s, c, id, idlen) : NULL;
  if (c && old == NULL && (rc = store_tab_reserve(&c->docs)))
    goto out;
  if (log && ((rc = store_undo_reserve(s, 2)) ||
              (rc = store_log_append(s, REC_PUT, coll, clen, id, idlen, val, vlen))))
    goto out;

  if (newc) {
    store_coll_link(s, newc, s->last);
    if (log)
      store_undo_push(s, U_NEW_COLL, newc, NULL, NULL);
    c = newc;
    newc = NULL;
  }
  if (old) {
    store_doc_swap(s, c, old, d);
    if (log)
      store_undo_push(s, U_REPLACE, c, old, d);
    else
      free(old);
  } else {
    store_doc_link(s, c, d, c->last);
    if (log)
      store_undo_push(s, U_INSERT, c, d, NULL);
  }
  d = NULL;
  rc = 0;
out:
  free(d);
  if (newc)
    store_coll_free(newc);
  return rc;
}

int store_delete_doc(store_t *s, const char *coll, size_t clen, const char *id, size_t idlen,
                     bool log) {
  coll_t *c = store_coll_get(s, coll, clen);
  doc_t *d = c ? store_doc_get(s, c, id, idlen) : NULL;
  if (d == NULL)
    return -ENOENT;
  bool shrink = s->undo_len == s->undo_head;
  int rc;
  if (log && ((rc = store_undo_reserve(s, 2)) ||
              (rc = store_log_append(s, REC_DEL, coll, clen, id, idlen, NULL, 0))))
    return rc;
  drop_doc(s, c, d, log, shrink);
  if (c->docs.len == 0)
    drop_coll(s, c, log, shrink);
  return 0;
}

int store_clear_coll(store_t *s, const char *coll, size_t clen, bool log) {
  bool shrink = s->undo_len == s->undo_head;
  int rc;
  if (coll == NULL) {
    if (s->first == NULL)
      return 0;
    cleared_t *cl = log ? malloc(sizeof *cl) : NULL;
    if (log && (cl == NULL || (rc = store_undo_reserve(s, 1)) ||
                (rc = store_log_append(s, REC_CLEAR_ALL, NULL, 0, NULL, 0, NULL, 0)))) {
      free(cl);
      return -ENOMEM;
    }
    if (!log) {
      store_drop_all(s);
      return 0;
    }
    *cl = (cleared_t){s->colls, s->first, s->last};
    memset(&s->colls, 0, sizeof s->colls);
    store_set_ptr(s, 0, &s->first, NULL);
    s->last = NULL;
    store_undo_push(s, U_CLEAR_ALL, NULL, cl, NULL);
    return 0;
  }
  coll_t *c = store_coll_get(s, coll, clen);
  if (c == NULL)
    return 0;
  if (log && ((rc = store_undo_reserve(s, 1)) ||
              (rc = store_log_append(s, REC_CLEAR, coll, clen, NULL, 0, NULL, 0))))
    return rc;
  drop_coll(s, c, log, shrink);
  return 0;
}

/* A write of the public API: refused while the store refuses writes, and
 * numbered in a memory-only store too. */
static int write_done(store_t *s, int rc) {
  if (rc == 0 && s->dirfd < 0)
    s->seq++;
  if (rc == 0 && s->dirfd >= 0) {
    store_handover_soon(s);
    store_maybe_compact(s);
  }
  return rc;
}

int store_put(store_t *s, const char *coll, size_t clen, const char *id, size_t idlen,
              const void *val, size_t vlen) {
  if (!key_ok(coll, clen) || !key_ok(id, idlen) || vlen > STORE_MAX_VALUE ||
      (val == NULL && vlen > 0))
    return -EINVAL;
  int rc = store_writable(s);
  if (rc)
    return rc;
  return write_done(s, store_put_doc(s, coll, clen, id, idlen, val, vlen, s->dirfd >= 0));
}

int store_delete(store_t *s, const char *coll, size_t clen, const char *id, size_t idlen) {
  if (!key_ok(coll, clen) || !key_ok(id, idlen))
    return -ENOENT;
  int rc = store_writable(s);
  if (rc)
    return rc;
  return write_done(s, store_delete_doc(s, coll, clen, id, idlen, s->dirfd >= 0));
}

int store_clear(store_t *s, const char *coll, size_t clen) {
  if (coll != NULL && !key_ok(coll, clen))
    return -EINVAL;
  int rc = store_writable(s);
  if (rc)
    return rc;
  return write_done(s, store_clear_coll(s, coll, clen, s->dirfd >= 0));
}

/* ---- reads ---- */

int store_get(const store_t *s, const char *coll, size_t clen, const char *id, size_t idlen,
              const void **val, size_t *vlen) {
  if (!key_ok(coll, clen) || !key_ok(id, idlen))
    return -ENOENT;
  const coll_t *c = store_coll_get(s, coll, clen);
  const doc_t *d = c ? store_doc_get(s, c, id, idlen) : NULL;
  if (d == NULL)
    return -ENOENT;
  *val = store_doc_val(d);
  *vlen = d->vlen;
  return 0;
}

size_t store_count(const store_t *s, const char *coll, size_t clen) {
  if (!key_ok(coll, clen))
    return 0;
  const coll_t *c = store_coll_get(s, coll, clen);
  return c ? c->docs.len : 0;
}

int store_list(const store_t *s, const char *coll, size_t clen, size_t offset, size_t limit,
               store_each_fn fn, void *arg) {
  if (!key_ok(coll, clen))
    return 0;
  const coll_t *c = store_coll_get(s, coll, clen);
  if (c == NULL || offset >= c->docs.len)
    return 0;
  const doc_t *d;
  /* Walk to the offset from the nearer end of the list. */
  if (offset <= c->docs.len / 2) {
    d = c->first;
    for (size_t i = 0; i < offset; i++)
      d = d->next;
  } else {
    d = c->last;
    for (size_t i = c->docs.len - 1; i > offset; i--)
      d = d->prev;
  }
  for (size_t n = 0; d && (limit == 0 || n < limit); d = d->next, n++) {
    int rc = fn(arg, d->data, d->idlen, store_doc_val(d), d->vlen);
    if (rc)
      return rc;
  }
  return 0;
}

int store_collections(const store_t *s,
                      int (*fn)(void *arg, const char *name, size_t len, size_t count),
                      void *arg) {
  for (const coll_t *c = s->first; c; c = c->next) {
    int rc = fn(arg, c->name, c->nlen, c->docs.len);
    if (rc)
      return rc;
  }
  return 0;
}
