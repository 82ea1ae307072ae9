/* test_script.c - the guards around a provision's Lua state
 * (src/script.c, src/script_sandbox.c): the memory limit at load and at
 * request time, protected set-up at every limit, load errors whose value
 * is not a string, and xpcall's handler under the budget. Requests are
 * dispatched on a private libuv loop, as the server would. */
#include "unit.h"

#include <errno.h>

#include <uv.h>

#include "http.h"
#include "script.h"

static uv_loop_t loop;

static script_t *load(const char *text, size_t max_memory, int64_t max_instructions, int *rc,
                      char *err, size_t errlen) {
  script_opts_t opts = {
      .loop = &loop, .dir = NULL, .max_instructions = max_instructions, .max_memory = max_memory};
  script_t *s = NULL;
  *rc = script_load("t.lua", text, strlen(text), &opts, &s, err, errlen);
  return s;
}

static void on_done(void *data) { *(bool *)data = true; }

/* GET path on s; returns the status, the body in `body` (NUL-terminated). */
static int get(script_t *s, const char *path, char *body, size_t n) {
  size_t len = strlen(path);
  http_request_t req = {.method = HTTP_GET,
                        .http_major = 1,
                        .http_minor = 1,
                        .target = path,
                        .target_len = len,
                        .path = path,
                        .path_len = len,
                        .raw_path = path,
                        .raw_path_len = len,
                        .query = "",
                        .query_len = 0};
  http_response_t resp = {0};
  origin_t origin = {0};
  bool done = false;
  script_call_t *call;
  if (script_dispatch(s, &req, "127.0.0.1:1", &resp, &origin, on_done, &done, &call) ==
      SCRIPT_PENDING)
    while (!done)
      uv_run(&loop, UV_RUN_ONCE);
  int status = resp.status;
  if (body)
    snprintf(body, n, "%.*s", (int)resp.body.len, resp.body.data ? resp.body.data : "");
  http_response_free(&resp);
  origin_free(&origin);
  return status;
}

static void release(script_t *s) {
  script_release(s);
  uv_run(&loop, UV_RUN_DEFAULT); /* the state is closed on the threadpool */
}

static const char grower[] =
    "function registerRules()\n"
    "  app.get('/grow', function()\n"
    "    local t = {}\n"
    "    for i = 1, 200000 do t[i] = {i} end\n"
    "    return 'grown'\n"
    "  end)\n"
    "  app.get('/ok', function() return {ok = true, list = {1, 2, 3}} end)\n"
    "  app.register_error_handler(500, function(e) return 'handled', 500 end)\n"
    "end\n";

/* At every limit from far too small to enough, set-up, load and requests
 * either work or fail with a message that names the limit: no path from C
 * into Lua is unprotected (an unprotected one aborts this process). */
TEST(every_memory_limit_fails_cleanly) {
  ASSERT_EQ(uv_loop_init(&loop), 0);
  char err[1024], body[256];
  int loaded = 0, served = 0;
  for (size_t limit = 40000; limit < 420000; limit += 3011) {
    int rc;
    script_t *s = load(grower, limit, 100000000, &rc, err, sizeof err);
    if (rc) {
      ASSERT_EQ(rc, -ENOMEM);
      ASSERT_CONTAINS(err, "not enough memory: the provision's Lua state reached its limit "
                           "(--max-lua-memory ");
      ASSERT(strncmp(err, "t.lua:", 6) == 0);
      continue;
    }
    loaded++;
    ASSERT(script_memory(s) <= limit);
    ASSERT_EQ(script_memory_limit(s), limit);
    for (int round = 0; round < 2; round++) {
      ASSERT_EQ(get(s, "/grow", body, sizeof body), 500);
      ASSERT(script_memory(s) <= limit);
      int st = get(s, "/ok", body, sizeof body);
      ASSERT(st == 200 || st == 500);
      served += st == 200;
    }
    release(s);
  }
  ASSERT(loaded > 50);
  ASSERT(served > 100);
  ASSERT_EQ(uv_loop_close(&loop), 0);
}

