/* test_journal.c - the request journal (ring, dropped counts, filters,
 * since/limit, JSON) and the text helpers it reads through (UTF-8 checks,
 * base64, JSON strings, times). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>

#include "../../src/journal.h"
#include "../../src/text.h"
#include "unit.h"

static const http_header_t plain_headers[] = {
    {"Host", 4, "mock", 4},
    {"X-Tag", 5, "one", 3},
    {"Accept", 6, "*/*", 3},
    {"x-tag", 5, "two", 3},
};

/* Records one request; endpoint NULL: no rule matched. */
static void record_full(journal_t *j, int method, const char *path, const char *query,
                        const char *body, size_t blen, int status, const char *endpoint) {
  http_request_t req = {0};
  req.method = method;
  req.path = path;
  req.path_len = strlen(path);
  req.query = query;
  req.query_len = strlen(query);
  req.headers = plain_headers;
  req.nheaders = sizeof plain_headers / sizeof plain_headers[0];
  req.body = body;
  req.body_len = blen;
  http_response_t resp = {0};
  resp.status = status;
  origin_t origin = {0};
  origin.matched = endpoint != NULL;
  if (endpoint)
    buf_puts(&origin.endpoint, endpoint);
  buf_puts(&origin.provision, "foo-bar");
  journal_record(j, "127.0.0.1:5555", &req, &resp, &origin, 1795440654123456LL, 57);
  http_response_free(&resp);
  origin_free(&origin);
}

static void record(journal_t *j, int method, const char *path, int status, const char *endpoint) {
  record_full(j, method, path, "", "", 0, status, endpoint);
}

/* The sequence numbers a filter selects, as "1,2,3". */
static int collect_seq(void *arg, const journal_view_t *v) {
  buf_t *b = arg;
  buf_printf(b, "%s%llu", b->len ? "," : "", (unsigned long long)v->seq);
  return 0;
}

static char seqs_out[512];

static const char *seqs(const journal_t *j, const journal_filter_t *f) {
  buf_t b = BUF_INIT;
  size_t n = journal_select(j, f, collect_seq, &b);
  snprintf(seqs_out, sizeof seqs_out, "%.*s", (int)b.len, b.data ? b.data : "");
  buf_free(&b);
  ASSERT_EQ(n, journal_select(j, f, NULL, NULL));
  return seqs_out;
}

static const char *seqs_q(const journal_t *j, const char *query) {
  journal_filter_t f;
  buf_t scratch = BUF_INIT;
  char err[256];
  if (journal_filter_parse(&f, query, strlen(query), &scratch, err, sizeof err))
    UNIT_FAIL("'%s' refused: %s", query, err);
  seqs(j, &f);
  buf_free(&scratch);
  return seqs_out;
}

static char err_out[256];

static const char *refused(const char *query) {
  journal_filter_t f;
  buf_t scratch = BUF_INIT;
  int rc = journal_filter_parse(&f, query, strlen(query), &scratch, err_out, sizeof err_out);
  buf_free(&scratch);
  if (rc != -EINVAL)
    UNIT_FAIL("'%s' was accepted", query);
  return err_out;
}

static void range_is(const journal_t *j, uint64_t first, uint64_t last) {
  uint64_t f, l;
  journal_range(j, &f, &l);
  ASSERT_EQ(f, first);
  ASSERT_EQ(l, last);
}

TEST(records_and_reads_back_one_entry) {
  journal_t *j = journal_new(10, 1024, 0);
  record_full(j, HTTP_POST, "/app/v1/foo/bar", "a=1", "{\"x\":1}", 7, 201, "answer_post");
  journal_filter_t f;
  journal_filter_init(&f);
  buf_t out = BUF_INIT;
  ASSERT_EQ(journal_json(j, &f, &out), 0);
  buf_putc(&out, '\0');
  ASSERT_STR_EQ(out.data,
                "{\"enabled\":true,\"dropped\":0,\"first_seq\":1,\"last_seq\":1,"
                "\"requests\":[{\"seq\":1,\"time\":\"2026-11-23T13:30:54.123456Z\","
                "\"remote\":\"127.0.0.1:5555\",\"method\":\"POST\",\"path\":\"/app/v1/foo/bar\","
                "\"query\":\"a=1\",\"headers\":{\"host\":\"mock\",\"x-tag\":\"one, two\","
                "\"accept\":\"*/*\"},\"body\":\"{\\\"x\\\":1}\",\"body_encoding\":\"utf-8\","
                "\"body_truncated\":false,\"body_bytes\":7,\"status\":201,"
                "\"endpoint\":\"answer_post\",\"provision\":\"foo-bar\",\"proxied\":false,"
                "\"fault\":null,\"calls\":[],"
                "\"duration_us\":57}],"
                "\"count\":1,\"skipped\":0}\n");
  buf_free(&out);
  journal_free(j);
}

