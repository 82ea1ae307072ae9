/* text.c - UTF-8, base64, JSON strings and times. */
#include "text.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Length of the valid UTF-8 sequence starting at p[0] (p[0] >= 0x80), or 0
 * when it is invalid; *cut is set when the input ends inside a sequence
 * that was valid so far. */
static size_t seq_len(const unsigned char *p, size_t n, bool *cut) {
  unsigned char c = p[0], lo = 0x80, hi = 0xBF;
  size_t need;
  *cut = false;
  if (c >= 0xC2 && c <= 0xDF)
    need = 1;
  else if (c == 0xE0)
    need = 2, lo = 0xA0; /* below: overlong */
  else if (c == 0xED)
    need = 2, hi = 0x9F; /* above: surrogates */
  else if (c >= 0xE1 && c <= 0xEF)
    need = 2;
  else if (c == 0xF0)
    need = 3, lo = 0x90; /* below: overlong */
  else if (c >= 0xF1 && c <= 0xF3)
    need = 3;
  else if (c == 0xF4)
    need = 3, hi = 0x8F; /* above: past U+10FFFF */
  else
    return 0; /* continuation byte, C0/C1 (overlong), F5..FF */
  for (size_t k = 1; k <= need; k++) {
    if (k >= n) {
      *cut = true;
      return 0;
    }
    unsigned char d = p[k];
    if (k == 1 ? (d < lo || d > hi) : (d < 0x80 || d > 0xBF))
      return 0;
  }
  return need + 1;
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
  bool cut = false;
  size_t i = 0;
  while (i < n) {
    i += ascii_run(p + i, n - i);
    if (i == n)
      break;
    size_t k = seq_len(p + i, n - i, &cut);
    if (k == 0)
      break;
    i += k;
  }
  if (incomplete)
    *incomplete = i < n && cut;
  return i;
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
  const unsigned char *p = (const unsigned char *)s;
  /* Worst case: every byte becomes \ufffd (6 bytes). */
  if (buf_reserve(out, n * 6 + 2))
    return -ENOMEM;
  char *o = out->data + out->len;
  *o++ = '"';
  for (size_t i = 0; i < n;) {
    unsigned char c = p[i];
    if (c >= 0x80) {
      bool cut;
      size_t k = seq_len(p + i, n - i, &cut);
      if (k == 0) {
        memcpy(o, "\\ufffd", 6);
        o += 6;
        i++;
      } else {
        memcpy(o, p + i, k);
        o += k;
        i += k;
      }
      continue;
    }
    i++;
    if (c >= 0x20 && c != '"' && c != '\\') {
      *o++ = (char)c;
      continue;
    }
    *o++ = '\\';
    switch (c) {
    case '"': *o++ = '"'; break;
    case '\\': *o++ = '\\'; break;
    case '\n': *o++ = 'n'; break;
    case '\r': *o++ = 'r'; break;
    case '\t': *o++ = 't'; break;
    case '\b': *o++ = 'b'; break;
    case '\f': *o++ = 'f'; break;
    default:
      memcpy(o, "u00", 3);
      o[3] = "0123456789abcdef"[c >> 4];
      o[4] = "0123456789abcdef"[c & 15];
      o += 5;
    }
  }
  *o++ = '"';
  out->len = (size_t)(o - out->data);
  return 0;
}

int text_utf8_lossy(buf_t *out, const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  if (buf_reserve(out, n * 3))
    return -ENOMEM;
  char *o = out->data + out->len;
  for (size_t i = 0; i < n;) {
    if (p[i] < 0x80) {
      *o++ = (char)p[i++];
      continue;
    }
    bool cut;
    size_t k = seq_len(p + i, n - i, &cut);
    if (k == 0) {
      memcpy(o, "\xef\xbf\xbd", 3);
      o += 3;
      i++;
    } else {
      memcpy(o, p + i, k);
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
  static const char hex[] = "0123456789abcdef";
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
      bool partial;
      k = seq_len(p + i, n - i, &partial);
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
