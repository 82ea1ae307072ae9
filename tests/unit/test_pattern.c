/* test_pattern.c - unit tests for the step-counted pattern matcher
 * (src/pattern.c) and the string functions built on it
 * (src/script_string.c).
 *
 * Besides the cases one by one, two differential tests run thousands of
 * generated patterns and subjects through this matcher and through the
 * real Lua 5.4 library the binary links: once at the C level against
 * string.find, once at the Lua level (find, match, gmatch, gsub with every
 * kind of replacement) between a state with Lua's string library and one
 * with h1mock's.
 */
#include "unit.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>

#include <lauxlib.h>
#include <lualib.h>

#include "buf.h"
#include "pattern.h"
/* The private header of the script*.c files, for script_string_open. */
#include "script_int.h"

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

/* A Lua state with h1mock's string functions over the standard ones, and
 * no budget context (so nothing is charged). */
static lua_State *our_state(void) {
  lua_State *L = luaL_newstate();
  *(void **)lua_getextraspace(L) = NULL;
  luaL_openlibs(L);
  script_string_open(L);
  return L;
}

/* Runs the probe of every string function on (s, p, init) and returns its
 * report (on L's stack). */
static const char probe_src[] =
    "local s, p, init = ...\n"
    "local function show(...)\n"
    "  local t = table.pack(...)\n"
    "  for i = 1, t.n do\n"
    "    t[i] = type(t[i]) == 'string' and string.format('%q', t[i]) or tostring(t[i])\n"
    "  end\n"
    "  return table.concat(t, ',', 1, t.n)\n"
    "end\n"
    "local out = {}\n"
    "local function try(name, f, ...)\n"
    "  local r = table.pack(pcall(f, ...))\n"
    "  out[#out + 1] = name .. '=' .. (r[1] and show(table.unpack(r, 2, r.n))\n"
    "                                    or ('error: ' .. tostring(r[2])))\n"
    "end\n"
    "try('find', string.find, s, p, init)\n"
    "try('findplain', string.find, s, p, init, true)\n"
    "try('match', string.match, s, p, init)\n"
    "try('method', function() return s:match(p) end)\n"
    "try('gmatch', function()\n"
    "  local t = {}\n"
    "  for a, b in string.gmatch(s, p, init) do\n"
    "    t[#t + 1] = show(a, b)\n"
    "    if #t > 40 then break end\n"
    "  end\n"
    "  return table.concat(t, ';')\n"
    "end)\n"
    "try('gsub', string.gsub, s, p, '<%0>')\n"
    "try('gsub1', string.gsub, s, p, '%1%%')\n"
    "try('gsubf', string.gsub, s, p, function(a, b) return a and (a .. '|' .. tostring(b)) end)\n"
    "try('gsubt', string.gsub, s, p, {a = 'A', b = false, [1] = 'one', [2] = 2})\n"
    "try('gsubn', string.gsub, s, p, '[%0]', init)\n"
    "return table.concat(out, '\\n')\n";

static void probe(lua_State *L, buf_t *out, const char *p, size_t plen, const char *s, size_t n,
                  lua_Integer init) {
  if (luaL_loadbuffer(L, probe_src, sizeof probe_src - 1, "=probe") != LUA_OK)
    UNIT_FAIL("probe: %s", lua_tostring(L, -1));
  lua_pushlstring(L, s, n);
  lua_pushlstring(L, p, plen);
  lua_pushinteger(L, init);
  if (lua_pcall(L, 3, 1, 0) != LUA_OK)
    UNIT_FAIL("probe: %s", lua_tostring(L, -1));
  buf_reset(out);
  size_t len;
  const char *r = lua_tolstring(L, -1, &len);
  buf_append(out, r, len);
  buf_putc(out, '\0');
  lua_pop(L, 1);
}

TEST(test_differential_string_functions) {
  lua_State *ref = luaL_newstate(), *our = our_state();
  luaL_openlibs(ref);
  buf_t pat = BUF_INIT, s = BUF_INIT, a = BUF_INIT, b = BUF_INIT;
  int compared = 0;
  for (int i = 0; i < 3000; i++) {
    gen_pattern(&pat);
    gen_subject(&s);
    lua_Integer init = rnd(3) == 0 ? (lua_Integer)rnd(20) - 10 : 1;
    const char *sp = s.data ? s.data : "", *pp = pat.data ? pat.data : "";
    probe(ref, &b, pp, pat.len, sp, s.len, init);
    if (strstr(b.data, "too complex"))
      continue;
    probe(our, &a, pp, pat.len, sp, s.len, init);
    compared++;
    if (strcmp(a.data, b.data) != 0)
      UNIT_FAIL("pattern \"%s\" subject \"%s\" init %lld:\n--- ours\n%s\n--- Lua\n%s", pp, sp,
                (long long)init, a.data, b.data);
  }
  ASSERT(compared > 2900);
  buf_free(&pat);
  buf_free(&s);
  buf_free(&a);
  buf_free(&b);
  lua_close(ref);
  lua_close(our);
}

