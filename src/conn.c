/* conn.c - reading, parsing, answering and writing on one connection. */
#include "conn.h"

#include <assert.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dribble.h"
#include "log.h"
#include "text.h"

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

/* ------------------------------------------------------------------ phases */

#define TO(p) (1u << (p))

/* The phases each phase may go to. Closing is allowed from everywhere but
 * closed; a connection stays idle, in its head or its body while bytes
 * trickle in. */
static const uint16_t next_phases[] = {
    [CONN_IDLE] = TO(CONN_IDLE) | TO(CONN_HEAD) | TO(CONN_BODY) | TO(CONN_DISPATCHED) |
                  TO(CONN_LAST_WRITE) | TO(CONN_CLOSED),
    [CONN_HEAD] = TO(CONN_HEAD) | TO(CONN_BODY) | TO(CONN_DISPATCHED) | TO(CONN_LAST_WRITE) |
                  TO(CONN_CLOSED),
    [CONN_BODY] = TO(CONN_BODY) | TO(CONN_DISPATCHED) | TO(CONN_LAST_WRITE) | TO(CONN_CLOSED),
    [CONN_DISPATCHED] = TO(CONN_IDLE) | TO(CONN_STREAMING) | TO(CONN_LAST_WRITE) | TO(CONN_CLOSED),
    [CONN_STREAMING] = TO(CONN_IDLE) | TO(CONN_LAST_WRITE) | TO(CONN_CLOSED),
    [CONN_LAST_WRITE] = TO(CONN_LINGERING) | TO(CONN_CLOSED),
    [CONN_LINGERING] = TO(CONN_CLOSED),
    [CONN_CLOSED] = 0,
};

bool conn_phase_allowed(enum conn_phase from, enum conn_phase to) {
  return (unsigned)from <= CONN_CLOSED && (unsigned)to <= CONN_CLOSED &&
         (next_phases[from] & TO(to)) != 0;
}

const char *conn_phase_name(enum conn_phase phase) {
  static const char *const names[] = {
      [CONN_IDLE] = "idle",           [CONN_HEAD] = "head",
      [CONN_BODY] = "body",           [CONN_DISPATCHED] = "dispatched",
      [CONN_STREAMING] = "streaming", [CONN_LAST_WRITE] = "last-write",
      [CONN_LINGERING] = "lingering", [CONN_CLOSED] = "closed",
  };
  return (unsigned)phase <= CONN_CLOSED ? names[phase] : "?";
}

static inline void set_phase(conn_t *c, enum conn_phase to) {
  assert(next_phases[c->phase] & TO(to));
  /* Only a streamed body waits for its producer's wake(). */
  assert(!(c->flags & CONN_STREAM_WAIT) || to == CONN_STREAMING);
  /* Only the body's and the linger's times run from the phase's start. */
  if ((to == CONN_BODY || to == CONN_LINGERING) && c->phase != to)
    c->phase_ms = uv_now(c->env->loop);
  c->phase = (uint8_t)to;
}

/* Reading requests: not answering one, not done with the connection. */
static bool takes_requests(const conn_t *c) { return c->phase <= CONN_BODY; }

static const char *remote_of(const conn_t *c) { return c->names; }

static const char *peer_of(const conn_t *c) { return c->names + c->peer; }

