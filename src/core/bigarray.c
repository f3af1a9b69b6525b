/* Large work arrays on transparent huge pages (see pyloot/bigarray.h). */
#include "pyloot/bigarray.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define HUGE_PAGE ((size_t)2 << 20)

/* See bigarray.h. */
void *pl_big_hint(void *p, size_t bytes)
{
#ifdef MADV_HUGEPAGE
    if (p && bytes >= PL_BIG_MIN) {
        uintptr_t start = ((uintptr_t)p + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
        uintptr_t end = ((uintptr_t)p + bytes) & ~(HUGE_PAGE - 1);
        if (end > start)
            (void)madvise((void *)start, end - start, MADV_HUGEPAGE); /* advice only */
    }
#endif
    return p;
}

/* See bigarray.h. Aligned on a huge page and rounded up to whole ones, so
 * that no part of the array is left on 4 KB pages (a 4 MB array anywhere
 * would have about a quarter of its pages outside its aligned part). */
void *pl_big_malloc(size_t bytes)
{
    if (bytes < PL_BIG_MIN || bytes > SIZE_MAX - HUGE_PAGE)
        return malloc(bytes);
    size_t whole = (bytes + HUGE_PAGE - 1) & ~(size_t)(HUGE_PAGE - 1);
    return pl_big_hint(aligned_alloc(HUGE_PAGE, whole), whole);
}

/* See bigarray.h. */
void *pl_big_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    if (n * size < PL_BIG_MIN)
        return calloc(n, size);
    void *p = pl_big_malloc(n * size);
    return p ? memset(p, 0, n * size) : NULL;
}
