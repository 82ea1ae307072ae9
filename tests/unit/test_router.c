/* test_router.c - the URL router: rule syntax and errors, converters,
 * priority and backtracking, 404/405/308 decisions, many rules. */
#include "router.h"
#include "unit.h"

#include <errno.h>
#include <stdbool.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

enum { GET, POST, PUT, DELETE };
#define BIT(m) ((uint64_t)1 << (m))

/* Paths are copied to the very end of this array, without a NUL, so that
 * reading a byte past the path is a global-buffer-overflow under ASan. */
static char pathbuf[1 << 17];

/* An allocator that grants `*arg` more allocations, then fails (-1: never
 * fails). */
static void *rationed(void *arg, void *p, size_t n) {
  long *left = arg;
  if (*left == 0)
    return NULL;
  if (*left > 0)
    (*left)--;
  return realloc(p, n);
}

static router_t *mk(void) {
  router_t *r = router_new();
  ASSERT(r != NULL);
  return r;
}

static void add_(router_t *r, const char *rule, uint64_t methods, bool strict, int id) {
  char err[256];
  int rc = router_add(r, rule, methods, strict, id, err, sizeof err);
  if (rc != 0)
    UNIT_FAIL("router_add(\"%s\") = %d: %s", rule, rc, err);
}

static void add(router_t *r, const char *rule, int id) { add_(r, rule, BIT(GET), true, id); }

static int match_n(const router_t *r, const char *path, size_t len, int method,
                   router_match_t *m) {
  ASSERT(len <= sizeof pathbuf);
  char *p = pathbuf + sizeof pathbuf - len;
  memcpy(p, path, len);
  return router_match(r, p, len, method, m);
}

static int match(const router_t *r, const char *path, int method, router_match_t *m) {
  return match_n(r, path, strlen(path), method, m);
}

/* The id of the rule a GET of `path` finds, or -1 for any other answer. */
static int get(const router_t *r, const char *path) {
  router_match_t m;
  return match(r, path, GET, &m) == ROUTER_FOUND ? m.rule : -1;
}

/* The error router_add gives for `rule`; checks it is -EINVAL and that the
 * router still answers as before. */
static const char *refuse(router_t *r, const char *rule) {
  static char err[256];
  size_t before = router_count(r);
  int rc = router_add(r, rule, BIT(GET), true, 999, err, sizeof err);
  ASSERT_EQ(rc, -EINVAL);
  ASSERT_EQ(router_count(r), before);
  return err;
}

TEST(root_rule) {
  router_t *r = mk();
  add(r, "/", 1);
  router_match_t m;
  ASSERT_EQ(match(r, "/", GET, &m), ROUTER_FOUND);
  ASSERT_EQ(m.rule, 1);
  ASSERT_EQ(m.nvars, 0);
  ASSERT_EQ(m.allowed, BIT(GET));
  ASSERT_EQ(match(r, "//", GET, &m), ROUTER_NOT_FOUND);
  ASSERT_EQ(match(r, "/x", GET, &m), ROUTER_NOT_FOUND);
  ASSERT_EQ(match_n(r, "", 0, GET, &m), ROUTER_NOT_FOUND);
  ASSERT_EQ(match(r, "x", GET, &m), ROUTER_NOT_FOUND);
  ASSERT_EQ(router_count(r), 1);
  router_free(r);
}

TEST(static_rules) {
  router_t *r = mk();
  add(r, "/a", 1);
  add(r, "/a/b", 2);
  add(r, "/a/b/c", 3);
  add(r, "/b/a", 4);
  add(r, "/a b", 5);
  ASSERT_EQ(get(r, "/a"), 1);
  ASSERT_EQ(get(r, "/a/b"), 2);
  ASSERT_EQ(get(r, "/a/b/c"), 3);
  ASSERT_EQ(get(r, "/b/a"), 4);
  ASSERT_EQ(get(r, "/a b"), 5);
  ASSERT_EQ(get(r, "/b"), -1);
  ASSERT_EQ(get(r, "/a/b/c/d"), -1);
  ASSERT_EQ(get(r, "/ab"), -1);
  ASSERT_EQ(get(r, "/A"), -1);
  router_free(r);
}

TEST(string_converter) {
  router_t *r = mk();
  add(r, "/s/<x>", 1);
  add(r, "/ss/<string:x>", 2);
  add(r, "/len/<string(length=3):x>", 3);
  add(r, "/mm/<string(minlength=2,maxlength=4):x>", 4);
  add(r, "/z/<string(minlength=0):x>/end", 5);
  add(r, "/d/<default:x>", 6);
  router_match_t m;
  ASSERT_EQ(match(r, "/s/a-b_c.d", GET, &m), ROUTER_FOUND);
  ASSERT_EQ(m.rule, 1);
  ASSERT_EQ(m.nvars, 1);
  ASSERT_MEM_EQ(m.vars[0].value, m.vars[0].len, "a-b_c.d");
  ASSERT_EQ(m.vars[0].conv, ROUTER_CONV_STRING);
  ASSERT_STR_EQ(m.vars[0].name, "x");
  ASSERT_EQ(get(r, "/s/"), -1);
  ASSERT_EQ(get(r, "/s/a/b"), -1);
  ASSERT_EQ(get(r, "/ss/xyz"), 2);
  ASSERT_EQ(get(r, "/len/abc"), 3);
  ASSERT_EQ(get(r, "/len/ab"), -1);
  ASSERT_EQ(get(r, "/len/abcd"), -1);
  /* lengths count characters: "é" is two bytes in UTF-8 */
  ASSERT_EQ(get(r, "/len/\xc3\xa9\xc3\xa9\xc3\xa9"), 3);
  ASSERT_EQ(get(r, "/len/\xc3\xa9\xc3\xa9"), -1);
  ASSERT_EQ(get(r, "/mm/a"), -1);
  ASSERT_EQ(get(r, "/mm/ab"), 4);
  ASSERT_EQ(get(r, "/mm/abcd"), 4);
  ASSERT_EQ(get(r, "/mm/abcde"), -1);
  ASSERT_EQ(match(r, "/z//end", GET, &m), ROUTER_FOUND);
  ASSERT_EQ(m.rule, 5);
  ASSERT_EQ(m.vars[0].len, 0);
  ASSERT_EQ(get(r, "/z/q/end"), 5);
  ASSERT_EQ(get(r, "/d/q"), 6);
  router_free(r);
}

