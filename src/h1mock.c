/* h1mock.c - making, running and taking down one server. */
#include "h1mock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "admin.h"
#include "http_client.h"
#include "journal.h"
#include "log.h"
#include "metrics.h"
#include "provision.h"
#include "proxy.h"
#include "record.h"
#include "script.h"
#include "server.h"
#include "store.h"
#include "text.h"
#include "watchdog.h"

struct h1mock {
  const config_t *cfg;
  uv_loop_t *loop;
  log_t log;
  int64_t started_us;
  metrics_t *metrics;
  store_t *store;
  journal_t *journal;
  watchdog_t *watchdog; /* NULL when its thread could not start */
  script_runtime_t *runtime;
  /* Outbound HTTP for the provisions: made here on `loop`, handed to the
   * scripts in script_opts_t, freed (before the loop's last turns, which
   * close its connections) in take_down. */
  http_client_t *client;
  char via[PROXY_TOKEN_SIZE]; /* Via token of what this server forwards */
  record_t *record;           /* --record; freed once the loop has ended */
  provision_t *provision;
  admin_t *admin;
  server_t *server;
};

/* Refuses a provisions directory that is missing or not a directory. */
static int check_provisions_dir(const char *dir, char *err, size_t errlen) {
  struct stat st;
  if (stat(dir, &st) != 0) {
    int rc = -errno;
    snprintf(err, errlen, "h1mock: provisions directory '%s' does not exist (%s)", dir,
             strerror(errno));
    return rc;
  }
  if (!S_ISDIR(st.st_mode)) {
    snprintf(err, errlen, "h1mock: provisions directory '%s' is not a directory", dir);
    return -ENOTDIR;
  }
  return 0;
}

