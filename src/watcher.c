/* watcher.c - directory events -> provision reloads, debounced. */
#include "watcher.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "metrics.h"
#include "provision.h"

struct watcher {
  uv_fs_event_t event;
  uv_timer_t settle;
  char pending[PROVISION_NAME_MAX + 8]; /* the last provision file that changed */
  bool data_swapped;                    /* a ConfigMap "..data" swap was seen */
  provision_t *provision;
  const log_t *log;
  metrics_t *metrics;
  int open_handles;
};

static void on_settled(uv_timer_t *t) {
  watcher_t *w = t->data;
  /* One reload per burst: the file changed last is the one that counts. */
  if (w->pending[0]) {
    char file[sizeof w->pending];
    memcpy(file, w->pending, sizeof file);
    w->pending[0] = '\0';
    provision_file_changed(w->provision, file);
  }
  if (w->data_swapped) {
    w->data_swapped = false;
    provision_data_swapped(w->provision);
  }
  metrics_watcher_burst(w->metrics);
  metrics_watcher_pending(w->metrics, false);
}

bool watcher_wants(const char *file) {
  size_t n = strlen(file);
  if (file[0] == '.' || n >= PROVISION_NAME_MAX + 8)
    return false;
  if (n > 4 && strcmp(file + n - 4, ".lua") == 0)
    return true;
  /* The Flask-based h1mock's style: a name without any dot (foo-bar),
   * copied in with kubectl cp. A name with another extension, or with a
   * character no provision name has (an editor's foo~), stays out. */
  char name[PROVISION_NAME_MAX + 1];
  return strchr(file, '.') == NULL && provision_name(file, n, name) == 0;
}

/* A directory made in the provisions directory must not take the place of
 * a file saved just before it (one reload per burst: the last one). */
static bool is_directory(const watcher_t *w, const char *file) {
  char path[4096];
  struct stat st;
  snprintf(path, sizeof path, "%s/%s", provision_dir(w->provision), file);
  return strchr(file, '.') == NULL && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void on_event(uv_fs_event_t *h, const char *file, int events, int status) {
  (void)events;
  watcher_t *w = h->data;
  if (status < 0) {
    log_warn(w->log, "watching %s: %s", provision_dir(w->provision), uv_strerror(status));
    return;
  }
  if (file == NULL) {
    metrics_watcher_event(w->metrics, false);
    return;
  }
  if (strcmp(file, "..data") == 0) {
    w->data_swapped = true;
  } else if (watcher_wants(file) && !is_directory(w, file)) {
    memcpy(w->pending, file, strlen(file) + 1);
  } else {
    metrics_watcher_event(w->metrics, false);
    return; /* temp files, dot files, other files */
  }
  metrics_watcher_event(w->metrics, true);
  metrics_watcher_pending(w->metrics, true);
  uv_timer_start(&w->settle, on_settled, WATCHER_SETTLE_MS, 0);
}

int watcher_start(uv_loop_t *loop, provision_t *p, const log_t *lg, metrics_t *m,
                  watcher_t **out) {
  watcher_t *w = calloc(1, sizeof *w);
  if (w == NULL)
    return UV_ENOMEM;
  w->provision = p;
  w->log = lg;
  w->metrics = m;
  uv_fs_event_init(loop, &w->event);
  uv_timer_init(loop, &w->settle);
  w->event.data = w->settle.data = w;
  w->open_handles = 2;
  int rc = uv_fs_event_start(&w->event, on_event, provision_dir(p), 0);
  if (rc) {
    watcher_stop(w);
    return rc;
  }
  *out = w;
  return 0;
}

static void on_closed(uv_handle_t *h) {
  watcher_t *w = h->data;
  if (--w->open_handles == 0)
    free(w);
}

void watcher_stop(watcher_t *w) {
  if (w == NULL)
    return;
  uv_close((uv_handle_t *)&w->event, on_closed);
  uv_close((uv_handle_t *)&w->settle, on_closed);
}
