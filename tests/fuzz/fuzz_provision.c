/* fuzz_provision.c - provision text -> script_load (sandbox, runtime,
 * registerRules, add_url_rule parsing) under a small instruction budget. */
#include <stdint.h>

#include "script.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  script_opts_t opts = {.loop = NULL, .dir = NULL, .max_instructions = 200000};
  script_t *s;
  char err[1024];
  if (script_load("fuzz.lua", (const char *)data, size, &opts, &s, err, sizeof err) == 0)
    script_release(s);
  return 0;
}
