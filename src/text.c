/* text.c - UTF-8, base64, JSON strings and times. */
#include "text.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Bit 1: a byte a JSON string escapes and a decoder stops at ('"', '\\',
 * control characters). Bit 2: a byte >= 0x80, which the encoder checks as
 * UTF-8. */
const unsigned char text_json_class[256] = {
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

size_t text_utf8_seq(const char *s, size_t n, size_t *bad) {
  const unsigned char *p = (const unsigned char *)s;
  unsigned c = p[0], lo = 0x80, hi = 0xBF;
  size_t need;
  if (c < 0x80)
    return 1;
  if (c >= 0xC2 && c <= 0xDF) {
    need = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    if (c == 0xE0)
      lo = 0xA0; /* below: overlong */
    else if (c == 0xED)
      hi = 0x9F; /* above: surrogates */
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    if (c == 0xF0)
      lo = 0x90; /* below: overlong */
    else if (c == 0xF4)
      hi = 0x8F; /* above: past U+10FFFF */
  } else {
    *bad = 1; /* continuation byte, C0/C1 (overlong), F5..FF */
    return 0;
  }
  size_t i = 1;
  for (; i <= need && i < n; i++) {
    if (p[i] < lo || p[i] > hi)
      break;
    lo = 0x80;
    hi = 0xBF;
  }
  if (i > need)
    return need + 1;
  *bad = i;
  return 0;
}

/* Bytes of p[0..n) below 0x80, from the start. Word at a time: bodies can
 * be large and are mostly ASCII. */
static size_t ascii_run(const unsigned char *p, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    if (w & 0x8080808080808080ULL)
      break;
  }
  while (i < n && p[i] < 0x80)
    i++;
  return i;
}

size_t text_utf8_valid(const char *s, size_t n, bool *incomplete) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0, bad = 0;
  while (i < n) {
    i += ascii_run(p + i, n - i);
    if (i == n)
      break;
    size_t k = text_utf8_seq(s + i, n - i, &bad);
    if (k == 0)
      break;
    i += k;
  }
  /* Cut short: a lead byte whose sequence was valid up to the end. */
  if (incomplete)
    *incomplete = i < n && bad == n - i && p[i] >= 0xC2 && p[i] <= 0xF4;
  return i;
}

void text_lower(char *out, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    out[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + ('a' - 'A') : s[i]);
}

void text_address(const struct sockaddr *sa, char *ip, size_t iplen, char *peer, size_t peerlen) {
  char name[INET6_ADDRSTRLEN] = "?";
  int port = -1;
  if (sa && sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
    if (inet_ntop(AF_INET6, &a->sin6_addr, name, sizeof name))
      port = ntohs(a->sin6_port);
  } else if (sa && sa->sa_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
    if (inet_ntop(AF_INET, &a->sin_addr, name, sizeof name))
      port = ntohs(a->sin_port);
  }
  if (port < 0)
    snprintf(name, sizeof name, "?");
  if (ip && iplen)
    snprintf(ip, iplen, "%s", name);
  if (peer && peerlen) {
    if (port < 0)
      snprintf(peer, peerlen, "?");
    else
      snprintf(peer, peerlen, sa->sa_family == AF_INET6 ? "[%s]:%d" : "%s:%d", name, port);
  }
}

int text_base64(buf_t *out, const void *data, size_t n) {
  static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const unsigned char *p = data;
  if (buf_reserve(out, (n + 2) / 3 * 4 + 1))
    return -ENOMEM;
  char *o = out->data + out->len;
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
    *o++ = abc[v >> 18];
    *o++ = abc[v >> 12 & 63];
    *o++ = abc[v >> 6 & 63];
    *o++ = abc[v & 63];
  }
  if (i < n) {
    uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
    *o++ = abc[v >> 18];
    *o++ = abc[v >> 12 & 63];
    *o++ = i + 1 < n ? abc[v >> 6 & 63] : '=';
    *o++ = '=';
  }
  out->len = (size_t)(o - out->data);
  return 0;
}

