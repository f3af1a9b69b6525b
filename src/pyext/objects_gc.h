/* pyloot extension: objects_gc.c, for objects.c (live objects).
 * The version-specific reading of CPython internals lives in objects_gc.c. */
#ifndef PYLOOT_OBJECTS_GC_H
#define PYLOOT_OBJECTS_GC_H

#include "pyext.h"

/* Visits every gc-tracked object (frozen ones too) without building a list;
 * GIL held, fn runs no Python code and allocates no gc object. Returns fn's
 * first nonzero value, or -1 with an exception set. */
int pl_live_walk(pl_visit_fn fn, void *arg);

typedef int (*pl_local_fn)(PyObject *name, PyObject *value, void *arg);
#define PL_FRAME_MODULE_LEVEL 2

/* Calls fn(name, value, arg) for each local variable of a frame object
 * without materialising its f_locals on 3.11. Returns 0, fn's first nonzero
 * value, or PL_FRAME_MODULE_LEVEL when the frame's locals are its globals
 * (module-level code: the module itself is the root). GIL held. */
int pl_live_frame_locals(PyObject *frame, pl_local_fn fn, void *arg);

#endif
