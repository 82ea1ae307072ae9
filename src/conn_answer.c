/* conn_answer.c - queueing an answer on a connection: the response, what
 * fault() asked for instead, and a streamed body (a dribble) piece by
 * piece. */
#include <assert.h>
#include <stdio.h>

#include "conn_int.h"
#include "dribble.h"

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

void conn_queue_response(conn_t *c, const http_request_t *req, bool keep) {
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
void conn_stream_pump(conn_t *c) {
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
