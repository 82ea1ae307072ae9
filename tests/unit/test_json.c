/* test_json.c - unit tests for the Lua-free JSON core (src/json.c,
 * src/json_parse.c): the writers, and the reader's events and messages.
 *
 * Events are recorded as one line of text ("{ k:a i:1 [ d:1.5 ] }") so a
 * whole parse is checked with one comparison.
 */
#include "unit.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>

#include "buf.h"
#include "json.h"

#define R "\xEF\xBF\xBD" /* U+FFFD */

/* ---- The recorder ------------------------------------------------------- */

typedef struct rec {
  buf_t out;
  int stop_at; /* the event number that returns -ECANCELED, or 0 */
  int n;
} rec_t;

static int ev(json_parser_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int ev(json_parser_t *p, const char *fmt, ...) {
  rec_t *r = p->ud;
  if (r->out.len)
    buf_putc(&r->out, ' ');
  va_list ap;
  va_start(ap, fmt);
  buf_vprintf(&r->out, fmt, ap);
  va_end(ap);
  return ++r->n == r->stop_at ? -ECANCELED : 0;
}

/* Strings are shown with their bytes escaped, so NULs are visible. */
static int ev_bytes(json_parser_t *p, const char *tag, const char *s, size_t n) {
  buf_t b = BUF_INIT;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c >= 0x7F)
      buf_printf(&b, "\\x%02X", c);
    else
      buf_putc(&b, (char)c);
  }
  buf_putc(&b, '\0');
  int rc = ev(p, "%s:%s", tag, b.data);
  buf_free(&b);
  return rc;
}

static int r_bo(json_parser_t *p) { return ev(p, "{"); }
static int r_eo(json_parser_t *p) { return ev(p, "}"); }
static int r_ba(json_parser_t *p) { return ev(p, "["); }
static int r_ea(json_parser_t *p) { return ev(p, "]"); }
static int r_key(json_parser_t *p, const char *s, size_t n) { return ev_bytes(p, "k", s, n); }
static int r_str(json_parser_t *p, const char *s, size_t n) { return ev_bytes(p, "s", s, n); }
static int r_int(json_parser_t *p, int64_t v) { return ev(p, "i:%lld", (long long)v); }
static int r_num(json_parser_t *p, double d) { return ev(p, "d:%.17g", d); }
static int r_bool(json_parser_t *p, int b) { return ev(p, b ? "t" : "f"); }
static int r_null(json_parser_t *p) { return ev(p, "n"); }

static const json_events_t rec_events = {r_bo,  r_eo,  r_ba,   r_ea,   r_key, r_str,
                                         r_int, r_num, r_bool, r_null, NULL};

/* Parses s; returns the events (or "ERR: message") in a static buffer. */
static const char *parse_n(const char *s, size_t n, int stop_at) {
  static char out[4096];
  char err[256];
  json_msg_t m;
  json_msg_init(&m, err, sizeof err);
  rec_t r = {BUF_INIT, stop_at, 0};
  int rc = json_parse(s, n, &rec_events, &r, &m);
  if (rc == -ECANCELED)
    snprintf(out, sizeof out, "STOP: %.*s", (int)r.out.len, r.out.data ? r.out.data : "");
  else if (rc)
    snprintf(out, sizeof out, "ERR: %s", err);
  else
    snprintf(out, sizeof out, "%.*s", (int)r.out.len, r.out.data ? r.out.data : "");
  buf_free(&r.out);
  return out;
}

static const char *parse(const char *s) { return parse_n(s, strlen(s), 0); }

/* ---- Writers ------------------------------------------------------------- */

static const char *str(const char *s, size_t n) {
  static char out[512];
  buf_t b = BUF_INIT;
  ASSERT_EQ(json_string(&b, s, n), 0);
  snprintf(out, sizeof out, "%.*s", (int)b.len, b.data);
  buf_free(&b);
  return out;
}