TEST(unmatched_entry_has_null_endpoint) {
  journal_t *j = journal_new(10, 1024, 0);
  record(j, HTTP_GET, "/nowhere", 404, NULL);
  journal_filter_t f;
  journal_filter_init(&f);
  buf_t out = BUF_INIT;
  journal_json(j, &f, &out);
  buf_putc(&out, '\0');
  ASSERT_CONTAINS(out.data, "\"status\":404,\"endpoint\":null,\"provision\":\"foo-bar\"");
  buf_free(&out);
  journal_free(j);
}

TEST(ring_wraps_with_exact_dropped_counts) {
  journal_t *j = journal_new(3, 64, 0);
  range_is(j, 0, 0);
  for (int i = 0; i < 3; i++)
    record(j, HTTP_GET, "/a", 200, "a");
  ASSERT_EQ(journal_dropped(j), 0);
  range_is(j, 1, 3);
  record(j, HTTP_GET, "/a", 200, "a");
  record(j, HTTP_GET, "/a", 200, "a");
  ASSERT_EQ(journal_dropped(j), 2);
  ASSERT_EQ(journal_dropped_total(j), 2);
  range_is(j, 3, 5);
  journal_filter_t f;
  journal_filter_init(&f);
  ASSERT_STR_EQ(seqs(j, &f), "3,4,5");
  for (int i = 0; i < 7; i++)
    record(j, HTTP_GET, "/a", 200, "a");
  ASSERT_EQ(journal_dropped(j), 9);
  range_is(j, 10, 12);
  ASSERT_STR_EQ(seqs(j, &f), "10,11,12");

  /* A clear forgets the entries and resets `dropped`, not the total nor
   * the numbering. */
  ASSERT_EQ(journal_clear(j), 3);
  ASSERT_EQ(journal_dropped(j), 0);
  ASSERT_EQ(journal_dropped_total(j), 9);
  range_is(j, 0, 0);
  ASSERT_STR_EQ(seqs(j, &f), "");
  record(j, HTTP_GET, "/a", 200, "a");
  range_is(j, 13, 13);
  ASSERT_EQ(journal_clear(j), 1);
  ASSERT_EQ(journal_clear(j), 0);
  journal_free(j);
}

TEST(reused_slots_keep_each_entry_whole) {
  /* Big bodies, then small ones over the same slots, then big again: every
   * read shows exactly what was recorded. */
  journal_t *j = journal_new(2, 100000, 0);
  char big[20000];
  memset(big, 'b', sizeof big);
  record_full(j, HTTP_POST, "/big", "", big, sizeof big, 200, "big");
  record_full(j, HTTP_POST, "/big", "", big, sizeof big, 200, "big");
  record_full(j, HTTP_POST, "/s", "q", "tiny", 4, 200, "small");
  record_full(j, HTTP_POST, "/s2", "", "tin", 3, 200, "small");
  record_full(j, HTTP_POST, "/big", "", big, sizeof big, 201, "big");
  journal_filter_t f;
  journal_filter_init(&f);
  buf_t out = BUF_INIT;
  journal_json(j, &f, &out);
  buf_putc(&out, '\0');
  ASSERT_CONTAINS(out.data, "\"seq\":4,");
  ASSERT_CONTAINS(out.data, "\"path\":\"/s2\",\"query\":\"\"");
  ASSERT_CONTAINS(out.data, "\"body\":\"tin\"");
  ASSERT_CONTAINS(out.data, "\"body_bytes\":20000,\"status\":201,\"endpoint\":\"big\"");
  ASSERT(strstr(out.data, "tiny") == NULL);
  buf_free(&out);
  journal_free(j);
}

