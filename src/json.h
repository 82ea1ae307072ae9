/* json.h - JSON text without Lua: the pieces every JSON writer in h1mock
 * uses (strings, numbers, error messages) and a reader that reports JSON
 * text as events to callbacks.
 *
 * The Lua `json` module (script_json.c) builds Lua values from the events
 * and writes Lua values with the writers; the admin API's store seeding
 * (seed.c) turns a body into stored documents with no Lua state at
 * all; the journal, the admin API and the access log write their answers
 * with json_string.
 *
 * Writing:
 * - Strings are escaped with \" \\ \b \f \n \r \t and \u00XX; valid UTF-8
 *   passes through, each ill-formed subsequence becomes U+FFFD, so the
 *   result is valid JSON in valid UTF-8 whatever the bytes.
 * - Integers print as integers; finite doubles in the shortest of
 *   %.15g/%.16g/%.17g that reads back exactly, with ".0" added when the
 *   text looks integral (1.0 -> "1.0"), so a float reads back as a float.
 *
 * Reading (RFC 8259, strict), json_parse:
 * - Containers are tracked on an explicit stack of JSON_MAX_DEPTH levels:
 *   deeper nesting is an error, never a deep C recursion.
 * - Strings reach the callbacks unescaped, with their length (they may hold
 *   NUL bytes); a lone surrogate escape becomes U+FFFD. Raw bytes that are
 *   not valid UTF-8 are passed on as they are.
 * - A number literal without fraction or exponent that fits int64 is an
 *   integer; any other is a double (1e400 -> inf, as in Python and Lua).
 * - A leading UTF-8 byte order mark is skipped; positions in messages count
 *   from after it. Line and column are 1-based; columns count characters
 *   (UTF-8 sequences), lines end at '\n'.
 * - Messages read "unexpected character '}' at line 1, column 9".
 */
#ifndef H1MOCK_JSON_H
#define H1MOCK_JSON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define JSON_MAX_DEPTH 1000

/* ---- Writing ------------------------------------------------------------- */

/* Bit 1: a byte a JSON string escapes and a reader stops at inside a string
 * ('"', '\\', control characters). Bit 2: a byte >= 0x80. */
extern const unsigned char json_class[256];

/* Appends s[0..n) as a JSON string, quotes included (rules above). The one
 * JSON string writer: the journal, the admin API, the access log and Lua's
 * json.encode. 0 or -ENOMEM. */
int json_string(buf_t *out, const char *s, size_t n);

/* Writes v in decimal into tmp (no NUL); returns the length. */
size_t json_fmt_int(char tmp[static 24], int64_t v);

/* Writes the finite double d into tmp (no NUL) as described above; returns
 * the length (at most 26). */
size_t json_fmt_double(char tmp[static 32], double d);

/* Appends v. 0 or -ENOMEM. */
int json_int(buf_t *out, int64_t v);

/* Appends the finite double d; -EINVAL for NaN and +-inf, which JSON
 * cannot say. 0 or -ENOMEM. */
int json_double(buf_t *out, double d);

/* ---- Messages ------------------------------------------------------------ */

/* A message written into a caller's fixed buffer: whatever does not fit is
 * cut, and a cut message ends in "..." once json_msg_end is called. */
typedef struct json_msg {
  char *p;
  size_t cap;
  size_t len;
  int full;
} json_msg_t;

/* p may be NULL when cap is 0: everything is then dropped. */
void json_msg_init(json_msg_t *m, char *p, size_t cap);
void json_msg_put(json_msg_t *m, const char *s, size_t n);
void json_msg_puts(json_msg_t *m, const char *s);
void json_msg_printf(json_msg_t *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void json_msg_vprintf(json_msg_t *m, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
void json_msg_end(json_msg_t *m);

/* ---- Reading ------------------------------------------------------------- */

typedef struct json_parser json_parser_t;

/* What json_parse reports. Each callback returns 0 to go on, or a negative
 * code that stops the parse and is returned by json_parse (the callback
 * writes its own message into p->err, json_fail helps). A NULL callback
 * ignores its event. Every value is one of begin_object ... end_object,
 * begin_array ... end_array, string, integer, number, boolean or null; in
 * an object each value follows its key. */
typedef struct json_events {
  int (*begin_object)(json_parser_t *p);
  int (*end_object)(json_parser_t *p);
  int (*begin_array)(json_parser_t *p);
  int (*end_array)(json_parser_t *p);
  int (*key)(json_parser_t *p, const char *s, size_t n);
  int (*string)(json_parser_t *p, const char *s, size_t n);
  int (*integer)(json_parser_t *p, int64_t v);
  int (*number)(json_parser_t *p, double d);
  int (*boolean)(json_parser_t *p, int b);
  int (*null)(json_parser_t *p);
  /* Room for at least n bytes of unescaped text, kept until the next call,
   * or NULL when out of memory. NULL means json_parse uses malloc (and
   * frees it on return); a caller whose callbacks may longjmp (Lua) gives
   * memory its collector owns. */
  char *(*scratch)(json_parser_t *p, size_t n);
} json_events_t;

struct json_parser {
  const json_events_t *ev;
  void *ud;          /* the caller's, for the callbacks */
  json_msg_t *err;   /* where messages go */
  const char *start; /* positions in messages count from here */
  const char *p, *end;
  const char *tok;                    /* the first byte of the token being reported */
  int depth;                          /* open containers */
  unsigned char open[JSON_MAX_DEPTH]; /* '{' or '[' per open container */
  char *mem;                          /* json_parse's own scratch, when ev->scratch is NULL */
  size_t memcap;
};

/* Parses s[0..len) and reports it to ev's callbacks, with ud in p->ud.
 * Returns 0; -EINVAL with a message in err when the text is not JSON (the
 * events reported up to then stand, the caller drops what it built);
 * -ENOMEM; or what a callback returned. err may have cap 0. */
int json_parse(const char *s, size_t len, const json_events_t *ev, void *ud, json_msg_t *err);

/* For a callback: writes fmt's message and " at line L, column C" of the
 * token being reported into p->err and returns -EINVAL. */
int json_fail(json_parser_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
