/* journal.h - the request journal: the last N traffic requests, so that a
 * test can ask the mock what it received.
 *
 * A ring of N entries. journal_record runs after every traffic response and
 * is kept cheap: it copies what it keeps into one allocation per entry
 * (reused when the ring comes round to it and it is big enough) and
 * formats nothing; times, JSON, UTF-8 checks and base64 happen when the
 * journal is read. When the ring wraps, the oldest entry goes and `dropped`
 * counts it, so a reader tells "never received" from "evicted".
 *
 * Entries carry consecutive sequence numbers (from 1) that keep growing
 * across journal_clear, so "everything after seq S" is found without a
 * search. Memory: at most size x (entry head + request head + body_bytes);
 * a request head is at most HTTP_MAX_HEAD bytes.
 *
 * Not thread-safe: the event loop records and reads.
 */
#ifndef H1MOCK_JOURNAL_H
#define H1MOCK_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "http.h"
#include "origin.h"

/* The statuses a filter takes: whatever a view may answer. */
#define JOURNAL_STATUS_MIN 100
#define JOURNAL_STATUS_MAX 999

typedef struct journal journal_t;

/* A journal of `size` entries keeping up to `body_bytes` of each body and
 * holding at most `max_bytes` of memory for its entries (0: no limit; one
 * entry larger than that is still kept, alone). Making room, for a full
 * ring or for the byte limit, drops the oldest entries and counts them.
 * size 0 gives a disabled journal: it records nothing and reads empty.
 * NULL when out of memory. */
journal_t *journal_new(size_t size, size_t body_bytes, size_t max_bytes);
void journal_free(journal_t *j);

bool journal_enabled(const journal_t *j);

/* Records one answered request. `time_us` is when it started (wall clock,
 * microseconds since the epoch), `duration_us` how long the answer took;
 * the endpoint, the provision and the outbound calls come from `origin`. Out of memory, the entry
 * is dropped (and counted as dropped). */
void journal_record(journal_t *j, const char *remote, const http_request_t *req,
                    const http_response_t *resp, const origin_t *origin, int64_t time_us,
                    uint64_t duration_us);

/* Forgets every entry and resets `dropped`; sequence numbers go on.
 * Returns how many entries were forgotten. */
size_t journal_clear(journal_t *j);

/* Entries evicted by wrapping since the last clear. */
uint64_t journal_dropped(const journal_t *j);
/* Entries evicted by wrapping since the start (for the metrics). */
uint64_t journal_dropped_total(const journal_t *j);
/* The sequence numbers the ring holds now: both 0 when it is empty. */
void journal_range(const journal_t *j, uint64_t *first, uint64_t *last);

/* Which entries a read wants; every condition set must hold. */
typedef struct journal_filter {
  int method;     /* -1: any; -2: none (a name h1mock does not know) */
  int status;     /* 0: any */
  bool unmatched; /* only requests no rule matched and no proxy answered */
  bool has_since; /* only entries with seq > since */
  uint64_t since;
  bool has_limit; /* with since: the first `limit` after it; else the newest */
  uint64_t limit;
  const char *path; /* exact (decoded) path, or NULL */
  size_t path_len;
  const char *path_prefix;
  size_t path_prefix_len;
  const char *endpoint; /* exact endpoint name, or NULL */
  size_t endpoint_len;
} journal_filter_t;

/* Everything set to "any". */
void journal_filter_init(journal_filter_t *f);

/* Sets f->method from a name in any case ("get"). Returns 0, or -EINVAL
 * when the name is empty or not a token. A token h1mock does not know
 * matches nothing. */
int journal_filter_method(journal_filter_t *f, const char *name, size_t len);

/* The filters by name: the admin API's query parameters and the keys of
 * journal.count/find's table are the same. */
enum journal_filter_key {
  JOURNAL_F_METHOD,
  JOURNAL_F_PATH,
  JOURNAL_F_PATH_PREFIX,
  JOURNAL_F_ENDPOINT,
  JOURNAL_F_STATUS,
  JOURNAL_F_SINCE,
  JOURNAL_F_LIMIT,
  JOURNAL_F_COUNT
};
#define JOURNAL_FILTER_LIST "method, path, path_prefix, endpoint, status, since, limit"
extern const char *const journal_filter_names[JOURNAL_F_COUNT];

