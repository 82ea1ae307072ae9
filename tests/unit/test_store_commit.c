/* test_store_commit.c - the group commit: waiters called in sequence order
 * once their writes are durable, a failed commit undoing exactly the
 * writes that were not durable, the retry after a full disk, and a store
 * that stays read-only after any other failure. */
#include "store_test.h"

#include <uv.h>

static store_t *open_loop(const char *dir, uv_loop_t *loop) {
  store_opts_t o = {.data_dir = dir, .loop = loop};
  store_t *s = NULL;
  char err[512] = "";
  if (store_open(&o, &s, err, sizeof err))
    UNIT_FAIL("store_open(%s): %s", dir, err);
  return s;
}

static void close_loop(store_t *s, uv_loop_t *loop) {
  store_close(s);
  uv_run(loop, UV_RUN_DEFAULT); /* the store's handle closes */
  ASSERT_EQ(uv_loop_close(loop), 0);
}

typedef struct seen {
  store_waiter_t w; /* first */
  int order, status;
} seen_t;

static int calls;

static void on_durable(store_waiter_t *w, int status) {
  seen_t *x = (seen_t *)w;
  x->status = status;
  x->order = ++calls;
}

/* Runs the loop until `n` waiters were called (each turn waits for the
 * writer's report; the runner's alarm bounds the whole). */
static void run_until(uv_loop_t *loop, int n) {
  for (int turns = 0; calls < n; turns++) {
    ASSERT(turns < 100000);
    uv_run(loop, UV_RUN_ONCE);
  }
}

/* "coll:id=value,...;" for every collection, in order. */
static char *dump(store_t *s) {
  static char out[1 << 20];
  out[0] = '\0';
  char names[4096];
  snprintf(names, sizeof names, "%s", colls(s));
  for (char *c = strtok(names, ","); c; c = strtok(NULL, ",")) {
    *strchr(c, ':') = '\0';
    size_t n = strlen(out);
    snprintf(out + n, sizeof out - n, "%s:%s;", c, list(s, c, 0, 0));
  }
  return out;
}

TEST(test_waiters_called_in_sequence_order_once_durable) {
  const char *dir = mkdir_tmp();
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  store_t *s = open_loop(dir, &loop);
  seen_t a = {0}, b = {0}, c = {0};
  ASSERT_EQ(put(s, "c", "1", "one"), 0);
  ASSERT_EQ(store_seq(s), 1);
  ASSERT_EQ(put(s, "c", "2", "two"), 0);
  ASSERT_EQ(del(s, "c", "1"), 0);
  ASSERT_EQ(store_seq(s), 3);
  /* Memory has them at once; durability is reported by the loop. */
  ASSERT_STR_EQ(list(s, "c", 0, 0), "2=two");
  ASSERT_EQ(store_when_durable(s, 3, &c.w, on_durable), 1);
  ASSERT_EQ(store_when_durable(s, 1, &a.w, on_durable), 1);
  ASSERT_EQ(store_when_durable(s, 2, &b.w, on_durable), 1);
  run_until(&loop, 3);
  ASSERT_EQ(a.order, 1);
  ASSERT_EQ(b.order, 2);
  ASSERT_EQ(c.order, 3);
  ASSERT_EQ(a.status | b.status | c.status, 0);
  /* By then the records are in the file, and a late waiter is answered. */
  ASSERT_EQ(file_size(path(LOG)), FHDR + 2 * (HDR + 5) + (HDR + 2));
  ASSERT_EQ(store_when_durable(s, 3, &a.w, on_durable), 0);
  ASSERT_EQ(store_when_durable(s, 0, &a.w, on_durable), 0);
  close_loop(s, &loop);
  s = open_at(dir, 0);
  ASSERT_STR_EQ(list(s, "c", 0, 0), "2=two");
  store_close(s);
  cleanup_dirs();
}

