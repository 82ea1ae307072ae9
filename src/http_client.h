/* http_client.h - outbound HTTP/1.1 requests on the event loop.
 *
 * The contract:
 * - Everything runs on the caller's uv loop and nothing blocks it: names
 *   are resolved with uv_getaddrinfo (the thread pool), connections and
 *   answers go through libuv TCP, answers are parsed with llhttp in
 *   response mode.
 * - Only http:// URLs (http_client_parse_url). An https:// URL, a user
 *   name or password in the URL, or an invalid host or port is refused
 *   with a message that says which.
 * - Before any connect, every address that would be tried (the resolved
 *   ones, not the name: a name that resolves somewhere else later is
 *   checked again) is put to the outbound policy; a refused address is
 *   never connected to.
 * - One timeout per request covers resolving, connecting, sending and the
 *   whole answer. The answer's head and body have size caps; over a cap
 *   the request fails and its connection is closed.
 * - Answers: interim 1xx answers are skipped; the body is framed by
 *   Content-Length, chunked coding, or the end of the connection; answers
 *   to HEAD and 204/304 answers have no body. Header names are given as
 *   received, in order, repeated ones repeated.
 * - Keep-alive: a connection whose answer was read whole and that the
 *   server keeps open goes to a pool per host:port (a few per peer, closed
 *   after an idle timeout or when the server closes it). A request on a
 *   pooled connection that the server had closed meanwhile is sent again
 *   once on a fresh connection when nothing of the answer arrived and the
 *   method is idempotent, or whatever the method when the request could not
 *   be written.
 * - Each request ends with exactly one call of its callback, never from
 *   inside http_client_request, unless it is cancelled first.
 *
 * A client object owns its connections, its pool and its requests: there
 * is no file-scope state, and two clients on two loops are independent.
 * Not thread-safe: use a client from its loop's thread only.
 */
#ifndef H1MOCK_HTTP_CLIENT_H
#define H1MOCK_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "http.h" /* http_header_t */

/* Which addresses a client may connect to (the later --outbound). */
typedef enum http_client_outbound {
  HTTP_CLIENT_OUTBOUND_ANY,      /* every address */
  HTTP_CLIENT_OUTBOUND_LOOPBACK, /* 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104 only */
  HTTP_CLIENT_OUTBOUND_OFF,      /* none: every request fails before resolving */
} http_client_outbound_t;

#define HTTP_CLIENT_DEFAULT_TIMEOUT_MS 10000
#define HTTP_CLIENT_DEFAULT_MAX_BODY (8u * 1024 * 1024)
#define HTTP_CLIENT_DEFAULT_MAX_HEAD (64u * 1024)
#define HTTP_CLIENT_DEFAULT_IDLE_PER_PEER 64
#define HTTP_CLIENT_DEFAULT_IDLE_TOTAL 256
#define HTTP_CLIENT_DEFAULT_IDLE_TIMEOUT_MS 5000

/* Zero in a field means its default. */
typedef struct http_client_options {
  http_client_outbound_t outbound;
  size_t max_body;          /* bytes of an answer's body */
  size_t max_head;          /* bytes of an answer's status line and headers */
  unsigned idle_per_peer;   /* pooled connections kept per host:port */
  unsigned idle_total;      /* pooled connections kept in all: the least recently used go */
  uint64_t idle_timeout_ms; /* a pooled connection unused this long is closed */
} http_client_options_t;

typedef struct http_client http_client_t;
typedef struct http_client_call http_client_call_t;

typedef struct http_client_request {
  const char *method; /* a token; NULL is GET. Known methods in any case are upper-cased. */
  const char *url;    /* "http://host[:port][/path][?query]"; a "#fragment" is dropped */
  /* Sent in order after Host (which a "Host" here replaces). Content-Length,
   * Transfer-Encoding and Connection are dropped: the client frames the
   * request and asks for keep-alive itself. A name that is not a token or a
   * value holding CR, LF or NUL fails the request. */
  const http_header_t *headers;
  size_t nheaders;
  /* With has_body, sent with Content-Length (even when empty); without,
   * POST, PUT and PATCH send "Content-Length: 0" and others no length. */
  const char *body;
  size_t body_len;
  bool has_body;
  uint64_t timeout_ms; /* 0: HTTP_CLIENT_DEFAULT_TIMEOUT_MS */
} http_client_request_t;

