/* admin.h - the admin API on its own port (default 8074). */
#ifndef H1MOCK_ADMIN_H
#define H1MOCK_ADMIN_H

#include "conn.h"

struct store;
struct journal;

/* The store that /app/v1/store shows, seeds and resets. */
void admin_set_store(struct store *s);

/* The journal that /app/v1/requests reads and clears (NULL: answers as a
 * disabled journal). */
void admin_set_journal(struct journal *j);

/* With a token, every admin call but /healthz and /metrics needs
 * "Authorization: Bearer <token>" (401 otherwise). NULL: open. The string
 * must outlive the server. */
void admin_set_token(const char *token);

/* Without a token, admin calls from peers that are not loopback get 403
 * (/healthz and /metrics excepted) unless `open` is true (--admin-open). */
void admin_set_open(bool open);

/* The admin dispatcher (conn_dispatch_fn); always answers at once. */
enum script_status admin_dispatch(void *ctx, const http_request_t *req, const char *remote,
                                  http_response_t *resp, script_done_fn done, void *data,
                                  void **pending);
/* conn_env's abandon for the admin port. */
void admin_abandon(void *pending);

#endif
