/* test_json.c - unit tests for the JSON codec (src/script_json.c) and the
 * `json` module over it (src/script_jsonlib.c).
 *
 * Every check goes through both doors: the C API (script_json_encode /
 * script_json_decode, with the Lua stack and the output buffer checked
 * afterwards) and the Lua functions of a state where the module is the
 * global `json`.
 */
#include "unit.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>

#include <lauxlib.h>
#include <lualib.h>

#include "buf.h"
#include "script_int.h"
#include "script_json.h"

/* U+FFFD as UTF-8, what the encoder writes for ill-formed bytes. */
#define R "\xEF\xBF\xBD"

/* json.encode/decode charge the budget of the script context in the
 * state's extra space; these states run no provision and carry none. */
static void no_context(lua_State *L) { *(void **)lua_getextraspace(L) = NULL; }

static lua_State *new_state(void) {
  lua_State *L = luaL_newstate();
  ASSERT(L != NULL);
  no_context(L);
  luaL_openlibs(L);
  ASSERT_EQ(script_jsonlib_open(L), 1);
  lua_setglobal(L, "json");
  return L;
}

/* Runs a chunk; a Lua error fails the test with its message. */
static void run_at(lua_State *L, const char *code, int nresults, int line) {
  if (luaL_loadbuffer(L, code, strlen(code), "=test") || lua_pcall(L, 0, nresults, 0))
    FAIL_AT(line, "lua: %s", lua_tostring(L, -1));
}
#define RUN(L, code) run_at(L, code, 0, __LINE__)

/* Pushes the value of a Lua expression. */
static void eval_at(lua_State *L, const char *expr, int line) {
  buf_t code = BUF_INIT;
  ASSERT_EQ(buf_printf(&code, "return %s", expr), 0);
  run_at(L, code.data, 1, line);
  buf_free(&code);
}

/* Encodes the value of `expr` and expects `want`. */
static void check_enc_at(lua_State *L, const char *expr, const char *want, int line) {
  int top = lua_gettop(L);
  eval_at(L, expr, line);
  buf_t b = BUF_INIT;
  char err[256] = "";
  int rc = script_json_encode(L, -1, &b, err, sizeof err);
  if (rc != 0)
    FAIL_AT(line, "encode(%s) returned %d: %s", expr, rc, err);
  if (lua_gettop(L) != top + 1)
    FAIL_AT(line, "encode(%s) moved the stack: %d != %d", expr, lua_gettop(L), top + 1);
  if (b.len != strlen(want) || memcmp(b.data, want, b.len) != 0)
    FAIL_AT(line, "encode(%s):\n    got  %.*s\n    want %s", expr, (int)b.len, b.data, want);
  lua_pop(L, 1);
  buf_free(&b);

  buf_t code = BUF_INIT;
  ASSERT_EQ(buf_printf(&code, "return json.encode(%s)", expr), 0);
  run_at(L, code.data, 1, line);
  size_t n;
  const char *s = lua_tolstring(L, -1, &n);
  if (s == NULL || n != strlen(want) || memcmp(s, want, n) != 0)
    FAIL_AT(line, "json.encode(%s):\n    got  %s\n    want %s", expr, s ? s : "(not a string)",
            want);
  lua_pop(L, 1);
  buf_free(&code);
  if (lua_gettop(L) != top)
    FAIL_AT(line, "stack %d != %d", lua_gettop(L), top);
}
#define CHECK_ENC(L, expr, want) check_enc_at(L, expr, want, __LINE__)

/* Expects encoding `expr` to fail with exactly `want`; the buffer keeps
 * what it held before, the stack is unchanged, and json.encode raises the
 * same sentence prefixed with the caller's position. */
static void check_enc_err_at(lua_State *L, const char *expr, const char *want, int line) {
  int top = lua_gettop(L);
  eval_at(L, expr, line);
  buf_t b = BUF_INIT;
  ASSERT_EQ(buf_puts(&b, "before"), 0);
  char err[256] = "";
  int rc = script_json_encode(L, -1, &b, err, sizeof err);
  if (rc != -EINVAL)
    FAIL_AT(line, "encode(%s) returned %d, want -EINVAL (err \"%s\")", expr, rc, err);
  if (strcmp(err, want) != 0)
    FAIL_AT(line, "encode(%s) error:\n    got  %s\n    want %s", expr, err, want);
  if (b.len != 6 || memcmp(b.data, "before", 6) != 0)
    FAIL_AT(line, "encode(%s) left \"%.*s\" in the buffer", expr, (int)b.len, b.data);
  if (lua_gettop(L) != top + 1)
    FAIL_AT(line, "encode(%s) moved the stack: %d != %d", expr, lua_gettop(L), top + 1);
  lua_pop(L, 1);
  buf_free(&b);

  buf_t code = BUF_INIT, msg = BUF_INIT;
  ASSERT_EQ(buf_printf(&code, "return json.encode(%s)", expr), 0);
  ASSERT_EQ(buf_printf(&msg, "t.lua:1: json.encode: %s", want), 0);
  ASSERT_EQ(luaL_loadbuffer(L, code.data, code.len, "=t.lua"), LUA_OK);
  if (lua_pcall(L, 0, 1, 0) != LUA_ERRRUN)
    FAIL_AT(line, "json.encode(%s) did not raise", expr);
  const char *got = lua_tostring(L, -1);
  if (got == NULL || strcmp(got, msg.data) != 0)
    FAIL_AT(line, "json.encode(%s) raised:\n    got  %s\n    want %s", expr, got, msg.data);
  lua_pop(L, 1);
  buf_free(&code);
  buf_free(&msg);
  if (lua_gettop(L) != top)
    FAIL_AT(line, "stack %d != %d", lua_gettop(L), top);
}
#define CHECK_ENC_ERR(L, expr, want) check_enc_err_at(L, expr, want, __LINE__)

/* Decodes `text` and expects the Lua predicate `pred` about `v` to hold. */
static void check_dec_at(lua_State *L, const char *text, size_t len, const char *pred, int line) {
  int top = lua_gettop(L);
  char err[256] = "";
  int rc = script_json_decode(L, text, len, err, sizeof err);
  if (rc != 0)
    FAIL_AT(line, "decode(%.*s) returned %d: %s", (int)len, text, rc, err);
  if (lua_gettop(L) != top + 1)
    FAIL_AT(line, "decode(%.*s) pushed %d values", (int)len, text, lua_gettop(L) - top);
  lua_setglobal(L, "v");
  eval_at(L, pred, line);
  if (!lua_toboolean(L, -1))
    FAIL_AT(line, "decode(%.*s): %s is false", (int)len, text, pred);
  lua_pop(L, 1);

  lua_getglobal(L, "json");
  lua_getfield(L, -1, "decode");
  lua_pushlstring(L, text, len);
  if (lua_pcall(L, 1, LUA_MULTRET, 0) != LUA_OK)
    FAIL_AT(line, "json.decode raised %s", lua_tostring(L, -1));
  if (lua_gettop(L) != top + 2)
    FAIL_AT(line, "json.decode(%.*s) returned %d values", (int)len, text, lua_gettop(L) - top - 1);
  lua_setglobal(L, "v");
  eval_at(L, pred, line);
  if (!lua_toboolean(L, -1))
    FAIL_AT(line, "json.decode(%.*s): %s is false", (int)len, text, pred);
  lua_pop(L, 2);
  if (lua_gettop(L) != top)
    FAIL_AT(line, "stack %d != %d", lua_gettop(L), top);
}
#define CHECK_DEC(L, text, pred) check_dec_at(L, text, sizeof(text) - 1, pred, __LINE__)

/* Expects decoding to fail with exactly `want`, pushing nothing; json.decode
 * returns nil and the same message. */
