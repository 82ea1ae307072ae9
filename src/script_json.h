/* script_json.h - the JSON codec behind the Lua `json` module
 * (script_jsonlib.c), and for the C code that turns Lua values into JSON
 * and back.
 *
 * Debian's lua-cjson (2.1.0) has no empty_array / array_mt, and a mock
 * server must tell `[]` from `{}`, so h1mock carries its own codec. It runs
 * on the request hot path (every table a view returns is encoded here), so
 * it appends straight into a buf_t and allocates nothing per value beyond
 * the strings and tables Lua itself creates.
 *
 * Encoding (compact, keys sorted bytewise like Flask's jsonify):
 * - A table is an array when its metatable is json.array_mt (elements
 *   1..rawlen; other keys are ignored, a nil hole is written as null) or when
 *   its keys are exactly 1..n with n >= 1. An empty table without array_mt
 *   is `{}`. Any other table is an object whose keys must be strings or
 *   numbers; number keys are written as their decimal text, and a number key
 *   and a string key that give the same text are refused.
 * - json.null (a NULL light userdata) is null, json.empty_array is `[]`.
 * - Integers print as integers; floats in the shortest of %.15g/%.16g/%.17g
 *   that reads back exactly, with ".0" added when the text looks integral
 *   (1.0 -> "1.0"). NaN and +-inf are refused.
 * - Strings are escaped with \" \\ \b \f \n \r \t and \u00XX; valid UTF-8
 *   passes through, each ill-formed subsequence becomes U+FFFD.
 * - Tables are read raw: metamethods are not called.
 * - Nesting is limited to SCRIPT_JSON_MAX_DEPTH tables; that is also how a
 *   table that contains itself is caught, and the message then names both
 *   places.
 * - Error paths use jq notation: `.users[2].cb`, `.["a b"]`, array indices
 *   1-based as in Lua, "the top level" for the value itself.
 *
 * Decoding (RFC 8259, strict):
 * - Objects become plain tables, arrays become tables with json.array_mt,
 *   null becomes json.null; duplicate keys: the last one wins.
 * - An integer literal that fits int64 becomes a Lua integer; a fraction,
 *   an exponent or an overflowing literal gives a float (1e400 -> inf, as in
 *   Python).
 * - Escapes are decoded; a lone surrogate becomes U+FFFD. Raw bytes that are
 *   not valid UTF-8 are kept as they are (the encoder replaces them when the
 *   value is sent back out).
 * - A leading UTF-8 byte order mark is skipped (Flask's get_json accepts
 *   one too); positions in messages count from after it.
 * - Line and column in messages are 1-based; columns count characters
 *   (UTF-8 sequences), lines are ended by '\n'.
 */
#ifndef H1MOCK_SCRIPT_JSON_H
#define H1MOCK_SCRIPT_JSON_H

#include <stddef.h>

#include <lua.h>

#include "buf.h"

#define SCRIPT_JSON_MAX_DEPTH 1000

/* Encodes the value at `idx` as compact JSON appended to `out`. Returns 0,
 * -EINVAL with a sentence in `err` (e.g. "cannot encode a function at
 * .users[2].cb"), or -ENOMEM ("out of memory" in `err`). On failure `out`
 * is cut back to its length on entry. `err` may be NULL when errlen is 0;
 * a message longer than errlen ends in "...". Raises no Lua error except a
 * memory error from the Lua API itself (nothing leaks then); leaves the Lua
 * stack as it was. */
int script_json_encode(lua_State *L, int idx, buf_t *out, char *err, size_t errlen);

/* What JSON work costs in instructions of the budget: one per byte of
 * text, plus these per value. Measured against a VM instruction (about
 * 2-3 ns): encoding spends about 30 ns per value beside its bytes,
 * decoding 60-300 ns (a new table is the dearest); long strings cost about
 * their length in either direction. */
#define SCRIPT_JSON_ENCODE_VALUE_COST 16
#define SCRIPT_JSON_DECODE_VALUE_COST 64

/* script_json_encode with an allowance of *allowance instructions, which
 * is decreased by the cost of the work. Returns -E2BIG (and a sentence)
 * as soon as the text written so far costs more than the allowance, so
 * that the time spent is bounded by it too. */
int script_json_encode_budgeted(lua_State *L, int idx, buf_t *out, int64_t *allowance, char *err,
                                size_t errlen);

/* Decodes `len` bytes of JSON text and pushes the value. Returns 0, or
 * -EINVAL with a message such as "unexpected character '}' at line 1,
 * column 9" in `err` and nothing pushed (-ENOMEM if the Lua stack cannot
 * grow). Raises no Lua error except a memory error from the Lua API. */
int script_json_decode(lua_State *L, const char *s, size_t len, char *err, size_t errlen);

/* script_json_decode with an allowance, as script_json_encode_budgeted:
 * -E2BIG before any work when the text is longer than the allowance, or
 * when the values decoded so far spend it. */
int script_json_decode_budgeted(lua_State *L, const char *s, size_t len, int64_t *allowance,
                                char *err, size_t errlen);

/* Pushes json.null, for C code that builds Lua values. */
void script_json_push_null(lua_State *L);
/* Pushes json.empty_array. */
void script_json_push_empty_array(lua_State *L);
/* Pushes json.array_mt: a table carrying it is written as an array. */
void script_json_push_array_mt(lua_State *L);

#endif
