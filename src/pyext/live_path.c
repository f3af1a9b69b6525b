/* live_path.c: why an object is alive, the shortest chain of references
 * from a root (a module, or a frame of a running thread) to it
 * (GET /api/objects/<id>/path). A backward search level by level from the
 * object, over a snapshot of the heap; a forward breadth-first search from
 * the roots when the backward one gives up. */
#include "live.h"

#include <stdlib.h>
#include <string.h>

#include "heap.h"
#include "pyloot/json.h"
#include "referents.h"

/* Breadth-first search forward from every root at once, over tp_traverse
 * edges, until the target is met: the first meeting is a shortest chain.
 * Iterative, libc arrays; node i's parent index is parent[i]. */
typedef struct bfs {
    PyObject **obj; /* borrowed (snapshot phase) */
    uint32_t *parent;
    size_t n, cap;
    pl_ptrmap seen;
    uintptr_t target;
    uint32_t cur;
    int found, err;
    uint32_t found_parent;
} bfs;

#define NO_PARENT UINT32_MAX

static int bfs_push(bfs *b, PyObject *o, uint32_t parent)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        PyObject **obj = realloc(b->obj, cap * sizeof(*obj));
        if (!obj)
            return -1;
        b->obj = obj;
        uint32_t *par = realloc(b->parent, cap * sizeof(*par));
        if (!par)
            return -1;
        b->parent = par;
        b->cap = cap;
    }
    if (b->n >= NO_PARENT)
        return -1;
    b->obj[b->n] = o;
    b->parent[b->n] = parent;
    b->n++;
    return 0;
}

static int bfs_visit(PyObject *child, void *arg)
{
    bfs *b = arg;
    if (!child)
        return 0;
    if ((uintptr_t)child == b->target) {
        b->found = 1;
        b->found_parent = b->cur;
        return 1;
    }
    /* Objects without tp_traverse refer to nothing we could follow. */
    if (!pl_has_traverse(child))
        return 0;
    int added = pl_ptrmap_add(&b->seen, (uintptr_t)child, 0);
    if (added < 0 || (added == 1 && bfs_push(b, child, b->cur) < 0)) {
        b->err = 1;
        return 1;
    }
    return 0;
}

/* Forward search: breadth-first from every root at once over tp_traverse
 * edges (an object's own __dict__ counting as one hop), until the target is
 * met. Visits up to the whole heap; used when the backward search gives up.
 * Fills `path` (borrowed, root first) or leaves it empty. 0 or -1 (ENOMEM). */
