/* store.c - collections of documents keyed by id, with an optional log.
 *
 * Memory. A document is one allocation holding its list links, the id and
 * the value (each followed by a NUL). A collection owns an open-addressing
 * hash table (linear probing, backward-shift deletion, so no tombstones)
 * from id to document, and a doubly linked list of its documents in
 * insertion order; collections themselves sit in the same kind of table and
 * list. A table slot is a 32-bit hash (0: empty) beside the pointer, so a
 * probe reads one cache line and dereferences a document only when 32 bits
 * match. Hashes are SipHash-1-3 under a random key per store, so ids chosen
 * by a client cannot pile up in one probe sequence. A lookup among a million
 * documents is then two dependent cache misses (slot, document): time per
 * get is flat in the number of probes, and grows with size only as far as
 * the memory hierarchy makes it.
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
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "safedir.h"

#define LOG_NAME "store.log"
#define SNAP_NAME "store.snapshot"
#define TMP_NAME "store.snapshot.tmp"
#define DEFAULT_COMPACT ((size_t)64 << 20)
#define SNAP_FLUSH ((size_t)1 << 20)
#define TAB_MIN 8
#define HUGE_PAGE ((size_t)2 << 20)
#define HUGE_TABLE ((size_t)4 << 20)

#define REC_MAGIC 0xA5
#define REC_HDR 28
enum { REC_PUT = 1, REC_DEL, REC_CLEAR, REC_CLEAR_ALL, REC_END };

typedef struct doc {
  struct doc *prev, *next;
  uint32_t idlen, vlen;
  char data[]; /* id, NUL, value, NUL */
} doc_t;

/* A slot keeps the hash beside the pointer so that a probe costs one cache
 * line; hash 0 marks an empty slot. cap is 0 or a power of two. */
typedef struct slot {
  uint32_t hash;
  void *item;
} slot_t;

typedef struct table {
  slot_t *slot;
  size_t cap, len;
} table_t;

typedef struct coll {
  struct coll *prev, *next; /* creation order */
  doc_t *first, *last;      /* insertion order */
  table_t docs;
  uint32_t nlen;
  char name[]; /* NUL-terminated */
} coll_t;

struct store {
  table_t colls;
  coll_t *first, *last;
  uint64_t key[2]; /* SipHash key */
  /* Persistence; dirfd and logfd are -1 for a memory-only store. */
  int dirfd, logfd;
  char *dir; /* for messages */
  const log_t *log;
  uint64_t log_size;   /* bytes of valid records in the log */
  uint64_t seq;        /* sequence number of the last record written */
  uint64_t compact_at; /* compact once log_size passes this */
  size_t compact_bytes;
  bool broken; /* the log is in an unknown state: refuse writes */
};

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

