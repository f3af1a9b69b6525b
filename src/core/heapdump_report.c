/* What `pyloot heap` says about one dump or two (pyloot/heapdump.h): the
 * dominator tree and retained sizes of a dump, the top types, the biggest
 * retainers with a path from a root to each, and the comparison of two
 * dumps of one worker (objects matched by address and type name). The
 * JSON written here is what the CLI prints with --json and what the UI's
 * Heap view reads, so the two never disagree. */
#include "pyloot/heapdump.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pyloot/dominators.h"
#include "pyloot/graph.h"
#include "pyloot/json.h"

struct pl_heapdump_dom {
    pl_graph *g;
    pl_domtree *tree;
    uint64_t *retained; /* n */
    uint64_t total;
    uint32_t *roots;    /* the roots the tree hangs from */
    size_t nroots;
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

/* ---- helpers ---- */

static const char *type_of(const pl_heapdump *d, uint32_t v)
{
    return d->strings[d->type_name[d->type[v]]];
}

static void json_vertex(pl_buf *b, const pl_heapdump *d, uint32_t v)
{
    pl_buf_puts(b, "\"id\":");
    pl_json_u64(b, d->addr[v]);
    pl_buf_puts(b, ",\"type\":");
    pl_json_cstr(b, type_of(d, v));
    pl_buf_puts(b, ",\"repr\":");
    pl_json_str(b, d->repr + d->repr_off[v], d->repr_off[v + 1] - d->repr_off[v]);
    pl_buf_puts(b, ",\"size\":");
    pl_json_u64(b, d->size[v]);
}

static void json_meta(pl_buf *b, const pl_heapdump *d)
{
    pl_buf_puts(b, "\"pid\":");
    pl_json_u64(b, d->pid);
    pl_buf_puts(b, ",\"start\":");
    pl_json_u64_str(b, d->start);
    pl_buf_puts(b, ",\"host\":");
    pl_json_cstr(b, d->host ? d->host : "");
    pl_buf_puts(b, ",\"time\":");
    pl_json_i64(b, d->time_ms);
    pl_buf_puts(b, ",\"argv\":");
    pl_json_cstr(b, d->argv ? d->argv : "");
    pl_buf_puts(b, ",\"python\":");
    pl_json_cstr(b, d->python ? d->python : "");
    pl_buf_puts(b, ",\"objects\":");
    pl_json_u64(b, d->n);
    pl_buf_puts(b, ",\"edges\":");
    pl_json_u64(b, d->out_off[d->n]);
}

/* Indices of the `want` largest values of key[0..n) (ties: lower index),
 * largest first, among those with key > 0. *out malloc'ed. */
static int top_k(const uint64_t *key, size_t n, size_t want, uint32_t **out, size_t *nout)
{
    uint32_t *best = malloc((want + 1) * sizeof(uint32_t));
    size_t len = 0;
    if (!best)
        return ENOMEM;
    for (uint32_t v = 0; v < n; v++) {
        if (!key[v] || (len == want && key[v] <= key[best[len - 1]]))
            continue;
        size_t i = len < want ? len++ : len - 1;
        while (i > 0 && key[best[i - 1]] < key[v]) {
            best[i] = best[i - 1];
            i--;
        }
        best[i] = v;
    }
    *out = best;
    *nout = len;
    return 0;
}

/* ---- one dump ---- */

typedef struct type_total {
    uint32_t type;
    uint64_t count, bytes;
} type_total;

static int by_bytes(const void *x, const void *y)
{
    const type_total *a = x, *b = y;
    if (a->bytes != b->bytes)
        return a->bytes > b->bytes ? -1 : 1;
    if (a->count != b->count)
        return a->count > b->count ? -1 : 1;
    return a->type < b->type ? -1 : a->type > b->type;
}

static int json_types(pl_buf *b, const pl_heapdump *d, size_t want)
{
    type_total *t = calloc(d->ntypes + 1, sizeof *t);
    if (!t)
        return ENOMEM;
    for (uint32_t i = 0; i < d->ntypes; i++)
        t[i].type = i;
    uint64_t total = 0;
    for (size_t v = 0; v < d->n; v++) {
        t[d->type[v]].count++;
        t[d->type[v]].bytes += d->size[v];
        total += d->size[v];
    }
    qsort(t, d->ntypes, sizeof *t, by_bytes);
    pl_buf_puts(b, ",\"bytes\":");
    pl_json_u64(b, total);
    pl_buf_puts(b, ",\"types\":[");
    for (size_t i = 0; i < d->ntypes && i < want; i++) {
        pl_buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
        pl_json_cstr(b, d->strings[d->type_name[t[i].type]]);
        pl_buf_printf(b, ",\"count\":%llu,\"bytes\":%llu}", (unsigned long long)t[i].count,
                      (unsigned long long)t[i].bytes);
    }
    pl_buf_putc(b, ']');
    free(t);
    return 0;
}

/* The biggest retainers, a chain of near-equal retention shown by its
 * deepest member: a vertex that keeps at least 90 % of what a listed
 * dominator of it retains takes that dominator's place (the list a leak
 * appends to, rather than the module holding it). */
static int pick_retainers(const pl_heapdump *d, const pl_heapdump_dom *t, size_t want, uint32_t **out,
                          size_t *nout)
{
    uint32_t *cand = NULL, *chosen = malloc((want + 1) * sizeof(uint32_t));
    uint8_t *mark = calloc(d->n + 1, 1);
    size_t ncand = 0, len = 0;
    int rc = chosen && mark ? top_k(t->retained, d->n, want * 20 + 20, &cand, &ncand) : ENOMEM;
    for (size_t i = 0; i < ncand && !rc; i++) {
        uint32_t v = cand[i], u = pl_dom_idom(t->tree, v);
        for (int steps = 0; u < d->n && !mark[u] && steps < 256; steps++)
            u = pl_dom_idom(t->tree, u);
        if (u < d->n && mark[u] && (double)t->retained[v] >= 0.9 * (double)t->retained[u]) {
            for (size_t j = 0; j < len; j++)
                if (chosen[j] == u)
                    chosen[j] = v;
            mark[u] = 0;
            mark[v] = 1;
        } else if (len < want) {
            chosen[len++] = v;
            mark[v] = 1;
        }
    }
    free(cand);
    free(mark);
    if (rc)
        free(chosen);
    else {
        *out = chosen;
        *nout = len;
    }
    return rc;
}

/* Breadth-first from every root at once: parent[v] and the edge that
 * reached v (UINT32_MAX for roots and unreached vertices). */
static int root_paths(const pl_heapdump *d, const pl_heapdump_dom *t, uint32_t **parent_edge)
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
    *parent_edge = pe;
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

static int json_path(pl_buf *b, const pl_heapdump *d, const uint32_t *pe, uint32_t v, size_t max)
{
    uint32_t *steps = malloc((max + 1) * sizeof(uint32_t)), *via = malloc((max + 1) * sizeof(uint32_t));
    if (!steps || !via) {
        free(steps);
        free(via);
        return ENOMEM;
    }
    size_t k = 0;
    uint32_t u = v;
    int cut = 0;
    for (;;) {
        if (k == max) {
            cut = 1;
            break;
        }
        steps[k] = u;
        via[k++] = pe[u];
        if (pe[u] == UINT32_MAX)
            break;
        u = edge_tail(d, pe[u]);
    }
    pl_buf_puts(b, ",\"path_cut\":");
    pl_json_bool(b, cut);
    pl_buf_puts(b, ",\"path\":[");
    pl_buf label = PL_BUF_INIT;
    for (size_t i = k; i-- > 0;) {
        pl_buf_putc(b, '{');
        json_vertex(b, d, steps[i]);
        pl_buf_puts(b, ",\"via\":");
        if (via[i] == UINT32_MAX || (i == k - 1 && cut)) {
            pl_buf_puts(b, "null");
        } else {
            pl_buf_reset(&label);
            pl_heapdump_label(d, via[i], &label);
            pl_json_str(b, label.data ? label.data : "", label.len);
        }
        pl_buf_puts(b, i ? "}," : "}");
    }
    pl_buf_putc(b, ']');
    pl_buf_free(&label);
    free(steps);
    free(via);
    return 0;
}

static void fill_options(const pl_heapdump_report_options *opt, pl_heapdump_report_options *o)
{
    o->types = opt && opt->types ? opt->types : 20;
    o->retainers = opt && opt->retainers ? opt->retainers : 10;
    o->path_max = opt && opt->path_max ? opt->path_max : 32;
}

/* The body of one dump's report, without the braces. */
static int report_body(const pl_heapdump *d, const pl_heapdump_dom *t, const pl_heapdump_report_options *o,
                       pl_buf *out)
{
    uint32_t *chosen = NULL, *pe = NULL;
    size_t nchosen = 0;
    json_meta(out, d);
    int rc = json_types(out, d, o->types);
    if (!rc)
        rc = pick_retainers(d, t, o->retainers, &chosen, &nchosen);
    if (!rc)
        rc = root_paths(d, t, &pe);
    if (rc)
        goto done;
    pl_buf_puts(out, ",\"total\":");
    pl_json_u64(out, t->total);
    pl_buf_puts(out, ",\"roots\":");
    pl_json_u64(out, t->nroots);
    pl_buf_puts(out, ",\"retainers\":[");
    for (size_t i = 0; i < nchosen && !rc; i++) {
        pl_buf_puts(out, i ? ",{" : "{");
        json_vertex(out, d, chosen[i]);
        pl_buf_puts(out, ",\"retained\":");
        pl_json_u64(out, t->retained[chosen[i]]);
        rc = json_path(out, d, pe, chosen[i], o->path_max);
        pl_buf_putc(out, '}');
    }
    pl_buf_putc(out, ']');
done:
    free(chosen);
    free(pe);
    return rc ? rc : out->err ? ENOMEM : 0;
}

/* See heapdump.h. */
int pl_heapdump_report_json(const pl_heapdump *d, const pl_heapdump_report_options *opt, pl_buf *out)
{
    pl_heapdump_report_options o;
    pl_heapdump_dom *t = NULL;
    fill_options(opt, &o);
    int rc = pl_heapdump_dom_build(d, &t);
    if (!rc) {
        pl_buf_putc(out, '{');
        rc = report_body(d, t, &o, out);
        pl_buf_putc(out, '}');
    }
    pl_heapdump_dom_free(t);
    return rc ? rc : out->err ? ENOMEM : 0;
}

/* ---- two dumps ---- */

typedef struct type_change {
    const char *name;
    uint64_t old_count, old_bytes, count, bytes;
} type_change;

typedef struct type_map {
    type_change *slot;
    size_t cap, len;
} type_map;

static type_change *map_get(type_map *m, const char *name)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = name; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ULL;
    size_t i = (size_t)h & (m->cap - 1);
    while (m->slot[i].name && strcmp(m->slot[i].name, name) != 0)
        i = (i + 1) & (m->cap - 1);
    if (!m->slot[i].name) {
        m->slot[i].name = name;
        m->len++;
    }
    return &m->slot[i];
}

