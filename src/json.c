/* json.c - JSON strings, numbers and messages (the reader is in
 * json_parse.c). The rules are in json.h. */
#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

/* Bit 1: a byte a JSON string escapes and a reader stops at ('"', '\\',
 * control characters). Bit 2: a byte >= 0x80, which the string writer checks
 * as UTF-8. */
const unsigned char json_class[256] = {
    /* clang-format off */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    /* clang-format on */
};

/* The short escape of each control character, 'u' where there is none. */
static const char ctl_escape[32] = {
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'b', 't', 'n', 'u', 'f', 'r', 'u', 'u',
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u',
};

static const char hex_digits[] = "0123456789abcdef";

#define REPLACEMENT "\xEF\xBF\xBD" /* U+FFFD as UTF-8 */

/* ---- Writing ------------------------------------------------------------- */

int json_string(buf_t *out, const char *s, size_t n) {
  int rc = buf_reserve(out, n + 2);
  if (rc)
    return rc;
  out->data[out->len++] = '"';
  size_t i = 0;
  while (i < n) {
    /* Invariant: the room left covers the rest of s plus the closing
     * quote, so plain runs are copied without checks. */
    size_t j = i;
    while (j < n && !json_class[(unsigned char)s[j]])
      j++;
    memcpy(out->data + out->len, s + i, j - i);
    out->len += j - i;
    if (j == n)
      break;
    if ((rc = buf_reserve(out, (n - j) + 7)))
      return rc;
    unsigned char c = (unsigned char)s[j];
    char *w = out->data + out->len;
    if (c >= 0x80) {
      size_t bad = 1, len = text_utf8_seq(s + j, n - j, &bad);
      if (len) {
        memcpy(w, s + j, len);
        out->len += len;
        i = j + len;
      } else {
        memcpy(w, REPLACEMENT, 3);
        out->len += 3;
        i = j + bad;
      }
      continue;
    }
    w[0] = '\\';
    if (c == '"' || c == '\\') {
      w[1] = (char)c;
      out->len += 2;
    } else if (ctl_escape[c] != 'u') {
      w[1] = ctl_escape[c];
      out->len += 2;
    } else {
      memcpy(w + 1, "u00", 3);
      w[4] = hex_digits[c >> 4];
      w[5] = hex_digits[c & 15];
      out->len += 6;
    }
    i = j + 1;
  }
  out->data[out->len++] = '"';
  return 0;
}

size_t json_fmt_int(char tmp[static 24], int64_t v) {
  char rev[24];
  size_t n = 0, len = 0;
  unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
  do {
    rev[n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0)
    tmp[len++] = '-';
  while (n)
    tmp[len++] = rev[--n];
  return len;
}

/* Any normal double that has a shorter exact form prints it with %.15g
 * (DBL_DIG is 15); subnormals carry fewer digits, so for them the search
 * starts at 1 (5e-324, not 4.94065645841247e-324). */
size_t json_fmt_double(char tmp[static 32], double d) {
  /* A local array, not tmp, is what snprintf fills: with UBSan's null
   * checks on strtod gcc otherwise sees a NULL path and warns. */
  char s[32];
  int n = 0;
  if (d > -1e15 && d < 1e15 && d == (double)(long long)d && !(d == 0 && signbit(d))) {
    /* Integral values below 1e15 print the same as %.15g would, faster. */
    n = (int)json_fmt_int(s, (int64_t)d);
    memcpy(s + n, ".0", 2);
    memcpy(tmp, s, (size_t)n + 2);
    return (size_t)n + 2;
  }
  for (int prec = fpclassify(d) == FP_SUBNORMAL ? 1 : 15; prec <= 17; prec++) {
    n = snprintf(s, sizeof s, "%.*g", prec, d);
    if (prec == 17 || strtod(s, NULL) == d)
      break;
  }
  memcpy(tmp, s, (size_t)n);
  /* A float that prints like an integer keeps a ".0" so that it reads back
   * as a float (Lua and Python print 1.0 the same way). A locale's decimal
   * comma, should anyone set LC_NUMERIC, is put back to a point. */
  int integral = 1;
  for (int i = 0; i < n; i++) {
    char c = tmp[i];
    if ((c >= '0' && c <= '9') || c == '-')
      continue;
    integral = 0;
    if (c != 'e' && c != '+')
      tmp[i] = '.';
  }
  if (integral) {
    tmp[n++] = '.';
    tmp[n++] = '0';
  }
  return (size_t)n;
}

int json_int(buf_t *out, int64_t v) {
  char tmp[24];
  return buf_append(out, tmp, json_fmt_int(tmp, v));
}

int json_double(buf_t *out, double d) {
  char tmp[32];
  if (!isfinite(d))
    return -EINVAL;
  return buf_append(out, tmp, json_fmt_double(tmp, d));
}

/* ---- Messages ------------------------------------------------------------ */

void json_msg_init(json_msg_t *m, char *p, size_t cap) {
  m->p = p;
  m->cap = p ? cap : 0;
  m->len = 0;
  m->full = 0;
  if (m->cap)
    p[0] = '\0';
}

void json_msg_put(json_msg_t *m, const char *s, size_t n) {
  if (m->cap == 0 || m->full)
    return;
  size_t room = m->cap - 1 - m->len;
  if (n > room) {
    n = room;
    m->full = 1;
  }
  memcpy(m->p + m->len, s, n);
  m->len += n;
  m->p[m->len] = '\0';
}

void json_msg_puts(json_msg_t *m, const char *s) { json_msg_put(m, s, strlen(s)); }

void json_msg_vprintf(json_msg_t *m, const char *fmt, va_list ap) {
  if (m->cap == 0 || m->full)
    return;
  size_t room = m->cap - m->len;
  int n = vsnprintf(m->p + m->len, room, fmt, ap);
  if (n < 0)
    return;
  if ((size_t)n >= room) {
    m->len = m->cap - 1;
    m->full = 1;
  } else {
    m->len += (size_t)n;
  }
}

void json_msg_printf(json_msg_t *m, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  json_msg_vprintf(m, fmt, ap);
  va_end(ap);
}

/* Marks a cut message so that nobody mistakes it for the whole. */
void json_msg_end(json_msg_t *m) {
  if (m->full && m->cap >= 4)
    memcpy(m->p + m->cap - 4, "...", 4);
}