TEST(the_byte_limit_drops_the_oldest_and_counts_them) {
  /* Ten slots but room for two 20 KB bodies: big entries push the oldest
   * out before the ring is full; small ones fit many at a time. */
  journal_t *j = journal_new(10, 100000, 50000);
  char big[20000];
  memset(big, 'b', sizeof big);
  for (int i = 0; i < 5; i++)
    record_full(j, HTTP_POST, "/big", "", big, sizeof big, 200, "big");
  range_is(j, 4, 5);
  ASSERT_EQ(journal_dropped(j), 3);
  for (int i = 0; i < 8; i++)
    record(j, HTTP_GET, "/small", 200, "small");
  range_is(j, 4, 13); /* two big and eight small: the ring is full, the bytes are not */
  ASSERT_EQ(journal_dropped(j), 3);
  for (int i = 0; i < 3; i++)
    record_full(j, HTTP_POST, "/big", "", big, sizeof big, 200, "big");
  range_is(j, 15, 16); /* the third big one needed the room of the smalls and of seq 14 */
  ASSERT_EQ(journal_dropped(j), 14);
  journal_filter_t f;
  journal_filter_init(&f);
  ASSERT_EQ(journal_select(j, &f, NULL, NULL), 2);
  journal_free(j);
}

TEST(one_entry_over_the_byte_limit_is_kept_alone) {
  journal_t *j = journal_new(10, 100000, 1000);
  record(j, HTTP_GET, "/a", 200, "a");
  record(j, HTTP_GET, "/b", 200, "b");
  char big[5000];
  memset(big, 'x', sizeof big);
  record_full(j, HTTP_POST, "/big", "", big, sizeof big, 200, "big");
  range_is(j, 3, 3);
  ASSERT_EQ(journal_dropped(j), 2);
  record(j, HTTP_GET, "/c", 200, "c"); /* the big one goes to make room */
  range_is(j, 4, 4);
  ASSERT_EQ(journal_clear(j), 1);
  record(j, HTTP_GET, "/d", 200, "d");
  range_is(j, 5, 5);
  ASSERT_EQ(journal_dropped(j), 0);
  journal_free(j);
}

static journal_t *mixed(void) {
  journal_t *j = journal_new(100, 64, 0);
  record(j, HTTP_GET, "/app/v1/foo/bar", 200, "answer_get");   /* 1 */
  record(j, HTTP_POST, "/app/v1/foo/bar", 201, "answer_post"); /* 2 */
  record(j, HTTP_GET, "/app/v1/foo/bar/x", 404, NULL);         /* 3 */
  record(j, HTTP_DELETE, "/app/v1/items/7", 204, "item");      /* 4 */
  record(j, HTTP_GET, "/other", 404, NULL);                    /* 5 */
  record(j, HTTP_PUT, "/app/v1/foo/bar", 405, NULL);           /* 6 */
  record(j, HTTP_GET, "/app/v1/foo/bar", 200, "answer_get");   /* 7 */
  return j;
}

TEST(every_filter_selects_what_it_says) {
  journal_t *j = mixed();
  ASSERT_STR_EQ(seqs_q(j, ""), "1,2,3,4,5,6,7");
  ASSERT_STR_EQ(seqs_q(j, "method=GET"), "1,3,5,7");
  ASSERT_STR_EQ(seqs_q(j, "method=get"), "1,3,5,7");
  ASSERT_STR_EQ(seqs_q(j, "method=Delete"), "4");
  ASSERT_STR_EQ(seqs_q(j, "method=PROPFIND"), "");
  ASSERT_STR_EQ(seqs_q(j, "method=FROBNICATE"), "");
  ASSERT_STR_EQ(seqs_q(j, "path=/app/v1/foo/bar"), "1,2,6,7");
  ASSERT_STR_EQ(seqs_q(j, "path=/app/v1/foo"), "");
  ASSERT_STR_EQ(seqs_q(j, "path_prefix=/app/v1/foo"), "1,2,3,6,7");
  ASSERT_STR_EQ(seqs_q(j, "path_prefix=%2Fapp%2Fv1%2Fitems"), "4");
  ASSERT_STR_EQ(seqs_q(j, "endpoint=answer_get"), "1,7");
  ASSERT_STR_EQ(seqs_q(j, "endpoint=answer"), "");
  ASSERT_STR_EQ(seqs_q(j, "status=404"), "3,5");
  ASSERT_STR_EQ(seqs_q(j, "status=200&method=GET&path=/app/v1/foo/bar"), "1,7");
  ASSERT_STR_EQ(seqs_q(j, "&&status=201&"), "2");
  journal_filter_t f;
  journal_filter_init(&f);
  f.unmatched = true;
  ASSERT_STR_EQ(seqs(j, &f), "3,5,6");
  f.method = HTTP_GET;
  ASSERT_STR_EQ(seqs(j, &f), "3,5");
  journal_free(j);
}

