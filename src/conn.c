/* conn.c - reading, parsing, answering and writing on one connection. */
#include "conn.h"

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

struct conn {
  uv_tcp_t tcp; /* first: the handle pointer is the conn pointer */
  conn_env_t *env;
  conn_t *prev, *next;
  http_in_t *in;
  char remote[64]; /* the peer's address, for request.remote_addr */
  char peer[80];   /* "address:port", for the journal and the access log */
  buf_t rbuf;      /* received bytes; rpos..len not parsed yet */
  size_t rpos;
  buf_t out;  /* responses waiting for the socket */
  buf_t wbuf; /* what uv_write is sending now */
  uv_write_t wreq;
  uv_shutdown_t sreq;
  http_response_t resp;
  origin_t origin;       /* who answered resp */
  http_stream_t *stream; /* the body being streamed, NULL when none */
  buf_t piece;           /* the stream's latest piece, before its chunk framing */
  bool chunked;          /* the stream goes out in chunks (else until the close: HTTP/1.0) */
  bool stream_waiting;   /* the stream said HTTP_STREAM_WAIT: its wake() comes back */
  void *pending;         /* the dispatcher's handle while busy, for env->abandon */
  uint64_t started_ns;   /* when the current request was dispatched */
  uint64_t last_ms;      /* last byte received or sent */
  uint64_t request_ms;   /* first byte of the request being received, 0 when none */
  uint64_t body_ms;      /* end of the head of a request whose body is arriving, 0 when none */
  uint64_t linger_until; /* closing: give up draining the client at this time */
  bool busy;             /* a request is being answered (pending) */
  bool writing;
  bool reading;
  bool close_after_write;
  bool lingering;
  bool eof;
  bool closing;
};

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
  http_in_free(c->in);
  buf_free(&c->rbuf);
  buf_free(&c->out);
  buf_free(&c->wbuf);
  buf_free(&c->piece);
  http_response_free(&c->resp);
  origin_free(&c->origin);
  free(c);
  if (--env->count == 0 && env->draining && env->drained)
    env->drained(env->ctx);
}

/* Closes the connection; with `reset`, by a TCP reset (what is unsent is
 * dropped). */
static void conn_close_how(conn_t *c, bool reset) {
  if (c->closing)
    return;
  c->closing = true;
  if (c->busy && c->pending)
    c->env->abandon(c->pending); /* its response has nowhere to go */
  c->pending = NULL;
  c->busy = false;
  if (c->stream) {
    c->stream->close(c->stream, false); /* the client went away mid-body */
    c->stream = NULL;
  }
  if (!reset || uv_tcp_close_reset(&c->tcp, on_close) != 0)
    uv_close((uv_handle_t *)&c->tcp, on_close);
}

static void conn_close(conn_t *c) { conn_close_how(c, false); }

static void on_shutdown(uv_shutdown_t *req, int status) {
  conn_t *c = req->data;
  if (status < 0 || c->eof)
    conn_close(c);
}

/* Everything is written and the connection is done: send FIN and keep
 * reading (discarding) for a moment, so a client still sending a body it
 * was refused (413) reads the answer instead of a reset. */
static void finish_close(conn_t *c) {
  if (c->lingering || c->closing)
    return;
  c->lingering = true;
  c->linger_until = uv_now(c->env->loop) + LINGER_MS;
  c->sreq.data = c;
  if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) < 0)
    conn_close(c);
}

static void flush(conn_t *c);

static void on_write(uv_write_t *req, int status) {
  conn_t *c = req->data;
  c->writing = false;
  buf_reset(&c->wbuf);
  buf_shrink(&c->wbuf, 1 << 20);
  if (status < 0) {
    conn_close(c);
    return;
  }
  if (c->closing)
    return;
  c->last_ms = uv_now(c->env->loop);
  flush(c);
  conn_process(c);
}

