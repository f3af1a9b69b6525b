/* live_graph.c: what holds an object, as a picture (GET
 * /api/objects/<id>/graph): its referrers breadth first up to a depth, with
 * the why-alive path (live_path.c) merged in and marked, as nodes and
 * labelled edges (docs/http-api.md).
 *
 * Phases, in live.h's order: frames, snapshot; the search (one pass over the
 * snapshot per level, pure C, borrowed pointers); references taken, gc
 * back on; an object's own __dict__ folded into it (the edge reads
 * "attribute 'x'", as on the path); the node bound applied; edges labelled
 * (referents.c); then the document, where reprs run. */
#include "live.h"

#include <stdlib.h>
#include <string.h>

#include "heap.h"
#include "pyloot/json.h"
#include "referents.h"
#include "typetable.h"

#define GRAPH_MAX_NODES 60          /* nodes in an answer (docs/http-api.md) */
#define GRAPH_RAW_NODES (2 * GRAPH_MAX_NODES) /* met by the search, before own dicts fold */
#define GRAPH_MAX_PASSES 8          /* passes over the heap: levels plus the dict hops that cost none */
#define GRAPH_MAX_EDGES 1000        /* edges among the nodes met; more is `truncated` */
#define FILTER_BITS (1 << 16)
#define FILTER_BIT(p) ((((uintptr_t)(p)) >> 4) & (FILTER_BITS - 1))

enum {
    NODE_ROOT = 1,    /* a module or a frame: a root of the why-alive search, not searched further */
    NODE_ON_PATH = 2, /* on the why-alive path */
    NODE_GONE = 4,    /* folded into its owner, or cut by the node bound */
    NODE_STOP = 8,    /* never searched further (a module's dict: its module stands for it) */
};

typedef struct gnode {
    PyObject *o; /* borrowed during the search, owned after */
    int depth;   /* referrer levels from the object; -1 not met by the search yet */
    unsigned flags;
} gnode;

typedef struct gedge {
    uint32_t from, to; /* node indexes: `from` refers to `to` */
    int on_path;
} gedge;

typedef struct graph {
    gnode node[GRAPH_RAW_NODES];
    size_t n;
    gedge *edge;
    size_t ne, cap;
    pl_ptrmap index;    /* address -> node index */
    pl_ptrmap moddicts; /* a module's dict -> index of the module in `modules` */
    pl_objvec modules;  /* borrowed */
    int truncated, err;
    int max_depth;
    /* the current pass */
    pl_ptrmap front; /* address -> node index of the nodes searched in this pass */
    uint64_t filter[FILTER_BITS / 64]; /* one bit per address hash of `front`: most pointers stop here */
    uint32_t hit[64];
    size_t nhit;
    int hit_more;
    /* The first pass records every object's referents for the later ones
     * (pl_csr, live.h), as the backward path search does. */
    pl_csr csr;
    int csr_ready;
} graph;

static int add_edge(graph *g, uint32_t from, uint32_t to, int on_path)
{
    if (from == to)
        return 0;
    for (size_t i = 0; i < g->ne; i++)
        if (g->edge[i].from == from && g->edge[i].to == to) {
            g->edge[i].on_path |= on_path;
            return 0;
        }
    if (g->ne == GRAPH_MAX_EDGES && !on_path) {
        g->truncated = 1;
        return 0;
    }
    if (g->ne == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 64;
        gedge *e = realloc(g->edge, cap * sizeof(*e));
        if (!e)
            return -1;
        g->edge = e;
        g->cap = cap;
    }
    g->edge[g->ne++] = (gedge){from, to, on_path};
    return 0;
}

/* The node of o, added when new (the bound counted by the caller). Returns
 * its index, or UINT32_MAX out of memory. */
static uint32_t add_node(graph *g, PyObject *o)
{
    uint32_t idx;
    if (pl_ptrmap_get(&g->index, (uintptr_t)o, &idx))
        return idx;
    idx = (uint32_t)g->n;
    if (pl_ptrmap_add(&g->index, (uintptr_t)o, idx) < 0)
        return UINT32_MAX;
    g->node[g->n++] = (gnode){o, -1, PyModule_Check(o) || PyFrame_Check(o) ? NODE_ROOT : 0};
    return idx;
}

/* Whether node idx, just given its depth, is searched in the next pass: not
 * a root (unless it is the object itself), not past the depth. A dict's
 * referrers count at the dict's own depth, so that an instance's __dict__
 * costs no level (it is folded into the instance). */
