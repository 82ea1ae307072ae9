/* store_commit.c - appending records to the log: each write is one record,
 * written with pwritev and fdatasync'd before the write returns. */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "log.h"
#include "store_int.h"

static int pwritev_all(int fd, struct iovec *iov, int cnt, uint64_t off) {
  while (cnt > 0) {
    ssize_t n = pwritev(fd, iov, cnt, (off_t)off);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    off += (uint64_t)n;
    while (cnt > 0 && (size_t)n >= iov->iov_len) {
      n -= (ssize_t)iov->iov_len;
      iov++;
      cnt--;
    }
    if (cnt > 0) {
      iov->iov_base = (char *)iov->iov_base + n;
      iov->iov_len -= (size_t)n;
    }
  }
  return 0;
}

/* Appends one record and makes it durable. On failure the log is cut back
 * to its previous length, so the next append does not land after a partial
 * record (which the next open would take for damage in the middle); if even
 * that fails the store refuses writes until it is reopened. 0 or -EIO. */
int store_log_append(store_t *s, int type, const char *coll, size_t clen, const char *id,
                     size_t idlen, const void *val, size_t vlen) {
  if (s->broken) {
    log_error("store: %s/%s: refusing a write after an earlier log failure; restart to "
              "recover",
              s->dir, LOG_NAME);
    return -EIO;
  }
  uint32_t pcrc = store_crc32(store_crc32(store_crc32(0, coll, clen), id, idlen), val, vlen);
  unsigned char hdr[REC_HDR];
  store_rec_header(hdr, type, clen, idlen, vlen, s->seq + 1, pcrc);
  struct iovec iov[4] = {{hdr, REC_HDR},
                         {(void *)(uintptr_t)coll, clen},
                         {(void *)(uintptr_t)id, idlen},
                         {(void *)(uintptr_t)val, vlen}};
  int rc = pwritev_all(s->logfd, iov, 4, s->log_size);
  if (rc == 0 && fdatasync(s->logfd) != 0)
    rc = -errno;
  if (rc == 0) {
    s->log_size += REC_HDR + clen + idlen + vlen;
    s->seq++;
    return 0;
  }
  log_error("store: %s/%s: cannot append a record at offset %" PRIu64 ": %s", s->dir, LOG_NAME,
            s->log_size, strerror(-rc));
  if (ftruncate(s->logfd, (off_t)s->log_size) != 0 || fdatasync(s->logfd) != 0) {
    s->broken = true;
    log_error("store: %s/%s: cannot cut the log back to %" PRIu64 " bytes (%s); refusing "
              "writes until restart",
              s->dir, LOG_NAME, s->log_size, strerror(errno));
  }
  return -EIO;
}
