/* http_client_int.h - the I/O-free parts of the HTTP client, shared by
 * http_client.c (connections, pool, requests) and http_client_parse.c
 * (URLs, the request bytes, the answer parser), and driven directly by the
 * unit tests with byte strings. */
#ifndef H1MOCK_HTTP_CLIENT_INT_H
#define H1MOCK_HTTP_CLIENT_INT_H

#include <llhttp.h>

#include "buf.h"
#include "http_client.h"

/* Where a header's name and value sit in the answer's arena. */
typedef struct http_client_span {
  size_t name_off, name_len, value_off, value_len;
} http_client_span_t;

/* One answer being read: llhttp in response mode plus what it found. */
typedef struct http_client_answer {
  llhttp_t parser;
  size_t max_head, max_body;
  bool head_request; /* the request was HEAD: no body whatever the headers say */
  bool started;      /* a byte of the answer arrived */
  bool name_done;    /* the last header name is complete: the next one is a new header */
  bool head_done;    /* the final answer's headers are complete: later ones are trailers */
  bool complete;     /* the final answer is complete */
  bool keep_alive;   /* once complete: the server keeps the connection open */
  int status;
  size_t head_bytes; /* status line and headers so far, for max_head */
  buf_t arena;       /* header names and values */
  http_client_span_t *spans;
  size_t nspans, cap_spans;
  http_header_t *headers; /* built from the spans once the answer is complete */
  buf_t body;
  char error[192];
} http_client_answer_t;

enum http_client_feed {
  HTTP_CLIENT_FEED_MORE,  /* every byte was used; the answer goes on */
  HTTP_CLIENT_FEED_DONE,  /* the answer is complete; `*used` bytes were taken */
  HTTP_CLIENT_FEED_ERROR, /* the answer is refused; `error` says why */
};

/* Readies `a` for the answer to a request (HEAD or not). Keeps buffers
 * from an earlier answer. */
void http_client_answer_reset(http_client_answer_t *a, size_t max_head, size_t max_body,
                              bool head_request);
void http_client_answer_free(http_client_answer_t *a);

/* Parses up to `len` bytes; after DONE the bytes past `*used` are not part
 * of the answer. */
enum http_client_feed http_client_answer_feed(http_client_answer_t *a, const char *data,
                                              size_t len, size_t *used);

/* The server closed the connection: DONE when that ends a body read until
 * close, else ERROR with the reason. */
enum http_client_feed http_client_answer_eof(http_client_answer_t *a);

/* After DONE: the answer as a result (no error, no duration). Pointers
 * into `a`, valid until the next reset. */
void http_client_answer_result(http_client_answer_t *a, http_client_result_t *r);

/* Appends the request's bytes to `out`: the request line, Host, the
 * caller's headers, framing, Connection: keep-alive, the body. `method`
 * must be a token. Returns 0, -ENOMEM, or -EINVAL with `error` (room for
 * `error_len` bytes) saying which header is refused. */
int http_client_write_request(buf_t *out, const char *method, const http_client_url_t *url,
                              const http_client_request_t *req, char *error, size_t error_len);

/* True for the methods RFC 9110 calls idempotent: sending one twice does
 * no more than sending it once. */
bool http_client_idempotent(const char *method);

#endif
