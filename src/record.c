/* record.c - the exchanges --proxy forwards, as a provision (record.h). */
#include "record.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "safedir.h"
#include "text.h"

struct exchange {
  int method;
  int status;
  buf_t path, query;
  buf_t headers; /* "Name: value\r\n" lines, as the response holds them */
  buf_t body;
};

struct record {
  uv_loop_t *loop;
  int dfd;
  char *dir;
  char *upstream;
  const log_t *log;
  struct exchange *ex;
  size_t n, cap;
  size_t bytes;
  bool full; /* the cap was reached (and said) */
  /* One write at a time; `dirty` asks for another once it ends. The pool
   * thread reads `text`, `dfd` and `dir` and writes `rc` only. */
  uv_work_t work;
  bool writing, dirty;
  buf_t text;
  int rc;
  size_t written; /* exchanges in the file, for the log */
};

int record_open(uv_loop_t *loop, const char *dir, const char *provisions, const char *upstream,
                const log_t *lg, record_t **out, char *err, size_t errlen) {
  *out = NULL;
  if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
    int rc = -errno;
    snprintf(err, errlen, "h1mock: --record: cannot create '%s': %s", dir, strerror(errno));
    return rc;
  }
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  struct stat d, p;
  if (dfd < 0 || fstat(dfd, &d) != 0) {
    int rc = -errno;
    snprintf(err, errlen, "h1mock: --record: cannot open the directory '%s': %s", dir,
             strerror(errno));
    if (dfd >= 0)
      close(dfd);
    return rc;
  }
  if (stat(provisions, &p) == 0 && p.st_dev == d.st_dev && p.st_ino == d.st_ino) {
    snprintf(err, errlen,
             "h1mock: --record: '%s' is the provisions directory: the recording would be "
             "loaded as it is written; record into another directory and copy %s over",
             dir, RECORD_FILE);
    close(dfd);
    return -EINVAL;
  }
  record_t *r = calloc(1, sizeof *r);
  if (r == NULL || (r->dir = strdup(dir)) == NULL || (r->upstream = strdup(upstream)) == NULL) {
    if (r)
      free(r->dir);
    free(r);
    close(dfd);
    snprintf(err, errlen, "h1mock: out of memory");
    return -ENOMEM;
  }
  r->loop = loop;
  r->dfd = dfd;
  r->log = lg;
  r->work.data = r;
  *out = r;
  return 0;
}

int record_lua_string(buf_t *out, const char *s, size_t n) {
  if (buf_reserve(out, n + 2))
    return -ENOMEM;
  int rc = buf_putc(out, '"');
  for (size_t i = 0; i < n && rc == 0; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '\\' || c == '"')
      rc = buf_putc(out, '\\') || buf_putc(out, (char)c);
    else if (c == '\n')
      rc = buf_puts(out, "\\n");
    else if (c == '\r')
      rc = buf_puts(out, "\\r");
    else if (c == '\t')
      rc = buf_puts(out, "\\t");
    else if (c < 0x20 || c >= 0x7f)
      rc = buf_printf(out, "\\%03u", c); /* three digits: a digit after it stays a digit */
    else
      rc = buf_putc(out, (char)c);
  }
  return rc || buf_putc(out, '"') ? -ENOMEM : 0;
}

