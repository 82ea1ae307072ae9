/* http.c - llhttp behind a byte-buffer interface: requests in, with the
 * framing rules a mock on a shared network must hold to (responses are
 * http_response.c's). */
#include "http.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <llhttp.h>

struct hdr_span {
  size_t name_off, name_len, value_off, value_len;
};

/* Where the line-end check of the request head stands (scan_head). */
struct head_scan {
  bool cr;        /* the last byte was a CR */
  bool in_line;   /* the current line has bytes */
  bool seen_line; /* the request line has started */
  bool done;      /* the empty line that ends the head went by */
};

struct http_in {
  llhttp_t parser;
  size_t max_body;
  buf_t head; /* target, header names and values, decoded path */
  buf_t body;
  size_t target_off, target_len;
  size_t trailer_len;
  struct hdr_span spans[HTTP_MAX_HEADERS];
  size_t nspans;
  /* One more than the spans: a Host taken from an absolute-form target. */
  http_header_t headers[HTTP_MAX_HEADERS + 1];
  http_request_t req;
  struct head_scan scan;
  const char *feed_end; /* the end of the bytes llhttp_execute has now */
  int crlf_left;        /* bytes of a chunk's CRLF still to check */
  bool started;
  bool head_done; /* later header callbacks are trailers: never stored */
  bool want_continue;
  bool in_value; /* the last header callback was for a value */
  int err_status;
  char err_text[160];
};

