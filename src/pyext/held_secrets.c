/* held_secrets.c: the values held under a secret-looking name
 * (held_secrets.h). */
#include "held_secrets.h"

#include <string.h>

#include "describe.h" /* pl_secret_name */
#include "heap.h"
#include "pyloot/redact.h"

#if PY_VERSION_HEX < 0x030C0000
#include <structmember.h>
#define HELD_T_OBJECT_EX T_OBJECT_EX
#define HELD_READONLY READONLY
#else
#define HELD_T_OBJECT_EX Py_T_OBJECT_EX
#define HELD_READONLY Py_READONLY
#endif

/* The walk's state: the set being filled, a cache of the names already
 * judged (an interned attribute name is met once per instance), and the
 * frame objects met, whose locals are read after the walk. */
struct held_build {
    pl_held_secrets *s;
    pl_ptrmap names; /* name address -> 1 secret, 2 not */
    pl_objvec frames;
    int err;
};

int pl_secret_kind(PyObject *o)
{
    if (PyUnicode_Check(o))
        return PyUnicode_GET_LENGTH(o) >= 2;
    if (PyBytes_Check(o))
        return PyBytes_GET_SIZE(o) >= 2;
    if (PyByteArray_Check(o))
        return PyByteArray_GET_SIZE(o) >= 2;
    if (PyBool_Check(o))
        return 0;
    if (PyLong_Check(o)) {
        int overflow = 0;
        long v = PyLong_AsLongAndOverflow(o, &overflow); /* an int object: no __index__ runs */
        if (v == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            return 1;
        }
        return overflow || v < -5 || v > 256;
    }
    if (PyTuple_Check(o))
        return PyTuple_GET_SIZE(o) > 0; /* () is one object shared by the interpreter */
    if (PyList_Check(o))
        return PyList_GET_SIZE(o) > 0;
    if (PyAnySet_Check(o))
        return PySet_GET_SIZE(o) > 0;
    if (PyDict_Check(o))
        return PyDict_GET_SIZE(o) > 0;
    return PyFloat_Check(o) || PyComplex_Check(o);
}

static int name_is_secret(struct held_build *b, PyObject *name)
{
    if (!PyUnicode_Check(name))
        return 0;
    int added = pl_ptrmap_add(&b->names, (uintptr_t)name, 0);
    if (added < 0) {
        b->err = 1;
        return pl_secret_name(name);
    }
    uint32_t *slot = pl_ptrmap_slot(&b->names, (uintptr_t)name);
    if (added == 1)
        *slot = pl_secret_name(name) ? 1 : 2;
    return *slot == 1;
}

static void add_held(struct held_build *b, PyObject *v, int depth);

struct held_elements {
    struct held_build *b;
    int left, depth;
};

static int add_element(PyObject *e, void *arg)
{
    struct held_elements *x = arg;
    if (x->left-- <= 0)
        return 1;
    add_held(x->b, e, x->depth);
    return x->b->err;
}

/* Adds v, held under a secret name, and what it shows in its repr. */
static void add_held(struct held_build *b, PyObject *v, int depth)
{
    if (!v || b->err || !pl_secret_kind(v))
        return;
    int added = pl_ptrmap_add(&b->s->values, (uintptr_t)v, 0);
    if (added < 0) {
        b->err = 1;
        return;
    }
    if (added == 0 || depth >= PL_HELD_DEPTH)
        return; /* already followed (a self-referencing container too) */
    if (PyTuple_Check(v) || PyList_Check(v)) {
        Py_ssize_t n = PyTuple_Check(v) ? PyTuple_GET_SIZE(v) : PyList_GET_SIZE(v);
        for (Py_ssize_t i = 0; i < n && i < PL_HELD_ITEMS && !b->err; i++)
            add_held(b, PyTuple_Check(v) ? PyTuple_GET_ITEM(v, i) : PyList_GET_ITEM(v, i), depth + 1);
    } else if (PyDict_Check(v)) {
        Py_ssize_t pos = 0, i = 0;
        PyObject *k, *val;
        while (i++ < PL_HELD_ITEMS && !b->err && PyDict_Next(v, &pos, &k, &val))
            add_held(b, val, depth + 1);
    } else if (PyAnySet_Check(v)) {
        struct held_elements x = {b, PL_HELD_ITEMS, depth + 1};
        pl_set_elements(v, add_element, &x);
    }
}

