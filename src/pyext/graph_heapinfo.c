/* What an object graph knows about the heap beyond its edges, for retained
 * sizes and roots (graph_int.h, pl_heapinfo): each vertex's shallow size and
 * how many references to it come from outside every pyloot graph, and where
 * the untracked objects the vertices refer to (str, bytes, int, float, ...)
 * belong.
 *
 * An untracked object referenced by k edges from vertices and with a
 * reference count of exactly k is held by those vertices alone: with one
 * holder (or k edges from the same vertex) its size is added to that
 * vertex's own size; with several it becomes a group whose size goes to the
 * holders' lowest common dominator once the dominator tree exists. An
 * untracked object with more references (an interned string, a small int,
 * None) belongs to the root. Objects above PL_HOLDER_LIMIT references are
 * sent to the root without counting their edges: they are the shared
 * constants of the heap, and counting them would cost an entry per edge.
 *
 * Everything is read under the GIL while the objects cannot change (no Python
 * code runs between the reads); the result is plain C memory. */
#include "graph_int.h"

#include <stdlib.h>
#include <string.h>

#include "heap.h"   /* pl_frame_extras */
#include "sizeof.h" /* the one shallow size, as the history and live objects report it */

/* ---- building ---- */

/* See graph_int.h. */
void pl_heapinfo_free(pl_heapinfo *h)
{
    if (!h)
        return;
    free(h->outside);
    free(h->size);
    free(h->group_off);
    free(h->group_holder);
    free(h->group_size);
    free(h);
}

/* See graph_int.h. */
size_t pl_heapinfo_memory(const pl_heapinfo *h)
{
    size_t holders = h->ngroups ? h->group_off[h->ngroups] : 0;
    return sizeof(*h) + h->n * (sizeof(uint32_t) + sizeof(uint64_t)) +
           h->ngroups * (sizeof(uint32_t) + sizeof(uint64_t)) + holders * sizeof(uint32_t);
}

/* An untracked object shared by a few vertices: one entry per edge. */
typedef struct shared_edge {
    uint64_t key;
    uint64_t size;
    uint32_t holder;
    uint32_t refs;
} shared_edge;

struct pl_heapinfo_builder {
    pl_heapinfo *h;
    uint64_t *pending;  /* untracked referents not yet read, with their holders */
    uint32_t *pending_holder;
    size_t npending;
    shared_edge *shared;
    size_t nshared, sharedcap;
    uint64_t *roots;    /* set of the untracked objects given to the root */
    size_t rootcap, nroots;
    pl_size_memo sizes; /* the size rule of each type met */
    int rc;
};

#define PENDING_MAX 4096

/* See graph_int.h. */
int pl_heapinfo_begin(pl_heapinfo_builder **out, size_t n)
{
    *out = NULL;
    pl_heapinfo_builder *b = calloc(1, sizeof(*b));
    if (!b)
        return ENOMEM;
    pl_heapinfo *h = b->h = calloc(1, sizeof(*h));
    if (h) {
        h->n = n;
        h->outside = malloc((n + 1) * sizeof(uint32_t));
        h->size = malloc((n + 1) * sizeof(uint64_t));
    }
    b->pending = malloc(PENDING_MAX * sizeof(uint64_t));
    b->pending_holder = malloc(PENDING_MAX * sizeof(uint32_t));
    b->rootcap = 1024;
    b->roots = calloc(b->rootcap, sizeof(uint64_t));
    if (!h || !h->outside || !h->size || !b->pending || !b->pending_holder || !b->roots) {
        pl_heapinfo_abort(b);
        return ENOMEM;
    }
    *out = b;
    return 0;
}

/* See graph_int.h. */
void pl_heapinfo_vertex(pl_heapinfo_builder *b, uint32_t v, PyObject *o)
{
    Py_ssize_t refs = Py_REFCNT(o);
    b->h->outside[v] = refs > (Py_ssize_t)UINT32_MAX ? UINT32_MAX : (uint32_t)refs;
    b->h->size[v] = pl_sizeof_memo(&b->sizes, o);
}

