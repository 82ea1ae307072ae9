/* test_store_recovery.c - what the store makes of its files at open, byte
 * by byte: torn tails it drops, damage it refuses (leaving the files as
 * they were), crash points of a compaction arranged by hand, and the
 * migration of a store written in format version 1. */
#include "store_test.h"

#include <dirent.h>

/* ---- file helpers ---- */

typedef struct files {
  char *log, *snap;
  long loglen, snaplen;
} files_t;

static char *slurp(const char *p, long *len) {
  FILE *f = fopen(p, "rb");
  *len = -1;
  if (f == NULL)
    return NULL;
  fseek(f, 0, SEEK_END);
  *len = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = malloc((size_t)*len + 1);
  ASSERT(b);
  ASSERT_EQ(fread(b, 1, (size_t)*len, f), (size_t)*len);
  fclose(f);
  return b;
}

/* The bytes of store.log and store.snapshot now. */
static files_t files_now(void) {
  files_t f;
  f.log = slurp(path(LOG), &f.loglen);
  f.snap = slurp(path(SNAP), &f.snaplen);
  return f;
}

/* store.log and store.snapshot hold exactly what they held in `before`. */
static void assert_unchanged(files_t before) {
  files_t now = files_now();
  ASSERT_EQ(now.loglen, before.loglen);
  ASSERT_EQ(now.snaplen, before.snaplen);
  ASSERT(before.loglen < 0 || memcmp(now.log, before.log, (size_t)now.loglen) == 0);
  ASSERT(before.snaplen < 0 || memcmp(now.snap, before.snap, (size_t)now.snaplen) == 0);
  free(now.log);
  free(now.snap);
  free(before.log);
  free(before.snap);
}

/* Opening fails with `rc` and a message holding `want`, and changes
 * neither file. */
static void expect_refused(const char *dir, int rc, const char *want) {
  files_t before = files_now();
  char err[512] = "";
  ASSERT_EQ(open_fails(dir, err, sizeof err), rc);
  ASSERT_CONTAINS(err, want);
  assert_unchanged(before);
}

static void write_at(const char *p, off_t off, const void *b, size_t n) {
  int fd = open(p, O_RDWR);
  ASSERT(fd >= 0);
  ASSERT_EQ(pwrite(fd, b, n, off), (ssize_t)n);
  close(fd);
}

/* Rewrites the header of the log (kind HDR_LOG) or snapshot with one field
 * changed, its checksum made right. */
static void patch_header(const char *p, int kind, int field, uint64_t value) {
  unsigned char h[FHDR];
  int fd = open(p, O_RDWR);
  ASSERT(fd >= 0);
  ASSERT_EQ(pread(fd, h, FHDR, 0), FHDR);
  store_hdr_t v;
  ASSERT_EQ(store_hdr_decode(h, FHDR, kind, &v), HDR_OK);
  if (field == 0)
    v.max_batch = value;
  else if (field == 1)
    v.base = value;
  else
    v.id = value;
  store_hdr_encode(h, kind, &v);
  if (field == 3) /* the version itself: not something store_hdr_encode writes */
    store_wr_le(h + 8, value, 4), store_wr_le(h + 44, store_crc32(0, h, 44), 4);
  ASSERT_EQ(pwrite(fd, h, FHDR, 0), FHDR);
  close(fd);
}

/* Three one-byte documents a, b, c: records of HDR + 3 bytes each, after
 * the log's header. */
#define ABC (FHDR + 3 * (HDR + 3))
static void write_abc(const char *dir) {
  store_t *s = open_at(dir, 0);
  put(s, "c", "a", "1");
  put(s, "c", "b", "2");
  put(s, "c", "c", "3");
  store_close(s);
  ASSERT_EQ(file_size(path(LOG)), ABC);
}

/* ---- torn tails: dropped with one warning ---- */

