/* The object graph (refcycle API) for Python: the _pyloot.Graph type and
 * its methods. Each method parses its arguments, makes one call into the
 * core (pyloot/graph.h) or into graph_build.c / graph_labels.c, and converts
 * the result. Over 800 lines because the refcycle API has some forty
 * methods, each a short function of its own.
 *
 * A Graph owns one finished core graph whose keys are the addresses of its
 * vertex objects and which holds one strong reference to each vertex (see
 * graph_int.h). Everything here runs with the GIL held, except the core
 * algorithms on large graphs, which run with it released on immutable
 * arrays. */
#include "graph_int.h"

#include <stdlib.h>

#include "pyloot/error.h"

/* Graphs at least this large run their algorithms without the GIL. */
#define NOGIL_THRESHOLD 50000

/* See graph_int.h. */
PyObject *pl_objgraph_wrap(PyTypeObject *tp, pl_graph *g, int owns_refs)
{
    if (!owns_refs) {
        size_t n = pl_graph_order(g);
        for (uint32_t v = 0; v < n; v++)
            Py_INCREF(pl_vertex_obj(g, v));
    }
    PlGraphObject *self = (PlGraphObject *)tp->tp_alloc(tp, 0);
    if (!self) {
        pl_objgraph_release(g);
        return NULL;
    }
    self->graph = g;
    pl_objgraph_link(self);
    return (PyObject *)self;
}

/* Wraps a graph built by graph_build.c (NULL: the error is already set). */
static PyObject *wrap_built(PyTypeObject *tp, pl_graph *g)
{
    return g ? pl_objgraph_wrap(tp, g, 1) : NULL;
}

/* Wraps a snapshot with what it saw of the heap (both owned on entry). */
static PyObject *wrap_snapshot(PyTypeObject *tp, pl_graph *g, pl_heapinfo *heap)
{
    PyObject *self = wrap_built(tp, g);
    if (self)
        ((PlGraphObject *)self)->heap = heap;
    else
        pl_heapinfo_free(heap);
    return self;
}

/* Graph(objects=()): the objects (duplicates by identity dropped) and every
 * reference between them. */
static PyObject *graph_new(PyTypeObject *tp, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"objects", NULL};
    PyObject *objects = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:ObjectGraph", kwlist, &objects))
        return NULL;
    return wrap_built(tp, pl_objgraph_from_objects(objects));
}

/* _pyloot.graph_snapshot(cls, skip, how=0): every gc-tracked object but
 * pyloot's graphs, plus the frames of running threads, as a graph of type
 * cls (`how`: PL_SNAPSHOT_*, for tests). A module function, not a
 * classmethod: looking up a classmethod creates a bound method object that
 * would end up in the snapshot. */
static PyObject *graph_snapshot(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    pl_modstate *st = pl_modstate_get(module);
    if (nargs < 2 || nargs > 3 || !PyType_Check(args[0]) ||
        !PyType_IsSubtype((PyTypeObject *)args[0], st->graph_type)) {
        PyErr_SetString(PyExc_TypeError, "graph_snapshot(graph type, skip, how=0)");
        return NULL;
    }
    long skip = PyLong_AsLong(args[1]);
    if (skip == -1 && PyErr_Occurred())
        return NULL;
    long how = nargs == 3 ? PyLong_AsLong(args[2]) : PL_SNAPSHOT_AUTO;
    if (how == -1 && PyErr_Occurred())
        return NULL;
    pl_heapinfo *heap = NULL;
    pl_graph *g = pl_objgraph_snapshot(st->graph_type, skip, (int)how, &heap, NULL);
    return wrap_snapshot((PyTypeObject *)args[0], g, heap);
}

/* Graph._reachable_from(obj): obj and everything reachable from it along
 * gc referents, tracked or not. */
static PyObject *graph_reachable_from(PyObject *cls, PyObject *obj)
{
    return wrap_built((PyTypeObject *)cls, pl_objgraph_reachable(obj));
}

/* Graph._from_edges(vertices, pairs): vertices (distinct by identity) and
 * the edges given as (tail index, head index) pairs, in edge order, with
 * tails non-decreasing. Used by the annotated graphs. */
static PyObject *graph_from_edges(PyObject *cls, PyObject *args)
{
    PyObject *vertices, *pairs;
    if (!PyArg_ParseTuple(args, "OO:_from_edges", &vertices, &pairs))
        return NULL;
    return wrap_built((PyTypeObject *)cls, pl_objgraph_from_edges(vertices, pairs));
}