TEST(test_a_cancelled_waiter_is_not_called) {
  const char *dir = mkdir_tmp();
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  store_t *s = open_loop(dir, &loop);
  seen_t a = {0}, b = {0};
  put(s, "c", "1", "x");
  ASSERT_EQ(store_when_durable(s, 1, &a.w, on_durable), 1);
  put(s, "c", "2", "y");
  ASSERT_EQ(store_when_durable(s, 2, &b.w, on_durable), 1);
  store_waiter_cancel(s, &a.w);
  store_waiter_cancel(s, &a.w); /* twice: no harm */
  run_until(&loop, 1);
  ASSERT_EQ(a.order, 0);
  ASSERT_EQ(b.order, 1);
  close_loop(s, &loop);
  cleanup_dirs();
}

TEST(test_a_memory_store_is_always_durable) {
  store_t *s = open_mem();
  seen_t a = {0};
  ASSERT_EQ(put(s, "c", "1", "x"), 0);
  ASSERT_EQ(store_seq(s), 1);
  ASSERT_EQ(store_when_durable(s, 1, &a.w, on_durable), 0);
  ASSERT_EQ(store_sync(s), 0);
  ASSERT_EQ(store_status(s, NULL, 0), 0);
  store_close(s);
}

static uint64_t rng = 88172645463325252ull;
static unsigned rnd(unsigned n) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (unsigned)(rng % n);
}

/* Puts, replaces, deletes and clears at random over a few collections,
 * until the store refuses writes; returns how many it took. */
static int random_ops(store_t *s, int n, int round) {
  static const char *cs[] = {"a", "b", "c"};
  for (int i = 0; i < n; i++) {
    const char *c = cs[rnd(3)];
    char id[16], val[32];
    snprintf(id, sizeof id, "k%u", rnd(40));
    snprintf(val, sizeof val, "v%d.%d", round, i);
    unsigned r = rnd(100);
    int rc = r < 60   ? put(s, c, id, val)
             : r < 92 ? del(s, c, id)
             : r < 99 ? store_clear(s, c, 1)
                      : store_clear(s, NULL, 0);
    if (rc == -ENOSPC)
      return i;
    ASSERT(rc == 0 || rc == -ENOENT);
  }
  return n;
}

static void limit_file_size(off_t size) {
  signal(SIGXFSZ, SIG_IGN);
  struct rlimit lim;
  getrlimit(RLIMIT_FSIZE, &lim);
  lim.rlim_cur = size < 0 ? lim.rlim_max : (rlim_t)size;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &lim), 0);
}

/* Every write after the last durable one is undone, newest first: memory
 * is then exactly what the log holds, order included, even across a
 * table's resize and a whole collection made and dropped in the batch.
 * The writes to undo are queued while the writer is busy with a 32 MiB
 * record that the file-size limit still lets through; everything after it
 * fails. (Once the loop sees the failure, writes are refused: how many got
 * in before depends on the disk's speed, usually all.) */
TEST(test_a_failed_commit_undoes_exactly_what_was_not_durable) {
  const char *dir = mkdir_tmp();
  store_t *s = open_at(dir, 0);
  size_t big = (size_t)32 << 20;
  char *huge = malloc(big);
  ASSERT(huge);
  memset(huge, 'h', big);
  int taken_in_all = 0;
  for (int round = 0; round < 3; round++) {
    random_ops(s, 300, round);
    ASSERT_EQ(store_sync(s), 0);
    uint64_t durable = store_seq(s);
    limit_file_size(file_size(path(LOG)) + (off_t)(HDR + 4 + 1 + big));
    ASSERT_EQ(store_put(s, "huge", 4, "1", 1, huge, big), 0);
    char *before = strdup(dump(s));
    int taken = 0, rc = 0;
    for (int i = 0; i < 20000 && rc == 0; i++) { /* past the first undo mapping */
      char id[16];
      snprintf(id, sizeof id, "big%d", i);
      rc = put(s, "big", id, "x");
      ASSERT(rc == 0 || rc == -ENOSPC);
      taken += rc == 0;
    }
    if (rc == 0)
      taken += random_ops(s, 300, 100 + round);
    taken_in_all += taken;
    seen_t last = {0};
    rc = store_when_durable(s, store_seq(s), &last.w, on_durable);
    ASSERT(rc == 1 || (rc == -ENOSPC && taken > 0));
    ASSERT_EQ(quietly(store_sync, s), -ENOSPC);
    ASSERT(rc != 1 || last.status == -ENOSPC); /* called by store_sync's poll */
    ASSERT_STR_EQ(dump(s), before);
    if (taken)
      ASSERT_EQ(store_when_durable(s, durable + 2, &last.w, on_durable), -ENOSPC);
    ASSERT_EQ(store_when_durable(s, durable + 1, &last.w, on_durable), 0);
    limit_file_size(-1);
    ASSERT_EQ(store_sync(s), 0);
    ASSERT_EQ(store_status(s, NULL, 0), 0);
    /* Still lost after the retry committed past it. */
    if (taken)
      ASSERT_EQ(store_when_durable(s, durable + 2, &last.w, on_durable), -ENOSPC);
    ASSERT_EQ(store_delete(s, "huge", 4, "1", 1), 0);
    free(before);
    before = strdup(dump(s));
    store_close(s);
    s = open_at(dir, 0);
    ASSERT_STR_EQ(dump(s), before);
    free(before);
  }
  /* Else nothing above was undone, and the checks of the undo passed idly. */
  ASSERT(taken_in_all > 0);
  free(huge);
  store_close(s);
  cleanup_dirs();
}

