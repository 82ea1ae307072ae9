/* test_pattern.c - unit tests for the step-counted pattern matcher
 * (src/pattern.c).
 *
 * Besides the cases one by one, differential tests run thousands of
 * generated patterns and subjects through this matcher and through the
 * real Lua 5.4 library the binary links, against string.find.
 */
#include "unit.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>

#include <lauxlib.h>
#include <lualib.h>

#include "buf.h"
#include "pattern.h"

#define FAIL_AT(line, ...)                                                                        \
  do {                                                                                            \
    fprintf(stderr, "  %s:%d: ", __FILE__, line);                                                 \
    fprintf(stderr, __VA_ARGS__);                                                                 \
    fputc('\n', stderr);                                                                          \
    exit(1);                                                                                      \
  } while (0)

/* ---- the C API ----------------------------------------------------------- */

static pattern_t *compile_at(const char *pat, size_t len, unsigned flags, char *err, size_t errlen,
                             int *rc) {
  pattern_t *p = malloc(pattern_size(len));
  ASSERT(p != NULL);
  *rc = pattern_compile(p, pat, len, flags, err, errlen);
  return p;
}

/* Describes the result of a search the way describe_lua() does for Lua:
 * "nil", "error: <message>", "steps", or "start-end" (1-based, inclusive)
 * followed by each capture, " [text]" or " @position". */
static void describe_match(buf_t *out, const char *s, const pattern_match_t *m) {
  buf_printf(out, "%zu-%zu", m->start + 1, m->end);
  for (int i = 0; i < m->ncap; i++) {
    if (m->cap[i].position)
      buf_printf(out, " @%zu", m->cap[i].start + 1);
    else
      buf_printf(out, " [%.*s]", (int)m->cap[i].len, s + m->cap[i].start);
  }
}

static void ours(buf_t *out, const char *pat, size_t plen, const char *s, size_t n, size_t init,
                 unsigned flags, int64_t steps) {
  char err[128];
  int rc;
  pattern_t *p = compile_at(pat, plen, flags, err, sizeof err, &rc);
  buf_reset(out);
  if (rc) {
    buf_printf(out, "error: %s", err);
  } else {
    pattern_match_t m;
    enum pattern_result r = pattern_find(p, s, n, init, &steps, &m);
    if (r == PATTERN_MATCH)
      describe_match(out, s, &m);
    else
      buf_puts(out, r == PATTERN_NOMATCH ? "nil" : "steps");
  }
  free(p);
}

static void check_find_at(const char *pat, const char *s, unsigned flags, const char *want,
                          int line) {
  buf_t got = BUF_INIT;
  ours(&got, pat, strlen(pat), s, strlen(s), 0, flags, 1000000);
  buf_putc(&got, '\0');
  if (strcmp(got.data, want) != 0)
    FAIL_AT(line, "find(\"%s\", \"%s\"): got \"%s\", want \"%s\"", s, pat, got.data, want);
  buf_free(&got);
}
#define FIND(pat, s, want) check_find_at(pat, s, 0, want, __LINE__)
#define IFIND(pat, s, want) check_find_at(pat, s, PATTERN_CASELESS, want, __LINE__)

TEST(test_literals_and_dot) {
  FIND("b", "abc", "2-2");
  FIND("bc", "abc", "2-3");
  FIND("x", "abc", "nil");
  FIND("", "abc", "1-0");
  FIND(".", "abc", "1-1");
  FIND("a.c", "abc", "1-3");
  FIND("..", "a", "nil");
  FIND("]", "a]", "2-2");
  FIND("a^", "xa^", "2-3"); /* '^' not at the start is a literal */
  FIND("$a", "x$a", "2-3"); /* '$' not at the end too */
}

