/* sizeof.c: the one shallow size (sizeof.h). */
#include "sizeof.h"

#include <stdlib.h>
#include <string.h>

#if PY_VERSION_HEX >= 0x030D0000
/* Exported by CPython 3.13 from its internal pycore_dict.h (dict.__sizeof__
 * uses it); declared here rather than including the internal headers,
 * which heap.c alone does. */
PyAPI_FUNC(Py_ssize_t) _PyDict_SizeOf(PyDictObject *);
#endif

/* Builtin and standard-library C types whose __sizeof__ reads the object's
 * C fields and returns an int, running no Python code: it is called
 * directly (tp_name of the type defining it). Types with a C __sizeof__ not
 * named here are sized by their layout (an estimate): a third-party
 * __sizeof__ might run Python code. */
static const char *const call_allowlist[] = {
    "type", "str", "int", "bytearray", "code", "frame", "generator", "coroutine", "async_generator",
    "collections.deque", "collections.OrderedDict", "array.array", "_struct.Struct",
    "_io.BytesIO", "_io.BufferedReader", "_io.BufferedWriter", "_io.BufferedRandom",
    "itertools.product", "itertools.combinations", "itertools.combinations_with_replacement",
    "itertools.permutations", "decimal.Decimal", "_pickle.Pickler", "_pickle.Unpickler",
    NULL,
};

static int allowlisted(const PyTypeObject *owner)
{
    for (const char *const *n = call_allowlist; *n; n++)
        if (strcmp(owner->tp_name, *n) == 0)
            return 1;
    return 0;
}

pl_size_rule pl_size_rule_of(PyTypeObject *tp)
{
    static PyObject *str_sizeof; /* interned "__sizeof__"; kept for the process */
    pl_size_rule rule = {PL_SIZE_LAYOUT, NULL};
    if (!str_sizeof) {
        str_sizeof = PyUnicode_InternFromString("__sizeof__");
        if (!str_sizeof) {
            PyErr_Clear();
            return rule;
        }
    }
    PyObject *mro = tp->tp_mro;
    if (!mro || !PyTuple_Check(mro))
        return rule;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(mro); i++) {
        PyTypeObject *t = (PyTypeObject *)PyTuple_GET_ITEM(mro, i);
        if (!PyType_Check(t))
            continue;
#if PY_VERSION_HEX >= 0x030C0000
        /* 3.12+: a static builtin type's dict is kept by the interpreter and
         * its tp_dict is NULL (dict, list, set, object ...). */
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
        /* A __sizeof__ written in Python (or any other callable) is never
         * called: the next C-level one along the MRO decides. */
        if (!Py_IS_TYPE(f, &PyMethodDescr_Type))
            continue;
        PyMethodDef *m = ((PyMethodDescrObject *)f)->d_method;
        PyTypeObject *owner = PyDescr_TYPE(f);
        if (owner == &PyBaseObject_Type)
            rule.kind = PL_SIZE_LAYOUT;
        else if (owner == &PyDict_Type)
            rule.kind = PL_SIZE_DICT;
        else if (owner == &PyList_Type)
            rule.kind = PL_SIZE_LIST;
        else if (owner == &PySet_Type || owner == &PyFrozenSet_Type)
            rule.kind = PL_SIZE_SET;
        else if ((m->ml_flags & (METH_VARARGS | METH_KEYWORDS | METH_NOARGS | METH_O | METH_FASTCALL)) ==
                     METH_NOARGS && allowlisted(owner)) {
            rule.kind = PL_SIZE_CALL;
            rule.call = m->ml_meth;
        } else {
            rule.kind = PL_SIZE_ESTIMATE;
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

/* The memory before the object that sys.getsizeof adds to __sizeof__: the
 * gc header, and on 3.11+ the managed dict (and weakref) pointers, as
 * _PyType_PreHeaderSize counts them. 3.13 counts the gc header only for an
 * object that is gc-managed itself (a static type is not). */
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

size_t pl_sizeof_by(PyObject *o, pl_size_rule rule)
{
    PyTypeObject *tp = Py_TYPE(o);
    size_t size;
    switch (rule.kind) {
    case PL_SIZE_DICT:
        size = (size_t)_PyDict_SizeOf((PyDictObject *)o);
        break;
    case PL_SIZE_LIST:
        size = (size_t)tp->tp_basicsize + (size_t)((PyListObject *)o)->allocated * sizeof(PyObject *);
        break;
    case PL_SIZE_SET: {
        PySetObject *so = (PySetObject *)o;
        size = (size_t)tp->tp_basicsize;
        if (so->table != so->smalltable)
            size += (size_t)(so->mask + 1) * sizeof(setentry);
        break;
    }
    case PL_SIZE_CALL: {
        PyObject *r = rule.call(o, NULL);
        Py_ssize_t v = r && PyLong_Check(r) ? PyLong_AsSsize_t(r) : -1;
        Py_XDECREF(r);
        if (v < 0) {
            PyErr_Clear();
            size = layout_size(o, tp);
        } else {
            size = (size_t)v;
        }
        break;
    }
    default:
        size = layout_size(o, tp);
        break;
    }
    return size + preheader(o, tp);
}

size_t pl_sizeof(PyObject *o)
{
    return pl_sizeof_by(o, pl_size_rule_of(Py_TYPE(o)));
}

/* See sizeof.h. */
size_t pl_sizeof_memo(pl_size_memo *m, PyObject *o)
{
    PyTypeObject *tp = Py_TYPE(o);
    if (tp == m->last_tp)
        return pl_sizeof_by(o, m->last);
    uint32_t at;
    pl_size_rule rule;
    if (pl_ptrmap_get(&m->index, (uintptr_t)tp, &at)) {
        rule = m->rules[at];
    } else {
        rule = pl_size_rule_of(tp);
        if (m->n == m->cap) {
            size_t cap = m->cap ? m->cap * 2 : 64;
            pl_size_rule *r = realloc(m->rules, cap * sizeof(*r));
            if (r) {
                m->rules = r;
                m->cap = cap;
            }
        }
        /* Out of memory: this type's rule is simply decided again next time. */
        if (m->n < m->cap && (m->index.cap || pl_ptrmap_init(&m->index, 64) == 0) &&
            pl_ptrmap_add(&m->index, (uintptr_t)tp, (uint32_t)m->n) == 1)
            m->rules[m->n++] = rule;
    }
    m->last_tp = tp;
    m->last = rule;
    return pl_sizeof_by(o, rule);
}

/* See sizeof.h. */
void pl_size_memo_free(pl_size_memo *m)
{
    pl_ptrmap_free(&m->index);
    free(m->rules);
    memset(m, 0, sizeof(*m));
}
