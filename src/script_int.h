/* script_int.h - what the script*.c files share; nothing outside them (and
 * their unit tests) includes this header.
 *
 * The files call one way: script.c drives a request and script_load.c
 * loads a state (the module `script`); each binding file registers one API
 * group of the provisions and is reached only through its open function;
 * script_value.c (values crossing C and Lua) and script_budget.c (the
 * instruction budget) are below them all and call nothing above. */
#ifndef H1MOCK_SCRIPT_INT_H
#define H1MOCK_SCRIPT_INT_H

#include <lauxlib.h>
#include <lua.h>
#include <time.h>

#include "buf.h"
#include "cors.h"
#include "router.h"
#include "script.h"
#include "store.h"
#include "text.h"

/* The count hook runs every HOOK_EVERY VM instructions: often enough to
 * stop a loop quickly, rare enough to cost nothing measurable. */
#define HOOK_EVERY 10000

/* A request that runs this many instructions without a pause yields to the
 * event loop (and is resumed at once), so one busy view cannot starve the
 * other connections while it works towards its budget. */
#define SLICE_INSTRUCTIONS 2000000

/* What a log line quotes at most, escaped (text_escape): a request's path,
 * and a message from the provision (an error with its traceback, log.*,
 * print), either of which may carry bytes a client sent. */
#define LOG_PATH_MAX 512
#define LOG_MESSAGE_MAX (16 * 1024)

/* Registry keys (addresses of these are unique light userdata keys). */
extern const char script_key_response_mt;  /* metatable of Response objects */
extern const char script_key_exception_mt; /* metatable of abort() errors */
extern const char script_key_response_new; /* Lua constructor of Response */

enum ctx_kind { CTX_LOAD, CTX_CALL, CTX_MAIN };

/* Lives in the extra space of every thread, so the count hook, sleep() and
 * add_url_rule() know what the running code is doing. */
typedef struct script_ctx script_ctx_t;
struct script_ctx {
  enum ctx_kind kind;
  lua_State *thread; /* the thread h1mock resumes; coroutines the provision
                        makes share its ctx but must not yield to us */
  int64_t budget;    /* instructions left */
  int64_t slice;     /* instructions left before the next turn of the event loop */
  bool killed;       /* the budget ran out: the thread yielded to be dropped */
  bool sleeping;     /* sleep() yielded; a timer resumes it */
  uint64_t wrote;    /* store sequence number of the last write made here (0: none) */
  char where[200];   /* "file:line" where the budget ran out */
  /* CTX_CALL: pauses the request (the driver's, which the binding files
   * below it reach this way): a timer or, with 0 seconds, the next turn of
   * the loop resumes it. The caller yields right after. Raises when out of
   * memory. */
  void (*sleep)(script_ctx_t *ctx, double seconds);
  /* CTX_CALL: resumes a request that a binding parked until an event of
   * its own (it set `sleeping` and yielded): called from that event's
   * callback on the loop, never while the request runs. */
  void (*resume)(script_ctx_t *ctx);
  /* The outbound call the parked request waits for, or NULL: the driver
   * cancels it when the request is abandoned. */
  struct http_client_call *outbound;
  /* The request's outbound calls for its journal entry (origin_t.calls):
   * JSON objects separated by commas, and how many. */
  buf_t calls;
  unsigned ncalls;
};

/* The bytes a provision's Lua state holds, counted by its allocator, and
 * its cap. One per state: a pool thread closing a retired state touches
 * only that state's counter. */
typedef struct script_heap {
  size_t used;
  size_t limit; /* 0: no limit */
  bool refused; /* an allocation failed because of the limit (reset per run) */
} script_heap_t;

struct script_rule {
  int view_ref;     /* registry ref of the view function */
  int defaults_ref; /* registry ref of {{name, value}, ...} sorted, or LUA_NOREF */
  int ndefaults;
  char *endpoint;
};

struct script {
  lua_State *L;
  script_heap_t heap;
  char *name; /* the provision's name, for the journal and the metrics */
  size_t name_len;
  char *file;            /* "name.lua", or "(default)": how the watchdog names it */
  script_ctx_t main_ctx; /* budget for what runs on the main thread */
  int refs;
  script_opts_t opts;
  char *dir;
  router_t *router;
  struct script_rule *rules;
  size_t nrules, caprules;
  int *before, *after; /* registry refs */
  size_t nbefore, nafter;
  int handlers[600]; /* registry ref of the error handler per status, 0 none */
  cors_t cors;       /* --cors, or what app.cors set */
  script_call_t *free_calls;
  bool loading;      /* registerRules() is running: add_url_rule is allowed */
  uint64_t wrote;    /* store sequence number of the last write the load made */
  uv_work_t closing; /* lua_close of a retired provision, off the loop */
};

enum call_stage { STAGE_BEFORE, STAGE_VIEW, STAGE_HANDLER, STAGE_AFTER, STAGE_DONE };

