/* Dominator tree (semi-NCA), retained sizes, depths and LCAs. See
 * dominators.h for the contracts. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "pyloot/dominators.h"
#include "pyloot/error.h"
#include "pyloot/graph.h"

/* "No link" in the pointer-reversed compression paths. */
#define NIL UINT32_MAX
/* Loops over scattered memory prefetch this many steps ahead, and at most
 * this many entries of one adjacency list. */
#define PREFETCH_AHEAD 8
#define PREFETCH_MAX 16

/* The depth/LCA index: dj[v] = {depth, skew-binary jump pointer} by
 * vertex, slot n standing for the virtual root (depth 0, its own parent and
 * jump). */
typedef uint32_t lca_index[2];

/* The children lists, laid out on first need (pl_dom_children, pl_dom_bfs,
 * pl_dom_subtree): retained sizes and LCAs do without them. */
struct layout {
    uint32_t *bfs;    /* r: the tree breadth-first, children in vertex order */
    uint32_t *kid_at; /* n+1 (slot n: the virtual root): where the vertex's
                       * children start in bfs, r when it has none */
    uint64_t *block;  /* r/64+1 words: bit q set when bfs[q] is a first child */
};

struct pl_domtree {
    size_t n;          /* vertices of the graph */
    size_t r;          /* reachable vertices */
    uint32_t *idom;    /* n: vertex, PL_DOM_ROOT or PL_GRAPH_NONE */
    uint32_t *order;   /* nordered: the searched vertices in depth-first
                        * preorder (each after its immediate dominator) */
    size_t nordered;
    uint64_t *sink;    /* n/64+1 words: bit v set for a vertex left out of
                        * the search (see dfs_number): it dominates nothing */
    _Atomic(struct layout *) layout; /* built on first need, then immutable */
    _Atomic(lca_index *) lca; /* built on first need, then immutable */
};

/* Marks in pre[] for the vertices the search leaves out. */
#define SINK UINT32_MAX             /* reached through its one in-edge */
#define ROOT_SINK (UINT32_MAX - 1u) /* the same, and a root */

/* ---- semi-NCA over depth-first numbers (0 = the virtual root) ---- */

/* Numbers the vertices reachable from the roots in depth-first preorder,
 * 1..r: pre[v] (0: unreached), vert[i] the vertex numbered i, parent[i] the
 * number of its search parent. cursor[i] is work space (how many out-edges
 * of vertex i were scanned). Leaves with one in-edge are left out: pre[v]
 * is SINK, and *sinks counts them. Returns the number of the last vertex
 * numbered. */
