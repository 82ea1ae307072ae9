/* test_http_client.c - the outbound HTTP client (src/http_client*.c).
 *
 * The I/O-free parts (URLs, the policy, the request bytes, the answer
 * parser) are fed byte strings.
 */
#include <errno.h>
#include <netinet/in.h>

#include "../../src/http_client_int.h"
#include "unit.h"

/* ---- the I/O-free parts ---- */

static http_client_url_t url_of(const char *s) {
  http_client_url_t u;
  const char *err = NULL;
  if (http_client_parse_url(s, strlen(s), &u, &err))
    UNIT_FAIL("%s refused: %s", s, err);
  return u;
}

TEST(urls_are_parsed) {
  http_client_url_t u = url_of("http://example.com");
  ASSERT_MEM_EQ(u.host, u.host_len, "example.com");
  ASSERT_MEM_EQ(u.authority, u.authority_len, "example.com");
  ASSERT_EQ(u.port, 80);
  ASSERT_EQ(u.target_len, 0);
  ASSERT(!u.ipv6);
  u = url_of("HTTP://Api.Example.COM:8080/a/b%20c?x=1&y#frag");
  ASSERT_MEM_EQ(u.host, u.host_len, "Api.Example.COM");
  ASSERT_MEM_EQ(u.authority, u.authority_len, "Api.Example.COM:8080");
  ASSERT_EQ(u.port, 8080);
  ASSERT_MEM_EQ(u.target, u.target_len, "/a/b%20c?x=1&y");
  u = url_of("http://[::1]:9000/x");
  ASSERT_MEM_EQ(u.host, u.host_len, "::1");
  ASSERT_MEM_EQ(u.authority, u.authority_len, "[::1]:9000");
  ASSERT(u.ipv6);
  ASSERT_EQ(u.port, 9000);
  u = url_of("http://127.0.0.1:65535?q");
  ASSERT_EQ(u.port, 65535);
  ASSERT_MEM_EQ(u.target, u.target_len, "?q");
  u = url_of("http://[2001:db8::7]");
  ASSERT_MEM_EQ(u.host, u.host_len, "2001:db8::7");
  ASSERT_EQ(u.port, 80);
}

