/* main.c - h1mock: command line, --check, and the event loop. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "buf.h"
#include "config.h"
#include "h1mock.h"
#include "log.h"
#include "provision.h"
#include "script.h"
#include "store.h"

/* Loads each file offline as the server would; prints "file: ok (N rules)"
 * ("1 rule") or "file:line: message". */
static int check_files(const config_t *cfg, const log_t *log, int argc, char **argv) {
  int failed = 0;
  /* A throw-away store in memory: provisions may seed it at load time. */
  store_t *store = NULL;
  store_opts_t sopts = {.data_dir = NULL, .log = log};
  char serr[256];
  if (store_open(&sopts, &store, serr, sizeof serr) != 0)
    store = NULL;                                   /* the provisions' store calls then raise */
  script_runtime_t *runtime = script_runtime_new(); /* NULL: each load compiles it */
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
                          .max_memory = cfg->max_lua_memory,
                          .log = log,
                          .store = store,
                          .runtime = runtime};
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
      size_t n = script_rule_count(s);
      printf("%s: ok (%zu rule%s)\n", path, n, n == 1 ? "" : "s");
      script_release(s);
    }
    buf_free(&text);
  }
  script_runtime_free(runtime);
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

int main(int argc, char **argv) {
  config_t cfg;
  char err[1024] = "";
  switch (config_parse(&cfg, argc, argv, err, sizeof err)) {
  case CONFIG_EXIT: return 0;
  case CONFIG_USAGE: fprintf(stderr, "%s\n", err); return 2;
  case CONFIG_RUN: break;
  }
  log_t log = log_make(STDERR_FILENO, cfg.verbose);
  /* Before anything else runs: no provision (not even --check's) may find
   * the token in the environment. */
  if (config_take_secrets(&cfg, &log, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 2;
  }
  if (cfg.check)
    return check_files(&cfg, &log, argc, argv);
  if (cfg.repair_store)
    return repair_store(cfg.repair_store);
  signal(SIGPIPE, SIG_IGN);

  uv_loop_t *loop = uv_default_loop();
  h1mock_t *h;
  h1mock_io_t io = {.log_fd = STDERR_FILENO, .access_fd = STDOUT_FILENO};
  if (h1mock_start(&cfg, loop, &io, &h, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    uv_loop_close(loop);
    return 1;
  }
  uv_run(loop, UV_RUN_DEFAULT);
  h1mock_free(h);
  int rc = uv_loop_close(loop);
  log_info(&log, "stopped");
  return rc ? 1 : 0;
}