/* ---- type slots ---- */

static int graph_traverse(PyObject *op, visitproc visit, void *arg)
{
    PlGraphObject *self = (PlGraphObject *)op;
    Py_VISIT(Py_TYPE(op));
    if (self->graph) {
        size_t n = pl_graph_order(self->graph);
        for (uint32_t v = 0; v < n; v++)
            Py_VISIT(pl_vertex_obj(self->graph, v));
    }
    return 0;
}

static int graph_clear(PyObject *op)
{
    PlGraphObject *self = (PlGraphObject *)op;
    pl_graph *g = self->graph;
    /* Detach first: a vertex's finalizer may run code that looks at us. */
    self->graph = NULL;
    pl_heapinfo_free(self->heap);
    self->heap = NULL;
    pl_objgraph_dom_free(self->dom);
    self->dom = NULL;
    if (g)
        pl_objgraph_release(g);
    return 0;
}

static void graph_dealloc(PyObject *op)
{
    PyTypeObject *tp = Py_TYPE(op);
    PlGraphObject *self = (PlGraphObject *)op;
    PyObject_GC_UnTrack(op);
    pl_objgraph_unlink(self);
    graph_clear(op);
    tp->tp_free(op);
    Py_DECREF(tp);
}

/* Whether o is a Graph (or a subclass instance): its type or a base has our
 * deallocator. Works without the module state, for any subclass. */
static int is_graph(PyObject *o)
{
    for (PyTypeObject *t = Py_TYPE(o); t; t = t->tp_base)
        if (t->tp_dealloc == graph_dealloc)
            return 1;
    return 0;
}

static pl_graph *get_graph(PyObject *op)
{
    pl_graph *g = ((PlGraphObject *)op)->graph;
    if (!g)
        PyErr_SetString(PyExc_ValueError, "the graph was cleared");
    return g;
}

/* See graph_int.h. */
pl_graph *pl_objgraph_graph(PyObject *graph)
{
    return get_graph(graph);
}

/* The graph with its key index built (lookups by object need it). */
static pl_graph *get_indexed(PyObject *op)
{
    pl_graph *g = get_graph(op);
    if (g && pl_graph_ensure_index(g)) {
        PyErr_NoMemory();
        return NULL;
    }
    return g;
}

/* The graph with its key index and its in-edges built. */
static pl_graph *get_reversed(PyObject *op)
{
    pl_graph *g = get_indexed(op);
    if (g && pl_graph_ensure_reverse(g)) {
        PyErr_NoMemory();
        return NULL;
    }
    return g;
}

static Py_ssize_t graph_len(PyObject *op)
{
    pl_graph *g = get_graph(op);
    return g ? (Py_ssize_t)pl_graph_order(g) : -1;
}

static int graph_contains(PyObject *op, PyObject *o)
{
    pl_graph *g = get_indexed(op);
    if (!g)
        return -1;
    return pl_graph_lookup(g, pl_obj_key(o)) != PL_GRAPH_NONE;
}

static PyObject *vertex_list(const pl_graph *g, const uint32_t *vs, size_t k)
{
    PyObject *list = PyList_New((Py_ssize_t)k);
    if (!list)
        return NULL;
    for (size_t i = 0; i < k; i++) {
        PyObject *o = pl_vertex_obj(g, vs[i]);
        Py_INCREF(o);
        PyList_SET_ITEM(list, (Py_ssize_t)i, o);
    }
    return list;
}

static PyObject *graph_iter(PyObject *op)
{
    pl_graph *g = get_graph(op);
    if (!g)
        return NULL;
    size_t n = pl_graph_order(g);
    PyObject *list = PyList_New((Py_ssize_t)n);
    if (!list)
        return NULL;
    for (uint32_t v = 0; v < n; v++) {
        PyObject *o = pl_vertex_obj(g, v);
        Py_INCREF(o);
        PyList_SET_ITEM(list, v, o);
    }
    PyObject *it = PyObject_GetIter(list);
    Py_DECREF(list);
    return it;
}

/* The vertex number of obj, or PL_GRAPH_NONE with KeyError set. */
static uint32_t vertex_of(const pl_graph *g, PyObject *obj)
{
    uint32_t v = pl_graph_lookup(g, pl_obj_key(obj));
    if (v == PL_GRAPH_NONE) {
        PyObject *r = PyUnicode_FromFormat("<%s object at %p> is not in the graph",
                                           Py_TYPE(obj)->tp_name, (void *)obj);
        if (r) {
            PyErr_SetObject(PyExc_KeyError, r);
            Py_DECREF(r);
        }
    }
    return v;
}

