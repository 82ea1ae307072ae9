/* http_response.c - answers without I/O: serializing a response (status
 * line, the view's validated headers, the framing the server owns), and
 * the names both directions share (methods, tokens, reasons, the date). */
#include "http.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <llhttp.h>

/* llhttp_method_name() aborts on a number it does not know: keep our own. */
static const char *const method_names[64] = {
#define METHOD_NAME(num, name, string) [num] = #string,
    HTTP_ALL_METHOD_MAP(METHOD_NAME)
#undef METHOD_NAME
};

bool http_name_is(const char *name, size_t n, const char *want) {
  return strlen(want) == n && strncasecmp(name, want, n) == 0;
}

const char *http_method_name(int method) {
  return method < 0 || method > 63 ? NULL : method_names[method];
}

int http_method_number(const char *name, size_t len) {
  for (int m = 0; m < 64; m++)
    if (method_names[m] && strlen(method_names[m]) == len &&
        strncasecmp(method_names[m], name, len) == 0)
      return m;
  return -1;
}

const char *http_reason(int status) {
  switch (status) {
  case 100: return "Continue";
  case 101: return "Switching Protocols";
  case 200: return "OK";
  case 201: return "Created";
  case 202: return "Accepted";
  case 203: return "Non-Authoritative Information";
  case 204: return "No Content";
  case 205: return "Reset Content";
  case 206: return "Partial Content";
  case 300: return "Multiple Choices";
  case 301: return "Moved Permanently";
  case 302: return "Found";
  case 303: return "See Other";
  case 304: return "Not Modified";
  case 307: return "Temporary Redirect";
  case 308: return "Permanent Redirect";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 402: return "Payment Required";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 406: return "Not Acceptable";
  case 407: return "Proxy Authentication Required";
  case 408: return "Request Timeout";
  case 409: return "Conflict";
  case 410: return "Gone";
  case 411: return "Length Required";
  case 412: return "Precondition Failed";
  case 413: return "Content Too Large";
  case 414: return "URI Too Long";
  case 415: return "Unsupported Media Type";
  case 416: return "Range Not Satisfiable";
  case 417: return "Expectation Failed";
  case 418: return "I'm a teapot";
  case 421: return "Misdirected Request";
  case 422: return "Unprocessable Content";
  case 423: return "Locked";
  case 424: return "Failed Dependency";
  case 425: return "Too Early";
  case 426: return "Upgrade Required";
  case 428: return "Precondition Required";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 451: return "Unavailable For Legal Reasons";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  case 505: return "HTTP Version Not Supported";
  case 507: return "Insufficient Storage";
  case 508: return "Loop Detected";
  case 511: return "Network Authentication Required";
  default: return "Unknown";
  }
}

static _Thread_local char date_now[40];

