/* Live objects of this process: list by type, detail, parents, children, path. */
#include "pyext.h"

#include "pyloot/json.h"

int pl_live_answer(void *ctx, const pl_live_query *q, pl_buf *body, int *status)
{
    *status = 501;
    return pl_json_error(body, "live objects are not implemented yet");
}

int pl_objects_module_exec(PyObject *module)
{
    return 0;
}
