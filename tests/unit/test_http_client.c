/* test_http_client.c - the outbound HTTP client (src/http_client*.c).
 *
 * The I/O-free parts (URLs, the policy, the request bytes, the answer
 * parser) are fed byte strings. The rest runs on a uv loop of its own
 * against a small HTTP server in this file, on the same loop, listening on
 * 127.0.0.1:0: it answers each request with a scripted reply, after a delay
 * or never, and counts connections and requests. Waits turn the loop until
 * a condition holds (the unit timeout bounds them); no fixed sleeps. Every
 * test ends by freeing the client, closing the server and checking that
 * uv_loop_close finds no handle left open.
 */
#include <errno.h>
#include <netinet/in.h>

#include "../../src/http_client_int.h"
#include "unit.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
/* unit.h's children end with _exit, which skips LeakSanitizer's check at
 * exit: ask for it where a test ends. */
#define CHECK_LEAKS() __lsan_do_leak_check()
#else
#define CHECK_LEAKS() ((void)0)
#endif

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

/* ---- the test server ---- */

#define MAX_ANSWERS 8

typedef struct tserver tserver_t;

typedef struct tconn {
  uv_tcp_t tcp;
  uv_timer_t delay;
  tserver_t *srv;
  char buf[16384];
  size_t len;
  int handles;
  bool closing;
} tconn_t;

struct tserver {
  uv_tcp_t tcp;
  int port;
  /* The reply to the i-th request (the last one given repeats), and
   * whether to close the connection right after it. */
  const char *answers[MAX_ANSWERS];
  bool close_after[MAX_ANSWERS];
  unsigned delay_ms; /* before each reply */
  bool silent;       /* read requests, never reply */
  void (*on_request)(tserver_t *s);
  int connections, closed, requests, pending, peak;
  char last[4096]; /* the last request, NUL-terminated */
  tconn_t *conns[256];
};

static uv_loop_t loop;

#define RUN_UNTIL(cond)                                                                           \
  do {                                                                                            \
    while (!(cond))                                                                               \
      uv_run(&loop, UV_RUN_ONCE);                                                                 \
  } while (0)

static void on_tconn_close(uv_handle_t *h) {
  tconn_t *t = h->data;
  if (--t->handles == 0) {
    t->srv->closed++;
    free(t);
  }
}

static void tconn_close(tconn_t *t) {
  if (t->closing)
    return;
  t->closing = true;
  for (int i = 0; i < t->srv->connections; i++)
    if (t->srv->conns[i] == t)
      t->srv->conns[i] = NULL;
  uv_close((uv_handle_t *)&t->tcp, on_tconn_close);
  uv_close((uv_handle_t *)&t->delay, on_tconn_close);
}

static void reply(tconn_t *t) {
  tserver_t *s = t->srv;
  int i = s->requests - 1, last = 0;
  while (last + 1 < MAX_ANSWERS && s->answers[last + 1])
    last++;
  if (i > last)
    i = last;
  uv_buf_t b = uv_buf_init((char *)s->answers[i], (unsigned)strlen(s->answers[i]));
  /* Loopback buffers take these few kilobytes at once. */
  ASSERT_EQ(uv_try_write((uv_stream_t *)&t->tcp, &b, 1), (int)b.len);
  if (s->close_after[i])
    tconn_close(t);
}

static void on_delay(uv_timer_t *timer) {
  tconn_t *t = timer->data;
  t->srv->pending--;
  reply(t);
}

/* Takes one whole request (head and Content-Length body) off the buffer. */
static bool take_request(tconn_t *t) {
  char *end = memmem(t->buf, t->len, "\r\n\r\n", 4);
  if (end == NULL)
    return false;
  size_t head = (size_t)(end + 4 - t->buf), body = 0;
  *end = '\0';
  const char *cl = strcasestr(t->buf, "\r\nContent-Length: ");
  if (cl)
    body = strtoul(cl + 18, NULL, 10);
  *end = '\r';
  if (t->len < head + body)
    return false;
  tserver_t *s = t->srv;
  snprintf(s->last, sizeof s->last, "%.*s", (int)(head + body), t->buf);
  memmove(t->buf, t->buf + head + body, t->len - head - body);
  t->len -= head + body;
  s->requests++;
  return true;
}

