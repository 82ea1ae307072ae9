/* test_metrics.c - the Prometheus text rendering: HELP/TYPE lines, label
 * escaping, counters, gauges and the histogram. */
#include <stdbool.h>

#include "../../src/http.h"
#include "../../src/metrics.h"
#include "../../src/text.h"
#include "unit.h"

static char *render(const metrics_t *m, const metrics_gauges_t *g) {
  buf_t out = BUF_INIT;
  ASSERT_EQ(metrics_render(m, &out, g), 0);
  buf_putc(&out, '\0');
  return out.data;
}

/* The value of the sample line starting with `prefix` (name and labels). */
static double sample(const char *text, const char *prefix) {
  size_t n = strlen(prefix);
  for (const char *line = text; *line;) {
    const char *eol = strchr(line, '\n');
    if (strncmp(line, prefix, n) == 0 && line[n] == ' ')
      return strtod(line + n + 1, NULL);
    if (eol == NULL)
      break;
    line = eol + 1;
  }
  UNIT_FAIL("no sample '%s' in:\n%s", prefix, text);
  return 0;
}

/* Every line is a comment (# HELP / # TYPE) or "name{labels} value"; every
 * sample's family has HELP and TYPE before it. */
static void well_formed(const char *text) {
  char family[128] = "";
  for (const char *line = text; *line;) {
    const char *eol = strchr(line, '\n');
    ASSERT(eol != NULL);
    size_t len = (size_t)(eol - line);
    if (strncmp(line, "# HELP ", 7) == 0) {
      size_t k = strcspn(line + 7, " ");
      snprintf(family, sizeof family, "%.*s", (int)k, line + 7);
      char type[160];
      snprintf(type, sizeof type, "# TYPE %s ", family);
      ASSERT(strncmp(eol + 1, type, strlen(type)) == 0);
    } else if (strncmp(line, "# TYPE ", 7) != 0) {
      ASSERT(family[0] != '\0');
      size_t f = strlen(family);
      if (strncmp(line, family, f) != 0)
        UNIT_FAIL("sample outside its family %s: %.*s", family, (int)len, line);
      const char *sp = memchr(line, ' ', len);
      ASSERT(sp != NULL);
      char *end;
      strtod(sp + 1, &end);
      ASSERT(end == eol);
    }
    line = eol + 1;
  }
}

TEST(every_metric_has_help_and_type) {
  metrics_t *m = metrics_new(text_now_us());
  metrics_request(m, HTTP_GET, 200, "answer_get", 10, 40000);
  char *t = render(m, &(metrics_gauges_t){.provision = "foo-bar",
                                          .lua_memory_bytes = 1234,
                                          .lua_memory_limit = 1 << 20});
  well_formed(t);
  static const char *const families[][2] = {
      {"h1mock_requests_total", "counter"},       {"h1mock_request_duration_seconds", "histogram"},
      {"h1mock_connections_active", "gauge"},     {"h1mock_provision_loads_total", "counter"},
      {"h1mock_provision_active_info", "gauge"},  {"h1mock_journal_dropped_total", "counter"},
      {"h1mock_store_documents", "gauge"},        {"h1mock_lua_memory_bytes", "gauge"},
      {"process_resident_memory_bytes", "gauge"}, {"process_start_time_seconds", "gauge"},
      {"h1mock_uptime_seconds", "gauge"},         {"h1mock_lua_memory_limit_bytes", "gauge"},
  };
  for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
    char want[160];
    snprintf(want, sizeof want, "# TYPE %s %s\n", families[i][0], families[i][1]);
    ASSERT_CONTAINS(t, want);
    snprintf(want, sizeof want, "# HELP %s ", families[i][0]);
    ASSERT_CONTAINS(t, want);
  }
  ASSERT_EQ(sample(t, "h1mock_lua_memory_bytes"), 1234);
  ASSERT_EQ(sample(t, "h1mock_lua_memory_limit_bytes"), 1 << 20);
  ASSERT_EQ(sample(t, "h1mock_provision_active_info{name=\"foo-bar\"}"), 1);
  ASSERT(sample(t, "process_resident_memory_bytes") > 0);
  ASSERT(sample(t, "process_start_time_seconds") > 1.6e9);
  free(t);
  metrics_free(m);
}

