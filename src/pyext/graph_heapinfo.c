/* What an object graph knows about the heap beyond its edges, for retained
 * sizes and roots (graph_int.h, pl_heapinfo): each vertex's shallow size and
 * how many references to it come from outside every pyloot graph, and where
 * the untracked objects the vertices refer to (str, bytes, int, float, ...)
 * belong.
 *
 * An untracked object referenced by k edges from vertices and with a
 * reference count of exactly k is held by those vertices alone: with one
 * holder (or k edges from the same vertex) its size is added to that
 * vertex's own size; with several it becomes a group whose size goes to the
 * holders' lowest common dominator once the dominator tree exists. An
 * untracked object with more references (an interned string, a small int,
 * None) belongs to the root. Objects above PL_HOLDER_LIMIT references are
 * sent to the root without counting their edges: they are the shared
 * constants of the heap, and counting them would cost an entry per edge.
 *
 * Everything is read under the GIL while the objects cannot change (no Python
 * code runs between the reads); the result is plain C memory. */
#include "graph_int.h"

#include <stdlib.h>
#include <string.h>

/* ---- shallow sizes ---- */

#if PY_VERSION_HEX >= 0x030D0000
/* Exported by CPython 3.13 from its internal pycore_dict.h (dict.__sizeof__
 * uses it). */
PyAPI_FUNC(Py_ssize_t) _PyDict_SizeOf(PyDictObject *);
#endif

/* How a type's instances are sized: the nearest C-level __sizeof__ along
 * its MRO decides (one written in Python is skipped, never called). These
 * rules are those of the extension's size function for the history and the
 * live objects (sizeof.c); graph_size_rule and graph_sizeof_by are the two
 * calls to switch to it. */
enum size_kind {
    SIZE_LAYOUT,   /* tp_basicsize + tp_itemsize * |ob_size| (object.__sizeof__) */
    SIZE_DICT,     /* dict.__sizeof__, computed here */
    SIZE_LIST,     /* list.__sizeof__, computed here */
    SIZE_SET,      /* set/frozenset.__sizeof__, computed here */
    SIZE_CALL,     /* an allowlisted builtin C __sizeof__, called through its C pointer */
    SIZE_ESTIMATE, /* another C __sizeof__ (it might run Python code): tp_basicsize */
};

typedef struct size_rule {
    PyTypeObject *tp;
    enum size_kind kind;
    PyCFunction call;
} size_rule;

/* Builtin and standard C types whose __sizeof__ reads C fields only and
 * returns an int. */
static const char *const call_allowlist[] = {
    "type", "str", "int", "bytearray", "code", "frame", "generator", "coroutine", "async_generator",
    "collections.deque", "collections.OrderedDict", "array.array", "_struct.Struct",
    "_io.BytesIO", "_io.BufferedReader", "_io.BufferedWriter", "_io.BufferedRandom",
    "itertools.product", "itertools.combinations", "itertools.combinations_with_replacement",
    "itertools.permutations", "decimal.Decimal", "_pickle.Pickler", "_pickle.Unpickler",
    NULL,
};

static size_rule graph_size_rule(PyTypeObject *tp)
{
    static PyObject *str_sizeof; /* interned "__sizeof__"; kept for the process */
    size_rule rule = {tp, SIZE_LAYOUT, NULL};
    if (!str_sizeof && !(str_sizeof = PyUnicode_InternFromString("__sizeof__"))) {
        PyErr_Clear();
        return rule;
    }
    PyObject *mro = tp->tp_mro;
    for (Py_ssize_t i = 0; mro && PyTuple_Check(mro) && i < PyTuple_GET_SIZE(mro); i++) {
        PyTypeObject *t = (PyTypeObject *)PyTuple_GET_ITEM(mro, i);
        if (!PyType_Check(t))
            continue;
#if PY_VERSION_HEX >= 0x030C0000
        /* 3.12+: a static builtin type's dict is kept by the interpreter,
         * its tp_dict is NULL. */
        PyObject *dict = PyType_GetDict(t);
#else
        PyObject *dict = Py_XNewRef(t->tp_dict);
#endif
        /* The type keeps its dict, and the dict the descriptor, alive. */
        PyObject *f = dict ? PyDict_GetItemWithError(dict, str_sizeof) : NULL;
        Py_XDECREF(dict);
        if (!f) {
            PyErr_Clear();
            continue;
        }
        if (!Py_IS_TYPE(f, &PyMethodDescr_Type))
            continue;
        PyMethodDef *m = ((PyMethodDescrObject *)f)->d_method;
        PyTypeObject *owner = PyDescr_TYPE(f);
        if (owner == &PyBaseObject_Type) {
            rule.kind = SIZE_LAYOUT;
        } else if (owner == &PyDict_Type) {
            rule.kind = SIZE_DICT;
        } else if (owner == &PyList_Type) {
            rule.kind = SIZE_LIST;
        } else if (owner == &PySet_Type || owner == &PyFrozenSet_Type) {
            rule.kind = SIZE_SET;
        } else {
            rule.kind = SIZE_ESTIMATE;
            if ((m->ml_flags & (METH_VARARGS | METH_KEYWORDS | METH_NOARGS | METH_O | METH_FASTCALL)) ==
                METH_NOARGS)
                for (const char *const *n = call_allowlist; *n; n++)
                    if (strcmp(owner->tp_name, *n) == 0) {
                        rule.kind = SIZE_CALL;
                        rule.call = m->ml_meth;
                    }
        }
        return rule;
    }
    return rule;
}

