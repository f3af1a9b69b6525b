/* Annotations of an object graph: a short description of each vertex and,
 * for each edge, how the tail holds the head (refcycle's words: attribute
 * names, `item[3]`, `key`, `value['k']`, `element`, `cell_contents`, frame
 * fields and `local 'name'`).
 *
 * Everything is read from the objects' C fields: no attribute lookup, so no
 * property, __getattr__, __repr__ of the program runs and no __dict__ is
 * created. GIL held throughout.
 *
 * The edge labeller is one piece: collect_labels (what an object holds and
 * under which name) and label_text (the words), used only by
 * label_edges_of. Switching to another labeller changes that section and
 * label_edges_of, nothing else. */
#include "graph_int.h"

#include <stdlib.h>
#include <string.h>

#include "heap.h" /* pl_managed_attrs: inline attributes without a __dict__ */

/* ---- the edge labeller ---- */
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
    if (!target || ls->nomem || pl_graph_lookup(ls->g, pl_obj_key(target)) == PL_GRAPH_NONE)
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

static int frame_label(const char *name, PyObject *local, PyObject *value, void *arg)
{
    labels *ls = arg;
    if (name)
        add_name(ls, value, name);
    else if (local)
        label_add(ls, value, LABEL_LOCAL, NULL, local, 0);
    return 0;
}

static void add_frame_labels(labels *ls, PyObject *frame)
{
    pl_objgraph_frame_fields(frame, 0, frame_label, ls);
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

/* ---- matching labels to edges ---- */

/* Labels the out-edges of v into `edges` (a list indexed by edge number). */
static int label_edges_of(const pl_graph *g, uint32_t v, PyObject *edges, labels *ls)
{
    size_t k;
    uint32_t first;
    const uint32_t *heads = pl_graph_out(g, v, &k, &first);
    if (!k)
        return 0;
    ls->len = 0;
    collect_labels(ls, pl_vertex_obj(g, v));
    if (ls->nomem) {
        PyErr_NoMemory();
        return -1;
    }
    qsort(ls->items, ls->len, sizeof(label), label_cmp);
    for (size_t j = 0; j < k; j++) {
        uintptr_t target = (uintptr_t)pl_vertex_obj(g, heads[j]);
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
/* See graph_int.h. */
PyObject *pl_objgraph_annotations(const pl_graph *g)
{
    size_t n = pl_graph_order(g);
    PyObject *vertices = PyList_New((Py_ssize_t)n);
    PyObject *edges = vertices ? PyList_New((Py_ssize_t)pl_graph_size(g)) : NULL;
    labels ls = {g, NULL, 0, 0, 0};
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
    free(ls.items);
    return Py_BuildValue("(NN)", vertices, edges);
fail:
    free(ls.items);
    Py_XDECREF(vertices);
    Py_XDECREF(edges);
    return NULL;
}
