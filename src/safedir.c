/* safedir.c - a private directory, and files created in one without
 * following anything planted there. */
#include "safedir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

/* Syncs the directory holding `dir`, so that a directory just made there
 * survives a power cut along with what is then written into it. */
static int sync_parent(char *dir) {
  char *slash = strrchr(dir, '/');
  const char *parent = slash == dir ? "/" : slash ? dir : ".";
  if (slash && slash != dir)
    *slash = '\0';
  int rc = 0, fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || fsync(fd) != 0)
    rc = -errno;
  if (fd >= 0)
    close(fd);
  if (slash && slash != dir)
    *slash = '/';
  return rc;
}

int safedir_mkdirs(const char *path, mode_t mode, bool durable) {
  if (*path == '\0')
    return -EINVAL;
  char *p = strdup(path);
  if (p == NULL)
    return -ENOMEM;
  int rc = 0;
  for (char *q = p + 1;; q++) {
    if (*q != '/' && *q != '\0')
      continue;
    char c = *q;
    bool last = c == '\0' || q[1 + strspn(q + 1, "/")] == '\0';
    *q = '\0';
    if (mkdir(p, last ? mode : 0755) == 0)
      rc = durable ? sync_parent(p) : 0;
    else if (errno != EEXIST)
      rc = -errno;
    *q = c;
    if (rc || c == '\0')
      break;
  }
  free(p);
  return rc;
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
    int rc = safedir_mkdirs(p, 0700, false);
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

int safedir_replace(int dfd, const char *dir, const char *name, const char *text, size_t len,
                    const log_t *lg) {
  char tmp[4200];
  if ((size_t)snprintf(tmp, sizeof tmp, ".%s.tmp-%ld", name, (long)getpid()) >= sizeof tmp)
    return -ENAMETOOLONG;
  int fd = safedir_create(dfd, dir, tmp, 0644, lg);
  if (fd < 0)
    return fd;
  int rc = 0;
  for (size_t off = 0; off < len;) {
    ssize_t n = write(fd, text + off, len - off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      rc = -errno;
      break;
    }
    off += (size_t)n;
  }
  if (rc == 0 && fsync(fd) != 0)
    rc = -errno;
  if (close(fd) != 0 && rc == 0)
    rc = -errno;
  if (rc == 0 && renameat(dfd, tmp, dfd, name) != 0)
    rc = -errno;
  if (rc) {
    unlinkat(dfd, tmp, 0);
    return rc;
  }
  fsync(dfd);
  return 0;
}