int text_json_string(buf_t *out, const char *s, size_t n) {
  int rc = buf_reserve(out, n + 2);
  if (rc)
    return rc;
  out->data[out->len++] = '"';
  size_t i = 0;
  while (i < n) {
    /* Invariant: the room left covers the rest of s plus the closing
     * quote, so plain runs are copied without checks. */
    size_t j = i;
    while (j < n && !text_json_class[(unsigned char)s[j]])
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

int text_utf8_lossy(buf_t *out, const char *s, size_t n) {
  if (buf_reserve(out, n * 3))
    return -ENOMEM;
  char *o = out->data + out->len;
  for (size_t i = 0; i < n;) {
    size_t bad = 1, k = text_utf8_seq(s + i, n - i, &bad);
    if (k == 0) {
      memcpy(o, REPLACEMENT, 3);
      o += 3;
      i += bad;
    } else {
      memcpy(o, s + i, k);
      o += k;
      i += k;
    }
  }
  out->len = (size_t)(o - out->data);
  return 0;
}

static bool keeps_ascii(unsigned char c, enum text_escape how) {
  if (c < 0x20 || c == 0x7f)
    return how == TEXT_ESCAPE_MESSAGE && (c == '\n' || c == '\t');
  switch (how) {
  case TEXT_ESCAPE_FIELD: return c != ' ' && c != '"' && c != '\\';
  case TEXT_ESCAPE_VALUE: return c != '\\';
  default: return true;
  }
}

int text_escape(buf_t *out, const char *s, size_t n, size_t max, enum text_escape how) {
  const char *hex = hex_digits;
  const unsigned char *p = (const unsigned char *)s;
  bool cut = n > max;
  if (cut) {
    /* Cut before a UTF-8 sequence rather than through it. */
    n = max;
    for (size_t k = 0; k < 3 && n > 0 && (p[n] & 0xC0) == 0x80; k++)
      n--;
  }
  if (buf_reserve(out, n * 4 + 3)) /* worst case: every byte becomes \xHH */
    return -ENOMEM;
  char *o = out->data + out->len;
  for (size_t i = 0; i < n;) {
    unsigned char c = p[i];
    size_t k = 0;
    if (c >= 0x80) {
      size_t bad;
      k = text_utf8_seq(s + i, n - i, &bad);
    } else if (keeps_ascii(c, how)) {
      k = 1;
    }
    if (k > 0) {
      memcpy(o, p + i, k);
      o += k;
      i += k;
      continue;
    }
    char esc[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
    memcpy(o, esc, 4);
    o += 4;
    i++;
  }
  if (cut) {
    memcpy(o, "...", 3);
    o += 3;
  }
  out->len = (size_t)(o - out->data);
  return 0;
}

const char *text_escape_str(buf_t *b, const char *s, size_t n, size_t max, enum text_escape how) {
  buf_reset(b);
  if (text_escape(b, s, n, max, how) || buf_putc(b, '\0'))
    return "";
  return b->data;
}

int64_t text_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Splits a time in units (unit per second) into whole seconds, rounding
 * down, and the part of a second. */
static int64_t split_seconds(int64_t t, int64_t unit, int64_t *frac) {
  int64_t sec = t >= 0 ? t / unit : -((-t + unit - 1) / unit);
  *frac = t - sec * unit;
  return sec;
}

void text_rfc3339_ms(int64_t ms, char out[TEXT_RFC3339_MS_LEN + 1]) {
  int64_t frac, sec = split_seconds(ms, 1000, &frac);
  time_t t = (time_t)sec;
  struct tm tm;
  gmtime_r(&t, &tm);
  char stamp[24];
  strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out, TEXT_RFC3339_MS_LEN + 1, "%.19s.%03dZ", stamp, (int)frac);
}

void text_rfc3339_us(int64_t us, char out[TEXT_RFC3339_LEN + 1]) {
  /* Reads come in bursts within one second: keep the formatted second,
   * one per thread (each server's loop has its own). */
  static _Thread_local int64_t cached_sec = INT64_MIN;
  static _Thread_local char cached[24];
  int64_t frac, sec = split_seconds(us, 1000000, &frac);
  if (sec != cached_sec) {
    time_t t = (time_t)sec;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &tm);
    cached_sec = sec;
  }
  snprintf(out, TEXT_RFC3339_LEN + 1, "%.19s.%06dZ", cached, (int)frac);
}

static bool is_alpha(char ch) { return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'); }
static bool is_digit(char ch) { return ch >= '0' && ch <= '9'; }
static bool is_hex(char ch) {
  return is_digit(ch) || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

bool text_is_origin(const char *s, size_t n) {
  if (n == 4 && memcmp(s, "null", 4) == 0)
    return true;
  if (n == 0 || !is_alpha(s[0]))
    return false;
  size_t i = 1;
  while (i < n && (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.'))
    i++;
  if (n - i < 4 || memcmp(s + i, "://", 3) != 0)
    return false;
  i += 3;
  size_t host = i;
  if (s[i] == '[') { /* an IPv6 address */
    for (i++; i < n && (is_hex(s[i]) || s[i] == ':' || s[i] == '.'); i++)
      ;
    if (i == n || s[i] != ']' || i == host + 1)
      return false;
    i++;
  } else {
    while (i < n && (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '-' || s[i] == '.'))
      i++;
  }
  if (i == host)
    return false;
  if (i < n && s[i] == ':') {
    size_t port = ++i;
    while (i < n && is_digit(s[i]))
      i++;
    if (i == port || i - port > 5)
      return false;
  }
  return i == n;
}
