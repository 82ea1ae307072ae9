/* http_client.c - outbound requests on the loop: resolving, connecting,
 * the keep-alive pool, timeouts and cancellation. The bytes themselves are
 * http_client_parse.c's. */
#include "http_client_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define READ_SIZE (64 * 1024)
#define MAX_HOST_TEXT 256            /* a DNS name (253) or an IPv6 literal, and a NUL */
#define KEY_SIZE (MAX_HOST_TEXT + 8) /* and ":65535" */

typedef struct conn conn_t;

struct http_client {
  uv_loop_t *loop;
  http_client_options_t opts;
  conn_t *conns;             /* every connection not freed yet; the idle ones by recency */
  http_client_call_t *calls; /* every call not freed yet */
  size_t live;               /* calls and connections not freed yet */
  http_client_stats_t stats;
  bool freeing;
  /* Reads are handled whole inside their callback, so one buffer serves
   * every connection. */
  char rbuf[READ_SIZE];
};

struct conn {
  uv_tcp_t tcp;
  uv_timer_t idle_timer;
  uv_connect_t connect_req;
  uv_write_t write_req;
  http_client_t *client;
  conn_t *prev, *next;
  http_client_call_t *call; /* the request on it; NULL while idle */
  buf_t out;                /* the request being written: the write owns it, not the call */
  char key[KEY_SIZE];       /* "host:port", the pool's key */
  int handles;              /* open handles; the memory goes with the last */
  bool reading, writing, idle, closing;
  bool pooled; /* it came from the pool: its server may have closed it meanwhile */
};

struct http_client_call {
  http_client_t *client;
  http_client_call_t *prev, *next;
  uv_timer_t timer; /* the request's timeout; also delivers errors found while starting */
  uv_getaddrinfo_t gai;
  struct addrinfo *resolved;  /* from uv_getaddrinfo, freed with the call */
  struct addrinfo literal_ai; /* an IP literal needs no resolving */
  struct sockaddr_storage literal_sa;
  const struct addrinfo *next_addr;
  conn_t *conn;
  http_client_cb cb;
  void *arg;
  buf_t req; /* the request's bytes, kept to send again */
  http_client_answer_t answer;
  char host[MAX_HOST_TEXT];
  char key[KEY_SIZE];
  uint16_t port;
  bool is_literal, idempotent, head;
  uint64_t start_ns, timeout_ms;
  int connect_err;   /* the last connect failure, for the message */
  char refused[64];  /* the first address the policy refused */
  bool starting;     /* inside http_client_request: errors wait for the timer */
  bool resolving;    /* gai is pending: the memory stays until its callback */
  bool timer_closed; /* the memory can go */
  bool retried, done, cancelled;
  char error[256];
};

static void conn_close(conn_t *conn);
static void call_connect(http_client_call_t *call);
static void on_call_timer(uv_timer_t *t);

static void client_unref(http_client_t *c) {
  if (--c->live == 0 && c->freeing)
    free(c);
}

/* Connections. */

static void on_conn_close(uv_handle_t *h) {
  conn_t *conn = h->data;
  if (--conn->handles > 0)
    return;
  http_client_t *c = conn->client;
  if (conn->prev)
    conn->prev->next = conn->next;
  else
    c->conns = conn->next;
  if (conn->next)
    conn->next->prev = conn->prev;
  buf_free(&conn->out);
  free(conn);
  client_unref(c);
}

static void conn_close(conn_t *conn) {
  if (conn->closing)
    return;
  conn->closing = true;
  if (conn->idle)
    conn->client->stats.idle--;
  conn->idle = false;
  uv_close((uv_handle_t *)&conn->tcp, on_conn_close);
  uv_close((uv_handle_t *)&conn->idle_timer, on_conn_close);
}

static void link_first(conn_t *conn) {
  http_client_t *c = conn->client;
  conn->prev = NULL;
  conn->next = c->conns;
  if (c->conns)
    c->conns->prev = conn;
  c->conns = conn;
}

static conn_t *conn_new(http_client_t *c, const char *key) {
  conn_t *conn = calloc(1, sizeof *conn);
  if (conn == NULL)
    return NULL;
  conn->client = c;
  snprintf(conn->key, sizeof conn->key, "%s", key);
  uv_tcp_init(c->loop, &conn->tcp);
  uv_timer_init(c->loop, &conn->idle_timer);
  conn->tcp.data = conn->idle_timer.data = conn;
  conn->connect_req.data = conn->write_req.data = conn;
  conn->handles = 2;
  c->live++;
  link_first(conn);
  return conn;
}

