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

#include "heap.h" /* the fields a C __sizeof__ reads, per CPython version */

/* The kind for a C-level __sizeof__ defined by owner: computed here (or in
 * heap.c, which reads the fields of each CPython version), else estimated. */
static pl_size_kind kind_of_owner(PyTypeObject *owner)
{
    if (owner == &PyBaseObject_Type)
        return PL_SIZE_LAYOUT;
    if (owner == &PyDict_Type)
        return PL_SIZE_DICT;
    if (owner == &PyList_Type)
        return PL_SIZE_LIST;
    if (owner == &PySet_Type || owner == &PyFrozenSet_Type)
        return PL_SIZE_SET;
    if (owner == &PyByteArray_Type)
        return PL_SIZE_BYTEARRAY;
#ifdef PL_HAVE_SIZE_FIELDS
    if (owner == &PyType_Type)
        return PL_SIZE_TYPE;
    if (owner == &PyGen_Type || owner == &PyCoro_Type || owner == &PyAsyncGen_Type)
        return PL_SIZE_GEN;
    if (owner == &PyFrame_Type)
        return PL_SIZE_FRAME;
    if (owner == &PyCode_Type)
        return PL_SIZE_CODE;
    if (owner == &PyLong_Type)
        return PL_SIZE_INT;
    if (owner == &PyUnicode_Type)
        return PL_SIZE_STR;
    if (owner == &PyODict_Type)
        return PL_SIZE_ODICT;
    /* Extension types of the standard library, known by name: a C-level
     * __sizeof__ (a method descriptor) on a type of that exact name. */
    if (strcmp(owner->tp_name, "collections.deque") == 0)
        return PL_SIZE_DEQUE;
    if (strcmp(owner->tp_name, "array.array") == 0)
        return PL_SIZE_ARRAY;
#endif
    return PL_SIZE_ESTIMATE;
}

pl_size_rule pl_size_rule_of(PyTypeObject *tp)
{
    static PyObject *str_sizeof; /* interned "__sizeof__"; kept for the process */
    pl_size_rule rule = {PL_SIZE_LAYOUT};
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
        /* 3.12+: a static builtin type's dict is kept per interpreter, and
         * tp_dict is NULL; the type keeps what this returns alive. */
        PyObject *dict = PyType_GetDict(t);
        Py_XDECREF(dict);
#else
        PyObject *dict = t->tp_dict;
#endif
        PyObject *f = dict ? PyDict_GetItemWithError(dict, str_sizeof) : NULL;
        if (!f) {
            PyErr_Clear();
            continue;
        }
        /* A __sizeof__ written in Python (or any other callable) is never
         * called: the next C-level one along the MRO decides. */
        if (!Py_IS_TYPE(f, &PyMethodDescr_Type))
            continue;
        rule.kind = kind_of_owner(PyDescr_TYPE(f));
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
    case PL_SIZE_BYTEARRAY:
        size = (size_t)tp->tp_basicsize + (size_t)((PyByteArrayObject *)o)->ob_alloc;
        break;
#ifdef PL_HAVE_SIZE_FIELDS
    case PL_SIZE_TYPE:
        size = pl_heap_type_size((PyTypeObject *)o);
        break;
    case PL_SIZE_GEN:
        size = pl_heap_gen_size(o);
        break;
    case PL_SIZE_FRAME:
        size = pl_heap_frame_size(o);
        break;
    case PL_SIZE_CODE:
        size = pl_heap_code_size(o);
        break;
    case PL_SIZE_INT:
        size = pl_heap_int_size(o);
        break;
    case PL_SIZE_STR:
        size = pl_heap_str_size(o);
        break;
    case PL_SIZE_DEQUE:
        size = pl_heap_deque_size(o);
        break;
    case PL_SIZE_ODICT:
        size = pl_heap_odict_size(o);
        break;
    case PL_SIZE_ARRAY:
        size = pl_heap_array_size(o);
        break;
#endif
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