static void flush(conn_t *c) {
  if (c->closing || c->writing)
    return;
  if (c->out.len > 0) {
    uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.len);
    size_t sent = 0;
    /* While a body streams, every piece goes through uv_write, whose
     * completion comes in a later loop iteration and asks for the next
     * piece: other connections get their turn in between. */
    if (c->stream == NULL) {
      int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
      if (n < 0 && n != UV_EAGAIN) {
        conn_close(c);
        return;
      }
      sent = n > 0 ? (size_t)n : 0;
    }
    if (sent < c->out.len) {
      /* The socket is full: hand the rest to uv_write and take a fresh
       * buffer for the responses that come meanwhile. */
      buf_t rest = c->wbuf;
      buf_reset(&rest);
      if (buf_append(&rest, c->out.data + sent, c->out.len - sent)) {
        c->wbuf = rest;
        conn_close(c); /* a truncated response would lie about its length */
        return;
      }
      c->wbuf = rest;
      buf_reset(&c->out);
      b = uv_buf_init(c->wbuf.data, (unsigned)c->wbuf.len);
      c->wreq.data = c;
      if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write) < 0) {
        conn_close(c);
        return;
      }
      c->writing = true;
      return;
    }
    buf_reset(&c->out);
    buf_shrink(&c->out, 1 << 20);
    c->last_ms = uv_now(c->env->loop);
  }
  if (c->close_after_write && !c->busy && c->stream == NULL)
    finish_close(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
  (void)suggested;
  conn_t *c = (conn_t *)h;
  if (c->lingering) {
    /* Draining a refused upload: reuse the space, keep nothing. */
    c->rbuf.len = 0;
    c->rpos = 0;
  }
  if (buf_reserve(&c->rbuf, READ_CHUNK)) {
    *b = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
    return;
  }
  *b = uv_buf_init(c->rbuf.data + c->rbuf.len, (unsigned)(c->rbuf.cap - c->rbuf.len));
}

static void read_pause(conn_t *c, bool pause) {
  if (pause == !c->reading || c->closing)
    return;
  c->reading = !pause;
  if (pause)
    uv_read_stop((uv_stream_t *)&c->tcp);
  else
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)b;
  conn_t *c = (conn_t *)s;
  if (n == 0)
    return;
  if (n < 0) {
    /* The client finished sending: answer every complete request it sent
     * (conn_process closes once none is left), or close on an error. */
    c->eof = true;
    read_pause(c, true);
    if (c->lingering || n != UV_EOF)
      conn_close(c);
    else if (!c->busy)
      conn_process(c);
    return;
  }
  c->last_ms = uv_now(c->env->loop);
  if (c->lingering)
    return;
  c->rbuf.len += (size_t)n;
  if (c->request_ms == 0)
    c->request_ms = c->last_ms;
  if (c->busy || c->stream || c->writing || c->close_after_write) {
    /* Not parsing now: hold the client back rather than buffer without end. */
    if (c->rbuf.len - c->rpos > READ_PAUSE)
      read_pause(c, true);
    return;
  }
  conn_process(c);
}