static void expect_torn(const char *dir, off_t at, off_t bytes) {
  store_t *s;
  const char *logged = open_logged(dir, &s);
  char want[96];
  snprintf(want, sizeof want, "store.log: dropping a torn tail at offset %lld (%lld bytes)",
           (long long)at, (long long)bytes);
  ASSERT_CONTAINS(logged, "WARN");
  ASSERT_CONTAINS(logged, want);
  ASSERT(strchr(logged, '\n') == strrchr(logged, '\n')); /* one line */
  ASSERT_STR_EQ(get(s, "c", "a"), "1");
  ASSERT_STR_EQ(get(s, "c", "b"), "2");
  /* The store goes on: new writes and a clean reopen. */
  put(s, "c", "d", "4");
  store_close(s);
  logged = open_logged(dir, &s);
  ASSERT_STR_EQ(logged, "");
  ASSERT_STR_EQ(get(s, "c", "d"), "4");
  store_close(s);
}

TEST(test_torn_tail_truncated) {
  const char *dir = mkdir_tmp();
  write_abc(dir);
  ASSERT_EQ(truncate(path(LOG), ABC - 2), 0);
  expect_torn(dir, FHDR + 2 * (HDR + 3), HDR + 1);
  mkdir_tmp(); /* the record header itself cut short */
  write_abc(tmpdir);
  ASSERT_EQ(truncate(path(LOG), FHDR + 2 * (HDR + 3) + 10), 0);
  expect_torn(tmpdir, FHDR + 2 * (HDR + 3), 10);
  cleanup_dirs();
}

TEST(test_torn_tail_payload_zeroed) {
  /* A power cut can leave the file extended over blocks never written. */
  const char *dir = mkdir_tmp();
  write_abc(dir);
  write_at(path(LOG), ABC - 2, "\0\0", 2);
  expect_torn(dir, FHDR + 2 * (HDR + 3), HDR + 3);
  cleanup_dirs();
}

TEST(test_torn_tail_garbage) {
  const char *dir = mkdir_tmp();
  write_abc(dir);
  unsigned char junk[300];
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i < sizeof junk; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    junk[i] = (unsigned char)(x >> 13);
  }
  junk[0] = 0xA5; /* even with the record magic */
  append_bytes(path(LOG), junk, sizeof junk);
  store_t *s;
  const char *logged = open_logged(dir, &s);
  ASSERT_CONTAINS(logged, "at offset 141 (300 bytes)");
  ASSERT_STR_EQ(list(s, "c", 0, 0), "a=1,b=2,c=3");
  store_close(s);
  mkdir_tmp(); /* zeros after the last record */
  write_abc(tmpdir);
  static const char zeros[4096];
  append_bytes(path(LOG), zeros, sizeof zeros);
  logged = open_logged(tmpdir, &s);
  ASSERT_CONTAINS(logged, "at offset 141 (4096 bytes)");
  ASSERT_STR_EQ(list(s, "c", 0, 0), "a=1,b=2,c=3");
  store_close(s);
  cleanup_dirs();
}

/* A tail may be a batch cut short only if it is no longer than the largest
 * batch its header allows. */
TEST(test_tail_longer_than_a_batch) {
  const char *dir = mkdir_tmp();
  write_abc(dir);
  patch_header(path(LOG), HDR_LOG, 0, 100);
  static const char zeros[101];
  append_bytes(path(LOG), zeros, 101);
  expect_refused(dir, -EIO,
                 "store.log is damaged at offset 141: the 101 bytes after its last sound record "
                 "are more than the largest batch (100 bytes)");
  ASSERT_EQ(truncate(path(LOG), ABC + 100), 0); /* exactly a batch: torn */
  expect_torn(dir, ABC, 100);
  cleanup_dirs();
}

/* ---- damage: refused, files left as they were ---- */

