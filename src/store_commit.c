/* store_commit.c - the group commit: the queue of records, the writer
 * thread that appends and fdatasyncs them a batch at a time, and on the
 * loop's side the waiters, the undo entries and what a failed commit
 * leaves behind (the contract is in store.h).
 *
 * The loop encodes each record into a buffer of its own (s->pend) and hands
 * it to w.queue when it can take w.mu at once, waking the writer if it
 * sleeps: the loop never waits for the writer's lock. The writer swaps the
 * whole queue for an empty buffer and appends it in chunks of at most
 * CHUNK bytes (cut at record boundaries), each made durable by one
 * fdatasync and reported at once: w.committed moves on and the loop's
 * handle is signalled. store_poll then releases the undo
 * entries and calls the waiters up to w.committed.
 *
 * A failed append or fdatasync stops the writer taking batches (w.err);
 * after ENOSPC it first cuts the log back to its durable size. The loop,
 * in store_poll, undoes every write after w.committed (the failed batch and
 * any queued behind it), calls their waiters with the error, remembers
 * their sequence numbers as lost, and empties the queue. After ENOSPC it
 * queues a SKIP record (the next number, naming the last durable one): the
 * writer tries it once a second, and its commit puts the store back to
 * work. After any other error the writer stays stopped.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "store_int.h"

#define CHUNK ((size_t)8 << 20)
#define RETRY_MS 1000
#define DELAY_BELOW (16 * 1024) /* bytes: some 80 small records */
#define DELAY_WITHIN_US 1000
#define DELAY_MAX_US 500
#define QUEUE_START ((size_t)1 << 20)
#define UNDO_START 8192

static uint64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Errors that free space may cure; any other one stops the writer. */
static bool retryable(int rc) { return rc == -ENOSPC || rc == -EDQUOT || rc == -EFBIG; }

/* ---- the writer thread ---- */

static void wake_loop(store_t *s) {
  if (s->notify)
    uv_async_send(&s->notify->async);
}

/* Appends a batch, CHUNK bytes at a time, each fdatasync'd and reported. */
static void commit(store_t *s, const rbuf_t *b) {
  writer_t *w = &s->w;
  const unsigned char *p = (const unsigned char *)b->data;
  size_t off = 0;
  while (off < b->len) {
    size_t n = 0, writes = 0;
    uint64_t last = 0;
    while (off + n < b->len) {
      const unsigned char *h = p + off + n;
      size_t size = store_rec_size(h);
      if (n && n + size > CHUNK)
        break;
      last = store_rd_le(h + 12, 8);
      writes += h[1] != REC_SKIP;
      n += size;
    }
    int rc = store_write_all(s->logfd, p + off, n, (int64_t)w->file_size);
    if (rc == 0 && fdatasync(s->logfd) != 0)
      rc = -errno;
    if (rc) {
      log_error(s->log, "store: %s/%s: cannot append %zu bytes at offset %" PRIu64 ": %s", s->dir,
                LOG_NAME, n, w->file_size, strerror(-rc));
      /* Whatever part of the batch reached the file must go, or the next
       * batch would land after it. After EIO nothing more is written. */
      if (retryable(rc) &&
          (ftruncate(s->logfd, (off_t)w->file_size) != 0 || fdatasync(s->logfd) != 0)) {
        log_error(s->log, "store: %s/%s: cannot cut the log back to %" PRIu64 " bytes: %s", s->dir,
                  LOG_NAME, w->file_size, strerror(errno));
        rc = -EIO;
      }
      pthread_mutex_lock(&w->mu);
      __atomic_store_n(&w->err, rc, __ATOMIC_RELAXED);
      w->inflight = 0;
      if (w->syncing)
        pthread_cond_broadcast(&w->done);
      pthread_mutex_unlock(&w->mu);
      wake_loop(s);
      return;
    }
    pthread_mutex_lock(&w->mu);
    w->file_size += n;
    w->inflight -= n;
    __atomic_store_n(&w->committed, last, __ATOMIC_RELEASE);
    __atomic_store_n(&w->syncs, w->syncs + 1, __ATOMIC_RELAXED);
    __atomic_store_n(&w->synced, w->synced + writes, __ATOMIC_RELAXED);
    if (w->syncing)
      pthread_cond_broadcast(&w->done);
    pthread_mutex_unlock(&w->mu);
    wake_loop(s);
    off += n;
  }
}