static void close_any(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

/* Frees what was made, in the reverse order; handles go with the loop's
 * last turns, so the parts that own handles are freed after those. */
static void take_down(h1mock_t *h) {
  provision_close(h->provision);
  http_client_free(h->client);
  uv_walk(h->loop, close_any, NULL);
  uv_run(h->loop, UV_RUN_DEFAULT);
  watchdog_stop(h->watchdog);
  server_free(h->server);
  admin_free(h->admin);
  provision_free(h->provision);
  script_runtime_free(h->runtime); /* after the last state closed */
  journal_free(h->journal);
  store_close(h->store);
  metrics_free(h->metrics);
  record_free(h->record);
  free(h);
}

int h1mock_start(const config_t *cfg, uv_loop_t *loop, const h1mock_io_t *io, h1mock_t **out,
                 char *err, size_t errlen) {
  *out = NULL;
  h1mock_t *h = calloc(1, sizeof *h);
  if (h == NULL) {
    snprintf(err, errlen, "h1mock: out of memory");
    return -ENOMEM;
  }
  h->cfg = cfg;
  h->loop = loop;
  h->log = log_make(io->log_fd, cfg->verbose);
  h->started_us = text_now_us();
  int rc;
  if ((h->metrics = metrics_new(h->started_us)) == NULL ||
      (h->runtime = script_runtime_new()) == NULL) {
    snprintf(err, errlen, "h1mock: out of memory");
    rc = -ENOMEM;
    goto fail;
  }
  if ((rc = check_provisions_dir(cfg->provisions, err, errlen)))
    goto fail;
  char why[900];
  if ((rc = provision_check_state_dir(cfg->provisions, cfg->state_dir, why, sizeof why))) {
    snprintf(err, errlen, "h1mock: %s", why);
    goto fail;
  }
  store_opts_t sopts = {.data_dir = cfg->data_dir, .log = &h->log, .loop = loop};
  if ((rc = store_open(&sopts, &h->store, why, sizeof why))) {
    snprintf(err, errlen, "h1mock: %s", why);
    goto fail;
  }
  h->journal = journal_new(cfg->journal_size, cfg->journal_body_bytes, cfg->journal_max_bytes);
  if (h->journal == NULL) {
    snprintf(err, errlen, "h1mock: out of memory for a journal of %zu entries", cfg->journal_size);
    rc = -ENOMEM;
    goto fail;
  }
  if (cfg->data_dir)
    log_info(&h->log, "store: documents are kept in %s", cfg->data_dir);
  const char *bad;
  if (cfg->proxy && proxy_check_base(cfg->proxy, &bad)) {
    snprintf(err, errlen, "h1mock: --proxy: '%s': %s", cfg->proxy, bad);
    rc = -EINVAL;
    goto fail;
  }
  if (cfg->record && cfg->proxy == NULL) {
    snprintf(err, errlen, "h1mock: --record records what --proxy forwards: give --proxy URL too");
    rc = -EINVAL;
    goto fail;
  }
  if (cfg->record && (rc = record_open(loop, cfg->record, cfg->provisions, cfg->proxy, &h->log,
                                       &h->record, err, errlen)))
    goto fail;
  proxy_token(h->via);
  http_client_options_t copts = {
      .outbound = cfg->outbound == CONFIG_OUTBOUND_OFF        ? HTTP_CLIENT_OUTBOUND_OFF
                  : cfg->outbound == CONFIG_OUTBOUND_LOOPBACK ? HTTP_CLIENT_OUTBOUND_LOOPBACK
                                                              : HTTP_CLIENT_OUTBOUND_ANY,
      .max_body = cfg->client_max_body};
  if ((rc = http_client_new(loop, &copts, &h->client))) {
    snprintf(err, errlen, "h1mock: out of memory");
    goto fail;
  }
  int wrc = watchdog_start(WATCHDOG_THRESHOLD_MS, &h->log, &h->watchdog);
  if (wrc)
    log_warn(&h->log, "no watchdog thread (%s): a request that holds the loop is not reported",
             uv_strerror(wrc));
  provision_opts_t popts = {.script = {.loop = loop,
                                       .dir = cfg->provisions,
                                       .max_instructions = cfg->max_instructions,
                                       .max_memory = cfg->max_lua_memory,
                                       .watchdog = h->watchdog,
                                       .log = &h->log,
                                       .store = h->store,
                                       .journal = h->journal,
                                       .runtime = h->runtime,
                                       .client = h->client,
                                       .metrics = h->metrics,
                                       .proxy = cfg->proxy,
                                       .via = h->via,
                                       .recorder = h->record,
                                       .started_at = h->started_us / 1000000,
                                       .default_help = cfg->default_mode == CONFIG_DEFAULT_HELP,
                                       .cors = cfg->cors},
                            .state_dir = cfg->state_dir,
                            .metrics = h->metrics};
  if ((rc = provision_new(&popts, &h->provision))) {
    snprintf(err, errlen, "h1mock: out of memory");
    goto fail;
  }
  admin_opts_t aopts = {.store = h->store,
                        .journal = h->journal,
                        .metrics = h->metrics,
                        .provision = h->provision,
                        .log = &h->log,
                        .token = cfg->admin_token,
                        .open = cfg->admin_open};
  if ((h->admin = admin_new(&aopts)) == NULL) {
    snprintf(err, errlen, "h1mock: out of memory");
    rc = -ENOMEM;
    goto fail;
  }
  server_opts_t vopts = {.loop = loop,
                         .cfg = cfg,
                         .log = &h->log,
                         .metrics = h->metrics,
                         .journal = h->journal,
                         .admin = h->admin,
                         .provision = h->provision,
                         .access_fd = io->access_fd};
  if ((rc = server_start(&vopts, &h->server, err, errlen)))
    goto fail;
  if ((rc = provision_start(h->provision))) {
    snprintf(err, errlen, "h1mock: out of memory while loading the provision");
    goto fail;
  }
  log_info(&h->log, "h1mock %s ready (provisions in %s)", H1MOCK_VERSION, cfg->provisions);
  *out = h;
  return 0;

fail:
  take_down(h);
  return rc;
}

void h1mock_stop(h1mock_t *h) { server_stop(h->server); }

void h1mock_free(h1mock_t *h) {
  if (h)
    take_down(h);
}
