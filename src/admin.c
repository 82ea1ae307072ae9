/* admin.c - the admin API: health, the provisions (list, post,
 * re-activate, delete), the store, the request journal and the metrics.
 * Answers are JSON, compatible with the mock h1mock replaces:
 * {"result":"success: ..."} / {"result":"failed: ..."}. */
#include "admin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "journal.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "provision.h"
#include "script.h"
#include "seed.h"
#include "store.h"

#define PROVISION_PATH "/app/v1/provision"
#define STORE_PATH "/app/v1/store"
#define REQUESTS_PATH "/app/v1/requests"
#define OPENAPI_PATH "/app/v1/openapi.yaml"
#define EXPORT_PIECE (64 * 1024) /* journal JSON formatted per turn of the loop */

/* src/admin_openapi.yaml, embedded at build time (src/embed_file.py). */
extern const char admin_openapi_yaml[];
extern const size_t admin_openapi_yaml_len;

struct admin {
  admin_opts_t o;
  size_t token_len;
  bool told_of_refusal; /* a refused peer was logged: once is enough */
};

admin_t *admin_new(const admin_opts_t *o) {
  admin_t *a = calloc(1, sizeof *a);
  if (a == NULL)
    return NULL;
  a->o = *o;
  a->token_len = o->token ? strlen(o->token) : 0;
  return a;
}

void admin_free(admin_t *a) { free(a); }

static void json_answer(http_response_t *resp, int status, const char *body, size_t len) {
  http_response_simple(resp, status, "application/json", body, len);
}

static void result_answer(http_response_t *resp, int status, const char *message) {
  buf_t body = BUF_INIT;
  buf_puts(&body, "{\"result\":");
  json_string(&body, message, strlen(message)); /* may quote what a client sent */
  buf_puts(&body, "}\n");
  json_answer(resp, status, body.data, body.len);
  buf_free(&body);
}

static void method_not_allowed(http_response_t *resp, const char *allow) {
  char msg[128];
  snprintf(msg, sizeof msg, "failed: this path answers %s", allow);
  result_answer(resp, 405, msg);
  http_response_header(resp, "Allow", 5, allow, strlen(allow));
}

static bool path_is(const http_request_t *req, const char *path) {
  return req->path_len == strlen(path) && memcmp(req->path, path, req->path_len) == 0;
}

/* A call answered later: a provision being stored or activated (`job`),
 * or a store change waiting until it is durable (`durable`). */
struct admin_wait {
  store_waiter_t durable; /* first */
  admin_t *a;
  http_response_t *resp;
  conn_done_fn done;
  void *data;
  void *job;
  void (*abandon)(void *job);
  int status; /* the store change's answer when durable */
  char message[600];
};

static struct admin_wait *wait_new(admin_t *a, http_response_t *resp, conn_done_fn done,
                                   void *data) {
  struct admin_wait *w = calloc(1, sizeof *w);
  if (w == NULL) {
    result_answer(resp, 500, "failed: out of memory");
    return NULL;
  }
  w->a = a;
  w->resp = resp;
  w->done = done;
  w->data = data;
  return w;
}

static void provision_finished(void *arg, const provision_result_t *res) {
  struct admin_wait *w = arg;
  result_answer(w->resp, res->status, res->message);
  w->done(w->data);
  free(w);
}

/* A store call's answer, said only once its change is durable; a failed
 * commit undid it. */
static void store_answer(http_response_t *resp, int status, const char *message, int rc) {
  if (rc == 0) {
    result_answer(resp, status, message);
    return;
  }
  char msg[300];
  snprintf(msg, sizeof msg, "failed: the store could not make the change durable (%s): undone",
           strerror(-rc));
  result_answer(resp, 503, msg);
}

static void store_durable(store_waiter_t *d, int rc) {
  struct admin_wait *w = (struct admin_wait *)d;
  store_answer(w->resp, w->status, w->message, rc);
  w->done(w->data);
  free(w);
}

void admin_abandon(void *pending) {
  struct admin_wait *w = pending;
  if (w->abandon)
    w->abandon(w->job);
  else
    store_waiter_cancel(w->a->o.store, &w->durable);
  free(w);
}

