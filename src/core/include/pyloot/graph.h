/* pyloot core: directed graphs in compact arrays and their algorithms.
 *
 * A graph has n vertices numbered 0..n-1, each with a 64-bit key (the
 * extension uses object addresses; key 0 is reserved), and m edges numbered
 * 0..m-1 in out-edge order: all edges leaving vertex 0 first, in the order
 * they were added, then those leaving vertex 1, and so on. Edges are stored
 * in CSR form, out-edges always and in-edges once asked for, so children and
 * parents are both O(degree). Self-loops and multiple edges between the same
 * pair are kept.
 *
 * Life cycle: pl_graph_new, then pl_graph_add_vertex(es) for every vertex,
 * then pl_graph_add_edge (or _add_edges_by_key) for every edge in
 * non-decreasing tail order, then pl_graph_finish. Only finished graphs may
 * be queried or passed to the algorithms. A finished graph may be read by
 * several threads at once; pl_graph_ensure_index and pl_graph_ensure_reverse
 * add to it and must not run concurrently with anything that reads what they
 * add (the index, the in-edges). Building is not thread-safe.
 *
 * Key lookups need the key index (~27 bytes per vertex), parents need the
 * in-edges. Graphs built with pl_graph_new have the index; the subgraphs the
 * algorithms return get it only from pl_graph_ensure_index, and every graph
 * gets its in-edges from pl_graph_ensure_reverse: most graphs are only
 * counted, iterated or split, and a large one would pay a random memory
 * access per vertex or per edge for nothing. A graph built elsewhere with
 * its keys in ascending order (pl_graph_adopt_sorted: the extension's heap
 * snapshots) needs no index at all: lookups search the keys.
 *
 * Every algorithm is iterative (no recursion: a chain of 10M vertices
 * works) and allocates with libc only (never PyMem_*), so it can run without
 * the GIL. Functions return 0, ENOMEM, or a PL_E* code (error.h). */
#ifndef PYLOOT_GRAPH_H
#define PYLOOT_GRAPH_H

#include <stddef.h>
#include <stdint.h>

typedef struct pl_graph pl_graph;

/* "No vertex": the result of a failed lookup. */
#define PL_GRAPH_NONE UINT32_MAX
/* Largest number of vertices (and of edges) a graph may hold. */
#define PL_GRAPH_MAX (UINT32_MAX - 1u)

/* ---- building ---- */

/* Creates an empty graph with room for about vertex_hint vertices (0 is
 * fine). *out is freed with pl_graph_free. Returns 0 or ENOMEM. */
int pl_graph_new(size_t vertex_hint, pl_graph **out);
/* Frees a graph and everything it owns. pl_graph_free(NULL) is a no-op. */
void pl_graph_free(pl_graph *g);
/* Adds a vertex with `key` unless one with that key exists. *index (may be
 * NULL) gets the vertex number, *added (may be NULL) 1 if it is new.
 * Returns 0, ENOMEM, PL_EBADARG (key 0, or edges already added) or
 * PL_ETOOBIG. */
int pl_graph_add_vertex(pl_graph *g, uint64_t key, uint32_t *index, int *added);
/* Adds n vertices, as n calls of pl_graph_add_vertex would (duplicates
 * dropped); added[i] (added may be NULL) is set to 1 for the new ones. Faster
 * on large batches: the index is sized once and its slots prefetched. On
 * error the vertices before the failing one stay added (and are marked in
 * added[]). */
int pl_graph_add_vertices(pl_graph *g, const uint64_t *keys, size_t n, uint8_t *added);
/* Adds the edge tail -> head. Tails must come in non-decreasing order (all
 * edges of one vertex together, in the order they should be reported); once
 * the first edge is added no vertex can be added. Returns 0, ENOMEM,
 * PL_EBADARG or PL_ETOOBIG. */
int pl_graph_add_edge(pl_graph *g, uint32_t tail, uint32_t head);
/* Adds the edges tails[i] -> (vertex of key heads[i]) for i < n, skipping
 * the heads that are not vertices: pl_graph_add_edge after a lookup, in
 * blocks with prefetching. Same ordering rule for tails. Returns 0, ENOMEM,
 * PL_EBADARG or PL_ETOOBIG. */
int pl_graph_add_edges_by_key(pl_graph *g, const uint32_t *tails, const uint64_t *heads,
                              size_t n);
