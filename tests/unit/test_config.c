/* test_config.c - the observability options (journal, access log, admin
 * token) as config_parse reads them, and when the admin port is worth a
 * warning. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <netinet/in.h>

#include "../../src/config.h"
#include "unit.h"

static char err[512];

static enum config_result parse(config_t *c, const char *a1, const char *a2, const char *a3) {
  char *argv[] = {"h1mock", (char *)a1, (char *)a2, (char *)a3, NULL};
  int argc = 1;
  while (argc < 4 && argv[argc])
    argc++;
  err[0] = '\0';
  return config_parse(c, argc, argv, err, sizeof err);
}

TEST(observability_defaults) {
  config_t c;
  ASSERT_EQ(parse(&c, NULL, NULL, NULL), CONFIG_RUN);
  ASSERT_EQ(c.journal_size, 10000);
  ASSERT_EQ(c.journal_body_bytes, 65536);
  ASSERT_EQ(c.access_log, CONFIG_ACCESS_LOG_OFF);
  ASSERT(c.admin_token == NULL);
  ASSERT_EQ(parse(&c, "--verbose", NULL, NULL), CONFIG_RUN);
  ASSERT_EQ(c.access_log, CONFIG_ACCESS_LOG_TEXT);
  ASSERT_EQ(parse(&c, "--verbose", "--access-log", "json"), CONFIG_RUN);
  ASSERT_EQ(c.access_log, CONFIG_ACCESS_LOG_JSON);
  ASSERT_EQ(parse(&c, "--access-log=off", "--verbose", NULL), CONFIG_RUN);
  ASSERT_EQ(c.access_log, CONFIG_ACCESS_LOG_OFF);
}

TEST(journal_options) {
  config_t c;
  ASSERT_EQ(parse(&c, "--journal-size", "0", NULL), CONFIG_RUN);
  ASSERT_EQ(c.journal_size, 0);
  ASSERT_EQ(parse(&c, "--journal-size=10000000", "--journal-body-bytes=1M", NULL), CONFIG_RUN);
  ASSERT_EQ(c.journal_size, 10000000);
  ASSERT_EQ(c.journal_body_bytes, 1 << 20);
  ASSERT_EQ(parse(&c, "--journal-size", "10000001", NULL), CONFIG_USAGE);
  ASSERT_STR_EQ(err,
                "h1mock: --journal-size: '10000001' is not a number of entries (0 to 10000000)");
  ASSERT_EQ(parse(&c, "--journal-size", "-1", NULL), CONFIG_USAGE);
  ASSERT_EQ(parse(&c, "--journal-size", "", NULL), CONFIG_USAGE);
  ASSERT_EQ(parse(&c, "--journal-size", "1e3", NULL), CONFIG_USAGE);
  ASSERT_EQ(parse(&c, "--journal-body-bytes", "x", NULL), CONFIG_USAGE);
  ASSERT_CONTAINS(err, "--journal-body-bytes: 'x' is not a size");
}

TEST(access_log_and_token_options) {
  config_t c;
  ASSERT_EQ(parse(&c, "--access-log", "JSON", NULL), CONFIG_RUN);
  ASSERT_EQ(c.access_log, CONFIG_ACCESS_LOG_JSON);
  ASSERT_EQ(parse(&c, "--access-log", "csv", NULL), CONFIG_USAGE);
  ASSERT_STR_EQ(err,
                "h1mock: --access-log: 'csv' is not an access log format (off, text or json)");
  ASSERT_EQ(parse(&c, "--admin-token", "abc-DEF_123.~+/=", NULL), CONFIG_RUN);
  ASSERT_STR_EQ(c.admin_token, "abc-DEF_123.~+/=");
  ASSERT_EQ(parse(&c, "--admin-token", "a b", NULL), CONFIG_USAGE);
  ASSERT_CONTAINS(err, "--admin-token: the token must be printable ASCII without spaces");
  ASSERT(strstr(err, "a b") == NULL);
  ASSERT_EQ(parse(&c, "--admin-token", "", NULL), CONFIG_USAGE);
  ASSERT_STR_EQ(err, "h1mock: --admin-token: the value is empty");
  ASSERT_EQ(parse(&c, "--admin-token", "\x7f", NULL), CONFIG_USAGE);
}

TEST(outbound_options) {
  config_t c;
  ASSERT_EQ(parse(&c, NULL, NULL, NULL), CONFIG_RUN);
  ASSERT_EQ(c.outbound, CONFIG_OUTBOUND_ANY);
  ASSERT_EQ(c.client_max_body, 8 << 20);
  ASSERT_EQ(parse(&c, "--outbound", "Loopback", NULL), CONFIG_RUN);
  ASSERT_EQ(c.outbound, CONFIG_OUTBOUND_LOOPBACK);
  ASSERT_EQ(parse(&c, "--outbound=off", "--client-max-body=64k", NULL), CONFIG_RUN);
  ASSERT_EQ(c.outbound, CONFIG_OUTBOUND_OFF);
  ASSERT_EQ(c.client_max_body, 64 << 10);
  ASSERT_EQ(parse(&c, "--outbound", "lan", NULL), CONFIG_USAGE);
  ASSERT_STR_EQ(err, "h1mock: --outbound: 'lan' is not an outbound policy (any, loopback or off)");
  ASSERT_EQ(parse(&c, "--client-max-body", "8X", NULL), CONFIG_USAGE);
  ASSERT_CONTAINS(err, "--client-max-body: '8X' is not a size");
  setenv("H1MOCK_OUTBOUND", "loopback", 1);
  setenv("H1MOCK_CLIENT_MAX_BODY", "1M", 1);
  ASSERT_EQ(parse(&c, NULL, NULL, NULL), CONFIG_RUN);
  ASSERT_EQ(c.outbound, CONFIG_OUTBOUND_LOOPBACK);
  ASSERT_EQ(c.client_max_body, 1 << 20);
  ASSERT_EQ(parse(&c, "--outbound", "any", NULL), CONFIG_RUN);
  ASSERT_EQ(c.outbound, CONFIG_OUTBOUND_ANY);
  setenv("H1MOCK_OUTBOUND", "everywhere", 1);
  ASSERT_EQ(parse(&c, NULL, NULL, NULL), CONFIG_USAGE);
  ASSERT_CONTAINS(err, "H1MOCK_OUTBOUND: 'everywhere' is not an outbound policy");
  unsetenv("H1MOCK_OUTBOUND");
  unsetenv("H1MOCK_CLIENT_MAX_BODY");
}

TEST(lua_memory_limit) {
  config_t c;
  ASSERT_EQ(parse(&c, NULL, NULL, NULL), CONFIG_RUN);
  ASSERT_EQ(c.max_lua_memory, 256 << 20);
  ASSERT_EQ(parse(&c, "--max-lua-memory", "0", NULL), CONFIG_RUN);
  ASSERT_EQ(c.max_lua_memory, 0);
  ASSERT_EQ(parse(&c, "--max-lua-memory=1M", NULL, NULL), CONFIG_RUN);
  ASSERT_EQ(c.max_lua_memory, 1 << 20);
  ASSERT_EQ(parse(&c, "--max-lua-memory", "2G", NULL), CONFIG_RUN);
  ASSERT_EQ(c.max_lua_memory, (size_t)2 << 30);
  ASSERT_EQ(parse(&c, "--max-lua-memory", "1023k", NULL), CONFIG_USAGE);
  ASSERT_STR_EQ(err,
                "h1mock: --max-lua-memory: '1023k' is not 0 or a size of at least 1M (e.g. 64M)");
  ASSERT_EQ(parse(&c, "--max-lua-memory", "lots", NULL), CONFIG_USAGE);
  ASSERT_EQ(parse(&c, "--max-lua-memory", "", NULL), CONFIG_USAGE);
  setenv("H1MOCK_MAX_LUA_MEMORY", "64M", 1);
  ASSERT_EQ(parse(&c, NULL, NULL, NULL), CONFIG_RUN);
  ASSERT_EQ(c.max_lua_memory, 64 << 20);
  ASSERT_EQ(parse(&c, "--max-lua-memory", "8M", NULL), CONFIG_RUN);
  ASSERT_EQ(c.max_lua_memory, 8 << 20);
  setenv("H1MOCK_MAX_LUA_MEMORY", "1", 1);
  ASSERT_EQ(parse(&c, NULL, NULL, NULL), CONFIG_USAGE);
  ASSERT_CONTAINS(err, "H1MOCK_MAX_LUA_MEMORY: '1' is not 0 or a size of at least 1M");
  unsetenv("H1MOCK_MAX_LUA_MEMORY");
}

TEST(environment_feeds_the_new_options) {
  setenv("H1MOCK_JOURNAL_SIZE", "5", 1);
  setenv("H1MOCK_ADMIN_TOKEN", "from-env", 1);
  setenv("H1MOCK_ACCESS_LOG", "json", 1);
  config_t c;
  ASSERT_EQ(parse(&c, "--admin-token", "from-flag", NULL), CONFIG_RUN);
  ASSERT_EQ(c.journal_size, 5);
  ASSERT_STR_EQ(c.admin_token, "from-flag");
  ASSERT_EQ(c.access_log, CONFIG_ACCESS_LOG_JSON);
  setenv("H1MOCK_JOURNAL_SIZE", "lots", 1);
  ASSERT_EQ(parse(&c, NULL, NULL, NULL), CONFIG_USAGE);
  ASSERT_CONTAINS(err, "H1MOCK_JOURNAL_SIZE: 'lots'");
}

TEST(a_variable_overridden_on_the_command_line_is_not_parsed) {
  setenv("H1MOCK_PORT", "abc", 1);
  setenv("H1MOCK_ADMIN_TOKEN", "has a space", 1);
  setenv("H1MOCK_PROVISIONS", "/from/env", 1);
  config_t c;
  ASSERT_EQ(parse(&c, "--port", "81", NULL), CONFIG_USAGE);
  ASSERT_STR_EQ(err, "h1mock: H1MOCK_ADMIN_TOKEN: the token must be printable ASCII without "
                     "spaces (a header value carries it)");
  unsetenv("H1MOCK_ADMIN_TOKEN");
  ASSERT_EQ(parse(&c, "--port", "81", NULL), CONFIG_RUN);
  ASSERT_EQ(c.port, 81);
  ASSERT_STR_EQ(c.provisions, "/from/env");
  ASSERT_EQ(parse(&c, "--port=82", NULL, NULL), CONFIG_RUN);
  ASSERT_EQ(c.port, 82);
  /* a value that looks like an option is a value, not --port itself */
  ASSERT_EQ(parse(&c, "--provisions", "--port", NULL), CONFIG_USAGE);
  ASSERT_STR_EQ(err, "h1mock: H1MOCK_PORT: 'abc' is not a port (0-65535)");
  /* either way of giving the token overrides both variables */
  setenv("H1MOCK_ADMIN_TOKEN", "has a space", 1);
  ASSERT_EQ(parse(&c, "--port", "81", "--admin-token-file=/t"), CONFIG_RUN);
  ASSERT(c.admin_token == NULL);
  ASSERT_STR_EQ(c.admin_token_file, "/t");
  unsetenv("H1MOCK_ADMIN_TOKEN");
  unsetenv("H1MOCK_PORT");
  unsetenv("H1MOCK_PROVISIONS");
}

