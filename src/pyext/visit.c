/* Visiting every gc-tracked object. */
#include "pyext.h"

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