static void check_dec_err_at(lua_State *L, const char *text, size_t len, const char *want,
                             int line) {
  int top = lua_gettop(L);
  char err[256] = "";
  int rc = script_json_decode(L, text, len, err, sizeof err);
  if (rc != -EINVAL)
    FAIL_AT(line, "decode(%.*s) returned %d, want -EINVAL", (int)len, text, rc);
  if (strcmp(err, want) != 0)
    FAIL_AT(line, "decode(%.*s) error:\n    got  %s\n    want %s", (int)len, text, err, want);
  if (lua_gettop(L) != top)
    FAIL_AT(line, "decode(%.*s) left %d values", (int)len, text, lua_gettop(L) - top);

  lua_getglobal(L, "json");
  lua_getfield(L, -1, "decode");
  lua_pushlstring(L, text, len);
  if (lua_pcall(L, 1, LUA_MULTRET, 0) != LUA_OK)
    FAIL_AT(line, "json.decode raised %s", lua_tostring(L, -1));
  if (lua_gettop(L) != top + 3)
    FAIL_AT(line, "json.decode returned %d values, want 2", lua_gettop(L) - top - 1);
  if (!lua_isnil(L, -2))
    FAIL_AT(line, "json.decode(%.*s) did not return nil", (int)len, text);
  buf_t msg = BUF_INIT;
  ASSERT_EQ(buf_printf(&msg, "json.decode: %s", want), 0);
  const char *got = lua_tostring(L, -1);
  if (got == NULL || strcmp(got, msg.data) != 0)
    FAIL_AT(line, "json.decode message:\n    got  %s\n    want %s", got, msg.data);
  buf_free(&msg);
  lua_pop(L, 3);
}
#define CHECK_DEC_ERR(L, text, want) check_dec_err_at(L, text, sizeof(text) - 1, want, __LINE__)

/* Decodes and encodes again, expecting the same text. */
static void check_rt_at(lua_State *L, const char *text, size_t len, int line) {
  char err[256] = "";
  int top = lua_gettop(L);
  if (script_json_decode(L, text, len, err, sizeof err) != 0)
    FAIL_AT(line, "decode(%.*s): %s", (int)len, text, err);
  buf_t b = BUF_INIT;
  if (script_json_encode(L, -1, &b, err, sizeof err) != 0)
    FAIL_AT(line, "encode: %s", err);
  if (b.len != len || memcmp(b.data, text, len) != 0)
    FAIL_AT(line, "round trip:\n    got  %.*s\n    want %.*s", (int)b.len, b.data, (int)len, text);
  lua_pop(L, 1);
  buf_free(&b);
  if (lua_gettop(L) != top)
    FAIL_AT(line, "stack %d != %d", lua_gettop(L), top);

  lua_getglobal(L, "json");
  lua_getfield(L, -1, "encode");
  lua_getfield(L, -2, "decode");
  lua_pushlstring(L, text, len);
  lua_call(L, 1, 1);
  lua_call(L, 1, 1);
  size_t n;
  const char *s = lua_tolstring(L, -1, &n);
  if (n != len || memcmp(s, text, len) != 0)
    FAIL_AT(line, "Lua round trip:\n    got  %s\n    want %.*s", s, (int)len, text);
  lua_pop(L, 2);
}
#define CHECK_RT(L, text) check_rt_at(L, text, sizeof(text) - 1, __LINE__)

/* "[[[...{}...]]]" with `depth` tables in all. */
static char *nested_arrays_json(int depth) {
  buf_t b = BUF_INIT;
  for (int i = 1; i < depth; i++)
    buf_putc(&b, '[');
  buf_puts(&b, "{}");
  for (int i = 1; i < depth; i++)
    buf_putc(&b, ']');
  buf_putc(&b, '\0');
  return b.data;
}

/* ---- Encoding ------------------------------------------------------------ */

TEST(test_encode_scalars) {
  lua_State *L = new_state();
  CHECK_ENC(L, "nil", "null");
  CHECK_ENC(L, "true", "true");
  CHECK_ENC(L, "false", "false");
  CHECK_ENC(L, "0", "0");
  CHECK_ENC(L, "42", "42");
  CHECK_ENC(L, "-7", "-7");
  CHECK_ENC(L, "math.maxinteger", "9223372036854775807");
  CHECK_ENC(L, "math.mininteger", "-9223372036854775808");
  CHECK_ENC(L, "'hello'", "\"hello\"");
  CHECK_ENC(L, "''", "\"\"");
  CHECK_ENC(L, "json.null", "null");
  CHECK_ENC(L, "json.empty_array", "[]");
  lua_close(L);
}

TEST(test_encode_floats) {
  lua_State *L = new_state();
  CHECK_ENC(L, "1.0", "1.0");
  CHECK_ENC(L, "-1.0", "-1.0");
  CHECK_ENC(L, "0.0", "0.0");
  CHECK_ENC(L, "-0.0", "-0.0");
  CHECK_ENC(L, "3 / 1", "3.0");
  CHECK_ENC(L, "100.0", "100.0");
  CHECK_ENC(L, "1.5", "1.5");
  CHECK_ENC(L, "0.1", "0.1");
  CHECK_ENC(L, "1 / 3", "0.3333333333333333");
  CHECK_ENC(L, "0.1 + 0.2", "0.30000000000000004");
  CHECK_ENC(L, "123456.789", "123456.789");
  CHECK_ENC(L, "2^53", "9007199254740992.0");
  CHECK_ENC(L, "2^63", "9.223372036854776e+18");
  CHECK_ENC(L, "1e15", "1e+15");
  CHECK_ENC(L, "1e14", "100000000000000.0");
  CHECK_ENC(L, "1e300", "1e+300");
  CHECK_ENC(L, "1e-7", "1e-07");
  CHECK_ENC(L, "5e-324", "5e-324"); /* subnormals too print their shortest form */
  CHECK_ENC(L, "-2.5e-320", "-2.5e-320");
  CHECK_ENC(L, "-1.5e-300", "-1.5e-300");
  CHECK_ENC(L, "1.7976931348623157e308", "1.7976931348623157e+308");
  CHECK_ENC(L, "2.2250738585072014e-308", "2.2250738585072014e-308");
  CHECK_ENC(L, "{1, 1.0, 2^63, -0.0}", "[1,1.0,9.223372036854776e+18,-0.0]");
  lua_close(L);
}

/* Every finite double must read back bit for bit. */
TEST(test_encode_float_round_trip_random) {
  lua_State *L = new_state();
  uint64_t x = 0x9E3779B97F4A7C15ULL;
  buf_t b = BUF_INIT;
  char err[128];
  for (int i = 0; i < 20000; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    double d;
    uint64_t bits = i % 2 ? x : (x >> 12) | 0x3FF0000000000000ULL; /* also values near 1 */
    memcpy(&d, &bits, sizeof d);
    if (!isfinite(d))
      continue;
    lua_pushnumber(L, d);
    buf_reset(&b);
    ASSERT_EQ(script_json_encode(L, -1, &b, err, sizeof err), 0);
    lua_pop(L, 1);
    ASSERT_EQ(script_json_decode(L, b.data, b.len, err, sizeof err), 0);
    ASSERT(lua_type(L, -1) == LUA_TNUMBER && !lua_isinteger(L, -1));
    double back = (double)lua_tonumber(L, -1);
    if (memcmp(&back, &d, sizeof d) != 0)
      UNIT_FAIL("%.17g encoded as %.*s reads back as %.17g", d, (int)b.len, b.data, back);
    lua_pop(L, 1);
  }
  ASSERT_EQ(lua_gettop(L), 0);
  buf_free(&b);
  lua_close(L);
}

TEST(test_encode_nan_inf_refused) {
  lua_State *L = new_state();
  CHECK_ENC_ERR(L, "0/0", "cannot encode NaN at the top level");
  CHECK_ENC_ERR(L, "{x = 0/0}", "cannot encode NaN at .x");
  CHECK_ENC_ERR(L, "{math.huge}", "cannot encode inf at .[1]");
  CHECK_ENC_ERR(L, "{a = {b = -math.huge}}", "cannot encode -inf at .a.b");
  lua_close(L);
}

TEST(test_encode_every_escape) {
  lua_State *L = new_state();
  char raw[40];
  size_t n = 0;
  for (int c = 0; c < 32; c++)
    raw[n++] = (char)c;
  raw[n++] = '"';
  raw[n++] = '\\';
  raw[n++] = '/';
  raw[n++] = 0x7F;
  raw[n++] = 'A';
  lua_pushlstring(L, raw, n);
  buf_t b = BUF_INIT;
  char err[128];
  ASSERT_EQ(script_json_encode(L, -1, &b, err, sizeof err), 0);
  ASSERT_MEM_EQ(b.data, b.len,
                "\"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007"
                "\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f"
                "\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017"
                "\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f"
                "\\\"\\\\/\x7f"
                "A\"");
  lua_pop(L, 1);
  buf_free(&b);
  CHECK_ENC(L, "'\\n'", "\"\\n\"");
  CHECK_ENC(L, "'a\"b'", "\"a\\\"b\"");
  CHECK_ENC(L, "'back\\\\slash'", "\"back\\\\slash\"");
  CHECK_ENC(L, "'\\0'", "\"\\u0000\"");
  CHECK_ENC(L, "{['k\\t\"'] = 'v\\r'}", "{\"k\\t\\\"\":\"v\\r\"}");
  /* Many escapes in a long string grow the buffer past its first guess. */
  RUN(L, "local s = json.encode(string.rep('\\1', 100000))\n"
         "assert(#s == 600002 and s:sub(1, 13) == '\"\\\\u0001\\\\u0001')");
  lua_close(L);
}