static PyObject *graph_children(PyObject *op, PyObject *obj)
{
    pl_graph *g = get_indexed(op);
    if (!g)
        return NULL;
    uint32_t v = vertex_of(g, obj);
    if (v == PL_GRAPH_NONE)
        return NULL;
    size_t k;
    const uint32_t *heads = pl_graph_out(g, v, &k, NULL);
    return vertex_list(g, heads, k);
}

static PyObject *graph_parents(PyObject *op, PyObject *obj)
{
    pl_graph *g = get_reversed(op);
    if (!g)
        return NULL;
    uint32_t v = vertex_of(g, obj);
    if (v == PL_GRAPH_NONE)
        return NULL;
    size_t k;
    const uint32_t *tails = pl_graph_in(g, v, &k);
    return vertex_list(g, tails, k);
}

static PyObject *graph_references(PyObject *op, PyObject *unused)
{
    pl_graph *g = get_graph(op);
    if (!g)
        return NULL;
    size_t n = pl_graph_order(g);
    PyObject *list = PyList_New((Py_ssize_t)pl_graph_size(g));
    if (!list)
        return NULL;
    Py_ssize_t i = 0;
    for (uint32_t v = 0; v < n; v++) {
        size_t k;
        const uint32_t *heads = pl_graph_out(g, v, &k, NULL);
        for (size_t j = 0; j < k; j++) {
            PyObject *pair = PyTuple_Pack(2, pl_vertex_obj(g, v), pl_vertex_obj(g, heads[j]));
            if (!pair) {
                Py_DECREF(list);
                return NULL;
            }
            PyList_SET_ITEM(list, i++, pair);
        }
    }
    return list;
}

/* ---- edges by number (refcycle's IDirectedGraph) ---- */

/* The edge number in `edge`, or PL_GRAPH_NONE with KeyError set when it is
 * not an edge of g (not an int, or out of range). */
static uint32_t edge_of(const pl_graph *g, PyObject *edge)
{
    if (PyLong_Check(edge) && !PyBool_Check(edge)) {
        int overflow;
        long long e = PyLong_AsLongLongAndOverflow(edge, &overflow);
        if (e == -1 && PyErr_Occurred())
            return PL_GRAPH_NONE;
        if (!overflow && e >= 0 && (unsigned long long)e < pl_graph_size(g))
            return (uint32_t)e;
    }
    PyErr_SetObject(PyExc_KeyError, edge);
    return PL_GRAPH_NONE;
}

/* head(edge): the object edge number `edge` refers to. */
static PyObject *graph_head(PyObject *op, PyObject *edge)
{
    pl_graph *g = get_graph(op);
    uint32_t e = g ? edge_of(g, edge) : PL_GRAPH_NONE;
    if (e == PL_GRAPH_NONE)
        return NULL;
    return Py_NewRef(pl_vertex_obj(g, pl_graph_edge_head(g, e)));
}

/* tail(edge): the object edge number `edge` leaves. */
static PyObject *graph_tail(PyObject *op, PyObject *edge)
{
    pl_graph *g = get_graph(op);
    uint32_t e = g ? edge_of(g, edge) : PL_GRAPH_NONE;
    if (e == PL_GRAPH_NONE)
        return NULL;
    return Py_NewRef(pl_vertex_obj(g, pl_graph_edge_tail(g, e)));
}

static PyObject *number_list(const uint32_t *numbers, size_t k)
{
    PyObject *list = PyList_New((Py_ssize_t)k);
    for (size_t i = 0; list && i < k; i++) {
        PyObject *n = PyLong_FromUnsignedLong(numbers[i]);
        if (!n)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, (Py_ssize_t)i, n);
    }
    return list;
}

/* out_edges(obj): the numbers of the edges leaving obj, ascending. */
static PyObject *graph_out_edges(PyObject *op, PyObject *obj)
{
    pl_graph *g = get_indexed(op);
    uint32_t v = g ? vertex_of(g, obj) : PL_GRAPH_NONE;
    if (v == PL_GRAPH_NONE)
        return NULL;
    size_t k;
    uint32_t first;
    pl_graph_out(g, v, &k, &first);
    PyObject *list = PyList_New((Py_ssize_t)k);
    for (size_t i = 0; list && i < k; i++) {
        PyObject *n = PyLong_FromUnsignedLong(first + (uint32_t)i);
        if (!n)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, (Py_ssize_t)i, n);
    }
    return list;
}