/* An error that is not a full disk (EIO, or here EBADF): the store stays
 * read-only, and the files keep what was durable. */
TEST(test_any_other_failure_leaves_the_store_read_only) {
  const char *dir = mkdir_tmp();
  store_t *s = open_at(dir, 0);
  put(s, "c", "a", "1");
  ASSERT_EQ(store_sync(s), 0);
  int ro = open("/dev/null", O_RDONLY);
  ASSERT(ro >= 0);
  ASSERT(dup2(ro, s->logfd) >= 0); /* appends now fail with EBADF */
  close(ro);
  ASSERT_EQ(put(s, "c", "b", "2"), 0);
  ASSERT_EQ(quietly(store_sync, s), -EIO);
  ASSERT_STR_EQ(list(s, "c", 0, 0), "a=1");
  char why[256];
  ASSERT_EQ(store_status(s, why, sizeof why), -EIO);
  ASSERT_CONTAINS(why, "failed (Bad file descriptor): read-only until h1mock is restarted");
  ASSERT_EQ(put(s, "c", "b", "2"), -EIO);
  ASSERT_EQ(store_sync(s), -EIO); /* the write made so far that was undone */
  ASSERT_EQ(store_status(s, NULL, 0), -EIO);
  store_close(s);
  s = open_at(dir, 0);
  ASSERT_STR_EQ(list(s, "c", 0, 0), "a=1");
  ASSERT_EQ(put(s, "c", "b", "2"), 0);
  store_close(s);
  cleanup_dirs();
}

/* Compactions read the documents on a thread of their own while the loop
 * goes on putting, replacing, deleting and clearing: every snapshot they
 * install, with the log after it, gives back exactly the store's state. */
TEST(test_compactions_read_a_consistent_view_while_writes_go_on) {
  const char *dir = mkdir_tmp();
  store_t *s = open_at(dir, 8192); /* a compaction every few dozen writes */
  for (int round = 0; round < 40; round++) {
    ASSERT_EQ(random_ops(s, 500, round), 500);
    if (round % 8 == 7) {
      wait_compacted(s);
      char *before = strdup(dump(s));
      store_close(s);
      s = open_at(dir, 8192);
      ASSERT_STR_EQ(dump(s), before);
      free(before);
    }
  }
  char *before = strdup(dump(s));
  store_close(s); /* may stop a compaction half way: dropped */
  s = open_at(dir, 0);
  ASSERT_STR_EQ(dump(s), before);
  free(before);
  store_close(s);
  cleanup_dirs();
}

/* The snapshot a compaction installs holds exactly the documents as they
 * were when it began, in order, however many of them the loop replaces,
 * deletes or clears (and frees) while the compactor reads. */
