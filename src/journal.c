/* journal.c - the ring of recorded requests, its filters and its JSON. */
#include "journal.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "text.h"

/* One recorded request. Its strings follow the struct back to back in
 * this order: remote, path, query, endpoint, provision, calls, headers,
 * body.
 * Headers are packed as (u32 name length, u32 value length, name, value). */
struct entry {
  size_t cap; /* bytes available after the struct */
  uint64_t seq;
  int64_t time_us;
  uint64_t duration_us;
  size_t body_bytes;
  uint32_t remote_len, path_len, query_len, endpoint_len, provision_len, calls_len, headers_len,
      body_len;
  int16_t status;
  uint8_t method;
  bool matched;
  bool proxied;
  uint8_t fault; /* enum http_fault */
  bool truncated;
  char data[];
};

struct journal {
  size_t size;       /* slots; 0: disabled */
  size_t body_bytes; /* body bytes kept per entry */
  size_t max_bytes;  /* limit on `held`; 0: none */
  size_t held;       /* bytes allocated for the entries held; a slot is
                        allocated exactly while it holds an entry */
  struct entry **slots;
  size_t start; /* slot of the oldest entry */
  size_t count; /* entries held */
  uint64_t first_seq;
  uint64_t next_seq;
  uint64_t dropped;
  uint64_t dropped_total;
};

journal_t *journal_new(size_t size, size_t body_bytes, size_t max_bytes) {
  journal_t *j = calloc(1, sizeof *j);
  if (j == NULL)
    return NULL;
  j->size = size;
  j->max_bytes = max_bytes;
  /* Entry lengths are 32-bit; nobody needs a gigabyte of body per entry. */
  j->body_bytes = body_bytes < (1u << 30) ? body_bytes : (1u << 30);
  j->next_seq = 1;
  /* One pointer per slot up front; the entries come as requests do. */
  if (size && (j->slots = calloc(size, sizeof *j->slots)) == NULL) {
    free(j);
    return NULL;
  }
  return j;
}

static void free_entries(journal_t *j) {
  for (size_t i = 0; i < j->size; i++) {
    free(j->slots[i]);
    j->slots[i] = NULL;
  }
  j->held = 0;
}

static size_t held_by(const struct entry *e) { return e ? sizeof *e + e->cap : 0; }

/* Drops the oldest entry and gives its memory back. */
static void drop_oldest(journal_t *j) {
  assert(j->count > 0 && j->slots[j->start] != NULL);
  struct entry **slot = &j->slots[j->start];
  j->held -= held_by(*slot);
  free(*slot);
  *slot = NULL;
  j->start = (j->start + 1) % j->size;
  j->count--;
  j->first_seq++;
  j->dropped++;
  j->dropped_total++;
}

void journal_free(journal_t *j) {
  if (j == NULL)
    return;
  free_entries(j);
  free(j->slots);
  free(j);
}

bool journal_enabled(const journal_t *j) { return j && j->size > 0; }

/* An allocation that fits `need` bytes: the slot's own when it is big
 * enough and not wastefully big (one large upload must not pin its size in
 * a slot forever), else a new size rounded up so that requests of similar
 * size reuse it. NULL when out of memory (the slot is then unchanged). */
static struct entry *slot_entry(struct entry **slot, size_t need) {
  struct entry *e = *slot;
  if (e && e->cap >= need && e->cap <= 4 * need + 4096)
    return e;
  size_t cap = (need + 255) & ~(size_t)255;
  struct entry *n = realloc(e, sizeof *n + cap);
  if (n == NULL)
    return NULL;
  n->cap = cap;
  *slot = n;
  return n;
}

static char *put(char *p, const void *s, size_t n) {
  if (n)
    memcpy(p, s, n);
  return p + n;
}

