/* provision.h - which provision serves traffic, and how one gets there.
 *
 * This is the seam the directory watcher and the admin API will call: each
 * load builds a complete new script_t first and swaps it in only when it
 * loaded cleanly, so a failed load changes nothing that is serving.
 */
#ifndef H1MOCK_PROVISION_H
#define H1MOCK_PROVISION_H

#include <stddef.h>

#include "buf.h"
#include "script.h"

/* Remembers the options and loads "initial" (initial.lua or initial) from
 * the directory, or the built-in default when there is none or it fails
 * (the failure is logged with file:line). Returns 0, or -ENOMEM. */
int provision_init(const script_opts_t *opts);

/* The provision serving now (borrowed: retain it to keep it). */
script_t *provision_active(void);

/* Loads `text` as provision `name` (chunk name `name`.lua) and, when it
 * loads, makes it the active one. Returns 0 or -EINVAL/-ENOMEM with
 * "file:line: message" in err; on error the active provision stays. */
int provision_activate(const char *name, const char *text, size_t len, char *err, size_t errlen);

/* Releases the active provision. */
void provision_shutdown(void);

/* Reads a whole file into `out`. Returns 0 or -errno. */
int provision_read_file(const char *path, buf_t *out);

/* The traffic dispatcher (conn_dispatch_fn): answers from the active
 * provision. */
enum script_status provision_dispatch(void *ctx, const http_request_t *req, const char *remote,
                                      http_response_t *resp, script_done_fn done, void *data,
                                      script_call_t **call);

#endif
