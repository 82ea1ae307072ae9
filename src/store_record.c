/* store_record.c - the record format, and reading the snapshot and the log
 * at open.
 *
 * Record (little-endian; the log and the snapshot share it):
 *   0  u8  magic 0xA5      1  u8  type      2  u16 collection length
 *   4  u16 id length       6  u16 zero      8  u32 value length
 *   12 u64 sequence number (log: 1, 2, ...; snapshot end: the last covered)
 *   20 u32 CRC-32 of the payload   24 u32 CRC-32 of bytes 0..23
 *   28 payload: collection, id, value
 * Types: PUT (collection, id, value), DEL (collection, id), CLEAR
 * (collection), CLEAR_ALL, END (snapshot only; value = u64 document count).
 * Two CRCs let a reader trust a header (and so the position of the next
 * record) before it reads the payload.
 *
 * Reading the log at open. A record that fails its checks is either the torn
 * tail of a write that never returned (nothing valid follows it: truncate it
 * away, warn) or damage in the middle (a valid record follows: refuse to
 * open with -EIO, since dropping it would silently drop acknowledged writes
 * after it). A header that is valid but runs past the end of the file is a
 * torn tail without looking further. One write is in flight at a time, so
 * only the last record can be torn.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "store_int.h"

/* ---- CRC-32 (IEEE 802.3, reflected, as zlib), slicing by 8 ---- */

static uint32_t crc_tab[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++)
      c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    crc_tab[0][i] = c;
  }
  for (int t = 1; t < 8; t++)
    for (int i = 0; i < 256; i++)
      crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^ crc_tab[0][crc_tab[t - 1][i] & 0xff];
}

void store_crc_setup(void) { pthread_once(&crc_once, crc_init); }

/* Chains like zlib's: store_crc32(store_crc32(0, a), b) == store_crc32(0, a b). */
uint32_t store_crc32(uint32_t crc, const void *data, size_t n) {
  const unsigned char *p = data;
  uint32_t c = ~crc;
  while (n >= 8) {
    uint32_t lo =
        c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
    c = crc_tab[7][lo & 0xff] ^ crc_tab[6][(lo >> 8) & 0xff] ^ crc_tab[5][(lo >> 16) & 0xff] ^
        crc_tab[4][lo >> 24] ^ crc_tab[3][p[4]] ^ crc_tab[2][p[5]] ^ crc_tab[1][p[6]] ^
        crc_tab[0][p[7]];
    p += 8;
    n -= 8;
  }
  while (n--)
    c = crc_tab[0][(c ^ *p++) & 0xff] ^ (c >> 8);
  return ~c;
}

/* ---- little-endian fields ---- */