TEST(since_and_limit_page_forward_or_keep_the_newest) {
  journal_t *j = mixed();
  ASSERT_STR_EQ(seqs_q(j, "since=0"), "1,2,3,4,5,6,7");
  ASSERT_STR_EQ(seqs_q(j, "since=4"), "5,6,7");
  ASSERT_STR_EQ(seqs_q(j, "since=7"), "");
  ASSERT_STR_EQ(seqs_q(j, "since=1000"), "");
  /* With since, limit keeps the first N after it (a poller pages on). */
  ASSERT_STR_EQ(seqs_q(j, "since=1&limit=2"), "2,3");
  ASSERT_STR_EQ(seqs_q(j, "since=3&limit=2"), "4,5");
  ASSERT_STR_EQ(seqs_q(j, "since=1&limit=2&method=GET"), "3,5");
  /* Without, the newest N, still oldest first. */
  ASSERT_STR_EQ(seqs_q(j, "limit=2"), "6,7");
  ASSERT_STR_EQ(seqs_q(j, "limit=3&method=GET"), "3,5,7");
  ASSERT_STR_EQ(seqs_q(j, "limit=100"), "1,2,3,4,5,6,7");
  ASSERT_STR_EQ(seqs_q(j, "limit=0"), "");
  ASSERT_STR_EQ(seqs_q(j, "limit=1&status=404"), "5");
  journal_free(j);

  /* After a wrap, a since before the oldest entry starts at the oldest. */
  j = journal_new(3, 16, 0);
  for (int i = 0; i < 8; i++)
    record(j, HTTP_GET, "/a", 200, "a");
  ASSERT_STR_EQ(seqs_q(j, "since=2"), "6,7,8");
  ASSERT_STR_EQ(seqs_q(j, "since=6"), "7,8");
  ASSERT_STR_EQ(seqs_q(j, "since=2&limit=1"), "6");
  journal_free(j);
}

TEST(bad_filter_values_are_refused_with_the_reason) {
  ASSERT_CONTAINS(refused("status=abc"), "status: 'abc' is not an HTTP status (100-999)");
  ASSERT_CONTAINS(refused("status=99"), "not an HTTP status");
  ASSERT_CONTAINS(refused("status=1000"), "not an HTTP status");
  ASSERT_CONTAINS(refused("status=2OO"), "not an HTTP status");
  ASSERT_CONTAINS(refused("limit=-1"), "limit: '-1' is not an integer >= 0");
  ASSERT_CONTAINS(refused("limit=1.5"), "limit: '1.5'");
  ASSERT_CONTAINS(refused("limit=99999999999999999999"), "limit:");
  ASSERT_CONTAINS(refused("since=x"), "since: 'x' is not an integer >= 0");
  ASSERT_CONTAINS(refused("since=+3"), "since:");
  ASSERT_CONTAINS(refused("method=G%20T"), "method: 'G T' is not an HTTP method name");
  ASSERT_CONTAINS(refused("paths=/a"), "unknown filter 'paths'");
  ASSERT_CONTAINS(refused("status=200&status=201"), "filter 'status' is given twice");
  ASSERT_CONTAINS(refused("path="), "filter 'path' is empty");
  ASSERT_CONTAINS(refused("endpoint"), "filter 'endpoint' is empty");
  ASSERT_CONTAINS(refused("a=1&limit=2"), "unknown filter 'a'");
}

TEST(filter_values_are_percent_decoded) {
  journal_t *j = journal_new(10, 16, 0);
  record(j, HTTP_GET, "/a b/c+d", 200, "sp ace");
  record(j, HTTP_GET, "/a b/e", 200, "x");
  ASSERT_STR_EQ(seqs_q(j, "path=%2Fa%20b%2Fc%2Bd"), "1");
  ASSERT_STR_EQ(seqs_q(j, "path_prefix=/a+b/"), "1,2");
  ASSERT_STR_EQ(seqs_q(j, "endpoint=sp%20ace"), "1");
  journal_free(j);
}

struct grab {
  journal_view_t v;
  int n;
};

