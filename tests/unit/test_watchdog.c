/* test_watchdog.c - the thread that reports an event holding the loop
 * (src/watchdog.c). Its WARN lines go to stderr, which each test points at
 * a temporary file to read them back. */
#include "unit.h"

#include <fcntl.h>
#include <time.h>

#include "watchdog.h"

static int log_fd = -1;

static void capture_stderr(void) {
  char path[] = "/tmp/h1mock-test-watchdog-XXXXXX";
  log_fd = mkstemp(path);
  ASSERT(log_fd >= 0);
  unlink(path);
  ASSERT(dup2(log_fd, STDERR_FILENO) >= 0);
}

/* Everything logged so far (static buffer). */
static const char *logged(void) {
  static char text[8192];
  ssize_t n = pread(log_fd, text, sizeof text - 1, 0);
  text[n > 0 ? n : 0] = '\0';
  return text;
}

static int count(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
    n++;
  return n;
}

static void pause_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

/* Polls until `needle` has been logged `n` times (the unit timeout bounds
 * it). */
static void wait_for(const char *needle, int n) {
  while (count(logged(), needle) < n)
    pause_ms(20);
}

TEST(a_long_event_is_reported_once_while_it_runs) {
  capture_stderr();
  watchdog_t *w;
  ASSERT_EQ(watchdog_start(100, NULL, &w), 0);
  watchdog_enter(w, "GET", "/slow?ignored", 5, "slow", "slow.lua");
  wait_for("busy for", 1);
  ASSERT_CONTAINS(logged(), " WARN the loop has been busy for ");
  ASSERT_CONTAINS(logged(), " s in GET /slow: rule 'slow' of provision slow.lua\n");
  /* The same event, several periods later: still one line. */
  pause_ms(4 * WATCHDOG_PERIOD_MS);
  ASSERT_EQ(count(logged(), "busy for"), 1);
  watchdog_leave(w);
  /* A new event is a new report. */
  watchdog_enter(w, "POST", "/x", 2, NULL, "(default)");
  wait_for("busy for", 2);
  ASSERT_CONTAINS(logged(), " s in POST /x: no rule matched, provision (default)\n");
  watchdog_leave(w);
  /* A decoded path may hold a newline or an escape: one line, escaped. */
  watchdog_enter(w, "GET", "/a\nFAKE \x1b[31m", 13, "a", "a.lua");
  wait_for("busy for", 3);
  ASSERT_CONTAINS(logged(), " s in GET /a\\x0aFAKE \\x1b[31m: rule 'a' of provision a.lua\n");
  watchdog_leave(w);
  watchdog_enter(w, NULL, NULL, 0, NULL, "big.lua");
  wait_for("busy for", 4);
  ASSERT_CONTAINS(logged(), " s loading provision big.lua\n");
  watchdog_leave(w);
  watchdog_stop(w);
}

TEST(short_events_are_not_reported) {
  capture_stderr();
  watchdog_t *w;
  ASSERT_EQ(watchdog_start(300, NULL, &w), 0);
  for (int i = 0; i < 40; i++) {
    watchdog_enter(w, "GET", "/quick", 6, "quick", "quick.lua");
    pause_ms(20);
    watchdog_leave(w);
  }
  watchdog_stop(w);
  ASSERT_STR_EQ(logged(), "");
}

TEST(a_long_path_is_cut_and_null_is_a_no_op) {
  capture_stderr();
  watchdog_enter(NULL, "GET", "/", 1, NULL, "x.lua");
  watchdog_leave(NULL);
  watchdog_stop(NULL);
  char path[1000];
  memset(path, 'a', sizeof path);
  path[0] = '/';
  watchdog_t *w;
  ASSERT_EQ(watchdog_start(50, NULL, &w), 0);
  watchdog_enter(w, "GET", path, sizeof path, NULL, "x.lua");
  wait_for("busy for", 1);
  watchdog_leave(w);
  watchdog_stop(w);
  /* The first 200 bytes of the path: "/" and 199 of the 'a's. */
  const char *p = strstr(logged(), "in GET /");
  ASSERT(p != NULL);
  p += strlen("in GET /");
  size_t n = strspn(p, "a");
  ASSERT_EQ(n, 199);
  ASSERT(p[n] == ':');
}

UNIT_MAIN(a_long_event_is_reported_once_while_it_runs, short_events_are_not_reported,
          a_long_path_is_cut_and_null_is_a_no_op)
