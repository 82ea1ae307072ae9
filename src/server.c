/* server.c - listeners, sweep timer, signals, graceful stop. */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "access_log.h"
#include "admin.h"
#include "conn.h"
#include "journal.h"
#include "log.h"
#include "metrics.h"
#include "provision.h"
#include "text.h"
#include "watcher.h"

#define STOP_GRACE_MS 30000 /* in-flight requests get this long after SIGTERM */

struct listener {
  uv_tcp_t tcp;
  conn_env_t env;
  bool open;
};

struct server {
  uv_loop_t *loop;
  struct listener traffic, admin;
  uv_timer_t sweep;
  uv_timer_t grace;
  uv_signal_t sigterm, sigint;
  watcher_t *watcher;
  journal_t *journal;
  access_log_t *access_log;
  bool stopping;
};

static void on_connection(uv_stream_t *l, int status) {
  struct listener *li = (struct listener *)l;
  if (status < 0) {
    log_warn("%s: accept failed: %s", li->env.name, uv_strerror(status));
    return;
  }
  int rc = conn_accept(&li->env, l);
  if (rc)
    log_warn("%s: cannot take a connection: %s", li->env.name, uv_strerror(rc));
}

/* After each traffic response: the metrics, the journal, the access log. */
static void on_complete(void *ctx, const char *peer, const http_request_t *req,
                        const http_response_t *resp, uint64_t ns) {
  server_t *s = ctx;
  metrics_request(req->method, resp->status, resp->matched ? resp->endpoint.data : NULL,
                  resp->endpoint.len, ns);
  if (s->journal == NULL && s->access_log == NULL)
    return;
  uint64_t us = ns / 1000;
  int64_t started = text_now_us() - (int64_t)us;
  journal_record(s->journal, peer, req, resp, started, us);
  access_log_request(s->access_log, peer, req, resp, started, us);
}

static void print_address(const struct sockaddr_storage *ss, char *out, size_t n) {
  char ip[64] = "?";
  int port = 0;
  if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
    uv_ip6_name(a, ip, sizeof ip);
    port = ntohs(a->sin6_port);
    snprintf(out, n, "[%s]:%d", ip, port);
  } else {
    const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
    uv_ip4_name(a, ip, sizeof ip);
    port = ntohs(a->sin_port);
    snprintf(out, n, "%s:%d", ip, port);
  }
}

static int listen_on(server_t *s, struct listener *li, const config_t *cfg, int port, char *err,
                     size_t errlen) {
  struct sockaddr_storage ss;
  int rc = strchr(cfg->address, ':') ? uv_ip6_addr(cfg->address, port, (struct sockaddr_in6 *)&ss)
                                     : uv_ip4_addr(cfg->address, port, (struct sockaddr_in *)&ss);
  if (rc) {
    snprintf(err, errlen, "h1mock: --address: '%s' is not an IPv4 or IPv6 address", cfg->address);
    return rc;
  }
  char where[96];
  print_address(&ss, where, sizeof where);
  if ((rc = uv_tcp_init(s->loop, &li->tcp)))
    goto fail;
  li->open = true;
  li->tcp.data = li;
  if ((rc = uv_tcp_bind(&li->tcp, (struct sockaddr *)&ss, 0)) ||
      (rc = uv_listen((uv_stream_t *)&li->tcp, 511, on_connection)))
    goto fail;
  int len = sizeof ss;
  uv_tcp_getsockname(&li->tcp, (struct sockaddr *)&ss, &len);
  print_address(&ss, where, sizeof where);
  log_info("%s on %s", li->env.name, where);
  return 0;
fail:
  snprintf(err, errlen, "h1mock: cannot listen on %s (%s): %s", where, li->env.name,
           uv_strerror(rc));
  return rc;
}

static void on_sweep(uv_timer_t *t) {
  server_t *s = t->data;
  http_date_update();
  conn_sweep(&s->traffic.env);
  conn_sweep(&s->admin.env);
}