static int path_forward(pl_answer *a, const pl_frames *frs, PyObject *target, pl_objvec *path)
{
    const pl_frames fr = *frs;
    bfs b = {0};
    int rc = -1;
    b.target = (uintptr_t)target;
    if (pl_ptrmap_init(&b.seen, a->snap.n + fr.n) < 0)
        goto out;
    /* Roots: modules, then the frames of running threads. */
    for (size_t i = 0; i < a->snap.n && !b.found; i++) {
        PyObject *o = a->snap.v[i];
        if (!PyModule_Check(o))
            continue;
        if (o == target) {
            b.found = 1;
            b.found_parent = NO_PARENT;
            break;
        }
        if (pl_ptrmap_add(&b.seen, (uintptr_t)o, 0) == 1 && bfs_push(&b, o, NO_PARENT) < 0)
            goto out;
    }
    size_t frames_at = b.n;
    for (size_t i = 0; i < fr.n && !b.found; i++) {
        if (fr.frame[i] == target) {
            b.found = 1;
            b.found_parent = NO_PARENT;
            break;
        }
        /* A frame already met as a module is impossible; push unconditionally
         * so that node frames_at + i is frame i. */
        pl_ptrmap_add(&b.seen, (uintptr_t)fr.frame[i], 0);
        if (bfs_push(&b, fr.frame[i], NO_PARENT) < 0)
            goto out;
    }
    for (size_t head = 0; head < b.n && !b.found && !b.err; head++) {
        b.cur = (uint32_t)head;
        PyObject *o = b.obj[head];
        if (head >= frames_at && head < frames_at + fr.n) {
            size_t f = head - frames_at;
            for (size_t l = fr.first[f]; l < fr.first[f + 1]; l++)
                if (bfs_visit(fr.value[l], &b))
                    break;
        } else if (pl_has_traverse(o)) {
            /* An object's own __dict__ is one hop, not two: its values
             * first, so that "module -> attribute -> value" competes
             * fairly with slots, managed values and frame locals. */
            PyObject *d = pl_own_dict(o);
            Py_ssize_t pos = 0;
            PyObject *k, *v;
            while (d && !b.found && PyDict_Next(d, &pos, &k, &v))
                bfs_visit(v, &b);
            if (!b.found)
                Py_TYPE(o)->tp_traverse(o, bfs_visit, &b);
        }
    }
    if (b.err)
        goto out;
    if (b.found) {
        /* chain: target, its parent, ..., root; then reversed */
        if (pl_objvec_push(path, target) < 0)
            goto out;
        for (uint32_t i = b.found_parent; i != NO_PARENT; i = b.parent[i])
            if (pl_objvec_push(path, b.obj[i]) < 0)
                goto out;
        for (size_t i = 0, j = path->n - 1; i < j; i++, j--) {
            PyObject *t = path->v[i];
            path->v[i] = path->v[j];
            path->v[j] = t;
        }
    }
    rc = 0;
out:
    if (rc < 0)
        path->n = 0;
    free(b.obj);
    free(b.parent);
    pl_ptrmap_free(&b.seen);
    return rc;
}

/* Backward search: level by level from the target, each level one pass over
 * the snapshot asking every object "do you refer to a node of the current
 * level?" (a probe in a small hash set per edge). A leak's chain is usually
 * a few levels deep, so this costs a few parents-queries, where a forward
 * search would walk the whole heap. Roots are met when a node is a module,
 * a module's __dict__ (the module counts, without an extra hop), or a value
 * in the locals of a function frame of a running thread.
 * Returns 1 found (path filled, borrowed, root first), 0 no root reaches it,
 * 2 gave up after BACK_LEVELS levels, -1 ENOMEM. */
#define BACK_LEVELS 6

#define BACK_FILTER_BITS (1 << 16)
#define BACK_FILTER_BIT(p) ((((uintptr_t)(p)) >> 4) & (BACK_FILTER_BITS - 1))

typedef struct back {
    pl_ptrmap index; /* node address -> node index: every node met */
    PyObject **node;
    uint32_t *toward; /* index of the node it refers to, toward the target */
    size_t n, cap;
    size_t lo, hi; /* the current level: nodes [lo, hi) */
    uint32_t hit;
    /* One bit per address hash of every node met: most pointers of the heap
     * are rejected here, in L1, before a probe of `index`. */
    uint64_t filter[BACK_FILTER_BITS / 64];
} back;

static int back_push(back *b, PyObject *o, uint32_t toward)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        PyObject **node = realloc(b->node, cap * sizeof(*node));
        if (!node)
            return -1;
        b->node = node;
        uint32_t *tw = realloc(b->toward, cap * sizeof(*tw));
        if (!tw)
            return -1;
        b->toward = tw;
        b->cap = cap;
    }
    if (b->n >= NO_PARENT || pl_ptrmap_add(&b->index, (uintptr_t)o, (uint32_t)b->n) < 0)
        return -1;
    b->node[b->n] = o;
    b->toward[b->n] = toward;
    b->n++;
    b->filter[BACK_FILTER_BIT(o) / 64] |= (uint64_t)1 << (BACK_FILTER_BIT(o) % 64);
    return 0;
}

