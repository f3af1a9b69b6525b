/* heap_gen.c: where a suspended generator or coroutine stands (heap.h),
 * read from the interpreter frame it embeds, as its cr_frame.f_lineno would
 * tell without building the frame object that cr_frame creates and keeps.
 *
 * The internal headers are those of the exact CPython this file is compiled
 * against; the layout is used only under the versions it was checked on
 * (3.11 to 3.13, with the GIL), as heap.c does. */
#ifndef Py_BUILD_CORE
#define Py_BUILD_CORE 1
#endif
#include "heap.h"

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030E0000 && !defined(Py_GIL_DISABLED)
#define PL_GEN_FRAME 1
#include <internal/pycore_code.h>
#include <internal/pycore_frame.h>
#include <internal/pycore_genobject.h>
#endif

#ifdef PL_GEN_FRAME
static PyCodeObject *iframe_code(_PyInterpreterFrame *f)
{
#if PY_VERSION_HEX >= 0x030D0000
    return _PyFrame_GetCode(f);
#else
    return f->f_code;
#endif
}
#endif

/* See heap.h. */
int pl_gen_where(PyObject *gen, PyObject **code, PyObject **globals, int *line)
{
    *code = NULL;
    *globals = NULL;
    *line = -1;
#ifdef PL_GEN_FRAME
    if (!PyGen_CheckExact(gen) && !PyCoro_CheckExact(gen) && !PyAsyncGen_CheckExact(gen))
        return 0;
    PyGenObject *g = (PyGenObject *)gen;
    _PyInterpreterFrame *f = (_PyInterpreterFrame *)g->gi_iframe;
#if PY_VERSION_HEX >= 0x030C0000
    PyCodeObject *co = iframe_code(f); /* the frame keeps its code after it ends */
#else
    PyCodeObject *co = g->gi_code;
#endif
    *code = (PyObject *)co;
    if (g->gi_frame_state >= FRAME_COMPLETED)
        return 0;
    *globals = f->f_globals;
    if (g->gi_frame_state == FRAME_CREATED) {
        *line = co->co_firstlineno;
        return 1;
    }
#if PY_VERSION_HEX >= 0x030C0000
    *line = PyUnstable_InterpreterFrame_GetLine(f);
#else
    *line = PyCode_Addr2Line(co, _PyInterpreterFrame_LASTI(f) * (int)sizeof(_Py_CODEUNIT));
#endif
    (void)iframe_code;
    return 1;
#else
    (void)gen;
    return 0;
#endif
}