static void stream_wake(http_stream_t *s) {
  conn_t *c = s->waker;
  c->stream_waiting = false;
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

/* What fault() asked for instead of the answer. The status is 0 when no
 * status line goes out (the journal shows that). A reset is made after
 * the journal has the request (complete_request). */
static void queue_fault(conn_t *c, const http_request_t *req) {
  static http_stream_t no_body; /* only makes the head say chunked */
  bool http10 = req->http_major == 1 && req->http_minor == 0;
  int rc = 0;
  switch (c->resp.fault) {
  case HTTP_FAULT_RANDOM:
    rc = append_garbage(&c->out);
    c->resp.status = 0;
    break;
  case HTTP_FAULT_RESET:
  case HTTP_FAULT_EMPTY: c->resp.status = 0; break;
  default:
    c->resp.stream = &no_body;
    rc = http_response_write(&c->resp, req->method, false, http10, &c->out);
    c->resp.stream = NULL;
    /* A chunk size that is not hex, in the middle of the body. */
    if (rc == 0 && http_response_sends_body(&c->resp, req->method))
      rc = buf_puts(&c->out, "5\r\nhello\r\nzz\r\nnot a chunk\r\n");
    break;
  }
  if (rc)
    conn_close(c);
  c->close_after_write = true;
}

static void queue_response(conn_t *c, const http_request_t *req, bool keep) {
  if (c->resp.fault) {
    queue_fault(c, req);
    return;
  }
  /* dribble(): the body becomes a stream that waits between its pieces;
   * out of memory, it goes at once. */
  if (c->resp.dribble_chunks && c->resp.stream == NULL &&
      http_response_sends_body(&c->resp, req->method))
    c->resp.stream =
        dribble_new(c->env->loop, &c->resp.body, c->resp.dribble_chunks, c->resp.dribble_ms);
  bool http10 = req->http_major == 1 && req->http_minor == 0;
  /* An HTTP/1.0 client knows no chunks: its streamed body ends with the
   * connection. */
  if (c->resp.stream && http10)
    keep = false;
  if (http_response_write(&c->resp, req->method, keep, http10, &c->out)) {
    conn_close(c);
    return;
  }
  if (c->resp.stream) {
    if (http_response_sends_body(&c->resp, req->method)) {
      c->stream = c->resp.stream; /* conn_process sends it */
      c->stream->wake = stream_wake;
      c->stream->waker = c;
      c->stream_waiting = false;
      c->chunked = !http10;
    } else {
      c->resp.stream->close(c->resp.stream, false); /* HEAD, 204, 304 */
    }
    c->resp.stream = NULL;
  }
  if (!keep)
    c->close_after_write = true;
}

/* Queues the next piece of the streamed body, unless a write is under way
 * or enough is queued already (the write's completion comes back here). At
 * the end of the body the stream is freed and c->stream is NULL. */
static void stream_pump(conn_t *c) {
  if (c->writing || c->closing || c->stream_waiting || c->out.len >= STREAM_PIECE)
    return;
  int rc;
  buf_reset(&c->piece);
  /* A producer may have nothing to add this time and still go on. */
  do
    rc = c->stream->next(c->stream, &c->piece);
  while (rc == HTTP_STREAM_MORE && c->piece.len == 0);
  char size[24];
  int n = snprintf(size, sizeof size, "%zx\r\n", c->piece.len);
  if (rc < 0 || (c->chunked && c->piece.len && buf_append(&c->out, size, (size_t)n)) ||
      buf_append(&c->out, c->piece.data, c->piece.len) ||
      (c->chunked && c->piece.len && buf_append(&c->out, "\r\n", 2))) {
    conn_close(c); /* a body cut short must not look complete */
    return;
  }
  /* Formatting reserves room for the worst case (JSON escapes take six
   * times a body's size): keep that room rather than allocate it for every
   * piece. */
  buf_shrink(&c->piece, 1 << 20);
  if (rc == HTTP_STREAM_WAIT)
    c->stream_waiting = true;
  if (rc == HTTP_STREAM_END) {
    if (c->chunked && buf_puts(&c->out, "0\r\n\r\n")) {
      conn_close(c);
      return;
    }
    c->stream->close(c->stream, true);
    c->stream = NULL;
    /* A stop signal came while it streamed: this was the last answer. */
    if (c->env->draining)
      c->close_after_write = true;
  }
}

static void complete_request(conn_t *c) {
  conn_env_t *env = c->env;
  const http_request_t *req = http_in_request(c->in);
  bool keep = req->keep_alive && !env->draining;
  /* The call is over: nothing to abandon if queueing fails and closes. */
  c->busy = false;
  c->pending = NULL;
  queue_response(c, req, keep);
  if (c->closing)
    return;
  if (env->complete)
    env->complete(env->ctx, c->peer, req, &c->resp, &c->origin, uv_hrtime() - c->started_ns);
  if (c->resp.fault == HTTP_FAULT_RESET) {
    conn_close_how(c, true);
    return;
  }
  http_in_next(c->in);
  c->request_ms = c->rpos < c->rbuf.len ? uv_now(env->loop) : 0;
  c->body_ms = 0;
}

static void on_done(void *data) {
  conn_t *c = data;
  complete_request(c);
  if (!c->closing)
    conn_process(c);
}

/* The server's own answer to a request it refuses (4xx): a line of text,
 * then the connection closes once it is written. */
static void answer_and_close(conn_t *c, int status, const char *text) {
  http_response_reset(&c->resp);
  origin_reset(&c->origin); /* the server answered, not a provision */
  http_response_header(&c->resp, "Content-Type", 12, "text/plain; charset=utf-8", 25);
  buf_printf(&c->resp.body, "%d %s: %s\n", status, http_reason(status), text);
  c->resp.status = status;
  if (log_verbose(c->env->log))
    log_debug(c->env->log, "%s %s: answered %d: %s", c->env->name, c->remote, status, text);
  if (http_response_write(&c->resp, HTTP_GET, false, false, &c->out))
    conn_close(c);
  c->close_after_write = true;
}

static void answer_error(conn_t *c) {
  const char *text;
  int status = http_in_error(c->in, &text);
  answer_and_close(c, status, text);
  /* A refused request whose head arrived whole is still something the
   * client sent: the journal must show it as refused, not as never sent. */
  const http_request_t *req = http_in_refused(c->in);
  if (req && c->env->complete && !c->closing) {
    uint64_t ms = c->request_ms ? uv_now(c->env->loop) - c->request_ms : 0;
    c->env->complete(c->env->ctx, c->peer, req, &c->resp, &c->origin, ms * 1000000);
  }
}

static void conn_process(conn_t *c) {
  conn_env_t *env = c->env;
  while (!c->closing) {
    if (c->stream) {
      /* One piece per turn; the request after it waits for its end. */
      stream_pump(c);
      if (c->stream || c->closing)
        break;
    }
    if (c->busy || c->close_after_write)
      break;
    if (c->out.len >= WRITE_PAUSE) {
      /* Plenty queued: send it before parsing on, and wait for the socket
       * if it is full (on_write comes back here). */
      flush(c);
      if (c->writing || c->closing)
        break;
    }
    size_t avail = c->rbuf.len - c->rpos;
    if (avail == 0)
      break;
    size_t used = 0;
    enum http_in_status st = http_in_feed(c->in, c->rbuf.data + c->rpos, avail, &used);
    c->rpos += used;
    if (http_in_take_continue(c->in))
      buf_puts(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
    if (st == HTTP_IN_MORE) {
      /* The body's time (--body-timeout) runs from the end of the head. */
      if (c->body_ms == 0 && http_in_head_done(c->in))
        c->body_ms = uv_now(env->loop);
      break;
    }
    if (st == HTTP_IN_ERROR) {
      answer_error(c);
      break;
    }
    c->busy = true;
    c->started_ns = uv_hrtime();
    const http_request_t *req = http_in_request(c->in);
    origin_reset(&c->origin);
    if (env->dispatch(env->ctx, req, c->remote, &c->resp, &c->origin, on_done, c, &c->pending) ==
        CONN_PENDING)
      break;
    complete_request(c);
  }
  if (c->closing)
    return;
  /* A client that half-closed sends nothing more: once every complete
   * request it sent is answered, the connection is done. */
  if (c->eof && !c->busy && c->stream == NULL)
    c->close_after_write = true;
  /* Keep unparsed bytes at the front so the buffer does not creep. */
  if (c->rpos == c->rbuf.len) {
    c->rbuf.len = c->rpos = 0;
    buf_shrink(&c->rbuf, 64 * 1024);
  } else if (c->rpos > 0 && !c->busy) {
    memmove(c->rbuf.data, c->rbuf.data + c->rpos, c->rbuf.len - c->rpos);
    c->rbuf.len -= c->rpos;
    c->rpos = 0;
  }
  if (!c->eof && !c->lingering)
    read_pause(c, c->rbuf.len - c->rpos > READ_PAUSE);
  flush(c);
}

int conn_open(conn_env_t *env, int fd) {
  conn_t *c = calloc(1, sizeof *c);
  int rc = c ? uv_tcp_init(env->loop, &c->tcp) : UV_ENOMEM;
  if (rc) {
    free(c);
    close(fd);
    return rc;
  }
  c->env = env;
  c->next = env->head;
  if (env->head)
    env->head->prev = c;
  env->head = c;
  env->count++;
  if ((rc = uv_tcp_open(&c->tcp, fd))) {
    close(fd); /* not the handle's: closing the handle leaves it open */
    conn_close(c);
    return rc;
  }
  if ((c->in = http_in_new(env->max_body)) == NULL) {
    conn_close(c);
    return UV_ENOMEM;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  struct sockaddr_storage ss;
  int len = sizeof ss;
  bool named = uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0;
  text_address(named ? (struct sockaddr *)&ss : NULL, c->remote, sizeof c->remote, c->peer,
               sizeof c->peer);
  c->last_ms = uv_now(env->loop);
  c->reading = true;
  if ((rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read))) {
    conn_close(c);
    return rc;
  }
  return 0;
}

static void time_out(conn_t *c, const char *text) {
  answer_and_close(c, 408, text);
  flush(c);
}

void conn_sweep(conn_env_t *env) {
  uint64_t now = uv_now(env->loop);
  conn_t *next;
  for (conn_t *c = env->head; c; c = next) {
    next = c->next;
    if (c->closing)
      continue;
    if (c->lingering) {
      if (now >= c->linger_until)
        conn_close(c);
    } else if (c->writing) {
      /* A client that stopped reading holds our buffers: give up on it. */
      if (now - c->last_ms >= env->idle_timeout_ms)
        conn_close(c);
    } else if (c->busy || c->stream || c->close_after_write) {
      continue;
    } else if (c->request_ms && !http_in_head_done(c->in) &&
               now - c->request_ms >= env->header_timeout_ms) {
      time_out(c, "the request head was not received in time");
    } else if (c->body_ms) {
      /* A whole time for the body, however it trickles: restarting a timer
       * on every byte would let one byte a minute hold a connection. */
      if (now - c->body_ms >= env->body_timeout_ms)
        time_out(c, "the request body was not received in time");
    } else if (now - c->last_ms >= env->idle_timeout_ms) {
      /* Idle between requests, or a head that stopped arriving. */
      conn_close(c);
    }
  }
}

void conn_drain(conn_env_t *env) {
  env->draining = true;
  conn_t *next;
  for (conn_t *c = env->head; c; c = next) {
    next = c->next;
    /* The others close after their current response (complete_request
     * stops keeping alive once draining). */
    if (!c->busy && !c->stream && !c->writing && c->out.len == 0 && !c->request_ms)
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