TEST(admin_exposure_needs_a_non_loopback_address_and_no_token) {
  ASSERT(config_is_loopback("127.0.0.1"));
  ASSERT(config_is_loopback("127.1.2.3"));
  ASSERT(config_is_loopback("::1"));
  ASSERT(config_is_loopback("::ffff:127.0.0.1"));
  ASSERT(!config_is_loopback("0.0.0.0"));
  ASSERT(!config_is_loopback("::"));
  ASSERT(!config_is_loopback("10.1.2.3"));
  ASSERT(!config_is_loopback("128.0.0.1"));
  ASSERT(!config_is_loopback("::2"));
  ASSERT(!config_is_loopback("::ffff:10.0.0.1"));
  ASSERT(!config_is_loopback("not an address"));
  /* Without --admin-open, other hosts get 403: nothing is exposed. */
  config_t c = {.address = "0.0.0.0"};
  ASSERT(!config_admin_exposed(&c, false));
  c.admin_open = true;
  ASSERT(config_admin_exposed(&c, false));
  c.admin_token = "s3cret";
  ASSERT(!config_admin_exposed(&c, false));
  c.admin_token = NULL;
  ASSERT(!config_admin_exposed(&c, true));
}

static bool loopback(const char *address) {
  struct sockaddr_storage ss[CONFIG_MAX_ADDRESSES];
  int n = config_resolve_address(address, 0, ss, CONFIG_MAX_ADDRESSES, err, sizeof err);
  ASSERT_EQ(n, 1);
  return config_is_loopback_sockaddr(&ss[0]);
}

