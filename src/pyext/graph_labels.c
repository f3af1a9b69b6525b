/* Annotations of an object graph: a short description of each vertex and,
 * for each edge, how the tail holds the head, in the words of the live
 * objects' `via` and path steps (referents.c, docs/edges.md):
 * `attribute 'x'`, `item[3]`, `key 'k'`, `value of key 'k'`, `element`,
 * `cell_contents`, `local 'job'`, C-level fields such as `__dict__`.
 *
 * Everything is read from the objects' C fields: no attribute lookup, so no
 * property, __getattr__, __repr__ of the program runs and no __dict__ is
 * created. GIL held throughout. */
#include "graph_int.h"

#include <stdlib.h>
#include <string.h>

#include "referents.h" /* the one labeller of "how does p hold c" */

/* The short type description the reference shows: __module__ from the
 * type's own dict (no metaclass code), "builtins" for static types without
 * a dotted tp_name. */
/* ---- vertex descriptions ---- */

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

/* ---- edge labels: referents.c's words ---- */

/* One labelled reference of the vertex being annotated to another vertex. */
typedef struct label {
    uintptr_t target;
    uint32_t next; /* the next label of the same target, in the order found; NONE */
    uint8_t used;
    pl_edge edge;  /* edge.key is a strong reference */
} label;

#define NONE UINT32_MAX

/* A head of the vertex being labelled (large degrees): its labels, a chain
 * through label.next from the first one not yet given to an edge. */
typedef struct head_slot {
    uint64_t key; /* 0: empty */
    uint32_t first, last;
} head_slot;

typedef struct labels {
    const pl_graph *g;
    label *items;
    size_t len, cap;
    int nomem;
    uint64_t *heads;     /* the keys of the heads, in edge order (small degrees) */
    size_t nheads, headcap;
    head_slot *slots;    /* open addressing on the heads' keys (large degrees) */
    size_t nslots, slotcap;
    uint8_t *seen;       /* a bit per vertex, all clear between calls (sequence_labels) */
} labels;

/* Up to this many out-edges (most vertices: an instance, a small dict), the
 * heads and labels are matched by scanning short arrays in place; above,
 * through a hash table of the heads: either way in time linear in the
 * references, with no sorting. */
#define SMALL_DEGREE 8

static void labels_clear(labels *ls)
{
    for (size_t i = 0; i < ls->len; i++)
        Py_CLEAR(ls->items[i].edge.key);
    ls->len = 0;
}

static size_t slot_of(const labels *ls, uint64_t key)
{
    size_t mask = ls->nslots - 1, j = (size_t)((key >> 4) * 0x9E3779B97F4A7C15ULL >> 20) & mask;
    while (ls->slots[j].key && ls->slots[j].key != key)
        j = (j + 1) & mask;
    return j;
}

/* pl_referent_fn: keeps the labels of references to the heads of the
 * vertex's edges (the others label no edge). */
static int keep_label(PyObject *child, const pl_edge *e, void *arg)
{
    labels *ls = arg;
    uint64_t key = pl_obj_key(child);
    head_slot *slot = NULL;
    if (ls->nheads <= SMALL_DEGREE) {
        size_t i = 0;
        while (i < ls->nheads && ls->heads[i] != key)
            i++;
        if (i == ls->nheads)
            return 0;
    } else {
        slot = &ls->slots[slot_of(ls, key)];
        if (!slot->key)
            return 0;
    }
    if (ls->len == ls->cap) {
        size_t ncap = ls->cap ? ls->cap * 2 : 16;
        label *it = ncap < NONE ? realloc(ls->items, ncap * sizeof(label)) : NULL;
        if (!it) {
            ls->nomem = 1;
            return 1;
        }
        ls->items = it;
        ls->cap = ncap;
    }
    uint32_t at = (uint32_t)ls->len;
    label *l = &ls->items[at];
    l->target = (uintptr_t)child;
    l->next = NONE;
    l->used = 0;
    l->edge = *e;
    Py_XINCREF(l->edge.key); /* a __slots__ name is a temporary string */
    ls->len++;
    if (slot) {
        if (slot->first == NONE)
            slot->first = at;
        else
            ls->items[slot->last].next = at;
        slot->last = at;
    }
    return 0;
}

