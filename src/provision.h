/* provision.h - which provision serves traffic, and how one gets there.
 *
 * Every way in (start, the directory watcher, the admin API) goes through
 * here: a provision is loaded completely into a new script_t first and
 * swapped in only when it loaded cleanly, so a failed load changes nothing
 * that is serving. Requests in flight keep the script they started on.
 *
 * Provisions are files named <name>.lua in the provisions directory, or in
 * the state directory when the provisions directory is read-only (a
 * Kubernetes ConfigMap volume). The module also remembers, per name, when
 * it was last loaded, its rule count and its last load error, for the admin
 * API's listing.
 */
#ifndef H1MOCK_PROVISION_H
#define H1MOCK_PROVISION_H

#include <stddef.h>

#include "buf.h"
#include "script.h"

#define PROVISION_NAME_MAX 128

/* Remembers the options and directories, then loads "initial"
 * (initial.lua or initial) from the provisions directory, or the built-in
 * default when there is none or it fails (logged with file:line). Returns
 * 0, or -ENOMEM. */
int provision_init(const script_opts_t *opts, const char *state_dir);

/* When the provisions directory `dir` is read-only, posted provisions will
 * go to `state_dir`: creates it (0700), or refuses it when it is a link,
 * another user's, or writable by others (safedir_open), so that the start
 * can stop on it. Returns 0, or -errno with the reason in err. */
int provision_check_state_dir(const char *dir, const char *state_dir, char *err, size_t errlen);

/* The provision serving now (borrowed: retain it to keep it). */
script_t *provision_active(void);

/* Releases the active provision and forgets the registry. */
void provision_shutdown(void);

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
void *provision_post(const char *name, const char *text, size_t len, provision_result_t *res,
                     provision_finish_fn finish, void *arg);
void provision_post_abandon(void *job);

/* Loads the stored provision `name` and makes it active once the store
 * writes its load made are durable. Returns NULL with the answer in `res`
 * (200, 404, 400, 503), or a pending job: finish(arg, res) comes later,
 * unless provision_abandon(job) silences it (the activation still
 * happens). Every load, the directory watcher's too, is reported (logged,
 * answered) only once its store writes are durable. */
void *provision_get(const char *name, provision_result_t *res, provision_finish_fn finish,
                    void *arg);
void provision_abandon(void *job);

/* Deletes the stored provision `name` (200, 404, 409). */
void provision_delete(const char *name, provision_result_t *res);

/* Appends {"active": ..., "provisions": [...]} to `out`. */
int provision_list(buf_t *out);

/* The watcher saw `file` (a base name ending in ".lua") change: it becomes
 * the active provision, unless the change was h1mock's own write. */
void provision_file_changed(const char *file);

/* The watcher saw a ConfigMap's "..data" swapped: reload the active
 * provision if the content behind its file changed. */
void provision_data_swapped(void);

/* The provisions directory, as given. */
const char *provision_dir(void);

/* Reads a whole file into `out`. Returns 0 or -errno. */
int provision_read_file(const char *path, buf_t *out);

/* The traffic dispatcher (conn_dispatch_fn): answers from the active
 * provision. */
enum script_status provision_dispatch(void *ctx, const http_request_t *req, const char *remote,
                                      http_response_t *resp, script_done_fn done, void *data,
                                      void **pending);
/* conn_env's abandon for traffic. */
void provision_dispatch_abandon(void *pending);

#endif
