/* http_client_parse.c - the HTTP client's bytes without I/O: URLs, the
 * outbound policy, the request it writes and the answer it reads. */
#include "http_client_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "text.h"

#define MAX_HOST 253 /* the longest DNS name */

static bool prefix(const char *s, size_t len, const char *p) {
  size_t n = strlen(p);
  return len >= n && strncasecmp(s, p, n) == 0;
}

static bool is_host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_';
}

/* "[v6]", leaving `rest` after the "]"; NULL or the message. */
static const char *parse_ipv6(const char *a, size_t n, http_client_url_t *u, const char **rest) {
  const char *close = memchr(a, ']', n);
  if (close == NULL)
    return "the URL's IPv6 address lacks its closing ']'";
  char text[INET6_ADDRSTRLEN];
  struct in6_addr addr;
  size_t len = (size_t)(close - a - 1);
  if (len == 0 || len >= sizeof text)
    return "the URL's IPv6 address is invalid";
  memcpy(text, a + 1, len);
  text[len] = '\0';
  if (inet_pton(AF_INET6, text, &addr) != 1)
    return "the URL's IPv6 address is invalid"; /* zone IDs ("%25eth0") too */
  u->host = a + 1;
  u->host_len = len;
  u->ipv6 = true;
  *rest = close + 1;
  return NULL;
}

/* ":port" or nothing, up to `end`; NULL or the message. */
static const char *parse_port(const char *p, const char *end, http_client_url_t *u) {
  u->port = 80;
  if (p == end)
    return NULL;
  static const char *bad = "the URL's port must be a number from 1 to 65535";
  if (*p != ':' || end - p < 2 || end - p > 6)
    return *p == ':' ? bad : "the URL's host is invalid";
  unsigned long port = 0;
  for (p++; p < end; p++) {
    if (*p < '0' || *p > '9')
      return bad;
    port = port * 10 + (unsigned long)(*p - '0');
  }
  if (port < 1 || port > 65535)
    return bad;
  u->port = (uint16_t)port;
  return NULL;
}

int http_client_parse_url(const char *url, size_t len, http_client_url_t *out,
                          const char **error) {
  memset(out, 0, sizeof *out);
  const char *err = NULL;
  if (prefix(url, len, "https://")) {
    err = "https is not supported yet";
    goto out;
  }
  if (!prefix(url, len, "http://")) {
    err = "the URL must start with http://";
    goto out;
  }
  /* The bytes go on the request line as they are: nothing there may end
   * it or be read as two words. */
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)url[i];
    if (c <= ' ' || c >= 0x7f) {
      err = "the URL holds a space, a control character or a non-ASCII byte (percent-encode "
            "them)";
      goto out;
    }
  }
  const char *a = url + 7, *end = url + len;
  const char *a_end = a;
  while (a_end < end && *a_end != '/' && *a_end != '?' && *a_end != '#')
    a_end++;
  size_t an = (size_t)(a_end - a);
  if (memchr(a, '@', an)) {
    err = "the URL must not hold a user name or password";
    goto out;
  }
  if (an == 0 || *a == ':') {
    err = "the URL has no host";
    goto out;
  }
  const char *rest;
  if (*a == '[') {
    if ((err = parse_ipv6(a, an, out, &rest)))
      goto out;
  } else {
    rest = a;
    while (rest < a_end && *rest != ':')
      if (!is_host_char(*rest++)) {
        err = "the URL's host is invalid";
        goto out;
      }
    out->host = a;
    out->host_len = (size_t)(rest - a);
    if (out->host_len > MAX_HOST) {
      err = "the URL's host is longer than 253 characters";
      goto out;
    }
  }
  if ((err = parse_port(rest, a_end, out)))
    goto out;
  out->authority = a;
  out->authority_len = an;
  const char *hash = memchr(a_end, '#', (size_t)(end - a_end));
  out->target = a_end;
  out->target_len = (size_t)((hash ? hash : end) - a_end);
out:
  *error = err;
  return err ? -EINVAL : 0;
}

bool http_client_address_allowed(http_client_outbound_t policy, const struct sockaddr *addr) {
  if (addr->sa_family != AF_INET && addr->sa_family != AF_INET6)
    return false;
  switch (policy) {
  case HTTP_CLIENT_OUTBOUND_ANY: return true;
  case HTTP_CLIENT_OUTBOUND_LOOPBACK:
    if (addr->sa_family == AF_INET) {
      const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
      return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    } else {
      const struct in6_addr *a6 = &((const struct sockaddr_in6 *)addr)->sin6_addr;
      /* An IPv4-mapped address reaches the IPv4 host it maps. */
      return IN6_IS_ADDR_LOOPBACK(a6) || (IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127);
    }
  case HTTP_CLIENT_OUTBOUND_OFF: return false;
  }
  return false;
}

