/* live_list.c: the objects of one type, listed in address order
 * (GET /api/objects?group=). */
#include "live.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "heap.h"
#include "pyloot/json.h"
#include "typetable.h"

/* One pass over the tracked objects for a listing (no snapshot array): the
 * types met are named once each (pl_typename) and remembered in `types`
 * (value 1: the name equals the group's base name); objects of such a type
 * are kept in `matched` (borrowed, valid until Python code runs), and the
 * types themselves in `cands`. */
struct list_scan {
    pl_ptrmap types;
    PyTypeObject *last_t;
    int last_match;
    pl_objvec cands, matched;
    pl_ptrmap seen;     /* second walk: shared untracked objects already met */
    pl_objvec stack;    /* second walk: untracked containers to traverse */
    pl_buf name;
    const char *base;
    size_t blen;
    int err;
};

static int classify_type(struct list_scan *s, PyTypeObject *t)
{
    int added = pl_ptrmap_add(&s->types, (uintptr_t)t, 0);
    if (added < 0)
        return -1;
    if (added == 0)
        return (int)*pl_ptrmap_slot(&s->types, (uintptr_t)t);
    pl_buf_reset(&s->name);
    if (pl_typename(t, &s->name) < 0)
        return -1;
    int match = s->name.len == s->blen && memcmp(s->name.data, s->base, s->blen) == 0;
    if (match) {
        *pl_ptrmap_slot(&s->types, (uintptr_t)t) = 1;
        if (pl_objvec_push(&s->cands, (PyObject *)t) < 0)
            return -1;
    }
    return match;
}

static int list_visit(PyObject *o, void *arg)
{
    struct list_scan *s = arg;
    PyTypeObject *t = Py_TYPE(o);
    if (t != s->last_t) {
        int m = classify_type(s, t);
        if (m < 0) {
            s->err = 1;
            return 1;
        }
        s->last_t = t;
        s->last_match = m;
    }
    if (s->last_match && pl_objvec_push(&s->matched, o) < 0) {
        s->err = 1;
        return 1;
    }
    /* A type with no instance still takes its number among same-named types. */
    if (PyType_Check(o) && classify_type(s, (PyTypeObject *)o) < 0) {
        s->err = 1;
        return 1;
    }
    return 0;
}

/* The second walk's visitproc: an untracked referent of the group's type
 * is matched once (an object with one reference is met once; a shared one
 * goes through `seen`); an untracked container is traversed in turn. */
static int untracked_visit(PyObject *o, void *arg)
{
    struct list_scan *s = arg;
    if (!o || s->err)
        return 0;
    int is_gc = PyObject_IS_GC(o);
    if (is_gc && PyObject_GC_IsTracked(o))
        return 0;
    if (Py_REFCNT(o) > 1) {
        int added = pl_ptrmap_add(&s->seen, (uintptr_t)o, 0);
        if (added <= 0) {
            s->err = added < 0;
            return 0;
        }
    }
    PyTypeObject *t = Py_TYPE(o);
    int m = classify_type(s, t);
    if (m < 0 || (m && pl_objvec_push(&s->matched, o) < 0) ||
        (is_gc && t->tp_traverse && pl_objvec_push(&s->stack, o) < 0))
        s->err = 1;
    return 0;
}

/* The second walk, for a type with no tracked instance (str, bytes, int,
 * ...): its instances are found as referents of the tracked objects, the
 * way the collector's count pass reaches them (untracked.c). */
static int untracked_walk(PyObject *o, void *arg)
{
    struct list_scan *s = arg;
    traverseproc traverse = Py_TYPE(o)->tp_traverse;
    if (traverse)
        traverse(o, untracked_visit, s);
    while (s->stack.n && !s->err) {
        PyObject *c = s->stack.v[--s->stack.n];
        Py_TYPE(c)->tp_traverse(c, untracked_visit, s);
    }
    return s->err;
}

/* Splits "name#n" into the base name and n (1 when there is no suffix).
 * Types sharing a name are named as the collector's last count pass named
 * them (typetable.c: "#2" is the second it met); a type it has not named
 * takes its rank by ascending address among the types of that name. */
static unsigned long group_suffix(const char *group, size_t *base_len)
{
    *base_len = strlen(group);
    const char *hash = strrchr(group, '#');
    if (hash && hash[1] >= '1' && hash[1] <= '9') {
        char *end;
        errno = 0;
        unsigned long v = strtoul(hash + 1, &end, 10);
        if (*end == '\0' && errno == 0) {
            *base_len = (size_t)(hash - group);
            return v;
        }
    }
    return 1;
}