/* Chains like zlib's: crc32_le(crc32_le(0, a), b) == crc32_le(0, a b). */
static uint32_t crc32_le(uint32_t crc, const void *data, size_t n) {
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

static uint64_t rd_le(const unsigned char *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

static void wr_le(unsigned char *p, uint64_t v, int n) {
  for (int i = 0; i < n; i++, v >>= 8)
    p[i] = (unsigned char)v;
}

/* ---- SipHash-1-3 ---- */

static uint64_t rd64(const unsigned char *p) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  uint64_t v;
  memcpy(&v, p, 8); /* one load where the byte order allows */
  return v;
#else
  return rd_le(p, 8);
#endif
}

#define ROTL(x, b) (((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                  \
  do {                                                                                            \
    v0 += v1;                                                                                     \
    v1 = ROTL(v1, 13);                                                                            \
    v1 ^= v0;                                                                                     \
    v0 = ROTL(v0, 32);                                                                            \
    v2 += v3;                                                                                     \
    v3 = ROTL(v3, 16);                                                                            \
    v3 ^= v2;                                                                                     \
    v0 += v3;                                                                                     \
    v3 = ROTL(v3, 21);                                                                            \
    v3 ^= v0;                                                                                     \
    v2 += v1;                                                                                     \
    v1 = ROTL(v1, 17);                                                                            \
    v1 ^= v2;                                                                                     \
    v2 = ROTL(v2, 32);                                                                            \
  } while (0)

static uint64_t siphash13(const uint64_t key[2], const void *src, size_t len) {
  const unsigned char *p = src;
  uint64_t v0 = 0x736f6d6570736575ull ^ key[0], v1 = 0x646f72616e646f6dull ^ key[1];
  uint64_t v2 = 0x6c7967656e657261ull ^ key[0], v3 = 0x7465646279746573ull ^ key[1];
  const unsigned char *end = p + (len & ~(size_t)7);
  for (; p != end; p += 8) {
    uint64_t m = rd64(p);
    v3 ^= m;
    SIPROUND;
    v0 ^= m;
  }
  uint64_t b = (uint64_t)len << 56;
  b |= rd_le(p, (int)(len & 7));
  v3 ^= b;
  SIPROUND;
  v0 ^= b;
  v2 ^= 0xff;
  SIPROUND;
  SIPROUND;
  SIPROUND;
  return v0 ^ v1 ^ v2 ^ v3;
}

static uint32_t hash32(const store_t *s, const char *p, size_t n) {
  uint32_t h = (uint32_t)siphash13(s->key, p, n);
  return h ? h : 1;
}

/* ---- randomness ---- */

/* Fills b with random bytes: getrandom(2), else /dev/urandom, else (never
 * seen on Linux >= 3.17) a clock-and-counter mix, which is still unique. */
static void fill_random(void *b, size_t n) {
  unsigned char *p = b;
  size_t got = 0;
  while (got < n) {
    ssize_t r = getrandom(p + got, n - got, 0);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    got += (size_t)r;
  }
  if (got < n) {
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    while (fd >= 0 && got < n) {
      ssize_t r = read(fd, p + got, n - got);
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0)
        break;
      got += (size_t)r;
    }
    if (fd >= 0)
      close(fd);
  }
  static uint64_t counter;
  while (got < n) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t z = (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 30 ^ (uint64_t)getpid() << 48;
    z += ++counter * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    for (int i = 0; i < 8 && got < n; i++, z >>= 8)
      p[got++] = (unsigned char)z;
  }
}

void store_uuid(char out[37]) {
  static const char hex[] = "0123456789abcdef";
  unsigned char b[16];
  fill_random(b, sizeof b);
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* variant 10xx */
  char *o = out;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      *o++ = '-';
    *o++ = hex[b[i] >> 4];
    *o++ = hex[b[i] & 15];
  }
  *o = '\0';
}

/* ---- hash tables ---- */

static const char *item_key(const void *it, bool is_coll, size_t *n) {
  if (is_coll) {
    const coll_t *c = it;
    *n = c->nlen;
    return c->name;
  }
  const doc_t *d = it;
  *n = d->idlen;
  return d->data;
}

/* The slot holding key k, or the empty slot where it would go. cap > 0. */
static size_t tab_slot(const table_t *t, uint32_t h, const char *k, size_t n, bool is_coll) {
  size_t mask = t->cap - 1, i = h & mask;
  for (; t->slot[i].hash; i = (i + 1) & mask) {
    if (t->slot[i].hash != h)
      continue;
    size_t kn;
    const char *kp = item_key(t->slot[i].item, is_coll, &kn);
    if (kn == n && memcmp(kp, k, n) == 0)
      break;
  }
  return i;
}

static void *tab_find(const table_t *t, uint32_t h, const char *k, size_t n, bool is_coll,
                      size_t *slot) {
  if (t->cap == 0)
    return NULL;
  size_t i = tab_slot(t, h, k, n, is_coll);
  if (slot)
    *slot = i;
  return t->slot[i].item; /* NULL in an empty slot */
}

/* Large slot arrays ask for transparent huge pages: a lookup in a table of
 * a million documents is a random access, and with 4 KiB pages most of them
 * also miss the TLB. */
static slot_t *slots_alloc(size_t cap) {
  size_t bytes = cap * sizeof(slot_t);
  if (bytes < HUGE_TABLE)
    return calloc(cap, sizeof(slot_t));
  slot_t *p = aligned_alloc(HUGE_PAGE, bytes); /* bytes is a multiple of it */
  if (p == NULL)
    return NULL;
  madvise(p, bytes, MADV_HUGEPAGE);
  memset(p, 0, bytes);
  return p;
}

