/* router_bench.c - route lookup cost against the number of rules.
 *
 * Target: lookup time does not grow with the number of rules. For
 * 10, 100, 1,000 and 10,000 rules (five shapes per resource, as the rules
 * tests/bench/provision.sh generates: static, <int:id>, <name>, POST only,
 * two variables) this times lookups of paths that hit every shape of
 * resources spread over the whole set, plus misses, and prints ns per
 * lookup and the ratio to the 10-rule case.
 *
 * Build and run (a benchmark, never a test):
 *   meson compile -C build tests/router_bench && build/tests/router_bench
 */
#include "router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <llhttp.h>

#define PATHS 1024
#define ROUNDS 2000 /* lookups per size: PATHS * ROUNDS */

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static router_t *build(int n) {
  router_t *r = router_new();
  static const char *shapes[] = {"/api/v1/svc%d/items", "/api/v1/svc%d/items/<int:id>",
                                 "/api/v1/svc%d/users/<name>", "/api/v1/svc%d/orders",
                                 "/api/v1/svc%d/users/<name>/orders/<int:id>"};
  for (int i = 0; r && i < n; i++) {
    char rule[128], err[256];
    snprintf(rule, sizeof rule, shapes[i % 5], i / 5);
    uint64_t m = i % 5 >= 3 ? 1ULL << HTTP_POST : 1ULL << HTTP_GET;
    if (router_add(r, rule, m, true, i, err, sizeof err)) {
      fprintf(stderr, "router_bench: %s\n", err);
      exit(1);
    }
  }
  return r;
}

int main(void) {
  static const int sizes[] = {10, 100, 1000, 10000};
  static char paths[PATHS][96];
  static int methods[PATHS];
  double base = 0;
  printf("rules    ns/lookup  vs 10 rules   (%d lookups each: hits of every shape, and misses)\n",
         PATHS * ROUNDS);
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    int n = sizes[s];
    router_t *r = build(n);
    if (r == NULL) {
      fprintf(stderr, "router_bench: out of memory\n");
      return 1;
    }
    srand(7);
    for (int i = 0; i < PATHS; i++) {
      int res = rand() % (n / 5), shape = i % 6;
      methods[i] = shape == 3 || shape == 4 ? HTTP_POST : HTTP_GET;
      static const char *fmt[] = {
          "/api/v1/svc%d/items",  "/api/v1/svc%d/items/42",           "/api/v1/svc%d/users/ada",
          "/api/v1/svc%d/orders", "/api/v1/svc%d/users/ada/orders/7", "/api/v1/svc%d/nothing"};
      snprintf(paths[i], sizeof paths[i], fmt[shape], res);
    }
    router_match_t m;
    size_t found = 0;
    double t0 = now();
    for (int k = 0; k < ROUNDS; k++)
      for (int i = 0; i < PATHS; i++)
        found += router_match(r, paths[i], strlen(paths[i]), methods[i], &m) == ROUTER_FOUND;
    double ns = (now() - t0) * 1e9 / ((double)PATHS * ROUNDS);
    if (s == 0)
      base = ns;
    printf("%-8d %9.1f  %10.2f   (%zu found)\n", n, ns, ns / base, found);
    router_free(r);
  }
  return 0;
}
