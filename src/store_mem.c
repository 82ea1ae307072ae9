/* store_mem.c - the memory the loop fills with records and undo entries
 * while the writer catches up: anonymous mappings that grow with mremap.
 *
 * While a commit is slow (a busy disk, a compaction being installed) the
 * writes of many loop turns pile up in the writer's queue and in the undo
 * entries, megabytes of them. Grown with realloc, such a block is copied
 * into fresh memory each time it doubles, and every page of the copy is a
 * fault the loop takes at once: on a virtual machine some 10 us each, so a
 * copy of 2 MiB held the loop 5 ms. mremap moves the pages' table entries
 * instead: nothing is copied, and a new page is faulted only when a record
 * is first written to it, a few per turn. A mapping is not freed between
 * uses either (store_rbuf_trim keeps up to a bound), so a buffer that comes
 * back to the loop has its pages already.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "store_int.h"

#define FIRST_MAP ((size_t)64 << 10)

static size_t page_round(size_t n) {
  static size_t cached; /* the loop and the writer both come here */
  size_t page = __atomic_load_n(&cached, __ATOMIC_RELAXED);
  if (page == 0) {
    page = (size_t)sysconf(_SC_PAGESIZE);
    __atomic_store_n(&cached, page, __ATOMIC_RELAXED);
  }
  return (n + page - 1) / page * page;
}

void *store_map_grow(void *p, size_t *bytes, size_t need) {
  if (need <= *bytes)
    return p;
  size_t cap = *bytes ? *bytes : FIRST_MAP;
  while (cap < need) {
    if (cap > SIZE_MAX / 2)
      return NULL;
    cap *= 2;
  }
  cap = page_round(cap);
  void *q = *bytes ? mremap(p, *bytes, cap, MREMAP_MAYMOVE)
                   : mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (q == MAP_FAILED)
    return NULL;
  *bytes = cap;
  return q;
}

void store_map_free(void *p, size_t bytes) {
  if (bytes)
    munmap(p, bytes);
}

int store_rbuf_reserve(rbuf_t *b, size_t extra) {
  if (extra > SIZE_MAX / 2 - b->len)
    return -ENOMEM;
  char *p = store_map_grow(b->data, &b->cap, b->len + extra);
  if (p == NULL)
    return -ENOMEM;
  b->data = p;
  return 0;
}

int store_rbuf_append(rbuf_t *b, const void *p, size_t n) {
  int rc = store_rbuf_reserve(b, n);
  if (rc == 0) {
    memcpy(b->data + b->len, p, n);
    b->len += n;
  }
  return rc;
}

void store_rbuf_trim(rbuf_t *b, size_t keep) {
  b->len = 0;
  keep = page_round(keep);
  if (b->cap <= keep)
    return;
  if (keep == 0) {
    store_rbuf_free(b);
    return;
  }
  /* Shrinking in place cannot fail to find room; if it fails all the
   * same, the mapping stays as it was. */
  if (mremap(b->data, b->cap, keep, 0) != MAP_FAILED)
    b->cap = keep;
}

void store_rbuf_free(rbuf_t *b) {
  store_map_free(b->data, b->cap);
  *b = (rbuf_t){0};
}
