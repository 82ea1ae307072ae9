/* log.h - one line per event on stderr: "<RFC 3339 UTC time> <LEVEL> <message>".
 *
 * Lines are written with a single write(2) so that they never interleave,
 * and a message holding newlines (a Lua traceback) is indented after its
 * first line so that each event still starts at column 0. Any thread may
 * log (the watchdog's does): the only shared state is the verbose flag,
 * set before threads start.
 */
#ifndef H1MOCK_LOG_H
#define H1MOCK_LOG_H

#include <stdarg.h>
#include <stdbool.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* DEBUG lines are dropped unless verbose is on. */
void log_set_verbose(bool on);
bool log_verbose(void);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