static enum conn_status provision_call(admin_t *a, const http_request_t *req,
                                       http_response_t *resp, conn_done_fn done, void *data,
                                       void **pending) {
  const char *given = req->path + sizeof PROVISION_PATH;
  size_t len = req->path_len - sizeof PROVISION_PATH;
  char name[PROVISION_NAME_MAX + 1];
  if (provision_name(given, len, name)) {
    buf_t msg = BUF_INIT;
    buf_printf(&msg,
               "failed: invalid provision name '%.*s': use 1 to 128 letters, digits, "
               "'.', '_' or '-'",
               (int)(len > 200 ? 200 : len), given);
    buf_putc(&msg, '\0');
    result_answer(resp, 400, msg.data);
    buf_free(&msg);
    return CONN_DONE;
  }
  provision_result_t res;
  struct admin_wait *w = NULL;
  switch (req->method) {
  case HTTP_POST:
  case HTTP_GET:
  case HTTP_HEAD:
    if ((w = wait_new(a, resp, done, data)) == NULL)
      return CONN_DONE;
    if (req->method == HTTP_POST) {
      w->job = provision_post(a->o.provision, name, req->body, req->body_len, &res,
                              provision_finished, w);
      w->abandon = provision_post_abandon;
    } else {
      w->job = provision_activate(a->o.provision, name, &res, provision_finished, w);
      w->abandon = provision_abandon;
    }
    if (w->job) {
      *pending = w;
      return CONN_PENDING;
    }
    free(w);
    break;
  case HTTP_DELETE: provision_delete(a->o.provision, name, &res); break;
  default: method_not_allowed(resp, "DELETE, GET, HEAD, POST"); return CONN_DONE;
  }
  result_answer(resp, res.status, res.message);
  return CONN_DONE;
}

static int list_collection(void *arg, const char *name, size_t len, size_t count) {
  buf_t *b = arg;
  buf_puts(b, b->data[b->len - 1] == '[' ? "{\"name\":" : ",{\"name\":");
  json_string(b, name, len);
  return buf_printf(b, ",\"count\":%zu}", count);
}

static int list_document(void *arg, const char *id, size_t idlen, const void *val, size_t vlen) {
  (void)id, (void)idlen;
  buf_t *b = arg;
  if (b->data[b->len - 1] != '[')
    buf_putc(b, ',');
  return buf_append(b, val, vlen); /* documents are stored as JSON text */
}

/* Answers a store change (status, message) once it is durable: at once, or
 * later through a wait (CONN_PENDING). */
static enum conn_status when_durable(admin_t *a, http_response_t *resp, int status,
                                     const char *message, conn_done_fn done, void *data,
                                     void **pending) {
  struct admin_wait *w = wait_new(a, resp, done, data);
  if (w == NULL)
    return CONN_DONE;
  w->status = status;
  snprintf(w->message, sizeof w->message, "%s", message);
  int rc = store_when_durable(a->o.store, store_seq(a->o.store), &w->durable, store_durable);
  if (rc == 1) {
    *pending = w;
    return CONN_PENDING;
  }
  store_answer(resp, status, message, rc);
  free(w);
  return CONN_DONE;
}

/* What a store change that was refused answers: 503 when the store refuses
 * writes (a full or failed disk), 500 otherwise. */
static int refused_status(int rc) { return rc == -ENOSPC || rc == -EIO ? 503 : 500; }

/* Where seeding puts its documents: one collection of the store. */
struct seed_target {
  store_t *store;
  const char *coll;
  size_t clen;
};

static int seed_put(void *ud, const char *id, size_t idlen, const char *doc, size_t len) {
  struct seed_target *t = ud;
  return store_put(t->store, t->coll, t->clen, id, idlen, doc, len);
}

static void seed_new_id(void *ud, char id[37]) {
  (void)ud;
  store_uuid(id);
}

/* /app/v1/store[/<collection>]: look at, seed and reset the store between
 * CI tests. Changes are answered once they are durable. */
