/* store_record.c - the on-disk format: records, file headers, and reading a
 * snapshot and a log back at open.
 *
 * Files (format version 2). Each begins with a 48-byte header:
 *   0  8 bytes  magic: "h1mock-L" (the log) or "h1mock-S" (the snapshot)
 *   8  u32 format version (2)              12 u32 header size (48)
 *   16 u64 store id: random at creation, the same in a store's log and
 *          snapshot, so that files of two stores are never mixed
 *   24 u64 base: the state as of this sequence number is in the snapshot;
 *          the log continues it (its first record is base + 1)
 *   32 u64 log: the largest batch the writer may append at once, in bytes
 *          (a torn tail is never longer); snapshot: 0
 *   40 u32 zero                            44 u32 CRC-32 of bytes 0..43
 *
 * Records follow (little-endian; the log and the snapshot share them):
 *   0  u8  magic 0xA5      1  u8  type      2  u16 collection length
 *   4  u16 id length       6  u16 zero      8  u32 value length
 *   12 u64 sequence number (log: base + 1, ...; snapshot: 0, end: its base)
 *   20 u32 CRC-32 of the payload   24 u32 CRC-32 of bytes 0..23
 *   28 payload: collection, id, value
 * Types: PUT (collection, id, value), DEL (collection, id), CLEAR
 * (collection), CLEAR_ALL, END (snapshot only, last; value = u64 document
 * count), SKIP (log only; value = u64 the sequence number before it: the
 * numbers of a batch whose commit failed are not reused, SKIP says where the
 * log goes on). Two CRCs let a reader trust a header (and so the position of
 * the next record) before it reads the payload.
 *
 * Format 1 (h1mock 0.1.0) is the same records without file headers or SKIP;
 * store.c migrates a store in it at open, reading it here.
 *
 * Reading the log (format 2). It is valid up to its last record that
 * verifies and follows the one before it. What comes after may be a torn
 * tail, a batch cut short by a crash and never acknowledged, only if it is
 * no longer than the largest batch (header) and no record in it verifies;
 * it is then dropped with one warning. Anything else is refused: a record
 * that verifies after a bad stretch means the bad stretch (zeros from a lost
 * page cache, a bad sector) held acknowledged writes.
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

/* ---- file headers ---- */

static const char *const magic[2] = {"h1mock-L", "h1mock-S"};

void store_hdr_encode(unsigned char h[FILE_HDR], int kind, const store_hdr_t *v) {
  memcpy(h, magic[kind], 8);
  store_wr_le(h + 8, FORMAT_VERSION, 4);
  store_wr_le(h + 12, FILE_HDR, 4);
  store_wr_le(h + 16, v->id, 8);
  store_wr_le(h + 24, v->base, 8);
  store_wr_le(h + 32, v->max_batch, 8);
  store_wr_le(h + 40, 0, 4);
  store_wr_le(h + 44, store_crc32(0, h, 44), 4);
}

/* A format-1 file starts with a record whose header verifies. */
static bool looks_v1(const unsigned char *m, uint64_t size) {
  return size >= REC_HDR && m[0] == REC_MAGIC && store_rd_le(m + 24, 4) == store_crc32(0, m, 24);
}

int store_hdr_decode(const unsigned char *m, uint64_t size, int kind, store_hdr_t *v) {
  if (size == 0)
    return HDR_EMPTY;
  if (looks_v1(m, size))
    return HDR_V1;
  uint64_t n = size < FILE_HDR ? size : FILE_HDR, zeros = 0;
  for (uint64_t i = 0; i < n; i++)
    zeros += m[i] == 0;
  if (zeros == n)
    return HDR_ZERO;
  if (size < FILE_HDR || memcmp(m, magic[kind], 8) != 0)
    return HDR_ALIEN;
  if (store_rd_le(m + 44, 4) != store_crc32(0, m, 44))
    return HDR_CRC;
  v->version = (uint32_t)store_rd_le(m + 8, 4);
  if (v->version != FORMAT_VERSION || store_rd_le(m + 12, 4) != FILE_HDR)
    return HDR_VERSION;
  v->id = store_rd_le(m + 16, 8);
  v->base = store_rd_le(m + 24, 8);
  v->max_batch = store_rd_le(m + 32, 8);
  return HDR_OK;
}

const char *store_hdr_problem(int rc, const store_hdr_t *v, char *buf, size_t n) {
  switch (rc) {
  case HDR_EMPTY: return "it is empty: the header is missing";
  case HDR_ZERO: return "its header reads back as zeros (lost by the disk or the host?)";
  case HDR_ALIEN: return "it does not start with an h1mock store header";
  case HDR_CRC: return "its header is damaged (checksum mismatch)";
  case HDR_VERSION:
    snprintf(buf, n,
             "it is in format version %" PRIu32 ", which this h1mock does not know (it reads "
             "version %d)",
             v->version, FORMAT_VERSION);
    return buf;
  case HDR_V1: return "it is in format version 1";
  default: return "its header is sound";
  }
}

/* ---- records ---- */

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

