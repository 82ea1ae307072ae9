/* config.h - the command line and its H1MOCK_* environment twins. */
#ifndef H1MOCK_CONFIG_H
#define H1MOCK_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>

struct log;

/* Longest admin token accepted, from any source (a request head holds it). */
#define CONFIG_TOKEN_MAX 4096

typedef struct config {
  int port;
  int admin_port;
  const char *address;
  const char *provisions;
  const char *state_dir;      /* posted provisions go here when `provisions` is read-only */
  size_t max_provision_bytes; /* largest provision the admin API takes */
  const char *data_dir;       /* NULL: the store lives in memory only */
  bool verbose;
  size_t max_body;
  double header_timeout;        /* seconds to receive a whole request head */
  double idle_timeout;          /* seconds a keep-alive connection may sit idle */
  double body_timeout;          /* seconds from the end of a head to the end of its body */
  size_t max_connections;       /* traffic connections; 0: from the open-files limit */
  int64_t max_instructions;     /* Lua VM instructions per request or load */
  size_t max_lua_memory;        /* bytes each provision's Lua state may hold; 0: no limit */
  size_t journal_size;          /* requests the journal keeps; 0: no journal */
  size_t journal_body_bytes;    /* body bytes kept per journal entry */
  size_t journal_max_bytes;     /* memory the journal may hold; 0: no limit */
  int access_log;               /* enum config_access_log; -1 until resolved */
  int default_mode;             /* enum config_default: what serves without an initial */
  const char *cors;             /* "off", "*" or an origin; NULL: not given (see --help) */
  const char *admin_token;      /* NULL: no token (see admin_open) */
  const char *admin_token_file; /* read by config_take_secrets */
  bool admin_open;              /* without a token, answer admin calls from every peer */
  int outbound;                 /* enum config_outbound: where provisions may connect */
  size_t client_max_body;       /* bytes of an answer to a provision's outbound call */
  const char *proxy;            /* requests no rule's path matches go there; NULL: 404 */
  const char *record;           /* --record: where the proxied exchanges are written */
  bool check;                   /* --check: validate the files in argv[first_file..] */
  int first_file;
  const char *repair_store;             /* --repair-store DIR: repair that data directory, exit */
  char token_buf[CONFIG_TOKEN_MAX + 1]; /* the token, once config_take_secrets copied it */
} config_t;

/* --access-log's formats. */
enum config_access_log { CONFIG_ACCESS_LOG_OFF, CONFIG_ACCESS_LOG_TEXT, CONFIG_ACCESS_LOG_JSON };

/* --outbound's policies (where http.request may connect). */
enum config_outbound { CONFIG_OUTBOUND_ANY, CONFIG_OUTBOUND_LOOPBACK, CONFIG_OUTBOUND_OFF };

/* The most entries --journal-size takes. */
#define CONFIG_MAX_JOURNAL_SIZE 10000000

/* Descriptors the default --max-connections leaves for what is not a
 * connection: stdio, the loop's own, the listeners, the watcher, the
 * store's log, provision files read by the thread pool. */
#define CONFIG_FILES_RESERVE 64
/* Connections the admin port takes, outside --max-connections, so that a
 * flood on the traffic port never locks operators out. */
#define CONFIG_ADMIN_CONNECTIONS 64
/* Bounds of --max-connections. */
#define CONFIG_MIN_CONNECTIONS 1
#define CONFIG_MAX_CONNECTIONS 10000000

/* --default: what the built-in default serves when there is no initial
 * provision. */
enum config_default {
  CONFIG_DEFAULT_REST, /* the REST API, /health, a home page, the guide for other paths */
  CONFIG_DEFAULT_HELP, /* the guide for every path (the Flask-based h1mock's) */
};

enum config_result {
  CONFIG_RUN,   /* start the server (or run --check, --repair-store) */
  CONFIG_EXIT,  /* --help or --version was printed: exit 0 */
  CONFIG_USAGE, /* err holds "h1mock: ..." : exit 2 */
};

/* Fills `c` from defaults, then the environment, then argv (the command
 * line wins). Prints --help / --version itself. */
enum config_result config_parse(config_t *c, int argc, char **argv, char *err, size_t errlen);

/* Makes the admin token the process's own, once, after config_parse and
 * before any thread starts or any provision loads: reads the token file
 * (unless c->check), copies the token into c->token_buf (c->admin_token then
 * points there), and removes H1MOCK_ADMIN_TOKEN from the environment, its
 * bytes zeroed too, so that /proc/<pid>/environ and code the process runs
 * later cannot read it. A token file others may read is a warning in `lg`.
 * Returns 0, or -errno with "h1mock: ..." (naming the file) in err. */
int config_take_secrets(config_t *c, const struct log *lg, char *err, size_t errlen);

/* The token in the first line of a token file's `text` (a trailing CR
 * dropped), copied into out[CONFIG_TOKEN_MAX + 1]. Returns 0, or -EINVAL
 * with *why saying what is wrong with it (never quoting it). */
int config_token_from_text(const char *text, size_t len, char *out, const char **why);

/* The default --max-connections for an open-files limit of `nofile`: what
 * is left after CONFIG_FILES_RESERVE and the admin port's connections, at
 * least 16 (an fd limit that low is met with 503s, not a refusal to start). */
size_t config_default_connections(uint64_t nofile);

/* Most addresses one --address may stand for; a name with more listens on
 * the first ones. */
#define CONFIG_MAX_ADDRESSES 8

/* The socket addresses `address` stands for, each with `port`: an IPv4 or
 * IPv6 literal is itself; a host name is resolved now, once (getaddrinfo),
 * into every address it has, in the resolver's order, duplicates dropped,
 * at most `max`. Returns how many were written (at least 1), or -EINVAL
 * with "h1mock: --address: ..." in err when the name does not resolve. */
int config_resolve_address(const char *address, int port, struct sockaddr_storage *out, size_t max,
                           char *err, size_t errlen);

/* True when `address` (an IP literal) is a loopback address: 127.0.0.0/8,
 * ::1 or ::ffff:127.x.y.z. */
bool config_is_loopback(const char *address);

/* True when `ss` (AF_INET or AF_INET6) is a loopback address. */
bool config_is_loopback_sockaddr(const struct sockaddr_storage *ss);

/* True when the admin API answers other hosts without a token (no token,
 * --admin-open, and `loopback_only` false: some address it listens on,
 * as resolved, is not a loopback one): worth a warning, since it runs
 * posted Lua code. Without --admin-open only loopback peers get answers. */
bool config_admin_exposed(const config_t *c, bool loopback_only);

#endif
