/* fuzz_util.h - what the fuzz targets share: cutting bytes into requests
 * the way a connection reads them, and the checks every answer must pass.
 *
 * A failed check is a finding: it prints what was wrong and aborts, so
 * that libFuzzer keeps the input and the replay of the regression corpus
 * fails on it.
 */
#ifndef H1MOCK_FUZZ_UTIL_H
#define H1MOCK_FUZZ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"

/* Called per whole request; a non-zero return stops the feeding. */
typedef int (*fuzz_request_fn)(void *arg, const http_request_t *req);

/* Feeds the bytes to a new http_in (bodies up to max_body) in reads that
 * grow by `step` bytes, so that requests split at every position are
 * tried, and calls fn for each request parsed, pipelined ones included.
 * Stops at the first parse error. Returns how many requests fn saw. */
size_t fuzz_feed(const uint8_t *data, size_t size, size_t step, size_t max_body,
                 fuzz_request_fn fn, void *arg);

/* Prints "fuzz <target>: <message>" and aborts. */
void fuzz_fail(const char *target, const char *fmt, ...) __attribute__((format(printf, 2, 3)))
__attribute__((noreturn));

/* True when the n bytes are one JSON text as RFC 8259 has it (UTF-8, no
 * trailing bytes but whitespace, nesting up to 2000). *where, when given,
 * is the offset of the first byte that is wrong. */
bool fuzz_json_valid(const char *s, size_t n, size_t *where);

/* Checks an answer to a request of `method`: a status of 100 to 499 (a 5xx
 * from the mock's own code is a bug: no out of memory is expected here),
 * a response that serializes, and a body that is valid JSON when the
 * Content-Type says JSON. A streamed body is read whole first and closed.
 * Fails through fuzz_fail. With H1MOCK_FUZZ_SHOW set in the environment,
 * prints the status and the start of the body of each answer (to see what
 * a corpus file does). */
void fuzz_check_response(const char *target, http_response_t *resp, int method);

#endif
