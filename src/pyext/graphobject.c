/* The object graph (refcycle API) for Python: the _pyloot.Graph type.
 *
 * A Graph owns one finished core graph (pyloot/graph.h) whose keys are the
 * addresses of its vertex objects; the Graph holds one strong reference to
 * each vertex, and nothing else: no Python container, so it creates no
 * reference cycle of its own and a snapshot has no storage of its own to
 * leave out. Edges are what tp_traverse reports (what gc.get_referents
 * gives), plus, for frames of running threads, what the frame holds but does
 * not report (see frame_extra_referents).
 *
 * Everything here runs with the GIL held, except the core algorithms on
 * large graphs, which run with it released on immutable arrays. */
#include "pyext.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "objects_gc.h" /* pl_live_walk: the gc lists, frozen objects included */
#include "pyloot/error.h"
#include "pyloot/graph.h"

typedef struct {
    PyObject_HEAD
    pl_graph *graph; /* owned; NULL only after tp_clear. Immutable once set. */
} PlGraphObject;

/* Graphs at least this large run their algorithms without the GIL. */
#define NOGIL_THRESHOLD 50000

static inline PyObject *vertex_obj(const pl_graph *g, uint32_t v)
{
    return (PyObject *)(uintptr_t)pl_graph_key(g, v);
}

static inline uint64_t obj_key(PyObject *o)
{
    return (uint64_t)(uintptr_t)o;
}

static PyObject *set_core_error(int rc)
{
    if (rc == ENOMEM)
        return PyErr_NoMemory();
    if (rc == PL_ETOOBIG)
        return PyErr_Format(PyExc_OverflowError, "graph too large: %s", pl_strerror(rc));
    return PyErr_Format(PyExc_RuntimeError, "graph operation failed: %s", pl_strerror(rc));
}

/* ---- running frames: version-specific mirrors ----
 *
 * On CPython 3.11+ a frame object whose frame is still running (owned by
 * its thread) reports only f_back and f_trace to tp_traverse: its locals are
 * roots for the gc, not edges. To show what a running frame keeps alive (the
 * guide's `job` local), we read the interpreter frame directly. The layouts
 * below mirror Include/internal/pycore_frame.h of each version (the internal
 * headers cannot be included outside the core without warnings and
 * Py_BUILD_CORE); only fields before `localsplus` that we read are named.
 * Versions after 3.13 get no extra edges until mirrored here. */
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030E0000
#define PL_FRAME_MIRROR 1
typedef struct {
    PyObject_HEAD
    PyObject *f_back;
    void *f_frame; /* _PyInterpreterFrame * */
    PyObject *f_trace;
} frame_mirror;

#if PY_VERSION_HEX < 0x030C0000
typedef struct {
    PyObject *f_func;
    PyObject *f_globals;
    PyObject *f_builtins;
    PyObject *f_locals;
    PyObject *f_code;
    PyObject *frame_obj;
    void *previous;
    void *prev_instr;
    int stacktop;
    bool is_entry;
    char owner;
    PyObject *localsplus[1];
} iframe_mirror;
#define IFRAME_CODE(f) ((f)->f_code)
#define IFRAME_FUNC(f) ((f)->f_func)
#else
typedef struct {
    PyObject *f_code; /* 3.13: f_executable (a code object or None) */
    void *previous;
    PyObject *f_funcobj;
    PyObject *f_globals;
    PyObject *f_builtins;
    PyObject *f_locals;
    PyObject *frame_obj;
    void *instr;
    int stacktop;
    uint16_t return_offset;
    char owner;
    PyObject *localsplus[1];
} iframe_mirror;
#define IFRAME_CODE(f) ((f)->f_code)
#define IFRAME_FUNC(f) ((f)->f_funcobj)
#endif
#define FRAME_OWNED_BY_THREAD 0
#define FRAME_OWNED_BY_FRAME_OBJECT 2

static iframe_mirror *frame_data(PyObject *frame)
{
    return (iframe_mirror *)((frame_mirror *)frame)->f_frame;
}

/* The code object of an interpreter frame, or NULL (3.13 shim frames). */
static PyCodeObject *frame_code(iframe_mirror *f)
{
    PyObject *code = IFRAME_CODE(f);
    return code && PyCode_Check(code) ? (PyCodeObject *)code : NULL;
}
#endif

/* Calls visit on what a frame object holds beyond what its tp_traverse
 * reports: for a running frame, the specials and the local variables (not the
 * value stack, whose top is not recorded while the frame runs). */
static int frame_extra_referents(PyObject *frame, visitproc visit, void *arg)
{
#ifdef PL_FRAME_MIRROR
    iframe_mirror *f = frame_data(frame);
    if (!f || f->owner != FRAME_OWNED_BY_THREAD)
        return 0;
    PyCodeObject *code = frame_code(f);
    Py_VISIT(f->f_locals);
    Py_VISIT(IFRAME_FUNC(f));
    Py_VISIT(IFRAME_CODE(f));
    if (code) {
        for (int i = 0; i < code->co_nlocalsplus; i++)
            Py_VISIT(f->localsplus[i]);
    }
#endif
    return 0;
}

/* ---- building ---- */

/* Referents are gathered in batches and looked up together, so the index
 * lookups can be prefetched: on a large heap each one is a cache miss. */
#define EDGE_BATCH 65536

struct edge_ctx {
    pl_graph *g;
    uint64_t *refs;    /* referents of the vertices in the batch, in order */
    uint32_t *tails;   /* the vertex each referent belongs to */
    size_t len;
    uint32_t tail;
    int rc;
};

static void edge_flush(struct edge_ctx *ctx)
{
    if (ctx->rc || !ctx->len)
        return;
    ctx->rc = pl_graph_add_edges_by_key(ctx->g, ctx->tails, ctx->refs, ctx->len);
    ctx->len = 0;
}

