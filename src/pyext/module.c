/* pyloot._pyloot: module definition. This file holds the module state and
 * the one conversion of core errors into exceptions (pl_raise), and runs the
 * exec of every part (store_handler.c, collector.c, live.c, graphobject.c),
 * handing the live-object answer function to the parts that answer
 * requests, so that they do not depend on the live-object code. */
#include "pyext.h"

#include <errno.h>
#include <pthread.h>

#include "pyloot/error.h"
#include "witness.h"

static struct PyModuleDef pl_module;

/* See pyext.h. */
pl_modstate *pl_modstate_get(PyObject *module)
{
    return (pl_modstate *)PyModule_GetState(module);
}

/* The state of the module last initialised, for pl_raise callers without
 * the module at hand. Protected by the GIL; one interpreter per process uses
 * this module. */
static pl_modstate *last_state;

/* The exception type for core error rc: the module's TooLargeError for a
 * documented limit, its Error otherwise (NULL for ENOMEM: MemoryError). */
static PyObject *error_type(PyObject *module, int rc)
{
    pl_modstate *st = module ? pl_modstate_get(module) : last_state;
    if (!st || !st->error)
        return PyExc_RuntimeError;
    return rc == PL_ETOOBIG && st->too_large ? st->too_large : st->error;
}

PyObject *pl_raise(PyObject *module, int rc, const char *what)
{
    if (rc == ENOMEM)
        return PyErr_NoMemory();
    return PyErr_Format(error_type(module, rc), "%s failed: %s", what, pl_strerror(rc));
}

/* See pyext.h: a message already in words, as the module's Error. */
PyObject *pl_raise_message(int rc, const char *message)
{
    if (rc == ENOMEM)
        return PyErr_NoMemory();
    PyErr_SetString(error_type(NULL, rc), message);
    return NULL;
}

/* In a child made by fork(): the threads of the parent do not exist. One
 * handler, so the parts reset in a fixed order. */
static void atfork_child(void)
{
    pl_collector_atfork_child();
    pl_remote_atfork_child();
    pl_witness_atfork_child();
}

static int pl_exec(PyObject *m)
{
    static int atfork_done;
    if (!atfork_done) {
        if (pthread_atfork(NULL, NULL, atfork_child) != 0) {
            PyErr_SetString(PyExc_RuntimeError, "pthread_atfork failed");
            return -1;
        }
        atfork_done = 1;
    }
    pl_modstate *st = pl_modstate_get(m);
    st->error = PyErr_NewException("pyloot._pyloot.Error", PyExc_RuntimeError, NULL);
    if (!st->error || PyModule_AddObjectRef(m, "Error", st->error) < 0)
        return -1;
    /* Both a pyloot error and an OverflowError, as the graph's limits were
     * reported before they were pyloot errors. */
    PyObject *bases = PyTuple_Pack(2, st->error, PyExc_OverflowError);
    if (!bases)
        return -1;
    st->too_large = PyErr_NewException("pyloot._pyloot.TooLargeError", bases, NULL);
    Py_DECREF(bases);
    if (!st->too_large || PyModule_AddObjectRef(m, "TooLargeError", st->too_large) < 0)
        return -1;
    last_state = st; /* the module keeps its state alive */
    if (PyModule_AddStringConstant(m, "__version__", PYLOOT_VERSION) < 0)
        return -1;
    if (pl_store_module_exec(m, pl_live_answer) < 0 || pl_collector_module_exec(m, pl_live_answer) < 0 ||
        pl_remote_module_exec(m, pl_live_answer) < 0 ||
        pl_live_module_exec(m) < 0 || pl_graph_module_exec(m) < 0 || pl_witness_module_exec(m) < 0)
        return -1;
    pl_collector_set_tick(pl_live_tree_tick);
    return 0;
}

static int pl_traverse(PyObject *m, visitproc visit, void *arg)
{
    pl_modstate *st = pl_modstate_get(m);
    Py_VISIT(st->error);
    Py_VISIT(st->too_large);
    Py_VISIT(st->store_type);
    Py_VISIT(st->handler_type);
    Py_VISIT(st->graph_type);
    return 0;
}

static int pl_clear(PyObject *m)
{
    pl_modstate *st = pl_modstate_get(m);
    Py_CLEAR(st->error);
    Py_CLEAR(st->too_large);
    Py_CLEAR(st->store_type);
    Py_CLEAR(st->handler_type);
    Py_CLEAR(st->graph_type);
    return 0;
}

static void pl_free(void *m)
{
    pl_clear((PyObject *)m);
}

static PyModuleDef_Slot pl_slots[] = {
    {Py_mod_exec, pl_exec},
    {0, NULL},
};

static struct PyModuleDef pl_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "pyloot._pyloot",
    .m_doc = "pyloot's C extension: collector, store binding, live objects, object graph.",
    .m_size = sizeof(pl_modstate),
    .m_slots = pl_slots,
    .m_traverse = pl_traverse,
    .m_clear = pl_clear,
    .m_free = pl_free,
};

PyMODINIT_FUNC PyInit__pyloot(void)
{
    return PyModuleDef_Init(&pl_module);
}
