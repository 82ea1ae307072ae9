/* main.c - h1mock: command line, --check, and the event loop. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <uv.h>

#include "admin.h"
#include "buf.h"
#include "config.h"
#include "journal.h"
#include "log.h"
#include "metrics.h"
#include "provision.h"
#include "script.h"
#include "server.h"
#include "store.h"
#include "watchdog.h"

/* Loads each file offline as the server would; prints "file: ok (N rules)"
 * or "file:line: message". */
static int check_files(const config_t *cfg, int argc, char **argv) {
  int failed = 0;
  /* A throw-away store in memory: provisions may seed it at load time. */
  store_t *store = NULL;
  store_opts_t sopts = {.data_dir = NULL};
  char serr[256];
  if (store_open(&sopts, &store, serr, sizeof serr) == 0)
    script_store_attach(store);
  for (int i = cfg->first_file; i < argc; i++) {
    const char *path = argv[i];
    buf_t text = BUF_INIT;
    int rc = provision_read_file(path, &text);
    if (rc) {
      fprintf(stderr, "%s: cannot read: %s\n", path, strerror(-rc));
      failed++;
      buf_free(&text);
      continue;
    }
    /* require() looks beside the file, as it would in the provisions dir. */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
      *slash = '\0';
    else
      snprintf(dir, sizeof dir, ".");
    script_opts_t opts = {.loop = NULL,
                          .dir = dir,
                          .max_instructions = cfg->max_instructions,
                          .max_memory = cfg->max_lua_memory};
    script_t *s;
    char err[2048];
    /* Lua shortens long chunk names in messages; load under the base name
     * and put the path as given back in front. */
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    size_t blen = strlen(base);
    if (script_load(base, text.data ? text.data : "", text.len, &opts, &s, err, sizeof err)) {
      if (strncmp(err, base, blen) == 0 && err[blen] == ':')
        fprintf(stderr, "%s%s\n", path, err + blen);
      else
        fprintf(stderr, "%s: %s\n", path, err);
      failed++;
    } else {
      printf("%s: ok (%zu rules)\n", path, script_rule_count(s));
      script_release(s);
    }
    buf_free(&text);
  }
  script_store_attach(NULL);
  store_close(store);
  return failed ? 1 : 0;
}

/* --repair-store DIR: says what it kept and dropped, or why it could not. */
static int repair_store(const char *dir) {
  store_repair_t r;
  char err[1024];
  if (store_repair(dir, &r, err, sizeof err)) {
    fprintf(stderr, "h1mock: %s\n", err);
    return 1;
  }
  printf("h1mock: repaired %s: kept %llu records (%llu documents), dropped %llu bytes in %llu "
         "damaged regions\n",
         dir, (unsigned long long)r.kept, (unsigned long long)r.documents,
         (unsigned long long)r.dropped_bytes, (unsigned long long)r.regions);
  for (int i = 0; i < 2; i++)
    if (r.saved[i][0])
      printf("h1mock: the file as it was is kept as %s/%s\n", dir, r.saved[i]);
  printf("h1mock: %s is a fresh store now (a snapshot and an empty log)\n", dir);
  return 0;
}

static void close_any(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

int main(int argc, char **argv) {
  config_t cfg;
  char err[1024] = "";
  switch (config_parse(&cfg, argc, argv, err, sizeof err)) {
  case CONFIG_EXIT: return 0;
  case CONFIG_USAGE: fprintf(stderr, "%s\n", err); return 2;
  case CONFIG_RUN: break;
  }
  log_set_verbose(cfg.verbose);
  /* Before anything else runs: no provision (not even --check's) may find
   * the token in the environment. */
  if (config_take_secrets(&cfg, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 2;
  }
  if (cfg.check)
    return check_files(&cfg, argc, argv);
  if (cfg.repair_store)
    return repair_store(cfg.repair_store);
  metrics_init();

  struct stat st;
  if (stat(cfg.provisions, &st) != 0) {
    fprintf(stderr, "h1mock: provisions directory '%s' does not exist (%s)\n", cfg.provisions,
            strerror(errno));
    return 1;
  }
  if (!S_ISDIR(st.st_mode)) {
    fprintf(stderr, "h1mock: provisions directory '%s' is not a directory\n", cfg.provisions);
    return 1;
  }
  if (provision_check_state_dir(cfg.provisions, cfg.state_dir, err, sizeof err)) {
    fprintf(stderr, "h1mock: %s\n", err);
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);

  uv_loop_t *loop = uv_default_loop();
  store_t *store = NULL;
  store_opts_t sopts = {.data_dir = cfg.data_dir, .loop = loop};
  if (store_open(&sopts, &store, err, sizeof err)) {
    fprintf(stderr, "h1mock: %s\n", err);
    return 1;
  }
  script_store_attach(store);
  admin_set_store(store);
  journal_t *journal =
      journal_new(cfg.journal_size, cfg.journal_body_bytes, cfg.journal_max_bytes);
  if (journal == NULL) {
    fprintf(stderr, "h1mock: out of memory for a journal of %zu entries\n", cfg.journal_size);
    store_close(store);
    uv_run(loop, UV_RUN_NOWAIT);
    return 1;
  }
  script_journal_attach(journal);
  admin_set_journal(journal);
  admin_set_token(cfg.admin_token);
  admin_set_open(cfg.admin_open);
  if (cfg.data_dir)
    log_info("store: documents are kept in %s", cfg.data_dir);

  server_t *server = NULL;
  int rc = server_start(loop, &cfg, journal, &server, err, sizeof err);
  if (rc) {
    fprintf(stderr, "%s\n", err);
    store_close(store);
    uv_run(loop, UV_RUN_NOWAIT);
    server_free(server);
    script_journal_attach(NULL);
    journal_free(journal);
    return 1;
  }
  watchdog_t *watchdog = NULL;
  int wrc = watchdog_start(WATCHDOG_THRESHOLD_MS, &watchdog);
  if (wrc)
    log_warn("no watchdog thread (%s): a request that holds the loop is not reported",
             uv_strerror(wrc));
  script_opts_t opts = {.loop = loop,
                        .dir = cfg.provisions,
                        .max_instructions = cfg.max_instructions,
                        .max_memory = cfg.max_lua_memory,
                        .watchdog = watchdog};
  if (provision_init(&opts, cfg.state_dir)) {
    fprintf(stderr, "h1mock: out of memory while loading the provision\n");
    watchdog_stop(watchdog);
    return 1;
  }
  log_info("h1mock %s ready (provisions in %s)", H1MOCK_VERSION, cfg.provisions);
  uv_run(loop, UV_RUN_DEFAULT);

  provision_shutdown();
  /* Before the last turns of the loop: its handle closes there. */
  script_store_attach(NULL);
  store_close(store);
  uv_walk(loop, close_any, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  rc = uv_loop_close(loop);
  watchdog_stop(watchdog);
  server_free(server);
  script_journal_attach(NULL);
  journal_free(journal);
  metrics_reset();
  log_info("stopped");
  return rc ? 1 : 0;
}
