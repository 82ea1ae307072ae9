/* store_int.h - what the store_*.c files share; nothing outside them
 * includes this header.
 *
 * The store is split by concern: store.c (the public calls, opening and
 * closing), store_table.c (documents, collections and their hash tables),
 * store_record.c (the record format, reading the snapshot and the log at
 * open), store_commit.c (appending records to the log), store_mem.c (the
 * growing buffers of the commit) and store_snapshot.c (compaction).
 */
#ifndef H1MOCK_STORE_INT_H
#define H1MOCK_STORE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "buf.h"
#include "log.h"
#include "store.h"

#define LOG_NAME "store.log"
#define SNAP_NAME "store.snapshot"
#define TMP_NAME "store.snapshot.tmp"
#define LOG_TMP_NAME "store.log.tmp"
#define LOG_V1_NAME "store.log.v1"
#define SNAP_V1_NAME "store.snapshot.v1"
#define DEFAULT_COMPACT ((size_t)64 << 20)

#define FORMAT_VERSION 2
#define FILE_HDR 48
#define REC_MAGIC 0xA5
#define REC_HDR 28
enum { REC_PUT = 1, REC_DEL, REC_CLEAR, REC_CLEAR_ALL, REC_END, REC_SKIP };

/* The largest record, and so the largest batch: the writer cuts batches at
 * record boundaries, but a record is never cut. */
#define MAX_RECORD ((uint64_t)REC_HDR + 2 * STORE_MAX_KEY + STORE_MAX_VALUE)

/* `gen`: the snapshot during which it was made (store_snapshot.c), so that
 * the pointers of what is newer than a snapshot need not be kept for it. */
typedef struct doc {
  struct doc *prev, *next;
  uint16_t idlen, gen;
  uint32_t vlen;
  char data[]; /* id, NUL, value, NUL */
} doc_t;

/* A slot keeps the hash beside the pointer so that a probe costs one cache
 * line; hash 0 marks an empty slot. cap is 0 or a power of two. */
typedef struct slot {
  uint32_t hash;
  void *item;
} slot_t;

/* An open-addressing hash table: linear probing over `slot`; while it is
 * resized, `old` is being drained into `slot` (store_table.c). */
typedef struct table {
  slot_t *slot;   /* where items are added */
  size_t cap;     /* of slot: 0 or a power of two */
  size_t len;     /* items in slot and old together */
  slot_t *old;    /* NULL, or the array being drained */
  size_t old_cap; /* of old */
  size_t moved;   /* slots of old drained so far */
  slot_t *next;   /* a large table's next array, made ahead (store_table.c) */
} table_t;

typedef struct coll {
  struct coll *prev, *next; /* creation order */
  doc_t *first, *last;      /* insertion order */
  table_t docs;
  uint16_t nlen, gen; /* gen: as a doc's */
  char name[];        /* NUL-terminated */
} coll_t;

/* What a write not durable yet changed, to be put back (newest first) if
 * its commit fails, or released once it is durable (store_commit.c). */
enum { U_INSERT, U_REPLACE, U_DELETE, U_NEW_COLL, U_DROP_COLL, U_CLEAR_ALL };

typedef struct undo {
  uint64_t seq;
  int kind;
  coll_t *c; /* the collection (U_CLEAR_ALL: none) */
  void *a;   /* INSERT: the new doc; REPLACE, DELETE: the old doc; DROP_COLL: the coll
                before c; CLEAR_ALL: a cleared_t */
  void *b;   /* REPLACE: the new doc; DELETE: the doc before the old one */
} undo_t;

/* Every collection as a clear of all of them left it. */
typedef struct cleared {
  table_t colls;
  coll_t *first, *last;
} cleared_t;

/* A buffer of records in an anonymous mapping (store_mem.c): it grows
 * without copying, and keeps its pages between uses. */
typedef struct rbuf {
  char *data;
  size_t len, cap; /* cap: bytes mapped */
} rbuf_t;

int store_rbuf_reserve(rbuf_t *b, size_t extra);
int store_rbuf_append(rbuf_t *b, const void *p, size_t n);
/* Empties it, and unmaps what lies beyond `keep` bytes. */
void store_rbuf_trim(rbuf_t *b, size_t keep);
void store_rbuf_free(rbuf_t *b);
/* Maps or grows a mapping of *bytes to at least `need` bytes, moving its
 * pages rather than copying them; NULL (the old one kept) when it cannot. */
