/* A tiny assert header for the C tests: each CHECK prints file:line and, for
 * CHECK_OK, the error string, then fails the test. */
#ifndef PYLOOT_TEST_H
#define PYLOOT_TEST_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pyloot/error.h"

static int test_failures;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            test_failures++;                                                        \
        }                                                                           \
    } while (0)

#define CHECK_OK(expr)                                                              \
    do {                                                                            \
        int rc_ = (expr);                                                           \
        if (rc_ != 0) {                                                             \
            fprintf(stderr, "%s:%d: %s returned %d: %s\n", __FILE__, __LINE__, #expr, \
                    rc_, pl_strerror(rc_));                                         \
            test_failures++;                                                        \
        }                                                                           \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                          \
    do {                                                                            \
        long long a_ = (long long)(a), b_ = (long long)(b);                         \
        if (a_ != b_) {                                                             \
            fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n", __FILE__,   \
                    __LINE__, #a, a_, #b, b_);                                      \
            test_failures++;                                                        \
        }                                                                           \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                          \
    do {                                                                            \
        const char *a_ = (a), *b_ = (b);                                            \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                    \
            fprintf(stderr, "%s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__,     \
                    __LINE__, #a, a_ ? a_ : "(null)", b_ ? b_ : "(null)");          \
            test_failures++;                                                        \
        }                                                                           \
    } while (0)

/* Runs one test function and reports it. */
#define RUN(fn)                                                                     \
    do {                                                                            \
        int before_ = test_failures;                                                \
        fn();                                                                       \
        fprintf(stderr, "%s %s\n", test_failures == before_ ? "ok  " : "FAIL", #fn); \
    } while (0)

static inline int test_rm_entry_(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* Makes a fresh directory /tmp/pyloot-test-XXXXXX, its name in buf (len
 * at least 24); exits 2 when it cannot. Returns buf. */
static inline char *make_dir_at(char *buf, size_t len)
{
    snprintf(buf, len, "/tmp/pyloot-test-XXXXXX");
    if (!mkdtemp(buf)) {
        perror("mkdtemp");
        exit(2);
    }
    return buf;
}

/* make_dir_at into a static buffer that the next call overwrites. */
static inline char *make_dir(void)
{
    static char dir[64];
    return make_dir_at(dir, sizeof dir);
}

/* Removes a directory and everything below it (links not followed). */
static inline void remove_dir(const char *dir)
{
    nftw(dir, test_rm_entry_, 16, FTW_DEPTH | FTW_PHYS);
}

#define TEST_EXIT() (test_failures ? (fprintf(stderr, "%d check(s) failed\n", test_failures), 1) : 0)

#endif