TEST(test_encode_utf8_passes_through) {
  lua_State *L = new_state();
  CHECK_ENC(L, "'\\u{E9}\\u{65E5}\\u{1F600}'", "\"\xC3\xA9\xE6\x97\xA5\xF0\x9F\x98\x80\"");
  /* The edges of each sequence length and of the ranges the checker treats
   * specially (after the surrogates, the last code point). */
  CHECK_ENC(L, "'\\u{7F}\\u{80}\\u{7FF}\\u{800}\\u{D7FF}\\u{E000}\\u{FFFF}\\u{10000}\\u{10FFFF}'",
            "\"\x7F\xC2\x80\xDF\xBF\xE0\xA0\x80\xED\x9F\xBF\xEE\x80\x80\xEF\xBF\xBF"
            "\xF0\x90\x80\x80\xF4\x8F\xBF\xBF\"");
  CHECK_ENC(L, "{['\\u{E9}t\\u{E9}'] = '\\u{2603}'}", "{\"\xC3\xA9t\xC3\xA9\":\"\xE2\x98\x83\"}");
  lua_close(L);
}

TEST(test_encode_invalid_utf8_replaced) {
  lua_State *L = new_state();
  CHECK_ENC(L, "'\\x80'", "\"" R "\"");
  CHECK_ENC(L, "'a\\xC3'", "\"a" R "\"");                    /* cut at the end */
  CHECK_ENC(L, "'\\xC3\\x28'", "\"" R "(\"");                /* bad continuation */
  CHECK_ENC(L, "'\\xC0\\x80'", "\"" R R "\"");               /* overlong NUL */
  CHECK_ENC(L, "'\\xE0\\x80\\x80'", "\"" R R R "\"");        /* overlong */
  CHECK_ENC(L, "'\\xED\\xA0\\x80'", "\"" R R R "\"");        /* a surrogate */
  CHECK_ENC(L, "'\\xF4\\x90\\x80\\x80'", "\"" R R R R "\""); /* above U+10FFFF */
  CHECK_ENC(L, "'\\xF0\\x9F\\x98x'", "\"" R "x\"");          /* a cut 4-byte sequence is one */
  CHECK_ENC(L, "'\\xE2\\x82'", "\"" R "\"");
  CHECK_ENC(L, "'\\xFE\\xFF'", "\"" R R "\"");
  CHECK_ENC(L, "'\\xF5\\x80'", "\"" R R "\"");
  CHECK_ENC(L, "'\\xC3\\xA9\\xFF\\xC3\\xA9'", "\"\xC3\xA9" R "\xC3\xA9\"");
  CHECK_ENC(L, "{['\\xFF'] = '\\xFF'}", "{\"" R "\":\"" R "\"}");
  lua_close(L);
}

TEST(test_encode_sorted_keys) {
  lua_State *L = new_state();
  CHECK_ENC(L, "{b = 1, a = 2, B = 3, aa = 4, ['\\u{E9}'] = 5, _ = 6, [''] = 7, ['a\\0'] = 8}",
            "{\"\":7,\"B\":3,\"_\":6,\"a\":2,\"a\\u0000\":8,\"aa\":4,\"b\":1,\"\xC3\xA9\":5}");
  CHECK_ENC(L, "{z = {y = 1, x = 2}, a = {c = 3, b = 4}}",
            "{\"a\":{\"b\":4,\"c\":3},\"z\":{\"x\":2,\"y\":1}}");
  /* Code point order is byte order in UTF-8: U+FFFF sorts before U+10000. */
  CHECK_ENC(L, "{['\\u{10000}'] = 1, ['\\u{FFFF}'] = 2, ['\\u{7F}'] = 3}",
            "{\"\x7F\":3,\"\xEF\xBF\xBF\":2,\"\xF0\x90\x80\x80\":1}");
  lua_close(L);
}

/* A reference encoder in Lua for tables of strings and integers, to check
 * key order on objects too big to write out by hand. */
static const char REF_ENCODER[] =
    "function ref(v)\n"
    "  if type(v) ~= 'table' then return string.format('%q', v) end\n"
    "  local keys = {}\n"
    "  for k in pairs(v) do keys[#keys + 1] = k end\n"
    "  table.sort(keys)\n"
    "  for i, k in ipairs(keys) do keys[i] = string.format('%q:', k) .. ref(v[k]) end\n"
    "  return '{' .. table.concat(keys, ',') .. '}'\n"
    "end\n";

TEST(test_encode_large_objects) {
  lua_State *L = new_state();
  RUN(L, REF_ENCODER);
  /* More keys than the inline entry array and the insertion sort take. */
  RUN(L, "local t = {}\n"
         "for i = 1, 1000 do t[string.format('k%d', (i * 7919) % 1000)] = i end\n"
         "assert(json.encode(t) == ref(t))");
  /* Nested objects that each spill: the parent's entries move while a
   * child is written. */
  RUN(L, "local t = {}\n"
         "for i = 1, 300 do\n"
         "  local c = {}\n"
         "  for j = 1, 300 do c['c' .. (j * 31 % 300)] = j end\n"
         "  t['p' .. (i * 17 % 300)] = c\n"
         "end\n"
         "assert(json.encode(t) == ref(t))");
  lua_close(L);
}

TEST(test_encode_array_or_object) {
  lua_State *L = new_state();
  CHECK_ENC(L, "{1, 2, 3}", "[1,2,3]");
  CHECK_ENC(L, "{[3] = 3, [2] = 2, [1] = 1}", "[1,2,3]");
  CHECK_ENC(L, "{'a', {'b'}, {}}", "[\"a\",[\"b\"],{}]");
  CHECK_ENC(L, "{[2] = true}", "{\"2\":true}");
  CHECK_ENC(L, "{[0] = 0, 1}", "{\"0\":0,\"1\":1}");
  CHECK_ENC(L, "{[-1] = 1}", "{\"-1\":1}");
  CHECK_ENC(L, "{1, nil, 3}", "{\"1\":1,\"3\":3}");
  CHECK_ENC(L, "{1, 2, x = 3}", "{\"1\":1,\"2\":2,\"x\":3}");
  CHECK_ENC(L, "{[1.5] = 1, [10] = 2, [9] = 3}", "{\"1.5\":1,\"10\":2,\"9\":3}");
  CHECK_ENC(L, "{[2^53] = 1}", "{\"9007199254740992\":1}");
  /* Other metatables do not matter: tables are read raw. */
  CHECK_ENC(L, "setmetatable({1, 2}, {__index = function() return 9 end})", "[1,2]");
  CHECK_ENC(L, "setmetatable({}, {__len = function() return 3 end})", "{}");
  lua_close(L);
}

TEST(test_encode_empty_array_and_array_mt) {
  lua_State *L = new_state();
  CHECK_ENC(L, "{}", "{}");
  CHECK_ENC(L, "setmetatable({}, json.array_mt)", "[]");
  CHECK_ENC(L, "{list = json.empty_array, obj = {}}", "{\"list\":[],\"obj\":{}}");
  CHECK_ENC(L, "{list = setmetatable({}, json.array_mt)}", "{\"list\":[]}");
  CHECK_ENC(L, "{json.empty_array, {}}", "[[],{}]");
  CHECK_ENC(L, "{1, json.null, 3}", "[1,null,3]");
  CHECK_ENC(L, "{a = json.null, b = 1}", "{\"a\":null,\"b\":1}");
  /* With array_mt only 1..#t counts. */
  CHECK_ENC(L, "(function() local t = setmetatable({1, 2}, json.array_mt) t.x = 5 return t end)()",
            "[1,2]");
  CHECK_ENC(L, "setmetatable({'x'}, json.array_mt)", "[\"x\"]");
  ASSERT_EQ(lua_gettop(L), 0);
  lua_close(L);
}

TEST(test_encode_number_key_collision) {
  lua_State *L = new_state();
  CHECK_ENC_ERR(L, "{[1] = 'a', ['1'] = 'b'}", "two keys both encode as \"1\" at the top level");
  CHECK_ENC_ERR(L, "{x = {[1.5] = 1, ['1.5'] = 2}}", "two keys both encode as \"1.5\" at .x");
  lua_close(L);
}

