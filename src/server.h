/* server.h - the listeners (traffic and admin), the once-a-second sweep
 * (Date header, timeouts) and a graceful stop on SIGTERM/SIGINT. */
#ifndef H1MOCK_SERVER_H
#define H1MOCK_SERVER_H

#include <uv.h>

#include "config.h"

typedef struct server server_t;

struct journal;

/* Binds both ports and starts accepting; every traffic request answered is
 * recorded in `journal` (NULL or disabled: none), counted in the metrics
 * and written to the access log that cfg->access_log names. Warns when the
 * admin port is reachable from other hosts without a token. Returns 0, or a
 * negative libuv error with one line for the user in err (which address,
 * which port, why). */
int server_start(uv_loop_t *loop, const config_t *cfg, struct journal *journal, server_t **out,
                 char *err, size_t errlen);

/* Frees what is left after uv_run returned. */
void server_free(server_t *s);

#endif