typedef struct http_client_result {
  /* NULL on success; else one line saying what failed ("connection
   * refused", "timed out after 10 s", "cannot resolve 'x': ...", "the answer
   * is malformed: ...", "the answer's body is larger than N bytes", ...),
   * and the fields below are zero. */
  const char *error;
  int status;
  const http_header_t *headers; /* as received, in order */
  size_t nheaders;
  const char *body; /* "" when empty; not NUL-terminated otherwise */
  size_t body_len;
  uint64_t duration_us; /* from http_client_request to this result */
} http_client_result_t;

/* Called once per request. Everything `r` points to is valid only during
 * the call. The callback may start new requests and free nothing but its
 * own state (not the client: see http_client_free). */
typedef void (*http_client_cb)(void *arg, const http_client_result_t *r);

/* Makes a client on `loop`; `opts` may be NULL (all defaults). Returns 0
 * or -ENOMEM. */
int http_client_new(uv_loop_t *loop, const http_client_options_t *opts, http_client_t **out);

/* Fails every request in flight (their callbacks run now, with the error
 * "the client was shut down"), closes every connection, and frees the
 * client once libuv has closed them: run the loop until it has nothing
 * left to do, as after uv_close. Callbacks that run here cannot start new
 * requests (http_client_request returns -ECANCELED). NULL is a no-op. */
void http_client_free(http_client_t *c);

/* Starts a request. Every failure, bad input included, goes to `cb`, on a
 * later turn of the loop; `*call` (when `call` is not NULL) is a handle for
 * http_client_cancel, valid until the callback has returned. `req` and
 * what it points to may go as soon as this returns: the client copies what
 * it needs. Returns 0, -ENOMEM, or -ECANCELED inside http_client_free; on
 * an error `cb` is never called. */
int http_client_request(http_client_t *c, const http_client_request_t *req, http_client_cb cb,
                        void *arg, http_client_call_t **call);

/* Forgets a request whose caller went away: its callback is not called,
 * its connection (mid-exchange, so not reusable) is closed. Only before
 * the callback has run. */
void http_client_cancel(http_client_call_t *call);

typedef struct http_client_stats {
  uint64_t connects; /* connections attempted (each address tried counts) */
  uint64_t reuses;   /* requests sent on a pooled connection */
  uint64_t retries;  /* requests sent again after a pooled connection failed */
  size_t idle;       /* connections in the pool now */
  size_t in_flight;  /* requests whose callback has not run yet */
} http_client_stats_t;

void http_client_stats(const http_client_t *c, http_client_stats_t *out);

/* A parsed http:// URL. The pointers point into the parsed string. */
typedef struct http_client_url {
  const char *host; /* without the brackets of an IPv6 literal */
  size_t host_len;
  const char *authority; /* host[:port] as written, for the Host header */
  size_t authority_len;
  const char *target; /* path and query as written; "" means "/" */
  size_t target_len;
  uint16_t port; /* 80 when the URL names none */
  bool ipv6;     /* the host is a bracketed IPv6 literal */
} http_client_url_t;

/* Parses `len` bytes of `url`. Returns 0, or -EINVAL with `*error` set to
 * a static message ("https is not supported yet", "the URL must not hold a
 * user name or password", "the URL's port must be a number from 1 to
 * 65535", ...). */
int http_client_parse_url(const char *url, size_t len, http_client_url_t *out, const char **error);

/* True when `policy` lets the client connect to `addr` (AF_INET or
 * AF_INET6; any other family is refused). */
bool http_client_address_allowed(http_client_outbound_t policy, const struct sockaddr *addr);

#endif
