/* store_test.h - helpers the store's unit tests share (test_store.c,
 * test_store_recovery.c): temporary data directories, short forms of the
 * store calls, and files read and patched byte by byte. */
#ifndef H1MOCK_STORE_TEST_H
#define H1MOCK_STORE_TEST_H

#include "store.h"
#include "store_int.h"
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>

/* The file names and the header sizes of the store's on-disk format. */
#define LOG "store.log"
#define SNAP "store.snapshot"
#define TMP "store.snapshot.tmp"
#define HDR 28  /* a record's header */
#define FHDR 48 /* a file's header */

/* ---- helpers ---- */

static char tmpdir[64];  /* the current one */
static char made[8][64]; /* every one this test made: cleanup_dirs() */
static int nmade;
static pid_t made_by;

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(p);
}

/* Called at the end of each test that made directories (the runner ends a
 * passing test with _exit, which skips atexit), and at exit after a failure. */
static void cleanup_dirs(void) {
  if (getpid() != made_by) /* a forked writer exiting */
    return;
  for (int i = 0; i < nmade; i++)
    nftw(made[i], rm_one, 16, FTW_DEPTH | FTW_PHYS);
  nmade = 0;
}

/* A fresh directory, which path() then refers to. */
static const char *mkdir_tmp(void) {
  ASSERT(nmade < 8);
  snprintf(tmpdir, sizeof tmpdir, "/tmp/h1mock-store-XXXXXX");
  ASSERT(mkdtemp(tmpdir) != NULL);
  memcpy(made[nmade++], tmpdir, sizeof tmpdir);
  if (nmade == 1) {
    made_by = getpid();
    atexit(cleanup_dirs);
  }
  return tmpdir;
}

static const char *path(const char *name) {
  static char p[4][256];
  static int k;
  k = (k + 1) % 4;
  snprintf(p[k], sizeof p[k], "%s/%s", tmpdir, name);
  return p[k];
}

static store_t *open_at(const char *dir, size_t compact_bytes) {
  store_opts_t o = {.data_dir = dir, .compact_bytes = compact_bytes};
  store_t *s = NULL;
  char err[512] = "";
  int rc = store_open(&o, &s, err, sizeof err);
  if (rc)
    UNIT_FAIL("store_open(%s) = %d: %s", dir ? dir : "NULL", rc, err);
  return s;
}

static store_t *open_mem(void) { return open_at(NULL, 0); }

static int open_fails(const char *dir, char *err, size_t errlen) {
  store_opts_t o = {.data_dir = dir};
  store_t *s = NULL;
  int rc = store_open(&o, &s, err, errlen);
  if (rc == 0)
    store_close(s);
  ASSERT(rc != 0 || s != NULL);
  return rc;
}

static int put(store_t *s, const char *c, const char *id, const char *v) {
  return store_put(s, c, strlen(c), id, strlen(id), v, strlen(v));
}

/* The value as a string, or NULL when absent. */
static const char *get(store_t *s, const char *c, const char *id) {
  const void *v;
  size_t n;
  if (store_get(s, c, strlen(c), id, strlen(id), &v, &n) != 0)
    return NULL;
  ASSERT_EQ(((const char *)v)[n], '\0');
  ASSERT_EQ(strlen(v), n);
  return v;
}

static int del(store_t *s, const char *c, const char *id) {
  return store_delete(s, c, strlen(c), id, strlen(id));
}

static size_t count(store_t *s, const char *c) { return store_count(s, c, strlen(c)); }

typedef struct acc {
  char out[4096];
  int stop_after; /* 0: never */
  int n;
} acc_t;

static int acc_doc(void *arg, const char *id, size_t idlen, const void *val, size_t vlen) {
  acc_t *a = arg;
  ASSERT_EQ(id[idlen], '\0');
  ASSERT_EQ(((const char *)val)[vlen], '\0');
  size_t len = strlen(a->out);
  snprintf(a->out + len, sizeof a->out - len, "%s%.*s=%.*s", len ? "," : "", (int)idlen, id,
           (int)vlen, (const char *)val);
  return ++a->n == a->stop_after ? 7 : 0;
}

/* "id=value,..." for a slice of a collection. */
static const char *list(store_t *s, const char *c, size_t off, size_t lim) {
  static acc_t a;
  memset(&a, 0, sizeof a);
  ASSERT_EQ(store_list(s, c, strlen(c), off, lim, acc_doc, &a), 0);
  return a.out;
}

static int acc_coll(void *arg, const char *name, size_t len, size_t n) {
  acc_t *a = arg;
  ASSERT_EQ(name[len], '\0');
  size_t l = strlen(a->out);
  snprintf(a->out + l, sizeof a->out - l, "%s%.*s:%zu", l ? "," : "", (int)len, name, n);
  return ++a->n == a->stop_after ? 9 : 0;
}

/* "name:count,..." in creation order. */
static const char *colls(store_t *s) {
  static acc_t a;
  memset(&a, 0, sizeof a);
  ASSERT_EQ(store_collections(s, acc_coll, &a), 0);
  return a.out;
}

static off_t file_size(const char *p) {
  struct stat st;
  if (stat(p, &st) != 0)
    return -1;
  return st.st_size;
}

static void copy_file(const char *from, const char *to) {
  FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
  ASSERT(in && out);
  char b[8192];
  size_t n;
  while ((n = fread(b, 1, sizeof b, in)) > 0)
    ASSERT_EQ(fwrite(b, 1, n, out), n);
  fclose(in);
  ASSERT_EQ(fclose(out), 0);
}

static void append_bytes(const char *p, const void *b, size_t n) {
  FILE *f = fopen(p, "ab");
  ASSERT(f);
  ASSERT_EQ(fwrite(b, 1, n, f), n);
  ASSERT_EQ(fclose(f), 0);
}

static void flip_byte(const char *p, off_t off) {
  int fd = open(p, O_RDWR);
  ASSERT(fd >= 0);
  unsigned char c;
  ASSERT_EQ(pread(fd, &c, 1, off), 1);
  c ^= 0x5a;
  ASSERT_EQ(pwrite(fd, &c, 1, off), 1);
  close(fd);
}

/* Runs store_open with stderr sent to a file, and returns what was logged. */
static const char *open_logged(const char *dir, store_t **out) {
  static char text[4096];
  const char *lp = path("stderr.txt");
  fflush(stderr);
  int saved = dup(2), fd = open(lp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT(saved >= 0 && fd >= 0);
  dup2(fd, 2);
  close(fd);
  *out = open_at(dir, 0);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  FILE *f = fopen(lp, "r");
  size_t n = fread(text, 1, sizeof text - 1, f);
  text[n] = '\0';
  fclose(f);
  unlink(lp);
  return text;
}

/* Runs fn with stderr sent to /dev/null (a failed commit logs). */
static int quietly(int (*fn)(store_t *), store_t *s) {
  fflush(stderr);
  int saved = dup(2), devnull = open("/dev/null", O_WRONLY);
  dup2(devnull, 2);
  int rc = fn(s);
  fflush(stderr);
  dup2(saved, 2);
  close(devnull);
  close(saved);
  return rc;
}

/* Waits (2 s at most) until no compaction runs: they end on the writer
 * thread, after the write that started them returned. */
static void wait_compacted(store_t *s) {
  /* No bound of its own: a sanitizer build on a busy disk is slow, and
   * the runner's alarm fails a test that never ends. */
  for (;;) {
    pthread_mutex_lock(&s->w.mu);
    bool busy = s->w.compacting;
    pthread_mutex_unlock(&s->w.mu);
    if (!busy)
      return;
    usleep(1000);
  }
}

#endif
