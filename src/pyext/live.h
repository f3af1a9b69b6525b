/* pyloot extension: live-object queries, shared by live.c (dispatch, the
 * answer function, live_query), live_answer.c (what every query shares),
 * live_list.c (list by type), live_related.c (detail, parents, children),
 * live_path.c (why alive), live_retained.c (the dominator tree) and
 * live_tasks.c (asyncio tasks by coroutine).
 *
 * Every query follows the same order, because a borrowed pointer is only
 * valid while no Python code runs:
 *   1. (path only) take the frames of running threads and their locals:
 *      this may drop references, so it comes first;
 *   2. with automatic gc collections disabled, walk the gc-tracked objects
 *      (heap.c) doing pure C work: type match, tp_traverse scans; the
 *      path search first copies them into a libc array (the "snapshot") to
 *      make several passes;
 *   3. take strong references to the few objects the answer describes, drop
 *      every borrowed pointer, re-enable gc;
 *   4. label edges (referents.c) and describe objects (describe.c): user
 *      code may run from here on (repr).
 * An id from a request is only ever compared with addresses met in step 2
 * (tracked objects and what they refer to): it is never dereferenced.
 * Everything here runs with the GIL held, inside pl_live_answer. */
#ifndef PYLOOT_PYEXT_LIVE_H
#define PYLOOT_PYEXT_LIVE_H

#include "describe.h"
#include "pyext.h"
#include "util.h"

#define PL_MAX_LIMIT 10000
#define PL_MAX_OFFSET 1000000000ULL

/* One answer being built. */
typedef struct pl_answer {
    const pl_live_query *q;
    pl_buf *body;
    int status;
    pl_reprer repr;
    pl_objvec snap;     /* borrowed, valid until step 4 */
    int gc_was_enabled; /* gc was enabled before step 2 */
} pl_answer;

/* {"pid": ... : the start of every document. */
void pl_answer_begin_doc(pl_answer *a);
/* Replaces the body with {"pid", "error": msg} and sets the status. */
void pl_answer_error(pl_answer *a, int status, const char *msg);
/* The 404 document of an object that is gone. */
void pl_answer_gone(pl_answer *a);
/* Step 2 for queries that need several passes: disables gc and fills
 * a->snap. 0, or -1 with an exception set. */
int pl_answer_snapshot(pl_answer *a);
/* Ends step 2: drops the snapshot and re-enables gc if it was enabled. */
void pl_answer_end_snapshot(pl_answer *a);

/* 1 once the interpreter is finalizing: a foreign thread must not wait for
 * the GIL then. Callable without the GIL. */
int pl_live_finalizing(void);

/* 1 when o has a tp_traverse to ask for its referents. */
int pl_has_traverse(PyObject *o);

/* Finds the object q->id among the snapshot, then among the referents of
 * the snapshot (untracked objects such as str or int). Borrowed, or NULL. */
PyObject *pl_answer_find(pl_answer *a);

/* Finds q->id (and, when parents is given, its parents in address order,
 * borrowed) in one walk without a snapshot array, gc disabled until
 * pl_answer_end_snapshot. Borrowed result or NULL; *err set when out of
 * memory. */
PyObject *pl_answer_scan_for_id(pl_answer *a, pl_objvec *parents, int *err);

/* ,"total":..,"offset":..,"limit":.. */
void pl_answer_page_fields(pl_answer *a, uint64_t total);

/* ,"objects":[summary, ...] of v[0..n) (references held by the caller);
 * with labels (may be NULL), summary i also gets "via": labels[i] (a JSON
 * null when labels[i] is NULL); with redacted (may be NULL), summary i shows
 * "<redacted>" for its repr where redacted[i] is set. */
void pl_answer_objects(pl_answer *a, PyObject **v, size_t n, char **labels,
                       const unsigned char *redacted);

/* The referents of every snapshot object recorded by a first pass over the
 * heap (a CSR), so that later passes scan flat arrays instead of calling
 * tp_traverse again: about four times faster per pass. Past PL_CSR_MAX_EDGES
 * (64 MB of pointers) recording stops (`on` drops to 0) and later passes
 * traverse again. Used by the why-alive search and the referrers graph. */
#define PL_CSR_MAX_EDGES ((size_t)8 << 20)
typedef struct pl_csr {
    PyObject **edge;
    size_t n, cap;
    size_t *start; /* referents of snapshot object i: edge[start[i] .. start[i + 1]) */
    int on;
} pl_csr;
/* Appends one referent, growing the array; past the bound (or out of
 * memory) recording stops. live_path.c. */
void pl_csr_add(pl_csr *c, PyObject *child);

/* The why-alive search (live_path.c), also used by the witnesses: the
 * shortest chain from a root (a module, a running thread's frame) to
 * `target`, over a->snap (step 2 of the order above; fr collected in step
 * 1). Fills `path` with borrowed pointers, root first, target last.
 * Returns 1 found, 0 none (path empty), -1 out of memory (no exception set). */
struct pl_frames;
int pl_path_find(pl_answer *a, const struct pl_frames *fr, PyObject *target, pl_objvec *path);

/* Step 4 of a path: labels each step (*edges_out[i]: how step i - 1 holds
 * step i; [0] unused) and folds "__dict__" + "value of key 'k'" into
 * "attribute 'k'", dropping the dict's reference. `path` holds strong
 * references. *edges_out is calloc'ed (free it after pl_edge_clear of each
 * of the path->n entries). 0, or -1 out of memory (no exception set). */
struct pl_edge;
int pl_path_label(pl_objvec *path, struct pl_edge **edges_out);

int pl_answer_list(pl_answer *a);    /* live_list.c */
int pl_answer_detail(pl_answer *a);  /* live_related.c */
int pl_answer_related(pl_answer *a); /* live_related.c: parents or children */
int pl_answer_path(pl_answer *a);    /* live_path.c */
int pl_answer_graph(pl_answer *a);   /* live_graph.c: limit is the depth */
/* live_retained.c: PL_LIVE_RETAINED, PL_LIVE_RETAINERS, PL_LIVE_SUSPECTS
 * (the dominator tree of a snapshot, kept a few seconds between requests). */
int pl_answer_retained(pl_answer *a);
/* heap_dump.c: PL_LIVE_HEAPDUMP, the file image of a heap dump as the body. */
int pl_answer_heapdump(pl_answer *a);
/* live_tasks.c: PL_LIVE_TASKS, the asyncio tasks grouped by coroutine. */
int pl_answer_tasks(pl_answer *a);

#endif