static size_t layout_size(PyObject *o, PyTypeObject *tp)
{
    size_t size = (size_t)tp->tp_basicsize;
    if (tp->tp_itemsize) {
        Py_ssize_t n = Py_SIZE(o);
        size += (size_t)(n < 0 ? -n : n) * (size_t)tp->tp_itemsize;
    }
    return size;
}

/* The memory before the object that sys.getsizeof adds: the gc header and
 * the managed dict (and weakref) pointers. */
static size_t preheader(PyObject *o, PyTypeObject *tp)
{
    size_t size = 0;
#if PY_VERSION_HEX >= 0x030D0000
    if (PyObject_IS_GC(o))
        size += 2 * sizeof(void *);
#else
    (void)o;
    if (PyType_IS_GC(tp))
        size += 2 * sizeof(void *);
#endif
#if PY_VERSION_HEX >= 0x030C0000
    if (tp->tp_flags & (Py_TPFLAGS_MANAGED_DICT | Py_TPFLAGS_MANAGED_WEAKREF))
        size += 2 * sizeof(void *);
#elif PY_VERSION_HEX >= 0x030B0000
    if (tp->tp_flags & Py_TPFLAGS_MANAGED_DICT)
        size += 2 * sizeof(void *);
#endif
    return size;
}

static size_t graph_sizeof_by(PyObject *o, const size_rule *rule)
{
    PyTypeObject *tp = Py_TYPE(o);
    size_t size;
    switch (rule->kind) {
    case SIZE_DICT:
        size = (size_t)_PyDict_SizeOf((PyDictObject *)o);
        break;
    case SIZE_LIST:
        size = (size_t)tp->tp_basicsize + (size_t)((PyListObject *)o)->allocated * sizeof(PyObject *);
        break;
    case SIZE_SET: {
        PySetObject *so = (PySetObject *)o;
        size = (size_t)tp->tp_basicsize;
        if (so->table != so->smalltable)
            size += (size_t)(so->mask + 1) * sizeof(setentry);
        break;
    }
    case SIZE_CALL: {
        /* Creates and drops one int: no gc object, no Python code. */
        PyObject *r = rule->call(o, NULL);
        Py_ssize_t v = r && PyLong_Check(r) ? PyLong_AsSsize_t(r) : -1;
        Py_XDECREF(r);
        if (v < 0) {
            PyErr_Clear();
            v = tp->tp_basicsize;
        }
        size = (size_t)v;
        break;
    }
    case SIZE_ESTIMATE:
        size = (size_t)tp->tp_basicsize;
        break;
    default:
        size = layout_size(o, tp);
        break;
    }
    return size + preheader(o, tp);
}

/* Size rules of the types seen so far, by type address: valid while no
 * Python code runs (a type cannot be freed and its address reused). */
typedef struct size_rules {
    size_rule *slots;
    size_t mask, used;
} size_rules;