static int to_search(const graph *g, uint32_t idx)
{
    const gnode *n = &g->node[idx];
    if (idx != 0 && (n->flags & (NODE_ROOT | NODE_STOP)))
        return 0;
    return n->depth < g->max_depth || (idx != 0 && PyDict_Check(n->o) && n->depth <= g->max_depth);
}

/* A module's dict met: its module joins as its referrer (the root), and the
 * dict's other referrers (every function's __globals__) are not searched. */
static int module_of_dict(graph *g, uint32_t idx)
{
    uint32_t m, known;
    if (!pl_ptrmap_get(&g->moddicts, (uintptr_t)g->node[idx].o, &m))
        return 0;
    g->node[idx].flags |= NODE_STOP;
    if (g->n == GRAPH_RAW_NODES && !pl_ptrmap_get(&g->index, (uintptr_t)g->modules.v[m], &known)) {
        g->truncated = 1;
        return 0;
    }
    uint32_t mi = add_node(g, g->modules.v[m]);
    if (mi == UINT32_MAX || add_edge(g, mi, idx, 0) < 0)
        return -1;
    if (g->node[mi].depth < 0)
        g->node[mi].depth = g->node[idx].depth;
    return 0;
}

static int visit_front(PyObject *child, void *arg)
{
    graph *g = arg;
    uint32_t idx;
    if (!child || !(g->filter[FILTER_BIT(child) / 64] & ((uint64_t)1 << (FILTER_BIT(child) % 64))) ||
        !pl_ptrmap_get(&g->front, (uintptr_t)child, &idx))
        return 0;
    for (size_t i = 0; i < g->nhit; i++)
        if (g->hit[i] == idx)
            return 0;
    if (g->nhit == sizeof g->hit / sizeof g->hit[0]) {
        g->hit_more = 1;
        return 0;
    }
    g->hit[g->nhit++] = idx;
    return 0;
}

static int record_visit(PyObject *child, void *arg)
{
    graph *g = arg;
    pl_csr_add(&g->csr, child);
    return visit_front(child, arg);
}

/* The referents of snapshot object i that are in `front`, into g->hit. */
static void hits_of(graph *g, const pl_objvec *snap, size_t i, int first)
{
    PyObject *p = snap->v[i];
    g->nhit = 0;
    g->hit_more = 0;
    if (g->csr_ready) {
        for (size_t e = g->csr.start[i]; e < g->csr.start[i + 1]; e++)
            visit_front(g->csr.edge[e], g);
        return;
    }
    if (first && g->csr.on)
        g->csr.start[i] = g->csr.n;
    if (pl_has_traverse(p))
        Py_TYPE(p)->tp_traverse(p, first && g->csr.on ? record_visit : visit_front, g);
}

/* One pass: every tracked object that refers to a node of `front` becomes a
 * node (within the bound) with an edge to each node it refers to; the new
 * nodes to search go to `next`. 0, or -1 out of memory. */
static int search_pass(graph *g, const pl_objvec *snap, const pl_objvec *front, pl_objvec *next, int first)
{
    pl_ptrmap_free(&g->front);
    memset(g->filter, 0, sizeof g->filter);
    if (pl_ptrmap_init(&g->front, front->n) < 0)
        return -1;
    for (size_t i = 0; i < front->n; i++) {
        uint32_t idx;
        pl_ptrmap_get(&g->index, (uintptr_t)front->v[i], &idx);
        if (pl_ptrmap_add(&g->front, (uintptr_t)front->v[i], idx) < 0)
            return -1;
        g->filter[FILTER_BIT(front->v[i]) / 64] |= (uint64_t)1 << (FILTER_BIT(front->v[i]) % 64);
    }
    if (first) {
        g->csr.start = malloc((snap->n + 1) * sizeof(*g->csr.start));
        g->csr.on = g->csr.start != NULL;
    }
    for (size_t i = 0; i < snap->n; i++) {
        PyObject *p = snap->v[i];
        hits_of(g, snap, i, first);
        if (!g->nhit)
            continue;
        uint32_t pi;
        if (!pl_ptrmap_get(&g->index, (uintptr_t)p, &pi)) {
            if (g->n == GRAPH_RAW_NODES) {
                g->truncated = 1;
                continue;
            }
            pi = add_node(g, p);
            if (pi == UINT32_MAX)
                return -1;
        }
        if (g->hit_more)
            g->truncated = 1;
        int depth = -1;
        for (size_t h = 0; h < g->nhit; h++) {
            const gnode *c = &g->node[g->hit[h]];
            int d = c->depth + (g->hit[h] != 0 && PyDict_Check(c->o) ? 0 : 1);
            if (depth < 0 || d < depth)
                depth = d;
            if (add_edge(g, pi, g->hit[h], 0) < 0)
                return -1;
        }
        if (g->node[pi].depth >= 0)
            continue; /* met before: only its edges are new */
        g->node[pi].depth = depth;
        if (module_of_dict(g, pi) < 0)
            return -1;
        if (to_search(g, pi) && pl_objvec_push(next, p) < 0)
            return -1;
    }
    if (first && g->csr.on) {
        g->csr.start[snap->n] = g->csr.n;
        g->csr_ready = 1;
    }
    return 0;
}