TEST(test_corrupt_middle) {
  const char *dir = mkdir_tmp();
  write_abc(dir);
  flip_byte(path(LOG), FHDR + (HDR + 3) + HDR + 2); /* b's value */
  expect_refused(dir, -EIO, "store.log is damaged at offset 79 (a sound record follows at 110)");
  flip_byte(path(LOG), FHDR + (HDR + 3) + HDR + 2);
  flip_byte(path(LOG), FHDR + 1 + 8); /* a's header: the next record is not where it says */
  expect_refused(dir, -EIO, "damaged at offset 48 ");
  flip_byte(path(LOG), FHDR + 1 + 8);
  store_t *s = open_at(dir, 0);
  ASSERT_STR_EQ(list(s, "c", 0, 0), "a=1,b=2,c=3");
  store_close(s);
  cleanup_dirs();
}

/* Zeros where records were (pages the host never wrote back), with sound
 * records after them: those records were acknowledged, so are the zeroed. */
TEST(test_zeroed_region_in_the_middle) {
  const char *dir = mkdir_tmp();
  write_abc(dir);
  static const char zeros[HDR + 3];
  write_at(path(LOG), FHDR + (HDR + 3), zeros, sizeof zeros); /* all of b */
  expect_refused(dir, -EIO, "store.log is damaged at offset 79 (a sound record follows at 110)");
  cleanup_dirs();
}

/* A log that reads back as zeros from its first byte (a lost page cache
 * after a host crash) is not an empty store. */
TEST(test_zeroed_whole_log) {
  const char *dir = mkdir_tmp();
  write_abc(dir);
  static char zeros[ABC];
  write_at(path(LOG), 0, zeros, sizeof zeros);
  expect_refused(dir, -EIO, "store.log at offset 0: its header reads back as zeros");
  /* Also when only the header is zeroed, or it is gone. */
  write_abc(mkdir_tmp());
  write_at(path(LOG), 0, zeros, FHDR);
  expect_refused(tmpdir, -EIO, "store.log at offset 0: its header reads back as zeros");
  write_abc(mkdir_tmp());
  store_close(open_at(tmpdir, 0)); /* compacted: a snapshot and an empty log */
  ASSERT_EQ(truncate(path(LOG), 0), 0);
  expect_refused(tmpdir, -EIO, "store.log at offset 0: it is empty: the header is missing");
  write_abc(mkdir_tmp());
  flip_byte(path(LOG), 20);
  expect_refused(tmpdir, -EIO, "store.log at offset 0: its header is damaged");
  cleanup_dirs();
}

TEST(test_unknown_version) {
  const char *dir = mkdir_tmp();
  write_abc(dir);
  patch_header(path(LOG), HDR_LOG, 3, 3);
  expect_refused(dir, -EIO,
                 "store.log at offset 0: it is in format version 3, which this h1mock "
                 "does not know (it reads version 2)");
  write_abc(mkdir_tmp());
  store_close(open_at(tmpdir, 0));
  patch_header(path(SNAP), HDR_SNAPSHOT, 3, 7);
  expect_refused(tmpdir, -EIO, "store.snapshot at offset 0: it is in format version 7");
  cleanup_dirs();
}

TEST(test_snapshot_damaged) {
  const char *dir = mkdir_tmp();
  write_abc(dir);
  store_close(open_at(dir, 0)); /* compacts */
  off_t size = file_size(path(SNAP));
  ASSERT_EQ(size, FHDR + 3 * (HDR + 3) + HDR + 8);
  copy_file(path(SNAP), path("good"));
  flip_byte(path(SNAP), FHDR + HDR + 1);
  expect_refused(dir, -EIO, "store.snapshot is damaged at offset 48");
  copy_file(path("good"), path(SNAP));
  ASSERT_EQ(truncate(path(SNAP), size - 3), 0);
  expect_refused(dir, -EIO, "store.snapshot is damaged at offset 141");
  ASSERT_EQ(truncate(path(SNAP), FHDR + 3 * (HDR + 3)), 0); /* ends at a record boundary */
  expect_refused(dir, -EIO,
                 "store.snapshot is damaged at offset 141: the file ends there "
                 "without its end record (truncated?)");
  ASSERT_EQ(truncate(path(SNAP), 0), 0);
  expect_refused(dir, -EIO, "store.snapshot at offset 0: it is empty");
  copy_file(path("good"), path(SNAP));
  store_t *s = open_at(dir, 0);
  ASSERT_STR_EQ(list(s, "c", 0, 0), "a=1,b=2,c=3");
  store_close(s);
  cleanup_dirs();
}

