/* config_secret.c - the admin token: checked, read from its file, and
 * scrubbed from the environment. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "config_int.h"
#include "log.h"

extern char **environ;

#define STR(x) #x
#define XSTR(x) STR(x)
#define TOKEN_MAX_TEXT XSTR(CONFIG_TOKEN_MAX)

/* Why `t` cannot be a bearer token, or NULL when it can be one. The reason
 * never quotes the token. */
const char *config_token_problem(const char *t, size_t len) {
  if (len == 0)
    return "the value is empty";
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)t[i] < 0x21 || (unsigned char)t[i] > 0x7e)
      return "the token must be printable ASCII without spaces (a header value carries it)";
  if (len > CONFIG_TOKEN_MAX)
    return "the token is longer than " TOKEN_MAX_TEXT " characters";
  return NULL;
}

int config_token_from_text(const char *text, size_t len, char *out, const char **why) {
  const char *nl = memchr(text, '\n', len);
  size_t n = nl ? (size_t)(nl - text) : len;
  if (n > 0 && text[n - 1] == '\r')
    n--;
  *why = n == 0 ? "its first line is empty" : config_token_problem(text, n);
  if (*why)
    return -EINVAL;
  memcpy(out, text, n);
  out[n] = '\0';
  return 0;
}

/* Reads the token of `path` into out[CONFIG_TOKEN_MAX + 1]. */
static int read_token_file(const char *path, char *out, const log_t *lg, char *err,
                           size_t errlen) {
  char text[CONFIG_TOKEN_MAX + 2]; /* a token, CR, LF: enough to tell one that is too long */
  size_t len = 0;
  struct stat st;
  int rc = 0;
  /* O_NONBLOCK: a FIFO put there must be refused, not waited on. */
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0 || fstat(fd, &st) != 0) {
    rc = -errno;
    snprintf(err, errlen, "h1mock: admin token file '%s': cannot read it: %s", path,
             strerror(errno));
    goto out;
  }
  if (!S_ISREG(st.st_mode)) {
    rc = -EINVAL;
    snprintf(err, errlen, "h1mock: admin token file '%s': not a regular file", path);
    goto out;
  }
  while (len < sizeof text) {
    ssize_t n = read(fd, text + len, sizeof text - len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      rc = -errno;
      snprintf(err, errlen, "h1mock: admin token file '%s': cannot read it: %s", path,
               strerror(errno));
      goto out;
    }
    if (n == 0)
      break;
    len += (size_t)n;
  }
  const char *why;
  if ((rc = config_token_from_text(text, len, out, &why))) {
    snprintf(err, errlen, "h1mock: admin token file '%s': %s", path, why);
    goto out;
  }
  /* Not refused: Docker and Kubernetes mount secrets 0444/0644 inside a
   * container, where no other user is. */
  if (st.st_mode & S_IROTH)
    log_warn(lg,
             "admin token file %s can be read by every user (mode %04o): on a shared host, "
             "chmod o-r it",
             path, (unsigned)(st.st_mode & 07777));
out:
  explicit_bzero(text, sizeof text);
  if (fd >= 0)
    close(fd);
  return rc;
}

/* Removes every NAME=... entry from the environment and zeroes its bytes:
 * unsetenv alone leaves them in the memory that /proc/<pid>/environ shows. */
static void scrub_env(const char *name) {
  size_t n = strlen(name), nfound = 0;
  char *found[16];
  for (char **e = environ; e && *e && nfound < sizeof found / sizeof found[0]; e++)
    if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
      found[nfound++] = *e;
  unsetenv(name); /* first: it finds the entries by their name */
  for (size_t i = 0; i < nfound; i++)
    explicit_bzero(found[i], strlen(found[i]));
}

int config_take_secrets(config_t *c, const log_t *lg, char *err, size_t errlen) {
  int rc = 0;
  if (c->admin_token_file && !c->check && !c->repair_store) {
    rc = read_token_file(c->admin_token_file, c->token_buf, lg, err, errlen);
    c->admin_token = rc == 0 ? c->token_buf : NULL;
  } else if (c->admin_token && c->admin_token != c->token_buf) {
    /* It may point into the environment, about to be zeroed. */
    memmove(c->token_buf, c->admin_token, strlen(c->admin_token) + 1);
    c->admin_token = c->token_buf;
  }
  scrub_env("H1MOCK_ADMIN_TOKEN");
  return rc;
}
