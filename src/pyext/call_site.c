/* call_site.c: a call site back to its unspecialized form (call_site.h).
 * The internal headers are those of the exact CPython this file is compiled
 * against; the layout (_Py_CODEUNIT, _PyCallCache, the 12-bit value of the
 * backoff counter) is only used on 3.13, where it was checked. */
/* Before Python.h, like heap.c: the internal headers follow. */
#ifndef Py_BUILD_CORE
#define Py_BUILD_CORE 1
#endif
#include "call_site.h"

#if PY_VERSION_HEX >= 0x030D0000 && PY_VERSION_HEX < 0x030E0000 && !defined(Py_GIL_DISABLED)
#define PL_RESPECIALIZE 1
#include <internal/pycore_code.h>
#include <opcode_ids.h>
#endif

/* See call_site.h. */
int pl_call_site_respecialize(PyCodeObject *code, int lasti)
{
#ifdef PL_RESPECIALIZE
    if (!code || lasti < 0 || lasti % (int)sizeof(_Py_CODEUNIT))
        return 0;
    Py_ssize_t i = lasti / (Py_ssize_t)sizeof(_Py_CODEUNIT);
    /* The instruction and its three cache entries within the code. */
    if (i + 1 + (Py_ssize_t)(sizeof(_PyCallCache) / sizeof(_Py_CODEUNIT)) > Py_SIZE(code))
        return 0;
    _Py_CODEUNIT *instr = &_PyCode_CODE(code)[i];
    if (instr->op.code != CALL_NON_PY_GENERAL)
        return 0;
    _PyCallCache *cache = (_PyCallCache *)(instr + 1);
    cache->counter.as_counter = 0; /* value 0: specialize at the next execution */
    instr->op.code = CALL;
    return 1;
#else
    (void)code;
    (void)lasti;
    return 0;
#endif
}