static void on_idle_timeout(uv_timer_t *t) { conn_close(t->data); }

/* A connection whose exchange is over: into the pool when the answer left
 * it clean and the peer has room, else closed. A full pool closes its
 * least recently used connection to make room: a provision calling many
 * hosts keeps descriptors for the recent ones, never one per host it ever
 * called (each would stay open for the idle timeout). */
static void conn_release(conn_t *conn, bool reusable) {
  http_client_t *c = conn->client;
  conn->call = NULL;
  size_t peers = 0;
  conn_t *oldest = NULL; /* idle ones are linked by recency, the newest first */
  for (conn_t *o = c->conns; o; o = o->next) {
    if (o->idle) {
      peers += !strcmp(o->key, conn->key);
      oldest = o;
    }
  }
  if (!reusable || conn->writing || c->freeing || peers >= c->opts.idle_per_peer) {
    conn_close(conn);
    return;
  }
  if (c->stats.idle >= c->opts.idle_total && oldest)
    conn_close(oldest);
  conn->idle = true;
  c->stats.idle++;
  /* The most recently used first: the least likely to have been closed. */
  if (conn->prev) {
    conn->prev->next = conn->next;
    if (conn->next)
      conn->next->prev = conn->prev;
    link_first(conn);
  }
  /* An idle pool must not keep the loop running. */
  uv_timer_start(&conn->idle_timer, on_idle_timeout, c->opts.idle_timeout_ms, 0);
  uv_unref((uv_handle_t *)&conn->idle_timer);
  uv_unref((uv_handle_t *)&conn->tcp);
}

static conn_t *pool_take(http_client_t *c, const char *key) {
  for (conn_t *conn = c->conns; conn; conn = conn->next) {
    if (!conn->idle || strcmp(conn->key, key) != 0)
      continue;
    conn->idle = false;
    conn->pooled = true;
    c->stats.idle--;
    c->stats.reuses++;
    uv_timer_stop(&conn->idle_timer);
    uv_ref((uv_handle_t *)&conn->idle_timer);
    uv_ref((uv_handle_t *)&conn->tcp);
    return conn;
  }
  return NULL;
}

/* Calls. */

static void call_maybe_free(http_client_call_t *call) {
  if (!call->timer_closed || call->resolving)
    return;
  http_client_t *c = call->client;
  if (call->prev)
    call->prev->next = call->next;
  else
    c->calls = call->next;
  if (call->next)
    call->next->prev = call->prev;
  if (call->resolved)
    uv_freeaddrinfo(call->resolved);
  buf_free(&call->req);
  http_client_answer_free(&call->answer);
  free(call);
  client_unref(c);
}

static void on_call_timer_close(uv_handle_t *h) {
  http_client_call_t *call = h->data;
  call->timer_closed = true;
  call_maybe_free(call);
}

/* Ends the call: the connection goes back to the pool (a whole answer) or
 * is closed, the callback runs unless the caller went away, and the
 * memory follows once libuv lets go of it. */
static void call_finish(http_client_call_t *call, bool ok) {
  if (call->done)
    return;
  call->done = true;
  http_client_t *c = call->client;
  c->stats.in_flight--;
  uv_timer_stop(&call->timer);
  if (call->resolving)
    uv_cancel((uv_req_t *)&call->gai); /* else on_resolved sees `done` */
  if (call->conn) {
    conn_release(call->conn, ok && call->answer.keep_alive);
    call->conn = NULL;
  }
  if (!call->cancelled) {
    http_client_result_t r = {.error = call->error};
    if (ok)
      http_client_answer_result(&call->answer, &r);
    r.duration_us = (uv_hrtime() - call->start_ns) / 1000;
    call->cb(call->arg, &r);
  }
  uv_close((uv_handle_t *)&call->timer, on_call_timer_close);
}

/* Closes the call's connection, if any: mid-exchange, what is left of
 * the exchange on it would be read as the next one's answer. */
static void call_drop_conn(http_client_call_t *call) {
  if (call->conn) {
    call->conn->call = NULL;
    conn_close(call->conn);
    call->conn = NULL;
  }
}