/* Waits on w->wake until `us` (CLOCK_MONOTONIC) at most. */
static void timed_wait(writer_t *w, uint64_t us) {
  struct timespec until = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
  pthread_cond_timedwait(&w->wake, &w->mu, &until);
}

/* A commit delay, as PostgreSQL's, but one that ends as soon as the batch
 * is as large as the last one: when commits follow each other closely and
 * this batch is small, the writers the last commit answered are likely
 * writing again, and a batch that waits for them costs one fdatasync where
 * committing at once would cost two or three. Each fdatasync costs the
 * core the writer shares with the loop (on a virtual machine a disk
 * request and its completion are several exits to the hypervisor), so
 * fewer and fuller batches give both more writes per second and shorter
 * pauses to readers. If fewer writers come back, the batch goes after
 * DELAY_MAX_US; one writer alone never waits (the last batch held one
 * record and it is in). */
static void gather(writer_t *w) {
  uint64_t until = now_us() + DELAY_MAX_US;
  w->gathering = true;
  while (w->queued < w->expect && w->queue.len < DELAY_BELOW && !w->stop && !w->syncing) {
    if (now_us() >= until)
      break;
    timed_wait(w, until);
  }
  w->gathering = false;
}

static void *writer_main(void *arg) {
  store_t *s = arg;
  writer_t *w = &s->w;
  rbuf_t batch = {0};
  pthread_mutex_lock(&w->mu);
  for (;;) {
    if (w->compacting)
      store_compaction_step(s);
    bool work = w->queue.len > 0 && w->err == 0 && !w->dead;
    if (!work) {
      if (w->stop && !w->compacting)
        break;
      w->idle = true;
      if (!w->stop)
        pthread_cond_wait(&w->wake, &w->mu);
      w->idle = false;
      continue;
    }
    if (w->retry_at_us > now_us() && !w->stop) {
      timed_wait(w, w->retry_at_us);
      continue;
    }
    w->retry_at_us = 0;
    if (w->queue.len < DELAY_BELOW && !w->stop && now_us() - w->last_commit_us < DELAY_WITHIN_US)
      gather(w);
    w->expect = w->queued;
    w->queued = 0;
    rbuf_t t = w->queue;
    w->queue = batch;
    batch = t;
    w->inflight = batch.len;
    pthread_mutex_unlock(&w->mu);
    commit(s, &batch);
    w->last_commit_us = now_us();
    store_rbuf_trim(&batch, CHUNK);
    pthread_mutex_lock(&w->mu);
  }
  pthread_mutex_unlock(&w->mu);
  store_rbuf_free(&batch);
  return NULL;
}

static void on_async(uv_async_t *h) {
  store_notify_t *n = h->data;
  store_poll(n->s);
}

/* Runs at the start of the next loop turn, before it waits: the requests
 * of one read burst write as one batch, and the writer, which may share
 * the loop's core, is woken once rather than once per write. (An idle
 * handle, not a check handle: a write made while handles close, after the
 * check phase, would wait for the next event.) */
static void on_turn(uv_idle_t *h) {
  store_notify_t *n = h->data;
  uv_idle_stop(h);
  if (n->s)
    store_handover(n->s, false);
}

void store_handover_soon(store_t *s) {
  if (s->notify == NULL)
    store_handover(s, false);
  else if (!uv_is_active((uv_handle_t *)&s->notify->turn))
    uv_idle_start(&s->notify->turn, on_turn);
}

static void free_notify(uv_handle_t *h) {
  store_notify_t *n = h->data;
  if (--n->open == 0)
    free(n);
}

