/* store_faults.c - an LD_PRELOAD shim for the store's fault tests
 * (tests/integration/test_store_durability.py): makes writes and syncs of
 * files under one directory fail, with an error the test switches on and
 * off while h1mock runs. Nothing of it is in h1mock itself.
 *
 *   STORE_FAULTS_DIR=DIR         files whose path (/proc/self/fd/N) is under DIR
 *   STORE_FAULTS_CONTROL=CTL     a directory the test writes to:
 *     CTL/EIO exists     ->  write, pwrite, writev, pwritev, fsync and
 *                            fdatasync of those files fail with EIO
 *     CTL/ENOSPC exists  ->  the writes fail with ENOSPC, as on a full
 *                            disk; syncs and ftruncate work, since cutting
 *                            a log back frees space
 *
 * Built without _FILE_OFFSET_BITS=64 so that pwrite and pwrite64 (what a
 * large-file build calls) are two functions here, each wrapping its own.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

/* The error to inject for fd now, or 0; `sync`: for fsync, fdatasync. */
static int fault_for(int fd, int sync) {
  const char *dir = getenv("STORE_FAULTS_DIR"), *ctl = getenv("STORE_FAULTS_CONTROL");
  if (dir == NULL || ctl == NULL || fd < 0)
    return 0;
  char link[64], path[PATH_MAX], flag[PATH_MAX];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof path - 1);
  if (n <= 0)
    return 0;
  path[n] = '\0';
  size_t len = strlen(dir);
  if (strncmp(path, dir, len) != 0 || (path[len] != '/' && path[len] != '\0'))
    return 0;
  struct stat st;
  snprintf(flag, sizeof flag, "%s/EIO", ctl);
  if (stat(flag, &st) == 0)
    return EIO;
  snprintf(flag, sizeof flag, "%s/ENOSPC", ctl);
  if (!sync && stat(flag, &st) == 0)
    return ENOSPC;
  return 0;
}

static void *next(const char *name) { return dlsym(RTLD_NEXT, name); }

#define FAIL_IF_ASKED(fd, sync, fail)                                                             \
  do {                                                                                            \
    int e_ = fault_for(fd, sync);                                                                 \
    if (e_) {                                                                                     \
      errno = e_;                                                                                 \
      return fail;                                                                                \
    }                                                                                             \
  } while (0)

ssize_t write(int fd, const void *b, size_t n) {
  static ssize_t (*real)(int, const void *, size_t);
  FAIL_IF_ASKED(fd, 0, -1);
  if (real == NULL)
    real = next("write");
  return real(fd, b, n);
}

ssize_t pwrite(int fd, const void *b, size_t n, off_t off) {
  static ssize_t (*real)(int, const void *, size_t, off_t);
  FAIL_IF_ASKED(fd, 0, -1);
  if (real == NULL)
    real = next("pwrite");
  return real(fd, b, n, off);
}

ssize_t pwrite64(int fd, const void *b, size_t n, off64_t off) {
  static ssize_t (*real)(int, const void *, size_t, off64_t);
  FAIL_IF_ASKED(fd, 0, -1);
  if (real == NULL)
    real = next("pwrite64");
  return real(fd, b, n, off);
}

ssize_t writev(int fd, const struct iovec *v, int cnt) {
  static ssize_t (*real)(int, const struct iovec *, int);
  FAIL_IF_ASKED(fd, 0, -1);
  if (real == NULL)
    real = next("writev");
  return real(fd, v, cnt);
}

ssize_t pwritev(int fd, const struct iovec *v, int cnt, off_t off) {
  static ssize_t (*real)(int, const struct iovec *, int, off_t);
  FAIL_IF_ASKED(fd, 0, -1);
  if (real == NULL)
    real = next("pwritev");
  return real(fd, v, cnt, off);
}

ssize_t pwritev64(int fd, const struct iovec *v, int cnt, off64_t off) {
  static ssize_t (*real)(int, const struct iovec *, int, off64_t);
  FAIL_IF_ASKED(fd, 0, -1);
  if (real == NULL)
    real = next("pwritev64");
  return real(fd, v, cnt, off);
}

int fsync(int fd) {
  static int (*real)(int);
  FAIL_IF_ASKED(fd, 1, -1);
  if (real == NULL)
    real = next("fsync");
  return real(fd);
}

int fdatasync(int fd) {
  static int (*real)(int);
  FAIL_IF_ASKED(fd, 1, -1);
  if (real == NULL)
    real = next("fdatasync");
  return real(fd);
}
