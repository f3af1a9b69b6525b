#include "pyext.h"

int pl_collector_module_exec(PyObject *module)
{
    return 0;
}