TEST(test_string_escapes) {
  ASSERT_STR_EQ(str("", 0), "\"\"");
  ASSERT_STR_EQ(str("a\"b\\c/", 6), "\"a\\\"b\\\\c/\"");
  ASSERT_STR_EQ(str("\b\f\n\r\t", 5), "\"\\b\\f\\n\\r\\t\"");
  ASSERT_STR_EQ(str("\x01\x1f\x7f", 3), "\"\\u0001\\u001f\x7f\"");
  ASSERT_STR_EQ(str("a\0b", 3), "\"a\\u0000b\"");
}

TEST(test_string_utf8) {
  ASSERT_STR_EQ(str("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80", 9),
                "\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\"");
  ASSERT_STR_EQ(str("\xFF", 1), "\"" R "\"");
  ASSERT_STR_EQ(str("a\xE2\x82", 3), "\"a" R "\"");       /* cut short: one U+FFFD */
  ASSERT_STR_EQ(str("\xC0\x80", 2), "\"" R R "\"");       /* overlong */
  ASSERT_STR_EQ(str("\xED\xA0\x80", 3), "\"" R R R "\""); /* a surrogate */
}

static const char *num(double d) {
  static char out[40];
  char tmp[32];
  size_t n = json_fmt_double(tmp, d);
  snprintf(out, sizeof out, "%.*s", (int)n, tmp);
  return out;
}

TEST(test_numbers) {
  char tmp[24];
  ASSERT_MEM_EQ(tmp, json_fmt_int(tmp, 0), "0");
  ASSERT_MEM_EQ(tmp, json_fmt_int(tmp, -42), "-42");
  ASSERT_MEM_EQ(tmp, json_fmt_int(tmp, INT64_MAX), "9223372036854775807");
  ASSERT_MEM_EQ(tmp, json_fmt_int(tmp, INT64_MIN), "-9223372036854775808");
  ASSERT_STR_EQ(num(1.0), "1.0");
  ASSERT_STR_EQ(num(-0.0), "-0.0");
  ASSERT_STR_EQ(num(0.1), "0.1");
  ASSERT_STR_EQ(num(1.0 / 3), "0.3333333333333333");
  ASSERT_STR_EQ(num(1e15), "1e+15");
  ASSERT_STR_EQ(num(1e300), "1e+300");
  ASSERT_STR_EQ(num(5e-324), "5e-324");
  ASSERT_STR_EQ(num(1.2345678901234567e19), "1.2345678901234567e+19");
  buf_t b = BUF_INIT;
  ASSERT_EQ(json_double(&b, INFINITY), -EINVAL);
  ASSERT_EQ(json_double(&b, NAN), -EINVAL);
  ASSERT_EQ(b.len, 0);
  ASSERT_EQ(json_int(&b, 7), 0);
  ASSERT_EQ(json_double(&b, 2.5), 0);
  ASSERT_MEM_EQ(b.data, b.len, "72.5");
  buf_free(&b);
}

TEST(test_message_cut) {
  char err[8];
  json_msg_t m;
  json_msg_init(&m, err, sizeof err);
  json_msg_printf(&m, "%s", "a long message");
  json_msg_end(&m);
  ASSERT_STR_EQ(err, "a lo...");
  json_msg_init(&m, NULL, 0); /* dropped, no crash */
  json_msg_puts(&m, "x");
  json_msg_end(&m);
}

/* ---- Reader -------------------------------------------------------------- */

TEST(test_every_event) {
  ASSERT_STR_EQ(parse(" { \"a\" : [1, -2.5, \"x\", true, false, null, {}, []] } "),
                "{ k:a [ i:1 d:-2.5 s:x t f n { } [ ] ] }");
  ASSERT_STR_EQ(parse("\"top\""), "s:top");
  ASSERT_STR_EQ(parse("null"), "n");
  ASSERT_STR_EQ(parse("{\"a\":1,\"a\":2}"), "{ k:a i:1 k:a i:2 }"); /* duplicates reported */
  ASSERT_STR_EQ(parse("\xEF\xBB\xBF[]"), "[ ]");                    /* a byte order mark */
}

