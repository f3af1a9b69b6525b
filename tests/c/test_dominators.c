/* Tests of the dominator tree: known shapes, every query against a
 * brute-force oracle (d dominates w iff removing d makes w unreachable from
 * the virtual root) on random graphs, a chain and a cycle of 10M vertices, a
 * wide star, larger random graphs against the iterative algorithm of Cooper,
 * Harvey and Kennedy, a shape that makes the textbook semi-NCA quadratic, threads
 * racing on the lazy LCA index, and the error cases. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pyloot/dominators.h"
#include "pyloot/graph.h"
#include "test.h"

/* A finished graph with in-edges; vertex k has key (k+1)*16. Edges must
 * come in non-decreasing tail order. */
static pl_graph *make(size_t n, const uint32_t (*edges)[2], size_t m)
{
    pl_graph *g = NULL;
    CHECK_OK(pl_graph_new(n, &g));
    uint64_t *keys = malloc((n ? n : 1) * sizeof(uint64_t));
    for (size_t i = 0; i < n; i++)
        keys[i] = (i + 1) * 16;
    CHECK_OK(pl_graph_add_vertices(g, keys, n, NULL));
    free(keys);
    for (size_t e = 0; e < m; e++)
        CHECK_OK(pl_graph_add_edge(g, edges[e][0], edges[e][1]));
    CHECK_OK(pl_graph_finish(g));
    CHECK_OK(pl_graph_ensure_reverse(g));
    return g;
}

static pl_domtree *build(const pl_graph *g, const uint32_t *roots, size_t nroots)
{
    pl_domtree *t = NULL;
    CHECK_OK(pl_dom_build(g, roots, nroots, &t));
    return t;
}

/* LCA by walking up with pl_dom_idom only. */
static uint32_t naive_lca(const pl_domtree *t, uint32_t a, uint32_t b)
{
    uint32_t da = 0, db = 0;
    for (uint32_t x = a; x != PL_DOM_ROOT; x = pl_dom_idom(t, x))
        da++;
    for (uint32_t x = b; x != PL_DOM_ROOT; x = pl_dom_idom(t, x))
        db++;
    for (; da > db; da--)
        a = pl_dom_idom(t, a);
    for (; db > da; db--)
        b = pl_dom_idom(t, b);
    while (a != b) {
        a = pl_dom_idom(t, a);
        b = pl_dom_idom(t, b);
    }
    return a;
}

static void test_shapes(void)
{
    /* Chain a -> b -> c. */
    static const uint32_t chain[][2] = {{0, 1}, {1, 2}};
    uint32_t root = 0;
    pl_graph *g = make(3, chain, 2);
    pl_domtree *t = build(g, &root, 1);
    CHECK_EQ_INT(pl_dom_idom(t, 2), 1);
    CHECK_EQ_INT(pl_dom_idom(t, 1), 0);
    CHECK_EQ_INT(pl_dom_idom(t, 0), PL_DOM_ROOT);
    CHECK_EQ_INT(pl_dom_depth(t, 2), 3);
    CHECK_EQ_INT(pl_dom_depth(t, PL_DOM_ROOT), 0);
    CHECK_EQ_INT(pl_dom_lca(t, 2, 1), 1);
    CHECK_EQ_INT(pl_dom_lca(t, PL_DOM_ROOT, 2), PL_DOM_ROOT);
    CHECK_EQ_INT(pl_dom_idom(t, PL_DOM_ROOT), PL_GRAPH_NONE);
    CHECK_EQ_INT(pl_dom_idom(t, 3), PL_GRAPH_NONE); /* not a vertex */
    CHECK_EQ_INT(pl_dom_lca(t, 3, 0), PL_GRAPH_NONE);
    pl_dom_free(t);
    pl_graph_free(g);

    /* Diamond 0 -> {1, 2} -> 3: the join is dominated by the fork. */
    static const uint32_t diamond[][2] = {{0, 1}, {0, 2}, {1, 3}, {2, 3}};
    g = make(4, diamond, 4);
    t = build(g, &root, 1);
    CHECK_EQ_INT(pl_dom_idom(t, 3), 0);
    size_t k;
    const uint32_t *kids = pl_dom_children(t, 0, &k);
    CHECK_EQ_INT(k, 3);
    CHECK(kids && kids[0] == 1 && kids[1] == 2 && kids[2] == 3);
    pl_dom_children(t, 1, &k);
    CHECK_EQ_INT(k, 0);
    pl_dom_free(t);
    pl_graph_free(g);

    /* Two roots sharing a child: only the virtual root dominates it. */
    static const uint32_t shared[][2] = {{0, 2}, {1, 2}};
    uint32_t roots2[] = {1, 0, 1};
    g = make(3, shared, 2);
    t = build(g, roots2, 3);
    CHECK_EQ_INT(pl_dom_idom(t, 2), PL_DOM_ROOT);
    kids = pl_dom_children(t, PL_DOM_ROOT, &k);
    CHECK_EQ_INT(k, 3);
    CHECK(kids && kids[0] == 0 && kids[1] == 1 && kids[2] == 2);
    pl_dom_free(t);
    pl_graph_free(g);

    /* A module 0 holds lists 1 and 2, both holding object 3 (which holds 4):
     * neither list retains it, the module does. */
    static const uint32_t lists[][2] = {{0, 1}, {0, 2}, {1, 3}, {2, 3}, {3, 4}};
    g = make(5, lists, 5);
    t = build(g, &root, 1);
    CHECK_EQ_INT(pl_dom_idom(t, 3), 0);
    CHECK_EQ_INT(pl_dom_idom(t, 4), 3);
    CHECK_EQ_INT(pl_dom_lca(t, 1, 2), 0);
    CHECK_EQ_INT(pl_dom_lca(t, 4, 1), 0);
    uint64_t self[5] = {1, 10, 100, 1000, 10000}, ret[5], total;
    CHECK_OK(pl_dom_retained(t, self, ret, &total));
    CHECK_EQ_INT(ret[1], 10);
    CHECK_EQ_INT(ret[2], 100);
    CHECK_EQ_INT(ret[3], 11000);
    CHECK_EQ_INT(ret[0], 11111);
    CHECK_EQ_INT(total, 11111);
    CHECK_OK(pl_dom_retained(t, self, self, &total)); /* in place */
    CHECK(self[0] == 11111 && self[1] == 10 && self[3] == 11000 && self[4] == 10000);
    CHECK_EQ_INT(total, 11111);
    size_t nb;
    const uint32_t *order = pl_dom_bfs(t, &nb);
    CHECK_EQ_INT(nb, 5);
    CHECK(order[0] == 0 && order[4] == 4);
    pl_dom_free(t);
    pl_graph_free(g);
}