TEST(test_encode_depth_limit) {
  lua_State *L = new_state();
  RUN(L, "function nest(n, key)\n"
         "  local t = {}\n"
         "  local c = t\n"
         "  for i = 2, n do local x = {} c[key] = x c = x end\n"
         "  return t\n"
         "end");
  char *want = nested_arrays_json(1000);
  CHECK_ENC(L, "nest(1000, 1)", want);
  free(want);

  const char *prefix = "nesting deeper than 1000 at .[1][1][1][1]";
  eval_at(L, "nest(1001, 1)", __LINE__);
  buf_t b = BUF_INIT;
  char err[256];
  ASSERT_EQ(script_json_encode(L, -1, &b, err, sizeof err), -EINVAL);
  ASSERT_EQ(strncmp(err, prefix, strlen(prefix)), 0);
  ASSERT_EQ(strlen(err), 255); /* cut to fit, and says so */
  ASSERT_STR_EQ(err + 252, "...");
  ASSERT_EQ(b.len, 0);
  ASSERT_EQ(lua_gettop(L), 1);
  lua_pop(L, 1);
  buf_free(&b);
  RUN(L, "local ok, e = pcall(json.encode, nest(1001, 'a'))\n"
         "assert(not ok and e:find('^json.encode: nesting deeper than 1000 at %.a%.a%.a'), e)");
  RUN(L, "assert(#json.encode(nest(1000, 'a')) == 999 * 6 + 2)");
  /* json.empty_array and null are not tables and add no level. */
  RUN(L, "local t = nest(1000, 1)\n"
         "local c = t for i = 2, 1000 do c = c[1] end\n"
         "c[1] = json.empty_array\n"
         "assert(json.encode(t):find('%[%[%]%]'))");
  lua_close(L);
}

TEST(test_encode_cycles) {
  lua_State *L = new_state();
  CHECK_ENC_ERR(L, "(function() local t = {} t.self = t return t end)()",
                "cannot encode a cycle: the table at the top level contains itself at .self");
  CHECK_ENC_ERR(L, "(function() local a = {b = {}} a.b.c = a.b return a end)()",
                "cannot encode a cycle: the table at .b contains itself at .b.c");
  CHECK_ENC_ERR(L, "(function() local t = {1} t[2] = t return {list = t} end)()",
                "cannot encode a cycle: the table at .list contains itself at .list[2]");
  CHECK_ENC_ERR(L, "(function() local a, b = {}, {} a.b = b b.a = a return a end)()",
                "cannot encode a cycle: the table at the top level contains itself at .b.a");
  /* The same table twice, but not inside itself, is fine. */
  CHECK_ENC(L, "(function() local s = {1} return {a = s, b = s} end)()", "{\"a\":[1],\"b\":[1]}");
  lua_close(L);
}

TEST(test_encode_unencodable_values) {
  lua_State *L = new_state();
  CHECK_ENC_ERR(L, "{users = {{}, {cb = print}}}", "cannot encode a function at .users[2].cb");
  CHECK_ENC_ERR(L, "print", "cannot encode a function at the top level");
  CHECK_ENC_ERR(L, "{co = coroutine.create(print)}", "cannot encode a thread at .co");
  CHECK_ENC_ERR(L, "{f = io.stdout}", "cannot encode a userdata (FILE*) at .f");
  CHECK_ENC_ERR(L, "{{1, {x = {print}}}}", "cannot encode a function at .[1][2].x[1]");
  CHECK_ENC_ERR(L, "{['a b'] = {['q\"x'] = print}}",
                "cannot encode a function at .[\"a b\"][\"q\\\"x\"]");
  CHECK_ENC_ERR(L, "{x = {[7] = print, y = 1}}", "cannot encode a function at .x[7]");
  CHECK_ENC_ERR(L, "{[1.5] = print}", "cannot encode a function at .[1.5]");
  CHECK_ENC_ERR(L, "{['a\\nb'] = print}", "cannot encode a function at .[\"a\\x0Ab\"]");
  CHECK_ENC_ERR(L, "{_ok9 = {['9x'] = print}}", "cannot encode a function at ._ok9[\"9x\"]");
  CHECK_ENC_ERR(L, "{[string.rep('k', 50)] = print}",
                "cannot encode a function at .[\"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk...\"]");

  /* A light userdata other than json.null / json.empty_array. */
  static char other;
  lua_pushlightuserdata(L, &other);
  buf_t b = BUF_INIT;
  char err[128];
  ASSERT_EQ(script_json_encode(L, -1, &b, err, sizeof err), -EINVAL);
  ASSERT_STR_EQ(err, "cannot encode a light userdata at the top level");
  ASSERT_EQ(b.len, 0);
  lua_pop(L, 1);
  buf_free(&b);
  lua_close(L);
}

TEST(test_encode_bad_keys) {
  lua_State *L = new_state();
  CHECK_ENC_ERR(L, "{[true] = 1}", "table key of type boolean at the top level");
  CHECK_ENC_ERR(L, "{x = {[{}] = 1}}", "table key of type table at .x");
  CHECK_ENC_ERR(L, "{{[print] = 1}}", "table key of type function at .[1]");
  CHECK_ENC_ERR(L, "{[math.huge] = 1}", "cannot encode the table key inf at the top level");
  CHECK_ENC_ERR(L, "{a = {[-math.huge] = 1}}", "cannot encode the table key -inf at .a");
  lua_close(L);
}

TEST(test_encode_c_api_contract) {
  lua_State *L = new_state();
  buf_t b = BUF_INIT;
  char err[64];
  /* Appends; takes relative and absolute indices; leaves the stack alone. */
  ASSERT_EQ(buf_puts(&b, "x="), 0);
  lua_pushinteger(L, 1);
  RUN(L, "t = {a = {1, 2}}");
  lua_getglobal(L, "t");
  lua_pushboolean(L, 1);
  ASSERT_EQ(script_json_encode(L, -2, &b, err, sizeof err), 0);
  ASSERT_EQ(script_json_encode(L, 1, &b, err, sizeof err), 0);
  ASSERT_MEM_EQ(b.data, b.len, "x={\"a\":[1,2]}1");
  ASSERT_EQ(lua_gettop(L), 3);
  ASSERT(lua_isinteger(L, 1) && lua_istable(L, 2) && lua_isboolean(L, 3));
  /* A short err buffer gets a truncated, terminated message. */
  lua_pushcfunction(L, luaopen_base);
  ASSERT_EQ(script_json_encode(L, -1, &b, err, 16), -EINVAL);
  ASSERT_STR_EQ(err, "cannot encod...");
  ASSERT_EQ(script_json_encode(L, -1, &b, NULL, 0), -EINVAL);
  ASSERT_EQ(script_json_encode(L, -1, &b, err, 1), -EINVAL);
  ASSERT_STR_EQ(err, "");
  ASSERT_MEM_EQ(b.data, b.len, "x={\"a\":[1,2]}1");
  ASSERT_EQ(lua_gettop(L), 4);
  buf_free(&b);
  lua_close(L);
}

/* The C API works on a state where the module was never opened, and the
 * module opened later shares the same array_mt. */
TEST(test_codec_without_module) {
  lua_State *L = luaL_newstate();
  no_context(L);
  char err[64];
  buf_t b = BUF_INIT;
  ASSERT_EQ(script_json_decode(L, "[[],{}]", 7, err, sizeof err), 0);
  ASSERT_EQ(script_json_encode(L, -1, &b, err, sizeof err), 0);
  ASSERT_MEM_EQ(b.data, b.len, "[[],{}]");
  ASSERT_EQ(lua_getmetatable(L, -1), 1);
  ASSERT_EQ(script_jsonlib_open(L), 1);
  lua_getfield(L, -1, "array_mt");
  ASSERT(lua_rawequal(L, -1, -3));
  ASSERT_EQ(lua_gettop(L), 4);
  buf_free(&b);
  lua_close(L);
}

/* ---- Decoding ------------------------------------------------------------ */

TEST(test_decode_scalars) {
  lua_State *L = new_state();
  CHECK_DEC(L, "true", "v == true");
  CHECK_DEC(L, "false", "v == false");
  CHECK_DEC(L, "null", "v == json.null and rawequal(v, json.null)");
  CHECK_DEC(L, " 1 ", "v == 1 and math.type(v) == 'integer'");
  CHECK_DEC(L, "\"x\"", "v == 'x'");
  CHECK_DEC(L, "\"\"", "v == ''");
  lua_close(L);
}