static int tab_resize(table_t *t, size_t cap) {
  slot_t *slot = slots_alloc(cap);
  if (slot == NULL)
    return -ENOMEM;
  size_t mask = cap - 1;
  for (size_t j = 0; j < t->cap; j++) {
    if (t->slot[j].hash == 0)
      continue;
    size_t i = t->slot[j].hash & mask;
    while (slot[i].hash)
      i = (i + 1) & mask;
    slot[i] = t->slot[j];
  }
  free(t->slot);
  t->slot = slot;
  t->cap = cap;
  return 0;
}

/* Makes room for one more item (load stays <= 3/4). Slots move when the
 * table grows, so look the key up again afterwards. 0 or -ENOMEM. */
static int tab_reserve(table_t *t) {
  if (t->cap && (t->len + 1) * 4 <= t->cap * 3)
    return 0;
  if (t->cap > SIZE_MAX / 2 / sizeof(slot_t))
    return -ENOMEM;
  return tab_resize(t, t->cap ? t->cap * 2 : TAB_MIN);
}

static void tab_insert(table_t *t, size_t slot, uint32_t h, void *it) {
  t->slot[slot].hash = h;
  t->slot[slot].item = it;
  t->len++;
}

/* Backward-shift deletion: later items of the probe run move up into the
 * hole when their home slot allows it, so lookups never need tombstones. */
static void tab_remove(table_t *t, size_t i) {
  size_t mask = t->cap - 1;
  for (size_t j = (i + 1) & mask; t->slot[j].hash; j = (j + 1) & mask) {
    size_t home = t->slot[j].hash & mask;
    if (((j - home) & mask) >= ((j - i) & mask)) {
      t->slot[i] = t->slot[j];
      i = j;
    }
  }
  t->slot[i].hash = 0;
  t->slot[i].item = NULL;
  t->len--;
  /* Give memory back after mass deletes; a failed shrink costs nothing. */
  if (t->cap > TAB_MIN && t->len * 8 < t->cap)
    (void)tab_resize(t, t->cap / 2);
}

static void tab_free(table_t *t) {
  free(t->slot);
  memset(t, 0, sizeof *t);
}

/* ---- documents and collections ---- */

static bool key_ok(const char *k, size_t n) { return k != NULL && n > 0 && n <= STORE_MAX_KEY; }

static doc_t *doc_new(const char *id, size_t idlen, const void *val, size_t vlen) {
  doc_t *d = malloc(sizeof *d + idlen + vlen + 2);
  if (d == NULL)
    return NULL;
  d->prev = d->next = NULL;
  d->idlen = (uint32_t)idlen;
  d->vlen = (uint32_t)vlen;
  memcpy(d->data, id, idlen);
  d->data[idlen] = '\0';
  if (vlen)
    memcpy(d->data + idlen + 1, val, vlen);
  d->data[idlen + 1 + vlen] = '\0';
  return d;
}

static const char *doc_val(const doc_t *d) { return d->data + d->idlen + 1; }

static coll_t *coll_new(const char *name, size_t n) {
  coll_t *c = calloc(1, sizeof *c + n + 1);
  if (c == NULL)
    return NULL;
  if (tab_resize(&c->docs, TAB_MIN)) {
    free(c);
    return NULL;
  }
  c->nlen = (uint32_t)n;
  memcpy(c->name, name, n);
  return c;
}

static void coll_free(coll_t *c) {
  for (doc_t *d = c->first, *next; d; d = next) {
    next = d->next;
    free(d);
  }
  tab_free(&c->docs);
  free(c);
}

static coll_t *coll_find(const store_t *s, const char *name, size_t n, size_t *slot) {
  return tab_find(&s->colls, hash32(s, name, n), name, n, true, slot);
}

/* Unlinks and frees a collection with all its documents. */
static void coll_drop(store_t *s, coll_t *c) {
  size_t slot = 0;
  coll_find(s, c->name, c->nlen, &slot);
  tab_remove(&s->colls, slot);
  if (c->prev)
    c->prev->next = c->next;
  else
    s->first = c->next;
  if (c->next)
    c->next->prev = c->prev;
  else
    s->last = c->prev;
  coll_free(c);
}

static void drop_all(store_t *s) {
  for (coll_t *c = s->first, *next; c; c = next) {
    next = c->next;
    coll_free(c);
  }
  s->first = s->last = NULL;
  tab_free(&s->colls);
}

