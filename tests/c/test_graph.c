/* Tests of the core graph: building, queries, every algorithm on small
 * graphs with known answers, SCCs against a brute-force reachability check on
 * random graphs, and a 10M-vertex chain (no recursion anywhere). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "pyloot/graph.h"
#include "test.h"

/* Keys are k+1 so that vertex k has key k+1 (key 0 is reserved). */
static pl_graph *make(size_t n, const uint32_t (*edges)[2], size_t m)
{
    pl_graph *g = NULL;
    CHECK_OK(pl_graph_new(n, &g));
    for (size_t i = 0; i < n; i++) {
        uint32_t v;
        int added;
        CHECK_OK(pl_graph_add_vertex(g, i + 1, &v, &added));
        CHECK_EQ_INT(v, i);
        CHECK(added);
    }
    for (size_t e = 0; e < m; e++)
        CHECK_OK(pl_graph_add_edge(g, edges[e][0], edges[e][1]));
    CHECK_OK(pl_graph_finish(g));
    CHECK(!pl_graph_has_reverse(g));
    CHECK_OK(pl_graph_ensure_reverse(g));
    return g;
}

static int same_set(const uint32_t *got, size_t n, const uint32_t *want, size_t k)
{
    if (n != k)
        return 0;
    for (size_t i = 0; i < k; i++) {
        int found = 0;
        for (size_t j = 0; j < n; j++)
            found |= got[j] == want[i];
        if (!found)
            return 0;
    }
    return 1;
}

static void test_build_and_query(void)
{
    /* 0 -> 1 twice (multi-edge), 1 -> 1 (self-loop), 2 -> 0, 3 isolated. */
    static const uint32_t edges[][2] = {{0, 1}, {0, 1}, {1, 1}, {2, 0}};
    pl_graph *g = make(4, edges, 4);
    CHECK_EQ_INT(pl_graph_order(g), 4);
    CHECK_EQ_INT(pl_graph_size(g), 4);
    size_t k;
    uint32_t first;
    const uint32_t *out = pl_graph_out(g, 0, &k, &first);
    CHECK_EQ_INT(k, 2);
    CHECK_EQ_INT(first, 0);
    CHECK(out[0] == 1 && out[1] == 1);
    out = pl_graph_out(g, 2, &k, &first);
    CHECK_EQ_INT(k, 1);
    CHECK_EQ_INT(first, 3);
    CHECK_EQ_INT(out[0], 0);
    pl_graph_out(g, 3, &k, NULL);
    CHECK_EQ_INT(k, 0);
    const uint32_t *in = pl_graph_in(g, 1, &k);
    CHECK_EQ_INT(k, 3);
    CHECK(in[0] == 0 && in[1] == 0 && in[2] == 1); /* ordered by edge number */
    pl_graph_in(g, 2, &k);
    CHECK_EQ_INT(k, 0);
    CHECK_EQ_INT(pl_graph_lookup(g, 3), 2);
    CHECK_EQ_INT(pl_graph_lookup(g, 99), PL_GRAPH_NONE);
    CHECK_EQ_INT(pl_graph_lookup(g, 0), PL_GRAPH_NONE);
    CHECK_EQ_INT(pl_graph_key(g, 3), 4);
    CHECK(pl_graph_memory(g) > 0);
    pl_graph_free(g);
    pl_graph_free(NULL);
}