TEST(test_decode_numbers) {
  lua_State *L = new_state();
  CHECK_DEC(L, "0", "math.type(v) == 'integer' and v == 0");
  CHECK_DEC(L, "-0", "math.type(v) == 'integer' and v == 0");
  CHECK_DEC(L, "-0.0", "math.type(v) == 'float' and v == 0 and 1 / v < 0");
  CHECK_DEC(L, "1.0", "math.type(v) == 'float' and v == 1");
  CHECK_DEC(L, "-12", "math.type(v) == 'integer' and v == -12");
  CHECK_DEC(L, "0.1", "v == 0.1");
  CHECK_DEC(L, "1e2", "math.type(v) == 'float' and v == 100");
  CHECK_DEC(L, "1E+2", "math.type(v) == 'float' and v == 100");
  CHECK_DEC(L, "1e-2", "v == 0.01");
  CHECK_DEC(L, "-12.5e-1", "v == -1.25");
  CHECK_DEC(L, "0e0", "math.type(v) == 'float' and v == 0");
  CHECK_DEC(L, "123456789012345678", "math.type(v) == 'integer' and v == 123456789012345678");
  CHECK_DEC(L, "1234567890123456789", "math.type(v) == 'integer' and v == 1234567890123456789");
  CHECK_DEC(L, "-1234567890123456789", "math.type(v) == 'integer' and v == -1234567890123456789");
  CHECK_DEC(L, "9223372036854775807", "v == math.maxinteger");
  CHECK_DEC(L, "-9223372036854775808", "v == math.mininteger");
  CHECK_DEC(L, "9223372036854775808", "math.type(v) == 'float' and v == 2^63");
  CHECK_DEC(L, "-9223372036854775809", "math.type(v) == 'float' and v == -2^63");
  CHECK_DEC(L, "100000000000000000000000", "math.type(v) == 'float' and v == 1e23");
  CHECK_DEC(L, "1e400", "v == math.huge");
  CHECK_DEC(L, "-1e400", "v == -math.huge");
  CHECK_DEC(L, "1e-400", "math.type(v) == 'float' and v == 0");
  CHECK_DEC(L, "[1,-1,1.5,2e0]", "v[1] == 1 and v[2] == -1 and v[3] == 1.5 and v[4] == 2.0");
  /* Literals longer than the slow path's stack copy. */
  char text[200];
  memset(text, '0', sizeof text);
  text[1] = '.';
  text[101] = '1';
  check_dec_at(L, text, 102, "v == 1e-100", __LINE__);
  memset(text, '0', sizeof text);
  text[0] = '1';
  check_dec_at(L, text, 81, "math.type(v) == 'float' and v == 1e80", __LINE__);
  lua_close(L);
}