static enum conn_status store_call(admin_t *a, const http_request_t *req, http_response_t *resp,
                                   conn_done_fn done, void *data, void **pending) {
  const char *coll = NULL;
  size_t clen = 0;
  if (req->path_len > sizeof STORE_PATH) {
    coll = req->path + sizeof STORE_PATH;
    clen = req->path_len - sizeof STORE_PATH;
    if (memchr(coll, '/', clen) != NULL || clen > 1024) {
      result_answer(resp, 400, "failed: a collection name is one path segment of 1 to 1024 bytes");
      return CONN_DONE;
    }
  }
  buf_t body = BUF_INIT, msg = BUF_INIT;
  int status = 200;
  enum conn_status st = CONN_DONE;
  switch (req->method) {
  case HTTP_GET:
  case HTTP_HEAD:
    if (coll == NULL) {
      buf_puts(&body, "{\"collections\":[");
      store_collections(a->o.store, list_collection, &body);
      buf_puts(&body, "]}\n");
    } else {
      buf_putc(&body, '[');
      store_list(a->o.store, coll, clen, 0, 0, list_document, &body);
      buf_puts(&body, "]\n");
    }
    json_answer(resp, 200, body.data, body.len);
    break;
  case HTTP_DELETE: {
    int rc = store_clear(a->o.store, coll, clen);
    if (rc == 0 && coll)
      buf_printf(&msg, "success: collection '%.*s' cleared", (int)clen, coll);
    else if (rc == 0)
      buf_puts(&msg, "success: store cleared");
    else
      buf_printf(&msg, "failed: %s", strerror(-rc)), status = refused_status(rc);
    buf_putc(&msg, '\0');
    if (rc == 0)
      st = when_durable(a, resp, status, msg.data, done, data, pending);
    else
      result_answer(resp, status, msg.data);
    break;
  }
  case HTTP_POST: {
    if (coll == NULL) {
      method_not_allowed(resp, "DELETE, GET, HEAD");
      break;
    }
    size_t stored = 0; /* untouched when no store is attached */
    char err[512];
    struct seed_target t = {a->o.store, coll, clen};
    seed_opts_t so = {seed_put, seed_new_id, &t};
    int rc = a->o.store ? seed_documents(req->body, req->body_len, &so, &stored, err, sizeof err)
                        : (snprintf(err, sizeof err, "no store is attached"), -EINVAL);
    if (rc == 0)
      buf_printf(&msg, "success: %zu documents stored in '%.*s'", stored, (int)clen, coll);
    else
      buf_printf(&msg, "failed: %s", err), status = rc == -EINVAL ? 400 : refused_status(rc);
    buf_putc(&msg, '\0');
    /* What went in before a failure is answered once durable too. */
    if (stored)
      st = when_durable(a, resp, rc == 0 ? 201 : status, msg.data, done, data, pending);
    else
      result_answer(resp, rc == 0 ? 201 : status, msg.data);
    break;
  }
  default: method_not_allowed(resp, coll ? "DELETE, GET, HEAD, POST" : "DELETE, GET, HEAD");
  }
  buf_free(&body);
  buf_free(&msg);
  return st;
}

/* The journal list as a streamed body: a 1,000-entry journal of 64 KiB
 * bodies is a 350 MB document, which must neither sit in memory nor stall
 * the loop while it is formatted. */
struct export_stream {
  http_stream_t base; /* first: the stream pointer is this struct's */
  journal_export_t *x;
};

static int export_next(http_stream_t *s, buf_t *out) {
  int rc = journal_export_next(((struct export_stream *)s)->x, out, EXPORT_PIECE);
  return rc < 0 ? rc : rc ? HTTP_STREAM_MORE : HTTP_STREAM_END;
}

static void export_close(http_stream_t *s, bool finished) {
  (void)finished;
  journal_export_free(((struct export_stream *)s)->x);
  free(s);
}

static int export_answer(admin_t *a, http_response_t *resp, const journal_filter_t *f) {
  struct export_stream *st = malloc(sizeof *st);
  if (st == NULL || (st->x = journal_export_new(a->o.journal, f)) == NULL) {
    free(st);
    return -ENOMEM;
  }
  st->base = (http_stream_t){.next = export_next, .close = export_close};
  json_answer(resp, 200, "", 0);
  resp->stream = &st->base;
  return 0;
}