/* in_edges(obj): the numbers of the edges entering obj, ascending. */
static PyObject *graph_in_edges(PyObject *op, PyObject *obj)
{
    pl_graph *g = get_reversed(op);
    uint32_t v = g ? vertex_of(g, obj) : PL_GRAPH_NONE;
    if (v == PL_GRAPH_NONE)
        return NULL;
    uint32_t *edges;
    size_t k;
    int rc = pl_graph_in_edges(g, v, &edges, &k);
    if (rc)
        return pl_raise(NULL, rc, "the graph operation");
    PyObject *list = number_list(edges, k);
    free(edges);
    return list;
}

/* A new graph of the caller's type induced on vs. */
static PyObject *induced(PyObject *op, const pl_graph *g, const uint32_t *vs, size_t k)
{
    pl_graph *s;
    int rc = pl_graph_subgraph(g, vs, k, &s);
    if (rc)
        return pl_raise(NULL, rc, "the graph operation");
    return pl_objgraph_wrap(Py_TYPE(op), s, 0);
}

static int parse_generations(PyObject *obj, long *out)
{
    *out = -1;
    if (!obj || obj == Py_None)
        return 0;
    long gens = PyLong_AsLong(obj);
    if (gens == -1 && PyErr_Occurred())
        return -1;
    if (gens < 0) {
        /* The reference never stops on a negative count: neither do we. */
        gens = -1;
    }
    *out = gens;
    return 0;
}

static PyObject *reach(PyObject *op, PyObject *args, PyObject *kwds, int reverse)
{
    static char *kwlist[] = {"start", "generations", NULL};
    PyObject *start, *gens_obj = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, reverse ? "O|O:ancestors" : "O|O:descendants",
                                     kwlist, &start, &gens_obj))
        return NULL;
    long gens;
    if (parse_generations(gens_obj, &gens) < 0)
        return NULL;
    pl_graph *g = reverse ? get_reversed(op) : get_indexed(op);
    if (!g)
        return NULL;
    uint32_t v = vertex_of(g, start);
    if (v == PL_GRAPH_NONE)
        return NULL;
    uint32_t *vs;
    size_t k;
    int rc;
    if (pl_graph_order(g) >= NOGIL_THRESHOLD) {
        Py_BEGIN_ALLOW_THREADS
        rc = pl_graph_reach(g, v, reverse, gens, &vs, &k);
        Py_END_ALLOW_THREADS
    } else {
        rc = pl_graph_reach(g, v, reverse, gens, &vs, &k);
    }
    if (rc)
        return pl_raise(NULL, rc, "the graph operation");
    PyObject *r = induced(op, g, vs, k);
    free(vs);
    return r;
}

static PyObject *graph_ancestors(PyObject *op, PyObject *args, PyObject *kwds)
{
    return reach(op, args, kwds, 1);
}

static PyObject *graph_descendants(PyObject *op, PyObject *args, PyObject *kwds)
{
    return reach(op, args, kwds, 0);
}

static PyObject *path_result(PyObject *op, const pl_graph *g, int rc, uint32_t *vs, size_t k)
{
    if (rc == PL_ENOTFOUND) {
        PyErr_SetString(PyExc_ValueError, "No path found.");
        return NULL;
    }
    if (rc)
        return pl_raise(NULL, rc, "the graph operation");
    PyObject *r = induced(op, g, vs, k);
    free(vs);
    return r;
}

static PyObject *graph_shortest_path(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "shortest_path(start, end)");
        return NULL;
    }
    pl_graph *g = get_indexed(op);
    if (!g)
        return NULL;
    uint32_t s = vertex_of(g, args[0]);
    if (s == PL_GRAPH_NONE)
        return NULL;
    uint32_t e = pl_graph_lookup(g, pl_obj_key(args[1]));
    if (e == PL_GRAPH_NONE)
        return path_result(op, g, PL_ENOTFOUND, NULL, 0);
    uint32_t *vs = NULL;
    size_t k = 0;
    int rc = pl_graph_shortest_path(g, s, e, &vs, &k);
    return path_result(op, g, rc, vs, k);
}

