/* test_context.c - two servers (two h1mock_t, src/h1mock.c) in one process,
 * each on its own uv loop in its own thread: each listens on ephemeral
 * ports, loads its own provision, answers over real sockets, keeps its own
 * store, journal and metrics, and logs to its own descriptor with its own
 * verbosity. Nothing one of them does shows in the other. */
#include "unit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <uv.h>

#include "config.h"
#include "h1mock.h"

typedef struct side {
  const char *name; /* "a" or "b" */
  char dir[64];     /* provisions */
  char log_path[96], access_path[96];
  int log_fd, access_fd;
  config_t cfg;
  uv_loop_t loop;
  uv_thread_t thread;
  h1mock_t *h;
  int port, admin_port;
} side_t;

/* Each provision answers /who with its own name, writes a document under
 * its own id, and logs a DEBUG and an INFO line naming itself. */
static void write_provision(const side_t *s) {
  char path[128], text[1024];
  snprintf(path, sizeof path, "%s/initial.lua", s->dir);
  snprintf(text, sizeof text,
           "function registerRules()\n"
           "  app.get('/who', function()\n"
           "    store.put('shared', 'from-%s', {side = '%s'})\n"
           "    log.debug('debug line of %s')\n"
           "    log.info('info line of %s')\n"
           "    return 'I am %s, ' .. store.count('shared') .. ' document(s), journal ' ..\n"
           "           journal.count() .. ' before me'\n"
           "  end)\n"
           "end\n",
           s->name, s->name, s->name, s->name, s->name);
  FILE *f = fopen(path, "w");
  ASSERT(f != NULL);
  fputs(text, f);
  fclose(f);
}

