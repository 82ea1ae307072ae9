/* conn_work.c - the work sets a connection takes from its listener's pool
 * while it reads, parses or writes, and the sweep that frees spare ones. */
#include <assert.h>
#include <malloc.h>
#include <stdlib.h>

#include "conn_int.h"

static void work_free(struct conn_work *w) {
  http_in_free(w->in);
  buf_free(&w->rbuf);
  buf_free(&w->out);
  buf_free(&w->wbuf);
  buf_free(&w->piece);
  http_response_free(&w->resp);
  origin_free(&w->origin);
  free(w);
}

/* The connection's work set: its own, one from the pool, or a new one;
 * NULL when out of memory. */
struct conn_work *conn_work_take(conn_t *c) {
  if (c->w)
    return c->w;
  conn_env_t *env = c->env;
  struct conn_work *w = env->pool;
  if (w) {
    env->pool = w->next;
    if (--env->pooled < env->pool_low)
      env->pool_low = env->pooled;
  } else {
    w = calloc(1, sizeof *w);
    if (w == NULL || (w->in = http_in_new(env->max_body)) == NULL) {
      free(w);
      return NULL;
    }
  }
  w->next = NULL;
  c->w = w;
  env->taken++;
  return w;
}

/* Puts the connection's work set back in the pool, clean for any other
 * connection: a parser that starts afresh, no byte and no answer of this
 * one, and buffers that grew for one large request freed. A set given back
 * between requests (`idle`) was emptied and shrunk on the way already;
 * one of a closed connection may hold anything. */
void conn_work_put(conn_t *c, bool idle) {
  struct conn_work *w = c->w;
  conn_env_t *env = c->env;
  assert(w->pending == NULL && w->stream == NULL && !(c->flags & CONN_WRITING));
  c->w = NULL;
  http_in_reset(w->in);
  if (!idle) {
    w->rpos = 0;
    buf_shrink(&w->rbuf, KEEP_READ);
    buf_shrink(&w->out, KEEP_OUT);
    buf_shrink(&w->wbuf, KEEP_OUT);
    buf_shrink(&w->piece, KEEP_OUT);
    http_response_reset(&w->resp);
    w->chunked = w->last = false;
  }
  /* Who answered this connection's last request is nothing to the next. */
  origin_reset(&w->origin);
  buf_shrink(&w->origin.calls, KEEP_READ);
  assert(w->rpos == 0 && w->rbuf.len == 0 && w->out.len == 0 && w->wbuf.len == 0);
  w->next = env->pool;
  env->pool = w;
  env->pooled++;
}

/* Gives the work set back once the connection is idle: no request under
 * way, no byte left to parse, nothing queued or being written. */
void conn_work_release(conn_t *c) {
  struct conn_work *w = c->w;
  if (w && c->phase == CONN_IDLE && !(c->flags & CONN_WRITING) && w->out.len == 0 &&
      w->rpos == w->rbuf.len)
    conn_work_put(c, true);
}

/* Frees the pooled work sets that no connection took since the last
 * sweep: the fewest the pool held meanwhile were not needed. The ones
 * freed are the least recently used (the pool is a stack). */
void conn_work_trim(conn_env_t *env) {
  size_t spare = env->pool_low, keep = env->pooled - spare;
  if (spare > 0) {
    struct conn_work **link = &env->pool;
    for (size_t i = 0; i < keep; i++)
      link = &(*link)->next;
    struct conn_work *w = *link;
    *link = NULL;
    while (w) {
      struct conn_work *next = w->next;
      work_free(w);
      w = next;
    }
    env->pooled = keep;
    if (env->trim_wait == 0)
      env->trim_wait = TRIM_UNDER_LOAD;
  }
  /* Freed buffers sit in malloc's free lists, counted in the RSS, until
   * malloc gives their pages back. Giving them back while requests keep
   * coming only makes the next requests fault them in again (1 MiB uploads
   * took a tenth more CPU with a trim every sweep): that waits for a sweep
   * in which no connection took a set, the end of a burst, or for
   * TRIM_UNDER_LOAD sweeps of steady load. */
  if (env->trim_wait > 0 && (env->taken == 0 || --env->trim_wait == 0)) {
    malloc_trim(0);
    env->trim_wait = 0;
  }
  env->taken = 0;
  env->pool_low = env->pooled;
}

void conn_env_close(conn_env_t *env) {
  while (env->pool) {
    struct conn_work *w = env->pool;
    env->pool = w->next;
    work_free(w);
  }
  env->pooled = env->pool_low = 0;
}
