/* provision_save.c - storing posted provisions, one at a time on the
 * threadpool, and deleting stored ones. */
#include "provision_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "safedir.h"

void provision_result(provision_result_t *res, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  res->status = status;
  vsnprintf(res->message, sizeof res->message, fmt, ap);
  va_end(ap);
}

/* A validated provision on its way to disk. The loop thread owns every
 * field but `rc`, `why` and `st`, which the threadpool writes; the
 * threadpool reads only what is copied here. */
struct provision_post_job {
  uv_work_t work;
  provision_t *p;
  char name[PROVISION_NAME_MAX + 1];
  char dir[4096];
  bool state_dir; /* dir is the state directory: checked again before each write */
  const log_t *log;
  buf_t text;
  script_t *s;
  double ms;
  int rc;
  char why[1024]; /* what rc means, when a refused state dir says more than errno */
  struct stat st;
  provision_finish_fn finish; /* NULL once abandoned */
  void *arg;
  struct provision_post_job *next; /* waiting behind the one being written */
};

typedef struct provision_post_job job_t;

bool provision_post_writing(const provision_t *p, const char *name) {
  return p->writing && strcmp(p->writing->name, name) == 0;
}

static void post_write(uv_work_t *w);
static void post_written(uv_work_t *w, int status);

static void job_free(job_t *j) {
  buf_free(&j->text);
  free(j);
}

/* Starts the next waiting write, if none is running. */
static void post_next(provision_t *p) {
  while (p->writing == NULL && p->waiting) {
    job_t *j = p->waiting;
    p->waiting = j->next;
    if (p->waiting == NULL)
      p->waiting_tail = NULL;
    int rc = uv_queue_work(p->o.script.loop, &j->work, post_write, post_written);
    if (rc == 0) {
      p->writing = j;
      break;
    }
    provision_result_t res;
    script_release(j->s);
    provision_result(&res, 500, "failed: cannot store the provision: %s", uv_strerror(rc));
    if (j->finish)
      j->finish(j->arg, &res);
    job_free(j);
  }
}

static void post_write(uv_work_t *w) {
  job_t *j = w->data;
  /* The state dir is checked again on each write: it may have been
   * removed (and taken by someone else) since the start. */
  int dfd = j->state_dir ? safedir_open(j->dir, j->why, sizeof j->why)
                         : open(j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) {
    j->rc = j->state_dir ? dfd : -errno;
    return;
  }
  j->rc = provision_write_file(dfd, j->dir, j->name, j->text.data ? j->text.data : "", j->text.len,
                               j->log, &j->st);
  close(dfd);
}

void provision_post_activated(void *job, const provision_result_t *res) {
  job_t *j = job;
  if (res && j->finish)
    j->finish(j->arg, res);
  job_free(j);
}

static void post_written(uv_work_t *w, int status) {
  job_t *j = w->data;
  provision_t *p = j->p;
  provision_result_t res;
  if (status < 0 && j->rc == 0)
    j->rc = status;
  p->writing = NULL;
  if (j->rc) {
    script_release(j->s);
    const char *why = j->why[0] ? j->why : strerror(-j->rc);
    log_error(j->log, "provision '%s' was not stored in %s: %s", j->name, j->dir, why);
    provision_result(&res, 500, "failed: cannot store %s.lua in %s: %s", j->name, j->dir, why);
    provision_post_activated(j, &res);
  } else {
    struct provision_entry *e = provision_entry(p, j->name);
    if (e) {
      e->own_write = true;
      e->own = j->st;
    }
    /* Stored, so served (once its load's store writes are durable), even
     * if the client that posted it went away. */
    if (provision_swap_when_durable(p, j->name, j->s, j->text.data ? j->text.data : "",
                                    j->text.len, j->ms, 201, provision_post_activated, j,
                                    &res) == NULL)
      provision_post_activated(j, &res);
  }
  post_next(p);
}

void *provision_post(provision_t *p, const char *name, const char *text, size_t len,
                     provision_result_t *res, provision_finish_fn finish, void *arg) {
  job_t *j = calloc(1, sizeof *j);
  if (j == NULL || buf_append(&j->text, text, len)) {
    free(j);
    provision_result(res, 500, "failed: out of memory");
    return NULL;
  }
  char err[900];
  if (provision_load(p, name, text, len, &j->s, &j->ms, err, sizeof err)) {
    provision_result(res, 400, "failed: %s", err);
    job_free(j);
    return NULL;
  }
  j->p = p;
  snprintf(j->name, sizeof j->name, "%s", name);
  snprintf(j->dir, sizeof j->dir, "%s", provision_write_dir(p));
  j->state_dir = p->read_only;
  j->log = p->o.script.log;
  j->finish = finish;
  j->arg = arg;
  j->work.data = j;
  if (p->waiting_tail)
    p->waiting_tail->next = j;
  else
    p->waiting = j;
  p->waiting_tail = j;
  if (p->writing == NULL) {
    /* Started now: a failure to start is this call's answer. */
    int rc = uv_queue_work(p->o.script.loop, &j->work, post_write, post_written);
    p->waiting = p->waiting_tail = NULL;
    if (rc) {
      script_release(j->s);
      provision_result(res, 500, "failed: cannot store the provision: %s", uv_strerror(rc));
      job_free(j);
      return NULL;
    }
    p->writing = j;
  }
  return j;
}

void provision_post_abandon(void *job) {
  job_t *j = job;
  j->finish = NULL;
}

void provision_delete(provision_t *p, const char *name, provision_result_t *res) {
  char path[4096];
  bool in_state;
  if (!provision_find_file(p, name, path, sizeof path, &in_state)) {
    provision_result(res, 404, "failed: no provision '%s'", name);
  } else if (strcmp(name, p->active_name) == 0) {
    provision_result(res, 409, "failed: provision '%s' is active", name);
  } else if (p->read_only && !in_state) {
    provision_result(res, 409, "failed: provision '%s' is in a read-only directory", name);
  } else if (unlink(path) != 0) {
    provision_result(res, 500, "failed: cannot delete %s: %s", path, strerror(errno));
  } else {
    log_info(p->o.script.log, "provision '%s' deleted (%s)", name, path);
    provision_result(res, 200, "success: provision '%s' deleted", name);
  }
}