static PyObject *graph_shortest_cycle(PyObject *op, PyObject *start)
{
    pl_graph *g = get_indexed(op);
    if (!g)
        return NULL;
    uint32_t s = vertex_of(g, start);
    if (s == PL_GRAPH_NONE)
        return NULL;
    uint32_t *vs = NULL;
    size_t k = 0;
    int rc = pl_graph_shortest_cycle(g, s, &vs, &k);
    return path_result(op, g, rc, vs, k);
}

static int compute_scc(const pl_graph *g, pl_graph_components *c)
{
    int rc;
    if (pl_graph_order(g) >= NOGIL_THRESHOLD) {
        Py_BEGIN_ALLOW_THREADS
        rc = pl_graph_scc(g, c);
        Py_END_ALLOW_THREADS
    } else {
        rc = pl_graph_scc(g, c);
    }
    if (rc)
        pl_raise(NULL, rc, "the graph operation");
    return rc;
}

static PyObject *graph_scc(PyObject *op, PyObject *unused)
{
    pl_graph *g = get_graph(op);
    if (!g)
        return NULL;
    pl_graph_components c;
    if (compute_scc(g, &c))
        return NULL;
    return pl_components_new(op, &c, NULL, 0);
}

static PyObject *graph_source_components(PyObject *op, PyObject *unused)
{
    pl_graph *g = get_graph(op);
    if (!g)
        return NULL;
    pl_graph_components c;
    if (compute_scc(g, &c))
        return NULL;
    uint32_t *ids;
    size_t k;
    int rc = pl_graph_source_components(g, &c, &ids, &k);
    if (rc) {
        pl_graph_components_free(&c);
        return pl_raise(NULL, rc, "the graph operation");
    }
    return pl_components_new(op, &c, ids, k);
}

static PyObject *graph_full_subgraph(PyObject *op, PyObject *objects)
{
    pl_graph *g = get_indexed(op);
    if (!g)
        return NULL;
    PyObject *seq = PySequence_Fast(objects, "full_subgraph() needs an iterable");
    if (!seq)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    uint32_t *vs = malloc(((size_t)n + 1) * sizeof(uint32_t));
    PyObject *r = NULL;
    if (!vs) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        if ((vs[i] = vertex_of(g, PySequence_Fast_GET_ITEM(seq, i))) == PL_GRAPH_NONE)
            goto done;
    r = induced(op, g, vs, (size_t)n);
done:
    free(vs);
    Py_DECREF(seq);
    return r;
}

/* _key_filter(other, keep_common): self & other or self - other, for two
 * graphs. */
static PyObject *graph_key_filter(PyObject *op, PyObject *args)
{
    PyObject *other;
    int keep;
    if (!PyArg_ParseTuple(args, "Op:_key_filter", &other, &keep))
        return NULL;
    if (!is_graph(other)) {
        PyErr_SetString(PyExc_TypeError, "_key_filter needs a graph");
        return NULL;
    }
    pl_graph *g = get_graph(op), *h = g ? get_indexed(other) : NULL;
    if (!h)
        return NULL;
    pl_graph *s;
    int rc = pl_graph_key_filter(g, h, keep, &s);
    if (rc)
        return pl_raise(NULL, rc, "the graph operation");
    return pl_objgraph_wrap(Py_TYPE(op), s, 0);
}

static PyObject *graph_edge_count(PyObject *op, PyObject *unused)
{
    pl_graph *g = get_graph(op);
    return g ? PyLong_FromSize_t(pl_graph_size(g)) : NULL;
}

/* _nbytes(): C memory of the graph, its heap facts and its dominator tree
 * (those two once made). */
static PyObject *graph_nbytes(PyObject *op, PyObject *unused)
{
    PlGraphObject *self = (PlGraphObject *)op;
    pl_graph *g = get_graph(op);
    if (!g)
        return NULL;
    size_t bytes = pl_graph_memory(g);
    if (self->heap)
        bytes += pl_heapinfo_memory(self->heap);
    if (self->dom)
        bytes += pl_objgraph_dom_memory(self->dom);
    return PyLong_FromSize_t(bytes);
}

/* ---- dominators ---- */

/* The dominator tree and retained sizes, made by the first call: the heap
 * facts (a snapshot has them; other graphs read them now, under the GIL),
 * the in-edges, then the tree without the GIL. */
