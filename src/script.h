/* script.h - the Lua side of h1mock, as the rest of the program sees it.
 *
 * A script_t is one loaded provision: its own lua_State, sandboxed, with the
 * runtime, the provision file run and registerRules() called, and the routes
 * compiled into a router. It is reference counted: the server holds one
 * reference to the active provision and every request in flight holds one,
 * so a request that sleeps across a swap finishes on the provision it started
 * on, and the old state is closed when its last request ends.
 *
 * No other module includes lua.h.
 */
#ifndef H1MOCK_SCRIPT_H
#define H1MOCK_SCRIPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "http.h"
#include "origin.h"
#include "store.h"

typedef struct script script_t;
struct journal;
struct log;
struct http_client;
struct metrics;
struct record;

typedef struct script_call script_call_t;

/* What the provisions of one server share for their loads: the embedded
 * runtime compiled once. NULL when out of memory. */
typedef struct script_runtime script_runtime_t;
script_runtime_t *script_runtime_new(void);
/* After the last load that used it (NULL: nothing). */
void script_runtime_free(script_runtime_t *rt);

typedef struct script_opts {
  uv_loop_t *loop;            /* for sleep(); NULL when checking offline */
  const char *dir;            /* where require() finds modules; NULL: embedded only */
  int64_t max_instructions;   /* per request, and for the load itself */
  size_t max_memory;          /* bytes each provision's Lua state may hold; 0: no limit */
  struct watchdog *watchdog;  /* told which request runs Lua now; NULL: none */
  const struct log *log;      /* the provision's log and print, and its failures */
  struct store *store;        /* what the `store` global reaches (NULL: it raises) */
  struct journal *journal;    /* what the `journal` global reads (NULL: finds nothing) */
  script_runtime_t *runtime;  /* shared by the loads (NULL: each compiles the runtime itself) */
  int64_t started_at;         /* h1mock.started_at, seconds since the epoch (0: the load's time) */
  struct http_client *client; /* what `http` calls go through (NULL: they fail) */
  struct metrics *metrics;    /* counts those calls (NULL: not counted) */
  const char *proxy;          /* --proxy: where unrouted requests go (NULL: they get 404) */
  const char *via;            /* this server's Via token (proxy.h), for forwarded requests */
  struct record *recorder;    /* --record: where --proxy's exchanges go (NULL: nowhere) */
  bool default_help;          /* the built-in default is the guide alone (--default help) */
  const char *cors;           /* --cors: CORS of provisions that set none; NULL: off, and "*"
                                 for the built-in default */
} script_opts_t;

/* Loads a provision from source text. `chunkname` is what error messages
 * show as the file ("initial.lua"). Returns 0 and a script with one
 * reference, or -EINVAL with "file:line: message" in err, or -ENOMEM. */
int script_load(const char *chunkname, const char *source, size_t len, const script_opts_t *opts,
                script_t **out, char *err, size_t errlen);

/* The name the built-in default provision goes by (journal, metrics, admin). */
#define SCRIPT_DEFAULT_NAME "(default)"

/* Loads the built-in default provision: the REST API, /health, a home page
 * and a 404 guide for other paths; the guide for every path when
 * opts->default_help. */
int script_load_default(const script_opts_t *opts, script_t **out, char *err, size_t errlen);

void script_retain(script_t *s);
void script_release(script_t *s);

size_t script_rule_count(const script_t *s);

/* The store writes `s` made while it loaded (store_when_durable): 0 when
 * they are durable or there are none, a negative errno when a failed commit
 * undid them, or 1: fn(w, status) is called on the loop once they are
 * durable or failed. A load is reported done only then. */
int script_when_durable(script_t *s, store_waiter_t *w, store_durable_fn fn);
void script_when_durable_cancel(script_t *s, store_waiter_t *w);

/* The provision's name: the chunk name without ".lua", "(default)" for the
 * built-in default. */
const char *script_name(const script_t *s);

/* Bytes in use by the provision's Lua state, and its limit (0: none). */
size_t script_memory(const script_t *s);
size_t script_memory_limit(const script_t *s);

/* Called when a pending request has its response in the http_response_t
 * given to script_dispatch. */
typedef void (*script_done_fn)(void *data);

enum script_status { SCRIPT_DONE, SCRIPT_PENDING };

/* Answers `req` into `resp` and notes in `origin` which endpoint (if any)
 * and which provision answered. SCRIPT_DONE: the response is ready now.
 * SCRIPT_PENDING: the view is sleeping, or its answer waits until the store
 * writes it made are durable (a commit that fails turns it into a 503);
 * `done(data)` is called later, and until then `req`, `resp`, `origin` and
 * `remote_addr` must stay valid, unless script_abandon(*call) is called
 * first. */
enum script_status script_dispatch(script_t *s, const http_request_t *req, const char *remote_addr,
                                   http_response_t *resp, origin_t *origin, script_done_fn done,
                                   void *data, script_call_t **call);

/* The connection of a pending request went away: its view is stopped and
 * `done` will not be called. */
void script_abandon(script_call_t *call);

#endif