void *store_map_grow(void *p, size_t *bytes, size_t need);
void store_map_free(void *p, size_t bytes);

/* The writer thread and what it shares with the loop under `mu`. */
typedef struct writer {
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t wake; /* work for the writer, or stop */
  pthread_cond_t done; /* a commit, for store_sync */
  bool started, stop, idle, syncing;
  rbuf_t queue;            /* records not taken yet, in sequence order */
  size_t queued;           /* records in queue */
  size_t expect;           /* records the last batch held: as many may come */
  bool gathering;          /* waiting for them: the loop wakes it when they are in */
  uint64_t file_size;      /* durable bytes of the log (its header included) */
  uint64_t inflight;       /* bytes being appended after file_size */
  uint64_t committed;      /* the last durable sequence number */
  int err;                 /* a failed commit the loop has not taken in (-errno) */
  bool dead;               /* after a failure that is not ENOSPC: write nothing */
  uint64_t retry_at_us;    /* after ENOSPC: the next attempt (CLOCK_MONOTONIC) */
  uint64_t last_commit_us; /* when the last batch was done (CLOCK_MONOTONIC) */
  uint64_t syncs, synced;  /* commits (store_commit_counts), and the writes they made durable */
  /* Compaction (store_snapshot.c): a compactor thread writes the snapshot
   * of sequence number snap_seq; the writer installs it and writes the new
   * log (the old one's bytes from `cut` on) between batches. */
  bool compacting; /* from the start until installed or dropped */
  pthread_t compactor;
  bool joinable;     /* the compactor has not been joined */
  int snap_rc;       /* 0, or the -errno the compactor failed with */
  bool snap_written; /* the compactor is done (snap_rc says how) */
  bool snap_discard; /* a commit failed since the start: it may hold undone writes */
  bool snap_cancel;  /* stopping: the compactor gives up */
  uint64_t snap_seq, cut;
} writer_t;

/* The documents as they were when a snapshot began, for the compactor
 * thread to read while the loop writes on (store_snapshot.c): the first
 * value, since then, of every list pointer the loop changed, and what it
 * freed meanwhile (freed once the compactor is done reading). No lock: the
 * loop publishes entries and maps with release stores, the compactor reads
 * with acquire loads. */
typedef struct view_entry {
  void **field; /* published last */
  void *old;
} view_entry_t;

typedef struct view_map {
  size_t cap;            /* a power of two; at most half full */
  struct view_map *prev; /* the smaller map it replaced: freed at the end */
  view_entry_t e[];
} view_map_t;

typedef struct grave {
  void *p;
  bool coll; /* a coll_t (store_coll_free), else a doc_t (free) */
} grave_t;

typedef struct snap_view {
  bool active;     /* the loop saves and defers (the loop's) */
  bool done;       /* the compactor stopped reading (its, atomic) */
  bool broken;     /* a save failed for want of memory: drop the snapshot (atomic) */
  uint16_t gen;    /* of the last snapshot begun (0: none yet) */
  view_map_t *map; /* atomic pointer, NULL until the first save */
  size_t len;      /* entries in map */
  grave_t *grave;  /* the loop's until the end */
  size_t ngrave, capgrave;
} snap_view_t;

/* The loop's handle, in an allocation of its own: it is freed by its
 * close callback, which may run after the store is gone. */
typedef struct store_notify {
  uv_async_t async; /* the writer says a batch is durable (or failed) */
  uv_idle_t turn;   /* the loop hands a turn's records over once */
  store_t *s;
  int open; /* handles not closed yet: the struct is freed at 0 */
} store_notify_t;

