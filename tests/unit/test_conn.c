/* test_conn.c - the connection's phases, and its work sets on a real
 * loopback socket: taken when bytes arrive, given back once the answer is
 * written, kept while an answer is pending, freed by the sweep when unused,
 * and clean for the next connection whatever the last one did. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include "../../src/conn.h"
#include "unit.h"

/* ------------------------------------------------------------------ phases */

TEST(test_phase_transitions_are_the_documented_ones) {
  /* Every pair not listed here must be refused. */
  static const char *const allowed[] = {
      "idle>idle",
      "idle>head",
      "idle>body",
      "idle>dispatched",
      "idle>last-write",
      "idle>closed",
      "head>head",
      "head>body",
      "head>dispatched",
      "head>last-write",
      "head>closed",
      "body>body",
      "body>dispatched",
      "body>last-write",
      "body>closed",
      "dispatched>idle",
      "dispatched>streaming",
      "dispatched>last-write",
      "dispatched>closed",
      "streaming>idle",
      "streaming>last-write",
      "streaming>closed",
      "last-write>lingering",
      "last-write>closed",
      "lingering>closed",
  };
  int count = 0;
  for (int from = CONN_IDLE; from <= CONN_CLOSED; from++) {
    for (int to = CONN_IDLE; to <= CONN_CLOSED; to++) {
      char pair[64];
      snprintf(pair, sizeof pair, "%s>%s", conn_phase_name(from), conn_phase_name(to));
      bool want = false;
      for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++)
        want |= strcmp(allowed[i], pair) == 0;
      if (conn_phase_allowed(from, to) != want)
        UNIT_FAIL("%s: allowed is %d, expected %d", pair, !want, want);
      count += want;
    }
  }
  ASSERT_EQ(count, (int)(sizeof allowed / sizeof *allowed));
}

TEST(test_closed_is_final_and_unknown_phases_are_refused) {
  for (int to = CONN_IDLE; to <= CONN_CLOSED; to++)
    ASSERT(!conn_phase_allowed(CONN_CLOSED, to));
  ASSERT(!conn_phase_allowed(CONN_CLOSED + 1, CONN_CLOSED));
  ASSERT(!conn_phase_allowed(CONN_IDLE, CONN_CLOSED + 1));
  ASSERT(!conn_phase_allowed(-1, CONN_IDLE));
  ASSERT_STR_EQ(conn_phase_name(CONN_LAST_WRITE), "last-write");
  ASSERT_STR_EQ(conn_phase_name(CONN_CLOSED + 1), "?");
}

/* ------------------------------------------------------------------ a loopback fixture */

struct fixture {
  uv_loop_t loop;
  conn_env_t env;
  int client;       /* the test's end of the connection */
  bool hold;        /* answer the next request later (CONN_PENDING) */
  unsigned dribble; /* answer "okay" in this many pieces, 10 ms apart */
  int fault;        /* answer with this fault() */
  conn_done_fn done;
  void *data;
  int dispatched, abandoned;
};

static enum conn_status dispatch(void *ctx, const http_request_t *req, const char *remote,
                                 http_response_t *resp, origin_t *origin, conn_done_fn done,
                                 void *data, void **pending) {
  (void)req;
  (void)remote;
  (void)origin;
  struct fixture *f = ctx;
  f->dispatched++;
  http_response_simple(resp, 200, "text/plain", "ok", 2);
  if (f->dribble) {
    http_response_simple(resp, 200, "text/plain", "okay", 4);
    resp->dribble_chunks = f->dribble;
    resp->dribble_ms = 10 * f->dribble;
  }
  resp->fault = f->fault;
  if (!f->hold)
    return CONN_DONE;
  f->hold = false;
  f->done = done;
  f->data = data;
  *pending = f;
  return CONN_PENDING;
}

static void abandon(void *pending) { ((struct fixture *)pending)->abandoned++; }

/* A client socket connected to a new connection of f->env. */
static void connect_client(struct fixture *f) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  int l = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT(l >= 0);
  ASSERT_EQ(bind(l, (struct sockaddr *)&a, sizeof a), 0);
  ASSERT_EQ(listen(l, 1), 0);
  ASSERT_EQ(getsockname(l, (struct sockaddr *)&a, &len), 0);
  f->client = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(connect(f->client, (struct sockaddr *)&a, sizeof a), 0);
  int s = accept(l, NULL, NULL);
  ASSERT(s >= 0);
  close(l);
  ASSERT_EQ(fcntl(s, F_SETFL, O_NONBLOCK), 0);
  ASSERT_EQ(conn_open(&f->env, s), 0);
}