static pl_objgraph_dom *get_dom(PyObject *op)
{
    PlGraphObject *self = (PlGraphObject *)op;
    if (self->dom)
        return self->dom;
    pl_graph *g = get_reversed(op);
    if (!g)
        return NULL;
    if (!self->heap && !(self->heap = pl_objgraph_heapinfo(g)))
        return NULL;
    /* The heap facts serve this build only: it takes them, and makes the
     * tree and the retained sizes in their arrays. A thread asking
     * meanwhile finds none and reads its own from the heap as it is. */
    pl_heapinfo *h = self->heap;
    self->heap = NULL;
    pl_objgraph_dom *d;
    int rc;
    if (pl_graph_order(g) >= NOGIL_THRESHOLD) {
        Py_BEGIN_ALLOW_THREADS
        rc = pl_objgraph_dom_build_consume(g, h, &d);
        Py_END_ALLOW_THREADS
    } else {
        rc = pl_objgraph_dom_build_consume(g, h, &d);
    }
    pl_heapinfo_free(h);
    if (rc) {
        pl_raise(NULL, rc, "the graph operation");
        return NULL;
    }
    /* Another thread may have built one meanwhile: keep the first. */
    if (self->dom)
        pl_objgraph_dom_free(d);
    else
        self->dom = d;
    return self->dom;
}

/* The vertex of obj and the tree, or PL_GRAPH_NONE with an exception set
 * (KeyError when obj is not in the graph). */
static uint32_t dom_vertex(PyObject *op, PyObject *obj, pl_objgraph_dom **d)
{
    pl_graph *g = get_indexed(op);
    uint32_t v = g ? vertex_of(g, obj) : PL_GRAPH_NONE;
    if (v != PL_GRAPH_NONE && !(*d = get_dom(op)))
        v = PL_GRAPH_NONE;
    return v;
}

static PyObject *graph_retained_size(PyObject *op, PyObject *obj)
{
    pl_objgraph_dom *d;
    uint32_t v = dom_vertex(op, obj, &d);
    return v == PL_GRAPH_NONE ? NULL : PyLong_FromUnsignedLongLong(pl_objgraph_retained(d, v));
}

static PyObject *graph_immediate_dominator(PyObject *op, PyObject *obj)
{
    pl_objgraph_dom *d;
    uint32_t v = dom_vertex(op, obj, &d);
    if (v == PL_GRAPH_NONE)
        return NULL;
    uint32_t up = pl_objgraph_idom(d, v);
    if (up == PL_DOM_ROOT || up == PL_GRAPH_NONE)
        Py_RETURN_NONE;
    return Py_NewRef(pl_vertex_obj(((PlGraphObject *)op)->graph, up));
}

static PyObject *graph_dominated(PyObject *op, PyObject *obj)
{
    pl_objgraph_dom *d;
    uint32_t v = dom_vertex(op, obj, &d);
    if (v == PL_GRAPH_NONE)
        return NULL;
    uint32_t *vs;
    size_t k;
    int rc = pl_objgraph_dominated(d, v, &vs, &k);
    if (rc)
        return pl_raise(NULL, rc, "the graph operation");
    PyObject *r = induced(op, ((PlGraphObject *)op)->graph, vs, k);
    free(vs);
    return r;
}

static PyObject *graph_dominator_children(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "dominator_children(obj=None)");
        return NULL;
    }
    pl_objgraph_dom *d;
    uint32_t v = PL_DOM_ROOT;
    if (nargs == 1 && args[0] != Py_None) {
        if ((v = dom_vertex(op, args[0], &d)) == PL_GRAPH_NONE)
            return NULL;
    } else if (!get_graph(op) || !(d = get_dom(op))) {
        return NULL;
    }
    const pl_graph *g = ((PlGraphObject *)op)->graph;
    uint32_t *kids;
    size_t k;
    int rc = pl_objgraph_dom_children(d, v, &kids, &k);
    if (rc)
        return pl_raise(NULL, rc, "the graph operation");
    PyObject *list = PyList_New((Py_ssize_t)k);
    for (size_t i = 0; list && i < k; i++) {
        PyObject *item = Py_BuildValue("(OK)", pl_vertex_obj(g, kids[i]),
                                       (unsigned long long)pl_objgraph_retained(d, kids[i]));
        if (!item) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, item);
    }
    free(kids);
    return list;
}