static void call_fail(http_client_call_t *call, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Fails the call with a message. Inside http_client_request the callback
 * must not run yet: the timer delivers the error on the next turn. */
static void call_fail(http_client_call_t *call, const char *fmt, ...) {
  if (call->done)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(call->error, sizeof call->error, fmt, ap);
  va_end(ap);
  call_drop_conn(call);
  if (call->starting)
    uv_timer_start(&call->timer, on_call_timer, 0, 0);
  else
    call_finish(call, false);
}

static void on_call_timer(uv_timer_t *t) {
  http_client_call_t *call = t->data;
  if (call->error[0] == '\0')
    call_fail(call, "timed out after %g s", (double)call->timeout_ms / 1000);
  else
    call_finish(call, false);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
  (void)suggested;
  conn_t *conn = h->data;
  *b = uv_buf_init(conn->client->rbuf, sizeof conn->client->rbuf);
}

/* The connection failed under its call (`err`: a libuv error, or UV_EOF).
 * A pooled connection may have been closed by its server while it waited:
 * then the request goes again on a fresh connection, once, when that
 * cannot repeat its effect. */
static void conn_failed(conn_t *conn, int err, bool unwritten) {
  http_client_call_t *call = conn->call;
  bool unanswered = !call->answer.started;
  if (conn->pooled && !call->retried && (unwritten || (unanswered && call->idempotent))) {
    call->retried = true;
    call->client->stats.retries++;
    call_drop_conn(call);
    call_connect(call);
    return;
  }
  if (err == UV_EOF && http_client_answer_eof(&call->answer) == HTTP_CLIENT_FEED_DONE) {
    call_finish(call, true); /* the body ran to the end of the connection */
    return;
  }
  if (err == UV_EOF)
    call_fail(call, "%s", call->answer.error);
  else
    call_fail(call, "%s", uv_strerror(err));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  conn_t *conn = s->data;
  http_client_call_t *call = conn->call;
  if (n == 0 || conn->closing)
    return;
  if (call == NULL) {
    conn_close(conn); /* idle: the server closed it, or sent what nobody asked for */
    return;
  }
  if (n < 0) {
    conn_failed(conn, (int)n, false);
    return;
  }
  size_t used;
  switch (http_client_answer_feed(&call->answer, b->base, (size_t)n, &used)) {
  case HTTP_CLIENT_FEED_MORE: return;
  case HTTP_CLIENT_FEED_ERROR: call_fail(call, "%s", call->answer.error); return;
  case HTTP_CLIENT_FEED_DONE:
    /* Bytes after the answer belong to no request: the connection is spoilt. */
    if (used < (size_t)n)
      call->answer.keep_alive = false;
    call_finish(call, true);
    return;
  }
}

static void on_write(uv_write_t *req, int status) {
  conn_t *conn = req->data;
  conn->writing = false;
  buf_reset(&conn->out);
  buf_shrink(&conn->out, 64 * 1024);
  if (status < 0 && !conn->closing && conn->call)
    conn_failed(conn, status, true);
}

/* Sends the call's request on a connection that is open. */
static void call_send(http_client_call_t *call, conn_t *conn) {
  http_client_t *c = call->client;
  conn->call = call;
  call->conn = conn;
  http_client_answer_reset(&call->answer, c->opts.max_head, c->opts.max_body, call->head);
  buf_reset(&conn->out);
  if (buf_append(&conn->out, call->req.data, call->req.len)) {
    call_fail(call, "out of memory");
    return;
  }
  int rc = 0;
  if (!conn->reading)
    rc = uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, on_read);
  conn->reading = rc == 0;
  uv_buf_t b = uv_buf_init(conn->out.data, (unsigned)conn->out.len);
  if (rc == 0)
    rc = uv_write(&conn->write_req, (uv_stream_t *)&conn->tcp, &b, 1, on_write);
  if (rc < 0) {
    conn_failed(conn, rc, true);
    return;
  }
  conn->writing = true;
}

static void try_next_address(http_client_call_t *call);

static void on_connect(uv_connect_t *req, int status) {
  conn_t *conn = req->data;
  http_client_call_t *call = conn->call;
  if (conn->closing || call == NULL)
    return; /* the call went away and closed it */
  if (status < 0) {
    call->connect_err = status;
    call_drop_conn(call);
    try_next_address(call);
    return;
  }
  uv_tcp_nodelay(&conn->tcp, 1);
  call_send(call, conn);
}

