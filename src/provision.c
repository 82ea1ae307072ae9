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

/* A loaded provision waiting for the store writes of its load to be
 * durable before it swaps in (provision_swap_when_durable). */
struct provision_activation {
  store_waiter_t w; /* first */
  provision_t *p;
  char name[PROVISION_NAME_MAX + 1];
  script_t *s;
  buf_t text;
  double ms;
  int ok_status; /* answered once it is active: 200 or 201 */
  provision_finish_fn finish;
  void *arg;
  int status; /* of the wait for the store, once `ready` */
  bool ready;
  bool *completed; /* set while provision_swap_when_durable runs: done at once */
  provision_result_t *res;
  struct provision_activation *next;
};

typedef struct provision_activation activation_t;

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
  if (provision_load_file(p, "initial", path, true, err, sizeof err) == 0)
    return 0;
  log_warn(lg, "serving the built-in default until a provision loads");
  return provision_load_default(p);
}

void provision_close(provision_t *p) {
  if (p == NULL)
    return;
  p->closing = true;
  /* Loads still waiting for the store: whoever asked for them is gone. */
  while (p->act_head) {
    activation_t *a = p->act_head;
    p->act_head = a->next;
    if (!a->ready)
      script_when_durable_cancel(a->s, &a->w);
    script_release(a->s);
    if (a->finish == provision_post_activated)
      provision_post_activated(a->arg, NULL);
    buf_free(&a->text);
    free(a);
  }
  p->act_tail = NULL;
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

/* ---- a load is reported done once its store writes are durable ---- */

static void complete(activation_t *a) {
  provision_t *p = a->p;
  provision_result_t r;
  if (a->status == 0) {
    provision_swap(p, a->name, a->s, a->text.data ? a->text.data : "", a->text.len, a->ms);
    provision_result(&r, a->ok_status, "success: basename file '%s' has been loaded", a->name);
  } else {
    script_release(a->s);
    log_error(p->o.script.log,
              "provision '%s' was not activated: the store writes its load made could not be "
              "made durable (%s)",
              a->name, strerror(-a->status));
    provision_result(&r, 503,
                     "failed: the store writes of provision '%s' could not be made durable (%s)",
                     a->name, strerror(-a->status));
  }
  if (a->completed) {
    *a->completed = true;
    *a->res = r;
  } else if (a->finish) {
    a->finish(a->arg, &r);
  }
  buf_free(&a->text);
  free(a);
}

/* Completes the activations at the head that are ready, in order. */
static void drain(provision_t *p) {
  while (p->act_head && p->act_head->ready) {
    activation_t *a = p->act_head;
    p->act_head = a->next;
    if (p->act_head == NULL)
      p->act_tail = NULL;
    complete(a);
  }
}

static void load_durable(store_waiter_t *w, int status) {
  activation_t *a = (activation_t *)w;
  a->ready = true;
  a->status = status;
  drain(a->p);
}

void *provision_swap_when_durable(provision_t *p, const char *name, script_t *s, const char *text,
                                  size_t len, double ms, int ok_status, provision_finish_fn finish,
                                  void *arg, provision_result_t *res) {
  activation_t *a = calloc(1, sizeof *a);
  if (a == NULL || buf_append(&a->text, text, len)) {
    free(a);
    script_release(s);
    provision_result(res, 500, "failed: out of memory");
    return NULL;
  }
  a->p = p;
  snprintf(a->name, sizeof a->name, "%s", name);
  a->s = s;
  a->ms = ms;
  a->ok_status = ok_status;
  a->finish = finish;
  a->arg = arg;
  bool completed = false;
  a->completed = &completed;
  a->res = res;
  /* After provision_close nothing waits: provision_swap drops it. */
  int rc = p->closing ? 0 : script_when_durable(s, &a->w, load_durable);
  if (rc != 1) {
    a->ready = true;
    a->status = rc;
  }
  if (p->act_tail)
    p->act_tail->next = a;
  else
    p->act_head = a;
  p->act_tail = a;
  drain(p);
  if (completed)
    return NULL;
  a->completed = NULL;
  a->res = NULL;
  return a;
}

void provision_abandon(void *job) {
  activation_t *a = job;
  a->finish = NULL;
}