/* A snapshot and a log that are not one history. */
TEST(test_snapshot_does_not_match_its_log) {
  write_abc(mkdir_tmp()); /* another store's files */
  store_close(open_at(tmpdir, 0));
  char theirs[256];
  snprintf(theirs, sizeof theirs, "%s", path(SNAP));
  write_abc(mkdir_tmp());
  const char *dir = tmpdir;
  store_close(open_at(dir, 0)); /* a snapshot as of 3, a log continuing 3 */
  copy_file(path(SNAP), path("mine"));
  store_t *s = open_at(dir, 0);
  put(s, "c", "d", "4"); /* one record in the log: 4 */
  store_close(s);
  copy_file(path(LOG), path("log.4"));
  copy_file(theirs, path(SNAP));
  expect_refused(dir, -EIO, "store.snapshot at offset 0: the snapshot belongs to another store");
  copy_file(path("mine"), path(SNAP));
  /* A log that continues a later state than the snapshot holds. */
  patch_header(path(LOG), HDR_LOG, 1, 9);
  expect_refused(dir, -EIO,
                 "the log continues sequence number 9, but store.snapshot covers "
                 "only up to 3 (records are missing)");
  copy_file(path("log.4"), path(LOG));
  /* A snapshot gone, with a log continuing one. */
  ASSERT_EQ(rename(path(SNAP), path("mine")), 0);
  expect_refused(dir, -EIO,
                 "store.log at offset 0: the log continues sequence number 3 of a snapshot, "
                 "and store.snapshot is missing");
  /* A log gone, with a snapshot. */
  ASSERT_EQ(rename(path("mine"), path(SNAP)), 0);
  ASSERT_EQ(rename(path(LOG), path("log.4")), 0);
  expect_refused(dir, -EIO, "store.log is missing, but store.snapshot is there");
  ASSERT_EQ(rename(path("log.4"), path(LOG)), 0);
  s = open_at(dir, 0);
  ASSERT_STR_EQ(list(s, "c", 0, 0), "a=1,b=2,c=3,d=4");
  store_close(s);
  cleanup_dirs();
}

/* A link in place of the log (or the snapshot) is refused at open, not
 * followed: records would be appended to whatever it points to. */
TEST(test_log_or_snapshot_link_refused) {
  const char *dir = mkdir_tmp();
  char err[512] = "";
  ASSERT_EQ(symlink(path("elsewhere"), path(LOG)), 0);
  ASSERT_EQ(open_fails(dir, err, sizeof err), -ELOOP);
  ASSERT_CONTAINS(err, "store.log: it is a symbolic link, which the store does not follow");
  ASSERT_EQ(file_size(path("elsewhere")), -1);
  ASSERT_EQ(unlink(path(LOG)), 0);
  write_abc(dir);
  store_close(open_at(dir, 0)); /* a snapshot */
  ASSERT_EQ(rename(path(SNAP), path("snap")), 0);
  ASSERT_EQ(symlink(path("snap"), path(SNAP)), 0);
  ASSERT_EQ(open_fails(dir, err, sizeof err), -ELOOP);
  ASSERT_CONTAINS(err, "store.snapshot: it is a symbolic link");
  cleanup_dirs();
}

/* A FIFO in place of the log would hold the start forever in open(); a
 * directory there is no log either. Both are refused, left as they are. */