TEST(test_a_snapshot_is_the_state_when_it_began) {
  const char *dir = mkdir_tmp();
  store_t *s = open_at(dir, 0);
  for (int round = 0; round < 5; round++) {
    for (int i = 0; i < 20000; i++) { /* enough for the compactor to take a while */
      char id[16];
      snprintf(id, sizeof id, "k%d", i);
      ASSERT_EQ(put(s, i % 3 ? "a" : "b", id, "value of some length, to write"), 0);
    }
    ASSERT_EQ(random_ops(s, 200, round), 200);
    char *at_start = strdup(dump(s));
    uint64_t seq = store_seq(s);
    s->appended = s->compact_bytes; /* due now */
    store_maybe_compact(s);
    pthread_mutex_lock(&s->w.mu);
    bool started = s->w.compacting;
    pthread_mutex_unlock(&s->w.mu);
    ASSERT(started);
    /* Meanwhile: old documents replaced, deleted, collections cleared. */
    for (int i = 0; i < 20000; i += 2) {
      char id[16];
      snprintf(id, sizeof id, "k%d", i);
      if (i % 6 == 0)
        del(s, "b", id);
      else
        put(s, "a", id, "replaced");
    }
    random_ops(s, 2000, 50 + round);
    store_clear(s, "b", 1);
    wait_compacted(s);
    /* The snapshot on disk, read alone, is the state at its start. */
    store_t *snap = calloc(1, sizeof *snap);
    ASSERT(snap);
    snap->dirfd = open(dir, O_RDONLY | O_DIRECTORY);
    snap->logfd = -1;
    store_hdr_t h;
    char err[256];
    ASSERT_EQ(store_read_snapshot(snap, SNAP, 2, &h, err, sizeof err), 0);
    ASSERT_EQ(h.base, seq);
    ASSERT_STR_EQ(dump(snap), at_start);
    store_close(snap);
    free(at_start);
    ASSERT_EQ(store_clear(s, NULL, 0), 0);
  }
  store_close(s);
  cleanup_dirs();
}

/* The buffers the loop queues records in grow by moving their pages
 * (store_mem.c): every byte survives each move, and a trim empties the
 * buffer and keeps its first `keep` bytes mapped for the next use. */
TEST(test_record_buffers_grow_and_trim_without_losing_bytes) {
  rbuf_t b = {0};
  size_t total = 0;
  unsigned char piece[7919];
  for (int round = 0; round < 2; round++) {
    for (unsigned n = 0; total < ((size_t)3 << 20); n++) {
      size_t len = 1 + (n * 2654435761u) % sizeof piece;
      for (size_t i = 0; i < len; i++)
        piece[i] = (unsigned char)(total + i);
      ASSERT_EQ(store_rbuf_append(&b, piece, len), 0);
      total += len;
    }
    ASSERT_EQ(b.len, total);
    ASSERT(b.cap >= total);
    for (size_t i = 0; i < total; i++)
      if ((unsigned char)b.data[i] != (unsigned char)i)
        UNIT_FAIL("byte %zu of %zu is %u after the buffer grew", i, total,
                  (unsigned char)b.data[i]);
    store_rbuf_trim(&b, (size_t)1 << 20);
    ASSERT_EQ(b.len, 0);
    ASSERT_EQ(b.cap, (size_t)1 << 20);
    total = 0;
  }
  store_rbuf_trim(&b, 0);
  ASSERT(b.data == NULL && b.cap == 0);
  ASSERT_EQ(store_rbuf_append(&b, "x", 1), 0);
  ASSERT_EQ(b.data[0], 'x');
  store_rbuf_free(&b);
}

UNIT_MAIN(test_waiters_called_in_sequence_order_once_durable,
          test_record_buffers_grow_and_trim_without_losing_bytes,
          test_a_cancelled_waiter_is_not_called, test_a_memory_store_is_always_durable,
          test_a_failed_commit_undoes_exactly_what_was_not_durable,
          test_any_other_failure_leaves_the_store_read_only,
          test_compactions_read_a_consistent_view_while_writes_go_on,
          test_a_snapshot_is_the_state_when_it_began)
