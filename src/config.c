/* config.c - options from argv and H1MOCK_* variables, with messages that
 * name the option (or variable) and the value that was refused. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config_int.h"
#include "log.h"
#include "text.h"

enum opt_kind {
  OPT_PORT,
  OPT_STRING,
  OPT_FLAG,
  OPT_SIZE,
  OPT_SECONDS,
  OPT_COUNT,
  OPT_ENTRIES,     /* 0..CONFIG_MAX_JOURNAL_SIZE */
  OPT_CONNECTIONS, /* CONFIG_MIN_CONNECTIONS..CONFIG_MAX_CONNECTIONS */
  OPT_ACCESS_LOG,  /* off|text|json */
  OPT_DEFAULT,     /* rest|help */
  OPT_CORS,        /* off|*|an origin */
  OPT_OUTBOUND,    /* any|loopback|off */
  OPT_TOKEN,       /* visible ASCII, what a Bearer header can carry */
  OPT_LUA_MEMORY,  /* a size, 0 or at least LUA_MEMORY_MIN */
};

/* A Lua state with h1mock's runtime loaded holds about 100k: below this a
 * limit would refuse every provision, the built-in default included. */
#define LUA_MEMORY_MIN ((size_t)1 << 20)

struct option_def {
  const char *name; /* without the leading "--" */
  enum opt_kind kind;
  size_t offset;
  const char *arg;
  const char *help;
};

#define OFF(field) offsetof(config_t, field)

static const struct option_def options[] = {
    {"port", OPT_PORT, OFF(port), "N", "traffic port (default 8000; 0 picks a free one)"},
    {"admin-port", OPT_PORT, OFF(admin_port), "N", "admin API port (default 8074)"},
    {"address", OPT_STRING, OFF(address), "ADDR",
     "address to listen on, IPv4 or IPv6 (default 0.0.0.0; '::' for all IPv6), or a host name "
     "such as localhost: resolved once at start, every address it has is listened on"},
    {"provisions", OPT_STRING, OFF(provisions), "DIR",
     "directory of provisions; 'initial' is loaded at start (default ./provisions)"},
    {"default", OPT_DEFAULT, OFF(default_mode), "rest|help",
     "what the built-in default serves when the provisions directory has no 'initial': "
     "'rest' (default) the REST API under /api, /health, a home page at / and a guide for "
     "other paths; 'help' the guide (404) for every path, as the Flask-based h1mock did"},
    {"cors", OPT_CORS, OFF(cors), "off|*|ORIGIN",
     "CORS for browser pages of other origins: off, * (any origin) or one origin such as "
     "http://localhost:3000; default: * for the built-in default, off for your provisions, "
     "which can set their own with app.cors{...}"},
    {"state-dir", OPT_STRING, OFF(state_dir), "DIR",
     "where posted provisions are stored when the provisions directory is read-only "
     "(default /tmp/h1mock-state); made 0700 when absent, refused when it is a link, another "
     "user's, or writable by group or others"},
    {"max-provision-bytes", OPT_SIZE, OFF(max_provision_bytes), "SIZE",
     "largest provision the admin API accepts (default 1M); larger gets 413"},
    {"data-dir", OPT_STRING, OFF(data_dir), "DIR",
     "keep the store's documents in DIR: a log made durable by group commits (an answer that "
     "wrote waits for its commit); default: memory only"},
    {"verbose", OPT_FLAG, OFF(verbose), NULL,
     "debug lines on stderr, and the access log (text) unless --access-log is given"},
    {"max-body", OPT_SIZE, OFF(max_body), "SIZE",
     "largest request body accepted, e.g. 512k, 8M (default 1M); larger gets 413"},
    {"header-timeout", OPT_SECONDS, OFF(header_timeout), "SECONDS",
     "time allowed to send a request head (default 30); then 408"},
    {"idle-timeout", OPT_SECONDS, OFF(idle_timeout), "SECONDS",
     "an idle keep-alive connection is closed after this (default 60)"},
    {"body-timeout", OPT_SECONDS, OFF(body_timeout), "SECONDS",
     "time allowed for a request body, counted from the end of its head (default 60); then "
     "408"},
    {"max-connections", OPT_CONNECTIONS, OFF(max_connections), "N",
     "traffic connections open at once; more get 503 (default: the open-files limit minus "
     "128: 64 for files, 64 for the admin port's own connections)"},
    {"max-instructions", OPT_COUNT, OFF(max_instructions), "N",
     "Lua instructions a request (or a load) may run before it is stopped, counting pattern "
     "matching and string building at one per step or byte (default 100000000)"},
    {"max-lua-memory", OPT_LUA_MEMORY, OFF(max_lua_memory), "SIZE",
     "memory each provision's Lua state may hold (default 256M, 0: no limit); an allocation "
     "past it fails: the request gets 500, a provision that needs more is refused"},
    {"journal-size", OPT_ENTRIES, OFF(journal_size), "N",
     "requests kept in the journal (GET /app/v1/requests; default 10000, 0 turns it off); "
     "a small request takes a few hundred bytes"},
    {"journal-body-bytes", OPT_SIZE, OFF(journal_body_bytes), "SIZE",
     "body bytes kept per journal entry (default 64k); longer bodies are marked truncated"},
    {"journal-max-bytes", OPT_SIZE, OFF(journal_max_bytes), "SIZE",
     "memory the journal may hold (default 256M, 0: no limit); past it the oldest entries "
     "are dropped (and counted) even before --journal-size is reached"},
    {"outbound", OPT_OUTBOUND, OFF(outbound), "any|loopback|off",
     "where provisions may connect with http.request (default any); loopback: 127.0.0.0/8 "
     "and ::1 only, checked on the resolved addresses; off: nowhere"},
    {"client-max-body", OPT_SIZE, OFF(client_max_body), "SIZE",
     "largest answer body a provision's outbound call accepts (default 8M); a larger one "
     "fails the call"},
    {"proxy", OPT_STRING, OFF(proxy), "URL",
     "forward a request whose path no rule of the provision has (what would be a 404) to URL "
     "(http://host:port[/prefix]), and send back its answer; hop-by-hop headers are dropped "
     "both ways and a request that comes back round gets 508"},
    {"record", OPT_STRING, OFF(record), "DIR",
     "with --proxy, write every proxied exchange into DIR/recorded.lua, a provision that "
     "answers them again without the upstream (DIR must not be the provisions directory; "
     "at most 1000 exchanges, 16M)"},
    {"access-log", OPT_ACCESS_LOG, OFF(access_log), "off|text|json",
     "one line per request on stdout (default: text with --verbose, else off)"},
    {"admin-token", OPT_TOKEN, OFF(admin_token), "TOKEN",
     "admin calls (all but /healthz and /metrics) need 'Authorization: Bearer TOKEN'; "
     "ps shows a command line: prefer --admin-token-file or H1MOCK_ADMIN_TOKEN"},
    {"admin-token-file", OPT_STRING, OFF(admin_token_file), "FILE",
     "the admin token is the first line of FILE (read at start); not with --admin-token"},
    {"admin-open", OPT_FLAG, OFF(admin_open), NULL,
     "without a token, answer admin calls from every host; by default only loopback peers "
     "get them (others: 403), while /healthz and /metrics answer everyone"},
};