/* The search, over a->snap (borrowed pointers, gc disabled): the path
 * first (its nodes marked), then the referrers level by level. 0, or -1
 * out of memory. */
static int graph_search(pl_answer *a, graph *g, const pl_objvec *path, PyObject *target)
{
    pl_objvec front = {0}, next = {0};
    int rc = -1;
    for (size_t i = 0; i < a->snap.n; i++) {
        PyObject *o = a->snap.v[i];
        PyObject *d = PyModule_Check(o) ? PyModule_GetDict(o) : NULL;
        if (d && (pl_ptrmap_add(&g->moddicts, (uintptr_t)d, (uint32_t)g->modules.n) < 0 ||
                  pl_objvec_push(&g->modules, o) < 0))
            goto out;
    }
    if (add_node(g, target) != 0)
        goto out;
    g->node[0].depth = 0;
    /* The path, target end first: a path longer than the bound keeps the
     * steps nearest the object. */
    uint32_t below = 0;
    size_t keep = path->n < GRAPH_MAX_NODES ? path->n : GRAPH_MAX_NODES;
    if (keep < path->n)
        g->truncated = 1;
    for (size_t k = 1; k < keep; k++) {
        uint32_t idx = add_node(g, path->v[path->n - 1 - k]);
        if (idx == UINT32_MAX || add_edge(g, idx, below, 1) < 0)
            goto out;
        g->node[idx].flags |= NODE_ON_PATH;
        below = idx;
    }
    if (path->n)
        g->node[0].flags |= NODE_ON_PATH;
    if (keep == path->n && path->n)
        g->node[below].flags |= NODE_ROOT;
    if (pl_objvec_push(&front, target) < 0)
        goto out;
    for (int pass = 0; front.n && pass < GRAPH_MAX_PASSES; pass++) {
        next.n = 0;
        if (search_pass(g, &a->snap, &front, &next, pass == 0) < 0)
            goto out;
        pl_objvec t = front;
        front = next;
        next = t;
    }
    if (front.n)
        g->truncated = 1;
    rc = 0;
out:
    free(g->csr.edge);
    free(g->csr.start);
    g->csr.edge = NULL;
    g->csr.start = NULL;
    pl_objvec_free(&front);
    pl_objvec_free(&next);
    return rc;
}

/* An instance's (or module's) own __dict__ folded into it: its edges leave
 * from the owner, whose label for them is "attribute 'x'". Only a dict that
 * nothing else in the graph refers to. Runs no Python code. */
static void fold_own_dicts(graph *g)
{
    for (uint32_t d = 1; d < g->n; d++) {
        if (!PyDict_Check(g->node[d].o))
            continue;
        uint32_t owner = UINT32_MAX;
        int others = 0;
        for (size_t i = 0; i < g->ne; i++) {
            if (g->edge[i].to != d)
                continue;
            if (pl_own_dict(g->node[g->edge[i].from].o) == g->node[d].o)
                owner = g->edge[i].from;
            else
                others = 1;
        }
        if (owner == UINT32_MAX || others)
            continue;
        g->node[d].flags |= NODE_GONE;
        if (g->node[d].flags & NODE_ON_PATH)
            g->node[owner].flags |= NODE_ON_PATH;
        size_t out = 0;
        for (size_t i = 0; i < g->ne; i++) {
            gedge e = g->edge[i];
            if (e.to == d)
                continue;
            if (e.from == d)
                e.from = owner;
            g->edge[out++] = e;
        }
        g->ne = out;
        /* the owner may now refer to a node twice: keep one edge */
        out = 0;
        for (size_t i = 0; i < g->ne; i++) {
            size_t j = 0;
            while (j < out && !(g->edge[j].from == g->edge[i].from && g->edge[j].to == g->edge[i].to))
                j++;
            if (j < out)
                g->edge[j].on_path |= g->edge[i].on_path;
            else
                g->edge[out++] = g->edge[i];
        }
        g->ne = out;
    }
}