static int grab_fn(void *arg, const journal_view_t *view) {
  struct grab *g = arg;
  g->v = *view;
  g->n++;
  return 0;
}

/* Records one body with `keep` bytes kept and reads it back as text. */
static const char *body_of(const char *body, size_t len, size_t keep, bool *base64,
                           bool *truncated) {
  static char out[256];
  journal_t *j = journal_new(4, keep, 0);
  record_full(j, HTTP_POST, "/b", "", body, len, 200, "b");
  journal_filter_t f;
  journal_filter_init(&f);
  struct grab g = {.n = 0};
  journal_select(j, &f, grab_fn, &g);
  ASSERT_EQ(g.n, 1);
  buf_t b = BUF_INIT;
  ASSERT_EQ(journal_view_body(&g.v, &b, base64), 0);
  *truncated = g.v.body_truncated;
  ASSERT_EQ(g.v.body_bytes, len);
  snprintf(out, sizeof out, "%.*s", (int)b.len, b.data ? b.data : "");
  buf_free(&b);
  journal_free(j);
  return out;
}

TEST(bodies_are_utf8_or_base64_and_marked_truncated) {
  bool b64, trunc;
  ASSERT_STR_EQ(body_of("hello", 5, 100, &b64, &trunc), "hello");
  ASSERT(!b64 && !trunc);
  ASSERT_STR_EQ(body_of("", 0, 100, &b64, &trunc), "");
  ASSERT(!b64 && !trunc);
  ASSERT_STR_EQ(body_of("h\xc3\xa9llo", 6, 100, &b64, &trunc), "h\xc3\xa9llo");
  ASSERT(!b64);
  ASSERT_STR_EQ(body_of("\xff\xfe\x00\x01", 4, 100, &b64, &trunc), "//4AAQ==");
  ASSERT(b64 && !trunc);
  /* Kept bytes only, and the whole length reported. */
  ASSERT_STR_EQ(body_of("0123456789", 10, 4, &b64, &trunc), "0123");
  ASSERT(!b64 && trunc);
  ASSERT_STR_EQ(body_of("0123456789", 10, 0, &b64, &trunc), "");
  ASSERT(!b64 && trunc);
  /* The limit cut a character in two: the partial one is dropped, the body
   * stays text. */
  ASSERT_STR_EQ(body_of("ab\xe2\x82\xac", 5, 4, &b64, &trunc), "ab");
  ASSERT(!b64 && trunc);
  /* A client's own broken sequence at the end is binary, cut or not. */
  ASSERT_STR_EQ(body_of("ab\xe2\x82", 4, 100, &b64, &trunc), "YWLigg==");
  ASSERT(b64 && !trunc);
  ASSERT_STR_EQ(body_of("a\xc0\x80zzz", 6, 3, &b64, &trunc), "YcCA");
  ASSERT(b64 && trunc);
}

TEST(utf8_check_refuses_overlongs_surrogates_and_out_of_range) {
  bool inc;
#define VALID(s) ASSERT_EQ(text_utf8_valid(s, sizeof s - 1, NULL), sizeof s - 1)
#define STOPS_AT(s, at, incomplete)                                                               \
  do {                                                                                            \
    ASSERT_EQ(text_utf8_valid(s, sizeof s - 1, &inc), at);                                        \
    ASSERT_EQ(inc, incomplete);                                                                   \
  } while (0)
  VALID("");
  VALID("plain ascii, long enough for the word-at-a-time path");
  VALID("\x00nul is valid");
  VALID("\xc2\x80");                      /* U+0080 */
  VALID("\xdf\xbf");                      /* U+07FF */
  VALID("\xe0\xa0\x80");                  /* U+0800 */
  VALID("\xed\x9f\xbf");                  /* U+D7FF */
  VALID("\xee\x80\x80");                  /* U+E000 */
  VALID("\xef\xbf\xbf");                  /* U+FFFF */
  VALID("\xf0\x90\x80\x80");              /* U+10000 */
  VALID("\xf4\x8f\xbf\xbf");              /* U+10FFFF */
  VALID("0123456789\xf0\x9f\x98\x80xyz"); /* an emoji after an ASCII run */
  STOPS_AT("\xc0\x80", 0, false);         /* overlong NUL */
  STOPS_AT("\xc1\xbf", 0, false);         /* overlong */
  STOPS_AT("ab\xe0\x80\x80", 2, false);   /* overlong 3-byte */
  STOPS_AT("\xe0\x9f\xbf", 0, false);     /* overlong 3-byte, top */
  STOPS_AT("\xf0\x80\x80\x80", 0, false); /* overlong 4-byte */
  STOPS_AT("\xf0\x8f\xbf\xbf", 0, false); /* overlong 4-byte, top */
  STOPS_AT("x\xed\xa0\x80", 1, false);    /* U+D800, a surrogate */
  STOPS_AT("\xed\xbf\xbf", 0, false);     /* U+DFFF */
  STOPS_AT("\xf4\x90\x80\x80", 0, false); /* U+110000 */
  STOPS_AT("\xf5\x80\x80\x80", 0, false);
  STOPS_AT("\xff", 0, false);
  STOPS_AT("\x80", 0, false);     /* lone continuation */
  STOPS_AT("\xc3\x28", 0, false); /* continuation missing */
  STOPS_AT("\xe2\x82\x28", 0, false);
  STOPS_AT("ok\xe2\x82", 2, true); /* cut short by the end */
  STOPS_AT("ok\xf0\x9f\x98", 2, true);
  STOPS_AT("ok\xf0", 2, true);
  STOPS_AT("ok\xed\xa0", 2, false); /* a surrogate is not a cut */
#undef VALID
#undef STOPS_AT
}