/* The hash table of the k heads of a vertex of large degree. */
static int index_heads(labels *ls, const pl_graph *g, const uint32_t *heads, size_t k)
{
    size_t want = 16;
    while (want < 2 * k)
        want *= 2;
    if (want > ls->slotcap) {
        head_slot *t = realloc(ls->slots, want * sizeof(head_slot));
        if (!t) {
            PyErr_NoMemory();
            return -1;
        }
        ls->slots = t;
        ls->slotcap = want;
    }
    ls->nslots = want;
    memset(ls->slots, 0, want * sizeof(head_slot));
    for (size_t j = 0; j < k; j++) {
        uint64_t key = pl_graph_key(g, heads[j]);
        head_slot *slot = &ls->slots[slot_of(ls, key)];
        slot->key = key;
        slot->first = slot->last = NONE;
    }
    return 0;
}

/* The labels of an exact list or tuple o when its k edges are its items,
 * in order or in reverse (CPython's list and tuple traverse from the
 * end): edge j gets the first item of its head that no earlier edge took,
 * as each_edge_label would give it, without a table of the heads (the
 * module list of a big heap has a million items). In reverse, an object
 * held twice would take its first position first: such a sequence goes the
 * general way. Returns 1 when done, 0 when the edges are not so (nothing
 * was called), -1 when fn failed or out of memory. */
static int sequence_labels(const pl_graph *g, PyObject *o, labels *ls, const uint32_t *heads, size_t k,
                           uint32_t first, pl_edge_label_fn fn, void *arg)
{
    int is_list = PyList_CheckExact(o);
    if (!is_list && !PyTuple_CheckExact(o))
        return 0;
    PyObject **items = is_list ? ((PyListObject *)o)->ob_item : ((PyTupleObject *)o)->ob_item;
    size_t len = (size_t)(is_list ? PyList_GET_SIZE(o) : PyTuple_GET_SIZE(o));
    if (k != len)
        return 0;
    int forward = 1, reverse = 1;
    for (size_t j = 0; j < k && (forward || reverse); j++) {
        PyObject *head = pl_vertex_obj(g, heads[j]);
        forward &= items[j] == head;
        reverse &= items[len - 1 - j] == head;
    }
    if (!forward && !reverse)
        return 0;
    if (!forward) {
        if (!ls->seen) {
            ls->seen = calloc(pl_graph_order(g) / 8 + 1, 1);
            if (!ls->seen) {
                PyErr_NoMemory();
                return -1;
            }
        }
        size_t j = 0;
        for (; j < k; j++) {
            uint8_t bit = (uint8_t)(1u << (heads[j] & 7));
            if (ls->seen[heads[j] >> 3] & bit)
                break;
            ls->seen[heads[j] >> 3] |= bit;
        }
        int twice = j < k;
        for (size_t i = 0; i < j; i++)
            ls->seen[heads[i] >> 3] = 0;
        if (twice)
            return 0;
    }
    for (size_t j = 0; j < k; j++) {
        pl_edge e = {PL_EDGE_ITEM, NULL, NULL, (Py_ssize_t)(forward ? j : len - 1 - j)};
        if (fn(first + (uint32_t)j, &e, arg) < 0)
            return -1;
    }
    return 1;
}

/* Calls fn(edge number, label or NULL, arg) for each out-edge of v: each
 * edge gets the first label pl_referents_each gave its head and no earlier
 * edge took; NULL when there is none left. */
/* The labels of a small vertex as they come, for the common case where the
 * references are found in the order of the edges (an instance, a small
 * dict): a reference to the next edge's head labels that edge at once; a
 * reference to none of the heads left is skipped; a reference to a later
 * head stops the stream (the general way then starts again). When the
 * stream reaches the last edge, each edge got the first label not given to
 * an earlier edge, as in the general way: a label before it for the same
 * head either went to an earlier edge or would have stopped the stream. */
struct stream {
    const pl_graph *g;
    const uint64_t *keys; /* the heads' keys, in edge order */
    size_t k, at;         /* edges, and the next one to label */
    uint32_t first;
    pl_edge_label_fn fn;
    void *arg;
    int stopped, failed;
};

static int stream_label(PyObject *child, const pl_edge *e, void *arg)
{
    struct stream *s = arg;
    uint64_t key = pl_obj_key(child);
    if (s->at < s->k && s->keys[s->at] == key) {
        int rc = s->fn(s->first + (uint32_t)s->at, e, s->arg);
        if (rc) {
            /* fn failed, or cannot take this label now (1) */
            s->failed = rc < 0;
            s->stopped = rc > 0;
            return 1;
        }
        s->at++;
        return 0;
    }
    for (size_t j = s->at + 1; j < s->k; j++)
        if (s->keys[j] == key) {
            s->stopped = 1;
            return 1;
        }
    return 0;
}

