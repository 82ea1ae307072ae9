/* h1mock.h - one mock server: the context that owns every part of it.
 *
 * An h1mock_t holds the configuration it was started with, its event loop,
 * its logger, metrics, store, journal, watchdog, provisions, admin API and
 * listeners, and passes each part what it needs: no part reaches another
 * through a global, so two servers run side by side in one process (each
 * on its own loop) and share nothing.
 */
#ifndef H1MOCK_H1MOCK_H
#define H1MOCK_H1MOCK_H

#include <uv.h>

#include "config.h"

typedef struct h1mock h1mock_t;

/* Where a server writes. */
typedef struct h1mock_io {
  int log_fd;    /* log lines (stderr) */
  int access_fd; /* the access log, when cfg->access_log asks for one (stdout) */
} h1mock_io_t;

/* Starts a server on `loop`, which is the server's alone (taking it down
 * closes every handle on it), as `cfg` says: checks the directories, opens
 * the store and the journal, binds both ports, starts the watchdog, the
 * directory watcher and loads the initial provision, then logs "ready".
 * `cfg` must outlive the server. Returns 0, or a negative errno or libuv
 * error with one line for the user in err ("h1mock: ..."); *out is then
 * NULL, and everything started was stopped and freed. */
int h1mock_start(const config_t *cfg, uv_loop_t *loop, const h1mock_io_t *io, h1mock_t **out,
                 char *err, size_t errlen);

/* Asks the server to stop as SIGTERM does: it stops accepting, finishes
 * the requests in flight and closes; uv_run(loop) then returns. Safe from
 * any thread, until uv_run(loop) has returned. */
void h1mock_stop(h1mock_t *h);

/* After uv_run(loop) returned: closes every handle left on the loop, runs
 * it until nothing is pending and frees the server; the caller then closes
 * the loop (uv_loop_close). NULL: nothing. */
void h1mock_free(h1mock_t *h);

#endif
