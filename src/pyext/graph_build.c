/* Building object graphs: vertices from Python objects (the heap for a
 * snapshot, an iterable, what one object reaches), edges from tp_traverse
 * (what gc.get_referents gives), plus what running frames hold.
 *
 * A graph owns one strong reference to each vertex and nothing else: no
 * Python container, so it creates no reference cycle of its own and a
 * snapshot has no storage of its own to leave out. Everything here runs
 * with the GIL held and calls no Python code (tp_traverse only reports
 * pointers), except iterating a user's iterable in pl_objgraph_from_objects.
 *
 * Running frames are read through CPython's internal frame header
 * (internal/pycore_frame.h, as objects_gc.c reads the gc lists), compiled
 * against the exact CPython the extension is built for; versions after 3.13
 * get no extra frame edges until checked here. */
/* Before Python.h: from 3.12 on, the public headers define some names
 * differently when the internal ones will be included. */
#ifndef Py_BUILD_CORE
#define Py_BUILD_CORE 1
#endif
#include "graph_int.h"

#include <stdlib.h>
#include <string.h>

#include "objects_gc.h" /* pl_live_walk: the gc lists, frozen objects included */

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030E0000
#define PL_READ_FRAMES 1
#include <internal/pycore_frame.h>
#endif

/* ---- running frames ---- */

#ifdef PL_READ_FRAMES
#if PY_VERSION_HEX >= 0x030D0000
#define IFRAME_CODE(f) ((f)->f_executable) /* a code object, or None for a shim */
#define IFRAME_FUNC(f) ((f)->f_funcobj)
#elif PY_VERSION_HEX >= 0x030C0000
#define IFRAME_CODE(f) ((PyObject *)(f)->f_code)
#define IFRAME_FUNC(f) ((f)->f_funcobj)
#else
#define IFRAME_CODE(f) ((PyObject *)(f)->f_code)
#define IFRAME_FUNC(f) ((PyObject *)(f)->f_func)
#endif
#endif

/* See graph_int.h. On CPython 3.11+ a frame object whose frame still runs
 * (owned by its thread) reports only f_back and f_trace to tp_traverse; its
 * locals, code, function and f_locals are read here. The value stack is not:
 * its top is not recorded while the frame runs. */
int pl_objgraph_frame_fields(PyObject *frame, int running_only, pl_frame_field_fn fn, void *arg)
{
#ifdef PL_READ_FRAMES
    PyFrameObject *fo = (PyFrameObject *)frame;
    _PyInterpreterFrame *f = fo->f_frame;
    int rc = 0;
    if (!running_only) {
        if ((rc = fn("f_back", NULL, (PyObject *)fo->f_back, arg)) ||
            (rc = fn("f_trace", NULL, fo->f_trace, arg)))
            return rc;
    }
    if (!f || (running_only && f->owner != FRAME_OWNED_BY_THREAD))
        return 0;
    PyObject *code = IFRAME_CODE(f);
    if ((rc = fn("f_locals", NULL, f->f_locals, arg)) || (rc = fn("f_code", NULL, code, arg)) ||
        (rc = fn("f_func", NULL, IFRAME_FUNC(f), arg)))
        return rc;
    if (!code || !PyCode_Check(code))
        return 0;
    PyCodeObject *co = (PyCodeObject *)code;
    PyObject *names = co->co_localsplusnames;
    Py_ssize_t nnames = names && PyTuple_Check(names) ? PyTuple_GET_SIZE(names) : 0;
    for (int i = 0; i < co->co_nlocalsplus; i++) {
        PyObject *local = i < nnames ? PyTuple_GET_ITEM(names, i) : NULL;
        if ((rc = fn(NULL, local, f->localsplus[i], arg)))
            return rc;
    }
#endif
    return 0;
}

struct frame_visit {
    visitproc visit;
    void *arg;
};

static int frame_visit_field(const char *name, PyObject *local, PyObject *value, void *arg)
{
    struct frame_visit *fv = arg;
    return value ? fv->visit(value, fv->arg) : 0;
}

/* Calls visit on what a running frame holds beyond what tp_traverse
 * reports. */
static int frame_extra_referents(PyObject *frame, visitproc visit, void *arg)
{
    struct frame_visit fv = {visit, arg};
    return pl_objgraph_frame_fields(frame, 1, frame_visit_field, &fv);
}

/* ---- edges ---- */

/* Referents are gathered in batches and looked up together, so the index
 * lookups can be prefetched: on a large heap each one is a cache miss. */
#define EDGE_BATCH 65536

struct edge_ctx {
    pl_graph *g;
    uint64_t *refs;  /* referents of the vertices in the batch, in order */
    uint32_t *tails; /* the vertex each referent belongs to */
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
    ctx->refs[ctx->len] = pl_obj_key(o);
    ctx->tails[ctx->len++] = ctx->tail;
    return 0;
}

/* Adds the edges of every vertex (the same referents gc.get_referents
 * reports, plus running frames' extras), then finishes the graph. */
