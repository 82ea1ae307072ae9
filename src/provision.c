/* provision.c - the provision serving traffic, and swapping it. All file
 * I/O of the provision*.c files is small and synchronous (posts aside,
 * which go to the threadpool): provisions are a few KiB and arrive a few
 * times a second at most. */
#include "provision_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "log.h"

int provision_new(const provision_opts_t *o, provision_t **out) {
  *out = NULL;
  provision_t *p = calloc(1, sizeof *p);
  if (p == NULL)
    return -ENOMEM;
  p->o = *o;
  p->dir = strdup(o->script.dir);
  p->state_dir = strdup(o->state_dir);
  if (p->dir == NULL || p->state_dir == NULL) {
    provision_free(p);
    return -ENOMEM;
  }
  p->o.script.dir = p->dir;
  p->o.state_dir = p->state_dir;
  p->read_only = access(p->dir, W_OK) != 0;
  *out = p;
  return 0;
}

int provision_start(provision_t *p) {
  const log_t *lg = p->o.script.log;
  if (p->read_only)
    log_info(lg, "provisions directory %s is read-only: posted provisions are stored in %s",
             p->dir, p->state_dir);
  char path[4096], err[1024];
  if (!provision_find_file(p, "initial", path, sizeof path, NULL)) {
    log_info(lg, "no 'initial' provision in %s: serving the built-in default%s", p->dir,
             p->o.script.default_help ? " (--default help: the guide page for every path)" : "");
    return provision_load_default(p);
  }
  if (provision_load_file(p, "initial", path, err, sizeof err) == 0)
    return 0;
  log_warn(lg, "serving the built-in default until a provision loads");
  return provision_load_default(p);
}

void provision_close(provision_t *p) {
  if (p == NULL)
    return;
  p->closing = true;
  script_release(p->active);
  p->active = NULL;
}

void provision_free(provision_t *p) {
  if (p == NULL)
    return;
  script_release(p->active);
  provision_entries_free(p);
  free(p->dir);
  free(p->state_dir);
  buf_free(&p->active_source);
  free(p);
}

script_t *provision_active(const provision_t *p) { return p->active; }

const char *provision_dir(const provision_t *p) { return p->dir; }

int provision_name(const char *given, size_t len, char out[PROVISION_NAME_MAX + 1]) {
  if (len > 4 && memcmp(given + len - 4, ".lua", 4) == 0)
    len -= 4;
  if (len == 0 || len > PROVISION_NAME_MAX || given[0] == '.')
    return -EINVAL;
  for (size_t i = 0; i < len; i++) {
    char c = given[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
          c == '_' || c == '-'))
      return -EINVAL;
    if (c == '.' && i + 1 < len && given[i + 1] == '.')
      return -EINVAL;
  }
  memcpy(out, given, len);
  out[len] = '\0';
  return 0;
}

static double now_seconds(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

/* The time logged is the load plus this swap: what a user waits for
 * before traffic sees it. `name` "" is the built-in default. */
void provision_swap(provision_t *p, const char *name, script_t *s, const char *text, size_t len,
                    double ms) {
  uint64_t t0 = uv_hrtime();
  if (p->closing) {
    /* The server stopped while this loaded or was written. */
    script_release(s);
    return;
  }
  if (name[0]) {
    struct provision_entry *e = provision_entry(p, name);
    if (e) {
      e->loaded = true;
      e->loaded_at = now_seconds();
      e->rules = script_rule_count(s);
      free(e->error);
      e->error = NULL;
    }
  }
  snprintf(p->active_name, sizeof p->active_name, "%s", name);
  buf_reset(&p->active_source);
  buf_append(&p->active_source, text, len);
  script_t *old = p->active;
  p->active = s;
  script_release(old);
  if (name[0])
    log_info(p->o.script.log, "provision '%s' loaded: %zu rule%s in %.1f ms", name,
             script_rule_count(s), script_rule_count(s) == 1 ? "" : "s",
             ms + (double)(uv_hrtime() - t0) / 1e6);
}