TEST(int_converter) {
  router_t *r = mk();
  add(r, "/i/<int:id>", 1);
  add(r, "/ir/<int(min=1,max=10):n>", 2);
  add(r, "/ifd/<int(fixed_digits=3):n>", 3);
  add(r, "/is/<int(signed=True):n>", 4);
  add(r, "/isr/<int(signed=True, min=-5, max=-2):n>", 5);
  router_match_t m;
  ASSERT_EQ(match(r, "/i/42", GET, &m), ROUTER_FOUND);
  ASSERT_EQ(m.vars[0].conv, ROUTER_CONV_INT);
  ASSERT_MEM_EQ(m.vars[0].value, m.vars[0].len, "42");
  ASSERT_EQ(get(r, "/i/0"), 1);
  ASSERT_EQ(get(r, "/i/007"), 1);
  ASSERT_EQ(get(r, "/i/-3"), -1);
  ASSERT_EQ(get(r, "/i/+3"), -1);
  ASSERT_EQ(get(r, "/i/4.2"), -1);
  ASSERT_EQ(get(r, "/i/abc"), -1);
  ASSERT_EQ(get(r, "/i/12a"), -1);
  ASSERT_EQ(get(r, "/i/"), -1);
  ASSERT_EQ(get(r, "/i/9223372036854775807"), 1);
  ASSERT_EQ(get(r, "/i/9223372036854775808"), -1);
  ASSERT_EQ(get(r, "/i/99999999999999999999999"), -1);
  ASSERT_EQ(get(r, "/i/0000000000000000000000000001"), 1);
  ASSERT_EQ(get(r, "/ir/1"), 2);
  ASSERT_EQ(get(r, "/ir/10"), 2);
  ASSERT_EQ(get(r, "/ir/0"), -1);
  ASSERT_EQ(get(r, "/ir/11"), -1);
  ASSERT_EQ(get(r, "/ifd/007"), 3);
  ASSERT_EQ(get(r, "/ifd/123"), 3);
  ASSERT_EQ(get(r, "/ifd/7"), -1);
  ASSERT_EQ(get(r, "/ifd/1234"), -1);
  ASSERT_EQ(get(r, "/is/-5"), 4);
  ASSERT_EQ(get(r, "/is/5"), 4);
  ASSERT_EQ(get(r, "/is/-"), -1);
  ASSERT_EQ(get(r, "/is/--5"), -1);
  ASSERT_EQ(get(r, "/is/-9223372036854775808"), 4);
  ASSERT_EQ(get(r, "/is/-9223372036854775809"), -1);
  ASSERT_EQ(get(r, "/isr/-5"), 5);
  ASSERT_EQ(get(r, "/isr/-2"), 5);
  ASSERT_EQ(get(r, "/isr/-6"), -1);
  ASSERT_EQ(get(r, "/isr/-1"), -1);
  ASSERT_EQ(get(r, "/isr/3"), -1);
  router_free(r);
}

TEST(float_converter) {
  router_t *r = mk();
  add(r, "/f/<float:x>", 1);
  add(r, "/fs/<float(signed=True):x>", 2);
  add(r, "/fr/<float(min=0.5, max=2):x>", 3);
  router_match_t m;
  ASSERT_EQ(match(r, "/f/1.5", GET, &m), ROUTER_FOUND);
  ASSERT_EQ(m.vars[0].conv, ROUTER_CONV_FLOAT);
  ASSERT_MEM_EQ(m.vars[0].value, m.vars[0].len, "1.5");
  ASSERT_EQ(get(r, "/f/2.0"), 1);
  ASSERT_EQ(get(r, "/f/2"), -1);
  ASSERT_EQ(get(r, "/f/2."), -1);
  ASSERT_EQ(get(r, "/f/.5"), -1);
  ASSERT_EQ(get(r, "/f/1.2.3"), -1);
  ASSERT_EQ(get(r, "/f/-1.5"), -1);
  ASSERT_EQ(get(r, "/f/x.5"), -1);
  ASSERT_EQ(get(r, "/fs/-1.5"), 2);
  ASSERT_EQ(get(r, "/fs/1.5"), 2);
  ASSERT_EQ(get(r, "/fr/0.5"), 3);
  ASSERT_EQ(get(r, "/fr/2.0"), 3);
  ASSERT_EQ(get(r, "/fr/0.49"), -1);
  ASSERT_EQ(get(r, "/fr/2.000001"), -1);
  ASSERT_EQ(get(r, "/fr/0001.00000000000000000000000000000000000000000000000001"), 3);
  router_free(r);
}

TEST(uuid_converter) {
  router_t *r = mk();
  add(r, "/u/<uuid:id>", 1);
  router_match_t m;
  ASSERT_EQ(match(r, "/u/123e4567-e89b-12d3-a456-426614174000", GET, &m), ROUTER_FOUND);
  ASSERT_EQ(m.vars[0].conv, ROUTER_CONV_UUID);
  ASSERT_MEM_EQ(m.vars[0].value, m.vars[0].len, "123e4567-e89b-12d3-a456-426614174000");
  ASSERT_EQ(get(r, "/u/123E4567-E89B-12D3-A456-426614174ABC"), 1);
  ASSERT_EQ(get(r, "/u/123e4567-e89b-12d3-a456-42661417400"), -1);
  ASSERT_EQ(get(r, "/u/123e4567-e89b-12d3-a456-4266141740000"), -1);
  ASSERT_EQ(get(r, "/u/123e4567e89b12d3a456426614174000"), -1);
  ASSERT_EQ(get(r, "/u/123e4567-e89b-12d3-a456-42661417400g"), -1);
  ASSERT_EQ(get(r, "/u/123e4567_e89b-12d3-a456-426614174000"), -1);
  router_free(r);
}

TEST(any_converter) {
  router_t *r = mk();
  add(r, "/a/<any(red, green, 'dark blue'):c>", 1);
  add(r, "/b/<any(a,ab):x>c", 2);
  add(r, "/n/<any(\"v1\", 2):x>", 3);
  router_match_t m;
  ASSERT_EQ(match(r, "/a/green", GET, &m), ROUTER_FOUND);
  ASSERT_EQ(m.vars[0].conv, ROUTER_CONV_ANY);
  ASSERT_MEM_EQ(m.vars[0].value, m.vars[0].len, "green");
  ASSERT_EQ(get(r, "/a/red"), 1);
  ASSERT_EQ(get(r, "/a/dark blue"), 1);
  ASSERT_EQ(get(r, "/a/blue"), -1);
  ASSERT_EQ(get(r, "/a/re"), -1);
  ASSERT_EQ(get(r, "/a/redd"), -1);
  ASSERT_EQ(get(r, "/a/'dark blue'"), -1);
  /* "a" then "c" fails on "abc", so the second word is tried */
  ASSERT_EQ(match(r, "/b/abc", GET, &m), ROUTER_FOUND);
  ASSERT_MEM_EQ(m.vars[0].value, m.vars[0].len, "ab");
  ASSERT_EQ(get(r, "/b/ac"), 2);
  ASSERT_EQ(get(r, "/b/abbc"), -1);
  ASSERT_EQ(get(r, "/n/v1"), 3);
  ASSERT_EQ(get(r, "/n/2"), 3);
  router_free(r);
}

