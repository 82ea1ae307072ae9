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

int store_write_all(int fd, const void *p, size_t n, int64_t off) {
  while (n > 0) {
    ssize_t r = off < 0 ? write(fd, p, n) : pwrite(fd, p, n, (off_t)off);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    p = (const char *)p + r;
    n -= (size_t)r;
    if (off >= 0)
      off += r;
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
  int rc = store_write_all(o->fd, o->buf, o->len, -1);
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
  if ((rc = store_write_all(o->fd, h, REC_HDR, -1)) ||
      (rc = store_write_all(o->fd, coll, clen, -1)) ||
      (rc = store_write_all(o->fd, id, idlen, -1)))
    return rc;
  return store_write_all(o->fd, val, vlen, -1);
}

static void *rd(snap_view_t *v, void *const *field);

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
  if (view) /* reading is over: the loop may stop keeping pointers */
    __atomic_store_n(&view->done, true, __ATOMIC_RELEASE);
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
  if ((fd = safedir_create(s->dirfd, s->dir, LOG_TMP_NAME, 0644, s->log)) < 0) {
    rc = fd;
    goto out;
  }
  *step = "writing " LOG_TMP_NAME;
  store_hdr_t h = {.id = s->id, .base = base, .max_batch = MAX_RECORD};
  store_hdr_encode(buf, HDR_LOG, &h);
  if ((rc = store_write_all(fd, buf, FILE_HDR, -1)))
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
    if ((rc = store_write_all(fd, buf, (size_t)got, -1)))
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
  if ((fd = safedir_create(s->dirfd, s->dir, TMP_NAME, 0644, s->log)) < 0) {
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
    log_error(s->log, "store: %s: compaction failed %s: %s", s->dir, step, strerror(-rc));
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
 * The compactor reads a pointer, then looks it up in the map. Nodes made
 * after the snapshot began (their `gen` is its number) are out of its
 * reach, so their pointers are not kept: a stream of inserts costs the map
 * nothing. What it costs: 16 to 32 bytes per older pointer changed during
 * the snapshot, and the documents freed meanwhile, both given back when it
 * ends. No lock is shared: the loop never waits for the compactor, which
 * runs at the lowest priority so that on a busy core the loop comes first.
 * No table is read, so tables grow and shrink as usual. */

#define MAP_HASH(field, cap) (((uintptr_t)(field) >> 3) * 0x9e3779b97f4a7c15ull & ((cap)-1))

/* A list pointer as the snapshot sees it: its value when the snapshot
 * began. The pointer first, then the map: a new value read means its
 * entry, published before it, is there to find. */
static void *rd(snap_view_t *v, void *const *field) {
  void *val = __atomic_load_n((void **)field, __ATOMIC_ACQUIRE);
  if (v == NULL)
    return val;
  view_map_t *m = __atomic_load_n(&v->map, __ATOMIC_ACQUIRE);
  for (size_t i = m ? MAP_HASH(field, m->cap) : 0; m; i = (i + 1) & (m->cap - 1)) {
    void **k = __atomic_load_n(&m->e[i].field, __ATOMIC_ACQUIRE);
    if (k == NULL)
      break;
    if (k == field)
      return m->e[i].old;
  }
  return val;
}

/* A map twice the size, published once filled; the old one stays (the
 * compactor may be reading it) until the end. */
static bool view_grow(snap_view_t *v) {
  view_map_t *old = v->map;
  size_t cap = old ? old->cap * 2 : 4096;
  view_map_t *m = calloc(1, sizeof *m + cap * sizeof m->e[0]);
  if (m == NULL)
    return false;
  m->cap = cap;
  m->prev = old;
  for (size_t j = 0; old && j < old->cap; j++) {
    if (old->e[j].field == NULL)
      continue;
    size_t i = MAP_HASH(old->e[j].field, cap);
    while (m->e[i].field)
      i = (i + 1) & (cap - 1);
    m->e[i] = old->e[j];
  }
  __atomic_store_n(&v->map, m, __ATOMIC_RELEASE);
  return true;
}

void store_view_save(store_t *s, void *field) {
  snap_view_t *v = &s->view;
  if ((v->len + 1) * 2 > (v->map ? v->map->cap : 0) && !view_grow(v)) {
    /* The compactor may read a later value: its snapshot is dropped. */
    __atomic_store_n(&v->broken, true, __ATOMIC_RELEASE);
    return;
  }
  view_map_t *m = v->map;
  size_t i = MAP_HASH(field, m->cap);
  while (m->e[i].field && m->e[i].field != field)
    i = (i + 1) & (m->cap - 1);
  if (m->e[i].field == NULL) {
    m->e[i].old = *(void **)field;
    __atomic_store_n(&m->e[i].field, (void **)field, __ATOMIC_RELEASE);
    v->len++;
  }
}

static bool defer(store_t *s, void *p, bool coll) {
  snap_view_t *v = &s->view;
  if (!v->active)
    return false;
  if (v->ngrave == v->capgrave) {
    size_t cap = v->capgrave ? v->capgrave * 2 : 1024;
    grave_t *g = realloc(v->grave, cap * sizeof *g);
    if (g == NULL)
      return true; /* leaked rather than freed under the compactor's eyes */
    v->grave = g;
    v->capgrave = cap;
  }
  v->grave[v->ngrave++] = (grave_t){p, coll};
  return true;
}

void store_free_doc(store_t *s, doc_t *d) {
  if (!defer(s, d, false))
    free(d);
}

void store_free_coll(store_t *s, coll_t *c) {
  if (!defer(s, c, true))
    store_coll_free(c);
}

struct grave_job {
  grave_t *grave;
  size_t n;
};

static void *bury(void *arg) {
  struct grave_job *j = arg;
  for (size_t i = 0; i < j->n; i++) {
    if (j->grave[i].coll)
      store_coll_free(j->grave[i].p);
    else
      free(j->grave[i].p);
  }
  free(j->grave);
  free(j);
  return NULL;
}

void store_view_finish(store_t *s, bool now) {
  snap_view_t *v = &s->view;
  if (!v->active || (!now && !__atomic_load_n(&v->done, __ATOMIC_ACQUIRE)))
    return;
  v->active = false;
  for (view_map_t *m = v->map, *prev; m; m = prev) {
    prev = m->prev;
    free(m);
  }
  v->map = NULL;
  v->len = 0;
  struct grave_job *j = malloc(sizeof *j);
  if (j)
    *j = (struct grave_job){v->grave, v->ngrave};
  v->grave = NULL;
  v->ngrave = v->capgrave = 0;
  if (j == NULL)
    return; /* leaked: out of memory anyway */
  /* A clear of a million documents during the snapshot leaves a million
   * frees: a thread does them, unless it is a handful. */
  pthread_t t;
  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
  if (j->n < 1024 || now || pthread_create(&t, &at, bury, j) != 0)
    bury(j);
  pthread_attr_destroy(&at);
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
  int fd = buf ? safedir_create(s->dirfd, s->dir, TMP_NAME, 0644, s->log) : -ENOMEM, rc = fd;
  if (fd >= 0)
    rc = write_snapshot(s, &s->view, fd, job->seq, buf, SNAP_BUF, &w->snap_cancel);
  else
    __atomic_store_n(&s->view.done, true, __ATOMIC_RELEASE);
  if (fd >= 0 && close(fd) != 0 && rc == 0)
    rc = -errno;
  free(buf);
  if (rc == 0 && __atomic_load_n(&s->view.broken, __ATOMIC_ACQUIRE))
    rc = -ENOMEM;
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
  store_view_finish(s, false); /* the last one's, if its reading is over */
  if (s->view.active || pthread_mutex_trylock(&w->mu) != 0)
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
    log_error(s->log, "store: %s: compaction failed: out of memory", s->dir);
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
  s->view.active = true;
  s->view.done = s->view.broken = false;
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
    log_error(s->log, "store: %s: compaction failed: no thread (%s)", s->dir, strerror(rc));
    store_view_finish(s, true);
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
    log_debug(s->log,
              "store: %s: compacted up to sequence number %" PRIu64 " (%" PRIu64
              " bytes of log kept)",
              s->dir, seq, end - cut);
    return;
  }
  log_error(s->log, "store: %s: compaction failed %s: %s", s->dir, step, strerror(-rc));
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
  if (!w->snap_written && !w->stop)
    return;
  if (w->joinable) {
    /* Done, or stopping (it gives up: the next open compacts anyway). Not
     * under the lock: the loop reads it, and a thread's end takes time. */
    w->joinable = false;
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->compactor, NULL);
    pthread_mutex_lock(&w->mu);
  }
  bool drop = w->snap_rc || w->snap_discard || w->dead || w->stop;
  if (!drop && (w->err || w->committed < w->snap_seq))
    return; /* the log does not hold everything the snapshot covers yet */
  if (drop) {
    if (w->snap_rc && w->snap_rc != -ECANCELED)
      log_error(s->log, "store: %s: compaction failed making %s: %s", s->dir, TMP_NAME,
                strerror(-w->snap_rc));
    unlinkat(s->dirfd, TMP_NAME, 0);
  } else {
    install(s);
  }
  w->compacting = w->snap_written = false;
}
