/* pyloot core: where a process's memory is (docs/store.md, "Memory").
 *
 * Each sample of a worker records its RSS split into the shallow bytes of
 * the Python objects the sample counted, the bytes the C allocator holds but
 * does not use, and the rest (native allocations, the interpreter itself,
 * stacks, C extensions, pymalloc's free blocks). Implemented in memory.c;
 * every function is thread-safe, keeps no state and never needs the GIL. */
#ifndef PYLOOT_MEMORY_H
#define PYLOOT_MEMORY_H

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
 * locks (docs/store.md measures it). */
void pl_memory_measure(pl_memory_sample *m);

#endif
