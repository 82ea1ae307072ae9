/* safedir.h - directories and files that another user cannot redirect.
 *
 * h1mock writes files that it later serves or replays (posted provisions,
 * the store's snapshot). A directory someone else controls, or a symbolic
 * link planted at the name of a file about to be written, would let that
 * someone choose what h1mock serves or which file it overwrites.
 */
#ifndef H1MOCK_SAFEDIR_H
#define H1MOCK_SAFEDIR_H

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

/* Creates `name` in the directory `dfd` (named `dir` in messages) for reading and writing, with
 * O_CREAT | O_EXCL | O_NOFOLLOW, so that the file written is always a new one of ours. What is
 * already there (a temp file left by a crash, or a planted link) is removed first (unlinking a
 * link never touches its target; a link is told to `lg`) and the creation tried once more. Returns
 * the descriptor, or -errno (-EEXIST when something was put back in between). Thread-safe. */
int safedir_create(int dfd, const char *dir, const char *name, mode_t mode, const struct log *lg);

#endif
