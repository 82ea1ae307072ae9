/* fuzz_request.c - bytes -> http_in -> router -> response framing.
 *
 * The first byte picks how the input is cut into reads, so that requests
 * split at every position are tried; the rest is what a client sends.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "router.h"

static router_t *make_router(void) {
  static const char *const rules[] = {
      "/",
      "/a/<int:id>",
      "/a/<name>.json",
      "/f/<path:p>/edit",
      "/u/<uuid:u>",
      "/any/<any(x, y, 'z z'):w>/",
      "/v<int(min=1, max=9):n>/<float(signed=True):f>",
  };
  router_t *r = router_new();
  char err[256];
  for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
    if (router_add(r, rules[i], 1ULL << HTTP_GET | 1ULL << HTTP_POST, i % 2 == 0, (int)i, err,
                   sizeof err))
      abort(); /* the fixed rules are valid */
  return r;
}

static int answer(void *arg, const http_request_t *req) {
  router_t *router = arg;
  router_match_t m;
  router_match(router, req->path, req->path_len, req->method, &m);
  http_response_t resp = {0};
  buf_t out = BUF_INIT;
  http_response_simple(&resp, 200, "text/plain", req->body, req->body_len);
  http_response_header(&resp, "X-Path", 6, req->path, req->path_len);
  http_response_write(&resp, req->method, req->keep_alive, req->http_minor == 0, &out);
  buf_free(&out);
  http_response_free(&resp);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static router_t *router;
  if (router == NULL)
    router = make_router();
  if (size == 0)
    return 0;
  fuzz_feed(data + 1, size - 1, (size_t)data[0] % 64 + 1, 4096, answer, router);
  return 0;
}
