/* text.h - bytes shown as text: UTF-8 validation, base64, JSON strings that
 * stay valid whatever the bytes are, and RFC 3339 times.
 *
 * The journal, the metrics and the access log show what clients sent, and
 * clients send any bytes; these helpers keep every answer parseable.
 */
#ifndef H1MOCK_TEXT_H
#define H1MOCK_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Checks that s[0..n) is UTF-8 as RFC 3629 defines it: no overlong forms,
 * no surrogates (U+D800..DFFF), nothing above U+10FFFF. Returns the length
 * of the longest valid prefix (n when all of it is valid). When the bytes
 * after that prefix are the start of a valid sequence that the end of the
 * input cut short, *incomplete (if given) is set to true. */
size_t text_utf8_valid(const char *s, size_t n, bool *incomplete);

/* Appends the standard base64 of p[0..n), with '=' padding. 0 or -ENOMEM. */
int text_base64(buf_t *out, const void *p, size_t n);

/* Appends s[0..n) as a JSON string, quotes included: '"', '\\' and control
 * characters are escaped, and each byte that is not part of valid UTF-8
 * becomes \ufffd, so the result is always valid JSON. 0 or -ENOMEM. */
int text_json_string(buf_t *out, const char *s, size_t n);

/* Appends s[0..n) with each byte that is not part of valid UTF-8 replaced
 * by U+FFFD (as UTF-8), for text formats that must be UTF-8. */
int text_utf8_lossy(buf_t *out, const char *s, size_t n);

/* How text_escape treats printable ASCII, newlines and tabs. Every mode
 * writes other control bytes, DEL and bytes that are not part of valid UTF-8
 * as "\xHH", so the text cannot end a line, start a terminal escape, or make
 * a UTF-8 reader fail. */
enum text_escape {
  TEXT_ESCAPE_FIELD,   /* one token: ' ', '"' and '\\' escaped too (access log fields) */
  TEXT_ESCAPE_VALUE,   /* one line: '\\' escaped too, so "\x0a" in the output is unambiguous
                          (what a client sent, quoted in a log line) */
  TEXT_ESCAPE_MESSAGE, /* lines of text: LF and TAB stay, '\\' stays (a Lua error with its
                          traceback, a provision's log line) */
};

/* Appends at most `max` bytes of s[0..n), escaped as `how` says, then "..."
 * when s was longer. 0 or -ENOMEM. */
int text_escape(buf_t *out, const char *s, size_t n, size_t max, enum text_escape how);

/* The same into `b` (emptied first), NUL-terminated, for a "%s" of a log
 * line: returns b's text, or "" when out of memory. The caller frees b. */
const char *text_escape_str(buf_t *b, const char *s, size_t n, size_t max, enum text_escape how);

/* Wall-clock time, microseconds since the epoch. */
int64_t text_now_us(void);

#define TEXT_RFC3339_LEN 27 /* "2026-11-23T10:00:00.123456Z" */

/* Writes `us` (microseconds since the epoch, UTC) as
 * "YYYY-MM-DDTHH:MM:SS.uuuuuuZ" and a NUL into out. */
void text_rfc3339_us(int64_t us, char out[TEXT_RFC3339_LEN + 1]);

#define TEXT_RFC3339_MS_LEN 24 /* "2026-11-23T10:00:00.123Z" */

/* The same to the millisecond, for log lines and the admin API. Both are
 * safe on any thread. */
void text_rfc3339_ms(int64_t ms, char out[TEXT_RFC3339_MS_LEN + 1]);

#endif
