/* Where the calling process's memory is: RSS and the C allocator's free
 * bytes (see pyloot/memory.h). The Python side (python_bytes) is the
 * collector's sum over its sample. */
#include "pyloot/memory.h"

#include <malloc.h>

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
void pl_memory_measure(pl_memory_sample *m)
{
    m->rss = pl_proc_rss();
    m->allocator_free_bytes = allocator_free();
}