static int edge_visit(PyObject *o, void *arg)
{
    struct edge_ctx *ctx = arg;
    if (!o)
        return 0;
    if (ctx->len == EDGE_BATCH) {
        edge_flush(ctx);
        if (ctx->rc)
            return 1;
    }
    ctx->refs[ctx->len] = obj_key(o);
    ctx->tails[ctx->len++] = ctx->tail;
    return 0;
}

/* Adds the edges of every vertex (the same referents gc.get_referents
 * reports, plus running frames' extras), then finishes the graph. Calls no
 * Python code: tp_traverse only reports pointers. */
static int build_edges(pl_graph *g)
{
    struct edge_ctx ctx = {g, NULL, NULL, 0, 0, 0};
    ctx.refs = malloc(EDGE_BATCH * sizeof(uint64_t));
    ctx.tails = malloc(EDGE_BATCH * sizeof(uint32_t));
    if (!ctx.refs || !ctx.tails)
        ctx.rc = ENOMEM;
    size_t n = pl_graph_order(g);
    for (uint32_t v = 0; v < n && !ctx.rc; v++) {
        PyObject *o = vertex_obj(g, v);
        ctx.tail = v;
        if (PyObject_IS_GC(o) && Py_TYPE(o)->tp_traverse)
            Py_TYPE(o)->tp_traverse(o, edge_visit, &ctx);
        if (!ctx.rc && PyFrame_Check(o))
            frame_extra_referents(o, edge_visit, &ctx);
    }
    edge_flush(&ctx);
    free(ctx.refs);
    free(ctx.tails);
    if (ctx.rc)
        return ctx.rc;
    return pl_graph_finish(g);
}

static void release_vertices(pl_graph *g)
{
    size_t n = pl_graph_order(g);
    for (uint32_t v = 0; v < n; v++)
        Py_DECREF(vertex_obj(g, v));
    pl_graph_free(g);
}

/* Wraps a finished graph into a new instance of `tp`. Takes ownership of g
 * (freed on failure, with its references when `owns_refs`). When
 * `owns_refs` is 0, a reference to every vertex is taken here (subgraphs of a
 * live graph). */
static PyObject *wrap(PyTypeObject *tp, pl_graph *g, int owns_refs)
{
    if (!owns_refs) {
        size_t n = pl_graph_order(g);
        for (uint32_t v = 0; v < n; v++)
            Py_INCREF(vertex_obj(g, v));
    }
    PlGraphObject *self = (PlGraphObject *)tp->tp_alloc(tp, 0);
    if (!self) {
        release_vertices(g);
        return NULL;
    }
    self->graph = g;
    return (PyObject *)self;
}

static int add_vertex_ref(pl_graph *g, PyObject *o)
{
    int added;
    int rc = pl_graph_add_vertex(g, obj_key(o), NULL, &added);
    if (rc == 0 && added)
        Py_INCREF(o);
    return rc;
}

/* Vertices are added in batches too (see EDGE_BATCH); each object gets its
 * reference when it is added, while the visit keeps it alive. */
struct vertex_batch {
    pl_graph *g;
    uint64_t *keys;
    uint8_t *added;
    size_t len;
    int rc;
};

static int batch_init(struct vertex_batch *b, pl_graph *g)
{
    b->g = g;
    b->len = 0;
    b->keys = malloc(EDGE_BATCH * sizeof(uint64_t));
    b->added = malloc(EDGE_BATCH);
    b->rc = b->keys && b->added ? 0 : ENOMEM;
    return b->rc;
}

static void batch_flush(struct vertex_batch *b)
{
    if (b->rc || !b->len)
        return;
    b->rc = pl_graph_add_vertices(b->g, b->keys, b->len, b->added);
    /* Even on error, the vertices that were added need their reference
     * (release_vertices drops the graph with one per vertex). */
    for (size_t i = 0; i < b->len; i++)
        if (b->added[i])
            Py_INCREF((PyObject *)(uintptr_t)b->keys[i]);
    b->len = 0;
}

static void batch_add(struct vertex_batch *b, PyObject *o)
{
    if (b->len == EDGE_BATCH)
        batch_flush(b);
    if (!b->rc)
        b->keys[b->len++] = obj_key(o);
}

static void batch_free(struct vertex_batch *b)
{
    free(b->keys);
    free(b->added);
}

/* Graph(objects=()): the objects (duplicates by identity dropped) and every
 * reference between them. */
static PyObject *graph_new(PyTypeObject *tp, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"objects", NULL};
    PyObject *objects = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:ObjectGraph", kwlist, &objects))
        return NULL;
    Py_ssize_t hint = objects ? PyObject_LengthHint(objects, 16) : 0;
    if (hint < 0)
        return NULL;
    pl_graph *g;
    int rc = pl_graph_new((size_t)hint, &g);
    if (rc)
        return set_core_error(rc);
    if (objects && (PyList_CheckExact(objects) || PyTuple_CheckExact(objects))) {
        /* The sequence keeps its items alive while they are added, and no
         * Python code runs meanwhile. */
        struct vertex_batch batch;
        if (!batch_init(&batch, g)) {
            Py_ssize_t n = PySequence_Fast_GET_SIZE(objects);
            PyObject **items = PySequence_Fast_ITEMS(objects);
            for (Py_ssize_t i = 0; i < n && !batch.rc; i++)
                batch_add(&batch, items[i]);
            batch_flush(&batch);
        }
        batch_free(&batch);
        if ((rc = batch.rc)) {
            set_core_error(rc);
            goto fail;
        }
    } else if (objects) {
        PyObject *it = PyObject_GetIter(objects);
        if (!it)
            goto fail;
        PyObject *o;
        while ((o = PyIter_Next(it))) {
            rc = add_vertex_ref(g, o);
            Py_DECREF(o);
            if (rc) {
                Py_DECREF(it);
                set_core_error(rc);
                goto fail;
            }
        }
        Py_DECREF(it);
        if (PyErr_Occurred())
            goto fail;
    }
    if ((rc = build_edges(g))) {
        set_core_error(rc);
        goto fail;
    }
    return wrap(tp, g, 1);