TEST(a_request_past_the_limit_gets_500_and_the_state_keeps_serving) {
  ASSERT_EQ(uv_loop_init(&loop), 0);
  char err[1024], body[256];
  int rc;
  script_t *s = load(grower, 4 << 20, 100000000, &rc, err, sizeof err);
  ASSERT_EQ(rc, 0);
  for (int i = 0; i < 3; i++) {
    ASSERT_EQ(get(s, "/grow", body, sizeof body), 500);
    ASSERT_STR_EQ(body, "handled");
    ASSERT_EQ(get(s, "/ok", body, sizeof body), 200);
    ASSERT_CONTAINS(body, "\"ok\":true");
  }
  /* What the failed request left was collected at once. */
  ASSERT(script_memory(s) < 1 << 20);
  release(s);
  ASSERT_EQ(uv_loop_close(&loop), 0);
}

/* The emergency collection Lua runs when an allocation is refused also
 * runs after collectgarbage("stop"): garbage many times the limit passes,
 * and the state never holds more than the limit. */
TEST(collectgarbage_stop_cannot_pass_the_limit) {
  ASSERT_EQ(uv_loop_init(&loop), 0);
  static const char text[] = "collectgarbage('stop')\n"
                             "for i = 1, 40 do local s = string.rep('x', 1 << 20) .. i end\n"
                             "function registerRules()\n"
                             "  app.get('/churn', function()\n"
                             "    collectgarbage('stop')\n"
                             "    for i = 1, 40 do local s = string.rep('y', 1 << 20) .. i end\n"
                             "    return tostring(collectgarbage('count') * 1024 // 1)\n"
                             "  end)\n"
                             "end\n";
  char err[1024], body[256];
  int rc;
  script_t *s = load(text, 4 << 20, 100000000, &rc, err, sizeof err);
  if (rc)
    UNIT_FAIL("load: %s", err);
  ASSERT(script_memory(s) <= 4 << 20);
  ASSERT_EQ(get(s, "/churn", body, sizeof body), 200);
  ASSERT(atoll(body) <= 4 << 20);
  ASSERT(script_memory(s) <= 4 << 20);
  release(s);
  ASSERT_EQ(uv_loop_close(&loop), 0);
}

TEST(a_load_past_the_limit_is_refused_with_file_line) {
  ASSERT_EQ(uv_loop_init(&loop), 0);
  static const char text[] = "local t = {}\n"
                             "for i = 1, 1e6 do t[i] = 'item ' .. i end\n"
                             "function registerRules() end\n";
  char err[1024];
  int rc;
  script_t *s = load(text, 2 << 20, 100000000, &rc, err, sizeof err);
  ASSERT(s == NULL);
  ASSERT_EQ(rc, -ENOMEM);
  uv_run(&loop, UV_RUN_DEFAULT);
  ASSERT_STR_EQ(err, "t.lua:2: not enough memory: the provision's Lua state reached its limit "
                     "(--max-lua-memory 2M)");
  /* 0: no limit. */
  s = load(text, 0, 100000000, &rc, err, sizeof err);
  ASSERT_EQ(rc, 0);
  ASSERT(script_memory(s) > 2 << 20);
  ASSERT_EQ(script_memory_limit(s), 0);
  release(s);
  ASSERT_EQ(uv_loop_close(&loop), 0);
}

/* The error value of a failed load is read without running provision
 * code: a __tostring that raises once aborted the process. */
