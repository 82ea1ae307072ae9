/* access_log.h - one line per traffic request on stdout.
 *
 * text: "TIME REMOTE METHOD TARGET STATUS BYTES DURATIONus ENDPOINT", e.g.
 *   2026-11-23T10:00:00.123456Z 127.0.0.1:40112 GET /app/v1/foo/bar?x=1 200 48 57us answer_get
 * with TARGET as received (query included, percent-escapes kept), "-" for
 * no endpoint, and bytes that would split or garble the line (space,
 * control characters, '\\', '"', bytes that are not UTF-8; a valid target
 * has none) written as \xHH;
 * json: {"time":..,"remote":..,"method":..,"path":..,"target":..,
 *        "status":..,"bytes":..,"duration_us":..,"endpoint":..|null}
 * with "path" percent-decoded and without the query, "target" as received.
 * BYTES is the body bytes sent (0 for HEAD and bodiless statuses).
 *
 * Lines are gathered in memory and written once per turn of the event loop
 * (or when 64 KiB are waiting), so a busy server makes one write(2) per
 * batch, not per request.
 */
#ifndef H1MOCK_ACCESS_LOG_H
#define H1MOCK_ACCESS_LOG_H

#include <stdint.h>

#include <uv.h>

#include "buf.h"
#include "http.h"
#include "origin.h"

struct log;

enum access_log_format { ACCESS_LOG_OFF, ACCESS_LOG_TEXT, ACCESS_LOG_JSON };

typedef struct access_log access_log_t;

/* Starts an access log writing to `fd` (stdout); trouble with fd is told
 * to `lg`. Returns 0, or -ENOMEM. With ACCESS_LOG_OFF, *out is NULL
 * (every call below takes NULL). */
int access_log_open(uv_loop_t *loop, enum access_log_format format, int fd, const struct log *lg,
                    access_log_t **out);

/* Queues the line of one answered request that started at `time_us`;
 * the endpoint comes from `origin`. */
void access_log_request(access_log_t *a, const char *remote, const http_request_t *req,
                        const http_response_t *resp, const origin_t *origin, int64_t time_us,
                        uint64_t duration_us);

/* Writes what is queued and frees; call after the loop closed its handle
 * (uv_walk + uv_close at shutdown). */
void access_log_free(access_log_t *a);

/* Appends one line (newline included) in `format`, for tests and the
 * above. `endpoint` NULL: none. */
int access_log_format(buf_t *out, enum access_log_format format, int64_t time_us,
                      const char *remote, const char *method, const char *path, size_t path_len,
                      const char *target, size_t target_len, int status, size_t bytes,
                      uint64_t duration_us, const char *endpoint, size_t endpoint_len);

#endif
