/* log.c - timestamped lines on stderr. */
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "text.h"

static bool verbose;

void log_set_verbose(bool on) { verbose = on; }
bool log_verbose(void) { return verbose; }

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void log_vmsg(enum log_level level, const char *fmt, va_list ap) {
  if (level == LOG_DEBUG && !verbose)
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
    ssize_t rc = write(STDERR_FILENO, line.data, line.len);
    (void)rc; /* nowhere left to report a failing stderr */
  }
  buf_free(&msg);
  buf_free(&line);
}

void log_msg(enum log_level level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  log_vmsg(level, fmt, ap);
  va_end(ap);
}
