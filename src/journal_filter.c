/* journal_filter.c - which entries a read of the journal wants: the
 * filters by name, from the admin API's query string and from the keys of
 * journal.count/find's table. */
#include "journal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void journal_filter_init(journal_filter_t *f) { *f = (journal_filter_t){.method = -1}; }

int journal_filter_method(journal_filter_t *f, const char *name, size_t len) {
  if (!http_is_token(name, len))
    return -EINVAL;
  int m = http_method_number(name, len);
  f->method = m >= 0 ? m : -2;
  return 0;
}

/* A non-negative decimal integer that fits in 63 bits. */
static int parse_uint(const char *s, size_t n, uint64_t *out) {
  if (n == 0 || n > 18)
    return -EINVAL;
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -EINVAL;
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  *out = v;
  return 0;
}

const char *const journal_filter_names[JOURNAL_F_COUNT] = {
    "method", "path", "path_prefix", "endpoint", "status", "since", "limit"};

enum journal_filter_key journal_filter_key(const char *name, size_t n) {
  int k = 0;
  while (k < JOURNAL_F_COUNT &&
         !(strlen(journal_filter_names[k]) == n && memcmp(journal_filter_names[k], name, n) == 0))
    k++;
  return (enum journal_filter_key)k;
}

/* The refused value goes into the message with control bytes as \xHH: a
 * decoded %00 must not cut it short. */
static int refuse(char *err, size_t errlen, const char *fmt, const char *name, const char *v,
                  size_t n) {
  char shown[4 * 100 + 1];
  size_t k = 0;
  for (size_t i = 0; i < n && i < 100; i++) {
    unsigned char c = (unsigned char)v[i];
    if (c < 0x20 || c == 0x7f)
      k += (size_t)snprintf(shown + k, sizeof shown - k, "\\x%02x", c);
    else
      shown[k++] = (char)c;
  }
  shown[k] = '\0';
  snprintf(err, errlen, fmt, name, (int)k, shown);
  return -EINVAL;
}

int journal_filter_parse(journal_filter_t *f, const char *query, size_t len, buf_t *scratch,
                         char *err, size_t errlen) {
  journal_filter_init(f);
  buf_reset(scratch);
  /* Decoding never lengthens: one reservation keeps every value in place. */
  if (buf_reserve(scratch, len + 1)) {
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
  }
  unsigned seen = 0;
  const char *p = query, *end = query + len;
  while (p < end) {
    const char *amp = memchr(p, '&', (size_t)(end - p));
    if (amp == NULL)
      amp = end;
    if (amp > p) {
      const char *eq = memchr(p, '=', (size_t)(amp - p));
      const char *kend = eq ? eq : amp;
      char key[32];
      size_t klen = (size_t)(kend - p);
      enum journal_filter_key k = JOURNAL_F_COUNT;
      if (klen < sizeof key) {
        klen = http_percent_decode(key, p, klen, true);
        k = journal_filter_key(key, klen);
      }
      if (k == JOURNAL_F_COUNT) {
        snprintf(err, errlen, "unknown filter '%.*s': use " JOURNAL_FILTER_LIST,
                 (int)((size_t)(kend - p) > 100 ? 100 : (size_t)(kend - p)), p);
        return -EINVAL;
      }
      if (seen & 1u << k) {
        snprintf(err, errlen, "filter '%s' is given twice", journal_filter_names[k]);
        return -EINVAL;
      }
      seen |= 1u << k;
      char *v = scratch->data + scratch->len;
      size_t vlen = eq ? http_percent_decode(v, eq + 1, (size_t)(amp - eq - 1), true) : 0;
      scratch->len += vlen;
      if (vlen == 0) {
        snprintf(err, errlen, "filter '%s' is empty", journal_filter_names[k]);
        return -EINVAL;
      }
      uint64_t n;
      switch (k) {
      case JOURNAL_F_METHOD:
        if (journal_filter_method(f, v, vlen))
          return refuse(err, errlen, "%s: '%.*s' is not an HTTP method name", "method", v, vlen);
        break;
      case JOURNAL_F_PATH: f->path = v, f->path_len = vlen; break;
      case JOURNAL_F_PATH_PREFIX: f->path_prefix = v, f->path_prefix_len = vlen; break;
      case JOURNAL_F_ENDPOINT: f->endpoint = v, f->endpoint_len = vlen; break;
      case JOURNAL_F_STATUS:
        if (parse_uint(v, vlen, &n) || n < JOURNAL_STATUS_MIN || n > JOURNAL_STATUS_MAX)
          return refuse(err, errlen, "%s: '%.*s' is not an HTTP status (100-999)", "status", v,
                        vlen);
        f->status = (int)n;
        break;
      case JOURNAL_F_SINCE:
      case JOURNAL_F_LIMIT:
      case JOURNAL_F_COUNT: /* refused above */
        if (parse_uint(v, vlen, &n))
          return refuse(err, errlen, "%s: '%.*s' is not an integer >= 0 (of at most 18 digits)",
                        journal_filter_names[k], v, vlen);
        if (k == JOURNAL_F_SINCE)
          f->has_since = true, f->since = n;
        else
          f->has_limit = true, f->limit = n;
        break;
      }
    }
    if (amp == end)
      break;
    p = amp + 1;
  }
  return 0;
}