static int each_edge_label(const pl_graph *g, uint32_t v, labels *ls, pl_edge_label_fn fn, void *arg)
{
    size_t k;
    uint32_t first;
    const uint32_t *heads = pl_graph_out(g, v, &k, &first);
    if (!k)
        return 0;
    int done = sequence_labels(g, pl_vertex_obj(g, v), ls, heads, k, first, fn, arg);
    if (done)
        return done < 0 ? -1 : 0;
    if (k <= SMALL_DEGREE) {
        uint64_t keys[SMALL_DEGREE];
        for (size_t j = 0; j < k; j++)
            keys[j] = pl_graph_key(g, heads[j]);
        struct stream s = {g, keys, k, 0, first, fn, arg, 0, 0};
        pl_referents_each(pl_vertex_obj(g, v), stream_label, &s);
        if (s.failed)
            return -1;
        if (!s.stopped && s.at == k)
            return 0;
        /* Out of order, or an edge the labels do not name: the general
         * way labels every edge again. */
    }
    labels_clear(ls);
    ls->nheads = k;
    if (k <= SMALL_DEGREE) {
        if (k > ls->headcap) {
            uint64_t *t = realloc(ls->heads, SMALL_DEGREE * sizeof(uint64_t));
            if (!t) {
                PyErr_NoMemory();
                return -1;
            }
            ls->heads = t;
            ls->headcap = SMALL_DEGREE;
        }
        for (size_t j = 0; j < k; j++)
            ls->heads[j] = pl_graph_key(g, heads[j]);
    } else if (index_heads(ls, g, heads, k) < 0) {
        return -1;
    }
    pl_referents_each(pl_vertex_obj(g, v), keep_label, ls);
    if (ls->nomem) {
        PyErr_NoMemory();
        return -1;
    }
    for (size_t j = 0; j < k; j++) {
        uint64_t key = pl_graph_key(g, heads[j]);
        const pl_edge *e = NULL;
        if (k <= SMALL_DEGREE) {
            /* The labels are in the order found: the first unused one. */
            for (size_t i = 0; i < ls->len; i++)
                if (ls->items[i].target == (uintptr_t)key && !ls->items[i].used) {
                    ls->items[i].used = 1;
                    e = &ls->items[i].edge;
                    break;
                }
        } else {
            head_slot *slot = &ls->slots[slot_of(ls, key)];
            if (slot->first != NONE) {
                e = &ls->items[slot->first].edge;
                slot->first = ls->items[slot->first].next;
            }
        }
        if (fn(first + (uint32_t)j, e, arg) < 0)
            return -1;
    }
    return 0;
}

struct edge_list {
    const pl_graph *g;
    uint32_t tail;
    PyObject *edges;
};

/* pl_edge_label_fn: edges[e] = (tail, head, label text or None). */
static int put_edge(uint32_t e, const pl_edge *how, void *arg)
{
    struct edge_list *el = arg;
    PyObject *text;
    if (how) {
        pl_buf buf = PL_BUF_INIT;
        if (pl_edge_format(how, &buf) < 0) {
            pl_buf_free(&buf);
            PyErr_NoMemory();
            return -1;
        }
        text = PyUnicode_DecodeUTF8(buf.data ? buf.data : "", (Py_ssize_t)buf.len, "replace");
        pl_buf_free(&buf);
        if (!text)
            return -1;
    } else {
        text = Py_NewRef(Py_None);
    }
    size_t k;
    uint32_t first;
    const uint32_t *heads = pl_graph_out(el->g, el->tail, &k, &first);
    PyObject *edge = Py_BuildValue("(IIN)", (unsigned)el->tail, (unsigned)heads[e - first], text);
    if (!edge)
        return -1;
    /* An edge may be labelled twice (each_edge_label's general way after
     * a stopped stream): the second label replaces the first. */
    PyObject *old = PyList_GET_ITEM(el->edges, (Py_ssize_t)e);
    PyList_SET_ITEM(el->edges, (Py_ssize_t)e, edge);
    Py_XDECREF(old);
    return 0;
}