TEST(path_converter) {
  router_t *r = mk();
  add(r, "/p/<path:rest>", 1);
  add(r, "/pe/<path:rest>/edit", 2);
  add(r, "/q/<path:a>/<int:n>", 3);
  add(r, "/m/<path:a>.json", 4);
  router_match_t m;
  ASSERT_EQ(match(r, "/p/a", GET, &m), ROUTER_FOUND);
  ASSERT_EQ(m.vars[0].conv, ROUTER_CONV_PATH);
  ASSERT_MEM_EQ(m.vars[0].value, m.vars[0].len, "a");
  ASSERT_EQ(match(r, "/p/a/b/c.txt", GET, &m), ROUTER_FOUND);
  ASSERT_MEM_EQ(m.vars[0].value, m.vars[0].len, "a/b/c.txt");
  ASSERT_EQ(match(r, "/p/a//b/", GET, &m), ROUTER_FOUND);
  ASSERT_MEM_EQ(m.vars[0].value, m.vars[0].len, "a//b/");
  ASSERT_EQ(get(r, "/p/"), -1);
  ASSERT_EQ(get(r, "/p"), -1);
  ASSERT_EQ(get(r, "/p//a"), -1);
  ASSERT_EQ(match(r, "/pe/x/y/edit", GET, &m), ROUTER_FOUND);
  ASSERT_EQ(m.rule, 2);
  ASSERT_MEM_EQ(m.vars[0].value, m.vars[0].len, "x/y");
  /* shortest first, as Werkzeug's [^/].*? */
  ASSERT_EQ(match(r, "/pe/edit/edit", GET, &m), ROUTER_FOUND);
  ASSERT_MEM_EQ(m.vars[0].value, m.vars[0].len, "edit");
  ASSERT_EQ(match(r, "/pe/a/edit/b/edit", GET, &m), ROUTER_FOUND);
  ASSERT_MEM_EQ(m.vars[0].value, m.vars[0].len, "a/edit/b");
  ASSERT_EQ(get(r, "/pe/a/edit/b"), -1);
  ASSERT_EQ(get(r, "/pe/edit"), -1);
  ASSERT_EQ(match(r, "/q/x/y/5", GET, &m), ROUTER_FOUND);
  ASSERT_EQ(m.rule, 3);
  ASSERT_MEM_EQ(m.vars[0].value, m.vars[0].len, "x/y");
  ASSERT_MEM_EQ(m.vars[1].value, m.vars[1].len, "5");
  ASSERT_EQ(get(r, "/q/x/y"), -1);
  ASSERT_EQ(match(r, "/m/a/b.c.json", GET, &m), ROUTER_FOUND);
  ASSERT_EQ(m.rule, 4);
  ASSERT_MEM_EQ(m.vars[0].value, m.vars[0].len, "a/b.c");
  router_free(r);
}

TEST(path_converter_long_path) {
  router_t *r = mk();
  add(r, "/p/<path:rest>", 1);
  add(r, "/e/<path:rest>/end", 2);
  size_t n = 3 + 2 * 20000;
  char *path = malloc(n + 4);
  ASSERT(path != NULL);
  memcpy(path, "/p/", 3);
  for (size_t i = 3; i < n; i += 2)
    memcpy(path + i, "x/", 2);
  router_match_t m;
  ASSERT_EQ(match_n(r, path, n - 1, GET, &m), ROUTER_FOUND);
  ASSERT_EQ(m.vars[0].len, n - 4);
  path[1] = 'e';
  memcpy(path + n - 1, "/end", 4);
  ASSERT_EQ(match_n(r, path, n + 3, GET, &m), ROUTER_FOUND);
  ASSERT_EQ(m.rule, 2);
  ASSERT_EQ(m.vars[0].len, n - 4);
  free(path);
  router_free(r);
}

TEST(pathological_backtracking_is_bounded) {
  router_t *r = mk();
  add(r, "/<path:a>/<path:b>/<path:c>/<path:d>/x", 1);
  add(r, "/s/<a>-<b>-<c>-<d>-<e>-<f>.x", 2);
  router_match_t m;
  ASSERT_EQ(match(r, "/1/2/3/4/x", GET, &m), ROUTER_FOUND);
  ASSERT_MEM_EQ(m.vars[3].value, m.vars[3].len, "4");
  size_t n = 2 * 4000;
  char *path = malloc(n);
  ASSERT(path != NULL);
  for (size_t i = 0; i < n; i += 2)
    memcpy(path + i, "/y", 2);
  /* without a bound this is about 4000^4 / 24 steps; it must end at once */
  ASSERT_EQ(match_n(r, path, n, GET, &m), ROUTER_NOT_FOUND);
  memcpy(path, "/s/", 3);
  memset(path + 3, '-', n - 3);
  ASSERT_EQ(match_n(r, path, n, GET, &m), ROUTER_NOT_FOUND);
  free(path);
  ASSERT_EQ(match(r, "/s/1-2-3-4-5-6.x", GET, &m), ROUTER_FOUND);
  router_free(r);
}

TEST(static_beats_dynamic_in_any_order) {
  router_t *r = mk();
  add(r, "/u/<name>", 1);
  add(r, "/u/me", 2);
  add(r, "/v/me", 3);
  add(r, "/v/<name>", 4);
  add(r, "/<a>/<b>/c", 5);
  add(r, "/x/y/<c>", 6);
  ASSERT_EQ(get(r, "/u/me"), 2);
  ASSERT_EQ(get(r, "/u/you"), 1);
  ASSERT_EQ(get(r, "/v/me"), 3);
  ASSERT_EQ(get(r, "/v/you"), 4);
  ASSERT_EQ(get(r, "/x/y/c"), 6);
  ASSERT_EQ(get(r, "/q/y/c"), 5);
  /* the static branch "x/y" has nothing for "d": back up into <a>/<b> */
  ASSERT_EQ(get(r, "/x/z/c"), 5);
  router_free(r);
}

TEST(dynamic_priority) {
  router_t *r = mk();
  /* added from the least to the most specific */
  add(r, "/a/<path:p>", 1);
  add(r, "/a/<s>", 2);
  add(r, "/a/<s>.json", 3);
  add(r, "/a/<int:n>", 4);
  add(r, "/a/<float:f>", 5);
  add(r, "/a/x<s>.json", 6);
  router_match_t m;
  ASSERT_EQ(get(r, "/a/12"), 4);
  ASSERT_EQ(get(r, "/a/1.5"), 5);
  ASSERT_EQ(match(r, "/a/q.json", GET, &m), ROUTER_FOUND);
  ASSERT_EQ(m.rule, 3);
  ASSERT_MEM_EQ(m.vars[0].value, m.vars[0].len, "q");
  ASSERT_EQ(get(r, "/a/xq.json"), 6); /* more static text first */
  ASSERT_EQ(get(r, "/a/q"), 2);
  ASSERT_EQ(get(r, "/a/q/r"), 1);
  /* uuid and any rank with string: insertion order decides between them */
  add(r, "/b/<any(x, y):c>", 7);
  add(r, "/b/<s>", 8);
  ASSERT_EQ(get(r, "/b/x"), 7);
  ASSERT_EQ(get(r, "/b/z"), 8);
  router_free(r);
}

