/* pyloot extension: what the three parts of the object graph share.
 *
 *   graph_build.c   building core graphs from Python objects: the snapshot
 *                   (walking the heap, exclusions, running frames read by
 *                   heap.c), the vertices and the edges (what tp_traverse
 *                   reports);
 *   graph_labels.c  annotations: vertex descriptions and how a vertex holds
 *                   another (edge labels: referents.c's);
 *   graph_heapinfo.c  shallow sizes (sizeof.c's), references from outside
 *                   the graphs, and where untracked objects belong (for
 *                   retained sizes);
 *   graphobject.c   the _pyloot.Graph type and its methods;
 *   graph_components.c  the sequence strongly_connected_components() returns.
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

#include "pyloot/dominators.h"
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

struct pl_heapinfo;
struct pl_objgraph_dom;
struct pl_snap_notes;

/* A _pyloot.Graph. Every field is protected by the GIL; `graph` is immutable
 * once set (until tp_clear), `heap` and `dom` once set. */
typedef struct PlGraphObject {
    PyObject_HEAD
    pl_graph *graph;             /* owned; NULL only after tp_clear */
    struct pl_heapinfo *heap;    /* owned; a snapshot's, or made on first need */
    struct pl_objgraph_dom *dom; /* owned; made by the first dominator query */
    struct PlGraphObject *prev, *next; /* the list of live Graphs (pl_objgraph_each) */
} PlGraphObject;

/* graphobject.c: wraps a finished graph into a new instance of tp (a Graph
 * type). Takes ownership of g (freed on failure, with its references when
 * owns_refs). When owns_refs is 0, a reference to every vertex is taken
 * here (subgraphs of a live graph). NULL with an exception set. */
PyObject *pl_objgraph_wrap(PyTypeObject *tp, pl_graph *g, int owns_refs);
/* graphobject.c: the core graph of a Graph object, or NULL with ValueError
 * set when it was cleared. Borrowed: valid while the object holds it. */
pl_graph *pl_objgraph_graph(PyObject *graph);

/* graph_components.c: a new Components sequence over the SCC partition c of
 * Graph `graph`, listing components ids[0..k) (ids NULL: all, in order).
 * Takes ownership of c's arrays (c is zeroed) and of ids, also on failure.
 * NULL with an exception set. */
PyObject *pl_components_new(PyObject *graph, pl_graph_components *c, uint32_t *ids, size_t k);
/* graph_components.c: creates the Components type (module state and
 * module attribute). */
int pl_components_module_exec(PyObject *module);

/* graph_live.c: the list of live Graph objects. A Graph is linked when it
 * gets its graph and unlinked when it is deallocated. GIL held. */
void pl_objgraph_link(PlGraphObject *self);
void pl_objgraph_unlink(PlGraphObject *self);

/* graph_live.c: calls fn(g, arg) for the core graph of every live Graph
 * object (cleared ones left out). fn must not create or free graphs. GIL held. */
void pl_objgraph_each(void (*fn)(const pl_graph *g, void *arg), void *arg);

/* A new _pyloot.Graph holding a snapshot of the whole heap and what it saw
 * of it (heap set, dom not yet), for the live routes of the dominator tree
 * (live_retained.c): like every Graph it is left out of other snapshots and
 * its references are discounted by them. `notes`: see pl_snap_notes (NULL:
 * none). NULL with an exception set. */
PlGraphObject *pl_objgraph_snapshot_object(struct pl_snap_notes *notes);

/* ---- graph_build.c ---- */

/* What a snapshot's caller notes on each edge while the snapshot's edge
 * pass has the edge's tail in the cache (the heap dump's labels: a second
 * read of every object costs about half a snapshot again). NULL notes: no
 * hook. */