size_t store_rec_encode(unsigned char *out, int type, const char *coll, size_t clen,
                        const char *id, size_t idlen, const void *val, size_t vlen, uint64_t seq) {
  unsigned char *p = out + REC_HDR;
  if (clen)
    memcpy(p, coll, clen);
  if (idlen)
    memcpy(p + clen, id, idlen);
  if (vlen)
    memcpy(p + clen + idlen, val, vlen);
  store_rec_header(out, type, clen, idlen, vlen, seq,
                   store_crc32(0, out + REC_HDR, clen + idlen + vlen));
  return REC_HDR + clen + idlen + vlen;
}

/* Checks the record at `off`. P_TORN_HDR: fewer than REC_HDR bytes, or a
 * header that fails its magic or CRC. P_PAST_EOF / P_BAD_PAYLOAD: the header
 * is sound (r->size is set) but the payload runs past the end or fails its
 * CRC. P_INVALID: both CRCs pass but the fields make no sense. */
size_t store_rec_size(const unsigned char *h) {
  return REC_HDR + store_rd_le(h + 2, 2) + store_rd_le(h + 4, 2) + store_rd_le(h + 8, 4);
}

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
  r->size = store_rec_size(h);
  bool ok;
  switch (r->type) {
  case REC_PUT: ok = r->clen && r->idlen && r->vlen <= STORE_MAX_VALUE; break;
  case REC_DEL: ok = r->clen && r->idlen && r->vlen == 0; break;
  case REC_CLEAR: ok = r->clen && r->idlen == 0 && r->vlen == 0; break;
  case REC_CLEAR_ALL: ok = r->clen == 0 && r->idlen == 0 && r->vlen == 0; break;
  case REC_END:
  case REC_SKIP: ok = r->clen == 0 && r->idlen == 0 && r->vlen == 8; break;
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

uint64_t store_next_sound(const unsigned char *m, uint64_t size, uint64_t from) {
  rec_t r;
  for (uint64_t off = from; off + REC_HDR <= size; off++)
    if (m[off] == REC_MAGIC && store_rec_parse(m, size, off, &r) == P_OK)
      return off;
  return 0;
}

int store_map(int dirfd, const char *name, store_map_t *f) {
  struct stat st;
  memset(f, 0, sizeof *f);
  /* O_NONBLOCK: a FIFO planted under the name must not hold the start. */
  f->fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (f->fd < 0)
    return -errno;
  int rc = fstat(f->fd, &st) != 0 ? -errno : S_ISREG(st.st_mode) ? 0 : -ENODEV;
  if (rc) {
    store_unmap(f);
    return rc;
  }
  f->size = (uint64_t)st.st_size;
  if (f->size == 0)
    return 0;
  void *p = mmap(NULL, (size_t)f->size, PROT_READ, MAP_PRIVATE, f->fd, 0);
  if (p == MAP_FAILED) {
    rc = -errno;
    store_unmap(f);
    return rc;
  }
  madvise(p, (size_t)f->size, MADV_SEQUENTIAL);
  f->m = p;
  return 0;
}

void store_unmap(store_map_t *f) {
  if (f->m)
    munmap((void *)(uintptr_t)f->m, (size_t)f->size);
  if (f->fd >= 0)
    close(f->fd);
  memset(f, 0, sizeof *f);
  f->fd = -1;
}

/* Why store_map failed with rc, in words. */
const char *store_open_error(int rc) {
  return rc == -ELOOP    ? "it is a symbolic link, which the store does not follow"
         : rc == -ENODEV ? "it is not a regular file (a directory, a FIFO, a device)"
                         : strerror(-rc);
}

/* ---- reading them back ---- */

int store_read_snapshot(store_t *s, const char *name, int version, store_hdr_t *hdr, char *err,
                        size_t errlen) {
  store_map_t f;
  uint64_t off = 0, count = 0;
  bool end = false;
  char why[160];
  int rc = store_map(s->dirfd, name, &f);
  memset(hdr, 0, sizeof *hdr);
  if (rc) {
    if (rc != -ENOENT)
      store_seterr(err, errlen, "cannot open %s/%s: %s", s->dir, name, store_open_error(rc));
    return rc;
  }
  if (version == FORMAT_VERSION) {
    int h = store_hdr_decode(f.m, f.size, HDR_SNAPSHOT, hdr);
    if (h != HDR_OK) {
      rc = -EIO;
      store_seterr(err, errlen, "%s/%s at offset 0: %s", s->dir, name,
                   store_hdr_problem(h, hdr, why, sizeof why));
      goto out;
    }
    off = FILE_HDR;
  }
  /* The snapshot was fsync'd before it got its name, so unlike the log it
   * has no excuse for a torn end: any fault is damage. */
  while (off < f.size) {
    rec_t r;
    int k = store_rec_parse(f.m, f.size, off, &r);
    if (k != P_OK || end || (r.type != REC_PUT && r.type != REC_END)) {
      rc = -EIO;
      store_seterr(err, errlen, "%s/%s is damaged at offset %" PRIu64 "%s", s->dir, name, off,
                   end ? " (data after its end)" : "");
      goto out;
    }
    if (r.type == REC_END) {
      end = true;
      uint64_t said = store_rd_le((const unsigned char *)r.val, 8);
      if (said != count || (version == FORMAT_VERSION && r.seq != hdr->base)) {
        rc = -EIO;
        store_seterr(err, errlen,
                     "%s/%s is damaged at offset %" PRIu64 ": its end record says %" PRIu64
                     " documents as of sequence number %" PRIu64 ", it holds %" PRIu64
                     " and its header says %" PRIu64,
                     s->dir, name, off, said, r.seq, count, hdr->base);
        goto out;
      }
      hdr->base = r.seq;
    } else if ((rc = store_put_doc(s, r.coll, r.clen, r.id, r.idlen, r.val, r.vlen, false))) {
      store_seterr(err, errlen, "out of memory loading %s/%s", s->dir, name);
      goto out;
    } else {
      count++;
    }
    off += r.size;
  }
  if (!end) {
    rc = -EIO;
    store_seterr(err, errlen,
                 "%s/%s is damaged at offset %" PRIu64
                 ": the file ends there without its end record (truncated?)",
                 s->dir, name, f.size);
  }
out:
  store_unmap(&f);
  return rc;
}

int store_apply(store_t *s, const rec_t *r) {
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
  default: break; /* SKIP */
  }
  return rc;
}

