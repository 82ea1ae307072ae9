/* store_bench.c - the document store alone: get-by-id cost as it grows, memory at
 * 1,000,000 documents, and durable puts per second on this disk, waited for one
 * by one and a hundred at a time (one commit each).
 *
 * Build and run (not part of the test suite; from the repository root):
 *   gcc -std=c11 -D_GNU_SOURCE -O2 -Isrc src/buf.c src/log.c src/safedir.c src/store*.c \
 *       tests/bench/store_bench.c -o /tmp/store_bench && /tmp/store_bench [DIR]
 * DIR is where the durable-put run writes (default: a fresh directory in
 * /tmp, removed afterwards); put it on the disk you mean to measure.
 *
 * Each size runs in its own forked process, so its peak RSS (VmHWM) is that
 * of one store of that size: documents are ~100-byte JSON-like values under
 * UUID ids, generated from the index so that no id array inflates the
 * figure. The lookup sample (random ids of the store) is built after RSS is
 * read.
 */
#include "store.h"

#include "bench_ids.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LOOKUPS 2000000
#define SAMPLE 200000
#define HOT 1000
#define DURABLE_SECONDS 3.0

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int value_of(uint64_t i, char *out, size_t cap) {
  return snprintf(out, cap,
                  "{\"name\":\"user %07llu\",\"email\":\"user%07llu@example.com\","
                  "\"age\":%d,\"role\":\"member\",\"active\":true,\"n\":1}",
                  (unsigned long long)i, (unsigned long long)i, (int)(i % 90));
}

static long status_kb(const char *field) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  size_t n = strlen(field);
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, field, n) == 0 && line[n] == ':')
      kb = strtol(line + n + 1, NULL, 10);
  if (f)
    fclose(f);
  return kb;
}

static void die(const char *what, int rc) {
  fprintf(stderr, "store_bench: %s: %s\n", what, strerror(-rc));
  exit(1);
}

/* Seconds per store_get, cycling through the first m ids of the sample. */
static double lookups(store_t *s, char (*sample)[37], size_t m) {
  size_t sum = 0;
  double t0 = now();
  for (size_t k = 0; k < LOOKUPS; k++) {
    const void *v;
    size_t vl;
    if (store_get(s, "users", 5, sample[k % m], 36, &v, &vl) != 0)
      die("store_get", -ENOENT);
    sum += vl + ((const unsigned char *)v)[0];
  }
  double t = (now() - t0) / LOOKUPS;
  if (sum == 0)
    puts("(impossible)");
  return t;
}

static void run_size(size_t n) {
  store_t *s;
  char err[256];
  store_opts_t o = {.data_dir = NULL};
  int rc = store_open(&o, &s, err, sizeof err);
  if (rc)
    die(err, rc);
  long base = status_kb("VmHWM");
  char id[37], val[160];
  size_t vbytes = 0;
  double t0 = now();
  for (size_t i = 0; i < n; i++) {
    uuid_of(i, id);
    int vl = value_of(i, val, sizeof val);
    vbytes += (size_t)vl;
    if ((rc = store_put(s, "users", 5, id, 36, val, (size_t)vl)))
      die("store_put", rc);
  }
  double t_ins = now() - t0;
  long hwm = status_kb("VmHWM");

  /* Random ids of the store, made before timing; at size 1 every lookup is
   * the same document (the best case a cache can give). */
  char(*sample)[37] = malloc(SAMPLE * sizeof *sample);
  uint64_t r = 12345;
  for (size_t k = 0; k < SAMPLE; k++) {
    r = mix(r);
    uuid_of(r % n, sample[k]);
  }
  double t_get = lookups(s, sample, SAMPLE);
  /* The same code on HOT ids only: what is left once memory latency is out
   * of the picture, i.e. the cost of the algorithm itself. */
  double t_hot = lookups(s, sample, HOT);
  /* A lone insert would show the cost of a first insert (allocations, page
   * faults), not of a put. */
  char put_ns[32] = "-";
  if (n >= 1000)
    snprintf(put_ns, sizeof put_ns, "%.0f", t_ins / (double)n * 1e9);
  printf("%9zu  %10s  %10.1f  %10.1f  %9.1f  %9.1f  %8.1f\n", n, put_ns, t_get * 1e9, t_hot * 1e9,
         (double)(hwm - base) / 1024, (double)hwm / 1024, (double)vbytes / (double)n);
  free(sample);
  store_close(s);
}

/* Durable puts, each `group` of them waited for with store_sync: one
 * writer commit (one fdatasync) per group. */
static void run_durable(const char *dir, size_t group) {
  store_t *s;
  char err[256];
  store_opts_t o = {.data_dir = dir};
  int rc = store_open(&o, &s, err, sizeof err);
  if (rc)
    die(err, rc);
  char id[37], val[160];
  size_t n = 0;
  double t0 = now(), t;
  do {
    store_uuid(id);
    int vl = value_of(n, val, sizeof val);
    if ((rc = store_put(s, "users", 5, id, 36, val, (size_t)vl)))
      die("durable store_put", rc);
    if (++n % group == 0 && (rc = store_sync(s)))
      die("store_sync", rc);
  } while ((t = now() - t0) < DURABLE_SECONDS);
  store_close(s);
  double t1 = now();
  rc = store_open(&o, &s, err, sizeof err); /* replays the log, compacts */
  double t_open = now() - t1;
  if (rc)
    die(err, rc);
  size_t back = store_count(s, "users", 5);
  store_close(s);
  printf("durable puts in %s, waited for every %zu: %zu in %.1f s = %.0f puts/s, %.1f us/put\n",
         dir, group, n, t, (double)n / t, t / (double)n * 1e6);
  printf("reopen of %zu documents (replay + compaction): %.1f ms\n", back, t_open * 1e3);
}

int main(int argc, char **argv) {
  static const size_t sizes[] = {1, 10000, 100000, 1000000};
  printf("in memory, %d random get-by-id per size (sample of %d ids)\n", LOOKUPS, SAMPLE);
  printf("%9s  %10s  %10s  %10s  %9s  %9s  %8s\n", "docs", "put ns/op", "get ns/op", "(hot) ns",
         "store MB", "VmHWM MB", "value B");
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
      run_size(sizes[i]);
      fflush(stdout);
      _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
      return 1;
  }
  printf("get: random ids of the store; (hot): %d of them over and over\n"
         "store MB: VmHWM growth while inserting; VmHWM MB: the whole process\n\n",
         HOT);
  char tmp[] = "/tmp/store-bench-XXXXXX";
  const char *dir = argc > 1 ? argv[1] : mkdtemp(tmp);
  if (dir == NULL)
    return 1;
  run_durable(dir, 1);
  run_durable(dir, 100);
  if (argc <= 1) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
      return 1;
  }
  return 0;
}
