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

typedef struct buf {
  char *data;
  size_t len;
  size_t cap;
} buf_t;

#define BUF_INIT                                                                                  \
  { NULL, 0, 0 }

/* Makes room for at least `extra` more bytes. Returns 0 or -ENOMEM (the
 * buffer is unchanged on failure). */
int buf_reserve(buf_t *b, size_t extra);

/* Appends bytes; 0 or -ENOMEM. */
int buf_append(buf_t *b, const void *p, size_t n);
int buf_puts(buf_t *b, const char *s);
int buf_putc(buf_t *b, char c);
int buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(buf_t *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* Forgets the content, keeps the allocation. */
static inline void buf_reset(buf_t *b) { b->len = 0; }

/* Drops the allocation when it is larger than `keep` bytes, so that one big
 * request does not pin memory on an idle keep-alive connection. */
void buf_shrink(buf_t *b, size_t keep);

void buf_free(buf_t *b);

#endif