/* ---- brute force on random graphs ---- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

#define MAXN 60

/* Vertices reachable from the roots without passing through `skip`
 * (MAXN: skip nothing), as a bit set. */
static uint64_t reach_without(size_t n, const uint64_t *succ, const uint32_t *roots, size_t nroots,
                              size_t skip)
{
    uint64_t seen = 0, frontier = 0;
    for (size_t i = 0; i < nroots; i++)
        if (roots[i] != skip)
            frontier |= (uint64_t)1 << roots[i];
    while (frontier) {
        seen |= frontier;
        uint64_t next = 0;
        for (size_t v = 0; v < n; v++)
            if (frontier >> v & 1)
                next |= succ[v];
        if (skip < MAXN)
            next &= ~((uint64_t)1 << skip);
        frontier = next & ~seen;
    }
    return seen;
}

static int popcount(uint64_t x)
{
    return __builtin_popcountll(x);
}

/* What the random graphs covered: the test checks every case came up. */
enum { HAS_UNREACHABLE, HAS_DUP_ROOT, HAS_ROOT_REACHED, HAS_SELF_LOOP, HAS_MULTI_EDGE,
       HAS_SHARED_CHILD, NCASES };
static int covered[NCASES];

static void check_random_graph(size_t n, const uint32_t (*edges)[2], size_t m,
                               const uint32_t *roots, size_t nroots, int *failed)
{
    int before = test_failures;
    uint64_t succ[MAXN] = {0};
    for (size_t e = 0; e < m; e++)
        succ[edges[e][0]] |= (uint64_t)1 << edges[e][1];
    uint64_t reach = reach_without(n, succ, roots, nroots, MAXN);
    int dup_root = 0, root_reached = 0, self_loop = 0, multi_edge = 0;
    for (size_t i = 0; i < nroots; i++)
        for (size_t j = 0; j < nroots; j++) {
            dup_root |= i != j && roots[i] == roots[j];
            /* roots[j] is reachable from roots[i] through an edge. */
            root_reached |= roots[i] != roots[j] &&
                            (reach_without(n, succ, &roots[i], 1, MAXN) >> roots[j] & 1);
        }
    for (size_t e = 0; e < m; e++) {
        self_loop |= edges[e][0] == edges[e][1];
        multi_edge |= e && edges[e][0] == edges[e - 1][0] && edges[e][1] == edges[e - 1][1];
    }
    covered[HAS_UNREACHABLE] += popcount(reach) < (int)n;
    covered[HAS_DUP_ROOT] += dup_root;
    covered[HAS_ROOT_REACHED] += root_reached;
    covered[HAS_SELF_LOOP] += self_loop;
    covered[HAS_MULTI_EDGE] += multi_edge;
    /* dom[w]: the vertices other than w that dominate w. */
    uint64_t dom[MAXN] = {0};
    for (size_t d = 0; d < n; d++) {
        uint64_t cut = reach & ~reach_without(n, succ, roots, nroots, d);
        for (size_t w = 0; w < n; w++)
            if (w != d && (cut >> w & 1))
                dom[w] |= (uint64_t)1 << d;
    }
    uint32_t want_idom[MAXN];
    for (size_t w = 0; w < n; w++) {
        want_idom[w] = PL_GRAPH_NONE;
        if (!(reach >> w & 1))
            continue;
        want_idom[w] = PL_DOM_ROOT;
        for (size_t d = 0; d < n; d++)
            if ((dom[w] >> d & 1) && popcount(dom[d]) == popcount(dom[w]) - 1)
                want_idom[w] = (uint32_t)d;
    }
    /* A vertex with two reachable parents neither of which dominates it. */
    int shared = 0;
    for (size_t w = 0; w < n; w++) {
        int parents = 0;
        for (size_t u = 0; u < n; u++)
            parents += (reach >> u & 1) && (succ[u] >> w & 1) && u != w && !(dom[w] >> u & 1);
        shared |= parents >= 2;
    }
    covered[HAS_SHARED_CHILD] += shared;

    pl_graph *g = make(n, edges, m);
    pl_domtree *t = build(g, roots, nroots);
    if (!t) {
        pl_graph_free(g);
        *failed = 1;
        return;
    }
    CHECK_EQ_INT(pl_dom_order(t), n);
    CHECK_EQ_INT(pl_dom_reachable(t), popcount(reach));
    for (size_t w = 0; w < n; w++) {
        CHECK_EQ_INT(pl_dom_idom(t, (uint32_t)w), want_idom[w]);
        CHECK_EQ_INT(pl_dom_depth(t, (uint32_t)w), (reach >> w & 1) ? popcount(dom[w]) + 1 : 0);
    }
    /* Children in vertex order, for every vertex and the virtual root. */
    for (size_t p = 0; p <= n; p++) {
        uint32_t pv = p == n ? PL_DOM_ROOT : (uint32_t)p;
        size_t k;
        const uint32_t *kids = pl_dom_children(t, pv, &k);
        size_t j = 0;
        for (size_t w = 0; w < n; w++)
            if (want_idom[w] == pv) {
                CHECK(j < k && kids[j] == w);
                j++;
            }
        CHECK_EQ_INT(k, j);
    }
    /* Breadth-first order: each reachable vertex once, after its parent. */
    size_t nb;
    const uint32_t *bfs = pl_dom_bfs(t, &nb);
    CHECK_EQ_INT(nb, popcount(reach));
    uint64_t placed = 0;
    for (size_t q = 0; q < nb; q++) {
        uint32_t p = want_idom[bfs[q]];
        CHECK(p == PL_DOM_ROOT || (placed >> p & 1));
        CHECK(!(placed >> bfs[q] & 1));
        placed |= (uint64_t)1 << bfs[q];
    }
    CHECK(placed == reach);
    /* LCAs: the deepest common dominator (a vertex dominates itself). */
    for (size_t a = 0; a <= n; a++)
        for (size_t b = 0; b <= n; b++) {
            uint32_t va = a == n ? PL_DOM_ROOT : (uint32_t)a;
            uint32_t vb = b == n ? PL_DOM_ROOT : (uint32_t)b;
            uint32_t want;
            if ((a < n && !(reach >> a & 1)) || (b < n && !(reach >> b & 1))) {
                want = PL_GRAPH_NONE;
            } else if (a == n || b == n) {
                want = PL_DOM_ROOT;
            } else {
                uint64_t common = (dom[a] | (uint64_t)1 << a) & (dom[b] | (uint64_t)1 << b);
                want = PL_DOM_ROOT;
                int best = -1;
                for (size_t d = 0; d < n; d++)
                    if ((common >> d & 1) && popcount(dom[d]) > best) {
                        best = popcount(dom[d]);
                        want = (uint32_t)d;
                    }
            }
            CHECK_EQ_INT(pl_dom_lca(t, va, vb), want);
        }
    /* Subtrees: v and what it dominates, v first, each vertex once. */
    for (size_t v = 0; v <= n; v++) {
        uint32_t vv = v == n ? PL_DOM_ROOT : (uint32_t)v;
        uint32_t *sub;
        size_t ns;
        CHECK_OK(pl_dom_subtree(t, vv, &sub, &ns));
        uint64_t want = 0, got = 0;
        if (v == n)
            want = reach;
        else if (reach >> v & 1)
            for (size_t w = 0; w < n; w++)
                if ((reach >> w & 1) && (w == v || (dom[w] >> v & 1)))
                    want |= (uint64_t)1 << w;
        for (size_t i = 0; i < ns; i++)
            got |= (uint64_t)1 << sub[i];
        CHECK(got == want);
        CHECK_EQ_INT(ns, popcount(want));
        CHECK(v == n || !ns || sub[0] == v);
        free(sub);
    }
    /* Retained sizes: the sum over each subtree. */
    uint64_t self[MAXN], ret[MAXN], total = 0, want_total = 0;
    for (size_t v = 0; v < n; v++) {
        self[v] = 1 + rnd() % 1000;
        if (reach >> v & 1)
            want_total += self[v];
    }
    CHECK_OK(pl_dom_retained(t, self, ret, &total));
    CHECK_EQ_INT(total, want_total);
    for (size_t v = 0; v < n; v++) {
        uint64_t want = 0;
        for (size_t w = 0; w < n; w++)
            if ((reach >> w & 1) && (w == v || (dom[w] >> v & 1)))
                want += self[w];
        CHECK_EQ_INT(ret[v], want);
    }
    CHECK(pl_dom_memory(t) > 0);
    pl_dom_free(t);
    pl_graph_free(g);
    if (test_failures != before)
        *failed = 1;
}