fail:
    release_vertices(g);
    return NULL;
}

/* The visit only gathers the objects (and takes a reference to each): the
 * index is then built once at its final size. */
struct snap_ctx {
    uint64_t *keys;
    size_t len, cap;
    PyTypeObject *exclude; /* graphs are pyloot's own storage */
    int rc;
};

static int snap_add(PyObject *o, void *arg)
{
    struct snap_ctx *ctx = arg;
    if (PyObject_TypeCheck(o, ctx->exclude))
        return 0;
    if (ctx->len == ctx->cap) {
        size_t ncap = ctx->cap ? ctx->cap * 2 : 1 << 16;
        uint64_t *k = realloc(ctx->keys, ncap * sizeof(uint64_t));
        if (!k) {
            ctx->rc = ENOMEM;
            return 1;
        }
        ctx->keys = k;
        ctx->cap = ncap;
    }
    ctx->keys[ctx->len++] = obj_key(o);
    Py_INCREF(o);
    return 0;
}

/* Makes the gathered objects the vertices of g; every gathered reference
 * ends up owned by g or dropped (duplicates, or all of them on error). */
static int snap_index(struct snap_ctx *ctx, pl_graph *g)
{
    uint8_t *added = malloc(ctx->len + 1);
    int rc = added ? pl_graph_add_vertices(g, ctx->keys, ctx->len, added) : ENOMEM;
    for (size_t i = 0; i < ctx->len; i++)
        if (!added || !added[i])
            Py_DECREF((PyObject *)(uintptr_t)ctx->keys[i]);
    free(added);
    return rc;
}

/* Adds the frame objects of every thread's running frames (not gc-tracked
 * on 3.11+), skipping the `skip` innermost frames of the calling thread (the
 * pyloot functions taking the snapshot). Creates the frame objects that do
 * not exist yet, as sys._current_frames() does. */
static int add_thread_frames(pl_graph *g, long skip)
{
    PyThreadState *me = PyThreadState_Get();
    PyInterpreterState *interp = PyThreadState_GetInterpreter(me);
    int rc = 0;
    for (PyThreadState *ts = PyInterpreterState_ThreadHead(interp); ts && !rc;
         ts = PyThreadState_Next(ts)) {
        PyFrameObject *f = PyThreadState_GetFrame(ts);
        long skipped = 0;
        while (f && !rc) {
            if (ts != me || skipped++ >= skip)
                rc = add_vertex_ref(g, (PyObject *)f);
            PyFrameObject *back = PyFrame_GetBack(f);
            Py_DECREF(f);
            f = back;
        }
        Py_XDECREF(f);
    }
    return rc;
}

/* _pyloot.graph_snapshot(cls, skip): every gc-tracked object but pyloot's
 * graphs, plus the frames of running threads, as a graph of type cls. A
 * module function, not a classmethod: looking up a classmethod creates a
 * bound method object that would end up in the snapshot. */
static PyObject *graph_snapshot(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    long skip = 0;
    pl_modstate *st = pl_modstate_get(module);
    if (nargs != 2 || !PyType_Check(args[0]) ||
        !PyType_IsSubtype((PyTypeObject *)args[0], st->graph_type)) {
        PyErr_SetString(PyExc_TypeError, "graph_snapshot(graph type, skip)");
        return NULL;
    }
    PyObject *cls = args[0];
    if ((skip = PyLong_AsLong(args[1])) == -1 && PyErr_Occurred())
        return NULL;
    struct snap_ctx ctx = {NULL, 0, 0, st->graph_type, 0};
    pl_graph *g = NULL;
    /* The gc lists walked directly: no list of every object is built, and
     * the objects frozen by gc.freeze() (gunicorn --preload) are included. */
    int vrc = pl_live_walk(snap_add, &ctx);
    int rc = ctx.rc;
    if (!rc)
        rc = pl_graph_new(ctx.len + 256, &g);
    if (!rc) {
        rc = snap_index(&ctx, g);
    } else {
        for (size_t i = 0; i < ctx.len; i++)
            Py_DECREF((PyObject *)(uintptr_t)ctx.keys[i]);
    }
    free(ctx.keys);
    if (vrc < 0 && !rc)
        goto fail;
    if (rc || (rc = add_thread_frames(g, skip)) || (rc = build_edges(g))) {
        set_core_error(rc);
        goto fail;
    }
    return wrap((PyTypeObject *)cls, g, 1);
fail:
    if (g)
        release_vertices(g);
    return NULL;
}

struct reach_ctx {
    pl_graph *g;
    int rc;
};

static int reach_add(PyObject *o, void *arg)
{
    struct reach_ctx *ctx = arg;
    if (o && (ctx->rc = add_vertex_ref(ctx->g, o)))
        return 1;
    return 0;
}

/* Graph._reachable_from(obj): obj and everything reachable from it along
 * gc referents, tracked or not. Breadth-first over the vertex numbers: the
 * vertex array is the queue, so no recursion and no extra memory. */
static PyObject *graph_reachable_from(PyObject *cls, PyObject *obj)
{
    pl_graph *g;
    int rc = pl_graph_new(64, &g);
    if (rc)
        return set_core_error(rc);
    struct reach_ctx ctx = {g, add_vertex_ref(g, obj)};
    for (uint32_t v = 0; !ctx.rc && v < pl_graph_order(g); v++) {
        PyObject *o = vertex_obj(g, v);
        if (PyObject_IS_GC(o) && Py_TYPE(o)->tp_traverse)
            Py_TYPE(o)->tp_traverse(o, reach_add, &ctx);
        if (!ctx.rc && PyFrame_Check(o))
            frame_extra_referents(o, reach_add, &ctx);
    }
    if (ctx.rc || (rc = build_edges(g))) {
        set_core_error(ctx.rc ? ctx.rc : rc);
        release_vertices(g);
        return NULL;
    }
    return wrap((PyTypeObject *)cls, g, 1);
}