/* ------------------------------------------------------------------ work sets */

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
static struct conn_work *work_take(conn_t *c) {
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
static void work_put(conn_t *c, bool idle) {
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
static void work_release(conn_t *c) {
  struct conn_work *w = c->w;
  if (w && c->phase == CONN_IDLE && !(c->flags & CONN_WRITING) && w->out.len == 0 &&
      w->rpos == w->rbuf.len)
    work_put(c, true);
}

/* ------------------------------------------------------------------ closing */

static void conn_process(conn_t *c);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);

static void on_close(uv_handle_t *h) {
  conn_t *c = (conn_t *)h;
  conn_env_t *env = c->env;
  if (c->prev)
    c->prev->next = c->next;
  else
    env->head = c->next;
  if (c->next)
    c->next->prev = c->prev;
  if (c->w)
    work_put(c, false);
  free(c);
  if (--env->count == 0 && env->draining && env->drained)
    env->drained(env->ctx);
}

/* Closes the connection; with `reset`, by a TCP reset (what is unsent is
 * dropped). A pending answer is abandoned and a stream closed (a dribble
 * stops its timer) here, before the work set can go back to the pool in
 * on_close: nothing may write into it afterwards. */
static void conn_close_how(conn_t *c, bool reset) {
  if (c->phase == CONN_CLOSED)
    return;
  struct conn_work *w = c->w;
  if (w) {
    if (c->phase == CONN_DISPATCHED && w->pending)
      c->env->abandon(w->pending); /* its response has nowhere to go */
    w->pending = NULL;
    if (w->stream) {
      w->stream->close(w->stream, false); /* the client went away mid-body */
      w->stream = NULL;
    }
  }
  c->flags &= (uint8_t)~CONN_STREAM_WAIT;
  set_phase(c, CONN_CLOSED);
  if (!reset || uv_tcp_close_reset(&c->tcp, on_close) != 0)
    uv_close((uv_handle_t *)&c->tcp, on_close);
}

static void conn_close(conn_t *c) { conn_close_how(c, false); }

static void on_shutdown(uv_shutdown_t *req, int status) {
  conn_t *c = req->data;
  if (status < 0 || (c->flags & CONN_PEER_EOF))
    conn_close(c);
}

/* Everything is written and the connection is done: send FIN and keep
 * reading (discarding) for a moment, so a client still sending a body it
 * was refused (413) reads the answer instead of a reset. */
static void finish_close(conn_t *c) {
  set_phase(c, CONN_LINGERING);
  c->w->sreq.data = c;
  if (uv_shutdown(&c->w->sreq, (uv_stream_t *)&c->tcp, on_shutdown) < 0)
    conn_close(c);
}

/* ------------------------------------------------------------------ writing */

static void flush(conn_t *c);

static void on_write(uv_write_t *req, int status) {
  conn_t *c = req->data;
  struct conn_work *w = c->w;
  c->flags &= (uint8_t)~CONN_WRITING;
  buf_reset(&w->wbuf);
  buf_shrink(&w->wbuf, KEEP_OUT);
  if (status < 0) {
    conn_close(c);
    return;
  }
  if (c->phase == CONN_CLOSED)
    return;
  c->last_ms = uv_now(c->env->loop);
  flush(c);
  conn_process(c);
}

static void flush(conn_t *c) {
  struct conn_work *w = c->w;
  if (w == NULL || c->phase == CONN_CLOSED || (c->flags & CONN_WRITING))
    return;
  if (w->out.len > 0) {
    uv_buf_t b = uv_buf_init(w->out.data, (unsigned)w->out.len);
    size_t sent = 0;
    /* While a body streams, every piece goes through uv_write, whose
     * completion comes in a later loop iteration and asks for the next
     * piece: other connections get their turn in between. */
    if (c->phase != CONN_STREAMING) {
      int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
      if (n < 0 && n != UV_EAGAIN) {
        conn_close(c);
        return;
      }
      sent = n > 0 ? (size_t)n : 0;
    }
    if (sent < w->out.len) {
      /* The socket is full: hand the rest to uv_write and take a fresh
       * buffer for the responses that come meanwhile. */
      buf_reset(&w->wbuf);
      if (buf_append(&w->wbuf, w->out.data + sent, w->out.len - sent)) {
        conn_close(c); /* a truncated response would lie about its length */
        return;
      }
      buf_reset(&w->out);
      b = uv_buf_init(w->wbuf.data, (unsigned)w->wbuf.len);
      w->wreq.data = c;
      if (uv_write(&w->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write) < 0) {
        conn_close(c);
        return;
      }
      c->flags |= CONN_WRITING;
      return;
    }
    buf_reset(&w->out);
    buf_shrink(&w->out, KEEP_OUT);
    c->last_ms = uv_now(c->env->loop);
  }
  if (c->phase == CONN_LAST_WRITE)
    finish_close(c);
}

/* ------------------------------------------------------------------ reading */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
  (void)suggested;
  conn_t *c = (conn_t *)h;
  struct conn_work *w = work_take(c);
  if (w == NULL) {
    *b = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
    return;
  }
  if (c->phase == CONN_LINGERING) {
    /* Draining a refused upload: reuse the space, keep nothing. */
    w->rbuf.len = 0;
    w->rpos = 0;
  }
  if (buf_reserve(&w->rbuf, READ_CHUNK)) {
    *b = uv_buf_init(NULL, 0);
    return;
  }
  *b = uv_buf_init(w->rbuf.data + w->rbuf.len, (unsigned)(w->rbuf.cap - w->rbuf.len));
}

