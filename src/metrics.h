/* metrics.h - what GET /metrics shows, in the Prometheus text format 0.0.4.
 *
 * One set per process, updated and rendered on the event loop thread.
 * Counting a request is a hash lookup and a few additions; formatting
 * happens only when /metrics is read. No label takes values a client
 * controls without bound: requests are counted by method, status and
 * endpoint (the provision's rule names), never by path.
 */
#ifndef H1MOCK_METRICS_H
#define H1MOCK_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct store;

/* Distinct (method, status, endpoint) series kept; later new ones are
 * counted under endpoint="(other)". */
#define METRICS_MAX_SERIES 4096

/* Remembers the process start time; call once at start. */
void metrics_init(void);

/* Counts one answered traffic request; `endpoint` is NULL when no rule
 * matched (shown as endpoint=""). */
void metrics_request(int method, int status, const char *endpoint, size_t elen, uint64_t ns);

/* Counts one provision load, from any source. */
void metrics_provision_load(bool ok);

/* Where the number of open traffic connections is read (NULL: 0). */
void metrics_track_connections(const size_t *count);

/* What only the caller knows, read when rendering. */
typedef struct metrics_gauges {
  const char *provision;     /* the active provision's name, or NULL */
  uint64_t journal_dropped;  /* since the start */
  size_t lua_memory_bytes;   /* of the active provision's Lua state */
  size_t lua_memory_limit;   /* each state's limit, --max-lua-memory (0: none) */
  const struct store *store; /* documents per collection, or NULL */
} metrics_gauges_t;

/* Appends every metric with its HELP and TYPE lines. 0 or -ENOMEM. */
int metrics_render(buf_t *out, const metrics_gauges_t *g);

/* Appends a label value: '\\', '"' and newline escaped, bytes that are not
 * UTF-8 replaced by U+FFFD. */
int metrics_label_value(buf_t *out, const char *s, size_t n);

/* Forgets every count (frees the series). */
void metrics_reset(void);

#endif