/* Graph._from_edges(vertices, pairs): vertices (distinct by identity) and
 * the edges given as (tail index, head index) pairs, in edge order, with
 * tails non-decreasing. Used by the annotated graphs. */
static PyObject *graph_from_edges(PyObject *cls, PyObject *args)
{
    PyObject *vertices, *pairs;
    if (!PyArg_ParseTuple(args, "OO:_from_edges", &vertices, &pairs))
        return NULL;
    PyObject *vs = PySequence_Fast(vertices, "vertices must be a sequence");
    if (!vs)
        return NULL;
    PyObject *es = PySequence_Fast(pairs, "pairs must be a sequence");
    if (!es) {
        Py_DECREF(vs);
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(vs), m = PySequence_Fast_GET_SIZE(es);
    pl_graph *g;
    int rc = pl_graph_new((size_t)n, &g);
    if (rc) {
        Py_DECREF(vs);
        Py_DECREF(es);
        return set_core_error(rc);
    }
    for (Py_ssize_t i = 0; i < n && !rc; i++) {
        PyObject *o = PySequence_Fast_GET_ITEM(vs, i);
        rc = add_vertex_ref(g, o);
        if (!rc && pl_graph_order(g) != (size_t)i + 1)
            rc = PL_EBADARG;
    }
    for (Py_ssize_t i = 0; i < m && !rc; i++) {
        unsigned long t, h;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(es, i), "kk", &t, &h))
            break;
        rc = pl_graph_add_edge(g, (uint32_t)t, (uint32_t)h);
    }
    Py_DECREF(vs);
    Py_DECREF(es);
    if (!rc && !PyErr_Occurred())
        rc = pl_graph_finish(g);
    if (rc || PyErr_Occurred()) {
        if (rc == PL_EBADARG)
            PyErr_SetString(PyExc_ValueError, "duplicate vertex or bad edge order");
        else if (rc)
            set_core_error(rc);
        release_vertices(g);
        return NULL;
    }
    return wrap((PyTypeObject *)cls, g, 1);
}

/* ---- type slots ---- */

static int graph_traverse(PyObject *op, visitproc visit, void *arg)
{
    PlGraphObject *self = (PlGraphObject *)op;
    Py_VISIT(Py_TYPE(op));
    if (self->graph) {
        size_t n = pl_graph_order(self->graph);
        for (uint32_t v = 0; v < n; v++)
            Py_VISIT(vertex_obj(self->graph, v));
    }
    return 0;
}

static int graph_clear(PyObject *op)
{
    PlGraphObject *self = (PlGraphObject *)op;
    pl_graph *g = self->graph;
    /* Detach first: a vertex's finalizer may run code that looks at us. */
    self->graph = NULL;
    if (g)
        release_vertices(g);
    return 0;
}

static void graph_dealloc(PyObject *op)
{
    PyTypeObject *tp = Py_TYPE(op);
    PyObject_GC_UnTrack(op);
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
    return pl_graph_lookup(g, obj_key(o)) != PL_GRAPH_NONE;
}

static PyObject *vertex_list(const pl_graph *g, const uint32_t *vs, size_t k)
{
    PyObject *list = PyList_New((Py_ssize_t)k);
    if (!list)
        return NULL;
    for (size_t i = 0; i < k; i++) {
        PyObject *o = vertex_obj(g, vs[i]);
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
        PyObject *o = vertex_obj(g, v);
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
    uint32_t v = pl_graph_lookup(g, obj_key(obj));
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
            PyObject *pair = PyTuple_Pack(2, vertex_obj(g, v), vertex_obj(g, heads[j]));
            if (!pair) {
                Py_DECREF(list);
                return NULL;
            }
            PyList_SET_ITEM(list, i++, pair);
        }
    }
    return list;
}

