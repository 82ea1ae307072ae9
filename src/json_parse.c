/* json_parse.c - the event reader of json.h.
 *
 * One loop over a state (at a value, at a key, after a value) with the open
 * containers in p->open, so a body of a million '[' costs no C stack; it
 * stops at JSON_MAX_DEPTH. Strings are scanned to their closing quote
 * first and unescaped only then, so a string that never ends reports the
 * end of the text, not an escape inside it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "text.h"

#define COLD __attribute__((cold, noinline))

/* Line and column are worked out only here, on failure, so the hot path
 * does not count newlines. */
static COLD int fail_vat(json_parser_t *p, const char *pos, const char *fmt, va_list ap) {
  json_msg_vprintf(p->err, fmt, ap);
  size_t line = 1, col = 1;
  for (const char *q = p->start; q < pos; q++) {
    if (*q == '\n') {
      line++;
      col = 1;
    } else if (((unsigned char)*q & 0xC0) != 0x80) {
      col++;
    }
  }
  json_msg_printf(p->err, " at line %zu, column %zu", line, col);
  return -EINVAL;
}

static COLD __attribute__((format(printf, 3, 4))) int fail_at(json_parser_t *p, const char *pos,
                                                              const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = fail_vat(p, pos, fmt, ap);
  va_end(ap);
  return rc;
}

int json_fail(json_parser_t *p, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = fail_vat(p, p->tok, fmt, ap);
  va_end(ap);
  return rc;
}

static COLD int unexpected(json_parser_t *p, const char *pos) {
  if (pos >= p->end)
    return fail_at(p, p->end, "unexpected end of text");
  unsigned char c = (unsigned char)*pos;
  if (c < 0x20 || c == 0x7F)
    return fail_at(p, pos, "unexpected control character U+%04X", c);
  size_t bad = 1, len = text_utf8_seq(pos, (size_t)(p->end - pos), &bad);
  if (len == 0)
    return fail_at(p, pos, "unexpected byte 0x%02X", c);
  return fail_at(p, pos, "unexpected character '%.*s'", (int)len, pos);
}

static COLD int no_memory(json_parser_t *p) {
  json_msg_puts(p->err, "out of memory");
  return -ENOMEM;
}

static inline void skip_ws(json_parser_t *p) {
  const char *q = p->p, *end = p->end;
  while (q < end && (*q == ' ' || *q == '\n' || *q == '\r' || *q == '\t'))
    q++;
  p->p = q;
}

static inline int is_digit(char c) { return c >= '0' && c <= '9'; }

static char *scratch(json_parser_t *p, size_t n) {
  if (p->ev->scratch)
    return p->ev->scratch(p, n);
  if (n > p->memcap) {
    char *m = realloc(p->mem, n);
    if (m == NULL)
      return NULL;
    p->mem = m;
    p->memcap = n;
  }
  return p->mem;
}

