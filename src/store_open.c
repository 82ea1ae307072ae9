/* store_open.c - opening a data directory: the lock, recovery of the
 * snapshot and the log, the migration of a format-1 store, and closing.
 *
 * Files in the data directory:
 *   store.log            the log: a header, then the records of the writes
 *   store.snapshot       a header, every live document as of its base
 *                        sequence number, an end record
 *   store.snapshot.tmp,  being written by a compaction; never read, removed
 *   store.log.tmp        at open
 *   store.log.v1,        a format-1 store as it was before its migration
 *   store.snapshot.v1
 *
 * Opening refuses, leaving store.log and store.snapshot exactly as they
 * are, whenever what they hold is not one consistent history: a missing or
 * damaged header, damage followed by sound records, a tail longer than a
 * batch, an unknown format version, a snapshot of another store or that the
 * log does not reach. `h1mock --repair-store` (store_repair.c) is the way
 * out then. What it accepts it loads, then compacts, so that each start
 * begins with a fresh snapshot and an empty log.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "safedir.h"
#include "store_int.h"

static bool exists(int dirfd, const char *name) {
  struct stat st;
  return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static uint64_t documents(const store_t *s) {
  uint64_t n = 0;
  for (const coll_t *c = s->first; c; c = c->next)
    n += c->docs.len;
  return n;
}

int store_lock_dir(const char *dir, const log_t *lg, char *err, size_t errlen) {
  int rc = safedir_mkdirs(dir, 0755, true);
  if (rc) {
    store_seterr(err, errlen, "cannot create %s: %s", dir, strerror(-rc));
    return rc;
  }
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    rc = -errno;
    store_seterr(err, errlen, "cannot open %s: %s", dir, strerror(errno));
    return rc;
  }
  /* Two writers appending to one log would interleave records. The lock is
   * on the directory, since compaction replaces the log file. */
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
    store_seterr(err, errlen, "%s is in use by another store (%s)", dir, strerror(errno));
    close(fd);
    return rc;
  }
  /* Left by a crash while a snapshot or a log was written: never in use. */
  static const char *const leftovers[] = {TMP_NAME, LOG_TMP_NAME};
  for (size_t i = 0; i < 2; i++)
    if (unlinkat(fd, leftovers[i], 0) == 0)
      log_info(lg, "store: %s: removed %s left by an interrupted compaction", dir, leftovers[i]);
  return fd;
}