static size_t dfs_number(const pl_graph *g, const uint32_t *roots, size_t nroots, uint32_t *pre,
                         uint32_t *vert, uint32_t *parent, uint32_t *cursor, size_t *sinks)
{
    const uint32_t *out_off, *out_head, *in_off;
    pl_graph_csr(g, &out_off, &out_head, &in_off, NULL);
    *sinks = 0;
    /* Search numbers stay below the marks (a graph of 4 billion vertices
     * numbers every one). */
    int skip = pl_graph_order(g) < ROOT_SINK;
    uint32_t num = 1, cur = 0;
    size_t next_root = 0;
    vert[0] = PL_DOM_ROOT;
    parent[0] = 0;
    for (;;) {
        uint32_t w = PL_GRAPH_NONE;
        if (cur == 0) {
            while (next_root < nroots && w == PL_GRAPH_NONE) {
                uint32_t x = roots[next_root++];
                if (!pre[x])
                    w = x;
            }
            if (w == PL_GRAPH_NONE)
                break;
        } else {
            uint32_t v = vert[cur];
            const uint32_t *heads = out_head + out_off[v];
            size_t cnt = out_off[v + 1] - out_off[v];
            size_t e = cursor[cur];
            /* First visit: overlap the misses of the whole list, and of the
             * offsets of the out-lists the search may enter next (a
             * prefetch, not a load: the search must not wait for them). */
            for (size_t j = 0; e == 0 && j < cnt && j < PREFETCH_MAX; j++) {
                __builtin_prefetch(&pre[heads[j]]);
                __builtin_prefetch(&out_off[heads[j]]);
            }
            /* Back from a child: keep the window PREFETCH_MAX heads ahead
             * (a list holding a million objects is scanned one head per
             * return). */
            if (e && e + PREFETCH_MAX - 1 < cnt) {
                __builtin_prefetch(&pre[heads[e + PREFETCH_MAX - 1]]);
                __builtin_prefetch(&out_off[heads[e + PREFETCH_MAX - 1]]);
            }
            /* Skip the numbered heads, and number the leaves (no
             * out-edges) in passing: a visit would only come back (a list
             * of a million objects that hold none is a million leaves).
             * A leaf with one in-edge is not even numbered: it is on no
             * path to another vertex and its immediate dominator is the
             * vertex it hangs from (or the virtual root when it is a root,
             * see pl_dom_build_keep_work), so the rest of semi-NCA does
             * not need it and its arrays stay the size of the others. */
            for (; e < cnt; e++) {
                uint32_t x = heads[e];
                if (e + PREFETCH_MAX < cnt) {
                    __builtin_prefetch(&pre[heads[e + PREFETCH_MAX]]);
                    __builtin_prefetch(&out_off[heads[e + PREFETCH_MAX]]);
                    __builtin_prefetch(&in_off[heads[e + PREFETCH_MAX]]);
                }
                if (pre[x])
                    continue;
                if (out_off[x + 1] != out_off[x])
                    break;
                if (skip && in_off[x + 1] - in_off[x] == 1) {
                    pre[x] = SINK;
                    (*sinks)++;
                    continue;
                }
                pre[x] = num;
                vert[num] = x;
                parent[num++] = cur;
            }
            if (e == cnt) {
                cur = parent[cur]; /* done with cur: back to its caller */
                continue;
            }
            w = heads[e];
            cursor[cur] = (uint32_t)(e + 1);
        }
        pre[w] = num;
        vert[num] = w;
        parent[num] = cur;
        cursor[num] = 0;
        cur = num++;
    }
    return num - 1;
}

/* The forest of semi-NCA: al[i][0] is i's ancestor (its search parent
 * until path compression shortcuts it), al[i][1] its label. Both halves of
 * a vertex share a cache line: one miss per step up a path, not two. */
#define ANC(i) al[i][0]
#define LAB(i) al[i][1]

/* The smallest label on the forest path from v up to, not including, the
 * first vertex numbered below `linked` (vertices >= linked are linked to
 * their parents), compressing the path. Label here means the value, not the
 * vertex: semi-NCA only compares semidominator numbers, so LAB(i) holds the
 * smallest one seen on i's compressed path. The path is walked up reversing
 * the ancestor pointers and walked back down restoring them, so no stack is
 * needed however long it is. */
static uint32_t eval(uint32_t v, uint32_t linked, uint32_t (*al)[2])
{
    if (ANC(v) < linked)
        return LAB(v);
    uint32_t prev = NIL, x = v;
    while (ANC(x) >= linked) {
        uint32_t up = ANC(x);
        ANC(x) = prev;
        prev = x;
        x = up;
    }
    /* x is the top of the path: its ancestor is the forest root. */
    uint32_t top = ANC(x), best = LAB(x);
    while (prev != NIL) {
        uint32_t down = ANC(prev);
        ANC(prev) = top;
        if (best < LAB(prev))
            LAB(prev) = best;
        else
            best = LAB(prev);
        prev = down;
    }
    return best;
}

/* The prefix minima of the semidominators found so far: for the vertices
 * w+1, w+2, ... (all done when w is), the vertices whose semidominator is
 * below every one between w and them. at[0] is the last (largest number,
 * smallest semidominator), at[len-1] is w+1; semidominators rise towards
 * the top. */
struct minima {
    uint32_t (*at)[2]; /* {vertex, its semidominator} */
    size_t len;
};

/* Pushes w with semidominator s, dropping the entries it hides: an entry
 * above w with a semidominator >= s is never the minimum of a range that
 * starts below w (the range holds w too). */
static inline void minima_push(struct minima *m, uint32_t w, uint32_t s)
{
    while (m->len && m->at[m->len - 1][1] >= s)
        m->len--;
    m->at[m->len][0] = w;
    m->at[m->len][1] = s;
    m->len++;
}

/* The smallest vertex numbered above the one last pushed whose
 * semidominator is below s (UINT32_MAX when none is): every range from
 * there down to the last pushed vertex holds no semidominator below s. */
