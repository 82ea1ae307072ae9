/* provision_list.c - what is known of each provision name, and the admin
 * API's listing of them. */
#include "provision_int.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

struct provision_entry *provision_entry(provision_t *p, const char *name) {
  for (size_t i = 0; i < p->nentries; i++)
    if (strcmp(p->entries[i].name, name) == 0)
      return &p->entries[i];
  if (p->nentries == p->capentries) {
    size_t cap = p->capentries ? p->capentries * 2 : 16;
    struct provision_entry *e = realloc(p->entries, cap * sizeof *e);
    if (e == NULL)
      return NULL;
    p->entries = e;
    p->capentries = cap;
  }
  struct provision_entry *e = &p->entries[p->nentries++];
  memset(e, 0, sizeof *e);
  snprintf(e->name, sizeof e->name, "%s", name);
  return e;
}

void provision_entries_free(provision_t *p) {
  for (size_t i = 0; i < p->nentries; i++)
    free(p->entries[i].error);
  free(p->entries);
  p->entries = NULL;
  p->nentries = p->capentries = 0;
}

/* Adds an entry for every stored NAME.lua of `dir` (so the listing shows
 * files that were never loaded). */
static void scan(provision_t *p, const char *dir) {
  DIR *d = opendir(dir);
  if (d == NULL)
    return;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    size_t n = strlen(de->d_name);
    char name[PROVISION_NAME_MAX + 1];
    if (n > 4 && strcmp(de->d_name + n - 4, ".lua") == 0 &&
        provision_name(de->d_name, n, name) == 0)
      provision_entry(p, name);
  }
  closedir(d);
}

static int cmp_entries(const void *a, const void *b) {
  return strcmp(((const struct provision_entry *)a)->name,
                ((const struct provision_entry *)b)->name);
}

static void put_time(buf_t *out, double t) {
  char stamp[TEXT_RFC3339_MS_LEN + 1];
  text_rfc3339_ms((int64_t)(t * 1000), stamp);
  buf_printf(out, "\"%s\"", stamp);
}

int provision_list(provision_t *p, buf_t *out) {
  scan(p, p->dir);
  if (p->read_only)
    scan(p, p->state_dir);
  if (p->nentries > 1)
    qsort(p->entries, p->nentries, sizeof *p->entries, cmp_entries);
  buf_puts(out, "{\"active\":");
  const char *active = p->active_name[0] ? p->active_name : SCRIPT_DEFAULT_NAME;
  text_json_string(out, active, strlen(active));
  buf_puts(out, ",\"provisions\":[");
  bool first = true;
  if (p->active_name[0] == '\0') {
    buf_printf(out,
               "{\"name\":\"" SCRIPT_DEFAULT_NAME "\",\"active\":true,\"file\":null,"
               "\"loaded_at\":null,\"rules\":%zu,\"error\":null}",
               p->active ? script_rule_count(p->active) : 0);
    first = false;
  }
  for (size_t i = 0; i < p->nentries; i++) {
    const struct provision_entry *e = &p->entries[i];
    char path[4096];
    bool stored = provision_find_file(p, e->name, path, sizeof path, NULL);
    buf_puts(out, first ? "{\"name\":" : ",{\"name\":");
    first = false;
    text_json_string(out, e->name, strlen(e->name));
    buf_printf(
        out, ",\"active\":%s,\"file\":", strcmp(e->name, p->active_name) == 0 ? "true" : "false");
    if (stored)
      text_json_string(out, path, strlen(path));
    else
      buf_puts(out, "null");
    buf_puts(out, ",\"loaded_at\":");
    if (e->loaded)
      put_time(out, e->loaded_at);
    else
      buf_puts(out, "null");
    if (e->loaded)
      buf_printf(out, ",\"rules\":%zu,\"error\":", e->rules);
    else
      buf_puts(out, ",\"rules\":null,\"error\":");
    if (e->error)
      text_json_string(out, e->error, strlen(e->error));
    else
      buf_puts(out, "null");
    buf_putc(out, '}');
  }
  return buf_puts(out, "]}\n");
}
