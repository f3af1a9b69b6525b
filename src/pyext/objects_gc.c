/* Walking the gc generation lists directly (CPython 3.11), for live-object
 * queries.
 *
 * On 3.11 the shared visitor (visit.c) goes through gc.get_objects(): a list
 * of every tracked object, built with an INCREF each and torn down after.
 * On a 1M-object heap that is ~25 ms of a 50 ms listing budget, so the
 * live-object code walks the lists the way gc.get_objects() itself does.
 * It also sees the permanent generation (gc.freeze(), common after
 * `gunicorn --preload`), which gc.get_objects() leaves out.
 *
 * The internal headers are those of the exact CPython this file is
 * compiled against; the layout is only used under 3.11. */
#include "pyext.h"

#include "objects_gc.h"

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
#ifndef Py_BUILD_CORE
#define Py_BUILD_CORE 1
#endif
#include <internal/pycore_code.h>
#include <internal/pycore_frame.h>
#include <internal/pycore_gc.h>
#include <internal/pycore_interp.h>

static int walk_list(PyGC_Head *head, pl_visit_fn fn, void *arg)
{
    for (PyGC_Head *gc = (PyGC_Head *)head->_gc_next; gc != head; gc = (PyGC_Head *)gc->_gc_next) {
        int rc = fn((PyObject *)(gc + 1), arg);
        if (rc)
            return rc;
    }
    return 0;
}

/* Calls fn(obj, arg) for every object in the gc generations of this
 * interpreter, the permanent one included; stops at the first nonzero
 * return and returns it. GIL held; fn must not run Python code, allocate
 * gc objects or track/untrack anything. Never fails. */
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

/* Calls fn(name, value, arg) for each local variable of a frame (fast
 * locals, cells and free variables; for a class body or exec its namespace
 * dict), reading the interpreter frame directly: PyFrame_GetLocals would
 * build and keep an f_locals dict, a new referrer of every local that
 * parents queries would then show. name and value are borrowed; fn must not
 * run Python code. Returns 0, fn's first nonzero value, or
 * PL_FRAME_MODULE_LEVEL when the frame's locals are its globals. GIL held. */
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
/* Elsewhere the shared visitor is already a direct walk
 * (PyUnstable_GC_VisitObjects on 3.12+). */
int pl_live_walk(pl_visit_fn fn, void *arg)
{
    return pl_visit_tracked(fn, arg);
}

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