TEST(test_log_that_is_not_a_file_refused) {
  char err[512] = "";
  const char *dir = mkdir_tmp();
  ASSERT_EQ(mkfifo(path(LOG), 0600), 0);
  ASSERT_EQ(open_fails(dir, err, sizeof err), -ENODEV);
  ASSERT_CONTAINS(err, "store.log: it is not a regular file");
  ASSERT_EQ(unlink(path(LOG)), 0);
  ASSERT_EQ(mkdir(path(LOG), 0700), 0);
  ASSERT_EQ(open_fails(dir, err, sizeof err), -ENODEV);
  ASSERT_CONTAINS(err, "store.log: it is not a regular file");
  struct stat st;
  ASSERT(stat(path(LOG), &st) == 0 && S_ISDIR(st.st_mode));
  ASSERT_EQ(rmdir(path(LOG)), 0);
  cleanup_dirs();
}

/* ---- crash points of a compaction ---- */

/* "put A, delete A, put A, put B" over an empty snapshot gives "A, B"; the
 * same records replayed over that state would give "B, A". */
static void write_order_case(const char *dir) {
  store_t *s = open_at(dir, 0);
  put(s, "c", "A", "a1");
  del(s, "c", "A");
  put(s, "c", "A", "a2");
  put(s, "c", "B", "b");
  put(s, "d", "x", "y");
  store_clear(s, "d", 1);
  put(s, "d", "x", "y2");
  store_close(s);
}

TEST(test_crash_after_snapshot_before_new_log) {
  const char *dir = mkdir_tmp();
  write_order_case(dir);
  copy_file(path(LOG), path("log.saved"));
  store_close(open_at(dir, 0)); /* compaction: new snapshot, new empty log */
  ASSERT_EQ(file_size(path(LOG)), FHDR);
  copy_file(path("log.saved"), path(LOG)); /* as if it died before the new log */
  store_t *s = open_at(dir, 0);
  ASSERT_STR_EQ(list(s, "c", 0, 0), "A=a2,B=b");
  ASSERT_STR_EQ(colls(s), "c:2,d:1");
  ASSERT_STR_EQ(get(s, "d", "x"), "y2");
  /* And new records after the old log (the new log could not be written,
   * the store carried on with the old one): the records the snapshot
   * covers are skipped, the new ones applied. */
  put(s, "c", "C", "c");
  del(s, "c", "A");
  store_close(s);
  long n;
  char *fresh = slurp(path(LOG), &n);
  copy_file(path("log.saved"), path(LOG));
  append_bytes(path(LOG), fresh + FHDR, (size_t)(n - FHDR));
  free(fresh);
  s = open_at(dir, 0);
  ASSERT_STR_EQ(list(s, "c", 0, 0), "B=b,C=c");
  ASSERT_STR_EQ(colls(s), "c:2,d:1");
  store_close(s);
  cleanup_dirs();
}

TEST(test_crash_before_rename) {
  const char *dir = mkdir_tmp();
  store_t *s = open_at(dir, 0);
  put(s, "c", "a", "1");
  store_close(s);
  s = open_at(dir, 0); /* snapshot {a} */
  put(s, "c", "b", "2");
  put(s, "c", "a", "1b");
  put(s, "c", "c", "3");
  store_close(s);
  copy_file(path(SNAP), path("snap.old"));
  copy_file(path(LOG), path("log.old"));
  store_close(open_at(dir, 0)); /* the complete next snapshot */
  /* Died after writing (even syncing) the temporary snapshot, before the
   * rename: old snapshot, whole log, and a complete or partial tmp. */
  copy_file(path(SNAP), path(TMP));
  copy_file(path("snap.old"), path(SNAP));
  copy_file(path("log.old"), path(LOG));
  append_bytes(path("store.log.tmp"), "partial", 7);
  const char *logged = open_logged(dir, &s);
  ASSERT_CONTAINS(logged, "removed store.snapshot.tmp");
  ASSERT_CONTAINS(logged, "removed store.log.tmp");
  ASSERT_STR_EQ(list(s, "c", 0, 0), "a=1b,b=2,c=3");
  ASSERT_EQ(file_size(path(TMP)), -1);
  store_close(s);
  copy_file(path("snap.old"), path(SNAP));
  copy_file(path("log.old"), path(LOG));
  append_bytes(path(TMP), "partial", 7);
  ASSERT_CONTAINS(open_logged(dir, &s), "removed store.snapshot.tmp");
  ASSERT_STR_EQ(list(s, "c", 0, 0), "a=1b,b=2,c=3");
  store_close(s);
  cleanup_dirs();
}