/* A new graph of the caller's type induced on vs. */
static PyObject *induced(PyObject *op, const pl_graph *g, const uint32_t *vs, size_t k)
{
    pl_graph *s;
    int rc = pl_graph_subgraph(g, vs, k, &s);
    if (rc)
        return set_core_error(rc);
    return wrap(Py_TYPE(op), s, 0);
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
        return set_core_error(rc);
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
        return set_core_error(rc);
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
    uint32_t e = pl_graph_lookup(g, obj_key(args[1]));
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

/* Lists the subgraphs of the given components (all of them when ids is
 * NULL). */
static PyObject *component_graphs(PyObject *op, const pl_graph *g, const pl_graph_components *c,
                                  const uint32_t *ids, size_t k)
{
    uint32_t *all = NULL;
    if (!ids) {
        all = malloc((c->count + 1) * sizeof(uint32_t));
        if (!all)
            return PyErr_NoMemory();
        for (size_t i = 0; i < c->count; i++)
            all[i] = (uint32_t)i;
        ids = all;
        k = c->count;
    }
    pl_graph **subs = calloc(k + 1, sizeof(pl_graph *));
    PyObject *list = NULL;
    int rc = ENOMEM;
    if (subs) {
        if (pl_graph_order(g) >= NOGIL_THRESHOLD) {
            Py_BEGIN_ALLOW_THREADS
            rc = pl_graph_component_subgraphs(g, c, ids, k, subs);
            Py_END_ALLOW_THREADS
        } else {
            rc = pl_graph_component_subgraphs(g, c, ids, k, subs);
        }
    }
    if (rc) {
        set_core_error(rc);
        goto done;
    }
    list = PyList_New((Py_ssize_t)k);
    for (size_t i = 0; i < k; i++) {
        PyObject *item = list ? wrap(Py_TYPE(op), subs[i], 0) : NULL;
        if (!list) {
            pl_graph_free(subs[i]); /* no references taken yet */
            continue;
        }
        if (!item) {
            Py_CLEAR(list);
            continue;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, item);
    }
done:
    free(subs);
    free(all);
    return list;
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
        set_core_error(rc);
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
    PyObject *r = component_graphs(op, g, &c, NULL, 0);
    pl_graph_components_free(&c);
    return r;
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
    PyObject *r = NULL;
    int rc = pl_graph_source_components(g, &c, &ids, &k);
    if (rc) {
        set_core_error(rc);
    } else {
        r = component_graphs(op, g, &c, ids, k);
        free(ids);
    }
    pl_graph_components_free(&c);
    return r;
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
        return set_core_error(rc);
    return wrap(Py_TYPE(op), s, 0);
}

static PyObject *graph_edge_count(PyObject *op, PyObject *unused)
{
    pl_graph *g = get_graph(op);
    return g ? PyLong_FromSize_t(pl_graph_size(g)) : NULL;
}

static PyObject *graph_nbytes(PyObject *op, PyObject *unused)
{
    pl_graph *g = get_graph(op);
    return g ? PyLong_FromSize_t(pl_graph_memory(g)) : NULL;
}

/* ---- annotations ---- */

enum label_kind {
    LABEL_NAME,    /* a fixed name, e.g. "__dict__" */
    LABEL_ITEM,    /* item[index] */
    LABEL_KEY,     /* key */
    LABEL_VALUE,   /* value[repr(key)] */
    LABEL_LOCAL,   /* local 'name' */
    LABEL_ATTR,    /* an instance attribute held in inline values */
};

typedef struct label {
    uintptr_t target;
    uint32_t seq;
    uint8_t kind;
    uint8_t used;
    const char *name;
    PyObject *obj; /* borrowed: key, local or attribute name */
    Py_ssize_t index;
} label;

typedef struct labels {
    const pl_graph *g;
    label *items;
    size_t len, cap;
    int nomem;
} labels;

static void label_add(labels *ls, PyObject *target, int kind, const char *name, PyObject *obj,
                      Py_ssize_t index)
{
    /* Only edges to vertices are labelled: others are not asked for. */
    if (!target || ls->nomem || pl_graph_lookup(ls->g, obj_key(target)) == PL_GRAPH_NONE)
        return;
    if (ls->len == ls->cap) {
        size_t ncap = ls->cap ? ls->cap * 2 : 16;
        label *it = realloc(ls->items, ncap * sizeof(label));
        if (!it) {
            ls->nomem = 1;
            return;
        }
        ls->items = it;
        ls->cap = ncap;
    }
    label *l = &ls->items[ls->len];
    l->target = (uintptr_t)target;
    l->seq = (uint32_t)ls->len;
    l->kind = (uint8_t)kind;
    l->used = 0;
    l->name = name;
    l->obj = obj;
    l->index = index;
    ls->len++;
}

static void add_name(labels *ls, PyObject *target, const char *name)
{
    label_add(ls, target, LABEL_NAME, name, NULL, 0);
}

#ifdef PL_HAVE_INLINE_VALUES
static int label_inline_attr(PyObject *name, PyObject *value, void *arg)
{
    label_add((labels *)arg, value, LABEL_ATTR, NULL, name, 0);
    return 0;
}
#endif

/* __dict__ without materializing it, or the attributes held inline. */
static void add_instance_dict(labels *ls, PyObject *obj)
{
    PyTypeObject *tp = Py_TYPE(obj);
#ifdef PL_HAVE_INLINE_VALUES
    if (tp->tp_flags & Py_TPFLAGS_MANAGED_DICT) {
        PyObject *dict;
        pl_managed_attrs(obj, &dict, label_inline_attr, ls);
        if (dict)
            add_name(ls, dict, "__dict__");
        return;
    }
#endif
    if (tp->tp_dictoffset > 0 || (tp->tp_dictoffset < 0 && !(tp->tp_flags & Py_TPFLAGS_MANAGED_DICT))) {
        /* Not a managed dict: this only computes the slot's address. */
        PyObject **slot = _PyObject_GetDictPtr(obj);
        if (slot && *slot)
            add_name(ls, *slot, "__dict__");
    }
}

static void add_frame_labels(labels *ls, PyObject *frame)
{
#ifdef PL_FRAME_MIRROR
    frame_mirror *fm = (frame_mirror *)frame;
    add_name(ls, fm->f_back, "f_back");
    add_name(ls, fm->f_trace, "f_trace");
    iframe_mirror *f = frame_data(frame);
    if (!f)
        return;
    add_name(ls, f->f_locals, "f_locals");
    add_name(ls, IFRAME_CODE(f), "f_code");
    add_name(ls, IFRAME_FUNC(f), "f_func");
    PyCodeObject *code = frame_code(f);
    if (!code || !PyTuple_Check(code->co_localsplusnames))
        return;
    Py_ssize_t nnames = PyTuple_GET_SIZE(code->co_localsplusnames);
    for (int i = 0; i < code->co_nlocalsplus && i < nnames; i++)
        label_add(ls, f->localsplus[i], LABEL_LOCAL, NULL,
                  PyTuple_GET_ITEM(code->co_localsplusnames, i), 0);
#endif
}

static void add_function_labels(labels *ls, PyFunctionObject *f)
{
    add_name(ls, f->func_defaults, "__defaults__");
    add_name(ls, f->func_closure, "__closure__");
    add_name(ls, f->func_globals, "__globals__");
    add_name(ls, f->func_code, "__code__");
    add_name(ls, f->func_name, "__name__");
    add_name(ls, f->func_module, "__module__");
    add_name(ls, f->func_doc, "__doc__");
    add_name(ls, f->func_qualname, "__qualname__");
    add_name(ls, f->func_annotations, "__annotations__");
    add_name(ls, f->func_kwdefaults, "__kwdefaults__");
#if PY_VERSION_HEX >= 0x030A0000
    add_name(ls, f->func_builtins, "__builtins__");
#endif
#if PY_VERSION_HEX >= 0x030C0000
    add_name(ls, f->func_typeparams, "__type_params__");
#endif
}

/* Everything obj is known to refer to and under which name, read from its
 * fields: no attribute lookup, so no property, __getattr__ or __dict__
 * creation runs. Mirrors what the reference annotates, plus a few names it
 * leaves blank (inline attributes, a type's __dict__ and __bases__). */
static void collect_labels(labels *ls, PyObject *obj)
{
    PyTypeObject *tp = Py_TYPE(obj);
    if (PyTuple_Check(obj)) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(obj); i++)
            label_add(ls, PyTuple_GET_ITEM(obj, i), LABEL_ITEM, NULL, NULL, i);
    } else if (PyList_Check(obj)) {
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(obj); i++)
            label_add(ls, PyList_GET_ITEM(obj, i), LABEL_ITEM, NULL, NULL, i);
    } else if (PyDict_Check(obj)) {
        Py_ssize_t pos = 0;
        PyObject *k, *v;
        while (PyDict_Next(obj, &pos, &k, &v)) {
            label_add(ls, k, LABEL_KEY, NULL, NULL, 0);
            label_add(ls, v, LABEL_VALUE, NULL, k, 0);
        }
    } else if (PyAnySet_Check(obj)) {
#if PY_VERSION_HEX < 0x030D0000
        Py_ssize_t pos = 0;
        PyObject *k;
        Py_hash_t h;
        while (_PySet_NextEntry(obj, &pos, &k, &h))
            add_name(ls, k, "element");
#else
        /* The builtin set iterator, never an overridden __iter__; the
         * elements stay alive: the set holds them and no code runs. */
        PyObject *it = PySet_Type.tp_iter(obj), *k;
        while (it && (k = PyIter_Next(it))) {
            add_name(ls, k, "element");
            Py_DECREF(k);
        }
        Py_XDECREF(it);
        PyErr_Clear();
#endif
    } else if (PyFunction_Check(obj)) {
        add_function_labels(ls, (PyFunctionObject *)obj);
    } else if (PyFrame_Check(obj)) {
        add_frame_labels(ls, obj);
    } else if (PyCell_Check(obj)) {
        add_name(ls, PyCell_GET(obj), "cell_contents");
    } else if (PyMethod_Check(obj)) {
        add_name(ls, PyMethod_GET_SELF(obj), "__self__");
        add_name(ls, PyMethod_GET_FUNCTION(obj), "__func__");
    } else if (tp == &_PyWeakref_RefType) {
        add_name(ls, ((PyWeakReference *)obj)->wr_callback, "__callback__");
    } else if (PyObject_TypeCheck(obj, &PyGetSetDescr_Type) ||
               PyObject_TypeCheck(obj, &PyMemberDescr_Type) ||
               PyObject_TypeCheck(obj, &PyMethodDescr_Type) ||
               PyObject_TypeCheck(obj, &PyClassMethodDescr_Type) ||
               PyObject_TypeCheck(obj, &PyWrapperDescr_Type)) {
        add_name(ls, (PyObject *)((PyDescrObject *)obj)->d_type, "__objclass__");
        add_name(ls, ((PyDescrObject *)obj)->d_name, "__name__");
    }

    if (PyType_Check(obj)) {
        PyTypeObject *t = (PyTypeObject *)obj;
        add_name(ls, t->tp_mro, "__mro__");
        add_name(ls, t->tp_dict, "__dict__");
        add_name(ls, t->tp_bases, "__bases__");
        add_name(ls, (PyObject *)t->tp_base, "__base__");
        if (t->tp_flags & Py_TPFLAGS_HEAPTYPE)
            add_name(ls, ((PyHeapTypeObject *)t)->ht_module, "__module__");
    } else if (PyModule_Check(obj)) {
        add_name(ls, PyModule_GetDict(obj), "__dict__");
    } else if (PyFunction_Check(obj)) {
        add_name(ls, ((PyFunctionObject *)obj)->func_dict, "__dict__");
    } else {
        add_instance_dict(ls, obj);
    }
    add_name(ls, (PyObject *)tp, "__class__");
}

