/* test_proxy.c - what a forwarding proxy changes: hop-by-hop headers, the
 * outbound URL and Via, loops, the answer passed back, gateway errors. */
#include "../../src/proxy.h"
#include "unit.h"

#define H(n, v)                                                                                   \
  { n, sizeof n - 1, v, sizeof v - 1 }

static const char *header_text(const http_response_t *r) {
  static char out[1024];
  snprintf(out, sizeof out, "%.*s", (int)r->headers.len, r->headers.data ? r->headers.data : "");
  return out;
}

TEST(hop_by_hop_headers_are_the_fixed_ones_and_those_connection_names) {
  http_header_t hs[] = {H("Connection", "keep-alive, X-Secret ,x-other"), H("X-Secret", "s")};
  const char *hop[] = {"Connection",
                       "keep-alive",
                       "TE",
                       "Trailer",
                       "Transfer-Encoding",
                       "Upgrade",
                       "Proxy-Authorization",
                       "proxy-connection",
                       "X-Secret",
                       "X-OTHER"};
  for (size_t i = 0; i < sizeof hop / sizeof hop[0]; i++)
    if (!proxy_hop_header(hop[i], strlen(hop[i]), hs, 2))
      UNIT_FAIL("%s is hop-by-hop", hop[i]);
  const char *end[] = {"Content-Type", "X-Secrets", "Via", "Host", "Proxy", "Trailers"};
  for (size_t i = 0; i < sizeof end / sizeof end[0]; i++)
    if (proxy_hop_header(end[i], strlen(end[i]), hs, 2))
      UNIT_FAIL("%s is end-to-end", end[i]);
  /* Without a Connection header only the fixed names are hop-by-hop. */
  ASSERT(!proxy_hop_header("X-Secret", 8, NULL, 0));
}

TEST(the_request_keeps_method_path_query_body_and_end_to_end_headers) {
  http_header_t hs[] = {H("Host", "front:8000"), H("Connection", "X-Hop"), H("X-Hop", "1"),
                        H("Via", "1.0 someone"), H("Accept", "*/*"),       H("Keep-Alive", "5")};
  http_request_t req = {.method = HTTP_PUT,
                        .raw_path = "/a%20b/c",
                        .raw_path_len = 8,
                        .query = "x=1&y",
                        .query_len = 5,
                        .headers = hs,
                        .nheaders = 6,
                        .body = "data",
                        .body_len = 4};
  proxy_out_t out = {0};
  ASSERT_EQ(proxy_request(&req, "http://up:9000/base/", "h1mock-t", 1500, &out), 0);
  ASSERT_STR_EQ(out.req.url, "http://up:9000/base/a%20b/c?x=1&y");
  ASSERT_STR_EQ(out.req.method, "PUT");
  ASSERT_EQ(out.req.nheaders, 2);
  ASSERT_MEM_EQ(out.req.headers[0].name, out.req.headers[0].name_len, "Accept");
  ASSERT_MEM_EQ(out.req.headers[1].name, out.req.headers[1].name_len, "Via");
  ASSERT_MEM_EQ(out.req.headers[1].value, out.req.headers[1].value_len,
                "1.0 someone, 1.1 h1mock-t");
  ASSERT(out.req.has_body);
  ASSERT_MEM_EQ(out.req.body, out.req.body_len, "data");
  ASSERT_EQ(out.req.timeout_ms, 1500);
  /* Reused for a bodiless GET without a query, to a base without a path. */
  http_request_t get = {.method = HTTP_GET, .raw_path = "/", .raw_path_len = 1, .query = ""};
  ASSERT_EQ(proxy_request(&get, "http://up", "h1mock-t", 0, &out), 0);
  ASSERT_STR_EQ(out.req.url, "http://up/");
  ASSERT(!out.req.has_body);
  ASSERT_EQ(out.req.nheaders, 1);
  ASSERT_MEM_EQ(out.req.headers[0].value, out.req.headers[0].value_len, "1.1 h1mock-t");
  proxy_out_free(&out);
}

TEST(a_request_carrying_our_token_is_a_loop) {
  char tok[PROXY_TOKEN_SIZE], other[PROXY_TOKEN_SIZE];
  proxy_token(tok);
  proxy_token(other);
  ASSERT_EQ(strlen(tok), 23);
  ASSERT(strncmp(tok, "h1mock-", 7) == 0);
  ASSERT(strcmp(tok, other) != 0);
  char via[128];
  snprintf(via, sizeof via, "1.1 a, 1.1 %s", tok);
  http_header_t hs[] = {{"via", 3, via, strlen(via)}};
  http_request_t req = {.headers = hs, .nheaders = 1};
  ASSERT(proxy_loop(&req, tok));
  ASSERT(!proxy_loop(&req, other));
  req.nheaders = 0;
  ASSERT(!proxy_loop(&req, tok));
}

TEST(the_answer_passes_without_hop_by_hop_and_framing_headers) {
  http_header_t hs[] = {H("Content-Type", "text/plain"),
                        H("Connection", "close, X-Private"),
                        H("X-Private", "p"),
                        H("Content-Length", "2"),
                        H("Set-Cookie", "a=1"),
                        H("Transfer-Encoding", "chunked"),
                        H("Set-Cookie", "b=2")};
  http_client_result_t r = {
      .status = 418, .headers = hs, .nheaders = 7, .body = "hi", .body_len = 2};
  http_response_t resp = {0};
  ASSERT_EQ(proxy_response(&r, &resp), 0);
  ASSERT_EQ(resp.status, 418);
  ASSERT_STR_EQ(header_text(&resp),
                "Content-Type: text/plain\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n");
  ASSERT_MEM_EQ(resp.body.data, resp.body.len, "hi");
  http_response_free(&resp);
}

TEST(failures_are_502_or_504_and_loops_508) {
  http_response_t resp = {0};
  proxy_failed(&resp, "connection refused");
  ASSERT_EQ(resp.status, 502);
  ASSERT_MEM_EQ(resp.body.data, resp.body.len,
                "502 Bad Gateway: the upstream did not answer: connection refused\n");
  proxy_failed(&resp, "timed out after 10 s");
  ASSERT_EQ(resp.status, 504);
  ASSERT_CONTAINS(resp.body.data, "504 Gateway Timeout: the upstream did not answer: timed out");
  proxy_looped(&resp);
  ASSERT_EQ(resp.status, 508);
  ASSERT_STR_EQ(http_reason(508), "Loop Detected");
  http_response_free(&resp);
}

TEST(base_urls_are_checked) {
  const char *why;
  ASSERT_EQ(proxy_check_base("http://127.0.0.1:9000", &why), 0);
  ASSERT_EQ(proxy_check_base("http://up/prefix/", &why), 0);
  ASSERT_EQ(proxy_check_base("https://up", &why), -EINVAL);
  ASSERT_STR_EQ(why, "https is not supported yet");
  ASSERT_EQ(proxy_check_base("http://up/?q=1", &why), -EINVAL);
  ASSERT_STR_EQ(why, "the URL must not hold a query or a fragment");
}

UNIT_MAIN(hop_by_hop_headers_are_the_fixed_ones_and_those_connection_names,
          the_request_keeps_method_path_query_body_and_end_to_end_headers,
          a_request_carrying_our_token_is_a_loop,
          the_answer_passes_without_hop_by_hop_and_framing_headers,
          failures_are_502_or_504_and_loops_508, base_urls_are_checked)
