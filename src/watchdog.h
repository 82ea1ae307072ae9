/* watchdog.h - a thread that notices the event loop stuck in one event.
 *
 * While the loop runs Lua for a request (or a provision load), no libuv
 * timer can fire: a view spinning inside a C call that cannot yield (a
 * table.sort comparator, say) holds everything until its budget runs out.
 * The loop publishes what it starts running and clears it when the event
 * ends; this thread wakes a few times a second, and when one event has
 * kept the loop busy past the threshold it logs one WARN line naming it,
 * while it still runs. The thread never touches Lua: it reads only the
 * copy the loop published, under a mutex.
 */
#ifndef H1MOCK_WATCHDOG_H
#define H1MOCK_WATCHDOG_H

#include <stddef.h>
#include <stdint.h>

typedef struct watchdog watchdog_t;
struct log;

/* An event is reported once it has kept the loop busy this long. */
#define WATCHDOG_THRESHOLD_MS 1000
/* How often the thread looks. */
#define WATCHDOG_PERIOD_MS 250

/* Starts the thread, which writes its lines to `lg` (it must outlive the
 * watchdog). Returns 0 and the watchdog, or a negative libuv error
 * (nothing is left running). */
int watchdog_start(uint64_t threshold_ms, const struct log *lg, watchdog_t **out);

/* Stops the thread, waits for it and frees `w` (NULL: nothing). */
void watchdog_stop(watchdog_t *w);

/* The loop thread starts running Lua for one event: a request (`method`
 * non-NULL; `rule` is the endpoint, or NULL when no rule matched) or a
 * provision load (`method` NULL). `provision` names the provision as the
 * log line should ("slow.lua"). Strings are copied (the path is cut at 200
 * bytes). With w NULL it does nothing. */
void watchdog_enter(watchdog_t *w, const char *method, const char *path, size_t path_len,
                    const char *rule, const char *provision);

/* The event ended: the loop is free again. */
void watchdog_leave(watchdog_t *w);

#endif