static int label_cmp(const void *a, const void *b)
{
    const label *x = a, *y = b;
    if (x->target != y->target)
        return x->target < y->target ? -1 : 1;
    return x->seq < y->seq ? -1 : (x->seq > y->seq);
}

/* repr() for keys whose repr runs no Python code; a default-style repr
 * otherwise. */
static PyObject *safe_repr(PyObject *o, int depth)
{
    PyTypeObject *tp = Py_TYPE(o);
    if (tp == &PyUnicode_Type || tp == &PyBytes_Type || tp == &PyLong_Type ||
        tp == &PyFloat_Type || tp == &PyComplex_Type || tp == &PyBool_Type || o == Py_None ||
        o == Py_Ellipsis)
        return PyObject_Repr(o);
    if (tp == &PyTuple_Type && depth < 3) {
        Py_ssize_t n = PyTuple_GET_SIZE(o);
        PyObject *parts = PyList_New(n);
        if (!parts)
            return NULL;
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *r = safe_repr(PyTuple_GET_ITEM(o, i), depth + 1);
            if (!r) {
                Py_DECREF(parts);
                return NULL;
            }
            PyList_SET_ITEM(parts, i, r);
        }
        PyObject *sep = PyUnicode_FromString(", ");
        PyObject *body = sep ? PyUnicode_Join(sep, parts) : NULL;
        Py_XDECREF(sep);
        Py_DECREF(parts);
        if (!body)
            return NULL;
        PyObject *r = PyUnicode_FromFormat(n == 1 ? "(%U,)" : "(%U)", body);
        Py_DECREF(body);
        return r;
    }
    pl_buf name = PL_BUF_INIT;
    if (pl_typename(tp, &name) < 0) {
        pl_buf_free(&name);
        return PyErr_NoMemory();
    }
    PyObject *r = PyUnicode_FromFormat("<%s object at %p>", pl_buf_cstr(&name), (void *)o);
    pl_buf_free(&name);
    return r;
}