static inline int back_lookup(const back *b, PyObject *o, uint32_t *idx)
{
    if (!(b->filter[BACK_FILTER_BIT(o) / 64] & ((uint64_t)1 << (BACK_FILTER_BIT(o) % 64))))
        return 0;
    size_t mask = b->index.cap - 1;
    for (size_t i = pl_hash_ptr((uintptr_t)o) & mask;; i = (i + 1) & mask) {
        if (b->index.keys[i] == (uintptr_t)o) {
            *idx = b->index.vals[i];
            return 1;
        }
        if (b->index.keys[i] == 0)
            return 0;
    }
}

static int back_visit(PyObject *child, void *arg)
{
    back *b = arg;
    uint32_t idx;
    if (child && back_lookup(b, child, &idx) && idx >= b->lo && idx < b->hi) {
        b->hit = idx;
        return 1;
    }
    return 0;
}

static int map_value(const pl_ptrmap *m, PyObject *o, uint32_t *val)
{
    return pl_ptrmap_get(m, (uintptr_t)o, val);
}

/* Node `idx` was just met: is it, or does it make, a root? Pushes the root
 * (module of a module dict, frame of a local) and returns its index + 1, or 0. */
static size_t back_root(back *b, uint32_t idx, const pl_ptrmap *moddicts, const pl_ptrmap *locals_of,
                        const pl_frames *fr, const pl_objvec *modules, int *err)
{
    PyObject *o = b->node[idx];
    uint32_t v;
    if (PyModule_Check(o))
        return (size_t)idx + 1;
    if (map_value(moddicts, o, &v)) {
        if (back_push(b, modules->v[v], idx) < 0)
            *err = 1;
        return b->n;
    }
    if (map_value(locals_of, o, &v)) {
        if (back_push(b, fr->frame[v], idx) < 0)
            *err = 1;
        return b->n;
    }
    return 0;
}

/* See live.h. */
void pl_csr_add(pl_csr *c, PyObject *child)
{
    if (c->on && c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 1 << 16;
        PyObject **e = cap <= PL_CSR_MAX_EDGES ? realloc(c->edge, cap * sizeof(*e)) : NULL;
        if (e) {
            c->edge = e;
            c->cap = cap;
        } else {
            c->on = 0;
        }
    }
    if (c->on)
        c->edge[c->n++] = child;
}

struct record_ctx {
    back *b;
    pl_csr *c;
};

static int record_visit(PyObject *child, void *arg)
{
    struct record_ctx *r = arg;
    pl_csr *c = r->c;
    pl_csr_add(c, child);
    if (r->b->hit == NO_PARENT)
        back_visit(child, r->b);
    return !c->on && r->b->hit != NO_PARENT; /* nothing left to record or find */
}

