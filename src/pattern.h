/* pattern.h - Lua 5.4 string patterns with a step budget.
 *
 * Lua's own matcher backtracks with no bound: a client's `a*a*a*...b` can
 * hold the event loop for minutes, and the count hook never sees time
 * spent inside a C function. This matcher accepts the syntax of the Lua
 * manual (§6.4.1) and matches the same way (greedy `*` `+`, lazy `-`,
 * first-found `?`, leftmost match), but every step it takes is counted and
 * it stops, saying so, when the caller's allowance runs out.
 *
 * A pattern is compiled once (classes and sets become 256-bit maps) and
 * then run from any number of positions. The matcher backtracks with an
 * explicit stack of choice points held in the compiled pattern, never by
 * recursion: a pattern of any length cannot overflow the C stack, and the
 * only size limit is the memory of pattern_size().
 *
 * Differences from Lua, all on malformed input: Lua reports a fault in a
 * pattern only when its matcher reaches it, this one at compile time, so
 * `x%` is always an error (Lua returns "no match" when no `x` is found),
 * and an unclosed `(` is an error even where Lua would not read the
 * capture. Lua refuses patterns that nest more than about 200 choices
 * ("pattern too complex"); this matcher has no such limit.
 *
 * Caseless mode (PATTERN_CASELESS) folds ASCII letters: a literal letter
 * matches either case, and every class or set is first widened to hold the
 * other case of each letter it holds, then complemented if it is a
 * complement. So `[a-c]` matches `B`, `%l` and `%u` both match any letter,
 * `%L`, `%U` and `[^a]` match no letter of that case either (`[^a]` refuses
 * `A`), and `%1` and `%bxy` compare letters caselessly. Bytes >= 0x80 are
 * never folded.
 *
 * No I/O, no Lua, no globals: safe to call from any thread with separate
 * pattern_t objects.
 */
#ifndef H1MOCK_PATTERN_H
#define H1MOCK_PATTERN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PATTERN_MAXCAPTURES 32 /* as in Lua */

enum {
  PATTERN_CASELESS = 1,  /* fold ASCII case, see above */
  PATTERN_NO_ANCHOR = 2, /* a leading '^' is a literal character (gmatch) */
};

enum pattern_result {
  PATTERN_NOMATCH = 0,
  PATTERN_MATCH = 1,
  PATTERN_OUT_OF_STEPS = 2, /* the allowance ran out before an answer */
};

typedef struct pattern pattern_t;

typedef struct pattern_capture {
  size_t start;  /* offset in the subject */
  size_t len;    /* 0 for a position capture */
  bool position; /* `()`: the value is start + 1 */
} pattern_capture_t;

typedef struct pattern_match {
  size_t start, end; /* the whole match is subject[start, end) */
  int ncap;          /* captures in the pattern; 0 means none */
  pattern_capture_t cap[PATTERN_MAXCAPTURES];
} pattern_match_t;

/* Bytes that pattern_compile needs for a pattern of `len` bytes (the
 * memory must be aligned as malloc's), or 0 when that does not fit a
 * size_t. */
size_t pattern_size(size_t len);

/* Compiles pat[0..len) into `p`, which has pattern_size(len) bytes.
 * Returns 0, or -EINVAL with Lua's wording of the fault in err (e.g.
 * "malformed pattern (missing ']')", "invalid capture index %2"). The
 * compiled pattern points into neither pat nor err. */
int pattern_compile(pattern_t *p, const char *pat, size_t len, unsigned flags, char *err,
                    size_t errlen);

/* Whether the pattern began with an anchoring '^'. */
bool pattern_anchored(const pattern_t *p);

/* Whether pat[0..len) holds none of the characters that make a pattern
 * more than plain text: Lua's string.find then searches for it as is. */
bool pattern_is_plain(const char *pat, size_t len);

/* Tries to match p at exactly offset `pos` of s[0..n) (pos <= n). *steps
 * is the allowance and is decreased by the steps taken: one per pattern
 * item tried, per backtrack, and per subject byte a repetition, `%b` or a
 * back-reference reads. Returns PATTERN_MATCH (with *m filled),
 * PATTERN_NOMATCH, or PATTERN_OUT_OF_STEPS (with *steps <= 0). Uses p's
 * work space: one call at a time per pattern. */
enum pattern_result pattern_match_at(pattern_t *p, const char *s, size_t n, size_t pos,
                                     int64_t *steps, pattern_match_t *m);

/* The leftmost match at or after `init` (init <= n): pattern_match_at from
 * init, init + 1, ... n, or from init only when the pattern is anchored. */
enum pattern_result pattern_find(pattern_t *p, const char *s, size_t n, size_t init,
                                 int64_t *steps, pattern_match_t *m);

#endif
