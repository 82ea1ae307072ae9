/* server.c - listeners, connection limits, sweep timer, signals, graceful
 * stop. */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
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

#define STOP_GRACE_MS 30000  /* in-flight requests get this long after SIGTERM */
#define ACCEPT_BATCH 64      /* connections taken per wake-up: one port cannot hog the loop */
#define REFUSAL_LOG_MS 60000 /* at most one line a minute per port and reason */

/* Connections refused for one reason since the last log line about them. */
struct refusals {
  uint64_t count;
  uint64_t logged_ms;
  bool logged; /* a line was written already: logged_ms is meaningful */
};

/* The listening socket is ours, not a uv_tcp_t's: libuv 1.44 meets EMFILE
 * on accept by accepting and closing the pending connections itself,
 * without telling the program, so a server out of descriptors would look
 * healthy in its log. Accepting here lets h1mock say so and answer 503. */
struct socket {
  uv_poll_t poll;
  int fd;    /* -1 once closed */
  bool open; /* the poll handle is initialized */
  struct listener *li;
};

/* One port: a socket per address --address stands for (a host name may
 * have several), their connections counted and limited together. */
struct listener {
  struct socket sock[CONFIG_MAX_ADDRESSES];
  size_t nsock;
  conn_env_t env;
  server_t *server;
  bool polling; /* false while accepting is paused for want of descriptors */
  struct refusals full, nofds;
};

struct server {
  uv_loop_t *loop;
  struct listener traffic, admin;
  struct sockaddr_storage addr[CONFIG_MAX_ADDRESSES]; /* --address, resolved at start */
  size_t naddr;
  int spare_fd;    /* a descriptor given up to accept, and refuse, when there are none left */
  uint64_t nofile; /* the open-files limit */
  http_response_t refusal;
  buf_t refusal_out;
  uv_timer_t sweep;
  uv_timer_t grace;
  uv_signal_t sigterm, sigint;
  uv_async_t stop; /* server_stop, from any thread */
  watcher_t *watcher;
  const log_t *log;
  metrics_t *metrics;
  admin_t *admin_api;
  provision_t *provision;
  journal_t *journal;
  access_log_t *access_log;
  bool stopping;
};

/* The refusals of one kind get a line now, unless one was written less
 * than a minute ago; the sweep writes the ones held back. */
static void report_refusals(struct listener *li, struct refusals *r) {
  server_t *s = li->server;
  uint64_t now = uv_now(s->loop);
  if (r->count == 0 || (r->logged && now - r->logged_ms < REFUSAL_LOG_MS))
    return;
  if (r == &li->full)
    log_warn(s->log,
             "%s: %llu connection%s refused with 503: %zu are open, the most this port takes "
             "(%s); raise it if the clients are legitimate",
             li->env.name, (unsigned long long)r->count, r->count == 1 ? "" : "s", li->env.count,
             li == &s->traffic ? "--max-connections" : "the admin port's own limit");
  else
    log_error(s->log,
              "%s: out of file descriptors (open-files limit %llu): %llu connection%s refused "
              "with 503 since the last such line; raise the limit (ulimit -n, systemd's "
              "LimitNOFILE=) or lower --max-connections",
              li->env.name, (unsigned long long)s->nofile, (unsigned long long)r->count,
              r->count == 1 ? "" : "s");
  r->count = 0;
  r->logged = true;
  r->logged_ms = now;
}

/* Answers 503 on an accepted socket if it fits in the socket buffer at
 * once (it does on a fresh connection), then closes it. */
static void refuse(struct listener *li, int fd, struct refusals *r) {
  server_t *s = li->server;
  char text[160];
  if (r == &li->full)
    snprintf(text, sizeof text,
             "503 Service Unavailable: %zu connections are open, the most this port takes; "
             "try again later\n",
             li->env.count);
  else
    snprintf(text, sizeof text,
             "503 Service Unavailable: the server is out of file descriptors; try again later\n");
  buf_reset(&s->refusal_out);
  if (http_response_simple(&s->refusal, 503, "text/plain; charset=utf-8", text, strlen(text)) ==
          0 &&
      http_response_write(&s->refusal, HTTP_GET, false, false, &s->refusal_out) == 0 &&
      send(fd, s->refusal_out.data, s->refusal_out.len, MSG_DONTWAIT | MSG_NOSIGNAL) ==
          (ssize_t)s->refusal_out.len) {
    /* Read what the client sent already: closing a socket with unread
     * bytes resets the connection, and the reset may destroy the answer
     * before the client reads it. */
    shutdown(fd, SHUT_WR);
    char sink[4096];
    for (int i = 0; i < 16 && recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0; i++)
      ;
  }
  close(fd);
  r->count++;
  report_refusals(li, r);
}

