/* metrics.h - what GET /metrics shows, in the Prometheus text format 0.0.4.
 *
 * One metrics_t per server, updated and rendered on its event loop thread.
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

typedef struct metrics metrics_t;

/* Empty counters of a server that started at `start_us` (microseconds
 * since the epoch), or NULL when out of memory. */
metrics_t *metrics_new(int64_t start_us);

/* Frees the counters (NULL: nothing). */
void metrics_free(metrics_t *m);

/* Counts one answered traffic request; `endpoint` is NULL when no rule
 * matched (shown as endpoint=""). */
void metrics_request(metrics_t *m, int method, int status, const char *endpoint, size_t elen,
                     uint64_t ns);

/* Counts one outbound call of a provision that took `us` microseconds:
 * `ok` when an answer came (whatever its status), else a failure. */
void metrics_http_client(metrics_t *m, bool ok, uint64_t us);

/* Counts one provision load, from any source. */
void metrics_provision_load(metrics_t *m, bool ok);

/* Counts one event of the provisions directory watcher: `queued` when it
 * starts or extends a burst that will be handled, else it was ignored. */
void metrics_watcher_event(metrics_t *m, bool queued);

/* Counts one settled burst, handled (a reload, or nothing to do), and says
 * whether a burst is settling now. Tests wait on these instead of sleeping
 * to show that a change was seen and that nothing more will happen. */
void metrics_watcher_burst(metrics_t *m);
void metrics_watcher_pending(metrics_t *m, bool pending);

/* Where the number of open traffic connections is read (NULL: 0); it must
 * stay valid while `m` renders. */
void metrics_track_connections(metrics_t *m, const size_t *count);

/* What only the caller knows, read when rendering. */
typedef struct metrics_gauges {
  const char *provision;     /* the active provision's name, or NULL */
  uint64_t journal_dropped;  /* since the start */
  size_t lua_memory_bytes;   /* of the active provision's Lua state */
  size_t lua_memory_limit;   /* each state's limit, --max-lua-memory (0: none) */
  const struct store *store; /* documents per collection, or NULL */
} metrics_gauges_t;

/* Appends every metric with its HELP and TYPE lines. 0 or -ENOMEM. */
int metrics_render(const metrics_t *m, buf_t *out, const metrics_gauges_t *g);

/* Appends a label value: '\\', '"' and newline escaped, bytes that are not
 * UTF-8 replaced by U+FFFD. */
int metrics_label_value(buf_t *out, const char *s, size_t n);

#endif
