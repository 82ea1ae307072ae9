/* log.h - one line per event: "<RFC 3339 UTC time> <LEVEL> <message>".
 *
 * A log_t says where the lines of one server go (a descriptor: stderr for
 * the program) and whether DEBUG lines are written; each module that logs
 * is given the log_t of the server it belongs to, so two servers in one
 * process log apart. Lines are written with a single write(2) so that they
 * never interleave, and a message holding newlines (a Lua traceback) is
 * indented after its first line so that each event still starts at column
 * 0. Any thread may log (the watchdog's does): a log_t is not changed once
 * the threads that read it started.
 */
#ifndef H1MOCK_LOG_H
#define H1MOCK_LOG_H

#include <stdarg.h>
#include <stdbool.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

typedef struct log {
  int fd;       /* where lines are written */
  bool verbose; /* DEBUG lines are written too */
} log_t;

/* A logger for `fd`. */
static inline log_t log_make(int fd, bool verbose) { return (log_t){fd, verbose}; }

/* True when DEBUG lines of `lg` are written: worth checking before
 * formatting an expensive one. A NULL `lg` (code that was given no
 * logger) writes to stderr without DEBUG lines. */
bool log_verbose(const log_t *lg);

void log_msg(const log_t *lg, enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_vmsg(const log_t *lg, enum log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#define log_debug(lg, ...) log_msg(lg, LOG_DEBUG, __VA_ARGS__)
#define log_info(lg, ...) log_msg(lg, LOG_INFO, __VA_ARGS__)
#define log_warn(lg, ...) log_msg(lg, LOG_WARN, __VA_ARGS__)
#define log_error(lg, ...) log_msg(lg, LOG_ERROR, __VA_ARGS__)

#endif