uint64_t store_rd_le(const unsigned char *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

void store_wr_le(unsigned char *p, uint64_t v, int n) {
  for (int i = 0; i < n; i++, v >>= 8)
    p[i] = (unsigned char)v;
}

void store_seterr(char *err, size_t errlen, const char *fmt, ...) {
  if (err == NULL || errlen == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

void store_rec_header(unsigned char *h, int type, size_t clen, size_t idlen, size_t vlen,
                      uint64_t seq, uint32_t pcrc) {
  h[0] = REC_MAGIC;
  h[1] = (unsigned char)type;
  store_wr_le(h + 2, clen, 2);
  store_wr_le(h + 4, idlen, 2);
  store_wr_le(h + 6, 0, 2);
  store_wr_le(h + 8, vlen, 4);
  store_wr_le(h + 12, seq, 8);
  store_wr_le(h + 20, pcrc, 4);
  store_wr_le(h + 24, store_crc32(0, h, 24), 4);
}

/* Checks the record at `off`. P_TORN_HDR: fewer than REC_HDR bytes, or a
 * header that fails its magic or CRC. P_PAST_EOF / P_BAD_PAYLOAD: the header
 * is sound (r->size is set) but the payload runs past the end or fails its
 * CRC. P_INVALID: both CRCs pass but the fields make no sense. */
int store_rec_parse(const unsigned char *m, uint64_t size, uint64_t off, rec_t *r) {
  if (size - off < REC_HDR)
    return P_TORN_HDR;
  const unsigned char *h = m + off;
  if (h[0] != REC_MAGIC || store_rd_le(h + 24, 4) != store_crc32(0, h, 24))
    return P_TORN_HDR;
  r->type = h[1];
  r->clen = store_rd_le(h + 2, 2);
  r->idlen = store_rd_le(h + 4, 2);
  r->vlen = store_rd_le(h + 8, 4);
  r->seq = store_rd_le(h + 12, 8);
  r->size = REC_HDR + r->clen + r->idlen + r->vlen;
  bool ok;
  switch (r->type) {
  case REC_PUT: ok = r->clen && r->idlen && r->vlen <= STORE_MAX_VALUE; break;
  case REC_DEL: ok = r->clen && r->idlen && r->vlen == 0; break;
  case REC_CLEAR: ok = r->clen && r->idlen == 0 && r->vlen == 0; break;
  case REC_CLEAR_ALL: ok = r->clen == 0 && r->idlen == 0 && r->vlen == 0; break;
  case REC_END: ok = r->clen == 0 && r->idlen == 0 && r->vlen == 8; break;
  default: ok = false;
  }
  if (!ok || store_rd_le(h + 6, 2) != 0 || r->clen > STORE_MAX_KEY || r->idlen > STORE_MAX_KEY)
    return P_INVALID;
  if (r->size > size - off)
    return P_PAST_EOF;
  r->coll = (const char *)h + REC_HDR;
  r->id = r->coll + r->clen;
  r->val = r->id + r->idlen;
  if (store_rd_le(h + 20, 4) != store_crc32(0, r->coll, r->size - REC_HDR))
    return P_BAD_PAYLOAD;
  return P_OK;
}

/* The offset of the first sound record at or after `from`, or 0 if none. */
static uint64_t next_sound(const unsigned char *m, uint64_t size, uint64_t from) {
  rec_t r;
  for (uint64_t off = from; off + REC_HDR <= size; off++)
    if (m[off] == REC_MAGIC && store_rec_parse(m, size, off, &r) == P_OK)
      return off;
  return 0;
}

/* Maps a whole file read-only; *m is NULL for an empty file. */
int store_map_file(int fd, const unsigned char **m, uint64_t *size) {
  struct stat st;
  *m = NULL;
  if (fstat(fd, &st) != 0)
    return -errno;
  *size = (uint64_t)st.st_size;
  if (*size == 0)
    return 0;
  void *p = mmap(NULL, (size_t)*size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED)
    return -errno;
  madvise(p, (size_t)*size, MADV_SEQUENTIAL);
  *m = p;
  return 0;
}

/* Why openat(..., O_NOFOLLOW) failed with rc, in words. */
const char *store_open_error(int rc) {
  return rc == -ELOOP ? "it is a symbolic link, which the store does not follow" : strerror(-rc);
}

int store_load_snapshot(store_t *s, uint64_t *snap_seq, char *err, size_t errlen) {
  const unsigned char *m = NULL;
  uint64_t size = 0, off = 0, count = 0;
  bool end = false;
  int rc = 0;
  *snap_seq = 0;
  int fd = openat(s->dirfd, SNAP_NAME, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT)
      return 0;
    rc = -errno;
    store_seterr(err, errlen, "cannot open %s/%s: %s", s->dir, SNAP_NAME, store_open_error(rc));
    return rc;
  }
  if ((rc = store_map_file(fd, &m, &size))) {
    store_seterr(err, errlen, "cannot read %s/%s: %s", s->dir, SNAP_NAME, strerror(-rc));
    goto out;
  }
  /* The snapshot was fsync'd before it got its name, so unlike the log it
   * has no excuse for a torn end: any fault is damage. */
  while (off < size) {
    rec_t r;
    int k = store_rec_parse(m, size, off, &r);
    if (k != P_OK || end || (r.type != REC_PUT && r.type != REC_END)) {
      rc = -EIO;
      store_seterr(err, errlen, "%s/%s is damaged at offset %" PRIu64 "%s", s->dir, SNAP_NAME, off,
                   end ? " (data after its end)" : "");
      goto out;
    }
    if (r.type == REC_END) {
      end = true;
      *snap_seq = r.seq;
      if (store_rd_le((const unsigned char *)r.val, 8) != count) {
        rc = -EIO;
        store_seterr(err, errlen, "%s/%s is damaged: %" PRIu64 " documents, its end says %" PRIu64,
                     s->dir, SNAP_NAME, count, store_rd_le((const unsigned char *)r.val, 8));
        goto out;
      }
    } else if ((rc = store_put_doc(s, r.coll, r.clen, r.id, r.idlen, r.val, r.vlen, false))) {
      store_seterr(err, errlen, "out of memory loading %s/%s", s->dir, SNAP_NAME);
      goto out;
    } else {
      count++;
    }
    off += r.size;
  }
  if (!end) {
    rc = -EIO;
    store_seterr(err, errlen,
                 "%s/%s is damaged: it ends at %" PRIu64 " bytes without its end record", s->dir,
                 SNAP_NAME, size);
  }
out:
  if (m)
    munmap((void *)(uintptr_t)m, (size_t)size);
  close(fd);
  return rc;
}

static int apply(store_t *s, const rec_t *r) {
  int rc = 0;
  switch (r->type) {
  case REC_PUT:
    rc = store_put_doc(s, r->coll, r->clen, r->id, r->idlen, r->val, r->vlen, false);
    break;
  case REC_DEL:
    rc = store_delete_doc(s, r->coll, r->clen, r->id, r->idlen, false);
    rc = rc == -ENOENT ? 0 : rc; /* cannot happen after a sound history */
    break;
  case REC_CLEAR: rc = store_clear_coll(s, r->coll, r->clen, false); break;
  case REC_CLEAR_ALL: rc = store_clear_coll(s, NULL, 0, false); break;
  }
  return rc;
}

/* Replays the log over the snapshot (which covers up to snap_seq), cutting
 * a torn tail away. Sets s->log_size and s->seq. */
int store_replay_log(store_t *s, uint64_t snap_seq, char *err, size_t errlen) {
  const unsigned char *m = NULL;
  uint64_t size = 0, off = 0, prev = 0;
  bool torn = false;
  int rc = store_map_file(s->logfd, &m, &size);
  if (rc) {
    store_seterr(err, errlen, "cannot read %s/%s: %s", s->dir, LOG_NAME, strerror(-rc));
    return rc;
  }
  s->seq = snap_seq;
  while (off < size) {
    rec_t r;
    int k = store_rec_parse(m, size, off, &r);
    if (k == P_OK) {
      uint64_t want = prev ? prev + 1 : snap_seq + 1;
      if (r.type == REC_END || r.seq == 0 || (prev ? r.seq != want : r.seq > want)) {
        rc = -EIO;
        store_seterr(err, errlen,
                     "%s/%s: record at offset %" PRIu64 " has sequence number %" PRIu64
                     " where %" PRIu64 " was expected (missing snapshot or log records?)",
                     s->dir, LOG_NAME, off, r.seq, want);
        goto out;
      }
      if (r.seq > snap_seq && (rc = apply(s, &r))) {
        store_seterr(err, errlen, "out of memory replaying %s/%s", s->dir, LOG_NAME);
        goto out;
      }
      prev = r.seq;
      s->seq = r.seq > s->seq ? r.seq : s->seq;
      off += r.size;
      continue;
    }
    if (k == P_INVALID) {
      rc = -EIO;
      store_seterr(err, errlen,
                   "%s/%s: the record at offset %" PRIu64 " passes its checks but "
                   "makes no sense (written by another version?)",
                   s->dir, LOG_NAME, off);
      goto out;
    }
    uint64_t sound = 0;
    if (k != P_PAST_EOF)
      sound = next_sound(m, size, k == P_BAD_PAYLOAD ? off + r.size : off + 1);
    if (sound) {
      rc = -EIO;
      store_seterr(err, errlen,
                   "%s/%s is damaged at offset %" PRIu64 " (a sound record follows at %" PRIu64
                   "); refusing to drop the writes after it",
                   s->dir, LOG_NAME, off, sound);
      goto out;
    }
    torn = true;
    break;
  }
out:
  if (m)
    munmap((void *)(uintptr_t)m, (size_t)size);
  if (rc == 0 && torn) {
    log_warn("store: %s/%s: dropping a torn record at offset %" PRIu64 " (%" PRIu64
             " bytes): a write cut short that was never acknowledged",
             s->dir, LOG_NAME, off, size - off);
    if (ftruncate(s->logfd, (off_t)off) != 0 || fdatasync(s->logfd) != 0) {
      rc = -errno;
      store_seterr(err, errlen, "cannot truncate %s/%s: %s", s->dir, LOG_NAME, strerror(errno));
    }
  }
  s->log_size = off;
  return rc;
}
