/* pyloot._pyloot: module definition. This file is the top of the
 * extension: it runs the exec of every part (errors.c, rules.c, store_handler.c,
 * collector.c, remote.c, live.c, graphobject.c, witness.c, requests.c, alloc_sites.c), handing the
 * live-object answer function to the parts that answer requests, so that
 * they do not depend on the live-object code. No part calls into it. */
#include "pyext.h"

#include <pthread.h>

#include "alloc_sites.h"
#include "requests.h"
#include "witness.h"

static struct PyModuleDef pl_module;

/* In a child made by fork(): the threads of the parent do not exist. One
 * handler, so the parts reset in a fixed order. */
static void atfork_child(void)
{
    pl_collector_atfork_child();
    pl_remote_atfork_child();
    pl_witness_atfork_child();
    pl_requests_atfork_child();
}

/* The collector thread's tick: the live routes' cache expiry, then the
 * allocation sites' windows. */
static void collector_tick(void)
{
    pl_live_tree_tick();
    pl_alloc_tick();
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
    if (pl_errors_module_exec(m) < 0)
        return -1;
    if (PyModule_AddStringConstant(m, "__version__", PYLOOT_VERSION) < 0)
        return -1;
    if (pl_rules_module_exec(m) < 0 || pl_store_module_exec(m, pl_live_answer) < 0 ||
        pl_collector_module_exec(m, pl_live_answer) < 0 ||
        pl_remote_module_exec(m, pl_live_answer) < 0 ||
        pl_live_module_exec(m) < 0 || pl_graph_module_exec(m) < 0 || pl_witness_module_exec(m) < 0 ||
        pl_heap_dump_module_exec(m) < 0 || pl_requests_module_exec(m) < 0 || pl_alloc_module_exec(m) < 0)
        return -1;
    pl_collector_set_tick(collector_tick);
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
    Py_VISIT(st->components_type);
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
    Py_CLEAR(st->components_type);
    return 0;
}

static void pl_free(void *m)
{
    pl_alloc_untrace_all(1);
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