/* Gives the untracked object `key` (of `size` bytes) to the root, once. */
static void give_root(pl_heapinfo_builder *b, uint64_t key, uint64_t size)
{
    if (b->nroots * 2 >= b->rootcap) {
        size_t ncap = b->rootcap * 2;
        uint64_t *t = calloc(ncap, sizeof(uint64_t));
        if (!t) {
            b->rc = ENOMEM;
            return;
        }
        for (size_t i = 0; i < b->rootcap; i++) {
            uint64_t k = b->roots[i];
            if (!k)
                continue;
            size_t j = pl_hash_ptr((uintptr_t)k) & (ncap - 1);
            while (t[j])
                j = (j + 1) & (ncap - 1);
            t[j] = k;
        }
        free(b->roots);
        b->roots = t;
        b->rootcap = ncap;
    }
    size_t j = pl_hash_ptr((uintptr_t)key) & (b->rootcap - 1);
    while (b->roots[j]) {
        if (b->roots[j] == key)
            return;
        j = (j + 1) & (b->rootcap - 1);
    }
    b->roots[j] = key;
    b->nroots++;
    b->h->root_size += size;
}

/* Reads the pending untracked referents (prefetched: they are scattered).
 * Runs no Python code: str and int sizes come from their C __sizeof__
 * (sizeof.c). */
static void flush_pending(pl_heapinfo_builder *b)
{
    for (size_t i = 0; i < b->npending && !b->rc; i++) {
        if (i + 8 < b->npending)
            __builtin_prefetch((const void *)(uintptr_t)b->pending[i + 8]);
        PyObject *o = (PyObject *)(uintptr_t)b->pending[i];
        uint32_t holder = b->pending_holder[i];
        Py_ssize_t refs = Py_REFCNT(o);
        uint64_t size = pl_sizeof_memo(&b->sizes, o);
        if (refs <= 1) {
            b->h->size[holder] += size;
        } else if (refs > PL_HOLDER_LIMIT) {
            give_root(b, b->pending[i], size);
        } else {
            if (b->nshared == b->sharedcap) {
                size_t ncap = b->sharedcap ? b->sharedcap * 2 : 1024;
                shared_edge *s = realloc(b->shared, ncap * sizeof(shared_edge));
                if (!s) {
                    b->rc = ENOMEM;
                    break;
                }
                b->shared = s;
                b->sharedcap = ncap;
            }
            b->shared[b->nshared++] = (shared_edge){b->pending[i], size, holder, (uint32_t)refs};
        }
    }
    b->npending = 0;
}

/* See graph_int.h. */
void pl_heapinfo_untracked(pl_heapinfo_builder *b, uint32_t holder, PyObject *o)
{
    if (b->npending == PENDING_MAX)
        flush_pending(b);
    b->pending[b->npending] = (uint64_t)(uintptr_t)o;
    b->pending_holder[b->npending++] = holder;
}

static int shared_cmp(const void *x, const void *y)
{
    const shared_edge *a = x, *b = y;
    if (a->key != b->key)
        return a->key < b->key ? -1 : 1;
    return a->holder < b->holder ? -1 : a->holder > b->holder;
}

/* Sorts the shared edges by object and splits them: held by the vertices
 * alone or not; one holder or a group. */
static int group_shared(pl_heapinfo_builder *b)
{
    pl_heapinfo *h = b->h;
    qsort(b->shared, b->nshared, sizeof(shared_edge), shared_cmp);
    size_t ngroups = 0, nholders = 0;
    for (size_t i = 0, j; i < b->nshared; i = j) {
        for (j = i + 1; j < b->nshared && b->shared[j].key == b->shared[i].key;)
            j++;
        if (j - i == b->shared[i].refs && b->shared[i].holder != b->shared[j - 1].holder) {
            ngroups++;
            nholders += j - i;
        }
    }
    h->group_off = malloc((ngroups + 1) * sizeof(uint32_t));
    h->group_holder = malloc((nholders + 1) * sizeof(uint32_t));
    h->group_size = malloc((ngroups + 1) * sizeof(uint64_t));
    if (!h->group_off || !h->group_holder || !h->group_size)
        return ENOMEM;
    h->group_off[0] = 0;
    for (size_t i = 0, j; i < b->nshared; i = j) {
        const shared_edge *e = &b->shared[i];
        for (j = i + 1; j < b->nshared && b->shared[j].key == e->key;)
            j++;
        if (j - i != e->refs) {
            give_root(b, e->key, e->size);
        } else if (e->holder == b->shared[j - 1].holder) {
            h->size[e->holder] += e->size;
        } else {
            uint32_t at = h->group_off[h->ngroups];
            for (size_t k = i; k < j; k++)
                if (k == i || b->shared[k].holder != b->shared[k - 1].holder)
                    h->group_holder[at++] = b->shared[k].holder;
            h->group_size[h->ngroups++] = e->size;
            h->group_off[h->ngroups] = at;
        }
    }
    return b->rc;
}