static int fail(http_in_t *in, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records the answer for a request that cannot be served; returning
 * HPE_USER from a callback makes llhttp_execute stop with it. */
static int fail(http_in_t *in, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(in->err_text, sizeof in->err_text, fmt, ap);
  va_end(ap);
  in->err_status = status;
  return HPE_USER;
}

static http_in_t *of(llhttp_t *p) { return p->data; }

static int on_message_begin(llhttp_t *p) {
  of(p)->started = true;
  return 0;
}

static int grow_head(http_in_t *in, const char *at, size_t n) {
  if (in->head.len + n > HTTP_MAX_HEAD)
    return fail(in, 431, "the request head is larger than %d bytes", HTTP_MAX_HEAD);
  if (buf_append(&in->head, at, n))
    return fail(in, 500, "out of memory");
  return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n) {
  http_in_t *in = of(p);
  if (in->target_len + n > HTTP_MAX_TARGET)
    return fail(in, 414, "the request target is longer than %d bytes", HTTP_MAX_TARGET);
  in->target_len += n;
  return grow_head(in, at, n);
}

/* Trailer fields after a chunked body come through the header callbacks
 * again. They are counted against the head limit but not kept: the request
 * already points into the head buffer, which must not move any more. */
static int trailer_bytes(http_in_t *in, size_t n) {
  if ((in->trailer_len += n) > HTTP_MAX_HEAD)
    return fail(in, 431, "the request trailers are larger than %d bytes", HTTP_MAX_HEAD);
  return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n) {
  http_in_t *in = of(p);
  if (in->head_done)
    return trailer_bytes(in, n);
  if (in->in_value || in->nspans == 0) {
    if (in->nspans == HTTP_MAX_HEADERS)
      return fail(in, 431, "the request has more than %d headers", HTTP_MAX_HEADERS);
    in->spans[in->nspans++] = (struct hdr_span){in->head.len, 0, 0, 0};
    in->in_value = false;
  }
  in->spans[in->nspans - 1].name_len += n;
  return grow_head(in, at, n);
}

static int on_header_field_complete(llhttp_t *p) {
  http_in_t *in = of(p);
  if (in->head_done)
    return 0;
  /* A value may be empty, in which case on_header_value never runs. */
  if (in->nspans == 0 || in->in_value) {
    if (in->nspans == HTTP_MAX_HEADERS)
      return fail(in, 431, "the request has more than %d headers", HTTP_MAX_HEADERS);
    in->spans[in->nspans++] = (struct hdr_span){in->head.len, 0, 0, 0};
  }
  in->spans[in->nspans - 1].value_off = in->head.len;
  in->in_value = true;
  return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n) {
  http_in_t *in = of(p);
  if (in->head_done)
    return trailer_bytes(in, n);
  in->spans[in->nspans - 1].value_len += n;
  return grow_head(in, at, n);
}

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

size_t http_percent_decode(char *dst, const char *src, size_t n, bool plus_is_space) {
  size_t k = 0;
  for (size_t j = 0; j < n; j++) {
    int hi, lo;
    if (src[j] == '%' && j + 2 < n && (hi = hexval(src[j + 1])) >= 0 &&
        (lo = hexval(src[j + 2])) >= 0) {
      dst[k++] = (char)(hi << 4 | lo);
      j += 2;
    } else {
      dst[k++] = plus_is_space && src[j] == '+' ? ' ' : src[j];
    }
  }
  return k;
}

/* Offsets into the head buffer of the parts of a request target. */
struct target {
  size_t path_off, path_len; /* percent-decoded, appended to the head */
  size_t raw_off, raw_len;
  size_t query_off, query_len;
  size_t auth_off, auth_len; /* host[:port] of an absolute-form target */
  bool absolute;
};

/* Appends the percent-decoded path of the target to the head buffer and
 * notes where the query starts. Absolute-form targets lose their scheme and
 * authority (RFC 9112 3.2.2), which are noted for the Host. */
static int split_target(http_in_t *in, struct target *tg) {
  size_t n = in->target_len, i = 0;
  *tg = (struct target){0};
  /* Before the offset is applied: with an empty target ("CONNECT  ") the
   * head buffer may hold nothing yet, and NULL + 0 is undefined. */
  if (n == 0)
    return -EINVAL;
  const char *t = in->head.data + in->target_off;
  tg->absolute =
      n > 7 && (strncasecmp(t, "http://", 7) == 0 || strncasecmp(t, "https://", 8) == 0);
  if (tg->absolute) {
    i = t[4] == ':' ? 7 : 8;
    tg->auth_off = in->target_off + i;
    while (i < n && t[i] != '/' && t[i] != '?' && t[i] != '#')
      i++;
    tg->auth_len = in->target_off + i - tg->auth_off;
  } else if (t[0] != '/' && !(n == 1 && t[0] == '*')) {
    return -EINVAL;
  }
  size_t end = i;
  while (end < n && t[end] != '?' && t[end] != '#')
    end++;
  tg->raw_off = in->target_off + i;
  tg->raw_len = end - i;
  tg->query_off = in->target_off + (end < n && t[end] == '?' ? end + 1 : n);
  size_t qend = end < n && t[end] == '?' ? end + 1 : n;
  while (qend < n && t[qend] != '#')
    qend++;
  tg->query_len = in->target_off + qend - tg->query_off;
  if (end < n && t[end] == '#')
    tg->query_len = 0;

  if (buf_reserve(&in->head, end - i + 1))
    return -ENOMEM;
  t = in->head.data + in->target_off; /* the reserve may have moved it */
  tg->path_off = in->head.len;
  char *d = in->head.data + in->head.len;
  size_t k = 0;
  if (i == end || (t[i] != '/' && t[i] != '*'))
    d[k++] = '/';
  k += http_percent_decode(d + k, t + i, end - i, false);
  in->head.len += k;
  tg->path_len = k;
  return 0;
}

static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* RFC 3986 unreserved and sub-delims: the bytes of a reg-name besides
 * percent escapes. */
static bool is_host_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) ||
         (c != '\0' && strchr("-._~!$&'()*+,;=", c) != NULL);
}

/* True when s[0..n) is uri-host [":" port] (RFC 9110 7.2, RFC 3986 3.2.2):
 * a reg-name or an IP literal in brackets, and a port of digits. Empty is
 * valid: it is the Host of a target without authority. No userinfo. */
static bool host_valid(const char *s, size_t n) {
  size_t i = 0;
  if (n > 0 && s[0] == '[') {
    for (i = 1; i < n && s[i] != ']'; i++)
      if (!is_host_char((unsigned char)s[i]) && s[i] != ':')
        return false;
    if (i == n || i == 1)
      return false;
    i++;
  } else {
    for (; i < n && s[i] != ':'; i++) {
      if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0)
        i += 2;
      else if (!is_host_char((unsigned char)s[i]))
        return false;
    }
  }
  if (i < n && s[i++] != ':')
    return false;
  for (; i < n; i++)
    if (!is_digit((unsigned char)s[i]))
      return false;
  return true;
}