int store_writer_start(store_t *s, uv_loop_t *loop) {
  writer_t *w = &s->w;
  pthread_condattr_t ca;
  int rc;
  s->durable = w->committed = s->seq;
  if ((rc = pthread_mutex_init(&w->mu, NULL)))
    return -rc;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  rc = pthread_cond_init(&w->wake, &ca);
  pthread_condattr_destroy(&ca);
  if (rc || (rc = pthread_cond_init(&w->done, NULL)))
    return -rc;
  if (loop) {
    if ((s->notify = calloc(1, sizeof *s->notify)) == NULL)
      return -ENOMEM;
    s->notify->s = s;
    s->notify->async.data = s->notify;
    if ((rc = uv_async_init(loop, &s->notify->async, on_async))) {
      free(s->notify);
      s->notify = NULL;
      return rc;
    }
    /* Only held answers keep the loop alive (store_poll refs it). */
    uv_unref((uv_handle_t *)&s->notify->async);
    uv_idle_init(loop, &s->notify->turn);
    s->notify->turn.data = s->notify;
    uv_unref((uv_handle_t *)&s->notify->turn);
    s->notify->open = 2;
  }
  /* Room for a burst up front: growing a buffer later means fresh pages,
   * each a fault the loop waits for. */
  if (store_rbuf_reserve(&s->pend, QUEUE_START) || store_rbuf_reserve(&w->queue, QUEUE_START) ||
      store_undo_reserve(s, UNDO_START))
    return -ENOMEM;
  if ((rc = pthread_create(&w->thread, NULL, writer_main, s)))
    return -rc;
  w->started = true;
  return 0;
}

void store_writer_stop(store_t *s) {
  writer_t *w = &s->w;
  if (w->started) {
    store_handover(s, true);
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL); /* it joined the compactor */
    store_view_finish(s, true);
    store_poll(s);
    w->started = false;
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->wake);
    pthread_cond_destroy(&w->done);
  }
  store_rbuf_free(&w->queue);
  store_rbuf_free(&s->pend);
  if (s->notify) {
    store_notify_t *n = s->notify;
    n->s = NULL;
    uv_handle_t *hs[] = {(uv_handle_t *)&n->async, (uv_handle_t *)&n->turn};
    /* Whoever takes a server down may have closed every handle of its loop
     * (uv_walk) and run the loop since: then only the memory is left. */
    for (size_t i = 0; i < sizeof hs / sizeof *hs; i++)
      if (uv_is_closing(hs[i]))
        n->open--;
      else
        uv_close(hs[i], free_notify);
    if (n->open == 0)
      free(n);
    s->notify = NULL;
  }
}

/* ---- the loop's side: queueing ---- */

/* Records are encoded on the loop into s->pend, without a lock, and handed
 * to the writer's queue at the end of each write: the loop takes the
 * writer's lock only if it is free at once. */
int store_log_append(store_t *s, int type, const char *coll, size_t clen, const char *id,
                     size_t idlen, const void *val, size_t vlen) {
  size_t size = REC_HDR + clen + idlen + vlen;
  int rc = store_rbuf_reserve(&s->pend, size);
  if (rc == 0) {
    s->appended += size;
    s->npend++;
    s->pend.len += store_rec_encode((unsigned char *)s->pend.data + s->pend.len, type, coll, clen,
                                    id, idlen, val, vlen, ++s->seq);
  }
  return rc;
}

void store_handover(store_t *s, bool block) {
  writer_t *w = &s->w;
  if (s->pend.len == 0 || !w->started)
    return;
  if (block)
    pthread_mutex_lock(&w->mu);
  else if (pthread_mutex_trylock(&w->mu) != 0) {
    if (s->notify)
      uv_async_send(&s->notify->async); /* store_poll tries again */
    return;
  }
  if (w->queue.len == 0) {
    rbuf_t t = w->queue;
    w->queue = s->pend;
    s->pend = t;
  } else if (store_rbuf_append(&w->queue, s->pend.data, s->pend.len) != 0) {
    /* Out of memory: kept, and tried again with the next write or poll. */
    pthread_mutex_unlock(&w->mu);
    return;
  }
  w->queued += s->npend;
  s->npend = 0;
  s->pend.len = 0;
  if (w->idle || (w->gathering && (w->queued >= w->expect || w->queue.len >= DELAY_BELOW)))
    pthread_cond_signal(&w->wake);
  pthread_mutex_unlock(&w->mu);
}

