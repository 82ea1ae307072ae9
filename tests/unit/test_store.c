/* test_store.c - the document store: operations and order, limits, the
 * hash tables' incremental resize, a random run checked against a model,
 * persistence, compaction and kill -9. What the store makes of damaged
 * files is in test_store_recovery.c. */
#include "store_test.h"

/* ---- memory operations ---- */

TEST(test_put_get) {
  store_t *s = open_mem();
  ASSERT_EQ(put(s, "users", "u1", "{\"name\":\"ann\"}"), 0);
  ASSERT_EQ(put(s, "users", "u2", "{\"name\":\"bob\"}"), 0);
  ASSERT_EQ(put(s, "posts", "u1", "post"), 0);
  ASSERT_STR_EQ(get(s, "users", "u1"), "{\"name\":\"ann\"}");
  ASSERT_STR_EQ(get(s, "users", "u2"), "{\"name\":\"bob\"}");
  ASSERT_STR_EQ(get(s, "posts", "u1"), "post");
  ASSERT(get(s, "users", "u3") == NULL);
  ASSERT(get(s, "nope", "u1") == NULL);
  const void *v;
  size_t n;
  ASSERT_EQ(store_get(s, "users", 5, "u3", 2, &v, &n), -ENOENT);
  ASSERT_EQ(count(s, "users"), 2);
  ASSERT_EQ(count(s, "posts"), 1);
  ASSERT_EQ(count(s, "nope"), 0);
  ASSERT_EQ(put(s, "empty", "e", ""), 0);
  ASSERT_STR_EQ(get(s, "empty", "e"), "");
  store_close(s);
  store_close(NULL);
}

TEST(test_replace_keeps_position) {
  store_t *s = open_mem();
  put(s, "c", "a", "1");
  put(s, "c", "b", "2");
  put(s, "c", "c", "3");
  ASSERT_EQ(put(s, "c", "b", "two, and longer than before"), 0);
  ASSERT_EQ(put(s, "c", "a", "one"), 0);
  ASSERT_STR_EQ(list(s, "c", 0, 0), "a=one,b=two, and longer than before,c=3");
  ASSERT_EQ(count(s, "c"), 3);
  ASSERT_EQ(put(s, "c", "c", "x"), 0);
  ASSERT_EQ(put(s, "c", "d", "4"), 0);
  ASSERT_STR_EQ(list(s, "c", 0, 0), "a=one,b=two, and longer than before,c=x,d=4");
  store_close(s);
}

TEST(test_delete) {
  store_t *s = open_mem();
  for (int i = 0; i < 5; i++) {
    char id[16];
    snprintf(id, sizeof id, "%d", i);
    put(s, "c", id, id);
  }
  ASSERT_EQ(del(s, "c", "2"), 0);
  ASSERT_EQ(del(s, "c", "2"), -ENOENT);
  ASSERT_EQ(del(s, "c", "0"), 0);
  ASSERT_EQ(del(s, "c", "4"), 0);
  ASSERT_EQ(del(s, "x", "1"), -ENOENT);
  ASSERT_EQ(del(s, "c", ""), -ENOENT);
  ASSERT_EQ(count(s, "c"), 2);
  ASSERT_STR_EQ(list(s, "c", 0, 0), "1=1,3=3");
  ASSERT(get(s, "c", "2") == NULL);
  /* A deleted id put again goes to the end. */
  put(s, "c", "0", "again");
  ASSERT_STR_EQ(list(s, "c", 0, 0), "1=1,3=3,0=again");
  put(s, "d", "x", "y");
  ASSERT_STR_EQ(colls(s), "c:3,d:1");
  del(s, "c", "1");
  del(s, "c", "3");
  del(s, "c", "0");
  ASSERT_STR_EQ(colls(s), "d:1");
  ASSERT_EQ(count(s, "c"), 0);
  store_close(s);
}

TEST(test_list_offset_limit) {
  store_t *s = open_mem();
  for (int i = 0; i < 10; i++) {
    char id[16];
    snprintf(id, sizeof id, "%d", i);
    put(s, "c", id, "v");
  }
  ASSERT_STR_EQ(list(s, "c", 0, 3), "0=v,1=v,2=v");
  ASSERT_STR_EQ(list(s, "c", 3, 2), "3=v,4=v");
  ASSERT_STR_EQ(list(s, "c", 5, 0), "5=v,6=v,7=v,8=v,9=v");
  ASSERT_STR_EQ(list(s, "c", 8, 5), "8=v,9=v"); /* walked from the tail */
  ASSERT_STR_EQ(list(s, "c", 9, 1), "9=v");
  ASSERT_STR_EQ(list(s, "c", 10, 0), "");
  ASSERT_STR_EQ(list(s, "c", (size_t)-1, 0), "");
  ASSERT_STR_EQ(list(s, "nope", 0, 0), "");
  acc_t a = {.stop_after = 2};
  ASSERT_EQ(store_list(s, "c", 1, 4, 0, acc_doc, &a), 7);
  ASSERT_STR_EQ(a.out, "4=v,5=v");
  store_close(s);
}

