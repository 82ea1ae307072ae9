/* test_dribble.c - a body in pieces over time: equal shares, a wait (and a
 * wake-up from the loop's timer) before each, nothing left on the loop. */
#include "../../src/dribble.h"
#include "unit.h"

static int wakes;

static void wake(http_stream_t *s) {
  (void)s;
  wakes++;
}

/* Drives the stream as a connection does; returns the pieces as "a|b|c". */
static const char *drive(http_stream_t *s, uv_loop_t *loop) {
  static char out[256];
  size_t len = 0;
  buf_t piece = BUF_INIT;
  s->wake = wake;
  for (;;) {
    buf_reset(&piece);
    int rc = s->next(s, &piece);
    if (rc == HTTP_STREAM_WAIT) {
      int before = wakes;
      ASSERT_EQ(piece.len, 0);
      while (wakes == before)
        uv_run(loop, UV_RUN_ONCE);
      continue;
    }
    len += (size_t)snprintf(out + len, sizeof out - len, "%s%.*s", len ? "|" : "", (int)piece.len,
                            piece.data ? piece.data : "");
    if (rc == HTTP_STREAM_END)
      break;
    ASSERT_EQ(rc, HTTP_STREAM_MORE);
  }
  buf_free(&piece);
  s->close(s, true);
  return out;
}

TEST(pieces_are_equal_shares_each_after_a_wait) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  buf_t body = BUF_INIT;
  buf_puts(&body, "0123456789");
  wakes = 0;
  uint64_t t0 = uv_hrtime();
  http_stream_t *s = dribble_new(&loop, &body, 3, 90);
  ASSERT(s != NULL);
  ASSERT_EQ(body.len, 0); /* taken */
  ASSERT_STR_EQ(drive(s, &loop), "012|345|6789");
  ASSERT_EQ(wakes, 3);
  ASSERT((uv_hrtime() - t0) / 1000000 >= 85);  /* three waits of 30 ms */
  ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0); /* the timer closed */
  ASSERT_EQ(uv_loop_close(&loop), 0);
}

TEST(more_pieces_than_bytes_and_an_empty_body) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  buf_t body = BUF_INIT;
  buf_puts(&body, "ab");
  ASSERT_STR_EQ(drive(dribble_new(&loop, &body, 5, 0), &loop), "a|b");
  ASSERT_STR_EQ(drive(dribble_new(&loop, &body, 4, 0), &loop), "");
  uv_run(&loop, UV_RUN_DEFAULT);
  ASSERT_EQ(uv_loop_close(&loop), 0);
}

TEST(closed_before_the_end_leaves_nothing) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  buf_t body = BUF_INIT;
  buf_puts(&body, "abc");
  http_stream_t *s = dribble_new(&loop, &body, 3, 10000);
  buf_t piece = BUF_INIT;
  s->wake = wake;
  ASSERT_EQ(s->next(s, &piece), HTTP_STREAM_WAIT);
  s->close(s, false); /* the client went away while it waited */
  ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ASSERT_EQ(uv_loop_close(&loop), 0);
  buf_free(&piece);
}

TEST(fault_names) {
  ASSERT_STR_EQ(http_fault_name(HTTP_FAULT_MALFORMED_CHUNK), "malformed_chunk");
  ASSERT(http_fault_name(HTTP_FAULT_NONE) == NULL);
  ASSERT(http_fault_name(99) == NULL);
  ASSERT_EQ(http_fault_number("reset", 5), HTTP_FAULT_RESET);
  ASSERT_EQ(http_fault_number("rese", 4), HTTP_FAULT_NONE);
  ASSERT_EQ(http_fault_number("RESET", 5), HTTP_FAULT_NONE);
}

UNIT_MAIN(pieces_are_equal_shares_each_after_a_wait, more_pieces_than_bytes_and_an_empty_body,
          closed_before_the_end_leaves_nothing, fault_names)