static void pause_accepting(struct listener *li) {
  if (li->polling)
    for (size_t i = 0; i < li->nsock; i++)
      if (li->sock[i].open)
        uv_poll_stop(&li->sock[i].poll);
  li->polling = false;
}

static void on_acceptable(uv_poll_t *p, int status, int events);

/* The sweep's retry after a pause: a spare descriptor is needed to refuse
 * connections again when descriptors run out a second time. */
static void resume_accepting(struct listener *li) {
  server_t *s = li->server;
  if (li->polling || li->nsock == 0 || !li->sock[0].open ||
      uv_is_closing((uv_handle_t *)&li->sock[0].poll))
    return;
  if (s->spare_fd < 0)
    s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (s->spare_fd < 0)
    return;
  for (size_t i = 0; i < li->nsock; i++)
    if (uv_poll_start(&li->sock[i].poll, UV_READABLE, on_acceptable) == 0)
      li->polling = true;
  if (li->polling)
    log_info(s->log, "%s: accepting connections again", li->env.name);
}

/* accept() failed for want of descriptors: give up the spare one to take
 * the pending connections and refuse them with a 503, then take it back.
 * Without a spare, stop accepting (the listener would wake the loop
 * without end) until the sweep finds descriptors again. */
static void out_of_descriptors(struct listener *li, int listen_fd) {
  server_t *s = li->server;
  int err = EMFILE;
  if (s->spare_fd >= 0) {
    close(s->spare_fd);
    s->spare_fd = -1;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
      int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        err = errno;
        break;
      }
      refuse(li, fd, &li->nofds);
      err = 0;
    }
    s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  }
  if ((s->spare_fd < 0 || err == EMFILE || err == ENFILE) && li->polling) {
    log_error(s->log,
              "%s: out of file descriptors (open-files limit %llu) and none spare to refuse "
              "connections with: accepting waits until descriptors free up",
              li->env.name, (unsigned long long)s->nofile);
    pause_accepting(li);
  }
}

static void on_acceptable(uv_poll_t *p, int status, int events) {
  (void)events;
  struct socket *sock = p->data;
  struct listener *li = sock->li;
  if (status < 0) {
    log_error(li->server->log, "%s: the listening socket failed: %s", li->env.name,
              uv_strerror(status));
    pause_accepting(li);
    return;
  }
  for (int i = 0; i < ACCEPT_BATCH && li->polling; i++) {
    int fd = accept4(sock->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      if (li->env.count >= li->env.max_connections) {
        refuse(li, fd, &li->full);
        continue;
      }
      int rc = conn_open(&li->env, fd);
      if (rc)
        log_warn(li->server->log, "%s: cannot take a connection: %s", li->env.name,
                 uv_strerror(rc));
      continue;
    }
    switch (errno) {
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
      return;
    case EMFILE:
    case ENFILE: out_of_descriptors(li, sock->fd); return;
    case ENOBUFS:
    case ENOMEM:
      /* The sweep tries again in a second; meanwhile clients wait in the
       * backlog instead of the loop spinning. */
      log_error(li->server->log, "%s: cannot accept: %s; trying again in a second", li->env.name,
                strerror(errno));
      pause_accepting(li);
      return;
    default: continue; /* the client gave up, or a network error: next one */
    }
  }
}

/* The traffic port's dispatcher: the active provision answers. */
static enum conn_status traffic_answer(void *ctx, const http_request_t *req, const char *remote,
                                       http_response_t *resp, origin_t *origin, conn_done_fn done,
                                       void *data, void **pending) {
  server_t *s = ctx;
  script_call_t *call;
  enum script_status st = script_dispatch(provision_active(s->provision), req, remote, resp,
                                          origin, done, data, &call);
  *pending = call;
  return st == SCRIPT_PENDING ? CONN_PENDING : CONN_DONE;
}

static void traffic_abandon(void *pending) { script_abandon(pending); }

/* The admin port's dispatcher: the admin API of this server. */
static enum conn_status admin_answer(void *ctx, const http_request_t *req, const char *remote,
                                     http_response_t *resp, origin_t *origin, conn_done_fn done,
                                     void *data, void **pending) {
  server_t *s = ctx;
  (void)origin;
  return admin_dispatch(s->admin_api, req, remote, resp, done, data, pending);
}

