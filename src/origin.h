/* origin.h - who answered a traffic request: the rule that matched and the
 * provision it belongs to.
 *
 * The traffic dispatcher fills an origin_t once the answer is final; the
 * journal, the metrics and the access log read it after the response is
 * queued. It holds copies, since the provision may be gone by then. It is
 * kept apart from the response: the HTTP core knows nothing of rules or
 * provisions.
 */
#ifndef H1MOCK_ORIGIN_H
#define H1MOCK_ORIGIN_H

#include <stdbool.h>

#include "buf.h"

typedef struct origin {
  bool matched; /* a rule matched: `endpoint` is its endpoint (else empty) */
  bool proxied; /* no rule matched and --proxy answered */
  buf_t endpoint;
  buf_t provision; /* the name of the provision that answered ("" when none did) */
  /* The outbound calls the request made (http.request), as the elements
   * of a JSON array: `{...},{...}` ("" when none). */
  buf_t calls;
} origin_t;

/* Forgets who answered (no rule, no provision); keeps the allocations. */
static inline void origin_reset(origin_t *o) {
  o->matched = false;
  o->proxied = false;
  buf_reset(&o->endpoint);
  buf_reset(&o->provision);
  buf_reset(&o->calls);
}

static inline void origin_free(origin_t *o) {
  buf_free(&o->endpoint);
  buf_free(&o->provision);
  buf_free(&o->calls);
  o->matched = false;
}

#endif
