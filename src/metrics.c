/* metrics.c - counters, the latency histogram and their text rendering. */
#include "metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http.h"
#include "store.h"
#include "text.h"

#define OTHER_ENDPOINT "(other)"

/* Upper bounds of the latency buckets, in nanoseconds, and as Prometheus
 * shows them (seconds); the last bucket is +Inf. */
static const uint64_t bucket_ns[] = {
    50000,     100000,     250000,     500000,     1000000,     2500000,
    5000000,   10000000,   25000000,   50000000,   100000000,   250000000,
    500000000, 1000000000, 2500000000, 5000000000, 10000000000,
};
static const char *const bucket_le[] = {
    "5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
    "0.05",  "0.1",    "0.25",    "0.5",    "1",     "2.5",    "5",     "10",
};
#define NBUCKETS (sizeof bucket_ns / sizeof bucket_ns[0])

struct series {
  uint64_t count;
  uint32_t hash;
  uint16_t status;
  uint8_t method;
  bool none; /* no rule matched */
  size_t elen;
  char *endpoint;
};

/* A latency histogram; the buckets are not cumulative, the last is +Inf. */
struct histogram {
  uint64_t buckets[NBUCKETS + 1];
  uint64_t observed;
  uint64_t sum_ns;
};

struct metrics {
  struct series *series; /* in creation order */
  size_t n, cap;
  uint32_t *index; /* open addressing: series index + 1, 0 = empty */
  size_t index_cap;
  struct histogram requests;
  struct histogram client;    /* outbound calls of the provisions */
  uint64_t client_results[2]; /* error, ok */
  uint64_t loads[2];          /* failure, success */
  uint64_t watcher_events[2]; /* ignored, queued */
  uint64_t watcher_bursts;
  bool watcher_pending;
  const size_t *connections;
  int64_t start_us;
};

metrics_t *metrics_new(int64_t start_us) {
  metrics_t *m = calloc(1, sizeof *m);
  if (m)
    m->start_us = start_us;
  return m;
}

void metrics_free(metrics_t *m) {
  if (m == NULL)
    return;
  for (size_t i = 0; i < m->n; i++)
    free(m->series[i].endpoint);
  free(m->series);
  free(m->index);
  free(m);
}

void metrics_track_connections(metrics_t *m, const size_t *count) { m->connections = count; }

void metrics_provision_load(metrics_t *m, bool ok) { m->loads[ok ? 1 : 0]++; }

void metrics_watcher_event(metrics_t *m, bool queued) { m->watcher_events[queued ? 1 : 0]++; }

void metrics_watcher_burst(metrics_t *m) { m->watcher_bursts++; }

void metrics_watcher_pending(metrics_t *m, bool pending) { m->watcher_pending = pending; }

static uint32_t hash_of(int method, int status, const char *e, size_t n, bool none) {
  uint32_t h = 2166136261u ^ (uint32_t)method ^ (uint32_t)status << 8 ^ (none ? 1u << 24 : 0);
  for (size_t i = 0; i < n; i++)
    h = (h ^ (unsigned char)e[i]) * 16777619u;
  return h;
}

static int grow_index(metrics_t *m) {
  size_t cap = m->index_cap ? m->index_cap * 2 : 64;
  uint32_t *idx = calloc(cap, sizeof *idx);
  if (idx == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < m->n; i++) {
    size_t k = m->series[i].hash & (cap - 1);
    while (idx[k])
      k = (k + 1) & (cap - 1);
    idx[k] = (uint32_t)(i + 1);
  }
  free(m->index);
  m->index = idx;
  m->index_cap = cap;
  return 0;
}

