/* store_table.c - documents, collections and their hash tables, in memory.
 *
 * A document is one allocation holding its list links, the id and the value
 * (each followed by a NUL). A collection owns an open-addressing hash table
 * (linear probing, backward-shift deletion, so no tombstones) from id to
 * document, and a doubly linked list of its documents in insertion order;
 * collections themselves sit in the same kind of table and list. A table
 * slot is a 32-bit hash (0: empty) beside the pointer, so a probe reads one
 * cache line and dereferences a document only when 32 bits match. Hashes
 * are SipHash-1-3 under a random key per store, so ids chosen by a client
 * cannot pile up in one probe sequence. A lookup among a million documents
 * is then two dependent cache misses (slot, document): time per get is flat
 * in the number of probes, and grows with size only as far as the memory
 * hierarchy makes it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "store_int.h"

#define TAB_MIN 8
#define HUGE_PAGE ((size_t)2 << 20)
#define HUGE_TABLE ((size_t)4 << 20)

/* ---- SipHash-1-3 ---- */

static uint64_t rd64(const unsigned char *p) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  uint64_t v;
  memcpy(&v, p, 8); /* one load where the byte order allows */
  return v;
#else
  return store_rd_le(p, 8);
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
  b |= store_rd_le(p, (int)(len & 7));
  v3 ^= b;
  SIPROUND;
  v0 ^= b;
  v2 ^= 0xff;
  SIPROUND;
  SIPROUND;
  SIPROUND;
  return v0 ^ v1 ^ v2 ^ v3;
}

uint32_t store_hash(const store_t *s, const char *p, size_t n) {
  uint32_t h = (uint32_t)siphash13(s->key, p, n);
  return h ? h : 1;
}

/* ---- randomness ---- */

/* Fills b with random bytes: getrandom(2), else /dev/urandom, else (never
 * seen on Linux >= 3.17) a clock-and-counter mix, which is still unique. */
void store_random(void *b, size_t n) {
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
  store_random(b, sizeof b);
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
size_t store_tab_slot(const table_t *t, uint32_t h, const char *k, size_t n, bool is_coll) {
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

void *store_tab_find(const table_t *t, uint32_t h, const char *k, size_t n, bool is_coll,
                     size_t *slot) {
  if (t->cap == 0)
    return NULL;
  size_t i = store_tab_slot(t, h, k, n, is_coll);
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
int store_tab_reserve(table_t *t) {
  if (t->cap && (t->len + 1) * 4 <= t->cap * 3)
    return 0;
  if (t->cap > SIZE_MAX / 2 / sizeof(slot_t))
    return -ENOMEM;
  return tab_resize(t, t->cap ? t->cap * 2 : TAB_MIN);
}

void store_tab_insert(table_t *t, size_t slot, uint32_t h, void *it) {
  t->slot[slot].hash = h;
  t->slot[slot].item = it;
  t->len++;
}

/* Backward-shift deletion: later items of the probe run move up into the
 * hole when their home slot allows it, so lookups never need tombstones. */
void store_tab_remove(table_t *t, size_t i) {
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

void store_tab_free(table_t *t) {
  free(t->slot);
  memset(t, 0, sizeof *t);
}

/* ---- documents and collections ---- */

doc_t *store_doc_new(const char *id, size_t idlen, const void *val, size_t vlen) {
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

coll_t *store_coll_new(const char *name, size_t n) {
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

void store_coll_free(coll_t *c) {
  for (doc_t *d = c->first, *next; d; d = next) {
    next = d->next;
    free(d);
  }
  store_tab_free(&c->docs);
  free(c);
}

coll_t *store_coll_find(const store_t *s, const char *name, size_t n, size_t *slot) {
  return store_tab_find(&s->colls, store_hash(s, name, n), name, n, true, slot);
}

/* Unlinks and frees a collection with all its documents. */
void store_coll_drop(store_t *s, coll_t *c) {
  size_t slot = 0;
  store_coll_find(s, c->name, c->nlen, &slot);
  store_tab_remove(&s->colls, slot);
  if (c->prev)
    c->prev->next = c->next;
  else
    s->first = c->next;
  if (c->next)
    c->next->prev = c->prev;
  else
    s->last = c->prev;
  store_coll_free(c);
}

void store_drop_all(store_t *s) {
  for (coll_t *c = s->first, *next; c; c = next) {
    next = c->next;
    store_coll_free(c);
  }
  s->first = s->last = NULL;
  store_tab_free(&s->colls);
}
