/* heap.c: everything pyloot reads from CPython's internals (see heap.h).
 *
 * Walking the gc lists: on 3.11 the public way is gc.get_objects(), a list
 * of every tracked object built with an INCREF each and torn down after;
 * on a 1M-object heap that is ~25 ms of a 50 ms listing budget. On 3.12+
 * PyUnstable_GC_VisitObjects, which, like gc.get_objects(), leaves out the
 * permanent generation: the objects frozen by gc.freeze() (common after
 * `gunicorn --preload`), which a path search must see (a module-level list
 * created at import and frozen is what holds the leak). So on 3.11 to 3.13
 * the lists are walked directly, the way gc.get_objects() itself does,
 * permanent generation included.
 *
 * The internal headers are those of the exact CPython this file is compiled
 * against; each layout is only used under the versions it was checked on. */
/* Before Python.h: from 3.12 on, the public headers define some names
 * differently when the internal ones will be included. */
#ifndef Py_BUILD_CORE
#define Py_BUILD_CORE 1
#endif
#include "heap.h"

#include <stdlib.h>
#include <string.h>

#if PY_VERSION_HEX < 0x030C0000
#include <structmember.h> /* T_OBJECT_EX before 3.12 */
#define PL_T_OBJECT_EX T_OBJECT_EX
#define PL_READONLY READONLY
#else
#define PL_T_OBJECT_EX Py_T_OBJECT_EX
#define PL_READONLY Py_READONLY
#endif

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
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030E0000
#define PL_FRAME_STRUCT 1
#include <internal/pycore_frame.h>
#endif
#if PY_VERSION_HEX >= 0x030D0000
#include <internal/pycore_setobject.h> /* _PySet_NextEntry */
#endif
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030E0000 && !defined(Py_GIL_DISABLED)
#define PL_SIZE_FIELDS 1
#include <internal/pycore_code.h>
#include <internal/pycore_dict.h>
#include <internal/pycore_genobject.h>
#if PY_VERSION_HEX >= 0x030C0000
#include <internal/pycore_long.h> /* _PyLong_DigitCount */
#endif
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

/* See heap.h. Never fails here. */
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
 * _PyObject_VisitManagedDict do (see pl_managed_attrs in heap.h). */
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

/* ---- the public walk ---- */

#if PY_VERSION_HEX >= 0x030C0000
struct visit_ctx {
    pl_visit_fn fn;
    void *arg;
    int result;
};

static int visit_one(PyObject *obj, void *p)
{
    struct visit_ctx *ctx = p;
    ctx->result = ctx->fn(obj, ctx->arg);
    return ctx->result == 0; /* PyUnstable_GC_VisitObjects: 0 stops */
}

int pl_visit_tracked(pl_visit_fn fn, void *arg)
{
    struct visit_ctx ctx = {fn, arg, 0};
    PyUnstable_GC_VisitObjects(visit_one, &ctx);
    return ctx.result;
}
#else
/* CPython 3.11 has no public way to walk the gc lists: gc.get_objects()
 * builds one list of borrowed-then-owned references (it leaves itself out),
 * which is the only Python object created per visit. */
int pl_visit_tracked(pl_visit_fn fn, void *arg)
{
    static PyObject *get_objects; /* gc.get_objects; kept for the process */
    if (!get_objects) {
        PyObject *gc = PyImport_ImportModule("gc");
        if (!gc)
            return -1;
        get_objects = PyObject_GetAttrString(gc, "get_objects");
        Py_DECREF(gc);
        if (!get_objects)
            return -1;
    }
    PyObject *all = PyObject_CallNoArgs(get_objects);
    if (!all)
        return -1;
    int result = 0;
    Py_ssize_t n = PyList_GET_SIZE(all);
    for (Py_ssize_t i = 0; i < n; i++) {
        /* fn may run code that shrinks nothing here: `all` owns its items. */
        result = fn(PyList_GET_ITEM(all, i), arg);
        if (result)
            break;
    }
    Py_DECREF(all);
    return result;
}
#endif

