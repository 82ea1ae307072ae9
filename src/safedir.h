/* safedir.h - directories and files that another user cannot redirect.
 *
 * h1mock writes files that it later serves or replays (posted provisions,
 * the store's snapshot). A directory someone else controls, or a symbolic
 * link planted at the name of a file about to be written, would let that
 * someone choose what h1mock serves or which file it overwrites.
 */
#ifndef H1MOCK_SAFEDIR_H
#define H1MOCK_SAFEDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct log;

/* Opens `path` as a private directory: when it is absent, creates it with
 * mode 0700 (its missing parents 0755, as mkdir -p would); then refuses it
 * when it is a symbolic link, belongs to another user, or is writable by
 * its group or by others. The checks are made on the opened descriptor, so
 * the directory cannot be swapped between check and use. Returns the
 * O_DIRECTORY descriptor (the caller closes it), or -errno with a sentence
 * naming the directory in err: -ELOOP (a link), -EPERM (owner or mode),
 * -ENOTDIR, or what mkdir/open said. Thread-safe. */
int safedir_open(const char *path, char *err, size_t errlen);

/* mkdir -p: makes each missing directory on `path`, the last with `mode`
 * and the others 0755 (they may be shared, like /tmp); one that exists is
 * left as it is. With `durable`, fsyncs the parent of each directory it
 * makes, so that it survives a power cut along with what is written into
 * it. 0 or -errno (-EINVAL for ""). Thread-safe. */
int safedir_mkdirs(const char *path, mode_t mode, bool durable);

/* Creates `name` in the directory `dfd` (named `dir` in messages) for reading and writing, with
 * O_CREAT | O_EXCL | O_NOFOLLOW, so that the file written is always a new one of ours. What is
 * already there (a temp file left by a crash, or a planted link) is removed first (unlinking a
 * link never touches its target; a link is told to `lg`) and the creation tried once more. Returns
 * the descriptor, or -errno (-EEXIST when something was put back in between). Thread-safe. */
int safedir_create(int dfd, const char *dir, const char *name, mode_t mode, const struct log *lg);

/* Replaces the file `name` in `dfd` by the `len` bytes of `text`, so
 * that a reader sees the old file or the new one whole: the bytes go to a
 * new temporary file ".<name>.tmp-<pid>" (safedir_create), are fsync'd,
 * and it is renamed over `name`; then the directory is fsync'd. Returns 0
 * or -errno (the temporary file is removed). Thread-safe. */
int safedir_replace(int dfd, const char *dir, const char *name, const char *text, size_t len,
                    const struct log *lg);

#endif