typedef struct pl_snap_notes {
    /* Once, with the number of vertices, before the edge pass. 0 or an
     * errno value (the snapshot fails with it). */
    int (*begin)(size_t n, void *arg);
    /* For vertex v (object o) right after its traversal: refs[0..k) are
     * the keys of every reference it visited, in order, vertices or not.
     * It writes notes[i] for each; the edge made from refs[i] keeps it
     * (references to other objects are dropped with theirs). refs and
     * notes are NULL when the references did not stay together (a vertex
     * of thousands of references): its edges' notes are then unset. Runs
     * no Python code and creates no gc-tracked object (the snapshot's
     * walk is done, not its edges). 0 or an errno value. */
    int (*vertex)(uint32_t v, PyObject *o, const uint64_t *refs, size_t k, uint32_t *notes, void *arg);
    void *arg;
    /* Set by a snapshot that succeeded: the notes in edge order, one more
     * than the edges, owned by the caller (free). */
    uint32_t *edge_note;
} pl_snap_notes;

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
 * calling thread. Vertices are numbered in address order (the graph comes
 * from pl_graph_adopt_sorted). *heap gets what the snapshot saw of the heap
 * (see pl_heapinfo), owned by the caller. `notes`, when not NULL, are
 * taken on the edges during the snapshot (pl_snap_notes). NULL with an
 * exception set on failure. */
pl_graph *pl_objgraph_snapshot(PyTypeObject *exclude, long skip, int how,
                               struct pl_heapinfo **heap, struct pl_snap_notes *notes);
/* `how` the snapshot finds a referent's vertex: PL_SNAPSHOT_AUTO (by blocks
 * of memory when the vertices are dense enough, else by address); the two
 * others force one way (for tests). */
#define PL_SNAPSHOT_AUTO 0
#define PL_SNAPSHOT_BLOCKS 1
#define PL_SNAPSHOT_ADDRESSES 2

/* A finished graph of obj and everything reachable from it along gc
 * referents, tracked or not. NULL with an exception set on failure. */
pl_graph *pl_objgraph_reachable(PyObject *obj);

/* A finished graph on `vertices` (a sequence of distinct objects) whose edges
 * are the (tail index, head index) pairs of `pairs`, tails non-decreasing.
 * NULL with an exception set (ValueError for duplicates or a bad order). */
pl_graph *pl_objgraph_from_edges(PyObject *vertices, PyObject *pairs);

/* ---- graph_heapinfo.c ---- */

/* Untracked objects with more references than this are given to the root
 * without counting their holders. */
#define PL_HOLDER_LIMIT 64

/* What a graph saw of the heap when it was built, for roots and retained
 * sizes. Plain C memory, immutable once made; freed with pl_heapinfo_free.
 * The untracked objects are those the vertices refer to that are not
 * vertices themselves (str, bytes, int, ... and untracked containers). */
typedef struct pl_heapinfo {
    size_t n;              /* vertices */
    uint32_t *outside;     /* n: v's reference count less the references
                            * pyloot's graphs hold (one per graph containing
                            * v), saturated at UINT32_MAX */
    uint64_t *size;        /* n: v's shallow size (pl_sizeof) plus the
                            * untracked objects only v refers to */
    size_t ngroups;        /* untracked objects referred to only by vertices,
                            * by several of them: */
    uint32_t *group_off;   /* ngroups + 1 offsets into group_holder */
    uint32_t *group_holder; /* their distinct holders, ascending */
    uint64_t *group_size;  /* ngroups: their sizes */
    uint64_t root_size;    /* untracked objects also referred to from elsewhere */
} pl_heapinfo;

/* Frees h; NULL is a no-op. No GIL needed. */
void pl_heapinfo_free(pl_heapinfo *h);
/* Bytes held by h. */
size_t pl_heapinfo_memory(const pl_heapinfo *h);

/* Gathers a pl_heapinfo while a graph's n vertices are traversed:
 * pl_heapinfo_vertex for each vertex, pl_heapinfo_untracked for each edge to
 * an object that is not a vertex, then pl_heapinfo_end once the graph is
 * finished (or pl_heapinfo_abort). No Python code may run in between: the
 * untracked objects are read later in batches. */
