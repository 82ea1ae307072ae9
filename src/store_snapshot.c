/* store_snapshot.c - writing the files of a data directory: a snapshot of
 * the live documents, a new log, and compaction, which makes the first and
 * replaces the log by the second.
 *
 * Compaction writes store.snapshot.tmp (its header, every collection in
 * creation order, every document in insertion order, then END carrying the
 * sequence number it covers), fsyncs it, renames it over store.snapshot and
 * fsyncs the directory. Then it writes store.log.tmp (a header whose base
 * is that sequence number, then the records after it), fdatasyncs it,
 * renames it over store.log and fsyncs the directory. Replay skips log
 * records whose sequence number the snapshot already covers, so a crash at
 * any step leaves either the old snapshot with the full log, or the new
 * snapshot with a log whose old records are skipped, or the new snapshot
 * with the new log: the same state each time. (Replaying old records over
 * the new snapshot instead would be wrong: "put A, delete A, put A, put B"
 * replayed over "A, B" yields "B, A".)
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "safedir.h"
#include "store_int.h"

int store_write_all(int fd, const void *p, size_t n) {
  while (n > 0) {
    ssize_t r = write(fd, p, n);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    p = (const char *)p + r;
    n -= (size_t)r;
  }
  return 0;
}

/* Appends to a buffer of `cap` bytes, writing it out to fd when full; a
 * record larger than the buffer goes straight to the file. */
typedef struct out {
  int fd;
  unsigned char *buf;
  size_t len, cap;
} out_t;

static int out_flush(out_t *o) {
  int rc = store_write_all(o->fd, o->buf, o->len);
  o->len = 0;
  return rc;
}

static int out_record(out_t *o, int type, const char *coll, size_t clen, const char *id,
                      size_t idlen, const void *val, size_t vlen, uint64_t seq) {
  size_t size = REC_HDR + clen + idlen + vlen;
  int rc;
  if (o->len + size > o->cap && (rc = out_flush(o)))
    return rc;
  if (size <= o->cap) {
    o->len += store_rec_encode(o->buf + o->len, type, coll, clen, id, idlen, val, vlen, seq);
    return 0;
  }
  unsigned char h[REC_HDR];
  uint32_t pcrc = store_crc32(store_crc32(store_crc32(0, coll, clen), id, idlen), val, vlen);
  store_rec_header(h, type, clen, idlen, vlen, seq, pcrc);
  if ((rc = store_write_all(o->fd, h, REC_HDR)) || (rc = store_write_all(o->fd, coll, clen)) ||
      (rc = store_write_all(o->fd, id, idlen)))
    return rc;
  return store_write_all(o->fd, val, vlen);
}

/* A list pointer as the snapshot sees it: its value when the snapshot
 * began. `view` is NULL when nothing else runs (at open). */
static void *rd(snap_view_t *view, void *const *field) {
  if (view == NULL)
    return *field;
  pthread_mutex_lock(&view->mu);
  void *v = *field;
  if (view->len) {
    size_t mask = view->cap - 1, i = ((uintptr_t)field >> 3) * 0x9e3779b97f4a7c15ull & mask;
    for (; view->map[i].field; i = (i + 1) & mask)
      if (view->map[i].field == field) {
        v = view->map[i].old;
        break;
      }
  }
  pthread_mutex_unlock(&view->mu);
  return v;
}

static void end_view(store_t *s);

/* Writes the header, every document (collections in creation order, each
 * in insertion order) and the end record into fd, then fsyncs it. With a
 * view, the lists are read as they were when it began, and it ends (so
 * that the loop stops saving) before the fsync. */