static void tserver_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
  (void)suggested;
  tconn_t *t = h->data;
  *b = uv_buf_init(t->buf + t->len, (unsigned)(sizeof t->buf - t->len));
}

static void tserver_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *b) {
  (void)b;
  tconn_t *t = stream->data;
  if (n < 0) {
    tconn_close(t);
    return;
  }
  t->len += (size_t)n;
  tserver_t *s = t->srv;
  while (!t->closing && take_request(t)) {
    if (s->on_request)
      s->on_request(s);
    if (s->silent)
      continue;
    if (s->delay_ms) {
      if (++s->pending > s->peak)
        s->peak = s->pending;
      uv_timer_start(&t->delay, on_delay, s->delay_ms, 0);
    } else {
      reply(t);
    }
  }
}

static void tserver_accept(uv_stream_t *listener, int status) {
  ASSERT_EQ(status, 0);
  tserver_t *s = listener->data;
  tconn_t *t = calloc(1, sizeof *t);
  ASSERT(t != NULL);
  t->srv = s;
  t->handles = 2;
  uv_tcp_init(&loop, &t->tcp);
  uv_timer_init(&loop, &t->delay);
  t->tcp.data = t->delay.data = t;
  ASSERT_EQ(uv_accept(listener, (uv_stream_t *)&t->tcp), 0);
  ASSERT(s->connections < 256);
  s->conns[s->connections++] = t;
  ASSERT_EQ(uv_read_start((uv_stream_t *)&t->tcp, tserver_alloc, tserver_read), 0);
}

/* Listens on `ip`:0 ("127.0.0.1" or "::1"). */
static void tserver_start(tserver_t *s, const char *ip) {
  struct sockaddr_storage ss;
  if (strchr(ip, ':'))
    ASSERT_EQ(uv_ip6_addr(ip, 0, (struct sockaddr_in6 *)&ss), 0);
  else
    ASSERT_EQ(uv_ip4_addr(ip, 0, (struct sockaddr_in *)&ss), 0);
  ASSERT_EQ(uv_tcp_init(&loop, &s->tcp), 0);
  s->tcp.data = s;
  ASSERT_EQ(uv_tcp_bind(&s->tcp, (struct sockaddr *)&ss, 0), 0);
  ASSERT_EQ(uv_listen((uv_stream_t *)&s->tcp, 256, tserver_accept), 0);
  int len = sizeof ss;
  ASSERT_EQ(uv_tcp_getsockname(&s->tcp, (struct sockaddr *)&ss, &len), 0);
  s->port = ntohs(((struct sockaddr_in *)&ss)->sin_port); /* same place in sockaddr_in6 */
}

static void tserver_stop(tserver_t *s) {
  for (int i = 0; i < s->connections; i++)
    if (s->conns[i])
      tconn_close(s->conns[i]);
  uv_close((uv_handle_t *)&s->tcp, NULL);
}

/* ---- the client against it ---- */

typedef struct outcome {
  int calls;
  char error[256];
  int status;
  char body[256];
  char headers[512]; /* "Name: value\n" each */
  uint64_t duration_us;
  /* Run inside the callback, after recording. */
  void (*then)(struct outcome *o);
  http_client_t *client;
  tserver_t *srv;
} outcome_t;

static void on_result(void *arg, const http_client_result_t *r) {
  outcome_t *o = arg;
  o->calls++;
  snprintf(o->error, sizeof o->error, "%s", r->error ? r->error : "");
  o->status = r->status;
  snprintf(o->body, sizeof o->body, "%.*s", (int)r->body_len, r->body);
  o->headers[0] = '\0';
  for (size_t i = 0; i < r->nheaders; i++) {
    size_t n = strlen(o->headers);
    snprintf(o->headers + n, sizeof o->headers - n, "%.*s: %.*s\n", (int)r->headers[i].name_len,
             r->headers[i].name, (int)r->headers[i].value_len, r->headers[i].value);
  }
  o->duration_us = r->duration_us;
  if (o->then)
    o->then(o);
}

static http_client_t *client_new(const http_client_options_t *opts) {
  ASSERT_EQ(uv_loop_init(&loop), 0);
  http_client_t *c;
  ASSERT_EQ(http_client_new(&loop, opts, &c), 0);
  return c;
}