/* Whether a record may follow `prev`: the next number, or a SKIP over the
 * numbers of a failed batch that names `prev`. Format 1 also let the first
 * record after the snapshot overlap it (a crash between its rename and the
 * log's truncation). */
static bool follows(const rec_t *r, uint64_t prev, bool first, int version) {
  if (r->type == REC_END || r->seq == 0)
    return false;
  if (version != FORMAT_VERSION)
    return first ? r->seq <= prev + 1 : r->seq == prev + 1;
  if (r->type == REC_SKIP)
    return r->seq > prev && store_rd_le((const unsigned char *)r->val, 8) == prev;
  return r->seq == prev + 1;
}

int store_read_log(store_t *s, const store_map_t *f, const char *name, int version,
                   const store_hdr_t *hdr, uint64_t snap_seq, store_log_end_t *end, char *err,
                   size_t errlen) {
  uint64_t off = version == FORMAT_VERSION ? FILE_HDR : 0;
  uint64_t prev = version == FORMAT_VERSION ? hdr->base : snap_seq;
  bool first = true;
  int rc = 0;
  memset(end, 0, sizeof *end);
  while (off < f->size) {
    rec_t r;
    int k = store_rec_parse(f->m, f->size, off, &r);
    if (k == P_OK) {
      if (!follows(&r, prev, first, version)) {
        store_seterr(err, errlen,
                     "%s/%s: the record at offset %" PRIu64 " has sequence number %" PRIu64
                     " where %" PRIu64 " was expected (missing snapshot or log records?)",
                     s->dir, name, off, r.seq, prev + 1);
        return -EIO;
      }
      if (r.seq > snap_seq && (rc = store_apply(s, &r))) {
        store_seterr(err, errlen, "out of memory replaying %s/%s", s->dir, name);
        return rc;
      }
      prev = r.seq;
      first = false;
      off += r.size;
      continue;
    }
    if (k == P_INVALID) {
      store_seterr(err, errlen,
                   "%s/%s: the record at offset %" PRIu64 " passes its checks but "
                   "makes no sense (written by another version?)",
                   s->dir, name, off);
      return -EIO;
    }
    /* What a sound header says is payload is data, not records: a value may
     * hold any bytes. */
    uint64_t sound = 0;
    if (k != P_PAST_EOF)
      sound = store_next_sound(f->m, f->size, k == P_BAD_PAYLOAD ? off + r.size : off + 1);
    if (sound) {
      store_seterr(err, errlen,
                   "%s/%s is damaged at offset %" PRIu64 " (a sound record follows at %" PRIu64
                   "); refusing to drop the writes after it",
                   s->dir, name, off, sound);
      return -EIO;
    }
    if (version == FORMAT_VERSION && f->size - off > hdr->max_batch) {
      store_seterr(err, errlen,
                   "%s/%s is damaged at offset %" PRIu64 ": the %" PRIu64
                   " bytes after its last sound record are more than the largest batch (%" PRIu64
                   " bytes), so they are not a write cut short",
                   s->dir, name, off, f->size - off, hdr->max_batch);
      return -EIO;
    }
    end->torn = f->size - off;
    break;
  }
  /* The snapshot was put in place only once everything it holds was durable
   * in the log: a log that ends before it lost records. */
  if (version == FORMAT_VERSION && hdr->base < snap_seq && prev < snap_seq) {
    store_seterr(err, errlen,
                 "%s/%s ends at sequence number %" PRIu64 " at offset %" PRIu64
                 ", before the %" PRIu64 " its snapshot covers: the snapshot does not match "
                 "its log",
                 s->dir, name, prev, off, snap_seq);
    return -EIO;
  }
  end->size = off;
  end->seq = prev > snap_seq ? prev : snap_seq;
  return 0;
}