static int write_snapshot(store_t *s, snap_view_t *view, int fd, uint64_t seq, unsigned char *buf,
                          size_t cap, const bool *cancel) {
  out_t o = {fd, buf, 0, cap};
  uint64_t count = 0;
  int rc = 0;
  store_hdr_t h = {.id = s->id, .base = seq};
  store_hdr_encode(o.buf, HDR_SNAPSHOT, &h);
  o.len = FILE_HDR;
  for (const coll_t *c = rd(view, (void *const *)&s->first); c && rc == 0;
       c = rd(view, (void *const *)&c->next)) {
    for (const doc_t *d = rd(view, (void *const *)&c->first); d && rc == 0;
         d = rd(view, (void *const *)&d->next), count++) {
      rc = out_record(&o, REC_PUT, c->name, c->nlen, d->data, d->idlen, store_doc_val(d), d->vlen,
                      0);
      if (cancel && (count & 1023) == 0 && __atomic_load_n(cancel, __ATOMIC_RELAXED))
        rc = -ECANCELED;
    }
  }
  if (view)
    end_view(s);
  unsigned char n[8];
  store_wr_le(n, count, 8);
  if (rc || (rc = out_record(&o, REC_END, NULL, 0, NULL, 0, n, 8, seq)) || (rc = out_flush(&o)))
    return rc;
  return fsync(fd) != 0 ? -errno : 0;
}

int store_snapshot_write(store_t *s, int fd, uint64_t seq, unsigned char *buf, size_t cap) {
  return write_snapshot(s, NULL, fd, seq, buf, cap, NULL);
}

int store_install(int dirfd, const char *tmp, const char *name) {
  if (renameat(dirfd, tmp, dirfd, name) != 0)
    return -errno;
  /* Until the directory is synced a crash may undo the rename. */
  return fsync(dirfd) != 0 ? -errno : 0;
}

int store_log_write(store_t *s, uint64_t base, int from, uint64_t cut, uint64_t end,
                    const char **step, bool *renamed) {
  unsigned char *buf = malloc(SNAP_BUF);
  int rc = 0, fd = -1;
  if (buf == NULL)
    return -ENOMEM;
  *step = "creating " LOG_TMP_NAME;
  /* A new file, never one reached through a link planted at its name. */
  if ((fd = safedir_create(s->dirfd, s->dir, LOG_TMP_NAME, 0644)) < 0) {
    rc = fd;
    goto out;
  }
  *step = "writing " LOG_TMP_NAME;
  store_hdr_t h = {.id = s->id, .base = base, .max_batch = MAX_RECORD};
  store_hdr_encode(buf, HDR_LOG, &h);
  if ((rc = store_write_all(fd, buf, FILE_HDR)))
    goto out;
  for (uint64_t off = cut; off < end;) {
    size_t n = end - off < SNAP_BUF ? (size_t)(end - off) : SNAP_BUF;
    ssize_t got = pread(from, buf, n, (off_t)off);
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0) {
      *step = "copying the log's last records";
      rc = got < 0 ? -errno : -EIO;
      goto out;
    }
    if ((rc = store_write_all(fd, buf, (size_t)got)))
      goto out;
    off += (uint64_t)got;
  }
  *step = "syncing " LOG_TMP_NAME;
  if (fdatasync(fd) != 0) {
    rc = -errno;
    goto out;
  }
  *step = "renaming " LOG_TMP_NAME " to " LOG_NAME;
  if (renameat(s->dirfd, LOG_TMP_NAME, s->dirfd, LOG_NAME) != 0) {
    rc = -errno;
    goto out;
  }
  *renamed = true;
  *step = "syncing the directory after renaming " LOG_TMP_NAME;
  if (fsync(s->dirfd) != 0) {
    rc = -errno;
    goto out;
  }
  rc = fd;
  fd = -1;
out:
  if (fd >= 0) {
    close(fd);
    unlinkat(s->dirfd, LOG_TMP_NAME, 0);
  }
  free(buf);
  return rc;
}

