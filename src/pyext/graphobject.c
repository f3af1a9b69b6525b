/* The object graph (refcycle API) for Python. */
#include "pyext.h"

int pl_graph_module_exec(PyObject *module)
{
    return 0;
}