TEST(bad_urls_are_refused_with_a_reason) {
  static const struct {
    const char *url, *why;
  } cases[] = {
      {"https://example.com/", "https is not supported yet"},
      {"HTTPS://example.com/", "https is not supported yet"},
      {"ftp://example.com/", "the URL must start with http://"},
      {"example.com/x", "the URL must start with http://"},
      {"", "the URL must start with http://"},
      {"http://user:pw@example.com/", "the URL must not hold a user name or password"},
      {"http://user@example.com/", "the URL must not hold a user name or password"},
      {"http://", "the URL has no host"},
      {"http:///path", "the URL has no host"},
      {"http://:80/", "the URL has no host"},
      {"http://h:0/", "the URL's port must be a number from 1 to 65535"},
      {"http://h:65536/", "the URL's port must be a number from 1 to 65535"},
      {"http://h:99999999/", "the URL's port must be a number from 1 to 65535"},
      {"http://h:-1/", "the URL's port must be a number from 1 to 65535"},
      {"http://h:8x/", "the URL's port must be a number from 1 to 65535"},
      {"http://h:/", "the URL's port must be a number from 1 to 65535"},
      {"http://h:80:81/", "the URL's port must be a number from 1 to 65535"},
      {"http://[::1/", "the URL's IPv6 address lacks its closing ']'"},
      {"http://[::g]/", "the URL's IPv6 address is invalid"},
      {"http://[]/", "the URL's IPv6 address is invalid"},
      {"http://[fe80::1%25eth0]/", "the URL's IPv6 address is invalid"},
      {"http://[::1]x/", "the URL's host is invalid"},
      {"http://ex*ample/", "the URL's host is invalid"},
      {"http://exa mple/", "the URL holds a space, a control character or a non-ASCII byte"},
      {"http://h/a b", "the URL holds a space, a control character or a non-ASCII byte"},
      {"http://h/\r\nX: y", "the URL holds a space, a control character or a non-ASCII byte"},
      {"http://h/caf\xc3\xa9", "the URL holds a space, a control character or a non-ASCII byte"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    http_client_url_t u;
    const char *err = NULL;
    if (http_client_parse_url(cases[i].url, strlen(cases[i].url), &u, &err) != -EINVAL)
      UNIT_FAIL("%s was accepted", cases[i].url);
    ASSERT_CONTAINS(err, cases[i].why);
  }
  /* A name of the maximum length passes; one more character does not. */
  char name[300] = "http://";
  memset(name + 7, 'a', 253);
  url_of(name);
  name[7 + 253] = 'a';
  http_client_url_t u;
  const char *err;
  ASSERT_EQ(http_client_parse_url(name, strlen(name), &u, &err), -EINVAL);
  ASSERT_STR_EQ(err, "the URL's host is longer than 253 characters");
}

static bool allowed(http_client_outbound_t policy, const char *ip) {
  struct sockaddr_storage ss;
  if (strchr(ip, ':'))
    ASSERT_EQ(uv_ip6_addr(ip, 80, (struct sockaddr_in6 *)&ss), 0);
  else
    ASSERT_EQ(uv_ip4_addr(ip, 80, (struct sockaddr_in *)&ss), 0);
  return http_client_address_allowed(policy, (struct sockaddr *)&ss);
}

TEST(the_policy_judges_addresses) {
  static const char *const loopback[] = {"127.0.0.1", "127.255.0.9", "::1", "::ffff:127.0.0.1"};
  static const char *const others[] = {
      "192.0.2.1",        "10.0.0.1",  "0.0.0.0",        "::", "2001:db8::1", "fe80::1",
      "::ffff:192.0.2.1", "128.0.0.1", "126.255.255.255"};
  for (size_t i = 0; i < sizeof loopback / sizeof loopback[0]; i++) {
    ASSERT(allowed(HTTP_CLIENT_OUTBOUND_ANY, loopback[i]));
    ASSERT(allowed(HTTP_CLIENT_OUTBOUND_LOOPBACK, loopback[i]));
    ASSERT(!allowed(HTTP_CLIENT_OUTBOUND_OFF, loopback[i]));
  }
  for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
    ASSERT(allowed(HTTP_CLIENT_OUTBOUND_ANY, others[i]));
    if (allowed(HTTP_CLIENT_OUTBOUND_LOOPBACK, others[i]))
      UNIT_FAIL("%s passed the loopback policy", others[i]);
    ASSERT(!allowed(HTTP_CLIENT_OUTBOUND_OFF, others[i]));
  }
  struct sockaddr unix_sa = {.sa_family = AF_UNIX};
  ASSERT(!http_client_address_allowed(HTTP_CLIENT_OUTBOUND_ANY, &unix_sa));
}

#define HDR(n, v)                                                                                 \
  { n, sizeof n - 1, v, sizeof v - 1 }

static const char *request_bytes(const char *method, const char *url,
                                 const http_client_request_t *req) {
  static buf_t out;
  static char err[256];
  buf_reset(&out);
  http_client_url_t u = url_of(url);
  int rc = http_client_write_request(&out, method, &u, req, err, sizeof err);
  if (rc)
    return err;
  buf_putc(&out, '\0');
  return out.data;
}