static void test_random_against_oracle(void)
{
    static const unsigned density_x4[] = {1, 2, 4, 6, 10, 16, 40};
    uint32_t (*edges)[2] = malloc(MAXN * 200 * sizeof(*edges));
    rng_state = 0x9E3779B97F4A7C15ULL;
    int shown = 0;
    for (int trial = 0; trial < 400; trial++) {
        size_t n = 1 + rnd() % MAXN;
        unsigned d4 = density_x4[rnd() % (sizeof(density_x4) / sizeof(density_x4[0]))];
        size_t m = 0;
        for (size_t v = 0; v < n; v++) {
            size_t deg = rnd() % (d4 / 2 + 1) + (rnd() % 4 < d4 % 4);
            for (size_t j = 0; j < deg; j++) {
                uint32_t w = (uint32_t)(rnd() % n);
                if (rnd() % 8 == 0)
                    w = (uint32_t)v; /* self-loop */
                edges[m][0] = (uint32_t)v;
                edges[m][1] = w;
                m++;
                if (rnd() % 8 == 0) { /* multi-edge */
                    edges[m][0] = (uint32_t)v;
                    edges[m][1] = w;
                    m++;
                }
            }
        }
        /* 0..4 roots with repeats; some graphs leave parts unreachable, in
         * others a root is reachable from another one. */
        uint32_t roots[8];
        size_t nroots = rnd() % 5;
        for (size_t i = 0; i < nroots; i++)
            roots[i] = (uint32_t)(rnd() % n);
        if (nroots && rnd() % 4 == 0)
            roots[nroots++] = roots[0];
        int failed = 0;
        check_random_graph(n, (const uint32_t(*)[2])edges, m, roots, nroots, &failed);
        if (failed && shown++ < 3)
            fprintf(stderr, "  (trial %d: n=%zu m=%zu roots=%zu)\n", trial, n, m, nroots);
    }
    free(edges);
    for (int c = 0; c < NCASES; c++) {
        if (covered[c] < 20)
            fprintf(stderr, "  case %d came up in %d graphs only\n", c, covered[c]);
        CHECK(covered[c] >= 20);
    }
}