TEST(test_string_unescaping) {
  ASSERT_STR_EQ(parse("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\""), "s:\"\\/\\x08\\x0C\\x0A\\x0D\\x09");
  ASSERT_STR_EQ(parse("\"a\\u0000b\""), "s:a\\x00b");
  ASSERT_STR_EQ(parse("\"\\u00e9\\u20AC\""), "s:\\xC3\\xA9\\xE2\\x82\\xAC");
  /* A surrogate pair is one character; a lone half is U+FFFD. */
  ASSERT_STR_EQ(parse("\"\\ud83d\\ude00\""), "s:\\xF0\\x9F\\x98\\x80");
  ASSERT_STR_EQ(parse("\"\\ud800x\""), "s:\\xEF\\xBF\\xBDx");
  ASSERT_STR_EQ(parse("\"\\udc00\""), "s:\\xEF\\xBF\\xBD");
  ASSERT_STR_EQ(parse("\"\\ud800\\u0041\""), "s:\\xEF\\xBF\\xBDA");
  /* Raw bytes that are not UTF-8 are passed on as they are. */
  ASSERT_STR_EQ(parse("\"\xFF\xFE\""), "s:\\xFF\\xFE");
  /* A long escaped string goes through the parser's own scratch memory. */
  char big[3000];
  big[0] = '"';
  for (int i = 1; i < 2998; i += 2)
    memcpy(big + i, "\\n", 2);
  big[2997] = '"';
  ASSERT(strncmp(parse_n(big, 2998, 0), "s:\\x0A\\x0A", 10) == 0);
}

TEST(test_numbers_read) {
  ASSERT_STR_EQ(parse("[0, -0, 9223372036854775807, -9223372036854775808]"),
                "[ i:0 i:0 i:9223372036854775807 i:-9223372036854775808 ]");
  ASSERT_STR_EQ(parse("[9223372036854775808, 1.0, 1e2, 1E-2, -0.0]"),
                "[ d:9.2233720368547758e+18 d:1 d:100 d:0.01 d:-0 ]");
  ASSERT_STR_EQ(parse("1e999"), "d:inf");
  ASSERT_STR_EQ(parse("-1e999"), "d:-inf");
  /* A literal longer than the parser's stack copy. */
  char big[200];
  memset(big, '1', 150);
  memcpy(big + 150, ".5", 3);
  ASSERT_STR_EQ(parse(big), "d:1.111111111111111e+149");
}

TEST(test_errors) {
  ASSERT_STR_EQ(parse(""), "ERR: unexpected end of text at line 1, column 1");
  ASSERT_STR_EQ(parse("[1,"), "ERR: unexpected end of text at line 1, column 4");
  ASSERT_STR_EQ(parse("{\"a\":1}}"), "ERR: trailing text at line 1, column 8");
  ASSERT_STR_EQ(parse("{\"a\" 1}"), "ERR: unexpected character '1' at line 1, column 6");
  ASSERT_STR_EQ(parse("{1:2}"), "ERR: unexpected character '1' at line 1, column 2");
  ASSERT_STR_EQ(parse("[1,]"), "ERR: unexpected character ']' at line 1, column 4");
  ASSERT_STR_EQ(parse("{\"a\":1,}"), "ERR: unexpected character '}' at line 1, column 8");
  ASSERT_STR_EQ(parse("[1 2]"), "ERR: unexpected character '2' at line 1, column 4");
  ASSERT_STR_EQ(parse("tru"), "ERR: unexpected end of text at line 1, column 4");
  ASSERT_STR_EQ(parse("nul!"), "ERR: unexpected character '!' at line 1, column 4");
  ASSERT_STR_EQ(parse("[\n\n  01]"), "ERR: leading zero in a number at line 3, column 3");
  ASSERT_STR_EQ(parse("1."), "ERR: unexpected end of text at line 1, column 3");
  ASSERT_STR_EQ(parse("-x"), "ERR: unexpected character 'x' at line 1, column 2");
  ASSERT_STR_EQ(parse("1e+"), "ERR: unexpected end of text at line 1, column 4");
  ASSERT_STR_EQ(parse("\"a\x01\""),
                "ERR: unescaped control character U+0001 in a string at line 1, column 3");
  ASSERT_STR_EQ(parse("\"\\x\""), "ERR: invalid escape '\\x' at line 1, column 2");
  ASSERT_STR_EQ(parse("\"\\u12\""), "ERR: invalid \\u escape at line 1, column 2");
  ASSERT_STR_EQ(parse("\"\\\x01\""),
                "ERR: invalid escape: byte 0x01 after '\\' at line 1, column 2");
  ASSERT_STR_EQ(parse("\"abc"), "ERR: unexpected end of text at line 1, column 5");
  ASSERT_STR_EQ(parse("\"\\"), "ERR: unexpected end of text at line 1, column 3");
  ASSERT_STR_EQ(parse("[\x01]"), "ERR: unexpected control character U+0001 at line 1, column 2");
  ASSERT_STR_EQ(parse("[\xFF]"), "ERR: unexpected byte 0xFF at line 1, column 2");
  ASSERT_STR_EQ(parse("\xC3\xA9"), "ERR: unexpected character '\xC3\xA9' at line 1, column 1");
  /* Columns count characters, not bytes. */
  ASSERT_STR_EQ(parse("[\"\xC3\xA9\" x]"), "ERR: unexpected character 'x' at line 1, column 6");
  /* A NUL in the text (not in a string) is a control character. */
  ASSERT_STR_EQ(parse_n("[1]\0", 4, 0), "ERR: trailing text at line 1, column 4");
  ASSERT_STR_EQ(parse_n("[\0]", 3, 0),
                "ERR: unexpected control character U+0000 at line 1, column 2");
}

