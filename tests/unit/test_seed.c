/* test_seed.c - store seeding from a JSON body (src/seed.c).
 *
 * This program is linked from seed.c, json.c, json_parse.c, text.c and
 * buf.c only (tests/meson.build): no Lua library, no store. That seeding
 * links at all here is the proof that the admin API's seeding makes no
 * Lua state. The store is a list of (id, document) lines.
 */
#include "unit.h"

#include <errno.h>

#include "buf.h"
#include "seed.h"

typedef struct fake {
  buf_t lines;   /* "id => doc\n" per put */
  int ids;       /* new ids given */
  int refuse_at; /* the put number that returns -EINVAL, or 0 */
  int puts;
} fake_t;

static int fake_put(void *ud, const char *id, size_t idlen, const char *doc, size_t len) {
  fake_t *f = ud;
  if (++f->puts == f->refuse_at)
    return -EINVAL;
  buf_append(&f->lines, id, idlen);
  buf_puts(&f->lines, " => ");
  buf_append(&f->lines, doc, len);
  buf_putc(&f->lines, '\n');
  return 0;
}

static void fake_id(void *ud, char id[37]) {
  fake_t *f = ud;
  snprintf(id, 37, "00000000-0000-4000-8000-%012d", ++f->ids);
}

#define ID(n) "00000000-0000-4000-8000-00000000000" #n

static char result[8192];
static size_t stored;
static char err[512];

/* Seeds s[0..n); returns rc, with what was stored in `result`. */
static int seed_n(const char *s, size_t n, int refuse_at) {
  fake_t f = {BUF_INIT, 0, refuse_at, 0};
  seed_opts_t o = {fake_put, fake_id, &f};
  err[0] = '\0';
  int rc = seed_documents(s, n, &o, &stored, err, sizeof err);
  size_t len = f.lines.len < sizeof result ? f.lines.len : sizeof result - 1;
  if (len)
    memcpy(result, f.lines.data, len); /* not snprintf: ids may hold NULs */
  result[len] = '\0';
  buf_free(&f.lines);
  return rc;
}

static int seed(const char *s) { return seed_n(s, strlen(s), 0); }

TEST(test_canonical_documents) {
  ASSERT_EQ(seed("[{\"b\":1,\"a\":[1.0,-0,-0.0,1e2,12345678901234567890,0.1,null,true,{}],"
                 "\"z\":{\"y\":\"\\u00e9\",\"x\":{}},\"\":false}, {}]"),
            0);
  ASSERT_EQ(stored, 2);
  ASSERT_STR_EQ(result, ID(1) " => {\"\":false,\"_id\":\"" ID(
                            1) "\",\"a\":[1.0,0,-0.0,100.0,"
                               "1.2345678901234567e+19,0.1,null,true,{}],\"b\":1,"
                               "\"z\":{\"x\":{},\"y\":\"\xC3\xA9\"}}\n" ID(2) " => {\"_id\":\"" ID(
                                   2) "\"}\n");
}

TEST(test_given_ids) {
  /* A string is kept (the last of duplicates); an empty one or another
   * type is replaced; a number names the document as Lua's tostring. */
  ASSERT_EQ(seed("[{\"_id\":\"x\",\"_id\":\"y\",\"v\":1},{\"_id\":\"\"},{\"_id\":null},"
                 "{\"_id\":5},{\"_id\":2.0},{\"_id\":1.5},{\"_id\":[1]}]"),
            0);
  ASSERT_EQ(stored, 7);
  ASSERT_STR_EQ(result, "y => {\"_id\":\"y\",\"v\":1}\n" ID(1) " => {\"_id\":\"" ID(1) "\"}\n" ID(
                            2) " => {\"_id\":\"" ID(2) "\"}\n"
                                                       "5 => {\"_id\":5}\n"
                                                       "2.0 => {\"_id\":2.0}\n"
                                                       "1.5 => {\"_id\":1.5}\n" ID(
                                                           3) " => {\"_id\":\"" ID(3) "\"}\n");
}

