/* test_config.c - the observability options (journal, access log, admin
 * token) as config_parse reads them, and when the admin port is worth a
 * warning. */
#include <stdlib.h>

#include "../../src/access_log.h"
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
  ASSERT_EQ(c.access_log, ACCESS_LOG_OFF);
  ASSERT(c.admin_token == NULL);
  ASSERT_EQ(parse(&c, "--verbose", NULL, NULL), CONFIG_RUN);
  ASSERT_EQ(c.access_log, ACCESS_LOG_TEXT);
  ASSERT_EQ(parse(&c, "--verbose", "--access-log", "json"), CONFIG_RUN);
  ASSERT_EQ(c.access_log, ACCESS_LOG_JSON);
  ASSERT_EQ(parse(&c, "--access-log=off", "--verbose", NULL), CONFIG_RUN);
  ASSERT_EQ(c.access_log, ACCESS_LOG_OFF);
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
  ASSERT_EQ(c.access_log, ACCESS_LOG_JSON);
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

TEST(environment_feeds_the_new_options) {
  setenv("H1MOCK_JOURNAL_SIZE", "5", 1);
  setenv("H1MOCK_ADMIN_TOKEN", "from-env", 1);
  setenv("H1MOCK_ACCESS_LOG", "json", 1);
  config_t c;
  ASSERT_EQ(parse(&c, "--admin-token", "from-flag", NULL), CONFIG_RUN);
  ASSERT_EQ(c.journal_size, 5);
  ASSERT_STR_EQ(c.admin_token, "from-flag");
  ASSERT_EQ(c.access_log, ACCESS_LOG_JSON);
  setenv("H1MOCK_JOURNAL_SIZE", "lots", 1);
  ASSERT_EQ(parse(&c, NULL, NULL, NULL), CONFIG_USAGE);
  ASSERT_CONTAINS(err, "H1MOCK_JOURNAL_SIZE: 'lots'");
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
  config_t c = {.address = "0.0.0.0"};
  ASSERT(config_admin_exposed(&c));
  c.address = "::";
  ASSERT(config_admin_exposed(&c));
  c.admin_token = "s3cret";
  ASSERT(!config_admin_exposed(&c));
  c.admin_token = NULL;
  c.address = "127.0.0.1";
  ASSERT(!config_admin_exposed(&c));
  c.address = "::1";
  ASSERT(!config_admin_exposed(&c));
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
          admin_exposure_needs_a_non_loopback_address_and_no_token, connection_options,
          default_connections_leave_room_for_files_and_the_admin_port)