static http_client_call_t *get(http_client_t *c, const char *method, const char *url,
                               outcome_t *o) {
  http_client_request_t req = {.method = method, .url = url};
  http_client_call_t *call;
  int before = o->calls;
  ASSERT_EQ(http_client_request(c, &req, on_result, o, &call), 0);
  ASSERT_EQ(o->calls, before); /* never from inside http_client_request */
  return call;
}

static const char *url_to(const tserver_t *s, const char *path) {
  static char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", s->port, path);
  return url;
}

/* Frees the client and the server and checks that nothing is left open. */
static void finish(http_client_t *c, tserver_t *s) {
  http_client_free(c);
  if (s)
    tserver_stop(s);
  uv_run(&loop, UV_RUN_DEFAULT);
  ASSERT_EQ(uv_loop_close(&loop), 0);
  CHECK_LEAKS();
}

static http_client_stats_t stats(const http_client_t *c) {
  http_client_stats_t st;
  http_client_stats(c, &st);
  return st;
}

/* Checks the last request the server got; `fmt` has a %d for its port. */
static void sent_was(const tserver_t *s, const char *fmt) __attribute__((format(printf, 2, 0)));
static void sent_was(const tserver_t *s, const char *fmt) {
  char want[512];
  snprintf(want, sizeof want, fmt, s->port);
  ASSERT_STR_EQ(s->last, want);
}

#define OK_ANSWER "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

TEST(a_content_length_answer_arrives_whole) {
  http_client_t *c = client_new(NULL);
  tserver_t s = {.answers = {"HTTP/1.1 200 OK\r\nX-Case: A\r\nx-lower: b\r\nSet-Cookie: 1\r\n"
                             "Set-Cookie: 2\r\nContent-Length: 5\r\n\r\nhello"}};
  tserver_start(&s, "127.0.0.1");
  outcome_t o = {0};
  get(c, NULL, url_to(&s, "/path?q=1#frag"), &o);
  RUN_UNTIL(o.calls == 1);
  ASSERT_STR_EQ(o.error, "");
  ASSERT_EQ(o.status, 200);
  ASSERT_STR_EQ(o.body, "hello");
  ASSERT_STR_EQ(o.headers, "X-Case: A\nx-lower: b\nSet-Cookie: 1\nSet-Cookie: 2\n"
                           "Content-Length: 5\n");
  ASSERT(o.duration_us > 0);
  sent_was(&s, "GET /path?q=1 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: keep-alive\r\n\r\n");
  finish(c, &s);
}

TEST(a_request_body_and_headers_go_out_as_given) {
  http_client_t *c = client_new(NULL);
  tserver_t s = {.answers = {OK_ANSWER}};
  tserver_start(&s, "127.0.0.1");
  const http_header_t hs[] = {HDR("Content-Type", "application/json"), HDR("X-Id", "7")};
  http_client_request_t req = {.method = "post",
                               .url = url_to(&s, "/items"),
                               .headers = hs,
                               .nheaders = 2,
                               .body = "{\"a\":1}",
                               .body_len = 7,
                               .has_body = true};
  outcome_t o = {0};
  ASSERT_EQ(http_client_request(c, &req, on_result, &o, NULL), 0);
  RUN_UNTIL(o.calls == 1);
  ASSERT_STR_EQ(o.body, "ok");
  sent_was(&s, "POST /items HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
               "X-Id: 7\r\nContent-Length: 7\r\nConnection: keep-alive\r\n\r\n{\"a\":1}");
  finish(c, &s);
}

TEST(chunked_and_close_delimited_answers_arrive_whole) {
  http_client_t *c = client_new(NULL);
  tserver_t s = {.answers = {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "4\r\nchun\r\n3\r\nked\r\n0\r\n\r\n",
                             "HTTP/1.1 200 OK\r\n\r\nuntil the end"},
                 .close_after = {false, true}};
  tserver_start(&s, "127.0.0.1");
  outcome_t o = {0};
  get(c, "GET", url_to(&s, "/"), &o);
  RUN_UNTIL(o.calls == 1);
  ASSERT_STR_EQ(o.error, "");
  ASSERT_STR_EQ(o.body, "chunked");
  ASSERT_EQ(stats(c).idle, 1);
  get(c, "GET", url_to(&s, "/"), &o);
  RUN_UNTIL(o.calls == 2);
  ASSERT_STR_EQ(o.error, "");
  ASSERT_STR_EQ(o.body, "until the end");
  ASSERT_EQ(stats(c).idle, 0); /* it ended with the connection */
  ASSERT_EQ(s.connections, 1);
  finish(c, &s);
}