static const char *b64(const char *s) {
  static char out[64];
  buf_t b = BUF_INIT;
  text_base64(&b, s, strlen(s));
  snprintf(out, sizeof out, "%.*s", (int)b.len, b.data ? b.data : "");
  buf_free(&b);
  return out;
}

TEST(base64_matches_rfc4648_vectors) {
  ASSERT_STR_EQ(b64(""), "");
  ASSERT_STR_EQ(b64("f"), "Zg==");
  ASSERT_STR_EQ(b64("fo"), "Zm8=");
  ASSERT_STR_EQ(b64("foo"), "Zm9v");
  ASSERT_STR_EQ(b64("foob"), "Zm9vYg==");
  ASSERT_STR_EQ(b64("fooba"), "Zm9vYmE=");
  ASSERT_STR_EQ(b64("foobar"), "Zm9vYmFy");
  ASSERT_STR_EQ(b64("\xff\xff\xff"), "////");
  ASSERT_STR_EQ(b64("\xfb\xef"), "++8=");
}

/* U+FFFD as UTF-8. */
#define R "\xef\xbf\xbd"

static const char *json(const char *s, size_t n) {
  static char out[128];
  buf_t b = BUF_INIT;
  text_json_string(&b, s, n);
  snprintf(out, sizeof out, "%.*s", (int)b.len, b.data);
  buf_free(&b);
  return out;
}

TEST(json_strings_escape_and_replace_invalid_bytes) {
  ASSERT_STR_EQ(json("", 0), "\"\"");
  ASSERT_STR_EQ(json("a\"b\\c", 5), "\"a\\\"b\\\\c\"");
  ASSERT_STR_EQ(json("\n\r\t\b\f", 5), "\"\\n\\r\\t\\b\\f\"");
  ASSERT_STR_EQ(json("\x01\x1f\x7f", 3), "\"\\u0001\\u001f\x7f\"");
  ASSERT_STR_EQ(json("\0x", 2), "\"\\u0000x\"");
  ASSERT_STR_EQ(json("\xc3\xa9", 2), "\"\xc3\xa9\"");
  /* One U+FFFD (raw UTF-8) per ill-formed subsequence, as Lua's
   * json.encode always wrote it: a surrogate's three bytes are three, a
   * sequence cut short is one, an overlong form is one per byte. */
  ASSERT_STR_EQ(json("a\xffz", 3), "\"a" R "z\"");
  ASSERT_STR_EQ(json("\xed\xa0\x80", 3), "\"" R R R "\"");
  ASSERT_STR_EQ(json("\xe2\x82", 2), "\"" R "\"");
  ASSERT_STR_EQ(json("\xf0\x9f\x98!", 4), "\"" R "!\"");
  ASSERT_STR_EQ(json("\xc0\x80", 2), "\"" R R "\"");
  ASSERT_STR_EQ(json("\xf0\x9f\x98\x80", 4), "\"\xf0\x9f\x98\x80\"");
}