/* Framing and connection handling belong to the client. */
static bool client_owned(const http_header_t *h) {
  static const char *const names[] = {"content-length", "transfer-encoding", "connection"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (h->name_len == strlen(names[i]) && strncasecmp(h->name, names[i], h->name_len) == 0)
      return true;
  return false;
}

static const char *check_header(const http_header_t *h) {
  if (!http_is_token(h->name, h->name_len))
    return "is not a valid header name";
  for (size_t i = 0; i < h->value_len; i++)
    if (h->value[i] == '\r' || h->value[i] == '\n' || h->value[i] == '\0')
      return "has a value holding CR, LF or NUL";
  return NULL;
}

int http_client_write_request(buf_t *out, const char *method, const http_client_url_t *url,
                              const http_client_request_t *req, char *error, size_t error_len) {
  bool has_host = false;
  for (size_t i = 0; i < req->nheaders; i++) {
    const http_header_t *h = &req->headers[i];
    const char *why = check_header(h);
    if (why) {
      buf_t name = BUF_INIT;
      snprintf(error, error_len, "the header \"%s\" %s",
               text_escape_str(&name, h->name, h->name_len, 40, TEXT_ESCAPE_VALUE), why);
      buf_free(&name);
      return -EINVAL;
    }
    has_host |= h->name_len == 4 && strncasecmp(h->name, "host", 4) == 0;
  }
  bool slash = url->target_len == 0 || url->target[0] != '/';
  int rc = buf_printf(out, "%s %s%.*s HTTP/1.1\r\n", method, slash ? "/" : "",
                      (int)url->target_len, url->target);
  if (!rc && !has_host)
    rc = buf_printf(out, "Host: %.*s\r\n", (int)url->authority_len, url->authority);
  for (size_t i = 0; i < req->nheaders && !rc; i++) {
    const http_header_t *h = &req->headers[i];
    if (!client_owned(h))
      rc = buf_printf(out, "%.*s: %.*s\r\n", (int)h->name_len, h->name, (int)h->value_len,
                      h->value);
  }
  bool wants_length =
      !strcmp(method, "POST") || !strcmp(method, "PUT") || !strcmp(method, "PATCH");
  if (!rc && (req->has_body || wants_length))
    rc = buf_printf(out, "Content-Length: %zu\r\n", req->has_body ? req->body_len : 0);
  if (!rc)
    rc = buf_puts(out, "Connection: keep-alive\r\n\r\n");
  if (!rc && req->has_body)
    rc = buf_append(out, req->body, req->body_len);
  return rc;
}

bool http_client_idempotent(const char *method) {
  static const char *const names[] = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (!strcmp(method, names[i]))
      return true;
  return false;
}

/* The answer parser. A callback that refuses the answer writes why into
 * a->error and returns -1; http_client_answer_feed then reports that text
 * rather than llhttp's. */

static http_client_answer_t *of(llhttp_t *p) { return p->data; }

static int refuse(http_client_answer_t *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int refuse(http_client_answer_t *a, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(a->error, sizeof a->error, fmt, ap);
  va_end(ap);
  return -1;
}

/* Counts head bytes, trailers included, against the cap. */
static int count_head(http_client_answer_t *a, size_t n) {
  a->head_bytes += n;
  if (a->head_bytes > a->max_head)
    return refuse(a, "the answer's head is larger than %zu bytes", a->max_head);
  return 0;
}

static int on_status(llhttp_t *p, const char *at, size_t n) {
  (void)at;
  return count_head(of(p), n);
}

static int on_header_field(llhttp_t *p, const char *at, size_t n) {
  http_client_answer_t *a = of(p);
  bool fresh = a->name_done || a->nspans == 0;
  /* ": " and CRLF count too, so that empty headers cannot pile up for free. */
  if (count_head(a, n + (fresh ? 4 : 0)))
    return -1;
  if (a->head_done)
    return 0; /* a trailer: counted, not kept */
  if (fresh) {
    if (a->nspans == a->cap_spans) {
      size_t cap = a->cap_spans ? a->cap_spans * 2 : 16;
      http_client_span_t *s = realloc(a->spans, cap * sizeof *s);
      if (s == NULL)
        return refuse(a, "out of memory");
      a->spans = s;
      a->cap_spans = cap;
    }
    a->spans[a->nspans++] = (http_client_span_t){a->arena.len, 0, 0, 0};
    a->name_done = false;
  }
  a->spans[a->nspans - 1].name_len += n;
  return buf_append(&a->arena, at, n) ? refuse(a, "out of memory") : 0;
}

static int on_header_field_complete(llhttp_t *p) {
  http_client_answer_t *a = of(p);
  a->name_done = true;
  if (!a->head_done)
    a->spans[a->nspans - 1].value_off = a->arena.len;
  return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n) {
  http_client_answer_t *a = of(p);
  if (count_head(a, n))
    return -1;
  if (a->head_done)
    return 0;
  a->spans[a->nspans - 1].value_len += n;
  return buf_append(&a->arena, at, n) ? refuse(a, "out of memory") : 0;
}

/* Return values, as llhttp reads them: 0 read the body the headers
 * announce, 1 there is none, -1 refused. */
static int on_headers_complete(llhttp_t *p) {
  http_client_answer_t *a = of(p);
  int status = p->status_code;
  if (status == 101)
    return refuse(a, "the server switched protocols (101), which the client does not support");
  if (status >= 100 && status < 200)
    return 1; /* interim: skipped in on_message_complete */
  a->status = status;
  a->head_done = true;
  if (a->head_request || !http_status_has_body(status))
    return 1;
  if ((p->flags & F_CONTENT_LENGTH) && p->content_length > a->max_body)
    return refuse(a, "the answer's body is larger than %zu bytes", a->max_body);
  return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n) {
  http_client_answer_t *a = of(p);
  if (a->body.len + n > a->max_body)
    return refuse(a, "the answer's body is larger than %zu bytes", a->max_body);
  return buf_append(&a->body, at, n) ? refuse(a, "out of memory") : 0;
}

static int on_message_complete(llhttp_t *p) {
  http_client_answer_t *a = of(p);
  if (!a->head_done) {
    /* A 1xx answer ended: the real one follows on the same connection. */
    buf_reset(&a->arena);
    a->nspans = 0;
    a->name_done = false;
    a->head_bytes = 0;
    return 0;
  }
  /* Asked now: llhttp clears what it depends on after this callback. */
  a->keep_alive = llhttp_should_keep_alive(p);
  a->complete = true;
  return HPE_PAUSED;
}

static const llhttp_settings_t answer_settings = {
    .on_status = on_status,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void http_client_answer_reset(http_client_answer_t *a, size_t max_head, size_t max_body,
                              bool head_request) {
  llhttp_init(&a->parser, HTTP_RESPONSE, &answer_settings);
  a->parser.data = a;
  a->max_head = max_head;
  a->max_body = max_body;
  a->head_request = head_request;
  a->started = a->name_done = a->head_done = a->complete = a->keep_alive = false;
  a->status = 0;
  a->head_bytes = 0;
  buf_reset(&a->arena);
  buf_reset(&a->body);
  a->nspans = 0;
  a->error[0] = '\0';
}

void http_client_answer_free(http_client_answer_t *a) {
  buf_free(&a->arena);
  buf_free(&a->body);
  free(a->spans);
  free(a->headers);
  a->spans = NULL;
  a->headers = NULL;
  a->cap_spans = a->nspans = 0;
}

/* The headers as the caller sees them, once the arena stops moving. */
static enum http_client_feed build_headers(http_client_answer_t *a) {
  free(a->headers);
  a->headers = calloc(a->nspans ? a->nspans : 1, sizeof *a->headers);
  if (a->headers == NULL) {
    refuse(a, "out of memory");
    return HTTP_CLIENT_FEED_ERROR;
  }
  for (size_t i = 0; i < a->nspans; i++) {
    const http_client_span_t *s = &a->spans[i];
    a->headers[i] = (http_header_t){a->arena.data + s->name_off, s->name_len,
                                    a->arena.data + s->value_off, s->value_len};
  }
  return HTTP_CLIENT_FEED_DONE;
}

static enum http_client_feed failed(http_client_answer_t *a, llhttp_errno_t e) {
  if (a->error[0] == '\0' && e == HPE_INVALID_EOF_STATE)
    refuse(a, "the server closed the connection in the middle of the answer");
  else if (a->error[0] == '\0')
    refuse(a, "the answer is malformed: %s", llhttp_get_error_reason(&a->parser));
  return HTTP_CLIENT_FEED_ERROR;
}

enum http_client_feed http_client_answer_feed(http_client_answer_t *a, const char *data,
                                              size_t len, size_t *used) {
  *used = len;
  if (a->error[0])
    return HTTP_CLIENT_FEED_ERROR;
  if (len > 0)
    a->started = true;
  llhttp_errno_t e = llhttp_execute(&a->parser, data, len);
  if (e == HPE_OK)
    return HTTP_CLIENT_FEED_MORE;
  if (e == HPE_PAUSED && a->complete) {
    *used = (size_t)(llhttp_get_error_pos(&a->parser) - data);
    return build_headers(a);
  }
  return failed(a, e);
}

enum http_client_feed http_client_answer_eof(http_client_answer_t *a) {
  if (a->error[0])
    return HTTP_CLIENT_FEED_ERROR;
  if (!a->started) {
    refuse(a, "the server closed the connection without answering");
    return HTTP_CLIENT_FEED_ERROR;
  }
  llhttp_errno_t e = llhttp_finish(&a->parser);
  if (a->complete)
    return build_headers(a); /* a body read until the end of the connection */
  return failed(a, e == HPE_OK ? HPE_INVALID_EOF_STATE : e);
}

void http_client_answer_result(http_client_answer_t *a, http_client_result_t *r) {
  memset(r, 0, sizeof *r);
  r->status = a->status;
  r->headers = a->headers;
  r->nheaders = a->nspans;
  r->body = a->body.len ? a->body.data : "";
  r->body_len = a->body.len;
}