int store_compact(store_t *s) {
  const char *step = "creating " TMP_NAME;
  unsigned char *buf = malloc(SNAP_BUF);
  int rc = buf ? 0 : -ENOMEM, fd = -1;
  bool renamed = false;
  if (rc)
    goto out;
  if ((fd = safedir_create(s->dirfd, s->dir, TMP_NAME, 0644)) < 0) {
    rc = fd;
    goto out;
  }
  step = "writing " TMP_NAME;
  if ((rc = store_snapshot_write(s, fd, s->seq, buf, SNAP_BUF)))
    goto out;
  step = "closing " TMP_NAME;
  rc = close(fd) != 0 ? -errno : 0;
  fd = -1;
  if (rc)
    goto out;
  step = "renaming " TMP_NAME " to " SNAP_NAME;
  if ((rc = store_install(s->dirfd, TMP_NAME, SNAP_NAME)))
    goto out;
  renamed = true;
  bool log_renamed = false;
  uint64_t size = s->w.file_size;
  int logfd = store_log_write(s, s->seq, s->logfd, size, size, &step, &log_renamed);
  if (logfd < 0) {
    /* The log in place is the new one, but its name may not survive a
     * crash: appending to either could lose acknowledged writes. */
    if (log_renamed) {
      s->w.dead = true;
      s->state = -EIO;
      snprintf(s->reason, sizeof s->reason,
               "%s/%s was replaced but the directory could not be synced (%s): read-only until "
               "h1mock is restarted",
               s->dir, LOG_NAME, strerror(-logfd));
    }
    rc = logfd;
    goto out;
  }
  close(s->logfd);
  s->logfd = logfd;
  s->w.file_size = FILE_HDR;
out:
  if (fd >= 0)
    close(fd);
  if (rc && !renamed)
    unlinkat(s->dirfd, TMP_NAME, 0);
  if (rc)
    log_error("store: %s: compaction failed %s: %s", s->dir, step, strerror(-rc));
  free(buf);
  return rc;
}

/* ---- compaction off the loop ---- */

/* A compaction needs every document as it was at one sequence number while
 * the loop goes on changing them. Documents never change once made (a put
 * makes a new one), only the list pointers between them do, and a freed
 * document could be read: so while a compactor thread reads, the loop
 * keeps (in view.map) the first value of each `first`/`next` pointer it
 * changes, and defers its frees (view.grave) until the compactor is done.
 * The compactor reads each pointer through the map. Nodes made after the
 * snapshot began (their `gen` is its number) are out of its reach, so
 * their pointers are not kept: a stream of inserts costs the map nothing.
 * What it costs: 16 to 32 bytes per older pointer changed during the
 * snapshot, and the documents freed meanwhile, both given back when it
 * ends; a lock taken per pointer on each side, uncontended but for the
 * moments they meet. No table is read, so
 * tables grow and shrink as usual. The compactor runs at the lowest
 * priority, so that on a busy core the loop comes first. */

static bool view_grow(snap_view_t *v) {
  size_t cap = v->cap ? v->cap * 2 : 4096;
  view_entry_t *map = calloc(cap, sizeof *map);
  if (map == NULL)
    return false;
  for (size_t j = 0; j < v->cap; j++) {
    if (v->map[j].field == NULL)
      continue;
    size_t i = ((uintptr_t)v->map[j].field >> 3) * 0x9e3779b97f4a7c15ull & (cap - 1);
    while (map[i].field)
      i = (i + 1) & (cap - 1);
    map[i] = v->map[j];
  }
  free(v->map);
  v->map = map;
  v->cap = cap;
  return true;
}

void store_view_save(store_t *s, void *field) {
  snap_view_t *v = &s->view;
  pthread_mutex_lock(&v->mu);
  if (v->active) {
    if ((v->len + 1) * 2 > v->cap && !view_grow(v)) {
      v->broken = true; /* the compactor may read a later value: drop its snapshot */
    } else {
      size_t mask = v->cap - 1, i = ((uintptr_t)field >> 3) * 0x9e3779b97f4a7c15ull & mask;
      while (v->map[i].field && v->map[i].field != field)
        i = (i + 1) & mask;
      if (v->map[i].field == NULL) {
        v->map[i].field = field;
        v->map[i].old = *(void **)field;
        v->len++;
      }
    }
  }
  pthread_mutex_unlock(&v->mu);
}

