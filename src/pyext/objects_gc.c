/* What live-object queries read from CPython's internals: the gc generation
 * lists and the locals of running frames.
 *
 * Walking the lists: on 3.11 the shared visitor (visit.c) goes through
 * gc.get_objects(), a list of every tracked object built with an INCREF
 * each and torn down after; on a 1M-object heap that is ~25 ms of a 50 ms
 * listing budget. On 3.12+ it uses PyUnstable_GC_VisitObjects, which, like
 * gc.get_objects(), leaves out the permanent generation: the objects frozen
 * by gc.freeze() (common after `gunicorn --preload`), which a path search
 * must see (a module-level list created at import and frozen is what holds
 * the leak). So on 3.11 to 3.13 the lists are walked directly, the way
 * gc.get_objects() itself does, permanent generation included.
 *
 * The internal headers are those of the exact CPython this file is compiled
 * against; each layout is only used under the versions it was checked on. */
/* Before Python.h: from 3.12 on, the public headers define some names
 * differently when the internal ones will be included. */
#ifndef Py_BUILD_CORE
#define Py_BUILD_CORE 1
#endif
#include "pyext.h"

#include "objects_gc.h"

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030E0000 && !defined(Py_GIL_DISABLED)
#define PL_WALK_GC_LISTS 1
#endif
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
#define PL_READ_FRAMES_311 1
#endif

#if defined(PL_WALK_GC_LISTS) || defined(PL_READ_FRAMES_311)
#include <internal/pycore_gc.h>
#include <internal/pycore_interp.h>
#endif
#ifdef PL_READ_FRAMES_311
#include <internal/pycore_code.h>
#include <internal/pycore_frame.h>
#endif

#ifdef PL_WALK_GC_LISTS
static int walk_list(PyGC_Head *head, pl_visit_fn fn, void *arg)
{
    for (PyGC_Head *gc = (PyGC_Head *)head->_gc_next; gc != head; gc = (PyGC_Head *)gc->_gc_next) {
        int rc = fn((PyObject *)(gc + 1), arg);
        if (rc)
            return rc;
    }
    return 0;
}

/* See objects_gc.h. Never fails here. */
int pl_live_walk(pl_visit_fn fn, void *arg)
{
    struct _gc_runtime_state *gcstate = &PyInterpreterState_Get()->gc;
    for (int i = 0; i < NUM_GENERATIONS; i++) {
        int rc = walk_list(&gcstate->generations[i].head, fn, arg);
        if (rc)
            return rc;
    }
    return walk_list(&gcstate->permanent_generation.head, fn, arg);
}
#else
/* Free-threaded builds and later versions: the shared visitor. */
int pl_live_walk(pl_visit_fn fn, void *arg)
{
    return pl_visit_tracked(fn, arg);
}
#endif

#ifdef PL_READ_FRAMES_311
/* 3.11: the interpreter frame is read directly; PyFrame_GetLocals would
 * build and keep an f_locals dict, a new referrer of every local that
 * parents queries would then show. Fast locals, cells and free variables;
 * for a class body or exec frame its namespace dict. */
int pl_live_frame_locals(PyObject *frame, pl_local_fn fn, void *arg)
{
    _PyInterpreterFrame *f = ((PyFrameObject *)frame)->f_frame;
    if (!f || _PyFrame_IsIncomplete(f))
        return 0;
    PyCodeObject *co = f->f_code;
    if (f->f_locals && f->f_locals == f->f_globals)
        return PL_FRAME_MODULE_LEVEL;
    if (f->f_locals && !(co->co_flags & CO_OPTIMIZED) && PyDict_Check(f->f_locals)) {
        Py_ssize_t pos = 0;
        PyObject *k, *v;
        while (PyDict_Next(f->f_locals, &pos, &k, &v)) {
            int rc = fn(k, v, arg);
            if (rc)
                return rc;
        }
    }
    for (int i = 0; i < co->co_nlocalsplus; i++) {
        PyObject *v = f->localsplus[i];
        if (!v)
            continue;
        int rc = fn(PyTuple_GET_ITEM(co->co_localsplusnames, i), v, arg);
        if (rc)
            return rc;
    }
    return 0;
}
#else
/* 3.12+: fast locals one by one with PyFrame_GetVar, which builds no
 * f_locals dict (PyFrame_GetLocals would, before 3.13); the namespace of a
 * class body or exec frame is its existing f_locals. A cell variable shows
 * its contents. */