TEST(resolved_addresses_are_loopback_or_not) {
  ASSERT(loopback("127.0.0.1"));
  ASSERT(loopback("127.9.9.9"));
  ASSERT(loopback("::1"));
  ASSERT(loopback("::ffff:127.0.0.1"));
  ASSERT(!loopback("0.0.0.0"));
  ASSERT(!loopback("::"));
  ASSERT(!loopback("10.1.2.3"));
  ASSERT(!loopback("2001:db8::1"));
}

TEST(address_literals_and_names_resolve) {
  struct sockaddr_storage ss[CONFIG_MAX_ADDRESSES];
  ASSERT_EQ(config_resolve_address("127.0.0.1", 8000, ss, CONFIG_MAX_ADDRESSES, err, sizeof err),
            1);
  ASSERT_EQ(ss[0].ss_family, AF_INET);
  ASSERT_EQ(ntohs(((struct sockaddr_in *)&ss[0])->sin_port), 8000);
  ASSERT_EQ(config_resolve_address("::", 1, ss, CONFIG_MAX_ADDRESSES, err, sizeof err), 1);
  ASSERT_EQ(ss[0].ss_family, AF_INET6);
  /* localhost: every address it has (127.0.0.1, and ::1 where /etc/hosts
   * says so), each once, all loopback */
  int n = config_resolve_address("localhost", 0, ss, CONFIG_MAX_ADDRESSES, err, sizeof err);
  ASSERT(n >= 1);
  for (int i = 0; i < n; i++) {
    ASSERT(config_is_loopback_sockaddr(&ss[i]));
    for (int j = 0; j < i; j++)
      ASSERT(memcmp(&ss[i], &ss[j], sizeof ss[i]) != 0);
  }
  /* `max` bounds what is written */
  ASSERT_EQ(config_resolve_address("localhost", 0, ss, 1, err, sizeof err), 1);
  /* .invalid never resolves (RFC 6761) */
  ASSERT_EQ(config_resolve_address("nosuch.invalid", 0, ss, CONFIG_MAX_ADDRESSES, err, sizeof err),
            -EINVAL);
  ASSERT_CONTAINS(err, "h1mock: --address: 'nosuch.invalid' is neither an IPv4 or IPv6 address "
                       "nor a host name that resolves");
}

