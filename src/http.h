/* http.h - HTTP/1.1 messages without I/O.
 *
 * http_in turns bytes into requests with llhttp and enforces the limits that
 * keep a mock safe on a shared network: head size (431), target length (414),
 * body size (413), and strict RFC 9112 framing, so that a proxy in front
 * cannot read a request differently (request smuggling). llhttp refuses
 * Content-Length with Transfer-Encoding and two Content-Lengths; http_in
 * adds what llhttp 8.1 lets through outside its strict build (which would
 * also refuse UTF-8 targets): chunk data not followed by CRLF, non-token
 * header names, bare LF or CR line ends, obsolete line folding, no Host on
 * HTTP/1.1 or more than one, an invalid Host, Transfer-Encoding in HTTP/1.0
 * or not ending in chunked (400), another coding before chunked (501), and
 * versions other than 1.0 and 1.1 (505; HTTP/0.9 400). Everything a request
 * holds is copied into buffers owned by the http_in, so the caller may reuse
 * its read buffer as soon as http_in_feed returns.
 *
 * http_response_* serialize an answer: the status line, the headers a view
 * set (validated), and the framing headers the server owns.
 *
 * Nothing here touches a socket, so unit tests and fuzzers drive it with
 * byte strings.
 */
#ifndef H1MOCK_HTTP_H
#define H1MOCK_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <llhttp.h> /* the method numbers: HTTP_GET, ... */

#include "buf.h"

#define HTTP_MAX_HEAD (16 * 1024)  /* request line + headers */
#define HTTP_MAX_TARGET (8 * 1024) /* request target */
#define HTTP_MAX_HEADERS 100

typedef struct http_header {
  const char *name;
  size_t name_len;
  const char *value;
  size_t value_len;
} http_header_t;

typedef struct http_request {
  int method; /* llhttp's method number, 0..63 */
  unsigned char http_major, http_minor;
  bool keep_alive;
  const char *target; /* as sent */
  size_t target_len;
  const char *path; /* percent-decoded, starts with "/" (or is "*") */
  size_t path_len;
  const char *raw_path; /* the path as sent (no scheme, authority or query); may be "" */
  size_t raw_path_len;
  const char *query; /* raw, without the "?"; "" when absent */
  size_t query_len;
  const http_header_t *headers; /* values without surrounding whitespace; the Host of
                                  an absolute-form target is its host[:port] */
  size_t nheaders;
  const char *body;
  size_t body_len;
} http_request_t;

enum http_in_status {
  HTTP_IN_MORE,    /* every byte was used; feed more */
  HTTP_IN_REQUEST, /* a whole request is ready; `*used` bytes were taken */
  HTTP_IN_ERROR,   /* answer http_in_error() and close the connection */
};

typedef struct http_in http_in_t;

/* Returns a parser for one connection, or NULL when out of memory. */
http_in_t *http_in_new(size_t max_body);
void http_in_free(http_in_t *in);

/* Parses up to `len` bytes. After HTTP_IN_REQUEST, the request stays valid
 * until http_in_next(); bytes after it (a pipelined request) were not used
 * and must be fed again after http_in_next(). */
enum http_in_status http_in_feed(http_in_t *in, const char *data, size_t len, size_t *used);

/* True once per request that sent "Expect: 100-continue" and has a body to
 * come: the caller writes "HTTP/1.1 100 Continue" before reading on. */
bool http_in_take_continue(http_in_t *in);

/* True while part of a request head has arrived (for the 408 timeout). */
bool http_in_started(const http_in_t *in);
/* True once the head of the current request is complete (its body may
 * still be arriving). */
bool http_in_head_done(const http_in_t *in);

const http_request_t *http_in_request(const http_in_t *in);

/* Forgets the current request and gets ready for the next one. */
void http_in_next(http_in_t *in);

/* Makes the parser as good as new whatever it was doing (a request half
 * read, an error, a "Connection: close"), for another connection; keeps
 * the limits it was made with and buffers of a usual size. */
void http_in_reset(http_in_t *in);

/* After HTTP_IN_ERROR: the status to answer (400, 413, 414, 417, 431, 501,
 * 505) and a one-line explanation for the body, which quotes no request
 * bytes. */
int http_in_error(const http_in_t *in, const char **text);

/* After HTTP_IN_ERROR: the refused request when its head was read whole
 * (a body over the limit, an unmet Expect, a framing rule its headers
 * break), with an empty body; else NULL. */
const http_request_t *http_in_refused(const http_in_t *in);

/* Percent-decodes n bytes of src into dst (room for n bytes); with
 * plus_is_space, "+" becomes a space (form and query encoding). Malformed
 * escapes are copied as they are. Returns the decoded length. */
size_t http_percent_decode(char *dst, const char *src, size_t n, bool plus_is_space);

/* True when the n bytes of `name` are `want` in any letter case (header
 * names). */
bool http_name_is(const char *name, size_t n, const char *want);

/* Finds a request header by case-insensitive name; NULL when absent. */
const http_header_t *http_request_header(const http_request_t *r, const char *name);

/* "GET", ... for a method number; NULL when unknown. */
const char *http_method_name(int method);
/* The method number for a name, in any letter case ("get" is GET), or -1. */
int http_method_number(const char *name, size_t len);
/* True when the n bytes (n > 0) are an RFC 9110 token, as method and
 * header field names must be. */