/* Chunks run in both states must give the same text: argument handling,
 * errors, replacement forms, table.concat and string.rep. */
static void same_at(lua_State *ref, lua_State *our, const char *code, int line) {
  lua_State *states[2] = {ref, our};
  char *got[2];
  for (int i = 0; i < 2; i++) {
    lua_State *L = states[i];
    if (luaL_loadstring(L, code) != LUA_OK)
      FAIL_AT(line, "load: %s", lua_tostring(L, -1));
    if (lua_pcall(L, 0, 1, 0) != LUA_OK)
      lua_pushfstring(L, "error: %s", lua_tostring(L, -1));
    got[i] = strdup(luaL_tolstring(L, -1, NULL));
    lua_pop(L, 2);
  }
  if (strcmp(got[0], got[1]) != 0)
    FAIL_AT(line, "%s\n  Lua:  %s\n  ours: %s", code, got[0], got[1]);
  free(got[0]);
  free(got[1]);
}
#define SAME(code) same_at(ref, our, code, __LINE__)

TEST(test_argument_semantics_match_lua) {
  lua_State *ref = luaL_newstate(), *our = our_state();
  luaL_openlibs(ref);
  SAME("return table.concat({string.find('hello', 'l', -2)}, ',')");
  SAME("return table.concat({string.find('hello', 'l', -100)}, ',')");
  SAME("return tostring(string.find('hello', 'l', 10))");
  SAME("return table.concat({string.find('hello', '', 6)}, ',')");
  SAME("return tostring(string.find('hello', '', 7))");
  SAME("return table.concat({string.find('a.b', '.', 1, true)}, ',')");
  SAME("return table.concat({string.find('a(b', '(', 1, true)}, ',')");
  SAME("return table.concat({string.find('a)b', ')')}, ',')"); /* plain: no specials */
  SAME("return table.concat({string.find(12345, 34)}, ',')");  /* numbers as strings */
  SAME("return string.find('abc', 'b', 1.5)");
  SAME("return string.find()");
  SAME("return string.find('abc')");
  SAME("return string.match('abc', '%')");
  SAME("return string.match('key = value', '(%w+)%s*=%s*(%w+)')");
  SAME("return select('#', string.match('abc', '()b()'))");
  SAME("local t = {} for k, v in string.gmatch('a=1, b=2', '(%w+)=(%w+)') do t[#t+1] = k..v end "
       "return table.concat(t, ';')");
  SAME("local t = {} for w in ('one two  three'):gmatch('%a+') do t[#t+1] = w end "
       "return table.concat(t, ';')");
  SAME("local t = {} for w in string.gmatch('abcabc', 'b', 3) do t[#t+1] = w end return #t");
  SAME("local t = {} for w in string.gmatch('abc', '', -1) do t[#t+1] = w end return #t");
  SAME("local t = {} for w in string.gmatch('^a^a', '^a') do t[#t+1] = w end return #t");
  SAME("return string.gmatch('abc')");
  SAME("return select(2, string.gsub('abc', '', '-'))");
  SAME("return (string.gsub('abc', '', '-'))");
  SAME("return (string.gsub('abc', 'b*', '-'))");
  SAME("return (string.gsub('hello world', '(o)', '%1%1', 1))");
  SAME("return (string.gsub('hello world', 'o', 'O', 0))");
  SAME("return (string.gsub('hello world', 'o', 'O', -1))");
  SAME("return (string.gsub('hello', '^h', 'H'))");
  SAME("return (string.gsub('hhh', '^h', 'H'))");
  SAME("return (string.gsub('abc', '%w', '%0%0'))");
  SAME("return (string.gsub('abc', '%w', '%%'))");
  SAME("return (string.gsub('abc', '()b', '%1'))");
  SAME("return (string.gsub('abc', 'b', 7))");
  SAME("return string.gsub('abc', 'b', '%')");
  SAME("return string.gsub('abc', 'b', '%x')");
  SAME("return string.gsub('abc', 'b', '%2')");
  SAME("return string.gsub('abc', '(b)', '%2')");
  SAME("return string.gsub('abc', 'b')");
  SAME("return string.gsub('abc', 'b', true)");
  SAME("return string.gsub('abc', 'b', {b = {}})");
  SAME("return string.gsub('abc', 'b', function() return {} end)");
  SAME("return (string.gsub('abc', '%w', {a = 1, b = false}))");
  SAME("return (string.gsub('abc', '%w', function(c) if c == 'b' then return nil end "
       "return c:upper() end))");
  SAME("return (string.gsub('$1,000', '[$,]', ''))");
  SAME("return (string.gsub('x = 1', '%s*=%s*', '='))");
  SAME("return string.rep('ab', 3, ',')");
  SAME("return string.rep('ab', 0)");
  SAME("return string.rep('ab', -1)");
  SAME("return string.rep()");
  SAME("return string.rep('x', 1.5)");
  SAME("return ('x'):rep(3)");
  SAME("return table.concat({1, 2, 'a'}, '-')");
  SAME("return table.concat({1, 2, 3}, '-', 2)");
  SAME("return table.concat({1, 2, 3}, '-', 2, 3)");
  SAME("return table.concat({1, 2, 3}, '-', 3, 2)");
  SAME("return table.concat({}, '-')");
  SAME("return table.concat({1, {}, 3})");
  SAME("return table.concat({1, nil, 3}, ',', 1, 3)");
  SAME("return table.concat(5)");
  SAME("return table.concat()");
  SAME("return table.concat({'a'}, {})");
  SAME("return table.concat(setmetatable({}, {__index = function(_, i) return 'x' .. i end, "
       "__len = function() return 3 end}), ',')");
  SAME("return table.concat(setmetatable({}, {__index = function(_, i) return i end}), ',')");
  SAME("return table.concat({'a', 'b'}, ',', math.maxinteger - 1, math.maxinteger)");
  SAME("return table.concat(setmetatable({}, {__index = {}}))");
  SAME("return ('Hello'):lower() .. string.upper('Hello') .. string.reverse('abc')");
  SAME("return ('hello'):sub(2) .. ('hello'):sub(-3, -2) .. ('hello'):sub(4, 2) .. 'x'");
  SAME("return string.lower()");
  SAME("return string.upper({})");
  SAME("return string.sub('abc')");
  SAME("return string.sub('abc', 'x')");
  SAME("return string.sub('abc', 1, 1.5)");
  SAME("return table.concat(table.move({1, 2, 3}, 1, 3, 2), ',')");
  SAME("return table.concat(table.move({1, 2, 3}, 2, 3, 1), ',')");
  SAME("return table.concat(table.move({1, 2, 3}, 1, 3, 1, {}), ',')");
  SAME("return table.concat(table.move({1, 2, 3}, 3, 1, 1, {9}), ',')");
  SAME("return table.move()");
  SAME("return table.move({}, 1)");
  SAME("return table.move({}, 1, 2, 'x')");
  SAME("return table.move(1, 1, 2, 1)");
  SAME("return table.move({}, 1, 2, 1, 5)");
  SAME("return table.move({}, -1, math.maxinteger, 1)");
  SAME("return table.move({}, 1, 2, math.maxinteger)");
  SAME("return type(table.move(setmetatable({}, {__index = {}}), 1, 2, 1, {}))");
  SAME("return type(table.move(setmetatable({}, {__index = {}}), 1, 2, 1))");
  lua_close(ref);
  lua_close(our);
}

