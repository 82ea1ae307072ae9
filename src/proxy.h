/* proxy.h - what a forwarding proxy changes in the messages it passes on,
 * without I/O: the outbound request made from a received one, the answer
 * made from an upstream's, loop detection and the gateway errors.
 *
 * Hop-by-hop headers (RFC 9110 7.6.1) are dropped both ways: Connection,
 * Keep-Alive, Proxy-*, TE, Trailer, Transfer-Encoding, Upgrade, and every
 * header the message's Connection names. The received Host is dropped too
 * (the client names the upstream's authority), and a `Via: 1.1 <token>`
 * is added, the token unique to this server, so that a request that comes
 * back to the server that forwarded it is refused instead of going round
 * for ever.
 */
#ifndef H1MOCK_PROXY_H
#define H1MOCK_PROXY_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "http.h"
#include "http_client.h"

/* A Via token: "h1mock-" and 16 hex digits. */
#define PROXY_TOKEN_SIZE 24

/* Fills token[PROXY_TOKEN_SIZE] with a fresh random Via token. */
void proxy_token(char *token);

/* Checks a base URL for --proxy or http.forward: an http:// URL without a
 * query or fragment. Returns 0, or -EINVAL with *why saying what is
 * wrong. */
int proxy_check_base(const char *base, const char **why);

/* An outbound request and the storage its pointers use. */
typedef struct proxy_out {
  http_client_request_t req;
  http_header_t headers[HTTP_MAX_HEADERS + 1];
  buf_t url;
  buf_t via;
} proxy_out_t;

/* Builds in `out` the request that forwards `req` to `base` (the base's
 * path, less a final "/", is put before the request's path; the query
 * follows). `req` must outlive out->req, which points into both. `out`
 * starts zeroed (or as a previous call left it); free it with
 * proxy_out_free. Returns 0 or -ENOMEM. */
int proxy_request(const http_request_t *req, const char *base, const char *token,
                  uint64_t timeout_ms, proxy_out_t *out);

void proxy_out_free(proxy_out_t *out);

/* True when a Via header of `req` holds `token`: this server forwarded
 * the request already. */
bool proxy_loop(const http_request_t *req, const char *token);

/* True when the header `name` of a message with headers hs[0..n) is
 * hop-by-hop. */
bool proxy_hop_header(const char *name, size_t nlen, const http_header_t *hs, size_t n);

/* Makes `resp` the upstream's answer `r` (which succeeded): its status,
 * its end-to-end headers, its body. Returns 0 or -ENOMEM. */
int proxy_response(const http_client_result_t *r, http_response_t *resp);

/* Makes `resp` the gateway's own answer for a call that failed with
 * `error`: 504 when it timed out, else 502, the text saying why. */
void proxy_failed(http_response_t *resp, const char *error);

/* Makes `resp` the 508 for a request that came round to this server. */
void proxy_looped(http_response_t *resp);

#endif
