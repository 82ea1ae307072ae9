/* store_gap.c - the event loop's worst pause from store maintenance.
 *
 * A libuv loop fills a durable store from 0 to BENCH_DOCS documents
 * (default 1,000,000): each turn of the loop makes PER_TURN puts of
 * ~120-byte values under UUID ids and waits for them like a request would
 * (store_when_durable). Tables grow on the way (to 2M slots) and the log is
 * compacted every 64 MiB (four or five times). An idle handle timestamps
 * every turn; the gap between two turns is what a request arriving then
 * waits for, its own PER_TURN puts included. It prints the worst gaps, the
 * 99.9th percentile and how many gaps passed 5 ms; then the same for the
 * gaps less the time the loop's thread waited for a CPU meanwhile
 * (run_delay in /proc/thread-self/schedstat): on a shared machine other
 * processes stall the loop too, and that part is not the store's.
 * It also counts the gaps over 5 ms that ended at the same point (within
 * 1 ms) of a 100 ms period, and gives the worst of the other gaps: a
 * virtual machine over its host's CPU allowance is stopped until the
 * host's next period begins (CFS bandwidth control, 100 ms by default),
 * so such stops all end at one point of the period; the store's own work
 * does not line up so. (A thread on another CPU does not always see those
 * stops: a host may stop one virtual CPU and not the other.)
 * BENCH_TRACE=1 prints every gap over 3 ms with that point, and the loop
 * thread's minor faults and CPU time over it (getrusage each turn).
 * BENCH_CONTROL=1 runs the same loop with a malloc and a copy in place of
 * each put and no store at all: the pauses the machine makes by itself
 * (page faults, the hypervisor), the floor to compare with.
 *
 * Not part of the test suite. Build and run (from the repository root):
 *   meson compile -C build tests/store_gap && build/tests/store_gap DIR
 * DIR is the data directory (created; removed afterwards). On tmpfs
 * (/dev/shm) fdatasync costs nothing, which isolates maintenance from the
 * disk; on a disk, puts wait for their commits, the loop does not.
 *
 * The same source builds against the store of h1mock 0.1.0 (before group
 * commit), which fdatasyncs each put on the loop and compacts inside the
 * put that crosses the threshold; OLD is the src/ of a 0.1.0 checkout:
 *   gcc -std=c11 -D_GNU_SOURCE -O2 -DBASELINE -I$OLD $OLD/buf.c $OLD/log.c \
 *     $OLD/text.c $OLD/store.c tests/bench/store_gap.c -luv -o /tmp/store_gap_old
 *   /tmp/store_gap_old /dev/shm/gap
 */
#include "store.h"

#include "bench_ids.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <math.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#define PER_TURN 100
#define WORST 8

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

typedef struct stats {
  double *gaps;
  size_t n, over5;
  double worst[WORST];
  size_t worst_at[WORST];
} stats_t;

/* A turn-to-turn gap of the loop: from, to (ms). */
typedef struct turn {
  double from, to;
} turn_t;

static struct {
  store_t *s;
  uv_idle_t idle;
  size_t docs, target;
  double last, start, last_delay;
  int schedstat;
  stats_t wall, cpu;
  turn_t *turns;
  bool control, trace;
  struct rusage ru; /* BENCH_TRACE: the loop thread's at the last turn */
  char **kept;      /* BENCH_CONTROL's allocations */
  size_t acked;
#ifndef BASELINE
  store_waiter_t *w; /* one per turn */
#endif
} B;

static double tv_ms(struct timeval tv) {
  return (double)tv.tv_sec * 1e3 + (double)tv.tv_usec / 1e3;
}

static void note_gap(stats_t *st, double gap) {
  st->gaps[st->n++] = gap;
  st->over5 += gap > 5.0;
  for (int k = 0; k < WORST; k++) {
    if (gap > st->worst[k]) {
      memmove(st->worst + k + 1, st->worst + k, (WORST - 1 - (size_t)k) * sizeof st->worst[0]);
      memmove(st->worst_at + k + 1, st->worst_at + k,
              (WORST - 1 - (size_t)k) * sizeof st->worst_at[0]);
      st->worst[k] = gap;
      st->worst_at[k] = B.docs;
      break;
    }
  }
}