typedef struct pl_heapinfo_builder pl_heapinfo_builder;
/* Returns 0 or ENOMEM. */
int pl_heapinfo_begin(pl_heapinfo_builder **b, size_t n);
void pl_heapinfo_vertex(pl_heapinfo_builder *b, uint32_t v, PyObject *o);
void pl_heapinfo_untracked(pl_heapinfo_builder *b, uint32_t holder, PyObject *o);
/* Finishes: g is the finished graph (with its key index) whose vertices
 * were recorded. Frees b. Returns 0 (*out set) or ENOMEM. */
int pl_heapinfo_end(pl_heapinfo_builder *b, const pl_graph *g, pl_heapinfo **out);
/* Frees b and what it gathered; NULL is a no-op. */
void pl_heapinfo_abort(pl_heapinfo_builder *b);

/* The pl_heapinfo of a graph that is not a snapshot, read now: g must have
 * its key index. NULL with an exception set on failure. */
pl_heapinfo *pl_objgraph_heapinfo(const pl_graph *g);

/* ---- graph_labels.c ---- */

/* (vertex descriptions, edges) of g, which must have its key index:
 * descriptions[v] is a str, edges[e] is (tail index, head index, label or
 * None) for edge number e. Runs none of the objects' Python code. NULL with
 * an exception set on failure. */
PyObject *pl_objgraph_annotations(const pl_graph *g);

/* How tail holds the head of edge e: the label pl_objgraph_annotations
 * gives it (valid during the call), or NULL for none. A negative return
 * (exception set) stops. */
struct pl_edge;
typedef int (*pl_edge_label_fn)(uint32_t e, const struct pl_edge *label, void *arg);
/* For each vertex v of g (key index needed) in order: vertex_fn(v, NULL,
 * arg) if given, then fn(e, label, arg) for each of its out-edges e in
 * order; an edge may be given twice, the second label replacing the first.
 * Runs no Python code of the objects. 0, or -1 with an exception set. */
int pl_objgraph_edge_labels(const pl_graph *g, pl_edge_label_fn vertex_fn, pl_edge_label_fn fn, void *arg);
/* The same for the vertices only[0..nonly) alone; a vertex_fn that returns
 * 1 leaves that vertex's edges out. */
int pl_objgraph_edge_labels_of(const pl_graph *g, const uint32_t *only, size_t nonly, pl_edge_label_fn vertex_fn,
                               pl_edge_label_fn fn, void *arg);
/* The labels of refs[0..k) (the keys of the references obj's traversal
 * visited, in that order) when pl_referents_each finds them in the same
 * order, which is the rule for instances and small dicts: fn(i, label, arg)
 * for each i, the label being the one pl_objgraph_edge_labels gives the
 * edge made from refs[i]. Returns 1 when every reference got its label; 0
 * when they do not come in order, or fn returned 1 (a label it cannot take
 * now): the general way must label them; -1 when fn failed (its error).
 * For small k (at most 8 references); runs no Python code. Frames and
 * types are always 0. */
int pl_objgraph_stream_labels(PyObject *obj, const uint64_t *refs, size_t k, pl_edge_label_fn fn, void *arg);
/* The description pl_objgraph_annotations gives obj (a new str), or NULL
 * with an exception set. Runs no Python code of obj's class. */
PyObject *pl_objgraph_describe(PyObject *obj);
/* 1 when obj's description depends on its type alone (an instance of a
 * class: "object\nmodule.Name"), so that a caller may reuse it for every
 * instance of the type; else 0. */
int pl_objgraph_described_by_type(PyObject *obj);

/* ---- graph_dom.c ----
 *
 * The dominator tree of a graph, its retained sizes and leak suspects, as C
 * data: what ObjectGraph's methods convert, and what a live HTTP route can
 * use as is (pl_objgraph_snapshot, pl_objgraph_mark_type under the GIL, then
 * pl_objgraph_dom_build and pl_objgraph_suspects without it). */

typedef struct pl_objgraph_dom pl_objgraph_dom;

