/* fuzz_admin.c - bytes -> http_in -> admin_dispatch: the admin API's
 * request handling (provisions, store, journal, metrics, token checks).
 *
 * The first byte sets up the call: bits 0-4 how the rest is cut into reads
 * (as fuzz_request does), bit 5 whether a pending provision POST is
 * abandoned (its client went away) instead of waited for, bits 6-7 who
 * calls (0-1: a loopback peer and no token; 2: a token is required;
 * 3: another host, with --admin-open). The rest is what the client sends:
 * one or more pipelined requests, so that a POST and the GET that reads it
 * back are tried together.
 *
 * Each input starts from the same state, so that a finding replays: a
 * fresh journal with a few entries, a store with two collections, and,
 * after an input that called /app/v1/provision, a provisions directory
 * with its seed files again, fresh metrics and the built-in default
 * active. The directory is a temporary one, removed at exit.
 *
 * The parts are made and wired the way h1mock.c makes a server's: this
 * harness's own context, with no global in between.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin.h"
#include "fuzz_util.h"
#include "journal.h"
#include "metrics.h"
#include "origin.h"
#include "provision.h"
#include "store.h"

#define TOKEN "fuzz-token"
#define MAX_PROVISION_BYTES (1 << 20) /* --max-provision-bytes' default */

/* Stored provisions each input starts with: one to re-activate, one that
 * fails to load, one without the .lua extension. */
static const struct {
  const char *file, *text;
} seed_files[] = {
    {"other.lua", "function registerRules()\n"
                  "  app.add_url_rule('/x', 'x', function() return {x = 1} end)\n"
                  "end\n"},
    {"broken.lua", "function registerRules(\n"},
    {"plain", "function registerRules() app.get('/p', function() return 'p' end) end\n"},
};

/* Traffic the journal holds at the start of each input: more entries than
 * it keeps (so one is dropped), a binary body, a truncated one. */
static const char seed_traffic[] =
    "GET /a/1?x=1&y=%zz HTTP/1.1\r\nHost: h\r\nX-One: 1\r\n\r\n"
    "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\n\xff\x00\x01z"
    "DELETE /c%20d HTTP/1.1\r\nHost: h\r\n\r\n"
    "PUT /a/2 HTTP/1.1\r\nHost: h\r\nContent-Length: 39\r\n\r\n"
    "{\"text\": \"longer than the body limit\"}\n"
    "GET /%C3%A9t%C3%A9 HTTP/1.0\r\n\r\n";

struct admin_fixture {
  uv_loop_t loop;
  char tmp[256], dir[300], state_dir[300];
  script_runtime_t *runtime;
  store_t *store;
  metrics_t *metrics;      /* made again with the provisions */
  provision_t *provision;  /* made again after an input that touched it */
  journal_t *journal;      /* per input, */
  admin_t *admin;          /* and the admin API that reads it */
  bool provisions_touched; /* this input called /app/v1/provision */
  bool abandon;            /* leave pending POSTs unanswered */
  const char *remote;
  int recorded; /* seed traffic recorded so far */
};

static struct admin_fixture *fixture;

static void write_file(const char *dir, const char *name, const char *text) {
  char path[600];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0)
    fuzz_fail("admin", "cannot write %s", path);
}

/* Removes every file of the provisions directory, and the directory too
 * when `rmdir_too`. */
static void empty_dir(const char *dir, bool rmdir_too) {
  DIR *d = opendir(dir);
  if (d == NULL)
    return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
      unlinkat(dirfd(d), e->d_name, 0);
  closedir(d);
  if (rmdir_too)
    rmdir(dir);
}

/* The provisions directory as each input finds it, and a provision_t
 * (counting its loads in new metrics) started from it. The journal is not
 * given to the scripts: the built-in default does not read it. */
static void provisions_start(struct admin_fixture *fx) {
  empty_dir(fx->dir, false);
  for (size_t i = 0; i < sizeof seed_files / sizeof seed_files[0]; i++)
    write_file(fx->dir, seed_files[i].file, seed_files[i].text);
  if ((fx->metrics = metrics_new(0)) == NULL)
    fuzz_fail("admin", "metrics_new failed");
  /* A small budget: a posted provision that loops is refused quickly. */
  provision_opts_t popts = {.script = {.loop = &fx->loop,
                                       .dir = fx->dir,
                                       .max_instructions = 1000000,
                                       .max_memory = (size_t)64 << 20,
                                       .store = fx->store,
                                       .runtime = fx->runtime},
                            .state_dir = fx->state_dir,
                            .metrics = fx->metrics};
  if (provision_new(&popts, &fx->provision) || provision_start(fx->provision))
    fuzz_fail("admin", "the provisions did not start");
}

/* Ends the provisions: written posts finish and replaced Lua states are
 * closed (both on the threadpool) before they go. */
static void provisions_stop(struct admin_fixture *fx) {
  uv_run(&fx->loop, UV_RUN_DEFAULT);
  provision_close(fx->provision);
  uv_run(&fx->loop, UV_RUN_DEFAULT);
  provision_free(fx->provision);
  fx->provision = NULL;
  metrics_free(fx->metrics);
  fx->metrics = NULL;
}

static void fixture_free(void) {
  struct admin_fixture *fx = fixture;
  provisions_stop(fx);
  if (uv_loop_close(&fx->loop))
    fuzz_fail("admin", "a libuv handle was left open");
  empty_dir(fx->dir, true);
  rmdir(fx->tmp);
  store_close(fx->store);
  script_runtime_free(fx->runtime);
  free(fx);
}