TEST(test_classes) {
  FIND("%a+", "12ab34", "3-4");
  FIND("%d+", "ab123c", "3-5");
  FIND("%l+", "ABcdE", "3-4");
  FIND("%u+", "abCDe", "3-4");
  FIND("%s+", "a \t\nb", "2-4");
  FIND("%w+", "..a1_", "3-4");
  FIND("%x+", "zzfF09g", "3-6");
  FIND("%p+", "ab!?c", "3-4");
  FIND("%c", "a\x01", "2-2");
  FIND("%g+", " ab ", "2-3");
  FIND("%A+", "ab12cd", "3-4"); /* complements */
  FIND("%D+", "12ab34", "3-4");
  FIND("%S+", "  xy ", "3-4");
  FIND("%W", "ab-c", "3-3");
  FIND("%.", "a.b", "2-2"); /* escapes of non-letters are literals */
  FIND("%%", "a%b", "2-2");
  FIND("%z", "az", "2-2"); /* an unknown letter is itself */
}

TEST(test_sets) {
  FIND("[bc]+", "abcd", "2-3");
  FIND("[^a]+", "aabca", "3-4");
  FIND("[a-c]+", "xabcd", "2-4");
  FIND("[%d_]+", "ab1_2c", "3-5");
  FIND("[]]", "a]", "2-2");      /* ']' first is a member */
  FIND("[^]]+", "]]ab]", "3-4"); /* also after '^' */
  FIND("[a-]+", "x-a-", "2-4");  /* '-' last is a member */
  FIND("[%a-z]+", "1-z", "2-3"); /* no range from a class */
  FIND("[%]]", "a]", "2-2");     /* escaped ']' */
  FIND("[c-a]", "abc", "nil");   /* an empty range */
  FIND("[%^]", "a^", "2-2");
  FIND("[a%-z]+", "b-az", "2-4"); /* escaped '-' is no range */
}

TEST(test_anchors) {
  FIND("^a", "ba", "nil");
  FIND("^b", "ba", "1-1");
  FIND("a$", "aba", "3-3");
  FIND("a$", "ab", "nil");
  FIND("^$", "", "1-0");
  FIND("^abc$", "abc", "1-3");
  FIND("$", "ab", "3-2");
}

TEST(test_quantifiers) {
  FIND("a*", "aaab", "1-3");
  FIND("a*", "baa", "1-0");
  FIND("a+", "baa", "2-3");
  FIND("a-b", "aaab", "1-4");
  FIND("a-", "aaa", "1-0");
  FIND("<.->", "<a><b>", "1-3");
  FIND("<.*>", "<a><b>", "1-6");
  FIND("ab?c", "ac abc", "1-2");
  FIND("ab?c", "abc", "1-3");
  FIND("a?a?a", "aa", "1-2");
  FIND("%d+%.?%d*", "x3.14y", "2-5");
  FIND("*", "a*", "2-2"); /* a quantifier with nothing before it is a literal */
  FIND("(*)", "a*", "2-2 [*]");
}

TEST(test_captures) {
  FIND("(a)(b)", "xab", "2-3 [a] [b]");
  FIND("((a)b)", "ab", "1-2 [ab] [a]");
  FIND("()a()", "xa", "2-2 @2 @3");
  FIND("(h)(e)(l)(l)(o)", "hello", "1-5 [h] [e] [l] [l] [o]");
  FIND("(a*(.)%w(%s*))", "aaab  x", "1-6 [aaab  ] [a] [  ]");
  FIND("(%a+)=(%a*)", "k=v", "1-3 [k] [v]");
  FIND("()", "", "1-0 @1");
}

TEST(test_backreferences) {
  FIND("(a+)b%1", "aabaa", "1-5 [aa]");
  FIND("(a+)b%1", "aaba", "2-4 [a]");
  FIND("([\"'])(.-)%1", "x='a\"b'", "3-7 ['] [a\"b]");
  FIND("()%1", "aa", "nil"); /* a position capture is never matched again */
}

TEST(test_balance_and_frontier) {
  FIND("%b()", "f(a(b)c)d", "2-8");
  FIND("%b()", "f(a(b", "nil");
  FIND("%bxx", "axbxc", "2-4"); /* the same delimiter closes at once */
  FIND("%f[%w]%w+", "  hello world", "3-7");
  FIND("%f[%W]", "abc", "4-3"); /* the end of the subject is '\0' */
  FIND("%f[%a]", "abc", "1-0");
  FIND("%f[%l]%a+", "ABc dE", "3-3");
  FIND("%f[%l]%a+", "ABC DE", "nil");
  FIND("%f[%d]%d+%f[%D]", "a12b", "2-3");
}

