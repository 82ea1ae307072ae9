/* conn_int.h - what the conn*.c files share; nothing outside them includes
 * this header.
 *
 * One connection is split by concern: conn.c (the phases, closing,
 * reading, writing, the request loop and the listener's side),
 * conn_work.c (the pooled work sets) and conn_answer.c (queueing an
 * answer: a response, a fault, a streamed body piece by piece).
 */
#ifndef H1MOCK_CONN_INT_H
#define H1MOCK_CONN_INT_H

#include <assert.h>
#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "conn.h"

#define READ_CHUNK (16 * 1024)
#define READ_PAUSE (256 * 1024)  /* unparsed bytes held while a request is pending */
#define WRITE_PAUSE (256 * 1024) /* queued output before parsing waits for the socket */
#define LINGER_MS 2000           /* after an error answer, how long to drain the client */
#define STREAM_PIECE (64 * 1024) /* a streamed body is asked for about this much at a time */
#define KEEP_READ (64 * 1024)    /* a read buffer larger than this is freed once empty */
#define KEEP_OUT (1 << 20)       /* an output buffer larger than this is freed once sent */
#define TRIM_UNDER_LOAD 10       /* sweeps of steady load before freed memory goes back */

/* States that overlap the phases. */
enum {
  CONN_WRITING = 1 << 0,     /* a uv_write is in flight (wreq, wbuf) */
  CONN_READ_PAUSED = 1 << 1, /* uv_read_stop: the client is held back */
  CONN_PEER_EOF = 1 << 2,    /* the client sent FIN or the read failed: no more bytes */
  CONN_STREAM_WAIT = 1 << 3, /* STREAMING: the stream said HTTP_STREAM_WAIT (a dribble's
                                timer runs); its wake() comes back */
};

/* What a connection needs only while it reads, parses or writes: taken from
 * the listener's pool when bytes arrive, given back when the answer is
 * written and nothing is left to parse (work_release). */
struct conn_work {
  struct conn_work *next; /* in the pool */
  http_in_t *in;
  buf_t rbuf; /* received bytes; rpos..len not parsed yet */
  size_t rpos;
  buf_t out;  /* responses waiting for the socket */
  buf_t wbuf; /* what uv_write is sending now */
  uv_write_t wreq;
  uv_shutdown_t sreq;
  http_response_t resp;
  origin_t origin;       /* who answered resp, for env->complete */
  http_stream_t *stream; /* the body being streamed (phase STREAMING) */
  buf_t piece;           /* the stream's latest piece, before its chunk framing */
  void *pending;         /* the dispatcher's handle of a pending answer, for env->abandon */
  uint64_t started_ns;   /* when the current request was dispatched */
  bool chunked;          /* the stream goes out in chunks (else until the close: HTTP/1.0) */
  bool last;             /* the streamed answer is the connection's last */
};

struct conn {
  uv_tcp_t tcp; /* first: the handle pointer is the conn pointer */
  conn_env_t *env;
  conn_t *prev, *next;
  struct conn_work *w; /* NULL while nothing is read, parsed or written */
  uint64_t last_ms;    /* last byte received or sent */
  uint64_t request_ms; /* first byte of the request being received, 0 when none */
  uint64_t phase_ms;   /* when the body phase or the linger began: their times run from it */
  uint8_t phase;       /* enum conn_phase */
  uint8_t flags;       /* CONN_WRITING, CONN_READ_PAUSED, CONN_PEER_EOF, CONN_STREAM_WAIT */
  uint8_t peer;        /* where "address:port" starts in names */
  char names[];        /* the peer's address (request.remote_addr), NUL, "address:port"
                          ("[v6]:port": the journal and the access log), NUL */
};

static inline void set_phase(conn_t *c, enum conn_phase to) {
  assert(conn_phase_allowed((enum conn_phase)c->phase, to));
  /* Only a streamed body waits for its producer's wake(). */
  assert(!(c->flags & CONN_STREAM_WAIT) || to == CONN_STREAMING);
  /* Only the body's and the linger's times run from the phase's start. */
  if ((to == CONN_BODY || to == CONN_LINGERING) && c->phase != to)
    c->phase_ms = uv_now(c->env->loop);
  c->phase = (uint8_t)to;
}

/* conn.c */

/* Closes the connection; with `reset`, by a TCP reset (what is unsent is
 * dropped). */
void conn_close_how(conn_t *c, bool reset);

static inline void conn_close(conn_t *c) { conn_close_how(c, false); }

/* Reads, parses and answers what the connection holds, then writes. */
void conn_process(conn_t *c);

/* conn_work.c */

/* The connection's work set: its own, one from the pool, or a new one;
 * NULL when out of memory. */
struct conn_work *conn_work_take(conn_t *c);

/* Puts the connection's work set back in the pool (`idle`: between
 * requests, already emptied). */
void conn_work_put(conn_t *c, bool idle);

/* Gives the work set back once the connection is idle. */
void conn_work_release(conn_t *c);

/* Frees the pooled work sets no connection took since the last sweep. */
void conn_work_trim(conn_env_t *env);

/* conn_answer.c */

/* Queues the answer in c->w->resp to `req` and moves the phase on. */
void conn_queue_response(conn_t *c, const http_request_t *req, bool keep);

/* Queues the next piece of the streamed body. */
void conn_stream_pump(conn_t *c);

#endif