TEST(test_collections) {
  store_t *s = open_mem();
  ASSERT_STR_EQ(colls(s), "");
  put(s, "b", "1", "x");
  put(s, "a", "1", "x");
  put(s, "b", "2", "x");
  put(s, "c", "1", "x");
  ASSERT_STR_EQ(colls(s), "b:2,a:1,c:1");
  /* Gone when empty, and created anew (at the end) by the next put. */
  del(s, "a", "1");
  ASSERT_STR_EQ(colls(s), "b:2,c:1");
  put(s, "a", "1", "x");
  ASSERT_STR_EQ(colls(s), "b:2,c:1,a:1");
  acc_t a = {.stop_after = 1};
  ASSERT_EQ(store_collections(s, acc_coll, &a), 9);
  ASSERT_STR_EQ(a.out, "b:2");
  /* Many collections: their table grows and shrinks. */
  for (int i = 0; i < 1000; i++) {
    char c[16];
    snprintf(c, sizeof c, "coll%d", i);
    ASSERT_EQ(put(s, c, "id", c), 0);
  }
  for (int i = 0; i < 1000; i++) {
    char c[16];
    snprintf(c, sizeof c, "coll%d", i);
    ASSERT_STR_EQ(get(s, c, "id"), c);
    ASSERT_EQ(i % 3 ? store_clear(s, c, strlen(c)) : del(s, c, "id"), 0);
  }
  ASSERT_STR_EQ(colls(s), "b:2,c:1,a:1");
  store_close(s);
}

TEST(test_clear) {
  store_t *s = open_mem();
  put(s, "a", "1", "x");
  put(s, "a", "2", "x");
  put(s, "b", "1", "y");
  put(s, "c", "1", "z");
  ASSERT_EQ(store_clear(s, "a", 1), 0);
  ASSERT_EQ(count(s, "a"), 0);
  ASSERT(get(s, "a", "1") == NULL);
  ASSERT_STR_EQ(colls(s), "b:1,c:1");
  ASSERT_EQ(store_clear(s, "nope", 4), 0);
  ASSERT_EQ(store_clear(s, "a", 0), -EINVAL);
  put(s, "a", "3", "x");
  ASSERT_STR_EQ(colls(s), "b:1,c:1,a:1");
  ASSERT_EQ(store_clear(s, NULL, 0), 0);
  ASSERT_STR_EQ(colls(s), "");
  ASSERT(get(s, "b", "1") == NULL);
  ASSERT_EQ(store_clear(s, NULL, 0), 0);
  /* Usable after clearing everything. */
  ASSERT_EQ(put(s, "b", "1", "again"), 0);
  ASSERT_STR_EQ(get(s, "b", "1"), "again");
  ASSERT_STR_EQ(colls(s), "b:1");
  store_close(s);
}

static const char bin_coll[] = {'c', 0, (char)0xff, '\n'};
static const char bin_id[] = {0, 0, 'x', (char)0x80};
static const char bin_val[] = {'v', 0, (char)0xfe, 0, (char)0xff, '"', '\\'};

static void put_binary(store_t *s) {
  ASSERT_EQ(
      store_put(s, bin_coll, sizeof bin_coll, bin_id, sizeof bin_id, bin_val, sizeof bin_val), 0);
  /* Same bytes up to a NUL must be a different key. */
  ASSERT_EQ(store_put(s, bin_coll, sizeof bin_coll, bin_id, 1, "short", 5), 0);
  ASSERT_EQ(store_put(s, bin_coll, 1, bin_id, sizeof bin_id, "c only", 6), 0);
}

static void check_binary(store_t *s) {
  const void *v;
  size_t n;
  ASSERT_EQ(store_get(s, bin_coll, sizeof bin_coll, bin_id, sizeof bin_id, &v, &n), 0);
  ASSERT_EQ(n, sizeof bin_val);
  ASSERT(memcmp(v, bin_val, n) == 0);
  ASSERT_EQ(store_get(s, bin_coll, sizeof bin_coll, bin_id, 1, &v, &n), 0);
  ASSERT_MEM_EQ(v, n, "short");
  ASSERT_EQ(store_get(s, bin_coll, 1, bin_id, sizeof bin_id, &v, &n), 0);
  ASSERT_MEM_EQ(v, n, "c only");
  ASSERT_EQ(store_get(s, bin_coll, sizeof bin_coll, bin_id, 2, &v, &n), -ENOENT);
  ASSERT_EQ(store_count(s, bin_coll, sizeof bin_coll), 2);
  ASSERT_EQ(store_count(s, bin_coll, 1), 1);
}

