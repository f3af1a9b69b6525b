/* The redaction and access rules as Python functions (set_redact,
 * redact_name, token_valid, route_class), and this process's list of
 * secret-looking names that the live-object views read
 * (pl_redact_current). The rules themselves are the core's
 * (pyloot/redact.h, pyloot/access.h). */
#include "pyext.h"

#include "pyloot/access.h"
#include "pyloot/error.h"
#include "pyloot/redact.h"

/* The secret-looking names of this process (PyLoot(redact=...)); NULL means
 * the default list. Protected by the GIL: set here, read by the live-object
 * views, which run with the GIL held. */
static pl_redact *redact_current;

/* See pyloot/redact.h; the list PyLoot(redact=...) set last in this process. */
const pl_redact *pl_redact_current(void)
{
    return redact_current;
}

static PyObject *py_set_redact(PyObject *module, PyObject *arg)
{
    pl_redact *r = NULL;
    if (arg != Py_None) {
        const char *words = PyUnicode_AsUTF8(arg);
        if (!words)
            return NULL;
        int rc = pl_redact_new(&r, words);
        if (rc == PL_EBADARG) {
            PyErr_SetString(PyExc_ValueError, "each redact name must be at most 256 bytes");
            return NULL;
        }
        if (rc)
            return PyErr_NoMemory();
    }
    pl_redact_free(redact_current);
    redact_current = r;
    Py_RETURN_NONE;
}

static PyObject *py_redact_name(PyObject *module, PyObject *arg)
{
    Py_ssize_t n;
    const char *name = PyUnicode_AsUTF8AndSize(arg, &n);
    if (!name)
        return NULL;
    return PyBool_FromLong(pl_redact_name(redact_current, name, (size_t)n));
}

static PyObject *py_token_valid(PyObject *module, PyObject *arg)
{
    const char *token = PyUnicode_AsUTF8(arg);
    if (!token)
        return NULL;
    return PyBool_FromLong(pl_token_valid(token));
}

static PyObject *py_route_class(PyObject *module, PyObject *arg)
{
    const char *path = PyUnicode_AsUTF8(arg);
    if (!path)
        return NULL;
    return PyLong_FromLong((long)pl_access_classify(path));
}

static PyMethodDef rules_functions[] = {
    {"route_class", py_route_class, METH_O,
     "route_class(path) -> 0 open (UI files, login), 1 summary (procs, history, metrics), 2 values."},
    {"set_redact", py_set_redact, METH_O,
     "set_redact(words) sets this process's secret-looking names (newline-separated words; None: the "
     "default list)."},
    {"token_valid", py_token_valid, METH_O, "token_valid(token) -> True when usable as an access token."},
    {"redact_name", py_redact_name, METH_O, "redact_name(name) -> True when its value is shown as <redacted>."},
    {NULL, NULL, 0, NULL},
};

/* See pyext.h. */
int pl_rules_module_exec(PyObject *module)
{
    if (PyModule_AddStringConstant(module, "REDACT_DEFAULT", PL_REDACT_DEFAULT) < 0)
        return -1;
    return PyModule_AddFunctions(module, rules_functions);
}