static int64_t change(uint64_t now, uint64_t before)
{
    return (int64_t)(now - before);
}

static int by_change(const void *x, const void *y)
{
    const type_change *a = x, *b = y;
    int64_t ab = change(a->bytes, a->old_bytes), bb = change(b->bytes, b->old_bytes);
    if (ab != bb)
        return ab > bb ? -1 : 1;
    int64_t ac = change(a->count, a->old_count), bc = change(b->count, b->old_count);
    if (ac != bc)
        return ac > bc ? -1 : 1;
    return strcmp(a->name, b->name);
}

static int json_type_changes(pl_buf *b, const pl_heapdump *o, const pl_heapdump *d, size_t want)
{
    type_map m = {NULL, 64, 0};
    while (m.cap < 2 * (o->ntypes + d->ntypes) + 2)
        m.cap *= 2;
    if (!(m.slot = calloc(m.cap, sizeof(type_change))))
        return ENOMEM;
    for (size_t v = 0; v < o->n; v++) {
        type_change *c = map_get(&m, type_of(o, (uint32_t)v));
        c->old_count++;
        c->old_bytes += o->size[v];
    }
    for (size_t v = 0; v < d->n; v++) {
        type_change *c = map_get(&m, type_of(d, (uint32_t)v));
        c->count++;
        c->bytes += d->size[v];
    }
    size_t k = 0;
    for (size_t i = 0; i < m.cap; i++)
        if (m.slot[i].name && (m.slot[i].count != m.slot[i].old_count || m.slot[i].bytes != m.slot[i].old_bytes))
            m.slot[k++] = m.slot[i];
    qsort(m.slot, k, sizeof(type_change), by_change);
    pl_buf_puts(b, ",\"types\":[");
    for (size_t i = 0; i < k && i < want; i++) {
        const type_change *c = &m.slot[i];
        pl_buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
        pl_json_cstr(b, c->name);
        pl_buf_printf(b, ",\"count_change\":%lld,\"bytes_change\":%lld,\"count\":%llu,\"bytes\":%llu}",
                      (long long)change(c->count, c->old_count), (long long)change(c->bytes, c->old_bytes),
                      (unsigned long long)c->count, (unsigned long long)c->bytes);
    }
    pl_buf_putc(b, ']');
    free(m.slot);
    return 0;
}