/* Chains requests from inside the callback, as a provision would. */
static int chain_left;
static void again(outcome_t *o) {
  if (--chain_left > 0)
    get(o->client, "GET", url_to(o->srv, "/again"), o);
}

TEST(keep_alive_connections_are_reused) {
  http_client_t *c = client_new(NULL);
  tserver_t s = {.answers = {OK_ANSWER}};
  tserver_start(&s, "127.0.0.1");
  outcome_t o = {.then = again, .client = c, .srv = &s};
  chain_left = 3;
  get(c, "GET", url_to(&s, "/"), &o);
  RUN_UNTIL(o.calls == 3);
  ASSERT_STR_EQ(o.error, "");
  ASSERT_EQ(s.requests, 3);
  ASSERT_EQ(s.connections, 1);
  http_client_stats_t st = stats(c);
  ASSERT_EQ(st.connects, 1);
  ASSERT_EQ(st.reuses, 2);
  ASSERT_EQ(st.idle, 1);
  ASSERT_EQ(st.in_flight, 0);
  /* HEAD and 304 answers end at their head: the connection stays usable. */
  s.answers[0] = "HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n";
  get(c, "head", url_to(&s, "/"), &o);
  RUN_UNTIL(o.calls == 4);
  ASSERT_EQ(o.status, 200);
  ASSERT_STR_EQ(o.body, "");
  s.answers[0] =
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n";
  get(c, "GET", url_to(&s, "/"), &o);
  RUN_UNTIL(o.calls == 5);
  ASSERT_EQ(o.status, 304);
  ASSERT_EQ(s.connections, 1);
  ASSERT_EQ(stats(c).reuses, 4);
  finish(c, &s);
}

/* The server closes after its answer without saying so; the next request
 * is sent at once from the callback, before the loop reads that close. */
static const char *second_method;
static void reuse_now(outcome_t *o) {
  if (o->calls == 1)
    get(o->client, second_method, url_to(o->srv, "/second"), o);
}