TEST(test_binary) {
  store_t *s = open_mem();
  put_binary(s);
  check_binary(s);
  store_close(s);
}

TEST(test_limits) {
  store_t *s = open_mem();
  static char big[STORE_MAX_KEY + 1];
  memset(big, 'k', sizeof big);
  ASSERT_EQ(store_put(s, "", 0, "id", 2, "v", 1), -EINVAL);
  ASSERT_EQ(store_put(s, "c", 1, "", 0, "v", 1), -EINVAL);
  ASSERT_EQ(store_put(s, NULL, 1, "id", 2, "v", 1), -EINVAL);
  ASSERT_EQ(store_put(s, "c", 1, NULL, 2, "v", 1), -EINVAL);
  ASSERT_EQ(store_put(s, "c", 1, "id", 2, NULL, 1), -EINVAL);
  ASSERT_EQ(store_put(s, big, STORE_MAX_KEY + 1, "id", 2, "v", 1), -EINVAL);
  ASSERT_EQ(store_put(s, "c", 1, big, STORE_MAX_KEY + 1, "v", 1), -EINVAL);
  ASSERT_EQ(store_put(s, big, STORE_MAX_KEY, big, STORE_MAX_KEY, "v", 1), 0);
  ASSERT_EQ(store_put(s, "c", 1, "null", 4, NULL, 0), 0);
  ASSERT_STR_EQ(get(s, "c", "null"), "");
  char *huge = malloc(STORE_MAX_VALUE + 1);
  ASSERT(huge);
  memset(huge, 'h', STORE_MAX_VALUE + 1);
  ASSERT_EQ(store_put(s, "c", 1, "h", 1, huge, STORE_MAX_VALUE + 1), -EINVAL);
  ASSERT_EQ(store_put(s, "c", 1, "h", 1, huge, STORE_MAX_VALUE), 0);
  free(huge);
  const void *v;
  size_t n;
  ASSERT_EQ(store_get(s, "c", 1, "h", 1, &v, &n), 0);
  ASSERT_EQ(n, STORE_MAX_VALUE);
  ASSERT_EQ(((const char *)v)[n - 1], 'h');
  ASSERT_EQ(store_get(s, big, STORE_MAX_KEY, big, STORE_MAX_KEY, &v, &n), 0);
  ASSERT_EQ(store_get(s, big, STORE_MAX_KEY + 1, big, STORE_MAX_KEY, &v, &n), -ENOENT);
  ASSERT_EQ(store_get(s, "c", 0, "h", 1, &v, &n), -ENOENT);
  ASSERT_EQ(store_delete(s, "c", 1, "", 0), -ENOENT);
  ASSERT_EQ(store_count(s, "", 0), 0);
  ASSERT_EQ(store_clear(s, big, STORE_MAX_KEY + 1), -EINVAL);
  /* Nothing refused was stored. */
  char want[STORE_MAX_KEY + 16];
  snprintf(want, sizeof want, "%.*s:1,c:2", STORE_MAX_KEY, big);
  ASSERT_STR_EQ(colls(s), want);
  store_close(s);
}

/* A value pointer survives every write that is not to its own document. */
TEST(test_pointer_stable) {
  store_t *s = open_mem();
  put(s, "c", "keep", "kept value");
  const char *v = get(s, "c", "keep");
  for (int i = 0; i < 20000; i++) {
    char id[16];
    snprintf(id, sizeof id, "id%d", i);
    put(s, "c", id, id);
    put(s, "other", id, id);
  }
  for (int i = 0; i < 20000; i++) {
    char id[16];
    snprintf(id, sizeof id, "id%d", i);
    del(s, "c", id); /* the table shrinks */
  }
  store_clear(s, "other", 5);
  ASSERT_STR_EQ(v, "kept value");
  ASSERT(get(s, "c", "keep") == v);
  store_close(s);
}

/* ---- the hash table's incremental resize ---- */

/* Items are looked up by a string key; these tests use documents as items. */
static doc_t *tdoc(int i) {
  char id[16];
  snprintf(id, sizeof id, "k%d", i);
  doc_t *d = store_doc_new(id, strlen(id), "", 0);
  ASSERT(d);
  return d;
}

static uint32_t thash(int i) {
  char id[16];
  snprintf(id, sizeof id, "k%d", i);
  uint32_t h = 2166136261u; /* FNV-1a: any spread will do here */
  for (const char *p = id; *p; p++)
    h = (h ^ (unsigned char)*p) * 16777619u;
  return h ? h : 1;
}