#define NOPTIONS (sizeof options / sizeof options[0])

static void print_help(void) {
  printf("Usage: h1mock [OPTION]...\n"
         "       h1mock --check FILE...\n"
         "       h1mock --repair-store DIR\n"
         "\n"
         "An HTTP/1.1 mock server whose answers are written in Lua (Flask-style rules).\n"
         "It serves the provision 'initial' from the provisions directory, or a built-in\n"
         "default: a REST API under /api, GET /health, a home page at /, and a 404 page\n"
         "that explains how to write a provision for every other path (with --default\n"
         "help: that page for every path).\n"
         "\n"
         "Options (each also as an environment variable H1MOCK_<OPTION>, e.g. H1MOCK_PORT;\n"
         "the command line wins):\n");
  for (size_t i = 0; i < NOPTIONS; i++) {
    char left[64];
    snprintf(left, sizeof left, "--%s%s%s", options[i].name, options[i].arg ? " " : "",
             options[i].arg ? options[i].arg : "");
    printf("  %-26s %s\n", left, options[i].help);
  }
  printf("  %-26s %s\n", "--check FILE...",
         "load each provision offline and report 'file:line: message'; exit 1 if any fails");
  printf("  %-26s %s\n", "--repair-store DIR",
         "when a data directory refuses to start: copy its store.log and store.snapshot aside, "
         "keep every record that verifies, write them as a fresh store; exit 1 if it fails");
  printf("  %-26s %s\n", "--help", "show this help");
  printf("  %-26s %s\n", "--version", "show the version");
  printf("\n"
         "A provision is a Lua file defining registerRules():\n"
         "  function registerRules()\n"
         "    app.add_url_rule(\"/hello/<name>\", \"hello\", hello, {\"GET\"})\n"
         "  end\n"
         "  function hello(req, name) return {greeting = \"hello \" .. name} end\n"
         "\n"
         "Logs go to stderr with a level; the access log goes to stdout. The admin port\n"
         "also serves the request journal (/app/v1/requests) and /metrics (Prometheus).\n"
         "SIGTERM or SIGINT stops after in-flight requests finish.\n");
}