/* _suspects(type_or_name, n) -> [(object, count, retained, [path])]. */
static PyObject *graph_suspects(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "_suspects(type_or_name, n)");
        return NULL;
    }
    Py_ssize_t want = PyLong_AsSsize_t(args[1]);
    if (want == -1 && PyErr_Occurred())
        return NULL;
    if (want < 0) {
        PyErr_SetString(PyExc_ValueError, "n must be >= 0");
        return NULL;
    }
    pl_graph *g = get_graph(op);
    pl_objgraph_dom *d = g ? get_dom(op) : NULL;
    if (!d)
        return NULL;
    size_t n = pl_graph_order(g);
    uint8_t *mark = malloc(n + 1);
    if (!mark)
        return PyErr_NoMemory();
    if (pl_objgraph_mark_type(g, args[0], mark) < 0) {
        free(mark);
        return NULL;
    }
    pl_suspect *s;
    size_t k;
    int rc;
    if (n >= NOGIL_THRESHOLD) {
        Py_BEGIN_ALLOW_THREADS
        rc = pl_objgraph_suspects(g, d, mark, (size_t)want, &s, &k);
        Py_END_ALLOW_THREADS
    } else {
        rc = pl_objgraph_suspects(g, d, mark, (size_t)want, &s, &k);
    }
    free(mark);
    if (rc)
        return pl_raise(NULL, rc, "the graph operation");
    PyObject *list = PyList_New((Py_ssize_t)k);
    for (size_t i = 0; list && i < k; i++) {
        PyObject *path = vertex_list(g, s[i].path, s[i].npath);
        PyObject *item = path ? Py_BuildValue("(OKKN)", pl_vertex_obj(g, s[i].vertex),
                                              (unsigned long long)s[i].count,
                                              (unsigned long long)s[i].retained, path)
                              : NULL;
        if (!item) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, item);
    }
    pl_objgraph_suspects_free(s, k);
    return list;
}

/* _roots() -> (roots found by reference counts, roots added for garbage). */
static PyObject *graph_roots(PyObject *op, PyObject *unused)
{
    pl_objgraph_dom *d = get_graph(op) ? get_dom(op) : NULL;
    if (!d)
        return NULL;
    size_t counted, added;
    pl_objgraph_dom_roots(d, &counted, &added);
    return Py_BuildValue("(nn)", (Py_ssize_t)counted, (Py_ssize_t)added);
}

/* _root_size(): the retained size of the virtual root (everything). */
static PyObject *graph_root_size(PyObject *op, PyObject *unused)
{
    pl_objgraph_dom *d = get_graph(op) ? get_dom(op) : NULL;
    return d ? PyLong_FromUnsignedLongLong(pl_objgraph_retained(d, PL_DOM_ROOT)) : NULL;
}

/* _annotations() -> (vertex descriptions, edges): edges[i] is
 * (tail index, head index, label or None) for edge number i. */
static PyObject *graph_annotations(PyObject *op, PyObject *unused)
{
    pl_graph *g = get_indexed(op);
    return g ? pl_objgraph_annotations(g) : NULL;
}

/* ---- type ---- */