static doc_t *tget(table_t *t, int i) {
  char id[16];
  snprintf(id, sizeof id, "k%d", i);
  slot_t *sl = store_tab_get(t, thash(i), id, strlen(id), false);
  return sl ? sl->item : NULL;
}

/* A table that fills past 3/4 starts a new array and drains the old one a
 * few slots per operation: no add rehashes everything, every item stays
 * findable meanwhile, and deletes work in either array. */
TEST(test_table_grows_incrementally) {
  enum { N = 20000 };
  static doc_t *docs[N];
  table_t t = {0};
  size_t grows = 0, max_drain_ops = 0, ops = 0;
  for (int i = 0; i < N; i++) {
    docs[i] = tdoc(i);
    size_t cap = t.cap;
    ASSERT_EQ(store_tab_reserve(&t), 0);
    store_tab_add(&t, thash(i), docs[i]);
    if (t.cap != cap && cap != 0) {
      grows++;
      if (cap > 64) { /* a small one drains at once */
        ASSERT(t.old != NULL);
        ASSERT(t.moved < t.old_cap);
      }
      ops = 0;
    }
    if (t.old)
      ops++;
    else if (ops) {
      max_drain_ops = ops > max_drain_ops ? ops : max_drain_ops;
      ops = 0;
    }
    /* Every third add: delete an earlier one (in the old array or the new). */
    if (i % 3 == 2) {
      slot_t *sl = store_tab_get(&t, thash(i - 1), docs[i - 1]->data, docs[i - 1]->idlen, false);
      ASSERT(sl && sl->item == docs[i - 1]);
      store_tab_del(&t, sl);
      free(docs[i - 1]);
      docs[i - 1] = NULL;
    }
    if (i % 997 == 0)
      for (int k = 0; k <= i; k++)
        ASSERT(tget(&t, k) == docs[k]);
  }
  ASSERT(grows >= 10);
  ASSERT(max_drain_ops > 1); /* drained over many operations, not at once */
  size_t n = 0;
  for (int k = 0; k < N; k++) {
    ASSERT(tget(&t, k) == docs[k]);
    n += docs[k] != NULL;
  }
  ASSERT_EQ(t.len, n);
  /* Deleting nearly all of them shrinks the table, again step by step. */
  size_t peak = t.cap;
  for (int k = 0; k < N; k++) {
    if (docs[k] == NULL || k % 50 == 0)
      continue;
    store_tab_del(&t, store_tab_get(&t, thash(k), docs[k]->data, docs[k]->idlen, false));
    store_tab_shrink(&t);
    free(docs[k]);
    docs[k] = NULL;
  }
  ASSERT(t.cap < peak / 8);
  for (int k = 0; k < N; k++) {
    ASSERT(tget(&t, k) == docs[k]);
    free(docs[k]);
  }
  store_tab_free(&t);
}

/* ---- random operations against a model ---- */

#define M_COLLS 3
#define M_IDS 150000

typedef struct mslot {
  uint64_t seq; /* insertion order; 0: absent */
  uint32_t ver;
} mslot_t;

typedef struct model {
  mslot_t doc[M_COLLS][M_IDS];
  size_t count[M_COLLS];
  uint64_t coll_seq[M_COLLS]; /* creation order of non-empty collections */
  uint64_t seq;
} model_t;

static model_t model;
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static const char *m_coll(int c) {
  static const char *names[M_COLLS] = {"alpha", "beta", "gamma"};
  return names[c];
}

static void m_id(int i, char *out) { snprintf(out, 16, "id-%d", i); }

/* A value whose length and bytes depend on (collection, id, version). */
static size_t m_val(int c, int i, uint32_t ver, char *out) {
  int n = snprintf(out, 64, "{\"c\":%d,\"i\":%d,\"v\":%u,\"pad\":\"", c, i, ver);
  int pad = (int)((ver * 7 + (uint32_t)i) % 40);
  memset(out + n, 'p', (size_t)pad);
  memcpy(out + n + pad, "\"}", 3);
  return (size_t)n + (size_t)pad + 2;
}

static void m_put(store_t *s, int c, int i) {
  char id[16], val[128];
  m_id(i, id);
  mslot_t *d = &model.doc[c][i];
  uint32_t ver = d->ver + 1;
  size_t n = m_val(c, i, ver, val);
  ASSERT_EQ(store_put(s, m_coll(c), strlen(m_coll(c)), id, strlen(id), val, n), 0);
  d->ver = ver;
  if (d->seq == 0) {
    if (model.count[c]++ == 0)
      model.coll_seq[c] = ++model.seq;
    d->seq = ++model.seq;
  }
}