static void test_build_errors(void)
{
    pl_graph *g;
    CHECK_OK(pl_graph_new(0, &g));
    int added;
    uint32_t v;
    CHECK_EQ_INT(pl_graph_add_vertex(g, 0, NULL, NULL), PL_EBADARG);
    CHECK_OK(pl_graph_add_vertex(g, 10, &v, &added));
    CHECK(added && v == 0);
    CHECK_OK(pl_graph_add_vertex(g, 10, &v, &added)); /* duplicate */
    CHECK(!added && v == 0);
    CHECK_OK(pl_graph_add_vertex(g, 20, &v, &added));
    CHECK_EQ_INT(pl_graph_add_edge(g, 0, 5), PL_EBADARG);
    CHECK_OK(pl_graph_add_edge(g, 1, 0));
    CHECK_EQ_INT(pl_graph_add_edge(g, 0, 1), PL_EBADARG); /* tails must not go back */
    CHECK_EQ_INT(pl_graph_add_vertex(g, 30, NULL, NULL), PL_EBADARG);
    CHECK_OK(pl_graph_finish(g));
    CHECK_OK(pl_graph_finish(g)); /* idempotent */
    CHECK_EQ_INT(pl_graph_add_edge(g, 1, 1), PL_EBADARG);
    size_t k;
    pl_graph_out(g, 0, &k, NULL);
    CHECK_EQ_INT(k, 0);
    pl_graph_free(g);

    /* Growth well past the hint: the index is rebuilt along the way. */
    CHECK_OK(pl_graph_new(1, &g));
    for (uint64_t key = 1; key <= 100000; key++)
        CHECK_OK(pl_graph_add_vertex(g, key * 16, NULL, NULL));
    CHECK_OK(pl_graph_finish(g));
    CHECK_EQ_INT(pl_graph_order(g), 100000);
    for (uint64_t key = 1; key <= 100000; key += 997)
        CHECK_EQ_INT(pl_graph_lookup(g, key * 16), key - 1);
    pl_graph_free(g);

    CHECK_OK(pl_graph_new(0, &g)); /* empty graph */
    CHECK_OK(pl_graph_finish(g));
    pl_graph_components c;
    CHECK_OK(pl_graph_scc(g, &c));
    CHECK_EQ_INT(c.count, 0);
    pl_graph_components_free(&c);
    pl_graph_free(g);
}

static void test_batches(void)
{
    /* Keys 16, 32, ..., 160 in one batch with a duplicate; edges by key with
     * unknown heads skipped. */
    pl_graph *g;
    CHECK_OK(pl_graph_new(0, &g));
    uint64_t keys[11];
    for (int i = 0; i < 10; i++)
        keys[i] = (uint64_t)(i + 1) * 16;
    keys[10] = 32;
    uint8_t added[11];
    CHECK_OK(pl_graph_add_vertices(g, keys, 11, added));
    CHECK_EQ_INT(pl_graph_order(g), 10);
    CHECK(added[0] && added[9] && !added[10]);
    uint64_t probe_keys[] = {16, 999, 160, 0};
    uint32_t found[4];
    pl_graph_lookup_many(g, probe_keys, 4, found);
    CHECK(found[0] == 0 && found[1] == PL_GRAPH_NONE && found[2] == 9 && found[3] == PL_GRAPH_NONE);
    uint32_t tails[] = {0, 0, 0, 3, 9};
    uint64_t heads[] = {32, 7, 32, 16, 160};
    CHECK_OK(pl_graph_add_edges_by_key(g, tails, heads, 5));
    uint32_t back[] = {2};
    uint64_t h2[] = {16};
    CHECK_EQ_INT(pl_graph_add_edges_by_key(g, back, h2, 1), PL_EBADARG); /* tail went back */
    CHECK_OK(pl_graph_finish(g));
    CHECK_EQ_INT(pl_graph_size(g), 4);
    size_t k;
    const uint32_t *out = pl_graph_out(g, 0, &k, NULL);
    CHECK(k == 2 && out[0] == 1 && out[1] == 1);
    out = pl_graph_out(g, 9, &k, NULL);
    CHECK(k == 1 && out[0] == 9);
    pl_graph_out(g, 5, &k, NULL);
    CHECK_EQ_INT(k, 0);
    pl_graph_free(g);
}