static PyMethodDef graph_methods[] = {
    {"_reachable_from", graph_reachable_from, METH_O | METH_CLASS,
     "_reachable_from(obj): obj and every object reachable from it."},
    {"_from_edges", graph_from_edges, METH_VARARGS | METH_CLASS,
     "_from_edges(vertices, pairs): a graph with explicit edges."},
    {"children", graph_children, METH_O,
     "children(obj): the objects obj refers to, one per reference."},
    {"parents", graph_parents, METH_O,
     "parents(obj): the objects referring to obj, one per reference."},
    {"references", graph_references, METH_NOARGS,
     "references(): (referrer, referent) pairs, one per edge."},
    {"head", graph_head, METH_O, "head(edge): the object edge number `edge` refers to."},
    {"tail", graph_tail, METH_O, "tail(edge): the object edge number `edge` leaves."},
    {"out_edges", graph_out_edges, METH_O,
     "out_edges(obj): the numbers of the edges leaving obj (its references)."},
    {"in_edges", graph_in_edges, METH_O,
     "in_edges(obj): the numbers of the edges entering obj (references to it)."},
    {"ancestors", (PyCFunction)(void (*)(void))graph_ancestors, METH_VARARGS | METH_KEYWORDS,
     "ancestors(start, generations=None): subgraph of what reaches start."},
    {"descendants", (PyCFunction)(void (*)(void))graph_descendants, METH_VARARGS | METH_KEYWORDS,
     "descendants(start, generations=None): subgraph of what start reaches."},
    {"shortest_path", (PyCFunction)(void (*)(void))graph_shortest_path, METH_FASTCALL,
     "shortest_path(start, end): subgraph on a shortest path; ValueError if none."},
    {"shortest_cycle", graph_shortest_cycle, METH_O,
     "shortest_cycle(start): subgraph on a shortest cycle through start; ValueError if none."},
    {"strongly_connected_components", graph_scc, METH_NOARGS,
     "strongly_connected_components(): a sequence of subgraphs, sinks first."},
    {"source_components", graph_source_components, METH_NOARGS,
     "source_components(): the components no other component refers to."},
    {"full_subgraph", graph_full_subgraph, METH_O,
     "full_subgraph(objects): the subgraph induced on objects."},
    {"_key_filter", graph_key_filter, METH_VARARGS, "_key_filter(other, keep_common)"},
    {"_edge_count", graph_edge_count, METH_NOARGS, "number of edges"},
    {"_nbytes", graph_nbytes, METH_NOARGS, "bytes of C memory held by the graph"},
    {"_annotations", graph_annotations, METH_NOARGS,
     "_annotations(): (vertex descriptions, [(tail, head, label), ...])."},
    {"retained_size", graph_retained_size, METH_O,
     "retained_size(obj): bytes freed if obj went away (its dominated objects and\n"
     "the untracked objects only they hold)."},
    {"immediate_dominator", graph_immediate_dominator, METH_O,
     "immediate_dominator(obj): the object every path from a root to obj passes\n"
     "through last, or None for a root."},
    {"dominated", graph_dominated, METH_O,
     "dominated(obj): the subgraph of the objects obj dominates (obj included)."},
    {"dominator_children", (PyCFunction)(void (*)(void))graph_dominator_children, METH_FASTCALL,
     "dominator_children(obj=None): [(object, retained bytes)], largest first; None:\n"
     "the roots."},
    {"_suspects", (PyCFunction)(void (*)(void))graph_suspects, METH_FASTCALL,
     "_suspects(type_or_name, n): [(object, count, retained, path)]."},
    {"_root_size", graph_root_size, METH_NOARGS, "retained size of everything"},
    {"_roots", graph_roots, METH_NOARGS, "(roots by reference counts, roots added for garbage)"},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot graph_slots[] = {
    {Py_tp_new, graph_new},
    {Py_tp_dealloc, graph_dealloc},
    {Py_tp_traverse, graph_traverse},
    {Py_tp_clear, graph_clear},
    {Py_tp_iter, graph_iter},
    {Py_sq_length, graph_len},
    {Py_sq_contains, graph_contains},
    {Py_tp_methods, graph_methods},
    {Py_tp_doc, (void *)"Graph(objects=()): objects and the references between them, in C."},
    {0, NULL},
};

static PyType_Spec PlGraph_spec = {
    .name = "pyloot._pyloot.Graph",
    .basicsize = sizeof(PlGraphObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = graph_slots,
};

static PyMethodDef module_functions[] = {
    {"graph_snapshot", (PyCFunction)(void (*)(void))graph_snapshot, METH_FASTCALL,
     "graph_snapshot(cls, skip): every gc-tracked object and running frame (skipping\n"
     "the caller's `skip` innermost frames), with the references between them."},
    {NULL, NULL, 0, NULL},
};

/* The Graph type of the module last initialised, for the live routes
 * (pl_objgraph_snapshot_object), which have no module at hand. Borrowed: the
 * module keeps it alive. Protected by the GIL. */
static PyTypeObject *last_graph_type;

/* See graph_int.h. */
PlGraphObject *pl_objgraph_snapshot_object(pl_snap_notes *notes)
{
    if (!last_graph_type) {
        PyErr_SetString(PyExc_RuntimeError, "pyloot._pyloot is not initialised");
        return NULL;
    }
    pl_heapinfo *heap = NULL;
    pl_graph *g = pl_objgraph_snapshot(last_graph_type, 0, PL_SNAPSHOT_AUTO, &heap, notes);
    return (PlGraphObject *)wrap_snapshot(last_graph_type, g, heap);
}

/* See graph_int.h. */
int pl_graph_module_exec(PyObject *module)
{
    if (PyModule_AddFunctions(module, module_functions) < 0)
        return -1;
    pl_modstate *st = pl_modstate_get(module);
    st->graph_type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &PlGraph_spec, NULL);
    if (!st->graph_type)
        return -1;
    last_graph_type = st->graph_type;
    if (pl_components_module_exec(module) < 0)
        return -1;
    return PyModule_AddObjectRef(module, "Graph", (PyObject *)st->graph_type);
}
