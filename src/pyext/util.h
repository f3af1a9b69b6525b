/* pyloot extension: small helpers every part shares (hashing, a clock, GIL time,
 * libc containers of object pointers). Plain C memory, no Python objects:
 * usable with or without the GIL. */
#ifndef PYLOOT_PYEXT_UTIL_H
#define PYLOOT_PYEXT_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "pyloot/hash.h"

/* A mixer for pointer keys of open-addressing tables: addresses are
 * aligned, so their low bits alone are poor. */
static inline size_t pl_hash_ptr(uintptr_t p)
{
    return (size_t)pl_hash_mix((uint64_t)p);
}

/* The hash of a NUL-terminated string for tables indexed by the low bits. */
static inline size_t pl_hash_str(const char *str)
{
    uint64_t h = pl_fnv1a64(str, strlen(str));
    return (size_t)(h ^ (h >> 29));
}

/* Seconds on the monotonic clock. */
static inline double pl_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* GIL time of pyloot's own threads (the collector thread, the remote poll
 * thread), for pyloot_gil_held_seconds_total. A thread marks itself once
 * with pl_gil_account_thread(); each GIL-held section reads the monotonic
 * clock after taking the GIL and before releasing it and hands the
 * difference to pl_gil_held_add, which counts it on marked threads only (the
 * same code run by the app's request threads is not pyloot's own cost).
 * Process-wide, atomic: any thread may call these. */
void pl_gil_account_thread(void);
/* Adds seconds held (on a marked thread; otherwise nothing). */
void pl_gil_held_add(double seconds);
/* The total so far, in microseconds. */
uint64_t pl_gil_held_us(void);
/* Starts from 0 again (a forked child is a new incarnation). */
void pl_gil_held_reset(void);

/* Writes one line (a newline is added) to stderr in a single write(), so
 * that lines of several workers sharing a log never interleave. For the
 * fault messages of docs/store.md; callable with or without the GIL. */
void pl_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

struct _object;

/* A growable array of object pointers in libc memory. Whether the pointers
 * are borrowed or owned is said where each one is declared. Not
 * thread-safe; its owner frees it with pl_objvec_free. */
typedef struct pl_objvec {
    struct _object **v;
    size_t n, cap;
} pl_objvec;

/* Appends o. Returns 0, or -1 when out of memory (the array is unchanged). */
int pl_objvec_push(pl_objvec *a, struct _object *o);
/* Frees the array (never the objects) and empties it. */
void pl_objvec_free(pl_objvec *a);
/* qsort comparator ordering object pointers by address. */
int pl_cmp_addr(const void *a, const void *b);

/* Open-addressing map from an address (never 0) to a 32-bit value, in libc
 * memory. Not thread-safe; freed by pl_ptrmap_free (a no-op on a zeroed map). */
typedef struct pl_ptrmap {
    uintptr_t *keys; /* 0: empty slot */
    uint32_t *vals;
    size_t cap, n;   /* cap is a power of two */
} pl_ptrmap;

/* Sizes m for about `expected` keys. Returns 0, or -1 when out of memory. */
int pl_ptrmap_init(pl_ptrmap *m, size_t expected);
void pl_ptrmap_free(pl_ptrmap *m);
/* Inserts k -> v unless k is present: 1 inserted, 0 present, -1 out of memory. */
int pl_ptrmap_add(pl_ptrmap *m, uintptr_t k, uint32_t v);
/* 1 and *v set when k is present, else 0. */
int pl_ptrmap_get(const pl_ptrmap *m, uintptr_t k, uint32_t *v);
/* The value slot of a present key k (NULL when absent), to change it in place. */
uint32_t *pl_ptrmap_slot(pl_ptrmap *m, uintptr_t k);

#endif