/* Makes a finished graph from arrays built elsewhere, taking ownership of
 * them (malloc'ed; on failure they stay the caller's): keys[0..n) nonzero and
 * strictly ascending, out_off[0..n] the out-edge offsets (out_off[0] == 0,
 * non-decreasing) and out_head[0..out_off[n]) the heads. The graph needs no
 * key index: lookups search the sorted keys (ascending batches are merged),
 * so pl_graph_has_index is true and pl_graph_ensure_index does nothing. Its
 * in-edges are built on demand as for any graph. Returns 0, ENOMEM or
 * PL_EBADARG (the arrays break a rule above). */
int pl_graph_adopt_sorted(uint64_t *keys, size_t n, uint32_t *out_off, uint32_t *out_head,
                          pl_graph **out);
/* Ends building: closes the out-edge offsets and trims the arrays. The
 * in-edges are not built yet (pl_graph_ensure_reverse). Returns 0 or ENOMEM
 * (the graph is then still unfinished and may be freed). */
int pl_graph_finish(pl_graph *g);
/* Builds the in-edges of a finished graph if it has none: a counting sort
 * of the edges, done on first need because many uses (components, counts,
 * differences) never ask for parents. Returns 0, ENOMEM or PL_EBADARG (not
 * finished). Not thread-safe: call it before sharing the graph. */
int pl_graph_ensure_reverse(pl_graph *g);
/* Whether the in-edges are built. */
int pl_graph_has_reverse(const pl_graph *g);

/* ---- queries (finished graphs; pointers stay valid until pl_graph_free) ---- */

/* Number of vertices. */
size_t pl_graph_order(const pl_graph *g);
/* Number of edges. */
size_t pl_graph_size(const pl_graph *g);
/* Key of vertex v (v < order). */
uint64_t pl_graph_key(const pl_graph *g, uint32_t v);
/* All keys, indexed by vertex number. */
const uint64_t *pl_graph_keys(const pl_graph *g);
/* Builds the key index if the graph has none. Returns 0 or ENOMEM. Not
 * thread-safe: call it before sharing the graph. */
int pl_graph_ensure_index(pl_graph *g);
/* Whether the graph has its key index. */
int pl_graph_has_index(const pl_graph *g);
/* Vertex number of `key`, or PL_GRAPH_NONE (also when the graph has no
 * index). Works while building too. O(1) with the hash index, O(log n) on
 * a graph from pl_graph_adopt_sorted. */
uint32_t pl_graph_lookup(const pl_graph *g, uint64_t key);
/* out[i] = pl_graph_lookup(g, keys[i]) for i < n, prefetching ahead: much
 * faster than single lookups when the index does not fit in the caches. */
void pl_graph_lookup_many(const pl_graph *g, const uint64_t *keys, size_t n, uint32_t *out);
/* Heads of the edges leaving v, in edge order; *count gets their number and
 * *first_edge (may be NULL) the number of the first of these edges. */
const uint32_t *pl_graph_out(const pl_graph *g, uint32_t v, size_t *count, uint32_t *first_edge);
/* Tails of the edges entering v, ordered by edge number (none when the
 * in-edges are not built: see pl_graph_ensure_reverse). */
const uint32_t *pl_graph_in(const pl_graph *g, uint32_t v, size_t *count);
/* The CSR arrays of a finished graph, for loops that cannot afford a call
 * per vertex: out_off[0..order] and out_head[0..size); in_off and in_tail
 * likewise, NULL until the in-edges are built. Any pointer may be NULL to
 * skip it. Owned by g; valid until pl_graph_free (the in-edges from the
 * pl_graph_ensure_reverse that made them). */
void pl_graph_csr(const pl_graph *g, const uint32_t **out_off, const uint32_t **out_head,
                  const uint32_t **in_off, const uint32_t **in_tail);
/* Head of edge e, or PL_GRAPH_NONE when e >= size. O(1). */
uint32_t pl_graph_edge_head(const pl_graph *g, uint32_t e);
/* Tail of edge e, or PL_GRAPH_NONE when e >= size. O(log order): a search
 * of the out-edge offsets. */