/* Labels the out-edges of v into `edges` (a list indexed by edge number). */
static int label_edges_of(const pl_graph *g, uint32_t v, PyObject *edges, labels *ls)
{
    struct edge_list el = {g, v, edges};
    return each_edge_label(g, v, ls, put_edge, &el);
}

/* See graph_int.h. */
int pl_objgraph_stream_labels(PyObject *obj, const uint64_t *refs, size_t k, pl_edge_label_fn fn, void *arg)
{
    if (k > SMALL_DEGREE || PyFrame_Check(obj) || PyType_Check(obj))
        return 0;
    if (!k)
        return 1;
    struct stream s = {NULL, refs, k, 0, 0, fn, arg, 0, 0};
    pl_referents_each(obj, stream_label, &s);
    if (s.failed)
        return -1;
    return !s.stopped && s.at == k;
}

/* See graph_int.h. */
int pl_objgraph_edge_labels(const pl_graph *g, pl_edge_label_fn vertex_fn, pl_edge_label_fn fn, void *arg)
{
    return pl_objgraph_edge_labels_of(g, NULL, pl_graph_order(g), vertex_fn, fn, arg);
}

/* See graph_int.h. */
int pl_objgraph_edge_labels_of(const pl_graph *g, const uint32_t *only, size_t nonly, pl_edge_label_fn vertex_fn,
                               pl_edge_label_fn fn, void *arg)
{
    labels ls;
    memset(&ls, 0, sizeof ls);
    ls.g = g;
    int rc = 0;
    for (size_t i = 0; i < nonly && !rc; i++) {
        uint32_t v = only ? only[i] : (uint32_t)i;
        int vrc = vertex_fn ? vertex_fn(v, NULL, arg) : 0;
        if (vrc < 0)
            rc = -1;
        else if (!vrc)
            rc = each_edge_label(g, v, &ls, fn, arg);
    }
    labels_clear(&ls);
    free(ls.items);
    free(ls.heads);
    free(ls.slots);
    free(ls.seen);
    return rc;
}

/* See graph_int.h. */
PyObject *pl_objgraph_describe(PyObject *obj)
{
    return object_annotation(obj);
}

/* See graph_int.h: the objects object_annotation describes by their type
 * alone (its last case). Kept next to it so the two never disagree. */
int pl_objgraph_described_by_type(PyObject *obj)
{
    static PyTypeObject *const base_types[] = {&PyBool_Type, &PyLong_Type, &PyFloat_Type,
                                               &PyComplex_Type, &PyBytes_Type, &PyUnicode_Type};
    if (obj == Py_None || PyFunction_Check(obj) || PyMethod_Check(obj) || PyList_Check(obj) ||
        PyTuple_Check(obj) || PyDict_Check(obj) || PyModule_Check(obj) || PyType_Check(obj) ||
        PyWeakref_CheckRef(obj) || PyFrame_Check(obj))
        return 0;
    for (size_t i = 0; i < sizeof(base_types) / sizeof(base_types[0]); i++)
        if (PyObject_TypeCheck(obj, base_types[i]))
            return 0;
    return 1;
}

/* _annotations() -> (vertex descriptions, edges): edges[i] is
 * (tail index, head index, label or None) for edge number i. */
/* See graph_int.h. */
PyObject *pl_objgraph_annotations(const pl_graph *g)
{
    size_t n = pl_graph_order(g);
    PyObject *vertices = PyList_New((Py_ssize_t)n);
    PyObject *edges = vertices ? PyList_New((Py_ssize_t)pl_graph_size(g)) : NULL;
    labels ls;
    memset(&ls, 0, sizeof ls);
    ls.g = g;
    if (!edges)
        goto fail;
    for (uint32_t v = 0; v < n; v++) {
        PyObject *a = object_annotation(pl_vertex_obj(g, v));
        if (!a)
            goto fail;
        PyList_SET_ITEM(vertices, v, a);
        if (label_edges_of(g, v, edges, &ls) < 0)
            goto fail;
    }
    labels_clear(&ls);
    free(ls.items);
    free(ls.heads);
    free(ls.slots);
    free(ls.seen);
    return Py_BuildValue("(NN)", vertices, edges);
fail:
    labels_clear(&ls);
    free(ls.items);
    free(ls.heads);
    free(ls.slots);
    free(ls.seen);
    Py_XDECREF(vertices);
    Py_XDECREF(edges);
    return NULL;
}