/* Max-heap on addresses, used to keep the k lowest addresses in one pass. */
static void heap_sift_down(PyObject **h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && (uintptr_t)h[l] > (uintptr_t)h[m])
            m = l;
        if (r < n && (uintptr_t)h[r] > (uintptr_t)h[m])
            m = r;
        if (m == i)
            return;
        PyObject *t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void heap_sift_up(PyObject **h, size_t i)
{
    while (i) {
        size_t p = (i - 1) / 2;
        if ((uintptr_t)h[p] >= (uintptr_t)h[i])
            return;
        PyObject *t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

/* See live.h. */
int pl_answer_list(pl_answer *a)
{
    struct list_scan sc;
    memset(&sc, 0, sizeof sc);
    sc.base = a->q->group;
    unsigned long nth = group_suffix(a->q->group, &sc.blen);
    pl_objvec heap = {0};
    int rc = -1;
    if (pl_ptrmap_init(&sc.types, 4096) < 0) {
        PyErr_NoMemory();
        goto out;
    }
    a->gc_was_enabled = PyGC_Disable();
    int vr = pl_live_walk(list_visit, &sc);
    if (vr < 0 && !sc.err)
        goto out;
    PyErr_Clear();
    if (sc.err)
        goto nomem;
    if (!sc.matched.n) {
        if (pl_ptrmap_init(&sc.seen, 4096) < 0)
            goto nomem;
        vr = pl_live_walk(untracked_walk, &sc);
        if (vr < 0 && !sc.err)
            goto out;
        PyErr_Clear();
        if (sc.err)
            goto nomem;
    }
    qsort(sc.cands.v, sc.cands.n, sizeof(*sc.cands.v), pl_cmp_addr);
    PyTypeObject *tp = nth <= sc.cands.n ? (PyTypeObject *)sc.cands.v[nth - 1] : NULL;
    if (sc.cands.n > 1) {
        /* Same-named types: use the collector's numbering, so the history's
         * "mod.T#2" lists the same type; by address when it has none. */
        const PyTypeObject *named;
        if (pl_type_named(a->q->group, &named)) {
            for (size_t i = 0; i < sc.cands.n; i++)
                if ((const PyTypeObject *)sc.cands.v[i] == named)
                    tp = (PyTypeObject *)sc.cands.v[i];
        }
    }

    /* Keep the offset+limit lowest addresses (a stable order across calls)
     * in a bounded max-heap: one pass, no sort of every instance. */
    uint64_t want = a->q->offset + a->q->limit;
    uint64_t total = 0;
    for (size_t i = 0; tp && i < sc.matched.n; i++) {
        PyObject *o = sc.matched.v[i];
        if (Py_TYPE(o) != tp)
            continue;
        total++;
        if (heap.n < want) {
            if (pl_objvec_push(&heap, o) < 0)
                goto nomem;
            heap_sift_up(heap.v, heap.n - 1);
        } else if ((uintptr_t)o < (uintptr_t)heap.v[0]) {
            heap.v[0] = o;
            heap_sift_down(heap.v, heap.n, 0);
        }
    }
    qsort(heap.v, heap.n, sizeof(*heap.v), pl_cmp_addr);
    size_t first = a->q->offset < heap.n ? (size_t)a->q->offset : heap.n;
    PyObject **page = heap.v + first;
    size_t npage = heap.n - first;
    for (size_t i = 0; i < npage; i++)
        Py_INCREF(page[i]);
    pl_answer_end_snapshot(a);

    pl_answer_begin_doc(a);
    pl_buf_putc(a->body, ',');
    pl_json_key(a->body, "group");
    pl_json_cstr(a->body, a->q->group);
    pl_answer_page_fields(a, total);
    pl_answer_objects(a, page, npage, NULL, NULL);
    pl_buf_putc(a->body, '}');
    for (size_t i = 0; i < npage; i++)
        Py_DECREF(page[i]);
    a->status = 200;
    rc = 0;
    goto out;
nomem:
    PyErr_NoMemory();
out:
    pl_answer_end_snapshot(a);
    pl_objvec_free(&heap);
    pl_objvec_free(&sc.cands);
    pl_objvec_free(&sc.matched);
    pl_objvec_free(&sc.stack);
    pl_ptrmap_free(&sc.seen);
    pl_buf_free(&sc.name);
    pl_ptrmap_free(&sc.types);
    return rc;
}

