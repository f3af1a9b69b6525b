/* pyloot extension: the holders of growing types in a dominator tree
 * (live_growing.c), which the biggest retainers rank first
 * (GET /api/retainers, docs/http-api.md).
 *
 * A leak is a container that grows among many that do not: by retained
 * size alone, the dicts of big modules (sys, typing) fill the first page
 * and the list a leak appends to sits below its module's dict. The types
 * the collector saw grow (pl_witness_growing) name what to look for: for
 * each, the leak suspect of its instances (pl_objgraph_suspects) that is
 * not a module or a module's __dict__, when it holds at least as many of
 * them as the type gained; ranked by the share of the type's instances
 * each holds (the leak's list holds nearly all of its type's). */
#ifndef PYLOOT_PYEXT_LIVE_GROWING_H
#define PYLOOT_PYEXT_LIVE_GROWING_H

#include "graph_int.h"
#include "witness.h"

#define PL_GROWING_ROWS 3 /* holders ranked first, at most */

/* One holder of a growing type. */
typedef struct pl_growing_holder {
    uint32_t vertex;
    pl_growing_type type; /* the growing type it holds */
    uint64_t count;       /* instances of it the holder dominates */
    uint64_t instances;   /* instances of it in the tree */
} pl_growing_holder;

/* Fills out (at most PL_GROWING_ROWS, distinct vertices) with the holders
 * of the growing types in t's tree, the largest share of its type's
 * instances first. GIL held (released while the suspects are searched; t must be
 * kept alive by the caller). Returns how many, or -1 with an exception set. */
int pl_growing_holders(PlGraphObject *t, pl_growing_holder *out);

#endif
