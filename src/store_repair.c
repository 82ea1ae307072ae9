/* store_repair.c - `h1mock --repair-store DIR`: what to do when a data
 * directory refuses to start.
 *
 * The damaged files are copied aside first (store.log.damaged-<time>,
 * store.snapshot.damaged-<time>), so nothing is lost whatever follows.
 * Then every record that verifies is kept: the snapshot's documents, and
 * the log's records after the sequence number the snapshot covers (from
 * its header or its end record; all of them when neither verifies), in
 * file order. Between sound records, damaged bytes are skipped a byte at a
 * time until the next record whose header and payload both verify, as
 * open's check does. The result is written as a fresh store: a snapshot
 * under a new store id with an empty log, both continuing sequence number
 * 0. Either file may be of format 1 or 2. A repair cut short leaves the
 * copies and, at worst, files that refuse to start again: run it again.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "safedir.h"
#include "store_int.h"

/* Copies `name` to `copy` in dirfd and fsyncs the copy. */
static int copy_aside(int dirfd, const char *dir, const char *name, const char *copy) {
  int in = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), out = -1, rc = 0;
  char buf[1 << 16];
  if (in < 0)
    return -errno;
  if ((out = safedir_create(dirfd, dir, copy, 0644, NULL)) < 0) {
    rc = out;
    goto out;
  }
  for (;;) {
    ssize_t n = read(in, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      rc = -errno;
      break;
    }
    if (n == 0 || (rc = store_write_all(out, buf, (size_t)n, -1)))
      break;
  }
  if (rc == 0 && fsync(out) != 0)
    rc = -errno;
out:
  if (out >= 0)
    close(out);
  close(in);
  return rc;
}

/* Keeps the sound records of one file: PUTs of a snapshot, or the
 * changes of a log after `after`. Notes what it kept and skipped. */
static int salvage(store_t *s, const store_map_t *f, bool snapshot, uint64_t after,
                   store_repair_t *r) {
  uint64_t off = 0;
  store_hdr_t h;
  if (store_hdr_decode(f->m, f->size, snapshot ? HDR_SNAPSHOT : HDR_LOG, &h) == HDR_OK)
    off = FILE_HDR;
  while (off < f->size) {
    rec_t rec;
    int k = store_rec_parse(f->m, f->size, off, &rec);
    if (k == P_OK) {
      if (snapshot ? rec.type == REC_PUT : rec.seq > after && rec.type != REC_END) {
        int rc = store_apply(s, &rec);
        if (rc)
          return rc;
        r->kept++;
      }
      off += rec.size;
      continue;
    }
    uint64_t next = store_next_sound(f->m, f->size, off + 1);
    if (next == 0)
      next = f->size;
    r->dropped_bytes += next - off;
    r->regions++;
    off = next;
  }
  return 0;
}

/* The sequence number a snapshot covers: its header's, else its end
 * record's, else 0 (then every log record is applied). */
static uint64_t snapshot_seq(const store_map_t *f) {
  store_hdr_t h;
  if (store_hdr_decode(f->m, f->size, HDR_SNAPSHOT, &h) == HDR_OK)
    return h.base;
  uint64_t seq = 0, off = 0;
  while (off < f->size) {
    rec_t rec;
    if (store_rec_parse(f->m, f->size, off, &rec) == P_OK) {
      if (rec.type == REC_END)
        seq = rec.seq;
      off += rec.size;
    } else if ((off = store_next_sound(f->m, f->size, off + 1)) == 0) {
      break;
    }
  }
  return seq;
}