TEST(test_decode_escapes) {
  lua_State *L = new_state();
  CHECK_DEC(L, "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "v == '\"\\\\/\\b\\f\\n\\r\\t'");
  CHECK_DEC(L, "\"\\u0041\\u00e9\\u00E9\\u20ac\\u0000z\"",
            "v == 'A\\u{E9}\\u{E9}\\u{20AC}\\0z' and #v == 10");
  CHECK_DEC(L, "\"\\u001f\\u007F\\u0800\\uFFFF\"", "v == '\\x1F\\x7F\\u{800}\\u{FFFF}'");
  CHECK_DEC(L, "\"plain then \\n escape\"", "v == 'plain then \\n escape'");
  CHECK_DEC(L, "{\"k\\u0065y\":1}", "v.key == 1");
  /* Past LUAL_BUFFERSIZE the unescaping buffer moves to the heap. */
  RUN(L, "local s = json.decode('\"' .. string.rep('ab\\\\n', 2000) .. '\"')\n"
         "assert(s == string.rep('ab\\n', 2000))");
  lua_close(L);
}

TEST(test_decode_surrogates) {
  lua_State *L = new_state();
  CHECK_DEC(L, "\"\\ud83d\\ude00\"", "v == '\\u{1F600}'");
  CHECK_DEC(L, "\"\\uD83D\\uDE00\"", "v == '\\u{1F600}'");
  CHECK_DEC(L, "\"\\ud800\\udc00\\udbff\\udfff\"", "v == '\\u{10000}\\u{10FFFF}'");
  CHECK_DEC(L, "\"\\ud800\"", "v == '\\u{FFFD}'");
  CHECK_DEC(L, "\"\\udc00\"", "v == '\\u{FFFD}'");
  CHECK_DEC(L, "\"a\\ud800\"", "v == 'a\\u{FFFD}'");
  CHECK_DEC(L, "\"\\ud800x\"", "v == '\\u{FFFD}x'");
  CHECK_DEC(L, "\"\\ud800\\ud800\\udc00\"", "v == '\\u{FFFD}\\u{10000}'");
  CHECK_DEC(L, "\"\\ud800\\u0041\"", "v == '\\u{FFFD}A'");
  CHECK_DEC(L, "\"\\ud800\\n\"", "v == '\\u{FFFD}\\n'");
  CHECK_DEC(L, "\"\\udc00\\ud800\"", "v == '\\u{FFFD}\\u{FFFD}'");
  CHECK_DEC_ERR(L, "\"\\ud800\\uZZZZ\"", "invalid \\u escape at line 1, column 8");
  CHECK_DEC_ERR(L, "\"\\ud800\\u12\"", "invalid \\u escape at line 1, column 8");
  lua_close(L);
}

TEST(test_decode_utf8_kept_as_bytes) {
  lua_State *L = new_state();
  CHECK_DEC(L, "\"\xC3\xA9\xF0\x9F\x98\x80\"", "v == '\\u{E9}\\u{1F600}'");
  /* Ill-formed bytes are kept as they are... */
  CHECK_DEC(L, "\"\xFF\xFE\xC0\x80\"", "v == '\\xFF\\xFE\\xC0\\x80'");
  CHECK_DEC(L, "{\"\xFF\":1}", "v['\\xFF'] == 1");
  /* ...and replaced when the value goes back out. */
  RUN(L, "assert(json.encode(json.decode('[\"a\\xFFb\"]')) == '[\"a\\u{FFFD}b\"]')");
  lua_close(L);
}

TEST(test_decode_arrays_carry_array_mt) {
  lua_State *L = new_state();
  CHECK_DEC(L, "[]", "getmetatable(v) == json.array_mt and next(v) == nil");
  CHECK_DEC(L, "{}", "getmetatable(v) == nil and next(v) == nil");
  CHECK_DEC(L, "[1,\"a\",null]",
            "getmetatable(v) == json.array_mt and #v == 3 "
            "and v[1] == 1 and v[2] == 'a' and v[3] == json.null");
  CHECK_DEC(L, "[[1],{\"a\":[]}]",
            "getmetatable(v[1]) == json.array_mt and getmetatable(v[2]) == nil "
            "and getmetatable(v[2].a) == json.array_mt");
  CHECK_DEC(L, "[null,null]", "#v == 2 and v[1] == json.null and v[2] == json.null");
  RUN(L, "assert(json.encode(json.decode('[]')) == '[]')\n"
         "assert(json.encode(json.decode('{}')) == '{}')\n"
         "assert(tostring(json.decode('[]')):find('^json.array: '))");
  lua_close(L);
}

TEST(test_decode_objects) {
  lua_State *L = new_state();
  CHECK_DEC(L, "{\"a\":1,\"a\":2}", "v.a == 2");
  CHECK_DEC(L, "{\"a\":1,\"b\":{\"a\":3},\"a\":[4]}", "v.a[1] == 4 and v.b.a == 3");
  CHECK_DEC(L, "{\"1\":true}", "v['1'] == true and v[1] == nil");
  CHECK_DEC(L, "{\"\":0}", "v[''] == 0");
  CHECK_DEC(L, "{\"a\":null}", "v.a == json.null");
  CHECK_DEC(L, " { \"a\" : [ 1 , 2 ] , \"b\" : { } } ", "#v.a == 2 and next(v.b) == nil");
  lua_close(L);
}

TEST(test_decode_whitespace) {
  lua_State *L = new_state();
  CHECK_DEC(L, " \t\r\n[ \t\r\n1 \t\r\n, \t\r\n2 \t\r\n] \t\r\n", "v[1] == 1 and v[2] == 2");
  CHECK_DEC_ERR(L, "\f1", "unexpected control character U+000C at line 1, column 1");
  CHECK_DEC_ERR(L, "\v1", "unexpected control character U+000B at line 1, column 1");
  CHECK_DEC_ERR(L,
                "[1,\xC2\xA0"
                "2]",
                "unexpected character '\xC2\xA0' at line 1, column 4");
  CHECK_DEC_ERR(L,
                "[1,\xE2\x80\xA8"
                "2]",
                "unexpected character '\xE2\x80\xA8' at line 1, column 4");
  lua_close(L);
}

TEST(test_decode_bom_is_skipped) {
  lua_State *L = new_state();
  CHECK_DEC(L, "\xEF\xBB\xBF{\"a\":1}", "v.a == 1");
  CHECK_DEC(L, "\xEF\xBB\xBF 7", "v == 7");
  CHECK_DEC_ERR(L, "\xEF\xBB\xBF", "unexpected end of text at line 1, column 1");
  CHECK_DEC_ERR(L, "\xEF\xBB\xBF[x]", "unexpected character 'x' at line 1, column 2");
  CHECK_DEC_ERR(L,
                "\xEF\xBB\xBF\xEF\xBB\xBF"
                "1",
                "unexpected character '\xEF\xBB\xBF' at line 1, column 1");
  CHECK_DEC_ERR(L,
                "[1,\xEF\xBB\xBF"
                "2]",
                "unexpected character '\xEF\xBB\xBF' at line 1, column 4");
  lua_close(L);
}

TEST(test_decode_depth_limit) {
  lua_State *L = new_state();
  buf_t b = BUF_INIT;
  for (int i = 0; i < 1000; i++)
    buf_putc(&b, '[');
  for (int i = 0; i < 1000; i++)
    buf_putc(&b, ']');
  check_dec_at(L, b.data, b.len,
               "(function() local d, c = 1, v while c[1] do c = c[1] d = d + 1 end "
               "return d == 1000 and getmetatable(c) == json.array_mt end)()",
               __LINE__);
  buf_reset(&b);
  for (int i = 0; i < 1001; i++)
    buf_putc(&b, '[');
  for (int i = 0; i < 1001; i++)
    buf_putc(&b, ']');
  check_dec_err_at(L, b.data, b.len, "nesting deeper than 1000 at line 1, column 1001", __LINE__);

  buf_reset(&b);
  for (int i = 0; i < 1000; i++)
    buf_puts(&b, "{\"a\":");
  buf_puts(&b, "1");
  for (int i = 0; i < 1000; i++)
    buf_putc(&b, '}');
  check_dec_at(L, b.data, b.len,
               "(function() local d, c = 1, v while type(c.a) == 'table' do c = c.a d = d + 1 end "
               "return d == 1000 and c.a == 1 end)()",
               __LINE__);
  buf_reset(&b);
  for (int i = 0; i < 1001; i++)
    buf_puts(&b, "{\"a\":");
  check_dec_err_at(L, b.data, b.len, "nesting deeper than 1000 at line 1, column 5001", __LINE__);
  /* Depth is nesting, not the number of containers. */
  RUN(L, "local s = string.rep('[[]],', 5000) .. '[]'\n"
         "assert(#json.decode('[' .. s .. ']') == 5001)");
  buf_free(&b);
  lua_close(L);
}

typedef struct bad_text {
  const char *text;
  size_t len;
  const char *msg;
} bad_text_t;

#define BAD(text, msg)                                                                            \
  { text, sizeof(text) - 1, msg }

TEST(test_decode_malformed) {
  static const bad_text_t cases[] = {
      BAD("", "unexpected end of text at line 1, column 1"),
      BAD("   ", "unexpected end of text at line 1, column 4"),
      BAD("[", "unexpected end of text at line 1, column 2"),
      BAD("[1,", "unexpected end of text at line 1, column 4"),
      BAD("[1", "unexpected end of text at line 1, column 3"),
      BAD("{", "unexpected end of text at line 1, column 2"),
      BAD("{\"a\"", "unexpected end of text at line 1, column 5"),
      BAD("{\"a\":", "unexpected end of text at line 1, column 6"),
      BAD("{\"a\":1", "unexpected end of text at line 1, column 7"),
      BAD("[1,]", "unexpected character ']' at line 1, column 4"),
      BAD("[,1]", "unexpected character ',' at line 1, column 2"),
      BAD("[,]", "unexpected character ',' at line 1, column 2"),
      BAD("[1 2]", "unexpected character '2' at line 1, column 4"),
      BAD("[1;2]", "unexpected character ';' at line 1, column 3"),
      BAD("[1}", "unexpected character '}' at line 1, column 3"),
      BAD("{\"a\":1]", "unexpected character ']' at line 1, column 7"),
      BAD("{\"a\": 1,}", "unexpected character '}' at line 1, column 9"),
      BAD("{\"a\" 1}", "unexpected character '1' at line 1, column 6"),
      BAD("{\"a\"=1}", "unexpected character '=' at line 1, column 5"),
      BAD("{a:1}", "unexpected character 'a' at line 1, column 2"),
      BAD("{'a':1}", "unexpected character ''' at line 1, column 2"),
      BAD("{1:1}", "unexpected character '1' at line 1, column 2"),
      BAD("{\"a\":}", "unexpected character '}' at line 1, column 6"),
      BAD("{\"a\"}", "unexpected character '}' at line 1, column 5"),
      BAD("{,}", "unexpected character ',' at line 1, column 2"),
      BAD("{\"a\":1 \"b\":2}", "unexpected character '\"' at line 1, column 8"),
      BAD("['a']", "unexpected character ''' at line 1, column 2"),
      BAD("[1]]", "trailing text at line 1, column 4"),
      BAD("1 2", "trailing text at line 1, column 3"),
      BAD("{} {}", "trailing text at line 1, column 4"),
      BAD("truex", "trailing text at line 1, column 5"),
      BAD("[1]\0", "trailing text at line 1, column 4"),
      BAD("01", "leading zero in a number at line 1, column 1"),
      BAD("-01", "leading zero in a number at line 1, column 2"),
      BAD("[00]", "leading zero in a number at line 1, column 2"),
      BAD("1.", "unexpected end of text at line 1, column 3"),
      BAD("1.x", "unexpected character 'x' at line 1, column 3"),
      BAD("1.e5", "unexpected character 'e' at line 1, column 3"),
      BAD(".5", "unexpected character '.' at line 1, column 1"),
      BAD("+1", "unexpected character '+' at line 1, column 1"),
      BAD("1e", "unexpected end of text at line 1, column 3"),
      BAD("1e+", "unexpected end of text at line 1, column 4"),
      BAD("1e+x", "unexpected character 'x' at line 1, column 4"),
      BAD("-", "unexpected end of text at line 1, column 2"),
      BAD("-a", "unexpected character 'a' at line 1, column 2"),
      BAD("0x10", "trailing text at line 1, column 2"),
      BAD("NaN", "unexpected character 'N' at line 1, column 1"),
      BAD("Infinity", "unexpected character 'I' at line 1, column 1"),
      BAD("-Infinity", "unexpected character 'I' at line 1, column 2"),
      BAD("[nan]", "unexpected character 'a' at line 1, column 3"),
      BAD("nul", "unexpected end of text at line 1, column 4"),
      BAD("nulL", "unexpected character 'L' at line 1, column 4"),
      BAD("True", "unexpected character 'T' at line 1, column 1"),
      BAD("fals", "unexpected end of text at line 1, column 5"),
      BAD("undefined", "unexpected character 'u' at line 1, column 1"),
      BAD("\"abc", "unexpected end of text at line 1, column 5"),
      BAD("\"a\nb\"", "unescaped control character U+000A in a string at line 1, column 3"),
      BAD("\"a\tb\"", "unescaped control character U+0009 in a string at line 1, column 3"),
      BAD("\"\0\"", "unescaped control character U+0000 in a string at line 1, column 2"),
      BAD("\"\\x\"", "invalid escape '\\x' at line 1, column 2"),
      BAD("\"\\U0041\"", "invalid escape '\\U' at line 1, column 2"),
      BAD("\"\\'\"", "invalid escape '\\'' at line 1, column 2"),
      BAD("\"\\\x01\"", "invalid escape: byte 0x01 after '\\' at line 1, column 2"),
      BAD("\"\\u12\"", "invalid \\u escape at line 1, column 2"),
      BAD("\"\\u12G4\"", "invalid \\u escape at line 1, column 2"),
      BAD("\"\\u\"", "invalid \\u escape at line 1, column 2"),
      BAD("\"\\", "unexpected end of text at line 1, column 3"),
      BAD("\"\\\"", "unexpected end of text at line 1, column 4"),
      BAD("/* c */ 1", "unexpected character '/' at line 1, column 1"),
      BAD("1 // c", "trailing text at line 1, column 3"),
      BAD("# c\n1", "unexpected character '#' at line 1, column 1"),
      BAD("\x01", "unexpected control character U+0001 at line 1, column 1"),
      BAD("\x7f", "unexpected control character U+007F at line 1, column 1"),
      BAD("\0", "unexpected control character U+0000 at line 1, column 1"),
      BAD("\xff", "unexpected byte 0xFF at line 1, column 1"),
      BAD("[\xC3]", "unexpected byte 0xC3 at line 1, column 2"),
      BAD("\xC3\xA9", "unexpected character '\xC3\xA9' at line 1, column 1"),
      BAD("[1,\n2,\n", "unexpected end of text at line 3, column 1"),
  };
  lua_State *L = new_state();
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    check_dec_err_at(L, cases[i].text, cases[i].len, cases[i].msg, __LINE__);
  ASSERT_EQ(lua_gettop(L), 0);
  lua_close(L);
}

TEST(test_decode_line_and_column) {
  lua_State *L = new_state();
  CHECK_DEC_ERR(L, "{\n  \"a\": tru\n}",
                "unexpected control character U+000A at line 2, column 11");
  CHECK_DEC_ERR(L, "[1,\n\n   ]", "unexpected character ']' at line 3, column 4");
  CHECK_DEC_ERR(L, "\r\n\r\n  x", "unexpected character 'x' at line 3, column 3");
  /* Columns count characters, not bytes. */
  CHECK_DEC_ERR(L, "[\"\xC3\xA9\xE2\x82\xAC\", x]",
                "unexpected character 'x' at line 1, column 8");
  CHECK_DEC_ERR(L, "{\"a\":1,\n \"b\":[1,2,],\n}",
                "unexpected character ']' at line 2, column 11");
  /* A message too long for err is cut with "...". */
  lua_State *M = L;
  char err[24];
  ASSERT_EQ(script_json_decode(M, "[1,]", 4, err, sizeof err), -EINVAL);
  ASSERT_STR_EQ(err, "unexpected character...");
  ASSERT_EQ(script_json_decode(M, "[1,]", 4, NULL, 0), -EINVAL);
  ASSERT_EQ(script_json_decode(M, NULL, 0, err, sizeof err), -EINVAL);
  ASSERT_EQ(lua_gettop(L), 0);
  lua_close(L);
}

/* Random damage to a valid document must give a value or a clean error,
 * never a crash or an unbalanced stack. */
TEST(test_decode_mutations) {
  static const char doc[] = "{\"a\":[1,-2.5e3,\"x\\u00e9\\n\",true,false,null],"
                            "\"b\":{\"c\":{},\"d\":[]},\"e\":\"\\ud83d\\ude00\"}";
  static const char alphabet[] = "{}[]\",:\\u0123456789.eE+-tfnul \n\xC3\xFF";
  lua_State *L = new_state();
  char text[sizeof doc];
  char err[256];
  buf_t b = BUF_INIT;
  uint32_t x = 12345;
  int ok = 0;
  for (int round = 0; round < 30000; round++) {
    memcpy(text, doc, sizeof doc);
    size_t len = sizeof doc - 1;
    int edits = 1 + round % 3;
    for (int k = 0; k < edits; k++) {
      x = x * 1103515245u + 12345u;
      if (len == 0)
        break;
      size_t at = (x >> 8) % len;
      x = x * 1103515245u + 12345u;
      if ((x >> 8) % 4 == 0)
        len = at; /* cut */
      else
        text[at] = alphabet[(x >> 8) % (sizeof alphabet - 1)];
    }
    err[0] = '\0';
    int rc = script_json_decode(L, text, len, err, sizeof err);
    if (rc == 0) {
      ok++;
      ASSERT_EQ(lua_gettop(L), 1);
      buf_reset(&b);
      /* Only a number that overflowed to inf cannot go back out. */
      if (script_json_encode(L, -1, &b, err, sizeof err) != 0 && !strstr(err, "inf at"))
        UNIT_FAIL("%.*s decoded but does not encode: %s", (int)len, text, err);
      lua_pop(L, 1);
    } else {
      ASSERT_EQ(rc, -EINVAL);
      ASSERT_EQ(lua_gettop(L), 0);
      ASSERT_CONTAINS(err, " at line ");
    }
  }
  ASSERT(ok > 0);
  buf_free(&b);
  lua_close(L);
}

/* ---- Both ways ------------------------------------------------------------- */

TEST(test_round_trips) {
  lua_State *L = new_state();
  CHECK_RT(L, "{\"a\":[1,2.5,\"x\",true,false,null],\"b\":{\"c\":{}},\"d\":[]}");
  CHECK_RT(L, "[[],[[]],{},[{}]]");
  CHECK_RT(L, "\"\\u0000\\u001f\\\"\\\\\\b\\f\\n\\r\\t\"");
  CHECK_RT(L, "[1.5,-0.0,1e+300,0.1,9.223372036854776e+18,-1.0,5e-324]");
  CHECK_RT(L, "[9223372036854775807,-9223372036854775808,0]");
  CHECK_RT(L, "{\"\":1,\"\\\"\":2,\"a\":{\"\":[]}}");
  CHECK_RT(L, "{\"1\":1,\"2\":2}");
  CHECK_RT(L, "\"\xF0\x9F\x98\x80 \xC3\xA9\"");
  CHECK_RT(L, "[null,null]");
  CHECK_RT(L, "null");
  CHECK_RT(L, "true");
  CHECK_RT(L, "0");
  CHECK_RT(L, "\"\"");
  CHECK_RT(L, "{\"users\":[{\"id\":1,\"name\":\"Ann\",\"tags\":[]},{\"id\":2,\"name\":\"Bo\","
              "\"tags\":[\"x\"]}]}");
  lua_close(L);
}

TEST(test_big_document) {
  lua_State *L = new_state();
  RUN(L, "local t = {}\n"
         "for i = 1, 100000 do\n"
         "  t[i] = {id = i, name = 'user' .. i, score = i / 4, ok = i % 2 == 0}\n"
         "end\n"
         "for i = 1, 100000, 1000 do\n"
         "  t[i].tags, t[i].none, t[i].list = {'a', 'b'}, json.null, json.empty_array\n"
         "end\n"
         "local s = json.encode(t)\n"
         "local first = '[{\"id\":1,\"list\":[],\"name\":\"user1\",\"none\":null,'\n"
         "  .. '\"ok\":false,\"score\":0.25,\"tags\":[\"a\",\"b\"]},'\n"
         "assert(s:sub(1, #first) == first)\n"
         "local u = json.decode(s)\n"
         "assert(#u == 100000 and u[100000].id == 100000 and u[5].score == 1.25)\n"
         "assert(u[2].ok == true and u[1001].none == json.null and #u[1001].tags == 2)\n"
         "assert(json.encode(u) == s)");
  ASSERT_EQ(lua_gettop(L), 0);
  lua_close(L);
}

TEST(test_big_object_and_number_array) {
  lua_State *L = new_state();
  RUN(L, "local o = {}\n"
         "for i = 1, 100000 do o['key' .. i] = i end\n"
         "local so = json.encode(o)\n"
         "local first = '{\"key1\":1,\"key10\":10,\"key100\":100,'\n"
         "assert(so:sub(1, #first) == first)\n"
         "local ou = json.decode(so)\n"
         "assert(ou.key99999 == 99999 and json.encode(ou) == so)\n"
         "local n = {}\n"
         "for i = 1, 100000 do n[i] = i * 0.37 end\n"
         "local sn = json.encode(n)\n"
         "local nu = json.decode(sn)\n"
         "for i = 1, 100000 do assert(nu[i] == n[i]) end\n"
         "assert(json.encode(nu) == sn)");
  ASSERT_EQ(lua_gettop(L), 0);
  lua_close(L);
}

/* ---- The Lua surface --------------------------------------------------------- */

TEST(test_lua_encode_errors_carry_position) {
  lua_State *L = new_state();
  static const char code[] = "local t = {}\nreturn json.encode({f = print})";
  ASSERT_EQ(luaL_loadbuffer(L, code, sizeof code - 1, "=view.lua"), LUA_OK);
  ASSERT_EQ(lua_pcall(L, 0, 1, 0), LUA_ERRRUN);
  ASSERT_STR_EQ(lua_tostring(L, -1), "view.lua:2: json.encode: cannot encode a function at .f");
  lua_pop(L, 1);
  RUN(L, "local ok, e = pcall(function() return json.encode() end)\n"
         "assert(not ok and e:find(\"bad argument #1 to 'encode' %(value expected%)\"), e)\n"
         "assert(json.encode(nil) == 'null')\n"
         "assert(json.encode({1}, 'ignored') == '[1]')");
  /* The reused buffer starts empty each time, after big and failed calls. */
  RUN(L, "assert(#json.encode(string.rep('x', 200000)) == 200002)\n"
         "assert(not pcall(json.encode, {1, print}))\n"
         "assert(json.encode({2}) == '[2]')");
  lua_close(L);
}

TEST(test_lua_decode_returns_nil_and_message) {
  lua_State *L = new_state();
  RUN(L, "local v, e = json.decode('[1,')\n"
         "assert(v == nil and e == 'json.decode: unexpected end of text at line 1, column 4')\n"
         "assert(select('#', json.decode('[1,')) == 2)\n"
         "assert(select('#', json.decode('null')) == 1)\n"
         "assert(select('#', json.decode('{\"a\":1}')) == 1)");
  RUN(L,
      "for _, bad in ipairs({5, true, {}}) do\n"
      "  local ok, e = pcall(function() return json.decode(bad) end)\n"
      "  assert(not ok and e:find(\"bad argument #1 to 'decode' %(string expected, got \"), e)\n"
      "end\n"
      "assert(not pcall(json.decode))\n"
      "assert(not pcall(json.decode, nil))");
  lua_close(L);
}

TEST(test_lua_sentinels) {
  lua_State *L = new_state();
  RUN(L, "assert(json.null == json.null and rawequal(json.null, json.null))\n"
         "assert(type(json.null) == 'userdata' and json.null ~= nil)\n"
         "assert(json.null ~= json.empty_array)\n"
         "assert(json.empty_array == json.empty_array)\n"
         "assert(type(json.array_mt) == 'table')\n"
         "assert(json.decode('null') == json.null)\n"
         "assert(json.decode('[null]')[1] == json.null)\n"
         "assert(json.decode('{\"a\":null}').a == json.null)\n"
         "assert(json.encode(json.null) == 'null')\n"
         "assert(json.encode(json.empty_array) == '[]')\n"
         "assert(json.encode(setmetatable({}, json.array_mt)) == '[]')\n"
         "assert(getmetatable(json.decode('[]')) == json.array_mt)\n"
         "assert(json.encode(json.decode('[]')) == '[]')");
  /* script_json_push_null pushes the same value as json.null. */
  script_json_push_null(L);
  ASSERT_EQ(lua_type(L, -1), LUA_TLIGHTUSERDATA);
  ASSERT(lua_touserdata(L, -1) == NULL);
  lua_getglobal(L, "json");
  lua_getfield(L, -1, "null");
  ASSERT(lua_rawequal(L, -1, -3));
  lua_pop(L, 2);
  buf_t b = BUF_INIT;
  char err[64];
  ASSERT_EQ(script_json_encode(L, -1, &b, err, sizeof err), 0);
  ASSERT_MEM_EQ(b.data, b.len, "null");
  buf_free(&b);
  lua_close(L);
}

/* An allocator that fails after a budget, to drive Lua memory errors
 * through the codec: they must unwind cleanly (ASan and valgrind check for
 * leaks and bad accesses). */
typedef struct budget {
  size_t left;
} budget_t;

static void *budget_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  budget_t *b = ud;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  size_t old = ptr ? osize : 0;
  if (nsize > old && nsize - old > b->left)
    return NULL;
  if (nsize > old)
    b->left -= nsize - old;
  return realloc(ptr, nsize);
}