int store_undo_reserve(store_t *s, size_t n) {
  if (s->undo_head > 0 && s->undo_head == s->undo_len)
    s->undo_head = s->undo_len = 0;
  if (s->undo_len + n <= s->undo_cap)
    return 0;
  if (s->undo_head > s->undo_cap / 2) { /* slide the live entries down */
    memmove(s->undo, s->undo + s->undo_head, (s->undo_len - s->undo_head) * sizeof *s->undo);
    s->undo_len -= s->undo_head;
    s->undo_head = 0;
    if (s->undo_len + n <= s->undo_cap)
      return 0;
  }
  if (s->undo_len + n > SIZE_MAX / sizeof *s->undo)
    return -ENOMEM;
  undo_t *u = store_map_grow(s->undo, &s->undo_bytes, (s->undo_len + n) * sizeof *u);
  if (u == NULL)
    return -ENOMEM;
  s->undo = u;
  s->undo_cap = s->undo_bytes / sizeof *u;
  return 0;
}

void store_undo_push(store_t *s, int kind, coll_t *c, void *a, void *b) {
  s->undo[s->undo_len++] = (undo_t){s->seq, kind, c, a, b};
}

/* ---- the loop's side: durable, failed ---- */

static void free_cleared(store_t *s, cleared_t *cl) {
  for (coll_t *c = cl->first, *next; c; c = next) {
    next = c->next;
    store_free_coll(s, c);
  }
  store_tab_free(&cl->colls);
  free(cl);
}

/* The write is durable: what it replaced or removed can go. */
void store_undo_release(store_t *s, undo_t *u) {
  switch (u->kind) {
  case U_REPLACE:
  case U_DELETE: store_free_doc(s, u->a); break;
  case U_DROP_COLL: store_free_coll(s, u->c); break;
  case U_CLEAR_ALL: free_cleared(s, u->a); break;
  default: break;
  }
}

/* The write failed: put back what it changed. Entries are undone newest
 * first, so each finds memory exactly as its write left it, and the
 * pointers it keeps (a neighbour, a replaced document) are live again.
 * Nothing allocates: tables only shrink when no write is pending. */
static void undo(store_t *s, undo_t *u) {
  switch (u->kind) {
  case U_INSERT:
    store_doc_unlink(s, u->c, u->a);
    store_free_doc(s, u->a);
    break;
  case U_REPLACE:
    store_doc_swap(s, u->c, u->b, u->a);
    store_free_doc(s, u->b);
    break;
  case U_DELETE: store_doc_link(s, u->c, u->a, u->b); break;
  case U_NEW_COLL:
    store_coll_unlink(s, u->c);
    store_free_coll(s, u->c);
    break;
  case U_DROP_COLL: store_coll_link(s, u->c, u->a); break;
  case U_CLEAR_ALL: {
    cleared_t *cl = u->a;
    store_tab_free(&s->colls);
    s->colls = cl->colls;
    store_set_ptr(s, 0, &s->first, cl->first);
    s->last = cl->last;
    free(cl);
    break;
  }
  }
}

static void waiter_unlink(store_t *s, store_waiter_t *w) {
  if (w->prev)
    w->prev->next = w->next;
  else
    s->wfirst = w->next;
  if (w->next)
    w->next->prev = w->prev;
  else
    s->wlast = w->prev;
  w->prev = w->next = NULL;
  w->queued = false;
}