TEST(admin_open_and_token_file_options) {
  unsetenv("H1MOCK_ADMIN_TOKEN");
  unsetenv("H1MOCK_ADMIN_TOKEN_FILE");
  unsetenv("H1MOCK_ADMIN_OPEN");
  config_t c;
  ASSERT_EQ(parse(&c, NULL, NULL, NULL), CONFIG_RUN);
  ASSERT(!c.admin_open);
  ASSERT(c.admin_token_file == NULL);
  ASSERT_EQ(parse(&c, "--admin-open", NULL, NULL), CONFIG_RUN);
  ASSERT(c.admin_open);
  ASSERT_EQ(parse(&c, "--admin-token-file", "/run/secrets/t", NULL), CONFIG_RUN);
  ASSERT_STR_EQ(c.admin_token_file, "/run/secrets/t");
  ASSERT(c.admin_token == NULL);
  ASSERT_EQ(parse(&c, "--admin-token-file", "", NULL), CONFIG_USAGE);
  ASSERT_STR_EQ(err, "h1mock: --admin-token-file: the value is empty");
  /* One way on one level; the command line replaces the environment. */
  ASSERT_EQ(parse(&c, "--admin-token=a", "--admin-token-file=f", NULL), CONFIG_USAGE);
  ASSERT_STR_EQ(err, "h1mock: --admin-token and --admin-token-file are both given: give the "
                     "admin token one way");
  setenv("H1MOCK_ADMIN_TOKEN", "env-token", 1);
  setenv("H1MOCK_ADMIN_TOKEN_FILE", "env-file", 1);
  ASSERT_EQ(parse(&c, NULL, NULL, NULL), CONFIG_USAGE);
  ASSERT_CONTAINS(err, "H1MOCK_ADMIN_TOKEN and H1MOCK_ADMIN_TOKEN_FILE are both set");
  ASSERT(strstr(err, "env-token") == NULL);
  unsetenv("H1MOCK_ADMIN_TOKEN_FILE");
  ASSERT_EQ(parse(&c, "--admin-token-file", "f", NULL), CONFIG_RUN);
  ASSERT_STR_EQ(c.admin_token_file, "f");
  ASSERT(c.admin_token == NULL);
  unsetenv("H1MOCK_ADMIN_TOKEN");
  setenv("H1MOCK_ADMIN_TOKEN_FILE", "env-file", 1);
  ASSERT_EQ(parse(&c, "--admin-token", "t", NULL), CONFIG_RUN);
  ASSERT_STR_EQ(c.admin_token, "t");
  ASSERT(c.admin_token_file == NULL);
  unsetenv("H1MOCK_ADMIN_TOKEN_FILE");
  setenv("H1MOCK_ADMIN_OPEN", "yes", 1);
  ASSERT_EQ(parse(&c, NULL, NULL, NULL), CONFIG_RUN);
  ASSERT(c.admin_open);
  ASSERT_EQ(parse(&c, "--admin-open=0", NULL, NULL), CONFIG_RUN);
  ASSERT(!c.admin_open);
}