static PyObject *label_text(const label *l)
{
    switch (l->kind) {
    case LABEL_NAME: return PyUnicode_FromString(l->name);
    case LABEL_ITEM: return PyUnicode_FromFormat("item[%zd]", l->index);
    case LABEL_KEY: return PyUnicode_FromString("key");
    case LABEL_VALUE: {
        PyObject *r = safe_repr(l->obj, 0);
        if (!r)
            return NULL;
        PyObject *s = PyUnicode_FromFormat("value[%U]", r);
        Py_DECREF(r);
        return s;
    }
    case LABEL_LOCAL: {
        PyObject *r = PyObject_Repr(l->obj); /* a str from co_localsplusnames */
        if (!r)
            return NULL;
        PyObject *s = PyUnicode_FromFormat("local %U", r);
        Py_DECREF(r);
        return s;
    }
    case LABEL_ATTR: Py_INCREF(l->obj); return l->obj;
    }
    Py_RETURN_NONE;
}

/* The short type description the reference shows: __module__ from the
 * type's own dict (no metaclass code), "builtins" for static types without
 * a dotted tp_name. */
static PyObject *type_module_name(PyTypeObject *tp)
{
    if (tp->tp_flags & Py_TPFLAGS_HEAPTYPE) {
        PyObject *mod = tp->tp_dict ? PyDict_GetItemString(tp->tp_dict, "__module__") : NULL;
        if (mod && PyUnicode_Check(mod)) {
            Py_INCREF(mod);
            return mod;
        }
        return PyUnicode_FromString("builtins");
    }
    const char *dot = strrchr(tp->tp_name, '.');
    if (!dot)
        return PyUnicode_FromString("builtins");
    return PyUnicode_FromStringAndSize(tp->tp_name, dot - tp->tp_name);
}

static PyObject *type_short_name(PyTypeObject *tp)
{
    if ((tp->tp_flags & Py_TPFLAGS_HEAPTYPE) && ((PyHeapTypeObject *)tp)->ht_name) {
        PyObject *n = ((PyHeapTypeObject *)tp)->ht_name;
        Py_INCREF(n);
        return n;
    }
    const char *dot = strrchr(tp->tp_name, '.');
    return PyUnicode_FromString(dot ? dot + 1 : tp->tp_name);
}

static PyObject *qualname_of(PyObject *func)
{
    if (PyFunction_Check(func)) {
        PyObject *q = ((PyFunctionObject *)func)->func_qualname;
        if (q && PyUnicode_Check(q)) {
            Py_INCREF(q);
            return q;
        }
    } else if (PyType_Check(func) && (((PyTypeObject *)func)->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
        PyObject *q = ((PyHeapTypeObject *)func)->ht_qualname;
        Py_INCREF(q);
        return q;
    } else if (PyCFunction_Check(func) || PyObject_TypeCheck(func, &PyMethodDescr_Type)) {
        /* Built-in getters: they compute a string and run no Python code. */
        PyObject *q = PyObject_GetAttrString(func, "__qualname__");
        if (q && PyUnicode_Check(q))
            return q;
        Py_XDECREF(q);
        PyErr_Clear();
    }
    return PyUnicode_FromString("<anonymous>");
}

/* The vertex description of the reference's object_annotation, computed
 * without running Python code of the object's class. */
static PyObject *object_annotation(PyObject *obj)
{
    PyTypeObject *tp = Py_TYPE(obj);
    static PyTypeObject *const base_types[] = {&PyBool_Type, &PyLong_Type, &PyFloat_Type,
                                               &PyComplex_Type, &PyBytes_Type, &PyUnicode_Type};
    if (obj == Py_None)
        return PyUnicode_FromString("None");
    for (size_t i = 0; i < sizeof(base_types) / sizeof(base_types[0]); i++)
        if (PyObject_TypeCheck(obj, base_types[i]))
            return base_types[i]->tp_repr(obj); /* the builtin repr, never an override */
    if (PyFunction_Check(obj)) {
        /* The reference tests type(obj).__name__ == "function". */
        return PyUnicode_FromFormat("function\\n%U", ((PyFunctionObject *)obj)->func_name);
    }
    if (PyMethod_Check(obj)) {
        PyObject *q = qualname_of(PyMethod_GET_FUNCTION(obj));
        if (!q)
            return NULL;
        PyObject *r = PyUnicode_FromFormat("instancemethod\\n%U", q);
        Py_DECREF(q);
        return r;
    }
    if (PyList_Check(obj))
        return PyUnicode_FromFormat("list[%zd]", PyList_GET_SIZE(obj));
    if (PyTuple_Check(obj))
        return PyUnicode_FromFormat("tuple[%zd]", PyTuple_GET_SIZE(obj));
    if (PyDict_Check(obj))
        return PyUnicode_FromFormat("dict[%zd]", PyDict_GET_SIZE(obj));
    if (PyModule_Check(obj)) {
        PyObject *dict = PyModule_GetDict(obj);
        PyObject *name = dict ? PyDict_GetItemString(dict, "__name__") : NULL;
        if (name && PyUnicode_Check(name))
            return PyUnicode_FromFormat("module\\n%U", name);
        return PyUnicode_FromString("module\\n?");
    }
    if (PyType_Check(obj)) {
        PyObject *name = type_short_name((PyTypeObject *)obj);
        if (!name)
            return NULL;
        PyObject *r = PyUnicode_FromFormat("type\\n%U", name);
        Py_DECREF(name);
        return r;
    }
    if (PyWeakref_CheckRef(obj)) {
#if PY_VERSION_HEX >= 0x030D0000
        PyObject *referent = NULL;
        if (PyWeakref_GetRef(obj, &referent) < 0)
            PyErr_Clear();
        Py_XDECREF(referent); /* only its address is used below */
#else
        PyObject *referent = PyWeakref_GetObject(obj); /* borrowed */
        if (referent == Py_None)
            referent = NULL;
        PyErr_Clear();
#endif
        if (!referent)
            return PyUnicode_FromString("weakref (dead referent)");
        return PyUnicode_FromFormat("weakref to id %p", (void *)referent);
    }
    if (PyFrame_Check(obj)) {
        PyCodeObject *code = PyFrame_GetCode((PyFrameObject *)obj);
        PyObject *filename = code->co_filename;
        Py_INCREF(filename);
        Py_DECREF(code);
        Py_ssize_t len = PyUnicode_GET_LENGTH(filename);
        if (len > 30) {
            PyObject *tail = PyUnicode_Substring(filename, len - 27, len);
            Py_DECREF(filename);
            if (!tail)
                return NULL;
            filename = PyUnicode_FromFormat("...%U", tail);
            Py_DECREF(tail);
            if (!filename)
                return NULL;
        }
        PyObject *r = PyUnicode_FromFormat("frame\\n%U:%d", filename,
                                           PyFrame_GetLineNumber((PyFrameObject *)obj));
        Py_DECREF(filename);
        return r;
    }
    PyObject *mod = type_module_name(tp), *name = mod ? type_short_name(tp) : NULL;
    PyObject *r = name ? PyUnicode_FromFormat("object\\n%U.%U", mod, name) : NULL;
    Py_XDECREF(mod);
    Py_XDECREF(name);
    return r;
}

/* Labels the out-edges of v into `edges` (a list indexed by edge number). */
static int label_edges_of(const pl_graph *g, uint32_t v, PyObject *edges, labels *ls)
{
    size_t k;
    uint32_t first;
    const uint32_t *heads = pl_graph_out(g, v, &k, &first);
    if (!k)
        return 0;
    ls->len = 0;
    collect_labels(ls, vertex_obj(g, v));
    if (ls->nomem) {
        PyErr_NoMemory();
        return -1;
    }
    qsort(ls->items, ls->len, sizeof(label), label_cmp);
    for (size_t j = 0; j < k; j++) {
        uintptr_t target = (uintptr_t)vertex_obj(g, heads[j]);
        /* First unused label for this target, in the order they were found. */
        size_t lo = 0, hi = ls->len;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (ls->items[mid].target < target)
                lo = mid + 1;
            else
                hi = mid;
        }
        while (lo < ls->len && ls->items[lo].target == target && ls->items[lo].used)
            lo++;
        PyObject *text;
        if (lo < ls->len && ls->items[lo].target == target) {
            ls->items[lo].used = 1;
            text = label_text(&ls->items[lo]);
            if (!text)
                return -1;
        } else {
            text = Py_NewRef(Py_None);
        }
        PyObject *edge = Py_BuildValue("(IIN)", (unsigned)v, (unsigned)heads[j], text);
        if (!edge)
            return -1;
        PyList_SET_ITEM(edges, (Py_ssize_t)(first + j), edge);
    }
    return 0;
}

