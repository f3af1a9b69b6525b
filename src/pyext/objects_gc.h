/* pyloot extension: objects_gc.c, for objects.c (live objects).
 * The version-specific reading of CPython internals lives in objects_gc.c. */
#ifndef PYLOOT_OBJECTS_GC_H
#define PYLOOT_OBJECTS_GC_H

#include "pyext.h"

/* Visits every gc-tracked object (frozen ones too) without building a list;
 * GIL held, fn runs no Python code and allocates no gc object. Returns fn's
 * first nonzero value, or -1 with an exception set. */
int pl_live_walk(pl_visit_fn fn, void *arg);

/* Called with borrowed (name, value) pairs; a nonzero return stops. */
typedef int (*pl_attr_fn)(PyObject *name, PyObject *value, void *arg);

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030E0000 && !defined(Py_GIL_DISABLED)
#define PL_HAVE_INLINE_VALUES 1
/* CPython 3.11 to 3.13 keep a managed-dict instance's attributes in a
 * values array laid out by its type's shared keys until something asks for
 * its __dict__, and _PyObject_GetDictPtr would build that dict (a new
 * tracked object that changes the very heap pyloot shows). For an instance
 * of a Py_TPFLAGS_MANAGED_DICT type: *dict gets its dict object when one
 * exists (borrowed, else NULL), and fn(name, value, arg) is called for each
 * attribute held inline. Returns fn's first nonzero value, or 0. GIL held;
 * creates nothing. */
int pl_managed_attrs(PyObject *o, PyObject **dict, pl_attr_fn fn, void *arg);
#endif

typedef pl_attr_fn pl_local_fn;
#define PL_FRAME_MODULE_LEVEL 2

/* Calls fn(name, value, arg) for each local variable of a frame object
 * without materialising its f_locals on 3.11. Returns 0, fn's first nonzero
 * value, or PL_FRAME_MODULE_LEVEL when the frame's locals are its globals
 * (module-level code: the module itself is the root). GIL held. */
int pl_live_frame_locals(PyObject *frame, pl_local_fn fn, void *arg);

#endif