TEST(load_error_objects_are_named_by_type_and_position) {
  ASSERT_EQ(uv_loop_init(&loop), 0);
  static const struct {
    const char *text, *want;
  } cases[] = {
      {"local bomb = setmetatable({}, {__tostring = function() error('raised') end})\n"
       "error(bomb)\n",
       "t.lua:2: (error object is a table value)"},
      {"function registerRules()\n"
       "  error(setmetatable({}, {__tostring = function() error('raised') end}))\n"
       "end\n",
       "t.lua:2: (error object is a table value)"},
      {"local function f() error(true) end\nf()\n", "t.lua:1: (error object is a boolean value)"},
      {"error(42)\n", "42"},
      {"error(1.5)\n", "1.5"},
      {"error('plain', 0)\n", "plain"},
      {"error('with position')\n", "t.lua:1: with position"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char err[1024];
    int rc;
    script_t *s = load(cases[i].text, 0, 100000000, &rc, err, sizeof err);
    ASSERT(s == NULL);
    ASSERT_EQ(rc, -EINVAL);
    ASSERT_STR_EQ(err, cases[i].want);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  ASSERT_EQ(uv_loop_close(&loop), 0);
}

/* A message handler that loops is stopped by the budget, at load as in a
 * request; it once ran with hooks off and never returned. */
TEST(xpcall_handlers_run_under_the_budget) {
  ASSERT_EQ(uv_loop_init(&loop), 0);
  static const char *const texts[] = {
      "xpcall(function() error('x') end, function(e) while true do end end)\n",
      "xpcall(function() while true do end end, function(e) while true do end end)\n",
      "table.sort({3, 2, 1}, function()\n"
      "  return xpcall(function() while true do end end, function() while true do end end)\n"
      "end)\n",
      "xpcall(function() error('x') end, function(e)\n"
      "  while true do pcall(error, e) end\n"
      "end)\n",
  };
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
    char err[1024];
    int rc;
    script_t *s = load(texts[i], 0, 1000000, &rc, err, sizeof err);
    ASSERT(s == NULL);
    ASSERT_EQ(rc, -EINVAL);
    ASSERT_CONTAINS(err, "the instruction budget (1000000) ran out while loading");
    ASSERT(strncmp(err, "t.lua:", 6) == 0);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  ASSERT_EQ(uv_loop_close(&loop), 0);
}

TEST(xpcall_keeps_its_contract) {
  ASSERT_EQ(uv_loop_init(&loop), 0);
  static const char text[] =
      "local function check(got, want)\n"
      "  if got ~= want then error(('got %s, want %s'):format(got, want), 2) end\n"
      "end\n"
      "local function all(...)\n"
      "  local t = table.pack(...)\n"
      "  for i = 1, t.n do t[i] = tostring(t[i]) end\n"
      "  return t.n .. ':' .. table.concat(t, ',')\n"
      "end\n"
      "check(all(xpcall(function(a, b) return a + b, a * b end, print, 3, 4)), '3:true,7,12')\n"
      "check(all(xpcall(function() error('x', 0) end, function(e) return 'h:' .. e, 2 end)),\n"
      "      '2:false,h:x')\n"
      "check(all(xpcall(function() error('x', 0) end, function(e) error('y', 0) end)),\n"
      "      '2:false,error in error handling: y')\n"
      "check(select(2, xpcall(function() error('x', 0) end, function() error({}) end)),\n"
      "      'error in error handling')\n"
      "check(select(2, xpcall(nil, function(e) return e end)), 'attempt to call a nil value')\n"
      "check(select(2, pcall(xpcall, print)),\n"
      "      \"bad argument #2 to 'xpcall' (function expected, got no value)\")\n"
      "check(select(2, pcall(xpcall, print, 3)),\n"
      "      \"bad argument #2 to 'xpcall' (function expected, got number)\")\n"
      "local co = coroutine.wrap(function()\n"
      "  return xpcall(function() coroutine.yield('in') error('after', 0) end,\n"
      "                function(e) return 'h:' .. e end)\n"
      "end)\n"
      "check(co(), 'in')\n"
      "check(all(co()), '2:false,h:after')\n"
      "function registerRules() end\n";
  char err[1024];
  int rc;
  script_t *s = load(text, 0, 100000000, &rc, err, sizeof err);
  if (rc)
    UNIT_FAIL("load: %s", err);
  release(s);
  ASSERT_EQ(uv_loop_close(&loop), 0);
}

UNIT_MAIN(every_memory_limit_fails_cleanly,
          a_request_past_the_limit_gets_500_and_the_state_keeps_serving,
          collectgarbage_stop_cannot_pass_the_limit,
          a_load_past_the_limit_is_refused_with_file_line,
          load_error_objects_are_named_by_type_and_position, xpcall_handlers_run_under_the_budget,
          xpcall_keeps_its_contract)
