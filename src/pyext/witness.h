/* pyloot extension: witnesses (witness.c). After each collection the
 * collector hands its type table here; for types whose count grows steadily
 * one instance's path from a root is recorded into the store, within a
 * budget of GIL time. The rule, the budget and their figures are in
 * docs/witnesses.md. */
#ifndef PYLOOT_PYEXT_WITNESS_H
#define PYLOOT_PYEXT_WITNESS_H

#include "pyext.h"
#include "pyloot/store.h"
#include "typetable.h"

#define PL_WITNESS_RISES 3                  /* consecutive rising samples */
#define PL_WITNESS_TOP_CLASSES 3            /* among this many largest growing classes */
#define PL_WITNESS_TOP_OTHERS 3             /* and this many largest other growers */
#define PL_WITNESS_TOP (PL_WITNESS_TOP_CLASSES + PL_WITNESS_TOP_OTHERS)
#define PL_WITNESS_EVERY_MS (10 * 60 * 1000) /* per type, after its first witness */
#define PL_WITNESS_RETRY_MS (60 * 1000)     /* per type, after a search that found no path */
#define PL_WITNESS_GIL_SHARE 0.005          /* of wall time, under the GIL */
#define PL_WITNESS_REPR_CHARS 200

/* Called by the collector thread after a collection's sample is written:
 * collect_lock held (t is the pass just written, its type ids resolved for
 * `store`), GIL NOT held. Updates the growth of every type; when a type
 * qualifies and the budget allows, takes the GIL for the path search and
 * the descriptions, releases it, and writes the witness to the store.
 * Errors are counted (pl_witness_stats), never raised. */
void pl_witness_after_collection(pl_type_table *t, pl_store *store, const pl_incarnation *self, int64_t now_ms);
/* The store ids of the types the witnesses pick from (the
 * largest steady growers of the last passes: classes first, see top_growers
 * in witness.c), at most max,
 * into type_ids; their count. collect_lock held (the count pass). Used by
 * alloc_sites.c to trace the allocations of growing types. */
size_t pl_witness_candidates(const pl_type_table *t, uint32_t *type_ids, size_t max);
/* In a fork() child (module.c's pthread_atfork handler): forgets the
 * growth tracks the parent's collector thread may have been changing. */
void pl_witness_atfork_child(void);

/* A type that grew over PL_WITNESS_RISES of the collector's samples, at
 * most PL_WITNESS_GROWING_KEEP_MS ago, for the ranking of the retainers
 * (live_growing.c). */
#define PL_WITNESS_GROWING 8
#define PL_WITNESS_GROWING_GRACE_MS 30000
#define PL_WITNESS_GROWING_KEEP_MS (10 * 60 * 1000)
typedef struct pl_growing_type {
    PyTypeObject *tp; /* compared with the types of live objects, never dereferenced */
    char name[128];   /* its name as the history writes it, cut to fit */
    uint64_t growth;  /* instances gained over those samples */
    int64_t ago_ms;   /* how long ago those samples ended: 0 when they are the last ones */
    uint32_t type_id; /* the store's id of the type (witness.c's own) */
    uint64_t count;   /* its count at the last of those samples (witness.c's own) */
    int64_t grew_ms;  /* when that sample was taken (witness.c's own) */
} pl_growing_type;
/* Copies into out (at most max) the types whose count gained at least
 * PL_WITNESS_RISES instances over the last PL_WITNESS_RISES samples, the
 * largest gain in bytes first, then those that did over earlier samples
 * within PL_WITNESS_GROWING_KEEP_MS and have not fallen below the count
 * they reached (a leak that paused with the traffic is still the leak),
 * most recent first. None when the collector has not sampled for
 * twice its interval plus PL_WITNESS_GROWING_GRACE_MS (stopped, or never
 * started). Any thread, with or
 * without the GIL. Returns how many were copied. */
size_t pl_witness_growing(pl_growing_type *out, size_t max);

/* Adds witness_stats() to the module. 0, or -1 with an exception set. */
int pl_witness_module_exec(PyObject *module);

#endif
