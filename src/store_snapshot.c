/* store_snapshot.c - compaction: the live documents written as a snapshot,
 * and the log emptied.
 *
 * Compaction writes store.snapshot.tmp (every collection in creation order,
 * every document in insertion order, then END carrying the last sequence
 * number written), fsyncs it, renames it over store.snapshot, fsyncs the
 * directory, then truncates the log and fdatasyncs it. Replay skips log
 * records whose sequence number the snapshot already covers, so a crash at
 * any step leaves either the old snapshot with the full log, or the new
 * snapshot with a log whose old records are skipped: the same state either
 * way. (Replaying old records over the new snapshot instead would be wrong:
 * "put A, delete A, put A, put B" replayed over "A, B" yields "B, A".)
 * Compaction runs inside the write that crossed the threshold and blocks it
 * for the time it takes to write every document (about a second for a
 * million); a failed one is logged and retried after another compact_bytes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "safedir.h"
#include "store_int.h"

#define SNAP_FLUSH ((size_t)1 << 20)

/* Writes every live document to a new snapshot and empties the log (see the
 * top of the file for why each step is crash-safe). Returns 0 or a negative
 * errno, logged; the log is left as it was unless the snapshot is in place. */
int store_compact(store_t *s) {
  buf_t b = BUF_INIT;
  const char *step = "creating " TMP_NAME;
  bool renamed = false;
  int rc = 0;
  /* A new file, never one reached through a link planted at its name. */
  int fd = safedir_create(s->dirfd, s->dir, TMP_NAME, 0644);
  if (fd < 0) {
    rc = fd;
    goto out;
  }
  step = "writing " TMP_NAME;
  uint64_t count = 0;
  for (const coll_t *c = s->first; c; c = c->next) {
    for (const doc_t *d = c->first; d; d = d->next) {
      unsigned char hdr[REC_HDR];
      const char *v = store_doc_val(d);
      uint32_t pcrc = store_crc32(0, c->name, c->nlen);
      pcrc = store_crc32(store_crc32(pcrc, d->data, d->idlen), v, d->vlen);
      store_rec_header(hdr, REC_PUT, c->nlen, d->idlen, d->vlen, 0, pcrc);
      if ((rc = buf_append(&b, hdr, REC_HDR)) || (rc = buf_append(&b, c->name, c->nlen)) ||
          (rc = buf_append(&b, d->data, d->idlen)) || (rc = buf_append(&b, v, d->vlen)))
        goto out;
      count++;
      if (b.len >= SNAP_FLUSH) {
        if ((rc = store_write_all(fd, b.data, b.len)))
          goto out;
        buf_reset(&b);
      }
    }
  }
  unsigned char end[REC_HDR + 8];
  store_wr_le(end + REC_HDR, count, 8);
  store_rec_header(end, REC_END, 0, 0, 8, s->seq, store_crc32(0, end + REC_HDR, 8));
  if ((rc = buf_append(&b, end, sizeof end)) || (rc = store_write_all(fd, b.data, b.len)))
    goto out;
  step = "syncing " TMP_NAME;
  if (fsync(fd) != 0) {
    rc = -errno;
    goto out;
  }
  step = "closing " TMP_NAME;
  rc = close(fd) != 0 ? -errno : 0;
  fd = -1;
  if (rc)
    goto out;
  step = "renaming " TMP_NAME " to " SNAP_NAME;
  if (renameat(s->dirfd, TMP_NAME, s->dirfd, SNAP_NAME) != 0) {
    rc = -errno;
    goto out;
  }
  renamed = true;
  /* Until the directory is synced the rename may be undone by a crash; the
   * log must stay whole until then. */
  step = "syncing the directory";
  if (fsync(s->dirfd) != 0) {
    rc = -errno;
    goto out;
  }
  step = "truncating " LOG_NAME;
  if (ftruncate(s->logfd, 0) != 0) {
    rc = -errno;
    goto out;
  }
  s->log_size = 0;
  if (fdatasync(s->logfd) != 0) {
    /* The log's length on disk is unknown; appending to it could mix new
     * records with stale ones. */
    rc = -errno;
    s->broken = true;
    goto out;
  }
out:
  if (fd >= 0)
    close(fd);
  if (rc && !renamed)
    unlinkat(s->dirfd, TMP_NAME, 0);
  if (rc)
    log_error("store: %s: compaction failed %s: %s", s->dir, step, strerror(-rc));
  buf_free(&b);
  return rc;
}

/* Compacts when the log has grown past the threshold. The write that grew
 * it is already durable, so a failed compaction is only logged, and retried
 * after another compact_bytes rather than on every write. */
void store_maybe_compact(store_t *s) {
  if (s->logfd < 0 || s->log_size <= s->compact_at)
    return;
  if (store_compact(s) == 0)
    s->compact_at = s->compact_bytes;
  else
    s->compact_at = s->log_size + s->compact_bytes;
}