TEST(a_pooled_connection_the_server_closed_is_retried_once) {
  http_client_t *c = client_new(NULL);
  tserver_t s = {.answers = {OK_ANSWER, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond"},
                 .close_after = {true, false}};
  tserver_start(&s, "127.0.0.1");
  outcome_t o = {.then = reuse_now, .client = c, .srv = &s};
  second_method = "GET";
  get(c, "GET", url_to(&s, "/first"), &o);
  RUN_UNTIL(o.calls == 2);
  ASSERT_STR_EQ(o.error, "");
  ASSERT_STR_EQ(o.body, "second");
  http_client_stats_t st = stats(c);
  ASSERT_EQ(st.reuses, 1);
  ASSERT_EQ(st.retries, 1);
  ASSERT_EQ(st.connects, 2);
  ASSERT_EQ(s.connections, 2);
  ASSERT_EQ(s.requests, 2);
  finish(c, &s);
}

TEST(a_post_on_a_closed_pooled_connection_is_not_sent_twice) {
  http_client_t *c = client_new(NULL);
  tserver_t s = {.answers = {OK_ANSWER}, .close_after = {true}};
  tserver_start(&s, "127.0.0.1");
  outcome_t o = {.then = reuse_now, .client = c, .srv = &s};
  second_method = "POST";
  get(c, "GET", url_to(&s, "/first"), &o);
  RUN_UNTIL(o.calls == 2);
  /* The request may have reached the server: only the caller can judge. */
  ASSERT(o.error[0] != '\0');
  ASSERT_EQ(stats(c).retries, 0);
  ASSERT_EQ(s.connections, 1);
  finish(c, &s);
}

TEST(a_pooled_connection_closed_while_idle_leaves_the_pool) {
  http_client_options_t opts = {.idle_timeout_ms = 60000};
  http_client_t *c = client_new(&opts);
  tserver_t s = {.answers = {OK_ANSWER}, .close_after = {true}};
  tserver_start(&s, "127.0.0.1");
  outcome_t o = {0};
  get(c, "GET", url_to(&s, "/"), &o);
  RUN_UNTIL(o.calls == 1);
  ASSERT_EQ(stats(c).idle, 1);
  RUN_UNTIL(stats(c).idle == 0);
  get(c, "GET", url_to(&s, "/"), &o);
  RUN_UNTIL(o.calls == 2);
  ASSERT_STR_EQ(o.body, "ok");
  ASSERT_EQ(stats(c).retries, 0);
  ASSERT_EQ(stats(c).reuses, 0);
  finish(c, &s);
}

/* With room for two idle connections in all, calling a third host closes
 * the connection used least recently, and only that one. */
TEST(a_full_pool_closes_its_least_recently_used_connection) {
  http_client_options_t opts = {.idle_total = 2, .idle_timeout_ms = 60000};
  http_client_t *c = client_new(&opts);
  tserver_t s[3] = {{.answers = {OK_ANSWER}}, {.answers = {OK_ANSWER}}, {.answers = {OK_ANSWER}}};
  outcome_t o = {0};
  for (int i = 0; i < 3; i++) {
    tserver_start(&s[i], "127.0.0.1");
    get(c, "GET", url_to(&s[i], "/"), &o);
    RUN_UNTIL(o.calls == i + 1);
    ASSERT_STR_EQ(o.error, "");
  }
  RUN_UNTIL(s[0].closed == 1); /* the first host's, used least recently */
  ASSERT_EQ(stats(c).idle, 2);
  ASSERT_EQ(s[1].closed + s[2].closed, 0);
  /* The second host's is still pooled; using it makes the third the oldest. */
  get(c, "GET", url_to(&s[1], "/"), &o);
  RUN_UNTIL(o.calls == 4);
  ASSERT_EQ(stats(c).reuses, 1);
  get(c, "GET", url_to(&s[0], "/"), &o);
  RUN_UNTIL(o.calls == 5 && s[2].closed == 1);
  ASSERT_EQ(s[0].connections, 2);
  ASSERT_EQ(s[1].closed, 0);
  ASSERT_EQ(stats(c).idle, 2);
  tserver_stop(&s[1]);
  tserver_stop(&s[2]);
  finish(c, &s[0]);
}

TEST(idle_connections_close_after_the_idle_timeout) {
  http_client_options_t opts = {.idle_timeout_ms = 30};
  http_client_t *c = client_new(&opts);
  tserver_t s = {.answers = {OK_ANSWER}};
  tserver_start(&s, "127.0.0.1");
  outcome_t o = {0};
  get(c, "GET", url_to(&s, "/"), &o);
  RUN_UNTIL(o.calls == 1);
  ASSERT_EQ(stats(c).idle, 1);
  RUN_UNTIL(s.closed == 1); /* the server sees the client go */
  ASSERT_EQ(stats(c).idle, 0);
  finish(c, &s);
}

TEST(a_silent_server_times_out) {
  http_client_t *c = client_new(NULL);
  tserver_t s = {.silent = true};
  tserver_start(&s, "127.0.0.1");
  outcome_t o = {0};
  http_client_request_t req = {.url = url_to(&s, "/"), .timeout_ms = 200};
  ASSERT_EQ(http_client_request(c, &req, on_result, &o, NULL), 0);
  RUN_UNTIL(o.calls == 1);
  ASSERT_STR_EQ(o.error, "timed out after 0.2 s");
  ASSERT(o.duration_us >= 199000); /* the loop's clock counts whole milliseconds */
  ASSERT_EQ(o.status, 0);
  RUN_UNTIL(s.closed == 1); /* half an exchange is no use to anyone */
  ASSERT_EQ(stats(c).idle, 0);
  finish(c, &s);
}

TEST(a_closed_port_is_refused) {
  http_client_t *c = client_new(NULL);
  /* A port that was free a moment ago: nothing listens there. */
  tserver_t s = {0};
  tserver_start(&s, "127.0.0.1");
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/", s.port);
  uv_close((uv_handle_t *)&s.tcp, NULL);
  outcome_t o = {0};
  get(c, "GET", url, &o);
  RUN_UNTIL(o.calls == 1);
  ASSERT_STR_EQ(o.error, "connection refused");
  finish(c, NULL);
}

TEST(an_unknown_name_is_a_resolve_error) {
  http_client_t *c = client_new(NULL);
  outcome_t o = {0};
  get(c, "GET", "http://no-such-host.invalid:8080/x", &o);
  RUN_UNTIL(o.calls == 1);
  ASSERT_CONTAINS(o.error, "cannot resolve 'no-such-host.invalid': ");
  finish(c, NULL);
}

TEST(a_malformed_answer_is_an_error_and_its_connection_closes) {
  http_client_t *c = client_new(NULL);
  tserver_t s = {.answers = {"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
                             "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA", OK_ANSWER}};
  tserver_start(&s, "127.0.0.1");
  outcome_t o = {0};
  get(c, "GET", url_to(&s, "/"), &o);
  RUN_UNTIL(o.calls == 1);
  ASSERT_CONTAINS(o.error, "the answer is malformed: ");
  RUN_UNTIL(s.closed == 1);
  /* Bytes after an answer answer nothing: that connection is not reused. */
  get(c, "GET", url_to(&s, "/"), &o);
  RUN_UNTIL(o.calls == 2);
  ASSERT_STR_EQ(o.body, "ok");
  RUN_UNTIL(s.closed == 2);
  get(c, "GET", url_to(&s, "/"), &o);
  RUN_UNTIL(o.calls == 3);
  ASSERT_STR_EQ(o.body, "ok");
  ASSERT_EQ(s.connections, 3);
  finish(c, &s);
}

TEST(answers_over_the_caps_are_errors) {
  http_client_options_t opts = {.max_body = 1000, .max_head = 512};
  http_client_t *c = client_new(&opts);
  static char chunked[4096], head[4096];
  snprintf(chunked, sizeof chunked,
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3e9\r\n%01001d\r\n0\r\n\r\n", 0);
  snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nX-Big: %0600d\r\nContent-Length: 0\r\n\r\n", 0);
  tserver_t s = {.answers = {"HTTP/1.1 200 OK\r\nContent-Length: 1001\r\n\r\n", chunked, head,
                             "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"}};
  tserver_start(&s, "127.0.0.1");
  outcome_t o = {0};
  get(c, "GET", url_to(&s, "/"), &o);
  RUN_UNTIL(o.calls == 1);
  ASSERT_STR_EQ(o.error, "the answer's body is larger than 1000 bytes");
  get(c, "GET", url_to(&s, "/"), &o);
  RUN_UNTIL(o.calls == 2);
  ASSERT_STR_EQ(o.error, "the answer's body is larger than 1000 bytes");
  get(c, "GET", url_to(&s, "/"), &o);
  RUN_UNTIL(o.calls == 3);
  ASSERT_STR_EQ(o.error, "the answer's head is larger than 512 bytes");
  ASSERT_EQ(stats(c).idle, 0);
  ASSERT_EQ(s.connections, 3);
  finish(c, &s);
}

TEST(bad_requests_fail_through_the_callback) {
  http_client_t *c = client_new(NULL);
  static const struct {
    const char *method, *url, *why;
  } cases[] = {
      {"GET", "https://example.com/", "https is not supported yet"},
      {"GET", "http://u:p@127.0.0.1/", "the URL must not hold a user name or password"},
      {"GET", "http://127.0.0.1:70000/", "the URL's port must be a number from 1 to 65535"},
      {"GET", NULL, "the request has no URL"},
      {"GE T", "http://127.0.0.1/", "the method is not a valid HTTP method name"},
      {"", "http://127.0.0.1/", "the method is not a valid HTTP method name"},
  };
  outcome_t o[6] = {{0}};
  for (int i = 0; i < 6; i++)
    get(c, cases[i].method, cases[i].url, &o[i]);
  const http_header_t bad[] = {HDR("X", "a\nb")};
  http_client_request_t req = {.url = "http://127.0.0.1/", .headers = bad, .nheaders = 1};
  outcome_t oh = {0};
  ASSERT_EQ(http_client_request(c, &req, on_result, &oh, NULL), 0);
  ASSERT_EQ(oh.calls, 0);
  RUN_UNTIL(oh.calls == 1);
  for (int i = 0; i < 6; i++) {
    RUN_UNTIL(o[i].calls == 1);
    ASSERT_STR_EQ(o[i].error, cases[i].why);
  }
  ASSERT_STR_EQ(oh.error, "the header \"X\" has a value holding CR, LF or NUL");
  ASSERT_EQ(stats(c).connects, 0);
  finish(c, NULL);
}

TEST(the_loopback_policy_connects_to_loopback_addresses_only) {
  http_client_options_t opts = {.outbound = HTTP_CLIENT_OUTBOUND_LOOPBACK};
  http_client_t *c = client_new(&opts);
  tserver_t s4 = {.answers = {OK_ANSWER}}, s6 = {.answers = {OK_ANSWER}};
  tserver_start(&s4, "127.0.0.1");
  tserver_start(&s6, "::1");
  outcome_t o = {0};
  get(c, "GET", url_to(&s4, "/"), &o);
  RUN_UNTIL(o.calls == 1);
  ASSERT_STR_EQ(o.body, "ok");
  char url[64];
  snprintf(url, sizeof url, "http://[::1]:%d/", s6.port);
  get(c, "GET", url, &o);
  RUN_UNTIL(o.calls == 2);
  ASSERT_STR_EQ(o.body, "ok");
  snprintf(url, sizeof url, "http://localhost:%d/", s4.port);
  get(c, "GET", url, &o); /* a name that resolves to loopback */
  RUN_UNTIL(o.calls == 3);
  ASSERT_STR_EQ(o.error, "");
  ASSERT_EQ(stats(c).connects, 3);
  /* Refused before any packet leaves: no connection is even attempted. */
  get(c, "GET", "http://192.0.2.1/", &o);
  RUN_UNTIL(o.calls == 4);
  ASSERT_STR_EQ(o.error, "connecting to 192.0.2.1 is refused: only loopback addresses are "
                         "allowed (--outbound loopback)");
  get(c, "GET", "http://[2001:db8::1]:8080/", &o);
  RUN_UNTIL(o.calls == 5);
  ASSERT_CONTAINS(o.error, "connecting to 2001:db8::1 is refused");
  /* What counts is the address a name resolves to, not the name: this
   * one is 192.0.2.1 written as one number. */
  get(c, "GET", "http://3221225985/", &o);
  RUN_UNTIL(o.calls == 6);
  ASSERT_STR_EQ(o.error, "connecting to 192.0.2.1 (an address of '3221225985') is refused: "
                         "only loopback addresses are allowed (--outbound loopback)");
  get(c, "GET", "http://2130706433:1/", &o); /* 127.0.0.1, allowed; nothing listens on 1 */
  RUN_UNTIL(o.calls == 7);
  ASSERT_STR_EQ(o.error, "connection refused");
  ASSERT_EQ(stats(c).connects, 4);
  tserver_stop(&s6);
  finish(c, &s4);
}

TEST(outbound_off_refuses_everything) {
  http_client_options_t opts = {.outbound = HTTP_CLIENT_OUTBOUND_OFF};
  http_client_t *c = client_new(&opts);
  tserver_t s = {.answers = {OK_ANSWER}};
  tserver_start(&s, "127.0.0.1");
  outcome_t o = {0};
  get(c, "GET", url_to(&s, "/"), &o);
  RUN_UNTIL(o.calls == 1);
  ASSERT_STR_EQ(o.error, "outbound connections are turned off (--outbound off)");
  get(c, "GET", "http://localhost/", &o);
  RUN_UNTIL(o.calls == 2);
  ASSERT_STR_EQ(o.error, "outbound connections are turned off (--outbound off)");
  ASSERT_EQ(stats(c).connects, 0);
  ASSERT_EQ(s.connections, 0);
  finish(c, &s);
}

static http_client_call_t *to_cancel;
static void cancel_it(tserver_t *s) {
  (void)s;
  http_client_cancel(to_cancel);
}

TEST(a_cancelled_request_never_calls_back) {
  http_client_t *c = client_new(NULL);
  tserver_t s = {.answers = {OK_ANSWER}, .delay_ms = 100, .on_request = cancel_it};
  tserver_start(&s, "127.0.0.1");
  outcome_t o = {0}, late = {0};
  /* Mid-exchange: the server has the request, the answer is due later. */
  to_cancel = get(c, "GET", url_to(&s, "/"), &o);
  RUN_UNTIL(s.closed == 1);
  ASSERT_EQ(stats(c).in_flight, 0);
  ASSERT_EQ(stats(c).idle, 0);
  /* Before anything happened: resolving, connecting, or an error due. */
  http_client_cancel(get(c, "GET", "http://localhost:1/", &late));
  http_client_cancel(get(c, "GET", url_to(&s, "/"), &late));
  http_client_cancel(get(c, "GET", "https://x/", &late));
  s.on_request = NULL;
  get(c, "GET", url_to(&s, "/"), &o);
  RUN_UNTIL(o.calls == 1); /* a later request is unaffected */
  ASSERT_STR_EQ(o.body, "ok");
  ASSERT_EQ(late.calls, 0);
  finish(c, &s);
  ASSERT_EQ(late.calls, 0);
}

TEST(freeing_the_client_fails_requests_in_flight) {
  http_client_t *c = client_new(NULL);
  tserver_t s = {.silent = true};
  tserver_start(&s, "127.0.0.1");
  outcome_t o = {0}, r = {0}, d = {0};
  get(c, "GET", url_to(&s, "/"), &o);
  RUN_UNTIL(s.requests == 1);
  get(c, "GET", "http://localhost:1/", &r);
  get(c, "GET", "https://x/", &d);
  http_client_free(c);
  ASSERT_EQ(o.calls, 1);
  ASSERT_STR_EQ(o.error, "the client was shut down");
  ASSERT_EQ(r.calls, 1);
  ASSERT_STR_EQ(r.error, "the client was shut down");
  ASSERT_EQ(d.calls, 1);
  ASSERT_STR_EQ(d.error, "https is not supported yet");
  tserver_stop(&s);
  uv_run(&loop, UV_RUN_DEFAULT);
  ASSERT_EQ(uv_loop_close(&loop), 0);
  CHECK_LEAKS();
}

static int finished;
static void count_done(outcome_t *o) {
  ASSERT_STR_EQ(o->error, "");
  ASSERT_STR_EQ(o->body, "ok");
  finished++;
}

TEST(a_hundred_concurrent_requests_wait_together) {
  http_client_t *c = client_new(NULL);
  tserver_t s = {.answers = {OK_ANSWER}, .delay_ms = 200};
  tserver_start(&s, "127.0.0.1");
  static outcome_t o[100];
  uint64_t t0 = uv_hrtime();
  for (int i = 0; i < 100; i++) {
    o[i] = (outcome_t){.then = count_done};
    get(c, "GET", url_to(&s, "/slow"), &o[i]);
  }
  ASSERT_EQ(stats(c).in_flight, 100);
  RUN_UNTIL(finished == 100);
  /* All 100 were waiting at the server at once: none waited for another. */
  ASSERT_EQ(s.peak, 100);
  ASSERT_EQ(s.connections, 100);
  printf("# 100 requests to a 200 ms server took %.0f ms\n", (double)(uv_hrtime() - t0) / 1e6);
  ASSERT_EQ(stats(c).idle, HTTP_CLIENT_DEFAULT_IDLE_PER_PEER);
  finish(c, &s);
}

UNIT_MAIN(urls_are_parsed, bad_urls_are_refused_with_a_reason, the_policy_judges_addresses,
          requests_are_written_as_asked, header_injection_is_refused,
          answers_are_parsed_in_any_pieces, answers_without_a_body_end_at_their_head,
          bad_answers_are_refused_with_a_reason, a_content_length_answer_arrives_whole,
          a_request_body_and_headers_go_out_as_given,
          chunked_and_close_delimited_answers_arrive_whole, keep_alive_connections_are_reused,
          a_pooled_connection_the_server_closed_is_retried_once,
          a_post_on_a_closed_pooled_connection_is_not_sent_twice,
          a_pooled_connection_closed_while_idle_leaves_the_pool,
          a_full_pool_closes_its_least_recently_used_connection,
          idle_connections_close_after_the_idle_timeout, a_silent_server_times_out,
          a_closed_port_is_refused, an_unknown_name_is_a_resolve_error,
          a_malformed_answer_is_an_error_and_its_connection_closes,
          answers_over_the_caps_are_errors, bad_requests_fail_through_the_callback,
          the_loopback_policy_connects_to_loopback_addresses_only, outbound_off_refuses_everything,
          a_cancelled_request_never_calls_back, freeing_the_client_fails_requests_in_flight,
          a_hundred_concurrent_requests_wait_together)
