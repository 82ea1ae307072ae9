/* test_record.c - the provision --record writes: string literals that no
 * recorded byte can break out of, one rule per method and path, answers
 * grouped by query and replayed in order. The text is loaded and served
 * by a real provision state. */
#include "unit.h"

#include <errno.h>

#include <uv.h>

#include "../../src/record.h"
#include "../../src/script.h"

static uv_loop_t loop;

static const char *lit(const char *s, size_t n) {
  static char out[512];
  buf_t b = BUF_INIT;
  ASSERT_EQ(record_lua_string(&b, s, n), 0);
  snprintf(out, sizeof out, "%.*s", (int)b.len, b.data);
  buf_free(&b);
  return out;
}

TEST(literals_escape_what_could_end_them) {
  ASSERT_STR_EQ(lit("plain text", 10), "\"plain text\"");
  ASSERT_STR_EQ(lit("a\"b\\c", 5), "\"a\\\"b\\\\c\"");
  ASSERT_STR_EQ(lit("]]--\n\r\t", 7), "\"]]--\\n\\r\\t\"");
  ASSERT_STR_EQ(lit("\0"
                    "1\x7f\xff\xc3\xa9",
                    6),
                "\"\\0001\\127\\255\\195\\169\"");
  ASSERT_STR_EQ(lit("", 0), "\"\"");
}

static void on_done(void *data) { *(bool *)data = true; }

/* Serves method path?query on s: the status and the body. */
static int serve(script_t *s, int method, const char *path, const char *query, char *body,
                 size_t n) {
  http_request_t req = {.method = method,
                        .http_major = 1,
                        .http_minor = 1,
                        .target = path,
                        .target_len = strlen(path),
                        .path = path,
                        .path_len = strlen(path),
                        .raw_path = path,
                        .raw_path_len = strlen(path),
                        .query = query,
                        .query_len = strlen(query)};
  http_response_t resp = {0};
  origin_t origin = {0};
  bool done = false;
  script_call_t *call;
  if (script_dispatch(s, &req, "127.0.0.1:1", &resp, &origin, on_done, &done, &call) ==
      SCRIPT_PENDING)
    while (!done)
      uv_run(&loop, UV_RUN_ONCE);
  int status = resp.status;
  snprintf(body, n, "%.*s", (int)resp.body.len, resp.body.data ? resp.body.data : "");
  http_response_free(&resp);
  origin_free(&origin);
  return status;
}

static void add(record_t *r, int method, const char *path, const char *query, int status,
                const char *body, size_t blen) {
  http_request_t req = {.method = method,
                        .path = path,
                        .path_len = strlen(path),
                        .query = query,
                        .query_len = strlen(query)};
  http_response_t resp = {.status = status};
  http_response_header(&resp, "Content-Type", 12, "text/plain", 10);
  http_response_header(&resp, "Date", 4, "Mon, 01 Jan 2024 00:00:00 GMT", 29);
  http_response_header(&resp, "X-Odd", 5, "\"]] end os.exit(1) --[[", 23);
  buf_append(&resp.body, body, blen);
  record_exchange(r, &req, &resp);
  http_response_free(&resp);
}

TEST(the_text_replays_by_path_query_and_order) {
  uv_loop_init(&loop);
  record_t *r;
  char err[256];
  ASSERT_EQ(record_open(NULL, "/tmp", "/nonexistent-provisions", "http://up\"]]", NULL, &r, err,
                        sizeof err),
            0);
  static const char hostile[] = "\"); os.exit(1) --\n]]\0\xff";
  add(r, HTTP_GET, "/a", "p=1", 200, "first", 5);
  add(r, HTTP_GET, "/a", "p=2", 200, "other", 5);
  add(r, HTTP_GET, "/a", "p=1", 201, "second", 6);
  add(r, HTTP_POST, "/a", "", 202, hostile, sizeof hostile - 1);
  add(r, HTTP_GET, "/we\"ird]]", "", 203, "odd path", 8);
  add(r, HTTP_HEAD, "/a", "", 200, "", 0);        /* not recorded */
  add(r, HTTP_GET, "/x/<int:n>", "", 200, "", 0); /* not a rule: not recorded */
  ASSERT_EQ(record_count(r), 5);
  buf_t text = BUF_INIT;
  ASSERT_EQ(record_text(r, &text), 0);
  ASSERT(memmem(text.data, text.len, "Mon, 01 Jan", 11) == NULL); /* Date is not kept */
  script_opts_t opts = {.loop = &loop, .max_instructions = 10000000};
  script_t *s;
  int rc = script_load("recorded.lua", text.data, text.len, &opts, &s, err, sizeof err);
  if (rc)
    UNIT_FAIL("the recording does not load: %s\n%.*s", err, (int)text.len, text.data);
  ASSERT_EQ(script_rule_count(s), 3);
  char body[256];
  ASSERT_EQ(serve(s, HTTP_GET, "/a", "p=1", body, sizeof body), 200);
  ASSERT_STR_EQ(body, "first");
  ASSERT_EQ(serve(s, HTTP_GET, "/a", "p=1", body, sizeof body), 201);
  ASSERT_STR_EQ(body, "second");
  ASSERT_EQ(serve(s, HTTP_GET, "/a", "p=1", body, sizeof body), 201); /* the last again */
  ASSERT_EQ(serve(s, HTTP_GET, "/a", "p=2", body, sizeof body), 200);
  ASSERT_STR_EQ(body, "other");
  ASSERT_EQ(serve(s, HTTP_GET, "/a", "p=3", body, sizeof body), 404);
  ASSERT_STR_EQ(body, "no answer was recorded for GET /a?p=3\n");
  ASSERT_EQ(serve(s, HTTP_POST, "/a", "anything", body, sizeof body), 202); /* one query: any */
  ASSERT_STR_EQ(body, "\"); os.exit(1) --\n]]"); /* up to the NUL snprintf stops at */
  ASSERT_EQ(serve(s, HTTP_GET, "/we\"ird]]", "", body, sizeof body), 203);
  script_release(s);
  uv_run(&loop, UV_RUN_DEFAULT);
  buf_free(&text);
  record_free(r);
  uv_loop_close(&loop);
}

TEST(the_provisions_directory_is_refused) {
  record_t *r = NULL;
  char err[256];
  ASSERT_EQ(record_open(NULL, "/tmp/", "/tmp", "http://up", NULL, &r, err, sizeof err), -EINVAL);
  ASSERT(r == NULL);
  ASSERT_CONTAINS(err, "h1mock: --record: '/tmp/' is the provisions directory");
}

UNIT_MAIN(literals_escape_what_could_end_them, the_text_replays_by_path_query_and_order,
          the_provisions_directory_is_refused)