static bool same(const buf_t *a, const buf_t *b) {
  return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/* Appends the headers of e as {{"Name", "value"}, ...}, without Date (the
 * replay sends its own). */
static int headers_lua(buf_t *out, const struct exchange *e) {
  int rc = buf_putc(out, '{');
  const char *p = e->headers.data, *end = p + e->headers.len;
  bool first = true;
  while (rc == 0 && p < end) {
    const char *colon = memchr(p, ':', (size_t)(end - p));
    const char *eol = memchr(p, '\r', (size_t)(end - p));
    if (colon == NULL || eol == NULL || colon > eol)
      break;
    if (!http_name_is(p, (size_t)(colon - p), "date")) {
      rc = buf_puts(out, first ? "{" : ", {") || record_lua_string(out, p, (size_t)(colon - p)) ||
           buf_puts(out, ", ") || record_lua_string(out, colon + 2, (size_t)(eol - colon - 2)) ||
           buf_putc(out, '}');
      first = false;
    }
    p = eol + 2;
  }
  return rc || buf_putc(out, '}') ? -ENOMEM : 0;
}

static const char replay_lua[] =
    "\n"
    "-- The answers of one rule, chosen by query string (a rule recorded with one\n"
    "-- query answers any), in the recorded order, then the last one again.\n"
    "local function replay(rule)\n"
    "  local queries, only = 0, nil\n"
    "  for q in pairs(rule.answers) do queries, only = queries + 1, q end\n"
    "  local served = {}\n"
    "  return function(req)\n"
    "    local q = req.query_string\n"
    "    if rule.answers[q] == nil and queries == 1 then q = only end\n"
    "    local list = rule.answers[q]\n"
    "    if list == nil then\n"
    "      return \"no answer was recorded for \" .. rule.method .. \" \" .. rule.path ..\n"
    "             \"?\" .. q .. \"\\n\", 404, {[\"Content-Type\"] = \"text/plain\"}\n"
    "    end\n"
    "    local n = (served[q] or 0) + 1\n"
    "    served[q] = n\n"
    "    local a = list[math.min(n, #list)]\n"
    "    return a.body, a.status, a.headers\n"
    "  end\n"
    "end\n"
    "\n"
    "function registerRules()\n"
    "  for _, rule in ipairs(recorded) do\n"
    "    local ok, err = pcall(app.add_url_rule, rule.path, rule.method .. \" \" .. rule.path,\n"
    "                          replay(rule), {rule.method})\n"
    "    if not ok then log.warning(\"recorded.lua: %s %s is not served: %s\", rule.method,\n"
    "                               rule.path, err) end\n"
    "  end\n"
    "end\n";

int record_text(const record_t *r, buf_t *out) {
  char when[TEXT_RFC3339_LEN + 1];
  text_rfc3339_us(text_now_us(), when);
  buf_printf(out,
             "-- %s: written by h1mock --record, %zu exchange%s with the upstream,\n"
             "-- written at %s. One rule per method and path; serve it as a\n"
             "-- provision (copy it to the provisions directory, or POST it to\n"
             "-- /app/v1/provision/recorded) to answer them without the upstream.\n"
             "-- upstream: ",
             RECORD_FILE, r->n, r->n == 1 ? "" : "s", when);
  /* The URL is the operator's, but a literal keeps any byte of it inert. */
  record_lua_string(out, r->upstream, strlen(r->upstream));
  buf_puts(out, "\n\nlocal recorded = {\n");
  bool *done = calloc(r->n ? r->n : 1, sizeof *done);
  if (done == NULL)
    return -ENOMEM;
  int rc = 0;
  /* Rules in the order their first exchange came; within one, queries
   * likewise, each with its answers in order. */
  for (size_t i = 0; i < r->n && rc == 0; i++) {
    const struct exchange *e = &r->ex[i];
    if (done[i])
      continue;
    const char *m = http_method_name(e->method);
    buf_puts(out, "  {method = ");
    record_lua_string(out, m, strlen(m));
    buf_puts(out, ", path = ");
    record_lua_string(out, e->path.data, e->path.len);
    buf_puts(out, ", answers = {\n");
    for (size_t j = i; j < r->n; j++) {
      const struct exchange *q = &r->ex[j];
      if (done[j] || q->method != e->method || !same(&q->path, &e->path))
        continue;
      buf_puts(out, "    [");
      record_lua_string(out, q->query.data, q->query.len);
      buf_puts(out, "] = {\n");
      for (size_t k = j; k < r->n; k++) {
        const struct exchange *a = &r->ex[k];
        if (done[k] || a->method != e->method || !same(&a->path, &e->path) ||
            !same(&a->query, &q->query))
          continue;
        done[k] = true;
        buf_printf(out, "      {status = %d, headers = ", a->status);
        headers_lua(out, a);
        buf_puts(out, ",\n       body = ");
        record_lua_string(out, a->body.data, a->body.len);
        rc = buf_puts(out, "},\n");
      }
      buf_puts(out, "    },\n");
    }
    rc = buf_puts(out, "  }},\n");
  }
  free(done);
  if (rc == 0)
    rc = buf_puts(out, "}\n");
  return rc || buf_append(out, replay_lua, sizeof replay_lua - 1) ? -ENOMEM : 0;
}

static void write_file(uv_work_t *w) {
  record_t *r = w->data;
  r->rc = safedir_replace(r->dfd, r->dir, RECORD_FILE, r->text.data ? r->text.data : "",
                          r->text.len, r->log);
}

static void start_write(record_t *r);

static void written(uv_work_t *w, int status) {
  record_t *r = w->data;
  r->writing = false;
  if (status < 0 && r->rc == 0)
    r->rc = status;
  if (r->rc)
    log_error(r->log, "--record: cannot write %s/%s: %s", r->dir, RECORD_FILE, strerror(-r->rc));
  else if (r->written == 0)
    log_info(r->log, "--record: recording into %s/%s", r->dir, RECORD_FILE);
  if (r->rc == 0)
    r->written = r->n;
  buf_shrink(&r->text, 64 * 1024);
  if (r->dirty)
    start_write(r);
}

static void start_write(record_t *r) {
  r->dirty = false;
  buf_reset(&r->text);
  if (record_text(r, &r->text)) {
    log_error(r->log, "--record: out of memory while writing %s", RECORD_FILE);
    return;
  }
  r->rc = 0;
  if (uv_queue_work(r->loop, &r->work, write_file, written) == 0)
    r->writing = true;
}

static void exchange_free(struct exchange *e) {
  buf_free(&e->path);
  buf_free(&e->query);
  buf_free(&e->headers);
  buf_free(&e->body);
}

void record_exchange(record_t *r, const http_request_t *req, const http_response_t *resp) {
  if (r == NULL || req->method == HTTP_HEAD || req->method == HTTP_OPTIONS ||
      http_method_name(req->method) == NULL)
    return;
  if (memchr(req->path, '<', req->path_len) || memchr(req->path, '>', req->path_len)) {
    log_debug(r->log, "--record: a path with '<' or '>' cannot be a rule: not recorded");
    return;
  }
  size_t size = req->path_len + req->query_len + resp->headers.len + resp->body.len;
  if (r->n >= RECORD_MAX_EXCHANGES || size > RECORD_MAX_BYTES - r->bytes) {
    if (!r->full)
      log_warn(r->log,
               "--record: %s/%s holds %zu exchanges (%zu bytes), the most it takes (%d "
               "exchanges, %u bytes): later ones are forwarded but not recorded",
               r->dir, RECORD_FILE, r->n, r->bytes, RECORD_MAX_EXCHANGES, RECORD_MAX_BYTES);
    r->full = true;
    return;
  }
  if (r->n == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 16;
    struct exchange *v = realloc(r->ex, cap * sizeof *v);
    if (v == NULL)
      return;
    r->ex = v;
    r->cap = cap;
  }
  struct exchange *e = &r->ex[r->n];
  *e = (struct exchange){.method = req->method, .status = resp->status};
  if (buf_append(&e->path, req->path, req->path_len) ||
      buf_append(&e->query, req->query, req->query_len) ||
      buf_append(&e->headers, resp->headers.data, resp->headers.len) ||
      buf_append(&e->body, resp->body.data, resp->body.len)) {
    exchange_free(e);
    log_error(r->log, "--record: out of memory: an exchange was not recorded");
    return;
  }
  r->n++;
  r->bytes += size;
  if (r->loop == NULL)
    return;
  if (r->writing)
    r->dirty = true;
  else
    start_write(r);
}

size_t record_count(const record_t *r) { return r ? r->n : 0; }

void record_free(record_t *r) {
  if (r == NULL)
    return;
  for (size_t i = 0; i < r->n; i++)
    exchange_free(&r->ex[i]);
  free(r->ex);
  buf_free(&r->text);
  close(r->dfd);
  free(r->dir);
  free(r->upstream);
  free(r);
}