TEST(test_lua_memory_errors_unwind_cleanly) {
  for (size_t budget = 150000; budget < 600000; budget += 7919) {
    budget_t b = {(size_t)-1};
    lua_State *L = lua_newstate(budget_alloc, &b);
    no_context(L);
    luaL_openlibs(L);
    script_jsonlib_open(L);
    lua_setglobal(L, "json");
    RUN(L, "t = {}\n"
           "for i = 1, 400 do t[i % 2 == 0 and i or 'k' .. i] = {i, 'v' .. i} end\n"
           "s = json.encode(t)\n"
           "d = string.rep('{\"abc\\\\n\":[1.5,' .. string.rep('\"x\\\\u00e9\",', 300) .. "
           "'null]},', 20)");
    b.left = budget;
    static const char *const chunks[] = {"return json.encode(t)",
                                         "return json.decode('[' .. d .. '0]')"};
    for (int i = 0; i < 2; i++) {
      int rc = luaL_loadstring(L, chunks[i]);
      if (rc == LUA_OK)
        rc = lua_pcall(L, 0, 1, 0);
      if (!(rc == LUA_OK || rc == LUA_ERRMEM || rc == LUA_ERRRUN))
        UNIT_FAIL("budget %zu: %s: rc %d: %s", budget, chunks[i], rc, lua_tostring(L, -1));
      lua_pop(L, 1);
    }
    ASSERT_EQ(lua_gettop(L), 0);
    b.left = (size_t)-1;
    lua_close(L);
  }
}