TEST(utf8_seq_measures_one_sequence_or_its_bad_prefix) {
  size_t bad = 0;
  ASSERT_EQ(text_utf8_seq("a", 1, &bad), 1);
  ASSERT_EQ(text_utf8_seq("\xc3\xa9", 2, &bad), 2);
  ASSERT_EQ(text_utf8_seq("\xe2\x82\xac", 3, &bad), 3);
  ASSERT_EQ(text_utf8_seq("\xf4\x8f\xbf\xbf", 4, &bad), 4);
  ASSERT_EQ(text_utf8_seq("\xe2\x82", 2, &bad), 0);
  ASSERT_EQ(bad, 2);
  ASSERT_EQ(text_utf8_seq("\xe2\x82x", 3, &bad), 0);
  ASSERT_EQ(bad, 2);
  ASSERT_EQ(text_utf8_seq("\xf4\x90\x80\x80", 4, &bad), 0); /* past U+10FFFF */
  ASSERT_EQ(bad, 1);
  ASSERT_EQ(text_utf8_seq("\x80", 1, &bad), 0);
  ASSERT_EQ(bad, 1);
}

TEST(utf8_lossy_replaces_like_json_strings) {
  buf_t b = BUF_INIT;
  ASSERT_EQ(text_utf8_lossy(&b, "a\xe2\x82z\xff\xc3\xa9", 7), 0);
  ASSERT_EQ(b.len, 10);
  ASSERT(memcmp(b.data, "a" R "z" R "\xc3\xa9", 10) == 0);
  buf_free(&b);
}

TEST(header_names_lower_case_in_ascii_only) {
  char out[16];
  text_lower(out, "X-Req-ID\xc3\x89", 10);
  ASSERT(memcmp(out, "x-req-id\xc3\x89", 10) == 0);
  char same[] = "Content-TYPE@[`{";
  text_lower(same, same, sizeof same - 1); /* in place; '@' '[' '`' '{' stay */
  ASSERT_STR_EQ(same, "content-type@[`{");
}

TEST(addresses_print_ip_and_peer_with_the_port) {
  char ip[64], peer[80];
  struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons(8080)};
  inet_pton(AF_INET, "127.0.0.1", &a4.sin_addr);
  text_address((struct sockaddr *)&a4, ip, sizeof ip, peer, sizeof peer);
  ASSERT_STR_EQ(ip, "127.0.0.1");
  ASSERT_STR_EQ(peer, "127.0.0.1:8080");
  struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons(443)};
  inet_pton(AF_INET6, "::ffff:10.0.0.1", &a6.sin6_addr);
  text_address((struct sockaddr *)&a6, ip, sizeof ip, peer, sizeof peer);
  ASSERT_STR_EQ(ip, "::ffff:10.0.0.1");
  ASSERT_STR_EQ(peer, "[::ffff:10.0.0.1]:443");
  inet_pton(AF_INET6, "::1", &a6.sin6_addr);
  text_address((struct sockaddr *)&a6, NULL, 0, peer, sizeof peer);
  ASSERT_STR_EQ(peer, "[::1]:443");
  text_address(NULL, ip, sizeof ip, peer, sizeof peer); /* no peer name */
  ASSERT_STR_EQ(ip, "?");
  ASSERT_STR_EQ(peer, "?");
  struct sockaddr other = {.sa_family = AF_UNIX};
  text_address(&other, ip, sizeof ip, peer, 4); /* cut to its size */
  ASSERT_STR_EQ(peer, "?");
  text_address((struct sockaddr *)&a4, ip, 5, peer, 8);
  ASSERT_STR_EQ(ip, "127.");
  ASSERT_STR_EQ(peer, "127.0.0");
}

TEST(times_are_rfc3339_with_microseconds) {
  char t[TEXT_RFC3339_LEN + 1];
  text_rfc3339_us(0, t);
  ASSERT_STR_EQ(t, "1970-01-01T00:00:00.000000Z");
  text_rfc3339_us(1795440654123456LL, t);
  ASSERT_STR_EQ(t, "2026-11-23T13:30:54.123456Z");
  text_rfc3339_us(1795440654000001LL, t);
  ASSERT_STR_EQ(t, "2026-11-23T13:30:54.000001Z");
  text_rfc3339_us(1795440655999999LL, t);
  ASSERT_STR_EQ(t, "2026-11-23T13:30:55.999999Z");
  text_rfc3339_us(-1, t); /* before the epoch, the fraction still counts up */
  ASSERT_STR_EQ(t, "1969-12-31T23:59:59.999999Z");
  char m[TEXT_RFC3339_MS_LEN + 1];
  text_rfc3339_ms(1795440654123LL, m);
  ASSERT_STR_EQ(m, "2026-11-23T13:30:54.123Z");
  text_rfc3339_ms(-1, m);
  ASSERT_STR_EQ(m, "1969-12-31T23:59:59.999Z");
}