void journal_record(journal_t *j, const char *remote, const http_request_t *req,
                    const http_response_t *resp, const origin_t *origin, int64_t time_us,
                    uint64_t duration_us) {
  if (j == NULL || j->size == 0)
    return;
  size_t rlen = strlen(remote);
  size_t blen = req->body_len < j->body_bytes ? req->body_len : j->body_bytes;
  size_t elen = origin->matched ? origin->endpoint.len : 0;
  size_t plen = origin->provision.len;
  size_t clen = origin->calls.len;
  size_t hlen = 0;
  for (size_t i = 0; i < req->nheaders; i++)
    hlen += 8 + req->headers[i].name_len + req->headers[i].value_len;
  size_t need = rlen + req->path_len + req->query_len + elen + plen + clen + hlen + blen;

  /* Room under the byte limit first: large bodies must not make the
   * journal the biggest thing in memory. */
  while (j->max_bytes && j->count && j->held + sizeof(struct entry) + need > j->max_bytes)
    drop_oldest(j);
  bool evict = j->count == j->size;
  size_t idx = evict ? j->start : (j->start + j->count) % j->size;
  size_t before = held_by(j->slots[idx]);
  struct entry *e = slot_entry(&j->slots[idx], need);
  if (e == NULL) {
    j->dropped++;
    j->dropped_total++;
    return;
  }
  j->held += held_by(e) - before;
  if (evict) {
    j->start = (j->start + 1) % j->size;
    j->first_seq++;
    j->dropped++;
    j->dropped_total++;
  } else {
    if (j->count == 0)
      j->first_seq = j->next_seq;
    j->count++;
  }
  e->seq = j->next_seq++;
  /* The ring holds consecutive sequence numbers, the newest just written. */
  assert(j->count <= j->size && j->next_seq - j->first_seq == j->count);
  e->time_us = time_us;
  e->duration_us = duration_us;
  e->body_bytes = req->body_len;
  e->status = (int16_t)resp->status;
  e->method = (uint8_t)req->method;
  e->matched = origin->matched;
  e->proxied = origin->proxied;
  e->fault = (uint8_t)resp->fault;
  e->truncated = blen < req->body_len;
  e->remote_len = (uint32_t)rlen;
  e->path_len = (uint32_t)req->path_len;
  e->query_len = (uint32_t)req->query_len;
  e->endpoint_len = (uint32_t)elen;
  e->provision_len = (uint32_t)plen;
  e->calls_len = (uint32_t)clen;
  e->headers_len = (uint32_t)hlen;
  e->body_len = (uint32_t)blen;
  char *p = e->data;
  p = put(p, remote, rlen);
  p = put(p, req->path, req->path_len);
  p = put(p, req->query, req->query_len);
  p = put(p, origin->endpoint.data, elen);
  p = put(p, origin->provision.data, plen);
  p = put(p, origin->calls.data, clen);
  for (size_t i = 0; i < req->nheaders; i++) {
    const http_header_t *h = &req->headers[i];
    uint32_t len[2] = {(uint32_t)h->name_len, (uint32_t)h->value_len};
    p = put(p, len, sizeof len);
    p = put(p, h->name, h->name_len);
    p = put(p, h->value, h->value_len);
  }
  put(p, req->body, blen);
}

size_t journal_clear(journal_t *j) {
  if (j == NULL || j->size == 0)
    return 0;
  size_t n = j->count;
  free_entries(j);
  j->start = j->count = 0;
  j->first_seq = 0;
  j->dropped = 0;
  return n;
}

uint64_t journal_dropped(const journal_t *j) { return j ? j->dropped : 0; }

uint64_t journal_dropped_total(const journal_t *j) { return j ? j->dropped_total : 0; }

void journal_range(const journal_t *j, uint64_t *first, uint64_t *last) {
  if (j == NULL || j->count == 0) {
    *first = *last = 0;
    return;
  }
  *first = j->first_seq;
  *last = j->first_seq + j->count - 1;
}

/* ---------------------------------------------------------------- reading */

static const struct entry *entry_at(const journal_t *j, size_t k) {
  assert(k < j->count && j->slots[(j->start + k) % j->size] != NULL);
  return j->slots[(j->start + k) % j->size];
}

