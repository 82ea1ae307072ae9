/* watcher.h - follows the provisions directory with uv_fs_event.
 *
 * A .lua file (or a file whose name has no dot at all, the Flask-based
 * h1mock's style) that is created, written, renamed into place or touched
 * becomes the active provision once its burst of events has been quiet for
 * WATCHER_SETTLE_MS (an editor's save or a large cp is one reload, and a
 * file still being written is not loaded half-way). A Kubernetes ConfigMap
 * update, which swaps the "..data" link, reloads the active provision when
 * its content changed.
 */
#ifndef H1MOCK_WATCHER_H
#define H1MOCK_WATCHER_H

#include <stdbool.h>

#include <uv.h>

#define WATCHER_SETTLE_MS 200

typedef struct watcher watcher_t;
struct log;
struct metrics;
struct provision;

/* Starts watching the directory of `p`, whose active provision the changes
 * reload; trouble is told to `lg`, events are counted in `m`. Returns 0 or
 * a libuv error (the server then runs without watching and says so). */
int watcher_start(uv_loop_t *loop, struct provision *p, const struct log *lg, struct metrics *m,
                  watcher_t **out);

/* True when a change of `file` (a base name in the directory) is one to
 * load: NAME.lua, or a NAME with no dot that is a valid provision name;
 * not a dot file, another extension (notes.txt, initial.lua.bak, x.swp),
 * or an editor's backup (foo~). */
bool watcher_wants(const char *file);

/* Stops watching; the memory goes when the handles have closed. */
void watcher_stop(watcher_t *w);

#endif