struct script_call {
  script_ctx_t ctx; /* first: the thread's extra space points here */
  script_t *s;
  lua_State *co;
  int co_ref;
  int req_slot; /* registry slot holding this request's userdata */
  struct script_req *ud;
  const http_request_t *req;
  const char *remote; /* owned by the connection, which outlives the call */
  router_match_t match;
  int rule; /* index into s->rules, or -1 */
  http_response_t *resp;
  origin_t *origin;
  script_done_fn done;
  void *data;
  enum call_stage stage;
  size_t step;
  int err_code;              /* the status being handled in STAGE_HANDLER */
  char err_desc[400];        /* abort()'s description for the page and the handler */
  char err_msg[400];         /* what failed, for a 500 handler's e.original_exception */
  bool handled_error;        /* an error page was made: do not run handlers again */
  bool proxied;              /* --proxy answered: no rule's path matched */
  struct proxy_out *forward; /* the request --proxy sends, while it is out */
  uv_timer_t *timer;         /* sleep(seconds > 0) */
  store_waiter_t durable;    /* the answer waits for the call's store writes */
  bool holding;              /* ... and `durable` is registered */
  uv_idle_t *idle;           /* sleep(0) and time slices: resume on the next loop turn */
  script_call_t *next_free;
};

/* The userdata behind `request`. `call` is NULL once the request ended. */
struct script_req {
  script_call_t *call;
};

#define REQUEST_MT "h1mock.request"

/* The embedded runtime (the lua directory) compiled once per server: every
 * provision load needs it, and parsing its source again each time was a
 * tenth of the load of a small provision. Only h1mock's own dumps are
 * ever loaded as bytecode; provisions get text only. */
#define SCRIPT_EMBEDDED_MAX 16
struct script_runtime {
  struct script_compiled {
    buf_t code;
    bool ready;
  } compiled[SCRIPT_EMBEDDED_MAX];
};

/* lua_embedded.c, generated from the lua directory at build time. */
extern const struct script_embedded {
  const char *name;
  const char *text;
  size_t len;
} script_embedded[];

/* ---- script.c and script_wait.c: one request -------------------------------- */

/* The request's method name, "?" when unknown. */
const char *script_method_of(const script_call_t *c);
/* The request's decoded path for a log line, escaped into `scratch`. */
const char *script_log_path(const script_call_t *c, buf_t *scratch);
/* Back to the provision's pool of calls. */
void script_call_put(script_call_t *c);
/* Runs the call's stages until it is answered or waits; `resuming`
 * continues a thread that slept. */
enum script_status script_run(script_call_t *c, bool resuming);
/* The answer is final: notes who gave it (journal, metrics, access log). */
void script_note_origin(script_call_t *c);

/* script_wait.c */
/* The call is over: pooled again, and `done` told when `notify`. */
void script_finish(script_call_t *c, bool notify);
/* Holds a final answer until the call's store writes are durable:
 * SCRIPT_PENDING while held. */
enum script_status script_settle(script_call_t *c);
/* --proxy: sends the request on. True when it is out (the call waits);
 * else the response is a gateway error and the call goes on. */
bool script_forward(script_call_t *c);
/* ctx->sleep and ctx->resume of every call. */
void script_sleep_start(script_ctx_t *ctx, double seconds);
void script_resume_parked(script_ctx_t *ctx);

/* ---- script_load.c: loading a state --------------------------------------- */

/* Why an allocation of s's state failed, as a sentence in out: the limit
 * when it was the cause. Returns out. */
const char *script_memory_text(const script_t *s, char *out, size_t n);

/* ---- the binding files: one API group each ------------------------------- */

/* script_app.c: `app` (Flask's add_url_rule and friends), `log`, `sleep` */
void script_app_open(lua_State *L, script_t *s);

/* script_request.c: the metatable of request objects */
void script_request_open(lua_State *L);

/* script_response.c: make_response, jsonify, redirect, abort, the
 * Response and HTTPException classes, and the runtime module's fields
 * (h1mock.started_at is `started_at`, seconds since the epoch) */
void script_response_open(lua_State *L, int64_t started_at);

/* script_string.c */
/* Replaces string.find/match/gmatch/gsub with the step-counted matcher of
 * pattern.c and string.rep/table.concat with versions that charge the
 * budget per byte. Call after the string and table libraries are open and
 * before any code captures them. */
void script_string_open(lua_State *L);
/* Adds like(value, pattern, max_steps) to the runtime module `h1mock`, for
 * lua/rest.lua's `_like` filter. */
void script_string_open_runtime(lua_State *L);

/* script_store.c: the `store` global over `store`, shared by every
 * provision of a server (it outlives provision swaps) */
void script_store_open(lua_State *L, struct store *store);

