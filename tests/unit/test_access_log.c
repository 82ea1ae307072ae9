/* test_access_log.c - the access log's text and JSON lines. */
#include "../../src/access_log.h"
#include "../../src/text.h"
#include "unit.h"

static const char *line(enum access_log_format f, const char *path, const char *target,
                        const char *endpoint) {
  static char out[512];
  buf_t b = BUF_INIT;
  access_log_format(&b, f, 1795440654123456LL, "127.0.0.1:40112", "GET", path, strlen(path),
                    target, strlen(target), 200, 48, 57, endpoint,
                    endpoint ? strlen(endpoint) : 0);
  snprintf(out, sizeof out, "%.*s", (int)b.len, b.data);
  buf_free(&b);
  return out;
}

TEST(access_log_lines) {
  ASSERT_STR_EQ(line(ACCESS_LOG_TEXT, "/app/v1/foo/bar", "/app/v1/foo/bar", "answer_get"),
                "2026-11-23T13:30:54.123456Z 127.0.0.1:40112 GET /app/v1/foo/bar 200 48 57us "
                "answer_get\n");
  ASSERT_STR_EQ(line(ACCESS_LOG_TEXT, "/nope", "/nope", NULL),
                "2026-11-23T13:30:54.123456Z 127.0.0.1:40112 GET /nope 200 48 57us -\n");
  /* The target as received: query kept, percent-escapes not decoded. */
  ASSERT_STR_EQ(line(ACCESS_LOG_TEXT, "/a b/caf\xc3\xa9", "/a%20b/caf%C3%A9?q=1&r=%22", "v"),
                "2026-11-23T13:30:54.123456Z 127.0.0.1:40112 GET /a%20b/caf%C3%A9?q=1&r=%22 200 "
                "48 57us v\n");
  /* One token per field, whatever bytes a target holds that no valid one has. */
  ASSERT_STR_EQ(line(ACCESS_LOG_TEXT, "/", "/a b\n\"\\\xff/caf\xc3\xa9", "my view"),
                "2026-11-23T13:30:54.123456Z 127.0.0.1:40112 GET "
                "/a\\x20b\\x0a\\x22\\x5c\\xff/caf\xc3\xa9 200 48 57us my\\x20view\n");
  ASSERT_STR_EQ(line(ACCESS_LOG_JSON, "/app/v1/foo/bar", "/app/v1/foo/bar?x=%41", "answer_get"),
                "{\"time\":\"2026-11-23T13:30:54.123456Z\",\"remote\":\"127.0.0.1:40112\","
                "\"method\":\"GET\",\"path\":\"/app/v1/foo/bar\",\"target\":\"/app/v1/foo/"
                "bar?x=%41\",\"status\":200,\"bytes\":48,\"duration_us\":57,\"endpoint\":\""
                "answer_get\"}\n");
  ASSERT_CONTAINS(line(ACCESS_LOG_JSON, "/x\"\xff", "/x%22%FF", NULL),
                  "\"path\":\"/x\\\"\xef\xbf\xbd\",\"target\":\"/x%22%FF\",\"status\":200,"
                  "\"bytes\":48,\"duration_us\":57,\"endpoint\":null}\n");
}

static const char *escaped(const char *s, size_t n, size_t max, enum text_escape how) {
  static char out[256];
  buf_t b = BUF_INIT;
  ASSERT_EQ(text_escape(&b, s, n, max, how), 0);
  snprintf(out, sizeof out, "%.*s", (int)b.len, b.data);
  buf_free(&b);
  return out;
}

#define ESC(s, max, how) escaped(s, sizeof s - 1, max, how)

TEST(text_escape_modes) {
  const char s[] = "a b\"\\\n\t\r\x1b[2J\x7f\x00\xff caf\xc3\xa9";
  ASSERT_STR_EQ(ESC(s, SIZE_MAX, TEXT_ESCAPE_FIELD),
                "a\\x20b\\x22\\x5c\\x0a\\x09\\x0d\\x1b[2J\\x7f\\x00\\xff\\x20caf\xc3\xa9");
  ASSERT_STR_EQ(ESC(s, SIZE_MAX, TEXT_ESCAPE_VALUE),
                "a b\"\\x5c\\x0a\\x09\\x0d\\x1b[2J\\x7f\\x00\\xff caf\xc3\xa9");
  ASSERT_STR_EQ(ESC(s, SIZE_MAX, TEXT_ESCAPE_MESSAGE),
                "a b\"\\\n\t\\x0d\\x1b[2J\\x7f\\x00\\xff caf\xc3\xa9");
  /* Bounded: "..." marks the cut, which never splits a UTF-8 sequence. */
  ASSERT_STR_EQ(ESC("abcdef", 4, TEXT_ESCAPE_VALUE), "abcd...");
  ASSERT_STR_EQ(ESC("ab\xc3\xa9z", 3, TEXT_ESCAPE_VALUE), "ab...");
  ASSERT_STR_EQ(ESC("ab\xc3\xa9z", 4, TEXT_ESCAPE_VALUE), "ab\xc3\xa9...");
  ASSERT_STR_EQ(ESC("abc", 3, TEXT_ESCAPE_VALUE), "abc");
  ASSERT_STR_EQ(ESC("", 0, TEXT_ESCAPE_VALUE), "");
  /* The C-string form for log lines. */
  buf_t b = BUF_INIT;
  ASSERT_STR_EQ(text_escape_str(&b, "x\ny", 3, 10, TEXT_ESCAPE_VALUE), "x\\x0ay");
  ASSERT_STR_EQ(text_escape_str(&b, "z", 1, 10, TEXT_ESCAPE_VALUE), "z");
  buf_free(&b);
}

UNIT_MAIN(access_log_lines, text_escape_modes)