TEST(backtracking) {
  router_t *r = mk();
  add(r, "/u/<int:id>/x", 1);
  add(r, "/u/<name>/y", 2);
  add(r, "/a/b/c", 3);
  add(r, "/a/<x>/d", 4);
  router_match_t m;
  ASSERT_EQ(get(r, "/u/5/x"), 1);
  ASSERT_EQ(match(r, "/u/5/y", GET, &m), ROUTER_FOUND);
  ASSERT_EQ(m.rule, 2);
  ASSERT_EQ(m.nvars, 1);
  ASSERT_STR_EQ(m.vars[0].name, "name");
  ASSERT_MEM_EQ(m.vars[0].value, m.vars[0].len, "5");
  ASSERT_EQ(get(r, "/u/five/y"), 2);
  ASSERT_EQ(get(r, "/u/five/x"), -1);
  ASSERT_EQ(get(r, "/a/b/c"), 3);
  ASSERT_EQ(get(r, "/a/b/d"), 4);
  router_free(r);
}

TEST(mixed_segments) {
  router_t *r = mk();
  add(r, "/<name>.json", 1);
  add(r, "/v<int:n>/x", 2);
  add(r, "/file-<a>-<b>.txt", 3);
  add(r, "/n<int:a>5", 4);
  add(r, "/<int:a>.<int:b>", 5);
  router_match_t m;
  ASSERT_EQ(match(r, "/data.json", GET, &m), ROUTER_FOUND);
  ASSERT_EQ(m.rule, 1);
  ASSERT_MEM_EQ(m.vars[0].value, m.vars[0].len, "data");
  ASSERT_EQ(match(r, "/a.b.json", GET, &m), ROUTER_FOUND);
  ASSERT_MEM_EQ(m.vars[0].value, m.vars[0].len, "a.b");
  ASSERT_EQ(get(r, "/.json"), -1);
  ASSERT_EQ(get(r, "/data.jso"), -1);
  ASSERT_EQ(match(r, "/v12/x", GET, &m), ROUTER_FOUND);
  ASSERT_EQ(m.rule, 2);
  ASSERT_MEM_EQ(m.vars[0].value, m.vars[0].len, "12");
  ASSERT_EQ(get(r, "/vx/x"), -1);
  ASSERT_EQ(get(r, "/v/x"), -1);
  /* greedy like the regex Werkzeug builds: the first variable takes the most */
  ASSERT_EQ(match(r, "/file-x-y-z.txt", GET, &m), ROUTER_FOUND);
  ASSERT_EQ(m.rule, 3);
  ASSERT_MEM_EQ(m.vars[0].value, m.vars[0].len, "x-y");
  ASSERT_MEM_EQ(m.vars[1].value, m.vars[1].len, "z");
  ASSERT_STR_EQ(m.vars[1].name, "b");
  ASSERT_EQ(get(r, "/file--y.txt"), -1);
  ASSERT_EQ(match(r, "/n125", GET, &m), ROUTER_FOUND);
  ASSERT_EQ(m.rule, 4);
  ASSERT_MEM_EQ(m.vars[0].value, m.vars[0].len, "12");
  ASSERT_EQ(get(r, "/n5"), -1);
  ASSERT_EQ(match(r, "/10.20", GET, &m), ROUTER_FOUND);
  ASSERT_EQ(m.rule, 5);
  ASSERT_MEM_EQ(m.vars[1].value, m.vars[1].len, "20");
  router_free(r);
}

TEST(method_not_allowed) {
  router_t *r = mk();
  add_(r, "/items/<int:id>", BIT(GET) | BIT(DELETE), true, 1);
  add_(r, "/w", BIT(GET), true, 2);
  add_(r, "/<x>", BIT(POST), true, 3);
  router_match_t m;
  ASSERT_EQ(match(r, "/items/3", POST, &m), ROUTER_METHOD_NOT_ALLOWED);
  ASSERT_EQ(m.allowed, BIT(GET) | BIT(DELETE));
  ASSERT_EQ(m.rule, -1);
  ASSERT_EQ(match(r, "/items/3", DELETE, &m), ROUTER_FOUND);
  ASSERT_EQ(m.allowed, BIT(GET) | BIT(DELETE));
  ASSERT_EQ(match(r, "/items/x", POST, &m), ROUTER_NOT_FOUND);
  /* the union covers every rule matching the path, static or not */
  ASSERT_EQ(match(r, "/w", PUT, &m), ROUTER_METHOD_NOT_ALLOWED);
  ASSERT_EQ(m.allowed, BIT(GET) | BIT(POST));
  ASSERT_EQ(match(r, "/w", GET, &m), ROUTER_FOUND);
  ASSERT_EQ(m.rule, 2);
  ASSERT_EQ(m.allowed, BIT(GET) | BIT(POST));
  ASSERT_EQ(match(r, "/w", POST, &m), ROUTER_FOUND);
  ASSERT_EQ(m.rule, 3);
  ASSERT_EQ(match(r, "/w", 63, &m), ROUTER_METHOD_NOT_ALLOWED);
  ASSERT_EQ(match(r, "/w", 64, &m), ROUTER_METHOD_NOT_ALLOWED);
  ASSERT_EQ(match(r, "/w", -1, &m), ROUTER_METHOD_NOT_ALLOWED);
  add_(r, "/hi", BIT(63), true, 4);
  ASSERT_EQ(match(r, "/hi", 63, &m), ROUTER_FOUND);
  ASSERT_EQ(m.rule, 4);
  router_free(r);
}