/* script_http.c: the `http` global (request, request_async, forward)
 * over s->opts.client; its calls are counted in s->opts.metrics and
 * logged to s->opts.log */
void script_http_open(lua_State *L, script_t *s);

/* script_journal.c: the `journal` global over the request journal (NULL:
 * an empty one) */
void script_journal_open(lua_State *L, struct journal *journal);

/* script_sandbox.c: opens the allowed libraries, require() over `dir` and
 * the embedded runtime (compiled once in `rt`, or each time when NULL),
 * and removes what a provision must not reach; print() writes to `lg`. */
void script_sandbox_open(lua_State *L, const char *dir, struct script_runtime *rt,
                         const struct log *lg);

/* script_jsonlib.c: pushes the `json` module table: encode, decode, null,
 * empty_array, array_mt (returns 1, a lua_CFunction for luaL_requiref).
 * json.encode(v) returns a string or raises "json.encode: <sentence>" with
 * the caller's file:line; json.decode(s) returns the value, or nil and
 * "json.decode: <message>" on bad text, and raises only when s is not a
 * string. Both charge the instruction budget of the running code
 * (script_charge; costs in script_json.h), so the state's threads must
 * carry a script context or NULL in their extra space. */
int script_jsonlib_open(lua_State *L);

/* ---- script_value.c: values crossing C and Lua ---------------------------- */

/* Registry keys (addresses of these are unique light userdata keys). */
extern const char script_key_response_mt;  /* metatable of Response objects */
extern const char script_key_exception_mt; /* metatable of abort() errors */
extern const char script_key_response_new; /* Lua constructor of Response */

/* Turns view return values at [first, first+n) into `out`. Returns 0, or
 * -EINVAL with a sentence in err. */
int script_normalize(lua_State *L, int first, int n, int default_status, http_response_t *out,
                     char *err, size_t errlen);
/* Pushes a Response object holding `r`. */
void script_response_push(lua_State *L, const http_response_t *r);
/* True when the value at idx is a Response object. */
bool script_is_response(lua_State *L, int idx);
/* Fills `out` with the plain HTML error page for `code`. */
void script_error_page(http_response_t *out, int code, const char *description);
/* Appends s with <, >, & and " escaped for HTML. */
void script_html_escape(buf_t *b, const char *s);
/* Pushes the exception object for `code` (what error handlers receive). */
void script_exception_push(lua_State *L, int code, const char *description);
/* If the value at idx is an abort() exception, returns its code (and pushes
 * nothing); else 0. */
int script_exception_code(lua_State *L, int idx);
/* Pushes a URL variable as its converter says: int -> integer, float ->
 * number, others -> string. */
void script_push_var(lua_State *L, const router_var_t *v);
/* Pushes a new request object for `call` (its fields are
 * script_request.c's). */
void script_push_request(lua_State *L, script_call_t *call);

/* ---- script_budget.c: the instruction budget ------------------------------ */

script_ctx_t *script_ctx(lua_State *L);
void script_set_ctx(lua_State *L, script_ctx_t *ctx);
/* Installs the count hook on L; threads made later copy it. */
void script_budget_hook(lua_State *L);
/* Gives a thread a fresh budget (and undoes a kill's every-instruction hook). */
void script_rearm(lua_State *L, script_ctx_t *ctx, int64_t budget);
/* "file:line" of the innermost Lua function of a stopped thread. */
void script_where(lua_State *co, char *out, size_t n);
/* What is left of the budget of the code running on L: the most a C
 * function may spend now. INT64_MAX when nothing budgets L (h1mock's own
 * setup before a provision loads). */
int64_t script_budget_left(lua_State *L);
/* Debits `cost` instructions for work done inside a C function, which the
 * count hook cannot see. When that spends the budget (cost >= what is
 * left; SCRIPT_CHARGE_ALL always does) the code is stopped exactly as the
 * count hook stops it: on the request's own thread by a yield that the
 * request never returns from, elsewhere by raising "instruction budget
 * exhausted" at every instruction from then on. Either way the call does
 * not return. Must be called from a C function that Lua called. */
void script_charge(lua_State *L, int64_t cost);
#define SCRIPT_CHARGE_ALL INT64_MAX

/* Work measured in bytes (string.rep, table.concat, gsub's output, plain
 * find, json.encode/decode) is charged one instruction per this many
 * bytes. Measured on the development machine: a VM instruction takes about
 * 3 ns, writing or reading one byte in those functions 0.2 to 6 ns (json
 * the slowest, big fresh strings about 2.5 ns), so a byte is priced as an
 * instruction and the budget bounds their time about as it bounds a loop. */
#define SCRIPT_BYTES_PER_STEP 1
static inline int64_t script_bytes_cost(size_t bytes) {
  size_t cost = bytes / SCRIPT_BYTES_PER_STEP;
  return cost > (size_t)INT64_MAX ? INT64_MAX : (int64_t)cost;
}

#endif