static bool matches(const struct entry *e, const journal_filter_t *f) {
  if (f->method != -1 && e->method != f->method)
    return false;
  if (f->status && e->status != f->status)
    return false;
  if (f->unmatched && (e->matched || e->proxied))
    return false;
  const char *path = e->data + e->remote_len;
  if (f->path && (e->path_len != f->path_len || memcmp(path, f->path, f->path_len) != 0))
    return false;
  if (f->path_prefix &&
      (e->path_len < f->path_prefix_len || memcmp(path, f->path_prefix, f->path_prefix_len) != 0))
    return false;
  if (f->endpoint) {
    const char *ep = path + e->path_len + e->query_len;
    if (!e->matched || e->endpoint_len != f->endpoint_len ||
        memcmp(ep, f->endpoint, f->endpoint_len) != 0)
      return false;
  }
  return true;
}

static void view_of(const struct entry *e, journal_view_t *v) {
  const char *p = e->data;
  v->seq = e->seq;
  v->time_us = e->time_us;
  v->duration_us = e->duration_us;
  v->method = e->method;
  v->status = e->status;
  v->remote = p, v->remote_len = e->remote_len, p += e->remote_len;
  v->path = p, v->path_len = e->path_len, p += e->path_len;
  v->query = p, v->query_len = e->query_len, p += e->query_len;
  v->endpoint = e->matched ? p : NULL, v->endpoint_len = e->endpoint_len, p += e->endpoint_len;
  v->provision = p, v->provision_len = e->provision_len, p += e->provision_len;
  v->calls = p, v->calls_len = e->calls_len, p += e->calls_len;
  v->headers = p, v->headers_len = e->headers_len, p += e->headers_len;
  v->body = p, v->body_len = e->body_len;
  v->body_bytes = e->body_bytes;
  v->body_truncated = e->truncated;
  v->proxied = e->proxied;
  v->fault = http_fault_name(e->fault);
}

/* The ring positions [*lo, *hi) (0 = oldest) that hold exactly the
 * entries f selects, since and limit applied; returns how many match. */
static size_t select_range(const journal_t *j, const journal_filter_t *f, size_t *lo, size_t *hi) {
  *lo = *hi = 0;
  if (j == NULL || j->count == 0 || (f->has_limit && f->limit == 0))
    return 0;
  if (f->has_since) {
    uint64_t last = j->first_seq + j->count - 1;
    if (f->since >= last)
      return 0;
    if (f->since >= j->first_seq)
      *lo = (size_t)(f->since - j->first_seq + 1);
  }
  size_t n = 0, k;
  if (f->has_limit && !f->has_since) {
    /* The newest `limit`: walk back to where they start. */
    for (k = j->count; k > *lo && n < f->limit;)
      if (matches(entry_at(j, --k), f))
        n++;
    *lo = k;
    *hi = j->count;
    return n;
  }
  /* From `since` on: up to the limit-th match, or to the newest. */
  for (k = *lo; k < j->count && !(f->has_limit && n == f->limit); k++)
    if (matches(entry_at(j, k), f))
      n++;
  *hi = k;
  return n;
}

size_t journal_select(const journal_t *j, const journal_filter_t *f, journal_each_fn fn,
                      void *arg) {
  size_t lo, hi;
  size_t n = select_range(j, f, &lo, &hi);
  for (size_t k = lo; fn && k < hi; k++) {
    const struct entry *e = entry_at(j, k);
    if (!matches(e, f))
      continue;
    journal_view_t v;
    view_of(e, &v);
    if (fn(arg, &v))
      break;
  }
  return n;
}

/* Walks the packed headers: returns false at the end. */
static bool next_header(const char **p, const char *end, const char **name, size_t *nlen,
                        const char **value, size_t *vlen) {
  if (*p >= end)
    return false;
  uint32_t len[2];
  memcpy(len, *p, sizeof len);
  *name = *p + sizeof len;
  *nlen = len[0];
  *value = *name + len[0];
  *vlen = len[1];
  *p = *value + len[1];
  return true;
}