static void test_reach(void)
{
    /* Diamond a->b, a->c, b->d, c->d, plus d->e. */
    static const uint32_t edges[][2] = {{0, 1}, {0, 2}, {1, 3}, {2, 3}, {3, 4}};
    pl_graph *g = make(5, edges, 5);
    uint32_t *vs;
    size_t n;
    CHECK_OK(pl_graph_reach(g, 0, 0, -1, &vs, &n));
    CHECK_EQ_INT(n, 5);
    CHECK_EQ_INT(vs[0], 0); /* start first, breadth-first */
    CHECK_EQ_INT(vs[4], 4);
    free(vs);
    CHECK_OK(pl_graph_reach(g, 0, 0, 0, &vs, &n));
    CHECK(n == 1 && vs[0] == 0);
    free(vs);
    CHECK_OK(pl_graph_reach(g, 0, 0, 1, &vs, &n));
    static const uint32_t gen1[] = {0, 1, 2};
    CHECK(same_set(vs, n, gen1, 3));
    free(vs);
    CHECK_OK(pl_graph_reach(g, 0, 0, 2, &vs, &n));
    CHECK_EQ_INT(n, 4);
    free(vs);
    CHECK_OK(pl_graph_reach(g, 4, 1, -1, &vs, &n)); /* ancestors */
    CHECK_EQ_INT(n, 5);
    free(vs);
    CHECK_OK(pl_graph_reach(g, 3, 1, 1, &vs, &n));
    static const uint32_t anc1[] = {3, 1, 2};
    CHECK(same_set(vs, n, anc1, 3));
    free(vs);
    CHECK_OK(pl_graph_reach(g, 0, 1, -1, &vs, &n));
    CHECK(n == 1 && vs[0] == 0);
    free(vs);
    CHECK_EQ_INT(pl_graph_reach(g, 9, 0, -1, &vs, &n), PL_EBADARG);
    pl_graph_free(g);
}

static void test_paths_and_cycles(void)
{
    /* a->b->e->f, a->c->f, a->d; f->f self-loop; b->a closes a 2-cycle. */
    static const uint32_t edges[][2] = {{0, 1}, {0, 2}, {0, 3}, {1, 4}, {1, 0},
                                        {2, 5}, {4, 5}, {5, 5}};
    pl_graph *g = make(6, edges, 8);
    uint32_t *p;
    size_t n;
    CHECK_OK(pl_graph_shortest_path(g, 0, 5, &p, &n));
    CHECK_EQ_INT(n, 3);
    CHECK(p[0] == 5 && p[1] == 2 && p[2] == 0); /* from the end back */
    free(p);
    CHECK_OK(pl_graph_shortest_path(g, 3, 3, &p, &n));
    CHECK(n == 1 && p[0] == 3);
    free(p);
    CHECK_EQ_INT(pl_graph_shortest_path(g, 3, 0, &p, &n), PL_ENOTFOUND);
    CHECK(p == NULL && n == 0);
    CHECK_EQ_INT(pl_graph_shortest_path(g, 5, 0, &p, &n), PL_ENOTFOUND);

    CHECK_OK(pl_graph_shortest_cycle(g, 5, &p, &n)); /* self-loop */
    CHECK(n == 1 && p[0] == 5);
    free(p);
    CHECK_OK(pl_graph_shortest_cycle(g, 0, &p, &n));
    CHECK(n == 2 && p[0] == 0 && p[1] == 1);
    free(p);
    CHECK_EQ_INT(pl_graph_shortest_cycle(g, 3, &p, &n), PL_ENOTFOUND);
    CHECK_EQ_INT(pl_graph_shortest_cycle(g, 2, &p, &n), PL_ENOTFOUND);
    pl_graph_free(g);

    /* Cycle a->b->c->a and shortcut through d: b->d->a gives length 3 too;
     * b->e->d->a is longer. */
    static const uint32_t e2[][2] = {{0, 1}, {1, 2}, {1, 3}, {1, 4}, {2, 0}, {3, 0}, {4, 3}};
    g = make(5, e2, 7);
    CHECK_OK(pl_graph_shortest_cycle(g, 0, &p, &n));
    CHECK_EQ_INT(n, 3);
    CHECK(p[0] == 0 && (p[1] == 2 || p[1] == 3) && p[2] == 1);
    free(p);
    pl_graph_free(g);
}