static void read_pause(conn_t *c, bool pause) {
  if (pause == ((c->flags & CONN_READ_PAUSED) != 0) || c->phase == CONN_CLOSED)
    return;
  if (pause) {
    c->flags |= CONN_READ_PAUSED;
    uv_read_stop((uv_stream_t *)&c->tcp);
  } else {
    c->flags &= (uint8_t)~CONN_READ_PAUSED;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  }
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)b;
  conn_t *c = (conn_t *)s;
  if (n == 0) {
    work_release(c); /* nothing came after all (EAGAIN) */
    return;
  }
  if (n < 0) {
    /* The client finished sending: answer every complete request it sent
     * (conn_process closes once none is left), or close on an error. */
    c->flags |= CONN_PEER_EOF;
    read_pause(c, true);
    if (c->phase == CONN_LINGERING || n != UV_EOF)
      conn_close(c);
    else if (c->phase != CONN_DISPATCHED)
      conn_process(c);
    return;
  }
  c->last_ms = uv_now(c->env->loop);
  if (c->phase == CONN_LINGERING)
    return;
  struct conn_work *w = c->w;
  w->rbuf.len += (size_t)n;
  if (c->request_ms == 0)
    c->request_ms = c->last_ms;
  if (!takes_requests(c) || (c->flags & CONN_WRITING)) {
    /* Not parsing now: hold the client back rather than buffer without end. */
    if (w->rbuf.len - w->rpos > READ_PAUSE)
      read_pause(c, true);
    return;
  }
  conn_process(c);
}

/* ------------------------------------------------------------------ answering */

/* A dribble's timer fired: its next piece is ready. */
static void stream_wake(http_stream_t *s) {
  conn_t *c = s->waker;
  assert(c->phase == CONN_STREAMING && (c->flags & CONN_STREAM_WAIT));
  c->flags &= (uint8_t)~CONN_STREAM_WAIT;
  conn_process(c);
}

/* Bytes that are not HTTP, for fault("random"): never starting like a
 * status line, different on each call. */
static int append_garbage(buf_t *out) {
  uint64_t x = uv_hrtime() | 1;
  size_t n = 64 + (size_t)(x % 448);
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
    char ch = (char)(x >> 24);
    if (buf_putc(out, i == 0 && (ch == 'H' || ch == 'h') ? '\x01' : ch))
      return -1;
  }
  return 0;
}

/* What fault() asked for instead of the answer: the connection's last
 * write (a reset closes it from there once the journal has the request,
 * complete_request). The status is 0 when no status line goes out (the
 * journal shows that). */
static void queue_fault(conn_t *c, const http_request_t *req) {
  static http_stream_t no_body; /* only makes the head say chunked */
  struct conn_work *w = c->w;
  bool http10 = req->http_major == 1 && req->http_minor == 0;
  int rc = 0;
  switch (w->resp.fault) {
  case HTTP_FAULT_RANDOM:
    rc = append_garbage(&w->out);
    w->resp.status = 0;
    break;
  case HTTP_FAULT_RESET:
  case HTTP_FAULT_EMPTY: w->resp.status = 0; break;
  default:
    w->resp.stream = &no_body;
    rc = http_response_write(&w->resp, req->method, false, http10, &w->out);
    w->resp.stream = NULL;
    /* A chunk size that is not hex, in the middle of the body. */
    if (rc == 0 && http_response_sends_body(&w->resp, req->method))
      rc = buf_puts(&w->out, "5\r\nhello\r\nzz\r\nnot a chunk\r\n");
    break;
  }
  if (rc) {
    conn_close(c);
    return;
  }
  set_phase(c, CONN_LAST_WRITE);
}