/* Held answers keep the loop alive; nothing else of the store does. */
static void update_ref(store_t *s) {
  if (s->notify == NULL)
    return;
  if (s->wfirst)
    uv_ref((uv_handle_t *)&s->notify->async);
  else
    uv_unref((uv_handle_t *)&s->notify->async);
}

/* Calls the waiters up to `seq` with `status`, in order. A callback may
 * register or cancel waiters: the list is read again after each. */
static void call_waiters(store_t *s, uint64_t seq, int status) {
  while (s->wfirst && s->wfirst->seq <= seq) {
    store_waiter_t *w = s->wfirst;
    waiter_unlink(s, w);
    w->fn(w, status);
  }
}

static void fail(store_t *s, int err) {
  writer_t *w = &s->w;
  uint64_t last = s->seq, undone = 0;
  int rc = retryable(err) ? -ENOSPC : -EIO, was = s->state;
  /* Room for what the failure must note comes first: without a lost range
   * the undone numbers could pass for durable, and without the SKIP there
   * is no retry; then the store stops as after EIO, a promise it can keep
   * with no memory at all. */
  struct lost *l = realloc(s->lost, (s->nlost + 1) * sizeof *l);
  if (l)
    s->lost = l;
  else
    rc = -EIO;
  pthread_mutex_lock(&w->mu);
  w->queue.len = 0;
  w->queued = 0;
  __atomic_store_n(&w->err, 0, __ATOMIC_RELAXED);
  if (w->compacting) /* its snapshot may hold what was just undone */
    w->snap_discard = true;
  if (rc == -ENOSPC && store_rbuf_reserve(&w->queue, REC_HDR + 8) == 0) {
    /* The SKIP goes on from the last durable record, over the numbers of
     * the undone writes; its commit is the retry. */
    unsigned char prev[8];
    store_wr_le(prev, s->durable, 8);
    w->queue.len = store_rec_encode((unsigned char *)w->queue.data, REC_SKIP, NULL, 0, NULL, 0,
                                    prev, 8, ++s->seq);
    w->queued = 1;
    s->probe = s->seq;
    w->retry_at_us = now_us() + RETRY_MS * 1000;
  } else {
    rc = -EIO;
    w->dead = true;
  }
  pthread_mutex_unlock(&w->mu);
  while (s->undo_len > s->undo_head) {
    undo_t *u = &s->undo[--s->undo_len];
    undone += s->undo_len == s->undo_head || s->undo[s->undo_len - 1].seq != u->seq;
    undo(s, u);
  }
  l = s->nlost ? &s->lost[s->nlost - 1] : NULL;
  if (l && l->lo == s->durable && l->rc == rc) /* the retries of one full disk */
    l->hi = last;
  else if (s->lost)
    s->lost[s->nlost++] = (struct lost){s->durable, last, rc};
  if (rc == -ENOSPC && was == -ENOSPC) {
    /* A retry that failed too: said once already. */
  } else if (rc == -ENOSPC) {
    snprintf(s->reason, sizeof s->reason,
             "the disk of %s is full (%s): writes are refused until a retry succeeds", s->dir,
             strerror(-err));
    log_error(s->log,
              "store: %s: a commit failed (%s): %" PRIu64 " writes after sequence number %" PRIu64
              " were undone; writes are refused, retrying once a second",
              s->dir, strerror(-err), undone, s->durable);
  } else {
    snprintf(s->reason, sizeof s->reason,
             "a commit to %s/%s failed (%s): read-only until h1mock is restarted", s->dir,
             LOG_NAME, strerror(-err));
    log_error(s->log,
              "store: %s: a commit failed (%s): %" PRIu64 " writes after sequence number %" PRIu64
              " were undone; the store is read-only until restarted, which replays what the log "
              "holds",
              s->dir, strerror(-err), undone, s->durable);
  }
  s->state = rc;
  s->pend.len = 0;
  s->npend = 0;
  pthread_mutex_lock(&w->mu);
  if (w->idle)
    pthread_cond_signal(&w->wake);
  pthread_mutex_unlock(&w->mu);
  call_waiters(s, UINT64_MAX, rc);
}