TEST(redirect_slash) {
  router_t *r = mk();
  add_(r, "/dir/", BIT(GET), true, 1);
  add_(r, "/file", BIT(GET), true, 2);
  add_(r, "/d/<int:id>/", BIT(GET), true, 3);
  add_(r, "/t/<path:p>/", BIT(GET), true, 4);
  router_match_t m;
  ASSERT_EQ(match(r, "/dir", GET, &m), ROUTER_REDIRECT_SLASH);
  ASSERT_EQ(m.allowed, BIT(GET));
  /* as in Werkzeug, no redirect to a rule that would refuse the method */
  ASSERT_EQ(match(r, "/dir", POST, &m), ROUTER_NOT_FOUND);
  ASSERT_EQ(get(r, "/dir/"), 1);
  ASSERT_EQ(match(r, "/dir//", GET, &m), ROUTER_NOT_FOUND);
  ASSERT_EQ(get(r, "/file"), 2);
  ASSERT_EQ(match(r, "/file/", GET, &m), ROUTER_NOT_FOUND);
  ASSERT_EQ(match(r, "/d/12", GET, &m), ROUTER_REDIRECT_SLASH);
  ASSERT_EQ(match(r, "/d/x", GET, &m), ROUTER_NOT_FOUND);
  ASSERT_EQ(match(r, "/d/12/", GET, &m), ROUTER_FOUND);
  ASSERT_MEM_EQ(m.vars[0].value, m.vars[0].len, "12");
  ASSERT_EQ(match(r, "/t/a/b", GET, &m), ROUTER_REDIRECT_SLASH);
  ASSERT_EQ(match(r, "/t/a/b/", GET, &m), ROUTER_FOUND);
  ASSERT_MEM_EQ(m.vars[0].value, m.vars[0].len, "a/b");
  /* a path that matches as it is is not redirected */
  add_(r, "/dir", BIT(POST), true, 5);
  ASSERT_EQ(match(r, "/dir", GET, &m), ROUTER_METHOD_NOT_ALLOWED);
  ASSERT_EQ(m.allowed, BIT(POST));
  router_free(r);
}

TEST(strict_slashes_false) {
  router_t *r = mk();
  add_(r, "/loose/", BIT(GET), false, 1);
  add_(r, "/loose2", BIT(GET), false, 2);
  add_(r, "/n/<int:x>", BIT(GET), false, 3);
  add_(r, "/m/<int:x>/", BIT(GET), false, 4);
  router_match_t m;
  ASSERT_EQ(get(r, "/loose/"), 1);
  ASSERT_EQ(get(r, "/loose"), 1);
  ASSERT_EQ(get(r, "/loose2"), 2);
  ASSERT_EQ(get(r, "/loose2/"), 2);
  ASSERT_EQ(get(r, "/loose2//"), -1);
  ASSERT_EQ(get(r, "/loose//"), -1);
  ASSERT_EQ(match(r, "/n/5/", GET, &m), ROUTER_FOUND);
  ASSERT_EQ(m.rule, 3);
  ASSERT_MEM_EQ(m.vars[0].value, m.vars[0].len, "5");
  ASSERT_EQ(match(r, "/m/7", GET, &m), ROUTER_FOUND);
  ASSERT_EQ(m.rule, 4);
  ASSERT_MEM_EQ(m.vars[0].value, m.vars[0].len, "7");
  ASSERT_EQ(match(r, "/loose", POST, &m), ROUTER_METHOD_NOT_ALLOWED);
  ASSERT_EQ(m.allowed, BIT(GET));
  router_free(r);
}

TEST(exact_match_comes_first_at_a_node) {
  router_t *r = mk();
  add_(r, "/a/", BIT(POST) | BIT(PUT), false, 1);
  add_(r, "/a", BIT(GET) | BIT(POST), true, 2);
  add_(r, "/b", BIT(PUT), false, 3);
  add_(r, "/b/", BIT(GET), true, 4);
  router_match_t m;
  ASSERT_EQ(match(r, "/a", POST, &m), ROUTER_FOUND);
  ASSERT_EQ(m.rule, 2);
  /* "/a" also matches rule 1 through the slash it may do without */
  ASSERT_EQ(m.allowed, BIT(GET) | BIT(POST) | BIT(PUT));
  ASSERT_EQ(match(r, "/a", PUT, &m), ROUTER_FOUND);
  ASSERT_EQ(m.rule, 1);
  ASSERT_EQ(match(r, "/a/", POST, &m), ROUTER_FOUND);
  ASSERT_EQ(m.rule, 1);
  ASSERT_EQ(match(r, "/a/", GET, &m), ROUTER_METHOD_NOT_ALLOWED);
  ASSERT_EQ(m.allowed, BIT(POST) | BIT(PUT));
  ASSERT_EQ(match(r, "/b/", GET, &m), ROUTER_FOUND);
  ASSERT_EQ(m.rule, 4);
  ASSERT_EQ(m.allowed, BIT(GET) | BIT(PUT));
  ASSERT_EQ(match(r, "/b/", PUT, &m), ROUTER_FOUND);
  ASSERT_EQ(m.rule, 3);
  ASSERT_EQ(match(r, "/b", GET, &m), ROUTER_METHOD_NOT_ALLOWED);
  ASSERT_EQ(m.allowed, BIT(PUT));
  router_free(r);
}

TEST(slash_variants_follow_priority) {
  router_t *r = mk();
  add(r, "/<path:p>", 1);
  add_(r, "/<int:n>", BIT(GET), false, 2);
  add_(r, "/s/<x>/", BIT(GET), false, 3);
  add(r, "/s/<path:p>", 4);
  router_match_t m;
  /* as in Werkzeug: the int rule, though only by dropping the slash */
  ASSERT_EQ(match(r, "/12/", GET, &m), ROUTER_FOUND);
  ASSERT_EQ(m.rule, 2);
  ASSERT_MEM_EQ(m.vars[0].value, m.vars[0].len, "12");
  ASSERT_EQ(match(r, "/ab/", GET, &m), ROUTER_FOUND);
  ASSERT_EQ(m.rule, 1);
  ASSERT_MEM_EQ(m.vars[0].value, m.vars[0].len, "ab/");
  ASSERT_EQ(match(r, "/s/q", GET, &m), ROUTER_FOUND);
  ASSERT_EQ(m.rule, 3);
  ASSERT_EQ(match(r, "/s/q/r", GET, &m), ROUTER_FOUND);
  ASSERT_EQ(m.rule, 4);
  router_free(r);
}

