/* conn.h - one HTTP/1.1 connection on a libuv TCP handle.
 *
 * A connection reads into one buffer, hands bytes to http_in, and answers
 * one request at a time in arrival order, so pipelined responses leave in
 * request order. A request whose handler is pending (a sleeping view)
 * pauses parsing; other connections keep flowing. Responses are queued in
 * one output buffer and written with uv_try_write, falling back to uv_write
 * (with reading of further requests held back) when the socket is full.
 *
 * The read buffer, the parser, the response and the output buffers form a
 * work set that a connection takes from its listener's pool when bytes
 * arrive and gives back once its answer is written and nothing is left to
 * parse: an idle keep-alive connection holds its handle, its phase and its
 * times, a few hundred bytes. Sets left unused for a sweep are freed, so
 * memory taken for a burst or a large request goes back.
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
struct conn_work;

/* Where a connection stands. Each change is checked against
 * conn_phase_allowed by assert(). What overlaps with these (a write in
 * flight, reading paused, the client's end of input, a streamed body such
 * as a dribble waiting for its timer) are flags. A fault() answer is a
 * last write; "reset" closes from there. The work set stays with the
 * connection from its request's first byte until it is idle again, so a
 * pending answer (a view waiting on http.request or sleep) and a stream
 * (a dribble's timer) always write into the connection's own set; closing
 * abandons the one and closes the other before the set goes back. */
enum conn_phase {
  CONN_IDLE,       /* between requests: no request byte held */
  CONN_HEAD,       /* part of a request head has arrived */
  CONN_BODY,       /* the head is whole, its body is arriving */
  CONN_DISPATCHED, /* a whole request is with the dispatcher (maybe pending) */
  CONN_STREAMING,  /* a streamed body is being sent */
  CONN_LAST_WRITE, /* the last answer is queued: close once it is written */
  CONN_LINGERING,  /* FIN sent; reading and dropping what the client still sends */
  CONN_CLOSED,     /* uv_close called; freed in its callback */
};

/* True when a connection may go from `from` to `to` (staying is allowed
 * where a phase repeats: idle, head, body). */
bool conn_phase_allowed(enum conn_phase from, enum conn_phase to);

/* "idle", "head", ...: for assertions and log lines. */
const char *conn_phase_name(enum conn_phase phase);

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
  /* Work sets not in use (conn.c's own), how many, and the fewest there
   * were since the last sweep: those were not needed and are freed. */
  struct conn_work *pool;
  size_t pooled;
  size_t pool_low;
  size_t taken;       /* sets connections took since the last sweep */
  unsigned trim_wait; /* sets were freed: sweeps left before their memory goes
                         back to the system under load; 0 when none wait */
} conn_env_t;

/* Serves the accepted socket `fd` (non-blocking) as a new connection. The
 * connection owns fd from now on, also on failure (it is closed). Returns
 * 0 or a libuv error. */
int conn_open(conn_env_t *env, int fd);

/* Applies the header, body, idle and linger timeouts, and frees the work
 * sets the pool did not need since the previous sweep; then asks malloc to
 * return free pages to the system, once no set was taken for a sweep (or
 * after ten sweeps of steady load); call about once a second. */
void conn_sweep(conn_env_t *env);

/* Frees the pooled work sets; call when no connection is left (after the
 * loop ran the close callbacks). */
void conn_env_close(conn_env_t *env);

/* Closes idle connections now and the others after their current response;
 * env->drained runs when none is left (at once if there are none). */
void conn_drain(conn_env_t *env);

/* Closes every connection now, in-flight requests included. */
void conn_close_all(conn_env_t *env);

#endif