uint32_t pl_graph_edge_tail(const pl_graph *g, uint32_t e);
/* Numbers of the edges entering v, ascending (multi-edges and self-loops
 * each once per edge). Needs the in-edges (PL_EBADARG otherwise, or for v
 * >= order). O(sum of the out-degrees of v's parents). *out is malloc'ed
 * (free() it), *n its length. Returns 0, ENOMEM or PL_EBADARG. */
int pl_graph_in_edges(const pl_graph *g, uint32_t v, uint32_t **out, size_t *n);
/* Bytes of memory held by the graph (arrays and index). */
size_t pl_graph_memory(const pl_graph *g);

/* ---- algorithms (finished graphs) ---- */

/* Vertices reachable from `start` along out-edges (in-edges when `reverse`)
 * within `generations` steps (negative: unlimited; 0: start only), in
 * breadth-first order beginning with start. `reverse` needs the in-edges
 * (PL_EBADARG otherwise). *out is malloc'ed (free() it),
 * *n its length. */
int pl_graph_reach(const pl_graph *g, uint32_t start, int reverse, long generations,
                   uint32_t **out, size_t *n);
/* A shortest path start -> end found breadth-first, as vertices listed from
 * end back to start (start == end gives [start]). PL_ENOTFOUND when end is not
 * reachable. *out is malloc'ed. */
int pl_graph_shortest_path(const pl_graph *g, uint32_t start, uint32_t end, uint32_t **out,
                           size_t *n);
/* A shortest cycle through start (a self-loop gives [start]), listed from
 * start backwards along the cycle. PL_ENOTFOUND when there is none. */
int pl_graph_shortest_cycle(const pl_graph *g, uint32_t start, uint32_t **out, size_t *n);

/* A partition of the vertices into components. */
typedef struct pl_graph_components {
    size_t count;           /* number of components */
    uint32_t *start;        /* count+1 offsets into members */
    uint32_t *members;      /* order(g) vertices, grouped by component */
    uint32_t *component_of; /* order(g) entries: the component of each vertex */
} pl_graph_components;

/* Strongly connected components (Tarjan, iterative). Components come in
 * the order they complete: every edge between two components goes from a
 * later one to an earlier one (sinks first); within a component vertices are
 * in discovery order. Vertices are started in number order. Free *out with
 * pl_graph_components_free. */
int pl_graph_scc(const pl_graph *g, pl_graph_components *out);
/* Frees the arrays of a components struct; safe on a zeroed one. */
void pl_graph_components_free(pl_graph_components *c);
/* Numbers of the components (of an SCC partition c of g) that no edge from
 * another component enters, ascending. *ids is malloc'ed. */
int pl_graph_source_components(const pl_graph *g, const pl_graph_components *c,
                               uint32_t **ids, size_t *n);
/* place[v] = the position of v among its component's members, for
 * pl_graph_component_subgraph: *place is malloc'ed (order(g) entries). */
int pl_graph_component_places(const pl_graph *g, const pl_graph_components *c,
                               uint32_t **place);
/* The induced subgraph of component id alone (vertices in member order,
 * edges in g's order; no key index, no in-edges), in time proportional to
 * the component and its out-edges: place comes from
 * pl_graph_component_places. Returns 0, ENOMEM or PL_EBADARG (id >= count). */
int pl_graph_component_subgraph(const pl_graph *g, const pl_graph_components *c,
                                const uint32_t *place, uint32_t id, pl_graph **out);
/* Builds the induced subgraph of each listed component: outs[i] gets the
 * finished subgraph of component ids[i] (vertices in member order, edges in
 * the parent's order; no key index, no in-edges). On failure every outs[i]
 * is NULL. */
int pl_graph_component_subgraphs(const pl_graph *g, const pl_graph_components *c,
                                 const uint32_t *ids, size_t k, pl_graph **outs);

/* The induced subgraph on vs[0..k) (duplicates dropped, first one kept):
 * vertices in that order with their keys, every edge of g between them in
 * g's order. *out is finished, without a key index or in-edges. */
int pl_graph_subgraph(const pl_graph *g, const uint32_t *vs, size_t k, pl_graph **out);
/* The induced subgraph of a on the vertices whose key is (keep_common != 0)
 * or is not (keep_common == 0) a key of b: a & b and a - b. b must have its
 * key index (PL_EBADARG otherwise); *out has neither index nor in-edges. */
int pl_graph_key_filter(const pl_graph *a, const pl_graph *b, int keep_common, pl_graph **out);

#endif