static inline uint32_t minima_first_below(const struct minima *m, uint32_t s)
{
    /* at[i][1] < s holds for i < lo, fails for i >= hi. */
    size_t lo = 0, hi = m->len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->at[mid][1] < s)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo ? m->at[lo - 1][0] : UINT32_MAX;
}

/* Semidominators: semi[w] comes in as w's search parent (0 for roots, whose
 * virtual in-edge gives 0) and leaves as the smallest eval over w's
 * reachable predecessors, for w = r down to 1. The loop is a chain of
 * cache misses (in-edge offsets, in-edge lists, numbers of the
 * predecessors, their forest entries), so the lists of the vertices a few
 * steps ahead are prefetched stage by stage.
 *
 * Most evals are skipped: eval(u) is the smallest semidominator on the
 * search path from u up to w+1, all of it numbered in (w, u], so it cannot
 * beat s when no vertex of that range has a semidominator below s. On a
 * heap that is the common case: a container holding many objects (a list
 * of instances) numbers before them and gives them all a small s at once,
 * and the evals it makes useless would each walk a path of cache misses.
 * `mins` is work space for r entries. */
static void semidominators(const pl_graph *g, size_t r, const uint32_t *pre, const uint32_t *vert,
                           uint32_t *semi, uint32_t (*al)[2], uint32_t (*mins)[2])
{
    struct minima m = {mins, 0};
    const uint32_t *in_off, *in_tail;
    pl_graph_csr(g, NULL, NULL, &in_off, &in_tail);
#define PREDS(v, k) (k = in_off[(v) + 1] - in_off[v], in_tail + in_off[v])
    if (r > 4 * PREFETCH_AHEAD)
        __builtin_prefetch(&in_off[vert[r - 4 * PREFETCH_AHEAD]]);
    for (size_t w = r; w >= 1; w--) {
        size_t k;
        const uint32_t *preds;
        if (w > 4 * PREFETCH_AHEAD)
            __builtin_prefetch(&in_off[vert[w - 4 * PREFETCH_AHEAD]]);
        if (w > 3 * PREFETCH_AHEAD) {
            preds = PREDS(vert[w - 3 * PREFETCH_AHEAD], k);
            __builtin_prefetch(preds);
        }
        if (w > 2 * PREFETCH_AHEAD) {
            preds = PREDS(vert[w - 2 * PREFETCH_AHEAD], k);
            for (size_t j = 0; k > 1 && j < k && j < PREFETCH_MAX; j++)
                __builtin_prefetch(&pre[preds[j]]);
        }
        if (w > PREFETCH_AHEAD) {
            preds = PREDS(vert[w - PREFETCH_AHEAD], k);
            for (size_t j = 0; k > 1 && j < k && j < PREFETCH_MAX; j++)
                __builtin_prefetch(&al[pre[preds[j]]], 1);
        }
        uint32_t s = semi[w];
        preds = PREDS(vert[w], k);
        /* A vertex with one in-edge (most objects of a heap have one
         * owner) that is not a root was reached through it: its
         * semidominator is its search parent, already in semi[w]. */
        if (s && k > 1) {
            /* The predecessors numbered below w first: they lower s for
             * free, and a lower s lets more evals be skipped. */
            size_t later = 0;
            for (size_t j = 0; j < k; j++) {
                if (j + 2 * PREFETCH_MAX < k)
                    __builtin_prefetch(&pre[preds[j + 2 * PREFETCH_MAX]]);
                uint32_t u = pre[preds[j]];
                if (u > w)
                    later++;
                else if (u && u < s)
                    s = u;
            }
            uint32_t from = later && s ? minima_first_below(&m, s) : UINT32_MAX;
            for (size_t j = 0; later && s && j < k; j++) {
                /* A long list (a class's instances all point to it): the
                 * lists ahead were prefetched only up to PREFETCH_MAX. */
                if (j + PREFETCH_MAX < k)
                    __builtin_prefetch(&al[pre[preds[j + PREFETCH_MAX]]], 1);
                uint32_t u = pre[preds[j]];
                if (u <= w)
                    continue;
                later--;
                if (u < from)
                    continue; /* no semidominator below s in (w, u] */
                uint32_t e = eval(u, (uint32_t)w + 1, al);
                if (e < s) {
                    s = e;
                    from = s ? minima_first_below(&m, s) : UINT32_MAX;
                }
            }
        }
        semi[w] = s;
        LAB(w) = s;
        minima_push(&m, (uint32_t)w, s);
    }
#undef PREDS
}