TEST(requests_are_written_as_asked) {
  http_client_request_t req = {0};
  ASSERT_STR_EQ(request_bytes("GET", "http://h:8080/p?q=1#x", &req),
                "GET /p?q=1 HTTP/1.1\r\nHost: h:8080\r\nConnection: keep-alive\r\n\r\n");
  ASSERT_STR_EQ(request_bytes("GET", "http://[::1]?q", &req),
                "GET /?q HTTP/1.1\r\nHost: [::1]\r\nConnection: keep-alive\r\n\r\n");
  ASSERT_STR_EQ(
      request_bytes("POST", "http://h", &req),
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n");
  /* The caller's headers in order; its framing dropped; its Host wins. */
  const http_header_t hs[] = {HDR("X-B", "2"),
                              HDR("content-length", "99"),
                              HDR("Host", "virtual.test"),
                              HDR("Transfer-Encoding", "chunked"),
                              HDR("x-a", "1"),
                              HDR("CONNECTION", "close")};
  req = (http_client_request_t){
      .headers = hs, .nheaders = 6, .body = "{}", .body_len = 2, .has_body = true};
  ASSERT_STR_EQ(request_bytes("PATCH", "http://h/r", &req),
                "PATCH /r HTTP/1.1\r\nX-B: 2\r\nHost: virtual.test\r\nx-a: 1\r\n"
                "Content-Length: 2\r\nConnection: keep-alive\r\n\r\n{}");
  req = (http_client_request_t){.has_body = true};
  ASSERT_STR_EQ(
      request_bytes("DELETE", "http://h/r", &req),
      "DELETE /r HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n");
}

TEST(header_injection_is_refused) {
  const http_header_t bad_value[] = {HDR("X-A", "1\r\nX-Injected: 1")};
  http_client_request_t req = {.headers = bad_value, .nheaders = 1};
  ASSERT_STR_EQ(request_bytes("GET", "http://h/", &req),
                "the header \"X-A\" has a value holding CR, LF or NUL");
  const http_header_t bad_name[] = {HDR("X A\n", "1")};
  req.headers = bad_name;
  ASSERT_STR_EQ(request_bytes("GET", "http://h/", &req),
                "the header \"X A\\x0a\" is not a valid header name");
  const http_header_t nul_value[] = {{"X-A", 3, "a\0b", 3}};
  req.headers = nul_value;
  ASSERT_CONTAINS(request_bytes("GET", "http://h/", &req), "CR, LF or NUL");
}

/* An answer parser fed `raw` in pieces of `step` bytes (0: whole). */
static enum http_client_feed parse(http_client_answer_t *a, const char *raw, size_t step,
                                   bool head) {
  http_client_answer_reset(a, 1024, 64, head);
  size_t n = strlen(raw), used = 0, at = 0;
  enum http_client_feed f = HTTP_CLIENT_FEED_MORE;
  while (at < n && f == HTTP_CLIENT_FEED_MORE) {
    size_t len = step && n - at > step ? step : n - at;
    f = http_client_answer_feed(a, raw + at, len, &used);
    at += used;
  }
  return f;
}

TEST(answers_are_parsed_in_any_pieces) {
  const char *raw = "HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n"
                    "HTTP/1.1 201 Created\r\nX-Case: A\r\nset-cookie: 1\r\nSet-Cookie: 2\r\n"
                    "X-Empty:\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n";
  http_client_answer_t a = {0};
  for (size_t step = 0; step < 8; step++) {
    ASSERT_EQ(parse(&a, raw, step, false), HTTP_CLIENT_FEED_DONE);
    http_client_result_t r;
    http_client_answer_result(&a, &r);
    ASSERT_EQ(r.status, 201);
    ASSERT_MEM_EQ(r.body, r.body_len, "abcde");
    ASSERT_EQ(r.nheaders, 5);
    ASSERT_MEM_EQ(r.headers[0].name, r.headers[0].name_len, "X-Case");
    ASSERT_MEM_EQ(r.headers[0].value, r.headers[0].value_len, "A");
    ASSERT_MEM_EQ(r.headers[1].name, r.headers[1].name_len, "set-cookie");
    ASSERT_MEM_EQ(r.headers[2].value, r.headers[2].value_len, "2");
    ASSERT_MEM_EQ(r.headers[3].name, r.headers[3].name_len, "X-Empty");
    ASSERT_EQ(r.headers[3].value_len, 0);
    ASSERT_MEM_EQ(r.headers[4].name, r.headers[4].name_len, "Transfer-Encoding");
    ASSERT(a.keep_alive);
  }
  http_client_answer_free(&a);
}

TEST(answers_without_a_body_end_at_their_head) {
  http_client_answer_t a = {0};
  size_t used;
  /* HEAD: a Content-Length says what a GET would get. */
  const char *head = "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nHTTP/1.1 200 OK\r\n";
  http_client_answer_reset(&a, 1024, 64, true);
  ASSERT_EQ(http_client_answer_feed(&a, head, strlen(head), &used), HTTP_CLIENT_FEED_DONE);
  ASSERT_EQ(used, strlen(head) - strlen("HTTP/1.1 200 OK\r\n"));
  ASSERT_EQ(a.body.len, 0);
  ASSERT(a.keep_alive);
  ASSERT_EQ(parse(&a, "HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n", 0, false),
            HTTP_CLIENT_FEED_DONE);
  ASSERT_EQ(a.status, 304);
  ASSERT_EQ(parse(&a, "HTTP/1.1 204 No Content\r\n\r\n", 0, false), HTTP_CLIENT_FEED_DONE);
  ASSERT_EQ(parse(&a, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0, false),
            HTTP_CLIENT_FEED_DONE);
  /* No length and not chunked: the body runs to the end of the connection. */
  ASSERT_EQ(parse(&a, "HTTP/1.1 200 OK\r\n\r\nto the end", 3, false), HTTP_CLIENT_FEED_MORE);
  ASSERT_EQ(http_client_answer_eof(&a), HTTP_CLIENT_FEED_DONE);
  ASSERT_MEM_EQ(a.body.data, a.body.len, "to the end");
  ASSERT(!a.keep_alive);
  ASSERT_EQ(
      parse(&a, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx", 0, false),
      HTTP_CLIENT_FEED_DONE);
  ASSERT(!a.keep_alive);
  ASSERT_EQ(parse(&a, "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", 0, false),
            HTTP_CLIENT_FEED_DONE);
  ASSERT(!a.keep_alive);
  http_client_answer_free(&a);
}

static const char *refusal(const char *raw, bool eof) {
  static http_client_answer_t a;
  enum http_client_feed f = parse(&a, raw, 0, false);
  if (f == HTTP_CLIENT_FEED_MORE && eof)
    f = http_client_answer_eof(&a);
  if (f != HTTP_CLIENT_FEED_ERROR)
    UNIT_FAIL("accepted: %s", raw);
  return a.error;
}

TEST(bad_answers_are_refused_with_a_reason) {
  ASSERT_STR_EQ(refusal("hello\r\n\r\n", false), "the answer is malformed: Expected HTTP/");
  ASSERT_CONTAINS(refusal("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", false),
                  "the answer is malformed: ");
  ASSERT_CONTAINS(refusal("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", false),
                  "the answer is malformed: ");
  ASSERT_STR_EQ(refusal("HTTP/1.1 200 OK\r\nContent-Length: 65\r\n\r\n", false),
                "the answer's body is larger than 64 bytes");
  char big[256];
  snprintf(big, sizeof big, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n41\r\n%065d", 0);
  ASSERT_STR_EQ(refusal(big, false), "the answer's body is larger than 64 bytes");
  char head[1300];
  snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nX-Big: %01100d\r\n\r\n", 0);
  ASSERT_STR_EQ(refusal(head, false), "the answer's head is larger than 1024 bytes");
  ASSERT_STR_EQ(refusal("", true), "the server closed the connection without answering");
  ASSERT_STR_EQ(refusal("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc", true),
                "the server closed the connection in the middle of the answer");
  ASSERT_STR_EQ(refusal("HTTP/1.1 100 Continue\r\n\r\n", true),
                "the server closed the connection in the middle of the answer");
  ASSERT_STR_EQ(refusal("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", false),
                "the server switched protocols (101), which the client does not support");
}

UNIT_MAIN(urls_are_parsed, bad_urls_are_refused_with_a_reason, the_policy_judges_addresses,
          requests_are_written_as_asked, header_injection_is_refused,
          answers_are_parsed_in_any_pieces, answers_without_a_body_end_at_their_head,
          bad_answers_are_refused_with_a_reason)