/* ---- the log ---- */

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...) {
  if (err == NULL || errlen == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

static void rec_header(unsigned char *h, int type, size_t clen, size_t idlen, size_t vlen,
                       uint64_t seq, uint32_t pcrc) {
  h[0] = REC_MAGIC;
  h[1] = (unsigned char)type;
  wr_le(h + 2, clen, 2);
  wr_le(h + 4, idlen, 2);
  wr_le(h + 6, 0, 2);
  wr_le(h + 8, vlen, 4);
  wr_le(h + 12, seq, 8);
  wr_le(h + 20, pcrc, 4);
  wr_le(h + 24, crc32_le(0, h, 24), 4);
}

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

static int write_all(int fd, const void *p, size_t n) {
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

/* Appends one record and makes it durable. On failure the log is cut back
 * to its previous length, so the next append does not land after a partial
 * record (which the next open would take for damage in the middle); if even
 * that fails the store refuses writes until it is reopened. 0 or -EIO. */
static int log_append(store_t *s, int type, const char *coll, size_t clen, const char *id,
                      size_t idlen, const void *val, size_t vlen) {
  if (s->broken) {
    log_error(s->log,
              "store: %s/%s: refusing a write after an earlier log failure; restart to "
              "recover",
              s->dir, LOG_NAME);
    return -EIO;
  }
  uint32_t pcrc = crc32_le(crc32_le(crc32_le(0, coll, clen), id, idlen), val, vlen);
  unsigned char hdr[REC_HDR];
  rec_header(hdr, type, clen, idlen, vlen, s->seq + 1, pcrc);
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
  log_error(s->log, "store: %s/%s: cannot append a record at offset %" PRIu64 ": %s", s->dir,
            LOG_NAME, s->log_size, strerror(-rc));
  if (ftruncate(s->logfd, (off_t)s->log_size) != 0 || fdatasync(s->logfd) != 0) {
    s->broken = true;
    log_error(s->log,
              "store: %s/%s: cannot cut the log back to %" PRIu64 " bytes (%s); refusing "
              "writes until restart",
              s->dir, LOG_NAME, s->log_size, strerror(errno));
  }
  return -EIO;
}

/* Writes every live document to a new snapshot and empties the log (see the
 * top of the file for why each step is crash-safe). Returns 0 or a negative
 * errno, logged; the log is left as it was unless the snapshot is in place. */
static int compact(store_t *s) {
  buf_t b = BUF_INIT;
  const char *step = "creating " TMP_NAME;
  bool renamed = false;
  int rc = 0;
  /* A new file, never one reached through a link planted at its name. */
  int fd = safedir_create(s->dirfd, s->dir, TMP_NAME, 0644, s->log);
  if (fd < 0) {
    rc = fd;
    goto out;
  }
  step = "writing " TMP_NAME;
  uint64_t count = 0;
  for (const coll_t *c = s->first; c; c = c->next) {
    for (const doc_t *d = c->first; d; d = d->next) {
      unsigned char hdr[REC_HDR];
      const char *v = doc_val(d);
      uint32_t pcrc = crc32_le(0, c->name, c->nlen);
      pcrc = crc32_le(crc32_le(pcrc, d->data, d->idlen), v, d->vlen);
      rec_header(hdr, REC_PUT, c->nlen, d->idlen, d->vlen, 0, pcrc);
      if ((rc = buf_append(&b, hdr, REC_HDR)) || (rc = buf_append(&b, c->name, c->nlen)) ||
          (rc = buf_append(&b, d->data, d->idlen)) || (rc = buf_append(&b, v, d->vlen)))
        goto out;
      count++;
      if (b.len >= SNAP_FLUSH) {
        if ((rc = write_all(fd, b.data, b.len)))
          goto out;
        buf_reset(&b);
      }
    }
  }
  unsigned char end[REC_HDR + 8];
  wr_le(end + REC_HDR, count, 8);
  rec_header(end, REC_END, 0, 0, 8, s->seq, crc32_le(0, end + REC_HDR, 8));
  if ((rc = buf_append(&b, end, sizeof end)) || (rc = write_all(fd, b.data, b.len)))
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
    log_error(s->log, "store: %s: compaction failed %s: %s", s->dir, step, strerror(-rc));
  buf_free(&b);
  return rc;
}

/* Compacts when the log has grown past the threshold. The write that grew
 * it is already durable, so a failed compaction is only logged, and retried
 * after another compact_bytes rather than on every write. */
static void maybe_compact(store_t *s) {
  if (s->logfd < 0 || s->log_size <= s->compact_at)
    return;
  if (compact(s) == 0)
    s->compact_at = s->compact_bytes;
  else
    s->compact_at = s->log_size + s->compact_bytes;
}

/* ---- writes (log == false: replaying at open) ---- */

static int put_doc(store_t *s, const char *coll, size_t clen, const char *id, size_t idlen,
                   const void *val, size_t vlen, bool log) {
  int rc = -ENOMEM;
  coll_t *newc = NULL;
  doc_t *d = doc_new(id, idlen, val, vlen);
  if (d == NULL)
    goto out;
  coll_t *c = coll_find(s, coll, clen, NULL);
  if (c == NULL) {
    if (tab_reserve(&s->colls) || (newc = coll_new(coll, clen)) == NULL)
      goto out;
  }
  table_t *t = c ? &c->docs : &newc->docs;
  uint32_t h = hash32(s, id, idlen);
  size_t slot = tab_slot(t, h, id, idlen, false);
  doc_t *old = t->slot[slot].item;
  if (old == NULL) {
    if ((rc = tab_reserve(t)))
      goto out;
    slot = tab_slot(t, h, id, idlen, false);
  }
  if (log && (rc = log_append(s, REC_PUT, coll, clen, id, idlen, val, vlen)))
    goto out;

  if (newc) {
    size_t cslot = tab_slot(&s->colls, hash32(s, coll, clen), coll, clen, true);
    tab_insert(&s->colls, cslot, hash32(s, coll, clen), newc);
    newc->prev = s->last;
    if (s->last)
      s->last->next = newc;
    else
      s->first = newc;
    s->last = newc;
    c = newc;
    newc = NULL;
  }
  if (old) {
    d->prev = old->prev;
    d->next = old->next;
    if (d->prev)
      d->prev->next = d;
    else
      c->first = d;
    if (d->next)
      d->next->prev = d;
    else
      c->last = d;
    t->slot[slot].item = d;
    free(old);
  } else {
    tab_insert(t, slot, h, d);
    d->prev = c->last;
    if (c->last)
      c->last->next = d;
    else
      c->first = d;
    c->last = d;
  }
  d = NULL;
  rc = 0;
out:
  free(d);
  if (newc)
    coll_free(newc);
  return rc;
}

static int delete_doc(store_t *s, const char *coll, size_t clen, const char *id, size_t idlen,
                      bool log) {
  coll_t *c = coll_find(s, coll, clen, NULL);
  if (c == NULL)
    return -ENOENT;
  size_t slot = 0;
  doc_t *d = tab_find(&c->docs, hash32(s, id, idlen), id, idlen, false, &slot);
  if (d == NULL)
    return -ENOENT;
  int rc;
  if (log && (rc = log_append(s, REC_DEL, coll, clen, id, idlen, NULL, 0)))
    return rc;
  if (d->prev)
    d->prev->next = d->next;
  else
    c->first = d->next;
  if (d->next)
    d->next->prev = d->prev;
  else
    c->last = d->prev;
  tab_remove(&c->docs, slot);
  free(d);
  if (c->docs.len == 0)
    coll_drop(s, c);
  return 0;
}

static int clear(store_t *s, const char *coll, size_t clen, bool log) {
  int rc;
  if (coll == NULL) {
    if (s->first == NULL)
      return 0;
    if (log && (rc = log_append(s, REC_CLEAR_ALL, NULL, 0, NULL, 0, NULL, 0)))
      return rc;
    drop_all(s);
    return 0;
  }
  coll_t *c = coll_find(s, coll, clen, NULL);
  if (c == NULL)
    return 0;
  if (log && (rc = log_append(s, REC_CLEAR, coll, clen, NULL, 0, NULL, 0)))
    return rc;
  coll_drop(s, c);
  return 0;
}

int store_put(store_t *s, const char *coll, size_t clen, const char *id, size_t idlen,
              const void *val, size_t vlen) {
  if (!key_ok(coll, clen) || !key_ok(id, idlen) || vlen > STORE_MAX_VALUE ||
      (val == NULL && vlen > 0))
    return -EINVAL;
  int rc = put_doc(s, coll, clen, id, idlen, val, vlen, s->logfd >= 0);
  if (rc == 0)
    maybe_compact(s);
  return rc;
}

int store_delete(store_t *s, const char *coll, size_t clen, const char *id, size_t idlen) {
  if (!key_ok(coll, clen) || !key_ok(id, idlen))
    return -ENOENT;
  int rc = delete_doc(s, coll, clen, id, idlen, s->logfd >= 0);
  if (rc == 0)
    maybe_compact(s);
  return rc;
}

int store_clear(store_t *s, const char *coll, size_t clen) {
  if (coll != NULL && !key_ok(coll, clen))
    return -EINVAL;
  int rc = clear(s, coll, clen, s->logfd >= 0);
  if (rc == 0)
    maybe_compact(s);
  return rc;
}

/* ---- reads ---- */

int store_get(const store_t *s, const char *coll, size_t clen, const char *id, size_t idlen,
              const void **val, size_t *vlen) {
  if (!key_ok(coll, clen) || !key_ok(id, idlen))
    return -ENOENT;
  const coll_t *c = coll_find(s, coll, clen, NULL);
  if (c == NULL)
    return -ENOENT;
  const doc_t *d = tab_find(&c->docs, hash32(s, id, idlen), id, idlen, false, NULL);
  if (d == NULL)
    return -ENOENT;
  *val = doc_val(d);
  *vlen = d->vlen;
  return 0;
}

size_t store_count(const store_t *s, const char *coll, size_t clen) {
  if (!key_ok(coll, clen))
    return 0;
  const coll_t *c = coll_find(s, coll, clen, NULL);
  return c ? c->docs.len : 0;
}

int store_list(const store_t *s, const char *coll, size_t clen, size_t offset, size_t limit,
               store_each_fn fn, void *arg) {
  if (!key_ok(coll, clen))
    return 0;
  const coll_t *c = coll_find(s, coll, clen, NULL);
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
    int rc = fn(arg, d->data, d->idlen, doc_val(d), d->vlen);
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

/* ---- open: snapshot, log replay ---- */

typedef struct rec {
  int type;
  size_t clen, idlen, vlen;
  uint64_t seq, size; /* size: header and payload */
  const char *coll, *id, *val;
} rec_t;

enum { P_OK, P_TORN_HDR, P_PAST_EOF, P_BAD_PAYLOAD, P_INVALID };

/* Checks the record at `off`. P_TORN_HDR: fewer than REC_HDR bytes, or a
 * header that fails its magic or CRC. P_PAST_EOF / P_BAD_PAYLOAD: the header
 * is sound (r->size is set) but the payload runs past the end or fails its
 * CRC. P_INVALID: both CRCs pass but the fields make no sense. */
static int rec_parse(const unsigned char *m, uint64_t size, uint64_t off, rec_t *r) {
  if (size - off < REC_HDR)
    return P_TORN_HDR;
  const unsigned char *h = m + off;
  if (h[0] != REC_MAGIC || rd_le(h + 24, 4) != crc32_le(0, h, 24))
    return P_TORN_HDR;
  r->type = h[1];
  r->clen = rd_le(h + 2, 2);
  r->idlen = rd_le(h + 4, 2);
  r->vlen = rd_le(h + 8, 4);
  r->seq = rd_le(h + 12, 8);
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
  if (!ok || rd_le(h + 6, 2) != 0 || r->clen > STORE_MAX_KEY || r->idlen > STORE_MAX_KEY)
    return P_INVALID;
  if (r->size > size - off)
    return P_PAST_EOF;
  r->coll = (const char *)h + REC_HDR;
  r->id = r->coll + r->clen;
  r->val = r->id + r->idlen;
  if (rd_le(h + 20, 4) != crc32_le(0, r->coll, r->size - REC_HDR))
    return P_BAD_PAYLOAD;
  return P_OK;
}

/* The offset of the first sound record at or after `from`, or 0 if none. */
static uint64_t next_sound(const unsigned char *m, uint64_t size, uint64_t from) {
  rec_t r;
  for (uint64_t off = from; off + REC_HDR <= size; off++)
    if (m[off] == REC_MAGIC && rec_parse(m, size, off, &r) == P_OK)
      return off;
  return 0;
}

/* Maps a whole file read-only; *m is NULL for an empty file. */
static int map_file(int fd, const unsigned char **m, uint64_t *size) {
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
static const char *open_error(int rc) {
  return rc == -ELOOP ? "it is a symbolic link, which the store does not follow" : strerror(-rc);
}

static int load_snapshot(store_t *s, uint64_t *snap_seq, char *err, size_t errlen) {
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
    seterr(err, errlen, "cannot open %s/%s: %s", s->dir, SNAP_NAME, open_error(rc));
    return rc;
  }
  if ((rc = map_file(fd, &m, &size))) {
    seterr(err, errlen, "cannot read %s/%s: %s", s->dir, SNAP_NAME, strerror(-rc));
    goto out;
  }
  /* The snapshot was fsync'd before it got its name, so unlike the log it
   * has no excuse for a torn end: any fault is damage. */
  while (off < size) {
    rec_t r;
    int k = rec_parse(m, size, off, &r);
    if (k != P_OK || end || (r.type != REC_PUT && r.type != REC_END)) {
      rc = -EIO;
      seterr(err, errlen, "%s/%s is damaged at offset %" PRIu64 "%s", s->dir, SNAP_NAME, off,
             end ? " (data after its end)" : "");
      goto out;
    }
    if (r.type == REC_END) {
      end = true;
      *snap_seq = r.seq;
      if (rd_le((const unsigned char *)r.val, 8) != count) {
        rc = -EIO;
        seterr(err, errlen, "%s/%s is damaged: %" PRIu64 " documents, its end says %" PRIu64,
               s->dir, SNAP_NAME, count, rd_le((const unsigned char *)r.val, 8));
        goto out;
      }
    } else if ((rc = put_doc(s, r.coll, r.clen, r.id, r.idlen, r.val, r.vlen, false))) {
      seterr(err, errlen, "out of memory loading %s/%s", s->dir, SNAP_NAME);
      goto out;
    } else {
      count++;
    }
    off += r.size;
  }
  if (!end) {
    rc = -EIO;
    seterr(err, errlen, "%s/%s is damaged: it ends at %" PRIu64 " bytes without its end record",
           s->dir, SNAP_NAME, size);
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
  case REC_PUT: rc = put_doc(s, r->coll, r->clen, r->id, r->idlen, r->val, r->vlen, false); break;
  case REC_DEL:
    rc = delete_doc(s, r->coll, r->clen, r->id, r->idlen, false);
    rc = rc == -ENOENT ? 0 : rc; /* cannot happen after a sound history */
    break;
  case REC_CLEAR: rc = clear(s, r->coll, r->clen, false); break;
  case REC_CLEAR_ALL: rc = clear(s, NULL, 0, false); break;
  }
  return rc;
}

/* Replays the log over the snapshot (which covers up to snap_seq), cutting
 * a torn tail away. Sets s->log_size and s->seq. */
static int replay_log(store_t *s, uint64_t snap_seq, char *err, size_t errlen) {
  const unsigned char *m = NULL;
  uint64_t size = 0, off = 0, prev = 0;
  bool torn = false;
  int rc = map_file(s->logfd, &m, &size);
  if (rc) {
    seterr(err, errlen, "cannot read %s/%s: %s", s->dir, LOG_NAME, strerror(-rc));
    return rc;
  }
  s->seq = snap_seq;
  while (off < size) {
    rec_t r;
    int k = rec_parse(m, size, off, &r);
    if (k == P_OK) {
      uint64_t want = prev ? prev + 1 : snap_seq + 1;
      if (r.type == REC_END || r.seq == 0 || (prev ? r.seq != want : r.seq > want)) {
        rc = -EIO;
        seterr(err, errlen,
               "%s/%s: record at offset %" PRIu64 " has sequence number %" PRIu64 " where %" PRIu64
               " was expected (missing snapshot or log records?)",
               s->dir, LOG_NAME, off, r.seq, want);
        goto out;
      }
      if (r.seq > snap_seq && (rc = apply(s, &r))) {
        seterr(err, errlen, "out of memory replaying %s/%s", s->dir, LOG_NAME);
        goto out;
      }
      prev = r.seq;
      s->seq = r.seq > s->seq ? r.seq : s->seq;
      off += r.size;
      continue;
    }
    if (k == P_INVALID) {
      rc = -EIO;
      seterr(err, errlen,
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
      seterr(err, errlen,
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
    log_warn(s->log,
             "store: %s/%s: dropping a torn record at offset %" PRIu64 " (%" PRIu64
             " bytes): a write cut short that was never acknowledged",
             s->dir, LOG_NAME, off, size - off);
    if (ftruncate(s->logfd, (off_t)off) != 0 || fdatasync(s->logfd) != 0) {
      rc = -errno;
      seterr(err, errlen, "cannot truncate %s/%s: %s", s->dir, LOG_NAME, strerror(errno));
    }
  }
  s->log_size = off;
  return rc;
}

static int open_dir(store_t *s, const char *dir, char *err, size_t errlen) {
  int rc;
  bool created = false;
  if ((s->dir = strdup(dir)) == NULL) {
    seterr(err, errlen, "out of memory");
    return -ENOMEM;
  }
  if ((rc = safedir_mkdirs(dir, 0755, true))) {
    seterr(err, errlen, "cannot create %s: %s", dir, strerror(-rc));
    return rc;
  }
  s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (s->dirfd < 0) {
    rc = -errno;
    seterr(err, errlen, "cannot open %s: %s", dir, strerror(errno));
    return rc;
  }
  /* Records go into the log itself, never through a link put in its place. */
  s->logfd = openat(s->dirfd, LOG_NAME, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  if (s->logfd < 0 && errno == ENOENT) {
    s->logfd =
        openat(s->dirfd, LOG_NAME, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    created = true;
  }
  if (s->logfd < 0) {
    rc = -errno;
    seterr(err, errlen, "cannot open %s/%s: %s", dir, LOG_NAME, open_error(rc));
    return rc;
  }
  /* Two writers appending to one log would interleave records. */
  if (flock(s->logfd, LOCK_EX | LOCK_NB) != 0) {
    rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
    seterr(err, errlen, "%s is in use by another store (%s)", dir, strerror(errno));
    return rc;
  }
  /* A new log's name must be durable before a write is acknowledged in it. */
  if (created && fsync(s->dirfd) != 0) {
    rc = -errno;
    seterr(err, errlen, "cannot fsync %s: %s", dir, strerror(errno));
    return rc;
  }
  /* Left by a crash during compaction: the snapshot it was to become is
   * either not in place (the log still holds its writes) or was renamed. */
  if (unlinkat(s->dirfd, TMP_NAME, 0) == 0)
    log_info(s->log, "store: %s: removed %s left by an interrupted compaction", dir, TMP_NAME);
  uint64_t snap_seq;
  if ((rc = load_snapshot(s, &snap_seq, err, errlen)) ||
      (rc = replay_log(s, snap_seq, err, errlen)))
    return rc;
  /* A failed compaction (logged) loses nothing: the log stays whole and
   * takes further records, so the store opens anyway. */
  if (s->log_size > 0 && compact(s) != 0)
    s->compact_at = s->log_size + s->compact_bytes;
  return 0;
}

int store_open(const store_opts_t *o, store_t **out, char *err, size_t errlen) {
  pthread_once(&crc_once, crc_init);
  int rc;
  store_t *s = calloc(1, sizeof *s);
  if (s == NULL) {
    seterr(err, errlen, "out of memory");
    return -ENOMEM;
  }
  s->dirfd = s->logfd = -1;
  s->log = o ? o->log : NULL;
  fill_random(s->key, sizeof s->key);
  s->compact_bytes = o && o->compact_bytes ? o->compact_bytes : DEFAULT_COMPACT;
  s->compact_at = s->compact_bytes;
  if (o && o->data_dir && (rc = open_dir(s, o->data_dir, err, errlen))) {
    store_close(s);
    return rc;
  }
  *out = s;
  return 0;
}

void store_close(store_t *s) {
  if (s == NULL)
    return;
  drop_all(s);
  if (s->logfd >= 0)
    close(s->logfd);
  if (s->dirfd >= 0)
    close(s->dirfd);
  free(s->dir);
  free(s);
}
