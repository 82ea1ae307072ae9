/* proxy.c - forwarding a request and its answer (see proxy.h). */
#include "proxy.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

void proxy_token(char *token) {
  unsigned long long r = 0;
  /* Not a secret, only unique: without getrandom, time and pid do. */
  if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
    r = (unsigned long long)time(NULL) * 2654435761u ^ (unsigned long long)getpid() << 32;
  snprintf(token, PROXY_TOKEN_SIZE, "h1mock-%016llx", r);
}

int proxy_check_base(const char *base, const char **why) {
  http_client_url_t u;
  if (http_client_parse_url(base, strlen(base), &u, why))
    return -EINVAL;
  if (strpbrk(base, "?#")) {
    *why = "the URL must not hold a query or a fragment";
    return -EINVAL;
  }
  return 0;
}

/* True when the comma-separated list v[0..n) holds `name` (any case). */
static bool list_has(const char *v, size_t n, const char *name, size_t nlen) {
  const char *end = v + n;
  while (v < end) {
    while (v < end && (*v == ' ' || *v == '\t' || *v == ','))
      v++;
    const char *item = v;
    while (v < end && *v != ',')
      v++;
    const char *last = v;
    while (last > item && (last[-1] == ' ' || last[-1] == '\t'))
      last--;
    if ((size_t)(last - item) == nlen && http_name_is(item, nlen, name) && nlen)
      return true;
  }
  return false;
}

bool proxy_hop_header(const char *name, size_t nlen, const http_header_t *hs, size_t n) {
  static const char *const hop[] = {"connection",        "keep-alive", "te", "trailer",
                                    "transfer-encoding", "upgrade",    NULL};
  for (int i = 0; hop[i]; i++)
    if (http_name_is(name, nlen, hop[i]))
      return true;
  if (nlen >= 6 && http_name_is(name, 6, "proxy-"))
    return true;
  /* Connection may name any header as this hop's own; its value is a
   * token list of header names. */
  char want[128];
  if (nlen >= sizeof want)
    return false;
  memcpy(want, name, nlen);
  want[nlen] = '\0';
  for (size_t i = 0; i < n; i++)
    if (http_name_is(hs[i].name, hs[i].name_len, "connection") &&
        list_has(hs[i].value, hs[i].value_len, want, nlen))
      return true;
  return false;
}

int proxy_request(const http_request_t *req, const char *base, const char *token,
                  uint64_t timeout_ms, proxy_out_t *out) {
  size_t blen = strlen(base);
  while (blen > 0 && base[blen - 1] == '/')
    blen--;
  buf_reset(&out->url);
  buf_reset(&out->via);
  int rc = buf_append(&out->url, base, blen);
  if (rc == 0 && (req->raw_path_len == 0 || req->raw_path[0] != '/'))
    rc = buf_putc(&out->url, '/');
  if (rc == 0)
    rc = buf_append(&out->url, req->raw_path, req->raw_path_len);
  if (rc == 0 && req->query_len)
    rc = buf_putc(&out->url, '?') || buf_append(&out->url, req->query, req->query_len);
  if (rc == 0)
    rc = buf_putc(&out->url, '\0');
  /* Via lists every hop: the ones before this server, then this one. */
  for (size_t i = 0; rc == 0 && i < req->nheaders; i++) {
    const http_header_t *h = &req->headers[i];
    if (http_name_is(h->name, h->name_len, "via"))
      rc = buf_append(&out->via, h->value, h->value_len) || buf_puts(&out->via, ", ");
  }
  if (rc == 0)
    rc = buf_printf(&out->via, "1.1 %s", token);
  if (rc)
    return -ENOMEM;
  size_t n = 0;
  for (size_t i = 0; i < req->nheaders && n < HTTP_MAX_HEADERS; i++) {
    const http_header_t *h = &req->headers[i];
    if (http_name_is(h->name, h->name_len, "host") || http_name_is(h->name, h->name_len, "via") ||
        proxy_hop_header(h->name, h->name_len, req->headers, req->nheaders))
      continue;
    out->headers[n++] = *h;
  }
  out->headers[n++] = (http_header_t){"Via", 3, out->via.data, out->via.len};
  out->req = (http_client_request_t){
      .method = http_method_name(req->method),
      .url = out->url.data,
      .headers = out->headers,
      .nheaders = n,
      .body = req->body,
      .body_len = req->body_len,
      .has_body = req->body_len > 0 || http_request_header(req, "content-length") != NULL,
      .timeout_ms = timeout_ms,
  };
  return 0;
}

void proxy_out_free(proxy_out_t *out) {
  buf_free(&out->url);
  buf_free(&out->via);
}

bool proxy_loop(const http_request_t *req, const char *token) {
  size_t tlen = strlen(token);
  for (size_t i = 0; i < req->nheaders; i++) {
    const http_header_t *h = &req->headers[i];
    if (!http_name_is(h->name, h->name_len, "via") || h->value_len < tlen)
      continue;
    for (size_t k = 0; k + tlen <= h->value_len; k++)
      if (memcmp(h->value + k, token, tlen) == 0)
        return true;
  }
  return false;
}

int proxy_response(const http_client_result_t *r, http_response_t *resp) {
  http_response_reset(resp);
  resp->status = r->status;
  for (size_t i = 0; i < r->nheaders; i++) {
    const http_header_t *h = &r->headers[i];
    if (proxy_hop_header(h->name, h->name_len, r->headers, r->nheaders) ||
        http_name_is(h->name, h->name_len, "content-length"))
      continue;
    /* The client checked names and values as it parsed them; only memory
     * can fail here. */
    if (http_response_header(resp, h->name, h->name_len, h->value, h->value_len) == -ENOMEM)
      return -ENOMEM;
  }
  return buf_append(&resp->body, r->body, r->body_len) ? -ENOMEM : 0;
}

void proxy_failed(http_response_t *resp, const char *error) {
  char text[400];
  bool timeout = strncmp(error, "timed out", 9) == 0;
  int n = snprintf(text, sizeof text, "%d %s: the upstream did not answer: %s\n",
                   timeout ? 504 : 502, timeout ? "Gateway Timeout" : "Bad Gateway", error);
  http_response_simple(resp, timeout ? 504 : 502, "text/plain; charset=utf-8", text,
                       n < (int)sizeof text ? (size_t)n : sizeof text - 1);
}

void proxy_looped(http_response_t *resp) {
  static const char text[] =
      "508 Loop Detected: this request was forwarded by this server already (its Via header "
      "says so); check that --proxy does not point back at the server\n";
  http_response_simple(resp, 508, "text/plain; charset=utf-8", text, sizeof text - 1);
}