static struct series *find_or_add(metrics_t *m, int method, int status, const char *e, size_t n,
                                  bool none) {
  uint32_t h = hash_of(method, status, e, n, none);
  if (m->index_cap) {
    for (size_t k = h & (m->index_cap - 1); m->index[k]; k = (k + 1) & (m->index_cap - 1)) {
      struct series *s = &m->series[m->index[k] - 1];
      if (s->hash == h && s->method == method && s->status == status && s->none == none &&
          s->elen == n && memcmp(s->endpoint, e, n) == 0)
        return s;
    }
  }
  /* Past the cap, new endpoints share one series; requests no rule matched
   * keep theirs (method x status bounds them already). */
  if (m->n >= METRICS_MAX_SERIES && !none &&
      !(n == sizeof OTHER_ENDPOINT - 1 && memcmp(e, OTHER_ENDPOINT, n) == 0))
    return find_or_add(m, method, status, OTHER_ENDPOINT, sizeof OTHER_ENDPOINT - 1, false);
  if ((m->n + 1) * 2 > m->index_cap && grow_index(m))
    return NULL;
  if (m->n == m->cap) {
    size_t cap = m->cap ? m->cap * 2 : 32;
    struct series *v = realloc(m->series, cap * sizeof *v);
    if (v == NULL)
      return NULL;
    m->series = v;
    m->cap = cap;
  }
  char *copy = malloc(n + 1);
  if (copy == NULL)
    return NULL;
  if (n)
    memcpy(copy, e, n);
  copy[n] = '\0';
  struct series *s = &m->series[m->n];
  *s = (struct series){0, h, (uint16_t)status, (uint8_t)method, none, n, copy};
  size_t k = h & (m->index_cap - 1);
  while (m->index[k])
    k = (k + 1) & (m->index_cap - 1);
  m->index[k] = (uint32_t)++m->n;
  return s;
}

static void observe(struct histogram *h, uint64_t ns) {
  size_t b = 0;
  while (b < NBUCKETS && ns > bucket_ns[b])
    b++;
  h->buckets[b]++;
  h->observed++;
  h->sum_ns += ns;
}

void metrics_http_client(metrics_t *m, bool ok, uint64_t us) {
  m->client_results[ok ? 1 : 0]++;
  observe(&m->client, us * 1000);
}

void metrics_request(metrics_t *m, int method, int status, const char *endpoint, size_t elen,
                     uint64_t ns) {
  observe(&m->requests, ns);
  struct series *s = find_or_add(m, method, status, endpoint ? endpoint : "", endpoint ? elen : 0,
                                 endpoint == NULL);
  if (s)
    s->count++;
}

int metrics_label_value(buf_t *out, const char *s, size_t n) {
  buf_t clean = BUF_INIT;
  int rc = text_utf8_lossy(&clean, s, n);
  for (size_t i = 0; rc == 0 && i < clean.len; i++) {
    char c = clean.data[i];
    if (c == '\\')
      rc = buf_puts(out, "\\\\");
    else if (c == '"')
      rc = buf_puts(out, "\\\"");
    else if (c == '\n')
      rc = buf_puts(out, "\\n");
    else
      rc = buf_putc(out, c);
  }
  buf_free(&clean);
  return rc;
}

static void head(buf_t *out, const char *name, const char *type, const char *help) {
  buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void histogram(buf_t *out, const struct histogram *h, const char *name, const char *help) {
  head(out, name, "histogram", help);
  uint64_t cumulative = 0;
  for (size_t b = 0; b < NBUCKETS; b++) {
    cumulative += h->buckets[b];
    buf_printf(out, "%s_bucket{le=\"%s\"} %llu\n", name, bucket_le[b],
               (unsigned long long)cumulative);
  }
  buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)h->observed);
  buf_printf(out, "%s_sum %.9f\n", name, (double)h->sum_ns / 1e9);
  buf_printf(out, "%s_count %llu\n", name, (unsigned long long)h->observed);
}

static int collection_line(void *arg, const char *name, size_t len, size_t count) {
  buf_t *out = arg;
  buf_puts(out, "h1mock_store_documents{collection=\"");
  metrics_label_value(out, name, len);
  return buf_printf(out, "\"} %zu\n", count);
}

static size_t resident_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long size = 0, resident = 0;
  if (f) {
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
      resident = 0;
    fclose(f);
  }
  return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

