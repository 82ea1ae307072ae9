/* test_safedir.c - the private state directory (created 0700, refused when
 * a link, another user's, or writable by others) and files created in a
 * directory without following what is planted at their name. */
#include "safedir.h"
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>

static char base[64];
static char err[1024];

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(p);
}

/* A fresh folder for this test (each runs in its own process), removed at
 * the end by done(). */
static void fresh(void) {
  snprintf(base, sizeof base, "/tmp/h1mock-safedir-XXXXXX");
  ASSERT(mkdtemp(base) != NULL);
  umask(022);
}

static void done(void) { nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

static const char *at(const char *name) {
  static char p[4][256];
  static int k;
  k = (k + 1) % 4;
  snprintf(p[k], sizeof p[k], "%s/%s", base, name);
  return p[k];
}

static unsigned mode_of(const char *p) {
  struct stat st;
  ASSERT_EQ(lstat(p, &st), 0);
  return (unsigned)(st.st_mode & 07777);
}

static void write_file(const char *p, const char *text) {
  FILE *f = fopen(p, "w");
  ASSERT(f != NULL);
  fputs(text, f);
  ASSERT_EQ(fclose(f), 0);
}

static const char *read_file(const char *p) {
  static char b[256];
  FILE *f = fopen(p, "r");
  ASSERT(f != NULL);
  size_t n = fread(b, 1, sizeof b - 1, f);
  b[n] = '\0';
  fclose(f);
  return b;
}

TEST(creates_the_directory_0700_and_its_parents_0755) {
  fresh();
  int fd = safedir_open(at("a/b/state"), err, sizeof err);
  ASSERT(fd >= 0);
  close(fd);
  ASSERT_EQ(mode_of(at("a/b/state")), 0700);
  ASSERT_EQ(mode_of(at("a")), 0755);
  ASSERT_EQ(mode_of(at("a/b")), 0755);
  /* Opened again as it is now; a trailing slash changes nothing. */
  fd = safedir_open(at("a/b/state/"), err, sizeof err);
  ASSERT(fd >= 0);
  close(fd);
  /* One of ours that is not writable by others is fine whatever its mode. */
  ASSERT_EQ(chmod(at("a/b/state"), 0755), 0);
  fd = safedir_open(at("a/b/state"), err, sizeof err);
  ASSERT(fd >= 0);
  close(fd);
  done();
}

TEST(refuses_a_link_even_with_a_trailing_slash) {
  fresh();
  ASSERT_EQ(mkdir(at("real"), 0700), 0);
  ASSERT_EQ(symlink(at("real"), at("state")), 0);
  ASSERT_EQ(safedir_open(at("state"), err, sizeof err), -ELOOP);
  ASSERT_CONTAINS(err, "the state directory ");
  ASSERT_CONTAINS(err, "/state is a symbolic link: refused");
  ASSERT_EQ(safedir_open(at("state/"), err, sizeof err), -ELOOP);
  /* A dangling link is not replaced by a directory made through it. */
  ASSERT_EQ(symlink(at("nowhere"), at("dangling")), 0);
  ASSERT_EQ(safedir_open(at("dangling"), err, sizeof err), -ELOOP);
  ASSERT_EQ(access(at("nowhere"), F_OK), -1);
  done();
}

TEST(refuses_a_directory_others_may_write_to) {
  fresh();
  ASSERT_EQ(mkdir(at("state"), 0700), 0);
  ASSERT_EQ(chmod(at("state"), 0770), 0);
  ASSERT_EQ(safedir_open(at("state"), err, sizeof err), -EPERM);
  ASSERT_CONTAINS(err, "/state is writable by its group (mode 0770): refused");
  ASSERT_EQ(chmod(at("state"), 01777), 0);
  ASSERT_EQ(safedir_open(at("state"), err, sizeof err), -EPERM);
  ASSERT_CONTAINS(err, "is writable by every user (mode 1777)");
  ASSERT_EQ(mode_of(at("state")), 01777); /* refused, not repaired */
  done();
}

TEST(refuses_another_users_directory) {
  if (geteuid() != 0) {
    printf("# skipped: making a directory of another user needs root\n");
    return;
  }
  fresh();
  ASSERT_EQ(mkdir(at("state"), 0700), 0);
  ASSERT_EQ(chown(at("state"), 65534, 65534), 0);
  ASSERT_EQ(safedir_open(at("state"), err, sizeof err), -EPERM);
  ASSERT_CONTAINS(err, "/state belongs to uid 65534, not to this user (uid 0)");
  done();
}

TEST(refuses_a_file_and_says_why_it_cannot_create) {
  fresh();
  write_file(at("file"), "x");
  ASSERT_EQ(safedir_open(at("file"), err, sizeof err), -ENOTDIR);
  ASSERT_CONTAINS(err, "cannot open the state directory ");
  ASSERT_EQ(safedir_open(at("file/sub"), err, sizeof err), -ENOTDIR);
  ASSERT_EQ(safedir_open("", err, sizeof err), -EINVAL);
  done();
}

TEST(create_never_writes_through_a_planted_link) {
  fresh();
  write_file(at("victim"), "precious");
  ASSERT_EQ(symlink(at("victim"), at("tmp")), 0);
  int dfd = open(base, O_RDONLY | O_DIRECTORY);
  ASSERT(dfd >= 0);
  int fd = safedir_create(dfd, base, "tmp", 0644, NULL);
  ASSERT(fd >= 0);
  ASSERT_EQ(write(fd, "mine", 4), 4);
  close(fd);
  ASSERT_STR_EQ(read_file(at("victim")), "precious");
  ASSERT_STR_EQ(read_file(at("tmp")), "mine");
  ASSERT_EQ(mode_of(at("tmp")) & 0777, 0644);
  /* A file left there (a crash) is replaced by a new one, not truncated:
   * a hard link to it elsewhere keeps its bytes. */
  ASSERT_EQ(link(at("tmp"), at("hard")), 0);
  fd = safedir_create(dfd, base, "tmp", 0600, NULL);
  ASSERT(fd >= 0);
  close(fd);
  ASSERT_STR_EQ(read_file(at("hard")), "mine");
  ASSERT_STR_EQ(read_file(at("tmp")), "");
  /* A directory in the way is an error, and stays. */
  ASSERT_EQ(mkdir(at("d"), 0700), 0);
  ASSERT_EQ(safedir_create(dfd, base, "d", 0644, NULL), -EISDIR);
  ASSERT_EQ(mode_of(at("d")), 0700);
  close(dfd);
  done();
}

/* The one mkdir -p (the store's directory and the state directory): the
 * last directory gets the mode asked for, its parents 0755, what exists is
 * kept, trailing slashes name the same directory, "" is refused. */
TEST(mkdirs_makes_the_missing_parents_and_the_last_with_its_mode) {
  fresh();
  ASSERT_EQ(safedir_mkdirs(at("a/b/c"), 0700, true), 0);
  ASSERT_EQ(mode_of(at("a")), 0755);
  ASSERT_EQ(mode_of(at("a/b")), 0755);
  ASSERT_EQ(mode_of(at("a/b/c")), 0700);
  ASSERT_EQ(safedir_mkdirs(at("a/b/c"), 0755, false), 0); /* exists: kept as it is */
  ASSERT_EQ(mode_of(at("a/b/c")), 0700);
  ASSERT_EQ(safedir_mkdirs(at("a/d//"), 0700, false), 0);
  ASSERT_EQ(mode_of(at("a/d")), 0700);
  write_file(at("f"), "x");
  ASSERT_EQ(safedir_mkdirs(at("f/g"), 0755, true), -ENOTDIR);
  ASSERT_EQ(safedir_mkdirs("", 0755, true), -EINVAL);
  done();
}

UNIT_MAIN(mkdirs_makes_the_missing_parents_and_the_last_with_its_mode,
          creates_the_directory_0700_and_its_parents_0755,
          refuses_a_link_even_with_a_trailing_slash, refuses_a_directory_others_may_write_to,
          refuses_another_users_directory, refuses_a_file_and_says_why_it_cannot_create,
          create_never_writes_through_a_planted_link)
