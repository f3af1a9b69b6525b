/* pyloot extension: putting a call site back to its unspecialized form
 * (call_site.c), for the allocation sites' windows (alloc_sites.c).
 *
 * CPython 3.13 specializes a call to a class whose tp_alloc is not
 * PyType_GenericAlloc as CALL_NON_PY_GENERAL, a form that never falls back
 * for a class: the site keeps the generic path after the wrapper is gone.
 * Put back to CALL with a counter that triggers at its next execution, the
 * site specializes again for the class as it is then. */
#ifndef PYLOOT_PYEXT_CALL_SITE_H
#define PYLOOT_PYEXT_CALL_SITE_H

#include "pyext.h"

/* When the instruction at byte offset `lasti` of `code` is
 * CALL_NON_PY_GENERAL, makes it CALL specializing at its next execution
 * (what a deoptimization does) and returns 1; else 0. Any call is then
 * specialized again as before, so the caller need not know what the site
 * calls. 0 on versions other than 3.13 and on free-threaded builds. GIL
 * held. */
int pl_call_site_respecialize(PyCodeObject *code, int lasti);

#endif