static void m_del(store_t *s, int c, int i) {
  char id[16];
  m_id(i, id);
  mslot_t *d = &model.doc[c][i];
  int rc = store_delete(s, m_coll(c), strlen(m_coll(c)), id, strlen(id));
  ASSERT_EQ(rc, d->seq ? 0 : -ENOENT);
  if (d->seq) {
    d->seq = 0;
    model.count[c]--;
  }
}

static void m_clear(store_t *s, int c) {
  ASSERT_EQ(store_clear(s, c < 0 ? NULL : m_coll(c), c < 0 ? 0 : strlen(m_coll(c))), 0);
  for (int k = 0; k < M_COLLS; k++) {
    if (c >= 0 && k != c)
      continue;
    for (int i = 0; i < M_IDS; i++)
      model.doc[k][i].seq = 0;
    model.count[k] = 0;
  }
}

static void m_check_get(store_t *s, int c, int i) {
  char id[16], val[128];
  m_id(i, id);
  const void *v;
  size_t n;
  int rc = store_get(s, m_coll(c), strlen(m_coll(c)), id, strlen(id), &v, &n);
  mslot_t *d = &model.doc[c][i];
  if (d->seq == 0) {
    ASSERT_EQ(rc, -ENOENT);
    return;
  }
  ASSERT_EQ(rc, 0);
  size_t want = m_val(c, i, d->ver, val);
  ASSERT_EQ(n, want);
  ASSERT(memcmp(v, val, n) == 0);
}

typedef struct mcheck {
  int c;
  int *order; /* ids in model order */
  size_t at;
} mcheck_t;

static int m_list_doc(void *arg, const char *id, size_t idlen, const void *val, size_t vlen) {
  mcheck_t *k = arg;
  char want_id[16], want_val[128];
  int i = k->order[k->at++];
  m_id(i, want_id);
  ASSERT_MEM_EQ(id, idlen, want_id);
  size_t n = m_val(k->c, i, model.doc[k->c][i].ver, want_val);
  ASSERT_EQ(vlen, n);
  ASSERT(memcmp(val, want_val, n) == 0);
  return 0;
}

static int by_seq_c;
static int cmp_seq(const void *a, const void *b) {
  uint64_t x = model.doc[by_seq_c][*(const int *)a].seq;
  uint64_t y = model.doc[by_seq_c][*(const int *)b].seq;
  return x < y ? -1 : x > y;
}

/* Every document, the order of every collection and of the collections. */
static void m_check_all(store_t *s) {
  static int order[M_IDS];
  char want[256] = "";
  int idx[M_COLLS], n = 0;
  for (int c = 0; c < M_COLLS; c++)
    if (model.count[c])
      idx[n++] = c;
  for (int a = 0; a < n; a++) /* few collections: insertion sort by creation */
    for (int b = a; b > 0 && model.coll_seq[idx[b]] < model.coll_seq[idx[b - 1]]; b--) {
      int t = idx[b];
      idx[b] = idx[b - 1];
      idx[b - 1] = t;
    }
  for (int a = 0; a < n; a++) {
    size_t l = strlen(want);
    snprintf(want + l, sizeof want - l, "%s%s:%zu", a ? "," : "", m_coll(idx[a]),
             model.count[idx[a]]);
  }
  ASSERT_STR_EQ(colls(s), want);
  for (int c = 0; c < M_COLLS; c++) {
    size_t k = 0;
    for (int i = 0; i < M_IDS; i++)
      if (model.doc[c][i].seq)
        order[k++] = i;
    ASSERT_EQ(k, model.count[c]);
    ASSERT_EQ(store_count(s, m_coll(c), strlen(m_coll(c))), k);
    by_seq_c = c;
    qsort(order, k, sizeof order[0], cmp_seq);
    mcheck_t mc = {c, order, 0};
    ASSERT_EQ(store_list(s, m_coll(c), strlen(m_coll(c)), 0, 0, m_list_doc, &mc), 0);
    ASSERT_EQ(mc.at, k);
    if (k > 10) { /* a slice from the middle, walked from either end */
      mc.at = k / 3;
      ASSERT_EQ(store_list(s, m_coll(c), strlen(m_coll(c)), k / 3, 5, m_list_doc, &mc), 0);
      ASSERT_EQ(mc.at, k / 3 + 5);
      mc.at = k - 4;
      ASSERT_EQ(store_list(s, m_coll(c), strlen(m_coll(c)), k - 4, 0, m_list_doc, &mc), 0);
      ASSERT_EQ(mc.at, k);
    }
  }
}