TEST(test_caseless) {
  IFIND("lond", "London", "1-4");
  IFIND("LOND", "london", "1-4");
  IFIND("^[ab]", "Ada", "1-1");
  IFIND("[A-C]+", "xabcd", "2-4");
  IFIND("%l+", "ABc", "1-3"); /* %l and %u both mean letters */
  IFIND("%u+", "abC", "1-3");
  IFIND("%L+", "ab12", "3-4"); /* and their complements no letter */
  IFIND("%U", "aB", "nil");
  IFIND("[^a]", "Ab", "2-2"); /* [^a] refuses both cases of a */
  IFIND("(a)%1", "aA", "1-2 [a]");
  IFIND("%bAB", "xabAb", "2-3");
  IFIND("%f[a]A", "xAa", "2-2");
  IFIND("a%f[a]", "aA", "nil");
  IFIND("\xc3\xa9", "\xc3\x89", "nil"); /* no folding beyond ASCII */
  FIND("LOND", "london", "nil");        /* and none without the flag */
}

static void check_error_at(const char *pat, const char *want, int line) {
  buf_t got = BUF_INIT;
  ours(&got, pat, strlen(pat), "abc", 3, 0, 0, 1000);
  buf_putc(&got, '\0');
  if (strncmp(got.data, "error: ", 7) != 0 || strcmp(got.data + 7, want) != 0)
    FAIL_AT(line, "\"%s\": got \"%s\", want error \"%s\"", pat, got.data, want);
  buf_free(&got);
}
#define ERR(pat, want) check_error_at(pat, want, __LINE__)

TEST(test_malformed_patterns) {
  ERR("%", "malformed pattern (ends with '%')");
  ERR("x%", "malformed pattern (ends with '%')");
  ERR("[a", "malformed pattern (missing ']')");
  ERR("[^", "malformed pattern (missing ']')");
  ERR("[]", "malformed pattern (missing ']')");
  ERR("[a%", "malformed pattern (missing ']')");
  ERR("[%]", "malformed pattern (missing ']')");
  ERR("%b", "malformed pattern (missing arguments to '%b')");
  ERR("%bx", "malformed pattern (missing arguments to '%b')");
  ERR("%f", "missing '[' after '%f' in pattern");
  ERR("%fa", "missing '[' after '%f' in pattern");
  ERR("%f[a", "malformed pattern (missing ']')");
  ERR("%1", "invalid capture index %1");
  ERR("%0", "invalid capture index %0");
  ERR("(a)%2", "invalid capture index %2");
  ERR("(a%1)", "invalid capture index %1"); /* not closed yet */
  ERR("a)", "invalid pattern capture");
  ERR("(a", "unfinished capture");
  ERR("((a)", "unfinished capture");
  char many[80] = "";
  for (int i = 0; i < 33; i++)
    strcat(many, "()");
  ERR(many, "too many captures");
  many[64] = '\0'; /* 32 are fine */
  FIND(many, "",
       "1-0 @1 @1 @1 @1 @1 @1 @1 @1 @1 @1 @1 @1 @1 @1 @1 @1 @1 @1 @1 @1 @1 @1 @1 @1 "
       "@1 @1 @1 @1 @1 @1 @1 @1");
}

TEST(test_embedded_zeros) {
  char err[64];
  int rc;
  pattern_t *p = compile_at("a\0b", 3, 0, err, sizeof err, &rc);
  ASSERT_EQ(rc, 0);
  int64_t steps = 1000;
  pattern_match_t m;
  ASSERT_EQ(pattern_find(p, "xa\0b", 4, 0, &steps, &m), PATTERN_MATCH);
  ASSERT_EQ(m.start, 1);
  ASSERT_EQ(m.end, 4);
  free(p);
  p = compile_at("%z", 2, 0, err, sizeof err, &rc); /* %z is not \0 in 5.4 */
  ASSERT_EQ(rc, 0);
  steps = 1000;
  ASSERT_EQ(pattern_find(p, "\0", 1, 0, &steps, &m), PATTERN_NOMATCH);
  free(p);
  ASSERT(pattern_is_plain("a\0]b)", 5));
  ASSERT(!pattern_is_plain("a\0.", 3));
}

