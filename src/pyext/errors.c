/* errors.c: the module state's accessor and the one conversion of core
 * errors into exceptions (pl_raise), at the bottom of the extension: every
 * part calls down into it. */
#include "pyext.h"

#include <errno.h>

#include "pyloot/error.h"

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

/* See pyext.h. */
int pl_errors_module_exec(PyObject *m)
{
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
    return 0;
}