/* One random step: mostly puts (inserts and replaces), deletes, gets. */
static void m_step(store_t *s, int ids) {
  int c = (int)(rnd() % M_COLLS), i = (int)(rnd() % (uint64_t)ids);
  unsigned r = (unsigned)(rnd() % 100);
  if (r < 65)
    m_put(s, c, i);
  else if (r < 85)
    m_del(s, c, i);
  else
    m_check_get(s, c, i);
}

TEST(test_random_model) {
  store_t *s = open_mem();
  size_t peak = 0;
  for (int op = 1; op <= 400000; op++) {
    m_step(s, M_IDS);
    if (op == 250000)
      m_clear(s, 1);
    if (op % 100000 == 0)
      m_check_all(s);
    size_t total = model.count[0] + model.count[1] + model.count[2];
    peak = total > peak ? total : peak;
  }
  ASSERT(peak >= 100000);
  for (int c = 0; c < M_COLLS; c++)
    for (int i = 0; i < M_IDS; i += 7)
      m_check_get(s, c, i);
  m_check_all(s);
  /* Drain one collection completely through deletes: shrinks to nothing. */
  for (int i = 0; i < M_IDS; i++)
    if (model.doc[0][i].seq)
      m_del(s, 0, i);
  m_check_all(s);
  m_clear(s, -1);
  m_check_all(s);
  store_close(s);
}

/* ---- persistence ---- */

TEST(test_persist_roundtrip) {
  const char *dir = mkdir_tmp();
  store_t *s = open_at(dir, 0);
  put(s, "users", "u1", "ann");
  put(s, "users", "u2", "bob");
  put(s, "posts", "p1", "hello");
  put(s, "users", "u3", "cid");
  put(s, "users", "u1", "ann v2"); /* replaced in place */
  del(s, "users", "u2");
  put(s, "gone", "g", "x");
  store_clear(s, "gone", 4);
  put(s, "tmp", "t", "x");
  del(s, "tmp", "t");
  put_binary(s);
  ASSERT_EQ(store_sync(s), 0);
  ASSERT(file_size(path(LOG)) > FHDR);
  store_close(s);

  for (int round = 0; round < 2; round++) { /* replayed from the log, then the snapshot */
    s = open_at(dir, 0);
    ASSERT_EQ(file_size(path(LOG)), FHDR); /* compacted at open */
    ASSERT(file_size(path(SNAP)) > 0);
    ASSERT_EQ(file_size(path(TMP)), -1);
    ASSERT_STR_EQ(list(s, "users", 0, 0), "u1=ann v2,u3=cid");
    ASSERT_STR_EQ(list(s, "posts", 0, 0), "p1=hello");
    check_binary(s);
    ASSERT_EQ(count(s, "gone"), 0);
    ASSERT_EQ(count(s, "tmp"), 0);
    const char *c = colls(s);
    ASSERT(strncmp(c, "users:2,posts:1,", 16) == 0);
    store_close(s);
  }

  /* Clear everything, persistently. */
  s = open_at(dir, 0);
  ASSERT_EQ(store_clear(s, NULL, 0), 0);
  put(s, "after", "a", "1");
  store_close(s);
  s = open_at(dir, 0);
  ASSERT_STR_EQ(colls(s), "after:1");
  store_close(s);
  cleanup_dirs();
}

TEST(test_creates_dir) {
  mkdir_tmp();
  const char *dir = path("x/y/z");
  store_t *s = open_at(dir, 0);
  put(s, "c", "1", "x");
  store_close(s);
  struct stat st;
  ASSERT_EQ(stat(dir, &st), 0);
  s = open_at(dir, 0);
  ASSERT_STR_EQ(get(s, "c", "1"), "x");
  store_close(s);
  char err[256];
  ASSERT(open_fails("/proc/self/no/such/dir", err, sizeof err) < 0);
  ASSERT_CONTAINS(err, "cannot create");
  cleanup_dirs();
}

TEST(test_lock) {
  const char *dir = mkdir_tmp();
  store_t *s = open_at(dir, 0);
  char err[256] = "";
  ASSERT_EQ(open_fails(dir, err, sizeof err), -EBUSY);
  ASSERT_CONTAINS(err, "in use");
  store_close(s);
  s = open_at(dir, 0);
  store_close(s);
  cleanup_dirs();
}