TEST(test_no_anchor_flag) {
  char err[64];
  int rc;
  pattern_t *p = compile_at("^a", 2, PATTERN_NO_ANCHOR, err, sizeof err, &rc);
  ASSERT_EQ(rc, 0);
  ASSERT(!pattern_anchored(p));
  int64_t steps = 1000;
  pattern_match_t m;
  ASSERT_EQ(pattern_find(p, "x^a", 3, 0, &steps, &m), PATTERN_MATCH);
  ASSERT_EQ(m.start, 1);
  free(p);
}

/* The attack of issue #12: ten `a*` and a tail that cannot match, against
 * 25 bytes. Unbounded, that is seconds of backtracking; with an allowance
 * the matcher stops as soon as it is spent and says so. */
TEST(test_budget_stops_backtracking) {
  char pat[64] = "", s[32];
  for (int i = 0; i < 10; i++)
    strcat(pat, "a*");
  strcat(pat, "b");
  memset(s, 'a', 25);
  char err[64];
  int rc;
  pattern_t *p = compile_at(pat, strlen(pat), 0, err, sizeof err, &rc);
  ASSERT_EQ(rc, 0);
  int64_t steps = 1000000;
  pattern_match_t m;
  ASSERT_EQ(pattern_find(p, s, 25, 0, &steps, &m), PATTERN_OUT_OF_STEPS);
  ASSERT_EQ(steps, 0);
  /* The same pattern with a tail that is there answers within the budget. */
  s[24] = 'b';
  steps = 1000000;
  ASSERT_EQ(pattern_find(p, s, 25, 0, &steps, &m), PATTERN_MATCH);
  ASSERT(steps > 1000000 - 200);
  ASSERT_EQ(m.end, 25);
  free(p);
  /* No allowance at all: out of steps before anything. */
  p = compile_at("a", 1, 0, err, sizeof err, &rc);
  steps = 0;
  ASSERT_EQ(pattern_find(p, "a", 1, 0, &steps, &m), PATTERN_OUT_OF_STEPS);
  free(p);
}

/* The steps of a search grow with the work, not faster: a linear pattern
 * over a long subject costs a few steps per byte. */
TEST(test_steps_are_proportional) {
  size_t n = 100000;
  char *s = malloc(n);
  memset(s, 'x', n);
  char err[64];
  int rc;
  pattern_t *p = compile_at("x*y", 3, 0, err, sizeof err, &rc);
  int64_t steps = INT64_MAX;
  pattern_match_t m;
  /* `x*` at each start reads the rest and gives it back: quadratic, and
   * counted so. */
  steps = 50 * (int64_t)n;
  ASSERT_EQ(pattern_find(p, s, n, 0, &steps, &m), PATTERN_OUT_OF_STEPS);
  free(p);
  p = compile_at("%f[y]y", 6, 0, err, sizeof err, &rc);
  steps = 10 * (int64_t)n;
  ASSERT_EQ(pattern_find(p, s, n, 0, &steps, &m), PATTERN_NOMATCH);
  ASSERT(steps > 5 * (int64_t)n);
  free(p);
  free(s);
}

TEST(test_long_pattern_needs_no_stack) {
  /* 20000 optional items: a recursive matcher would need a frame each. */
  size_t n = 20000;
  char *pat = malloc(2 * n + 1), *s = malloc(n);
  for (size_t i = 0; i < n; i++) {
    pat[2 * i] = 'a';
    pat[2 * i + 1] = '?';
    s[i] = 'a';
  }
  pat[2 * n] = 'b';
  char err[64];
  int rc;
  pattern_t *p = compile_at(pat, 2 * n + 1, 0, err, sizeof err, &rc);
  ASSERT_EQ(rc, 0);
  int64_t steps = 10000000;
  pattern_match_t m;
  ASSERT_EQ(pattern_match_at(p, s, n, 0, &steps, &m), PATTERN_OUT_OF_STEPS);
  free(p);
  free(pat);
  free(s);
  ASSERT_EQ(pattern_size(SIZE_MAX), 0);
}

/* ---- differential: generated patterns against real Lua ------------------ */

