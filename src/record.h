/* record.h - --record DIR: the exchanges --proxy forwards, written as a
 * provision, DIR/recorded.lua, that answers them again without the
 * upstream.
 *
 * The file is readable Lua: a table of recorded answers (one entry per
 * method and path, the answers grouped by query string, in the order they
 * came) and the few lines that replay them. Every recorded byte reaches the
 * file inside a string literal escaped here (record_lua_string), so no
 * path, header or body an upstream sends can end the literal or add code.
 *
 * The whole file is rewritten after each new exchange, atomically (a new
 * temporary file renamed over it, safedir_replace), on the thread pool:
 * while one write runs, later exchanges wait for the next one, so a burst
 * costs a write or two. What is kept is capped (RECORD_MAX_EXCHANGES
 * exchanges, RECORD_MAX_BYTES bytes of paths, headers and bodies); past
 * the cap, exchanges are still forwarded but no longer recorded, and the
 * log says so once.
 */
#ifndef H1MOCK_RECORD_H
#define H1MOCK_RECORD_H

#include <stddef.h>

#include <uv.h>

#include "buf.h"
#include "http.h"

struct log;

#define RECORD_FILE "recorded.lua"
#define RECORD_MAX_EXCHANGES 1000
#define RECORD_MAX_BYTES (16u << 20)

typedef struct record record_t;

/* Records into `dir` (made, 0755, when absent), which must not be the
 * provisions directory `provisions` (the watcher would load every
 * rewrite). `upstream` is named in the file's heading. loop NULL: nothing
 * is written (record_text still works, for tests). Returns 0, or -errno
 * with "h1mock: --record: ..." in err. */
int record_open(uv_loop_t *loop, const char *dir, const char *provisions, const char *upstream,
                const struct log *lg, record_t **out, char *err, size_t errlen);

/* Adds what `req` got from the upstream, `resp` (before any hook changed
 * it), and schedules a write. HEAD and OPTIONS (answered by the GET rule
 * and by h1mock itself on replay) and paths a rule cannot spell (with '<'
 * or '>') are not recorded. */
void record_exchange(record_t *r, const http_request_t *req, const http_response_t *resp);

/* How many exchanges are recorded. */
size_t record_count(const record_t *r);

/* Appends the provision that replays what was recorded. 0 or -ENOMEM. */
int record_text(const record_t *r, buf_t *out);

/* Appends the n bytes of s as a Lua string literal: printable ASCII as it
 * is, '\\' and '"' escaped, \n \r \t, every other byte as \ddd. */
int record_lua_string(buf_t *out, const char *s, size_t n);

/* After the loop has ended (no write is running). NULL: nothing. */
void record_free(record_t *r);

#endif