TEST(request_counters_move_by_method_status_and_endpoint) {
  metrics_t *m = metrics_new(text_now_us());
  metrics_request(m, HTTP_GET, 200, "answer_get", 10, 1000);
  metrics_request(m, HTTP_GET, 200, "answer_get", 10, 1000);
  metrics_request(m, HTTP_POST, 200, "answer_post", 11, 1000);
  metrics_request(m, HTTP_GET, 404, NULL, 0, 1000);
  metrics_request(m, HTTP_GET, 500, "answer_get", 10, 1000);
  char *t = render(m, NULL);
  ASSERT_EQ(
      sample(t, "h1mock_requests_total{method=\"GET\",status=\"200\",endpoint=\"answer_get\"}"),
      2);
  ASSERT_EQ(
      sample(t, "h1mock_requests_total{method=\"POST\",status=\"200\",endpoint=\"answer_post\"}"),
      1);
  ASSERT_EQ(sample(t, "h1mock_requests_total{method=\"GET\",status=\"404\",endpoint=\"\"}"), 1);
  ASSERT_EQ(
      sample(t, "h1mock_requests_total{method=\"GET\",status=\"500\",endpoint=\"answer_get\"}"),
      1);
  free(t);
  metrics_request(m, HTTP_GET, 404, NULL, 0, 1000);
  t = render(m, NULL);
  ASSERT_EQ(sample(t, "h1mock_requests_total{method=\"GET\",status=\"404\",endpoint=\"\"}"), 2);
  free(t);
  metrics_free(m);
}

TEST(histogram_buckets_are_cumulative_from_50us_to_10s) {
  metrics_t *m = metrics_new(text_now_us());
  metrics_request(m, HTTP_GET, 200, "a", 1, 50000);       /* exactly 50 us: le="5e-05" */
  metrics_request(m, HTTP_GET, 200, "a", 1, 50001);       /* just above */
  metrics_request(m, HTTP_GET, 200, "a", 1, 3000000);     /* 3 ms */
  metrics_request(m, HTTP_GET, 200, "a", 1, 20000000000); /* 20 s: only +Inf */
  char *t = render(m, NULL);
  well_formed(t);
  ASSERT_EQ(sample(t, "h1mock_request_duration_seconds_bucket{le=\"5e-05\"}"), 1);
  ASSERT_EQ(sample(t, "h1mock_request_duration_seconds_bucket{le=\"0.0001\"}"), 2);
  ASSERT_EQ(sample(t, "h1mock_request_duration_seconds_bucket{le=\"0.0025\"}"), 2);
  ASSERT_EQ(sample(t, "h1mock_request_duration_seconds_bucket{le=\"0.005\"}"), 3);
  ASSERT_EQ(sample(t, "h1mock_request_duration_seconds_bucket{le=\"10\"}"), 3);
  ASSERT_EQ(sample(t, "h1mock_request_duration_seconds_bucket{le=\"+Inf\"}"), 4);
  ASSERT_EQ(sample(t, "h1mock_request_duration_seconds_count"), 4);
  double sum = sample(t, "h1mock_request_duration_seconds_sum");
  ASSERT(sum > 20.003 && sum < 20.0032);
  free(t);
  metrics_free(m);
}

TEST(outbound_calls_by_result_and_duration) {
  metrics_t *m = metrics_new(text_now_us());
  char *t = render(m, NULL);
  well_formed(t);
  ASSERT_EQ(sample(t, "h1mock_http_client_requests_total{result=\"ok\"}"), 0);
  ASSERT_EQ(sample(t, "h1mock_http_client_requests_total{result=\"error\"}"), 0);
  ASSERT_EQ(sample(t, "h1mock_http_client_duration_seconds_count"), 0);
  free(t);
  metrics_http_client(m, true, 40);      /* 40 us */
  metrics_http_client(m, true, 2000);    /* 2 ms */
  metrics_http_client(m, false, 500000); /* 0.5 s */
  t = render(m, NULL);
  well_formed(t);
  ASSERT_EQ(sample(t, "h1mock_http_client_requests_total{result=\"ok\"}"), 2);
  ASSERT_EQ(sample(t, "h1mock_http_client_requests_total{result=\"error\"}"), 1);
  ASSERT_EQ(sample(t, "h1mock_http_client_duration_seconds_bucket{le=\"5e-05\"}"), 1);
  ASSERT_EQ(sample(t, "h1mock_http_client_duration_seconds_bucket{le=\"0.0025\"}"), 2);
  ASSERT_EQ(sample(t, "h1mock_http_client_duration_seconds_bucket{le=\"0.5\"}"), 3);
  ASSERT_EQ(sample(t, "h1mock_http_client_duration_seconds_count"), 3);
  /* The traffic histogram is apart. */
  ASSERT_EQ(sample(t, "h1mock_request_duration_seconds_count"), 0);
  free(t);
  metrics_free(m);
}

static const char *label(const char *s, size_t n) {
  static char out[128];
  buf_t b = BUF_INIT;
  metrics_label_value(&b, s, n);
  snprintf(out, sizeof out, "%.*s", (int)b.len, b.data ? b.data : "");
  buf_free(&b);
  return out;
}