/* The snapshot is put in place only once the log holds everything it
 * covers: a log (continuing an older snapshot) that stops short of it lost
 * records. */
TEST(test_log_ends_before_its_snapshot) {
  const char *dir = mkdir_tmp();
  write_order_case(dir); /* records 1..7 */
  copy_file(path(LOG), path("log.saved"));
  store_close(open_at(dir, 0)); /* snapshot as of 7 */
  copy_file(path("log.saved"), path(LOG));
  ASSERT_EQ(truncate(path(LOG), FHDR + (HDR + 4) + (HDR + 2)), 0); /* records 1 and 2 */
  expect_refused(dir, -EIO,
                 "store.log ends at sequence number 2 at offset 110, before the 7 its "
                 "snapshot covers: the snapshot does not match its log");
  cleanup_dirs();
}

/* ---- format version 1 ---- */

/* Writes records in format 1: no file header, records from offset 0. */
static void v1_append(const char *p, int type, const char *c, const char *id, const char *val,
                      uint64_t seq) {
  store_crc_setup();
  unsigned char b[512];
  size_t n = store_rec_encode(b, type, c, c ? strlen(c) : 0, id, id ? strlen(id) : 0, val,
                              val ? strlen(val) : 0, seq);
  append_bytes(p, b, n);
}

static void v1_end(const char *p, uint64_t count, uint64_t seq) {
  unsigned char b[64], n[8];
  store_wr_le(n, count, 8);
  size_t len = store_rec_encode(b, REC_END, NULL, 0, NULL, 0, n, 8, seq);
  append_bytes(p, b, len);
}

/* A store as h1mock 0.1.0 left it: a snapshot of users a, b as of
 * sequence number 2, and a log of 3: put c, 4: put a again, 5: delete b,
 * 6: put orders 1, then half a record. */
static void write_v1_store(void) {
  v1_append(path(SNAP), REC_PUT, "users", "a", "{\"n\":\"a\"}", 0);
  v1_append(path(SNAP), REC_PUT, "users", "b", "{\"n\":\"b\"}", 0);
  v1_end(path(SNAP), 2, 2);
  v1_append(path(LOG), REC_PUT, "users", "c", "{\"n\":\"c\"}", 3);
  v1_append(path(LOG), REC_PUT, "users", "a", "{\"n\":\"A\"}", 4);
  v1_append(path(LOG), REC_DEL, "users", "b", NULL, 5);
  v1_append(path(LOG), REC_PUT, "orders", "1", "{}", 6);
  append_bytes(path(LOG), "\xa5\x01", 2);
}

static void check_v1_content(store_t *s) {
  ASSERT_STR_EQ(colls(s), "users:2,orders:1");
  ASSERT_STR_EQ(list(s, "users", 0, 0), "a={\"n\":\"A\"},c={\"n\":\"c\"}");
  ASSERT_STR_EQ(get(s, "orders", "1"), "{}");
}

