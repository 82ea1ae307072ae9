/* cors.c - CORS headers for answers of the traffic port. */
#include "cors.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "text.h"

void cors_init(cors_t *c) { *c = (cors_t){.max_age = CORS_MAX_AGE, .credentials = true}; }

void cors_free(cors_t *c) {
  buf_free(&c->origins);
  buf_free(&c->methods);
  buf_free(&c->headers);
  cors_init(c);
}

int cors_allow_any(cors_t *c, const char **why) {
  if (c->norigins) {
    *why = "\"*\" cannot be combined with origins";
    return -EINVAL;
  }
  c->on = c->any = true;
  return 0;
}

int cors_allow_origin(cors_t *c, const char *origin, size_t len, const char **why) {
  if (c->any) {
    *why = "\"*\" cannot be combined with origins";
    return -EINVAL;
  }
  if (!text_is_origin(origin, len)) {
    *why = "an origin is scheme://host[:port] without a path, such as http://localhost:3000";
    return -EINVAL;
  }
  if (buf_append(&c->origins, origin, len) || buf_putc(&c->origins, '\0'))
    return -ENOMEM;
  c->norigins++;
  c->on = true;
  return 0;
}

int cors_parse(cors_t *c, const char *value, const char **why) {
  cors_free(c);
  if (strcasecmp(value, "off") == 0)
    return 0;
  int rc = strcmp(value, "*") == 0 ? cors_allow_any(c, why)
                                   : cors_allow_origin(c, value, strlen(value), why);
  if (rc == -EINVAL)
    *why =
        "the value is off, * or one origin such as http://localhost:3000 (scheme://host[:port], "
        "without a path)";
  if (rc)
    cors_free(c);
  return rc;
}

static int add_to_list(buf_t *list, const char *name, size_t len) {
  if (list->len && buf_puts(list, ", "))
    return -ENOMEM;
  return buf_append(list, name, len);
}

int cors_add_method(cors_t *c, const char *name, size_t len, const char **why) {
  int m = http_method_number(name, len);
  if (m < 0) {
    *why = "not an HTTP method";
    return -EINVAL;
  }
  const char *canonical = http_method_name(m);
  return add_to_list(&c->methods, canonical, strlen(canonical));
}

int cors_add_header(cors_t *c, const char *name, size_t len, const char **why) {
  if (len == 0 || !http_is_token(name, len)) {
    *why = "not a header name";
    return -EINVAL;
  }
  return add_to_list(&c->headers, name, len);
}

bool cors_is_preflight(const http_request_t *req) {
  return req->method == HTTP_OPTIONS && http_request_header(req, "origin") != NULL &&
         http_request_header(req, "access-control-request-method") != NULL;
}

static int header(http_response_t *r, const char *name, const char *value, size_t len) {
  return http_response_header(r, name, strlen(name), value, len);
}

static int header_str(http_response_t *r, const char *name, const char *value) {
  return header(r, name, value, strlen(value));
}

/* What Access-Control-Allow-Origin says to `origin` (the request's, or
 * NULL): "*", the one configured origin, or `origin` when it is one of
 * several; NULL when none applies. */
static const char *allowed_origin(const cors_t *c, const http_header_t *origin, size_t *len) {
  if (c->any) {
    *len = 1;
    return "*";
  }
  if (c->norigins == 1) {
    *len = strlen(c->origins.data);
    return c->origins.data;
  }
  for (const char *o = c->origins.data; origin && o < c->origins.data + c->origins.len;
       o += strlen(o) + 1)
    if (strlen(o) == origin->value_len && memcmp(o, origin->value, origin->value_len) == 0) {
      *len = origin->value_len;
      return o;
    }
  return NULL;
}

/* Response headers a page's script reads without being told (the
 * CORS-safelisted ones), and the ones it never may. */
static bool exposed_anyway(const char *name, size_t n) {
  static const char *const names[] = {
      "cache-control", "content-language", "content-length", "content-type", "expires",
      "last-modified", "pragma",           "set-cookie",     "set-cookie2",  "vary",
  };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strlen(names[i]) == n && strncasecmp(names[i], name, n) == 0)
      return true;
  return n > 15 && strncasecmp(name, "access-control-", 15) == 0;
}

/* Access-Control-Expose-Headers: the answer's own header names, so that a
 * page can read Location, X-Total-Count and the like. */
static int expose_headers(http_response_t *r) {
  size_t len;
  if (http_response_header_value(r, "Access-Control-Expose-Headers", &len))
    return 0;
  buf_t names = BUF_INIT;
  int rc = 0;
  const char *p = r->headers.data, *end = p + r->headers.len;
  while (rc == 0 && p && p < end) {
    const char *colon = memchr(p, ':', (size_t)(end - p));
    const char *eol = memchr(p, '\r', (size_t)(end - p));
    if (colon == NULL || eol == NULL || colon > eol)
      break;
    size_t n = (size_t)(colon - p);
    if (!exposed_anyway(p, n))
      rc = add_to_list(&names, p, n);
    p = eol + 2;
  }
  if (rc == 0 && names.len)
    rc = header(r, "Access-Control-Expose-Headers", names.data, names.len);
  buf_free(&names);
  return rc;
}

int cors_apply(const cors_t *c, const http_request_t *req, http_response_t *resp,
               const char *allow) {
  size_t len;
  if (!c->on || http_response_header_value(resp, "Access-Control-Allow-Origin", &len))
    return 0;
  const http_header_t *origin = http_request_header(req, "origin");
  const char *value = allowed_origin(c, origin, &len);
  int rc = 0;
  if (value) {
    rc = header(resp, "Access-Control-Allow-Origin", value, len);
    if (rc == 0 && c->credentials && !c->any)
      rc = header_str(resp, "Access-Control-Allow-Credentials", "true");
  }
  /* Caches must not give one origin's answer to another. */
  if (rc == 0 && !c->any)
    rc = header_str(resp, "Vary", "Origin");
  if (rc || value == NULL)
    return rc;
  if (!cors_is_preflight(req))
    return expose_headers(resp);

  const http_header_t *method = http_request_header(req, "access-control-request-method");
  if (c->methods.len)
    rc = header(resp, "Access-Control-Allow-Methods", c->methods.data, c->methods.len);
  else if (allow)
    rc = header_str(resp, "Access-Control-Allow-Methods", allow);
  else if (http_is_token(method->value, method->value_len))
    rc = header(resp, "Access-Control-Allow-Methods", method->value, method->value_len);
  const http_header_t *asked = http_request_header(req, "access-control-request-headers");
  if (rc == 0 && c->headers.len)
    rc = header(resp, "Access-Control-Allow-Headers", c->headers.data, c->headers.len);
  else if (rc == 0 && asked && asked->value_len) {
    rc = header(resp, "Access-Control-Allow-Headers", asked->value, asked->value_len);
    if (rc == 0)
      rc = header_str(resp, "Vary", "Access-Control-Request-Headers");
  }
  if (rc == 0) {
    char age[16];
    int n = snprintf(age, sizeof age, "%d", c->max_age);
    rc = header(resp, "Access-Control-Max-Age", age, (size_t)n);
  }
  /* A value the request sent that a header cannot carry is left out. */
  return rc == -EINVAL ? 0 : rc;
}