static void setup(struct fixture *f) {
  signal(SIGPIPE, SIG_IGN); /* as main() does: a write to a closed peer fails instead */
  memset(f, 0, sizeof *f);
  ASSERT_EQ(uv_loop_init(&f->loop), 0);
  f->env = (conn_env_t){
      .loop = &f->loop,
      .name = "test",
      .max_body = 1024,
      .header_timeout_ms = 30000,
      .idle_timeout_ms = 60000,
      .body_timeout_ms = 60000,
      .max_connections = 16,
      .dispatch = dispatch,
      .abandon = abandon,
      .ctx = f,
  };
  connect_client(f);
}

/* Runs the loop until every connection is closed and freed (or about two
 * seconds went by: the caller's count check then fails). */
static void run_until_closed(struct fixture *f) {
  for (int i = 0; i < 2000 && f->env.count > 0; i++) {
    uv_run(&f->loop, UV_RUN_NOWAIT);
    poll(NULL, 0, 1);
  }
}

/* Closes everything and checks that nothing is left behind (LeakSanitizer
 * checks the memory at exit). */
static void teardown(struct fixture *f) {
  if (f->client >= 0)
    close(f->client);
  conn_close_all(&f->env);
  run_until_closed(f);
  ASSERT_EQ(f->env.count, 0);
  conn_env_close(&f->env);
  ASSERT_EQ(f->env.pooled, 0);
  ASSERT_EQ(uv_loop_close(&f->loop), 0);
}

static void send_text(struct fixture *f, const char *text) {
  ASSERT_EQ(send(f->client, text, strlen(text), 0), (ssize_t)strlen(text));
}

/* Runs the loop until the client has read `want` (a text ending its
 * answer), or the connection closed when want is NULL; returns what it read
 * in `got`. */
static void receive(struct fixture *f, const char *want, char *got, size_t cap) {
  size_t n = 0;
  got[0] = '\0';
  for (int i = 0; i < 2000; i++) {
    uv_run(&f->loop, UV_RUN_NOWAIT);
    struct pollfd p = {.fd = f->client, .events = POLLIN};
    if (poll(&p, 1, 1) == 1) {
      ssize_t r = recv(f->client, got + n, cap - 1 - n, MSG_DONTWAIT);
      if (r == 0 && want == NULL)
        return;
      if (r > 0) {
        n += (size_t)r;
        got[n] = '\0';
      }
    }
    if (want && strstr(got, want))
      return;
  }
  UNIT_FAIL("no answer with \"%s\"; read \"%s\"", want ? want : "(the close)", got);
}

