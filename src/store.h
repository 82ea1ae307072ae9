/* store.h - collections of documents keyed by id, in memory, optionally durable.
 *
 * A collection is a named set of documents; a document is an id and a value,
 * both opaque bytes (the Lua layer stores JSON text; the store knows nothing
 * of Lua or JSON). Documents keep their insertion order; replacing one keeps
 * its place. Get, put and delete by id are O(1) on average (tables grow
 * and shrink a few slots per write, never all at once); a collection is
 * created by its first put and disappears when its last document goes.
 *
 * Durability (with a data directory) is a group commit. store_put, _delete
 * and _clear change memory at once and return; each write gets the next
 * sequence number (store_seq) and its record joins a queue. One writer
 * thread per store takes the whole queue as a batch, appends it to the log
 * and makes it durable with one fdatasync, while the writes that arrive
 * meanwhile form the next batch. It reports each commit to the loop through
 * a uv_async_t, and store_poll (run by it) calls the waiters of
 * store_when_durable in sequence order: whoever acknowledges a write waits
 * for it that way. Reads never wait; they see writes that are not durable
 * yet. A dedicated thread rather than libuv's pool keeps batches in log
 * order with nothing else queued between them.
 *
 * A commit that fails acknowledges nothing of its batch: every write not
 * yet durable is undone in memory, newest first, so memory holds exactly
 * what the log holds; their waiters are called with the error, and the
 * store refuses writes (store_status). After ENOSPC (or EDQUOT, EFBIG) the
 * writer truncates what it appended and tries again with a SKIP record
 * once a second; writes are taken again when that succeeds. After EIO, or
 * any other error, it writes nothing more: the store stays read-only until
 * restarted, when the log is replayed as it really is.
 *
 * The log is compacted into a snapshot at open and whenever compact_bytes
 * were appended since the last one; a compactor thread writes it from the
 * documents as they were at one sequence number while the loop goes on
 * (store_snapshot.c), and the writer puts it in place between batches. The
 * files, their format and what open refuses are described in store_open.c
 * and store_record.c. One store at a time holds a data directory (an flock
 * on it).
 *
 * Limits: collection names and ids 1..STORE_MAX_KEY bytes, values
 * 0..STORE_MAX_VALUE bytes; beyond them a write is -EINVAL.
 *
 * Threads: only the loop thread calls the store. A durable store has one
 * writer thread (the log, and installing snapshots), a compactor thread
 * while a snapshot is written (it only reads documents, through the frozen
 * view), and short-lived threads that fault in a large table's next array
 * or free what a snapshot kept; none of them makes the loop wait for it
 * (store_sync and store_close wait, by design).
 */
#ifndef H1MOCK_STORE_H
#define H1MOCK_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#define STORE_MAX_KEY 1024
#define STORE_MAX_VALUE ((size_t)64 << 20)

typedef struct store store_t;
struct log;

typedef struct store_opts {
  const char *data_dir;  /* NULL: memory only; else persistent (created if missing) */
  size_t compact_bytes;  /* compact when the log grows past this (0: 64 MiB) */
  const struct log *log; /* where trouble with the files is told (NULL: stderr) */
  uv_loop_t *loop;       /* where commits are reported (waiters called); NULL: only
                            store_poll and store_sync report them */
} store_opts_t;

/* Opens a store. With o->data_dir, creates the directory if missing, takes
 * an exclusive lock on it, loads the snapshot, replays the log, compacts
 * and starts the writer thread. Returns 0 and sets *out, or a negative
 * errno with a one-line reason in err: -EBUSY (another process or store
 * holds the directory), -EIO (files that are not one consistent history;
 * the message names the file and the offset, and neither file was
 * changed), -EEXIST (a format-1 store whose migration would overwrite an
 * earlier one's store.log.v1), the errno of a failing system call, or
 * -ENOMEM. Nothing is left open on error. */
int store_open(const store_opts_t *o, store_t **out, char *err, size_t errlen);

/* Makes every write durable (blocking) or fails trying, stops the writer,
 * frees every document and closes the files. Waiters still registered are
 * dropped without a call. With a loop, its handle is closed: run the loop
 * once more before uv_loop_close; or close every handle of the loop
 * (uv_walk), run it, then call store_close. NULL is a no-op. */
void store_close(store_t *s);

