/* server.h - the listeners (traffic and admin) and their connection
 * limits, the once-a-second sweep (Date header, timeouts) and a graceful
 * stop on SIGTERM/SIGINT.
 *
 * Each port takes a bounded number of connections (--max-connections for
 * traffic, CONFIG_ADMIN_CONNECTIONS for the admin port); the surplus is
 * accepted, answered 503 when that fits in the socket at once, and closed.
 * Running out of descriptors is answered the same way, thanks to a spare
 * descriptor given up for the moment. Both are logged at most once a
 * minute per port, with the count refused since the last line. */
#ifndef H1MOCK_SERVER_H
#define H1MOCK_SERVER_H

#include <uv.h>

#include "config.h"

typedef struct server server_t;

struct journal;

/* Raises the soft open-files limit to the hard one, binds both ports and
 * starts accepting; every traffic request answered is
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