static int build_edges(pl_graph *g)
{
    struct edge_ctx ctx = {g, NULL, NULL, 0, 0, 0};
    ctx.refs = malloc(EDGE_BATCH * sizeof(uint64_t));
    ctx.tails = malloc(EDGE_BATCH * sizeof(uint32_t));
    if (!ctx.refs || !ctx.tails)
        ctx.rc = ENOMEM;
    size_t n = pl_graph_order(g);
    for (uint32_t v = 0; v < n && !ctx.rc; v++) {
        PyObject *o = pl_vertex_obj(g, v);
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

/* ---- vertices ---- */

void pl_objgraph_release(pl_graph *g)
{
    if (!g)
        return;
    size_t n = pl_graph_order(g);
    for (uint32_t v = 0; v < n; v++)
        Py_DECREF(pl_vertex_obj(g, v));
    pl_graph_free(g);
}

static int add_vertex_ref(pl_graph *g, PyObject *o)
{
    int added;
    int rc = pl_graph_add_vertex(g, pl_obj_key(o), NULL, &added);
    if (rc == 0 && added)
        Py_INCREF(o);
    return rc;
}

/* Vertices are added in batches too (see EDGE_BATCH); each object gets its
 * reference when it is added, while the caller keeps it alive. */
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
     * (pl_objgraph_release drops the graph with one per vertex). */
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
        b->keys[b->len++] = pl_obj_key(o);
}

static void batch_free(struct vertex_batch *b)
{
    free(b->keys);
    free(b->added);
}

static int add_sequence(pl_graph *g, PyObject *seq)
{
    /* The sequence keeps its items alive while they are added, and no
     * Python code runs meanwhile. */
    struct vertex_batch batch;
    if (!batch_init(&batch, g)) {
        Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
        PyObject **items = PySequence_Fast_ITEMS(seq);
        for (Py_ssize_t i = 0; i < n && !batch.rc; i++)
            batch_add(&batch, items[i]);
        batch_flush(&batch);
    }
    batch_free(&batch);
    return batch.rc;
}

/* Adds the items of any iterable; -1 with an exception set on failure. */
static int add_iterable(pl_graph *g, PyObject *objects)
{
    PyObject *it = PyObject_GetIter(objects);
    if (!it)
        return -1;
    PyObject *o;
    while ((o = PyIter_Next(it))) {
        int rc = add_vertex_ref(g, o);
        Py_DECREF(o);
        if (rc) {
            Py_DECREF(it);
            pl_objgraph_raise(rc);
            return -1;
        }
    }
    Py_DECREF(it);
    return PyErr_Occurred() ? -1 : 0;
}

/* See graph_int.h. */
pl_graph *pl_objgraph_from_objects(PyObject *objects)
{
    Py_ssize_t hint = objects ? PyObject_LengthHint(objects, 16) : 0;
    if (hint < 0)
        return NULL;
    pl_graph *g;
    int rc = pl_graph_new((size_t)hint, &g);
    if (rc) {
        pl_objgraph_raise(rc);
        return NULL;
    }
    if (objects && (PyList_CheckExact(objects) || PyTuple_CheckExact(objects))) {
        if ((rc = add_sequence(g, objects))) {
            pl_objgraph_raise(rc);
            goto fail;
        }
    } else if (objects && add_iterable(g, objects) < 0) {
        goto fail;
    }
    if ((rc = build_edges(g))) {
        pl_objgraph_raise(rc);
        goto fail;
    }
    return g;
fail:
    pl_objgraph_release(g);
    return NULL;
}

/* ---- snapshot ---- */

/* The visit only gathers the objects (and takes a reference to each): the
 * index is then built once at its final size. */
struct snap_ctx {
    uint64_t *keys;
    size_t len, cap;
    PyTypeObject *exclude;
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
    ctx->keys[ctx->len++] = pl_obj_key(o);
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

/* See graph_int.h. */
pl_graph *pl_objgraph_snapshot(PyTypeObject *exclude, long skip)
{
    struct snap_ctx ctx = {NULL, 0, 0, exclude, 0};
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
        pl_objgraph_raise(rc);
        goto fail;
    }
    return g;
fail:
    pl_objgraph_release(g);
    return NULL;
}

/* ---- reachable from one object ---- */

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

/* Breadth-first over the vertex numbers: the vertex array is the queue, so
 * no recursion and no extra memory. */
pl_graph *pl_objgraph_reachable(PyObject *obj)
{
    pl_graph *g;
    int rc = pl_graph_new(64, &g);
    if (rc) {
        pl_objgraph_raise(rc);
        return NULL;
    }
    struct reach_ctx ctx = {g, add_vertex_ref(g, obj)};
    for (uint32_t v = 0; !ctx.rc && v < pl_graph_order(g); v++) {
        PyObject *o = pl_vertex_obj(g, v);
        if (PyObject_IS_GC(o) && Py_TYPE(o)->tp_traverse)
            Py_TYPE(o)->tp_traverse(o, reach_add, &ctx);
        if (!ctx.rc && PyFrame_Check(o))
            frame_extra_referents(o, reach_add, &ctx);
    }
    if (ctx.rc || (rc = build_edges(g))) {
        pl_objgraph_raise(ctx.rc ? ctx.rc : rc);
        pl_objgraph_release(g);
        return NULL;
    }
    return g;
}

/* ---- explicit edges ---- */

pl_graph *pl_objgraph_from_edges(PyObject *vertices, PyObject *pairs)
{
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
        pl_objgraph_raise(rc);
        return NULL;
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
            pl_objgraph_raise(rc);
        pl_objgraph_release(g);
        return NULL;
    }
    return g;
}