void store_poll(store_t *s) {
  writer_t *w = &s->w;
  if (s->dirfd < 0 || !w->started)
    return;
  store_handover(s, false);
  store_view_finish(s, false);
  /* Read without the lock, which the writer may hold (the loop never waits
   * for it but in store_sync and after a failure). */
  uint64_t committed = __atomic_load_n(&w->committed, __ATOMIC_ACQUIRE);
  int err = __atomic_load_n(&w->err, __ATOMIC_ACQUIRE);
  if (committed > s->durable) {
    while (s->undo_head < s->undo_len && s->undo[s->undo_head].seq <= committed)
      store_undo_release(s, &s->undo[s->undo_head++]);
    s->durable = committed;
    call_waiters(s, committed, 0);
  }
  if (err)
    fail(s, err);
  else if (s->state == -ENOSPC && s->durable >= s->probe) {
    s->state = 0;
    s->reason[0] = '\0';
    log_info(s->log, "store: %s: a retry committed: writes are taken again", s->dir);
  }
  update_ref(s);
}

int store_writable(store_t *s) {
  if (s->dirfd < 0)
    return 0;
  if (__atomic_load_n(&s->w.err, __ATOMIC_RELAXED))
    store_poll(s);
  return s->state;
}

int store_status(const store_t *s, char *reason, size_t len) {
  if (reason && len)
    snprintf(reason, len, "%s", s->state ? s->reason : "");
  return s->state;
}

uint64_t store_seq(const store_t *s) { return s->seq; }

void store_commit_counts(const store_t *s, uint64_t *syncs, uint64_t *writes) {
  *syncs = __atomic_load_n(&s->w.syncs, __ATOMIC_RELAXED);
  *writes = __atomic_load_n(&s->w.synced, __ATOMIC_RELAXED);
}

static int lost(const store_t *s, uint64_t seq) {
  /* Nothing beyond the last durable record commits after EIO. */
  if (s->state == -EIO && seq > s->durable)
    return -EIO;
  if (s->nlost == 0 || seq > s->lost[s->nlost - 1].hi) /* the common case: none lost since */
    return 0;
  for (size_t i = s->nlost; i-- > 0;)
    if (seq > s->lost[i].lo && seq <= s->lost[i].hi)
      return s->lost[i].rc;
  return 0;
}

int store_when_durable(store_t *s, uint64_t seq, store_waiter_t *w, store_durable_fn fn) {
  int rc;
  if (s->dirfd < 0 || seq == 0)
    return 0;
  if ((rc = lost(s, seq)))
    return rc;
  if (seq <= s->durable)
    return 0;
  w->seq = seq;
  w->fn = fn;
  store_waiter_t *at = s->wlast;
  while (at && at->seq > seq)
    at = at->prev;
  w->prev = at;
  w->next = at ? at->next : s->wfirst;
  if (w->next)
    w->next->prev = w;
  else
    s->wlast = w;
  if (at)
    at->next = w;
  else
    s->wfirst = w;
  w->queued = true;
  update_ref(s);
  return 1;
}

void store_waiter_cancel(store_t *s, store_waiter_t *w) {
  if (w->queued) {
    waiter_unlink(s, w);
    update_ref(s);
  }
}

int store_sync(store_t *s) {
  writer_t *w = &s->w;
  if (s->dirfd < 0 || !w->started)
    return 0;
  uint64_t target = s->seq;
  store_handover(s, true);
  pthread_mutex_lock(&w->mu);
  while (w->committed < target && w->err == 0 && !w->dead) {
    w->syncing = true;
    if (w->gathering) /* nothing more will come while the loop waits here */
      pthread_cond_signal(&w->wake);
    pthread_cond_wait(&w->done, &w->mu);
  }
  w->syncing = false;
  pthread_mutex_unlock(&w->mu);
  store_poll(s);
  int rc = lost(s, target);
  if (rc)
    return rc;
  return s->durable >= target ? 0 : s->state ? s->state : -EIO;
}