/* /app/v1/requests[/count|/unmatched]: what the mock received. */
static void requests_call(admin_t *a, const http_request_t *req, http_response_t *resp) {
  bool read = req->method == HTTP_GET || req->method == HTTP_HEAD;
  bool list = path_is(req, REQUESTS_PATH);
  bool count = path_is(req, REQUESTS_PATH "/count");
  if (list && req->method == HTTP_DELETE) {
    if (req->query_len) {
      result_answer(resp, 400, "failed: DELETE clears the whole journal and takes no filters");
      return;
    }
    size_t n = journal_clear(a->o.journal);
    char body[160];
    int len = snprintf(body, sizeof body,
                       "{\"result\":\"success: journal cleared\",\"cleared\":%zu,"
                       "\"enabled\":%s}\n",
                       n, journal_enabled(a->o.journal) ? "true" : "false");
    json_answer(resp, 200, body, (size_t)len);
    return;
  }
  if (!read) {
    method_not_allowed(resp, list ? "DELETE, GET, HEAD" : "GET, HEAD");
    return;
  }
  journal_filter_t f;
  buf_t scratch = BUF_INIT, body = BUF_INIT;
  char err[300];
  if (journal_filter_parse(&f, req->query, req->query_len, &scratch, err, sizeof err)) {
    buf_t msg = BUF_INIT;
    buf_printf(&msg, "failed: %s", err);
    buf_putc(&msg, '\0');
    result_answer(resp, 400, msg.data);
    buf_free(&msg);
  } else if (count) {
    buf_printf(&body, "{\"count\":%zu,\"dropped\":%llu,\"enabled\":%s}\n",
               journal_select(a->o.journal, &f, NULL, NULL),
               (unsigned long long)journal_dropped(a->o.journal),
               journal_enabled(a->o.journal) ? "true" : "false");
    json_answer(resp, 200, body.data, body.len);
  } else {
    f.unmatched = !list;
    if (export_answer(a, resp, &f))
      result_answer(resp, 500, "failed: out of memory");
  }
  buf_free(&scratch);
  buf_free(&body);
}

static void metrics_call(admin_t *a, const http_request_t *req, http_response_t *resp) {
  if (req->method != HTTP_GET && req->method != HTTP_HEAD) {
    method_not_allowed(resp, "GET, HEAD");
    return;
  }
  script_t *active = provision_active(a->o.provision);
  metrics_gauges_t g = {
      .provision = active ? script_name(active) : NULL,
      .journal_dropped = journal_dropped_total(a->o.journal),
      .lua_memory_bytes = active ? script_memory(active) : 0,
      .lua_memory_limit = active ? script_memory_limit(active) : 0,
      .store = a->o.store,
  };
  buf_t body = BUF_INIT;
  if (metrics_render(a->o.metrics, &body, &g))
    result_answer(resp, 500, "failed: out of memory");
  else
    http_response_simple(resp, 200, "text/plain; version=0.0.4; charset=utf-8", body.data,
                         body.len);
  buf_free(&body);
}

/* ok, or degraded (503) with the reason while the store refuses writes. */
static void healthz(const admin_t *a, http_response_t *resp) {
  char why[256];
  if (a->o.store == NULL || store_status(a->o.store, why, sizeof why) == 0) {
    json_answer(resp, 200, "{\"status\":\"ok\"}\n", 16);
    return;
  }
  buf_t body = BUF_INIT;
  buf_puts(&body, "{\"status\":\"degraded\",\"store\":\"read-only\",\"reason\":");
  json_string(&body, why, strlen(why));
  buf_puts(&body, "}\n");
  json_answer(resp, 503, body.data, body.len);
  buf_free(&body);
}

/* Compares in a time that depends on the lengths only, never on where the
 * first difference is, so that the token cannot be found byte by byte. */
static bool same_secret(const char *given, size_t glen, const char *want, size_t wlen) {
  unsigned diff = glen != wlen;
  for (size_t i = 0; i < wlen; i++)
    diff |= (unsigned char)want[i] ^ (unsigned char)(glen ? given[i % glen] : 0);
  return diff == 0;
}