TEST(test_truncated_everywhere) {
  /* Every proper prefix of a valid text is refused, none crashes. */
  const char *s = "{\"k\":[1,-2.5e3,\"\\u00e9\\n\",true,false,null,{\"a\":{}}]}";
  size_t n = strlen(s);
  for (size_t i = 0; i < n; i++)
    ASSERT(strncmp(parse_n(s, i, 0), "ERR: ", 5) == 0);
  ASSERT(strncmp(parse_n(s, n, 0), "ERR", 3) != 0);
}

TEST(test_depth_limit) {
  size_t n = 100000;
  char *s = malloc(n);
  memset(s, '[', n);
  char err[128];
  json_msg_t m;
  json_msg_init(&m, err, sizeof err);
  json_events_t none = {0};
  ASSERT_EQ(json_parse(s, n, &none, NULL, &m), -EINVAL);
  ASSERT_STR_EQ(err, "nesting deeper than 1000 at line 1, column 1001");
  /* Exactly the limit is fine. */
  char *t = malloc(2 * JSON_MAX_DEPTH);
  memset(t, '[', JSON_MAX_DEPTH);
  memset(t + JSON_MAX_DEPTH, ']', JSON_MAX_DEPTH);
  json_msg_init(&m, err, sizeof err);
  ASSERT_EQ(json_parse(t, 2 * JSON_MAX_DEPTH, &none, NULL, &m), 0);
  memset(s, '{', 1);
  json_msg_init(&m, err, sizeof err);
  ASSERT_EQ(json_parse("{\"a\":{\"a\":", 10, &none, NULL, &m), -EINVAL);
  free(s);
  free(t);
}

static int fail_on_big(json_parser_t *p, int64_t v) {
  if (v > 10)
    return json_fail(p, "too big");
  return 0;
}

TEST(test_callback_stops) {
  ASSERT_STR_EQ(parse_n("[1,2,3]", 7, 3), "STOP: [ i:1 i:2");
  json_events_t ev = {.integer = fail_on_big};
  char err[128];
  json_msg_t m;
  json_msg_init(&m, err, sizeof err);
  ASSERT_EQ(json_parse("[1,\n 20]", 8, &ev, NULL, &m), -EINVAL);
  ASSERT_STR_EQ(err, "too big at line 2, column 2");
}

UNIT_MAIN(test_string_escapes, test_string_utf8, test_numbers, test_message_cut, test_every_event,
          test_string_unescaping, test_numbers_read, test_errors, test_truncated_everywhere,
          test_depth_limit, test_callback_stops)
