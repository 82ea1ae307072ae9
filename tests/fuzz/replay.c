/* replay.c - runs a fuzz target over its regression corpus (every file in
 * FUZZ_CORPUS, or the files named on the command line), so the normal test
 * suite replays each input a fuzzer once crashed on, without libFuzzer. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay(const char *path) {
  static uint8_t buf[1 << 20];
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    perror(path);
    return 1;
  }
  size_t len = fread(buf, 1, sizeof buf, f);
  fclose(f);
  LLVMFuzzerTestOneInput(buf, len);
  return 0;
}

int main(int argc, char **argv) {
  int passed = 0, failed = 0;
  if (argc > 1) {
    for (int i = 1; i < argc; i++)
      replay(argv[i]) ? failed++ : passed++;
  } else {
    DIR *d = opendir(FUZZ_CORPUS);
    if (d == NULL) {
      perror(FUZZ_CORPUS);
      return 1;
    }
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d)) != NULL) {
      if (e->d_name[0] == '.')
        continue;
      snprintf(path, sizeof path, "%s/%s", FUZZ_CORPUS, e->d_name);
      replay(path) ? failed++ : passed++;
    }
    closedir(d);
  }
  /* A crash never gets here: the sanitizers or the signal fail the test. */
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
