/* watchdog.c - see watchdog.h. */
#include "watchdog.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "log.h"
#include "text.h"

/* What the loop runs now. */
struct event {
  bool busy;
  bool warned; /* reported already */
  bool load;
  uint64_t since; /* uv_hrtime() when it started */
  char method[16];
  char path[201];
  char rule[129]; /* "" when no rule matched */
  char provision[160];
};

struct watchdog {
  uv_thread_t thread;
  uv_mutex_t lock;
  uv_cond_t wake; /* signalled only to stop */
  uint64_t threshold_ns;
  const log_t *log;
  bool stopping;
  struct event now; /* written by the loop thread, both under `lock` */
};

/* Copies at most n bytes of s (and at most the room in out). */
static void copy(char *out, size_t room, const char *s, size_t n) {
  if (n >= room)
    n = room - 1;
  memcpy(out, s, n);
  out[n] = '\0';
}

static void watch(void *arg) {
  watchdog_t *w = arg;
  uv_mutex_lock(&w->lock);
  while (!w->stopping) {
    uv_cond_timedwait(&w->wake, &w->lock, (uint64_t)WATCHDOG_PERIOD_MS * 1000000);
    if (w->stopping || !w->now.busy || w->now.warned)
      continue;
    uint64_t busy = uv_hrtime() - w->now.since;
    if (busy < w->threshold_ns)
      continue;
    w->now.warned = true;
    /* Logged from a copy, without the lock: the loop must not wait for a
     * slow stderr when it finishes the event. */
    struct event seen = w->now;
    uv_mutex_unlock(&w->lock);
    double s = (double)busy / 1e9;
    /* The path is what a client sent: escaped so it cannot forge a line. */
    buf_t esc = BUF_INIT;
    const char *path =
        text_escape_str(&esc, seen.path, strlen(seen.path), sizeof seen.path, TEXT_ESCAPE_VALUE);
    if (seen.load)
      log_warn(w->log, "the loop has been busy for %.1f s loading provision %s", s,
               seen.provision);
    else if (seen.rule[0])
      log_warn(w->log, "the loop has been busy for %.1f s in %s %s: rule '%s' of provision %s", s,
               seen.method, path, seen.rule, seen.provision);
    else
      log_warn(w->log, "the loop has been busy for %.1f s in %s %s: no rule matched, provision %s",
               s, seen.method, path, seen.provision);
    buf_free(&esc);
    uv_mutex_lock(&w->lock);
  }
  uv_mutex_unlock(&w->lock);
}

int watchdog_start(uint64_t threshold_ms, const log_t *lg, watchdog_t **out) {
  *out = NULL;
  watchdog_t *w = calloc(1, sizeof *w);
  if (w == NULL)
    return UV_ENOMEM;
  w->threshold_ns = threshold_ms * 1000000;
  w->log = lg;
  int rc = uv_mutex_init(&w->lock);
  if (rc)
    goto fail_mutex;
  if ((rc = uv_cond_init(&w->wake)))
    goto fail_cond;
  if ((rc = uv_thread_create(&w->thread, watch, w)))
    goto fail_thread;
  *out = w;
  return 0;

fail_thread:
  uv_cond_destroy(&w->wake);
fail_cond:
  uv_mutex_destroy(&w->lock);
fail_mutex:
  free(w);
  return rc;
}

void watchdog_stop(watchdog_t *w) {
  if (w == NULL)
    return;
  uv_mutex_lock(&w->lock);
  w->stopping = true;
  uv_cond_signal(&w->wake);
  uv_mutex_unlock(&w->lock);
  uv_thread_join(&w->thread);
  uv_cond_destroy(&w->wake);
  uv_mutex_destroy(&w->lock);
  free(w);
}

void watchdog_enter(watchdog_t *w, const char *method, const char *path, size_t path_len,
                    const char *rule, const char *provision) {
  if (w == NULL)
    return;
  uint64_t now = uv_hrtime();
  struct event *e = &w->now;
  uv_mutex_lock(&w->lock);
  e->busy = true;
  e->warned = false;
  e->since = now;
  e->load = method == NULL;
  copy(e->method, sizeof e->method, method ? method : "", method ? strlen(method) : 0);
  copy(e->path, sizeof e->path, path ? path : "", path ? path_len : 0);
  copy(e->rule, sizeof e->rule, rule ? rule : "", rule ? strlen(rule) : 0);
  copy(e->provision, sizeof e->provision, provision, strlen(provision));
  uv_mutex_unlock(&w->lock);
}

void watchdog_leave(watchdog_t *w) {
  if (w == NULL)
    return;
  uv_mutex_lock(&w->lock);
  w->now.busy = false;
  uv_mutex_unlock(&w->lock);
}