/* The budgeted variants: the allowance goes down by one per byte plus the
 * per-value cost, and running out is -E2BIG with nothing left behind. */
TEST(test_budgeted_encode_and_decode) {
  lua_State *L = luaL_newstate();
  no_context(L);
  char err[128];
  buf_t b = BUF_INIT;
  eval_at(L, "{1, 'ab'}", __LINE__); /* [1,"ab"]: 8 bytes, 3 values */
  int64_t allowance = 1000;
  ASSERT_EQ(script_json_encode_budgeted(L, -1, &b, &allowance, err, sizeof err), 0);
  ASSERT_MEM_EQ(b.data, b.len, "[1,\"ab\"]");
  ASSERT_EQ(allowance, 1000 - 8 - 3 * SCRIPT_JSON_ENCODE_VALUE_COST);
  b.len = 0;
  allowance = 8 + 3 * SCRIPT_JSON_ENCODE_VALUE_COST - 1;
  ASSERT_EQ(script_json_encode_budgeted(L, -1, &b, &allowance, err, sizeof err), -E2BIG);
  ASSERT_EQ(b.len, 0);
  ASSERT_CONTAINS(err, "instruction budget");
  ASSERT_EQ(lua_gettop(L), 1);
  /* A table shared 2^40 times: stopped after about the allowance. */
  eval_at(L, "(function() local t = {'x'} for i = 1, 40 do t = {t, t} end return t end)()",
          __LINE__);
  allowance = 100000;
  ASSERT_EQ(script_json_encode_budgeted(L, -1, &b, &allowance, err, sizeof err), -E2BIG);
  ASSERT_EQ(b.len, 0);
  lua_settop(L, 0);

  allowance = 1000;
  ASSERT_EQ(script_json_decode_budgeted(L, "[1,\"ab\"]", 8, &allowance, err, sizeof err), 0);
  ASSERT_EQ(allowance, 1000 - 8 - 3 * SCRIPT_JSON_DECODE_VALUE_COST);
  ASSERT_EQ(lua_gettop(L), 1);
  allowance = 7; /* less than the text: refused before any work */
  ASSERT_EQ(script_json_decode_budgeted(L, "[1,\"ab\"]", 8, &allowance, err, sizeof err), -E2BIG);
  allowance = 8 + 2 * SCRIPT_JSON_DECODE_VALUE_COST; /* one value short */
  ASSERT_EQ(script_json_decode_budgeted(L, "[1,\"ab\"]", 8, &allowance, err, sizeof err), -E2BIG);
  ASSERT_CONTAINS(err, "instruction budget");
  ASSERT_EQ(lua_gettop(L), 1);
  buf_free(&b);
  lua_close(L);
}

UNIT_MAIN(test_encode_scalars, test_encode_floats, test_encode_float_round_trip_random,
          test_encode_nan_inf_refused, test_encode_every_escape, test_encode_utf8_passes_through,
          test_encode_invalid_utf8_replaced, test_encode_sorted_keys, test_encode_large_objects,
          test_encode_array_or_object, test_encode_empty_array_and_array_mt,
          test_encode_number_key_collision, test_encode_depth_limit, test_encode_cycles,
          test_encode_unencodable_values, test_encode_bad_keys, test_encode_c_api_contract,
          test_codec_without_module, test_decode_scalars, test_decode_numbers, test_decode_escapes,
          test_decode_surrogates, test_decode_utf8_kept_as_bytes,
          test_decode_arrays_carry_array_mt, test_decode_objects, test_decode_whitespace,
          test_decode_bom_is_skipped, test_decode_depth_limit, test_decode_malformed,
          test_decode_line_and_column, test_decode_mutations, test_round_trips, test_big_document,
          test_big_object_and_number_array, test_lua_encode_errors_carry_position,
          test_lua_decode_returns_nil_and_message, test_lua_sentinels,
          test_lua_memory_errors_unwind_cleanly, test_budgeted_encode_and_decode)