static void test_scc_small(void)
{
    /* {0,1} -> {2,3}; 4 alone with a self-loop; 5 -> 0. */
    static const uint32_t edges[][2] = {{0, 1}, {1, 0}, {1, 3}, {2, 3}, {3, 2}, {4, 4}, {5, 0}};
    pl_graph *g = make(6, edges, 7);
    pl_graph_components c;
    CHECK_OK(pl_graph_scc(g, &c));
    CHECK_EQ_INT(c.count, 4);
    CHECK(c.component_of[0] == c.component_of[1]);
    CHECK(c.component_of[2] == c.component_of[3]);
    CHECK(c.component_of[0] != c.component_of[2]);
    CHECK(c.component_of[2] < c.component_of[0]); /* sinks first */
    CHECK(c.component_of[0] < c.component_of[5]);
    CHECK_EQ_INT(c.start[c.count], 6);
    uint32_t *src;
    size_t ns;
    CHECK_OK(pl_graph_source_components(g, &c, &src, &ns));
    CHECK_EQ_INT(ns, 2); /* {5} and {4} */
    int has4 = 0, has5 = 0;
    for (size_t i = 0; i < ns; i++) {
        has4 |= src[i] == c.component_of[4];
        has5 |= src[i] == c.component_of[5];
    }
    CHECK(has4 && has5);

    pl_graph *subs[2];
    uint32_t ids[2] = {c.component_of[0], c.component_of[4]};
    CHECK_OK(pl_graph_component_subgraphs(g, &c, ids, 2, subs));
    CHECK_EQ_INT(pl_graph_order(subs[0]), 2);
    CHECK_EQ_INT(pl_graph_size(subs[0]), 2); /* 0->1, 1->0; not 1->3 */
    CHECK_EQ_INT(pl_graph_order(subs[1]), 1);
    CHECK_EQ_INT(pl_graph_size(subs[1]), 1); /* the self-loop */
    CHECK_EQ_INT(pl_graph_key(subs[1], 0), 5);
    /* Algorithm results come without index and in-edges until asked. */
    CHECK(!pl_graph_has_index(subs[0]) && !pl_graph_has_reverse(subs[0]));
    CHECK_EQ_INT(pl_graph_lookup(subs[0], 1), PL_GRAPH_NONE);
    pl_graph_in(subs[0], 0, &ns);
    CHECK_EQ_INT(ns, 0);
    uint32_t *rv;
    CHECK_EQ_INT(pl_graph_reach(subs[0], 0, 1, -1, &rv, &ns), PL_EBADARG);
    CHECK_OK(pl_graph_ensure_index(subs[0]));
    CHECK_OK(pl_graph_ensure_reverse(subs[0]));
    CHECK(pl_graph_has_index(subs[0]) && pl_graph_has_reverse(subs[0]));
    CHECK_EQ_INT(pl_graph_lookup(subs[0], 2), 1);
    const uint32_t *tails = pl_graph_in(subs[0], 0, &ns);
    CHECK(ns == 1 && tails[0] == 1);
    CHECK_OK(pl_graph_reach(subs[0], 0, 1, -1, &rv, &ns));
    CHECK_EQ_INT(ns, 2);
    free(rv);
    pl_graph_free(subs[0]);
    pl_graph_free(subs[1]);
    free(src);
    pl_graph_components_free(&c);
    pl_graph_components_free(&c); /* safe twice */
    pl_graph_free(g);
}

/* Edge numbers back to their ends, and the in-edges of a vertex by number:
 * multi-edges, self-loops and vertices without out-edges before and after. */
