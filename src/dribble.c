/* dribble.c - a body sent in pieces over time (dribble.h). */
#include "dribble.h"

#include <stdlib.h>

struct dribble {
  http_stream_t base; /* first: the connection holds a pointer to it */
  uv_timer_t timer;
  buf_t body;
  size_t off;
  unsigned chunks, sent;
  uint64_t interval_ms;
  bool ready; /* the timer fired: the next piece may go */
};

static void on_timer(uv_timer_t *t) {
  struct dribble *d = t->data;
  d->ready = true;
  d->base.wake(&d->base);
}

static int next(http_stream_t *s, buf_t *out) {
  struct dribble *d = (struct dribble *)s;
  if (!d->ready) {
    /* The loop's clock stands where this turn began (maybe long ago, after
     * a slow view): each wait counts from now. */
    uv_update_time(d->timer.loop);
    uv_timer_start(&d->timer, on_timer, d->interval_ms, 0);
    return HTTP_STREAM_WAIT;
  }
  d->ready = false;
  /* Each piece takes an equal share of what is left. */
  size_t left = d->body.len - d->off;
  size_t n = left / (d->chunks - d->sent);
  if (n == 0 && left)
    n = 1;
  if (buf_append(out, d->body.data + d->off, n))
    return -1;
  d->off += n;
  d->sent++;
  return d->sent == d->chunks || d->off == d->body.len ? HTTP_STREAM_END : HTTP_STREAM_MORE;
}

static void on_closed(uv_handle_t *h) {
  struct dribble *d = h->data;
  buf_free(&d->body);
  free(d);
}

static void close_(http_stream_t *s, bool finished) {
  (void)finished;
  struct dribble *d = (struct dribble *)s;
  uv_close((uv_handle_t *)&d->timer, on_closed);
}

http_stream_t *dribble_new(uv_loop_t *loop, buf_t *body, unsigned chunks, unsigned ms) {
  struct dribble *d = calloc(1, sizeof *d);
  if (d == NULL)
    return NULL;
  if (chunks == 0)
    chunks = 1;
  d->base.next = next;
  d->base.close = close_;
  d->chunks = chunks;
  d->interval_ms = ms / chunks;
  d->body = *body;
  *body = (buf_t)BUF_INIT;
  uv_timer_init(loop, &d->timer);
  d->timer.data = d;
  return &d->base;
}