static void queue_response(conn_t *c, const http_request_t *req, bool keep) {
  struct conn_work *w = c->w;
  if (w->resp.fault) {
    queue_fault(c, req);
    return;
  }
  /* dribble(): the body becomes a stream that waits between its pieces;
   * out of memory, it goes at once. */
  if (w->resp.dribble_chunks && w->resp.stream == NULL &&
      http_response_sends_body(&w->resp, req->method))
    w->resp.stream =
        dribble_new(c->env->loop, &w->resp.body, w->resp.dribble_chunks, w->resp.dribble_ms);
  bool http10 = req->http_major == 1 && req->http_minor == 0;
  /* An HTTP/1.0 client knows no chunks: its streamed body ends with the
   * connection. */
  if (w->resp.stream && http10)
    keep = false;
  if (http_response_write(&w->resp, req->method, keep, http10, &w->out)) {
    conn_close(c);
    return;
  }
  if (w->resp.stream) {
    http_stream_t *stream = w->resp.stream;
    w->resp.stream = NULL;
    if (http_response_sends_body(&w->resp, req->method)) {
      w->stream = stream; /* conn_process sends it */
      stream->wake = stream_wake;
      stream->waker = c;
      w->chunked = !http10;
      w->last = !keep;
      set_phase(c, CONN_STREAMING);
      return;
    }
    stream->close(stream, false); /* HEAD, 204, 304 */
  }
  set_phase(c, keep ? CONN_IDLE : CONN_LAST_WRITE);
}

/* Queues the next piece of the streamed body, unless a write is under way
 * or enough is queued already (the write's completion comes back here). At
 * the end of the body the stream is freed and the phase moves on. */
static void stream_pump(conn_t *c) {
  struct conn_work *w = c->w;
  if ((c->flags & (CONN_WRITING | CONN_STREAM_WAIT)) || w->out.len >= STREAM_PIECE)
    return;
  int rc;
  buf_reset(&w->piece);
  /* A producer may have nothing to add this time and still go on. */
  do
    rc = w->stream->next(w->stream, &w->piece);
  while (rc == HTTP_STREAM_MORE && w->piece.len == 0);
  char size[24];
  int n = snprintf(size, sizeof size, "%zx\r\n", w->piece.len);
  if (rc < 0 || (w->chunked && w->piece.len && buf_append(&w->out, size, (size_t)n)) ||
      buf_append(&w->out, w->piece.data, w->piece.len) ||
      (w->chunked && w->piece.len && buf_append(&w->out, "\r\n", 2))) {
    conn_close(c); /* a body cut short must not look complete */
    return;
  }
  /* Formatting reserves room for the worst case (JSON escapes take six
   * times a body's size): keep that room rather than allocate it for every
   * piece. */
  buf_shrink(&w->piece, KEEP_OUT);
  if (rc == HTTP_STREAM_WAIT)
    c->flags |= CONN_STREAM_WAIT; /* stream_wake comes back */
  if (rc == HTTP_STREAM_END) {
    if (w->chunked && buf_puts(&w->out, "0\r\n\r\n")) {
      conn_close(c);
      return;
    }
    w->stream->close(w->stream, true);
    w->stream = NULL;
    /* A stop signal came while it streamed: this was the last answer. */
    set_phase(c, w->last || c->env->draining ? CONN_LAST_WRITE : CONN_IDLE);
  }
}

static void complete_request(conn_t *c) {
  conn_env_t *env = c->env;
  struct conn_work *w = c->w;
  const http_request_t *req = http_in_request(w->in);
  bool keep = req->keep_alive && !env->draining;
  /* The call is over: nothing to abandon if queueing fails and closes. */
  w->pending = NULL;
  queue_response(c, req, keep);
  if (c->phase == CONN_CLOSED)
    return;
  if (env->complete)
    env->complete(env->ctx, peer_of(c), req, &w->resp, &w->origin, uv_hrtime() - w->started_ns);
  if (w->resp.fault == HTTP_FAULT_RESET) {
    assert(c->phase == CONN_LAST_WRITE);
    conn_close_how(c, true);
    return;
  }
  http_in_next(w->in);
  c->request_ms = w->rpos < w->rbuf.len ? uv_now(env->loop) : 0;
}

static void on_done(void *data) {
  conn_t *c = data;
  complete_request(c);
  if (c->phase != CONN_CLOSED)
    conn_process(c);
}

/* The server's own answer to a request it refuses (4xx): a line of text,
 * then the connection closes once it is written. */