static int path_backward(pl_answer *a, const pl_frames *fr, PyObject *target, pl_objvec *path)
{
    back b;
    memset(&b, 0, sizeof b);
    pl_csr c;
    memset(&c, 0, sizeof c);
    pl_ptrmap moddicts = {0}, locals_of = {0};
    pl_objvec modules = {0};
    int rc = -1, err = 0;
    size_t root = 0;
    if (pl_ptrmap_init(&b.index, 256) < 0 || pl_ptrmap_init(&moddicts, 1024) < 0 || pl_ptrmap_init(&locals_of, 256) < 0)
        goto out;
    for (size_t i = 0; i < a->snap.n; i++) {
        PyObject *o = a->snap.v[i];
        if (!PyModule_Check(o))
            continue;
        PyObject *d = PyModule_GetDict(o);
        if (d && pl_ptrmap_add(&moddicts, (uintptr_t)d, (uint32_t)modules.n) < 0)
            goto out;
        if (pl_objvec_push(&modules, o) < 0)
            goto out;
    }
    /* A module-level frame lists no locals: its module is the root. */
    for (size_t f = 0; f < fr->n; f++)
        for (size_t l = fr->first[f]; l < fr->first[f + 1]; l++)
            if (pl_ptrmap_add(&locals_of, (uintptr_t)fr->value[l], (uint32_t)f) < 0)
                goto out;
    if (back_push(&b, target, NO_PARENT) < 0)
        goto out;
    root = back_root(&b, 0, &moddicts, &locals_of, fr, &modules, &err);
    b.lo = 0;
    b.hi = b.n;
    c.start = malloc((a->snap.n + 1) * sizeof(*c.start));
    c.cap = a->snap.n * 3 < PL_CSR_MAX_EDGES ? a->snap.n * 3 : PL_CSR_MAX_EDGES;
    c.edge = c.cap ? malloc(c.cap * sizeof(*c.edge)) : NULL;
    c.on = c.start != NULL && c.edge != NULL;
    struct record_ctx rec = {&b, &c};
    for (int level = 0; !root && !err; level++) {
        if (level == BACK_LEVELS) {
            rc = 2;
            goto out;
        }
        int csr_ready = level > 0 && c.on;
        for (size_t i = 0; i < a->snap.n && !root && !err; i++) {
            PyObject *o = a->snap.v[i];
            uint32_t seen;
            if (level == 0 && c.on)
                c.start[i] = c.n;
            /* With the CSR, an object is not even touched (a cache miss
             * each, on a big heap) unless it refers to something. */
            if (csr_ready ? c.start[i] == c.start[i + 1] : !pl_has_traverse(o))
                continue;
            if (back_lookup(&b, o, &seen))
                continue;
            b.hit = NO_PARENT;
            if (level == 0) {
                Py_TYPE(o)->tp_traverse(o, record_visit, &rec);
            } else if (csr_ready) {
                for (size_t e = c.start[i]; e < c.start[i + 1]; e++)
                    if (back_visit(c.edge[e], &b))
                        break;
            } else {
                Py_TYPE(o)->tp_traverse(o, back_visit, &b);
            }
            if (b.hit == NO_PARENT)
                continue;
            if (back_push(&b, o, b.hit) < 0) {
                err = 1;
                break;
            }
            root = back_root(&b, (uint32_t)(b.n - 1), &moddicts, &locals_of, fr, &modules, &err);
        }
        if (level == 0 && c.on)
            c.start[a->snap.n] = c.n;

        if (b.n == b.hi && !root) { /* nothing refers to the last level */
            rc = 0;
            goto out;
        }
        b.lo = b.hi;
        b.hi = b.n;
    }
    if (err)
        goto out;
    for (uint32_t i = (uint32_t)(root - 1); i != NO_PARENT; i = b.toward[i])
        if (pl_objvec_push(path, b.node[i]) < 0)
            goto out;
    rc = 1;
out:
    if (rc < 0)
        path->n = 0;
    free(b.node);
    free(b.toward);
    pl_ptrmap_free(&b.index);
    pl_ptrmap_free(&moddicts);
    pl_ptrmap_free(&locals_of);
    pl_objvec_free(&modules);
    free(c.edge);
    free(c.start);
    return rc;
}

/* See live.h. */
int pl_path_find(pl_answer *a, const pl_frames *fr, PyObject *target, pl_objvec *path)
{
    int found = path_backward(a, fr, target, path);
    /* An untracked target may sit in an untracked container that the
     * snapshot does not hold: only the forward search follows those. */
    if (found == 2 || (found == 0 && !PyObject_GC_IsTracked(target)))
        found = path_forward(a, fr, target, path) < 0 ? -1 : path->n > 0;
    return found < 0 ? -1 : found == 1 && path->n > 0;
}