static uint64_t rng_state = 0x9E3779B97F4A7C15u;
static unsigned rnd(unsigned n) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (unsigned)(rng_state % n);
}

static const char *const singles[] = {
    "a",      "b",   "c",     "A",    ".",      "%a",    "%d", "%s",   "%w",   "%A",
    "%l",     "%u",  "%p",    "%x",   "%.",     "%%",    "%(", "[ab]", "[^a]", "[a-c]",
    "[%d%a]", "[]]", "[^]a]", "[a-]", "[%a-z]", "[^%s]", " ",  "1",    "]",    "^",
};
static const char *const quants[] = {"", "", "", "*", "+", "-", "?"};

/* A well-formed pattern: items, captures around runs of items,
 * back-references to closed captures, %b, %f, anchors. */
static void gen_pattern(buf_t *p) {
  buf_reset(p);
  if (rnd(5) == 0)
    buf_putc(p, '^');
  int open[8], nopen = 0, ncap = 0;
  bool closed[40] = {false};
  int items = 1 + (int)rnd(7);
  for (int i = 0; i < items; i++) {
    unsigned k = rnd(20);
    if (k < 2 && nopen < 8 && ncap < 30) {
      open[nopen++] = ncap++;
      buf_putc(p, '(');
    } else if (k < 4 && nopen > 0) {
      closed[open[--nopen]] = true;
      buf_putc(p, ')');
    } else if (k == 4 && ncap < 30) {
      closed[ncap++] = true;
      buf_puts(p, "()");
    } else if (k == 5) {
      int c = (int)rnd(ncap ? (unsigned)ncap : 1);
      if (ncap && closed[c])
        buf_printf(p, "%%%d", c + 1);
    } else if (k == 6) {
      buf_puts(p, rnd(2) ? "%bab" : "%b()");
    } else if (k == 7) {
      static const char *const fr[] = {"%f[%a]", "%f[^a]", "%f[ab]", "%f[%W]"};
      buf_puts(p, fr[rnd(4)]);
    } else {
      buf_puts(p, singles[rnd(sizeof singles / sizeof singles[0])]);
      buf_puts(p, quants[rnd(sizeof quants / sizeof quants[0])]);
    }
  }
  while (nopen > 0) {
    closed[open[--nopen]] = true;
    buf_putc(p, ')');
  }
  if (rnd(5) == 0)
    buf_putc(p, '$');
}

static void gen_subject(buf_t *s) {
  static const char alphabet[] = "aaabbbcAB1 ().%-]^";
  buf_reset(s);
  int n = (int)rnd(14);
  for (int i = 0; i < n; i++)
    buf_putc(s, alphabet[rnd(sizeof alphabet - 1)]);
}

/* Lua's answer for string.find(s, pat, init) in the format of ours().
 * Returns false when Lua refuses the pattern for its depth ("pattern too
 * complex"), a limit this matcher does not share. */
static bool lua_describe(lua_State *L, buf_t *out, const char *pat, size_t plen, const char *s,
                         size_t n, size_t init) {
  buf_reset(out);
  int top = lua_gettop(L);
  lua_getglobal(L, "string");
  lua_getfield(L, -1, "find");
  lua_remove(L, -2);
  lua_pushlstring(L, s, n);
  lua_pushlstring(L, pat, plen);
  lua_pushinteger(L, (lua_Integer)init + 1);
  if (lua_pcall(L, 3, LUA_MULTRET, 0) != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    bool complex = strstr(msg, "too complex") != NULL;
    buf_printf(out, "error: %s", msg);
    lua_settop(L, top);
    return !complex;
  }
  int nres = lua_gettop(L) - top;
  if (nres == 1 && lua_isnil(L, -1)) {
    buf_puts(out, "nil");
  } else {
    buf_printf(out, "%lld-%lld", (long long)lua_tointeger(L, top + 1),
               (long long)lua_tointeger(L, top + 2));
    for (int i = top + 3; i <= top + nres; i++) {
      if (lua_type(L, i) == LUA_TNUMBER) {
        buf_printf(out, " @%lld", (long long)lua_tointeger(L, i));
      } else {
        size_t len;
        const char *c = lua_tolstring(L, i, &len);
        buf_printf(out, " [%.*s]", (int)len, c);
      }
    }
  }
  lua_settop(L, top);
  return true;
}

