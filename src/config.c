/* config.c - options from argv and H1MOCK_* variables, with messages that
 * name the option (or variable) and the value that was refused. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>

#include "access_log.h"
#include "journal.h"

enum opt_kind {
  OPT_PORT,
  OPT_STRING,
  OPT_FLAG,
  OPT_SIZE,
  OPT_SECONDS,
  OPT_COUNT,
  OPT_ENTRIES,    /* 0..JOURNAL_MAX_SIZE */
  OPT_ACCESS_LOG, /* off|text|json */
  OPT_TOKEN,      /* visible ASCII, what a Bearer header can carry */
};

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
     "address to listen on, IPv4 or IPv6 (default 0.0.0.0; '::' for all IPv6)"},
    {"provisions", OPT_STRING, OFF(provisions), "DIR",
     "directory of provisions; 'initial' is loaded at start (default ./provisions)"},
    {"state-dir", OPT_STRING, OFF(state_dir), "DIR",
     "where posted provisions are stored when the provisions directory is read-only "
     "(default /tmp/h1mock-state)"},
    {"max-provision-bytes", OPT_SIZE, OFF(max_provision_bytes), "SIZE",
     "largest provision the admin API accepts (default 1M); larger gets 413"},
    {"data-dir", OPT_STRING, OFF(data_dir), "DIR",
     "keep the store's documents in DIR (a log fsync'd per write); default: memory only"},
    {"verbose", OPT_FLAG, OFF(verbose), NULL,
     "debug lines on stderr, and the access log (text) unless --access-log is given"},
    {"max-body", OPT_SIZE, OFF(max_body), "SIZE",
     "largest request body accepted, e.g. 512k, 8M (default 1M); larger gets 413"},
    {"header-timeout", OPT_SECONDS, OFF(header_timeout), "SECONDS",
     "time allowed to send a request head (default 30); then 408"},
    {"idle-timeout", OPT_SECONDS, OFF(idle_timeout), "SECONDS",
     "an idle keep-alive connection is closed after this (default 60)"},
    {"max-instructions", OPT_COUNT, OFF(max_instructions), "N",
     "Lua instructions a request (or a load) may run before it is stopped, counting pattern "
     "matching and string building at one per step or byte (default 100000000)"},
    {"journal-size", OPT_ENTRIES, OFF(journal_size), "N",
     "requests kept in the journal (GET /app/v1/requests; default 10000, 0 turns it off); "
     "a small request takes a few hundred bytes"},
    {"journal-body-bytes", OPT_SIZE, OFF(journal_body_bytes), "SIZE",
     "body bytes kept per journal entry (default 64k); longer bodies are marked truncated"},
    {"journal-max-bytes", OPT_SIZE, OFF(journal_max_bytes), "SIZE",
     "memory the journal may hold (default 256M, 0: no limit); past it the oldest entries "
     "are dropped (and counted) even before --journal-size is reached"},
    {"access-log", OPT_ACCESS_LOG, OFF(access_log), "off|text|json",
     "one line per request on stdout (default: text with --verbose, else off)"},
    {"admin-token", OPT_TOKEN, OFF(admin_token), "TOKEN",
     "admin calls (all but /healthz and /metrics) need 'Authorization: Bearer TOKEN'"},
};

#define NOPTIONS (sizeof options / sizeof options[0])

static void print_help(void) {
  printf("Usage: h1mock [OPTION]...\n"
         "       h1mock --check FILE...\n"
         "\n"
         "An HTTP/1.1 mock server whose answers are written in Lua (Flask-style rules).\n"
         "It serves the provision 'initial' from the provisions directory, or a built-in\n"
         "default: a REST API under /api, GET /health, a home page at /, and a 404 page\n"
         "that explains how to write a provision for every other path.\n"
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
    if (*value < '0' || *value > '9' || errno || *end || v > JOURNAL_MAX_SIZE) {
      snprintf(err, errlen, "h1mock: %s: '%s' is not a number of entries (0 to %d)", source, value,
               JOURNAL_MAX_SIZE);
      return -EINVAL;
    }
    *(size_t *)field = (size_t)v;
    return 0;
  }
  case OPT_ACCESS_LOG: {
    static const char *const names[] = {"off", "text", "json"};
    for (int i = 0; i < 3; i++)
      if (strcasecmp(value, names[i]) == 0)
        return *(int *)field = i, 0;
    snprintf(err, errlen, "h1mock: %s: '%s' is not an access log format (off, text or json)",
             source, value);
    return -EINVAL;
  }
  case OPT_TOKEN:
    for (const char *p = value; *p; p++)
      if (*p < 0x21 || *p > 0x7e) {
        snprintf(err, errlen,
                 "h1mock: %s: the token must be printable ASCII without spaces (a header "
                 "value carries it)",
                 source);
        return -EINVAL;
      }
    if (*value == '\0') {
      snprintf(err, errlen, "h1mock: %s: the value is empty", source);
      return -EINVAL;
    }
    *(const char **)field = value;
    return 0;
  }
  return -EINVAL;
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
      .max_instructions = 100000000,
      .journal_size = 10000,
      .journal_body_bytes = 64 * 1024,
      .journal_max_bytes = (size_t)256 << 20,
      .access_log = -1,
  };

  for (size_t i = 0; i < NOPTIONS; i++) {
    char name[64];
    env_name(&options[i], name, sizeof name);
    const char *v = getenv(name);
    if (v != NULL && set_option(c, &options[i], v, name, err, errlen))
      return CONFIG_USAGE;
  }

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
      c->access_log = ACCESS_LOG_OFF;
      return CONFIG_RUN;
    }
    if (strncmp(a, "--", 2) != 0) {
      snprintf(err, errlen, "h1mock: unexpected argument '%s' (try --help)", a);
      return CONFIG_USAGE;
    }
    const char *eq = strchr(a, '=');
    size_t nlen = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
    const struct option_def *o = NULL;
    for (size_t k = 0; k < NOPTIONS; k++)
      if (strlen(options[k].name) == nlen && strncmp(options[k].name, a + 2, nlen) == 0)
        o = &options[k];
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
  }
  if (c->access_log < 0)
    c->access_log = c->verbose ? ACCESS_LOG_TEXT : ACCESS_LOG_OFF;
  return CONFIG_RUN;
}

bool config_is_loopback(const char *address) {
  unsigned char a[16];
  if (inet_pton(AF_INET, address, a) == 1)
    return a[0] == 127;
  if (inet_pton(AF_INET6, address, a) != 1)
    return false;
  static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  static const unsigned char one[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return memcmp(a, one, 16) == 0 || (memcmp(a, v4mapped, 12) == 0 && a[12] == 127);
}

bool config_admin_exposed(const config_t *c) {
  return c->admin_token == NULL && !config_is_loopback(c->address);
}
