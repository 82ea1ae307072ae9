/* fuzz_rest.c - the REST API's list query (lua/rest.lua, served by the
 * built-in default): the input is the target after "/api/", so
 * "items?name_like=a&_sort=-age" asks for a filtered, sorted list of the
 * seeded collection; the request goes through http_in and script_dispatch
 * as the server's would.
 *
 * The answer must come at once (the REST API never sleeps), with a status
 * below 500 (a 500 is a Lua error in rest.lua, or a query that ran past
 * the instruction budget of the server's default) and valid JSON, and be
 * the same when asked again.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "script.h"
#include "store.h"

#define MAX_TARGET 4096
#define MAX_INSTRUCTIONS 100000000 /* --max-instructions' default */

/* Documents of the shapes a query meets: nested objects and arrays, a key
 * with a dot, numbers as strings, null, booleans, non-ASCII text, pattern
 * characters, a missing field. */
static const char *const items[] = {
    "{\"_id\":\"a1\",\"name\":\"Ada\",\"age\":36,\"tags\":[\"x\",\"y\"],"
    "\"address\":{\"city\":\"London\",\"geo\":{\"lat\":51.5}},\"active\":true}",
    "{\"_id\":\"b2\",\"name\":\"bob\",\"age\":\"36\",\"score\":null,\"a.b\":1,"
    "\"list\":[{\"k\":1},{\"k\":2}]}",
    "{\"_id\":\"c3\",\"name\":\"\xc3\x87\xc3\xa9 \xc3\xbcn\xc3\xaf"
    "code\",\"age\":7.5,"
    "\"active\":false,\"empty\":{},\"arr\":[]}",
    "{\"_id\":\"d4\",\"title\":\"%d %s [(*)] .- %b() %f[%w]\",\"views\":-1e300,"
    "\"n\":9007199254740993}",
    "{\"_id\":\"e5\"}",
    "{\"_id\":\"f6\",\"deep\":{\"a\":{\"b\":{\"c\":[1,[2,[3]]]}}},\"name\":"
    "\"AAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB\"}",
};

static struct {
  store_t *store;
  script_t *s;
} fixture;

static void rest_fixture_free(void) {
  script_release(fixture.s);
  store_close(fixture.store);
}

/* The store with two collections ("items" above, and "users" to page
 * through) and the built-in default loaded on it, once per process. */
static script_t *rest_fixture(void) {
  store_t *store;
  store_opts_t sopts = {.data_dir = NULL};
  char err[512];
  if (store_open(&sopts, &store, err, sizeof err))
    fuzz_fail("rest", "store_open: %s", err);
  for (size_t i = 0; i < sizeof items / sizeof items[0]; i++) {
    char id[8];
    snprintf(id, sizeof id, "%c%zu", 'a' + (int)i, i + 1);
    store_put(store, "items", 5, id, strlen(id), items[i], strlen(items[i]));
  }
  for (int i = 0; i < 23; i++) {
    char id[8], doc[96];
    snprintf(id, sizeof id, "u%d", i);
    int n = snprintf(doc, sizeof doc, "{\"_id\":\"u%d\",\"i\":%d,\"g\":\"g%d\",\"on\":%s}", i, i,
                     i % 3, i % 2 ? "true" : "false");
    store_put(store, "users", 5, id, strlen(id), doc, (size_t)n);
  }
  script_opts_t opts = {
      .loop = NULL, .dir = NULL, .max_instructions = MAX_INSTRUCTIONS, .store = store};
  script_t *s;
  if (script_load_default(&opts, &s, err, sizeof err))
    fuzz_fail("rest", "the built-in default does not load: %s", err);
  fixture.store = store;
  fixture.s = s;
  atexit(rest_fixture_free);
  return s;
}

static void rest_dispatch(script_t *s, const http_request_t *req, http_response_t *resp) {
  script_call_t *call;
  origin_t origin = {0};
  if (script_dispatch(s, req, "127.0.0.1", resp, &origin, NULL, NULL, &call) != SCRIPT_DONE)
    fuzz_fail("rest", "the answer to %.*s is pending", (int)req->target_len, req->target);
  origin_free(&origin);
  fuzz_check_response("rest", resp, req->method);
}

static bool same_buf(const buf_t *a, const buf_t *b) {
  return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/* Asks twice: a GET changes nothing, so the second answer must be the
 * first one again (a view that changed a document it was given, or state
 * one request left behind, would show here). */
static int rest_answer(void *arg, const http_request_t *req) {
  script_t *s = arg;
  http_response_t first = {0}, again = {0};
  rest_dispatch(s, req, &first);
  rest_dispatch(s, req, &again);
  if (first.status != again.status || !same_buf(&first.headers, &again.headers) ||
      !same_buf(&first.body, &again.body))
    fuzz_fail("rest", "asked twice, %.*s answered %d then %d: %.*s / %.*s", (int)req->target_len,
              req->target, first.status, again.status,
              (int)(first.body.len > 500 ? 500 : first.body.len),
              first.body.data ? first.body.data : "",
              (int)(again.body.len > 500 ? 500 : again.body.len),
              again.body.data ? again.body.data : "");
  http_response_free(&first);
  http_response_free(&again);
  return 1; /* one request per input */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  script_t *s = fixture.s ? fixture.s : rest_fixture();
  static const char head[] = "GET /api/", tail[] = " HTTP/1.1\r\nHost: fuzz\r\n\r\n";
  if (size > MAX_TARGET)
    return -1;
  uint8_t req[sizeof head + MAX_TARGET + sizeof tail];
  size_t len = 0;
  memcpy(req, head, sizeof head - 1);
  len += sizeof head - 1;
  memcpy(req + len, data, size);
  len += size;
  memcpy(req + len, tail, sizeof tail - 1);
  len += sizeof tail - 1;
  /* Bytes no request target can hold make a request that is refused
   * before it reaches the REST API: not worth keeping. */
  return fuzz_feed(req, len, len, 0, rest_answer, s) == 1 ? 0 : -1;
}