struct store {
  table_t colls;
  coll_t *first, *last;
  uint64_t key[2]; /* SipHash key */
  uint64_t seq;    /* sequence number of the last write */
  /* Persistence; dirfd and logfd are -1 for a memory-only store. */
  int dirfd, logfd;
  uint64_t id;          /* the store id of its files' headers */
  char *dir;            /* for messages */
  const log_t *log;     /* where trouble with the files is told (any thread) */
  size_t compact_bytes; /* compact once this many bytes were appended */
  uint64_t appended;    /* bytes queued since the last compaction */
  /* Group commit (store_commit.c); the loop's side. */
  writer_t w;
  store_notify_t *notify; /* NULL without a loop */
  rbuf_t pend;            /* records not handed to the writer yet (w.queue) */
  size_t npend;           /* records in pend */
  uint64_t durable;       /* the last sequence number known durable */
  undo_t *undo;           /* undo[undo_head .. undo_len): writes not durable, oldest first */
  size_t undo_head, undo_len, undo_cap;
  size_t undo_bytes;              /* mapped for undo (store_map_grow) */
  store_waiter_t *wfirst, *wlast; /* by sequence number */
  struct lost {
    uint64_t lo, hi; /* (lo, hi]: sequence numbers a failed commit undid */
    int rc;
  } * lost;
  size_t nlost;
  int state;        /* 0, -ENOSPC (retrying) or -EIO (read-only) */
  char reason[256]; /* why, for store_status */
  uint64_t probe;   /* after ENOSPC: the SKIP whose commit ends it */
  snap_view_t view;
};

void store_view_save(store_t *s, void *field);
/* On the loop: once the compactor is done reading, stops saving and frees
 * what was kept for it (`now`: it is done, as at close). */
void store_view_finish(store_t *s, bool now);
/* Frees a document (or a collection with its documents), or keeps it
 * until the compactor is done reading when a snapshot is read. */
void store_free_doc(store_t *s, doc_t *d);
void store_free_coll(store_t *s, coll_t *c);

static inline const char *store_doc_val(const doc_t *d) { return d->data + d->idlen + 1; }

/* Changes a list pointer the compactor may follow (first, next) of a node
 * made during snapshot `gen` (the store's own: 0): while a snapshot is
 * read, the pointer's value when it began is kept, unless the node is newer
 * than the snapshot. */
static inline void store_set_ptr(store_t *s, uint16_t gen, void *field, void *v) {
  if (s->view.active && gen != s->view.gen)
    store_view_save(s, field);
  /* Release: a compactor that reads the new value sees the saved old one. */
  __atomic_store_n((void **)field, v, __ATOMIC_RELEASE);
}

/* What to tag a node made now with. */
static inline uint16_t store_gen_now(const store_t *s) { return s->view.active ? s->view.gen : 0; }

/* ---- store_table.c ---- */

/* The 32-bit SipHash-1-3 of a key under the store's random key; never 0. */
uint32_t store_hash(const store_t *s, const char *p, size_t n);
/* Fills b with random bytes. */
void store_random(void *b, size_t n);
/* The slot holding key k, or NULL. */
slot_t *store_tab_get(const table_t *t, uint32_t h, const char *k, size_t n, bool is_coll);
/* Makes room for one more item: 0, or -ENOMEM (the table is unchanged). */
int store_tab_reserve(table_t *t);
/* Adds an item whose key is not in the table, after store_tab_reserve.
 * Slots move: a slot_t pointer is good until the next add or delete. */
void store_tab_add(table_t *t, uint32_t h, void *it);
void store_tab_del(table_t *t, slot_t *sl);
/* After deletes: starts giving memory back when the table is mostly empty. */
void store_tab_shrink(table_t *t);
void store_tab_free(table_t *t);
doc_t *store_doc_new(const char *id, size_t idlen, const void *val, size_t vlen);
/* A collection with room for its first document. */
coll_t *store_coll_new(const char *name, size_t n);
/* Frees a collection that is not linked, with its documents. */
void store_coll_free(coll_t *c);
coll_t *store_coll_get(const store_t *s, const char *name, size_t n);
doc_t *store_doc_get(const store_t *s, const coll_t *c, const char *id, size_t n);
/* Links a collection after `prev` (NULL: first); its slot must be reserved. */
void store_coll_link(store_t *s, coll_t *c, coll_t *prev);
/* Takes a collection out of the table and the list; it is not freed. */
void store_coll_unlink(store_t *s, coll_t *c);
/* Links a document after `prev` (NULL: first); its slot must be reserved. */
void store_doc_link(store_t *s, coll_t *c, doc_t *d, doc_t *prev);
void store_doc_unlink(store_t *s, coll_t *c, doc_t *d);
/* Puts `d` (same id) in the place of `old`, which is unlinked, not freed. */
void store_doc_swap(store_t *s, coll_t *c, doc_t *old, doc_t *d);
/* Frees every collection and document. */
void store_drop_all(store_t *s);

