/* test_watcher.c - which names in the provisions directory the watcher
 * loads when they change. */
#include "../../src/watcher.h"
#include "unit.h"

TEST(lua_files_and_names_without_a_dot) {
  ASSERT(watcher_wants("initial.lua"));
  ASSERT(watcher_wants("foo-bar.lua"));
  ASSERT(watcher_wants("v1.2.lua"));
  /* the Flask-based h1mock's style, as copied in with kubectl cp */
  ASSERT(watcher_wants("foo-bar"));
  ASSERT(watcher_wants("initial"));
  ASSERT(watcher_wants("Orders_2"));
}

TEST(other_files_stay_out) {
  ASSERT(!watcher_wants("notes.txt"));
  ASSERT(!watcher_wants("initial.lua.bak"));
  ASSERT(!watcher_wants("initial.lua.new"));
  ASSERT(!watcher_wants(".lua"));
  ASSERT(!watcher_wants(".hidden.lua"));
  ASSERT(!watcher_wants(".hidden"));
  ASSERT(!watcher_wants(".initial.lua.swp"));
  ASSERT(!watcher_wants("initial.swp"));
  ASSERT(!watcher_wants("initial~"));
  ASSERT(!watcher_wants("initial.lua~"));
  ASSERT(!watcher_wants("#initial#"));
  ASSERT(!watcher_wants(".initial.lua.tmp-1234")); /* h1mock's own temporary */
  ASSERT(!watcher_wants("..data"));                /* the ConfigMap swap, told apart */
  ASSERT(!watcher_wants("a b"));
  char longname[300];
  memset(longname, 'a', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  ASSERT(!watcher_wants(longname));
}

UNIT_MAIN(lua_files_and_names_without_a_dot, other_files_stay_out)
