/* provision.h - which provision serves traffic, and how one gets there.
 *
 * Every way in (start, the directory watcher, the admin API) goes through
 * a provision_t: a provision is loaded completely into a new script_t
 * first and swapped in only when it loaded cleanly, so a failed load
 * changes nothing that is serving. Requests in flight keep the script they
 * started on.
 *
 * Provisions are files named <name>.lua in the provisions directory, or in
 * the state directory when the provisions directory is read-only (a
 * Kubernetes ConfigMap volume). A provision_t also remembers, per name,
 * when it was last loaded, its rule count and its last load error, for the
 * admin API's listing.
 *
 * The jobs live in one file each: provision.c swaps (and owns the object),
 * provision_load.c loads a state from text or a stored file,
 * provision_save.c stores and deletes files, provision_list.c lists them,
 * provision_dir.c knows the directories.
 *
 * A load is reported done (swapped in, logged, answered) only once the
 * store writes it made are durable (store_when_durable); a commit that
 * fails keeps the provision out and answers 503.
 */
#ifndef H1MOCK_PROVISION_H
#define H1MOCK_PROVISION_H

#include <stddef.h>

#include "buf.h"
#include "script.h"

#define PROVISION_NAME_MAX 128

struct metrics;

typedef struct provision provision_t;

typedef struct provision_opts {
  script_opts_t script;    /* how each provision loads; script.dir is the provisions directory */
  const char *state_dir;   /* where posted provisions go when that directory is read-only */
  struct metrics *metrics; /* counts every load */
} provision_opts_t;

/* Remembers the options (strings are copied) and finds out whether the
 * provisions directory is writable; loads nothing yet. Returns 0, or
 * -ENOMEM. */
int provision_new(const provision_opts_t *o, provision_t **out);

/* Loads "initial" (initial.lua or initial) from the provisions directory,
 * or the built-in default when there is none or it fails (logged with
 * file:line). Blocks until the store writes of the load are durable (the
 * start comes before serving). Returns 0, or -ENOMEM. */
int provision_start(provision_t *p);

/* The server stopped: the active provision is released, a post still
 * being written is not activated when it is done, and loads still waiting
 * for the store are dropped without an answer. */
void provision_close(provision_t *p);

/* Frees everything, once the loop has run the writes in flight to their
 * end (NULL: nothing). */
void provision_free(provision_t *p);

/* When the provisions directory `dir` is read-only, posted provisions will
 * go to `state_dir`: creates it (0700), or refuses it when it is a link,
 * another user's, or writable by others (safedir_open), so that the start
 * can stop on it. Returns 0, or -errno with the reason in err. */
int provision_check_state_dir(const char *dir, const char *state_dir, char *err, size_t errlen);

/* The provision serving now (borrowed: retain it to keep it). */
script_t *provision_active(const provision_t *p);

/* The provisions directory, as given. */
const char *provision_dir(const provision_t *p);

/* Turns a name as a client gave it ("foo" or "foo.lua") into the
 * provision's name in `out`. Returns 0, or -EINVAL when it is not 1 to 128
 * of [A-Za-z0-9._-], starts with '.', or holds "..". */
int provision_name(const char *given, size_t len, char out[PROVISION_NAME_MAX + 1]);

/* What the admin API answers: an HTTP status and a sentence for
 * {"result": ...}. */
typedef struct provision_result {
  int status;
  char message[1024];
} provision_result_t;

typedef void (*provision_finish_fn)(void *arg, const provision_result_t *res);

/* Validates `text` as provision `name` now; when it is invalid fills `res`
 * (400) and returns NULL. Otherwise stores it atomically as name.lua on the
 * libuv threadpool (the fsyncs must not stall traffic), makes it active
 * when stored and when the store writes its load made are durable, and
 * calls finish(arg, res) with 201 (500 when it could not be stored, 503
 * when its store writes failed); returns the pending job, which
 * provision_post_abandon turns into a silent one. */
void *provision_post(provision_t *p, const char *name, const char *text, size_t len,
                     provision_result_t *res, provision_finish_fn finish, void *arg);
void provision_post_abandon(void *job);

/* Loads the stored provision `name` and makes it active once the store
 * writes its load made are durable. Returns NULL with the answer in `res`
 * (200, 404, 400, 500, 503), or a pending job: finish(arg, res) comes
 * later, unless provision_abandon(job) silences it (the activation still
 * happens). */
void *provision_activate(provision_t *p, const char *name, provision_result_t *res,
                         provision_finish_fn finish, void *arg);
void provision_abandon(void *job);

/* Deletes the stored provision `name` (200, 404, 409). */
void provision_delete(provision_t *p, const char *name, provision_result_t *res);

/* Appends {"active": ..., "provisions": [...]} to `out`. */
int provision_list(provision_t *p, buf_t *out);

/* The watcher saw `file` (a base name: NAME.lua, or NAME without a dot)
 * change: it becomes the active provision, unless the change was h1mock's
 * own write, or it is NAME while NAME.lua exists (which wins). */
void provision_file_changed(provision_t *p, const char *file);

/* The watcher saw a ConfigMap's "..data" swapped: reload the active
 * provision if the content behind its file changed. */
void provision_data_swapped(provision_t *p);

/* Reads a whole file into `out`. Returns 0 or -errno. */
int provision_read_file(const char *path, buf_t *out);

#endif