/* Appends w under parent p to a tree kept as dj[x] = {depth, skew-binary
 * jump pointer}: w jumps as far as p's jump goes twice when p's two jumps
 * have equal length, else to p. Every ancestor search then takes
 * O(log depth) steps. */
static inline void add_leaf(uint32_t (*dj)[2], uint32_t w, uint32_t p)
{
    uint32_t j = dj[p][1];
    dj[w][0] = dj[p][0] + 1;
    dj[w][1] = dj[p][0] - dj[j][0] == dj[j][0] - dj[dj[j][1]][0] ? dj[j][1] : p;
}

/* Immediate dominators: idom[w] starts as w's search parent and becomes
 * its nearest dominator-tree ancestor numbered <= semi[w] (the NCA of the
 * parent and the semidominator), for w = 1..r in order, so the ancestors
 * are final when read. Numbers fall going up the tree, so the search jumps
 * while the jump target is still above semi[w]. dj is work space. */
static void nca(size_t r, uint32_t *idom, const uint32_t *semi, uint32_t (*dj)[2])
{
    idom[0] = 0;
    dj[0][0] = dj[0][1] = 0;
    for (size_t w = 1; w <= r; w++) {
        uint32_t s = semi[w], c = idom[w];
        while (c > s)
            c = dj[c][1] > s ? dj[c][1] : idom[c];
        idom[w] = c;
        add_leaf(dj, (uint32_t)w, c);
    }
}

/* ---- the tree by vertex ---- */

/* Lays out the children lists from t->idom: children grouped by parent in
 * vertex order (a counting sort), then breadth-first so that every
 * vertex's children are one run of bfs. NULL when out of memory. */
static struct layout *lay_out(const pl_domtree *t)
{
    size_t n = t->n, r = t->r;
    struct layout *l = calloc(1, sizeof(*l));
    uint32_t *start = calloc(n + 2, sizeof(uint32_t)); /* slot n: virtual root */
    uint32_t *grouped = malloc((r + 1) * sizeof(uint32_t));
    if (!l || !start || !grouped)
        goto fail;
    l->bfs = malloc((r + 1) * sizeof(uint32_t));
    l->kid_at = malloc((n + 1) * sizeof(uint32_t));
    l->block = calloc(r / 64 + 1, sizeof(uint64_t));
    if (!l->bfs || !l->kid_at || !l->block)
        goto fail;
    for (size_t v = 0; v < n; v++) {
        uint32_t p = t->idom[v];
        if (p != PL_GRAPH_NONE)
            start[(p == PL_DOM_ROOT ? n : p) + 1]++;
    }
    for (size_t p = 0; p <= n; p++)
        start[p + 1] += start[p];
    for (size_t v = 0; v < n; v++) {
        uint32_t p = t->idom[v];
        if (p != PL_GRAPH_NONE)
            grouped[start[p == PL_DOM_ROOT ? n : p]++] = (uint32_t)v;
    }
    /* start[p] is now the end of p's group, start[p-1] (0 for p = 0) its start. */
    size_t top = start[n] - (n ? start[n - 1] : 0), tail = top;
    memcpy(l->bfs, grouped + (start[n] - top), top * sizeof(uint32_t));
    l->kid_at[n] = 0;
    if (top)
        l->block[0] |= 1;
    for (size_t q = 0; q < r; q++) {
        uint32_t v = l->bfs[q];
        size_t end = start[v], begin = v ? start[v - 1] : 0;
        if (begin == end) {
            l->kid_at[v] = (uint32_t)r;
            continue;
        }
        l->kid_at[v] = (uint32_t)tail;
        l->block[tail >> 6] |= (uint64_t)1 << (tail & 63);
        memcpy(l->bfs + tail, grouped + begin, (end - begin) * sizeof(uint32_t));
        tail += end - begin;
    }
    free(start);
    free(grouped);
    return l;
fail:
    if (l) {
        free(l->bfs);
        free(l->kid_at);
        free(l->block);
    }
    free(l);
    free(start);
    free(grouped);
    return NULL;
}

