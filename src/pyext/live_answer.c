/* live_answer.c: what every live-object query shares (live.h): the
 * document's first fields, errors, the snapshot of tracked objects, finding
 * an object by id, pages of object summaries. The queries (live_list.c,
 * live_related.c, live_path.c, live_retained.c) and the dispatcher (live.c)
 * call down into this file, which calls none of them. */
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



int pl_live_finalizing(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    return Py_IsFinalizing();
#else
    return _Py_IsFinalizing();
#endif
}
