/* dribble.h - a body sent slowly: `chunks` pieces, one every ms/chunks
 * milliseconds, as an http_stream_t that waits on a loop timer between
 * pieces (HTTP_STREAM_WAIT), so nothing blocks while it trickles. */
#ifndef H1MOCK_DRIBBLE_H
#define H1MOCK_DRIBBLE_H

#include <uv.h>

#include "buf.h"
#include "http.h"

/* The most pieces and milliseconds dribble() takes. */
#define DRIBBLE_MAX_CHUNKS 10000
#define DRIBBLE_MAX_MS 3600000u

/* A stream of `body` (taken: *body is left empty) in `chunks` pieces (at
 * least 1; fewer when the body has fewer bytes, but always one) over `ms`
 * milliseconds on `loop`. NULL when out of memory (body untouched). */
http_stream_t *dribble_new(uv_loop_t *loop, buf_t *body, unsigned chunks, unsigned ms);

#endif