static void test_edge_ends(void)
{
    /* 0 isolated; 1 -> 2 twice, 1 -> 1; 2 none; 3 -> 2, 3 -> 1; 4 none. */
    static const uint32_t edges[][2] = {{1, 2}, {1, 2}, {1, 1}, {3, 2}, {3, 1}};
    pl_graph *g = make(5, edges, 5);
    for (uint32_t e = 0; e < 5; e++) {
        CHECK_EQ_INT(pl_graph_edge_tail(g, e), edges[e][0]);
        CHECK_EQ_INT(pl_graph_edge_head(g, e), edges[e][1]);
    }
    CHECK_EQ_INT(pl_graph_edge_tail(g, 5), PL_GRAPH_NONE);
    CHECK_EQ_INT(pl_graph_edge_head(g, 5), PL_GRAPH_NONE);
    uint32_t *in;
    size_t n;
    CHECK_OK(pl_graph_in_edges(g, 2, &in, &n));
    CHECK(n == 3 && in[0] == 0 && in[1] == 1 && in[2] == 3);
    free(in);
    CHECK_OK(pl_graph_in_edges(g, 1, &in, &n));
    CHECK(n == 2 && in[0] == 2 && in[1] == 4);
    free(in);
    CHECK_OK(pl_graph_in_edges(g, 0, &in, &n));
    CHECK_EQ_INT(n, 0);
    free(in);
    CHECK_EQ_INT(pl_graph_in_edges(g, 5, &in, &n), PL_EBADARG);
    pl_graph_free(g);

    /* Without in-edges built: refused, not wrong. */
    pl_graph *h = NULL;
    CHECK_OK(pl_graph_new(2, &h));
    CHECK_OK(pl_graph_add_vertex(h, 1, NULL, NULL));
    CHECK_OK(pl_graph_add_vertex(h, 2, NULL, NULL));
    CHECK_OK(pl_graph_add_edge(h, 0, 1));
    CHECK_OK(pl_graph_finish(h));
    CHECK_EQ_INT(pl_graph_in_edges(h, 1, &in, &n), PL_EBADARG);
    CHECK_EQ_INT(pl_graph_edge_tail(h, 0), 0);
    pl_graph_free(h);
}

/* One component's subgraph alone, from the places, equals the batch one. */
static void test_component_one(void)
{
    static const uint32_t edges[][2] = {{0, 1}, {1, 0}, {1, 0}, {1, 3}, {2, 3},
                                        {3, 2}, {4, 4}, {5, 0}};
    pl_graph *g = make(6, edges, 8);
    pl_graph_components c;
    CHECK_OK(pl_graph_scc(g, &c));
    uint32_t *place;
    CHECK_OK(pl_graph_component_places(g, &c, &place));
    for (uint32_t id = 0; id < c.count; id++) {
        pl_graph *one, *batch;
        CHECK_OK(pl_graph_component_subgraph(g, &c, place, id, &one));
        CHECK_OK(pl_graph_component_subgraphs(g, &c, &id, 1, &batch));
        CHECK_EQ_INT(pl_graph_order(one), c.start[id + 1] - c.start[id]);
        CHECK_EQ_INT(pl_graph_order(one), pl_graph_order(batch));
        CHECK_EQ_INT(pl_graph_size(one), pl_graph_size(batch));
        for (uint32_t v = 0; v < pl_graph_order(one); v++)
            CHECK_EQ_INT(pl_graph_key(one, v), pl_graph_key(batch, v));
        for (uint32_t e = 0; e < pl_graph_size(one); e++)
            CHECK_EQ_INT(pl_graph_edge_head(one, e), pl_graph_edge_head(batch, e));
        pl_graph_free(one);
        pl_graph_free(batch);
    }
    pl_graph *sub;
    CHECK_OK(pl_graph_component_subgraph(g, &c, place, c.component_of[0], &sub));
    CHECK_EQ_INT(pl_graph_order(sub), 2);
    CHECK_EQ_INT(pl_graph_size(sub), 3); /* 0->1 and the multi-edge 1->0 twice */
    pl_graph_free(sub);
    CHECK_EQ_INT(pl_graph_component_subgraph(g, &c, place, (uint32_t)c.count, &sub), PL_EBADARG);
    CHECK(sub == NULL);
    free(place);
    pl_graph_components_free(&c);
    pl_graph_free(g);
}

