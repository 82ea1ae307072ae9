/* buf.h - a growable byte buffer.
 *
 * Used for everything the server assembles: request arenas, response heads
 * and bodies, JSON text. A buffer is reused across requests (buf_reset keeps
 * the allocation), so the hot path allocates only while a buffer is still
 * growing towards its working size.
 */
#ifndef H1MOCK_BUF_H
#define H1MOCK_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <string.h>

typedef struct buf {
  char *data;
  size_t len;
  size_t cap;
} buf_t;

#define BUF_INIT                                                                                  \
  { NULL, 0, 0 }

/* buf_reserve's slow path: reallocates. */
int buf_grow(buf_t *b, size_t extra);

/* Makes room for at least `extra` more bytes. Returns 0 or -ENOMEM (the
 * buffer is unchanged on failure). The check and the appends below are
 * inline: a response is assembled from a few dozen small appends, and
 * the room is nearly always there already. */
static inline int buf_reserve(buf_t *b, size_t extra) {
  return b->cap - b->len >= extra ? 0 : buf_grow(b, extra);
}

/* Appends bytes; 0 or -ENOMEM. */
static inline int buf_append(buf_t *b, const void *p, size_t n) {
  if (n == 0)
    return 0;
  int rc = buf_reserve(b, n);
  if (rc)
    return rc;
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

static inline int buf_puts(buf_t *b, const char *s) { return buf_append(b, s, strlen(s)); }

static inline int buf_putc(buf_t *b, char c) { return buf_append(b, &c, 1); }

int buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(buf_t *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* Forgets the content, keeps the allocation. */
static inline void buf_reset(buf_t *b) { b->len = 0; }

/* Frees the allocation and forgets the content. */
void buf_free(buf_t *b);

/* Forgets the content and drops the allocation when it is larger than
 * `keep` bytes, so that one big request does not pin memory on an idle
 * keep-alive connection. Inline: the hot path calls it for every request
 * and buffer, and nearly always has nothing to free. */
static inline void buf_shrink(buf_t *b, size_t keep) {
  if (b->cap > keep)
    buf_free(b);
  b->len = 0;
}

#endif