static void layout_free(struct layout *l)
{
    if (!l)
        return;
    free(l->bfs);
    free(l->kid_at);
    free(l->block);
    free(l);
}

/* The layout, built and published on first need; NULL when there is no
 * memory for it. */
static const struct layout *layout_get(const pl_domtree *t)
{
    pl_domtree *mt = (pl_domtree *)t; /* the layout is a cache: logically const */
    struct layout *x = atomic_load_explicit(&mt->layout, memory_order_acquire);
    if (x)
        return x;
    struct layout *mine = lay_out(t);
    if (!mine)
        return NULL;
    struct layout *expected = NULL;
    if (atomic_compare_exchange_strong_explicit(&mt->layout, &expected, mine,
                                                memory_order_acq_rel, memory_order_acquire))
        return mine;
    layout_free(mine); /* another thread published first */
    return expected;
}

int pl_dom_build(const pl_graph *g, const uint32_t *roots, size_t nroots, pl_domtree **out)
{
    return pl_dom_build_keep_work(g, roots, nroots, out, NULL, NULL);
}

int pl_dom_build_keep_work(const pl_graph *g, const uint32_t *roots, size_t nroots, pl_domtree **out,
                           void **work, size_t *work_bytes)
{
    return pl_dom_build_into(g, roots, nroots, NULL, out, work, work_bytes);
}

int pl_dom_build_into(const pl_graph *g, const uint32_t *roots, size_t nroots, uint32_t *space,
                      pl_domtree **out, void **work, size_t *work_bytes)
{
    *out = NULL;
    if (work) {
        *work = NULL;
        *work_bytes = 0;
    }
    if (!pl_graph_has_reverse(g))
        return PL_EBADARG;
    size_t n = pl_graph_order(g);
    for (size_t i = 0; i < nroots; i++)
        if (roots[i] >= n)
            return PL_EBADARG;
    pl_domtree *t = calloc(1, sizeof(*t));
    uint32_t *pre = space ? memset(space, 0, n * sizeof(uint32_t)) : calloc(n ? n : 1, sizeof(uint32_t));
    uint32_t *vert = malloc((n + 1) * sizeof(uint32_t));
    uint32_t *idom = malloc((n + 1) * sizeof(uint32_t));
    uint32_t *semi = malloc((n + 1) * sizeof(uint32_t)); /* the search's cursors first */
    uint32_t (*al)[2] = NULL, (*mins)[2] = NULL;
    int rc = ENOMEM;
    if (!t || !pre || !vert || !idom || !semi)
        goto fail;
    t->n = n;
    atomic_init(&t->lca, NULL);
    atomic_init(&t->layout, NULL);
    size_t sinks;
    size_t r = dfs_number(g, roots, nroots, pre, vert, idom, semi, &sinks);
    t->r = r + sinks;
    /* Give back what the vertices left out would have used. */
    if (r < n) {
        uint32_t *p;
        if ((p = realloc(vert, (r + 1) * sizeof(uint32_t))))
            vert = p;
        if ((p = realloc(idom, (r + 1) * sizeof(uint32_t))))
            idom = p;
        if ((p = realloc(semi, (r + 1) * sizeof(uint32_t))))
            semi = p;
    }
    t->sink = calloc(n / 64 + 1, sizeof(uint64_t));
    if (!t->sink || !(al = malloc((r + 1) * sizeof(*al))) ||
        !(mins = malloc((r + 1) * sizeof(*mins))))
        goto fail;
    for (size_t i = 0; i <= r; i++) {
        semi[i] = ANC(i) = idom[i];
        LAB(i) = (uint32_t)i;
    }
    for (size_t i = 0; i < nroots; i++) {
        uint32_t x = roots[i];
        if (pre[x] == SINK || pre[x] == ROOT_SINK)
            pre[x] = ROOT_SINK; /* reached as a leaf before its turn as a root */
        else
            semi[pre[x]] = 0;
    }
    semidominators(g, r, pre, vert, semi, al, mins);
    /* The forest is done with: al holds depths and jumps now. */
    nca(r, idom, semi, al);

    /* Renumber by vertex, in place over pre. */
    const uint32_t *in_off, *in_tail;
    pl_graph_csr(g, NULL, NULL, &in_off, &in_tail);
    for (size_t v = 0; v < n; v++) {
        uint32_t i = pre[v];
        if (i == SINK || i == ROOT_SINK) {
            pre[v] = i == ROOT_SINK ? PL_DOM_ROOT : in_tail[in_off[v]];
            t->sink[v >> 6] |= (uint64_t)1 << (v & 63);
        } else {
            pre[v] = !i ? PL_GRAPH_NONE : idom[i] ? vert[idom[i]] : PL_DOM_ROOT;
        }
    }
    t->idom = pre;
    pre = NULL;
    /* The preorder is kept (each vertex after its immediate dominator, an
     * ancestor in the search tree): retained sizes and depths go by it. */
    memmove(vert, vert + 1, r * sizeof(uint32_t));
    t->order = vert;
    t->nordered = r;
    vert = NULL;
    free(idom);
    free(semi);
    free(mins);
    if (work) {
        *work = al;
        *work_bytes = (r + 1) * sizeof(*al);
    } else {
        free(al);
    }
    *out = t;
    return 0;
fail:
    pl_dom_free(t);
    if (pre != space)
        free(pre);
    free(vert);
    free(idom);
    free(semi);
    free(al);
    free(mins);
    return rc;
}