static void address_text(const struct sockaddr *sa, char *out, size_t len) {
  if (sa->sa_family == AF_INET6)
    uv_ip6_name((const struct sockaddr_in6 *)sa, out, len);
  else
    uv_ip4_name((const struct sockaddr_in *)sa, out, len);
}

/* Connects to the next address the policy allows; when none is left, the
 * call fails with the reason the last one gave. */
static void try_next_address(http_client_call_t *call) {
  http_client_t *c = call->client;
  while (call->next_addr) {
    const struct addrinfo *ai = call->next_addr;
    call->next_addr = ai->ai_next;
    if (!http_client_address_allowed(c->opts.outbound, ai->ai_addr)) {
      if (call->refused[0] == '\0')
        address_text(ai->ai_addr, call->refused, sizeof call->refused);
      continue;
    }
    conn_t *conn = conn_new(c, call->key);
    if (conn == NULL) {
      call_fail(call, "out of memory");
      return;
    }
    c->stats.connects++;
    int rc = uv_tcp_connect(&conn->connect_req, &conn->tcp, ai->ai_addr, on_connect);
    if (rc == 0) {
      conn->call = call;
      call->conn = conn;
      return;
    }
    call->connect_err = rc;
    conn_close(conn);
  }
  if (call->connect_err)
    call_fail(call, "%s", uv_strerror(call->connect_err));
  else if (call->refused[0] && call->is_literal)
    call_fail(call,
              "connecting to %s is refused: only loopback addresses are allowed "
              "(--outbound loopback)",
              call->refused);
  else if (call->refused[0])
    call_fail(call,
              "connecting to %s (an address of '%s') is refused: only loopback "
              "addresses are allowed (--outbound loopback)",
              call->refused, call->host);
  else
    call_fail(call, "cannot resolve '%s': no IPv4 or IPv6 address", call->host);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  http_client_call_t *call = req->data;
  call->resolving = false;
  call->resolved = res;
  if (call->done) {
    call_maybe_free(call);
    return;
  }
  if (status < 0) {
    call_fail(call, "cannot resolve '%s': %s", call->host, uv_strerror(status));
    return;
  }
  call->next_addr = res;
  try_next_address(call);
}

/* Opens a fresh connection for the call: the addresses of its host,
 * resolved now (a pooled connection was checked when it was opened). */
static void call_connect(http_client_call_t *call) {
  call->connect_err = 0;
  call->refused[0] = '\0';
  if (call->is_literal) {
    call->next_addr = &call->literal_ai;
    try_next_address(call);
    return;
  }
  if (call->resolved) {
    uv_freeaddrinfo(call->resolved);
    call->resolved = NULL;
  }
  char port[8];
  snprintf(port, sizeof port, "%u", call->port);
  struct addrinfo hints = {.ai_family = AF_UNSPEC,
                           .ai_socktype = SOCK_STREAM,
                           .ai_protocol = IPPROTO_TCP,
                           .ai_flags = AI_NUMERICSERV};
  int rc = uv_getaddrinfo(call->client->loop, &call->gai, on_resolved, call->host, port, &hints);
  if (rc < 0)
    call_fail(call, "cannot resolve '%s': %s", call->host, uv_strerror(rc));
  else
    call->resolving = true;
}

/* An IP literal becomes the one address to try, without the thread pool. */
static void set_literal(http_client_call_t *call, bool ipv6) {
  struct sockaddr *sa = (struct sockaddr *)&call->literal_sa;
  if (ipv6)
    call->is_literal = !uv_ip6_addr(call->host, call->port, (struct sockaddr_in6 *)sa);
  else
    call->is_literal = !uv_ip4_addr(call->host, call->port, (struct sockaddr_in *)sa);
  call->literal_ai = (struct addrinfo){.ai_family = sa->sa_family,
                                       .ai_socktype = SOCK_STREAM,
                                       .ai_addr = sa,
                                       .ai_addrlen = sizeof call->literal_sa};
}

