/* live_alloc.c: the allocation sites of a traced type and the live
 * instances each made (GET /api/allocations?group=, docs/allocations.md).
 * The sites are alloc_sites.c's; the instances are counted here, by one
 * walk over the tracked objects of the type, looking each address up. */
#include "live.h"

#include <stdlib.h>
#include <string.h>

#include "alloc_sites.h"
#include "heap.h"
#include "pyloot/json.h"

struct count_scan {
    PyTypeObject *tp;
    long *site;          /* the type's sites, ascending */
    size_t n;
    uint64_t *live;      /* live instances per site (sample weights) */
    uint64_t instances;  /* instances of the type met */
};

static int count_visit(PyObject *o, void *arg)
{
    struct count_scan *c = arg;
    if (Py_TYPE(o) != c->tp)
        return 0;
    c->instances++;
    unsigned weight;
    long k = pl_alloc_site_of(o, &weight);
    if (k < 0)
        return 0;
    size_t lo = 0, hi = c->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c->site[mid] < k)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < c->n && c->site[lo] == k)
        c->live[lo] += weight;
    return 0;
}

struct ranked {
    long site;
    uint64_t live, allocs;
};

static int cmp_ranked(const void *x, const void *y)
{
    const struct ranked *a = x, *b = y;
    if (a->live != b->live)
        return a->live > b->live ? -1 : 1;
    if (a->allocs != b->allocs)
        return a->allocs > b->allocs ? -1 : 1;
    return a->site < b->site ? -1 : a->site > b->site;
}

/* The answer of a type that is not traced: why, in words. */
static void untraced(pl_answer *a)
{
    pl_buf *b = a->body;
    pl_answer_begin_doc(a);
    pl_buf_putc(b, ',');
    pl_json_key(b, "group");
    pl_json_cstr(b, a->q->group);
    pl_buf_puts(b, ",\"traced\":false,\"sites\":[],");
    pl_json_key(b, "note");
    pl_json_cstr(b, "this type's allocations are not traced: name it in PyLoot(trace_allocations=[...]) or "
                    "loot.trace_allocations(); growing classes are traced by themselves. Builtin types "
                    "(list, dict, ...) have sites only while the application runs tracemalloc "
                    "(docs/allocations.md)");
    pl_buf_putc(b, '}');
    a->status = 200;
}

/* See live.h. */
int pl_answer_allocations(pl_answer *a)
{
    PyTypeObject *tp = pl_alloc_traced_named(a->q->group);
    if (!tp) {
        int r = pl_answer_allocations_tracemalloc(a);
        if (r < 0)
            return -1;
        if (r == 0)
            untraced(a);
        return 0;
    }
    struct count_scan c = {.tp = tp};
    uint64_t *allocs = NULL;
    struct ranked *r = NULL;
    int rc = -1;
    if (pl_alloc_sites_of(tp, &c.site, &allocs, &c.n) < 0 || (c.n && !(c.live = calloc(c.n, sizeof *c.live))) ||
        (c.n && !(r = malloc(c.n * sizeof *r)))) {
        PyErr_NoMemory();
        goto out;
    }
    /* No Python code runs from the walk to the end of the document: the
     * sites stay as they are. */
    a->gc_was_enabled = PyGC_Disable();
    if (pl_live_walk(count_visit, &c) < 0) {
        pl_answer_end_snapshot(a);
        goto out;
    }
    pl_answer_end_snapshot(a);
    /* Between windows nothing is sampled: the sites share the type's
     * instances in the proportions of its sampled live instances. */
    int windowed = pl_alloc_windowed(tp);
    uint64_t sampled = 0;
    for (size_t i = 0; i < c.n; i++)
        sampled += c.live[i];
    for (size_t i = 0; i < c.n; i++) {
        uint64_t live = c.live[i];
        if (windowed && sampled)
            live = (uint64_t)((double)live * (double)c.instances / (double)sampled + 0.5);
        r[i] = (struct ranked){c.site[i], live, allocs[i]};
    }
    if (c.n > 1)
        qsort(r, c.n, sizeof *r, cmp_ranked);

    pl_buf *b = a->body;
    pl_answer_begin_doc(a);
    pl_buf_putc(b, ',');
    pl_json_key(b, "group");
    pl_json_cstr(b, a->q->group);
    pl_buf_puts(b, ",\"traced\":true,");
    pl_buf_printf(b, "\"windowed\":%s,", windowed ? "true" : "false");
    pl_json_key(b, "instances");
    pl_json_u64(b, c.instances);
    pl_buf_putc(b, ',');
    pl_json_key(b, "total_sites");
    pl_json_u64(b, c.n);
    pl_buf_puts(b, ",\"sites\":[");
    size_t first = a->q->offset < c.n ? (size_t)a->q->offset : c.n;
    size_t last = c.n - first > a->q->limit ? first + (size_t)a->q->limit : c.n;
    for (size_t i = first; i < last; i++) {
        if (i > first)
            pl_buf_putc(b, ',');
        pl_buf_putc(b, '{');
        pl_json_key(b, "count");
        pl_json_u64(b, r[i].live);
        pl_buf_putc(b, ',');
        pl_json_key(b, "allocations");
        pl_json_u64(b, r[i].allocs);
        pl_buf_putc(b, ',');
        pl_json_key(b, "frames");
        pl_alloc_site_json(r[i].site, b);
        pl_buf_putc(b, '}');
    }
    pl_buf_puts(b, "]}");
    a->status = 200;
    rc = 0;
out:
    free(c.site);
    free(c.live);
    free(allocs);
    free(r);
    return rc;
}
