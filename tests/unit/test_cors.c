/* test_cors.c - the CORS settings and the headers they add to an answer. */
#include <errno.h>
#include <string.h>

#include "../../src/cors.h"
#include "../../src/text.h"
#include "unit.h"

/* A request of `method` with up to three headers ("Name: value"); each
 * request has headers of its own, for the few a test makes. */
static http_request_t request(int method, const char *h1, const char *h2, const char *h3) {
  static http_header_t pool[16][3];
  static size_t used;
  http_header_t *hs = pool[used++ % 16];
  const char *lines[3] = {h1, h2, h3};
  size_t n = 0;
  for (size_t i = 0; i < 3 && lines[i]; i++, n++) {
    const char *colon = strchr(lines[i], ':');
    hs[n] = (http_header_t){lines[i], (size_t)(colon - lines[i]), colon + 2, strlen(colon + 2)};
  }
  return (http_request_t){
      .method = method, .path = "/x", .path_len = 2, .headers = hs, .nheaders = n};
}

/* The headers cors_apply adds to an answer that has `before`. */
static const char *applied(const cors_t *c, const http_request_t *req, const char *allow,
                           const char *before) {
  static char out[1024];
  http_response_t r = {0};
  r.status = 200;
  buf_puts(&r.headers, before);
  ASSERT_EQ(cors_apply(c, req, &r, allow), 0);
  snprintf(out, sizeof out, "%.*s", (int)(r.headers.len - strlen(before)),
           r.headers.data ? r.headers.data + strlen(before) : "");
  http_response_free(&r);
  return out;
}

TEST(origins_are_scheme_host_port_without_a_path) {
  ASSERT(text_is_origin("http://localhost:3000", 21));
  ASSERT(text_is_origin("https://app.example.com", 23));
  ASSERT(text_is_origin("http://127.0.0.1:8080", 21));
  ASSERT(text_is_origin("http://[::1]:5173", 17));
  ASSERT(text_is_origin("null", 4));
  ASSERT(!text_is_origin("http://localhost:3000/", 22));
  ASSERT(!text_is_origin("localhost:3000", 14));
  ASSERT(!text_is_origin("http://", 7));
  ASSERT(!text_is_origin("http://a b", 10));
  ASSERT(!text_is_origin("http://a:", 9));
  ASSERT(!text_is_origin("http://a:123456", 15));
  ASSERT(!text_is_origin("http://[::1", 11));
  ASSERT(!text_is_origin("http://[]", 9));
  ASSERT(!text_is_origin("*", 1));
  ASSERT(!text_is_origin("", 0));
}

TEST(parse_the_option) {
  cors_t c;
  const char *why = NULL;
  cors_init(&c);
  ASSERT_EQ(cors_parse(&c, "off", &why), 0);
  ASSERT(!c.on);
  ASSERT_EQ(cors_parse(&c, "*", &why), 0);
  ASSERT(c.on && c.any);
  ASSERT_EQ(cors_parse(&c, "http://localhost:3000", &why), 0);
  ASSERT(c.on && !c.any);
  ASSERT_EQ(c.norigins, 1);
  ASSERT_EQ(cors_parse(&c, "http://localhost:3000/app", &why), -EINVAL);
  ASSERT(!c.on);
  ASSERT_CONTAINS(why, "off, * or one origin");
  /* "*" and origins do not mix */
  ASSERT_EQ(cors_parse(&c, "*", &why), 0);
  ASSERT_EQ(cors_allow_origin(&c, "http://a", 8, &why), -EINVAL);
  ASSERT_EQ(cors_parse(&c, "http://a", &why), 0);
  ASSERT_EQ(cors_allow_any(&c, &why), -EINVAL);
  ASSERT_EQ(cors_add_method(&c, "FETCH", 5, &why), -EINVAL);
  ASSERT_EQ(cors_add_header(&c, "a b", 3, &why), -EINVAL);
  cors_free(&c);
}