void pl_dom_free(pl_domtree *t)
{
    if (!t)
        return;
    free(atomic_load_explicit(&t->lca, memory_order_acquire));
    layout_free(atomic_load_explicit(&t->layout, memory_order_acquire));
    free(t->idom);
    free(t->order);
    free(t->sink);
    free(t);
}

size_t pl_dom_order(const pl_domtree *t) { return t->n; }
size_t pl_dom_reachable(const pl_domtree *t) { return t->r; }

uint32_t pl_dom_idom(const pl_domtree *t, uint32_t v)
{
    return v < t->n ? t->idom[v] : PL_GRAPH_NONE;
}

/* Slot of v in the per-vertex arrays (n for the virtual root), or
 * PL_GRAPH_NONE when v is not in the tree. */
static inline uint32_t slot_of(const pl_domtree *t, uint32_t v)
{
    if (v == PL_DOM_ROOT)
        return (uint32_t)t->n;
    return v < t->n && t->idom[v] != PL_GRAPH_NONE ? v : PL_GRAPH_NONE;
}

const uint32_t *pl_dom_children(const pl_domtree *t, uint32_t v, size_t *n)
{
    *n = 0;
    uint32_t s = slot_of(t, v);
    const struct layout *l = s == PL_GRAPH_NONE ? NULL : layout_get(t);
    if (!l)
        return NULL;
    size_t begin = l->kid_at[s];
    if (begin >= t->r)
        return NULL;
    /* The run ends at the next first child, or at the end of bfs. */
    size_t q = begin + 1, end = t->r;
    if (q < t->r) {
        size_t word = q >> 6;
        uint64_t bits = l->block[word] & (~(uint64_t)0 << (q & 63));
        while (!bits && ++word <= (t->r - 1) >> 6)
            bits = l->block[word];
        if (bits) {
            size_t found = (word << 6) + (size_t)__builtin_ctzll(bits);
            if (found < end)
                end = found;
        }
    }
    *n = end - begin;
    return l->bfs + begin;
}

const uint32_t *pl_dom_bfs(const pl_domtree *t, size_t *n)
{
    const struct layout *l = t->r ? layout_get(t) : NULL;
    *n = l ? t->r : 0;
    return l ? l->bfs : NULL;
}

int pl_dom_subtree(const pl_domtree *t, uint32_t v, uint32_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (v == PL_DOM_ROOT) {
        if (!t->r)
            return 0;
        const struct layout *l = layout_get(t);
        if (!l || !(*out = malloc(t->r * sizeof(uint32_t))))
            return ENOMEM;
        memcpy(*out, l->bfs, t->r * sizeof(uint32_t));
        *n = t->r;
        return 0;
    }
    if (slot_of(t, v) == PL_GRAPH_NONE)
        return 0;
    if (!layout_get(t))
        return ENOMEM;
    /* The answer is its own queue, grown by doubling. */
    size_t cap = 64, len = 1;
    uint32_t *list = malloc(cap * sizeof(uint32_t));
    if (!list)
        return ENOMEM;
    list[0] = v;
    for (size_t head = 0; head < len; head++) {
        size_t k;
        const uint32_t *kids = pl_dom_children(t, list[head], &k);
        if (len + k > cap) {
            while (len + k > cap)
                cap *= 2;
            uint32_t *grown = realloc(list, cap * sizeof(uint32_t));
            if (!grown) {
                free(list);
                return ENOMEM;
            }
            list = grown;
        }
        if (k)
            memcpy(list + len, kids, k * sizeof(uint32_t));
        len += k;
    }
    uint32_t *shrunk = realloc(list, len * sizeof(uint32_t));
    *out = shrunk ? shrunk : list;
    *n = len;
    return 0;
}