static bool is_ows(char c) { return c == ' ' || c == '\t'; }

/* RFC 9112 6.1: the codings of every Transfer-Encoding line are one list
 * (RFC 9110 5.3), in any letter case, and chunked must come last and once.
 * llhttp has already refused most lists whose last coding is not chunked;
 * h1mock decodes no other coding, so one before chunked is 501. */
static int check_transfer_codings(http_in_t *in, const http_request_t *r) {
  size_t codings = 0;
  bool chunked_last = false, chunked_before = false;
  for (size_t h = 0; h < r->nheaders; h++) {
    if (!http_name_is(r->headers[h].name, r->headers[h].name_len, "transfer-encoding"))
      continue;
    const char *v = r->headers[h].value, *end = v + r->headers[h].value_len;
    while (v < end) {
      while (v < end && (is_ows(*v) || *v == ','))
        v++; /* empty list elements are allowed (RFC 9110 5.6.1) */
      const char *name = v;
      while (v < end && !is_ows(*v) && *v != ',' && *v != ';')
        v++;
      if (v > name) {
        chunked_before |= chunked_last;
        chunked_last = http_name_is(name, (size_t)(v - name), "chunked");
        codings++;
      }
      while (v < end && *v != ',')
        v++; /* transfer parameters */
    }
  }
  if (!chunked_last || chunked_before)
    return fail(in, 400, "chunked must be the last transfer coding, and only once (RFC 9112 6.1)");
  if (codings > 1)
    return fail(in, 501, "h1mock decodes no transfer coding but chunked");
  return 0;
}

/* The header checks of RFC 9112 that llhttp 8.1 leaves to its caller when
 * built without LLHTTP_STRICT_MODE (which would also refuse UTF-8 in
 * targets). Trims the trailing whitespace of values, and gives an
 * absolute-form target's authority as the Host (RFC 9112 3.2.2). */
static int check_headers(http_in_t *in, const struct target *tg) {
  http_request_t *r = &in->req;
  http_header_t *host = NULL;
  for (size_t i = 0; i < in->nspans; i++) {
    http_header_t *h = &in->headers[i];
    while (h->value_len > 0 && is_ows(h->value[h->value_len - 1]))
      h->value_len--; /* RFC 9112 5: OWS around a value is not part of it */
    if (!http_is_token(h->name, h->name_len))
      return fail(in, 400, "a header name holds a byte that a token cannot (RFC 9110 5.1)");
    if (http_name_is(h->name, h->name_len, "host")) {
      if (host != NULL)
        return fail(in, 400, "the request has more than one Host header (RFC 9112 3.2)");
      host = h;
    }
  }
  if (host == NULL && r->http_minor >= 1)
    return fail(in, 400, "an HTTP/1.1 request needs a Host header");
  if (host != NULL && !host_valid(host->value, host->value_len))
    return fail(in, 400, "the Host header is not a valid host[:port] (RFC 9112 3.2)");
  if (tg->absolute) {
    const char *auth = in->head.data + tg->auth_off;
    if (tg->auth_len == 0 || !host_valid(auth, tg->auth_len))
      return fail(in, 400, "the request target's authority is not a valid host[:port]");
    if (host == NULL) {
      host = &in->headers[r->nheaders++]; /* room for it: headers has one more */
      *host = (http_header_t){"Host", 4, NULL, 0};
    }
    host->value = auth;
    host->value_len = tg->auth_len;
  }
  return 0;
}