static const char *token_of(const char *text, size_t len) {
  static char out[CONFIG_TOKEN_MAX + 1];
  const char *why = NULL;
  memset(out, 'x', sizeof out);
  if (config_token_from_text(text, len, out, &why) != 0)
    return why;
  ASSERT(why == NULL);
  return out;
}

#define TOKEN_OF(s) token_of(s, sizeof s - 1)

TEST(token_file_text) {
  ASSERT_STR_EQ(TOKEN_OF("s3cret"), "s3cret");
  ASSERT_STR_EQ(TOKEN_OF("s3cret\n"), "s3cret");
  ASSERT_STR_EQ(TOKEN_OF("s3cret\r\n"), "s3cret");
  ASSERT_STR_EQ(TOKEN_OF("s3cret\nsecond line ignored\n"), "s3cret");
  ASSERT_STR_EQ(TOKEN_OF(""), "its first line is empty");
  ASSERT_STR_EQ(TOKEN_OF("\n"), "its first line is empty");
  ASSERT_STR_EQ(TOKEN_OF("\r\ns3cret\n"), "its first line is empty");
  const char *bad = "the token must be printable ASCII without spaces (a header value carries it)";
  ASSERT_STR_EQ(TOKEN_OF("two words\n"), bad);
  ASSERT_STR_EQ(TOKEN_OF(" s3cret\n"), bad);
  ASSERT_STR_EQ(TOKEN_OF("s3cret \n"), bad);
  ASSERT_STR_EQ(TOKEN_OF("s3\tcret"), bad);
  ASSERT_STR_EQ(TOKEN_OF("s3\0cret"), bad);
  ASSERT_STR_EQ(TOKEN_OF("caf\xc3\xa9"), bad);
  ASSERT_STR_EQ(TOKEN_OF("s3cret\r\r\n"), bad);
  static char longest[CONFIG_TOKEN_MAX + 2];
  memset(longest, 'a', sizeof longest);
  ASSERT_EQ(strlen(token_of(longest, CONFIG_TOKEN_MAX)), CONFIG_TOKEN_MAX);
  ASSERT_STR_EQ(token_of(longest, CONFIG_TOKEN_MAX + 1),
                "the token is longer than 4096 characters");
}

/* The token leaves the environment, and its bytes the memory that
 * /proc/<pid>/environ shows; other variables stay. */
TEST(take_secrets_scrubs_the_environment) {
  static char entry[] = "H1MOCK_ADMIN_TOKEN=from-env";
  static char other[] = "H1MOCK_ADMIN_TOKENX=stays";
  ASSERT_EQ(putenv(entry), 0);
  ASSERT_EQ(putenv(other), 0);
  config_t c;
  ASSERT_EQ(parse(&c, NULL, NULL, NULL), CONFIG_RUN);
  ASSERT_EQ(config_take_secrets(&c, NULL, err, sizeof err), 0);
  ASSERT_STR_EQ(c.admin_token, "from-env");
  ASSERT(c.admin_token == c.token_buf);
  ASSERT(getenv("H1MOCK_ADMIN_TOKEN") == NULL);
  for (size_t i = 0; i < sizeof entry; i++)
    ASSERT_EQ(entry[i], 0);
  ASSERT_STR_EQ(getenv("H1MOCK_ADMIN_TOKENX"), "stays");
  /* A token from the command line is copied too; the environment's is
   * scrubbed all the same. */
  static char entry2[] = "H1MOCK_ADMIN_TOKEN=ignored";
  ASSERT_EQ(putenv(entry2), 0);
  ASSERT_EQ(parse(&c, "--admin-token", "from-flag", NULL), CONFIG_RUN);
  ASSERT_EQ(config_take_secrets(&c, NULL, err, sizeof err), 0);
  ASSERT_STR_EQ(c.admin_token, "from-flag");
  ASSERT(getenv("H1MOCK_ADMIN_TOKEN") == NULL);
  ASSERT_EQ(entry2[0], 0);
}

