/* conn.c - reading, parsing, answering and writing on one connection (the
 * work sets in conn_work.c, queueing answers in conn_answer.c). */
#include "conn.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn_int.h"
#include "log.h"
#include "text.h"

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

/* Reading requests: not answering one, not done with the connection. */
static bool takes_requests(const conn_t *c) { return c->phase <= CONN_BODY; }

static const char *remote_of(const conn_t *c) { return c->names; }

static const char *peer_of(const conn_t *c) { return c->names + c->peer; }

/* ------------------------------------------------------------------ closing */

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
    conn_work_put(c, false);
  free(c);
  if (--env->count == 0 && env->draining && env->drained)
    env->drained(env->ctx);
}

/* Closes the connection; with `reset`, by a TCP reset (what is unsent is
 * dropped). A pending answer is abandoned and a stream closed (a dribble
 * stops its timer) here, before the work set can go back to the pool in
 * on_close: nothing may write into it afterwards. */
void conn_close_how(conn_t *c, bool reset) {
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
  buf_shrink(&w->wbuf, KEEP_OUT); /* empties it too */
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
  struct conn_work *w = conn_work_take(c);
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
    conn_work_release(c); /* nothing came after all (EAGAIN) */
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

static void complete_request(conn_t *c) {
  conn_env_t *env = c->env;
  struct conn_work *w = c->w;
  const http_request_t *req = http_in_request(w->in);
  bool keep = req->keep_alive && !env->draining;
  /* The call is over: nothing to abandon if queueing fails and closes. */
  w->pending = NULL;
  conn_queue_response(c, req, keep);
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

void conn_process(conn_t *c) {
  conn_env_t *env = c->env;
  struct conn_work *w = conn_work_take(c);
  if (w == NULL) {
    conn_close(c);
    return;
  }
  while (c->phase != CONN_CLOSED) {
    if (c->phase == CONN_STREAMING) {
      /* One piece per turn; the request after it waits for its end. */
      conn_stream_pump(c);
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
  conn_work_release(c);
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
  if (conn_work_take(c) == NULL) {
    conn_close(c);
    return;
  }
  answer_and_close(c, 408, text);
  flush(c);
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
  conn_work_trim(env);
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