/* Builds the depth/jump index breadth-first (parents before children). */
static lca_index *lca_build(const pl_domtree *t)
{
    size_t n = t->n;
    lca_index *dj = malloc((n + 1) * sizeof(*dj));
    if (!dj)
        return NULL;
    dj[n][0] = 0;
    dj[n][1] = (uint32_t)n;
    for (size_t q = 0; q < t->nordered; q++) {
        uint32_t v = t->order[q], p = t->idom[v];
        add_leaf(dj, v, p == PL_DOM_ROOT ? (uint32_t)n : p);
    }
    /* The vertices left out of the search hang from searched ones. */
    for (size_t w = 0; w <= n >> 6; w++)
        for (uint64_t bits = t->sink[w]; bits; bits &= bits - 1) {
            uint32_t v = (uint32_t)(w * 64 + (size_t)__builtin_ctzll(bits)), p = t->idom[v];
            add_leaf(dj, v, p == PL_DOM_ROOT ? (uint32_t)n : p);
        }
    return dj;
}

/* The depth/jump index, built and published on first need; NULL when
 * there is no memory for it (callers then walk up idom). */
static const lca_index *lca_get(const pl_domtree *t)
{
    pl_domtree *mt = (pl_domtree *)t; /* the index is a cache: logically const */
    lca_index *x = atomic_load_explicit(&mt->lca, memory_order_acquire);
    if (x)
        return x;
    lca_index *mine = lca_build(t);
    if (!mine)
        return NULL;
    lca_index *expected = NULL;
    if (atomic_compare_exchange_strong_explicit(&mt->lca, &expected, mine, memory_order_acq_rel,
                                                memory_order_acquire))
        return mine;
    free(mine); /* another thread published first */
    return expected;
}

/* Parent of slot s (slot n: the virtual root, its own parent). */
static inline uint32_t up(const pl_domtree *t, uint32_t s)
{
    if (s == t->n)
        return s;
    uint32_t p = t->idom[s];
    return p == PL_DOM_ROOT ? (uint32_t)t->n : p;
}

static uint32_t depth_by_walk(const pl_domtree *t, uint32_t s)
{
    uint32_t d = 0;
    for (; s != t->n; s = up(t, s))
        d++;
    return d;
}

uint32_t pl_dom_depth(const pl_domtree *t, uint32_t v)
{
    uint32_t s = slot_of(t, v);
    if (s == PL_GRAPH_NONE)
        return 0;
    const lca_index *x = lca_get(t);
    return x ? x[s][0] : depth_by_walk(t, s);
}

uint32_t pl_dom_lca(const pl_domtree *t, uint32_t a, uint32_t b)
{
    uint32_t sa = slot_of(t, a), sb = slot_of(t, b);
    if (sa == PL_GRAPH_NONE || sb == PL_GRAPH_NONE)
        return PL_GRAPH_NONE;
    const lca_index *x = lca_get(t);
    if (x) {
        if (x[sa][0] < x[sb][0]) {
            uint32_t s = sa;
            sa = sb;
            sb = s;
        }
        uint32_t db = x[sb][0];
        while (x[sa][0] > db)
            sa = x[x[sa][1]][0] >= db ? x[sa][1] : up(t, sa);
        /* Same depth: same jump lengths, so jump together while the jumps
         * land on different vertices (still below the ancestor). */
        while (sa != sb) {
            if (x[sa][1] != x[sb][1]) {
                sa = x[sa][1];
                sb = x[sb][1];
            } else {
                sa = up(t, sa);
                sb = up(t, sb);
            }
        }
    } else {
        uint32_t da = depth_by_walk(t, sa), db = depth_by_walk(t, sb);
        for (; da > db; da--)
            sa = up(t, sa);
        for (; db > da; db--)
            sb = up(t, sb);
        while (sa != sb) {
            sa = up(t, sa);
            sb = up(t, sb);
        }
    }
    return sa == t->n ? PL_DOM_ROOT : sa;
}

