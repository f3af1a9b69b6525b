/* pyloot extension: what an asyncio Task or Future is doing (task_info.c):
 * its state, its name, its coroutine and the await chain below it, down to
 * the future it waits on.
 *
 * Everything is read through the C getters of the _asyncio module's own
 * Future and Task types and of the builtin coroutine and generator types,
 * called on the object directly: no attribute lookup on the object's type,
 * so a user subclass's properties, __getattr__, __getattribute__ or
 * __repr__ never run, and no Python code of the app runs at all (no repr,
 * no get_stack()). A getter that fails (a Task whose __init__ never ran)
 * gives an "error" field, never an exception. Only the C implementation
 * (_asyncio) is known: the pure-Python asyncio.tasks._PyTask is a plain
 * object here.
 *
 * All functions need the GIL, and are called on objects the caller holds
 * references to (step 4 of live.h's order). */
#ifndef PYLOOT_PYEXT_TASK_INFO_H
#define PYLOOT_PYEXT_TASK_INFO_H

#include "pyext.h"

/* Steps of an await chain shown, the task's coroutine included; a deeper
 * chain is cut and marked "truncated" (docs/http-api.md). */
#define PL_AWAIT_CHAIN_MAX 32

/* The _asyncio module's types and the getters read, found once per answer
 * (borrowed from their types, which outlive the answer). */
typedef struct pl_aio {
    PyTypeObject *future, *task;
    PyObject *state;      /* Future._state */
    PyObject *coro;       /* Task._coro */
    PyObject *fut_waiter; /* Task._fut_waiter */
    PyObject *get_name;   /* Task.get_name */
    /* of the coroutine, generator and async generator types, in that order */
    PyObject *awaited_getset[3];  /* cr_await, gi_yieldfrom, ag_await */
    PyObject *qualname_getset[3]; /* __qualname__ */
} pl_aio;

/* Fills *aio when _asyncio has been imported (it is never imported here)
 * and its types are the C ones. 1 found, 0 not (no asyncio future can
 * exist then); never raises. */
int pl_aio_find(pl_aio *aio);

/* 1 when o is an instance of _asyncio.Future or of a subclass (Task
 * included); 2 when it is a Task. No code runs (the type's MRO is read). */
int pl_aio_kind(const pl_aio *aio, PyObject *o);

enum { PL_AIO_UNKNOWN = 0, PL_AIO_PENDING, PL_AIO_DONE, PL_AIO_CANCELLED };
/* The state of a future or task; PL_AIO_UNKNOWN when it cannot be read. */
int pl_aio_state(const pl_aio *aio, PyObject *fut);
/* "pending", "done", "cancelled" or "unknown". */
const char *pl_aio_state_name(int state);

/* For the grouping of /api/tasks: the task's coroutine as
 * "module.qualname" into `coroutine`, and where the innermost coroutine or
 * generator of its await chain stands ("file:line") into `where` ("" when
 * unknown). Appends to both; 0, or -1 when out of memory (no exception). */
int pl_aio_task_where(const pl_aio *aio, PyObject *task, pl_buf *coroutine, pl_buf *where);

/* Appends ,"task":{...} for a task or ,"future":{...} for a future (the
 * object page, docs/http-api.md); nothing for other objects. */
void pl_aio_json(pl_buf *b, PyObject *o);

/* When o is an asyncio future or task: appends pyloot's own repr of it,
 * "<Task pending name='Task-3' coro=<poll() running at /app.py:42>>", and
 * returns 1 (asyncio's own repr runs Python code that a subclass can
 * override). Else 0 and nothing appended. */
int pl_aio_repr(pl_buf *out, PyObject *o);

#endif
