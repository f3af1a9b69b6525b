/* pyloot core: large work arrays backed by transparent huge pages.
 *
 * A heap snapshot of a million objects and its dominator tree fill tens of
 * megabytes of fresh arrays; with 4 KB pages every page costs a fault (about
 * 1.3 us here, a third of the whole snapshot + dominators on a heap of small
 * objects). pl_big_hint asks the kernel for 2 MB pages on the 2 MB-aligned
 * part of an array obtained from malloc/realloc (so free and realloc stay as
 * they are): one fault per 2 MB. It only advises: on kernels or settings
 * without transparent huge pages (THP "never") nothing changes, arrays
 * under PL_BIG_MIN bytes are left alone, and no advice is given unless the
 * kernel has free 2 MB blocks for twice the range (/proc/buddyinfo), so
 * that a fault never waits for memory to be compacted into a huge page.
 * Call it before the first write. */
#ifndef PYLOOT_BIGARRAY_H
#define PYLOOT_BIGARRAY_H

#include <stddef.h>

/* Arrays smaller than this are not advised: the 2 MB-aligned part of a
 * smaller one is empty. */
#define PL_BIG_MIN ((size_t)2 << 20)

/* Advises huge pages for [p, p + bytes); returns p. p may be NULL. */
void *pl_big_hint(void *p, size_t bytes);

/* malloc(bytes), advised as above. */
void *pl_big_malloc(size_t bytes);

/* calloc(n, size), advised before it is zeroed (calloc may zero, and so map,
 * the pages before a hint could be given). NULL when n * size overflows. */
void *pl_big_calloc(size_t n, size_t size);

#endif
