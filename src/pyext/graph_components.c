/* The result of strongly_connected_components() and source_components():
 * the _pyloot.Components type, a read-only sequence of component graphs.
 *
 * It keeps the partition the core computed (one array of members, grouped
 * by component, and each vertex's component) and a reference to the graph
 * it partitions; a component's graph is built when it is asked for
 * (indexing, iteration) and not kept: len(), sizes() and iteration cost no
 * graph per component that is not used, so a heap of a million singleton
 * components is split in the time of one pass over the graph. Everything
 * here runs with the GIL held, except building a large component's
 * subgraph. */
#include "graph_int.h"

#include <stdlib.h>
#include <string.h>

/* Components at least this large are built without the GIL. */
#define NOGIL_THRESHOLD 50000

typedef struct {
    PyObject_HEAD
    PyObject *graph;         /* the Graph partitioned (strong reference) */
    pl_graph_components c;   /* owned */
    uint32_t *ids;           /* owned: the components listed, NULL for all in order */
    size_t k;                /* how many are listed */
    uint32_t *place;         /* owned; made on the first subgraph (pl_graph_component_places) */
    PyObject *items;         /* a list of every component's graph, once sort() needed
                              * them: from then on the sequence is that list */
} PlComponentsObject;

/* The type of the module last initialised. Borrowed: the module state owns
 * it. Protected by the GIL. */
static PyTypeObject *components_type;

/* See graph_int.h. */
PyObject *pl_components_new(PyObject *graph, pl_graph_components *c, uint32_t *ids, size_t k)
{
    if (!components_type) {
        pl_graph_components_free(c);
        free(ids);
        PyErr_SetString(PyExc_RuntimeError, "pyloot._pyloot is not initialised");
        return NULL;
    }
    PlComponentsObject *self = PyObject_GC_New(PlComponentsObject, components_type);
    if (!self) {
        pl_graph_components_free(c);
        free(ids);
        return NULL;
    }
    Py_INCREF(graph);
    self->graph = graph;
    self->c = *c;
    memset(c, 0, sizeof(*c));
    self->ids = ids;
    self->k = ids ? k : self->c.count;
    self->place = NULL;
    self->items = NULL;
    PyObject_GC_Track(self);
    return (PyObject *)self;
}

static int components_traverse(PyObject *op, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(op));
    Py_VISIT(((PlComponentsObject *)op)->graph);
    Py_VISIT(((PlComponentsObject *)op)->items);
    return 0;
}

static int components_clear(PyObject *op)
{
    Py_CLEAR(((PlComponentsObject *)op)->graph);
    Py_CLEAR(((PlComponentsObject *)op)->items);
    return 0;
}

static void components_dealloc(PyObject *op)
{
    PlComponentsObject *self = (PlComponentsObject *)op;
    PyTypeObject *tp = Py_TYPE(op);
    PyObject_GC_UnTrack(op);
    components_clear(op);
    pl_graph_components_free(&self->c);
    free(self->ids);
    free(self->place);
    tp->tp_free(op);
    Py_DECREF(tp);
}

static Py_ssize_t components_len(PyObject *op)
{
    PlComponentsObject *self = (PlComponentsObject *)op;
    return self->items ? PyList_GET_SIZE(self->items) : (Py_ssize_t)self->k;
}

