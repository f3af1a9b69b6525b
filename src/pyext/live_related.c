/* live_related.c: one object in detail, its parents and its children
 * (GET /api/objects/<id>, /parents, /children). */
#include "live.h"

#include <stdlib.h>
#include <string.h>

#include "heap.h"
#include "held_secrets.h"
#include "pyloot/json.h"
#include "referents.h"
#include "task_info.h"

#define PL_MAX_ATTRS 1000      /* attributes listed per object */
#define PL_SECRET_PARENTS 1000 /* parents whose edges to the object are checked for a secret name */

struct children_ctx {
    pl_objvec *out;
    pl_ptrmap seen;
    int err;
};

static int visit_child(PyObject *child, void *arg)
{
    struct children_ctx *c = arg;
    if (!child)
        return 0;
    int added = pl_ptrmap_add(&c->seen, (uintptr_t)child, 0);
    if (added < 0 || (added == 1 && pl_objvec_push(c->out, child) < 0)) {
        c->err = 1;
        return 1;
    }
    return 0;
}

/* Children: what tp_traverse visits, each once, in traversal order (a
 * list's items in index order). */
static int collect_children(PyObject *target, pl_objvec *out)
{
    if (!pl_has_traverse(target))
        return 0;
    struct children_ctx c = {out, {0}, 0};
    if (pl_ptrmap_init(&c.seen, 64) < 0)
        return -1;
    /* list_traverse visits items last to first: show them in index order. */
    if (PyList_Check(target))
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(target) && !c.err; i++)
            visit_child(PyList_GET_ITEM(target, i), &c);
    if (!c.err)
        Py_TYPE(target)->tp_traverse(target, visit_child, &c);
    pl_ptrmap_free(&c.seen);
    return c.err ? -1 : 0;
}

struct attr_item {
    PyObject *name;
    PyObject *value;
};

struct attrs_ctx {
    struct attr_item *items;
    size_t n;
};

static int collect_attr(PyObject *name, PyObject *value, void *arg)
{
    struct attrs_ctx *c = arg;
    if (c->n == PL_MAX_ATTRS)
        return 1;
    Py_INCREF(name);
    Py_INCREF(value);
    c->items[c->n].name = name;
    c->items[c->n].value = value;
    c->n++;
    return 0;
}

/* See live.h. */
int pl_answer_detail(pl_answer *a)
{
    pl_objvec parents = {0}, children = {0};
    int err;
    PyObject *o = pl_answer_scan_for_id(a, &parents, &err);
    if (!err && o && collect_children(o, &children) < 0)
        err = 1;
    if (err || !o) {
        pl_objvec_free(&parents);
        pl_objvec_free(&children);
        pl_answer_end_snapshot(a);
        if (err) {
            PyErr_NoMemory();
            return -1;
        }
        pl_answer_gone(a);
        return 0;
    }
    /* Its parents' edges redact it too, read here while the parents are
     * valid: the rule of the set of held secrets (held_secrets.h), checked
     * on the edges themselves, one container level up. */
    int secret = pl_held_secret_by_parents(o, parents.v, parents.n < PL_SECRET_PARENTS ? parents.n : PL_SECRET_PARENTS);
    Py_INCREF(o);
    pl_answer_end_snapshot(a);
    size_t nparents = parents.n, nchildren = children.n;
    pl_objvec_free(&parents);
    pl_objvec_free(&children);

    struct attrs_ctx attrs = {malloc(PL_MAX_ATTRS * sizeof(struct attr_item)), 0};
    if (!attrs.items) {
        Py_DECREF(o);
        PyErr_NoMemory();
        return -1;
    }
    pl_own_attrs(o, collect_attr, &attrs); /* references taken before any repr runs */

    pl_buf *b = a->body;
    pl_answer_begin_doc(a);
    pl_buf_putc(b, ',');
    /* the summary's fields, flattened into this document */
    size_t mark = b->len;
    pl_json_summary_as(&a->repr, b, o, PL_REPR_DETAIL_CHARS, secret);
    if (!b->err) {
        memmove(b->data + mark, b->data + mark + 1, b->len - mark - 1); /* drop its '{' ... */
        b->len -= 2;                                                    /* ... and its '}' */
    }
    pl_buf_putc(b, ',');
    pl_json_key(b, "attrs");
    pl_buf_putc(b, '{');
    for (size_t i = 0; i < attrs.n; i++) {
        if (i)
            pl_buf_putc(b, ',');
        if (PyUnicode_Check(attrs.items[i].name)) {
            pl_json_pystr(b, attrs.items[i].name, "?");
        } else {
            pl_json_repr(&a->repr, b, attrs.items[i].name, PL_KEY_REPR_CHARS);
        }
        pl_buf_putc(b, ':');
        if (pl_secret_name(attrs.items[i].name))
            pl_json_cstr(b, PL_REDACTED);
        else
            pl_json_repr(&a->repr, b, attrs.items[i].value, PL_ATTR_REPR_CHARS);
    }
    pl_buf_putc(b, '}');
    pl_aio_json(b, o); /* ,"task":{...} or ,"future":{...} for asyncio's (task_info.h) */
    pl_buf_putc(b, ',');
    pl_json_key(b, "parents_count");
    pl_json_u64(b, nparents);
    pl_buf_putc(b, ',');
    pl_json_key(b, "children_count");
    pl_json_u64(b, nchildren);
    pl_buf_putc(b, '}');
    for (size_t i = 0; i < attrs.n; i++) {
        Py_DECREF(attrs.items[i].name);
        Py_DECREF(attrs.items[i].value);
    }
    free(attrs.items);
    Py_DECREF(o);
    a->status = 200;
    return 0;
}

