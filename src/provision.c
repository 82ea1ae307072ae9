/* provision.c - loading provisions, storing them, and swapping the active
 * one. All file I/O here is small and synchronous: provisions are a few
 * KiB and arrive a few times a second at most. */
#include "provision.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "safedir.h"
#include "text.h"

/* What the admin listing shows per name, and how to recognise our own
 * writes when the watcher reports them. */
struct entry {
  char name[PROVISION_NAME_MAX + 1];
  bool loaded;
  double loaded_at; /* seconds since the epoch */
  size_t rules;
  char *error; /* last failed load, NULL after a good one */
  bool own_write;
  struct stat own; /* the file as h1mock wrote it */
};

static struct {
  script_opts_t opts;
  char *dir, *state_dir;
  bool read_only;
  script_t *active;
  char active_name[PROVISION_NAME_MAX + 1]; /* "" while the default serves */
  buf_t active_source;
  struct entry *entries;
  size_t nentries, capentries;
} P;

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

static struct entry *entry_for(const char *name) {
  for (size_t i = 0; i < P.nentries; i++)
    if (strcmp(P.entries[i].name, name) == 0)
      return &P.entries[i];
  if (P.nentries == P.capentries) {
    size_t cap = P.capentries ? P.capentries * 2 : 16;
    struct entry *e = realloc(P.entries, cap * sizeof *e);
    if (e == NULL)
      return NULL;
    P.entries = e;
    P.capentries = cap;
  }
  struct entry *e = &P.entries[P.nentries++];
  memset(e, 0, sizeof *e);
  snprintf(e->name, sizeof e->name, "%s", name);
  return e;
}

