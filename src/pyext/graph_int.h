/* pyloot extension: what the three parts of the object graph share.
 *
 *   graph_build.c   building core graphs from Python objects: the snapshot
 *                   (walking the heap, exclusions, running frames), the
 *                   vertices and the edges (what tp_traverse reports);
 *   graph_labels.c  annotations: vertex descriptions and how a vertex holds
 *                   another (edge labels);
 *   graphobject.c   the _pyloot.Graph type and its methods.
 *
 * A core graph built here has the addresses of its vertex objects as keys
 * and owns one strong reference to each vertex: it is released with
 * pl_objgraph_release, never with pl_graph_free alone. Everything declared
 * here needs the GIL, except where a comment says otherwise. */
#ifndef PYLOOT_GRAPH_INT_H
#define PYLOOT_GRAPH_INT_H

#include "pyext.h"

#include <errno.h>
#include <stdint.h>

#include "pyloot/error.h"
#include "pyloot/graph.h"

static inline PyObject *pl_vertex_obj(const pl_graph *g, uint32_t v)
{
    return (PyObject *)(uintptr_t)pl_graph_key(g, v);
}

static inline uint64_t pl_obj_key(PyObject *o)
{
    return (uint64_t)(uintptr_t)o;
}

/* Sets the Python exception for a core error code (MemoryError,
 * OverflowError for PL_ETOOBIG, RuntimeError otherwise) and returns NULL. */
PyObject *pl_objgraph_raise(int rc);

/* ---- graph_build.c ---- */

/* Drops the reference the graph holds to each vertex, then frees it.
 * NULL is a no-op. */
void pl_objgraph_release(pl_graph *g);

/* A finished graph on `objects` (any iterable, or NULL for none;
 * duplicates by identity dropped) with every reference between them.
 * NULL with an exception set on failure. */
pl_graph *pl_objgraph_from_objects(PyObject *objects);

/* A finished graph of every gc-tracked object (frozen ones included) except
 * instances of `exclude` (pyloot's own graphs), plus the frame objects of
 * every thread's running frames but the `skip` innermost frames of the
 * calling thread. NULL with an exception set on failure. */
pl_graph *pl_objgraph_snapshot(PyTypeObject *exclude, long skip);

/* A finished graph of obj and everything reachable from it along gc
 * referents, tracked or not. NULL with an exception set on failure. */
pl_graph *pl_objgraph_reachable(PyObject *obj);

/* A finished graph on `vertices` (a sequence of distinct objects) whose edges
 * are the (tail index, head index) pairs of `pairs`, tails non-decreasing.
 * NULL with an exception set (ValueError for duplicates or a bad order). */
pl_graph *pl_objgraph_from_edges(PyObject *vertices, PyObject *pairs);

/* Called for a field of a frame: `name` is the field's name ("f_back",
 * "f_locals", ...) or NULL for a local variable, whose name is `local`
 * (borrowed; NULL when the code object gives none). `value` may be NULL.
 * A nonzero return stops the walk. */
typedef int (*pl_frame_field_fn)(const char *name, PyObject *local, PyObject *value, void *arg);

/* Calls fn for what a frame object holds, read from the interpreter frame.
 * `running_only`: only for a frame its thread is still running, and only the
 * fields its tp_traverse does not report (the locals are gc roots there, not
 * edges); otherwise every field pyloot can name. Returns fn's first nonzero
 * value or 0. Runs no Python code. */
int pl_objgraph_frame_fields(PyObject *frame, int running_only, pl_frame_field_fn fn, void *arg);

/* ---- graph_labels.c ---- */

/* (vertex descriptions, edges) of g, which must have its key index:
 * descriptions[v] is a str, edges[e] is (tail index, head index, label or
 * None) for edge number e. Runs none of the objects' Python code. NULL with
 * an exception set on failure. */
PyObject *pl_objgraph_annotations(const pl_graph *g);

#endif
