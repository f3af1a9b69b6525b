/* Where the calling process's memory is: RSS and the C allocator's free
 * bytes (see pyloot/memory.h). The Python side (python_bytes) is the
 * collector's sum over its sample. */
#include "pyloot/memory.h"

#include <malloc.h>
#include <stdatomic.h>
#include <time.h>

#include "pyloot/proc.h"

/* See memory.h. */
uint64_t pl_memory_other(const pl_memory_sample *m)
{
    uint64_t explained = m->python_bytes + m->allocator_free_bytes;

    if (explained < m->python_bytes || explained >= m->rss)
        return 0;
    return m->rss - explained;
}

/* Free bytes inside glibc's heaps: fordblks counts every free chunk of
 * every arena, the top chunk (the part of the heap above the last used
 * chunk, which malloc_trim could give back) included. mallinfo2 exists from
 * glibc 2.33; mallinfo's int fields wrap past 2 GiB, so older glibc and
 * other libcs report 0 rather than a wrong figure. */
static uint64_t allocator_free(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 mi = mallinfo2();

    return (uint64_t)mi.fordblks;
#else
    return 0;
#endif
}

/* See memory.h. */
void pl_memory_give_back(void)
{
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}

/* mallinfo2 walks every free chunk under the arena locks: on a heap of
 * 500,000 free chunks it took 100 ms (docs/store.md, "Memory"), and the
 * application's mallocs wait meanwhile. A call that took longer than
 * MALLINFO_QUICK_US is not repeated before 1,000 times its cost has passed
 * (at most 0.1 % of the time); the samples in between reuse its figure. */
#define MALLINFO_QUICK_US 2000
static _Atomic int64_t mallinfo_next_ms;
static _Atomic uint64_t mallinfo_last;

static int64_t monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* See memory.h. */
void pl_memory_measure(pl_memory_sample *m)
{
    int64_t now = pl_now_ms(), t0, cost_us;

    m->rss = pl_proc_rss();
    if (now >= mallinfo_next_ms) {
        t0 = monotonic_us();
        mallinfo_last = allocator_free();
        cost_us = monotonic_us() - t0;
        mallinfo_next_ms = cost_us > MALLINFO_QUICK_US ? now + cost_us : 0;
    }
    m->allocator_free_bytes = mallinfo_last;
}

/* See memory.h. */
void pl_memory_growth_of(const int64_t *rss, const int64_t *python_bytes, const int64_t *allocator_free_bytes,
                         const int64_t *other_bytes, size_t n, pl_memory_growth *g)
{
    size_t first = n, last = n;

    for (size_t i = 0; i < n; i++) {
        if (rss[i] < 0)
            continue;
        if (first == n)
            first = i;
        last = i;
    }
    g->known = first < n && last > first;
    if (!g->known) {
        g->rss = g->python_bytes = g->allocator_free_bytes = g->other_bytes = 0;
        return;
    }
    g->rss = rss[last] - rss[first];
    g->python_bytes = python_bytes[last] - python_bytes[first];
    g->allocator_free_bytes = allocator_free_bytes[last] - allocator_free_bytes[first];
    g->other_bytes = other_bytes[last] - other_bytes[first];
}

/* See memory.h. */
int pl_memory_outside_python(const pl_memory_growth *g)
{
    return g->known && g->rss >= PL_MEMORY_NOTABLE_GROWTH && g->python_bytes < g->rss / 2;
}