TEST(test_compaction) {
  const char *dir = mkdir_tmp();
  store_t *s = open_at(dir, 4096);
  for (int op = 1; op <= 3000; op++) {
    m_step(s, 300);
    /* Compactions run off the loop: the log holds what came after the
     * last one started, so it stays near the threshold when they can
     * keep up (here: waited for every 100 steps, each under 120 bytes). */
    if (op % 100 == 0) {
      wait_compacted(s);
      ASSERT(file_size(path(LOG)) <= FHDR + 4096 + 100 * 120);
    }
  }
  ASSERT(file_size(path(SNAP)) > 0);
  m_check_all(s);
  store_close(s);
  s = open_at(dir, 4096);
  m_check_all(s);
  for (int op = 0; op < 500; op++)
    m_step(s, 300);
  m_clear(s, 2);
  m_step(s, 300);
  store_close(s);
  s = open_at(dir, 0);
  m_check_all(s);
  store_close(s);
  cleanup_dirs();
}

/* A link planted at the temporary snapshot's name: compaction writes a new
 * file of its own, never the link's target. */
TEST(test_compaction_never_writes_through_a_link) {
  const char *dir = mkdir_tmp();
  store_t *s = open_at(dir, 4096);
  append_bytes(path("victim"), "precious", 8);
  ASSERT_EQ(symlink(path("victim"), path(TMP)), 0);
  char v[300];
  memset(v, 'v', sizeof v - 1);
  v[sizeof v - 1] = '\0';
  for (int i = 0; i < 40; i++) { /* 40 x 300 bytes: past the 4096 of the threshold */
    char id[16];
    snprintf(id, sizeof id, "%d", i);
    ASSERT_EQ(put(s, "c", id, v), 0);
  }
  wait_compacted(s);
  ASSERT(file_size(path(LOG)) < 40 * 300); /* it compacted */
  ASSERT_EQ(file_size(path("victim")), 8);
  struct stat st;
  ASSERT_EQ(lstat(path(SNAP), &st), 0);
  ASSERT(S_ISREG(st.st_mode));
  ASSERT_EQ(lstat(path(TMP), &st), -1);
  store_close(s);
  s = open_at(dir, 0);
  ASSERT_EQ(count(s, "c"), 40);
  store_close(s);
  cleanup_dirs();
}

TEST(test_write_failure) {
  /* A file-size limit makes the next append fail part way, like a full
   * disk: the writes of that batch are undone, the store refuses writes,
   * and takes them again once a retry commits. */
  const char *dir = mkdir_tmp();
  store_t *s = open_at(dir, 0);
  put(s, "c", "a", "1");
  put(s, "c", "b", "2");
  ASSERT_EQ(store_sync(s), 0);
  off_t size = file_size(path(LOG));
  signal(SIGXFSZ, SIG_IGN);
  struct rlimit old, lim;
  getrlimit(RLIMIT_FSIZE, &old);
  lim = old;
  lim.rlim_cur = (rlim_t)size + 40;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &lim), 0);
  static char big[1000];
  memset(big, 'x', sizeof big - 1);
  /* One batch of four: while the test holds the writer's lock, the writes
   * stay with the loop (it never waits for that lock) until store_sync.
   * Otherwise the writer may take the first ones, fail, and have the later
   * ones refused before they are made. */
  pthread_mutex_lock(&s->w.mu);
  ASSERT_EQ(put(s, "c", "new", big), 0); /* in memory at once */
  ASSERT_EQ(put(s, "c", "a", big), 0);
  ASSERT_EQ(put(s, "fresh", "x", big), 0);
  ASSERT_EQ(del(s, "c", "b"), 0);
  ASSERT_STR_EQ(colls(s), "c:2,fresh:1");
  pthread_mutex_unlock(&s->w.mu);
  ASSERT_EQ(quietly(store_sync, s), -ENOSPC);
  ASSERT_EQ(file_size(path(LOG)), size); /* what reached the file was cut away */
  ASSERT_STR_EQ(list(s, "c", 0, 0), "a=1,b=2");
  ASSERT_STR_EQ(colls(s), "c:2");
  char why[256];
  ASSERT_EQ(store_status(s, why, sizeof why), -ENOSPC);
  ASSERT_CONTAINS(why, "is full (File too large): writes are refused until a retry succeeds");
  ASSERT_EQ(put(s, "c", "d", "4"), -ENOSPC);
  ASSERT_EQ(del(s, "c", "a"), -ENOSPC);
  ASSERT_EQ(store_clear(s, NULL, 0), -ENOSPC);
  ASSERT_STR_EQ(list(s, "c", 0, 0), "a=1,b=2");
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &old), 0);
  ASSERT_EQ(store_sync(s), 0); /* the retry, within a second */
  ASSERT_EQ(store_status(s, why, sizeof why), 0);
  ASSERT_EQ(put(s, "c", "d", "4"), 0);
  store_close(s);
  s = open_at(dir, 0);
  ASSERT_STR_EQ(list(s, "c", 0, 0), "a=1,b=2,d=4");
  ASSERT_STR_EQ(colls(s), "c:3");
  store_close(s);
  cleanup_dirs();
}

