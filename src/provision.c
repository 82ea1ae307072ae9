/* provision.c - loading provisions and swapping the active one. */
#include "provision.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static script_opts_t options;
static script_t *active;

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

static void swap_in(script_t *s) {
  script_t *old = active;
  active = s;
  /* Requests still running on the old one hold their own references. */
  script_release(old);
}

static double ms_since(uint64_t start) { return (double)(uv_hrtime() - start) / 1e6; }

int provision_activate(const char *name, const char *text, size_t len, char *err, size_t errlen) {
  char chunk[300];
  snprintf(chunk, sizeof chunk, "%s.lua", name);
  uint64_t t0 = uv_hrtime();
  script_t *s;
  int rc = script_load(chunk, text, len, &options, &s, err, errlen);
  if (rc) {
    log_error("provision '%s' failed to load: %s", name, err);
    return rc;
  }
  log_info("provision '%s' loaded: %zu rules in %.1f ms", name, script_rule_count(s),
           ms_since(t0));
  swap_in(s);
  return 0;
}

static int load_default(void) {
  char err[512];
  script_t *s;
  if (script_load_default(&options, &s, err, sizeof err)) {
    log_error("the built-in default failed to load: %s", err);
    return -ENOMEM;
  }
  swap_in(s);
  return 0;
}

int provision_init(const script_opts_t *opts) {
  options = *opts;
  static const char *const names[] = {"initial.lua", "initial"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", opts->dir, names[i]);
    buf_t text = BUF_INIT;
    int rc = provision_read_file(path, &text);
    if (rc == -ENOENT) {
      buf_free(&text);
      continue;
    }
    char err[1024];
    if (rc) {
      log_error("cannot read %s: %s; serving the built-in default", path, strerror(-rc));
    } else if (provision_activate("initial", text.data ? text.data : "", text.len, err,
                                  sizeof err) == 0) {
      buf_free(&text);
      return 0;
    } else {
      log_warn("serving the built-in default until a provision loads");
    }
    buf_free(&text);
    return load_default();
  }
  log_info("no 'initial' provision in %s: serving the built-in default", opts->dir);
  return load_default();
}

script_t *provision_active(void) { return active; }

void provision_shutdown(void) {
  script_release(active);
  active = NULL;
}

enum script_status provision_dispatch(void *ctx, const http_request_t *req, const char *remote,
                                      http_response_t *resp, script_done_fn done, void *data,
                                      script_call_t **call) {
  (void)ctx;
  return script_dispatch(active, req, remote, resp, done, data, call);
}
