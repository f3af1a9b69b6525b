/* pyloot extension: declarations shared by the parts of _pyloot.
 * This directory is the only place that includes Python.h. */
#ifndef PYLOOT_PYEXT_H
#define PYLOOT_PYEXT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "pyloot/buf.h"
#include "pyloot/handler.h"

/* Module state. Every PyObject field is visited by m_traverse and cleared by
 * m_clear in module.c; a part that adds a field adds it to both. */
typedef struct pl_modstate {
    PyObject *error;            /* pyloot._pyloot.Error */
    PyTypeObject *store_type;   /* module.c */
    PyTypeObject *handler_type; /* module.c */
    /* graphobject.c */
    PyTypeObject *graph_type;
    PyObject *graph_extra[4];
    /* objects.c */
    PyObject *objects_extra[4];
} pl_modstate;

pl_modstate *pl_modstate_get(PyObject *module);

/* typename.c: appends "module.qualname" of a type (builtins keep their
 * plain name, e.g. "dict"). Never runs Python code or creates objects
 * per call other than the cached UTF-8 of the names. GIL held. */
int pl_typename(PyTypeObject *tp, pl_buf *out);

/* module.c: the pl_store of a pyloot._pyloot.Store object, reopened first
 * when the process is a fork child of the one that opened it. NULL with an
 * exception set if obj is not an open Store. GIL held. */
struct pl_store;
struct pl_store *pl_store_of(PyObject *obj);
/* A number naming the handle pl_store_of returned, unique in this process:
 * handles are compared by it, since a freed handle's address can be reused. */
uint64_t pl_store_serial(PyObject *obj);

/* store_handler.c: the Store and Handler types. */
int pl_store_module_exec(PyObject *module);

/* collector.c */
int pl_collector_module_exec(PyObject *module);
/* When the last count pass saw several live types sharing a base name,
 * finds the one it named `name` ("mod.T", "mod.T#2"): returns 1 and sets
 * *tp (compare it, never dereference it: the type may be gone since), else
 * 0. Thread-safe; may be called with or without the GIL. */
int pl_collector_type_named(const char *name, const PyTypeObject **tp);
/* Calls fn(obj, arg) for every gc-tracked object (under the GIL, without
 * creating a Python object per object; on 3.11 one list of all objects is
 * built first, which leaves itself out but also misses gc.freeze()'s
 * objects: prefer pl_live_walk of objects_gc.h, which uses this only on
 * versions it has no layout for). Stops early when fn returns nonzero, and
 * returns that value; returns -1 with an exception set on failure. */
typedef int (*pl_visit_fn)(PyObject *obj, void *arg);
int pl_visit_tracked(pl_visit_fn fn, void *arg);

/* objects.c: live objects of this process (see pl_live_fn in handler.h). */
int pl_objects_module_exec(PyObject *module);
int pl_live_answer(void *ctx, const pl_live_query *q, pl_buf *body, int *status);

/* store_handler.c: the secret-looking names PyLoot(redact=...) set last in
 * this process (pyloot/redact.h), NULL for the default list; pass it to
 * pl_redact_name. Call with the GIL held. */
struct pl_redact;
const struct pl_redact *pl_redact_current(void);

/* graphobject.c: the object graph (refcycle API). */
int pl_graph_module_exec(PyObject *module);

#endif