/* ---- larger random graphs against the iterative algorithm ---- */

/* Immediate dominators by Cooper, Harvey and Kennedy's iteration over the
 * reverse postorder of a search from the virtual root (vertex n), straight
 * from the edge list: idom[v] is a vertex, n for the virtual root, or
 * UINT32_MAX when v is unreachable. rpo receives the reachable vertices in
 * reverse postorder (the virtual root first); returns their count. */
static size_t chk_idom(size_t n, const uint32_t (*edges)[2], size_t m, const uint32_t *roots,
                       size_t nroots, uint32_t *idom, uint32_t *rpo)
{
    size_t *off = calloc(n + 2, sizeof(size_t)), *ioff = calloc(n + 2, sizeof(size_t));
    uint32_t *succ = malloc((m + nroots + 1) * sizeof(uint32_t));
    uint32_t *pred = malloc((m + nroots + 1) * sizeof(uint32_t));
    uint32_t *order = malloc((n + 1) * sizeof(uint32_t)), *stack = malloc((n + 1) * sizeof(uint32_t));
    size_t *pos = calloc(n + 1, sizeof(size_t)), *fill = malloc((n + 2) * sizeof(size_t));
    uint8_t *seen = calloc(n + 1, 1);
    /* Out- and in-lists over n+1 vertices, the virtual root's edges last. */
    for (size_t e = 0; e < m; e++) {
        off[edges[e][0] + 1]++;
        ioff[edges[e][1] + 1]++;
    }
    off[n + 1] = nroots;
    for (size_t i = 0; i < nroots; i++)
        ioff[roots[i] + 1]++;
    for (size_t v = 0; v <= n; v++) {
        off[v + 1] += off[v];
        ioff[v + 1] += ioff[v];
    }
    memcpy(fill, off, (n + 2) * sizeof(size_t));
    for (size_t e = 0; e < m; e++)
        succ[fill[edges[e][0]]++] = edges[e][1];
    for (size_t i = 0; i < nroots; i++)
        succ[fill[n]++] = roots[i];
    memcpy(fill, ioff, (n + 2) * sizeof(size_t));
    for (size_t e = 0; e < m; e++)
        pred[fill[edges[e][1]]++] = edges[e][0];
    for (size_t i = 0; i < nroots; i++)
        pred[fill[roots[i]]++] = (uint32_t)n;
    /* Postorder by an explicit stack (pos: the next out-edge to try). */
    size_t done = 0, depth = 0;
    stack[depth++] = (uint32_t)n;
    seen[n] = 1;
    while (depth) {
        uint32_t v = stack[depth - 1];
        if (off[v] + pos[v] < off[v + 1]) {
            uint32_t w = succ[off[v] + pos[v]++];
            if (!seen[w]) {
                seen[w] = 1;
                stack[depth++] = w;
            }
        } else {
            order[done++] = v;
            depth--;
        }
    }
    for (size_t i = 0; i < done; i++)
        rpo[i] = order[done - 1 - i];
    for (size_t i = 0; i < done; i++)
        pos[rpo[i]] = i; /* reverse-postorder number */
    for (size_t v = 0; v <= n; v++)
        idom[v] = UINT32_MAX;
    idom[n] = (uint32_t)n;
    for (int changed = 1; changed;) {
        changed = 0;
        for (size_t i = 1; i < done; i++) {
            uint32_t v = rpo[i], best = UINT32_MAX;
            for (size_t k = ioff[v]; k < ioff[v + 1]; k++) {
                uint32_t p = pred[k];
                if (!seen[p] || idom[p] == UINT32_MAX)
                    continue;
                if (best == UINT32_MAX) {
                    best = p;
                    continue;
                }
                uint32_t a = p, b = best; /* intersect */
                while (a != b) {
                    while (pos[a] > pos[b])
                        a = idom[a];
                    while (pos[b] > pos[a])
                        b = idom[b];
                }
                best = a;
            }
            if (idom[v] != best) {
                idom[v] = best;
                changed = 1;
            }
        }
    }
    free(off);
    free(ioff);
    free(succ);
    free(pred);
    free(order);
    free(stack);
    free(pos);
    free(fill);
    free(seen);
    return done;
}

