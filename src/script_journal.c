/* script_journal.c - the `journal` global: what the mock received, read
 * from a provision, so that a view can answer differently on the Nth call.
 *
 *   journal.count{method=, path=, path_prefix=, endpoint=, status=, since=, limit=}
 *   journal.find{... the same ...}  -> array of entries, oldest first
 *
 * The request being served is recorded after its response, so inside a
 * view journal.count{endpoint = "x"} + 1 is the number of this call. */
#include <errno.h>
#include <string.h>

#include "journal.h"
#include "script_int.h"
#include "script_json.h"
#include "text.h"

/* Every function of the `journal` table has two upvalues: the journal
 * (NULL: none) and a userdata holding the working space of push_entry. */
static journal_t *journal_of(lua_State *L) { return lua_touserdata(L, lua_upvalueindex(1)); }

static const char *checked_string(lua_State *L, const char *fn, const char *key, size_t *len) {
  if (lua_type(L, -1) != LUA_TSTRING)
    luaL_error(L, "journal.%s: %s must be a string, not a %s", fn, key, luaL_typename(L, -1));
  const char *s = lua_tolstring(L, -1, len);
  if (*len == 0)
    luaL_error(L, "journal.%s: %s is empty", fn, key);
  return s;
}

static uint64_t checked_uint(lua_State *L, const char *fn, const char *key) {
  int isint;
  lua_Integer v = lua_tointegerx(L, -1, &isint);
  if (!isint || v < 0)
    luaL_error(L, "journal.%s: %s must be an integer >= 0", fn, key);
  return (uint64_t)v;
}

/* Reads the filter table at index 1 (absent or nil: everything). The
 * strings stay on the stack (in the table) while the filter is used. */
static void read_filter(lua_State *L, const char *fn, journal_filter_t *f) {
  journal_filter_init(f);
  if (lua_isnoneornil(L, 1))
    return;
  if (!lua_istable(L, 1))
    luaL_error(L, "journal.%s: the filter must be a table, not a %s", fn, luaL_typename(L, 1));
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    enum journal_filter_key k = JOURNAL_F_COUNT;
    if (lua_type(L, -2) == LUA_TSTRING) {
      size_t klen;
      const char *name = lua_tolstring(L, -2, &klen);
      k = journal_filter_key(name, klen);
    }
    if (k == JOURNAL_F_COUNT) {
      luaL_error(L, "journal.%s: unknown filter %s (" JOURNAL_FILTER_LIST ")", fn,
                 luaL_tolstring(L, -2, NULL));
      return;
    }
    const char *key = journal_filter_names[k];
    size_t len;
    const char *s;
    uint64_t n;
    switch (k) {
    case JOURNAL_F_METHOD:
      s = checked_string(L, fn, key, &len);
      if (journal_filter_method(f, s, len))
        luaL_error(L, "journal.%s: method '%s' is not an HTTP method name", fn, s);
      break;
    case JOURNAL_F_PATH: f->path = checked_string(L, fn, key, &f->path_len); break;
    case JOURNAL_F_PATH_PREFIX:
      f->path_prefix = checked_string(L, fn, key, &f->path_prefix_len);
      break;
    case JOURNAL_F_ENDPOINT: f->endpoint = checked_string(L, fn, key, &f->endpoint_len); break;
    case JOURNAL_F_STATUS:
      n = checked_uint(L, fn, key);
      if (n < JOURNAL_STATUS_MIN || n > JOURNAL_STATUS_MAX)
        luaL_error(L, "journal.%s: status must be an HTTP status (100-999)", fn);
      f->status = (int)n;
      break;
    case JOURNAL_F_SINCE:
      f->since = checked_uint(L, fn, key);
      f->has_since = true;
      break;
    case JOURNAL_F_LIMIT:
    case JOURNAL_F_COUNT: /* refused above */
      f->limit = checked_uint(L, fn, key);
      f->has_limit = true;
      break;
    }
    lua_pop(L, 1);
  }
}

static int l_count(lua_State *L) {
  journal_filter_t f;
  read_filter(L, "count", &f);
  lua_pushinteger(L, (lua_Integer)journal_select(journal_of(L), &f, NULL, NULL));
  return 1;
}

static void set_string(lua_State *L, const char *key, const char *s, size_t n) {
  lua_pushlstring(L, s, n);
  lua_setfield(L, -2, key);
}

static void set_integer(lua_State *L, const char *key, lua_Integer v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, key);
}