int metrics_render(const metrics_t *m, buf_t *out, const metrics_gauges_t *g) {
  head(out, "h1mock_requests_total", "counter",
       "Traffic requests answered, by method, status and endpoint (\"\" when no rule matched).");
  for (size_t i = 0; i < m->n; i++) {
    const struct series *s = &m->series[i];
    const char *m = http_method_name(s->method);
    buf_printf(out, "h1mock_requests_total{method=\"%s\",status=\"%d\",endpoint=\"", m ? m : "?",
               s->status);
    metrics_label_value(out, s->endpoint, s->elen);
    buf_printf(out, "\"} %llu\n", (unsigned long long)s->count);
  }

  histogram(out, &m->requests, "h1mock_request_duration_seconds",
            "Time from a whole traffic request to its queued response.");

  head(out, "h1mock_connections_active", "gauge", "Open traffic connections.");
  buf_printf(out, "h1mock_connections_active %zu\n", m->connections ? *m->connections : 0);

  head(out, "h1mock_provision_loads_total", "counter",
       "Provision loads (start, directory, admin API), by result.");
  buf_printf(out, "h1mock_provision_loads_total{result=\"success\"} %llu\n",
             (unsigned long long)m->loads[1]);
  buf_printf(out, "h1mock_provision_loads_total{result=\"failure\"} %llu\n",
             (unsigned long long)m->loads[0]);

  head(out, "h1mock_watcher_events_total", "counter",
       "Provisions directory events seen, by outcome (queued for a reload, or ignored).");
  buf_printf(out, "h1mock_watcher_events_total{outcome=\"queued\"} %llu\n",
             (unsigned long long)m->watcher_events[1]);
  buf_printf(out, "h1mock_watcher_events_total{outcome=\"ignored\"} %llu\n",
             (unsigned long long)m->watcher_events[0]);
  head(out, "h1mock_watcher_bursts_total", "counter",
       "Bursts of directory events handled once they settled.");
  buf_printf(out, "h1mock_watcher_bursts_total %llu\n", (unsigned long long)m->watcher_bursts);
  head(out, "h1mock_watcher_pending", "gauge",
       "1 while a burst of directory events is settling, else 0.");
  buf_printf(out, "h1mock_watcher_pending %d\n", m->watcher_pending ? 1 : 0);

  head(out, "h1mock_provision_active_info", "gauge", "The provision serving traffic (always 1).");
  if (g && g->provision) {
    buf_puts(out, "h1mock_provision_active_info{name=\"");
    metrics_label_value(out, g->provision, strlen(g->provision));
    buf_puts(out, "\"} 1\n");
  }

  head(out, "h1mock_journal_dropped_total", "counter",
       "Journal entries evicted by the ring wrapping.");
  buf_printf(out, "h1mock_journal_dropped_total %llu\n",
             (unsigned long long)(g ? g->journal_dropped : 0));

  head(out, "h1mock_store_documents", "gauge", "Documents in the store, by collection.");
  if (g && g->store)
    store_collections(g->store, collection_line, out);

  uint64_t syncs = 0, writes = 0;
  if (g && g->store)
    store_commit_counts(g->store, &syncs, &writes);
  head(out, "h1mock_store_commits_total", "counter",
       "Commits of the durable store (--data-dir): each one fdatasync.");
  buf_printf(out, "h1mock_store_commits_total %llu\n", (unsigned long long)syncs);
  head(out, "h1mock_store_committed_writes_total", "counter",
       "Store writes the commits made durable (divided by the commits: the mean batch).");
  buf_printf(out, "h1mock_store_committed_writes_total %llu\n", (unsigned long long)writes);

  head(out, "h1mock_lua_memory_bytes", "gauge", "Memory of the active provision's Lua state.");
  buf_printf(out, "h1mock_lua_memory_bytes %zu\n", g ? g->lua_memory_bytes : 0);
  head(out, "h1mock_lua_memory_limit_bytes", "gauge",
       "Memory each provision's Lua state may hold (--max-lua-memory; 0: no limit).");
  buf_printf(out, "h1mock_lua_memory_limit_bytes %zu\n", g ? g->lua_memory_limit : 0);

  head(out, "h1mock_http_client_requests_total", "counter",
       "Outbound HTTP calls of the provisions (http.request, http.request_async), by result.");
  buf_printf(out, "h1mock_http_client_requests_total{result=\"ok\"} %llu\n",
             (unsigned long long)m->client_results[1]);
  buf_printf(out, "h1mock_http_client_requests_total{result=\"error\"} %llu\n",
             (unsigned long long)m->client_results[0]);
  histogram(out, &m->client, "h1mock_http_client_duration_seconds",
            "Time from an outbound call's start to its answer or failure.");

  int64_t now = text_now_us();
  head(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
  buf_printf(out, "process_resident_memory_bytes %zu\n", resident_bytes());
  head(out, "process_start_time_seconds", "gauge",
       "Start time of the process since the epoch in seconds.");
  buf_printf(out, "process_start_time_seconds %.6f\n", (double)m->start_us / 1e6);
  head(out, "h1mock_uptime_seconds", "gauge", "Seconds since h1mock started.");
  return buf_printf(out, "h1mock_uptime_seconds %.3f\n",
                    m->start_us ? (double)(now - m->start_us) / 1e6 : 0.0);
}