static int on_headers_complete(llhttp_t *p) {
  http_in_t *in = of(p);
  http_request_t *r = &in->req;
  in->head_done = true;
  struct target tg;
  int rc = split_target(in, &tg);
  if (rc == -EINVAL)
    return fail(in, 400, "the request target must be a path such as /a/b");
  if (rc)
    return fail(in, 500, "out of memory");

  const char *base = in->head.data;
  for (size_t i = 0; i < in->nspans; i++) {
    const struct hdr_span *s = &in->spans[i];
    in->headers[i] =
        (http_header_t){base + s->name_off, s->name_len, base + s->value_off, s->value_len};
  }
  *r = (http_request_t){
      .method = p->method,
      .http_major = p->http_major,
      .http_minor = p->http_minor,
      .target = base + in->target_off,
      .target_len = in->target_len,
      .path = base + tg.path_off,
      .path_len = tg.path_len,
      .raw_path = base + tg.raw_off,
      .raw_path_len = tg.raw_len,
      .query = base + tg.query_off,
      .query_len = tg.query_len,
      .headers = in->headers,
      .nheaders = in->nspans,
      .body = "",
  };
  /* From here on a refusal still shows the request (http_in_refused). */
  if (p->http_major == 0 && p->http_minor == 9)
    return fail(in, 400, "HTTP/0.9 is not supported: send HTTP/1.1 or HTTP/1.0");
  if (p->http_major != 1 || p->http_minor > 1)
    return fail(in, 505, "HTTP/%d.%d is not supported: send HTTP/1.1 or HTTP/1.0", p->http_major,
                p->http_minor);
  if (check_headers(in, &tg))
    return HPE_USER;
  if (p->flags & F_TRANSFER_ENCODING) {
    /* RFC 9112 6.1: an HTTP/1.0 recipient cannot know where such a body
     * ends, so the framing is faulty. */
    if (p->http_minor == 0)
      return fail(in, 400, "Transfer-Encoding is not allowed in an HTTP/1.0 request");
    if (check_transfer_codings(in, r))
      return HPE_USER;
  }
  if ((p->flags & F_CONTENT_LENGTH) && p->content_length > in->max_body)
    return fail(in, 413, "the request body is larger than %zu bytes", in->max_body);

  const http_header_t *expect = http_request_header(r, "expect");
  if (expect != NULL) {
    if (expect->value_len != 12 || strncasecmp(expect->value, "100-continue", 12) != 0)
      return fail(in, 417, "only 'Expect: 100-continue' is supported");
    /* HTTP/1.0 clients do not know 100 Continue (RFC 9110 10.1.1). */
    in->want_continue = p->http_minor >= 1 && ((p->flags & F_CHUNKED) || p->content_length > 0);
  }
  return 0;
}

/* llhttp 8.1 in its default mode skips the two bytes after a chunk's data
 * without looking at them, so "3\r\nabcXX0\r\n\r\n" ends the body early and
 * what follows is read as another request. Checks them from `at` on, as far
 * as this feed goes; the rest waits for the next feed (crlf_left). */
static int check_chunk_crlf(http_in_t *in, const char *at) {
  for (; in->crlf_left > 0 && at < in->feed_end; at++, in->crlf_left--)
    if (*at != "\r\n"[2 - in->crlf_left])
      return fail(in, 400, "a chunk's data is not followed by CRLF (RFC 9112 7.1)");
  return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n) {
  http_in_t *in = of(p);
  if (in->body.len + n > in->max_body)
    return fail(in, 413, "the request body is larger than %zu bytes", in->max_body);
  if (buf_append(&in->body, at, n))
    return fail(in, 500, "out of memory");
  /* During a chunk, content_length counts what is left of it. */
  if ((p->flags & F_CHUNKED) && p->content_length == 0) {
    in->crlf_left = 2;
    return check_chunk_crlf(in, at + n);
  }
  return 0;
}

static int on_message_complete(llhttp_t *p) {
  http_in_t *in = of(p);
  in->req.keep_alive = llhttp_should_keep_alive(p) && !p->upgrade;
  in->req.body = in->body.len ? in->body.data : "";
  in->req.body_len = in->body.len;
  /* Pausing hands the request to the caller; bytes after it wait. */
  return HPE_PAUSED;
}

static const llhttp_settings_t settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

http_in_t *http_in_new(size_t max_body) {
  http_in_t *in = calloc(1, sizeof *in);
  if (in == NULL)
    return NULL;
  llhttp_init(&in->parser, HTTP_REQUEST, &settings);
  /* Any DIGIT.DIGIT version reaches on_headers_complete, which answers 505
   * rather than llhttp's 400 for one it does not know (8.1 has no setter). */
  in->parser.lenient_flags |= LENIENT_VERSION;
  in->parser.data = in;
  in->max_body = max_body;
  return in;
}

void http_in_free(http_in_t *in) {
  if (in == NULL)
    return;
  buf_free(&in->head);
  buf_free(&in->body);
  free(in);
}

