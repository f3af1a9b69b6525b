/* Dominator tree benchmark (issue 13, DESIGN.md §5), not part of ctest.
 *
 * On a random graph shaped like a heap snapshot (1M vertices, 4M edges),
 * times
 * pl_dom_build, pl_dom_retained and 1M pl_dom_lca calls on random pairs of
 * reachable vertices (the first one builds the LCA index), against
 * pl_graph_scc on the same graph in the same run as the baseline, and prints
 * bytes per vertex. Times are CPU seconds of the (single) thread. Build
 * with CMAKE_BUILD_TYPE=Release.
 *
 * The shape: a core of 5% of the vertices (modules, classes, functions and
 * their dicts: a cycle plus random edges inside it), every other vertex in
 * a random recursive tree hanging from the core (its one owner), then the
 * edges a heap adds to that: 70% of the extra edges from anywhere to the
 * popular 1% (an instance to its class, shared constants), 20% inside the
 * core, 10% from anywhere to anywhere (sharing, back references). Edges to
 * the core close cycles, so most vertices end in one giant strongly
 * connected component, as in a real heap, while most keep one owner, so
 * the dominator tree has depth. 1% of the vertices are roots; vertex
 * numbers are shuffled so that nothing is accidentally cache-friendly.
 * Usage: bench_dominators [vertices] (default 1000000). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "pyloot/dominators.h"
#include "pyloot/error.h"
#include "pyloot/graph.h"

/* CPU time of this thread: excludes waiting for a CPU on a loaded machine,
 * so runs on a shared box stay comparable (the work is single-threaded). */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng = 0x2545F4914F6CDD1DULL;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_dominators: %s failed: %s\n", what, pl_strerror(rc));
    exit(1);
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
    if (n < 100)
        n = 100;
    size_t core = n / 20, popular = n / 100, target_m = 4 * n;
    /* Edges in logical numbering, then mapped through a random permutation. */
    uint32_t *perm = malloc(n * sizeof(uint32_t));
    uint32_t (*edges)[2] = malloc((target_m + n) * sizeof(*edges));
    uint32_t *count = calloc(n + 1, sizeof(uint32_t));
    uint32_t *heads = malloc((target_m + n) * sizeof(uint32_t));
    if (!perm || !edges || !count || !heads)
        die("malloc", 12);
    for (size_t i = 0; i < n; i++)
        perm[i] = (uint32_t)i;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = rnd() % (i + 1);
        uint32_t x = perm[i];
        perm[i] = perm[j];
        perm[j] = x;
    }
    size_t m = 0;
    for (size_t i = 0; i < core; i++) { /* a cycle through the core */
        edges[m][0] = (uint32_t)i;
        edges[m++][1] = (uint32_t)((i + 1) % core);
    }
    for (size_t i = core; i < n; i++) { /* trees: one owner among earlier vertices */
        edges[m][0] = (uint32_t)(rnd() % i);
        edges[m++][1] = (uint32_t)i;
    }
    while (m < target_m) {
        uint64_t kind = rnd() % 10;
        if (kind < 7) {
            edges[m][0] = (uint32_t)(rnd() % n);
            edges[m++][1] = (uint32_t)(rnd() % popular);
        } else if (kind < 9) {
            edges[m][0] = (uint32_t)(rnd() % core);
            edges[m++][1] = (uint32_t)(rnd() % core);
        } else {
            edges[m][0] = (uint32_t)(rnd() % n);
            edges[m++][1] = (uint32_t)(rnd() % n);
        }
    }
    /* Counting sort by (permuted) tail: the graph takes edges in tail order. */
    for (size_t e = 0; e < m; e++)
        count[perm[edges[e][0]] + 1]++;
    for (size_t v = 0; v < n; v++)
        count[v + 1] += count[v];
    for (size_t e = 0; e < m; e++)
        heads[count[perm[edges[e][0]]]++] = perm[edges[e][1]];
    free(edges);

    pl_graph *g;
    int rc;
    if ((rc = pl_graph_new(n, &g)))
        die("pl_graph_new", rc);
    for (size_t v = 0; v < n; v++)
        if ((rc = pl_graph_add_vertex(g, (v + 1) * 16, NULL, NULL)))
            die("pl_graph_add_vertex", rc);
    for (size_t v = 0, e = 0; v < n; v++)
        for (; e < count[v]; e++)
            if ((rc = pl_graph_add_edge(g, (uint32_t)v, heads[e])))
                die("pl_graph_add_edge", rc);
    free(heads);
    free(count);
    if ((rc = pl_graph_finish(g)))
        die("pl_graph_finish", rc);
    double t0 = now_s();
    if ((rc = pl_graph_ensure_reverse(g)))
        die("pl_graph_ensure_reverse", rc);
    double t_reverse = now_s() - t0;

    size_t nroots = n / 100;
    uint32_t *roots = malloc(nroots * sizeof(uint32_t));
    for (size_t i = 0; i < nroots; i++)
        roots[i] = perm[rnd() % n];
    roots[0] = perm[0]; /* the core is reachable */

    t0 = now_s();
    pl_graph_components c;
    if ((rc = pl_graph_scc(g, &c)))
        die("pl_graph_scc", rc);
    double t_scc = now_s() - t0;
    size_t biggest = 0;
    for (size_t i = 0; i < c.count; i++)
        if (c.start[i + 1] - c.start[i] > biggest)
            biggest = c.start[i + 1] - c.start[i];
    size_t ncomp = c.count;
    pl_graph_components_free(&c);

    t0 = now_s();
    pl_domtree *t;
    if ((rc = pl_dom_build(g, roots, nroots, &t)))
        die("pl_dom_build", rc);
    double t_build = now_s() - t0;
    size_t tree_bytes = pl_dom_memory(t);

    uint64_t *self = malloc(n * sizeof(uint64_t)), *retained = malloc(n * sizeof(uint64_t));
    for (size_t v = 0; v < n; v++)
        self[v] = 16 + rnd() % 200;
    uint64_t total;
    t0 = now_s();
    if ((rc = pl_dom_retained(t, self, retained, &total)))
        die("pl_dom_retained", rc);
    double t_retained = now_s() - t0;

    size_t r, queries = 1000000;
    const uint32_t *reach = pl_dom_bfs(t, &r);
    if (!reach && pl_dom_reachable(t))
        die("pl_dom_bfs", ENOMEM);
    size_t tree_layout_bytes = pl_dom_memory(t); /* children lists laid out */
    uint32_t *pairs = malloc(2 * queries * sizeof(uint32_t));
    for (size_t i = 0; i < 2 * queries; i++)
        pairs[i] = reach[rnd() % r];
    uint64_t checksum = 0;
    t0 = now_s();
    for (size_t i = 0; i < queries; i++)
        checksum += pl_dom_lca(t, pairs[2 * i], pairs[2 * i + 1]);
    double t_lca = now_s() - t0;
    size_t tree_lca_bytes = pl_dom_memory(t);
    uint32_t max_depth = 0;
    for (size_t q = 0; q < r; q++)
        if (pl_dom_depth(t, reach[q]) > max_depth)
            max_depth = pl_dom_depth(t, reach[q]);
    size_t top;
    pl_dom_children(t, PL_DOM_ROOT, &top);

    double dn = (double)n;
    double t_all = t_build + t_retained + t_lca;
    printf("graph: %zu vertices, %zu edges, %zu roots; %zu SCCs (largest %zu); "
           "%zu reachable, %zu top-level, max depth %u (checksum %llu)\n",
           n, pl_graph_size(g), nroots, ncomp, biggest, r, top, max_depth,
           (unsigned long long)checksum);
    printf("pl_graph_ensure_reverse     %8.3f s\n", t_reverse);
    printf("pl_graph_scc (baseline)     %8.3f s\n", t_scc);
    printf("pl_dom_build                %8.3f s   %.2fx scc\n", t_build, t_build / t_scc);
    printf("pl_dom_retained             %8.3f s\n", t_retained);
    printf("1M pl_dom_lca (+ index)     %8.3f s   %.0f ns/call\n", t_lca, t_lca * 1e9 / queries);
    printf("build + retained + 1M LCA   %8.3f s   %.2fx scc\n", t_all, t_all / t_scc);
    double gb = (double)pl_graph_memory(g) / dn, tb = (double)tree_bytes / dn;
    double lb = (double)(tree_layout_bytes - tree_bytes) / dn;
    double ib = (double)(tree_lca_bytes - tree_layout_bytes) / dn;
    printf("bytes/vertex: graph %.1f (in-edges included) + tree %.1f + retained 8.0 = %.1f; "
           "%.1f with the children lists (%.1f), %.1f while the LCA index (%.1f) exists too\n",
           gb, tb, gb + tb + 8.0, gb + tb + lb + 8.0, lb, gb + tb + lb + ib + 8.0, ib);
    free(pairs);
    free(self);
    free(retained);
    free(roots);
    free(perm);
    pl_dom_free(t);
    pl_graph_free(g);
    return 0;
}