/* Tree, reachable count and every retained size against chk_idom. */
static void check_against_chk(size_t n, const uint32_t (*edges)[2], size_t m,
                              const uint32_t *roots, size_t nroots, int *failed)
{
    pl_graph *g = make(n, edges, m);
    pl_domtree *t = build(g, roots, nroots);
    uint32_t *idom = malloc((n + 1) * sizeof(uint32_t)), *rpo = malloc((n + 1) * sizeof(uint32_t));
    size_t reached = chk_idom(n, edges, m, roots, nroots, idom, rpo) - 1;
    int bad = pl_dom_reachable(t) != reached;
    for (size_t v = 0; v < n && !bad; v++) {
        uint32_t want = idom[v] == UINT32_MAX ? PL_GRAPH_NONE
                        : idom[v] == n        ? PL_DOM_ROOT
                                              : idom[v];
        if (pl_dom_idom(t, (uint32_t)v) != want) {
            fprintf(stderr, "  vertex %zu: idom %u, want %u\n", v, pl_dom_idom(t, (uint32_t)v),
                    want);
            bad = 1;
        }
    }
    /* Retained sizes: self sizes summed up the reference tree in reverse
     * reverse postorder (a dominator comes before what it dominates). */
    uint64_t *self = malloc((n + 1) * sizeof(uint64_t)), *want = calloc(n + 1, sizeof(uint64_t));
    uint64_t *got = malloc((n + 1) * sizeof(uint64_t)), total = 0;
    for (size_t v = 0; v < n; v++)
        self[v] = 1 + rnd() % 1000;
    for (size_t i = reached + 1; i-- > 1;) {
        uint32_t v = rpo[i];
        want[v] += self[v];
        want[idom[v]] += want[v];
    }
    CHECK_OK(pl_dom_retained(t, self, got, &total));
    bad |= total != want[n];
    for (size_t v = 0; v < n && !bad; v++)
        bad |= got[v] != want[v];
    /* LCAs by walking up: the same answers as the index when the budget
     * lasts, and a refusal with the budget spent when it does not. */
    for (int q = 0; q < 50 && !bad; q++) {
        uint32_t a = (uint32_t)(rnd() % n), b = (uint32_t)(rnd() % n), lca = 0;
        if (q % 10 == 0)
            a = PL_DOM_ROOT;
        size_t budget = 2 * n + 2;
        bad |= !pl_dom_lca_walk(t, a, b, &budget, &lca) || lca != pl_dom_lca(t, a, b);
        size_t depth = pl_dom_depth(t, b), small = depth;
        if (depth > 1 && pl_dom_idom(t, a) != PL_GRAPH_NONE && a != PL_DOM_ROOT) {
            /* b's depth walk alone needs depth steps. */
            bad |= pl_dom_lca_walk(t, a, b, &small, &lca) || small != 0;
        }
    }
    if (bad)
        *failed = 1;
    free(self);
    free(want);
    free(got);
    free(idom);
    free(rpo);
    pl_dom_free(t);
    pl_graph_free(g);
}

/* Graphs of up to a few thousand vertices, where the search paths are long
 * and the evals of the semidominator loop compress and are skipped: sparse
 * random graphs, random trees with edges back and across, and heap-like
 * shapes (a container holding a chain of objects that point at random ones,
 * as a list of linked instances, amid random noise and extra roots). */
static void test_random_against_iteration(void)
{
    rng_state = 0xD1B54A32D192ED03ULL;
    int failures = 0;
    for (int trial = 0; trial < 300; trial++) {
        size_t n = 2 + rnd() % (trial < 200 ? 300 : 4000);
        int shape = trial % 3;
        size_t cap = n * 8 + 16, m = 0;
        uint32_t (*edges)[2] = malloc(cap * sizeof(*edges));
        /* A random permutation: the shapes do not follow vertex order. */
        uint32_t *perm = malloc(n * sizeof(uint32_t));
        for (size_t i = 0; i < n; i++)
            perm[i] = (uint32_t)i;
        for (size_t i = n; i-- > 1;) {
            size_t j = rnd() % (i + 1);
            uint32_t x = perm[i];
            perm[i] = perm[j];
            perm[j] = x;
        }
        /* Edges by tail in vertex order, as the graph wants them. */
        for (size_t v = 0; v < n; v++) {
            size_t i = 0; /* v's place in the shape */
            while (perm[i] != v)
                i++;
            size_t deg = 0;
            uint32_t heads[8];
            if (shape == 0) { /* sparse random */
                deg = rnd() % 4;
                for (size_t j = 0; j < deg; j++)
                    heads[j] = (uint32_t)(rnd() % n);
            } else if (shape == 1) { /* random tree, parent of i below i */
                for (size_t c = 2 * i + 1; c <= 2 * i + 2 && c < n && deg < 2; c++)
                    if (rnd() % 5)
                        heads[deg++] = perm[c];
                if (rnd() % 2)
                    heads[deg++] = perm[rnd() % n]; /* back, forward or across */
            } else { /* perm[0] holds perm[1..n/2], a chain with random edges */
                if (i == 0) {
                    /* the container's edges are added below, in one run */
                } else if (i < n / 2) {
                    if (i + 1 < n / 2)
                        heads[deg++] = perm[i + 1];
                    heads[deg++] = perm[1 + rnd() % (n / 2)];
                } else if (rnd() % 3 == 0) {
                    heads[deg++] = perm[rnd() % n];
                }
            }
            if (shape == 2 && i == 0) {
                for (size_t c = 1; c < n / 2 && m < cap; c++) {
                    edges[m][0] = (uint32_t)v;
                    edges[m][1] = perm[c];
                    m++;
                }
            }
            for (size_t j = 0; j < deg && m < cap; j++) {
                edges[m][0] = (uint32_t)v;
                edges[m][1] = heads[j];
                m++;
            }
        }
        uint32_t roots[6];
        size_t nroots = 0;
        roots[nroots++] = perm[0];
        for (size_t extra = rnd() % 4; extra; extra--)
            roots[nroots++] = perm[rnd() % n];
        int failed = 0;
        check_against_chk(n, (const uint32_t(*)[2])edges, m, roots, nroots, &failed);
        if (failed && failures++ < 3)
            fprintf(stderr, "  (trial %d: shape %d, n=%zu m=%zu roots=%zu)\n", trial, shape, n,
                    m, nroots);
        CHECK(!failed);
        free(perm);
        free(edges);
    }
}