void http_date_update(void) {
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(date_now, sizeof date_now, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

const char *http_date(void) {
  if (date_now[0] == '\0')
    http_date_update();
  return date_now;
}

static void close_stream(http_response_t *r) {
  if (r->stream)
    r->stream->close(r->stream, false);
  r->stream = NULL;
}

void http_response_reset(http_response_t *r) {
  close_stream(r);
  r->status = 200;
  buf_reset(&r->reason);
  buf_reset(&r->headers);
  buf_reset(&r->body);
  buf_shrink(&r->body, 256 * 1024);
  r->has_content_type = r->has_server = r->has_date = false;
  r->fault = HTTP_FAULT_NONE;
  r->dribble_chunks = r->dribble_ms = 0;
}

static const char *const fault_names[] = {NULL, "reset", "empty", "random", "malformed_chunk"};

const char *http_fault_name(int fault) {
  return fault > 0 && fault < (int)(sizeof fault_names / sizeof fault_names[0])
             ? fault_names[fault]
             : NULL;
}

int http_fault_number(const char *name, size_t n) {
  for (int i = 1; i < (int)(sizeof fault_names / sizeof fault_names[0]); i++)
    if (strlen(fault_names[i]) == n && memcmp(fault_names[i], name, n) == 0)
      return i;
  return HTTP_FAULT_NONE;
}

void http_response_free(http_response_t *r) {
  close_stream(r);
  buf_free(&r->reason);
  buf_free(&r->headers);
  buf_free(&r->body);
}

static bool is_tchar(unsigned char c) {
  /* RFC 9110 5.6.2 token characters, one bit per byte below 128. */
  static const uint32_t tchar[4] = {0x00000000, 0x03ff6cfa, 0xc7fffffe, 0x57ffffff};
  return c < 128 && (tchar[c >> 5] >> (c & 31) & 1);
}

bool http_is_token(const char *s, size_t n) {
  if (n == 0)
    return false;
  for (size_t i = 0; i < n; i++)
    if (!is_tchar((unsigned char)s[i]))
      return false;
  return true;
}

int http_response_header(http_response_t *r, const char *name, size_t nlen, const char *value,
                         size_t vlen) {
  if (!http_is_token(name, nlen))
    return -EINVAL;
  for (size_t i = 0; i < vlen; i++)
    if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0')
      return -EINVAL;
  if (http_name_is(name, nlen, "content-length") ||
      http_name_is(name, nlen, "transfer-encoding") || http_name_is(name, nlen, "connection"))
    return 0;
  if (http_name_is(name, nlen, "content-type"))
    r->has_content_type = true;
  else if (http_name_is(name, nlen, "server"))
    r->has_server = true;
  else if (http_name_is(name, nlen, "date"))
    r->has_date = true;
  if (buf_reserve(&r->headers, nlen + vlen + 4))
    return -ENOMEM;
  buf_append(&r->headers, name, nlen);
  buf_append(&r->headers, ": ", 2);
  buf_append(&r->headers, value, vlen);
  buf_append(&r->headers, "\r\n", 2);
  return 0;
}

bool http_mimetype_is_json(const char *ct, size_t n) {
  size_t m = 0;
  while (m < n && ct[m] != ';' && ct[m] != ' ')
    m++;
  if (m == 16 && strncasecmp(ct, "application/json", 16) == 0)
    return true;
  return m > 5 && strncasecmp(ct + m - 5, "+json", 5) == 0;
}

const char *http_response_header_value(const http_response_t *r, const char *name, size_t *len) {
  size_t n = strlen(name);
  const char *p = r->headers.data, *end = p + r->headers.len;
  while (p && p < end) {
    const char *eol = memchr(p, '\r', (size_t)(end - p));
    if (eol == NULL)
      break;
    if ((size_t)(eol - p) > n && p[n] == ':' && strncasecmp(p, name, n) == 0) {
      *len = (size_t)(eol - p - n - 2);
      return p + n + 2;
    }
    p = eol + 2;
  }
  return NULL;
}

int http_response_simple(http_response_t *r, int status, const char *content_type,
                         const char *body, size_t len) {
  http_response_reset(r);
  r->status = status;
  if (content_type &&
      http_response_header(r, "Content-Type", 12, content_type, strlen(content_type)))
    return -ENOMEM;
  return buf_append(&r->body, body, len);
}

bool http_status_has_body(int status) { return !(status < 200 || status == 204 || status == 304); }

bool http_response_sends_body(const http_response_t *r, int req_method) {
  return http_status_has_body(r->status) && req_method != HTTP_HEAD;
}

int http_response_write(const http_response_t *r, int req_method, bool keep_alive, bool http10,
                        buf_t *out) {
  /* Three digits by construction (views give 200-999, the server its own),
   * and an HTTP/1.0 stream ends with the connection. */
  assert(r->status >= 100 && r->status <= 999);
  assert(!(r->stream && http10 && keep_alive));
  bool with_body = http_status_has_body(r->status);
  bool send_body = http_response_sends_body(r, req_method) && r->stream == NULL;
  const char *reason = r->reason.len ? NULL : http_reason(r->status);
  size_t need = 160 + r->headers.len + r->reason.len + (send_body ? r->body.len : 0);
  if (buf_reserve(out, need))
    return -ENOMEM;
  /* No printf on the hot path: the status is three digits by construction. */
  char code[5] = {(char)('0' + r->status / 100 % 10), (char)('0' + r->status / 10 % 10),
                  (char)('0' + r->status % 10), ' ', '\0'};
  buf_append(out, "HTTP/1.1 ", 9);
  buf_append(out, code, 4);
  if (reason)
    buf_puts(out, reason);
  else
    buf_append(out, r->reason.data, r->reason.len);
  buf_append(out, "\r\n", 2);
  if (!r->has_server)
    buf_puts(out, "Server: h1mock/" H1MOCK_VERSION "\r\n");
  if (!r->has_date) {
    buf_puts(out, "Date: ");
    buf_puts(out, http_date());
    buf_puts(out, "\r\n");
  }
  buf_append(out, r->headers.data, r->headers.len);
  if (with_body && r->stream) {
    if (!http10)
      buf_puts(out, "Transfer-Encoding: chunked\r\n");
  } else if (with_body) {
    char digits[24];
    size_t n = sizeof digits, v = r->body.len;
    do
      digits[--n] = (char)('0' + v % 10);
    while ((v /= 10) > 0);
    buf_append(out, "Content-Length: ", 16);
    buf_append(out, digits + n, sizeof digits - n);
    buf_append(out, "\r\n", 2);
  }
  if (!keep_alive)
    buf_puts(out, "Connection: close\r\n");
  else if (http10)
    buf_puts(out, "Connection: keep-alive\r\n");
  buf_puts(out, "\r\n");
  if (send_body)
    buf_append(out, r->body.data, r->body.len);
  return 0;
}