TEST(label_values_are_escaped) {
  ASSERT_STR_EQ(label("plain", 5), "plain");
  ASSERT_STR_EQ(label("a\\b", 3), "a\\\\b");
  ASSERT_STR_EQ(label("say \"hi\"", 8), "say \\\"hi\\\"");
  ASSERT_STR_EQ(label("two\nlines", 9), "two\\nlines");
  ASSERT_STR_EQ(label("caf\xc3\xa9", 5), "caf\xc3\xa9");
  ASSERT_STR_EQ(label("bad\xff", 4), "bad\xef\xbf\xbd");
  metrics_t *m = metrics_new(text_now_us());
  metrics_request(m, HTTP_GET, 200, "we\"ird\\end\npoint", 16, 1000);
  char *t = render(m, NULL);
  well_formed(t);
  ASSERT_CONTAINS(t, "endpoint=\"we\\\"ird\\\\end\\npoint\"} 1\n");
  free(t);
  metrics_free(m);
}

TEST(series_beyond_the_cap_count_as_other) {
  metrics_t *m = metrics_new(text_now_us());
  char name[32];
  for (int i = 0; i < METRICS_MAX_SERIES + 10; i++) {
    int n = snprintf(name, sizeof name, "e%d", i);
    metrics_request(m, HTTP_GET, 200, name, (size_t)n, 1000);
  }
  metrics_request(m, HTTP_GET, 200, "e0", 2, 1000);
  metrics_request(m, HTTP_GET, 404, NULL, 0, 1000); /* unmatched keep their own series */
  char *t = render(m, NULL);
  ASSERT_EQ(sample(t, "h1mock_requests_total{method=\"GET\",status=\"404\",endpoint=\"\"}"), 1);
  ASSERT_EQ(sample(t, "h1mock_requests_total{method=\"GET\",status=\"200\",endpoint=\"e0\"}"), 2);
  ASSERT_EQ(sample(t, "h1mock_requests_total{method=\"GET\",status=\"200\",endpoint=\"(other)\"}"),
            10);
  ASSERT(strstr(t, "endpoint=\"e4100\"") == NULL);
  free(t);
  metrics_free(m);
  m = metrics_new(text_now_us()); /* a fresh set starts empty */
  t = render(m, NULL);
  ASSERT(strstr(t, "endpoint=\"e0\"") == NULL);
  free(t);
  metrics_free(m);
}

TEST(provision_loads_and_gauges) {
  metrics_t *m = metrics_new(text_now_us());
  metrics_provision_load(m, true);
  metrics_provision_load(m, true);
  metrics_provision_load(m, false);
  size_t conns = 7;
  metrics_track_connections(m, &conns);
  char *t = render(m, &(metrics_gauges_t){.provision = "a\"b", .journal_dropped = 42});
  ASSERT_EQ(sample(t, "h1mock_provision_loads_total{result=\"success\"}"), 2);
  ASSERT_EQ(sample(t, "h1mock_provision_loads_total{result=\"failure\"}"), 1);
  ASSERT_EQ(sample(t, "h1mock_connections_active"), 7);
  ASSERT_EQ(sample(t, "h1mock_journal_dropped_total"), 42);
  ASSERT_EQ(sample(t, "h1mock_provision_active_info{name=\"a\\\"b\"}"), 1);
  free(t);
  metrics_track_connections(m, NULL);
  metrics_free(m);
}

/* Two servers in one process count apart. */
TEST(two_sets_share_nothing) {
  metrics_t *a = metrics_new(text_now_us()), *b = metrics_new(text_now_us() - 5000000);
  metrics_request(a, HTTP_GET, 200, "only_a", 6, 1000);
  metrics_provision_load(b, false);
  size_t conns = 3;
  metrics_track_connections(b, &conns);
  char *ta = render(a, NULL), *tb = render(b, NULL);
  ASSERT_EQ(sample(ta, "h1mock_requests_total{method=\"GET\",status=\"200\",endpoint=\"only_a\"}"),
            1);
  ASSERT(strstr(tb, "only_a") == NULL);
  ASSERT_EQ(sample(ta, "h1mock_provision_loads_total{result=\"failure\"}"), 0);
  ASSERT_EQ(sample(tb, "h1mock_provision_loads_total{result=\"failure\"}"), 1);
  ASSERT_EQ(sample(ta, "h1mock_connections_active"), 0);
  ASSERT_EQ(sample(tb, "h1mock_connections_active"), 3);
  ASSERT(sample(tb, "h1mock_uptime_seconds") > sample(ta, "h1mock_uptime_seconds") + 4);
  free(ta);
  free(tb);
  metrics_free(a);
  metrics_free(b);
}

UNIT_MAIN(every_metric_has_help_and_type, request_counters_move_by_method_status_and_endpoint,
          histogram_buckets_are_cumulative_from_50us_to_10s, label_values_are_escaped,
          series_beyond_the_cap_count_as_other, provision_loads_and_gauges, two_sets_share_nothing,
          outbound_calls_by_result_and_duration)