struct discount {
    const pl_graph *g;
    pl_heapinfo *h;
    uint32_t *found;
};

/* Subtracts the reference another graph holds to each of its vertices. */
static void discount_graph(const pl_graph *other, void *arg)
{
    struct discount *d = arg;
    if (other == d->g)
        return;
    const uint64_t *keys = pl_graph_keys(other);
    size_t n = pl_graph_order(other);
    for (size_t base = 0; base < n; base += PENDING_MAX) {
        size_t len = n - base < PENDING_MAX ? n - base : PENDING_MAX;
        pl_graph_lookup_many(d->g, keys + base, len, d->found);
        for (size_t i = 0; i < len; i++)
            if (d->found[i] != PL_GRAPH_NONE && d->h->outside[d->found[i]] > 0)
                d->h->outside[d->found[i]]--;
    }
}

/* See graph_int.h. */
int pl_heapinfo_end(pl_heapinfo_builder *b, const pl_graph *g, pl_heapinfo **out)
{
    *out = NULL;
    flush_pending(b);
    int rc = b->rc ? b->rc : group_shared(b);
    pl_heapinfo *h = b->h;
    if (!rc) {
        /* The graph's own reference, then those of every other live graph. */
        for (size_t v = 0; v < h->n; v++)
            if (h->outside[v] > 0 && h->outside[v] < UINT32_MAX)
                h->outside[v]--;
        struct discount d = {g, h, b->pending_holder};
        pl_objgraph_each(discount_graph, &d);
        *out = h;
        b->h = NULL;
    }
    pl_heapinfo_abort(b);
    return rc;
}

/* See graph_int.h. */
void pl_heapinfo_abort(pl_heapinfo_builder *b)
{
    if (!b)
        return;
    pl_heapinfo_free(b->h);
    free(b->pending);
    free(b->pending_holder);
    free(b->shared);
    free(b->roots);
    pl_size_memo_free(&b->sizes);
    free(b);
}

/* ---- for graphs that are not snapshots ---- */

struct lazy_ctx {
    const pl_graph *g;
    pl_heapinfo_builder *b;
    uint32_t holder;
};

static int lazy_visit(PyObject *o, void *arg)
{
    struct lazy_ctx *ctx = arg;
    if (o && pl_graph_lookup(ctx->g, pl_obj_key(o)) == PL_GRAPH_NONE)
        pl_heapinfo_untracked(ctx->b, ctx->holder, o);
    return 0;
}

/* See graph_int.h. */
pl_heapinfo *pl_objgraph_heapinfo(const pl_graph *g)
{
    size_t n = pl_graph_order(g);
    pl_heapinfo_builder *b;
    pl_heapinfo *h = NULL;
    int rc = pl_heapinfo_begin(&b, n);
    if (rc) {
        pl_raise(NULL, rc, "the graph operation");
        return NULL;
    }
    struct lazy_ctx ctx = {g, b, 0};
    for (uint32_t v = 0; v < n; v++) {
        PyObject *o = pl_vertex_obj(g, v);
        pl_heapinfo_vertex(b, v, o);
        ctx.holder = v;
        if (PyObject_IS_GC(o) && Py_TYPE(o)->tp_traverse)
            Py_TYPE(o)->tp_traverse(o, lazy_visit, &ctx);
        if (PyFrame_Check(o))
            pl_frame_extras(o, lazy_visit, &ctx);
    }
    if ((rc = pl_heapinfo_end(b, g, &h)))
        pl_raise(NULL, rc, "the graph operation");
    return h;
}
