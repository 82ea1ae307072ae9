/* bench_ids.h - documents the store benchmarks make again from their
 * index (store_bench.c, store_gap.c), so that no array of ids inflates
 * what they measure. Header-only: store_gap.c also builds against the
 * store of another version. */
#ifndef H1MOCK_BENCH_IDS_H
#define H1MOCK_BENCH_IDS_H

#include <stdint.h>

static uint64_t mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* A version-4 UUID that is a function of i, so any id can be made again. */
static void uuid_of(uint64_t i, char out[37]) {
  static const char hex[] = "0123456789abcdef";
  unsigned char b[16];
  uint64_t a = mix(i * 2 + 1), c = mix(i * 2 + 2);
  for (int k = 0; k < 8; k++) {
    b[k] = (unsigned char)(a >> (8 * k));
    b[8 + k] = (unsigned char)(c >> (8 * k));
  }
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
  char *o = out;
  for (int k = 0; k < 16; k++) {
    if (k == 4 || k == 6 || k == 8 || k == 10)
      *o++ = '-';
    *o++ = hex[b[k] >> 4];
    *o++ = hex[b[k] & 15];
  }
  *o = '\0';
}

#endif