static const size_rule *rule_for(size_rules *rs, PyTypeObject *tp)
{
    size_t i = ((uintptr_t)tp >> 4) * 0x9E3779B97F4A7C15ULL >> 40 & rs->mask;
    while (rs->slots[i].tp && rs->slots[i].tp != tp)
        i = (i + 1) & rs->mask;
    if (rs->slots[i].tp)
        return &rs->slots[i];
    if ((rs->used + 1) * 2 > rs->mask + 1) {
        size_t ncap = (rs->mask + 1) * 2;
        size_rule *t = calloc(ncap, sizeof(size_rule));
        if (t) {
            for (size_t k = 0; k <= rs->mask; k++) {
                if (!rs->slots[k].tp)
                    continue;
                size_t j = ((uintptr_t)rs->slots[k].tp >> 4) * 0x9E3779B97F4A7C15ULL >> 40 & (ncap - 1);
                while (t[j].tp)
                    j = (j + 1) & (ncap - 1);
                t[j] = rs->slots[k];
            }
            free(rs->slots);
            rs->slots = t;
            rs->mask = ncap - 1;
            return rule_for(rs, tp);
        }
        if (rs->used == rs->mask) {
            /* Out of memory with one free slot left: it must stay empty to
             * end the probes, so this type is sized by its layout. */
            static size_rule layout = {NULL, SIZE_LAYOUT, NULL};
            return &layout;
        }
    }
    rs->slots[i] = graph_size_rule(tp);
    rs->used++;
    return &rs->slots[i];
}

/* See graph_int.h. */
size_t pl_objgraph_sizeof(PyObject *o)
{
    size_rule rule = graph_size_rule(Py_TYPE(o));
    return graph_sizeof_by(o, &rule);
}

/* ---- building ---- */

/* See graph_int.h. */
void pl_heapinfo_free(pl_heapinfo *h)
{
    if (!h)
        return;
    free(h->outside);
    free(h->size);
    free(h->group_off);
    free(h->group_holder);
    free(h->group_size);
    free(h);
}

/* See graph_int.h. */
size_t pl_heapinfo_memory(const pl_heapinfo *h)
{
    size_t holders = h->ngroups ? h->group_off[h->ngroups] : 0;
    return sizeof(*h) + h->n * (sizeof(uint32_t) + sizeof(uint64_t)) +
           h->ngroups * (sizeof(uint32_t) + sizeof(uint64_t)) + holders * sizeof(uint32_t);
}

/* An untracked object shared by a few vertices: one entry per edge. */
typedef struct shared_edge {
    uint64_t key;
    uint64_t size;
    uint32_t holder;
    uint32_t refs;
} shared_edge;

struct pl_heapinfo_builder {
    pl_heapinfo *h;
    uint64_t *pending;  /* untracked referents not yet read, with their holders */
    uint32_t *pending_holder;
    size_t npending;
    shared_edge *shared;
    size_t nshared, sharedcap;
    uint64_t *roots;    /* set of the untracked objects given to the root */
    size_t rootcap, nroots;
    size_rules rules;
    size_rule last; /* the rule of the last vertex's type (vertices of one type come in runs) */
    int rc;
};

#define PENDING_MAX 4096

/* See graph_int.h. */
int pl_heapinfo_begin(pl_heapinfo_builder **out, size_t n)
{
    *out = NULL;
    pl_heapinfo_builder *b = calloc(1, sizeof(*b));
    if (!b)
        return ENOMEM;
    pl_heapinfo *h = b->h = calloc(1, sizeof(*h));
    if (h) {
        h->n = n;
        h->outside = malloc((n + 1) * sizeof(uint32_t));
        h->size = malloc((n + 1) * sizeof(uint64_t));
    }
    b->pending = malloc(PENDING_MAX * sizeof(uint64_t));
    b->pending_holder = malloc(PENDING_MAX * sizeof(uint32_t));
    b->rootcap = 1024;
    b->roots = calloc(b->rootcap, sizeof(uint64_t));
    b->rules.mask = 255;
    b->rules.slots = calloc(b->rules.mask + 1, sizeof(size_rule));
    if (!h || !h->outside || !h->size || !b->pending || !b->pending_holder || !b->roots ||
        !b->rules.slots) {
        pl_heapinfo_abort(b);
        return ENOMEM;
    }
    *out = b;
    return 0;
}

/* See graph_int.h. */
void pl_heapinfo_vertex(pl_heapinfo_builder *b, uint32_t v, PyObject *o)
{
    Py_ssize_t refs = Py_REFCNT(o);
    b->h->outside[v] = refs > (Py_ssize_t)UINT32_MAX ? UINT32_MAX : (uint32_t)refs;
    if (b->last.tp != Py_TYPE(o))
        b->last = *rule_for(&b->rules, Py_TYPE(o));
    b->h->size[v] = graph_sizeof_by(o, &b->last);
}