/* ---- large shapes: nothing recurses, nothing is quadratic ---- */

/* A cycle of 10M vertices entered in the middle: the search and the
 * dominator tree are both a chain 10M deep (nothing may recurse), and the
 * edge back into the root changes nothing. One graph serves both shapes:
 * building a 10M-vertex graph is most of this test's time under ASan. */
static void test_long_chain_and_cycle(void)
{
    const uint32_t n = 10 * 1000 * 1000, root = n / 2;
    uint32_t (*edges)[2] = malloc((size_t)n * sizeof(*edges));
    for (uint32_t i = 0; i < n; i++) {
        edges[i][0] = i;
        edges[i][1] = i + 1 < n ? i + 1 : 0;
    }
    pl_graph *g = make(n, (const uint32_t(*)[2])edges, n);
    free(edges);
    pl_domtree *t = build(g, &root, 1);
    if (!t) {
        pl_graph_free(g);
        return;
    }
    CHECK_EQ_INT(pl_dom_reachable(t), n);
    CHECK_EQ_INT(pl_dom_idom(t, root), PL_DOM_ROOT);
    CHECK_EQ_INT(pl_dom_idom(t, root + 1), root);
    CHECK_EQ_INT(pl_dom_idom(t, n - 1), n - 2);
    CHECK_EQ_INT(pl_dom_idom(t, 0), n - 1);
    CHECK_EQ_INT(pl_dom_idom(t, root - 1), root - 2);
    CHECK_EQ_INT(pl_dom_depth(t, n - 1), n / 2);
    CHECK_EQ_INT(pl_dom_depth(t, root - 1), n);
    CHECK_EQ_INT(pl_dom_lca(t, 3, n - 5), n - 5);
    CHECK_EQ_INT(pl_dom_lca(t, 3, root + 1), root + 1);
    CHECK_EQ_INT(pl_dom_lca(t, root - 1, root - 1), root - 1);
    CHECK_EQ_INT(pl_dom_lca(t, root - 1, 7), 7);
    size_t k;
    const uint32_t *kids = pl_dom_children(t, n - 1, &k);
    CHECK(k == 1 && kids[0] == 0);
    pl_dom_children(t, root - 1, &k);
    CHECK_EQ_INT(k, 0);
    uint64_t *self = malloc((size_t)n * sizeof(uint64_t));
    uint64_t *ret = malloc((size_t)n * sizeof(uint64_t));
    uint64_t total;
    for (uint32_t i = 0; i < n; i++)
        self[i] = 1;
    CHECK_OK(pl_dom_retained(t, self, ret, &total));
    CHECK_EQ_INT(total, n);
    CHECK_EQ_INT(ret[root], n);
    CHECK_EQ_INT(ret[n - 1], n / 2 + 1);
    CHECK_EQ_INT(ret[root - 1], 1);
    /* Tree with its children laid out and its depth/LCA index: 16 + 8
     * bytes per vertex, and a bit. */
    CHECK(pl_dom_memory(t) <= (size_t)n * 25);
    free(self);
    free(ret);
    pl_dom_free(t);
    pl_graph_free(g);
}

/* One root holding 1M vertices: one long run of children. */
static void test_wide_star(void)
{
    const uint32_t n = 1000 * 1000 + 1;
    uint32_t (*edges)[2] = malloc((size_t)n * sizeof(*edges));
    for (uint32_t i = 1; i < n; i++) {
        edges[i - 1][0] = 0;
        edges[i - 1][1] = n - i; /* added backwards: children still come sorted */
    }
    pl_graph *g = make(n, (const uint32_t(*)[2])edges, n - 1);
    uint32_t root = 0;
    pl_domtree *t = build(g, &root, 1);
    size_t k;
    const uint32_t *kids = pl_dom_children(t, 0, &k);
    CHECK_EQ_INT(k, n - 1);
    int sorted = 1;
    for (size_t i = 0; i < k; i++)
        sorted &= kids[i] == i + 1;
    CHECK(sorted);
    kids = pl_dom_children(t, PL_DOM_ROOT, &k);
    CHECK(k == 1 && kids[0] == 0);
    CHECK_EQ_INT(pl_dom_lca(t, 17, n - 1), 0);
    CHECK_EQ_INT(pl_dom_depth(t, n - 1), 2);
    uint32_t *sub;
    CHECK_OK(pl_dom_subtree(t, 0, &sub, &k));
    CHECK(k == n && sub[0] == 0 && sub[1] == 1 && sub[n - 1] == n - 1);
    free(sub);
    pl_dom_free(t);
    pl_graph_free(g);
    free(edges);
}

/* pl_dom_build_keep_work builds the same tree and hands over its work
 * array: 8 bytes per reachable vertex plus 8, writable to the end (ASan
 * checks), freed with free(). Vertex 5 is unreachable. */
static void test_keep_work(void)
{
    static const uint32_t edges[][2] = {{0, 1}, {0, 2}, {1, 3}, {2, 3}, {3, 4}, {4, 1}, {5, 4}};
    pl_graph *g = make(6, edges, sizeof edges / sizeof edges[0]);
    uint32_t root = 0;
    pl_domtree *plain = build(g, &root, 1), *t = NULL;
    void *work = (void *)1;
    size_t bytes = 1;
    CHECK_OK(pl_dom_build_keep_work(g, &root, 1, &t, &work, &bytes));
    CHECK_EQ_INT(pl_dom_reachable(t), 5);
    CHECK_EQ_INT(bytes, 6 * sizeof(uint64_t));
    CHECK(work != NULL);
    memset(work, 0xab, bytes);
    for (uint32_t v = 0; v < 6; v++)
        CHECK_EQ_INT(pl_dom_idom(t, v), pl_dom_idom(plain, v));
    CHECK_EQ_INT(pl_dom_idom(t, 3), 0);
    CHECK_EQ_INT(pl_dom_idom(t, 5), PL_GRAPH_NONE);
    free(work);
    pl_dom_free(t);
    pl_dom_free(plain);
    pl_graph_free(g);
}