/* NULL when the call carries the admin token, else why not. */
static const char *refusal(const admin_t *a, const http_request_t *req) {
  const http_header_t *h = http_request_header(req, "authorization");
  if (h == NULL)
    return "failed: the admin API needs 'Authorization: Bearer <token>' (see --admin-token)";
  const char *v = h->value, *end = h->value + h->value_len;
  while (v < end && (*v == ' ' || *v == '\t'))
    v++;
  if (end - v < 7 || strncasecmp(v, "bearer", 6) != 0 || (v[6] != ' ' && v[6] != '\t'))
    return "failed: the admin API takes 'Authorization: Bearer <token>' (see --admin-token)";
  v += 7;
  while (v < end && (*v == ' ' || *v == '\t'))
    v++;
  while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
    end--;
  if (!same_secret(v, (size_t)(end - v), a->o.token, a->token_len))
    return "failed: the admin token is wrong";
  return NULL;
}

enum conn_status admin_dispatch(void *ctx, const http_request_t *req, const char *remote,
                                http_response_t *resp, conn_done_fn done, void *data,
                                void **pending) {
  admin_t *a = ctx;
  *pending = NULL;
  bool read = req->method == HTTP_GET || req->method == HTTP_HEAD;
  /* Probes and scrapers come from other hosts and carry no token. */
  bool for_all = path_is(req, "/healthz") || path_is(req, "/metrics");
  const char *why;
  if (a->o.token && !for_all && (why = refusal(a, req)) != NULL) {
    result_answer(resp, 401, why);
    http_response_header(resp, "WWW-Authenticate", 16, "Bearer realm=\"h1mock admin\"", 27);
    return CONN_DONE;
  }
  /* Protected mode, as Redis has it: without a token, posting Lua code
   * that then runs here is for this host's users only, unless asked for. */
  if (!a->o.token && !a->o.open && !for_all && !config_is_loopback(remote)) {
    if (!a->told_of_refusal)
      log_warn(a->o.log,
               "admin: refused a call from %s: without a token the admin API answers loopback "
               "peers only (--admin-token, --admin-token-file or --admin-open)",
               remote);
    a->told_of_refusal = true;
    result_answer(resp, 403,
                  "failed: without a token this admin API answers calls from this host only: "
                  "start h1mock with --admin-token or --admin-token-file, or with --admin-open "
                  "to allow unauthenticated admin calls from other hosts");
    return CONN_DONE;
  }
  if (path_is(req, "/metrics")) {
    metrics_call(a, req, resp);
  } else if (path_is(req, REQUESTS_PATH) || path_is(req, REQUESTS_PATH "/count") ||
             path_is(req, REQUESTS_PATH "/unmatched")) {
    requests_call(a, req, resp);
  } else if (path_is(req, OPENAPI_PATH)) {
    if (read)
      http_response_simple(resp, 200, "application/yaml", admin_openapi_yaml,
                           admin_openapi_yaml_len);
    else
      method_not_allowed(resp, "GET, HEAD");
  } else if (path_is(req, "/healthz")) {
    if (read)
      healthz(a, resp);
    else
      method_not_allowed(resp, "GET, HEAD");
  } else if (path_is(req, PROVISION_PATH) || (read && path_is(req, PROVISION_PATH "/"))) {
    if (read) {
      buf_t body = BUF_INIT;
      provision_list(a->o.provision, &body);
      json_answer(resp, 200, body.data, body.len);
      buf_free(&body);
    } else {
      method_not_allowed(resp, "GET, HEAD");
    }
  } else if (a->o.store && (path_is(req, STORE_PATH) ||
                            (req->path_len > sizeof STORE_PATH &&
                             memcmp(req->path, STORE_PATH "/", sizeof STORE_PATH) == 0))) {
    return store_call(a, req, resp, done, data, pending);
  } else if (req->path_len >= sizeof PROVISION_PATH &&
             memcmp(req->path, PROVISION_PATH "/", sizeof PROVISION_PATH) == 0) {
    return provision_call(a, req, resp, done, data, pending);
  } else {
    buf_t msg = BUF_INIT, body = BUF_INIT;
    buf_printf(&msg, "the admin API has no %s ", http_method_name(req->method));
    buf_append(&msg, req->path, req->path_len);
    buf_puts(&body, "{\"error\":");
    json_string(&body, msg.data, msg.len);
    buf_puts(&body, "}\n");
    json_answer(resp, 404, body.data, body.len);
    buf_free(&msg);
    buf_free(&body);
  }
  return CONN_DONE;
}
