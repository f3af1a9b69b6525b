/* Large work arrays on transparent huge pages (see pyloot/bigarray.h). */
#include "pyloot/bigarray.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define HUGE_PAGE ((size_t)2 << 20)
#define HUGE_ORDER 9 /* a huge page is 2^9 pages of 4 KB */

/* Bytes the kernel holds free in blocks of a huge page or more
 * (/proc/buddyinfo: per zone, the free blocks of 4 KB << order), or 0 when
 * it cannot be read. A huge page taken from these needs no compaction. */
static uint64_t free_huge_bytes(void)
{
    FILE *f = fopen("/proc/buddyinfo", "re");
    if (!f)
        return 0;
    uint64_t total = 0;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char *p = strstr(line, "zone");
        if (!p)
            continue;
        p += 4;
        while (*p == ' ')
            p++;
        while (*p && *p != ' ') /* the zone's name */
            p++;
        for (int order = 0; order <= 20 && *p; order++) {
            char *end;
            unsigned long long count = strtoull(p, &end, 10);
            if (end == p)
                break;
            if (order >= HUGE_ORDER)
                total += (uint64_t)count * ((uint64_t)4096 << order);
            p = end;
        }
    }
    fclose(f);
    return total;
}

/* See bigarray.h. */
void *pl_big_hint(void *p, size_t bytes)
{
#ifdef MADV_HUGEPAGE
    if (p && bytes >= PL_BIG_MIN) {
        uintptr_t start = ((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
        uintptr_t end = ((uintptr_t)p + bytes) & ~(uintptr_t)(HUGE_PAGE - 1);
        /* Only while free huge blocks cover the range twice over: with
         * THP's defrag at "madvise" (a common default) a huge-page fault
         * that finds none compacts memory first, a stall no snapshot under
         * the GIL should risk; 4 KB pages cost less than that. */
        if (end > start && free_huge_bytes() / 2 >= end - start)
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