TEST(test_migrates_format_1) {
  const char *dir = mkdir_tmp();
  write_v1_store();
  files_t v1 = files_now();
  store_t *s;
  const char *logged = open_logged(dir, &s);
  ASSERT_CONTAINS(logged, "not migrating a torn record at offset");
  ASSERT_CONTAINS(logged, "migrated from format version 1 to 2 (3 documents, up to sequence "
                          "number 6); the old files are kept as store.log.v1 and "
                          "store.snapshot.v1");
  check_v1_content(s);
  put(s, "users", "d", "{}");
  store_close(s);
  /* The old files, byte for byte, under their new names. */
  long n;
  char *b = slurp(path("store.log.v1"), &n);
  ASSERT_EQ(n, v1.loglen);
  ASSERT(memcmp(b, v1.log, (size_t)n) == 0);
  free(b);
  b = slurp(path("store.snapshot.v1"), &n);
  ASSERT_EQ(n, v1.snaplen);
  ASSERT(memcmp(b, v1.snap, (size_t)n) == 0);
  free(b);
  free(v1.log);
  free(v1.snap);
  /* The new ones are format 2, and the next open does not migrate again. */
  b = slurp(path(LOG), &n);
  ASSERT(n >= FHDR && memcmp(b, "h1mock-L", 8) == 0);
  free(b);
  logged = open_logged(dir, &s);
  ASSERT_STR_EQ(logged, "");
  ASSERT_STR_EQ(list(s, "users", 0, 0), "a={\"n\":\"A\"},c={\"n\":\"c\"},d={}");
  store_close(s);
  cleanup_dirs();
}

/* A crash part way through a migration: the .v1 files are there, the new
 * log is not; the next open starts over from the .v1 files. */
TEST(test_migration_resumes_after_a_crash) {
  const char *dir = mkdir_tmp();
  write_v1_store();
  store_close(open_at(dir, 0));
  ASSERT_EQ(unlink(path(LOG)), 0);
  append_bytes(path(TMP), "half a snapshot", 15);
  store_t *s;
  const char *logged = open_logged(dir, &s);
  ASSERT_CONTAINS(logged, "migrated from format version 1 to 2");
  check_v1_content(s);
  store_close(s);
  /* A format-1 log with an empty log and no snapshot: an empty store. */
  mkdir_tmp();
  append_bytes(path(LOG), "", 0);
  logged = open_logged(tmpdir, &s);
  ASSERT_CONTAINS(logged, "migrated from format version 1 to 2 (0 documents");
  ASSERT_STR_EQ(colls(s), "");
  store_close(s);
  cleanup_dirs();
}

TEST(test_migration_refuses_damage_and_an_old_v1) {
  const char *dir = mkdir_tmp();
  write_v1_store();
  flip_byte(path(LOG), HDR + 3 + 2); /* the first record's value */
  expect_refused(dir, -EIO, "store.log is damaged at offset 0 (a sound record follows at");
  flip_byte(path(LOG), HDR + 3 + 2);
  append_bytes(path("store.log.v1"), "x", 1);
  expect_refused(dir, -EEXIST, "store.log.v1 from an earlier migration is in the way");
  cleanup_dirs();
}

/* ---- --repair-store ---- */

static char *find_copy(const char *prefix) {
  static char name[256];
  DIR *d = opendir(tmpdir);
  struct dirent *e;
  name[0] = '\0';
  while (d && (e = readdir(d)) != NULL)
    if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
      snprintf(name, sizeof name, "%.255s", e->d_name);
  if (d)
    closedir(d);
  return name[0] ? name : NULL;
}

TEST(test_repair_keeps_every_record_that_verifies) {
  const char *dir = mkdir_tmp();
  write_abc(dir);
  static const char zeros[HDR + 3];
  write_at(path(LOG), FHDR + (HDR + 3), zeros, sizeof zeros); /* b zeroed */
  files_t damaged = files_now();
  expect_refused(dir, -EIO, "damaged at offset 79");
  store_repair_t r;
  char err[512] = "";
  ASSERT_EQ(store_repair(dir, &r, err, sizeof err), 0);
  ASSERT_EQ(r.kept, 2);
  ASSERT_EQ(r.regions, 1);
  ASSERT_EQ(r.dropped_bytes, HDR + 3);
  ASSERT_EQ(r.documents, 2);
  ASSERT_CONTAINS(r.saved[0], "store.log.damaged-");
  ASSERT_STR_EQ(r.saved[1], "");
  /* The copy is the log as it was, byte for byte. */
  long n;
  char *copy = slurp(path(r.saved[0]), &n);
  ASSERT_EQ(n, damaged.loglen);
  ASSERT(memcmp(copy, damaged.log, (size_t)n) == 0);
  free(copy);
  free(damaged.log);
  free(damaged.snap);
  store_t *s = open_at(dir, 0);
  ASSERT_STR_EQ(list(s, "c", 0, 0), "a=1,c=3");
  ASSERT_EQ(store_seq(s), 0); /* sequence numbers start clean */
  put(s, "c", "d", "4");
  store_close(s);
  s = open_at(dir, 0);
  ASSERT_STR_EQ(list(s, "c", 0, 0), "a=1,c=3,d=4");
  store_close(s);
  cleanup_dirs();
}

