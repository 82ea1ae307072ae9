/* access_log.c - formatting and batching access log lines. */
#include "access_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "text.h"

#define FLUSH_AT (64 * 1024)
/* What may wait for a pipe nobody reads before lines are dropped. */
#define PENDING_MAX (1024 * 1024)

struct access_log {
  uv_check_t check; /* first: the handle pointer is the log pointer */
  enum access_log_format format;
  int fd;
  const log_t *log;
  buf_t pending;
  uint64_t dropped; /* lines a full pipe could not take */
};

static size_t count_lines(const char *p, size_t n) {
  size_t lines = 0;
  for (const char *q = p; (q = memchr(q, '\n', (size_t)(p + n - q))) != NULL; q++)
    lines++;
  return lines;
}

static void flush(access_log_t *a) {
  size_t off = 0;
  bool full = false;
  while (off < a->pending.len) {
    ssize_t n = write(a->fd, a->pending.data + off, a->pending.len - off);
    if (n < 0 && errno == EINTR)
      continue;
    full = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    if (n <= 0)
      break;
    off += (size_t)n;
  }
  size_t left = a->pending.len - off;
  if (full && left <= PENDING_MAX) {
    /* A reader that is slow: the rest waits for the next turn. */
    memmove(a->pending.data, a->pending.data + off, left);
    a->pending.len = left;
    return;
  }
  if (left) {
    /* stdout is gone, or nobody reads it: serving goes on without these. */
    if (a->dropped == 0)
      log_warn(a->log, "access log: stdout does not take lines (%s); dropping them",
               full ? "nobody reads it" : "write failed");
    a->dropped += count_lines(a->pending.data + off, left);
  }
  buf_reset(&a->pending);
  buf_shrink(&a->pending, 1 << 20);
}

/* Runs once per loop turn, after the I/O callbacks of that turn. */
static void on_check(uv_check_t *h) {
  access_log_t *a = (access_log_t *)h;
  if (a->pending.len)
    flush(a);
}

int access_log_open(uv_loop_t *loop, enum access_log_format format, int fd, const log_t *lg,
                    access_log_t **out) {
  *out = NULL;
  if (format == ACCESS_LOG_OFF)
    return 0;
  access_log_t *a = calloc(1, sizeof *a);
  if (a == NULL)
    return -ENOMEM;
  a->format = format;
  a->fd = fd;
  a->log = lg;
  /* A pipe or socket whose reader stalls must not stall the event loop
   * (docker's log pipe, `| less`): writes to it never block. Files and
   * terminals keep blocking writes, which finish. */
  struct stat st;
  if (fstat(fd, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) {
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
      fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  }
  uv_check_init(loop, &a->check);
  uv_check_start(&a->check, on_check);
  uv_unref((uv_handle_t *)&a->check); /* never what keeps the server running */
  *out = a;
  return 0;
}

void access_log_free(access_log_t *a) {
  if (a == NULL)
    return;
  flush(a);
  buf_free(&a->pending);
  free(a);
}

/* A field of the text format: one token whatever the bytes. */
static void text_field(buf_t *out, const char *s, size_t n) {
  text_escape(out, s, n, SIZE_MAX, TEXT_ESCAPE_FIELD);
}

int access_log_format(buf_t *out, enum access_log_format format, int64_t time_us,
                      const char *remote, const char *method, const char *path, size_t path_len,
                      const char *target, size_t target_len, int status, size_t bytes,
                      uint64_t duration_us, const char *endpoint, size_t endpoint_len) {
  char when[TEXT_RFC3339_LEN + 1];
  text_rfc3339_us(time_us, when);
  if (format == ACCESS_LOG_JSON) {
    buf_printf(out, "{\"time\":\"%s\",\"remote\":", when);
    text_json_string(out, remote, strlen(remote));
    buf_puts(out, ",\"method\":");
    text_json_string(out, method, strlen(method));
    buf_puts(out, ",\"path\":");
    text_json_string(out, path, path_len);
    buf_puts(out, ",\"target\":");
    text_json_string(out, target, target_len);
    buf_printf(out, ",\"status\":%d,\"bytes\":%zu,\"duration_us\":%llu,\"endpoint\":", status,
               bytes, (unsigned long long)duration_us);
    if (endpoint)
      text_json_string(out, endpoint, endpoint_len);
    else
      buf_puts(out, "null");
    return buf_puts(out, "}\n");
  }
  buf_printf(out, "%s ", when);
  text_field(out, remote, strlen(remote));
  buf_printf(out, " %s ", method);
  /* The target as received, query included, as other servers log it; a
   * valid one has nothing the escaping changes. */
  text_field(out, target, target_len);
  buf_printf(out, " %d %zu %lluus ", status, bytes, (unsigned long long)duration_us);
  if (endpoint && endpoint_len)
    text_field(out, endpoint, endpoint_len);
  else
    buf_putc(out, '-');
  return buf_putc(out, '\n');
}

void access_log_request(access_log_t *a, const char *remote, const http_request_t *req,
                        const http_response_t *resp, const origin_t *origin, int64_t time_us,
                        uint64_t duration_us) {
  if (a == NULL)
    return;
  const char *method = http_method_name(req->method);
  bool body = http_response_sends_body(resp, req->method);
  access_log_format(
      &a->pending, a->format, time_us, remote, method ? method : "?", req->path, req->path_len,
      req->target, req->target_len, resp->status, body ? resp->body.len : 0, duration_us,
      origin->matched ? origin->endpoint.data : NULL, origin->matched ? origin->endpoint.len : 0);
  if (a->pending.len >= FLUSH_AT)
    flush(a);
}