/* See live.h. */
int pl_path_label(pl_objvec *path, pl_edge **edges_out)
{
    pl_edge *edges = calloc(path->n ? path->n : 1, sizeof(*edges));
    *edges_out = edges;
    if (!edges)
        return -1;
    /* Labels (before any repr runs), then "object's own __dict__" +
     * "value of key 'k'" folded into "attribute 'k'", as a user reads it. */
    for (size_t i = 1; i < path->n; i++)
        pl_edge_find(path->v[i - 1], path->v[i], &edges[i]);
    size_t out_n = 0;
    for (size_t i = 0; i < path->n; i++) {
        if (i >= 1 && i + 1 < path->n && edges[i].kind == PL_EDGE_FIELD && strcmp(edges[i].field, "__dict__") == 0 &&
            edges[i + 1].kind == PL_EDGE_VALUE && PyUnicode_Check(edges[i + 1].key)) {
            Py_DECREF(path->v[i]);
            pl_edge_clear(&edges[i]);
            edges[i + 1].kind = PL_EDGE_ATTRIBUTE;
            continue;
        }
        path->v[out_n] = path->v[i];
        edges[out_n] = edges[i];
        out_n++;
    }
    path->n = out_n;
    return 0;
}

/* See live.h. */
int pl_answer_path(pl_answer *a)
{
    pl_frames fr = {0};
    pl_objvec path = {0}; /* borrowed during the search, owned after */
    pl_edge *edges = NULL;
    int rc = -1;

    a->gc_was_enabled = PyGC_Disable();
    if (pl_frames_collect(&fr) < 0) {
        PyErr_NoMemory();
        goto out;
    }
    if (pl_answer_snapshot(a) < 0)
        goto out;
    PyObject *target = pl_answer_find(a);
    if (!target) {
        pl_answer_end_snapshot(a);
        pl_answer_gone(a);
        rc = 0;
        goto out;
    }
    if (pl_path_find(a, &fr, target, &path) < 0) {
        pl_answer_end_snapshot(a);
        PyErr_NoMemory();
        path.n = 0;
        goto out;
    }
    for (size_t i = 0; i < path.n; i++)
        Py_INCREF(path.v[i]);
    pl_answer_end_snapshot(a);

    if (pl_path_label(&path, &edges) < 0) {
        PyErr_NoMemory();
        goto out;
    }

    pl_buf *body = a->body;
    pl_answer_begin_doc(a);
    pl_buf_putc(body, ',');
    pl_json_key(body, "id");
    pl_json_u64_str(body, a->q->id);
    pl_buf_putc(body, ',');
    pl_json_key(body, "found");
    pl_json_bool(body, path.n > 0);
    pl_buf_putc(body, ',');
    pl_json_key(body, "path");
    pl_buf_putc(body, '[');
    for (size_t i = 0; i < path.n; i++) {
        if (i)
            pl_buf_putc(body, ',');
        pl_buf_putc(body, '{');
        pl_json_key(body, "object");
        int secret = i > 0 &&
                     (edges[i].kind == PL_EDGE_ATTRIBUTE || edges[i].kind == PL_EDGE_VALUE ||
                      edges[i].kind == PL_EDGE_LOCAL) && pl_secret_name(edges[i].key);
        pl_json_summary_as(&a->repr, body, path.v[i], PL_REPR_LIST_CHARS, secret);
        pl_buf_putc(body, ',');
        pl_json_key(body, "via");
        if (i == 0) {
            pl_buf_puts(body, "null");
        } else {
            pl_buf via = PL_BUF_INIT;
            pl_edge_format(&edges[i], &via);
            pl_json_str(body, via.data ? via.data : "", via.len);
            pl_buf_free(&via);
        }
        pl_buf_putc(body, '}');
    }
    pl_buf_puts(body, "]}");
    a->status = 200;
    rc = 0;
    goto out;

out:
    if (edges) {
        for (size_t i = 0; i < path.n; i++)
            pl_edge_clear(&edges[i]);
        free(edges);
    }
    for (size_t i = 0; i < path.n; i++)
        Py_DECREF(path.v[i]);
    pl_objvec_free(&path);
    pl_frames_free(&fr);
    if (a->gc_was_enabled) {
        PyGC_Enable();
        a->gc_was_enabled = 0;
    }
    return rc;
}