static bool defer(store_t *s, void *p, bool coll) {
  snap_view_t *v = &s->view;
  if (!__atomic_load_n(&v->active, __ATOMIC_RELAXED))
    return false;
  pthread_mutex_lock(&v->mu);
  bool kept = v->active;
  if (kept && v->ngrave == v->capgrave) {
    size_t cap = v->capgrave ? v->capgrave * 2 : 1024;
    grave_t *g = realloc(v->grave, cap * sizeof *g);
    if (g) {
      v->grave = g;
      v->capgrave = cap;
    }
  }
  if (kept && v->ngrave < v->capgrave)
    v->grave[v->ngrave++] = (grave_t){p, coll};
  /* else leaked rather than freed under the compactor's eyes */
  pthread_mutex_unlock(&v->mu);
  return kept;
}

void store_free_doc(store_t *s, doc_t *d) {
  if (!defer(s, d, false))
    free(d);
}

void store_free_coll(store_t *s, coll_t *c) {
  if (!defer(s, c, true))
    store_coll_free(c);
}

/* The compactor is done reading: the loop stops saving, and what it freed
 * meanwhile is freed here, on the compactor's thread. */
static void end_view(store_t *s) {
  snap_view_t *v = &s->view;
  pthread_mutex_lock(&v->mu);
  v->active = false;
  grave_t *grave = v->grave;
  size_t n = v->ngrave;
  v->grave = NULL;
  v->ngrave = v->capgrave = 0;
  free(v->map);
  v->map = NULL;
  v->cap = v->len = 0;
  pthread_mutex_unlock(&v->mu);
  for (size_t i = 0; i < n; i++) {
    if (grave[i].coll)
      store_coll_free(grave[i].p);
    else
      free(grave[i].p);
  }
  free(grave);
}

struct compaction {
  store_t *s;
  uint64_t seq;
};

static void *compactor_main(void *arg) {
  struct compaction *job = arg;
  store_t *s = job->s;
  writer_t *w = &s->w;
  setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);
  /* Even creating a file can wait for the file system's journal: here,
   * not on the loop. */
  unsigned char *buf = malloc(SNAP_BUF);
  int fd = buf ? safedir_create(s->dirfd, s->dir, TMP_NAME, 0644) : -ENOMEM, rc = fd;
  if (fd >= 0)
    rc = write_snapshot(s, &s->view, fd, job->seq, buf, SNAP_BUF, &w->snap_cancel);
  else
    end_view(s);
  if (fd >= 0 && close(fd) != 0 && rc == 0)
    rc = -errno;
  free(buf);
  pthread_mutex_lock(&s->view.mu);
  if (rc == 0 && s->view.broken)
    rc = -ENOMEM;
  pthread_mutex_unlock(&s->view.mu);
  pthread_mutex_lock(&w->mu);
  w->snap_rc = rc;
  w->snap_written = true;
  if (w->idle)
    pthread_cond_signal(&w->wake);
  pthread_mutex_unlock(&w->mu);
  free(job);
  return NULL;
}

