/* live_alloc_tm.c: allocation sites of types pyloot does not trace (list,
 * dict, ...) taken from tracemalloc, when the application runs it
 * (GET /api/allocations, docs/allocations.md). tracemalloc records a
 * traceback for every memory block it traces; an object's is where the
 * object was allocated. Only tracked instances are seen, at most
 * PL_ALLOC_TM_INSTANCES of them. */
#include "live.h"

#include <stdlib.h>
#include <string.h>

#include "heap.h"
#include "pyloot/json.h"

#define PL_ALLOC_TM_INSTANCES 100000 /* instances asked for their traceback */

struct tm_scan {
    const char *group;
    size_t glen;
    pl_ptrmap types;   /* type -> 1 matches, 2 does not */
    pl_buf name;
    pl_objvec found;   /* strong references */
    uint64_t total;
    int err;
};

static int tm_visit(PyObject *o, void *arg)
{
    struct tm_scan *s = arg;
    PyTypeObject *t = Py_TYPE(o);
    uint32_t v = 0;
    if (!pl_ptrmap_get(&s->types, (uintptr_t)t, &v)) {
        pl_buf_reset(&s->name);
        if (pl_typename(t, &s->name) < 0) {
            PyErr_Clear();
            s->err = 1;
            return 1;
        }
        v = s->name.len == s->glen && memcmp(s->name.data, s->group, s->glen) == 0 ? 1 : 2;
        if (pl_ptrmap_add(&s->types, (uintptr_t)t, v) < 0) {
            s->err = 1;
            return 1;
        }
    }
    if (v != 1)
        return 0;
    s->total++;
    if (s->found.n < PL_ALLOC_TM_INSTANCES) {
        if (pl_objvec_push(&s->found, o) < 0) {
            s->err = 1;
            return 1;
        }
        Py_INCREF(o);
    }
    return 0;
}

static int by_count_desc(const void *x, const void *y)
{
    PyObject *a = PyTuple_GET_ITEM(*(PyObject *const *)x, 0), *b = PyTuple_GET_ITEM(*(PyObject *const *)y, 0);
    Py_ssize_t ca = PyLong_AsSsize_t(a), cb = PyLong_AsSsize_t(b);
    return ca > cb ? -1 : ca < cb;
}

/* Appends the frames of a tracemalloc traceback (a tuple of (file, line),
 * most recent first) as pyloot's frames, function null. */
static void tm_frames(pl_buf *b, PyObject *tb)
{
    pl_buf_putc(b, '[');
    Py_ssize_t n = PyTuple_Check(tb) ? PyTuple_GET_SIZE(tb) : 0;
    for (Py_ssize_t i = 0; i < n && i < 16; i++) {
        PyObject *f = PyTuple_GET_ITEM(tb, i);
        if (i)
            pl_buf_putc(b, ',');
        pl_buf_puts(b, "{\"file\":");
        if (PyTuple_Check(f) && PyTuple_GET_SIZE(f) == 2) {
            pl_json_pystr(b, PyTuple_GET_ITEM(f, 0), "?");
            pl_buf_printf(b, ",\"line\":%ld,\"function\":null}", PyLong_AsLong(PyTuple_GET_ITEM(f, 1)));
            if (PyErr_Occurred())
                PyErr_Clear();
        } else {
            pl_buf_puts(b, "\"?\",\"line\":0,\"function\":null}");
        }
    }
    pl_buf_putc(b, ']');
}

