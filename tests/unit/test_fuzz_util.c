/* test_fuzz_util.c - unit tests for what the fuzz targets share
 * (tests/fuzz/fuzz_util.c): the JSON check is their oracle, so it must
 * refuse what is not JSON, and the feeding must see the same requests
 * whatever the read size. */
#include "unit.h"

#include "../fuzz/fuzz_util.h"

static bool valid(const char *s) { return fuzz_json_valid(s, strlen(s), NULL); }

TEST(json_accepts_json) {
  static const char *const ok[] = {
      "{}",
      "[]",
      " [1, -0, 0.5, -1.25e+10, 2E-3, true, false, null] \n",
      "{\"a\":{\"b\":[{}]},\"c\":\"\\u00e9\\n\\\"\\\\\\/\"}",
      "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"",
      "0",
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
    if (!valid(ok[i]))
      UNIT_FAIL("refused %s", ok[i]);
}

TEST(json_refuses_what_is_not) {
  static const char *const bad[] = {
      "",
      "{",
      "[1,]",
      "{\"a\" 1}",
      "{a:1}",
      "[01]",
      "[1.]",
      "[.5]",
      "[1e]",
      "[+1]",
      "[tru]",
      "[\"\\x\"]",
      "[\"\\u12g4\"]",
      "[\"tab\there\"]",
      "\"unterminated",
      "[] []",
      "[\"\xff\"]",
      "[\"\xc3\"]",
      "[\"\xed\xa0\x80\"]", /* a surrogate in UTF-8 */
      "[NaN]",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (valid(bad[i]))
      UNIT_FAIL("accepted %s", bad[i]);
}

TEST(json_says_where) {
  size_t where = 0;
  ASSERT(!fuzz_json_valid("[1,2,x]", 7, &where));
  ASSERT_EQ(where, 5);
  ASSERT(!fuzz_json_valid("[\"ab\xff\"]", 6, &where));
  ASSERT_EQ(where, 4);
}

TEST(json_depth_is_bounded) {
  size_t n = 5000;
  char *s = malloc(2 * n);
  memset(s, '[', n);
  memset(s + n, ']', n);
  ASSERT(!fuzz_json_valid(s, 2 * n, NULL));
  ASSERT(fuzz_json_valid(s + n - 1000, 2000, NULL));
  free(s);
}

struct seen {
  int n;
  char paths[4][32];
};

static int note(void *arg, const http_request_t *req) {
  struct seen *s = arg;
  if (s->n < 4)
    snprintf(s->paths[s->n], sizeof s->paths[0], "%.*s %.*s",
             (int)strlen(http_method_name(req->method)), http_method_name(req->method),
             (int)req->body_len, req->body);
  s->n++;
  return 0;
}

TEST(feed_sees_the_same_requests_at_every_read_size) {
  static const char in[] = "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi"
                           "GET /b HTTP/1.1\r\nHost: h\r\n\r\n"
                           "PUT /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "1\r\nx\r\n0\r\n\r\n";
  for (size_t step = 1; step <= sizeof in; step++) {
    struct seen s = {0};
    ASSERT_EQ(fuzz_feed((const uint8_t *)in, sizeof in - 1, step, 4096, note, &s), 3);
    ASSERT_EQ(s.n, 3);
    ASSERT_STR_EQ(s.paths[0], "POST hi");
    ASSERT_STR_EQ(s.paths[1], "GET ");
    ASSERT_STR_EQ(s.paths[2], "PUT x");
  }
}

static int stop_at_first(void *arg, const http_request_t *req) {
  (void)req;
  (*(int *)arg)++;
  return 1;
}

TEST(feed_stops_when_asked_and_at_an_error) {
  static const char two[] = "GET / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
  int n = 0;
  ASSERT_EQ(fuzz_feed((const uint8_t *)two, sizeof two - 1, 7, 0, stop_at_first, &n), 1);
  ASSERT_EQ(n, 1);
  static const char bad[] = "GET / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/9.9\r\n\r\n"
                            "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
  struct seen s = {0};
  ASSERT_EQ(fuzz_feed((const uint8_t *)bad, sizeof bad - 1, 64, 0, note, &s), 1);
}

UNIT_MAIN(json_accepts_json, json_refuses_what_is_not, json_says_where, json_depth_is_bounded,
          feed_sees_the_same_requests_at_every_read_size, feed_stops_when_asked_and_at_an_error)