TEST(test_strings_kept_and_written_valid) {
  /* NULs and bad UTF-8 in an id reach the store as they are; the document
   * text is always valid JSON. Keys sort by their bytes. */
  ASSERT_EQ(seed("[{\"_id\":\"a\\u0000\xFF\",\"k\xFF\":1,\"k\xFE\":2}]"), 0);
  ASSERT(memcmp(result, "a\0\xFF", 3) == 0);
  ASSERT_STR_EQ(result + 3, " => {\"_id\":\"a\\u0000\xEF\xBF\xBD\",\"k\xEF\xBF\xBD\":2,"
                            "\"k\xEF\xBF\xBD\":1}\n");
}

TEST(test_whole_body_refused) {
  ASSERT_EQ(seed("[{\"a\":1}"), -EINVAL);
  ASSERT_STR_EQ(err, "the body is not JSON: unexpected end of text at line 1, column 9");
  ASSERT_STR_EQ(result, "");
  ASSERT_EQ(seed("[{\"a\":1},{\"b\":1e999}]"), -EINVAL);
  ASSERT_STR_EQ(err, "the body holds a number too large for a double at line 1, column 15; "
                     "nothing was stored");
  ASSERT_STR_EQ(result, "");
  ASSERT_EQ(seed("{\"a\":1}"), -EINVAL);
  ASSERT_STR_EQ(err, "the body must be a JSON array of objects");
  ASSERT_EQ(seed("\"x\""), -EINVAL);
  ASSERT_STR_EQ(err, "the body must be a JSON array of objects");
  ASSERT_EQ(seed("{}"), 0);
  ASSERT_EQ(stored, 0);
  ASSERT_EQ(seed("[]"), 0);
  ASSERT_EQ(stored, 0);
  size_t n = 100000;
  char *deep = malloc(n);
  memset(deep, '[', n);
  ASSERT_EQ(seed_n(deep, n, 0), -EINVAL);
  ASSERT_STR_EQ(err, "the body is not JSON: nesting deeper than 1000 at line 1, column 1001");
  free(deep);
}

TEST(test_stops_at_element) {
  ASSERT_EQ(seed("[{\"x\":1},5,{\"y\":2}]"), -EINVAL);
  ASSERT_STR_EQ(err, "element 2 is not a JSON object; nothing after it was stored");
  ASSERT_EQ(stored, 1);
  ASSERT_STR_EQ(result, ID(1) " => {\"_id\":\"" ID(1) "\",\"x\":1}\n");
  ASSERT_EQ(seed("[[]]"), -EINVAL);
  ASSERT_STR_EQ(err, "element 1 is not a JSON object; nothing after it was stored");
  ASSERT_EQ(seed_n("[{\"a\":1},{\"b\":2},{\"c\":3}]", 25, 2), -EINVAL);
  ASSERT_STR_EQ(err, "element 2 was not stored: a collection or id of 1 to 1024 bytes is "
                     "needed; nothing after it was stored");
  ASSERT_EQ(stored, 1);
}

TEST(test_deep_element) {
  /* 998 nested arrays in one element, and many members: linear work. */
  buf_t b = BUF_INIT;
  buf_puts(&b, "[{\"a\":");
  for (int i = 0; i < 998; i++)
    buf_putc(&b, '[');
  for (int i = 0; i < 998; i++)
    buf_putc(&b, ']');
  buf_puts(&b, "}]");
  ASSERT_EQ(seed_n(b.data, b.len, 0), 0);
  ASSERT_EQ(stored, 1);
  buf_reset(&b);
  buf_putc(&b, '[');
  for (int i = 0; i < 3000; i++)
    buf_printf(&b, "%s{\"k%d\":%d,\"_id\":\"d%d\"}", i ? "," : "", 3000 - i, i, i);
  buf_putc(&b, ']');
  fake_t f = {BUF_INIT, 0, 0, 0};
  seed_opts_t o = {fake_put, fake_id, &f};
  ASSERT_EQ(seed_documents(b.data, b.len, &o, &stored, err, sizeof err), 0);
  ASSERT_EQ(stored, 3000);
  ASSERT_EQ(f.ids, 0);
  buf_free(&f.lines);
  buf_free(&b);
}

UNIT_MAIN(test_canonical_documents, test_given_ids, test_strings_kept_and_written_valid,
          test_whole_body_refused, test_stops_at_element, test_deep_element)