static void answer_and_close(conn_t *c, int status, const char *text) {
  struct conn_work *w = c->w;
  http_response_reset(&w->resp);
  origin_reset(&w->origin); /* the server answered, not a provision */
  http_response_header(&w->resp, "Content-Type", 12, "text/plain; charset=utf-8", 25);
  buf_printf(&w->resp.body, "%d %s: %s\n", status, http_reason(status), text);
  w->resp.status = status;
  if (log_verbose(c->env->log))
    log_debug(c->env->log, "%s %s: answered %d: %s", c->env->name, remote_of(c), status, text);
  if (http_response_write(&w->resp, HTTP_GET, false, false, &w->out)) {
    conn_close(c);
    return;
  }
  set_phase(c, CONN_LAST_WRITE);
}

static void answer_error(conn_t *c) {
  const char *text;
  int status = http_in_error(c->w->in, &text);
  answer_and_close(c, status, text);
  /* A refused request whose head arrived whole is still something the
   * client sent: the journal must show it as refused, not as never sent. */
  const http_request_t *req = http_in_refused(c->w->in);
  if (req && c->env->complete && c->phase != CONN_CLOSED) {
    uint64_t ms = c->request_ms ? uv_now(c->env->loop) - c->request_ms : 0;
    c->env->complete(c->env->ctx, peer_of(c), req, &c->w->resp, &c->w->origin, ms * 1000000);
  }
}

static void conn_process(conn_t *c) {
  conn_env_t *env = c->env;
  struct conn_work *w = work_take(c);
  if (w == NULL) {
    conn_close(c);
    return;
  }
  while (c->phase != CONN_CLOSED) {
    if (c->phase == CONN_STREAMING) {
      /* One piece per turn; the request after it waits for its end. */
      stream_pump(c);
      if (c->phase == CONN_STREAMING)
        break;
    }
    if (!takes_requests(c))
      break;
    if (w->out.len >= WRITE_PAUSE) {
      /* Plenty queued: send it before parsing on, and wait for the socket
       * if it is full (on_write comes back here). */
      flush(c);
      if ((c->flags & CONN_WRITING) || c->phase == CONN_CLOSED)
        break;
    }
    size_t avail = w->rbuf.len - w->rpos;
    if (avail == 0)
      break;
    size_t used = 0;
    enum http_in_status st = http_in_feed(w->in, w->rbuf.data + w->rpos, avail, &used);
    w->rpos += used;
    if (http_in_take_continue(w->in))
      buf_puts(&w->out, "HTTP/1.1 100 Continue\r\n\r\n");
    if (st == HTTP_IN_MORE) {
      /* The body's time (--body-timeout) runs from the end of the head,
       * when the phase becomes "body". */
      set_phase(c, http_in_head_done(w->in) ? CONN_BODY
                   : http_in_started(w->in) ? CONN_HEAD
                                            : CONN_IDLE);
      break;
    }
    if (st == HTTP_IN_ERROR) {
      answer_error(c);
      break;
    }
    set_phase(c, CONN_DISPATCHED);
    w->started_ns = uv_hrtime();
    const http_request_t *req = http_in_request(w->in);
    origin_reset(&w->origin);
    if (env->dispatch(env->ctx, req, remote_of(c), &w->resp, &w->origin, on_done, c,
                      &w->pending) == CONN_PENDING)
      break;
    complete_request(c);
  }
  if (c->phase == CONN_CLOSED)
    return;
  /* A client that half-closed sends nothing more: once every complete
   * request it sent is answered, the connection is done. */
  if ((c->flags & CONN_PEER_EOF) && takes_requests(c))
    set_phase(c, CONN_LAST_WRITE);
  /* Keep unparsed bytes at the front so the buffer does not creep. */
  if (w->rpos == w->rbuf.len) {
    w->rpos = 0;
    buf_shrink(&w->rbuf, KEEP_READ);
  } else if (w->rpos > 0 && c->phase != CONN_DISPATCHED) {
    memmove(w->rbuf.data, w->rbuf.data + w->rpos, w->rbuf.len - w->rpos);
    w->rbuf.len -= w->rpos;
    w->rpos = 0;
  }
  if (!(c->flags & CONN_PEER_EOF) && c->phase != CONN_LINGERING)
    read_pause(c, w->rbuf.len - w->rpos > READ_PAUSE);
  flush(c);
  work_release(c);
}