static void test_subgraph_and_filters(void)
{
    static const uint32_t edges[][2] = {{0, 0}, {0, 2}, {1, 2}, {2, 3}, {2, 3}};
    pl_graph *g = make(4, edges, 5);
    pl_graph *s;
    uint32_t vs[] = {3, 2, 3, 0};
    CHECK_OK(pl_graph_subgraph(g, vs, 4, &s));
    CHECK_EQ_INT(pl_graph_order(s), 3); /* duplicate 3 dropped */
    CHECK_EQ_INT(pl_graph_key(s, 0), 4);
    CHECK_EQ_INT(pl_graph_size(s), 4); /* 2->3 twice, 0->0, 0->2 */
    size_t k;
    const uint32_t *out = pl_graph_out(s, 1, &k, NULL); /* vertex "2" */
    CHECK(k == 2 && out[0] == 0 && out[1] == 0);
    pl_graph_free(s);
    uint32_t bad[] = {7};
    CHECK_EQ_INT(pl_graph_subgraph(g, bad, 1, &s), PL_EBADARG);

    /* b has keys 2, 3, 4 (vertices 1, 2, 3 of g) plus 50. */
    pl_graph *b;
    CHECK_OK(pl_graph_new(0, &b));
    uint64_t keys[] = {2, 3, 4, 50};
    for (int i = 0; i < 4; i++)
        CHECK_OK(pl_graph_add_vertex(b, keys[i], NULL, NULL));
    CHECK_OK(pl_graph_finish(b));
    CHECK_OK(pl_graph_key_filter(g, b, 1, &s));
    CHECK_EQ_INT(pl_graph_order(s), 3);
    CHECK_EQ_INT(pl_graph_size(s), 3);
    pl_graph_free(s);
    CHECK_OK(pl_graph_key_filter(g, b, 0, &s));
    CHECK_EQ_INT(pl_graph_order(s), 1);
    CHECK_EQ_INT(pl_graph_size(s), 1); /* the self-loop on vertex 0 */
    pl_graph_free(s);
    pl_graph_free(b);
    pl_graph_free(g);
}

/* A graph adopted from sorted arrays: lookups (single, ascending batches,
 * unordered batches), algorithms, filters against hash-indexed graphs, and
 * the rules it checks. */