void store_maybe_compact(store_t *s) {
  writer_t *w = &s->w;
  if (s->appended < s->compact_bytes || s->state)
    return;
  /* Tried again with the next write when the writer holds its lock. */
  if (pthread_mutex_trylock(&w->mu) != 0)
    return;
  if (w->compacting) {
    pthread_mutex_unlock(&w->mu);
    return;
  }
  /* Retried after another compact_bytes, whatever happens to this one. */
  s->appended = 0;
  struct compaction *job = malloc(sizeof *job);
  if (job == NULL) {
    pthread_mutex_unlock(&w->mu);
    log_error("store: %s: compaction failed: out of memory", s->dir);
    return;
  }
  *job = (struct compaction){s, s->seq};
  if (++s->view.gen == 0) {
    /* Once in 65,535 snapshots the tag comes round: a node made during
     * the snapshot of that number long ago must not pass for new. */
    for (coll_t *c = s->first; c; c = c->next) {
      c->gen = 0;
      for (doc_t *d = c->first; d; d = d->next)
        d->gen = 0;
    }
    s->view.gen = 1;
  }
  pthread_mutex_lock(&s->view.mu);
  s->view.active = true;
  s->view.broken = false;
  pthread_mutex_unlock(&s->view.mu);
  /* Records up to the snapshot's sequence number end where the next
   * record will start. */
  w->cut = w->file_size + w->inflight + w->queue.len + s->pend.len;
  w->snap_seq = s->seq;
  w->snap_discard = w->snap_written = w->snap_cancel = false;
  w->snap_rc = 0;
  int rc = pthread_create(&w->compactor, NULL, compactor_main, job);
  if (rc == 0) {
    w->joinable = w->compacting = true;
    if (w->idle)
      pthread_cond_signal(&w->wake);
  }
  pthread_mutex_unlock(&w->mu);
  if (rc) {
    log_error("store: %s: compaction failed: no thread (%s)", s->dir, strerror(rc));
    end_view(s);
    free(job);
  }
}

/* Installs the written snapshot and writes the new log: on the writer
 * thread, between batches, so nothing is appended meanwhile. */
static void install(store_t *s) {
  writer_t *w = &s->w;
  uint64_t seq = w->snap_seq, cut = w->cut, end = w->file_size;
  const char *step = "renaming " TMP_NAME " to " SNAP_NAME;
  bool renamed = false;
  pthread_mutex_unlock(&w->mu);
  int rc = store_install(s->dirfd, TMP_NAME, SNAP_NAME), fd = -1;
  if (rc == 0)
    fd = rc = store_log_write(s, seq, s->logfd, cut, end, &step, &renamed);
  pthread_mutex_lock(&w->mu);
  if (fd >= 0) {
    close(s->logfd);
    s->logfd = fd;
    w->file_size = FILE_HDR + (end - cut);
    log_debug("store: %s: compacted up to sequence number %" PRIu64 " (%" PRIu64
              " bytes of log kept)",
              s->dir, seq, end - cut);
    return;
  }
  log_error("store: %s: compaction failed %s: %s", s->dir, step, strerror(-rc));
  if (renamed) {
    /* The new log is in place but its name may not survive a crash:
     * appending to either file could lose acknowledged writes. */
    __atomic_store_n(&w->err, -EIO, __ATOMIC_RELAXED);
    if (s->notify)
      uv_async_send(&s->notify->async);
  }
}

void store_compaction_step(store_t *s) {
  writer_t *w = &s->w;
  if (w->stop)
    __atomic_store_n(&w->snap_cancel, true, __ATOMIC_RELAXED);
  if (!w->snap_written) {
    if (!w->stop)
      return;
    /* Stopping: the next open compacts anyway. */
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->compactor, NULL);
    pthread_mutex_lock(&w->mu);
    w->joinable = false;
  }
  if (w->joinable) {
    pthread_join(w->compactor, NULL); /* it is done: returns at once */
    w->joinable = false;
  }
  bool drop = w->snap_rc || w->snap_discard || w->dead || w->stop;
  if (!drop && (w->err || w->committed < w->snap_seq))
    return; /* the log does not hold everything the snapshot covers yet */
  if (drop) {
    if (w->snap_rc && w->snap_rc != -ECANCELED)
      log_error("store: %s: compaction failed making %s: %s", s->dir, TMP_NAME,
                strerror(-w->snap_rc));
    unlinkat(s->dirfd, TMP_NAME, 0);
  } else {
    install(s);
  }
  w->compacting = w->snap_written = false;
}