/* Depths again on the folded graph (referrer hops from the object), then
 * the deepest nodes off the path dropped down to GRAPH_MAX_NODES. */
static int bound_nodes(graph *g)
{
    uint32_t queue[GRAPH_RAW_NODES];
    size_t head = 0, tail = 0, live = 0;
    for (size_t i = 0; i < g->n; i++)
        g->node[i].depth = -1;
    g->node[0].depth = 0;
    queue[tail++] = 0;
    while (head < tail) {
        uint32_t c = queue[head++];
        for (size_t i = 0; i < g->ne; i++) {
            uint32_t p = g->edge[i].from;
            if (g->edge[i].to == c && !(g->node[p].flags & NODE_GONE) && g->node[p].depth < 0) {
                g->node[p].depth = g->node[c].depth + 1;
                queue[tail++] = p;
            }
        }
    }
    for (size_t i = 0; i < g->n; i++) {
        if (g->node[i].depth < 0)
            g->node[i].flags |= NODE_GONE; /* only reached through a dropped edge */
        if (!(g->node[i].flags & NODE_GONE))
            live++;
    }
    /* In BFS order, a node's shortest way to the object is through nodes
     * met before it: dropping from the end keeps the rest connected. */
    for (size_t k = tail; k-- > 0 && live > GRAPH_MAX_NODES;) {
        gnode *n = &g->node[queue[k]];
        if (!(n->flags & NODE_ON_PATH) && !(n->flags & NODE_GONE)) {
            n->flags |= NODE_GONE;
            live--;
            g->truncated = 1;
        }
    }
    size_t out = 0;
    for (size_t i = 0; i < g->ne; i++)
        if (!(g->node[g->edge[i].from].flags & NODE_GONE) && !(g->node[g->edge[i].to].flags & NODE_GONE))
            g->edge[out++] = g->edge[i];
    g->ne = out;
    return 0;
}

/* The labels of the edges (before any repr runs) and which nodes are held
 * under a secret-looking name (their repr is not shown). 0, or -1 out of
 * memory. labels[i] is malloc'ed. */
static int label_edges(graph *g, char **labels, unsigned char *secret)
{
    for (size_t i = 0; i < g->ne; i++) {
        pl_edge e;
        pl_buf via = PL_BUF_INIT;
        pl_edge_find(g->node[g->edge[i].from].o, g->node[g->edge[i].to].o, &e);
        if ((e.kind == PL_EDGE_ATTRIBUTE || e.kind == PL_EDGE_VALUE || e.kind == PL_EDGE_LOCAL) &&
            pl_secret_name(e.key))
            secret[g->edge[i].to] = 1;
        int rc = pl_edge_format(&e, &via);
        pl_edge_clear(&e);
        labels[i] = rc < 0 ? NULL : strdup(pl_buf_cstr(&via));
        pl_buf_free(&via);
        if (!labels[i])
            return -1;
    }
    return 0;
}

static void json_flag(pl_buf *b, const char *key, int v)
{
    pl_buf_putc(b, ',');
    pl_json_key(b, key);
    pl_json_bool(b, v);
}