/* ---- sets and frames ---- */

int pl_set_elements(PyObject *set, pl_visit_fn fn, void *arg)
{
    Py_ssize_t pos = 0;
    PyObject *key;
    Py_hash_t hash;
    while (_PySet_NextEntry(set, &pos, &key, &hash)) {
        int rc = fn(key, arg);
        if (rc)
            return rc;
    }
    return 0;
}

PyObject *pl_frame_back(PyObject *frame)
{
#ifdef PL_FRAME_STRUCT
    /* The field frame_traverse visits; a running frame's caller is reached
     * through the interpreter stack instead, not through a reference. */
    return (PyObject *)((PyFrameObject *)frame)->f_back;
#else
    PyFrameObject *back = PyFrame_GetBack((PyFrameObject *)frame);
    Py_XDECREF(back); /* the frame keeps it alive */
    return (PyObject *)back;
#endif
}

/* ---- what a frame object holds ---- */

#ifdef PL_FRAME_STRUCT
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

/* See heap.h. On CPython 3.11+ a frame object whose frame still runs
 * (owned by its thread) reports only f_back and f_trace to tp_traverse; its
 * locals, code, function and f_locals are read here. The value stack is not:
 * its top is not recorded while the frame runs. */
int pl_frame_fields(PyObject *frame, int running_only, pl_frame_field_fn fn, void *arg)
{
#ifdef PL_FRAME_STRUCT
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

/* See heap.h. */
int pl_frame_extras(PyObject *frame, visitproc visit, void *arg)
{
    struct frame_visit fv = {visit, arg};
    return pl_frame_fields(frame, 1, frame_visit_field, &fv);
}

/* ---- attributes ---- */

/* The instance's own dict when it exists as an object (borrowed), or NULL.
 * Never creates one. */
PyObject *pl_own_dict(PyObject *o)
{
    PyTypeObject *tp = Py_TYPE(o);
#ifdef PL_HAVE_INLINE_VALUES
    if (tp->tp_flags & Py_TPFLAGS_MANAGED_DICT) {
        PyObject *d;
        pl_managed_attrs(o, &d, NULL, NULL);
        return d && PyDict_Check(d) ? d : NULL;
    }
#elif PY_VERSION_HEX >= 0x030C0000
    if (tp->tp_flags & Py_TPFLAGS_MANAGED_DICT)
        return NULL; /* see pl_own_attrs */
#endif
    if (tp->tp_dictoffset == 0)
        return NULL;
    PyObject **dp = _PyObject_GetDictPtr(o); /* plain offset arithmetic without MANAGED_DICT */
    if (!dp) {
        PyErr_Clear();
        return NULL;
    }
    return *dp && PyDict_Check(*dp) ? *dp : NULL;
}

/* Calls fn(name, value) for the object's own attributes: its __dict__ and
 * the __slots__ of its heap types. Runs no property, descriptor or
 * __getattr__; name and value are borrowed (fn must not run Python code
 * that could drop them, or take references first). */
int pl_own_attrs(PyObject *o, pl_attr_fn fn, void *arg)
{
    int rc = 0;
    PyTypeObject *tp = Py_TYPE(o);
    PyObject *d = pl_own_dict(o);
    if (d) {
        Py_ssize_t pos = 0;
        PyObject *k, *v;
        while (PyDict_Next(d, &pos, &k, &v))
            if ((rc = fn(k, v, arg)))
                return rc;
    }
#ifdef PL_HAVE_INLINE_VALUES
    else if (tp->tp_flags & Py_TPFLAGS_MANAGED_DICT) {
        PyObject *unused;
        if ((rc = pl_managed_attrs(o, &unused, fn, arg)))
            return rc;
    }
#elif PY_VERSION_HEX >= 0x030C0000
    else if (tp->tp_flags & Py_TPFLAGS_MANAGED_DICT) {
        /* 3.14+ and free-threaded builds: no mirror of the inline values
         * here; asking for the dict materialises it (a documented side
         * effect). */
        PyObject *md = PyObject_GenericGetDict(o, NULL);
        if (!md) {
            PyErr_Clear();
        } else {
            Py_ssize_t pos = 0;
            PyObject *k, *v;
            while (PyDict_Next(md, &pos, &k, &v))
                if ((rc = fn(k, v, arg)))
                    break;
            Py_DECREF(md);
            if (rc)
                return rc;
        }
    }
#endif
    PyObject *mro = tp->tp_mro;
    if (!mro || !PyTuple_Check(mro))
        return 0;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(mro); i++) {
        PyTypeObject *t = (PyTypeObject *)PyTuple_GET_ITEM(mro, i);
        if (!PyType_Check(t) || !(t->tp_flags & Py_TPFLAGS_HEAPTYPE) || !t->tp_members)
            continue;
        /* A heap type's members are its __slots__ (plus read-only
         * __weakref__/__dictoffset__ style entries, skipped). */
        for (PyMemberDef *m = t->tp_members; m->name; m++) {
            if (m->type != PL_T_OBJECT_EX || (m->flags & PL_READONLY))
                continue;
            PyObject *v = *(PyObject **)((char *)o + m->offset);
            if (!v)
                continue;
            PyObject *name = PyUnicode_FromString(m->name);
            if (!name) {
                PyErr_Clear();
                continue;
            }
            rc = fn(name, v, arg);
            Py_DECREF(name);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* ---- sizes: what a C __sizeof__ returns, read without calling it ---- */

#ifdef PL_SIZE_FIELDS
/* Each function below computes what the named CPython 3.11 to 3.13 C
 * __sizeof__ computes, from the same fields, so that the collector's count
 * pass creates no int per object (see sizeof.h). Types defined in a .c file
 * of CPython are mirrored up to the fields read here. */

/* _PyDict_KeysSize (Objects/dictobject.c). */
static size_t dict_keys_size(PyDictKeysObject *keys)
{
    size_t es = keys->dk_kind == DICT_KEYS_GENERAL ? sizeof(PyDictKeyEntry) : sizeof(PyDictUnicodeEntry);
    size_t slots = (size_t)1 << keys->dk_log2_size;
    return sizeof(PyDictKeysObject) + ((size_t)1 << keys->dk_log2_index_bytes) + ((slots << 1) / 3) * es;
}

/* type.__sizeof__ (type___sizeof___impl, Objects/typeobject.c). */
size_t pl_heap_type_size(PyTypeObject *tp)
{
    if (!(tp->tp_flags & Py_TPFLAGS_HEAPTYPE))
        return sizeof(PyTypeObject);
    PyHeapTypeObject *et = (PyHeapTypeObject *)tp;
    size_t size = sizeof(PyHeapTypeObject);
    if (et->ht_cached_keys)
        size += dict_keys_size(et->ht_cached_keys);
    return size;
}

/* The code object an interpreter frame runs. */
static PyCodeObject *frame_code(_PyInterpreterFrame *f)
{
#if PY_VERSION_HEX >= 0x030D0000
    return _PyFrame_GetCode(f);
#else
    return f->f_code;
#endif
}

/* The value slots of a frame running co: locals, cells, free variables and
 * the evaluation stack. */
static size_t frame_slots(PyCodeObject *co)
{
#if PY_VERSION_HEX >= 0x030C0000
    return (size_t)_PyFrame_NumSlotsForCodeObject(co);
#else
    return (size_t)co->co_nlocalsplus + (size_t)co->co_stacksize;
#endif
}

/* gen_sizeof (Objects/genobject.c), shared by generators, coroutines and
 * asynchronous generators, whose heads are laid out alike. */
size_t pl_heap_gen_size(PyObject *gen)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyCodeObject *co = frame_code((_PyInterpreterFrame *)&((PyGenObject *)gen)->gi_iframe);
#else
    PyCodeObject *co = ((PyGenObject *)gen)->gi_code; /* the frame's reference goes when it ends */
#endif
    return offsetof(PyGenObject, gi_iframe) + offsetof(_PyInterpreterFrame, localsplus) +
           frame_slots(co) * sizeof(PyObject *);
}

/* frame_sizeof (Objects/frameobject.c). */
size_t pl_heap_frame_size(PyObject *frame)
{
    _PyInterpreterFrame *f = ((PyFrameObject *)frame)->f_frame;
    return offsetof(PyFrameObject, _f_frame_data) + offsetof(_PyInterpreterFrame, localsplus) +
           frame_slots(frame_code(f)) * sizeof(PyObject *);
}

/* _PyCodeObjectExtra (Objects/codeobject.c). */
typedef struct {
    Py_ssize_t ce_size;
    void *ce_extras[1];
} pl_code_extra_mirror;

/* code_sizeof (Objects/codeobject.c). */
size_t pl_heap_code_size(PyObject *code)
{
    PyCodeObject *co = (PyCodeObject *)code;
    PyTypeObject *tp = Py_TYPE(code);
    size_t size = (size_t)tp->tp_basicsize + (size_t)Py_SIZE(code) * (size_t)tp->tp_itemsize;
    size = (size + sizeof(void *) - 1) & ~(sizeof(void *) - 1); /* _PyObject_VAR_SIZE */
    pl_code_extra_mirror *extra = co->co_extra;
    if (extra)
        size += sizeof(*extra) + ((size_t)extra->ce_size - 1) * sizeof(extra->ce_extras[0]);
    return size;
}

/* int___sizeof___impl (Objects/longobject.c): zero counts the one digit
 * it is allocated with from 3.11.2 on (gh-100637). */
size_t pl_heap_int_size(PyObject *o)
{
#if PY_VERSION_HEX >= 0x030C0000
    Py_ssize_t ndigits = _PyLong_DigitCount((PyLongObject *)o);
    size_t head = offsetof(PyLongObject, long_value.ob_digit);
#else
    Py_ssize_t ndigits = Py_SIZE(o) < 0 ? -Py_SIZE(o) : Py_SIZE(o);
    size_t head = offsetof(PyLongObject, ob_digit);
#endif
#if PY_VERSION_HEX >= 0x030B0200
    if (ndigits < 1)
        ndigits = 1;
#endif
    return head + (size_t)ndigits * sizeof(digit);
}

/* unicode___sizeof___impl (Objects/unicodeobject.c). */
size_t pl_heap_str_size(PyObject *o)
{
    size_t len = (size_t)PyUnicode_GET_LENGTH(o), size;
    if (PyUnicode_IS_COMPACT_ASCII(o)) {
        size = sizeof(PyASCIIObject) + len + 1;
    } else if (PyUnicode_IS_COMPACT(o)) {
        size = sizeof(PyCompactUnicodeObject) + (len + 1) * PyUnicode_KIND(o);
    } else {
        size = sizeof(PyUnicodeObject);
        if (((PyUnicodeObject *)o)->data.any)
            size += (len + 1) * PyUnicode_KIND(o);
    }
#if PY_VERSION_HEX < 0x030C0000
    /* 3.11 still has the deprecated wchar_t copy. */
    wchar_t *wstr = ((PyASCIIObject *)o)->wstr;
    if (wstr && (!PyUnicode_IS_READY(o) || (void *)wstr != PyUnicode_DATA(o))) {
        size_t wlen = PyUnicode_IS_COMPACT_ASCII(o) ? len : (size_t)((PyCompactUnicodeObject *)o)->wstr_length;
        size += (wlen + 1) * sizeof(wchar_t);
    }
#endif
    if (!PyUnicode_IS_COMPACT_ASCII(o)) {
        PyCompactUnicodeObject *cu = (PyCompactUnicodeObject *)o;
        if (cu->utf8 && (void *)cu->utf8 != PyUnicode_DATA(o))
            size += (size_t)cu->utf8_length + 1;
    }
    return size;
}

/* The head of dequeobject and the size of its block (Modules/_collectionsmodule.c). */
#define PL_DEQUE_BLOCKLEN 64
typedef struct {
    PyObject_VAR_HEAD
    void *leftblock;
    void *rightblock;
    Py_ssize_t leftindex;
} pl_deque_mirror;
typedef struct pl_deque_block_mirror {
    struct pl_deque_block_mirror *leftlink;
    PyObject *data[PL_DEQUE_BLOCKLEN];
    struct pl_deque_block_mirror *rightlink;
} pl_deque_block_mirror;

/* deque_sizeof (Modules/_collectionsmodule.c). */
size_t pl_heap_deque_size(PyObject *o)
{
    pl_deque_mirror *d = (pl_deque_mirror *)o;
    size_t blocks = (size_t)(d->leftindex + Py_SIZE(o) + PL_DEQUE_BLOCKLEN - 1) / PL_DEQUE_BLOCKLEN;
    return (size_t)Py_TYPE(o)->tp_basicsize + blocks * sizeof(pl_deque_block_mirror);
}

/* struct _odictobject and _ODictNode (Objects/odictobject.c). */
typedef struct {
    PyDictObject od_dict;
    void *od_first;
    void *od_last;
    void **od_fast_nodes;
    Py_ssize_t od_fast_nodes_size;
} pl_odict_mirror;
typedef struct {
    void *next, *prev;
    PyObject *key;
    Py_hash_t hash;
} pl_odict_node_mirror;

/* odict_sizeof (Objects/odictobject.c): the dict, the node table and one
 * node per item. */
size_t pl_heap_odict_size(PyObject *o)
{
    pl_odict_mirror *od = (pl_odict_mirror *)o;
    size_t size = (size_t)_PyDict_SizeOf((PyDictObject *)o) + sizeof(void *) * (size_t)od->od_fast_nodes_size;
    if (od->od_first)
        size += sizeof(pl_odict_node_mirror) * (size_t)PyDict_GET_SIZE(o);
    return size;
}

/* The head of arrayobject and of its descriptor (Modules/arraymodule.c). */
typedef struct {
    char typecode;
    int itemsize;
} pl_arraydescr_mirror;
typedef struct {
    PyObject_VAR_HEAD
    char *ob_item;
    Py_ssize_t allocated;
    const pl_arraydescr_mirror *ob_descr;
} pl_array_mirror;

/* array_array___sizeof___impl (Modules/arraymodule.c). */
size_t pl_heap_array_size(PyObject *o)
{
    pl_array_mirror *a = (pl_array_mirror *)o;
    return (size_t)Py_TYPE(o)->tp_basicsize + (size_t)a->allocated * (size_t)a->ob_descr->itemsize;
}
#endif

/* ---- frames of running threads ---- */

/* See heap.h. */
void pl_frames_free(pl_frames *fr)
{
    for (size_t i = 0; i < fr->n; i++)
        Py_XDECREF(fr->frame[i]);
    for (size_t i = 0; i < fr->nloc; i++) {
        Py_DECREF(fr->name[i]);
        Py_DECREF(fr->value[i]);
    }
    free(fr->frame);
    free(fr->first);
    free(fr->name);
    free(fr->value);
    memset(fr, 0, sizeof(*fr));
}

static int add_local(PyObject *name, PyObject *value, void *arg)
{
    pl_frames *fr = arg;
    if (fr->nloc == fr->loccap) {
        size_t cap = fr->loccap ? fr->loccap * 2 : 256;
        PyObject **n = realloc(fr->name, cap * sizeof(*n));
        if (!n)
            return -1;
        fr->name = n;
        PyObject **v = realloc(fr->value, cap * sizeof(*v));
        if (!v)
            return -1;
        fr->value = v;
        fr->loccap = cap;
    }
    fr->name[fr->nloc] = Py_NewRef(name);
    fr->value[fr->nloc] = Py_NewRef(value);
    fr->nloc++;
    return 0;
}

/* See heap.h. */
int pl_running_frames(long skip, pl_visit_fn fn, void *arg)
{
    PyThreadState *me = PyThreadState_Get();
    PyInterpreterState *interp = PyThreadState_GetInterpreter(me);
    int rc = 0;
    for (PyThreadState *ts = PyInterpreterState_ThreadHead(interp); ts && !rc; ts = PyThreadState_Next(ts)) {
        PyFrameObject *f = PyThreadState_GetFrame(ts);
        long skipped = 0;
        while (f && !rc) {
            PyFrameObject *back = PyFrame_GetBack(f);
            if (ts == me && skipped++ < skip)
                Py_DECREF(f);
            else
                rc = fn((PyObject *)f, arg); /* fn owns f from here */
            f = back;
        }
        Py_XDECREF(f);
        PyErr_Clear(); /* a frame object that could not be made: the chain stops there */
    }
    return rc;
}

static int push_frame(PyObject *frame, void *arg)
{
    pl_frames *fr = arg;
    if (fr->n + 1 >= fr->cap) {
        size_t cap = fr->cap ? fr->cap * 2 : 64;
        PyObject **a = realloc(fr->frame, cap * sizeof(*a));
        size_t *first = a ? realloc(fr->first, (cap + 1) * sizeof(*first)) : NULL;
        if (a)
            fr->frame = a;
        if (!first) {
            Py_DECREF(frame);
            return -1;
        }
        fr->first = first;
        fr->cap = cap;
    }
    fr->frame[fr->n++] = frame;
    return 0;
}

/* See heap.h. Called with gc disabled: a collection could run finalizers
 * (user code) while we hold a thread-state pointer. The frame objects are
 * what sys._current_frames() would create. */
int pl_frames_collect(pl_frames *fr)
{
    if (pl_running_frames(0, push_frame, fr) < 0)
        return -1;
    for (size_t i = 0; i < fr->n; i++) {
        fr->first[i] = fr->nloc;
        if (pl_live_frame_locals(fr->frame[i], add_local, fr) < 0)
            return -1;
    }
    if (fr->first)
        fr->first[fr->n] = fr->nloc;
    return 0;
}

/* ---- the running thread's stack, without frame objects ---- */

/* See heap.h. Reads the interpreter frames of the calling thread directly:
 * PyEval_GetFrame/PyFrame_GetBack would create a frame object for each. */
size_t pl_stack_current(pl_stack_frame *out, size_t max)
{
    size_t n = 0;
#ifdef PL_FRAME_STRUCT
    PyThreadState *ts = PyThreadState_Get();
#if PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030D0000
    _PyInterpreterFrame *f = ts->cframe ? ts->cframe->current_frame : NULL;
#elif PY_VERSION_HEX >= 0x030D0000
    _PyInterpreterFrame *f = ts->current_frame;
#else
    _PyInterpreterFrame *f = ts->cframe ? ts->cframe->current_frame : NULL;
#endif
    for (; f && n < max; f = f->previous) {
#if PY_VERSION_HEX >= 0x030C0000
        if (f->owner == FRAME_OWNED_BY_CSTACK)
            continue;
#endif
#if PY_VERSION_HEX >= 0x030D0000
        if (!PyCode_Check(f->f_executable))
            continue;
#endif
        if (_PyFrame_IsIncomplete(f))
            continue;
#if PY_VERSION_HEX >= 0x030D0000
        out[n].code = (PyCodeObject *)f->f_executable;
#else
        out[n].code = f->f_code;
#endif
        out[n].lasti = _PyInterpreterFrame_LASTI(f) * (int)sizeof(_Py_CODEUNIT);
        n++;
    }
#else
    (void)out;
    (void)max;
#endif
    return n;
}