int pl_live_frame_locals(PyObject *frame, pl_local_fn fn, void *arg)
{
    PyFrameObject *f = (PyFrameObject *)frame;
    PyCodeObject *co = PyFrame_GetCode(f);
    int rc = 0;
    if (!(co->co_flags & CO_OPTIMIZED)) {
        PyObject *globals = PyFrame_GetGlobals(f);
        PyObject *locals = PyFrame_GetLocals(f);
        if (!locals) {
            PyErr_Clear();
        } else if (locals == globals) {
            rc = PL_FRAME_MODULE_LEVEL;
        } else if (PyDict_Check(locals)) {
            Py_ssize_t pos = 0;
            PyObject *k, *v;
            while (!rc && PyDict_Next(locals, &pos, &k, &v))
                rc = fn(k, v, arg);
        }
        Py_XDECREF(locals);
        Py_XDECREF(globals);
    } else {
        PyObject *names = co->co_localsplusnames;
        for (Py_ssize_t i = 0; names && i < PyTuple_GET_SIZE(names) && !rc; i++) {
            PyObject *v = PyFrame_GetVar(f, PyTuple_GET_ITEM(names, i));
            if (!v) {
                PyErr_Clear(); /* unbound */
                continue;
            }
            rc = fn(PyTuple_GET_ITEM(names, i), v, arg);
            Py_DECREF(v);
        }
    }
    Py_DECREF(co);
    return rc;
}
#endif

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030E0000 && !defined(Py_GIL_DISABLED)
/* These mirror Include/internal/pycore_dict.h and pycore_object.h of
 * CPython 3.11 to 3.13, read the way _PyObject_VisitInstanceAttributes and
 * _PyObject_VisitManagedDict do (see pl_managed_attrs in objects_gc.h). */
struct pl_dictkeys_mirror {
    Py_ssize_t dk_refcnt;
    uint8_t dk_log2_size;
    uint8_t dk_log2_index_bytes;
    uint8_t dk_kind;
    uint32_t dk_version;
    Py_ssize_t dk_usable;
    Py_ssize_t dk_nentries;
    char dk_indices[];
};
typedef struct {
    PyObject *me_key;
    PyObject *me_value;
} pl_unicode_entry_mirror;
#define PL_DICT_KEYS_SPLIT 2
#if PY_VERSION_HEX >= 0x030D0000
typedef struct {
    uint8_t capacity;
    uint8_t size;
    uint8_t embedded;
    uint8_t valid;
    PyObject *values[1];
} pl_values313_mirror;
#endif

/* A managed-dict instance's inline values (NULL when its attributes live in
 * a dict object, then stored in *dict), and how many there may be. */
static PyObject **inline_values(PyObject *o, PyObject **dict, Py_ssize_t *limit)
{
    *dict = NULL;
    *limit = PY_SSIZE_T_MAX;
#if PY_VERSION_HEX < 0x030C0000
    *dict = ((PyObject **)o)[-3];
    return *dict ? NULL : ((PyObject ***)o)[-4];
#elif PY_VERSION_HEX < 0x030D0000
    uintptr_t dorv = ((uintptr_t *)o)[-3]; /* tagged: low bit set for values (stored minus one) */
    if (!(dorv & 1)) {
        *dict = (PyObject *)dorv;
        return NULL;
    }
    return (PyObject **)(dorv + 1);
#else
    *dict = ((PyObject **)o)[-3];
    if (Py_TYPE(o)->tp_flags & Py_TPFLAGS_INLINE_VALUES) {
        pl_values313_mirror *v = (pl_values313_mirror *)((char *)o + sizeof(PyObject));
        if (v->valid) {
            *limit = v->capacity;
            return v->values;
        }
    }
    return NULL;
#endif
}

int pl_managed_attrs(PyObject *o, PyObject **dict, pl_attr_fn fn, void *arg)
{
    Py_ssize_t limit;
    PyObject **values = inline_values(o, dict, &limit);
    PyTypeObject *tp = Py_TYPE(o);
    struct pl_dictkeys_mirror *keys = (tp->tp_flags & Py_TPFLAGS_HEAPTYPE)
        ? (struct pl_dictkeys_mirror *)((PyHeapTypeObject *)tp)->ht_cached_keys
        : NULL;
    if (!fn || !values || !keys || keys->dk_kind != PL_DICT_KEYS_SPLIT)
        return 0;
    pl_unicode_entry_mirror *entries =
        (pl_unicode_entry_mirror *)(keys->dk_indices + ((size_t)1 << keys->dk_log2_index_bytes));
    for (Py_ssize_t i = 0; i < keys->dk_nentries && i < limit; i++) {
        if (values[i] && entries[i].me_key && PyUnicode_Check(entries[i].me_key)) {
            int rc = fn(entries[i].me_key, values[i], arg);
            if (rc)
                return rc;
        }
    }
    return 0;
}
#endif