void journal_view_headers(const journal_view_t *v, buf_t *scratch,
                          void (*fn)(void *arg, const char *name, size_t nlen, const char *value,
                                     size_t vlen),
                          void *arg) {
  const char *end = v->headers + v->headers_len;
  const char *p = v->headers, *name, *value;
  size_t nlen, vlen;
  for (const char *at = p; next_header(&p, end, &name, &nlen, &value, &vlen); at = p) {
    /* A name seen before was reported with all its values already. */
    const char *q = v->headers, *n2, *v2;
    size_t n2len, v2len;
    bool dup = false;
    while (q < at && next_header(&q, end, &n2, &n2len, &v2, &v2len))
      if (n2len == nlen && strncasecmp(n2, name, nlen) == 0)
        dup = true;
    if (dup)
      continue;
    buf_reset(scratch);
    if (buf_reserve(scratch, nlen))
      return;
    text_lower(scratch->data, name, nlen);
    scratch->len = nlen;
    buf_append(scratch, value, vlen);
    q = p;
    while (next_header(&q, end, &n2, &n2len, &v2, &v2len))
      if (n2len == nlen && strncasecmp(n2, name, nlen) == 0) {
        buf_append(scratch, ", ", 2);
        buf_append(scratch, v2, v2len);
      }
    fn(arg, scratch->data, nlen, scratch->data + nlen, scratch->len - nlen);
  }
}

int journal_view_body(const journal_view_t *v, buf_t *out, bool *base64) {
  bool incomplete;
  size_t ok = text_utf8_valid(v->body, v->body_len, &incomplete);
  /* A cut made by the size limit is not the client's: drop the partial
   * character rather than call the whole body binary. */
  if (ok == v->body_len || (incomplete && v->body_truncated)) {
    *base64 = false;
    return buf_append(out, v->body, ok);
  }
  *base64 = true;
  return text_base64(out, v->body, v->body_len);
}

struct json_headers {
  buf_t *out;
  bool first;
};

static void header_json(void *arg, const char *name, size_t nlen, const char *value, size_t vlen) {
  struct json_headers *h = arg;
  if (!h->first)
    buf_putc(h->out, ',');
  h->first = false;
  text_json_string(h->out, name, nlen);
  buf_putc(h->out, ':');
  text_json_string(h->out, value, vlen);
}

int journal_view_json(const journal_view_t *v, buf_t *out, buf_t *scratch) {
  char when[TEXT_RFC3339_LEN + 1];
  text_rfc3339_us(v->time_us, when);
  const char *method = http_method_name(v->method);
  buf_printf(out, "{\"seq\":%llu,\"time\":\"%s\",\"remote\":", (unsigned long long)v->seq, when);
  text_json_string(out, v->remote, v->remote_len);
  buf_puts(out, ",\"method\":");
  text_json_string(out, method ? method : "?", method ? strlen(method) : 1);
  buf_puts(out, ",\"path\":");
  text_json_string(out, v->path, v->path_len);
  buf_puts(out, ",\"query\":");
  text_json_string(out, v->query, v->query_len);
  buf_puts(out, ",\"headers\":{");
  struct json_headers h = {out, true};
  journal_view_headers(v, scratch, header_json, &h);
  buf_puts(out, "},\"body\":");
  bool base64;
  buf_reset(scratch);
  journal_view_body(v, scratch, &base64);
  text_json_string(out, scratch->data, scratch->len);
  buf_printf(out,
             ",\"body_encoding\":\"%s\",\"body_truncated\":%s,\"body_bytes\":%zu,"
             "\"status\":%d,\"endpoint\":",
             base64 ? "base64" : "utf-8", v->body_truncated ? "true" : "false", v->body_bytes,
             v->status);
  if (v->endpoint)
    text_json_string(out, v->endpoint, v->endpoint_len);
  else
    buf_puts(out, "null");
  buf_puts(out, ",\"provision\":");
  text_json_string(out, v->provision, v->provision_len);
  buf_printf(out, ",\"proxied\":%s,\"fault\":", v->proxied ? "true" : "false");
  if (v->fault)
    buf_printf(out, "\"%s\"", v->fault);
  else
    buf_puts(out, "null");
  buf_puts(out, ",\"calls\":[");
  buf_append(out, v->calls, v->calls_len);
  return buf_printf(out, "],\"duration_us\":%llu}", (unsigned long long)v->duration_us);
}