/* The log in place becomes the store's: opened for appending. */
static int take_log(store_t *s, uint64_t size, char *err, size_t errlen) {
  s->logfd = openat(s->dirfd, LOG_NAME, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  if (s->logfd < 0) {
    int rc = -errno;
    store_seterr(err, errlen, "cannot open %s/%s: %s", s->dir, LOG_NAME, store_open_error(rc));
    return rc;
  }
  s->w.file_size = size;
  return 0;
}

/* A new, empty store: a log continuing sequence number 0. */
static int create(store_t *s, char *err, size_t errlen) {
  const char *step;
  bool renamed = false;
  store_random(&s->id, sizeof s->id);
  s->logfd = store_log_write(s, 0, -1, 0, 0, &step, &renamed);
  if (s->logfd < 0) {
    int rc = s->logfd;
    store_seterr(err, errlen, "cannot create %s/%s: %s %s", s->dir, LOG_NAME, step, strerror(-rc));
    return rc;
  }
  s->w.file_size = FILE_HDR;
  return 0;
}

/* Loads a format-1 store and writes it again in format 2, keeping the old
 * files as *.v1. The renames run old files first, so that a crash part way
 * leaves store.log.v1 without store.log, and the next open starts over from
 * the .v1 files (`resume`). */
static int migrate(store_t *s, bool resume, char *err, size_t errlen) {
  const char *logn = resume ? LOG_V1_NAME : LOG_NAME, *snapn = resume ? SNAP_V1_NAME : SNAP_NAME;
  store_hdr_t snap;
  store_map_t f;
  store_log_end_t end;
  if (!resume && exists(s->dirfd, LOG_V1_NAME)) {
    store_seterr(err, errlen,
                 "%s/%s is in format version 1, but %s from an earlier migration is in the way: "
                 "move it aside",
                 s->dir, LOG_NAME, LOG_V1_NAME);
    return -EEXIST;
  }
  int rc = store_read_snapshot(s, snapn, 1, &snap, err, errlen);
  bool had_snap = rc == 0;
  if (rc && rc != -ENOENT)
    return rc;
  if ((rc = store_map(s->dirfd, logn, &f))) {
    store_seterr(err, errlen, "cannot read %s/%s: %s", s->dir, logn, store_open_error(rc));
    return rc;
  }
  rc = store_read_log(s, &f, logn, 1, NULL, had_snap ? snap.base : 0, &end, err, errlen);
  store_unmap(&f);
  if (rc)
    return rc;
  if (end.torn)
    log_warn(s->log,
             "store: %s/%s: not migrating a torn record at offset %" PRIu64 " (%" PRIu64
             " bytes): a write cut short that was never acknowledged",
             s->dir, logn, end.size, end.torn);
  s->seq = end.seq;
  store_random(&s->id, sizeof s->id);
  /* The new snapshot first, under its temporary name. */
  const char *step = "creating " TMP_NAME;
  unsigned char *buf = malloc(SNAP_BUF);
  int fd = buf ? safedir_create(s->dirfd, s->dir, TMP_NAME, 0644, s->log) : -ENOMEM;
  if (fd < 0) {
    rc = fd;
    goto fail;
  }
  step = "writing " TMP_NAME;
  rc = store_snapshot_write(s, fd, s->seq, buf, SNAP_BUF);
  if (close(fd) != 0 && rc == 0)
    rc = -errno;
  if (rc)
    goto fail;
  if (!resume) {
    step = "keeping the old files as *.v1";
    if ((had_snap && renameat(s->dirfd, SNAP_NAME, s->dirfd, SNAP_V1_NAME) != 0) ||
        renameat(s->dirfd, LOG_NAME, s->dirfd, LOG_V1_NAME) != 0 || fsync(s->dirfd) != 0) {
      rc = -errno;
      goto fail;
    }
  }
  step = "renaming " TMP_NAME;
  if ((rc = store_install(s->dirfd, TMP_NAME, SNAP_NAME)))
    goto fail;
  bool renamed = false;
  s->logfd = store_log_write(s, s->seq, -1, 0, 0, &step, &renamed);
  if (s->logfd < 0) {
    rc = s->logfd;
    goto fail;
  }
  s->w.file_size = FILE_HDR;
  free(buf);
  log_info(s->log,
           "store: %s: migrated from format version 1 to 2 (%" PRIu64
           " documents, up to sequence number %" PRIu64 "); the old files are kept as %s%s",
           s->dir, documents(s), s->seq, LOG_V1_NAME, had_snap ? " and " SNAP_V1_NAME : "");
  return 0;
fail:
  free(buf);
  unlinkat(s->dirfd, TMP_NAME, 0);
  store_seterr(err, errlen, "cannot migrate %s from format version 1: %s %s", s->dir, step,
               strerror(-rc));
  return rc;
}

/* Loads a format-2 store: the snapshot (if any), then the log over it. */
static int recover(store_t *s, store_map_t *f, const store_hdr_t *lh, char *err, size_t errlen) {
  store_hdr_t sh;
  store_log_end_t end;
  int rc = store_read_snapshot(s, SNAP_NAME, FORMAT_VERSION, &sh, err, errlen);
  if (rc == -ENOENT) {
    if (lh->base != 0) {
      store_seterr(err, errlen,
                   "%s/%s at offset 0: the log continues sequence number %" PRIu64
                   " of a snapshot, and %s is missing",
                   s->dir, LOG_NAME, lh->base, SNAP_NAME);
      return -EIO;
    }
    sh.id = lh->id;
    sh.base = 0;
  } else if (rc) {
    return rc;
  }
  if (sh.id != lh->id) {
    store_seterr(err, errlen,
                 "%s/%s at offset 0: the snapshot belongs to another store than %s (store id "
                 "%016" PRIx64 ", the log's is %016" PRIx64 ")",
                 s->dir, SNAP_NAME, LOG_NAME, sh.id, lh->id);
    return -EIO;
  }
  if (lh->base > sh.base) {
    store_seterr(err, errlen,
                 "%s/%s at offset 0: the log continues sequence number %" PRIu64
                 ", but %s covers only up to %" PRIu64 " (records are missing)",
                 s->dir, LOG_NAME, lh->base, SNAP_NAME, sh.base);
    return -EIO;
  }
  s->id = lh->id;
  if ((rc = store_read_log(s, f, LOG_NAME, FORMAT_VERSION, lh, sh.base, &end, err, errlen)))
    return rc;
  s->seq = end.seq;
  if ((rc = take_log(s, end.size, err, errlen)))
    return rc;
  if (end.torn) {
    log_warn(s->log,
             "store: %s/%s: dropping a torn tail at offset %" PRIu64 " (%" PRIu64
             " bytes): a write cut short that was never acknowledged",
             s->dir, LOG_NAME, end.size, end.torn);
    if (ftruncate(s->logfd, (off_t)end.size) != 0 || fdatasync(s->logfd) != 0) {
      rc = -errno;
      store_seterr(err, errlen, "cannot truncate %s/%s: %s", s->dir, LOG_NAME, strerror(errno));
      return rc;
    }
  }
  return 0;
}

int store_open_dir(store_t *s, const char *dir, char *err, size_t errlen) {
  store_map_t f;
  store_hdr_t lh;
  char why[160];
  if ((s->dir = strdup(dir)) == NULL) {
    store_seterr(err, errlen, "out of memory");
    return -ENOMEM;
  }
  if ((s->dirfd = store_lock_dir(dir, s->log, err, errlen)) < 0) {
    int rc = s->dirfd;
    s->dirfd = -1;
    return rc;
  }
  int rc = store_map(s->dirfd, LOG_NAME, &f);
  if (rc == -ENOENT) {
    if (exists(s->dirfd, LOG_V1_NAME)) {
      rc = migrate(s, true, err, errlen);
    } else if (exists(s->dirfd, SNAP_NAME)) {
      store_seterr(err, errlen, "%s/%s is missing, but %s is there", dir, LOG_NAME, SNAP_NAME);
      return -EIO;
    } else {
      return create(s, err, errlen);
    }
  } else if (rc) {
    store_seterr(err, errlen, "cannot open %s/%s: %s", dir, LOG_NAME, store_open_error(rc));
    return rc;
  } else {
    int h = store_hdr_decode(f.m, f.size, HDR_LOG, &lh);
    /* A format-1 log is empty after its compaction, and then has no
     * snapshot or one of format 1. */
    if (h == HDR_EMPTY) {
      store_map_t sf;
      store_hdr_t sh;
      if (store_map(s->dirfd, SNAP_NAME, &sf) == 0) {
        if (store_hdr_decode(sf.m, sf.size, HDR_SNAPSHOT, &sh) == HDR_V1)
          h = HDR_V1;
        store_unmap(&sf);
      } else {
        h = HDR_V1;
      }
    }
    if (h == HDR_V1) {
      store_unmap(&f);
      rc = migrate(s, false, err, errlen);
    } else if (h != HDR_OK) {
      store_seterr(err, errlen, "%s/%s at offset 0: %s", dir, LOG_NAME,
                   store_hdr_problem(h, &lh, why, sizeof why));
      store_unmap(&f);
      return -EIO;
    } else {
      rc = recover(s, &f, &lh, err, errlen);
      store_unmap(&f);
    }
  }
  if (rc)
    return rc;
  /* A failed compaction (logged) loses nothing: the log stays whole and
   * takes further records, so the store opens anyway. */
  if (s->w.file_size > FILE_HDR)
    store_compact(s);
  return 0;
}

int store_open(const store_opts_t *o, store_t **out, char *err, size_t errlen) {
  store_crc_setup();
  int rc = 0;
  store_t *s = calloc(1, sizeof *s);
  if (s == NULL) {
    store_seterr(err, errlen, "out of memory");
    return -ENOMEM;
  }
  s->dirfd = s->logfd = -1;
  s->log = o ? o->log : NULL;
  store_random(s->key, sizeof s->key);
  s->compact_bytes = o && o->compact_bytes ? o->compact_bytes : DEFAULT_COMPACT;
  if (o && o->data_dir && (rc = store_open_dir(s, o->data_dir, err, errlen)) == 0 &&
      (rc = store_writer_start(s, o->loop)))
    store_seterr(err, errlen, "cannot start the store's writer thread: %s", strerror(-rc));
  if (rc) {
    store_close(s);
    return rc;
  }
  *out = s;
  return 0;
}

void store_close(store_t *s) {
  if (s == NULL)
    return;
  store_writer_stop(s);
  while (s->undo_head < s->undo_len) /* a failed commit left none: all durable */
    store_undo_release(s, &s->undo[s->undo_head++]);
  store_map_free(s->undo, s->undo_bytes);
  free(s->lost);
  store_drop_all(s);
  if (s->logfd >= 0)
    close(s->logfd);
  if (s->dirfd >= 0)
    close(s->dirfd);
  free(s->dir);
  free(s);
}
