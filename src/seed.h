/* seed.h - store seeding: a JSON body (an array of objects) turned into
 * documents, each as the JSON text the store keeps, with no Lua state.
 *
 * The admin API's POST /app/v1/store/<collection> uses it (admin.c). A
 * document is written in the canonical form store.put gives a decoded
 * value (script_json.h): keys sorted bytewise, the last of duplicate keys
 * kept, numbers and strings as json.h writes them. Each document keeps a
 * non-empty string `_id` (a number `_id` is kept too and named by its Lua
 * text, as store.put would) or gets a new one.
 *
 * The whole body is checked first: text that is not JSON, a top level that
 * is not an array (or `{}`), or a number too large for a double changes
 * nothing. Then the elements are stored in order; an element that is not
 * an object, or that the store refuses, stops there and the ones before it
 * stay stored, as the message says.
 */
#ifndef H1MOCK_SEED_H
#define H1MOCK_SEED_H

#include <stddef.h>

typedef struct seed_opts {
  /* Stores one document; 0 or a negative errno (-EINVAL: an id the store
   * does not take). */
  int (*put)(void *ud, const char *id, size_t idlen, const char *doc, size_t len);
  /* Writes a new id, 36 characters and a NUL. */
  void (*new_id)(void *ud, char id[37]);
  void *ud;
} seed_opts_t;

/* Stores the documents of text[0..len) through o->put and counts them in
 * *stored. Returns 0, -EINVAL with a sentence in err ("the body is not
 * JSON: ...", "element 3 is not a JSON object; nothing after it was
 * stored"), -ENOMEM, or what put returned other than -EINVAL (the message
 * says which element). */
int seed_documents(const char *text, size_t len, const seed_opts_t *o, size_t *stored, char *err,
                   size_t errlen);

#endif