/* ---------------------------------------------------------------- export */

struct journal_export {
  const journal_t *j;
  journal_filter_t f; /* its strings point into `strings` */
  buf_t strings;
  buf_t scratch;
  uint64_t next; /* the next sequence number to look at */
  uint64_t end;  /* the last one in the selection; next > end: no entry left */
  size_t want;   /* entries selected at the start */
  size_t sent;
  bool started;
};

/* Points *s (n bytes, may be NULL) at a copy in b, reserved beforehand. */
static void keep_string(buf_t *b, const char **s, size_t n) {
  if (*s == NULL)
    return;
  char *copy = b->data + b->len;
  buf_append(b, *s, n);
  *s = copy;
}

journal_export_t *journal_export_new(const journal_t *j, const journal_filter_t *f) {
  journal_export_t *x = calloc(1, sizeof *x);
  if (x == NULL)
    return NULL;
  x->j = j;
  x->f = *f;
  /* One reservation: the copies must not move once pointed at. */
  if (buf_reserve(&x->strings, f->path_len + f->path_prefix_len + f->endpoint_len + 1)) {
    free(x);
    return NULL;
  }
  keep_string(&x->strings, &x->f.path, f->path_len);
  keep_string(&x->strings, &x->f.path_prefix, f->path_prefix_len);
  keep_string(&x->strings, &x->f.endpoint, f->endpoint_len);
  /* Sequence numbers, not ring positions, say where the export is: the
   * ring turns and may be cleared between two pieces. */
  size_t lo, hi;
  x->want = select_range(j, f, &lo, &hi);
  x->next = 1;
  x->end = 0;
  if (x->want) {
    x->next = j->first_seq + lo;
    x->end = j->first_seq + hi - 1;
  }
  return x;
}

int journal_export_next(journal_export_t *x, buf_t *out, size_t piece) {
  const journal_t *j = x->j;
  size_t start = out->len;
  if (!x->started) {
    /* What comes before the entries describes the ring when the export
     * began; count and skipped, known only at the end, follow them. */
    uint64_t first, last;
    journal_range(j, &first, &last);
    x->started = true;
    if (buf_printf(out,
                   "{\"enabled\":%s,\"dropped\":%llu,\"first_seq\":%llu,\"last_seq\":%llu,"
                   "\"requests\":[",
                   journal_enabled(j) ? "true" : "false", (unsigned long long)journal_dropped(j),
                   (unsigned long long)first, (unsigned long long)last))
      return -ENOMEM;
  }
  while (x->next <= x->end && out->len - start < piece) {
    /* Entries evicted since the last piece are skipped; want - sent
     * counts them at the end. */
    if (j->count == 0 || x->next > j->first_seq + j->count - 1) {
      x->next = x->end + 1;
      break;
    }
    if (x->next < j->first_seq)
      x->next = j->first_seq;
    if (x->next > x->end)
      break;
    const struct entry *e = entry_at(j, (size_t)(x->next - j->first_seq));
    x->next++;
    if (!matches(e, &x->f))
      continue;
    journal_view_t v;
    view_of(e, &v);
    if ((x->sent++ && buf_putc(out, ',')) || journal_view_json(&v, out, &x->scratch))
      return -ENOMEM;
  }
  if (x->next <= x->end)
    return 1;
  if (buf_printf(out, "],\"count\":%zu,\"skipped\":%zu}\n", x->sent,
                 x->want > x->sent ? x->want - x->sent : 0))
    return -ENOMEM;
  return 0;
}

void journal_export_free(journal_export_t *x) {
  if (x == NULL)
    return;
  buf_free(&x->strings);
  buf_free(&x->scratch);
  free(x);
}

int journal_json(const journal_t *j, const journal_filter_t *f, buf_t *out) {
  journal_export_t *x = journal_export_new(j, f);
  if (x == NULL)
    return -ENOMEM;
  int rc;
  while ((rc = journal_export_next(x, out, SIZE_MAX)) > 0)
    ;
  journal_export_free(x);
  return rc;
}