/* Parses "123", "64k", "8M", "1G" (powers of 1024). */
static int parse_size(const char *s, size_t *out) {
  char *end;
  errno = 0;
  if (*s < '0' || *s > '9')
    return -EINVAL;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno)
    return -EINVAL;
  unsigned long long mult = 1;
  switch (*end) {
  case '\0': break;
  case 'k':
  case 'K':
    mult = 1ULL << 10;
    end++;
    break;
  case 'm':
  case 'M':
    mult = 1ULL << 20;
    end++;
    break;
  case 'g':
  case 'G':
    mult = 1ULL << 30;
    end++;
    break;
  default: return -EINVAL;
  }
  if ((*end == 'b' || *end == 'B') && mult > 1)
    end++;
  if (*end != '\0' || v > SIZE_MAX / mult)
    return -EINVAL;
  *out = (size_t)(v * mult);
  return 0;
}

static int parse_bool(const char *s, bool *out) {
  static const char *const yes[] = {"1", "true", "yes", "on"};
  static const char *const no[] = {"0", "false", "no", "off", ""};
  for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
    if (strcasecmp(s, yes[i]) == 0)
      return *out = true, 0;
  for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
    if (strcasecmp(s, no[i]) == 0)
      return *out = false, 0;
  return -EINVAL;
}

/* Stores the index of `value` in the NULL-terminated `names` (any letter
 * case) into *field; else says that it is not `what`, listing the names. */
static int set_choice(int *field, const char *const *names, const char *value, const char *source,
                      const char *what, char *err, size_t errlen) {
  for (int i = 0; names[i]; i++)
    if (strcasecmp(value, names[i]) == 0)
      return *field = i, 0;
  char list[128] = "";
  size_t len = 0;
  for (int i = 0; names[i] && len < sizeof list; i++)
    len += (size_t)snprintf(list + len, sizeof list - len, "%s%s",
                            i == 0         ? ""
                            : names[i + 1] ? ", "
                                           : " or ",
                            names[i]);
  snprintf(err, errlen, "h1mock: %s: '%s' is not %s (%s)", source, value, what, list);
  return -EINVAL;
}