/* A chain c0 -> c1 -> ... whose every link also holds a vertex x_i that is a
 * root too: the search reaches x_i deep down the chain, but only the virtual
 * root dominates it. The textbook semi-NCA walks the chain back up for each
 * x_i (k^2/2 steps); the jump pointers make it k log k. */
static void test_deep_search_shallow_dominators(void)
{
    const uint32_t k = 300 * 1000;
    uint32_t (*edges)[2] = malloc(2 * (size_t)k * sizeof(*edges));
    uint32_t *roots = malloc(((size_t)k + 1) * sizeof(uint32_t));
    size_t m = 0;
    for (uint32_t i = 0; i < k; i++) {
        if (i + 1 < k) {
            edges[m][0] = i;
            edges[m++][1] = i + 1;
        }
        edges[m][0] = i;
        edges[m++][1] = k + i;
    }
    roots[0] = 0;
    for (uint32_t i = 0; i < k; i++)
        roots[i + 1] = k + i;
    pl_graph *g = make(2 * (size_t)k, (const uint32_t(*)[2])edges, m);
    pl_domtree *t = build(g, roots, (size_t)k + 1);
    int ok = 1;
    for (uint32_t i = 0; i < k; i++)
        ok &= pl_dom_idom(t, k + i) == PL_DOM_ROOT && pl_dom_idom(t, i) == (i ? i - 1 : PL_DOM_ROOT);
    CHECK(ok);
    CHECK_EQ_INT(pl_dom_depth(t, k - 1), k);
    pl_dom_free(t);
    pl_graph_free(g);
    free(edges);
    free(roots);
}

/* ---- threads racing on the lazy depth/LCA index ---- */

typedef struct lca_job {
    const pl_domtree *t;
    const uint32_t *pairs; /* a, b, expected */
    size_t count;
    int mismatches;
} lca_job;

static void *lca_worker(void *arg)
{
    lca_job *job = arg;
    for (size_t i = 0; i < job->count; i++)
        if (pl_dom_lca(job->t, job->pairs[3 * i], job->pairs[3 * i + 1]) != job->pairs[3 * i + 2])
            job->mismatches++;
    return NULL;
}

static void test_concurrent_lca(void)
{
    /* A random recursive tree plus random forward cross edges. */
    const uint32_t n = 20000;
    const size_t npairs = 2000;
    uint32_t (*edges)[2] = malloc(3 * (size_t)n * sizeof(*edges));
    rng_state = 12345;
    size_t m = 0;
    for (uint32_t v = 0; v < n; v++)
        for (int j = 0; j < 3; j++) {
            uint32_t w = v + 1 + (uint32_t)(rnd() % (j == 0 ? 8 : 2000));
            if (w < n) {
                edges[m][0] = v;
                edges[m++][1] = w;
            }
        }
    pl_graph *g = make(n, (const uint32_t(*)[2])edges, m);
    uint32_t root = 0;
    pl_domtree *t = build(g, &root, 1);
    uint32_t *pairs = malloc(3 * npairs * sizeof(uint32_t));
    for (size_t i = 0; i < npairs; i++) {
        pairs[3 * i] = (uint32_t)(rnd() % n);
        pairs[3 * i + 1] = (uint32_t)(rnd() % n);
        pairs[3 * i + 2] = pl_dom_idom(t, pairs[3 * i]) == PL_GRAPH_NONE ||
                                   pl_dom_idom(t, pairs[3 * i + 1]) == PL_GRAPH_NONE
                               ? PL_GRAPH_NONE
                               : naive_lca(t, pairs[3 * i], pairs[3 * i + 1]);
    }
    size_t before = pl_dom_memory(t);
    lca_job jobs[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (lca_job){t, pairs, npairs, 0};
        CHECK_OK(pthread_create(&th[i], NULL, lca_worker, &jobs[i]));
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ_INT(jobs[i].mismatches, 0);
    }
    CHECK_EQ_INT(pl_dom_memory(t), before + 2 * ((size_t)n + 1) * sizeof(uint32_t));
    /* Released, then rebuilt by the next query. */
    pl_dom_release_index(t);
    CHECK_EQ_INT(pl_dom_memory(t), before);
    jobs[0].mismatches = 0;
    lca_worker(&jobs[0]);
    CHECK_EQ_INT(jobs[0].mismatches, 0);
    CHECK(pl_dom_memory(t) > before);
    pl_dom_free(t);
    pl_graph_free(g);
    free(pairs);
    free(edges);
}