/* match[v] = the vertex of `o` with v's address and type name, else UINT32_MAX. */
static int match_objects(const pl_heapdump *o, const pl_heapdump *d, uint32_t **out)
{
    uint32_t *match = malloc((d->n + 1) * sizeof(uint32_t));
    if (!match)
        return ENOMEM;
    size_t j = 0;
    for (size_t v = 0; v < d->n; v++) {
        while (j < o->n && o->addr[j] < d->addr[v])
            j++;
        match[v] = j < o->n && o->addr[j] == d->addr[v] &&
                           strcmp(type_of(o, (uint32_t)j), type_of(d, (uint32_t)v)) == 0
                       ? (uint32_t)j
                       : UINT32_MAX;
    }
    *out = match;
    return 0;
}

static int json_grown(pl_buf *b, const pl_heapdump *d, const pl_heapdump_dom *ot, const pl_heapdump_dom *t,
                      const uint32_t *match, size_t want)
{
    uint64_t *grew = calloc(d->n + 1, sizeof(uint64_t));
    uint32_t *top = NULL;
    size_t ntop = 0;
    if (!grew)
        return ENOMEM;
    for (size_t v = 0; v < d->n; v++)
        if (match[v] != UINT32_MAX && t->retained[v] > ot->retained[match[v]])
            grew[v] = t->retained[v] - ot->retained[match[v]];
    int rc = top_k(grew, d->n, want, &top, &ntop);
    pl_buf_puts(b, ",\"grown\":[");
    for (size_t i = 0; i < ntop; i++) {
        pl_buf_puts(b, i ? ",{" : "{");
        json_vertex(b, d, top[i]);
        pl_buf_printf(b, ",\"retained\":%llu,\"retained_change\":%llu}", (unsigned long long)t->retained[top[i]],
                      (unsigned long long)grew[top[i]]);
    }
    pl_buf_putc(b, ']');
    free(grew);
    free(top);
    return rc;
}