/* Runs the loop a little: what the server does without the client. */
static void spin(struct fixture *f) {
  for (int i = 0; i < 20; i++)
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

static const char GET[] = "GET /a HTTP/1.1\r\nHost: t\r\n\r\n";

/* ------------------------------------------------------------------ work sets */

TEST(test_an_answered_connection_gives_its_work_set_back) {
  struct fixture f;
  char got[4096];
  setup(&f);
  spin(&f);
  ASSERT_EQ(f.env.pooled, 0); /* connected, nothing sent: nothing taken */
  for (int i = 0; i < 3; i++) {
    send_text(&f, GET);
    receive(&f, "\r\n\r\nok", got, sizeof got);
    ASSERT_CONTAINS(got, "HTTP/1.1 200 OK");
    ASSERT_EQ(f.env.pooled, 1); /* one set, given back and taken again each time */
  }
  ASSERT_EQ(f.dispatched, 3);
  ASSERT_EQ(f.env.count, 1); /* kept alive */
  teardown(&f);
}

TEST(test_a_pending_answer_keeps_the_work_set_until_done) {
  struct fixture f;
  char got[4096];
  setup(&f);
  f.hold = true;
  send_text(&f, GET);
  spin(&f);
  ASSERT_EQ(f.dispatched, 1);
  ASSERT_EQ(f.env.pooled, 0);
  f.done(f.data);
  receive(&f, "\r\n\r\nok", got, sizeof got);
  ASSERT_EQ(f.env.pooled, 1);
  ASSERT_EQ(f.abandoned, 0);
  teardown(&f);
}

TEST(test_closing_during_a_pending_answer_abandons_it_and_keeps_the_set) {
  struct fixture f;
  setup(&f);
  f.hold = true;
  send_text(&f, GET);
  spin(&f);
  ASSERT_EQ(f.dispatched, 1);
  conn_close_all(&f.env);
  spin(&f);
  ASSERT_EQ(f.abandoned, 1);
  ASSERT_EQ(f.env.count, 0);
  ASSERT_EQ(f.env.pooled, 1); /* back in the pool, clean */
  teardown(&f);
}

TEST(test_the_sweep_frees_work_sets_left_unused) {
  struct fixture f;
  char got[4096];
  setup(&f);
  send_text(&f, GET);
  receive(&f, "\r\n\r\nok", got, sizeof got);
  ASSERT_EQ(f.env.pooled, 1);
  conn_sweep(&f.env); /* the set was taken since the last sweep: kept */
  ASSERT_EQ(f.env.pooled, 1);
  conn_sweep(&f.env); /* a whole sweep unused: freed */
  ASSERT_EQ(f.env.pooled, 0);
  ASSERT_EQ(f.env.count, 1);
  send_text(&f, GET); /* the connection takes a new one */
  receive(&f, "\r\n\r\nok", got, sizeof got);
  ASSERT_EQ(f.env.pooled, 1);
  teardown(&f);
}

/* The pages of freed sets go back to the system (malloc_trim) at the end
 * of a burst, a sweep in which no set was taken; under steady load only
 * every TRIM_UNDER_LOAD (10) sweeps, since the next requests would fault
 * them in again. */
TEST(test_freed_memory_goes_back_after_a_burst_or_ten_sweeps_of_load) {
  struct fixture f;
  char got[4096];
  setup(&f);
  int first = f.client;
  /* Two sets: the first connection's answer pending while the second asks. */
  f.hold = true;
  send_text(&f, GET);
  spin(&f);
  connect_client(&f);
  send_text(&f, GET);
  receive(&f, "\r\n\r\nok", got, sizeof got);
  f.done(f.data);
  spin(&f);
  ASSERT_EQ(f.env.pooled, 2);
  conn_sweep(&f.env); /* both taken since the last sweep: kept */
  ASSERT_EQ(f.env.pooled, 2);
  ASSERT_EQ(f.env.trim_wait, 0);
  ASSERT_EQ(f.env.taken, 0);
  /* Steady load on one connection: the other set is freed, and its memory
   * waits for ten sweeps with requests. */
  for (int i = 0; i < 10; i++) {
    send_text(&f, GET);
    receive(&f, "\r\n\r\nok", got, sizeof got);
    ASSERT_EQ(f.env.taken, 1);
    conn_sweep(&f.env);
    ASSERT_EQ(f.env.pooled, 1);
    ASSERT_EQ(f.env.trim_wait, (unsigned)(9 - i)); /* 0 after the tenth: trimmed */
  }
  /* A burst ends: the sweep after the first one without a request frees
   * the last set and gives the memory back at once. */
  send_text(&f, GET);
  receive(&f, "\r\n\r\nok", got, sizeof got);
  conn_sweep(&f.env);
  ASSERT_EQ(f.env.trim_wait, 0); /* nothing freed: nothing waits */
  conn_sweep(&f.env);
  ASSERT_EQ(f.env.pooled, 0);
  ASSERT_EQ(f.env.trim_wait, 0); /* freed, and no set taken: trimmed */
  close(first);
  teardown(&f);
}

TEST(test_a_set_used_by_a_failed_request_parses_the_next_connection_afresh) {
  struct fixture f;
  char got[4096];
  setup(&f);
  /* Half a request head, then a malformed line: 400, and the close. */
  send_text(&f, "GET /a HTTP/1.1\r\nHost: t\r\n");
  spin(&f);
  ASSERT_EQ(f.env.pooled, 0); /* a head under way holds its set */
  send_text(&f, "bad header\r\n\r\n");
  receive(&f, NULL, got, sizeof got);
  ASSERT_CONTAINS(got, "HTTP/1.1 400");
  close(f.client);
  run_until_closed(&f);
  ASSERT_EQ(f.env.count, 0);
  ASSERT_EQ(f.env.pooled, 1);
  /* The next connection gets that set: its request is parsed from the
   * start, not as the rest of the failed one. */
  connect_client(&f);
  send_text(&f, GET);
  receive(&f, "\r\n\r\nok", got, sizeof got);
  ASSERT_CONTAINS(got, "HTTP/1.1 200 OK");
  ASSERT_EQ(f.dispatched, 1);
  ASSERT_EQ(f.env.pooled, 1);
  teardown(&f);
}

TEST(test_pipelined_requests_are_all_answered_before_the_set_goes_back) {
  struct fixture f;
  char got[8192];
  setup(&f);
  send_text(&f, "GET /1 HTTP/1.1\r\nHost: t\r\n\r\nGET /2 HTTP/1.1\r\nHost: t\r\n\r\n"
                "GET /3 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  receive(&f, NULL, got, sizeof got);
  const char *p = got;
  int answers = 0;
  while ((p = strstr(p, "HTTP/1.1 200 OK")) != NULL) {
    answers++;
    p++;
  }
  ASSERT_EQ(answers, 3);
  ASSERT_EQ(f.dispatched, 3);
  teardown(&f);
}

/* A dribbled body waits on a timer between its pieces: the work set (its
 * response, its output) stays with the connection until the last piece is
 * out, however many loop turns it waits. */
TEST(test_a_dribbled_answer_keeps_the_work_set_until_its_last_piece) {
  struct fixture f;
  char got[4096];
  setup(&f);
  f.dribble = 4;
  send_text(&f, GET);
  receive(&f, "\r\n\r\n1\r\no\r\n", got, sizeof got); /* the head and the first piece */
  ASSERT_CONTAINS(got, "Transfer-Encoding: chunked");
  ASSERT_EQ(f.env.pooled, 0); /* the timer still needs the set */
  receive(&f, "\r\n0\r\n\r\n", got + strlen(got), sizeof got - strlen(got));
  ASSERT_EQ(f.env.pooled, 1);
  /* The connection is idle and keeps alive: a plain answer follows. */
  f.dribble = 0;
  send_text(&f, GET);
  receive(&f, "\r\n\r\nok", got, sizeof got);
  ASSERT_EQ(f.dispatched, 2);
  teardown(&f);
}

/* The client goes away while the dribble's timer runs: the timer is closed
 * with the stream before the set goes back to the pool (AddressSanitizer
 * reports a timer that fires on freed memory). */
TEST(test_closing_during_a_dribble_stops_its_timer_and_keeps_the_set) {
  struct fixture f;
  char got[4096];
  setup(&f);
  f.dribble = 50; /* half a second */
  send_text(&f, GET);
  receive(&f, "\r\n\r\n1\r\n", got, sizeof got);
  close(f.client);
  f.client = -1;
  /* A half-close is not an error: the next piece written finds the reset. */
  run_until_closed(&f);
  ASSERT_EQ(f.env.count, 0);
  ASSERT_EQ(f.env.pooled, 1);
  spin(&f);
  teardown(&f);
}

/* fault("reset") is the connection's last write: the journal still gets
 * the request (complete), then the connection closes by a reset and its
 * set goes back. */
TEST(test_a_reset_fault_closes_and_gives_the_set_back) {
  struct fixture f;
  char got[4096];
  setup(&f);
  f.fault = HTTP_FAULT_RESET;
  send_text(&f, GET);
  run_until_closed(&f);
  ASSERT_EQ(f.env.count, 0);
  ASSERT_EQ(f.env.pooled, 1);
  ssize_t r = recv(f.client, got, sizeof got, 0);
  ASSERT(r <= 0); /* nothing but the reset (or the end) */
  teardown(&f);
}

UNIT_MAIN(test_phase_transitions_are_the_documented_ones,
          test_closed_is_final_and_unknown_phases_are_refused,
          test_an_answered_connection_gives_its_work_set_back,
          test_a_pending_answer_keeps_the_work_set_until_done,
          test_closing_during_a_pending_answer_abandons_it_and_keeps_the_set,
          test_the_sweep_frees_work_sets_left_unused,
          test_freed_memory_goes_back_after_a_burst_or_ten_sweeps_of_load,
          test_a_set_used_by_a_failed_request_parses_the_next_connection_afresh,
          test_pipelined_requests_are_all_answered_before_the_set_goes_back,
          test_a_dribbled_answer_keeps_the_work_set_until_its_last_piece,
          test_closing_during_a_dribble_stops_its_timer_and_keeps_the_set,
          test_a_reset_fault_closes_and_gives_the_set_back)
