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

int store_snapshot_write(const store_t *s, int fd, uint64_t seq, unsigned char *buf, size_t cap) {
  out_t o = {fd, buf, 0, cap};
  uint64_t count = 0;
  int rc;
  store_hdr_t h = {.id = s->id, .base = seq};
  store_hdr_encode(o.buf, HDR_SNAPSHOT, &h);
  o.len = FILE_HDR;
  for (const coll_t *c = s->first; c; c = c->next) {
    for (const doc_t *d = c->first; d; d = d->next, count++)
      if ((rc = out_record(&o, REC_PUT, c->name, c->nlen, d->data, d->idlen, store_doc_val(d),
                           d->vlen, 0)))
        return rc;
  }
  unsigned char n[8];
  store_wr_le(n, count, 8);
  if ((rc = out_record(&o, REC_END, NULL, 0, NULL, 0, n, 8, seq)) || (rc = out_flush(&o)))
    return rc;
  return fsync(fd) != 0 ? -errno : 0;
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

/* Compacts when the log has grown past the threshold: every write is made
 * durable first, and the writer is held (w.mu) while the files change.
 * Everything then waits for it: about a second for a million documents. A
 * failed compaction is only logged, and retried after another
 * compact_bytes rather than on every write. */
void store_maybe_compact(store_t *s) {
  if (s->appended <= s->compact_bytes || s->state)
    return;
  s->appended = 0;
  if (store_sync(s))
    return;
  pthread_mutex_lock(&s->w.mu);
  store_compact(s);
  pthread_mutex_unlock(&s->w.mu);
}