bool http_is_token(const char *s, size_t n);

/* The standard reason phrase, or "Unknown". */
const char *http_reason(int status);

/* The IMF-fixdate of now, refreshed by http_date_update (once a second). */
const char *http_date(void);
void http_date_update(void);

/* What a body producer's next() returns; a negative -errno is a failure
 * (the connection closes, since the body cannot be finished). */
enum http_stream_status {
  HTTP_STREAM_MORE, /* a piece was appended; ask again once it is written */
  HTTP_STREAM_END,  /* the piece appended (maybe none) was the last */
  HTTP_STREAM_WAIT, /* the piece appended (maybe none) is all for now: ask
                       again only after the producer called wake() */
};

/* A response body made in pieces while it is sent, for bodies too large to
 * build in memory (the journal export). The connection calls next() each
 * time the previous piece has been written, sends each piece as one chunk
 * (Transfer-Encoding: chunked; to an HTTP/1.0 client without a length, then
 * closes), and calls close() exactly once: after HTTP_STREAM_END with
 * finished = true, or earlier with false (the client went away, a HEAD
 * answer, an error). Embed it first in the producer's own struct. A
 * producer that paces its body over time (dribble.h) answers
 * HTTP_STREAM_WAIT and calls wake() when it has more. */
typedef struct http_stream http_stream_t;
struct http_stream {
  /* Appends the next piece to out (which the caller empties first): a few
   * tens of KiB keeps memory low and the loop responsive. */
  int (*next)(http_stream_t *s, buf_t *out);
  void (*close)(http_stream_t *s, bool finished);
  /* Set by the connection before the first next(): after a
   * HTTP_STREAM_WAIT, the producer calls wake(s) once, on the loop, when
   * it has more (never after close()). */
  void (*wake)(http_stream_t *s);
  void *waker;
};

/* What fault() asks of the connection instead of a proper answer. */
enum http_fault {
  HTTP_FAULT_NONE,
  HTTP_FAULT_RESET,           /* a TCP reset, nothing sent */
  HTTP_FAULT_EMPTY,           /* the connection closed without a byte */
  HTTP_FAULT_RANDOM,          /* bytes that are not HTTP, then a close */
  HTTP_FAULT_MALFORMED_CHUNK, /* a valid head, then a broken chunked body, then a close */
};

/* "reset", "empty", "random", "malformed_chunk"; NULL for none. */
const char *http_fault_name(int fault);
/* The fault named by the n bytes of name, or HTTP_FAULT_NONE. */
int http_fault_number(const char *name, size_t n);

typedef struct http_response {
  int status;
  buf_t reason;  /* empty: the standard phrase */
  buf_t headers; /* "Name: value\r\n" lines set by the view */
  buf_t body;
  bool has_content_type;
  bool has_server;
  bool has_date;
  /* Set instead of `body` for a streamed body; the response owns it until
   * the connection takes it (reset and free close it). */
  http_stream_t *stream;
  int fault; /* enum http_fault: the connection misbehaves on purpose */
  /* dribble(): the body goes in this many pieces spread over dribble_ms
   * (the connection makes the stream); 0: at once. */
  unsigned dribble_chunks;
  unsigned dribble_ms;
} http_response_t;

void http_response_reset(http_response_t *r);
void http_response_free(http_response_t *r);

/* True when an answer with this status carries a body (RFC 9110 6.4.1):
 * every status but 1xx, 204 and 304. The one place this rule lives: the
 * server, the access log and the outbound client ask here. */
bool http_status_has_body(int status);

/* True when the answer to `req_method` carries a body: not for HEAD, 1xx,
 * 204 or 304. */
bool http_response_sends_body(const http_response_t *r, int req_method);

/* Adds a header a view set. Framing headers (Content-Length,
 * Transfer-Encoding, Connection) are dropped because the server computes
 * them. Returns 0, or -EINVAL when the name is not a token or the value
 * holds CR, LF or NUL (header injection), or -ENOMEM. */
int http_response_header(http_response_t *r, const char *name, size_t nlen, const char *value,
                         size_t vlen);

/* A Content-Type value (parameters allowed) names JSON: application/json
 * or any +json type, in any case. */
bool http_mimetype_is_json(const char *ct, size_t n);

/* The value of the response's header `name` (any case), or NULL; *len is
 * set. The first one when there are several. */
const char *http_response_header_value(const http_response_t *r, const char *name, size_t *len);

/* Sets the status, body and a Content-Type in one go, for answers the server
 * makes itself (errors, redirects). */
int http_response_simple(http_response_t *r, int status, const char *content_type,
                         const char *body, size_t len);

/* Appends the serialized response for `req_method` to `out`: status line,
 * Server, Date, the view's headers, Content-Length, Connection, and the
 * body unless the method is HEAD or the status has none. With a stream,
 * Content-Length gives way to "Transfer-Encoding: chunked" (to an HTTP/1.0
 * client: nothing, and keep_alive must be false) and no body is appended:
 * the caller sends the stream's pieces. */
int http_response_write(const http_response_t *r, int req_method, bool keep_alive, bool http10,
                        buf_t *out);

#endif