TEST(string_length_rules) {
  router_t *r = mk();
  add(r, "/a/<string(length=2, minlength=5):x>", 1);
  add(r, "/b/<string(minlength=5, length=2):x>", 2);
  add(r, "/c/<string(length=None, minlength=3):x>", 3);
  add(r, "/d/<string(length=1):x>", 4);
  ASSERT_EQ(get(r, "/a/ab"), 1);
  ASSERT_EQ(get(r, "/a/abcde"), -1);
  ASSERT_EQ(get(r, "/b/ab"), 2);
  ASSERT_EQ(get(r, "/c/ab"), -1);
  ASSERT_EQ(get(r, "/c/abc"), 3);
  /* a path that is not UTF-8: a stray continuation byte is one character */
  router_match_t m;
  ASSERT_EQ(match(r, "/d/\xa9", GET, &m), ROUTER_FOUND);
  ASSERT_EQ(m.vars[0].len, 1);
  ASSERT_EQ(get(r, "/d/\xc3\xa9"), 4);
  ASSERT_EQ(get(r, "/d/\xa9\xa9"), -1);
  ASSERT_EQ(get(r, "/d/\xc3"), 4);
  ASSERT_EQ(get(r, "/d/\xf0\x9f\x98\x80"), 4);
  ASSERT_EQ(get(r, "/d/\xf0\x9f\x98"), -1);
  /* a variable ends between characters, never inside one */
  add(r, "/e/<a><string(length=1):b>", 5);
  ASSERT_EQ(match(r, "/e/x\xc3\xa9", GET, &m), ROUTER_FOUND);
  ASSERT_MEM_EQ(m.vars[0].value, m.vars[0].len, "x");
  ASSERT_MEM_EQ(m.vars[1].value, m.vars[1].len, "\xc3\xa9");
  ASSERT_EQ(get(r, "/e/\xc3\xa9"), -1);
  router_free(r);
}

TEST(same_pattern_other_methods_and_names) {
  router_t *r = mk();
  add_(r, "/x/<int:a>", BIT(GET), true, 1);
  add_(r, "/x/<int:b>", BIT(POST), true, 2);
  router_match_t m;
  ASSERT_EQ(match(r, "/x/5", GET, &m), ROUTER_FOUND);
  ASSERT_EQ(m.rule, 1);
  ASSERT_STR_EQ(m.vars[0].name, "a");
  ASSERT_EQ(m.allowed, BIT(GET) | BIT(POST));
  ASSERT_EQ(match(r, "/x/5", POST, &m), ROUTER_FOUND);
  ASSERT_EQ(m.rule, 2);
  ASSERT_STR_EQ(m.vars[0].name, "b");
  ASSERT_EQ(match(r, "/x/5", PUT, &m), ROUTER_METHOD_NOT_ALLOWED);
  ASSERT_EQ(m.allowed, BIT(GET) | BIT(POST));
  ASSERT_STR_EQ(router_var_name(r, 1, 0), "a");
  ASSERT_STR_EQ(router_var_name(r, 2, 0), "b");
  ASSERT_EQ(router_var_count(r, 2), 1);
  /* other arguments make another edge: min=2 refuses "1" */
  add_(r, "/x/<int(min=2):c>", BIT(PUT), true, 3);
  ASSERT_EQ(match(r, "/x/1", PUT, &m), ROUTER_METHOD_NOT_ALLOWED);
  ASSERT_EQ(m.allowed, BIT(GET) | BIT(POST));
  ASSERT_EQ(match(r, "/x/2", PUT, &m), ROUTER_FOUND);
  ASSERT_EQ(m.rule, 3);
  router_free(r);
}

TEST(first_added_wins) {
  router_t *r = mk();
  add_(r, "/s", BIT(GET), true, 1);
  add_(r, "/s", BIT(GET) | BIT(POST), true, 2);
  add_(r, "/d/<x>", BIT(GET), true, 3);
  add_(r, "/d/<y>", BIT(GET), true, 4);
  router_match_t m;
  ASSERT_EQ(match(r, "/s", GET, &m), ROUTER_FOUND);
  ASSERT_EQ(m.rule, 1);
  ASSERT_EQ(match(r, "/s", POST, &m), ROUTER_FOUND);
  ASSERT_EQ(m.rule, 2);
  ASSERT_EQ(match(r, "/d/q", GET, &m), ROUTER_FOUND);
  ASSERT_EQ(m.rule, 3);
  ASSERT_STR_EQ(m.vars[0].name, "x");
  ASSERT_EQ(router_count(r), 4);
  router_free(r);
}

TEST(converter_arguments) {
  router_t *r = mk();
  add(r, "/a/<int( min = 1 , max=5 ):n>", 1);
  add(r, "/b/<string(2, 3):s>", 2);
  add(r, "/c/<int(3):n>", 3);
  add(r, "/d/<int(0, None, 9, False):n>", 4);
  add(r, "/e/<float(-1, 1.5, True):f>", 5);
  add(r, "/f/<string(maxlength=None, length=2,):s>", 6);
  ASSERT_EQ(get(r, "/a/5"), 1);
  ASSERT_EQ(get(r, "/a/6"), -1);
  ASSERT_EQ(get(r, "/b/ab"), 2);
  ASSERT_EQ(get(r, "/b/abcd"), -1);
  ASSERT_EQ(get(r, "/c/123"), 3);
  ASSERT_EQ(get(r, "/c/12"), -1);
  ASSERT_EQ(get(r, "/d/9"), 4);
  ASSERT_EQ(get(r, "/d/10"), -1);
  ASSERT_EQ(get(r, "/e/-1.0"), 5);
  ASSERT_EQ(get(r, "/e/-1.1"), -1);
  ASSERT_EQ(get(r, "/e/1.5"), 5);
  ASSERT_EQ(get(r, "/f/ab"), 6);
  ASSERT_EQ(get(r, "/f/abc"), -1);
  router_free(r);
}

TEST(empty_segments) {
  router_t *r = mk();
  add(r, "/a//b", 1);
  add(r, "/c/<x>/d", 2);
  ASSERT_EQ(get(r, "/a//b"), 1);
  ASSERT_EQ(get(r, "/a/b"), -1);
  ASSERT_EQ(get(r, "/c//d"), -1);
  ASSERT_EQ(get(r, "/c/x/d"), 2);
  router_free(r);
}