/* Stores `value` into the option; on a bad value writes the reason. */
static int set_option(config_t *c, const struct option_def *o, const char *value,
                      const char *source, char *err, size_t errlen) {
  char *field = (char *)c + o->offset;
  char *end;
  switch (o->kind) {
  case OPT_PORT: {
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno || end == value || *end || v < 0 || v > 65535) {
      snprintf(err, errlen, "h1mock: %s: '%s' is not a port (0-65535)", source, value);
      return -EINVAL;
    }
    *(int *)field = (int)v;
    return 0;
  }
  case OPT_STRING:
    if (*value == '\0') {
      snprintf(err, errlen, "h1mock: %s: the value is empty", source);
      return -EINVAL;
    }
    *(const char **)field = value;
    return 0;
  case OPT_FLAG:
    if (parse_bool(value, (bool *)field)) {
      snprintf(err, errlen, "h1mock: %s: '%s' is not a boolean (1/0, true/false, yes/no)", source,
               value);
      return -EINVAL;
    }
    return 0;
  case OPT_SIZE:
    if (parse_size(value, (size_t *)field)) {
      snprintf(err, errlen, "h1mock: %s: '%s' is not a size (bytes, or with k/M/G, e.g. 512k)",
               source, value);
      return -EINVAL;
    }
    return 0;
  case OPT_LUA_MEMORY: {
    size_t v;
    if (parse_size(value, &v) || (v != 0 && v < LUA_MEMORY_MIN)) {
      snprintf(err, errlen, "h1mock: %s: '%s' is not 0 or a size of at least 1M (e.g. 64M)",
               source, value);
      return -EINVAL;
    }
    *(size_t *)field = v;
    return 0;
  }
  case OPT_SECONDS: {
    errno = 0;
    double v = strtod(value, &end);
    if (errno || end == value || *end || !(v > 0) || v > 86400 * 365) {
      snprintf(err, errlen, "h1mock: %s: '%s' is not a number of seconds (> 0)", source, value);
      return -EINVAL;
    }
    *(double *)field = v;
    return 0;
  }
  case OPT_COUNT: {
    errno = 0;
    long long v = strtoll(value, &end, 10);
    if (errno || end == value || *end || v < 1000) {
      snprintf(err, errlen, "h1mock: %s: '%s' is not a count (>= 1000)", source, value);
      return -EINVAL;
    }
    *(int64_t *)field = v;
    return 0;
  }
  case OPT_ENTRIES: {
    errno = 0;
    unsigned long long v = strtoull(value, &end, 10);
    if (*value < '0' || *value > '9' || errno || *end || v > CONFIG_MAX_JOURNAL_SIZE) {
      snprintf(err, errlen, "h1mock: %s: '%s' is not a number of entries (0 to %d)", source, value,
               CONFIG_MAX_JOURNAL_SIZE);
      return -EINVAL;
    }
    *(size_t *)field = (size_t)v;
    return 0;
  }
  case OPT_CONNECTIONS: {
    errno = 0;
    unsigned long long v = strtoull(value, &end, 10);
    if (*value < '0' || *value > '9' || errno || *end || v < CONFIG_MIN_CONNECTIONS ||
        v > CONFIG_MAX_CONNECTIONS) {
      snprintf(err, errlen, "h1mock: %s: '%s' is not a number of connections (%d to %d)", source,
               value, CONFIG_MIN_CONNECTIONS, CONFIG_MAX_CONNECTIONS);
      return -EINVAL;
    }
    *(size_t *)field = (size_t)v;
    return 0;
  }
  case OPT_ACCESS_LOG: {
    static const char *const names[] = {"off", "text", "json", NULL};
    return set_choice((int *)field, names, value, source, "an access log format", err, errlen);
  }
  case OPT_OUTBOUND: {
    static const char *const names[] = {"any", "loopback", "off", NULL};
    return set_choice((int *)field, names, value, source, "an outbound policy", err, errlen);
  }
  case OPT_DEFAULT: {
    static const char *const names[] = {"rest", "help"};
    for (int i = 0; i < 2; i++)
      if (strcasecmp(value, names[i]) == 0)
        return *(int *)field = i, 0;
    snprintf(err, errlen, "h1mock: %s: '%s' is not what the default serves (rest or help)", source,
             value);
    return -EINVAL;
  }
  case OPT_CORS:
    if (strcasecmp(value, "off") != 0 && strcmp(value, "*") != 0 &&
        !text_is_origin(value, strlen(value))) {
      snprintf(err, errlen,
               "h1mock: %s: '%s' is not off, * or an origin such as http://localhost:3000 "
               "(scheme://host[:port], without a path)",
               source, value);
      return -EINVAL;
    }
    *(const char **)field = value;
    return 0;
  case OPT_TOKEN: {
    const char *why = config_token_problem(value, strlen(value));
    if (why) {
      snprintf(err, errlen, "h1mock: %s: %s", source, why);
      return -EINVAL;
    }
    *(const char **)field = value;
    return 0;
  }
  }
  return -EINVAL;
}

/* The option `arg` names ("--port", "--port=8000"), or NULL. */
static const struct option_def *find_option(const char *arg) {
  if (strncmp(arg, "--", 2) != 0)
    return NULL;
  const char *eq = strchr(arg, '=');
  size_t nlen = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
  for (size_t k = 0; k < NOPTIONS; k++)
    if (strlen(options[k].name) == nlen && strncmp(options[k].name, arg + 2, nlen) == 0)
      return &options[k];
  return NULL;
}

static void env_name(const struct option_def *o, char *out, size_t n) {
  size_t j = (size_t)snprintf(out, n, "H1MOCK_");
  for (const char *p = o->name; *p && j + 1 < n; p++)
    out[j++] = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
  out[j] = '\0';
}

enum config_result config_parse(config_t *c, int argc, char **argv, char *err, size_t errlen) {
  *c = (config_t){
      .port = 8000,
      .admin_port = 8074,
      .address = "0.0.0.0",
      .provisions = "./provisions",
      .state_dir = "/tmp/h1mock-state",
      .max_provision_bytes = 1 << 20,
      .max_body = 1 << 20,
      .header_timeout = 30,
      .idle_timeout = 60,
      .body_timeout = 60,
      .max_instructions = 100000000,
      .max_lua_memory = (size_t)256 << 20,
      .journal_size = 10000,
      .journal_body_bytes = 64 * 1024,
      .journal_max_bytes = (size_t)256 << 20,
      .access_log = -1,
      .outbound = CONFIG_OUTBOUND_ANY,
      .client_max_body = (size_t)8 << 20,
  };

