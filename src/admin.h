/* admin.h - the admin API on its own port (default 8074). */
#ifndef H1MOCK_ADMIN_H
#define H1MOCK_ADMIN_H

#include <stdbool.h>

#include "conn.h"

struct journal;
struct log;
struct metrics;
struct provision;
struct store;

/* What the admin API answers about and with; everything outlives it. */
typedef struct admin_opts {
  struct store *store;         /* what /app/v1/store shows, seeds and resets (NULL: no store) */
  struct journal *journal;     /* what /app/v1/requests reads and clears (NULL: disabled) */
  struct metrics *metrics;     /* what /metrics renders */
  struct provision *provision; /* what /app/v1/provision lists, posts, activates, deletes */
  const struct log *log;
  /* With a token, every admin call but /healthz and /metrics needs
   * "Authorization: Bearer <token>" (401 otherwise). NULL: none. */
  const char *token;
  /* Without a token, admin calls from peers that are not loopback get 403
   * (/healthz and /metrics excepted) unless `open` is true (--admin-open). */
  bool open;
} admin_opts_t;

typedef struct admin admin_t;

/* The admin API of one server, or NULL when out of memory. */
admin_t *admin_new(const admin_opts_t *o);
void admin_free(admin_t *a);

/* Answers an admin call, now (CONN_DONE) or later (CONN_PENDING: a post
 * being stored, a provision or a store change waiting until the store
 * writes it made are durable), as a conn_dispatch_fn does; the admin port
 * has no origin to fill. */
enum conn_status admin_dispatch(void *ctx, const http_request_t *req, const char *remote,
                                http_response_t *resp, conn_done_fn done, void *data,
                                void **pending);
/* conn_env's abandon for the admin port. */
void admin_abandon(void *pending);

#endif
