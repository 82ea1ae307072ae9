/* fuzz_util.c - request feeding and answer checks for the fuzz targets. */
#include "fuzz_util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "text.h"

#define JSON_MAX_DEPTH 2000

size_t fuzz_feed(const uint8_t *data, size_t size, size_t step, size_t max_body,
                 fuzz_request_fn fn, void *arg) {
  http_in_t *in = http_in_new(max_body);
  if (in == NULL)
    fuzz_fail("feed", "no memory for a parser");
  size_t pos = 0, avail = 0, seen = 0;
  while (pos < size) {
    avail = avail + step > size - pos ? size - pos : avail + step;
    size_t used = 0;
    enum http_in_status st = http_in_feed(in, (const char *)data + pos, avail, &used);
    pos += used;
    avail -= used;
    if (st == HTTP_IN_ERROR)
      break;
    if (st == HTTP_IN_MORE)
      continue;
    seen++;
    if (fn(arg, http_in_request(in)))
      break;
    http_in_next(in);
  }
  http_in_free(in);
  return seen;
}

void fuzz_fail(const char *target, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "fuzz %s: ", target);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  abort();
}

/* A recursive-descent reader that only says whether the text is JSON. */
struct json_reader {
  const char *s, *end, *p;
};

static void json_space(struct json_reader *r) {
  while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
    r->p++;
}

static bool json_literal(struct json_reader *r, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0)
    return false;
  r->p += n;
  return true;
}

static bool json_digits(struct json_reader *r) {
  const char *start = r->p;
  while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
    r->p++;
  return r->p > start;
}

static bool json_number(struct json_reader *r) {
  if (r->p < r->end && *r->p == '-')
    r->p++;
  if (r->p < r->end && *r->p == '0')
    r->p++;
  else if (!json_digits(r))
    return false;
  if (r->p < r->end && *r->p == '.') {
    r->p++;
    if (!json_digits(r))
      return false;
  }
  if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
    r->p++;
    if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
      r->p++;
    if (!json_digits(r))
      return false;
  }
  return true;
}

static bool json_string(struct json_reader *r) {
  r->p++; /* the opening quote */
  while (r->p < r->end) {
    unsigned char c = (unsigned char)*r->p;
    if (c == '"') {
      r->p++;
      return true;
    }
    if (c < 0x20)
      return false;
    if (c != '\\') {
      r->p++;
      continue;
    }
    if (++r->p == r->end)
      return false;
    if (*r->p == 'u') {
      for (int i = 1; i <= 4; i++)
        if (r->p + i >= r->end || !strchr("0123456789abcdefABCDEF", r->p[i]) || !r->p[i])
          return false;
      r->p += 5;
    } else if (strchr("\"\\/bfnrt", *r->p) && *r->p) {
      r->p++;
    } else {
      return false;
    }
  }
  return false;
}

static bool json_value(struct json_reader *r, int depth);

/* An array or an object: `close` is its closing bracket. */
static bool json_container(struct json_reader *r, int depth, char close) {
  if (depth >= JSON_MAX_DEPTH)
    return false;
  r->p++;
  json_space(r);
  if (r->p < r->end && *r->p == close) {
    r->p++;
    return true;
  }
  for (;;) {
    if (close == '}') {
      if (r->p == r->end || *r->p != '"' || !json_string(r))
        return false;
      json_space(r);
      if (r->p == r->end || *r->p++ != ':')
        return false;
      json_space(r);
    }
    if (!json_value(r, depth + 1))
      return false;
    json_space(r);
    if (r->p == r->end)
      return false;
    if (*r->p == close) {
      r->p++;
      return true;
    }
    if (*r->p++ != ',')
      return false;
    json_space(r);
  }
}

static bool json_value(struct json_reader *r, int depth) {
  if (r->p == r->end)
    return false;
  switch (*r->p) {
  case '{': return json_container(r, depth, '}');
  case '[': return json_container(r, depth, ']');
  case '"': return json_string(r);
  case 't': return json_literal(r, "true");
  case 'f': return json_literal(r, "false");
  case 'n': return json_literal(r, "null");
  default: return json_number(r);
  }
}

bool fuzz_json_valid(const char *s, size_t n, size_t *where) {
  struct json_reader r = {s, s + n, s};
  size_t utf8 = text_utf8_valid(s, n, NULL);
  bool ok = false;
  if (utf8 < n) {
    r.p = s + utf8;
  } else {
    json_space(&r);
    ok = json_value(&r, 0);
    json_space(&r);
    ok = ok && r.p == r.end;
  }
  if (where)
    *where = (size_t)(r.p - s);
  return ok;
}

/* True when the view or the server set a JSON Content-Type. */
static bool says_json(const http_response_t *resp) {
  static const char name[] = "content-type:";
  const char *p = resp->headers.data, *end = p + resp->headers.len;
  while (p && p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    size_t len = (size_t)((eol ? eol : end) - p);
    if (len > sizeof name - 1 && strncasecmp(p, name, sizeof name - 1) == 0) {
      const char *v = p + sizeof name - 1;
      while (v < p + len && *v == ' ')
        v++;
      return (size_t)(p + len - v) >= 16 && strncasecmp(v, "application/json", 16) == 0;
    }
    p = eol ? eol + 1 : NULL;
  }
  return false;
}

void fuzz_check_response(const char *target, http_response_t *resp, int method) {
  if (resp->status < 100 || resp->status > 499)
    fuzz_fail(target, "status %d (body: %.*s)", resp->status,
              (int)(resp->body.len > 2000 ? 2000 : resp->body.len),
              resp->body.data ? resp->body.data : "");
  buf_t out = BUF_INIT;
  if (http_response_write(resp, method, true, false, &out))
    fuzz_fail(target, "the response does not serialize");
  buf_free(&out);
  if (resp->stream) {
    http_stream_t *st = resp->stream;
    resp->stream = NULL;
    buf_t piece = BUF_INIT;
    int rc;
    do {
      buf_reset(&piece);
      rc = st->next(st, &piece);
      if (rc < 0)
        fuzz_fail(target, "the streamed body failed: %d", rc);
      buf_append(&resp->body, piece.data, piece.len);
    } while (rc == HTTP_STREAM_MORE);
    st->close(st, true);
    buf_free(&piece);
  }
  static int show = -1;
  if (show < 0)
    show = getenv("H1MOCK_FUZZ_SHOW") != NULL;
  if (show)
    fprintf(stderr, "fuzz %s: %s answered %d: %.*s\n", target, http_method_name(method),
            resp->status, (int)(resp->body.len > 300 ? 300 : resp->body.len),
            resp->body.data ? resp->body.data : "");
  size_t where;
  bool has_body = resp->status >= 200 && resp->status != 204 && resp->status != 304;
  if (has_body && says_json(resp) && !fuzz_json_valid(resp->body.data, resp->body.len, &where))
    fuzz_fail(target, "status %d: the body is not JSON at byte %zu: %.*s", resp->status, where,
              (int)(resp->body.len > 2000 ? 2000 : resp->body.len), resp->body.data);
}