static double now_seconds(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

/* Loads `text` as provision `name`; logs a failure and records it. */
static int load(const char *name, const char *text, size_t len, script_t **out, double *ms,
                char *err, size_t errlen) {
  char chunk[PROVISION_NAME_MAX + 8];
  snprintf(chunk, sizeof chunk, "%s.lua", name);
  uint64_t t0 = uv_hrtime();
  int rc = script_load(chunk, text, len, &P.opts, out, err, errlen);
  *ms = (double)(uv_hrtime() - t0) / 1e6;
  metrics_provision_load(rc == 0);
  if (rc) {
    log_error("provision '%s' failed to load: %s", name, err);
    struct entry *e = entry_for(name);
    if (e) {
      free(e->error);
      e->error = strdup(err);
    }
  }
  return rc;
}

/* Makes a loaded script the active one. Requests still running on the old
 * one hold their own references and finish there. The time logged is the
 * load plus this swap: what a user waits for before traffic sees it. */
static void activate(const char *name, script_t *s, const char *text, size_t len, double ms) {
  uint64_t t0 = uv_hrtime();
  struct entry *e = entry_for(name);
  if (e) {
    e->loaded = true;
    e->loaded_at = now_seconds();
    e->rules = script_rule_count(s);
    free(e->error);
    e->error = NULL;
  }
  snprintf(P.active_name, sizeof P.active_name, "%s", name);
  buf_reset(&P.active_source);
  buf_append(&P.active_source, text, len);
  script_t *old = P.active;
  P.active = s;
  script_release(old);
  log_info("provision '%s' loaded: %zu rules in %.1f ms", name, script_rule_count(s),
           ms + (double)(uv_hrtime() - t0) / 1e6);
}

/* ---- activations: a load is reported done once its store writes are ---- */

/* A loaded provision on its way to being active. It waits until the store
 * writes its load made are durable; activations complete in the order they
 * started, so a later one never overtakes one still waiting. */
struct activation {
  store_waiter_t w; /* first */
  char name[PROVISION_NAME_MAX + 1];
  script_t *s;
  buf_t text;
  double ms;
  int ok_status; /* answered when it is active: 200 or 201 */
  provision_finish_fn finish;
  void *arg;
  int status; /* of the durability wait, once `ready` */
  bool ready;
  bool *completed; /* set while activation_start runs: done at once */
  provision_result_t *res;
  struct activation *next;
};

static struct activation *act_head, *act_tail;

static void post_activated(void *arg, const provision_result_t *res);

static void result(provision_result_t *res, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void complete(struct activation *a) {
  provision_result_t r;
  if (a->status == 0) {
    activate(a->name, a->s, a->text.data ? a->text.data : "", a->text.len, a->ms);
    result(&r, a->ok_status, "success: basename file '%s' has been loaded", a->name);
  } else {
    script_release(a->s);
    log_error("provision '%s' was not activated: the store writes its load made could not be "
              "made durable (%s)",
              a->name, strerror(-a->status));
    result(&r, 503, "failed: the store writes of provision '%s' could not be made durable (%s)",
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

static void drain_activations(void) {
  while (act_head && act_head->ready) {
    struct activation *a = act_head;
    act_head = a->next;
    if (act_head == NULL)
      act_tail = NULL;
    complete(a);
  }
}

static void load_durable(store_waiter_t *w, int status) {
  struct activation *a = (struct activation *)w;
  a->ready = true;
  a->status = status;
  drain_activations();
}

/* Makes `s` (loaded from `text` as `name`) active once its load's store
 * writes are durable. Returns NULL when that is done (or failed) already,
 * with the answer in *res; else the pending activation, whose finish(arg,
 * res) comes later (provision_abandon silences it). Takes `s`. */
static void *activation_start(const char *name, script_t *s, const char *text, size_t len,
                              double ms, int ok_status, provision_finish_fn finish, void *arg,
                              provision_result_t *res) {
  struct activation *a = calloc(1, sizeof *a);
  if (a == NULL || buf_append(&a->text, text, len)) {
    free(a);
    script_release(s);
    result(res, 500, "failed: out of memory");
    return NULL;
  }
  snprintf(a->name, sizeof a->name, "%s", name);
  a->s = s;
  a->ms = ms;
  a->ok_status = ok_status;
  a->finish = finish;
  a->arg = arg;
  bool completed = false;
  a->completed = &completed;
  a->res = res;
  int rc = script_when_durable(s, &a->w, load_durable);
  if (rc != 1) {
    a->ready = true;
    a->status = rc;
  }
  if (act_tail)
    act_tail->next = a;
  else
    act_head = a;
  act_tail = a;
  drain_activations();
  if (completed)
    return NULL;
  a->completed = NULL;
  a->res = NULL;
  return a;
}

void provision_abandon(void *pending) {
  struct activation *a = pending;
  a->finish = NULL;
}

/* Loads `text` as provision `name` and makes it active once its store
 * writes are durable: at once, or later (NULL finish: the log says when).
 * With `block` (the start, before serving), waits for them. */
static int load_and_activate(const char *name, const char *text, size_t len, bool block, char *err,
                             size_t errlen) {
  script_t *s;
  double ms;
  provision_result_t res;
  int rc = load(name, text, len, &s, &ms, err, errlen);
  if (rc)
    return rc;
  if (block && (rc = script_store_sync())) {
    snprintf(err, errlen, "the store writes of its load could not be made durable (%s)",
             strerror(-rc));
    log_error("provision '%s' failed to load: %s", name, err);
    script_release(s);
    return rc;
  }
  activation_start(name, s, text, len, ms, 200, NULL, NULL, &res);
  return 0;
}

static int load_default(void) {
  char err[512];
  script_t *s;
  int rc = script_load_default(&P.opts, &s, err, sizeof err);
  metrics_provision_load(rc == 0);
  if (rc) {
    log_error("the built-in default failed to load: %s", err);
    return -ENOMEM;
  }
  P.active_name[0] = '\0';
  buf_reset(&P.active_source);
  script_release(P.active);
  P.active = s;
  return 0;
}

/* Finds the stored file of `name`: the state directory (when used) wins
 * over the provisions directory; "name.lua" over "name". */
static bool find_file(const char *name, char *path, size_t n, bool *in_state_dir) {
  const char *dirs[2] = {P.read_only ? P.state_dir : NULL, P.dir};
  static const char *const suffixes[] = {".lua", ""};
  for (int d = 0; d < 2; d++) {
    if (dirs[d] == NULL)
      continue;
    for (int k = 0; k < 2; k++) {
      struct stat st;
      snprintf(path, n, "%s/%s%s", dirs[d], name, suffixes[k]);
      if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
        if (in_state_dir)
          *in_state_dir = d == 0;
        return true;
      }
    }
  }
  return false;
}

int provision_init(const script_opts_t *opts, const char *state_dir) {
  P.opts = *opts;
  P.dir = strdup(opts->dir);
  P.state_dir = strdup(state_dir);
  if (P.dir == NULL || P.state_dir == NULL)
    return -ENOMEM;
  P.opts.dir = P.dir;
  if (access(P.dir, W_OK) != 0) {
    P.read_only = true;
    log_info("provisions directory %s is read-only: posted provisions are stored in %s", P.dir,
             P.state_dir);
  }
  char path[4096];
  if (!find_file("initial", path, sizeof path, NULL)) {
    log_info("no 'initial' provision in %s: serving the built-in default", P.dir);
    return load_default();
  }
  buf_t text = BUF_INIT;
  char err[1024];
  int rc = provision_read_file(path, &text);
  if (rc)
    log_error("cannot read %s: %s", path, strerror(-rc));
  else if (load_and_activate("initial", text.data ? text.data : "", text.len, true, err,
                             sizeof err) == 0) {
    buf_free(&text);
    return 0;
  }
  buf_free(&text);
  log_warn("serving the built-in default until a provision loads");
  return load_default();
}

script_t *provision_active(void) { return P.active; }

const char *provision_dir(void) { return P.dir; }

void provision_shutdown(void) {
  /* Activations still waiting for the store: their clients are gone. */
  while (act_head) {
    struct activation *a = act_head;
    act_head = a->next;
    if (!a->ready)
      script_when_durable_cancel(&a->w);
    script_release(a->s);
    if (a->finish == post_activated) {
      provision_post_abandon(a->arg);
      post_activated(a->arg, NULL);
    }
    buf_free(&a->text);
    free(a);
  }
  act_tail = NULL;
  script_release(P.active);
  P.active = NULL;
  for (size_t i = 0; i < P.nentries; i++)
    free(P.entries[i].error);
  free(P.entries);
  free(P.dir);
  free(P.state_dir);
  buf_free(&P.active_source);
  memset(&P, 0, sizeof P);
}

static void result(provision_result_t *res, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  res->status = status;
  vsnprintf(res->message, sizeof res->message, fmt, ap);
  va_end(ap);
}

/* Writes name.lua into the directory `dfd` so that a reader sees the old
 * file or the new one, never a part: a temp file beside it, fsync, rename,
 * fsync of the dir. The temp file is always a new one (safedir_create): a
 * link planted at its name is never written through. */
static int write_atomically(int dfd, const char *dir, const char *name, const char *text,
                            size_t len, struct stat *st) {
  char tmp[PROVISION_NAME_MAX + 40], file[PROVISION_NAME_MAX + 8];
  snprintf(file, sizeof file, "%s.lua", name);
  snprintf(tmp, sizeof tmp, ".%s.lua.tmp-%ld", name, (long)getpid());
  int fd = safedir_create(dfd, dir, tmp, 0644);
  if (fd < 0)
    return fd;
  int rc = 0;
  for (size_t off = 0; off < len;) {
    ssize_t n = write(fd, text + off, len - off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      rc = -errno;
      break;
    }
    off += (size_t)n;
  }
  if (rc == 0 && fsync(fd) != 0)
    rc = -errno;
  if (close(fd) != 0 && rc == 0)
    rc = -errno;
  if (rc == 0 && renameat(dfd, tmp, dfd, file) != 0)
    rc = -errno;
  if (rc) {
    unlinkat(dfd, tmp, 0);
    return rc;
  }
  fsync(dfd);
  return fstatat(dfd, file, st, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
}

int provision_check_state_dir(const char *dir, const char *state_dir, char *err, size_t errlen) {
  if (access(dir, W_OK) == 0)
    return 0;
  int fd = safedir_open(state_dir, err, errlen);
  if (fd < 0)
    return fd;
  close(fd);
  return 0;
}

/* A validated provision on its way to disk. The loop thread owns every
 * field but `rc`, `why` and `st`, which the threadpool writes. */
struct post_job {
  uv_work_t work;
  char name[PROVISION_NAME_MAX + 1];
  char dir[4096];
  buf_t text;
  script_t *s;
  double ms;
  int rc;
  char why[1024]; /* what rc means, when a refused state dir says more than errno */
  struct stat st;
  provision_finish_fn finish; /* NULL once abandoned */
  void *arg;
  struct post_job *next; /* waiting behind the one being written */
};

/* Posts are stored one at a time, in the order they came: two posts of
 * one name written at once would share a temp file, and the one served
 * could differ from the one left on disk. */
static struct post_job *post_writing, *post_waiting, *post_waiting_tail;

static void post_write(uv_work_t *w);
static void post_written(uv_work_t *w, int status);

/* Starts the next waiting write, if none is running. */
static void post_next(void) {
  while (post_writing == NULL && post_waiting) {
    struct post_job *j = post_waiting;
    post_waiting = j->next;
    if (post_waiting == NULL)
      post_waiting_tail = NULL;
    int rc = uv_queue_work(P.opts.loop, &j->work, post_write, post_written);
    if (rc == 0) {
      post_writing = j;
      break;
    }
    provision_result_t res;
    script_release(j->s);
    result(&res, 500, "failed: cannot store the provision: %s", uv_strerror(rc));
    if (j->finish)
      j->finish(j->arg, &res);
    buf_free(&j->text);
    free(j);
  }
}

static void post_write(uv_work_t *w) {
  struct post_job *j = w->data;
  /* The state dir is checked again on each write: it may have been
   * removed (and taken by someone else) since the start. */
  int dfd = P.read_only ? safedir_open(j->dir, j->why, sizeof j->why)
                        : open(j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) {
    j->rc = P.read_only ? dfd : -errno;
    return;
  }
  j->rc = write_atomically(dfd, j->dir, j->name, j->text.data ? j->text.data : "", j->text.len,
                           &j->st);
  close(dfd);
}

/* The post's activation is done: the client (if it is still there) gets
 * the answer, and the job goes. */
static void post_activated(void *arg, const provision_result_t *res) {
  struct post_job *j = arg;
  if (j->finish)
    j->finish(j->arg, res);
  buf_free(&j->text);
  free(j);
}

static void post_written(uv_work_t *w, int status) {
  struct post_job *j = w->data;
  provision_result_t res;
  if (status < 0 && j->rc == 0)
    j->rc = status;
  post_writing = NULL;
  if (j->rc) {
    script_release(j->s);
    const char *why = j->why[0] ? j->why : strerror(-j->rc);
    log_error("provision '%s' was not stored in %s: %s", j->name, j->dir, why);
    result(&res, 500, "failed: cannot store %s.lua in %s: %s", j->name, j->dir, why);
    post_activated(j, &res);
  } else {
    struct entry *e = entry_for(j->name);
    if (e) {
      e->own_write = true;
      e->own = j->st;
    }
    /* Stored, so served (once its load's store writes are durable), even
     * if the client that posted it went away. */
    if (activation_start(j->name, j->s, j->text.data ? j->text.data : "", j->text.len, j->ms, 201,
                         post_activated, j, &res) == NULL)
      post_activated(j, &res);
  }
  post_next();
}

void *provision_post(const char *name, const char *text, size_t len, provision_result_t *res,
                     provision_finish_fn finish, void *arg) {
  struct post_job *j = calloc(1, sizeof *j);
  if (j == NULL || buf_append(&j->text, text, len)) {
    free(j);
    result(res, 500, "failed: out of memory");
    return NULL;
  }
  char err[900];
  if (load(name, text, len, &j->s, &j->ms, err, sizeof err)) {
    result(res, 400, "failed: %s", err);
    buf_free(&j->text);
    free(j);
    return NULL;
  }
  snprintf(j->name, sizeof j->name, "%s", name);
  snprintf(j->dir, sizeof j->dir, "%s", P.read_only ? P.state_dir : P.dir);
  j->finish = finish;
  j->arg = arg;
  j->work.data = j;
  if (post_waiting_tail)
    post_waiting_tail->next = j;
  else
    post_waiting = j;
  post_waiting_tail = j;
  if (post_writing == NULL) {
    /* Started now: a failure to start is this call's answer. */
    int rc = uv_queue_work(P.opts.loop, &j->work, post_write, post_written);
    post_waiting = post_waiting_tail = NULL;
    if (rc) {
      script_release(j->s);
      result(res, 500, "failed: cannot store the provision: %s", uv_strerror(rc));
      buf_free(&j->text);
      free(j);
      return NULL;
    }
    post_writing = j;
  }
  return j;
}

void provision_post_abandon(void *job) {
  struct post_job *j = job;
  j->finish = NULL;
}

void *provision_get(const char *name, provision_result_t *res, provision_finish_fn finish,
                    void *arg) {
  char path[4096];
  if (!find_file(name, path, sizeof path, NULL)) {
    result(res, 404, "failed: no provision '%s'", name);
    return NULL;
  }
  buf_t text = BUF_INIT;
  int rc = provision_read_file(path, &text);
  char err[900];
  script_t *s;
  double ms;
  void *pending = NULL;
  if (rc)
    result(res, 500, "failed: cannot read %s: %s", path, strerror(-rc));
  else if (load(name, text.data ? text.data : "", text.len, &s, &ms, err, sizeof err))
    result(res, 400, "failed: %s", err);
  else
    pending =
        activation_start(name, s, text.data ? text.data : "", text.len, ms, 200, finish, arg, res);
  buf_free(&text);
  return pending;
}

void provision_delete(const char *name, provision_result_t *res) {
  char path[4096];
  bool in_state;
  if (!find_file(name, path, sizeof path, &in_state)) {
    result(res, 404, "failed: no provision '%s'", name);
  } else if (strcmp(name, P.active_name) == 0) {
    result(res, 409, "failed: provision '%s' is active", name);
  } else if (P.read_only && !in_state) {
    result(res, 409, "failed: provision '%s' is in a read-only directory", name);
  } else if (unlink(path) != 0) {
    result(res, 500, "failed: cannot delete %s: %s", path, strerror(errno));
  } else {
    log_info("provision '%s' deleted (%s)", name, path);
    result(res, 200, "success: provision '%s' deleted", name);
  }
}

/* Adds an entry for every stored NAME.lua of `dir` (so the listing shows
 * files that were never loaded). */
static void scan(const char *dir) {
  DIR *d = opendir(dir);
  if (d == NULL)
    return;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    size_t n = strlen(de->d_name);
    char name[PROVISION_NAME_MAX + 1];
    if (n > 4 && strcmp(de->d_name + n - 4, ".lua") == 0 &&
        provision_name(de->d_name, n, name) == 0)
      entry_for(name);
  }
  closedir(d);
}

static int cmp_entries(const void *a, const void *b) {
  return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

static void put_time(buf_t *out, double t) {
  char stamp[TEXT_RFC3339_MS_LEN + 1];
  text_rfc3339_ms((int64_t)(t * 1000), stamp);
  buf_printf(out, "\"%s\"", stamp);
}

int provision_list(buf_t *out) {
  scan(P.dir);
  if (P.read_only)
    scan(P.state_dir);
  if (P.nentries > 1)
    qsort(P.entries, P.nentries, sizeof *P.entries, cmp_entries);
  buf_puts(out, "{\"active\":");
  const char *active = P.active_name[0] ? P.active_name : SCRIPT_DEFAULT_NAME;
  text_json_string(out, active, strlen(active));
  buf_puts(out, ",\"provisions\":[");
  bool first = true;
  if (P.active_name[0] == '\0') {
    buf_printf(out,
               "{\"name\":\"" SCRIPT_DEFAULT_NAME "\",\"active\":true,\"file\":null,"
               "\"loaded_at\":null,\"rules\":%zu,\"error\":null}",
               P.active ? script_rule_count(P.active) : 0);
    first = false;
  }
  for (size_t i = 0; i < P.nentries; i++) {
    const struct entry *e = &P.entries[i];
    char path[4096];
    bool stored = find_file(e->name, path, sizeof path, NULL);
    buf_puts(out, first ? "{\"name\":" : ",{\"name\":");
    first = false;
    text_json_string(out, e->name, strlen(e->name));
    buf_printf(out,
               ",\"active\":%s,\"file\":", strcmp(e->name, P.active_name) == 0 ? "true" : "false");
    if (stored)
      text_json_string(out, path, strlen(path));
    else
      buf_puts(out, "null");
    buf_puts(out, ",\"loaded_at\":");
    if (e->loaded)
      put_time(out, e->loaded_at);
    else
      buf_puts(out, "null");
    if (e->loaded)
      buf_printf(out, ",\"rules\":%zu,\"error\":", e->rules);
    else
      buf_puts(out, ",\"rules\":null,\"error\":");
    if (e->error)
      text_json_string(out, e->error, strlen(e->error));
    else
      buf_puts(out, "null");
    buf_putc(out, '}');
  }
  return buf_puts(out, "]}\n");
}

static bool same_file(const struct stat *a, const struct stat *b) {
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
         a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

void provision_file_changed(const char *file) {
  char name[PROVISION_NAME_MAX + 1], path[4096];
  if (provision_name(file, strlen(file), name))
    return;
  /* A post of this name is on the threadpool: the file may already be its
   * new one while `own` still describes the previous write (the directory's
   * fsync can outlast the watcher's delay). That post activates it. */
  if (post_writing && !P.read_only && strcmp(post_writing->name, name) == 0)
    return;
  snprintf(path, sizeof path, "%s/%s", P.dir, file);
  struct stat st;
  if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
    return; /* deleted, or not a file: nothing to serve */
  struct entry *e = entry_for(name);
  if (e && e->own_write && same_file(&e->own, &st))
    return; /* our own POST, already active */
  buf_t text = BUF_INIT;
  char err[1024];
  if (provision_read_file(path, &text) == 0)
    load_and_activate(name, text.data ? text.data : "", text.len, false, err, sizeof err);
  buf_free(&text);
}

void provision_data_swapped(void) {
  char path[4096];
  if (P.active_name[0] == '\0' || !find_file(P.active_name, path, sizeof path, NULL))
    return;
  buf_t text = BUF_INIT;
  char err[1024];
  if (provision_read_file(path, &text) == 0 &&
      (text.len != P.active_source.len ||
       memcmp(text.data, P.active_source.data, text.len) != 0)) {
    char name[PROVISION_NAME_MAX + 1];
    snprintf(name, sizeof name, "%s", P.active_name);
    load_and_activate(name, text.data ? text.data : "", text.len, false, err, sizeof err);
  }
  buf_free(&text);
}

enum script_status provision_dispatch(void *ctx, const http_request_t *req, const char *remote,
                                      http_response_t *resp, script_done_fn done, void *data,
                                      void **pending) {
  (void)ctx;
  script_call_t *call;
  enum script_status st = script_dispatch(P.active, req, remote, resp, done, data, &call);
  *pending = call;
  return st;
}

void provision_dispatch_abandon(void *pending) { script_abandon(pending); }
