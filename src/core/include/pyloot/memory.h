/* pyloot core: where a process's memory is (docs/store.md, "Memory").
 *
 * Each sample of a worker records its RSS split into the shallow bytes of
 * the Python objects the sample counted, the bytes the C allocator holds but
 * does not use, and the rest (native allocations, the interpreter itself,
 * stacks, C extensions, pymalloc's free blocks). Implemented in memory.c;
 * every function is thread-safe and never needs the GIL. */
#ifndef PYLOOT_MEMORY_H
#define PYLOOT_MEMORY_H

#include <stddef.h>
#include <stdint.h>

/* One sample's memory figures, in bytes. */
typedef struct pl_memory_sample {
    uint64_t rss;                  /* resident set size (/proc/self/statm) */
    uint64_t python_bytes;         /* sum of the shallow bytes of the sample's types */
    uint64_t allocator_free_bytes; /* free bytes glibc's malloc holds (mallinfo2 fordblks); 0 elsewhere */
} pl_memory_sample;

/* rss - python_bytes - allocator_free_bytes, or 0 when that is negative:
 * the memory neither Python objects nor the allocator's free lists explain.
 * The one definition every view uses. */
uint64_t pl_memory_other(const pl_memory_sample *m);

/* Fills m->rss and m->allocator_free_bytes for the calling process
 * (python_bytes is left as it is: the collector sums it from its sample).
 * Never fails: an unknown figure is 0. Cost: a read of /proc/self/statm and
 * one mallinfo2() call, which walks glibc's free lists under its arena
 * locks; a call that took over 2 ms is not repeated before 1,000 times its
 * cost has passed, the calls in between reuse its figure (process-wide
 * state, atomics). docs/store.md measures it. */
void pl_memory_measure(pl_memory_sample *m);

/* Gives the C allocator's free pages back to the system (glibc's
 * malloc_trim; nothing elsewhere), after pyloot freed large arrays of its
 * own (a heap dump's: without it, a worker of 1M objects kept about 80 MB
 * more RSS after each dump). It walks every arena's free chunks under the
 * arena's lock, so the process's mallocs may wait meanwhile: 1-8 ms on the
 * heaps of bench/bench_heapdump.py, 74 ms on a heap of 500,000 free
 * chunks. Call without the GIL. */
void pl_memory_give_back(void);

/* How a series of figures grew over a window: the values of its last slot
 * with figures minus those of its first (known = 0 when fewer than two
 * slots have figures; the growths are then 0). */
typedef struct pl_memory_growth {
    int known;
    int64_t rss;
    int64_t python_bytes;
    int64_t allocator_free_bytes;
    int64_t other_bytes;
} pl_memory_growth;

/* The growth of four aligned series of n slots (-1 where a slot has no
 * figures). The one computation that the UI (through /api/memory) and
 * `pyloot report` show. */
void pl_memory_growth_of(const int64_t *rss, const int64_t *python_bytes, const int64_t *allocator_free_bytes,
                         const int64_t *other_bytes, size_t n, pl_memory_growth *g);

/* RSS growth below this is not worth a remark (allocator and interpreter
 * noise of a live worker). */
#define PL_MEMORY_NOTABLE_GROWTH (8ll << 20)

/* 1 when RSS grew notably (PL_MEMORY_NOTABLE_GROWTH) and Python objects
 * explain less than half of it: the growth is outside Python objects
 * (native memory or allocator fragmentation). */
int pl_memory_outside_python(const pl_memory_growth *g);

#endif
