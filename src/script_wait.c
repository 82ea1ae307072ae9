/* script_wait.c - a request that waits: sleeping, an outbound call of
 * --proxy, an answer held until the store has made its writes durable; and
 * the end of a call, whether answered or abandoned.
 *
 * script.c starts a request and runs its stages; everything that resumes
 * it later from the event loop (a timer, an idle turn, the http client's
 * answer, the store's durability notice) comes through here and goes back
 * to script_run.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_client.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "proxy.h"
#include "record.h"
#include "script.h"
#include "script_int.h"

void script_finish(script_call_t *c, bool notify) {
  script_done_fn done = c->done;
  void *data = c->data;
  script_call_put(c);
  if (notify && done)
    done(data);
}

/* The call's store writes were undone by a failed commit: its answer, which
 * said they were made, becomes a 503 that says they were not. */
static void store_failed(script_call_t *c, int rc) {
  http_response_t *r = c->resp;
  char msg[300];
  buf_t path = BUF_INIT, body = BUF_INIT;
  snprintf(msg, sizeof msg,
           "the store could not make this request's writes durable (%s): they were undone",
           strerror(-rc));
  log_error(c->s->opts.log, "%s %s: %s", script_method_of(c), script_log_path(c, &path), msg);
  size_t ctlen = 0;
  const char *ct = http_response_header_value(r, "Content-Type", &ctlen);
  if (ct && http_mimetype_is_json(ct, ctlen)) {
    buf_puts(&body, "{\"message\":");
    json_string(&body, msg, strlen(msg));
    buf_puts(&body, "}\n");
    http_response_simple(r, 503, "application/json", body.data, body.len);
  } else {
    script_error_page(r, 503, msg);
  }
  script_note_origin(c);
  buf_free(&path);
  buf_free(&body);
}

static void on_durable(store_waiter_t *w, int status) {
  script_call_t *c = (script_call_t *)((char *)w - offsetof(script_call_t, durable));
  c->holding = false;
  if (status)
    store_failed(c, status);
  script_finish(c, true);
}

/* The answer is final: it is held until the store writes the call made
 * (and every write before them) are durable. SCRIPT_PENDING while held. */
enum script_status script_settle(script_call_t *c) {
  uint64_t seq = c->ctx.wrote > c->s->main_ctx.wrote ? c->ctx.wrote : c->s->main_ctx.wrote;
  store_t *st = c->s->opts.store;
  int rc = st ? store_when_durable(st, seq, &c->durable, on_durable) : 0;
  if (rc == 1) {
    c->holding = true;
    return SCRIPT_PENDING;
  }
  if (rc < 0)
    store_failed(c, rc);
  return SCRIPT_DONE;
}

static void forwarded(void *arg, const http_client_result_t *r);

/* Runs a call on after a pause; once its answer is final it is held until
 * its store writes (an after_request hook's too) are durable. */
static void run_on(script_call_t *c, bool resuming) {
  if (script_run(c, resuming) == SCRIPT_DONE) {
    script_note_origin(c);
    if (script_settle(c) == SCRIPT_DONE)
      script_finish(c, true);
  }
}

/* --proxy: sends the request on; `forwarded` takes the answer. True when
 * it is out (the call is pending); else the response is a gateway error
 * and the request goes on to its after_request hooks. */
bool script_forward(script_call_t *c) {
  script_t *s = c->s;
  c->proxied = true;
  c->stage = STAGE_AFTER;
  c->step = 0;
  if (proxy_loop(c->req, s->opts.via)) {
    proxy_looped(c->resp);
    return false;
  }
  const char *why = "outbound HTTP is not available here";
  if (c->forward == NULL && (c->forward = calloc(1, sizeof *c->forward)) == NULL)
    why = "out of memory";
  else if (s->opts.client == NULL)
    ;
  else if (proxy_request(c->req, s->opts.proxy, s->opts.via, 0, c->forward))
    why = "out of memory";
  else if (http_client_request(s->opts.client, &c->forward->req, forwarded, c, &c->ctx.outbound) ==
           0)
    return true;
  else
    why = "the server is shutting down";
  proxy_failed(c->resp, why);
  return false;
}

static void forwarded(void *arg, const http_client_result_t *r) {
  script_call_t *c = arg;
  c->ctx.outbound = NULL;
  if (c->s->opts.metrics)
    metrics_http_client(c->s->opts.metrics, r->error == NULL, r->duration_us);
  if (r->error)
    proxy_failed(c->resp, r->error);
  else if (proxy_response(r, c->resp))
    proxy_failed(c->resp, "out of memory");
  else
    record_exchange(c->s->opts.recorder, c->req, c->resp);
  run_on(c, false);
}

static void wake(script_call_t *c) {
  c->ctx.sleeping = false;
  run_on(c, true);
}

static void on_timer(uv_timer_t *t) { wake(t->data); }

void script_resume_parked(script_ctx_t *ctx) { wake((script_call_t *)ctx); }

static void on_idle(uv_idle_t *h) {
  uv_idle_stop(h);
  wake(h->data);
}

/* The ctx->sleep of every call: script_app.c's sleep() and the count
 * hook's time slices pause the request here. */
void script_sleep_start(script_ctx_t *ctx, double seconds) {
  script_call_t *c = (script_call_t *)ctx;
  uv_loop_t *loop = c->s->opts.loop;
  if (seconds <= 0) {
    /* An idle handle runs once per loop turn, after the I/O of that turn;
     * a 0 ms timer would run again in the same timer pass and starve it. */
    if (c->idle == NULL) {
      if ((c->idle = malloc(sizeof *c->idle)) == NULL)
        luaL_error(c->co, "sleep: out of memory");
      uv_idle_init(loop, c->idle);
      c->idle->data = c;
    }
    uv_idle_start(c->idle, on_idle);
  } else {
    if (c->timer == NULL) {
      if ((c->timer = malloc(sizeof *c->timer)) == NULL)
        luaL_error(c->co, "sleep: out of memory");
      uv_timer_init(loop, c->timer);
      c->timer->data = c;
    }
    double ms = ceil(seconds * 1000.0);
    uv_timer_start(c->timer, on_timer, ms > 1e12 ? (uint64_t)1e12 : (uint64_t)ms, 0);
  }
  c->ctx.sleeping = true;
}

void script_abandon(script_call_t *c) {
  if (c == NULL)
    return;
  if (c->holding) {
    store_waiter_cancel(c->s->opts.store, &c->durable);
    c->holding = false;
  }
  if (c->timer)
    uv_timer_stop(c->timer);
  if (c->idle)
    uv_idle_stop(c->idle);
  if (c->ctx.outbound) {
    http_client_cancel(c->ctx.outbound);
    c->ctx.outbound = NULL;
  }
  c->ctx.sleeping = false;
  lua_resetthread(c->co);
  script_finish(c, false);
}