/* ---- store.c: writes (log == false: replaying at open) ---- */

int store_put_doc(store_t *s, const char *coll, size_t clen, const char *id, size_t idlen,
                  const void *val, size_t vlen, bool log);
int store_delete_doc(store_t *s, const char *coll, size_t clen, const char *id, size_t idlen,
                     bool log);
int store_clear_coll(store_t *s, const char *coll, size_t clen, bool log);

/* ---- store_record.c ---- */

/* Builds the CRC tables once per process; before any store_crc32. */
void store_crc_setup(void);
uint32_t store_crc32(uint32_t crc, const void *data, size_t n);
uint64_t store_rd_le(const unsigned char *p, int n);
/* The whole size of the record whose header is at h (header not checked). */
size_t store_rec_size(const unsigned char *h);
void store_wr_le(unsigned char *p, uint64_t v, int n);
void store_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

enum { HDR_LOG, HDR_SNAPSHOT };
enum { HDR_OK, HDR_EMPTY, HDR_V1, HDR_ZERO, HDR_ALIEN, HDR_CRC, HDR_VERSION };

typedef struct store_hdr {
  uint32_t version;
  uint64_t id, base, max_batch;
} store_hdr_t;

/* Writes a file header of kind HDR_LOG or HDR_SNAPSHOT. */
void store_hdr_encode(unsigned char h[FILE_HDR], int kind, const store_hdr_t *v);
/* Reads the header at the start of a file of `size` bytes: HDR_OK (and *v
 * set), or what is wrong with it (HDR_V1: the file is in format 1). */
int store_hdr_decode(const unsigned char *m, uint64_t size, int kind, store_hdr_t *v);
/* store_hdr_decode's verdict as words, for a message naming the file. */
const char *store_hdr_problem(int rc, const store_hdr_t *v, char *buf, size_t n);

void store_rec_header(unsigned char *h, int type, size_t clen, size_t idlen, size_t vlen,
                      uint64_t seq, uint32_t pcrc);
/* Writes a whole record into out (room for REC_HDR + the three lengths);
 * returns its size. */
size_t store_rec_encode(unsigned char *out, int type, const char *coll, size_t clen,
                        const char *id, size_t idlen, const void *val, size_t vlen, uint64_t seq);

typedef struct rec {
  int type;
  size_t clen, idlen, vlen;
  uint64_t seq, size; /* size: header and payload */
  const char *coll, *id, *val;
} rec_t;

enum { P_OK, P_TORN_HDR, P_PAST_EOF, P_BAD_PAYLOAD, P_INVALID };

int store_rec_parse(const unsigned char *m, uint64_t size, uint64_t off, rec_t *r);
/* The offset of the first sound record at or after `from`, or 0 if none. */
uint64_t store_next_sound(const unsigned char *m, uint64_t size, uint64_t from);
/* Applies a record read back to the documents. 0 or -ENOMEM. */
int store_apply(store_t *s, const rec_t *r);

/* A file of the data directory mapped read-only (m is NULL when empty). */
typedef struct store_map {
  int fd;
  const unsigned char *m;
  uint64_t size;
} store_map_t;

/* Opens (never through a link) and maps `name`: 0 or -errno (-ENOENT). */
int store_map(int dirfd, const char *name, store_map_t *f);
void store_unmap(store_map_t *f);
/* Why openat(..., O_NOFOLLOW) failed with rc, in words. */
const char *store_open_error(int rc);

/* Loads the snapshot `name` of format `version` into the (empty) store;
 * *hdr gets its header (format 1: only base). 0, -ENOENT (no such file,
 * err untouched), -EIO (damaged: err names the file and the offset), or
 * another -errno. */
int store_read_snapshot(store_t *s, const char *name, int version, store_hdr_t *hdr, char *err,
                        size_t errlen);

typedef struct store_log_end {
  uint64_t size; /* bytes up to the end of the last sound record */
  uint64_t seq;  /* the last sequence number, or the snapshot's if larger */
  uint64_t torn; /* bytes after it: a torn tail to drop */
} store_log_end_t;

