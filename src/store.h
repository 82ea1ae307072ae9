/* store.h - collections of documents keyed by id, in memory, optionally durable.
 *
 * A collection is a named set of documents; a document is an id and a value,
 * both opaque bytes (the Lua layer stores JSON text; the store knows nothing
 * of Lua or JSON). Documents keep their insertion order; replacing one keeps
 * its place. Get, put and delete by id are O(1) on average; a collection is
 * created by its first put and disappears when its last document goes.
 *
 * With a data directory every write is appended to a log and fdatasync'd
 * before the call returns, so once store_put/delete/clear returned 0 the
 * caller may acknowledge the write: it survives kill -9 and a power cut. The
 * log is compacted into a snapshot at open and whenever it grows past
 * compact_bytes. A torn last record (a crash in the middle of a write that
 * was never acknowledged) is dropped at open with one warning; any other
 * damage makes store_open fail with -EIO rather than lose later writes.
 * A durable write blocks its caller for one fdatasync, and the write that
 * takes the log past compact_bytes also for a compaction (a full snapshot).
 * One store at a time holds a data directory (an flock on its log).
 *
 * Limits: collection names and ids 1..STORE_MAX_KEY bytes, values
 * 0..STORE_MAX_VALUE bytes; beyond them a write is -EINVAL.
 *
 * The store is not thread-safe: one thread (the event loop) calls it, or the
 * caller serialises the calls.
 */
#ifndef H1MOCK_STORE_H
#define H1MOCK_STORE_H

#include <stddef.h>

#define STORE_MAX_KEY 1024
#define STORE_MAX_VALUE ((size_t)64 << 20)

typedef struct store store_t;
struct log;

typedef struct store_opts {
  const char *data_dir;  /* NULL: memory only; else persistent (created if missing) */
  size_t compact_bytes;  /* compact when the log grows past this (0: 64 MiB) */
  const struct log *log; /* where trouble with the files is told (NULL: stderr) */
} store_opts_t;

/* Opens a store. With o->data_dir, creates the directory if missing, takes
 * an exclusive lock on it, loads the snapshot, replays the log and compacts.
 * Returns 0 and sets *out, or a negative errno with a one-line reason in
 * err: -EBUSY (another process or store holds the directory), -EIO (a
 * damaged snapshot or log; the message names the file and the offset), the
 * errno of a failing system call, or -ENOMEM. Nothing is left open on error. */
int store_open(const store_opts_t *o, store_t **out, char *err, size_t errlen);

/* Frees every document and closes the files. NULL is a no-op. */
void store_close(store_t *s);

/* Inserts a document, or replaces the value of an existing one in place (it
 * keeps its position in insertion order). The bytes are copied. Returns 0,
 * -EINVAL (empty or too long collection or id, value too large), -ENOMEM, or
 * -EIO (the log could not be written; logged). On error the store is
 * unchanged. Pointers from store_get to this document become invalid. */
int store_put(store_t *s, const char *coll, size_t clen, const char *id, size_t idlen,
              const void *val, size_t vlen);

/* Finds a document: 0 with *val, *vlen set, or -ENOENT (also for arguments
 * no document can have). The value is followed by a NUL byte that *vlen does
 * not count. The pointer stays valid until this document is written or
 * deleted (its collection cleared, or the store closed); other writes do not
 * move it. */
int store_get(const store_t *s, const char *coll, size_t clen, const char *id, size_t idlen,
              const void **val, size_t *vlen);

/* Removes a document: 0, -ENOENT (also for arguments no document can have),
 * or -EIO (logged; the document stays). The collection goes with its last
 * document. */
int store_delete(store_t *s, const char *coll, size_t clen, const char *id, size_t idlen);

/* Documents in a collection; 0 when it does not exist. */
size_t store_count(const store_t *s, const char *coll, size_t clen);

/* Called per document; id and value are each followed by a NUL byte not
 * counted in their length. A non-zero return stops the walk. The callback
 * must not write to the store. */
typedef int (*store_each_fn)(void *arg, const char *id, size_t idlen, const void *val,
                             size_t vlen);

/* Calls fn for the documents of a collection in insertion order, skipping
 * the first `offset` ones, at most `limit` of them (0: no limit). Returns 0,
 * or the first non-zero value fn returned. Skipping costs O(min(offset,
 * count - offset)). An unknown collection is empty. */
int store_list(const store_t *s, const char *coll, size_t clen, size_t offset, size_t limit,
               store_each_fn fn, void *arg);

/* Calls fn for each collection in creation order with its name (followed by
 * a NUL byte not counted in len) and document count. Returns 0 or the first
 * non-zero value fn returned. fn must not write to the store. */
int store_collections(const store_t *s,
                      int (*fn)(void *arg, const char *name, size_t len, size_t count), void *arg);

/* Removes every document of a collection, or of every collection when coll
 * is NULL. Clearing what does not exist succeeds and writes nothing. Returns
 * 0, -EINVAL (coll not NULL with clen 0 or too long), -ENOMEM or -EIO (logged;
 * nothing is removed). */
int store_clear(store_t *s, const char *coll, size_t clen);

/* Writes a random version-4 UUID (getrandom(2)) as 36 lower-case characters
 * and a NUL. */
void store_uuid(char out[37]);

#endif
