/* The dominator tree of a heap dump (pyloot/heapdump.h): roots, retained
 * sizes with the shared untracked objects placed at their holders' lowest
 * common dominator, and a shortest path from the roots to every vertex
 * (one breadth-first search from all roots at once). */
#include "pyloot/heapdump.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pyloot/dominators.h"
#include "pyloot/graph.h"

struct pl_heapdump_dom {
    pl_graph *g;
    pl_domtree *tree;
    uint64_t *retained; /* n */
    uint64_t total;
    uint32_t *roots;    /* the roots the tree hangs from */
    size_t nroots;
    uint32_t *parent_edge; /* n: the edge a shortest path from a root ends with; UINT32_MAX for roots */
};

/* ---- dominator tree ---- */

/* See heapdump.h. */
void pl_heapdump_dom_free(pl_heapdump_dom *t)
{
    if (!t)
        return;
    pl_graph_free(t->g);
    pl_dom_free(t->tree);
    free(t->retained);
    free(t->roots);
    free(t->parent_edge);
    free(t);
}

/* The graph of d: pl_graph_adopt_sorted over copies of its arrays. */
static int dump_graph(const pl_heapdump *d, pl_graph **out)
{
    size_t n = d->n, m = d->out_off[n];
    uint64_t *keys = malloc((n + 1) * sizeof(uint64_t));
    uint32_t *off = malloc((n + 1) * sizeof(uint32_t));
    uint32_t *heads = malloc((m + 1) * sizeof(uint32_t));
    int rc = ENOMEM;
    if (keys && off && heads) {
        memcpy(keys, d->addr, n * sizeof(uint64_t));
        memcpy(off, d->out_off, (n + 1) * sizeof(uint32_t));
        memcpy(heads, d->head, m * sizeof(uint32_t));
        rc = pl_graph_adopt_sorted(keys, n, off, heads, out);
    }
    if (rc) {
        free(keys);
        free(off);
        free(heads);
    }
    return rc;
}

/* Appends roots for the vertices the tree left out: the first one in
 * vertex order, then the first that one does not reach, ... (graph_dom.c's
 * rule for the live graph). */
static int add_unreached(pl_heapdump_dom *t, size_t n)
{
    uint8_t *seen = calloc(n + 1, 1);
    uint32_t *queue = malloc((n + 1) * sizeof(uint32_t));
    uint32_t *roots = realloc(t->roots, (t->nroots + n + 1) * sizeof(uint32_t));
    if (roots)
        t->roots = roots;
    int rc = seen && queue && roots ? 0 : ENOMEM;
    for (uint32_t v = 0; v < n && !rc; v++)
        if (pl_dom_idom(t->tree, v) != PL_GRAPH_NONE)
            seen[v] = 1;
    for (uint32_t v = 0; v < n && !rc; v++) {
        if (seen[v])
            continue;
        seen[v] = 1;
        t->roots[t->nroots++] = v;
        size_t qlen = 0;
        queue[qlen++] = v;
        for (size_t i = 0; i < qlen; i++) {
            size_t k;
            const uint32_t *heads = pl_graph_out(t->g, queue[i], &k, NULL);
            for (size_t j = 0; j < k; j++)
                if (!seen[heads[j]]) {
                    seen[heads[j]] = 1;
                    queue[qlen++] = heads[j];
                }
        }
    }
    free(seen);
    free(queue);
    return rc;
}

/* Breadth-first from every root at once: parent[v] and the edge that
 * reached v (UINT32_MAX for roots and unreached vertices). */
static int root_paths(const pl_heapdump *d, pl_heapdump_dom *t)
{
    size_t n = d->n;
    uint32_t *pe = malloc((n + 1) * sizeof(uint32_t)), *queue = malloc((n + 1) * sizeof(uint32_t));
    uint8_t *seen = calloc(n + 1, 1);
    if (!pe || !queue || !seen) {
        free(pe);
        free(queue);
        free(seen);
        return ENOMEM;
    }
    memset(pe, 0xff, (n + 1) * sizeof(uint32_t));
    size_t qlen = 0;
    for (size_t i = 0; i < t->nroots; i++)
        if (!seen[t->roots[i]]) {
            seen[t->roots[i]] = 1;
            queue[qlen++] = t->roots[i];
        }
    for (size_t i = 0; i < qlen; i++) {
        uint32_t v = queue[i];
        for (uint32_t e = d->out_off[v]; e < d->out_off[v + 1]; e++)
            if (!seen[d->head[e]]) {
                seen[d->head[e]] = 1;
                pe[d->head[e]] = e;
                queue[qlen++] = d->head[e];
            }
    }
    free(queue);
    free(seen);
    t->parent_edge = pe;
    return 0;
}

