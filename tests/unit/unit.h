/* unit.h - a small test runner for h1mock's C unit tests.
 *
 * Each TEST runs in its own forked process with a time limit, so a crash or
 * a hang fails that test alone and the rest still run. Assertions print both
 * sides. A test file ends with UNIT_MAIN(test_a, test_b, ...).
 *
 * Output is TAP-like: "ok N - name" / "not ok N - name", then a summary line
 * "N passed, N failed". The exit status is 0 only when every test passed.
 */
#ifndef H1MOCK_UNIT_H
#define H1MOCK_UNIT_H

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define UNIT_TIMEOUT_SECONDS 20

#define TEST(name) static void name(void)

/* Fails the test with a message, naming `line` of this file: a helper that
 * takes __LINE__ as an argument reports its caller's line. */
#define FAIL_AT(line, ...)                                                                        \
  do {                                                                                            \
    fprintf(stderr, "  %s:%d: ", __FILE__, line);                                                 \
    fprintf(stderr, __VA_ARGS__);                                                                 \
    fputc('\n', stderr);                                                                          \
    exit(1);                                                                                      \
  } while (0)

#define UNIT_FAIL(...) FAIL_AT(__LINE__, __VA_ARGS__)

#define ASSERT(cond)                                                                              \
  do {                                                                                            \
    if (!(cond))                                                                                  \
      UNIT_FAIL("assertion failed: %s", #cond);                                                   \
  } while (0)

#define ASSERT_EQ(a, b)                                                                           \
  do {                                                                                            \
    long long a_ = (long long)(a), b_ = (long long)(b);                                           \
    if (a_ != b_)                                                                                 \
      UNIT_FAIL("%s == %s: %lld != %lld", #a, #b, a_, b_);                                        \
  } while (0)

#define ASSERT_NE(a, b)                                                                           \
  do {                                                                                            \
    long long a_ = (long long)(a), b_ = (long long)(b);                                           \
    if (a_ == b_)                                                                                 \
      UNIT_FAIL("%s != %s: both are %lld", #a, #b, a_);                                           \
  } while (0)

#define ASSERT_STR_EQ(a, b)                                                                       \
  do {                                                                                            \
    const char *a_ = (a), *b_ = (b);                                                              \
    if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0)                                          \
      UNIT_FAIL("%s == %s: \"%s\" != \"%s\"", #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)");    \
  } while (0)

/* Compares a (pointer, length) pair with a C string. */
#define ASSERT_MEM_EQ(p, n, s)                                                                    \
  do {                                                                                            \
    const char *p_ = (p), *s_ = (s);                                                              \
    size_t n_ = (n);                                                                              \
    if (n_ != strlen(s_) || memcmp(p_, s_, n_) != 0)                                              \
      UNIT_FAIL("%s == %s: \"%.*s\" != \"%s\"", #p, #s, (int)n_, p_ ? p_ : "", s_);               \
  } while (0)

#define ASSERT_CONTAINS(hay, needle)                                                              \
  do {                                                                                            \
    const char *h_ = (hay), *n_ = (needle);                                                       \
    if (h_ == NULL || strstr(h_, n_) == NULL)                                                     \
      UNIT_FAIL("%s contains %s: \"%s\" does not contain \"%s\"", #hay, #needle,                  \
                h_ ? h_ : "(null)", n_);                                                          \
  } while (0)

typedef struct unit_case {
  const char *name;
  void (*fn)(void);
} unit_case_t;

static int unit_run(const unit_case_t *cases, size_t n, const char *only) {
  int passed = 0, failed = 0;
  for (size_t i = 0; i < n; i++) {
    if (only && strcmp(only, cases[i].name) != 0)
      continue;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
      perror("fork");
      return 2;
    }
    if (pid == 0) {
      alarm(UNIT_TIMEOUT_SECONDS);
      cases[i].fn();
      fflush(stdout);
      exit(0); /* not _exit: LeakSanitizer checks at exit */
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      printf("ok %zu - %s\n", i + 1, cases[i].name);
      passed++;
    } else {
      if (WIFSIGNALED(status))
        printf("not ok %zu - %s (%s)\n", i + 1, cases[i].name,
               WTERMSIG(status) == SIGALRM ? "timed out" : strsignal(WTERMSIG(status)));
      else
        printf("not ok %zu - %s\n", i + 1, cases[i].name);
      failed++;
    }
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}

#define UNIT_CASE(fn) {#fn, fn},
#define UNIT_MAIN(...)                                                                            \
  int main(int argc, char **argv) {                                                               \
    static const unit_case_t cases_[] = {UNIT_FOREACH(UNIT_CASE, __VA_ARGS__)};                   \
    return unit_run(cases_, sizeof cases_ / sizeof cases_[0], argc > 1 ? argv[1] : NULL);         \
  }

/* UNIT_FOREACH(M, a, b, c) expands to M(a) M(b) M(c); up to 64 arguments. */
#define UNIT_EXPAND(x) x
#define UNIT_FE_1(M, x) M(x)
#define UNIT_FE_2(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_1(M, __VA_ARGS__))
#define UNIT_FE_3(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_2(M, __VA_ARGS__))
#define UNIT_FE_4(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_3(M, __VA_ARGS__))
#define UNIT_FE_5(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_4(M, __VA_ARGS__))
#define UNIT_FE_6(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_5(M, __VA_ARGS__))
#define UNIT_FE_7(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_6(M, __VA_ARGS__))
#define UNIT_FE_8(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_7(M, __VA_ARGS__))
#define UNIT_FE_9(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_8(M, __VA_ARGS__))
#define UNIT_FE_10(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_9(M, __VA_ARGS__))
#define UNIT_FE_11(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_10(M, __VA_ARGS__))
#define UNIT_FE_12(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_11(M, __VA_ARGS__))
#define UNIT_FE_13(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_12(M, __VA_ARGS__))
#define UNIT_FE_14(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_13(M, __VA_ARGS__))
#define UNIT_FE_15(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_14(M, __VA_ARGS__))
#define UNIT_FE_16(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_15(M, __VA_ARGS__))
#define UNIT_FE_17(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_16(M, __VA_ARGS__))
#define UNIT_FE_18(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_17(M, __VA_ARGS__))
#define UNIT_FE_19(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_18(M, __VA_ARGS__))
#define UNIT_FE_20(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_19(M, __VA_ARGS__))
#define UNIT_FE_21(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_20(M, __VA_ARGS__))
#define UNIT_FE_22(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_21(M, __VA_ARGS__))
#define UNIT_FE_23(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_22(M, __VA_ARGS__))
#define UNIT_FE_24(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_23(M, __VA_ARGS__))
#define UNIT_FE_25(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_24(M, __VA_ARGS__))
#define UNIT_FE_26(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_25(M, __VA_ARGS__))
#define UNIT_FE_27(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_26(M, __VA_ARGS__))
#define UNIT_FE_28(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_27(M, __VA_ARGS__))
#define UNIT_FE_29(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_28(M, __VA_ARGS__))
#define UNIT_FE_30(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_29(M, __VA_ARGS__))
#define UNIT_FE_31(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_30(M, __VA_ARGS__))
#define UNIT_FE_32(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_31(M, __VA_ARGS__))
#define UNIT_FE_33(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_32(M, __VA_ARGS__))
#define UNIT_FE_34(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_33(M, __VA_ARGS__))
#define UNIT_FE_35(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_34(M, __VA_ARGS__))
#define UNIT_FE_36(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_35(M, __VA_ARGS__))
#define UNIT_FE_37(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_36(M, __VA_ARGS__))
#define UNIT_FE_38(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_37(M, __VA_ARGS__))
#define UNIT_FE_39(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_38(M, __VA_ARGS__))
#define UNIT_FE_40(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_39(M, __VA_ARGS__))
#define UNIT_FE_41(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_40(M, __VA_ARGS__))
#define UNIT_FE_42(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_41(M, __VA_ARGS__))
#define UNIT_FE_43(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_42(M, __VA_ARGS__))
#define UNIT_FE_44(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_43(M, __VA_ARGS__))
#define UNIT_FE_45(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_44(M, __VA_ARGS__))
#define UNIT_FE_46(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_45(M, __VA_ARGS__))
#define UNIT_FE_47(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_46(M, __VA_ARGS__))
#define UNIT_FE_48(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_47(M, __VA_ARGS__))
#define UNIT_FE_49(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_48(M, __VA_ARGS__))
#define UNIT_FE_50(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_49(M, __VA_ARGS__))
#define UNIT_FE_51(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_50(M, __VA_ARGS__))
#define UNIT_FE_52(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_51(M, __VA_ARGS__))
#define UNIT_FE_53(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_52(M, __VA_ARGS__))
#define UNIT_FE_54(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_53(M, __VA_ARGS__))
#define UNIT_FE_55(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_54(M, __VA_ARGS__))
#define UNIT_FE_56(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_55(M, __VA_ARGS__))
#define UNIT_FE_57(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_56(M, __VA_ARGS__))
#define UNIT_FE_58(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_57(M, __VA_ARGS__))
#define UNIT_FE_59(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_58(M, __VA_ARGS__))
#define UNIT_FE_60(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_59(M, __VA_ARGS__))
#define UNIT_FE_61(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_60(M, __VA_ARGS__))
#define UNIT_FE_62(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_61(M, __VA_ARGS__))
#define UNIT_FE_63(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_62(M, __VA_ARGS__))
#define UNIT_FE_64(M, x, ...) M(x) UNIT_EXPAND(UNIT_FE_63(M, __VA_ARGS__))
#define UNIT_FE_PICK(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16, _17,  \
                     _18, _19, _20, _21, _22, _23, _24, _25, _26, _27, _28, _29, _30, _31, _32,   \
                     _33, _34, _35, _36, _37, _38, _39, _40, _41, _42, _43, _44, _45, _46, _47,   \
                     _48, _49, _50, _51, _52, _53, _54, _55, _56, _57, _58, _59, _60, _61, _62,   \
                     _63, _64, NAME, ...)                                                         \
  NAME
#define UNIT_FOREACH(M, ...)                                                                      \
  UNIT_EXPAND(UNIT_FE_PICK(                                                                       \
      __VA_ARGS__, UNIT_FE_64, UNIT_FE_63, UNIT_FE_62, UNIT_FE_61, UNIT_FE_60, UNIT_FE_59,        \
      UNIT_FE_58, UNIT_FE_57, UNIT_FE_56, UNIT_FE_55, UNIT_FE_54, UNIT_FE_53, UNIT_FE_52,         \
      UNIT_FE_51, UNIT_FE_50, UNIT_FE_49, UNIT_FE_48, UNIT_FE_47, UNIT_FE_46, UNIT_FE_45,         \
      UNIT_FE_44, UNIT_FE_43, UNIT_FE_42, UNIT_FE_41, UNIT_FE_40, UNIT_FE_39, UNIT_FE_38,         \
      UNIT_FE_37, UNIT_FE_36, UNIT_FE_35, UNIT_FE_34, UNIT_FE_33, UNIT_FE_32, UNIT_FE_31,         \
      UNIT_FE_30, UNIT_FE_29, UNIT_FE_28, UNIT_FE_27, UNIT_FE_26, UNIT_FE_25, UNIT_FE_24,         \
      UNIT_FE_23, UNIT_FE_22, UNIT_FE_21, UNIT_FE_20, UNIT_FE_19, UNIT_FE_18, UNIT_FE_17,         \
      UNIT_FE_16, UNIT_FE_15, UNIT_FE_14, UNIT_FE_13, UNIT_FE_12, UNIT_FE_11, UNIT_FE_10,         \
      UNIT_FE_9, UNIT_FE_8, UNIT_FE_7, UNIT_FE_6, UNIT_FE_5, UNIT_FE_4, UNIT_FE_3, UNIT_FE_2,     \
      UNIT_FE_1)(M, __VA_ARGS__))

#endif