static int json_new_held(pl_buf *b, const pl_heapdump *d, const uint32_t *match, size_t want)
{
    uint64_t *count = calloc(d->n + 1, sizeof(uint64_t));
    uint32_t *top = NULL;
    size_t ntop = 0;
    if (!count)
        return ENOMEM;
    for (size_t v = 0; v < d->n; v++)
        if (match[v] != UINT32_MAX)
            for (uint32_t e = d->out_off[v]; e < d->out_off[v + 1]; e++)
                if (match[d->head[e]] == UINT32_MAX)
                    count[v]++;
    int rc = top_k(count, d->n, want, &top, &ntop);
    pl_buf_puts(b, ",\"new_held_by_old\":[");
    for (size_t i = 0; i < ntop; i++) {
        uint32_t v = top[i];
        uint64_t bytes = 0;
        const char *first = NULL;
        int several = 0;
        for (uint32_t e = d->out_off[v]; e < d->out_off[v + 1]; e++)
            if (match[d->head[e]] == UINT32_MAX) {
                bytes += d->size[d->head[e]];
                const char *tn = type_of(d, d->head[e]);
                if (!first)
                    first = tn;
                else if (strcmp(first, tn) != 0)
                    several = 1;
            }
        pl_buf_puts(b, i ? ",{" : "{");
        json_vertex(b, d, v);
        pl_buf_printf(b, ",\"new_objects\":%llu,\"new_bytes\":%llu,\"new_type\":", (unsigned long long)count[v],
                      (unsigned long long)bytes);
        if (several)
            pl_json_cstr(b, "(several types)");
        else
            pl_json_cstr(b, first ? first : "");
        pl_buf_putc(b, '}');
    }
    pl_buf_putc(b, ']');
    free(count);
    free(top);
    return rc;
}

/* See heapdump.h. */
int pl_heapdump_diff_json(const pl_heapdump *old, const pl_heapdump *d, const pl_heapdump_report_options *opt,
                          pl_buf *out)
{
    pl_heapdump_report_options o;
    pl_heapdump_dom *ot = NULL, *t = NULL;
    uint32_t *match = NULL;
    fill_options(opt, &o);
    int rc = pl_heapdump_dom_build(old, &ot);
    if (!rc)
        rc = pl_heapdump_dom_build(d, &t);
    if (!rc)
        rc = match_objects(old, d, &match);
    if (rc)
        goto done;
    size_t matched = 0;
    for (size_t v = 0; v < d->n; v++)
        matched += match[v] != UINT32_MAX;
    pl_buf_puts(out, "{\"old\":{");
    json_meta(out, old);
    pl_buf_puts(out, ",\"total\":");
    pl_json_u64(out, ot->total);
    pl_buf_puts(out, "},\"new\":{");
    json_meta(out, d);
    pl_buf_puts(out, ",\"total\":");
    pl_json_u64(out, t->total);
    pl_buf_printf(out, "},\"same_worker\":%s,\"matched\":%zu,\"new_objects\":%zu,\"gone_objects\":%zu",
                  old->pid == d->pid && old->start == d->start ? "true" : "false", matched, d->n - matched,
                  old->n - matched);
    if ((rc = json_type_changes(out, old, d, o.types)) || (rc = json_grown(out, d, ot, t, match, o.retainers)) ||
        (rc = json_new_held(out, d, match, o.retainers)))
        goto done;
    pl_buf_putc(out, '}');
done:
    free(match);
    pl_heapdump_dom_free(ot);
    pl_heapdump_dom_free(t);
    return rc ? rc : out->err ? ENOMEM : 0;
}