static void test_adopt_sorted(void)
{
    size_t n = 1000;
    uint64_t *keys = malloc(n * sizeof(uint64_t));
    uint32_t *off = malloc((n + 1) * sizeof(uint32_t));
    uint32_t *head = malloc(2 * n * sizeof(uint32_t));
    for (size_t v = 0; v < n; v++) {
        keys[v] = 16 * (v + 1) + (v / 3) * 4096; /* ascending, with gaps */
        off[v] = (uint32_t)(2 * v);
        head[2 * v] = (uint32_t)((v + 1) % n);
        head[2 * v + 1] = (uint32_t)v;
    }
    off[n] = (uint32_t)(2 * n);
    keys[5] = keys[4]; /* not strictly ascending: refused, arrays kept */
    pl_graph *g = NULL;
    CHECK_EQ_INT(pl_graph_adopt_sorted(keys, n, off, head, &g), PL_EBADARG);
    CHECK(g == NULL);
    keys[5] = 16 * 6 + 4096;
    CHECK_OK(pl_graph_adopt_sorted(keys, n, off, head, &g));
    CHECK(pl_graph_has_index(g));
    CHECK_OK(pl_graph_ensure_index(g));
    CHECK_EQ_INT(pl_graph_size(g), 2 * n);
    for (size_t v = 0; v < n; v++) {
        CHECK_EQ_INT(pl_graph_lookup(g, pl_graph_key(g, (uint32_t)v)), v);
        CHECK_EQ_INT(pl_graph_lookup(g, pl_graph_key(g, (uint32_t)v) + 8), PL_GRAPH_NONE);
    }
    CHECK_EQ_INT(pl_graph_lookup(g, 0), PL_GRAPH_NONE);
    CHECK_EQ_INT(pl_graph_lookup(g, 1), PL_GRAPH_NONE);
    CHECK_EQ_INT(pl_graph_lookup(g, UINT64_MAX), PL_GRAPH_NONE);
    /* Batches: ascending with misses, then out of order. */
    uint64_t q[] = {0, 16, 17, 32, 32, 5000, 16 * 1000 + 4096, UINT64_MAX, 48, 16, 0};
    uint32_t r[11];
    pl_graph_lookup_many(g, q, 11, r);
    for (int i = 0; i < 11; i++)
        CHECK_EQ_INT(r[i], pl_graph_lookup(g, q[i]));
    CHECK_EQ_INT(r[1], 0);
    CHECK_EQ_INT(r[9], 0);
    /* One big cycle plus self-loops: one component. */
    pl_graph_components c;
    CHECK_OK(pl_graph_scc(g, &c));
    CHECK_EQ_INT(c.count, 1);
    pl_graph_components_free(&c);
    CHECK_OK(pl_graph_ensure_reverse(g));
    size_t k;
    const uint32_t *in = pl_graph_in(g, 0, &k);
    CHECK(k == 2 && in[0] == 0 && in[1] == n - 1);
    /* Filters both ways between a sorted and a hash-indexed graph. */
    pl_graph *h, *s;
    CHECK_OK(pl_graph_new(0, &h));
    for (size_t v = 0; v < n; v += 2)
        CHECK_OK(pl_graph_add_vertex(h, pl_graph_key(g, (uint32_t)v), NULL, NULL));
    CHECK_OK(pl_graph_add_vertex(h, 8, NULL, NULL));
    CHECK_OK(pl_graph_finish(h));
    CHECK_OK(pl_graph_key_filter(g, h, 1, &s));
    CHECK_EQ_INT(pl_graph_order(s), n / 2);
    pl_graph_free(s);
    CHECK_OK(pl_graph_key_filter(h, g, 0, &s));
    CHECK_EQ_INT(pl_graph_order(s), 1); /* key 8 */
    pl_graph_free(s);
    CHECK_OK(pl_graph_key_filter(g, g, 1, &s));
    CHECK_EQ_INT(pl_graph_order(s), n);
    pl_graph_free(s);
    pl_graph_free(h);
    pl_graph_free(g);

    /* Heads out of range are refused too. */
    keys = malloc(sizeof(uint64_t));
    off = malloc(2 * sizeof(uint32_t));
    head = malloc(sizeof(uint32_t));
    keys[0] = 8;
    off[0] = 0;
    off[1] = 1;
    head[0] = 1;
    CHECK_EQ_INT(pl_graph_adopt_sorted(keys, 1, off, head, &g), PL_EBADARG);
    head[0] = 0;
    CHECK_OK(pl_graph_adopt_sorted(keys, 1, off, head, &g));
    CHECK_EQ_INT(pl_graph_size(g), 1);
    pl_graph_free(g);
}

/* Random graphs: u and v share a component iff each reaches the other. */
static void test_scc_random(void)
{
    unsigned seed = 12345;
    for (int round = 0; round < 40; round++) {
        size_t n = 1 + (size_t)(rand_r(&seed) % 40);
        size_t m = (size_t)(rand_r(&seed) % (3 * n + 1));
        uint32_t (*edges)[2] = malloc((m + 1) * sizeof(*edges));
        for (size_t e = 0; e < m; e++) {
            edges[e][0] = (uint32_t)(rand_r(&seed) % n);
            edges[e][1] = (uint32_t)(rand_r(&seed) % n);
        }
        /* Tails must be non-decreasing: sort by tail (stable insertion). */
        for (size_t i = 1; i < m; i++)
            for (size_t j = i; j > 0 && edges[j - 1][0] > edges[j][0]; j--) {
                uint32_t t0 = edges[j][0], t1 = edges[j][1];
                edges[j][0] = edges[j - 1][0];
                edges[j][1] = edges[j - 1][1];
                edges[j - 1][0] = t0;
                edges[j - 1][1] = t1;
            }
        pl_graph *g = make(n, (const uint32_t(*)[2])edges, m);
        pl_graph_components c;
        CHECK_OK(pl_graph_scc(g, &c));
        char *reach = calloc(n * n, 1);
        for (uint32_t u = 0; u < n; u++) {
            uint32_t *vs;
            size_t k;
            CHECK_OK(pl_graph_reach(g, u, 0, -1, &vs, &k));
            for (size_t i = 0; i < k; i++)
                reach[u * n + vs[i]] = 1;
            free(vs);
        }
        for (uint32_t u = 0; u < n; u++)
            for (uint32_t v = 0; v < n; v++) {
                int same = reach[u * n + v] && reach[v * n + u];
                CHECK_EQ_INT(c.component_of[u] == c.component_of[v], same);
                /* Edges between components go from later to earlier ones. */
                if (reach[u * n + v] && !same)
                    CHECK(c.component_of[u] > c.component_of[v]);
            }
        /* Every shortest cycle really is a cycle through its start. */
        for (uint32_t u = 0; u < n; u++) {
            uint32_t *p;
            size_t k;
            int rc = pl_graph_shortest_cycle(g, u, &p, &k);
            size_t deg;
            const uint32_t *out = pl_graph_out(g, u, &deg, NULL);
            int self_loop = 0;
            for (size_t i = 0; i < deg; i++)
                self_loop |= out[i] == u;
            uint32_t cu = c.component_of[u];
            int on_cycle = self_loop || c.start[cu + 1] - c.start[cu] > 1;
            CHECK_EQ_INT(rc == 0, on_cycle);
            if (rc == 0) {
                CHECK(p[0] == u);
                CHECK(k == 1 ? self_loop : 1);
            }
            if (rc == 0)
                free(p);
        }
        free(reach);
        pl_graph_components_free(&c);
        pl_graph_free(g);
        free(edges);
    }
}

