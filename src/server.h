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

struct admin;
struct journal;
struct log;
struct metrics;
struct provision;

/* What a server is made of; everything outlives it. */
typedef struct server_opts {
  uv_loop_t *loop;
  const config_t *cfg;
  const struct log *log;
  struct metrics *metrics;     /* counts every traffic request answered */
  struct journal *journal;     /* records them (NULL or disabled: none) */
  struct admin *admin;         /* answers on the admin port */
  struct provision *provision; /* answers traffic; the watcher reloads it */
  int access_fd;               /* where the access log (cfg->access_log) is written */
} server_opts_t;

/* Raises the soft open-files limit to the hard one, binds both ports and
 * starts accepting; every traffic request answered is recorded in the
 * journal, counted in the metrics and written to the access log. Warns
 * when the admin port is reachable from other hosts without a token.
 * Returns 0, or a negative libuv error with one line for the user in err
 * (which address, which port, why); *out is set either way (NULL only when
 * out of memory): run the loop once to close what was opened, then
 * server_free it. */
int server_start(const server_opts_t *o, server_t **out, char *err, size_t errlen);

/* Stops as SIGTERM does (a second call changes nothing). Safe from any
 * thread. */
void server_stop(server_t *s);

/* Frees what is left after uv_run returned. */
void server_free(server_t *s);

#endif