/* ------------------------------------------------------------------ the listener's side */

int conn_open(conn_env_t *env, int fd) {
  /* The peer's names are formatted once, into the connection itself: an
   * IPv4 peer takes a few dozen bytes, not two fixed arrays. */
  char remote[INET6_ADDRSTRLEN], peer[INET6_ADDRSTRLEN + 8];
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  bool named = getpeername(fd, (struct sockaddr *)&ss, &len) == 0;
  text_address(named ? (struct sockaddr *)&ss : NULL, remote, sizeof remote, peer, sizeof peer);
  size_t rlen = strlen(remote) + 1, plen = strlen(peer) + 1;
  conn_t *c = calloc(1, sizeof *c + rlen + plen);
  int rc = c ? uv_tcp_init(env->loop, &c->tcp) : UV_ENOMEM;
  if (rc) {
    free(c);
    close(fd);
    return rc;
  }
  memcpy(c->names, remote, rlen);
  memcpy(c->names + rlen, peer, plen);
  c->peer = (uint8_t)rlen;
  c->env = env;
  c->next = env->head;
  if (env->head)
    env->head->prev = c;
  env->head = c;
  env->count++;
  c->last_ms = c->phase_ms = uv_now(env->loop);
  if ((rc = uv_tcp_open(&c->tcp, fd))) {
    close(fd); /* not the handle's: closing the handle leaves it open */
    conn_close(c);
    return rc;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  if ((rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read))) {
    conn_close(c);
    return rc;
  }
  return 0;
}

static void time_out(conn_t *c, const char *text) {
  if (work_take(c) == NULL) {
    conn_close(c);
    return;
  }
  answer_and_close(c, 408, text);
  flush(c);
}

/* Frees the pooled work sets that no connection took since the last
 * sweep: the fewest the pool held meanwhile were not needed. The ones
 * freed are the least recently used (the pool is a stack). */
static void trim_pool(conn_env_t *env) {
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

void conn_sweep(conn_env_t *env) {
  uint64_t now = uv_now(env->loop);
  conn_t *next;
  for (conn_t *c = env->head; c; c = next) {
    next = c->next;
    if (c->phase == CONN_CLOSED)
      continue;
    if (c->phase == CONN_LINGERING) {
      if (now - c->phase_ms >= LINGER_MS)
        conn_close(c);
    } else if (c->flags & CONN_WRITING) {
      /* A client that stopped reading holds our buffers: give up on it. */
      if (now - c->last_ms >= env->idle_timeout_ms)
        conn_close(c);
    } else if (!takes_requests(c)) {
      continue;
    } else if (c->request_ms && c->phase != CONN_BODY &&
               now - c->request_ms >= env->header_timeout_ms) {
      time_out(c, "the request head was not received in time");
    } else if (c->phase == CONN_BODY) {
      /* A whole time for the body, however it trickles: restarting a timer
       * on every byte would let one byte a minute hold a connection. */
      if (now - c->phase_ms >= env->body_timeout_ms)
        time_out(c, "the request body was not received in time");
    } else if (now - c->last_ms >= env->idle_timeout_ms) {
      /* Idle between requests, or a head that stopped arriving. */
      conn_close(c);
    }
  }
  trim_pool(env);
}

void conn_drain(conn_env_t *env) {
  env->draining = true;
  conn_t *next;
  for (conn_t *c = env->head; c; c = next) {
    next = c->next;
    /* The others close after their current response (complete_request
     * stops keeping alive once draining). */
    if (c->phase != CONN_DISPATCHED && c->phase != CONN_STREAMING && !(c->flags & CONN_WRITING) &&
        (c->w == NULL || c->w->out.len == 0) && !c->request_ms)
      conn_close(c);
  }
  if (env->count == 0 && env->drained)
    env->drained(env->ctx);
}

void conn_close_all(conn_env_t *env) {
  conn_t *next;
  for (conn_t *c = env->head; c; c = next) {
    next = c->next;
    conn_close(c);
  }
}

void conn_env_close(conn_env_t *env) {
  while (env->pool) {
    struct conn_work *w = env->pool;
    env->pool = w->next;
    work_free(w);
  }
  env->pooled = env->pool_low = 0;
}
