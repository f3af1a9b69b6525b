/* live.c: the live-object answer function and what every query shares
 * (see live.h for the order every query follows). */
#include "live.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heap.h"
#include "pyloot/json.h"

static int snap_add(PyObject *o, void *arg)
{
    return pl_objvec_push(arg, o) < 0 ? 2 : 0;
}

/* Fills `snap` with borrowed pointers to every gc-tracked object. They stay
 * valid only until Python code runs or a collection happens. Returns 0, or
 * -1 with an exception set. */
static int snapshot(pl_objvec *snap)
{
    int rc = pl_live_walk(snap_add, snap);
    if (rc == 2) {
        PyErr_NoMemory();
        return -1;
    }
    return rc < 0 ? -1 : 0;
}

int pl_has_traverse(PyObject *o)
{
    return PyObject_IS_GC(o) && Py_TYPE(o)->tp_traverse != NULL;
}

void pl_answer_begin_doc(pl_answer *a)
{
    pl_buf_putc(a->body, '{');
    pl_json_key(a->body, "pid");
    pl_json_i64(a->body, (int64_t)getpid());
}

void pl_answer_error(pl_answer *a, int status, const char *msg)
{
    a->body->len = 0;
    a->status = status;
    pl_answer_begin_doc(a);
    pl_buf_putc(a->body, ',');
    pl_json_key(a->body, "error");
    pl_json_cstr(a->body, msg);
    pl_buf_putc(a->body, '}');
}

void pl_answer_gone(pl_answer *a)
{
    char msg[80];
    snprintf(msg, sizeof msg, "object %llu is no longer available", (unsigned long long)a->q->id);
    pl_answer_error(a, 404, msg);
}

/* Ends the snapshot phase: drops the array and lets gc run again. */
void pl_answer_end_snapshot(pl_answer *a)
{
    pl_objvec_free(&a->snap);
    if (a->gc_was_enabled) {
        PyGC_Enable();
        a->gc_was_enabled = 0;
    }
}

int pl_answer_snapshot(pl_answer *a)
{
    a->gc_was_enabled |= PyGC_Disable(); /* |=: answer_path may have disabled it already */
    if (snapshot(&a->snap) < 0) {
        pl_answer_end_snapshot(a);
        return -1;
    }
    return 0;
}

struct match_ctx {
    uintptr_t id;
    PyObject *found;
};

static int visit_match(PyObject *child, void *arg)
{
    struct match_ctx *m = arg;
    if ((uintptr_t)child == m->id) {
        m->found = child;
        return 1;
    }
    return 0;
}

/* Finds the object with address q->id among the snapshot, then among the
 * referents of the snapshot (untracked objects such as str or int).
 * Borrowed result or NULL. */
PyObject *pl_answer_find(pl_answer *a)
{
    uintptr_t id = (uintptr_t)a->q->id;
    if (id == 0 || a->q->id > UINTPTR_MAX)
        return NULL;
    for (size_t i = 0; i < a->snap.n; i++)
        if ((uintptr_t)a->snap.v[i] == id)
            return a->snap.v[i];
    struct match_ctx m = {id, NULL};
    for (size_t i = 0; i < a->snap.n && !m.found; i++) {
        PyObject *o = a->snap.v[i];
        if (pl_has_traverse(o))
            Py_TYPE(o)->tp_traverse(o, visit_match, &m);
    }
    /* Found through a real reference, so it is an object; its type must be one too. */
    if (m.found && !PyType_Check((PyObject *)Py_TYPE(m.found)))
        return NULL;
    return m.found;
}

/* Finds the object q->id and, when `parents` is given, its parents, in one
 * walk over the tracked objects without a snapshot array: every object is
 * compared with the id, and its tp_traverse asked whether it visits that
 * address (which also finds an untracked object through its referrers).
 * gc must be disabled by the caller. Returns the object (borrowed) or NULL;
 * *err is set on ENOMEM. Parents come out in address order. */
struct id_scan {
    uintptr_t id;
    PyObject *found;
    pl_objvec *parents;
    int referents; /* also look among referents (second pass, or with parents) */
    int err;
};