/* The component number of entry i (0 <= i < k). */
static uint32_t component_id(const PlComponentsObject *self, size_t i)
{
    return self->ids ? self->ids[i] : (uint32_t)i;
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The graph of entry i, a new graph of the partitioned graph's type. */
static PyObject *component_graph(PlComponentsObject *self, Py_ssize_t i)
{
    if (i < 0 || i >= components_len((PyObject *)self)) {
        PyErr_SetString(PyExc_IndexError, "component index out of range");
        return NULL;
    }
    if (self->items)
        return Py_NewRef(PyList_GET_ITEM(self->items, i));
    if (!self->graph) {
        PyErr_SetString(PyExc_ValueError, "the components were cleared");
        return NULL;
    }
    const pl_graph *g = pl_objgraph_graph(self->graph);
    if (!g)
        return NULL;
    uint32_t id = component_id(self, (size_t)i);
    int rc = 0;
    if (!self->place)
        rc = pl_graph_component_places(g, &self->c, &self->place);
    pl_graph *sub = NULL;
    if (!rc) {
        if (self->c.start[id + 1] - self->c.start[id] >= NOGIL_THRESHOLD) {
            Py_BEGIN_ALLOW_THREADS
            rc = pl_graph_component_subgraph(g, &self->c, self->place, id, &sub);
            Py_END_ALLOW_THREADS
        } else {
            rc = pl_graph_component_subgraph(g, &self->c, self->place, id, &sub);
        }
    }
    if (rc)
        return pl_raise(NULL, rc, "the graph operation");
    return pl_objgraph_wrap(Py_TYPE(self->graph), sub, 0);
}

static PyObject *components_item(PyObject *op, Py_ssize_t i)
{
    return component_graph((PlComponentsObject *)op, i);
}

/* c[i] (negative i counts from the end) or c[a:b:s] (a list). */
static PyObject *components_subscript(PyObject *op, PyObject *key)
{
    PlComponentsObject *self = (PlComponentsObject *)op;
    if (PyIndex_Check(key)) {
        Py_ssize_t i = PyNumber_AsSsize_t(key, PyExc_IndexError);
        if (i == -1 && PyErr_Occurred())
            return NULL;
        if (i < 0)
            i += components_len(op);
        return component_graph(self, i);
    }
    if (!PySlice_Check(key)) {
        PyErr_Format(PyExc_TypeError, "component indices must be integers or slices, not %.200s",
                     Py_TYPE(key)->tp_name);
        return NULL;
    }
    Py_ssize_t start, stop, step;
    if (PySlice_Unpack(key, &start, &stop, &step) < 0)
        return NULL;
    Py_ssize_t n = PySlice_AdjustIndices(components_len(op), &start, &stop, step);
    PyObject *list = PyList_New(n);
    for (Py_ssize_t j = 0; list && j < n; j++) {
        PyObject *item = component_graph(self, start + j * step);
        if (!item)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, j, item);
    }
    return list;
}

/* sizes(): the number of vertices of each component, in order, without
 * building their graphs. */
static PyObject *components_sizes(PyObject *op, PyObject *unused)
{
    PlComponentsObject *self = (PlComponentsObject *)op;
    if (self->items) {
        Py_ssize_t n = PyList_GET_SIZE(self->items);
        PyObject *list = PyList_New(n);
        for (Py_ssize_t i = 0; list && i < n; i++) {
            Py_ssize_t len = PyObject_Length(PyList_GET_ITEM(self->items, i));
            PyObject *size = len < 0 ? NULL : PyLong_FromSsize_t(len);
            if (!size)
                Py_CLEAR(list);
            else
                PyList_SET_ITEM(list, i, size);
        }
        return list;
    }
    PyObject *list = PyList_New((Py_ssize_t)self->k);
    for (size_t i = 0; list && i < self->k; i++) {
        uint32_t id = component_id(self, i);
        PyObject *size = PyLong_FromUnsignedLong(self->c.start[id + 1] - self->c.start[id]);
        if (!size)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, (Py_ssize_t)i, size);
    }
    return list;
}

/* Equal to a list, a tuple or another Components with equal items (graphs
 * compare by identity: in practice, when both are empty), as the list
 * refcycle returns would be. */
static PyObject *components_richcompare(PyObject *op, PyObject *other, int cmp)
{
    if ((cmp != Py_EQ && cmp != Py_NE) ||
        !(PyList_Check(other) || PyTuple_Check(other) || Py_TYPE(other) == Py_TYPE(op)))
        Py_RETURN_NOTIMPLEMENTED;
    Py_ssize_t n = PyObject_Length(other);
    if (n < 0)
        return NULL;
    int equal = n == components_len(op);
    for (Py_ssize_t i = 0; equal && i < n; i++) {
        PyObject *mine = component_graph((PlComponentsObject *)op, i);
        PyObject *theirs = mine ? PySequence_GetItem(other, i) : NULL;
        int r = theirs ? PyObject_RichCompareBool(mine, theirs, Py_EQ) : -1;
        Py_XDECREF(mine);
        Py_XDECREF(theirs);
        if (r < 0)
            return NULL;
        equal = r;
    }
    return PyBool_FromLong(cmp == Py_EQ ? equal : !equal);
}

