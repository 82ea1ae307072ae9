/* store.c - collections of documents keyed by id, with an optional log:
 * the public calls, and opening and closing a data directory.
 *
 * Writes first allocate everything they may need (the new document, a
 * grown table, a new collection), then append the log record, then link:
 * linking cannot fail, which is how a failed write leaves the store as it
 * was.
 *
 * Files in the data directory:
 *   store.log            records appended by each write, fdatasync'd before
 *                        the write returns
 *   store.snapshot       every live document as of sequence number N
 *   store.snapshot.tmp   a snapshot being written (removed at open)
 */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "store_int.h"

static bool key_ok(const char *k, size_t n) { return k != NULL && n > 0 && n <= STORE_MAX_KEY; }

/* ---- writes (log == false: replaying at open) ---- */

/* Unlinks and frees a collection with all its documents. */
static void coll_drop(store_t *s, coll_t *c) {
  store_coll_unlink(s, c);
  store_coll_free(c);
  store_tab_shrink(&s->colls);
}

int store_put_doc(store_t *s, const char *coll, size_t clen, const char *id, size_t idlen,
                  const void *val, size_t vlen, bool log) {
  int rc = -ENOMEM;
  coll_t *newc = NULL;
  doc_t *d = store_doc_new(id, idlen, val, vlen);
  if (d == NULL)
    goto out;
  coll_t *c = store_coll_get(s, coll, clen);
  if (c == NULL && (store_tab_reserve(&s->colls) || (newc = store_coll_new(coll, clen)) == NULL))
    goto out;
  doc_t *old = c ? store_doc_get(s, c, id, idlen) : NULL;
  if (c && old == NULL && (rc = store_tab_reserve(&c->docs)))
    goto out;
  if (log && (rc = store_log_append(s, REC_PUT, coll, clen, id, idlen, val, vlen)))
    goto out;

  if (newc) {
    store_coll_link(s, newc, s->last);
    c = newc;
    newc = NULL;
  }
  if (old) {
    store_doc_swap(s, c, old, d);
    free(old);
  } else {
    store_doc_link(s, c, d, c->last);
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
  int rc;
  if (log && (rc = store_log_append(s, REC_DEL, coll, clen, id, idlen, NULL, 0)))
    return rc;
  store_doc_unlink(s, c, d);
  free(d);
  if (c->docs.len == 0)
    coll_drop(s, c);
  else
    store_tab_shrink(&c->docs);
  return 0;
}

int store_clear_coll(store_t *s, const char *coll, size_t clen, bool log) {
  int rc;
  if (coll == NULL) {
    if (s->first == NULL)
      return 0;
    if (log && (rc = store_log_append(s, REC_CLEAR_ALL, NULL, 0, NULL, 0, NULL, 0)))
      return rc;
    store_drop_all(s);
    return 0;
  }
  coll_t *c = store_coll_get(s, coll, clen);
  if (c == NULL)
    return 0;
  if (log && (rc = store_log_append(s, REC_CLEAR, coll, clen, NULL, 0, NULL, 0)))
    return rc;
  coll_drop(s, c);
  return 0;
}

int store_put(store_t *s, const char *coll, size_t clen, const char *id, size_t idlen,
              const void *val, size_t vlen) {
  if (!key_ok(coll, clen) || !key_ok(id, idlen) || vlen > STORE_MAX_VALUE ||
      (val == NULL && vlen > 0))
    return -EINVAL;
  int rc = store_put_doc(s, coll, clen, id, idlen, val, vlen, s->logfd >= 0);
  if (rc == 0)
    store_maybe_compact(s);
  return rc;
}

int store_delete(store_t *s, const char *coll, size_t clen, const char *id, size_t idlen) {
  if (!key_ok(coll, clen) || !key_ok(id, idlen))
    return -ENOENT;
  int rc = store_delete_doc(s, coll, clen, id, idlen, s->logfd >= 0);
  if (rc == 0)
    store_maybe_compact(s);
  return rc;
}

int store_clear(store_t *s, const char *coll, size_t clen) {
  if (coll != NULL && !key_ok(coll, clen))
    return -EINVAL;
  int rc = store_clear_coll(s, coll, clen, s->logfd >= 0);
  if (rc == 0)
    store_maybe_compact(s);
  return rc;
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
