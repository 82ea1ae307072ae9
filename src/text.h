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

/* The length (1-4) of the well-formed UTF-8 sequence at s[0..n) (n >= 1; 1
 * for ASCII), or 0 and in *bad the length of its maximal ill-formed prefix,
 * which the replacing helpers turn into one U+FFFD as Unicode recommends (so
 * "\xE2\x82", a cut-off sequence, is one U+FFFD, "\xC0\x80" two). */
size_t text_utf8_seq(const char *s, size_t n, size_t *bad);

/* Bit 1: a byte that a JSON string escapes and a JSON decoder stops at
 * inside a string ('"', '\\', control characters). Bit 2: a byte >= 0x80. */
extern const unsigned char text_json_class[256];

/* Copies s[0..n) to out with ASCII 'A'..'Z' made lower case and every other
 * byte as it is (no locale: header names are ASCII tokens, RFC 9110 5.1).
 * out may be s. */
void text_lower(char *out, const char *s, size_t n);

struct sockaddr;

/* Writes an IPv4 or IPv6 socket address as text: the IP alone into ip
 * ("127.0.0.1", "::1") and with its port into peer ("127.0.0.1:80",
 * "[::1]:80"), each NUL-terminated and cut to its size. Either may be NULL.
 * Another family, or NULL, writes "?". The one way h1mock names a peer or a
 * listener in its logs, the journal and the access log. */
void text_address(const struct sockaddr *sa, char *ip, size_t iplen, char *peer, size_t peerlen);

/* Appends the standard base64 of p[0..n), with '=' padding. 0 or -ENOMEM. */
int text_base64(buf_t *out, const void *p, size_t n);

/* Appends s[0..n) as a JSON string, quotes included: '"', '\\' and control
 * characters are escaped (\n, \t... where JSON has a short form, \u00XX
 * otherwise), valid UTF-8 passes through, and each ill-formed subsequence
 * becomes U+FFFD (see text_utf8_seq), so the result is always valid JSON in
 * valid UTF-8. The one JSON string writer: the journal, the admin API, the
 * access log and Lua's json.encode. 0 or -ENOMEM. */
int text_json_string(buf_t *out, const char *s, size_t n);

/* Appends s[0..n) with each ill-formed subsequence replaced by U+FFFD (as
 * text_json_string does), for text formats that must be UTF-8. */
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

/* True when s[0..n) is a web origin as a browser sends it (RFC 6454):
 * "null", or scheme://host[:port] with a host name, an IPv4 address or a
 * bracketed IPv6 address, and no path (not even "/"). */
bool text_is_origin(const char *s, size_t n);

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