/* After each traffic response: the metrics, the journal, the access log. */
static void on_complete(void *ctx, const char *peer, const http_request_t *req,
                        const http_response_t *resp, const origin_t *origin, uint64_t ns) {
  server_t *s = ctx;
  metrics_request(s->metrics, req->method, resp->status,
                  origin->matched ? origin->endpoint.data : NULL, origin->endpoint.len, ns);
  if (s->journal == NULL && s->access_log == NULL)
    return;
  uint64_t us = ns / 1000;
  int64_t started = text_now_us() - (int64_t)us;
  journal_record(s->journal, peer, req, resp, origin, started, us);
  access_log_request(s->access_log, peer, req, resp, origin, started, us);
}

static void on_listener_closed(uv_handle_t *h) {
  struct socket *sock = h->data;
  close(sock->fd);
  sock->fd = -1;
}

static void close_listener(struct listener *li) {
  for (size_t i = 0; i < li->nsock; i++) {
    struct socket *sock = &li->sock[i];
    if (sock->open && !uv_is_closing((uv_handle_t *)&sock->poll))
      uv_close((uv_handle_t *)&sock->poll, on_listener_closed);
    else if (!sock->open && sock->fd >= 0) {
      close(sock->fd);
      sock->fd = -1;
    }
  }
}

/* Listens on `ss` with a new socket of `li`; fills `where` with the
 * address as bound (the port chosen for a port 0). */
