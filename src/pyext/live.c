/* live.c: the live-object answer function, which dispatches a query to
 * its file, and live_query (see live.h for the order every query follows;
 * what every query shares is in live_answer.c). */
#include "live.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heap.h"
#include "held_secrets.h"
#include "pyloot/json.h"

/* Answers q with the GIL held. Returns 0 with a body and a->status, or -1
 * with an exception set. */
static int answer_locked(pl_answer *a)
{
    const pl_live_query *q = a->q;
    if ((q->kind < PL_LIVE_LIST || q->kind > PL_LIVE_HEAPDUMP) && q->kind != PL_LIVE_TASKS) {
        pl_answer_error(a, 400, "unknown live-object query");
        return 0;
    }
    if (q->offset > PL_MAX_OFFSET) {
        pl_answer_error(a, 400, "offset must be 0..1000000000");
        return 0;
    }
    if (q->limit < 1 || q->limit > PL_MAX_LIMIT) {
        pl_answer_error(a, 400, "limit must be 1..10000");
        return 0;
    }
    if (q->kind == PL_LIVE_LIST) {
        size_t glen = strnlen(q->group, sizeof q->group);
        if (glen == 0 || glen == sizeof q->group) {
            pl_answer_error(a, 400, "group must be 1..1024 bytes");
            return 0;
        }
        return pl_answer_list(a);
    }
    if (q->kind == PL_LIVE_SUSPECTS) {
        size_t glen = strnlen(q->group, sizeof q->group);
        if (glen == 0 || glen == sizeof q->group) {
            pl_answer_error(a, 400, "group must be 1..1024 bytes");
            return 0;
        }
        if (q->limit > 10) {
            pl_answer_error(a, 400, "n must be 1..10");
            return 0;
        }
    }
    if (q->kind == PL_LIVE_HEAPDUMP)
        return pl_answer_heapdump(a);
    if (q->kind == PL_LIVE_TASKS) {
        if (q->limit > 100) {
            pl_answer_error(a, 400, "limit must be 1..100");
            return 0;
        }
        return pl_answer_tasks(a);
    }
    if (q->kind == PL_LIVE_RETAINED || q->kind == PL_LIVE_RETAINERS || q->kind == PL_LIVE_SUSPECTS)
        return pl_answer_retained(a);
    if (q->kind == PL_LIVE_DETAIL)
        return pl_answer_detail(a);
    if (q->kind == PL_LIVE_PATH)
        return pl_answer_path(a);
    if (q->kind == PL_LIVE_GRAPH)
        return pl_answer_graph(a);
    return pl_answer_related(a);
}

/* See pyext.h / pl_live_fn in handler.h. ctx is unused (may be NULL).
 * Re-entrant on one thread (a repr() asking pyloot) up to
 * PL_LIVE_MAX_NESTING answers deep (describe.h).
 * Thread-safe: every call takes the GIL for its whole work; the body is the
 * caller's. Answers 503 once the interpreter is finalizing, because a
 * foreign thread must not wait for the GIL then. */
int pl_live_answer(void *ctx, const pl_live_query *q, pl_buf *body, int *status)
{
    pl_answer a;
    memset(&a, 0, sizeof a);
    a.q = q;
    a.status = 500;
    size_t start = body->len;
    if (!Py_IsInitialized() || pl_live_finalizing()) {
        *status = 503;
        pl_buf_printf(body, "{\"pid\":%ld,\"error\":\"the interpreter is shutting down\"}", (long)getpid());
        return body->err ? ENOMEM : 0;
    }
    PyGILState_STATE g = PyGILState_Ensure();
    double gil_t0 = pl_now_s(); /* pyloot's own GIL time when a pyloot thread answers */
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb); /* keep whatever the thread had pending */
    /* pl_answer_error rewrites from 0: answer into a fresh buffer, then append. */
    pl_buf doc = PL_BUF_INIT;
    a.body = &doc;
    pl_held_secrets held = {0};
    a.repr.held = &held; /* built on first need: see held_secrets.h */
    if (pl_answer_enter(&a.repr.deadline) < 0) {
        /* A repr() of an answer on this thread asked again, and so on: the
         * chain is cut here, and every repr() waiting on it fails. */
        pl_answer_error(&a, 500, "live-object queries nested too deeply (a repr() asking pyloot about objects)");
    } else {
        int rc = answer_locked(&a);
        if (rc < 0) {
            int nomem = PyErr_ExceptionMatches(PyExc_MemoryError);
            PyErr_Clear();
            pl_answer_error(&a, 500, nomem ? "out of memory" : "live-object query failed");
        }
        pl_answer_leave();
    }
    pl_held_secrets_free(&held);
    PyErr_Restore(et, ev, tb);
    pl_gil_held_add(pl_now_s() - gil_t0);
    PyGILState_Release(g);
    body->len = start;
    if (doc.err) {
        pl_buf_free(&doc);
        *status = 500;
        return ENOMEM;
    }
    pl_buf_append(body, doc.data, doc.len);
    pl_buf_free(&doc);
    *status = a.status;
    return body->err ? ENOMEM : 0;
}