TEST(take_secrets_reads_the_token_file) {
  char path[] = "/tmp/h1mock-token-XXXXXX";
  int fd = mkstemp(path);
  ASSERT(fd >= 0);
  ASSERT_EQ(write(fd, "filed-token\r\n", 13), 13);
  close(fd);
  config_t c;
  ASSERT_EQ(parse(&c, "--admin-token-file", path, NULL), CONFIG_RUN);
  ASSERT_EQ(config_take_secrets(&c, NULL, err, sizeof err), 0);
  ASSERT_STR_EQ(c.admin_token, "filed-token");
  /* --check does not need it: a missing file is no error there. */
  ASSERT_EQ(unlink(path), 0);
  ASSERT_EQ(parse(&c, "--admin-token-file", path, NULL), CONFIG_RUN);
  c.check = true;
  ASSERT_EQ(config_take_secrets(&c, NULL, err, sizeof err), 0);
  ASSERT(c.admin_token == NULL);
  c.check = false;
  ASSERT_EQ(config_take_secrets(&c, NULL, err, sizeof err), -ENOENT);
  ASSERT_CONTAINS(err, "h1mock: admin token file '/tmp/h1mock-token-");
  ASSERT_CONTAINS(err, "': cannot read it: No such file or directory");
  ASSERT(c.admin_token == NULL);
  ASSERT_EQ(parse(&c, "--admin-token-file", "/tmp", NULL), CONFIG_RUN);
  ASSERT_EQ(config_take_secrets(&c, NULL, err, sizeof err), -EINVAL);
  ASSERT_STR_EQ(err, "h1mock: admin token file '/tmp': not a regular file");
}

TEST(connection_options) {
  config_t c;
  ASSERT_EQ(parse(&c, NULL, NULL, NULL), CONFIG_RUN);
  ASSERT_EQ(c.max_connections, 0); /* derived from the open-files limit at start */
  ASSERT(c.body_timeout == 60);
  ASSERT_EQ(parse(&c, "--max-connections", "1", "--body-timeout=0.5"), CONFIG_RUN);
  ASSERT_EQ(c.max_connections, 1);
  ASSERT(c.body_timeout == 0.5);
  ASSERT_EQ(parse(&c, "--max-connections=10000000", NULL, NULL), CONFIG_RUN);
  ASSERT_EQ(c.max_connections, 10000000);
  ASSERT_EQ(parse(&c, "--max-connections", "0", NULL), CONFIG_USAGE);
  ASSERT_STR_EQ(err, "h1mock: --max-connections: '0' is not a number of connections (1 to "
                     "10000000)");
  ASSERT_EQ(parse(&c, "--max-connections", "10000001", NULL), CONFIG_USAGE);
  ASSERT_EQ(parse(&c, "--max-connections", "+5", NULL), CONFIG_USAGE);
  ASSERT_EQ(parse(&c, "--max-connections", "5k", NULL), CONFIG_USAGE);
  ASSERT_EQ(parse(&c, "--body-timeout", "0", NULL), CONFIG_USAGE);
  ASSERT_STR_EQ(err, "h1mock: --body-timeout: '0' is not a number of seconds (> 0)");
}

TEST(default_connections_leave_room_for_files_and_the_admin_port) {
  ASSERT_EQ(config_default_connections(20000), 20000 - 64 - 64);
  ASSERT_EQ(config_default_connections(1024), 1024 - 128);
  ASSERT_EQ(config_default_connections(145), 17);
  ASSERT_EQ(config_default_connections(144), 16);
  ASSERT_EQ(config_default_connections(64), 16); /* met with 503s, not a refusal to start */
  ASSERT_EQ(config_default_connections(0), 16);
  ASSERT_EQ(config_default_connections(UINT64_MAX), 10000000);
}

UNIT_MAIN(observability_defaults, journal_options, access_log_and_token_options,
          environment_feeds_the_new_options,
          a_variable_overridden_on_the_command_line_is_not_parsed,
          admin_exposure_needs_a_non_loopback_address_and_no_token,
          resolved_addresses_are_loopback_or_not, address_literals_and_names_resolve,
          admin_open_and_token_file_options, token_file_text, take_secrets_scrubs_the_environment,
          take_secrets_reads_the_token_file, lua_memory_limit, outbound_options,
          connection_options, default_connections_leave_room_for_files_and_the_admin_port)