TEST(error_messages) {
  router_t *r = mk();
  add(r, "/a/<int:x>", 1);
  ASSERT_STR_EQ(refuse(r, "/a/<int:x"), "rule '/a/<int:x': '<' is never closed");
  ASSERT_STR_EQ(refuse(r, "/a/<int:x/b>"), "rule '/a/<int:x/b>': '<' is never closed");
  ASSERT_STR_EQ(refuse(r, "/a/<int(min=1:x>"), "rule '/a/<int(min=1:x>': '<' is never closed");
  ASSERT_STR_EQ(refuse(r, "/a/<foo:x>"), "rule '/a/<foo:x>': unknown converter 'foo'");
  ASSERT_STR_EQ(refuse(r, "/a/<x>/<x>"), "rule '/a/<x>/<x>': variable 'x' appears twice");
  ASSERT_STR_EQ(refuse(r, "/<x>/<int:x>"), "rule '/<x>/<int:x>': variable 'x' appears twice");
  ASSERT_STR_EQ(refuse(r, "a"), "rule 'a': must start with '/'");
  ASSERT_STR_EQ(refuse(r, ""), "rule '': must start with '/'");
  ASSERT_STR_EQ(refuse(r, "/a/<int(min=x):n>"),
                "rule '/a/<int(min=x):n>': bad argument 'min=x' for int");
  ASSERT_STR_EQ(refuse(r, "/a/<>"), "rule '/a/<>': empty variable name");
  ASSERT_STR_EQ(refuse(r, "/a/<int:>"), "rule '/a/<int:>': empty variable name");
  ASSERT_STR_EQ(refuse(r, "/a/<1x>"), "rule '/a/<1x>': invalid variable name '1x'");
  ASSERT_STR_EQ(refuse(r, "/a/<a b>"), "rule '/a/<a b>': invalid variable name 'a b'");
  ASSERT_STR_EQ(refuse(r, "/a/<:x>"), "rule '/a/<:x>': empty converter name");
  ASSERT_STR_EQ(refuse(r, "/a/<in-t:x>"), "rule '/a/<in-t:x>': invalid converter name 'in-t'");
  ASSERT_STR_EQ(refuse(r, "/a/<int(3)x:n>"),
                "rule '/a/<int(3)x:n>': unexpected text after the arguments of 'int'");
  ASSERT_STR_EQ(refuse(r, "/a/<int(min=1, min=2):n>"),
                "rule '/a/<int(min=1, min=2):n>': bad argument 'min=2' for int");
  ASSERT_STR_EQ(refuse(r, "/a/<int(foo=1):n>"),
                "rule '/a/<int(foo=1):n>': bad argument 'foo=1' for int");
  ASSERT_STR_EQ(refuse(r, "/a/<int(1, 2, 3, True, 5):n>"),
                "rule '/a/<int(1, 2, 3, True, 5):n>': bad argument '5' for int");
  ASSERT_STR_EQ(refuse(r, "/a/<int(min=1.5):n>"),
                "rule '/a/<int(min=1.5):n>': bad argument 'min=1.5' for int");
  ASSERT_STR_EQ(refuse(r, "/a/<int(max=9223372036854775808):n>"),
                "rule '/a/<int(max=9223372036854775808):n>': bad argument "
                "'max=9223372036854775808' for int");
  ASSERT_STR_EQ(refuse(r, "/a/<int(signed=1):n>"),
                "rule '/a/<int(signed=1):n>': bad argument 'signed=1' for int");
  ASSERT_STR_EQ(refuse(r, "/a/<float(min='1'):n>"),
                "rule '/a/<float(min='1'):n>': bad argument 'min='1'' for float");
  ASSERT_STR_EQ(refuse(r, "/a/<string(minlength=-1):s>"),
                "rule '/a/<string(minlength=-1):s>': bad argument 'minlength=-1' for string");
  ASSERT_STR_EQ(refuse(r, "/a/<string(1,,2):s>"),
                "rule '/a/<string(1,,2):s>': bad argument '' for string");
  ASSERT_STR_EQ(refuse(r, "/a/<path(1):p>"), "rule '/a/<path(1):p>': bad argument '1' for path");
  ASSERT_STR_EQ(refuse(r, "/a/<uuid(x=1):u>"),
                "rule '/a/<uuid(x=1):u>': bad argument 'x=1' for uuid");
  ASSERT_STR_EQ(refuse(r, "/a/<any:c>"),
                "rule '/a/<any:c>': converter 'any' needs at least one word");
  ASSERT_STR_EQ(refuse(r, "/a/<any():c>"),
                "rule '/a/<any():c>': converter 'any' needs at least one word");
  ASSERT_STR_EQ(refuse(r, "/a/<any(a, 'b/c'):c>"),
                "rule '/a/<any(a, 'b/c'):c>': bad argument ''b/c'' for any");
  ASSERT_STR_EQ(refuse(r, "/a/<any(a, x=b):c>"),
                "rule '/a/<any(a, x=b):c>': bad argument 'x=b' for any");
  ASSERT_STR_EQ(refuse(r, "/a/<any(a, 'b):c>"), "rule '/a/<any(a, 'b):c>': '<' is never closed");
  ASSERT_STR_EQ(refuse(r, "/<a>/<b>/<c>/<d>/<e>/<f>/<g>/<h>/<i>/<j>/<k>/<l>/<m>/<n>/<o>/<p>/<q>"),
                "rule '/<a>/<b>/<c>/<d>/<e>/<f>/<g>/<h>/<i>/<j>/<k>/<l>/<m>/<n>/<o>/<p>/<q>': "
                "more than 16 variables");
  /* none of them changed what matches */
  ASSERT_EQ(get(r, "/a/5"), 1);
  ASSERT_EQ(get(r, "/a/x"), -1);
  ASSERT_EQ(router_count(r), 1);
  /* '>' alone is ordinary text, as in Werkzeug */
  add(r, "/gt>", 2);
  ASSERT_EQ(get(r, "/gt>"), 2);
  /* a NULL err buffer is allowed */
  ASSERT_EQ(router_add(r, "bad", 1, true, 3, NULL, 0), -EINVAL);
  router_free(r);
}

TEST(sixteen_variables_fit) {
  router_t *r = mk();
  add(r, "/<a>/<b>/<c>/<d>/<e>/<f>/<g>/<h>/<i>/<j>/<k>/<l>/<m>/<n>/<o>/<int:p>", 1);
  router_match_t m;
  ASSERT_EQ(match(r, "/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16", GET, &m), ROUTER_FOUND);
  ASSERT_EQ(m.nvars, 16);
  ASSERT_STR_EQ(m.vars[15].name, "p");
  ASSERT_MEM_EQ(m.vars[15].value, m.vars[15].len, "16");
  ASSERT_EQ(m.vars[15].conv, ROUTER_CONV_INT);
  ASSERT_STR_EQ(router_var_name(r, 1, 15), "p");
  ASSERT_EQ(router_var_name(r, 1, 16), NULL);
  ASSERT_EQ(router_var_count(r, 1), 16);
  router_free(r);
}

TEST(refused_rule_leaves_router_unchanged) {
  router_t *r = mk();
  add(r, "/keep/<int:n>", 1);
  add(r, "/keep/x", 2);
  /* the first segments are new and valid; the last one is refused */
  refuse(r, "/new/<int:a>/more/<bad:b>");
  refuse(r, "/keep/<int:n>/<x>/<x>");
  ASSERT_EQ(get(r, "/new/1/more/x"), -1);
  router_match_t m;
  ASSERT_EQ(match(r, "/new/1/more/x", POST, &m), ROUTER_NOT_FOUND);
  ASSERT_EQ(match(r, "/new/1/more", POST, &m), ROUTER_NOT_FOUND);
  ASSERT_EQ(get(r, "/keep/3"), 1);
  ASSERT_EQ(get(r, "/keep/x"), 2);
  ASSERT_EQ(router_var_name(r, 999, 0), NULL);
  ASSERT_EQ(router_var_count(r, 999), 0);
  /* the same rules, written correctly, are then accepted */
  add(r, "/new/<int:a>/more/<b>", 3);
  ASSERT_EQ(get(r, "/new/1/more/x"), 3);
  router_free(r);
}