/* See live.h. */
int pl_answer_allocations_tracemalloc(pl_answer *a)
{
    PyObject *tm = NULL, *counts = NULL, *items = NULL, *modname = PyUnicode_FromString("_tracemalloc");
    struct tm_scan s;
    memset(&s, 0, sizeof s);
    int rc = -1;
    if (!modname)
        goto out;
    /* Only when the application imported it: nothing is imported here. */
    tm = PyImport_GetModule(modname);
    if (!tm) {
        rc = PyErr_Occurred() ? -1 : 0;
        goto out;
    }
    PyObject *on = PyObject_CallMethod(tm, "is_tracing", NULL);
    int tracing = on && PyObject_IsTrue(on) == 1;
    Py_XDECREF(on);
    if (!tracing) {
        PyErr_Clear();
        rc = 0;
        goto out;
    }
    s.group = a->q->group;
    s.glen = strlen(s.group);
    if (pl_ptrmap_init(&s.types, 1024) < 0) {
        PyErr_NoMemory();
        goto out;
    }
    a->gc_was_enabled = PyGC_Disable();
    int wr = pl_live_walk(tm_visit, &s);
    pl_answer_end_snapshot(a);
    if (s.err || wr < 0) {
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        goto out;
    }
    if (!s.total) {
        rc = 0;
        goto out;
    }
    /* Python code from here on (the borrowed pointers are gone): tally the
     * tracebacks in a dict. */
    if (!(counts = PyDict_New()))
        goto out;
    uint64_t seen = 0;
    for (size_t i = 0; i < s.found.n; i++) {
        PyObject *tb = PyObject_CallMethod(tm, "_get_object_traceback", "O", s.found.v[i]);
        if (!tb)
            goto out;
        if (tb != Py_None) {
            seen++;
            PyObject *c = PyDict_GetItemWithError(counts, tb);
            long v = c ? PyLong_AsLong(c) + 1 : 1;
            PyObject *nv = PyLong_FromLong(v);
            if (!nv || PyDict_SetItem(counts, tb, nv) < 0) {
                Py_XDECREF(nv);
                Py_DECREF(tb);
                goto out;
            }
            Py_DECREF(nv);
        }
        Py_DECREF(tb);
    }
    if (!(items = PyList_New(0)))
        goto out;
    PyObject *k, *v;
    Py_ssize_t pos = 0;
    while (PyDict_Next(counts, &pos, &k, &v)) {
        PyObject *pair = PyTuple_Pack(2, v, k);
        if (!pair || PyList_Append(items, pair) < 0) {
            Py_XDECREF(pair);
            goto out;
        }
        Py_DECREF(pair);
    }
    Py_ssize_t n = PyList_GET_SIZE(items);
    qsort(((PyListObject *)items)->ob_item, (size_t)n, sizeof(PyObject *), by_count_desc);

    pl_buf *b = a->body;
    pl_answer_begin_doc(a);
    pl_buf_putc(b, ',');
    pl_json_key(b, "group");
    pl_json_cstr(b, a->q->group);
    pl_buf_puts(b, ",\"traced\":true,\"source\":\"tracemalloc\",");
    pl_json_key(b, "instances");
    pl_json_u64(b, s.total);
    pl_buf_putc(b, ',');
    pl_json_key(b, "instances_with_traceback");
    pl_json_u64(b, seen);
    pl_buf_putc(b, ',');
    pl_json_key(b, "total_sites");
    pl_json_u64(b, (uint64_t)n);
    pl_buf_puts(b, ",\"sites\":[");
    size_t first = a->q->offset < (uint64_t)n ? (size_t)a->q->offset : (size_t)n;
    size_t last = (size_t)n - first > a->q->limit ? first + (size_t)a->q->limit : (size_t)n;
    for (size_t i = first; i < last; i++) {
        PyObject *pair = PyList_GET_ITEM(items, (Py_ssize_t)i);
        if (i > first)
            pl_buf_putc(b, ',');
        pl_buf_printf(b, "{\"count\":%zd,\"frames\":", PyLong_AsSsize_t(PyTuple_GET_ITEM(pair, 0)));
        tm_frames(b, PyTuple_GET_ITEM(pair, 1));
        pl_buf_putc(b, '}');
    }
    pl_buf_puts(b, "]}");
    a->status = 200;
    rc = 1;
out:
    for (size_t i = 0; i < s.found.n; i++)
        Py_DECREF(s.found.v[i]);
    pl_objvec_free(&s.found);
    pl_ptrmap_free(&s.types);
    pl_buf_free(&s.name);
    Py_XDECREF(items);
    Py_XDECREF(counts);
    Py_XDECREF(tm);
    Py_XDECREF(modname);
    return rc;
}