static void graph_json(pl_answer *a, graph *g, char **labels, const unsigned char *secret, int found)
{
    pl_buf *b = a->body;
    pl_buf name = PL_BUF_INIT;
    pl_answer_begin_doc(a);
    pl_buf_putc(b, ',');
    pl_json_key(b, "id");
    pl_json_u64_str(b, a->q->id);
    pl_buf_putc(b, ',');
    pl_json_key(b, "depth");
    pl_json_u64(b, (uint64_t)g->max_depth);
    json_flag(b, "found", found);
    json_flag(b, "truncated", g->truncated);
    pl_buf_putc(b, ',');
    pl_json_key(b, "nodes");
    pl_buf_putc(b, '[');
    int first = 1;
    for (size_t i = 0; i < g->n; i++) {
        const gnode *n = &g->node[i];
        if (n->flags & NODE_GONE)
            continue;
        if (!first)
            pl_buf_putc(b, ',');
        first = 0;
        pl_json_summary_as(&a->repr, b, n->o, PL_REPR_LIST_CHARS, secret[i]);
        if (!b->len || b->data[b->len - 1] != '}')
            continue;
        b->len--; /* reopen the summary for the graph's fields */
        pl_buf_putc(b, ',');
        pl_json_key(b, "type");
        name.len = 0;
        if (pl_typename(Py_TYPE(n->o), &name) < 0)
            pl_json_cstr(b, Py_TYPE(n->o)->tp_name);
        else
            pl_json_str(b, name.data ? name.data : "", name.len);
        pl_buf_putc(b, ',');
        pl_json_key(b, "depth");
        pl_json_u64(b, (uint64_t)n->depth);
        json_flag(b, "root", (n->flags & NODE_ROOT) != 0);
        json_flag(b, "on_path", (n->flags & NODE_ON_PATH) != 0);
        pl_buf_putc(b, '}');
    }
    pl_buf_puts(b, "],");
    pl_json_key(b, "edges");
    pl_buf_putc(b, '[');
    for (size_t i = 0; i < g->ne; i++) {
        if (i)
            pl_buf_putc(b, ',');
        pl_buf_putc(b, '{');
        pl_json_key(b, "from");
        pl_json_u64_str(b, (uint64_t)(uintptr_t)g->node[g->edge[i].from].o);
        pl_buf_putc(b, ',');
        pl_json_key(b, "to");
        pl_json_u64_str(b, (uint64_t)(uintptr_t)g->node[g->edge[i].to].o);
        pl_buf_putc(b, ',');
        pl_json_key(b, "label");
        pl_json_cstr(b, labels[i]);
        json_flag(b, "on_path", g->edge[i].on_path);
        pl_buf_putc(b, '}');
    }
    pl_buf_puts(b, "]}");
    pl_buf_free(&name);
}

/* See live.h. q->limit is the depth (1..4, checked by the handler and
 * again here). */
int pl_answer_graph(pl_answer *a)
{
    pl_frames fr = {0};
    pl_objvec path = {0}; /* borrowed */
    graph *g = calloc(1, sizeof *g);
    char **labels = NULL;
    unsigned char *secret = NULL;
    size_t held = 0; /* nodes whose reference is taken */
    int rc = -1, found = 0;

    if (a->q->limit < 1 || a->q->limit > 4) {
        free(g);
        pl_answer_error(a, 400, "depth must be 1..4");
        return 0;
    }
    a->gc_was_enabled = PyGC_Disable();
    if (!g || pl_ptrmap_init(&g->index, GRAPH_RAW_NODES) < 0 || pl_ptrmap_init(&g->moddicts, 1024) < 0 ||
        pl_frames_collect(&fr) < 0) {
        PyErr_NoMemory();
        goto out;
    }
    g->max_depth = (int)a->q->limit;
    if (pl_answer_snapshot(a) < 0)
        goto out;
    PyObject *target = pl_answer_find(a);
    if (!target) {
        pl_answer_end_snapshot(a);
        pl_answer_gone(a);
        rc = 0;
        goto out;
    }
    found = pl_path_find(a, &fr, target, &path);
    if (found < 0 || graph_search(a, g, &path, target) < 0) {
        pl_answer_end_snapshot(a);
        PyErr_NoMemory();
        goto out;
    }
    for (; held < g->n; held++)
        Py_INCREF(g->node[held].o);
    pl_answer_end_snapshot(a);

    fold_own_dicts(g);
    bound_nodes(g);
    labels = calloc(g->ne ? g->ne : 1, sizeof(*labels));
    secret = calloc(g->n ? g->n : 1, 1);
    if (!labels || !secret || label_edges(g, labels, secret) < 0) {
        PyErr_NoMemory();
        goto out;
    }
    graph_json(a, g, labels, secret, found == 1);
    a->status = 200;
    rc = 0;
out:
    for (size_t i = 0; labels && i < g->ne; i++)
        free(labels[i]);
    free(labels);
    free(secret);
    for (size_t i = 0; i < held; i++)
        Py_DECREF(g->node[i].o);
    if (g) {
        free(g->edge);
        pl_ptrmap_free(&g->index);
        pl_ptrmap_free(&g->moddicts);
        pl_ptrmap_free(&g->front);
        pl_objvec_free(&g->modules);
    }
    free(g);
    pl_objvec_free(&path);
    pl_frames_free(&fr);
    if (a->gc_was_enabled) {
        PyGC_Enable();
        a->gc_was_enabled = 0;
    }
    return rc;
}
