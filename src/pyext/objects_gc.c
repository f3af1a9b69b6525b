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

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
#ifndef Py_BUILD_CORE
#define Py_BUILD_CORE 1
#endif
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
#else
/* Elsewhere the shared visitor is already a direct walk
 * (PyUnstable_GC_VisitObjects on 3.12+). */
int pl_live_walk(pl_visit_fn fn, void *arg)
{
    return pl_visit_tracked(fn, arg);
}
#endif
