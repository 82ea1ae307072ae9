/* conn.h - one HTTP/1.1 connection on a libuv TCP handle.
 *
 * A connection reads into one buffer, hands bytes to http_in, and answers
 * one request at a time in arrival order, so pipelined responses leave in
 * request order. A request whose handler is pending (a sleeping view)
 * pauses parsing; other connections keep flowing. Responses are queued in
 * one output buffer and written with uv_try_write, falling back to uv_write
 * (with reading of further requests held back) when the socket is full.
 *
 * A response with a streamed body (http_response_t.stream) goes out one
 * piece per uv_write: the next piece is asked for when the previous one is
 * written, so the event loop serves other connections between pieces and a
 * slow reader holds about two pieces in memory, not the whole body.
 */
#ifndef H1MOCK_CONN_H
#define H1MOCK_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "http.h"
#include "origin.h"

typedef struct conn conn_t;

/* What a dispatcher says of a request it was given. */
enum conn_status {
  CONN_DONE,    /* the response is ready now */
  CONN_PENDING, /* it calls done(data) once the response is ready */
};

/* How a dispatcher says that a pending response is ready. */
typedef void (*conn_done_fn)(void *data);

/* What answers requests on a listener: the provision for traffic, the
 * admin API for the admin port. It fills `resp` (and `origin`, which says
 * who answered, for the completion callback) now or, returning
 * CONN_PENDING, later; until done(data) is called, or env->abandon(
 * *pending) is, `req`, `remote`, `resp` and `origin` stay valid. `remote`
 * is the peer's address without the port. */
typedef enum conn_status (*conn_dispatch_fn)(void *ctx, const http_request_t *req,
                                             const char *remote, http_response_t *resp,
                                             origin_t *origin, conn_done_fn done, void *data,
                                             void **pending);

/* Called after each response is queued (the journal, the metrics and the
 * access log): `peer` is "address:port" ("[v6]:port"), `nanoseconds` the
 * time from the whole request to its queued response. */
typedef void (*conn_complete_fn)(void *ctx, const char *peer, const http_request_t *req,
                                 const http_response_t *resp, const origin_t *origin,
                                 uint64_t nanoseconds);

/* Shared by every connection of one listener. */
typedef struct conn_env {
  uv_loop_t *loop;
  const char *name; /* "traffic", "admin": for log lines */
  const struct log *log;
  size_t max_body;
  uint64_t header_timeout_ms;
  uint64_t idle_timeout_ms;
  uint64_t body_timeout_ms;
  size_t max_connections; /* the listener refuses more than this (it checks `count`) */
  conn_dispatch_fn dispatch;
  void (*abandon)(void *pending); /* the connection of a pending answer closed */
  conn_complete_fn complete;
  void *ctx;
  void (*drained)(void *ctx); /* after conn_drain, when the last connection closed */
  bool draining;
  size_t count;
  conn_t *head; /* every open connection */
} conn_env_t;

/* Serves the accepted socket `fd` (non-blocking) as a new connection. The
 * connection owns fd from now on, also on failure (it is closed). Returns
 * 0 or a libuv error. */
int conn_open(conn_env_t *env, int fd);

/* Applies the header, body, idle and linger timeouts; call about once a
 * second. */
void conn_sweep(conn_env_t *env);

/* Closes idle connections now and the others after their current response;
 * env->drained runs when none is left (at once if there are none). */
void conn_drain(conn_env_t *env);

/* Closes every connection now, in-flight requests included. */
void conn_close_all(conn_env_t *env);

#endif
