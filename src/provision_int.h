/* provision_int.h - what the provision*.c files share; nothing outside
 * them includes this header. */
#ifndef H1MOCK_PROVISION_INT_H
#define H1MOCK_PROVISION_INT_H

#include <stdbool.h>
#include <sys/stat.h>

#include "provision.h"

/* What the admin listing shows per name, and how to recognise our own
 * writes when the watcher reports them. */
struct provision_entry {
  char name[PROVISION_NAME_MAX + 1];
  bool loaded;
  double loaded_at; /* seconds since the epoch */
  size_t rules;
  char *error; /* last failed load, NULL after a good one */
  bool own_write;
  struct stat own; /* the file as h1mock wrote it */
};

struct provision_post_job;

struct provision {
  provision_opts_t o; /* o.script.dir and o.state_dir point at dir and state_dir */
  char *dir, *state_dir;
  bool read_only; /* the provisions directory is: posts go to the state directory */
  bool closing;   /* provision_close ran: nothing becomes active any more */
  script_t *active;
  char active_name[PROVISION_NAME_MAX + 1]; /* "" while the default serves */
  buf_t active_source;
  struct provision_entry *entries;
  size_t nentries, capentries;
  /* Posts are stored one at a time, in the order they came: two posts of
   * one name written at once would share a temp file, and the one served
   * could differ from the one left on disk. */
  struct provision_post_job *writing, *waiting, *waiting_tail;
  /* Loaded provisions waiting for the store writes of their load to be
   * durable before they swap in, in the order they loaded (provision.c). */
  struct provision_activation *act_head, *act_tail;
};

/* provision.c: swapping */

/* Makes a loaded script the active one (the reference passes to p), and
 * notes it as loaded now. Requests still running on the old one hold their
 * own references and finish there. `ms` is how long the load took, for
 * the log line. */
void provision_swap(provision_t *p, const char *name, script_t *s, const char *text, size_t len,
                    double ms);

/* Swaps `s` in as provision_swap does, once the store writes its load
 * made are durable; swaps happen in the order they were asked for, so a
 * later load never overtakes one still waiting. Returns NULL when that is
 * done already, with the answer in *res: `ok_status`, or 503 when a failed
 * commit undid those writes (`s` is then released and nothing swapped).
 * Else returns the pending activation: finish(arg, res) comes later, unless
 * provision_abandon silences it (the swap still happens). Takes `s`. */
void *provision_swap_when_durable(provision_t *p, const char *name, script_t *s, const char *text,
                                  size_t len, double ms, int ok_status, provision_finish_fn finish,
                                  void *arg, provision_result_t *res);

/* provision_load.c: loading a state */

/* Loads `text` as provision `name` into a new script; a failure is logged
 * and remembered for the listing. *ms is the time it took. Returns 0 or
 * script_load's error, with the message in err. */
int provision_load(provision_t *p, const char *name, const char *text, size_t len, script_t **out,
                   double *ms, char *err, size_t errlen);

/* The built-in default, made active. 0 or -ENOMEM. */
int provision_load_default(provision_t *p);

/* Loads the stored file at `path` as `name` and makes it active once the
 * store writes of its load are durable; with `block`, waits for them here.
 * Returns 0, the -errno of reading it (logged), the load's error (in err),
 * or the failed commit's. */
int provision_load_file(provision_t *p, const char *name, const char *path, bool block, char *err,
                        size_t errlen);

/* provision_list.c: what is known per name */

/* The entry of `name`, added when new; NULL when out of memory. */
struct provision_entry *provision_entry(provision_t *p, const char *name);
void provision_entries_free(provision_t *p);

/* provision_dir.c: the directories */

/* Finds the stored file of `name`: the state directory (when used) wins
 * over the provisions directory; "name.lua" over "name". */
bool provision_find_file(const provision_t *p, const char *name, char *path, size_t n,
                         bool *in_state_dir);

/* Where posted provisions are written. */
const char *provision_write_dir(const provision_t *p);

/* Writes name.lua into the directory `dfd` (named `dir` in messages) so
 * that a reader sees the old file or the new one, never a part; *st is the
 * file written. Returns 0 or -errno. Thread-safe. */
int provision_write_file(int dfd, const char *dir, const char *name, const char *text, size_t len,
                         const struct log *lg, struct stat *st);

/* provision_save.c: storing */

/* Fills a result. */
void provision_result(provision_result_t *res, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The finish of a post's activation: its client, if still there, gets
 * the answer, and the job goes. A NULL `res`: the server stopped first,
 * nobody is answered. */
void provision_post_activated(void *job, const provision_result_t *res);

/* True while a post of `name` is being written: the watcher leaves the
 * file to it. */
bool provision_post_writing(const provision_t *p, const char *name);

#endif
