/* log.c - timestamped lines on a server's log descriptor. */
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "text.h"

bool log_verbose(const log_t *lg) { return lg && lg->verbose; }

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void log_vmsg(const log_t *lg, enum log_level level, const char *fmt, va_list ap) {
  if (level == LOG_DEBUG && !log_verbose(lg))
    return;
  struct timeval tv;
  gettimeofday(&tv, NULL);
  char stamp[TEXT_RFC3339_MS_LEN + 1];
  text_rfc3339_ms((int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000, stamp);

  buf_t msg = BUF_INIT, line = BUF_INIT;
  if (buf_vprintf(&msg, fmt, ap) == 0 &&
      buf_printf(&line, "%s %s ", stamp, level_names[level]) == 0) {
    for (size_t i = 0; i < msg.len; i++) {
      buf_putc(&line, msg.data[i]);
      if (msg.data[i] == '\n' && i + 1 < msg.len)
        buf_puts(&line, "    ");
    }
    if (line.len == 0 || line.data[line.len - 1] != '\n')
      buf_putc(&line, '\n');
    ssize_t rc = write(lg ? lg->fd : STDERR_FILENO, line.data, line.len);
    (void)rc; /* nowhere left to report a failing log */
  }
  buf_free(&msg);
  buf_free(&line);
}

void log_msg(const log_t *lg, enum log_level level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  log_vmsg(lg, level, fmt, ap);
  va_end(ap);
}