/* What llhttp 8.1 accepts at the line ends of a request head and RFC 9112
 * lets a server refuse (2.2, 5.2): a bare LF, which llhttp takes as a line
 * end after the request line and for the empty line, and a line starting
 * with whitespace (obsolete line folding), which llhttp joins to the value
 * above. A front end that reads either otherwise frames the request
 * differently. Checked on the raw bytes before llhttp sees them, up to the
 * empty line that ends the head; empty lines before the request line are
 * skipped as RFC 9112 2.2 asks. */
static int scan_head(http_in_t *in, const char *data, size_t len) {
  struct head_scan *s = &in->scan;
  for (size_t i = 0; i < len && !s->done; i++) {
    char c = data[i];
    if (s->cr && c != '\n')
      return fail(in, 400, "a CR in the request head is not followed by LF (RFC 9112 2.2)");
    if (c == '\r') {
      s->cr = true;
    } else if (c == '\n') {
      if (!s->cr)
        return fail(in, 400, "a line of the request head ends in LF without CR (RFC 9112 2.2)");
      s->done = !s->in_line && s->seen_line;
      s->cr = s->in_line = false;
    } else {
      if (!s->in_line && s->seen_line && is_ows(c))
        return fail(in, 400,
                    "a header line starts with whitespace: obsolete line folding is not "
                    "accepted (RFC 9112 5.2)");
      s->in_line = s->seen_line = true;
    }
  }
  return 0;
}

enum http_in_status http_in_feed(http_in_t *in, const char *data, size_t len, size_t *used) {
  in->feed_end = data + len;
  if (!in->err_status && !in->scan.done)
    scan_head(in, data, len);
  if (!in->err_status && in->crlf_left > 0)
    check_chunk_crlf(in, data);
  if (in->err_status) {
    *used = len;
    return HTTP_IN_ERROR;
  }
  llhttp_errno_t e = llhttp_execute(&in->parser, data, len);
  switch (e) {
  case HPE_OK: *used = len; return HTTP_IN_MORE;
  case HPE_PAUSED:
    *used = (size_t)(llhttp_get_error_pos(&in->parser) - data);
    assert(*used <= len && in->req.path != NULL);
    return HTTP_IN_REQUEST;
  case HPE_USER: *used = len; return HTTP_IN_ERROR;
  default:
    *used = len;
    if (in->err_status) /* a callback refused the request and said why */
      return HTTP_IN_ERROR;
    fail(in, 400, "malformed request: %s (%s)", llhttp_errno_name(e),
         llhttp_get_error_reason(&in->parser));
    return HTTP_IN_ERROR;
  }
}

bool http_in_take_continue(http_in_t *in) {
  bool w = in->want_continue;
  in->want_continue = false;
  return w;
}

bool http_in_started(const http_in_t *in) { return in->started; }

bool http_in_head_done(const http_in_t *in) { return in->head_done; }

const http_request_t *http_in_request(const http_in_t *in) { return &in->req; }

void http_in_next(http_in_t *in) {
  if (llhttp_get_errno(&in->parser) == HPE_PAUSED)
    llhttp_resume(&in->parser);
  /* One large request must not pin its memory on a keep-alive connection. */
  buf_reset(&in->head);
  buf_reset(&in->body);
  buf_shrink(&in->head, HTTP_MAX_HEAD * 2);
  buf_shrink(&in->body, 64 * 1024);
  in->target_len = 0;
  in->trailer_len = 0;
  in->nspans = 0;
  in->started = false;
  in->head_done = false;
  in->want_continue = false;
  in->in_value = false;
  in->scan = (struct head_scan){0};
  in->crlf_left = 0;
  memset(&in->req, 0, sizeof in->req);
}

const http_request_t *http_in_refused(const http_in_t *in) {
  return in->req.path != NULL ? &in->req : NULL;
}

int http_in_error(const http_in_t *in, const char **text) {
  *text = in->err_text;
  return in->err_status ? in->err_status : 400;
}

const http_header_t *http_request_header(const http_request_t *r, const char *name) {
  size_t n = strlen(name);
  for (size_t i = 0; i < r->nheaders; i++)
    if (r->headers[i].name_len == n && strncasecmp(r->headers[i].name, name, n) == 0)
      return &r->headers[i];
  return NULL;
}