static size_t utf8_put(char *w, unsigned long cp) {
  if (cp < 0x80) {
    w[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    w[0] = (char)(0xC0 | (cp >> 6));
    w[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    w[0] = (char)(0xE0 | (cp >> 12));
    w[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    w[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  w[0] = (char)(0xF0 | (cp >> 18));
  w[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  w[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  w[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* Reads 4 hex digits at s, all before end; -1 if they are not there. */
static long hex4(const char *s, const char *end) {
  if (end - s < 4)
    return -1;
  long v = 0;
  for (int i = 0; i < 4; i++) {
    char c = s[i];
    int x;
    if (c >= '0' && c <= '9')
      x = c - '0';
    else if (c >= 'a' && c <= 'f')
      x = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      x = c - 'A' + 10;
    else
      return -1;
    v = v * 16 + x;
  }
  return v;
}

/* Unescapes the body [s, q) of a string known to hold a backslash into
 * scratch memory. The text never grows (an escape is at least as long as
 * what it stands for), so q - s bytes are enough. */
static int unescape(json_parser_t *p, const char *s, const char *q, char **out, size_t *outlen) {
  char *w0 = scratch(p, (size_t)(q - s) + 1), *w = w0;
  if (w0 == NULL)
    return no_memory(p);
  const char *r = s;
  for (;;) {
    const char *bs = memchr(r, '\\', (size_t)(q - r));
    if (bs == NULL)
      bs = q;
    memcpy(w, r, (size_t)(bs - r));
    w += bs - r;
    r = bs;
    if (r == q)
      break;
    /* The scan that found q stepped over the byte after each backslash, so
     * r[1] is inside the string. */
    char c = r[1];
    switch (c) {
    case '"':
    case '\\':
    case '/': *w++ = c; break;
    case 'b': *w++ = '\b'; break;
    case 'f': *w++ = '\f'; break;
    case 'n': *w++ = '\n'; break;
    case 'r': *w++ = '\r'; break;
    case 't': *w++ = '\t'; break;
    case 'u': {
      long cp = hex4(r + 2, q);
      if (cp < 0)
        return fail_at(p, r, "invalid \\u escape");
      r += 6;
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        long lo = (q - r >= 6 && r[0] == '\\' && r[1] == 'u') ? hex4(r + 2, q) : -1;
        if (lo >= 0xDC00 && lo <= 0xDFFF) {
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          r += 6;
        } else {
          cp = 0xFFFD; /* a lone high surrogate */
        }
      } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        cp = 0xFFFD; /* a lone low surrogate */
      }
      w += utf8_put(w, (unsigned long)cp);
      continue;
    }
    default:
      if ((unsigned char)c > 0x20 && (unsigned char)c < 0x7F)
        return fail_at(p, r, "invalid escape '\\%c'", c);
      return fail_at(p, r, "invalid escape: byte 0x%02X after '\\'", (unsigned char)c);
    }
    r += 2;
  }
  *out = w0;
  *outlen = (size_t)(w - w0);
  return 0;
}

/* Reads the string at p->p (its opening quote) and reports it as a key or
 * a string. */
static int read_string(json_parser_t *p, int is_key) {
  const char *s = p->p + 1, *q = s, *end = p->end;
  int escaped = 0;
  for (;;) {
    while (q < end && !(json_class[(unsigned char)*q] & 1))
      q++;
    if (q >= end)
      return unexpected(p, end);
    if (*q == '"')
      break;
    if (*q == '\\') {
      if (end - q < 2)
        return unexpected(p, end);
      escaped = 1;
      q += 2;
      continue;
    }
    return fail_at(p, q, "unescaped control character U+%04X in a string", (unsigned char)*q);
  }
  char *text = (char *)s;
  size_t n = (size_t)(q - s);
  int rc;
  if (escaped && (rc = unescape(p, s, q, &text, &n)))
    return rc;
  p->tok = p->p;
  p->p = q + 1;
  int (*cb)(json_parser_t *, const char *, size_t) = is_key ? p->ev->key : p->ev->string;
  return cb ? cb(p, text, n) : 0;
}

/* Integer literals of up to 18 digits cannot overflow; longer ones are
 * checked as Lua's own conversion does (so -9223372036854775808 is an
 * integer and 9223372036854775808 a double). */
static int int64_of(const char *s, const char *e, int64_t *v) {
  int neg = *s == '-';
  uint64_t a = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
  for (const char *q = s + neg; q < e; q++) {
    unsigned d = (unsigned)(*q - '0');
    if (a > (lim - d) / 10)
      return -1;
    a = a * 10 + d;
  }
  *v = neg ? (int64_t)(0 - a) : (int64_t)a;
  return 0;
}

static int read_number(json_parser_t *p) {
  const char *s = p->p, *q = s, *end = p->end;
  int integer = 1;
  if (*q == '-')
    q++;
  if (q < end && *q == '0') {
    q++;
    if (q < end && is_digit(*q))
      return fail_at(p, q - 1, "leading zero in a number");
  } else if (q < end && is_digit(*q)) {
    while (q < end && is_digit(*q))
      q++;
  } else {
    return unexpected(p, q);
  }
  if (q < end && *q == '.') {
    integer = 0;
    q++;
    if (q >= end || !is_digit(*q))
      return unexpected(p, q);
    while (q < end && is_digit(*q))
      q++;
  }
  if (q < end && (*q == 'e' || *q == 'E')) {
    integer = 0;
    q++;
    if (q < end && (*q == '+' || *q == '-'))
      q++;
    if (q >= end || !is_digit(*q))
      return unexpected(p, q);
    while (q < end && is_digit(*q))
      q++;
  }
  p->tok = s;
  p->p = q;
  int64_t v;
  if (integer && int64_of(s, q, &v) == 0)
    return p->ev->integer ? p->ev->integer(p, v) : 0;
  /* strtod wants a NUL after the literal: copy it (short ones on the C
   * stack). The grammar above leaves nothing for strtod to misread. */
  size_t n = (size_t)(q - s);
  char tmp[64], *c = n < sizeof tmp ? tmp : scratch(p, n + 1);
  if (c == NULL)
    return no_memory(p);
  memcpy(c, s, n);
  c[n] = '\0';
  double d = strtod(c, NULL);
  return p->ev->number ? p->ev->number(p, d) : 0;
}

static int read_literal(json_parser_t *p, const char *lit, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (p->p + i >= p->end || p->p[i] != lit[i])
      return unexpected(p, p->p + i);
  }
  p->tok = p->p;
  p->p += n;
  return 0;
}

static int open_container(json_parser_t *p, unsigned char kind) {
  if (p->depth >= JSON_MAX_DEPTH)
    return fail_at(p, p->p, "nesting deeper than %d", JSON_MAX_DEPTH);
  p->open[p->depth++] = kind;
  p->tok = p->p++;
  int (*cb)(json_parser_t *) = kind == '{' ? p->ev->begin_object : p->ev->begin_array;
  return cb ? cb(p) : 0;
}

static int close_container(json_parser_t *p) {
  unsigned char kind = p->open[--p->depth];
  p->tok = p->p++;
  int (*cb)(json_parser_t *) = kind == '{' ? p->ev->end_object : p->ev->end_array;
  return cb ? cb(p) : 0;
}

/* Reads one value at p->p (whitespace skipped); for a container, only its
 * opening bracket, and *opened is set. */
static int read_value(json_parser_t *p, int *opened) {
  const char *q = p->p;
  const json_events_t *ev = p->ev;
  int rc;
  *opened = 0;
  if (q >= p->end)
    return unexpected(p, q);
  switch (*q) {
  case '{':
  case '[': *opened = 1; return open_container(p, (unsigned char)*q);
  case '"': return read_string(p, 0);
  case 't':
    if ((rc = read_literal(p, "true", 4)))
      return rc;
    return ev->boolean ? ev->boolean(p, 1) : 0;
  case 'f':
    if ((rc = read_literal(p, "false", 5)))
      return rc;
    return ev->boolean ? ev->boolean(p, 0) : 0;
  case 'n':
    if ((rc = read_literal(p, "null", 4)))
      return rc;
    return ev->null ? ev->null(p) : 0;
  default:
    if (*q == '-' || is_digit(*q))
      return read_number(p);
    return unexpected(p, q);
  }
}

/* After an object's '{' or ',': a key, its colon, and the whitespace up to
 * its value. */
static int read_key(json_parser_t *p) {
  int rc;
  if (p->p >= p->end || *p->p != '"')
    return unexpected(p, p->p);
  if ((rc = read_string(p, 1)))
    return rc;
  skip_ws(p);
  if (p->p >= p->end || *p->p != ':')
    return unexpected(p, p->p);
  p->p++;
  skip_ws(p);
  return 0;
}

static int parse(json_parser_t *p) {
  int rc, opened;
  skip_ws(p);
  for (;;) {
    /* At the first byte of a value. */
    if ((rc = read_value(p, &opened)))
      return rc;
    if (opened) {
      skip_ws(p);
      char close = p->open[p->depth - 1] == '{' ? '}' : ']';
      if (p->p < p->end && *p->p == close) {
        if ((rc = close_container(p)))
          return rc;
      } else {
        if (close == '}' && (rc = read_key(p)))
          return rc;
        continue;
      }
    }
    /* After a value: a comma and the next one, or the ends of containers. */
    for (;;) {
      skip_ws(p);
      if (p->depth == 0)
        return p->p == p->end ? 0 : fail_at(p, p->p, "trailing text");
      char close = p->open[p->depth - 1] == '{' ? '}' : ']';
      if (p->p < p->end && *p->p == ',') {
        p->p++;
        skip_ws(p);
        if (close == '}' && (rc = read_key(p)))
          return rc;
        break;
      }
      if (p->p < p->end && *p->p == close) {
        if ((rc = close_container(p)))
          return rc;
        continue;
      }
      return unexpected(p, p->p);
    }
  }
}

int json_parse(const char *s, size_t len, const json_events_t *ev, void *ud, json_msg_t *err) {
  json_parser_t p;
  if (s == NULL) {
    s = "";
    len = 0;
  }
  p.ev = ev;
  p.ud = ud;
  p.err = err;
  p.start = p.p = p.tok = s;
  p.end = s + len;
  p.depth = 0;
  p.mem = NULL;
  p.memcap = 0;
  if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
    p.start = p.p = p.tok = s + 3;
  int rc = parse(&p);
  free(p.mem);
  json_msg_end(err);
  return rc;
}