TEST(test_repair_takes_the_snapshot_then_the_log_after_it) {
  const char *dir = mkdir_tmp();
  write_abc(dir);
  store_close(open_at(dir, 0)); /* snapshot a, b, c as of 3 */
  store_t *s = open_at(dir, 0);
  put(s, "c", "d", "4");
  del(s, "c", "a");
  put(s, "c", "e", "5");
  store_close(s);
  /* Damage the snapshot's first document and the log's header. */
  flip_byte(path(SNAP), FHDR + HDR + 2);
  flip_byte(path(LOG), 20);
  expect_refused(dir, -EIO, "its header is damaged");
  store_repair_t r;
  char err[512] = "";
  ASSERT_EQ(store_repair(dir, &r, err, sizeof err), 0);
  ASSERT_EQ(r.kept, 2 + 3); /* b, c; then 4, 5, 6 */
  ASSERT_EQ(r.regions, 2);
  ASSERT_EQ(r.dropped_bytes, (HDR + 3) + FHDR);
  ASSERT(find_copy("store.snapshot.damaged-") != NULL);
  ASSERT(find_copy("store.log.damaged-") != NULL);
  s = open_at(dir, 0);
  ASSERT_STR_EQ(list(s, "c", 0, 0), "b=2,c=3,d=4,e=5");
  store_close(s);
  cleanup_dirs();
}

TEST(test_repair_of_a_zeroed_log_and_of_nothing) {
  const char *dir = mkdir_tmp();
  write_abc(dir);
  static char zeros[ABC];
  write_at(path(LOG), 0, zeros, sizeof zeros);
  store_repair_t r;
  char err[512] = "";
  ASSERT_EQ(store_repair(dir, &r, err, sizeof err), 0);
  ASSERT_EQ(r.kept, 0);
  ASSERT_EQ(r.dropped_bytes, ABC);
  ASSERT_EQ(r.documents, 0);
  store_close(open_at(dir, 0));
  mkdir_tmp();
  ASSERT_EQ(store_repair(tmpdir, &r, err, sizeof err), -ENOENT);
  ASSERT_CONTAINS(err, "neither store.log nor store.snapshot is there: nothing to repair");
  store_t *s = open_at(tmpdir, 0); /* in use */
  ASSERT_EQ(store_repair(tmpdir, &r, err, sizeof err), -EBUSY);
  ASSERT_CONTAINS(err, "in use");
  store_close(s);
  cleanup_dirs();
}

UNIT_MAIN(test_torn_tail_truncated, test_torn_tail_payload_zeroed, test_torn_tail_garbage,
          test_tail_longer_than_a_batch, test_corrupt_middle, test_zeroed_region_in_the_middle,
          test_zeroed_whole_log, test_unknown_version, test_snapshot_damaged,
          test_snapshot_does_not_match_its_log, test_log_or_snapshot_link_refused,
          test_log_that_is_not_a_file_refused, test_crash_after_snapshot_before_new_log,
          test_crash_before_rename, test_log_ends_before_its_snapshot, test_migrates_format_1,
          test_migration_resumes_after_a_crash, test_migration_refuses_damage_and_an_old_v1,
          test_repair_keeps_every_record_that_verifies,
          test_repair_takes_the_snapshot_then_the_log_after_it,
          test_repair_of_a_zeroed_log_and_of_nothing)