TEST(test_like_function) {
  lua_State *L = luaL_newstate();
  *(void **)lua_getextraspace(L) = NULL;
  luaL_openlibs(L);
  lua_newtable(L);
  lua_setfield(L, LUA_REGISTRYINDEX, "unused");
  /* h1mock.like is added to the runtime module; a stand-in module will do. */
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_newtable(L);
  lua_setfield(L, -2, "h1mock");
  lua_pop(L, 1);
  script_string_open_runtime(L);
  static const char code[] =
      "local like = require('h1mock').like\n"
      "local r = {}\n"
      "local function add(a, b) r[#r + 1] = tostring(a) .. ' ' .. tostring(b) end\n"
      "add(like('London', 'LOND', 1000))\n"
      "add(like('ada', '^[AB]', 1000))\n"
      "add(like('Cyd', '^[ab]', 1000))\n"
      "add(like('abc', '[a', 1000))\n"
      "add(like(('a'):rep(25), ('a*'):rep(10) .. 'b', 100000))\n"
      "return table.concat(r, ';')\n";
  if (luaL_loadstring(L, code) || lua_pcall(L, 0, 1, 0))
    UNIT_FAIL("%s", lua_tostring(L, -1));
  ASSERT_STR_EQ(lua_tostring(L, -1), "true nil;true nil;false nil;nil malformed pattern (missing "
                                     "']');nil steps");
  lua_close(L);
}

UNIT_MAIN(test_literals_and_dot, test_classes, test_sets, test_anchors, test_quantifiers,
          test_captures, test_backreferences, test_balance_and_frontier, test_caseless,
          test_malformed_patterns, test_embedded_zeros, test_no_anchor_flag,
          test_budget_stops_backtracking, test_steps_are_proportional,
          test_long_pattern_needs_no_stack, test_differential_against_lua_find,
          test_differential_malformed, test_differential_string_functions,
          test_argument_semantics_match_lua, test_like_function)