TEST(out_of_memory_leaves_router_unchanged) {
  long left = -1;
  router_t *r = router_new_with(rationed, &left);
  ASSERT(r != NULL);
  add(r, "/old/<int:n>", 1);
  add(r, "/old/x", 2);
  const char *rule = "/old/<int:n>/<any(a, b):c>/s/<path:p>.json";
  int rc = -ENOMEM, tries = 0;
  for (long n = 0; rc == -ENOMEM; n++, tries++) {
    char err[256];
    left = n;
    rc = router_add(r, rule, BIT(GET), true, 3, err, sizeof err);
    left = -1;
    if (rc == -ENOMEM) {
      ASSERT_CONTAINS(err, "out of memory");
      ASSERT_EQ(router_count(r), 2);
      ASSERT_EQ(get(r, "/old/5/a/s/x/y.json"), -1);
      ASSERT_EQ(get(r, "/old/5"), 1);
      ASSERT_EQ(get(r, "/old/x"), 2);
      ASSERT_EQ(router_var_count(r, 3), 0);
    }
  }
  ASSERT_EQ(rc, 0);
  ASSERT(tries > 3);
  router_match_t m;
  ASSERT_EQ(match(r, "/old/5/a/s/x/y.json", GET, &m), ROUTER_FOUND);
  ASSERT_EQ(m.rule, 3);
  ASSERT_MEM_EQ(m.vars[2].value, m.vars[2].len, "x/y");
  ASSERT_EQ(router_count(r), 3);
  /* so does a failing router_new */
  left = 0;
  ASSERT_EQ(router_new_with(rationed, &left), NULL);
  left = 1;
  ASSERT_EQ(router_new_with(rationed, &left), NULL);
  router_free(r);
  /* the allocator is the router's own: another router does not use it */
  left = 0;
  router_t *other = mk();
  add(other, "/x/<int:n>", 1);
  ASSERT_EQ(get(other, "/x/3"), 1);
  router_free(other);
}

#define MANY 10000

static size_t heap_in_use(void) {
#if defined(__GLIBC__) && defined(__GLIBC_PREREQ)
#if __GLIBC_PREREQ(2, 33)
  return mallinfo2().uordblks;
#endif
#endif
  return 0;
}

TEST(ten_thousand_rules) {
  long left = -1;
  router_t *r = router_new_with(rationed, &left);
  ASSERT(r != NULL);
  char rule[64], path[64], num[16];
  for (int i = 0; i < MANY; i++) {
    snprintf(rule, sizeof rule, "/r%d/x/<int:id>", i);
    add_(r, rule, BIT(GET), true, i);
    snprintf(rule, sizeof rule, "/s%d", i);
    add_(r, rule, BIT(POST), true, MANY + i);
    snprintf(rule, sizeof rule, "/t/<int:a>/v%d", i);
    add_(r, rule, BIT(PUT), true, 2 * MANY + i);
  }
  ASSERT_EQ(router_count(r), 3 * MANY);
  size_t heap = heap_in_use();
  /* matching allocates nothing: every allocation the router makes would fail */
  left = 0;
  router_match_t m;
  for (int i = 0; i < MANY; i++) {
    snprintf(path, sizeof path, "/r%d/x/%d", i, i * 7);
    ASSERT_EQ(match(r, path, GET, &m), ROUTER_FOUND);
    ASSERT_EQ(m.rule, i);
    ASSERT_EQ(m.nvars, 1);
    snprintf(num, sizeof num, "%d", i * 7);
    ASSERT_MEM_EQ(m.vars[0].value, m.vars[0].len, num);
    ASSERT_EQ(match(r, path, POST, &m), ROUTER_METHOD_NOT_ALLOWED);
    ASSERT_EQ(m.allowed, BIT(GET));
    snprintf(path, sizeof path, "/r%d/x/y", i);
    ASSERT_EQ(match(r, path, GET, &m), ROUTER_NOT_FOUND);
    snprintf(path, sizeof path, "/s%d", i);
    ASSERT_EQ(match(r, path, POST, &m), ROUTER_FOUND);
    ASSERT_EQ(m.rule, MANY + i);
    snprintf(path, sizeof path, "/t/42/v%d", i);
    ASSERT_EQ(match(r, path, PUT, &m), ROUTER_FOUND);
    ASSERT_EQ(m.rule, 2 * MANY + i);
  }
  ASSERT_EQ(match(r, "/r10000/x/1", GET, &m), ROUTER_NOT_FOUND);
  ASSERT_EQ(match(r, "/s10000", POST, &m), ROUTER_NOT_FOUND);
  ASSERT_EQ(match(r, "/t/42/v10000", PUT, &m), ROUTER_NOT_FOUND);
  left = -1;
  ASSERT_EQ(heap_in_use(), heap);
  for (int i = 0; i < MANY; i += 997) {
    ASSERT_STR_EQ(router_var_name(r, i, 0), "id");
    ASSERT_EQ(router_var_count(r, MANY + i), 0);
    ASSERT_STR_EQ(router_var_name(r, 2 * MANY + i, 0), "a");
  }
  router_free(r);
}

TEST(duplicate_ids_and_empty_router) {
  router_t *r = mk();
  router_match_t m;
  ASSERT_EQ(match(r, "/", GET, &m), ROUTER_NOT_FOUND);
  ASSERT_EQ(router_var_name(r, 1, 0), NULL);
  add(r, "/a/<x>", 7);
  add(r, "/b/<y>", 7);
  ASSERT_EQ(get(r, "/a/1"), 7);
  ASSERT_EQ(match(r, "/b/1", GET, &m), ROUTER_FOUND);
  ASSERT_STR_EQ(m.vars[0].name, "y");
  /* by id, the first rule added with it answers */
  ASSERT_STR_EQ(router_var_name(r, 7, 0), "x");
  router_free(r);
}

UNIT_MAIN(root_rule, static_rules, string_converter, int_converter, float_converter,
          uuid_converter, any_converter, path_converter, path_converter_long_path,
          pathological_backtracking_is_bounded, static_beats_dynamic_in_any_order,
          dynamic_priority, backtracking, mixed_segments, method_not_allowed, redirect_slash,
          strict_slashes_false, exact_match_comes_first_at_a_node, slash_variants_follow_priority,
          string_length_rules, same_pattern_other_methods_and_names, first_added_wins,
          converter_arguments, empty_segments, error_messages, sixteen_variables_fit,
          refused_rule_leaves_router_unchanged, out_of_memory_leaves_router_unchanged,
          ten_thousand_rules, duplicate_ids_and_empty_router)