/* _pyloot.live_query(kind, group, id, offset, limit) -> (status, body) */
static PyObject *py_live_query(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"kind", "group", "id", "offset", "limit", NULL};
    int kind;
    const char *group = "";
    Py_ssize_t glen = 0;
    PyObject *id_obj = NULL, *off_obj = NULL, *lim_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "i|z#OOO:live_query", kwlist, &kind, &group, &glen,
                                     &id_obj, &off_obj, &lim_obj))
        return NULL;
    pl_live_query *q = calloc(1, sizeof(*q));
    if (!q)
        return PyErr_NoMemory();
    q->kind = (pl_live_kind)kind;
    q->limit = 100;
    const char *bad = NULL;
    if (group) {
        if ((size_t)glen > PL_TYPE_NAME_MAX || memchr(group, 0, (size_t)glen))
            bad = "group must be 1..1024 bytes";
        else
            memcpy(q->group, group, (size_t)glen);
    }
    PyObject *nums[3] = {id_obj, off_obj, lim_obj};
    uint64_t *dst[3] = {&q->id, &q->offset, &q->limit};
    static const char *names[3] = {"id", "offset", "limit"};
    char msg[64];
    for (int i = 0; i < 3 && !bad; i++) {
        if (!nums[i] || nums[i] == Py_None)
            continue;
        if (!PyLong_Check(nums[i])) {
            free(q);
            return PyErr_Format(PyExc_TypeError, "%s must be an int", names[i]);
        }
        unsigned long long v = PyLong_AsUnsignedLongLong(nums[i]);
        if (v == (unsigned long long)-1 && PyErr_Occurred()) {
            PyErr_Clear();
            snprintf(msg, sizeof msg, "%s must be 0..2**64-1", names[i]);
            bad = msg;
        }
        *dst[i] = v;
    }
    pl_buf body = PL_BUF_INIT;
    int status = 400;
    int rc = 0;
    if (bad) {
        pl_buf_printf(&body, "{\"pid\":%ld,\"error\":", (long)getpid());
        pl_json_cstr(&body, bad);
        rc = pl_buf_putc(&body, '}');
    } else {
        /* The same path as a request thread: the GIL is released here and
         * taken back with PyGILState_Ensure inside. */
        Py_BEGIN_ALLOW_THREADS
        rc = pl_live_answer(NULL, q, &body, &status);
        Py_END_ALLOW_THREADS
    }
    free(q);
    if (rc) {
        pl_buf_free(&body);
        return PyErr_NoMemory();
    }
    PyObject *res = Py_BuildValue("(iy#)", status, body.data ? body.data : "", (Py_ssize_t)body.len);
    pl_buf_free(&body);
    return res;
}

static PyMethodDef live_methods[] = {
    {"live_query", (PyCFunction)(void (*)(void))py_live_query, METH_VARARGS | METH_KEYWORDS,
     "live_query(kind, group='', id=0, offset=0, limit=100) -> (status, body)\n\n"
     "Answers a live-object query about this process as the HTTP routes do\n"
     "(kind: 1 list, 2 detail, 3 parents, 4 children, 5 path, 6 detail with retained\n"
     "size, 7 retainers, 8 suspects: group, limit = n, 9 graph: limit = depth,\n"
     "12 tasks: group = state, limit = groups).\n"
     "body is JSON."},
    {NULL, NULL, 0, NULL},
};

/* Adds live_query and the LIVE_* constants to the module. Returns 0 or -1. */
int pl_live_module_exec(PyObject *module)
{
    if (PyModule_AddFunctions(module, live_methods) < 0)
        return -1;
    if (PyModule_AddIntConstant(module, "LIVE_LIST", PL_LIVE_LIST) < 0 ||
        PyModule_AddIntConstant(module, "LIVE_DETAIL", PL_LIVE_DETAIL) < 0 ||
        PyModule_AddIntConstant(module, "LIVE_PARENTS", PL_LIVE_PARENTS) < 0 ||
        PyModule_AddIntConstant(module, "LIVE_CHILDREN", PL_LIVE_CHILDREN) < 0 ||
        PyModule_AddIntConstant(module, "LIVE_PATH", PL_LIVE_PATH) < 0 ||
        PyModule_AddIntConstant(module, "LIVE_RETAINED", PL_LIVE_RETAINED) < 0 ||
        PyModule_AddIntConstant(module, "LIVE_RETAINERS", PL_LIVE_RETAINERS) < 0 ||
        PyModule_AddIntConstant(module, "LIVE_SUSPECTS", PL_LIVE_SUSPECTS) < 0 ||
        PyModule_AddIntConstant(module, "LIVE_GRAPH", PL_LIVE_GRAPH) < 0 ||
        PyModule_AddIntConstant(module, "LIVE_HEAPDUMP", PL_LIVE_HEAPDUMP) < 0 ||
        PyModule_AddIntConstant(module, "LIVE_TASKS", PL_LIVE_TASKS) < 0)
        return -1;
    return 0;
}