/* See live.h. Parents: the tracked objects whose tp_traverse visits the
 * object, in address order; children: what its tp_traverse visits. Each
 * with "via", the label of the edge (referents.c). */
int pl_answer_related(pl_answer *a)
{
    pl_objvec rel = {0};
    int err;
    int want_parents = a->q->kind == PL_LIVE_PARENTS;
    PyObject *o = pl_answer_scan_for_id(a, want_parents ? &rel : NULL, &err);
    if (!err && o && !want_parents && collect_children(o, &rel) < 0)
        err = 1;
    if (err || !o) {
        pl_objvec_free(&rel);
        pl_answer_end_snapshot(a);
        if (err) {
            PyErr_NoMemory();
            return -1;
        }
        pl_answer_gone(a);
        return 0;
    }
    size_t first = a->q->offset < rel.n ? (size_t)a->q->offset : rel.n;
    size_t npage = rel.n - first < a->q->limit ? rel.n - first : (size_t)a->q->limit;
    PyObject **page = rel.v + first;
    for (size_t i = 0; i < npage; i++)
        Py_INCREF(page[i]);
    Py_INCREF(o);
    pl_answer_end_snapshot(a);

    /* Labels before any repr runs: a repr could change what holds what. */
    char **labels = calloc(npage ? npage : 1, sizeof(*labels));
    unsigned char *redacted = calloc(npage ? npage : 1, 1);
    int rc = -1;
    if (!labels || !redacted)
        goto out;
    for (size_t i = 0; i < npage; i++) {
        pl_buf via = PL_BUF_INIT;
        pl_edge e;
        pl_edge_find(want_parents ? page[i] : o, want_parents ? o : page[i], &e);
        /* A child held under a secret-looking name is that secret's value. */
        redacted[i] = !want_parents && (e.kind == PL_EDGE_ATTRIBUTE || e.kind == PL_EDGE_VALUE ||
                                        e.kind == PL_EDGE_LOCAL) && pl_secret_name(e.key);
        int frc = pl_edge_format(&e, &via);
        pl_edge_clear(&e);
        if (frc < 0) {
            pl_buf_free(&via);
            goto out;
        }
        labels[i] = strdup(pl_buf_cstr(&via));
        pl_buf_free(&via);
        if (!labels[i])
            goto out;
    }
    pl_answer_begin_doc(a);
    pl_buf_putc(a->body, ',');
    pl_json_key(a->body, "id");
    pl_json_u64_str(a->body, a->q->id);
    pl_answer_page_fields(a, rel.n);
    pl_answer_objects(a, page, npage, labels, redacted);
    pl_buf_putc(a->body, '}');
    a->status = 200;
    rc = 0;
out:
    if (rc < 0)
        PyErr_NoMemory();
    for (size_t i = 0; labels && i < npage; i++)
        free(labels[i]);
    free(labels);
    free(redacted);
    for (size_t i = 0; i < npage; i++)
        Py_DECREF(page[i]);
    Py_DECREF(o);
    pl_objvec_free(&rel);
    return rc;
}