/* The filter named by the n bytes of name, or JOURNAL_F_COUNT. */
enum journal_filter_key journal_filter_key(const char *name, size_t n);

/* Parses a query string (method=&path=&path_prefix=&endpoint=&status=&
 * since=&limit=, percent-encoded) into f. The decoded values live in
 * `scratch`, which must outlive f. Returns 0, or -EINVAL with a sentence in
 * err naming the parameter and the value that was refused (an unknown
 * parameter, one given twice, an empty value, a status outside 100-999, a
 * since or limit that is not a non-negative integer). */
int journal_filter_parse(journal_filter_t *f, const char *query, size_t len, buf_t *scratch,
                         char *err, size_t errlen);

/* One entry as a reader sees it; the pointers are valid until the next
 * journal_record or journal_clear. */
typedef struct journal_view {
  uint64_t seq;
  int64_t time_us; /* when the request started, microseconds since the epoch */
  uint64_t duration_us;
  int method;
  int status;
  const char *remote, *path, *query, *provision;
  size_t remote_len, path_len, query_len, provision_len;
  const char *calls; /* the outbound calls: JSON array elements, "" when none */
  size_t calls_len;
  const char *endpoint; /* NULL when no rule matched */
  size_t endpoint_len;
  const char *body; /* the kept bytes */
  size_t body_len;
  size_t body_bytes; /* the whole body's length */
  bool body_truncated;
  bool proxied;        /* --proxy answered it */
  const char *fault;   /* what fault() the view returned ("reset", ...), or NULL */
  const char *headers; /* packed; read them with journal_view_headers */
  size_t headers_len;
} journal_view_t;

/* Called per matching entry, oldest first; non-zero stops the walk. */
typedef int (*journal_each_fn)(void *arg, const journal_view_t *v);

/* Calls fn (when not NULL) for each entry f selects and returns how many
 * it selected. */
size_t journal_select(const journal_t *j, const journal_filter_t *f, journal_each_fn fn,
                      void *arg);

/* Calls fn once per header name of the entry, in first-seen order, with
 * the name lower-cased and the values of every header of that name joined
 * with ", ". Both point into `scratch`, overwritten by the next call. */
void journal_view_headers(const journal_view_t *v, buf_t *scratch,
                          void (*fn)(void *arg, const char *name, size_t nlen, const char *value,
                                     size_t vlen),
                          void *arg);

/* Appends the body as text to out: the bytes themselves when they are
 * UTF-8 (a truncated body is cut back to its last whole character), else
 * their base64; *base64 says which. 0 or -ENOMEM. */
int journal_view_body(const journal_view_t *v, buf_t *out, bool *base64);

/* Appends one entry as a JSON object. `scratch` is working space. */
int journal_view_json(const journal_view_t *v, buf_t *out, buf_t *scratch);

/* The answer of GET /app/v1/requests, made a piece at a time so that an
 * export of any size holds about one piece in memory:
 *   {"enabled":..,"dropped":..,"first_seq":..,"last_seq":..,
 *    "requests":[...],"count":..,"skipped":..} and a newline.
 * The fields before `requests` describe the ring when the export began.
 * The selection (filters, since, limit) is fixed then too, as a range of
 * sequence numbers: entries recorded later are not in it, and entries of
 * it that are evicted (or cleared) before their turn are left out and
 * counted in `skipped`; `count` is the number of entries in `requests`. */
typedef struct journal_export journal_export_t;

/* Starts an export of what f selects now (f's strings are copied). The
 * journal must outlive the export. NULL when out of memory. */
journal_export_t *journal_export_new(const journal_t *j, const journal_filter_t *f);

/* Appends the next piece to out: the head first, then whole entries until
 * at least `piece` bytes were added (or none is left), then the tail.
 * Returns 1 when more is to come, 0 when the tail was appended, -ENOMEM. */
int journal_export_next(journal_export_t *x, buf_t *out, size_t piece);

void journal_export_free(journal_export_t *x);

/* The whole export in one go (for small journals and tests): 0 or
 * -ENOMEM. */
int journal_json(const journal_t *j, const journal_filter_t *f, buf_t *out);

#endif