/* Replays the log `f` of format `version` (header `hdr`; format 1: NULL)
 * over a snapshot that covers up to snap_seq, by the rules at the top of
 * store_record.c. 0 with *end set, or -EIO / -ENOMEM with err naming the
 * file and the offset. */
int store_read_log(store_t *s, const store_map_t *f, const char *name, int version,
                   const store_hdr_t *hdr, uint64_t snap_seq, store_log_end_t *end, char *err,
                   size_t errlen);

/* ---- store_commit.c ---- */

/* Starts the writer thread (after open) and hooks it to `loop` (may be
 * NULL). 0 or -errno. */
int store_writer_start(store_t *s, uv_loop_t *loop);
/* Drains the queue and stops the writer; closes the loop's handle. */
void store_writer_stop(store_t *s);
/* Whether the store takes writes now (takes in a failure the writer
 * reported first): 0 or the store_status error. */
int store_writable(store_t *s);
/* Room for n more undo entries: 0 or -ENOMEM. */
int store_undo_reserve(store_t *s, size_t n);
/* Notes what a write (sequence number s->seq) changed; room is reserved. */
void store_undo_push(store_t *s, int kind, coll_t *c, void *a, void *b);
/* The write of an undo entry is durable: frees what it replaced. */
void store_undo_release(store_t *s, undo_t *u);
/* Queues the record of a write for the writer, with the next sequence
 * number (s->seq then holds it). 0 or -ENOMEM (nothing queued). */
int store_log_append(store_t *s, int type, const char *coll, size_t clen, const char *id,
                     size_t idlen, const void *val, size_t vlen);
/* Hands the records queued on the loop (s->pend) to the writer. Without
 * `block` it only tries the lock (the writer may hold it, or have been
 * preempted holding it: the loop must not wait) and, when it is taken,
 * tries again on the loop's next turn. */
void store_handover(store_t *s, bool block);
/* Hands the pending records over at the end of this loop turn (at once
 * without a loop): one wakeup of the writer for all the turn's writes. */
void store_handover_soon(store_t *s);

/* ---- store_open.c ---- */

/* Creates (mkdir -p) and opens `dir`, takes its lock, removes leftover
 * temporary files (told to `lg`). Returns the directory's descriptor, or -errno (-EBUSY:
 * another store holds it) with a sentence in err. */
int store_lock_dir(const char *dir, const log_t *lg, char *err, size_t errlen);

/* ---- store_snapshot.c ---- */

/* The buffer snapshots and log copies are written through. */
#define SNAP_BUF ((size_t)1 << 20)

/* Writes all n bytes, at offset `off` (pwrite), or at the file position
 * when off is negative. 0 or -errno. */
int store_write_all(int fd, const void *p, size_t n, int64_t off);
/* Writes the snapshot of every document as of sequence number `seq` into
 * fd and fsyncs it, through `buf` (cap >= FILE_HDR bytes), when nothing
 * else runs (open, migration). 0 or -errno. */
int store_snapshot_write(store_t *s, int fd, uint64_t seq, unsigned char *buf, size_t cap);
/* Renames `tmp` over `name` in dirfd and fsyncs the directory. 0 or -errno. */
int store_install(int dirfd, const char *tmp, const char *name);
/* Makes a new log continuing sequence number `base`: a header, then bytes
 * [cut, end) of the log open as `from`, fdatasync'd, renamed over
 * store.log. Returns its descriptor (O_RDWR), or -errno with *step saying
 * what failed and *renamed whether it got the name anyway. */
int store_log_write(store_t *s, uint64_t base, int from, uint64_t cut, uint64_t end,
                    const char **step, bool *renamed);
/* Writes a snapshot of every document and a new, empty log (see the top of
 * store_snapshot.c for why each step is crash-safe); at open, before the
 * writer runs. 0 or -errno, logged; the files are as they were unless the
 * snapshot is in place. */
int store_compact(store_t *s);
/* After a write: starts a compaction off the loop once compact_bytes were
 * appended since the last one. */
void store_maybe_compact(store_t *s);
/* The writer's part of a compaction, between batches (w.mu held; it is
 * released while files are written): joins the compactor, installs its
 * snapshot once the log holds everything it covers, writes the new log.
 * Drops the compaction when the compactor failed, a commit failed, or the
 * writer stops. */
void store_compaction_step(store_t *s);

#endif