/* Everything the admin API reaches, once per process. */
static struct admin_fixture *fixture_new(void) {
  struct admin_fixture *fx = calloc(1, sizeof *fx);
  const char *tmpdir = getenv("TMPDIR");
  snprintf(fx->tmp, sizeof fx->tmp, "%s/h1mock-fuzz-admin-XXXXXX", tmpdir ? tmpdir : "/tmp");
  if (mkdtemp(fx->tmp) == NULL)
    fuzz_fail("admin", "cannot make a directory from %s", fx->tmp);
  snprintf(fx->dir, sizeof fx->dir, "%s/provisions", fx->tmp);
  snprintf(fx->state_dir, sizeof fx->state_dir, "%s/state", fx->tmp);
  if (mkdir(fx->dir, 0700) || uv_loop_init(&fx->loop))
    fuzz_fail("admin", "cannot set up %s", fx->dir);
  store_opts_t sopts = {.data_dir = NULL};
  char err[256];
  if (store_open(&sopts, &fx->store, err, sizeof err))
    fuzz_fail("admin", "store_open: %s", err);
  if ((fx->runtime = script_runtime_new()) == NULL)
    fuzz_fail("admin", "script_runtime_new failed");
  provisions_start(fx);
  fixture = fx;
  atexit(fixture_free);
  return fx;
}

static int record_seed(void *arg, const http_request_t *req) {
  struct admin_fixture *fx = arg;
  static const int statuses[] = {200, 201, 404, 500, 204};
  http_response_t resp = {0};
  origin_t origin = {0};
  resp.status = statuses[fx->recorded % 5];
  origin.matched = fx->recorded % 2 == 0;
  if (origin.matched)
    buf_puts(&origin.endpoint, fx->recorded ? "get_a" : "a \"quoted\" one");
  buf_puts(&origin.provision, "seed");
  journal_record(fx->journal, "127.0.0.1:40000", req, &resp, &origin,
                 1700000000000000 + 1000 * fx->recorded, 42);
  http_response_free(&resp);
  origin_free(&origin);
  fx->recorded++;
  return 0;
}

/* The state every input starts from (the provisions were reset by the end
 * of the input before). */
static void fixture_begin(struct admin_fixture *fx, uint8_t mode) {
  store_clear(fx->store, NULL, 0);
  static const char *const docs[][3] = {
      {"items", "1", "{\"_id\":\"1\",\"n\":1,\"tags\":[\"a\",\"b\"]}"},
      {"items", "two", "{\"_id\":\"two\",\"n\":2.5,\"o\":{\"k\":null}}"},
      {"odd \xff name", "x", "{\"_id\":\"x\"}"},
  };
  for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++)
    store_put(fx->store, docs[i][0], strlen(docs[i][0]), docs[i][1], strlen(docs[i][1]),
              docs[i][2], strlen(docs[i][2]));
  fx->journal = journal_new(4, 16, 0);
  if (fx->journal == NULL)
    fuzz_fail("admin", "journal_new failed");
  fx->recorded = 0;
  fuzz_feed((const uint8_t *)seed_traffic, sizeof seed_traffic - 1, sizeof seed_traffic, 4096,
            record_seed, fx);

  fx->abandon = mode & 0x20;
  fx->provisions_touched = false;
  int who = mode >> 6;
  admin_opts_t aopts = {.store = fx->store,
                        .journal = fx->journal,
                        .metrics = fx->metrics,
                        .provision = fx->provision,
                        .token = who == 2 ? TOKEN : NULL,
                        .open = who == 3};
  if ((fx->admin = admin_new(&aopts)) == NULL)
    fuzz_fail("admin", "admin_new failed");
  fx->remote = who == 3 ? "192.0.2.7" : "127.0.0.1";
}

static void fixture_end(struct admin_fixture *fx) {
  uv_run(&fx->loop, UV_RUN_DEFAULT); /* abandoned posts finish */
  admin_free(fx->admin);
  fx->admin = NULL;
  if (fx->provisions_touched) {
    provisions_stop(fx);
    provisions_start(fx);
  }
  journal_free(fx->journal);
  fx->journal = NULL;
}

static void answered(void *data) { *(bool *)data = true; }

static int admin_answer(void *arg, const http_request_t *req) {
  struct admin_fixture *fx = arg;
  static const char provision_path[] = "/app/v1/provision";
  if (req->path_len >= sizeof provision_path - 1 &&
      memcmp(req->path, provision_path, sizeof provision_path - 1) == 0)
    fx->provisions_touched = true;
  http_response_t resp = {0};
  bool done = false;
  void *pending = NULL;
  if (admin_dispatch(fx->admin, req, fx->remote, &resp, answered, &done, &pending) ==
      CONN_PENDING) {
    if (fx->abandon) {
      admin_abandon(pending);
      http_response_free(&resp);
      return 0;
    }
    while (!done && uv_run(&fx->loop, UV_RUN_ONCE))
      ;
    if (!done)
      fuzz_fail("admin", "a pending answer never came");
  }
  fuzz_check_response("admin", &resp, req->method);
  http_response_free(&resp);
  /* Whatever was posted, re-activated or deleted, something serves. */
  if (provision_active(fx->provision) == NULL)
    fuzz_fail("admin", "no provision is active after %.*s", (int)req->target_len, req->target);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct admin_fixture *fx = fixture ? fixture : fixture_new();
  if (size == 0)
    return 0;
  fixture_begin(fx, data[0]);
  fuzz_feed(data + 1, size - 1, (size_t)(data[0] & 0x1f) + 1, MAX_PROVISION_BYTES, admin_answer,
            fx);
  fixture_end(fx);
  return 0;
}