static int listen_one(struct listener *li, struct sockaddr_storage *ss, char *where, size_t n) {
  struct socket *sock = &li->sock[li->nsock++];
  int one = 1;
  socklen_t len =
      ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
  int rc;
  sock->li = li;
  sock->fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  /* Without V6ONLY, "::" also takes IPv4, and a name with both ::1 and
   * 127.0.0.1 could not bind the second. */
  if (sock->fd < 0 || setsockopt(sock->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
      (ss->ss_family == AF_INET6 && li->server->naddr > 1 &&
       setsockopt(sock->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one)) ||
      bind(sock->fd, (struct sockaddr *)ss, len) || listen(sock->fd, 511))
    return -errno; /* libuv's error codes are negated errno values on Unix */
  if ((rc = uv_poll_init_socket(li->server->loop, &sock->poll, sock->fd)))
    return rc;
  sock->open = true;
  sock->poll.data = sock;
  if ((rc = uv_poll_start(&sock->poll, UV_READABLE, on_acceptable)))
    return rc;
  li->polling = true;
  len = sizeof *ss;
  getsockname(sock->fd, (struct sockaddr *)ss, &len);
  text_address((struct sockaddr *)ss, NULL, 0, where, n);
  return 0;
}

/* Listens on `port` of every address of the server. With port 0 the
 * first address picks one and the others take the same. An address of a
 * host name that this host cannot bind (::1 where IPv6 is off) is left
 * out with a warning, as long as another one is bound. */
static int listen_on(server_t *s, struct listener *li, const config_t *cfg, int port, char *err,
                     size_t errlen) {
  li->server = s;
  int rc = 0, left_out = 0;
  char where[96];
  for (size_t i = 0; i < s->naddr; i++) {
    struct sockaddr_storage ss = s->addr[i];
    uint16_t *sin_port = ss.ss_family == AF_INET6 ? &((struct sockaddr_in6 *)&ss)->sin6_port
                                                  : &((struct sockaddr_in *)&ss)->sin_port;
    *sin_port = htons((uint16_t)port);
    text_address((struct sockaddr *)&ss, NULL, 0, where, sizeof where);
    rc = listen_one(li, &ss, where, sizeof where);
    if (rc == 0) {
      log_info(s->log, "%s on %s", li->env.name, where);
      if (port == 0)
        port = ntohs(*sin_port);
      continue;
    }
    struct socket *sock = &li->sock[li->nsock - 1];
    if (s->naddr == 1 || sock->open || (rc != UV_EADDRNOTAVAIL && rc != UV_EAFNOSUPPORT))
      break;
    log_warn(s->log, "%s: cannot listen on %s, an address of '%s': %s; leaving it out",
             li->env.name, where, cfg->address, uv_strerror(rc));
    if (sock->fd >= 0)
      close(sock->fd);
    sock->fd = -1;
    li->nsock--;
    left_out = rc;
    rc = 0;
  }
  if (rc == 0 && li->nsock == 0)
    rc = left_out; /* every address was left out */
  if (rc == UV_EADDRINUSE)
    snprintf(err, errlen,
             "h1mock: cannot listen on %s (%s): %s; another program (another h1mock?) has that "
             "port: stop it, or choose another with %s (0 picks a free one)",
             where, li->env.name, uv_strerror(rc), li == &s->traffic ? "--port" : "--admin-port");
  else if (rc)
    snprintf(err, errlen, "h1mock: cannot listen on %s (%s): %s", where, li->env.name,
             uv_strerror(rc));
  return rc;
}

static void sweep_listener(struct listener *li) {
  resume_accepting(li);
  report_refusals(li, &li->full);
  report_refusals(li, &li->nofds);
}

static void on_sweep(uv_timer_t *t) {
  server_t *s = t->data;
  http_date_update();
  conn_sweep(&s->traffic.env);
  conn_sweep(&s->admin.env);
  if (!s->stopping) {
    sweep_listener(&s->traffic);
    sweep_listener(&s->admin);
  }
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
  close_handle((uv_handle_t *)&s->stop);
}

static void on_grace_over(uv_timer_t *t) {
  server_t *s = t->data;
  log_warn(s->log, "requests still running %d s after the stop signal: closing them",
           STOP_GRACE_MS / 1000);
  conn_close_all(&s->traffic.env);
  conn_close_all(&s->admin.env);
}

/* A stop was asked for (`why`: "SIGTERM", or NULL for server_stop): the
 * first stops accepting and lets the requests in flight finish, a second
 * closes them. */
static void stop_serving(server_t *s, const char *why) {
  if (s->stopping) {
    if (why) {
      log_warn(s->log, "second %s: stopping now", why);
      conn_close_all(&s->traffic.env);
      conn_close_all(&s->admin.env);
    }
    return;
  }
  s->stopping = true;
  if (why)
    log_info(s->log, "stopping (%s): finishing requests in flight", why);
  else
    log_info(s->log, "stopping: finishing requests in flight");
  close_listener(&s->traffic);
  close_listener(&s->admin);
  watcher_stop(s->watcher);
  s->watcher = NULL;
  uv_timer_start(&s->grace, on_grace_over, STOP_GRACE_MS, 0);
  uv_unref((uv_handle_t *)&s->grace);
  conn_drain(&s->traffic.env);
  conn_drain(&s->admin.env);
  on_drained(s);
}

static void on_signal(uv_signal_t *sig, int signum) {
  stop_serving(sig->data, signum == SIGINT ? "SIGINT" : "SIGTERM");
}

static void on_stop(uv_async_t *a) { stop_serving(a->data, NULL); }

void server_stop(server_t *s) { uv_async_send(&s->stop); }

static void init_env(conn_env_t *env, uv_loop_t *loop, const config_t *cfg, const char *name,
                     conn_dispatch_fn dispatch, void (*abandon)(void *), server_t *s) {
  *env = (conn_env_t){
      .loop = loop,
      .name = name,
      .log = s->log,
      .max_body = cfg->max_body,
      .header_timeout_ms = (uint64_t)(cfg->header_timeout * 1000),
      .idle_timeout_ms = (uint64_t)(cfg->idle_timeout * 1000),
      .body_timeout_ms = (uint64_t)(cfg->body_timeout * 1000),
      .dispatch = dispatch,
      .abandon = abandon,
      .complete = on_complete,
      .ctx = s,
      .drained = on_drained,
  };
}

/* Raises the soft open-files limit to the hard one, as servers do (the
 * soft 1024 of a shell is far below what a load test opens), and returns
 * the limit in force. */
static uint64_t raise_open_files(const log_t *lg) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl))
    return 1024;
  rlim_t was = rl.rlim_cur;
  if (rl.rlim_cur != rl.rlim_max) {
    struct rlimit want = {rl.rlim_max, rl.rlim_max};
    /* An unlimited hard limit still stops at the kernel's nr_open. */
    if (rl.rlim_max == RLIM_INFINITY || setrlimit(RLIMIT_NOFILE, &want)) {
      want.rlim_cur = 1 << 20;
      if (want.rlim_cur > was)
        setrlimit(RLIMIT_NOFILE, &want);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  uint64_t now = rl.rlim_cur == RLIM_INFINITY ? 1 << 20 : (uint64_t)rl.rlim_cur;
  if (now != was && log_verbose(lg))
    log_debug(lg, "open-files limit raised from %llu to %llu", (unsigned long long)was,
              (unsigned long long)now);
  return now;
}

/* The connection limits of both ports, from --max-connections or from the
 * open-files limit. */
static void set_limits(server_t *s, const config_t *cfg) {
  s->nofile = raise_open_files(s->log);
  size_t fit = config_default_connections(s->nofile);
  size_t max = cfg->max_connections ? cfg->max_connections : fit;
  s->traffic.env.max_connections = max;
  s->admin.env.max_connections = CONFIG_ADMIN_CONNECTIONS;
  if (max > fit)
    log_warn(s->log,
             "--max-connections %zu is more than the open-files limit (%llu) leaves for "
             "connections (%zu): past that, clients get 503 for want of descriptors",
             max, (unsigned long long)s->nofile, fit);
  log_info(s->log,
           "connections: up to %zu on the traffic port and %d on the admin port (open-files "
           "limit %llu)",
           max, CONFIG_ADMIN_CONNECTIONS, (unsigned long long)s->nofile);
}

int server_start(const server_opts_t *o, server_t **out, char *err, size_t errlen) {
  const config_t *cfg = o->cfg;
  uv_loop_t *loop = o->loop;
  server_t *s = calloc(1, sizeof *s);
  *out = s;
  if (s == NULL) {
    snprintf(err, errlen, "h1mock: out of memory");
    return UV_ENOMEM;
  }
  s->loop = loop;
  s->log = o->log;
  s->metrics = o->metrics;
  s->admin_api = o->admin;
  s->provision = o->provision;
  s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  s->journal = journal_enabled(o->journal) ? o->journal : NULL;
  init_env(&s->traffic.env, loop, cfg, "traffic", traffic_answer, traffic_abandon, s);
  init_env(&s->admin.env, loop, cfg, "admin", admin_answer, admin_abandon, s);
  s->admin.env.max_body = cfg->max_provision_bytes;
  s->admin.env.complete = NULL; /* the journal and the metrics are about traffic */
  set_limits(s, cfg);
  metrics_track_connections(s->metrics, &s->traffic.env.count);
  int n = config_resolve_address(cfg->address, 0, s->addr, CONFIG_MAX_ADDRESSES, err, errlen);
  if (n < 0)
    return UV_EINVAL;
  s->naddr = (size_t)n;
  int rc = listen_on(s, &s->traffic, cfg, cfg->port, err, errlen);
  if (rc == 0)
    rc = listen_on(s, &s->admin, cfg, cfg->admin_port, err, errlen);
  if (rc) {
    close_listener(&s->traffic);
    close_listener(&s->admin);
    return rc;
  }
  /* Loopback or not is a matter of the addresses listened on: a name such
   * as localhost is loopback when all it resolved to is. */
  bool loopback_only = true;
  for (size_t i = 0; i < s->naddr; i++)
    loopback_only &= config_is_loopback_sockaddr(&s->addr[i]);
  if (config_admin_exposed(cfg, loopback_only))
    log_warn(s->log,
             "the admin API listens on %s without --admin-token, and --admin-open lets anyone "
             "who can reach it post provisions, which run Lua code here",
             cfg->address);
  else if (cfg->admin_token == NULL && !loopback_only)
    log_info(s->log, "admin API: no token, so only loopback peers may call it (others get 403; "
                     "/healthz and /metrics answer everyone): see --admin-token, --admin-open");
  enum access_log_format format = cfg->access_log == CONFIG_ACCESS_LOG_JSON   ? ACCESS_LOG_JSON
                                  : cfg->access_log == CONFIG_ACCESS_LOG_TEXT ? ACCESS_LOG_TEXT
                                                                              : ACCESS_LOG_OFF;
  if (access_log_open(loop, format, o->access_fd, s->log, &s->access_log))
    log_error(s->log, "out of memory: no access log");
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
  uv_async_init(loop, &s->stop, on_stop);
  s->stop.data = s;
  int wrc = watcher_start(loop, s->provision, s->log, s->metrics, &s->watcher);
  if (wrc)
    log_warn(s->log, "cannot watch %s (%s): provisions reload only through the admin API",
             cfg->provisions, uv_strerror(wrc));
  return 0;
}

void server_free(server_t *s) {
  if (s == NULL)
    return;
  metrics_track_connections(s->metrics, NULL);
  access_log_free(s->access_log);
  /* A listener the final uv_walk closed kept its descriptor. */
  for (size_t i = 0; i < s->traffic.nsock; i++)
    if (s->traffic.sock[i].fd >= 0)
      close(s->traffic.sock[i].fd);
  for (size_t i = 0; i < s->admin.nsock; i++)
    if (s->admin.sock[i].fd >= 0)
      close(s->admin.sock[i].fd);
  if (s->spare_fd >= 0)
    close(s->spare_fd);
  http_response_free(&s->refusal);
  buf_free(&s->refusal_out);
  free(s);
}