static uint64_t hash_key(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return k;
}

/* Gives the untracked object `key` (of `size` bytes) to the root, once. */
static void give_root(pl_heapinfo_builder *b, uint64_t key, uint64_t size)
{
    if (b->nroots * 2 >= b->rootcap) {
        size_t ncap = b->rootcap * 2;
        uint64_t *t = calloc(ncap, sizeof(uint64_t));
        if (!t) {
            b->rc = ENOMEM;
            return;
        }
        for (size_t i = 0; i < b->rootcap; i++) {
            uint64_t k = b->roots[i];
            if (!k)
                continue;
            size_t j = hash_key(k) & (ncap - 1);
            while (t[j])
                j = (j + 1) & (ncap - 1);
            t[j] = k;
        }
        free(b->roots);
        b->roots = t;
        b->rootcap = ncap;
    }
    size_t j = hash_key(key) & (b->rootcap - 1);
    while (b->roots[j]) {
        if (b->roots[j] == key)
            return;
        j = (j + 1) & (b->rootcap - 1);
    }
    b->roots[j] = key;
    b->nroots++;
    b->h->root_size += size;
}

/* Reads the pending untracked referents (prefetched: they are scattered).
 * Runs no Python code: str and int sizes come from their C __sizeof__. */
static void flush_pending(pl_heapinfo_builder *b)
{
    for (size_t i = 0; i < b->npending && !b->rc; i++) {
        if (i + 8 < b->npending)
            __builtin_prefetch((const void *)(uintptr_t)b->pending[i + 8]);
        PyObject *o = (PyObject *)(uintptr_t)b->pending[i];
        uint32_t holder = b->pending_holder[i];
        Py_ssize_t refs = Py_REFCNT(o);
        uint64_t size = graph_sizeof_by(o, rule_for(&b->rules, Py_TYPE(o)));
        if (refs <= 1) {
            b->h->size[holder] += size;
        } else if (refs > PL_HOLDER_LIMIT) {
            give_root(b, b->pending[i], size);
        } else {
            if (b->nshared == b->sharedcap) {
                size_t ncap = b->sharedcap ? b->sharedcap * 2 : 1024;
                shared_edge *s = realloc(b->shared, ncap * sizeof(shared_edge));
                if (!s) {
                    b->rc = ENOMEM;
                    break;
                }
                b->shared = s;
                b->sharedcap = ncap;
            }
            b->shared[b->nshared++] = (shared_edge){b->pending[i], size, holder, (uint32_t)refs};
        }
    }
    b->npending = 0;
}

/* See graph_int.h. */
void pl_heapinfo_untracked(pl_heapinfo_builder *b, uint32_t holder, PyObject *o)
{
    if (b->npending == PENDING_MAX)
        flush_pending(b);
    b->pending[b->npending] = (uint64_t)(uintptr_t)o;
    b->pending_holder[b->npending++] = holder;
}

static int shared_cmp(const void *x, const void *y)
{
    const shared_edge *a = x, *b = y;
    if (a->key != b->key)
        return a->key < b->key ? -1 : 1;
    return a->holder < b->holder ? -1 : a->holder > b->holder;
}

/* Sorts the shared edges by object and splits them: held by the vertices
 * alone or not; one holder or a group. */
static int group_shared(pl_heapinfo_builder *b)
{
    pl_heapinfo *h = b->h;
    qsort(b->shared, b->nshared, sizeof(shared_edge), shared_cmp);
    size_t ngroups = 0, nholders = 0;
    for (size_t i = 0, j; i < b->nshared; i = j) {
        for (j = i + 1; j < b->nshared && b->shared[j].key == b->shared[i].key;)
            j++;
        if (j - i == b->shared[i].refs && b->shared[i].holder != b->shared[j - 1].holder) {
            ngroups++;
            nholders += j - i;
        }
    }
    h->group_off = malloc((ngroups + 1) * sizeof(uint32_t));
    h->group_holder = malloc((nholders + 1) * sizeof(uint32_t));
    h->group_size = malloc((ngroups + 1) * sizeof(uint64_t));
    if (!h->group_off || !h->group_holder || !h->group_size)
        return ENOMEM;
    h->group_off[0] = 0;
    for (size_t i = 0, j; i < b->nshared; i = j) {
        const shared_edge *e = &b->shared[i];
        for (j = i + 1; j < b->nshared && b->shared[j].key == e->key;)
            j++;
        if (j - i != e->refs) {
            give_root(b, e->key, e->size);
        } else if (e->holder == b->shared[j - 1].holder) {
            h->size[e->holder] += e->size;
        } else {
            uint32_t at = h->group_off[h->ngroups];
            for (size_t k = i; k < j; k++)
                if (k == i || b->shared[k].holder != b->shared[k - 1].holder)
                    h->group_holder[at++] = b->shared[k].holder;
            h->group_size[h->ngroups++] = e->size;
            h->group_off[h->ngroups] = at;
        }
    }
    return b->rc;
}