static void test_errors(void)
{
    pl_graph *g;
    pl_domtree *t = (pl_domtree *)&t;
    uint32_t root = 0;
    /* Unfinished: no in-edges can exist yet. */
    CHECK_OK(pl_graph_new(4, &g));
    CHECK_OK(pl_graph_add_vertex(g, 16, NULL, NULL));
    CHECK_OK(pl_graph_add_vertex(g, 32, NULL, NULL));
    CHECK_OK(pl_graph_add_edge(g, 0, 1));
    CHECK_EQ_INT(pl_dom_build(g, &root, 1, &t), PL_EBADARG);
    CHECK(t == NULL);
    /* Finished without in-edges. */
    CHECK_OK(pl_graph_finish(g));
    CHECK_EQ_INT(pl_dom_build(g, &root, 1, &t), PL_EBADARG);
    CHECK_OK(pl_graph_ensure_reverse(g));
    root = 2;
    CHECK_EQ_INT(pl_dom_build(g, &root, 1, &t), PL_EBADARG);
    root = PL_DOM_ROOT;
    CHECK_EQ_INT(pl_dom_build(g, &root, 1, &t), PL_EBADARG);
    /* No roots: every vertex unreachable. */
    CHECK_OK(pl_dom_build(g, NULL, 0, &t));
    CHECK_EQ_INT(pl_dom_reachable(t), 0);
    CHECK_EQ_INT(pl_dom_idom(t, 0), PL_GRAPH_NONE);
    CHECK_EQ_INT(pl_dom_depth(t, 1), 0);
    CHECK_EQ_INT(pl_dom_lca(t, 0, 1), PL_GRAPH_NONE);
    size_t k = 99;
    CHECK(pl_dom_children(t, PL_DOM_ROOT, &k) == NULL && k == 0);
    uint64_t self[2] = {5, 6}, ret[2] = {7, 7}, total = 9;
    CHECK_OK(pl_dom_retained(t, self, ret, &total));
    CHECK(ret[0] == 0 && ret[1] == 0 && total == 0);
    CHECK_EQ_INT(pl_dom_retained(t, NULL, ret, &total), PL_EBADARG);
    pl_dom_free(t);
    pl_graph_free(g);
    pl_dom_free(NULL);

    /* n = 0. */
    g = make(0, NULL, 0);
    root = 0;
    CHECK_EQ_INT(pl_dom_build(g, &root, 1, &t), PL_EBADARG);
    CHECK_OK(pl_dom_build(g, NULL, 0, &t));
    CHECK_EQ_INT(pl_dom_order(t), 0);
    CHECK_EQ_INT(pl_dom_reachable(t), 0);
    CHECK(pl_dom_children(t, PL_DOM_ROOT, &k) == NULL && k == 0);
    CHECK_EQ_INT(pl_dom_lca(t, PL_DOM_ROOT, PL_DOM_ROOT), PL_DOM_ROOT);
    CHECK_OK(pl_dom_retained(t, NULL, NULL, &total));
    CHECK_EQ_INT(total, 0);
    pl_dom_free(t);
    pl_graph_free(g);
}

/* Leaves with one in-edge are left out of the search: each hangs from the
 * vertex holding it, or from the virtual root when it is a root as well,
 * even when the search reached it through its holder first. */
static void test_leaves_left_out_of_the_search(void)
{
    /* 0 -> {1, 2}, 2 -> 3, 4 -> 5 -> 6; roots 0, 1 (a leaf 0 reaches
     * first) and 4. */
    static const uint32_t edges[][2] = {{0, 1}, {0, 2}, {2, 3}, {4, 5}, {5, 6}};
    uint32_t roots[] = {0, 1, 4};
    pl_graph *g = make(7, edges, 5);
    pl_domtree *t = build(g, roots, 3);
    CHECK_EQ_INT(pl_dom_reachable(t), 7);
    CHECK_EQ_INT(pl_dom_idom(t, 1), PL_DOM_ROOT);
    CHECK_EQ_INT(pl_dom_idom(t, 3), 2);
    CHECK_EQ_INT(pl_dom_idom(t, 6), 5);
    CHECK_EQ_INT(pl_dom_depth(t, 3), 3);
    CHECK_EQ_INT(pl_dom_depth(t, 1), 1);
    CHECK_EQ_INT(pl_dom_lca(t, 3, 1), PL_DOM_ROOT);
    CHECK_EQ_INT(pl_dom_lca(t, 3, 2), 2);
    CHECK_EQ_INT(pl_dom_lca(t, 6, 4), 4);
    uint64_t self[7] = {1, 10, 100, 1000, 10000, 100000, 1000000}, ret[7], total;
    CHECK_OK(pl_dom_retained(t, self, ret, &total));
    CHECK_EQ_INT(ret[0], 1101);
    CHECK_EQ_INT(ret[1], 10);
    CHECK_EQ_INT(ret[2], 1100);
    CHECK_EQ_INT(ret[3], 1000);
    CHECK_EQ_INT(ret[4], 1110000);
    CHECK_EQ_INT(total, 1111111);
    size_t k;
    const uint32_t *kids = pl_dom_children(t, PL_DOM_ROOT, &k);
    CHECK_EQ_INT(k, 3);
    CHECK(kids && kids[0] == 0 && kids[1] == 1 && kids[2] == 4);
    kids = pl_dom_children(t, 0, &k);
    CHECK(k == 1 && kids && kids[0] == 2);
    size_t nb;
    const uint32_t *order = pl_dom_bfs(t, &nb);
    CHECK_EQ_INT(nb, 7);
    CHECK(order && order[0] == 0 && order[6] == 6);
    pl_dom_free(t);
    pl_graph_free(g);
}

int main(void)
{
    RUN(test_shapes);
    RUN(test_errors);
    RUN(test_random_against_oracle);
    RUN(test_random_against_iteration);
    RUN(test_concurrent_lca);
    RUN(test_wide_star);
    RUN(test_keep_work);
    RUN(test_deep_search_shallow_dominators);
    RUN(test_long_chain_and_cycle);
    RUN(test_leaves_left_out_of_the_search);
    return TEST_EXIT();
}