/* Milliseconds this thread has waited for a CPU since it started. */
static double run_delay_ms(void) {
  char buf[128];
  ssize_t n = B.schedstat < 0 ? -1 : pread(B.schedstat, buf, sizeof buf - 1, 0);
  if (n <= 0)
    return 0;
  buf[n] = '\0';
  unsigned long long run, delay;
  return sscanf(buf, "%llu %llu", &run, &delay) == 2 ? (double)delay / 1e6 : 0;
}

#ifndef BASELINE
static void on_durable(store_waiter_t *w, int status) {
  (void)w;
  if (status == 0)
    B.acked += PER_TURN;
}
#endif

static void on_idle(uv_idle_t *h) {
  double t = now_ms(), delay = run_delay_ms();
  if (B.last > 0) {
    note_gap(&B.wall, t - B.last);
    note_gap(&B.cpu, t - B.last - (delay - B.last_delay));
    B.turns[B.wall.n - 1] = (turn_t){B.last, t};
  }
  if (B.trace) {
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    if (B.last > 0 && t - B.last > 3.0)
      printf("gap %.1f ms at %zu documents, ended %.1f ms into a 100 ms period: %ld minor faults, "
             "user %.1f ms, system %.1f ms\n",
             t - B.last, B.docs, fmod(t, 100.0), ru.ru_minflt - B.ru.ru_minflt,
             tv_ms(ru.ru_utime) - tv_ms(B.ru.ru_utime), tv_ms(ru.ru_stime) - tv_ms(B.ru.ru_stime));
    B.ru = ru;
  }
  B.last = t;
  B.last_delay = delay;
  if (B.docs >= B.target) {
    uv_idle_stop(h);
    return;
  }
  char id[37], val[160];
  for (int k = 0; k < PER_TURN; k++, B.docs++) {
    uuid_of(B.docs, id);
    int vl = snprintf(val, sizeof val,
                      "{\"name\":\"user %07zu\",\"email\":\"user%07zu@example.com\",\"age\":%zu,"
                      "\"role\":\"member\",\"active\":true}",
                      B.docs, B.docs, B.docs % 90);
    int rc = 0;
    if (B.control) { /* no store: as much memory, kept */
      B.kept[B.docs] = malloc((size_t)vl + 64);
      memcpy(B.kept[B.docs], val, (size_t)vl);
    } else {
      rc = store_put(B.s, "users", 5, id, 36, val, (size_t)vl);
    }
    if (rc) {
      fprintf(stderr, "store_gap: store_put: %s\n", strerror(-rc));
      exit(1);
    }
  }
#ifndef BASELINE
  /* Like a request's held answer: a waiter for the turn's writes. */
  if (B.control || store_when_durable(B.s, store_seq(B.s), &B.w[B.wall.n], on_durable) == 0)
    B.acked += PER_TURN;
#else
  B.acked += PER_TURN;
#endif
}

static bool near_point(double t, int at) {
  double d = fabs(fmod(t, 100.0) - (at + 0.5));
  return d <= 1.5 || d >= 98.5;
}

/* How many gaps over 5 ms ended within 1 ms of the point of a 100 ms
 * period where most of them did, and the worst of the others. */