static int held_attr(PyObject *name, PyObject *value, void *arg)
{
    struct held_build *b = arg;
    if (value && pl_secret_kind(value) && name_is_secret(b, name))
        add_held(b, value, 0);
    return b->err;
}

static void scan_dict(struct held_build *b, PyObject *d)
{
    Py_ssize_t pos = 0;
    PyObject *k, *v;
    while (!b->err && PyDict_Next(d, &pos, &k, &v))
        held_attr(k, v, b);
}

/* The __slots__ of o's heap types, named by their C strings (no name
 * object is made per instance). */
static void scan_slots(struct held_build *b, PyObject *o)
{
    PyObject *mro = Py_TYPE(o)->tp_mro;
    if (!mro || !PyTuple_Check(mro))
        return;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(mro) && !b->err; i++) {
        PyTypeObject *t = (PyTypeObject *)PyTuple_GET_ITEM(mro, i);
        if (!PyType_Check(t) || !(t->tp_flags & Py_TPFLAGS_HEAPTYPE) || !t->tp_members)
            continue;
        for (PyMemberDef *m = t->tp_members; m->name && !b->err; m++) {
            if (m->type != HELD_T_OBJECT_EX || (m->flags & HELD_READONLY))
                continue;
            PyObject *v = *(PyObject **)((char *)o + m->offset);
            if (v && pl_secret_kind(v) && pl_redact_name(pl_redact_current(), m->name, strlen(m->name)))
                add_held(b, v, 0);
        }
    }
}

/* An untracked dict (CPython untracks dicts holding only atomic values, so
 * `{"password": "..."}` is not on the gc lists) is met through its
 * referrers. */
static int visit_referent(PyObject *child, void *arg)
{
    struct held_build *b = arg;
    if (child && PyDict_Check(child) && !PyObject_GC_IsTracked(child))
        scan_dict(b, child);
    return b->err;
}

static int held_visit(PyObject *o, void *arg)
{
    struct held_build *b = arg;
    PyTypeObject *tp = Py_TYPE(o);
    if (PyDict_Check(o)) {
        scan_dict(b, o);
    } else if (PyFrame_Check(o)) {
        if (pl_objvec_push(&b->frames, o) < 0)
            b->err = 1;
    } else if (tp->tp_flags & Py_TPFLAGS_HEAPTYPE) {
#ifdef PL_HAVE_INLINE_VALUES
        if (tp->tp_flags & Py_TPFLAGS_MANAGED_DICT) {
            PyObject *dict; /* a dict object, when there is one, is on the walk itself */
            pl_managed_attrs(o, &dict, held_attr, b);
        }
#endif
        scan_slots(b, o);
    }
    if (!b->err && PyObject_IS_GC(o) && tp->tp_traverse)
        tp->tp_traverse(o, visit_referent, b);
    return b->err;
}

int pl_held_secrets_build(pl_held_secrets *s)
{
    struct held_build b;
    memset(&b, 0, sizeof b);
    b.s = s;
    s->built = 1;
    if (pl_ptrmap_init(&s->values, 64) < 0 || pl_ptrmap_init(&b.names, 1024) < 0) {
        b.err = 1;
        goto out;
    }
    int gc_was_enabled = PyGC_Disable();
    if (pl_live_walk(held_visit, &b) < 0 && !b.err) {
        PyErr_Clear();
        b.err = 1;
    }
    /* Locals of frame objects: read after the walk, because on 3.12+ reading
     * them takes references (no Python code runs, gc is still off). */
    for (size_t i = 0; i < b.frames.n && !b.err; i++)
        if (pl_live_frame_locals(b.frames.v[i], held_attr, &b) < 0)
            PyErr_Clear();
    if (gc_was_enabled)
        PyGC_Enable();
out:
    pl_objvec_free(&b.frames);
    pl_ptrmap_free(&b.names);
    if (b.err)
        s->failed = 1;
    return b.err ? -1 : 0;
}

int pl_held_secret(pl_held_secrets *s, PyObject *o)
{
    if (!s || !o || !pl_secret_kind(o))
        return 0;
    if (!s->built)
        pl_held_secrets_build(s);
    if (s->failed)
        return 1;
    uint32_t unused;
    return pl_ptrmap_get(&s->values, (uintptr_t)o, &unused);
}

void pl_held_secrets_free(pl_held_secrets *s)
{
    if (!s)
        return;
    pl_ptrmap_free(&s->values);
    memset(s, 0, sizeof *s);
}