struct discount {
    const pl_graph *g;
    pl_heapinfo *h;
    uint32_t *found;
};

/* Subtracts the reference another graph holds to each of its vertices. */
static void discount_graph(const pl_graph *other, void *arg)
{
    struct discount *d = arg;
    if (other == d->g)
        return;
    const uint64_t *keys = pl_graph_keys(other);
    size_t n = pl_graph_order(other);
    for (size_t base = 0; base < n; base += PENDING_MAX) {
        size_t len = n - base < PENDING_MAX ? n - base : PENDING_MAX;
        pl_graph_lookup_many(d->g, keys + base, len, d->found);
        for (size_t i = 0; i < len; i++)
            if (d->found[i] != PL_GRAPH_NONE && d->h->outside[d->found[i]] > 0)
                d->h->outside[d->found[i]]--;
    }
}

/* See graph_int.h. */
int pl_heapinfo_end(pl_heapinfo_builder *b, const pl_graph *g, pl_heapinfo **out)
{
    *out = NULL;
    flush_pending(b);
    int rc = b->rc ? b->rc : group_shared(b);
    pl_heapinfo *h = b->h;
    if (!rc) {
        /* The graph's own reference, then those of every other live graph. */
        for (size_t v = 0; v < h->n; v++)
            if (h->outside[v] > 0 && h->outside[v] < UINT32_MAX)
                h->outside[v]--;
        struct discount d = {g, h, b->pending_holder};
        pl_objgraph_each(discount_graph, &d);
        *out = h;
        b->h = NULL;
    }
    pl_heapinfo_abort(b);
    return rc;
}

/* See graph_int.h. */
void pl_heapinfo_abort(pl_heapinfo_builder *b)
{
    if (!b)
        return;
    pl_heapinfo_free(b->h);
    free(b->pending);
    free(b->pending_holder);
    free(b->shared);
    free(b->roots);
    free(b->rules.slots);
    free(b);
}

/* ---- for graphs that are not snapshots ---- */

struct lazy_ctx {
    const pl_graph *g;
    pl_heapinfo_builder *b;
    uint32_t holder;
};

static int lazy_visit(PyObject *o, void *arg)
{
    struct lazy_ctx *ctx = arg;
    if (o && pl_graph_lookup(ctx->g, pl_obj_key(o)) == PL_GRAPH_NONE)
        pl_heapinfo_untracked(ctx->b, ctx->holder, o);
    return 0;
}

/* See graph_int.h. */
pl_heapinfo *pl_objgraph_heapinfo(const pl_graph *g)
{
    size_t n = pl_graph_order(g);
    pl_heapinfo_builder *b;
    pl_heapinfo *h = NULL;
    int rc = pl_heapinfo_begin(&b, n);
    if (rc) {
        pl_objgraph_raise(rc);
        return NULL;
    }
    struct lazy_ctx ctx = {g, b, 0};
    for (uint32_t v = 0; v < n; v++) {
        PyObject *o = pl_vertex_obj(g, v);
        pl_heapinfo_vertex(b, v, o);
        ctx.holder = v;
        if (PyObject_IS_GC(o) && Py_TYPE(o)->tp_traverse)
            Py_TYPE(o)->tp_traverse(o, lazy_visit, &ctx);
        if (PyFrame_Check(o))
            pl_objgraph_frame_extras(o, lazy_visit, &ctx);
    }
    if ((rc = pl_heapinfo_end(b, g, &h)))
        pl_objgraph_raise(rc);
    return h;
}