/* Builds the dominator tree of g (finished, with its in-edges: see
 * pl_graph_ensure_reverse) from the roots h implies, and the retained size
 * of every vertex. No GIL needed: reads only g and h, which must not change
 * meanwhile. Returns 0 (*out owned by the caller) or ENOMEM. */
int pl_objgraph_dom_build(const pl_graph *g, const pl_heapinfo *h, pl_objgraph_dom **out);
/* pl_objgraph_dom_build for a caller that needs h no more: on success the
 * tree and the retained sizes are made in h's per-vertex arrays (written
 * by the snapshot already, so their pages cost no faults again), which it
 * takes; h is then only good for pl_heapinfo_free, on failure too (its
 * counts of outside references may have been overwritten). */
int pl_objgraph_dom_build_consume(const pl_graph *g, pl_heapinfo *h, pl_objgraph_dom **out);

/* Frees d; NULL is a no-op. No GIL needed. */
void pl_objgraph_dom_free(pl_objgraph_dom *d);

/* Retained size of vertex v in bytes: its dominator subtree's shallow sizes
 * plus the untracked objects placed in it; for PL_DOM_ROOT, everything. */
uint64_t pl_objgraph_retained(const pl_objgraph_dom *d, uint32_t v);

/* Immediate dominator of v: a vertex, or PL_DOM_ROOT for a root. */
uint32_t pl_objgraph_idom(const pl_objgraph_dom *d, uint32_t v);

/* How many roots the tree hangs from: *counted found by reference counts,
 * *added given to vertices no counted root reaches. */
void pl_objgraph_dom_roots(const pl_objgraph_dom *d, size_t *counted, size_t *added);

/* Bytes held by d (tree and retained sizes). */
size_t pl_objgraph_dom_memory(const pl_objgraph_dom *d);

/* The children of v (or PL_DOM_ROOT: the roots) in the dominator tree,
 * largest retained size first: *out is malloc'ed (free() it), *n its
 * length. Returns 0 or ENOMEM. Not thread-safe (callers hold the GIL). */
int pl_objgraph_dom_children(const pl_objgraph_dom *d, uint32_t v, uint32_t **out, size_t *n);

/* v and every vertex v dominates, v first and then breadth-first down the
 * tree: *out is malloc'ed, *n its length. Returns 0 or ENOMEM. */
int pl_objgraph_dominated(const pl_objgraph_dom *d, uint32_t v, uint32_t **out, size_t *n);

/* A leak suspect: the accumulation point of a type's instances. */
typedef struct pl_suspect {
    uint32_t vertex;   /* the suspect (never an instance of the type itself) */
    uint64_t count;    /* instances of the type it dominates */
    uint64_t retained; /* its retained size in bytes */
    uint32_t *path;    /* a shortest reference path from its top-level dominator
                        * (a root) to it, root first; owned by the suspect */
    size_t npath;
} pl_suspect;

/* Up to `want` suspects for the instances marked in mark[0..order(g)): the
 * unmarked vertices ranked by what their dominator-tree children bring: a
 * marked child, every marked vertex it dominates (a chain of instances
 * counts for its holder); an unmarked child, 1 if it dominates any (the list
 * a leak appends to scores its length; the frame or module holding that
 * list scores 1 for it). Ties go to the larger count, then the deeper
 * vertex. *out is freed with pl_objgraph_suspects_free. No GIL needed.
 * Returns 0 or ENOMEM. */
int pl_objgraph_suspects(const pl_graph *g, const pl_objgraph_dom *d, const uint8_t *mark,
                         size_t want, pl_suspect **out, size_t *nout);
/* Frees n suspects and their paths; NULL is a no-op. */
void pl_objgraph_suspects_free(pl_suspect *s, size_t n);

/* mark[v] = 1 for the vertices whose exact type is `type_or_name` (a type,
 * or a str: the type's __name__, "module.QualName" or tp_name), else 0.
 * GIL held; runs no Python code. -1 with an exception set (TypeError for
 * another argument). */
int pl_objgraph_mark_type(const pl_graph *g, PyObject *type_or_name, uint8_t *mark);

#endif