/* The sequence number of the last write made (0: none yet). A memory-only
 * store numbers its writes too. */
uint64_t store_seq(const store_t *s);

typedef struct store_waiter store_waiter_t;

/* status: 0 (durable), or the negative errno of the failed commit that
 * undid the write. */
typedef void (*store_durable_fn)(store_waiter_t *w, int status);

/* Owned by the caller (embed it); the fields are the store's. */
struct store_waiter {
  uint64_t seq;
  store_durable_fn fn;
  store_waiter_t *prev, *next;
  bool queued;
};

/* Asks for fn(w, status) once every write up to `seq` is durable, or once
 * the commit of one of them failed. Returns 0 when they are durable already
 * (fn is not called), a negative errno when one of them was undone by a
 * failed commit (fn is not called), or 1: fn will be called, on the loop
 * thread, in sequence order, unless store_waiter_cancel comes first. A
 * memory-only store answers 0. */
int store_when_durable(store_t *s, uint64_t seq, store_waiter_t *w, store_durable_fn fn);
void store_waiter_cancel(store_t *s, store_waiter_t *w);

/* Blocks until every write made so far is durable or its commit failed:
 * 0 or the negative errno (then store_poll has run: waiters were called).
 * For the start, before serving, and for tests. */
int store_sync(store_t *s);

/* Takes in what the writer reported: releases what is durable, calls the
 * waiters, undoes a failed batch. The loop's handle runs it; without a
 * loop, call it (or store_sync). */
void store_poll(store_t *s);

/* How many commits (each one fdatasync of the log; a retry after a full
 * disk counts too, compactions do not) the store made since it opened, and
 * how many writes they made durable (their ratio is the mean batch); 0 and
 * 0 for a memory-only store. Any thread. */
void store_commit_counts(const store_t *s, uint64_t *syncs, uint64_t *writes);

/* 0 when the store takes writes; else -ENOSPC (the disk was full: retrying)
 * or -EIO (a commit failed: read-only until restarted), with a sentence in
 * `reason`. */
int store_status(const store_t *s, char *reason, size_t len);

/* Inserts a document, or replaces the value of an existing one in place (it
 * keeps its position in insertion order). The bytes are copied. Returns 0,
 * -EINVAL (empty or too long collection or id, value too large), -ENOMEM, or
 * the store_status error when the store refuses writes. On error the store
 * is unchanged. Pointers from store_get to this document become invalid. */
int store_put(store_t *s, const char *coll, size_t clen, const char *id, size_t idlen,
              const void *val, size_t vlen);

/* Finds a document: 0 with *val, *vlen set, or -ENOENT (also for arguments
 * no document can have). The value is followed by a NUL byte that *vlen does
 * not count. The pointer stays valid until this document is written or
 * deleted (its collection cleared, a failed commit undoes its write, or the
 * store closed); other writes do not move it. */
int store_get(const store_t *s, const char *coll, size_t clen, const char *id, size_t idlen,
              const void **val, size_t *vlen);

/* Removes a document: 0, -ENOENT (also for arguments no document can have),
 * -ENOMEM, or the store_status error (the document stays). The collection
 * goes with its last document. */
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
 * 0, -EINVAL (coll not NULL with clen 0 or too long), -ENOMEM or the
 * store_status error (nothing is removed). */
int store_clear(store_t *s, const char *coll, size_t clen);

/* What store_repair did. */
typedef struct store_repair {
  uint64_t kept;          /* records that verified and were kept */
  uint64_t regions;       /* damaged stretches skipped */
  uint64_t dropped_bytes; /* their bytes */
  uint64_t documents;     /* in the repaired store */
  char saved[2][80];      /* names of the copies of store.log, store.snapshot ("": none) */
} store_repair_t;

/* Repairs the data directory `dir`, which no store may hold: copies
 * store.log and store.snapshot aside (*.damaged-<UTC time>), keeps every
 * record of them that verifies (the log's after what the snapshot covers)
 * and writes the result as a fresh snapshot and an empty log. Returns 0
 * with *r filled, or a negative errno with a sentence in err (-EBUSY: in
 * use; -ENOENT: neither file is there). */
int store_repair(const char *dir, store_repair_t *r, char *err, size_t errlen);

/* Writes a random version-4 UUID (getrandom(2)) as 36 lower-case characters
 * and a NUL. */
void store_uuid(char out[37]);

#endif
