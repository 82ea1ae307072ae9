/* cors.h - Cross-Origin Resource Sharing on the traffic port, so that a
 * web page served from another origin can call the mock.
 *
 * A provision's CORS settings (from --cors, or its own app.cors) say which
 * origins may call it. When CORS is on, every answer gets
 * Access-Control-Allow-Origin ("*", the one configured origin, or the
 * request's Origin when several are configured and it is one of them),
 * and a preflight (OPTIONS with Origin and Access-Control-Request-Method)
 * also gets Access-Control-Allow-Methods, -Allow-Headers and -Max-Age.
 * An answer that carries Access-Control-Allow-Origin already (a view or a
 * hook set it) is left as it is: headers a provision sets win.
 *
 * No I/O and no Lua: the script layer calls these on a finished answer.
 */
#ifndef H1MOCK_CORS_H
#define H1MOCK_CORS_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "http.h"

/* How long a browser may cache a preflight's answer, by default. */
#define CORS_MAX_AGE 600
/* Bound of max_age: a day. */
#define CORS_MAX_AGE_LIMIT 86400

typedef struct cors {
  bool on;
  bool any;         /* every origin: Access-Control-Allow-Origin: * */
  bool credentials; /* Access-Control-Allow-Credentials: true (never with any) */
  int max_age;      /* seconds, Access-Control-Max-Age of preflights */
  buf_t origins;    /* the allowed origins, each followed by a NUL */
  size_t norigins;
  buf_t methods; /* "GET, POST": the preflight's methods; empty: the path's own */
  buf_t headers; /* "Content-Type, X-A": the preflight's headers; empty: those asked for */
} cors_t;

/* Off, with the defaults for when it is switched on. */
void cors_init(cors_t *c);
void cors_free(cors_t *c);

/* Sets `c` from an --cors value: "off", "*" or one origin
 * ("http://localhost:3000"). Returns 0, or -EINVAL with *why saying what
 * is wrong (c is then off), or -ENOMEM. */
int cors_parse(cors_t *c, const char *value, const char **why);

/* Switches CORS on for every origin ("*") or adds one origin. Returns 0,
 * or -EINVAL with *why (not an origin; "*" mixed with origins), or
 * -ENOMEM. An origin is "null" or scheme://host[:port], without a path. */
int cors_allow_any(cors_t *c, const char **why);
int cors_allow_origin(cors_t *c, const char *origin, size_t len, const char **why);

/* Adds a method (a name http_method_number knows) or a header name (a
 * token) to the preflight's lists. Returns 0, or -EINVAL with *why, or
 * -ENOMEM. */
int cors_add_method(cors_t *c, const char *name, size_t len, const char **why);
int cors_add_header(cors_t *c, const char *name, size_t len, const char **why);

/* True when `req` is a CORS preflight: OPTIONS with Origin and
 * Access-Control-Request-Method. */
bool cors_is_preflight(const http_request_t *req);

/* Adds the CORS headers of `c` to the answer `resp` of `req`, unless it
 * has Access-Control-Allow-Origin already. `allow` is the path's methods
 * as an Allow value ("GET, HEAD, OPTIONS"), or NULL when no rule matches
 * the path (a preflight then allows the method it asks for). Does not
 * change the status. Returns 0 or -ENOMEM. */
int cors_apply(const cors_t *c, const http_request_t *req, http_response_t *resp,
               const char *allow);

#endif
