/* provision_dir.c - where provisions are: the provisions directory, the
 * state directory that stands in for it when it is read-only, and writing
 * a file into either so that no reader sees half of it. */
#include "provision_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "log.h"
#include "safedir.h"

int provision_check_state_dir(const char *dir, const char *state_dir, char *err, size_t errlen) {
  if (access(dir, W_OK) == 0)
    return 0;
  int fd = safedir_open(state_dir, err, errlen);
  if (fd < 0)
    return fd;
  close(fd);
  return 0;
}

bool provision_find_file(const provision_t *p, const char *name, char *path, size_t n,
                         bool *in_state_dir) {
  const char *dirs[2] = {p->read_only ? p->state_dir : NULL, p->dir};
  static const char *const suffixes[] = {".lua", ""};
  for (int d = 0; d < 2; d++) {
    if (dirs[d] == NULL)
      continue;
    for (int k = 0; k < 2; k++) {
      struct stat st;
      snprintf(path, n, "%s/%s%s", dirs[d], name, suffixes[k]);
      if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
        if (in_state_dir)
          *in_state_dir = d == 0;
        return true;
      }
    }
  }
  return false;
}

const char *provision_write_dir(const provision_t *p) {
  return p->read_only ? p->state_dir : p->dir;
}

/* A temp file beside the target, fsync, rename, fsync of the dir. The temp
 * file is always a new one (safedir_create): a link planted at its name is
 * never written through. */
int provision_write_file(int dfd, const char *dir, const char *name, const char *text, size_t len,
                         const log_t *lg, struct stat *st) {
  char file[PROVISION_NAME_MAX + 8];
  snprintf(file, sizeof file, "%s.lua", name);
  int rc = safedir_replace(dfd, dir, file, text, len, lg);
  if (rc)
    return rc;
  return fstatat(dfd, file, st, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
}