TEST(test_persist_random) {
  const char *dir = mkdir_tmp();
  store_t *s = open_at(dir, 16384);
  for (int op = 1; op <= 3000; op++) {
    m_step(s, 500);
    if (op % 1000 == 0) {
      store_close(s);
      s = open_at(dir, 16384);
      m_check_all(s);
    }
  }
  store_close(s);
  cleanup_dirs();
}

/* Kill -9 while writing: every write that returned is there after. */
static void kill9_round(int kill_after) {
  const char *dir = mkdir_tmp();
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    /* A small threshold: compactions happen all the time, and the kill lands
     * in one now and then. */
    store_t *s = open_at(dir, 8192);
    static char val[3000];
    /* Groups of 5 writes, acknowledged once store_sync says they are
     * durable: one group commit each. */
    for (uint32_t i = 0;; i++) {
      char id[16];
      snprintf(id, sizeof id, "k%u", i);
      memset(val, 'a' + (int)(i % 26), sizeof val - 1);
      if (store_put(s, "c", 1, id, strlen(id), val, 100 + i % 2800) != 0)
        _exit(3);
      if (i % 5 == 4) {
        if (store_sync(s) != 0)
          _exit(5);
        if (write(fds[1], &i, sizeof i) != sizeof i)
          _exit(4);
      }
    }
  }
  close(fds[1]);
  uint32_t acked = 0, i;
  int n = 0;
  while (read(fds[0], &i, sizeof i) == sizeof i) {
    acked = i + 1;
    if (++n == kill_after)
      kill(pid, SIGKILL);
  }
  close(fds[0]);
  int status;
  waitpid(pid, &status, 0);
  ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  store_t *s = open_at(dir, 0);
  ASSERT(count(s, "c") >= acked);
  ASSERT(count(s, "c") <= acked + 5);
  for (i = 0; i < acked; i++) {
    char id[16];
    snprintf(id, sizeof id, "k%u", i);
    const void *v;
    size_t len;
    ASSERT_EQ(store_get(s, "c", 1, id, strlen(id), &v, &len), 0);
    ASSERT_EQ(len, 100 + i % 2800);
    ASSERT_EQ(((const char *)v)[0], 'a' + (int)(i % 26));
  }
  store_close(s);
}

/* Kill -9 while writing: every write that returned is there after. */
TEST(test_kill9) {
  for (int round = 0; round < 4; round++)
    kill9_round(40 + 53 * round);
  cleanup_dirs();
}

/* ---- uuid ---- */

static int cmp_uuid(const void *a, const void *b) { return memcmp(a, b, 36); }

TEST(test_uuid) {
  enum { N = 100000 };
  char(*all)[37] = malloc(N * sizeof *all);
  ASSERT(all);
  for (int k = 0; k < N; k++) {
    char *u = all[k];
    store_uuid(u);
    ASSERT_EQ(strlen(u), 36);
    for (int i = 0; i < 36; i++) {
      if (i == 8 || i == 13 || i == 18 || i == 23)
        ASSERT_EQ(u[i], '-');
      else
        ASSERT((u[i] >= '0' && u[i] <= '9') || (u[i] >= 'a' && u[i] <= 'f'));
    }
    ASSERT_EQ(u[14], '4');
    ASSERT(strchr("89ab", u[19]) != NULL);
  }
  /* Every variable nibble takes more than one value. */
  int seen[36][16] = {{0}};
  for (int k = 0; k < 1000; k++)
    for (int i = 0; i < 36; i++)
      if (all[k][i] != '-')
        seen[i][all[k][i] <= '9' ? all[k][i] - '0' : all[k][i] - 'a' + 10] = 1;
  for (int i = 0; i < 36; i++) {
    int kinds = 0;
    for (int d = 0; d < 16; d++)
      kinds += seen[i][d];
    ASSERT_EQ(kinds, i == 8 || i == 13 || i == 18 || i == 23 ? 0 : i == 14 ? 1 : i == 19 ? 4 : 16);
  }
  qsort(all, N, sizeof *all, cmp_uuid);
  for (int k = 1; k < N; k++)
    ASSERT(memcmp(all[k - 1], all[k], 36) != 0);
  free(all);
}

UNIT_MAIN(test_put_get, test_replace_keeps_position, test_delete, test_list_offset_limit,
          test_collections, test_clear, test_binary, test_limits, test_pointer_stable,
          test_table_grows_incrementally, test_random_model, test_persist_roundtrip,
          test_creates_dir, test_lock, test_compaction,
          test_compaction_never_writes_through_a_link, test_write_failure, test_persist_random,
          test_kill9, test_uuid)