TEST(any_origin) {
  cors_t c;
  const char *why;
  cors_init(&c);
  ASSERT_EQ(cors_allow_any(&c, &why), 0);
  http_request_t get = request(HTTP_GET, "Origin: http://a.test", NULL, NULL);
  /* every answer, exposing its own headers but the safelisted ones */
  ASSERT_STR_EQ(applied(&c, &get, NULL, "Content-Type: text/plain\r\nLocation: /x\r\n"),
                "Access-Control-Allow-Origin: *\r\nAccess-Control-Expose-Headers: Location\r\n");
  http_request_t plain = request(HTTP_GET, NULL, NULL, NULL);
  ASSERT_STR_EQ(applied(&c, &plain, NULL, ""), "Access-Control-Allow-Origin: *\r\n");
  /* a preflight: the path's methods, the headers asked for, the age */
  http_request_t pre =
      request(HTTP_OPTIONS, "Origin: http://a.test", "Access-Control-Request-Method: PUT",
              "Access-Control-Request-Headers: content-type, x-token");
  ASSERT(cors_is_preflight(&pre));
  ASSERT_STR_EQ(applied(&c, &pre, "GET, HEAD, OPTIONS, PUT", ""),
                "Access-Control-Allow-Origin: *\r\n"
                "Access-Control-Allow-Methods: GET, HEAD, OPTIONS, PUT\r\n"
                "Access-Control-Allow-Headers: content-type, x-token\r\n"
                "Vary: Access-Control-Request-Headers\r\n"
                "Access-Control-Max-Age: 600\r\n");
  /* no rule for the path: the method asked for */
  ASSERT_CONTAINS(applied(&c, &pre, NULL, ""), "Access-Control-Allow-Methods: PUT\r\n");
  /* OPTIONS without Access-Control-Request-Method is no preflight */
  http_request_t opt = request(HTTP_OPTIONS, "Origin: http://a.test", NULL, NULL);
  ASSERT(!cors_is_preflight(&opt));
  /* what a view or a hook set wins: nothing is added */
  ASSERT_STR_EQ(applied(&c, &get, NULL, "access-control-allow-origin: http://b\r\n"), "");
  cors_free(&c);
}

TEST(configured_origins) {
  cors_t c;
  const char *why;
  cors_init(&c);
  ASSERT_EQ(cors_allow_origin(&c, "http://a.test", 13, &why), 0);
  http_request_t from_a = request(HTTP_GET, "Origin: http://a.test", NULL, NULL);
  http_request_t from_b = request(HTTP_GET, "Origin: http://b.test", NULL, NULL);
  const char *one = "Access-Control-Allow-Origin: http://a.test\r\n"
                    "Access-Control-Allow-Credentials: true\r\nVary: Origin\r\n";
  /* one origin: named on every answer, the browser compares */
  ASSERT_STR_EQ(applied(&c, &from_a, NULL, ""), one);
  ASSERT_STR_EQ(applied(&c, &from_b, NULL, ""), one);
  /* several: the request's when it is one of them, else none */
  ASSERT_EQ(cors_allow_origin(&c, "http://c.test:8080", 18, &why), 0);
  ASSERT_STR_EQ(applied(&c, &from_a, NULL, ""), one);
  ASSERT_STR_EQ(applied(&c, &from_b, NULL, ""), "Vary: Origin\r\n");
  /* methods and headers set replace what the request or the path says */
  ASSERT_EQ(cors_add_method(&c, "post", 4, &why), 0);
  ASSERT_EQ(cors_add_method(&c, "DELETE", 6, &why), 0);
  ASSERT_EQ(cors_add_header(&c, "Authorization", 13, &why), 0);
  c.credentials = false;
  c.max_age = 5;
  http_request_t pre =
      request(HTTP_OPTIONS, "Origin: http://c.test:8080", "Access-Control-Request-Method: DELETE",
              "Access-Control-Request-Headers: x-other");
  ASSERT_STR_EQ(applied(&c, &pre, "GET, HEAD, OPTIONS", ""),
                "Access-Control-Allow-Origin: http://c.test:8080\r\nVary: Origin\r\n"
                "Access-Control-Allow-Methods: POST, DELETE\r\n"
                "Access-Control-Allow-Headers: Authorization\r\n"
                "Access-Control-Max-Age: 5\r\n");
  cors_free(&c);
  /* off: nothing */
  ASSERT_STR_EQ(applied(&c, &from_a, NULL, ""), "");
}

UNIT_MAIN(origins_are_scheme_host_port_without_a_path, parse_the_option, any_origin,
          configured_origins)