static PyObject *components_repr(PyObject *op)
{
    return PyUnicode_FromFormat("<pyloot.Components: %zd strongly connected components>",
                                components_len(op));
}

/* Orders the listed components by size (stable; descending when reverse),
 * without building their graphs. */
static int sort_by_size(PlComponentsObject *self, int reverse)
{
    uint64_t *keyed = malloc((self->k + 1) * sizeof(uint64_t));
    uint32_t *ids = self->ids ? self->ids : malloc((self->k + 1) * sizeof(uint32_t));
    if (!keyed || !ids) {
        free(keyed);
        if (ids != self->ids)
            free(ids);
        PyErr_NoMemory();
        return -1;
    }
    /* size in the high half (complemented for descending), the place in the
     * low half: the sort of these numbers is stable. */
    for (size_t i = 0; i < self->k; i++) {
        uint32_t id = component_id(self, i);
        uint64_t size = self->c.start[id + 1] - self->c.start[id];
        keyed[i] = ((reverse ? UINT32_MAX - size : size) << 32) | i;
    }
    qsort(keyed, self->k, sizeof(uint64_t), compare_u64);
    uint32_t *was = self->ids;
    for (size_t i = 0; i < self->k; i++) {
        size_t from = (size_t)(keyed[i] & UINT32_MAX);
        keyed[i] = was ? was[from] : from;
    }
    for (size_t i = 0; i < self->k; i++)
        ids[i] = (uint32_t)keyed[i];
    self->ids = ids;
    free(keyed);
    return 0;
}

/* sort(*, key=None, reverse=False), as list.sort: key=len orders the
 * components by size without building their graphs; any other key builds
 * them all once, and the sequence keeps them from then on. */
static PyObject *components_sort(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"key", "reverse", NULL};
    PlComponentsObject *self = (PlComponentsObject *)op;
    PyObject *key = Py_None;
    int reverse = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|$Op:sort", kwlist, &key, &reverse))
        return NULL;
    PyObject *len = PyDict_GetItemString(PyEval_GetBuiltins(), "len"); /* borrowed */
    if (!self->items && key == len && len) {
        if (sort_by_size(self, reverse) < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    if (!self->items) {
        PyObject *items = PySequence_List(op);
        if (!items)
            return NULL;
        self->items = items;
    }
    PyObject *sort = PyObject_GetAttrString(self->items, "sort");
    PyObject *r = sort ? PyObject_Call(sort, args, kwds) : NULL;
    Py_XDECREF(sort);
    return r;
}

static PyMethodDef components_methods[] = {
    {"sizes", components_sizes, METH_NOARGS,
     "sizes(): the number of objects in each component, without building their graphs."},
    {"sort", (PyCFunction)(void (*)(void))components_sort, METH_VARARGS | METH_KEYWORDS,
     "sort(*, key=None, reverse=False): as list.sort; key=len builds no graph."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot components_slots[] = {
    {Py_tp_dealloc, components_dealloc},
    {Py_tp_traverse, components_traverse},
    {Py_tp_clear, components_clear},
    {Py_tp_repr, components_repr},
    {Py_tp_richcompare, components_richcompare},
    {Py_tp_hash, PyObject_HashNotImplemented},
    {Py_tp_methods, components_methods},
    {Py_sq_length, components_len},
    {Py_sq_item, components_item},
    {Py_mp_length, components_len},
    {Py_mp_subscript, components_subscript},
    {Py_tp_doc, (void *)"Strongly connected components: a read-only sequence of graphs, each\n"
                        "built when it is used."},
    {0, NULL},
};

static PyType_Spec PlComponents_spec = {
    .name = "pyloot._pyloot.Components",
    .basicsize = sizeof(PlComponentsObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_SEQUENCE,
    .slots = components_slots,
};

/* See graph_int.h. */
int pl_components_module_exec(PyObject *module)
{
    pl_modstate *st = pl_modstate_get(module);
    st->components_type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &PlComponents_spec, NULL);
    if (!st->components_type)
        return -1;
    components_type = st->components_type;
    return PyModule_AddObjectRef(module, "Components", (PyObject *)st->components_type);
}