/* 10M vertices in a chain, then closed into one cycle: nothing recurses. */
static void test_long_chain(void)
{
    const size_t n = 10 * 1000 * 1000;
    for (int closed = 0; closed <= 1; closed++) {
        pl_graph *g;
        CHECK_OK(pl_graph_new(n, &g));
        for (size_t i = 0; i < n; i++)
            pl_graph_add_vertex(g, (i + 1) * 16, NULL, NULL);
        for (uint32_t i = 0; i + 1 < n; i++)
            pl_graph_add_edge(g, i, i + 1);
        if (closed)
            CHECK_OK(pl_graph_add_edge(g, (uint32_t)(n - 1), 0));
        CHECK_OK(pl_graph_finish(g));
        CHECK_EQ_INT(pl_graph_size(g), n - 1 + (size_t)closed);
        /* About 21 bytes of index, 8 of key, 8 of offsets and 8 per edge. */
        CHECK(pl_graph_memory(g) < n * 64);
        pl_graph_components c;
        CHECK_OK(pl_graph_scc(g, &c));
        CHECK_EQ_INT(c.count, closed ? 1 : n);
        uint32_t *vs;
        size_t k;
        CHECK_OK(pl_graph_reach(g, 0, 0, -1, &vs, &k));
        CHECK_EQ_INT(k, n);
        free(vs);
        CHECK_OK(pl_graph_shortest_path(g, 0, (uint32_t)(n - 1), &vs, &k));
        CHECK_EQ_INT(k, n);
        free(vs);
        if (closed) {
            CHECK_OK(pl_graph_shortest_cycle(g, 5, &vs, &k));
            CHECK_EQ_INT(k, n);
            free(vs);
            uint32_t id = 0;
            pl_graph *sub;
            CHECK_OK(pl_graph_component_subgraphs(g, &c, &id, 1, &sub));
            CHECK_EQ_INT(pl_graph_order(sub), n);
            CHECK_EQ_INT(pl_graph_size(sub), n);
            pl_graph_free(sub);
        } else {
            CHECK_EQ_INT(pl_graph_shortest_cycle(g, 5, &vs, &k), PL_ENOTFOUND);
        }
        pl_graph_components_free(&c);
        pl_graph_free(g);
    }
}

int main(void)
{
    RUN(test_build_and_query);
    RUN(test_build_errors);
    RUN(test_batches);
    RUN(test_reach);
    RUN(test_paths_and_cycles);
    RUN(test_scc_small);
    RUN(test_edge_ends);
    RUN(test_component_one);
    RUN(test_subgraph_and_filters);
    RUN(test_adopt_sorted);
    RUN(test_scc_random);
    RUN(test_long_chain);
    return TEST_EXIT();
}