static int id_scan_visit(PyObject *o, void *arg)
{
    struct id_scan *s = arg;
    if ((uintptr_t)o == s->id)
        s->found = o;
    if (!s->referents || !pl_has_traverse(o))
        return s->found && !s->parents ? 1 : 0;
    struct match_ctx m = {s->id, NULL};
    Py_TYPE(o)->tp_traverse(o, visit_match, &m);
    if (!m.found)
        return 0;
    if (!s->found)
        s->found = m.found;
    if (!s->parents)
        return 1;
    if (pl_objvec_push(s->parents, o) < 0) {
        s->err = 1;
        return 1;
    }
    return 0;
}

PyObject *pl_answer_scan_for_id(pl_answer *a, pl_objvec *parents, int *err)
{
    struct id_scan s = {(uintptr_t)a->q->id, NULL, parents, parents != NULL, 0};
    *err = 0;
    if (a->q->id == 0 || a->q->id > UINTPTR_MAX)
        return NULL;
    a->gc_was_enabled |= PyGC_Disable();
    if (pl_live_walk(id_scan_visit, &s) < 0 && !s.err) {
        PyErr_Clear();
        *err = 1;
        return NULL;
    }
    if (!s.found && !parents && !s.err) {
        s.referents = 1;
        if (pl_live_walk(id_scan_visit, &s) < 0 && !s.err) {
            PyErr_Clear();
            *err = 1;
            return NULL;
        }
    }
    if (s.err) {
        *err = 1;
        return NULL;
    }
    if (s.found && !PyType_Check((PyObject *)Py_TYPE(s.found)))
        s.found = NULL;
    if (s.found && parents)
        qsort(parents->v, parents->n, sizeof(*parents->v), pl_cmp_addr);
    else if (parents)
        parents->n = 0;
    return s.found;
}

void pl_answer_page_fields(pl_answer *a, uint64_t total)
{
    pl_buf *b = a->body;
    pl_buf_putc(b, ',');
    pl_json_key(b, "total");
    pl_json_u64(b, total);
    pl_buf_putc(b, ',');
    pl_json_key(b, "offset");
    pl_json_u64(b, a->q->offset);
    pl_buf_putc(b, ',');
    pl_json_key(b, "limit");
    pl_json_u64(b, a->q->limit);
}

void pl_answer_objects(pl_answer *a, PyObject **v, size_t n, char **labels,
                       const unsigned char *redacted)
{
    pl_buf *b = a->body;
    pl_buf_putc(b, ',');
    pl_json_key(b, "objects");
    pl_buf_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            pl_buf_putc(b, ',');
        pl_json_summary_as(&a->repr, b, v[i], PL_REPR_LIST_CHARS, redacted && redacted[i]);
        if (labels && b->len && b->data[b->len - 1] == '}') {
            b->len--; /* reopen the summary for one more field */
            pl_buf_putc(b, ',');
            pl_json_key(b, "via");
            if (labels[i])
                pl_json_cstr(b, labels[i]);
            else
                pl_buf_puts(b, "null");
            pl_buf_putc(b, '}');
        }
    }
    pl_buf_putc(b, ']');
}

/* ------------------------------------------------------------------ */

int pl_live_finalizing(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    return Py_IsFinalizing();
#else
    return _Py_IsFinalizing();
#endif
}

/* Answers q with the GIL held. Returns 0 with a body and a->status, or -1
 * with an exception set. */
static int answer_locked(pl_answer *a)
{
    const pl_live_query *q = a->q;
    if (q->kind < PL_LIVE_LIST || q->kind > PL_LIVE_SUSPECTS) {
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
    if (q->kind == PL_LIVE_RETAINED || q->kind == PL_LIVE_RETAINERS || q->kind == PL_LIVE_SUSPECTS)
        return pl_answer_retained(a);
    if (q->kind == PL_LIVE_DETAIL)
        return pl_answer_detail(a);
    if (q->kind == PL_LIVE_PATH)
        return pl_answer_path(a);
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
     "size, 7 retainers, 8 suspects: group, limit = n). body is JSON."},
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
        PyModule_AddIntConstant(module, "LIVE_SUSPECTS", PL_LIVE_SUSPECTS) < 0)
        return -1;
    return 0;
}