static void report_period(void) {
  size_t bins[100] = {0}, over = 0, best = 0;
  for (size_t i = 0; i < B.wall.n; i++)
    if (B.turns[i].to - B.turns[i].from > 5.0) {
      bins[(int)fmod(B.turns[i].to, 100.0) % 100]++;
      over++;
    }
  if (over == 0)
    return;
  int at = 0;
  for (int b = 0; b < 100; b++) {
    size_t n = bins[(b + 99) % 100] + bins[b] + bins[(b + 1) % 100];
    if (n > best) {
      best = n;
      at = b;
    }
  }
  double worst = 0;
  size_t worst_n = 0;
  for (size_t i = 0; i < B.wall.n; i++) {
    double gap = B.turns[i].to - B.turns[i].from;
    bool lined_up = gap > 5.0 && near_point(B.turns[i].to, at);
    if (!lined_up && gap > worst) {
      worst = gap;
      worst_n = (i + 1) * PER_TURN;
    }
  }
  printf("  of the %zu gaps over 5 ms, %zu ended %d+-1 ms into a 100 ms period; the worst of the "
         "other gaps: %.1f ms @%zu\n",
         over, best, at, worst, worst_n);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* The machine's load average: figures from a busy machine mean little. */
static void print_loadavg(const char *when) {
  char line[128] = "?";
  FILE *f = fopen("/proc/loadavg", "r");
  if (f && fgets(line, sizeof line, f))
    line[strcspn(line, "\n")] = '\0';
  if (f)
    fclose(f);
  printf("load average %s: %s\n", when, line);
}

static void report(const char *what, stats_t *st) {
  if (st->n == 0)
    return;
  qsort(st->gaps, st->n, sizeof *st->gaps, cmp_double);
  printf("%s: median %.3f ms, p99 %.3f ms, p99.9 %.3f ms, max %.3f ms; %zu over 5 ms\n", what,
         st->gaps[st->n / 2], st->gaps[st->n * 99 / 100], st->gaps[st->n * 999 / 1000],
         st->gaps[st->n - 1], st->over5);
  printf("  worst (ms @ documents):");
  for (int k = 0; k < WORST && st->worst[k] > 0; k++)
    printf(" %.1f@%zu", st->worst[k], st->worst_at[k]);
  printf("\n");
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: store_gap DIR (a data directory to create and remove)\n");
    return 2;
  }
  const char *docs = getenv("BENCH_DOCS");
  B.target = docs ? (size_t)strtoull(docs, NULL, 10) : 1000000;
  B.wall.gaps = malloc((B.target / PER_TURN + 16) * sizeof *B.wall.gaps);
  B.cpu.gaps = malloc((B.target / PER_TURN + 16) * sizeof *B.cpu.gaps);
  B.turns = malloc((B.target / PER_TURN + 16) * sizeof *B.turns);
  B.schedstat = open("/proc/thread-self/schedstat", O_RDONLY);
#ifndef BASELINE
  B.w = calloc(B.target / PER_TURN + 16, sizeof *B.w);
#endif
  /* BENCH_MEMORY=1: no data directory, to tell table growth from
   * compaction. */
  const char *dir = getenv("BENCH_MEMORY") ? NULL : argv[1];
  B.control = getenv("BENCH_CONTROL") != NULL;
  B.trace = getenv("BENCH_TRACE") != NULL;
  if (B.control) {
    B.kept = calloc(B.target + PER_TURN, sizeof *B.kept);
    dir = NULL;
  }
  uv_loop_t *loop = uv_default_loop();
  char err[512], cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", argv[1]);
  if (system(cmd) != 0)
    return 1;
#ifdef BASELINE
  store_opts_t o = {dir, 0};
#else
  store_opts_t o = {.data_dir = dir, .loop = loop};
#endif
  int rc = store_open(&o, &B.s, err, sizeof err);
  if (rc) {
    fprintf(stderr, "store_gap: %s\n", err);
    return 1;
  }
  print_loadavg("before");
  uv_idle_init(loop, &B.idle);
  uv_idle_start(&B.idle, on_idle);
  B.start = now_ms();
  uv_run(loop, UV_RUN_DEFAULT);
  double total = now_ms() - B.start;
#ifndef BASELINE
  store_sync(B.s);
#endif
  printf("%s: %zu documents in %.1f s, %zu turns of %d puts (%.0f puts/s); %zu acknowledged\n",
         B.control ? "control (no store)"
         : dir     ? "durable"
                   : "memory",
         B.docs, total / 1e3, B.wall.n, PER_TURN, (double)B.docs / total * 1e3, B.acked);
  report("gap between turns", &B.wall);
  report_period();
  report("the same less waiting for a CPU", &B.cpu);
  print_loadavg("after");
  store_close(B.s);
  uv_close((uv_handle_t *)&B.idle, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  free(B.wall.gaps);
  free(B.cpu.gaps);
  free(B.turns);
  if (B.kept)
    for (size_t i = 0; i < B.docs; i++)
      free(B.kept[i]);
  free(B.kept);
#ifndef BASELINE
  free(B.w);
#endif
  return system(cmd) == 0 ? 0 : 1;
}
