/* admin.c - the admin API. For now: GET /healthz. The provision, journal
 * and store endpoints arrive with their own modules. */
#include "admin.h"

#include <stdio.h>
#include <string.h>

static void json_answer(http_response_t *resp, int status, const char *body) {
  http_response_simple(resp, status, "application/json", body, strlen(body));
}

/* Appends the bytes as the inside of a JSON string. */
static void json_escaped(buf_t *b, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\')
      buf_printf(b, "\\%c", c);
    else if (c < 0x20 || c == 0x7f)
      buf_printf(b, "\\u%04x", c);
    else
      buf_putc(b, (char)c);
  }
}

static bool path_is(const http_request_t *req, const char *path) {
  return req->path_len == strlen(path) && memcmp(req->path, path, req->path_len) == 0;
}

enum script_status admin_dispatch(void *ctx, const http_request_t *req, const char *remote,
                                  http_response_t *resp, script_done_fn done, void *data,
                                  script_call_t **call) {
  (void)ctx, (void)remote, (void)done, (void)data;
  *call = NULL;
  if (path_is(req, "/healthz")) {
    if (req->method == HTTP_GET || req->method == HTTP_HEAD) {
      json_answer(resp, 200, "{\"status\":\"ok\"}\n");
    } else {
      json_answer(resp, 405, "{\"error\":\"/healthz answers GET and HEAD only\"}\n");
      http_response_header(resp, "Allow", 5, "GET, HEAD", 9);
    }
    return SCRIPT_DONE;
  }
  buf_t body = BUF_INIT;
  buf_printf(&body, "{\"error\":\"the admin API has no %s ", http_method_name(req->method));
  json_escaped(&body, req->path, req->path_len);
  buf_puts(&body, "\"}\n");
  http_response_simple(resp, 404, "application/json", body.data, body.len);
  buf_free(&body);
  return SCRIPT_DONE;
}
