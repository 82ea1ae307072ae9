/* provision_load.c - loading a provision's state: from text, from a stored
 * file, from the built-in default, and again when the directory changes. */
#include "provision_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "store.h"

int provision_read_file(const char *path, buf_t *out) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  int rc = 0;
  for (;;) {
    if (buf_reserve(out, 64 * 1024)) {
      rc = -ENOMEM;
      break;
    }
    ssize_t n = read(fd, out->data + out->len, out->cap - out->len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      rc = -errno;
      break;
    }
    if (n == 0)
      break;
    out->len += (size_t)n;
  }
  close(fd);
  return rc;
}

int provision_load(provision_t *p, const char *name, const char *text, size_t len, script_t **out,
                   double *ms, char *err, size_t errlen) {
  char chunk[PROVISION_NAME_MAX + 8];
  snprintf(chunk, sizeof chunk, "%s.lua", name);
  uint64_t t0 = uv_hrtime();
  int rc = script_load(chunk, text, len, &p->o.script, out, err, errlen);
  *ms = (double)(uv_hrtime() - t0) / 1e6;
  metrics_provision_load(p->o.metrics, rc == 0);
  if (rc) {
    log_error(p->o.script.log, "provision '%s' failed to load: %s", name, err);
    struct provision_entry *e = provision_entry(p, name);
    if (e) {
      free(e->error);
      e->error = strdup(err);
    }
  }
  return rc;
}

int provision_load_default(provision_t *p) {
  char err[512];
  script_t *s;
  int rc = script_load_default(&p->o.script, &s, err, sizeof err);
  metrics_provision_load(p->o.metrics, rc == 0);
  if (rc) {
    log_error(p->o.script.log, "the built-in default failed to load: %s", err);
    return -ENOMEM;
  }
  provision_swap(p, "", s, "", 0, 0);
  return 0;
}

/* Loads `text` as `name` and makes it active once the store writes of its
 * load are durable: later, when the log line says so, or with `block` (the
 * start, before serving) after waiting for them here. */
static int load_and_swap(provision_t *p, const char *name, const char *text, size_t len,
                         bool block, char *err, size_t errlen) {
  script_t *s;
  double ms;
  provision_result_t res;
  int rc = provision_load(p, name, text, len, &s, &ms, err, errlen);
  if (rc)
    return rc;
  if (block && p->o.script.store && (rc = store_sync(p->o.script.store))) {
    snprintf(err, errlen, "the store writes of its load could not be made durable (%s)",
             strerror(-rc));
    log_error(p->o.script.log, "provision '%s' failed to load: %s", name, err);
    script_release(s);
    return rc;
  }
  provision_swap_when_durable(p, name, s, text, len, ms, 200, NULL, NULL, &res);
  return 0;
}

int provision_load_file(provision_t *p, const char *name, const char *path, bool block, char *err,
                        size_t errlen) {
  buf_t text = BUF_INIT;
  int rc = provision_read_file(path, &text);
  if (rc) {
    log_error(p->o.script.log, "cannot read %s: %s", path, strerror(-rc));
    snprintf(err, errlen, "cannot read %s: %s", path, strerror(-rc));
  } else {
    rc = load_and_swap(p, name, text.data ? text.data : "", text.len, block, err, errlen);
  }
  buf_free(&text);
  return rc;
}

void *provision_activate(provision_t *p, const char *name, provision_result_t *res,
                         provision_finish_fn finish, void *arg) {
  char path[4096];
  if (!provision_find_file(p, name, path, sizeof path, NULL)) {
    provision_result(res, 404, "failed: no provision '%s'", name);
    return NULL;
  }
  buf_t text = BUF_INIT;
  int rc = provision_read_file(path, &text);
  char err[900];
  script_t *s;
  double ms;
  void *pending = NULL;
  if (rc)
    provision_result(res, 500, "failed: cannot read %s: %s", path, strerror(-rc));
  else if (provision_load(p, name, text.data ? text.data : "", text.len, &s, &ms, err, sizeof err))
    provision_result(res, 400, "failed: %s", err);
  else
    pending = provision_swap_when_durable(p, name, s, text.data ? text.data : "", text.len, ms,
                                          200, finish, arg, res);
  buf_free(&text);
  return pending;
}

static bool same_file(const struct stat *a, const struct stat *b) {
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
         a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

void provision_file_changed(provision_t *p, const char *file) {
  char name[PROVISION_NAME_MAX + 1], path[4096];
  if (provision_name(file, strlen(file), name))
    return;
  /* A post of this name is on the threadpool: the file may already be its
   * new one while `own` still describes the previous write (the directory's
   * fsync can outlast the watcher's delay). That post activates it. */
  if (!p->read_only && provision_post_writing(p, name))
    return;
  struct stat st;
  if (strcmp(file, name) == 0) {
    /* NAME without ".lua": NAME.lua wins, as at start (provision_find_file). */
    snprintf(path, sizeof path, "%s/%s.lua", p->dir, name);
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
      log_info(p->o.script.log, "%s/%s changed, but %s.lua is there too and wins: not loaded",
               p->dir, file, name);
      return;
    }
  }
  snprintf(path, sizeof path, "%s/%s", p->dir, file);
  if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
    return; /* deleted, or not a file: nothing to serve */
  struct provision_entry *e = provision_entry(p, name);
  if (e && e->own_write && same_file(&e->own, &st))
    return; /* our own POST, already active */
  buf_t text = BUF_INIT;
  char err[1024];
  if (provision_read_file(path, &text) == 0)
    load_and_swap(p, name, text.data ? text.data : "", text.len, false, err, sizeof err);
  buf_free(&text);
}

void provision_data_swapped(provision_t *p) {
  char path[4096];
  if (p->active_name[0] == '\0' ||
      !provision_find_file(p, p->active_name, path, sizeof path, NULL))
    return;
  buf_t text = BUF_INIT;
  char err[1024];
  if (provision_read_file(path, &text) == 0 &&
      (text.len != p->active_source.len ||
       memcmp(text.data, p->active_source.data, text.len) != 0)) {
    char name[PROVISION_NAME_MAX + 1];
    snprintf(name, sizeof name, "%s", p->active_name);
    load_and_swap(p, name, text.data ? text.data : "", text.len, false, err, sizeof err);
  }
  buf_free(&text);
}