static void close_handle(uv_handle_t *h) {
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

/* Both listeners have no connection left: let the loop end. */
static void on_drained(void *ctx) {
  server_t *s = ctx;
  if (!s->stopping || s->traffic.env.count || s->admin.env.count)
    return;
  close_handle((uv_handle_t *)&s->sweep);
  close_handle((uv_handle_t *)&s->grace);
  close_handle((uv_handle_t *)&s->sigterm);
  close_handle((uv_handle_t *)&s->sigint);
}

static void on_grace_over(uv_timer_t *t) {
  server_t *s = t->data;
  log_warn("requests still running %d s after the stop signal: closing them",
           STOP_GRACE_MS / 1000);
  conn_close_all(&s->traffic.env);
  conn_close_all(&s->admin.env);
}

static void on_signal(uv_signal_t *sig, int signum) {
  server_t *s = sig->data;
  if (s->stopping) {
    log_warn("second %s: stopping now", signum == SIGINT ? "SIGINT" : "SIGTERM");
    conn_close_all(&s->traffic.env);
    conn_close_all(&s->admin.env);
    return;
  }
  s->stopping = true;
  log_info("stopping (%s): finishing requests in flight", signum == SIGINT ? "SIGINT" : "SIGTERM");
  close_handle((uv_handle_t *)&s->traffic.tcp);
  close_handle((uv_handle_t *)&s->admin.tcp);
  watcher_stop(s->watcher);
  s->watcher = NULL;
  uv_timer_start(&s->grace, on_grace_over, STOP_GRACE_MS, 0);
  uv_unref((uv_handle_t *)&s->grace);
  conn_drain(&s->traffic.env);
  conn_drain(&s->admin.env);
  on_drained(s);
}

static void init_env(conn_env_t *env, uv_loop_t *loop, const config_t *cfg, const char *name,
                     conn_dispatch_fn dispatch, void (*abandon)(void *), server_t *s) {
  *env = (conn_env_t){
      .loop = loop,
      .name = name,
      .max_body = cfg->max_body,
      .header_timeout_ms = (uint64_t)(cfg->header_timeout * 1000),
      .idle_timeout_ms = (uint64_t)(cfg->idle_timeout * 1000),
      .dispatch = dispatch,
      .abandon = abandon,
      .complete = on_complete,
      .ctx = s,
      .drained = on_drained,
  };
}

int server_start(uv_loop_t *loop, const config_t *cfg, journal_t *journal, server_t **out,
                 char *err, size_t errlen) {
  server_t *s = calloc(1, sizeof *s);
  if (s == NULL) {
    snprintf(err, errlen, "h1mock: out of memory");
    return UV_ENOMEM;
  }
  s->loop = loop;
  s->journal = journal_enabled(journal) ? journal : NULL;
  init_env(&s->traffic.env, loop, cfg, "traffic", provision_dispatch, provision_dispatch_abandon,
           s);
  init_env(&s->admin.env, loop, cfg, "admin", admin_dispatch, admin_abandon, s);
  s->admin.env.max_body = cfg->max_provision_bytes;
  s->admin.env.complete = NULL; /* the journal and the metrics are about traffic */
  metrics_track_connections(&s->traffic.env.count);
  *out = s;
  int rc = listen_on(s, &s->traffic, cfg, cfg->port, err, errlen);
  if (rc == 0)
    rc = listen_on(s, &s->admin, cfg, cfg->admin_port, err, errlen);
  if (rc) {
    if (s->traffic.open)
      close_handle((uv_handle_t *)&s->traffic.tcp);
    if (s->admin.open)
      close_handle((uv_handle_t *)&s->admin.tcp);
    return rc;
  }
  if (config_admin_exposed(cfg))
    log_warn("the admin API listens on %s without --admin-token, and --admin-open lets anyone "
             "who can reach it post provisions, which run Lua code here",
             cfg->address);
  else if (cfg->admin_token == NULL && !config_is_loopback(cfg->address))
    log_info("admin API: no token, so only loopback peers may call it (others get 403; "
             "/healthz and /metrics answer everyone): see --admin-token, --admin-open");
  if (access_log_open(loop, cfg->access_log, STDOUT_FILENO, &s->access_log))
    log_error("out of memory: no access log");
  http_date_update();
  uv_timer_init(loop, &s->sweep);
  s->sweep.data = s;
  uv_timer_start(&s->sweep, on_sweep, 1000, 1000);
  uv_timer_init(loop, &s->grace);
  s->grace.data = s;
  uv_signal_init(loop, &s->sigterm);
  uv_signal_init(loop, &s->sigint);
  s->sigterm.data = s->sigint.data = s;
  uv_signal_start(&s->sigterm, on_signal, SIGTERM);
  uv_signal_start(&s->sigint, on_signal, SIGINT);
  int wrc = watcher_start(loop, cfg->provisions, &s->watcher);
  if (wrc)
    log_warn("cannot watch %s (%s): provisions reload only through the admin API", cfg->provisions,
             uv_strerror(wrc));
  return 0;
}

void server_free(server_t *s) {
  if (s == NULL)
    return;
  metrics_track_connections(NULL);
  access_log_free(s->access_log);
  free(s);
}