TEST(a_disabled_journal_records_nothing_and_says_so) {
  journal_t *j = journal_new(0, 100, 0);
  ASSERT(!journal_enabled(j));
  record(j, HTTP_GET, "/a", 200, "a");
  range_is(j, 0, 0);
  ASSERT_EQ(journal_clear(j), 0);
  journal_filter_t f;
  journal_filter_init(&f);
  ASSERT_EQ(journal_select(j, &f, NULL, NULL), 0);
  buf_t out = BUF_INIT;
  journal_json(j, &f, &out);
  buf_putc(&out, '\0');
  ASSERT_STR_EQ(out.data, "{\"enabled\":false,\"dropped\":0,\"first_seq\":0,\"last_seq\":0,"
                          "\"requests\":[],\"count\":0,\"skipped\":0}\n");
  buf_free(&out);
  journal_free(j);
}

TEST(non_utf8_request_parts_still_give_valid_json) {
  journal_t *j = journal_new(4, 16, 0);
  record(j, HTTP_GET, "/caf\xe9", 404, NULL);
  journal_filter_t f;
  journal_filter_init(&f);
  buf_t out = BUF_INIT;
  journal_json(j, &f, &out);
  buf_putc(&out, '\0');
  ASSERT_CONTAINS(out.data, "\"path\":\"/caf" R "\"");
  buf_free(&out);
  journal_free(j);
}

TEST(outbound_calls_are_kept_as_given) {
  journal_t *j = journal_new(2, 64, 0);
  http_request_t req = {.method = HTTP_GET, .path = "/p", .path_len = 2, .query = ""};
  http_response_t resp = {.status = 200};
  origin_t origin = {0};
  buf_puts(&origin.provision, "x");
  buf_puts(&origin.calls, "{\"method\":\"GET\"},{\"method\":\"PUT\"}");
  journal_record(j, "r", &req, &resp, &origin, 0, 1);
  origin_reset(&origin);
  ASSERT_EQ(origin.calls.len, 0);
  journal_record(j, "r", &req, &resp, &origin, 0, 1);
  journal_filter_t f;
  journal_filter_init(&f);
  buf_t out = BUF_INIT;
  ASSERT_EQ(journal_json(j, &f, &out), 0);
  buf_putc(&out, '\0');
  ASSERT_CONTAINS(out.data,
                  "\"calls\":[{\"method\":\"GET\"},{\"method\":\"PUT\"}],\"duration_us\"");
  ASSERT_CONTAINS(out.data, "\"seq\":2,");
  ASSERT_CONTAINS(out.data, "\"calls\":[],\"duration_us\":1}],\"count\":2");
  ASSERT_CONTAINS(out.data, "\"proxied\":false,\"fault\":null,\"calls\":[{");
  buf_free(&out);
  origin_free(&origin);
  journal_free(j);
}

UNIT_MAIN(records_and_reads_back_one_entry, outbound_calls_are_kept_as_given,
          unmatched_entry_has_null_endpoint, ring_wraps_with_exact_dropped_counts,
          reused_slots_keep_each_entry_whole, the_byte_limit_drops_the_oldest_and_counts_them,
          one_entry_over_the_byte_limit_is_kept_alone, every_filter_selects_what_it_says,
          since_and_limit_page_forward_or_keep_the_newest,
          bad_filter_values_are_refused_with_the_reason, filter_values_are_percent_decoded,
          bodies_are_utf8_or_base64_and_marked_truncated,
          utf8_check_refuses_overlongs_surrogates_and_out_of_range, base64_matches_rfc4648_vectors,
          json_strings_escape_and_replace_invalid_bytes,
          utf8_seq_measures_one_sequence_or_its_bad_prefix, utf8_lossy_replaces_like_json_strings,
          header_names_lower_case_in_ascii_only, addresses_print_ip_and_peer_with_the_port,
          times_are_rfc3339_with_microseconds, a_disabled_journal_records_nothing_and_says_so,
          non_utf8_request_parts_still_give_valid_json)
