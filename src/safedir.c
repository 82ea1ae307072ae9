/* safedir.c - a private directory, and files created in one without
 * following anything planted there. */
#include "safedir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

/* mkdir -p of the parents of `path` (only the last component is ours to
 * make private: the others may be shared, like /tmp). */
static int make_parents(char *path) {
  for (char *p = path + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    int rc = mkdir(path, 0755) != 0 && errno != EEXIST ? -errno : 0;
    *p = '/';
    if (rc)
      return rc;
  }
  return 0;
}

int safedir_open(const char *path, char *err, size_t errlen) {
  char p[4096];
  size_t n = strlen(path);
  if (n == 0 || n >= sizeof p) {
    snprintf(err, errlen, "state directory '%.200s': not a usable path", path);
    return n ? -ENAMETOOLONG : -EINVAL;
  }
  /* "dir/" would follow a link named dir: check the name itself. */
  memcpy(p, path, n + 1);
  while (n > 1 && p[n - 1] == '/')
    p[--n] = '\0';
  int fd = open(p, DIR_FLAGS);
  if (fd < 0 && errno == ENOENT) {
    int rc = make_parents(p);
    if (rc == 0 && mkdir(p, 0700) != 0 && errno != EEXIST)
      rc = -errno;
    if (rc) {
      snprintf(err, errlen, "cannot create the state directory %s: %s", p, strerror(-rc));
      return rc;
    }
    fd = open(p, DIR_FLAGS);
  }
  struct stat st;
  if (fd < 0) {
    int rc = -errno;
    if ((rc == -ELOOP || rc == -ENOTDIR) && lstat(p, &st) == 0 && S_ISLNK(st.st_mode)) {
      snprintf(err, errlen,
               "the state directory %s is a symbolic link: refused, since whoever can change "
               "the link chooses where provisions are written; give a real directory",
               p);
      return -ELOOP;
    }
    snprintf(err, errlen, "cannot open the state directory %s: %s", p, strerror(-rc));
    return rc;
  }
  const char *why = NULL;
  char reason[160];
  if (fstat(fd, &st) != 0) {
    int rc = -errno;
    close(fd);
    snprintf(err, errlen, "cannot open the state directory %s: %s", p, strerror(-rc));
    return rc;
  }
  if (st.st_uid != geteuid()) {
    snprintf(reason, sizeof reason, "belongs to uid %u, not to this user (uid %u)",
             (unsigned)st.st_uid, (unsigned)geteuid());
    why = reason;
  } else if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    snprintf(reason, sizeof reason, "is writable by %s (mode %04o)",
             st.st_mode & S_IWOTH ? "every user" : "its group", (unsigned)(st.st_mode & 07777));
    why = reason;
  }
  if (why) {
    close(fd);
    snprintf(err, errlen,
             "the state directory %s %s: refused, since whoever can write to it chooses the "
             "provisions h1mock serves; remove it, or give --state-dir a directory of your own "
             "that only you can write to",
             p, why);
    return -EPERM;
  }
  return fd;
}

int safedir_create(int dfd, const char *dir, const char *name, mode_t mode, const log_t *lg) {
  for (int tries = 0;; tries++) {
    int fd = openat(dfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd >= 0)
      return fd;
    if (errno != EEXIST || tries == 1)
      return -errno;
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
      log_warn(lg,
               "removed a symbolic link planted at %s/%s, where h1mock was about to write: "
               "files are never written through a link",
               dir, name);
    if (unlinkat(dfd, name, 0) != 0 && errno != ENOENT)
      return -errno;
  }
}