/* The tail of edge e (edges are grouped by tail). */
static uint32_t edge_tail(const pl_heapdump *d, uint32_t e)
{
    size_t lo = 0, hi = d->n;
    while (lo + 1 < hi) {
        size_t mid = (lo + hi) / 2;
        if (d->out_off[mid] <= e)
            lo = mid;
        else
            hi = mid;
    }
    while (lo + 1 < d->n && d->out_off[lo + 1] <= e)
        lo++;
    return (uint32_t)lo;
}

/* See heapdump.h. */
int pl_heapdump_dom_build(const pl_heapdump *d, pl_heapdump_dom **out)
{
    *out = NULL;
    size_t n = d->n;
    uint64_t *self = NULL;
    pl_heapdump_dom *t = calloc(1, sizeof *t);
    int rc = t ? dump_graph(d, &t->g) : ENOMEM;
    if (!rc)
        rc = pl_graph_ensure_reverse(t->g);
    if (!rc && !(t->roots = malloc((n + 1) * sizeof(uint32_t))))
        rc = ENOMEM;
    if (rc)
        goto done;
    for (uint32_t v = 0; v < n; v++)
        if (d->flags[v] & PL_HEAPDUMP_ROOT)
            t->roots[t->nroots++] = v;
    if ((rc = pl_dom_build(t->g, t->roots, t->nroots, &t->tree)))
        goto done;
    if (pl_dom_reachable(t->tree) < n) {
        if ((rc = add_unreached(t, n)))
            goto done;
        pl_dom_free(t->tree);
        t->tree = NULL;
        if ((rc = pl_dom_build(t->g, t->roots, t->nroots, &t->tree)))
            goto done;
    }
    self = malloc((n + 1) * sizeof(uint64_t));
    t->retained = malloc((n + 1) * sizeof(uint64_t));
    if (!self || !t->retained) {
        rc = ENOMEM;
        goto done;
    }
    memcpy(self, d->size, n * sizeof(uint64_t));
    uint64_t to_root = d->root_size;
    for (size_t i = 0; i < d->ngroups; i++) {
        uint32_t lca = d->group_holder[d->group_off[i]];
        for (uint32_t k = d->group_off[i] + 1; k < d->group_off[i + 1] && lca != PL_DOM_ROOT; k++)
            lca = pl_dom_lca(t->tree, lca, d->group_holder[k]);
        if (lca == PL_DOM_ROOT || lca == PL_GRAPH_NONE)
            to_root += d->group_size[i];
        else
            self[lca] += d->group_size[i];
    }
    pl_dom_release_index(t->tree);
    if ((rc = pl_dom_retained(t->tree, self, t->retained, &t->total)))
        goto done;
    t->total += to_root;
    rc = root_paths(d, t);
done:
    free(self);
    if (rc)
        pl_heapdump_dom_free(t);
    else
        *out = t;
    return rc;
}

/* See heapdump.h. */
uint64_t pl_heapdump_retained(const pl_heapdump_dom *t, uint32_t v)
{
    return t->retained[v];
}

/* See heapdump.h. */
uint64_t pl_heapdump_total(const pl_heapdump_dom *t)
{
    return t->total;
}

/* See heapdump.h. */
uint32_t pl_heapdump_idom(const pl_heapdump_dom *t, uint32_t v)
{
    return pl_dom_idom(t->tree, v);
}

/* See heapdump.h. */
int pl_heapdump_path(const pl_heapdump *d, const pl_heapdump_dom *t, uint32_t v, size_t max,
                     pl_heapdump_step **out, size_t *n, int *cut)
{
    pl_heapdump_step *rev = malloc((max + 1) * sizeof *rev);
    if (!rev)
        return ENOMEM;
    size_t k = 0;
    *cut = 0;
    for (uint32_t u = v;;) {
        if (k == max) {
            *cut = 1;
            break;
        }
        rev[k].vertex = u;
        rev[k++].via = t->parent_edge[u];
        if (t->parent_edge[u] == UINT32_MAX)
            break;
        u = edge_tail(d, t->parent_edge[u]);
    }
    for (size_t i = 0; i < k / 2; i++) {
        pl_heapdump_step x = rev[i];
        rev[i] = rev[k - 1 - i];
        rev[k - 1 - i] = x;
    }
    if (*cut)
        rev[0].via = UINT32_MAX;
    *out = rev;
    *n = k;
    return 0;
}

/* See heapdump.h. */
size_t pl_heapdump_nroots(const pl_heapdump_dom *t)
{
    return t->nroots;
}