TEST(test_differential_against_lua_find) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  buf_t pat = BUF_INIT, s = BUF_INIT, a = BUF_INIT, b = BUF_INIT;
  int compared = 0, matched = 0;
  for (int i = 0; i < 6000; i++) {
    gen_pattern(&pat);
    gen_subject(&s);
    size_t init = rnd(4) == 0 ? rnd((unsigned)s.len + 2) : 0;
    if (init > s.len)
      init = s.len;
    const char *sp = s.data ? s.data : "";
    const char *pp = pat.data ? pat.data : "";
    if (!lua_describe(L, &b, pp, pat.len, sp, s.len, init))
      continue;
    ours(&a, pp, pat.len, sp, s.len, init, 0, INT64_MAX);
    buf_putc(&a, '\0');
    buf_putc(&b, '\0');
    compared++;
    if (strcmp(a.data, "nil") != 0)
      matched++;
    if (strcmp(a.data, b.data) != 0)
      UNIT_FAIL("pattern \"%s\" subject \"%s\" init %zu: ours \"%s\", Lua \"%s\"", pp, sp,
                init + 1, a.data, b.data);
  }
  /* The generator must exercise both outcomes. */
  ASSERT(compared > 5000);
  ASSERT(matched > 1000);
  ASSERT(compared - matched > 1000);
  buf_free(&pat);
  buf_free(&s);
  buf_free(&a);
  buf_free(&b);
  lua_close(L);
}

/* Random, mostly malformed patterns: where Lua raises, this matcher raises
 * the same message; where this one raises, Lua raises the same or, having
 * not reached the fault, finds nothing. It never matches what we refuse. */
TEST(test_differential_malformed) {
  static const char *const toks[] = {"(", ")",  "[",  "]",  "%",  "^",  "$",  "a",  "b",  "-",
                                     "*", "%b", "%f", "%1", "%2", "%0", "()", "[^", "%a", "."};
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  buf_t pat = BUF_INIT, subj = BUF_INIT, a = BUF_INIT, b = BUF_INIT;
  int refused = 0;
  for (int i = 0; i < 20000; i++) {
    buf_reset(&pat);
    buf_reset(&subj);
    for (int k = 1 + (int)rnd(6); k > 0; k--)
      buf_puts(&pat, toks[rnd(sizeof toks / sizeof toks[0])]);
    for (int k = (int)rnd(8); k > 0; k--)
      buf_putc(&subj, "ab()[]%^$"[rnd(9)]);
    const char *pp = pat.data ? pat.data : "", *sp = subj.data ? subj.data : "";
    if (pattern_is_plain(pp, pat.len) || !lua_describe(L, &b, pp, pat.len, sp, subj.len, 0))
      continue;
    ours(&a, pp, pat.len, sp, subj.len, 0, 0, INT64_MAX);
    buf_putc(&a, '\0');
    buf_putc(&b, '\0');
    bool our_err = strncmp(a.data, "error: ", 7) == 0,
         lua_err = strncmp(b.data, "error: ", 7) == 0;
    if (our_err)
      refused++;
    if (lua_err   ? strcmp(a.data, b.data) != 0
        : our_err ? strcmp(b.data, "nil") != 0
                  : strcmp(a.data, b.data) != 0)
      UNIT_FAIL("pattern \"%s\" subject \"%s\": ours \"%s\", Lua \"%s\"", pp, sp, a.data, b.data);
  }
  ASSERT(refused > 5000);
  buf_free(&pat);
  buf_free(&subj);
  buf_free(&a);
  buf_free(&b);
  lua_close(L);
}

UNIT_MAIN(test_literals_and_dot, test_classes, test_sets, test_anchors, test_quantifiers,
          test_captures, test_backreferences, test_balance_and_frontier, test_caseless,
          test_malformed_patterns, test_embedded_zeros, test_no_anchor_flag,
          test_budget_stops_backtracking, test_steps_are_proportional,
          test_long_pattern_needs_no_stack, test_differential_against_lua_find,
          test_differential_malformed)