int pl_dom_lca_walk(const pl_domtree *t, uint32_t a, uint32_t b, size_t *budget, uint32_t *lca)
{
    uint32_t sa = slot_of(t, a), sb = slot_of(t, b);
    if (sa == PL_GRAPH_NONE || sb == PL_GRAPH_NONE) {
        *lca = PL_GRAPH_NONE;
        return 1;
    }
    /* Depths first, each walk charged to the budget. */
    size_t da = 0, db = 0;
    for (uint32_t s = sa; s != t->n; s = up(t, s), da++)
        if (!*budget || !--*budget)
            return *budget = 0, 0;
    for (uint32_t s = sb; s != t->n; s = up(t, s), db++)
        if (!*budget || !--*budget)
            return *budget = 0, 0;
    /* Then up together: at most min(da, db) + |da - db| more steps, which
     * the depth walks already paid for. */
    for (; da > db; da--)
        sa = up(t, sa);
    for (; db > da; db--)
        sb = up(t, sb);
    while (sa != sb) {
        sa = up(t, sa);
        sb = up(t, sb);
    }
    *lca = sa == t->n ? PL_DOM_ROOT : sa;
    return 1;
}

int pl_dom_retained(const pl_domtree *t, const uint64_t *self_size, uint64_t *retained,
                    uint64_t *root_total)
{
    if (root_total)
        *root_total = 0;
    size_t n = t->n;
    if (n && (!self_size || !retained))
        return PL_EBADARG;
    /* In place with every vertex in the tree, the sizes are the start. */
    if (retained != self_size || t->r < n)
        for (size_t v = 0; v < n; v++)
            retained[v] = t->idom[v] != PL_GRAPH_NONE ? self_size[v] : 0;
    /* The vertices left out of the search first (they dominate nothing),
     * then the others backwards in preorder: every vertex is final before
     * it is added to its immediate dominator. Consecutive vertices with the
     * same dominator are summed in a register and added to it once, when
     * the run ends (a list holding a million objects is one run of a
     * million). */
    uint64_t total = 0, sum = 0;
    uint32_t run = PL_GRAPH_NONE;
#define ADD(v)                                                                                     \
    do {                                                                                           \
        uint32_t p_ = t->idom[v];                                                                  \
        if (p_ != run) {                                                                           \
            if (run == PL_DOM_ROOT)                                                                \
                total += sum;                                                                      \
            else if (run != PL_GRAPH_NONE)                                                         \
                retained[run] += sum;                                                              \
            run = p_;                                                                              \
            sum = 0;                                                                               \
        }                                                                                          \
        sum += retained[v];                                                                        \
    } while (0)
    for (size_t w = 0; w <= n >> 6; w++)
        for (uint64_t bits = t->sink[w]; bits; bits &= bits - 1)
            ADD(w * 64 + (size_t)__builtin_ctzll(bits));
    for (size_t q = t->nordered; q-- > 0;)
        ADD(t->order[q]);
#undef ADD
    if (run == PL_DOM_ROOT)
        total += sum;
    else if (run != PL_GRAPH_NONE)
        retained[run] += sum;
    if (root_total)
        *root_total = total;
    return 0;
}

void pl_dom_release_index(pl_domtree *t)
{
    free(atomic_exchange_explicit(&t->lca, NULL, memory_order_acq_rel));
}

size_t pl_dom_memory(const pl_domtree *t)
{
    size_t bytes = sizeof(*t) + t->n * sizeof(uint32_t) + (t->nordered + 1) * sizeof(uint32_t) +
                   (t->n / 64 + 1) * sizeof(uint64_t);
    if (atomic_load_explicit(&((pl_domtree *)t)->layout, memory_order_acquire))
        bytes += (t->r + 1) * sizeof(uint32_t) + (t->n + 1) * sizeof(uint32_t) +
                 (t->r / 64 + 1) * sizeof(uint64_t);
    const lca_index *x = atomic_load_explicit(&((pl_domtree *)t)->lca, memory_order_acquire);
    if (x)
        bytes += (t->n + 1) * sizeof(*x);
    return bytes;
}