  /* The command line wins: a variable whose option is given there is not
   * even parsed, so a stale H1MOCK_PORT=abc cannot stop `--port 8080`. The
   * two ways of giving the admin token count as one option. */
  bool given[NOPTIONS] = {false};
  for (int i = 1; i < argc && strcmp(argv[i], "--check") != 0; i++) {
    const struct option_def *o = find_option(argv[i]);
    if (o == NULL)
      continue;
    given[o - options] = true;
    if (o->offset == OFF(admin_token) || o->offset == OFF(admin_token_file))
      for (size_t k = 0; k < NOPTIONS; k++)
        given[k] |=
            options[k].offset == OFF(admin_token) || options[k].offset == OFF(admin_token_file);
    if (o->kind != OPT_FLAG && strchr(argv[i], '=') == NULL)
      i++; /* its value, which may start with "--" */
  }
  for (size_t i = 0; i < NOPTIONS; i++) {
    char name[64];
    env_name(&options[i], name, sizeof name);
    const char *v = given[i] ? NULL : getenv(name);
    if (v != NULL && set_option(c, &options[i], v, name, err, errlen))
      return CONFIG_USAGE;
  }
  if (c->admin_token && c->admin_token_file) {
    snprintf(err, errlen,
             "h1mock: H1MOCK_ADMIN_TOKEN and H1MOCK_ADMIN_TOKEN_FILE are both set: give the "
             "admin token one way");
    return CONFIG_USAGE;
  }
  /* A token given on the command line, either way, replaces one from the
   * environment, given either way. */
  bool argv_token = false, argv_token_file = false;

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      print_help();
      return CONFIG_EXIT;
    }
    if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
      printf("h1mock %s\n", H1MOCK_VERSION);
      return CONFIG_EXIT;
    }
    if (strcmp(a, "--check") == 0) {
      c->check = true;
      c->first_file = i + 1;
      if (c->first_file >= argc) {
        snprintf(err, errlen, "h1mock: --check needs at least one FILE");
        return CONFIG_USAGE;
      }
      c->access_log = CONFIG_ACCESS_LOG_OFF;
      return CONFIG_RUN;
    }
    if (strcmp(a, "--repair-store") == 0) {
      if (i + 2 != argc) {
        snprintf(err, errlen, "h1mock: --repair-store takes one DIR, and nothing after it");
        return CONFIG_USAGE;
      }
      c->repair_store = argv[i + 1];
      return CONFIG_RUN;
    }
    if (strncmp(a, "--", 2) != 0) {
      snprintf(err, errlen, "h1mock: unexpected argument '%s' (try --help)", a);
      return CONFIG_USAGE;
    }
    const char *eq = strchr(a, '=');
    size_t nlen = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
    const struct option_def *o = find_option(a);
    if (o == NULL) {
      snprintf(err, errlen, "h1mock: unknown option '%.*s' (try --help)", (int)(nlen + 2), a);
      return CONFIG_USAGE;
    }
    char source[80];
    snprintf(source, sizeof source, "--%s", o->name);
    const char *value;
    if (eq)
      value = eq + 1;
    else if (o->kind == OPT_FLAG)
      value = "1";
    else if (i + 1 < argc)
      value = argv[++i];
    else {
      snprintf(err, errlen, "h1mock: %s needs a value (%s)", source, o->arg);
      return CONFIG_USAGE;
    }
    if (set_option(c, o, value, source, err, errlen))
      return CONFIG_USAGE;
    argv_token |= o->offset == OFF(admin_token);
    argv_token_file |= o->offset == OFF(admin_token_file);
  }
  if (argv_token && argv_token_file) {
    snprintf(err, errlen,
             "h1mock: --admin-token and --admin-token-file are both given: give the admin token "
             "one way");
    return CONFIG_USAGE;
  }
  if (argv_token)
    c->admin_token_file = NULL;
  if (argv_token_file)
    c->admin_token = NULL;
  if (c->access_log < 0)
    c->access_log = c->verbose ? CONFIG_ACCESS_LOG_TEXT : CONFIG_ACCESS_LOG_OFF;
  return CONFIG_RUN;
}

size_t config_default_connections(uint64_t nofile) {
  uint64_t kept = CONFIG_FILES_RESERVE + CONFIG_ADMIN_CONNECTIONS;
  uint64_t n = nofile > kept + 16 ? nofile - kept : 16;
  return (size_t)(n < CONFIG_MAX_CONNECTIONS ? n : CONFIG_MAX_CONNECTIONS);
}