/* Checks the request and writes its bytes; false after call_fail. */
static bool call_prepare(http_client_call_t *call, const http_client_request_t *req) {
  http_client_t *c = call->client;
  const char *method = req->method ? req->method : "GET";
  if (!http_is_token(method, strlen(method))) {
    call_fail(call, "the method is not a valid HTTP method name");
    return false;
  }
  int known = http_method_number(method, strlen(method));
  if (known >= 0)
    method = http_method_name(known);
  call->idempotent = http_client_idempotent(method);
  call->head = !strcmp(method, "HEAD");
  http_client_url_t url;
  const char *err;
  if (req->url == NULL || http_client_parse_url(req->url, strlen(req->url), &url, &err)) {
    call_fail(call, "%s", req->url ? err : "the request has no URL");
    return false;
  }
  snprintf(call->host, sizeof call->host, "%.*s", (int)url.host_len, url.host);
  call->port = url.port;
  int n = snprintf(call->key, sizeof call->key, "%s:%u", call->host, url.port);
  for (int i = 0; i < n; i++) /* names are case-insensitive */
    call->key[i] = (char)tolower((unsigned char)call->key[i]);
  set_literal(call, url.ipv6);
  char why[sizeof call->error];
  int rc = http_client_write_request(&call->req, method, &url, req, why, sizeof why);
  if (rc) {
    call_fail(call, "%s", rc == -ENOMEM ? "out of memory" : why);
    return false;
  }
  if (c->opts.outbound == HTTP_CLIENT_OUTBOUND_OFF) {
    call_fail(call, "outbound connections are turned off (--outbound off)");
    return false;
  }
  return true;
}

int http_client_request(http_client_t *c, const http_client_request_t *req, http_client_cb cb,
                        void *arg, http_client_call_t **out) {
  if (c->freeing)
    return -ECANCELED;
  http_client_call_t *call = calloc(1, sizeof *call);
  if (call == NULL)
    return -ENOMEM;
  call->client = c;
  call->cb = cb;
  call->arg = arg;
  call->start_ns = uv_hrtime();
  call->timeout_ms = req->timeout_ms ? req->timeout_ms : HTTP_CLIENT_DEFAULT_TIMEOUT_MS;
  call->gai.data = call->timer.data = call;
  uv_timer_init(c->loop, &call->timer);
  call->next = c->calls;
  if (c->calls)
    c->calls->prev = call;
  c->calls = call;
  c->live++;
  c->stats.in_flight++;
  call->starting = true;
  /* The loop's clock stands where this turn began, maybe long ago (a view
   * that computed before calling): the timeout counts from now. */
  uv_update_time(c->loop);
  uv_timer_start(&call->timer, on_call_timer, call->timeout_ms, 0);
  if (call_prepare(call, req)) {
    conn_t *conn = pool_take(c, call->key);
    if (conn)
      call_send(call, conn);
    else
      call_connect(call);
  }
  call->starting = false;
  if (out)
    *out = call;
  return 0;
}

void http_client_cancel(http_client_call_t *call) {
  if (call == NULL || call->done)
    return;
  call->cancelled = true;
  call_drop_conn(call);
  call_finish(call, false);
}

int http_client_new(uv_loop_t *loop, const http_client_options_t *opts, http_client_t **out) {
  http_client_t *c = calloc(1, sizeof *c);
  if (c == NULL)
    return -ENOMEM;
  c->loop = loop;
  if (opts)
    c->opts = *opts;
  if (c->opts.max_body == 0)
    c->opts.max_body = HTTP_CLIENT_DEFAULT_MAX_BODY;
  if (c->opts.max_head == 0)
    c->opts.max_head = HTTP_CLIENT_DEFAULT_MAX_HEAD;
  if (c->opts.idle_per_peer == 0)
    c->opts.idle_per_peer = HTTP_CLIENT_DEFAULT_IDLE_PER_PEER;
  if (c->opts.idle_total == 0)
    c->opts.idle_total = HTTP_CLIENT_DEFAULT_IDLE_TOTAL;
  if (c->opts.idle_timeout_ms == 0)
    c->opts.idle_timeout_ms = HTTP_CLIENT_DEFAULT_IDLE_TIMEOUT_MS;
  *out = c;
  return 0;
}

void http_client_free(http_client_t *c) {
  if (c == NULL)
    return;
  c->freeing = true;
  /* Neither list loses a member before the loop runs close callbacks. */
  for (http_client_call_t *call = c->calls; call; call = call->next) {
    if (call->done)
      continue;
    if (call->error[0] == '\0')
      snprintf(call->error, sizeof call->error, "the client was shut down");
    call_drop_conn(call);
    call_finish(call, false);
  }
  for (conn_t *conn = c->conns; conn; conn = conn->next)
    conn_close(conn);
  if (c->live == 0)
    free(c);
}

void http_client_stats(const http_client_t *c, http_client_stats_t *out) { *out = c->stats; }