/* _annotations() -> (vertex descriptions, edges): edges[i] is
 * (tail index, head index, label or None) for edge number i. */
static PyObject *graph_annotations(PyObject *op, PyObject *unused)
{
    pl_graph *g = get_indexed(op);
    if (!g)
        return NULL;
    size_t n = pl_graph_order(g);
    PyObject *vertices = PyList_New((Py_ssize_t)n);
    PyObject *edges = vertices ? PyList_New((Py_ssize_t)pl_graph_size(g)) : NULL;
    labels ls = {g, NULL, 0, 0, 0};
    if (!edges)
        goto fail;
    for (uint32_t v = 0; v < n; v++) {
        PyObject *a = object_annotation(vertex_obj(g, v));
        if (!a)
            goto fail;
        PyList_SET_ITEM(vertices, v, a);
        if (label_edges_of(g, v, edges, &ls) < 0)
            goto fail;
    }
    free(ls.items);
    return Py_BuildValue("(NN)", vertices, edges);
fail:
    free(ls.items);
    Py_XDECREF(vertices);
    Py_XDECREF(edges);
    return NULL;
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
    {"ancestors", (PyCFunction)(void (*)(void))graph_ancestors, METH_VARARGS | METH_KEYWORDS,
     "ancestors(start, generations=None): subgraph of what reaches start."},
    {"descendants", (PyCFunction)(void (*)(void))graph_descendants, METH_VARARGS | METH_KEYWORDS,
     "descendants(start, generations=None): subgraph of what start reaches."},
    {"shortest_path", (PyCFunction)(void (*)(void))graph_shortest_path, METH_FASTCALL,
     "shortest_path(start, end): subgraph on a shortest path; ValueError if none."},
    {"shortest_cycle", graph_shortest_cycle, METH_O,
     "shortest_cycle(start): subgraph on a shortest cycle through start; ValueError if none."},
    {"strongly_connected_components", graph_scc, METH_NOARGS,
     "strongly_connected_components(): list of subgraphs."},
    {"source_components", graph_source_components, METH_NOARGS,
     "source_components(): the components no other component refers to."},
    {"full_subgraph", graph_full_subgraph, METH_O,
     "full_subgraph(objects): the subgraph induced on objects."},
    {"_key_filter", graph_key_filter, METH_VARARGS, "_key_filter(other, keep_common)"},
    {"_edge_count", graph_edge_count, METH_NOARGS, "number of edges"},
    {"_nbytes", graph_nbytes, METH_NOARGS, "bytes of C memory held by the graph"},
    {"_annotations", graph_annotations, METH_NOARGS,
     "_annotations(): (vertex descriptions, [(tail, head, label), ...])."},
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

int pl_graph_module_exec(PyObject *module)
{
    if (PyModule_AddFunctions(module, module_functions) < 0)
        return -1;
    pl_modstate *st = pl_modstate_get(module);
    st->graph_type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &PlGraph_spec, NULL);
    if (!st->graph_type)
        return -1;
    return PyModule_AddObjectRef(module, "Graph", (PyObject *)st->graph_type);
}