int store_repair(const char *dir, store_repair_t *r, char *err, size_t errlen) {
  store_t *s = NULL;
  store_map_t snap = {.fd = -1}, log = {.fd = -1};
  int rc;
  memset(r, 0, sizeof *r);
  store_crc_setup();
  if ((s = calloc(1, sizeof *s)) == NULL || (s->dir = strdup(dir)) == NULL) {
    store_seterr(err, errlen, "out of memory");
    rc = -ENOMEM;
    goto out;
  }
  s->logfd = s->dirfd = -1;
  store_random(s->key, sizeof s->key);
  struct stat st;
  rc = stat(dir, &st) != 0 ? -errno : S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
  if (rc) { /* not made, as a store's would be */
    store_seterr(err, errlen, "%s: %s: nothing to repair", dir, strerror(-rc));
    goto out;
  }
  if ((s->dirfd = store_lock_dir(dir, s->log, err, errlen)) < 0) {
    rc = s->dirfd;
    goto out;
  }
  int hs = store_map(s->dirfd, SNAP_NAME, &snap), hl = store_map(s->dirfd, LOG_NAME, &log);
  if ((hs && hs != -ENOENT) || (hl && hl != -ENOENT) || (hs && hl)) {
    rc = hs && hs != -ENOENT ? hs : hl && hl != -ENOENT ? hl : -ENOENT;
    store_seterr(err, errlen, "%s: %s", dir,
                 rc == -ENOENT ? "neither store.log nor store.snapshot is there: nothing to repair"
                               : store_open_error(rc));
    goto out;
  }
  /* First of all, the files as they are, aside. */
  char stamp[32];
  time_t now = time(NULL);
  struct tm tm;
  strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", gmtime_r(&now, &tm));
  const char *names[2] = {LOG_NAME, SNAP_NAME};
  bool there[2] = {hl == 0, hs == 0};
  for (int i = 0; i < 2; i++) {
    if (!there[i])
      continue;
    snprintf(r->saved[i], sizeof r->saved[i], "%s.damaged-%s", names[i], stamp);
    if ((rc = copy_aside(s->dirfd, dir, names[i], r->saved[i]))) {
      store_seterr(err, errlen, "cannot copy %s/%s aside: %s", dir, names[i], strerror(-rc));
      goto out;
    }
  }
  if (fsync(s->dirfd) != 0) {
    rc = -errno;
    store_seterr(err, errlen, "cannot fsync %s: %s", dir, strerror(errno));
    goto out;
  }
  uint64_t after = 0;
  if (hs == 0) {
    after = snapshot_seq(&snap);
    if ((rc = salvage(s, &snap, true, 0, r)))
      goto nomem;
  }
  if (hl == 0 && (rc = salvage(s, &log, false, after, r)))
    goto nomem;
  for (const coll_t *c = s->first; c; c = c->next)
    r->documents += c->docs.len;
  /* A fresh store: new id, sequence numbers from 0. */
  store_random(&s->id, sizeof s->id);
  s->seq = 0;
  unsigned char *buf = malloc(SNAP_BUF);
  int fd = buf ? safedir_create(s->dirfd, dir, TMP_NAME, 0644, s->log) : -ENOMEM;
  const char *step = "writing " TMP_NAME;
  if (fd >= 0) {
    rc = store_snapshot_write(s, fd, 0, buf, SNAP_BUF);
    if (close(fd) != 0 && rc == 0)
      rc = -errno;
  } else {
    rc = fd;
  }
  free(buf);
  bool renamed = false;
  if (rc == 0 && (rc = store_install(s->dirfd, TMP_NAME, SNAP_NAME)) != 0)
    step = "renaming " TMP_NAME;
  if (rc == 0 && (s->logfd = store_log_write(s, 0, -1, 0, 0, &step, &renamed)) < 0)
    rc = s->logfd;
  if (rc) {
    unlinkat(s->dirfd, TMP_NAME, 0);
    store_seterr(err, errlen, "cannot write the repaired store in %s: %s %s", dir, step,
                 strerror(-rc));
  }
  goto out;
nomem:
  store_seterr(err, errlen, "out of memory while reading %s", dir);
out:
  store_unmap(&snap);
  store_unmap(&log);
  store_close(s); /* a store without a writer: frees, closes */
  return rc;
}
