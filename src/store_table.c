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
#include <pthread.h>
#include <stdatomic.h>
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
  /* Atomic: the loop, the writer thread and the compactor may all get here. */
  static _Atomic uint64_t counter;
  while (got < n) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t z = (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 30 ^ (uint64_t)getpid() << 48;
    z += (atomic_fetch_add(&counter, 1) + 1) * 0x9e3779b97f4a7c15ull;
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

/* A table grows (and shrinks) without a pause: the new slot array is
 * allocated, and the old one is drained into it a few slots per add or
 * delete (MIGRATE_STEP), so no single write rehashes a million items. While
 * it drains, a lookup probes the new array, then the old one. Moving an
 * item out of the old array leaves a tombstone there (its hash, a NULL
 * item), so the old array's probe runs stay intact; the old array takes no
 * new items and is freed once drained. A growth starts at 3/4 load and
 * doubles: the drain is over after cap / MIGRATE_STEP operations, long
 * before the new array could reach 3/4 itself. */
#define MIGRATE_STEP 32

/* A large new array is made ahead, once the table is 5/8 full, and a
 * short-lived thread faults its pages in before it is needed at 3/4: the first write to a page of
 * fresh memory costs a fault and zeroing the page, 2 MiB at once for a huge page (about 5 ms on a
 * small VM), and the drain's scattered writes would pay for every page in its first steps, tens of
 * milliseconds for 32 MiB. Faulting in changes no byte, so the loop may use the array while that
 * thread still runs, or even free it (the thread then fails, or faults in whatever took the
 * addresses: harmless). */

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

/* The slot of `a` (cap > 0) holding key k, or NULL. Tombstones have a
 * NULL item and are probed past. */
static slot_t *probe(slot_t *a, size_t cap, uint32_t h, const char *k, size_t n, bool is_coll) {
  size_t mask = cap - 1;
  for (size_t i = h & mask; a[i].hash; i = (i + 1) & mask) {
    if (a[i].hash != h || a[i].item == NULL)
      continue;
    size_t kn;
    const char *kp = item_key(a[i].item, is_coll, &kn);
    if (kn == n && memcmp(kp, k, n) == 0)
      return &a[i];
  }
  return NULL;
}

slot_t *store_tab_get(const table_t *t, uint32_t h, const char *k, size_t n, bool is_coll) {
  slot_t *sl = t->cap ? probe(t->slot, t->cap, h, k, n, is_coll) : NULL;
  if (sl == NULL && t->old)
    sl = probe(t->old, t->old_cap, h, k, n, is_coll);
  return sl;
}

/* Large slot arrays come straight from mmap, aligned for transparent huge
 * pages: a lookup in a table of a million documents is a random access,
 * and with 4 KiB pages most of them also miss the TLB. mmap's pages are
 * zero already and are touched as items arrive, where calloc of a fresh
 * block would also do, but a memset of 64 MiB would stall the loop. */
static slot_t *slots_alloc(size_t cap) {
  size_t bytes = cap * sizeof(slot_t);
  if (bytes < HUGE_TABLE)
    return calloc(cap, sizeof(slot_t));
  char *p =
      mmap(NULL, bytes + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return NULL;
  size_t head = (HUGE_PAGE - (uintptr_t)p % HUGE_PAGE) % HUGE_PAGE;
  if (head)
    munmap(p, head);
  munmap(p + head + bytes, HUGE_PAGE - head);
  madvise(p + head, bytes, MADV_HUGEPAGE);
  return (slot_t *)(void *)(p + head);
}

struct range {
  void *p;
  size_t bytes;
};

static void *prefault(void *arg) {
  struct range r = *(struct range *)arg;
  free(arg);
  /* A locked add of zero faults a page in writable and cannot race with
   * the loop's writes. (MADV_POPULATE_WRITE would hold the process's mmap
   * lock for the whole range, stalling the loop's own brk and mmap.) */
  for (size_t off = 0; off < r.bytes; off += 4096)
    __atomic_fetch_add((volatile char *)r.p + off, 0, __ATOMIC_RELAXED);
  return NULL;
}

/* Allocates a large array ahead and has its pages faulted in off the loop. */
static slot_t *slots_ahead(size_t cap) {
  slot_t *a = slots_alloc(cap);
  if (a == NULL || cap * sizeof(slot_t) < HUGE_TABLE)
    return a;
  struct range *r = malloc(sizeof *r);
  if (r == NULL)
    return a; /* the drain will fault the pages in */
  *r = (struct range){a, cap * sizeof(slot_t)};
  pthread_t t;
  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
  if (pthread_create(&t, &at, prefault, r) != 0)
    free(r);
  pthread_attr_destroy(&at);
  return a;
}

static void slots_free(slot_t *a, size_t cap) {
  if (a == NULL)
    return;
  if (cap * sizeof(slot_t) < HUGE_TABLE)
    free(a);
  else
    munmap(a, cap * sizeof(slot_t));
}

static void place(slot_t *a, size_t cap, uint32_t h, void *it) {
  size_t mask = cap - 1, i = h & mask;
  while (a[i].hash)
    i = (i + 1) & mask;
  a[i].hash = h;
  a[i].item = it;
}

/* Moves up to MIGRATE_STEP slots of the old array into the new one. */
static void migrate(table_t *t) {
  size_t end = t->moved + MIGRATE_STEP < t->old_cap ? t->moved + MIGRATE_STEP : t->old_cap;
  for (size_t i = t->moved; i < end; i++) {
    if (t->old[i].hash && t->old[i].item) {
      place(t->slot, t->cap, t->old[i].hash, t->old[i].item);
      t->old[i].item = NULL;
    }
  }
  t->moved = end;
  if (t->moved == t->old_cap) {
    slots_free(t->old, t->old_cap);
    t->old = NULL;
    t->old_cap = t->moved = 0;
  }
}

/* Starts draining the slots into a new array of `cap` slots. */
static int resize(table_t *t, size_t cap) {
  slot_t *a = t->next && cap == t->cap * 2 ? t->next : slots_alloc(cap);
  if (a == NULL)
    return -ENOMEM;
  if (a == t->next)
    t->next = NULL;
  if (t->cap == 0) {
    t->slot = a;
    t->cap = cap;
    return 0;
  }
  t->old = t->slot;
  t->old_cap = t->cap;
  t->moved = 0;
  t->slot = a;
  t->cap = cap;
  migrate(t);
  return 0;
}

int store_tab_reserve(table_t *t) {
  if (t->old == NULL && t->next == NULL && t->cap * 2 * sizeof(slot_t) >= HUGE_TABLE &&
      (t->len + 1) * 8 > t->cap * 5)
    t->next = slots_ahead(t->cap * 2); /* or, out of memory, made when needed */
  if (t->old || (t->cap && (t->len + 1) * 4 <= t->cap * 3))
    return 0;
  if (t->cap > SIZE_MAX / 4 / sizeof(slot_t))
    return -ENOMEM;
  return resize(t, t->cap ? t->cap * 2 : TAB_MIN);
}

void store_tab_add(table_t *t, uint32_t h, void *it) {
  place(t->slot, t->cap, h, it);
  t->len++;
  if (t->old)
    migrate(t);
}

/* In the new array, backward-shift deletion: later items of the probe run
 * move up into the hole when their home slot allows it, so that array never
 * needs tombstones. In the old one, a tombstone: it is read-only but for
 * them, and freed when drained. */
void store_tab_del(table_t *t, slot_t *sl) {
  if ((uintptr_t)sl < (uintptr_t)t->slot || (uintptr_t)sl >= (uintptr_t)(t->slot + t->cap)) {
    sl->item = NULL;
  } else {
    size_t mask = t->cap - 1, i = (size_t)(sl - t->slot);
    for (size_t j = (i + 1) & mask; t->slot[j].hash; j = (j + 1) & mask) {
      size_t home = t->slot[j].hash & mask;
      if (((j - home) & mask) >= ((j - i) & mask)) {
        t->slot[i] = t->slot[j];
        i = j;
      }
    }
    t->slot[i].hash = 0;
    t->slot[i].item = NULL;
  }
  t->len--;
  if (t->old)
    migrate(t);
}

void store_tab_shrink(table_t *t) {
  /* A failed shrink costs nothing but the memory it would have given back. */
  if (t->old == NULL && t->cap > TAB_MIN && t->len * 8 < t->cap)
    (void)resize(t, t->cap / 2);
}

void store_tab_free(table_t *t) {
  slots_free(t->next, t->cap * 2);
  slots_free(t->slot, t->cap);
  slots_free(t->old, t->old_cap);
  memset(t, 0, sizeof *t);
}

/* ---- documents and collections ---- */

doc_t *store_doc_new(const char *id, size_t idlen, const void *val, size_t vlen) {
  doc_t *d = malloc(sizeof *d + idlen + vlen + 2);
  if (d == NULL)
    return NULL;
  d->prev = d->next = NULL;
  d->idlen = (uint16_t)idlen;
  d->gen = 0;
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
  if (store_tab_reserve(&c->docs)) {
    free(c);
    return NULL;
  }
  c->nlen = (uint16_t)n;
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

coll_t *store_coll_get(const store_t *s, const char *name, size_t n) {
  slot_t *sl = store_tab_get(&s->colls, store_hash(s, name, n), name, n, true);
  return sl ? sl->item : NULL;
}

doc_t *store_doc_get(const store_t *s, const coll_t *c, const char *id, size_t n) {
  slot_t *sl = store_tab_get(&c->docs, store_hash(s, id, n), id, n, false);
  return sl ? sl->item : NULL;
}

/* Every change to a `first` or `next` pointer goes through store_set_ptr:
 * a compactor may be reading the lists as they were (store_snapshot.c).
 * `prev` and `last` it never follows. */

void store_coll_link(store_t *s, coll_t *c, coll_t *prev) {
  store_tab_add(&s->colls, store_hash(s, c->name, c->nlen), c);
  coll_t *next = prev ? prev->next : s->first;
  c->prev = prev;
  store_set_ptr(s, c->gen, &c->next, next);
  if (next)
    next->prev = c;
  else
    s->last = c;
  if (prev)
    store_set_ptr(s, prev->gen, &prev->next, c);
  else
    store_set_ptr(s, 0, &s->first, c);
}

void store_coll_unlink(store_t *s, coll_t *c) {
  store_tab_del(&s->colls,
                store_tab_get(&s->colls, store_hash(s, c->name, c->nlen), c->name, c->nlen, true));
  if (c->prev)
    store_set_ptr(s, c->prev->gen, &c->prev->next, c->next);
  else
    store_set_ptr(s, 0, &s->first, c->next);
  if (c->next)
    c->next->prev = c->prev;
  else
    s->last = c->prev;
  c->prev = NULL;
  store_set_ptr(s, c->gen, &c->next, NULL);
}

void store_doc_link(store_t *s, coll_t *c, doc_t *d, doc_t *prev) {
  store_tab_add(&c->docs, store_hash(s, d->data, d->idlen), d);
  doc_t *next = prev ? prev->next : c->first;
  d->prev = prev;
  store_set_ptr(s, d->gen, &d->next, next);
  if (next)
    next->prev = d;
  else
    c->last = d;
  if (prev)
    store_set_ptr(s, prev->gen, &prev->next, d);
  else
    store_set_ptr(s, c->gen, &c->first, d);
}

void store_doc_unlink(store_t *s, coll_t *c, doc_t *d) {
  store_tab_del(&c->docs, store_tab_get(&c->docs, store_hash(s, d->data, d->idlen), d->data,
                                        d->idlen, false));
  if (d->prev)
    store_set_ptr(s, d->prev->gen, &d->prev->next, d->next);
  else
    store_set_ptr(s, c->gen, &c->first, d->next);
  if (d->next)
    d->next->prev = d->prev;
  else
    c->last = d->prev;
  d->prev = NULL;
  store_set_ptr(s, d->gen, &d->next, NULL);
}

void store_doc_swap(store_t *s, coll_t *c, doc_t *old, doc_t *d) {
  store_tab_get(&c->docs, store_hash(s, d->data, d->idlen), d->data, d->idlen, false)->item = d;
  d->prev = old->prev;
  store_set_ptr(s, d->gen, &d->next, old->next);
  if (d->prev)
    store_set_ptr(s, d->prev->gen, &d->prev->next, d);
  else
    store_set_ptr(s, c->gen, &c->first, d);
  if (d->next)
    d->next->prev = d;
  else
    c->last = d;
  old->prev = NULL;
  store_set_ptr(s, old->gen, &old->next, NULL);
}

void store_drop_all(store_t *s) {
  for (coll_t *c = s->first, *next; c; c = next) {
    next = c->next;
    store_coll_free(c);
  }
  s->first = s->last = NULL;
  store_tab_free(&s->colls);
}