static void header_field(void *arg, const char *name, size_t nlen, const char *value,
                         size_t vlen) {
  lua_State *L = arg;
  lua_pushlstring(L, name, nlen);
  lua_pushlstring(L, value, vlen);
  lua_rawset(L, -3);
}

struct find {
  lua_State *L;
  lua_Integer n;
  buf_t *scratch;
};

/* Pushes one entry table into the array on top. Its working space
 * (fd->scratch) belongs to a userdata, so that a memory error raised here
 * cannot leak it. */
static int push_entry(void *arg, const journal_view_t *v) {
  struct find *fd = arg;
  lua_State *L = fd->L;
  buf_t *scratch = fd->scratch;
  luaL_checkstack(L, 4, "journal.find");
  lua_createtable(L, 0, 16);
  set_integer(L, "seq", (lua_Integer)v->seq);
  char when[TEXT_RFC3339_LEN + 1];
  text_rfc3339_us(v->time_us, when);
  set_string(L, "time", when, TEXT_RFC3339_LEN);
  set_string(L, "remote", v->remote, v->remote_len);
  const char *m = http_method_name(v->method);
  set_string(L, "method", m ? m : "?", m ? strlen(m) : 1);
  set_string(L, "path", v->path, v->path_len);
  set_string(L, "query", v->query, v->query_len);
  lua_createtable(L, 0, 8);
  journal_view_headers(v, scratch, header_field, L);
  lua_setfield(L, -2, "headers");
  bool base64;
  buf_reset(scratch);
  if (journal_view_body(v, scratch, &base64))
    luaL_error(L, "journal.find: out of memory");
  set_string(L, "body", scratch->data ? scratch->data : "", scratch->len);
  set_string(L, "body_encoding", base64 ? "base64" : "utf-8", base64 ? 6 : 5);
  lua_pushboolean(L, v->body_truncated);
  lua_setfield(L, -2, "body_truncated");
  set_integer(L, "body_bytes", (lua_Integer)v->body_bytes);
  set_integer(L, "status", v->status);
  if (v->endpoint)
    set_string(L, "endpoint", v->endpoint, v->endpoint_len);
  set_string(L, "provision", v->provision, v->provision_len);
  lua_pushboolean(L, v->proxied);
  lua_setfield(L, -2, "proxied");
  /* false rather than nil: the field is there, as in the admin API's
   * JSON, and `if e.fault then` reads well. */
  if (v->fault)
    set_string(L, "fault", v->fault, strlen(v->fault));
  else {
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "fault");
  }
  /* Made by h1mock (journal.c's "calls"), so it decodes; should it not,
   * the entry still comes, without its calls. */
  buf_reset(scratch);
  if (buf_putc(scratch, '[') || buf_append(scratch, v->calls, v->calls_len) ||
      buf_putc(scratch, ']'))
    luaL_error(L, "journal.find: out of memory");
  char jerr[8];
  if (script_json_decode(L, scratch->data, scratch->len, jerr, sizeof jerr) == 0)
    lua_setfield(L, -2, "calls");
  set_integer(L, "duration_us", (lua_Integer)v->duration_us);
  lua_rawseti(L, -2, ++fd->n);
  return 0;
}

static int l_find(lua_State *L) {
  journal_filter_t f;
  read_filter(L, "find", &f);
  lua_newtable(L);
  script_json_push_array_mt(L); /* json.encode gives [] when nothing matched */
  lua_setmetatable(L, -2);
  struct find fd = {L, 0, lua_touserdata(L, lua_upvalueindex(2))};
  journal_select(journal_of(L), &f, push_entry, &fd);
  buf_shrink(fd.scratch, 64 * 1024);
  return 1;
}

static int scratch_gc(lua_State *L) {
  buf_free(lua_touserdata(L, 1));
  return 0;
}

void script_journal_open(lua_State *L, journal_t *journal) {
  static const luaL_Reg fns[] = {{"count", l_count}, {"find", l_find}, {NULL, NULL}};
  luaL_newlibtable(L, fns);
  lua_pushlightuserdata(L, journal);
  buf_t *scratch = lua_newuserdatauv(L, sizeof *scratch, 0);
  *scratch = (buf_t)BUF_INIT;
  /* A locked metatable of our own: provisions cannot reach it, so its __gc
   * is h1mock's only. */
  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, scratch_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  luaL_setfuncs(L, fns, 2);
  lua_setglobal(L, "journal");
}