static void setup(side_t *s, const char *name, bool verbose) {
  s->name = name;
  snprintf(s->dir, sizeof s->dir, "/tmp/h1mock-context-%s-XXXXXX", name);
  ASSERT(mkdtemp(s->dir) != NULL);
  write_provision(s);
  snprintf(s->log_path, sizeof s->log_path, "%s.log", s->dir);
  snprintf(s->access_path, sizeof s->access_path, "%s.access", s->dir);
  s->log_fd = open(s->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  s->access_fd = open(s->access_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ASSERT(s->log_fd >= 0 && s->access_fd >= 0);
  char *argv[] = {"h1mock",    "--port",       "0",    "--admin-port", "0",    "--address",
                  "127.0.0.1", "--provisions", s->dir, "--access-log", "text", "--verbose"};
  int argc = (int)(sizeof argv / sizeof argv[0]) - (verbose ? 0 : 1);
  char err[512];
  ASSERT_EQ(config_parse(&s->cfg, argc, argv, err, sizeof err), CONFIG_RUN);
  ASSERT_EQ(s->cfg.verbose, verbose);
  ASSERT_EQ(uv_loop_init(&s->loop), 0);
  h1mock_io_t io = {.log_fd = s->log_fd, .access_fd = s->access_fd};
  if (h1mock_start(&s->cfg, &s->loop, &io, &s->h, err, sizeof err))
    UNIT_FAIL("h1mock_start(%s): %s", name, err);
}

/* What a file holds now, NUL-terminated (the caller frees). */
static char *slurp(const char *path) {
  FILE *f = fopen(path, "r");
  ASSERT(f != NULL);
  static const size_t cap = 1 << 20;
  char *text = calloc(1, cap);
  ASSERT(text != NULL);
  size_t n = fread(text, 1, cap - 1, f);
  text[n] = '\0';
  fclose(f);
  return text;
}

/* The port of the "<what> on 127.0.0.1:PORT" line of a log. */
static int port_in_log(const char *log, const char *what) {
  char want[64];
  snprintf(want, sizeof want, " INFO %s on 127.0.0.1:", what);
  const char *p = strstr(log, want);
  if (p == NULL)
    UNIT_FAIL("no '%s' line in:\n%s", want, log);
  return atoi(p + strlen(want));
}

static void run_loop(void *arg) {
  side_t *s = arg;
  uv_run(&s->loop, UV_RUN_DEFAULT);
}

/* One request over a fresh connection; returns the whole answer (the
 * caller frees). Bounded by a receive timeout. */
static char *http(int port, const char *method, const char *path) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT(fd >= 0);
  struct timeval tv = {10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  char req[256];
  int n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                   method, path);
  ASSERT_EQ(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
  size_t cap = 1 << 20, len = 0;
  char *out = calloc(1, cap);
  ASSERT(out != NULL);
  for (;;) {
    ssize_t r = recv(fd, out + len, cap - 1 - len, 0);
    if (r < 0 && errno == EINTR)
      continue;
    ASSERT(r >= 0); /* a timeout fails the test */
    if (r == 0)
      break;
    len += (size_t)r;
    ASSERT(len < cap - 1);
  }
  close(fd);
  out[len] = '\0';
  return out;
}

static void expect(int port, const char *method, const char *path, const char *want) {
  char *answer = http(port, method, path);
  ASSERT_CONTAINS(answer, want);
  free(answer);
}

static void expect_not(int port, const char *path, const char *unwanted) {
  char *answer = http(port, "GET", path);
  ASSERT(strstr(answer, "HTTP/1.1 200 ") == answer);
  if (strstr(answer, unwanted))
    UNIT_FAIL("GET %s has \"%s\":\n%s", path, unwanted, answer);
  free(answer);
}

static void teardown(side_t *s) {
  h1mock_free(s->h);
  ASSERT_EQ(uv_loop_close(&s->loop), 0);
  close(s->log_fd);
  close(s->access_fd);
  char path[128];
  snprintf(path, sizeof path, "%s/initial.lua", s->dir);
  unlink(path);
  rmdir(s->dir);
  unlink(s->log_path);
  unlink(s->access_path);
}

TEST(two_servers_in_one_process_share_nothing) {
  side_t a = {0}, b = {0};
  setup(&a, "a", true);
  setup(&b, "b", false);
  char *log_a = slurp(a.log_path), *log_b = slurp(b.log_path);
  a.port = port_in_log(log_a, "traffic"), a.admin_port = port_in_log(log_a, "admin");
  b.port = port_in_log(log_b, "traffic"), b.admin_port = port_in_log(log_b, "admin");
  ASSERT(a.port != b.port && a.admin_port != b.admin_port);
  free(log_a);
  free(log_b);
  ASSERT_EQ(uv_thread_create(&a.thread, run_loop, &a), 0);
  ASSERT_EQ(uv_thread_create(&b.thread, run_loop, &b), 0);

  /* Each answers from its own provision, counting only its own store and
   * journal: b's second call sees one document and one request, its own. */
  expect(a.port, "GET", "/who", "I am a, 1 document(s), journal 0 before me");
  expect(b.port, "GET", "/who", "I am b, 1 document(s), journal 0 before me");
  expect(b.port, "GET", "/who", "I am b, 1 document(s), journal 1 before me");
  expect(a.port, "GET", "/nothing-here", "HTTP/1.1 404 ");

  /* The admin APIs show their own store, journal, metrics, provision. */
  expect(a.admin_port, "GET", "/app/v1/store/shared", "[{\"side\":\"a\"}]");
  expect(b.admin_port, "GET", "/app/v1/store/shared", "[{\"side\":\"b\"}]");
  expect(a.admin_port, "GET", "/app/v1/requests/count", "{\"count\":2,");
  expect(b.admin_port, "GET", "/app/v1/requests/count", "{\"count\":2,");
  expect(a.admin_port, "GET", "/metrics",
         "h1mock_requests_total{method=\"GET\",status=\"200\",endpoint=\"GET /who\"} 1\n");
  expect(b.admin_port, "GET", "/metrics",
         "h1mock_requests_total{method=\"GET\",status=\"200\",endpoint=\"GET /who\"} 2\n");
  expect_not(b.admin_port, "/metrics", "status=\"404\"");
  expect(a.admin_port, "GET", "/app/v1/provision", "\"active\":\"initial\"");

  h1mock_stop(a.h);
  h1mock_stop(b.h);
  uv_thread_join(&a.thread);
  uv_thread_join(&b.thread);

  /* Each log has its own lines, at its own verbosity; so has each access
   * log. */
  log_a = slurp(a.log_path), log_b = slurp(b.log_path);
  ASSERT_CONTAINS(log_a, " DEBUG debug line of a\n");
  ASSERT_CONTAINS(log_a, " INFO info line of a\n");
  ASSERT_CONTAINS(log_b, " INFO info line of b\n");
  ASSERT(strstr(log_b, " DEBUG ") == NULL);
  ASSERT(strstr(log_a, "of b") == NULL && strstr(log_b, "of a") == NULL);
  ASSERT_CONTAINS(log_a, "stopping: finishing requests in flight");
  ASSERT_CONTAINS(log_b, "stopping: finishing requests in flight");
  free(log_a);
  free(log_b);
  char *access_a = slurp(a.access_path), *access_b = slurp(b.access_path);
  ASSERT_CONTAINS(access_a, " GET /nothing-here 404 ");
  ASSERT(strstr(access_b, "/nothing-here") == NULL);
  ASSERT_CONTAINS(access_b, " GET /who 200 ");
  free(access_a);
  free(access_b);
  teardown(&a);
  teardown(&b);
}

/* A server that cannot start (its port is the other's) says why, frees
 * everything it made, and leaves the running one serving. */
TEST(a_failed_start_leaves_the_other_serving) {
  side_t a = {0};
  setup(&a, "a", false);
  char *log_a = slurp(a.log_path);
  a.port = port_in_log(log_a, "traffic");
  free(log_a);
  ASSERT_EQ(uv_thread_create(&a.thread, run_loop, &a), 0);

  side_t b = {0};
  b.name = "b";
  snprintf(b.dir, sizeof b.dir, "%s", a.dir);
  char port[16];
  snprintf(port, sizeof port, "%d", a.port);
  char *argv[] = {"h1mock",    "--port",    port,           "--admin-port", "0",
                  "--address", "127.0.0.1", "--provisions", b.dir};
  char err[512];
  ASSERT_EQ(config_parse(&b.cfg, (int)(sizeof argv / sizeof argv[0]), argv, err, sizeof err),
            CONFIG_RUN);
  ASSERT_EQ(uv_loop_init(&b.loop), 0);
  int log_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  h1mock_io_t io = {.log_fd = log_fd, .access_fd = log_fd};
  ASSERT(h1mock_start(&b.cfg, &b.loop, &io, &b.h, err, sizeof err) != 0);
  ASSERT(b.h == NULL);
  ASSERT_CONTAINS(err, "cannot listen on 127.0.0.1:");
  ASSERT_CONTAINS(err, "address already in use");
  ASSERT_EQ(uv_loop_close(&b.loop), 0);
  close(log_fd);

  expect(a.port, "GET", "/who", "I am a, 1 document(s), journal 0 before me");
  h1mock_stop(a.h);
  uv_thread_join(&a.thread);
  teardown(&a);
}

/* Every way a start can fail (a missing or wrong provisions directory, a
 * store that does not open, a port
 * that is taken, an address that is not this host's) says why and frees
 * what it made: no handle is left on the loop (uv_loop_close succeeds) and,
 * in the sanitizer build, LeakSanitizer finds nothing at exit. */
TEST(every_failed_start_frees_what_it_made) {
  char tmp[64] = "/tmp/h1mock-context-fail-XXXXXX";
  ASSERT(mkdtemp(tmp) != NULL);
  char dir[96], file[96], not_dir[128];
  snprintf(dir, sizeof dir, "%s/p", tmp);
  snprintf(file, sizeof file, "%s/file", tmp);
  snprintf(not_dir, sizeof not_dir, "%s/file/data", tmp);
  ASSERT_EQ(mkdir(dir, 0700), 0);
  int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ASSERT(fd >= 0);
  close(fd);
  int busy = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t salen = sizeof sa;
  ASSERT(busy >= 0 && bind(busy, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(busy, 1) == 0);
  ASSERT_EQ(getsockname(busy, (struct sockaddr *)&sa, &salen), 0);
  char port[16];
  snprintf(port, sizeof port, "%d", ntohs(sa.sin_port));

  static const struct {
    const char *opt, *value, *want;
  } cases[] = {
      {"--provisions", "missing", "does not exist"},
      {"--provisions", "file", "is not a directory"},
      {"--data-dir", "not_dir", "Not a directory"},
      {"--port", "busy", "address already in use"},
      {"--admin-port", "busy", "address already in use"},
      {"--address", "192.0.2.1", "cannot listen on 192.0.2.1:"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *v = cases[i].value;
    char missing[128];
    snprintf(missing, sizeof missing, "%s/no/such/dir", tmp);
    v = strcmp(v, "missing") == 0   ? missing
        : strcmp(v, "file") == 0    ? file
        : strcmp(v, "not_dir") == 0 ? not_dir
        : strcmp(v, "busy") == 0    ? port
                                    : v;
    char *argv[] = {"h1mock",    "--port",       "0", "--admin-port",       "0",      "--address",
                    "127.0.0.1", "--provisions", dir, (char *)cases[i].opt, (char *)v};
    config_t cfg;
    char err[1024];
    ASSERT_EQ(config_parse(&cfg, (int)(sizeof argv / sizeof argv[0]), argv, err, sizeof err),
              CONFIG_RUN);
    uv_loop_t loop;
    ASSERT_EQ(uv_loop_init(&loop), 0);
    int log_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    h1mock_io_t io = {.log_fd = log_fd, .access_fd = log_fd};
    h1mock_t *h = (h1mock_t *)&cfg; /* h1mock_start must set it to NULL */
    int rc = h1mock_start(&cfg, &loop, &io, &h, err, sizeof err);
    if (rc == 0)
      UNIT_FAIL("%s %s started", cases[i].opt, cases[i].value);
    ASSERT(rc < 0);
    ASSERT(h == NULL);
    ASSERT(strncmp(err, "h1mock: ", 8) == 0);
    if (strstr(err, cases[i].want) == NULL)
      UNIT_FAIL("%s %s: \"%s\" has no \"%s\"", cases[i].opt, cases[i].value, err, cases[i].want);
    ASSERT_EQ(uv_loop_close(&loop), 0);
    close(log_fd);
  }
  close(busy);
  unlink(file);
  rmdir(dir);
  rmdir(tmp);
}

UNIT_MAIN(two_servers_in_one_process_share_nothing, a_failed_start_leaves_the_other_serving,
          every_failed_start_frees_what_it_made)
