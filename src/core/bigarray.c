/* Large work arrays on transparent huge pages (see pyloot/bigarray.h). */
#include "pyloot/bigarray.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#define HUGE_PAGE ((uintptr_t)2 << 20)

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

/* See bigarray.h. */
void *pl_big_malloc(size_t bytes)
{
    return pl_big_hint(malloc(bytes), bytes);
}
