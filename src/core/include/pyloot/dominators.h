/* pyloot core: the dominator tree of a graph, retained sizes and LCAs.
 *
 * The tree hangs from a virtual root whose children are the graph's roots
 * (for a snapshot: the objects referenced from outside it). Vertex d
 * dominates w when every path from the virtual root to w passes through d;
 * the immediate dominator idom(w) is the strict dominator of w closest to it,
 * and w's retained size is the sum of the shallow sizes of the vertices d
 * dominates (w's subtree). Vertices no root reaches are unreachable: they
 * have no immediate dominator and are not in the tree.
 *
 * Memory: the tree keeps 8 bytes per vertex and a bit (immediate
 * dominators, the search's preorder, a bit per vertex left out of the
 * search); the children lists and their offsets (8 bytes per vertex more)
 * are laid out on the first pl_dom_children, pl_dom_bfs or pl_dom_subtree,
 * and pl_dom_depth and pl_dom_lca add 8 more (depths and one jump pointer
 * per vertex) on their first call, which pl_dom_release_index gives back
 * once the LCAs are done with. pl_dom_build peaks at about 24 bytes per
 * searched vertex plus 4 per vertex; leaves with one in-edge (most objects
 * that hold no other) are not searched. With the snapshot graph (~75 bytes
 * per vertex with its in-edges) and retained sizes computed in place (8),
 * that is ~92 bytes per vertex, ~108 with the children lists and the LCA
 * index.
 *
 * Threads: a finished tree is immutable except for the depth/LCA structure,
 * which the first pl_dom_depth or pl_dom_lca call builds and publishes
 * atomically, so any number of threads may query one tree at once (two
 * threads racing on the first call both build it, one copy is kept);
 * pl_dom_release_index is the one call that needs the tree to itself.
 * Everything allocates with libc only and never recurses, so it runs without
 * the GIL and on chains of millions of vertices. Functions return 0, ENOMEM
 * or a PL_E* code (error.h). */
#ifndef PYLOOT_DOMINATORS_H
#define PYLOOT_DOMINATORS_H

#include <stddef.h>
#include <stdint.h>

#include "pyloot/graph.h"

typedef struct pl_domtree pl_domtree;

/* Pseudo-vertex number of the virtual root (its children are the roots).
 * Equal to PL_GRAPH_MAX, so it is never a vertex number (vertices are below
 * pl_graph_order <= PL_GRAPH_MAX) nor PL_GRAPH_NONE. */
#define PL_DOM_ROOT (UINT32_MAX - 1u)

/* Builds the dominator tree of g from a virtual root whose children are
 * roots[0..nroots) (duplicates allowed; a root another root reaches is
 * still a child of the virtual root, so it is dominated only by it).
 * Vertices not reachable from the roots are unreachable: idom
 * PL_GRAPH_NONE, not in the tree.
 *
 * g must be finished and have its in-edges: call pl_graph_ensure_reverse
 * first (the build reads the parents of every reachable vertex and builds
 * nothing in g, so it may run while other threads read g). Returns
 * PL_EBADARG when g has no in-edges (which includes every unfinished graph)
 * or a root is not a vertex, ENOMEM, or 0 with *out set (free it with
 * pl_dom_free; it does not point into g, which may be freed first).
 *
 * Semi-NCA (Georgiadis): an iterative depth-first search numbers the
 * vertices (a leaf with one in-edge is only marked: it is on no path to
 * another vertex, and its immediate dominator is the vertex holding it, or
 * the virtual root when it is a root), semidominators come from path-compressed link-eval with the
 * compression done by pointer reversal (no stack) and skipped when a stack
 * of prefix minima shows it cannot lower the semidominator, and each immediate
 * dominator is the nearest ancestor of the search parent numbered at or
 * below the semidominator, found by jump pointers in O(log depth) rather
 * than by the classic walk, which is quadratic on a long chain whose
 * vertices also hang from shallower ones. Time O(m log n) worst case,
 * close to linear in practice. */
int pl_dom_build(const pl_graph *g, const uint32_t *roots, size_t nroots, pl_domtree **out);

/* pl_dom_build, but for its largest work array, 8 bytes per searched
 * vertex plus 8 (every reachable vertex but the leaves with one in-edge),
 * which is handed to the caller instead of being freed:
 * *work (contents undefined; free() it) and *work_bytes its size, or NULL
 * and 0 on failure. For a per-vertex array of 8-byte values made right
 * after the tree (retained sizes): memory the build has written already
 * costs no page faults, where a fresh array of millions of entries takes
 * one per 4 KB. */
int pl_dom_build_keep_work(const pl_graph *g, const uint32_t *roots, size_t nroots, pl_domtree **out,
                           void **work, size_t *work_bytes);

/* pl_dom_build_keep_work, with the tree's array of immediate dominators
 * made in `space` (pl_graph_order(g) + 1 entries of the caller's malloc'ed
 * memory, contents undefined) instead of a fresh array: memory written
 * already costs no page faults. On success the tree owns space (pl_dom_free
 * frees it); on failure it is still the caller's. */
int pl_dom_build_into(const pl_graph *g, const uint32_t *roots, size_t nroots, uint32_t *space,
                      pl_domtree **out, void **work, size_t *work_bytes);

/* Frees a tree and everything it owns. pl_dom_free(NULL) is a no-op. */
void pl_dom_free(pl_domtree *t);

/* Number of vertices of the graph the tree was built from. */
size_t pl_dom_order(const pl_domtree *t);

/* Number of vertices reachable from the roots (the tree's size, not
 * counting the virtual root). */
size_t pl_dom_reachable(const pl_domtree *t);

/* Immediate dominator of v: a vertex, PL_DOM_ROOT (v is dominated only by
 * the virtual root), or PL_GRAPH_NONE (v unreachable, not a vertex, or
 * PL_DOM_ROOT itself). O(1). */
uint32_t pl_dom_idom(const pl_domtree *t, uint32_t v);

/* Children of v in the dominator tree (v may be PL_DOM_ROOT for the top
 * level: the distinct roots), in vertex order; *n gets their number (0, and
 * NULL returned, for a leaf, an unreachable vertex or a non-vertex, and
 * when there is no memory for the children lists). The array belongs to
 * the tree: valid until pl_dom_free. O(1 + n/64) once the lists exist: the
 * first call of this, pl_dom_bfs or pl_dom_subtree lays them out in O(n)
 * and publishes them atomically (like the LCA index). */
const uint32_t *pl_dom_children(const pl_domtree *t, uint32_t v, size_t *n);

/* The reachable vertices in breadth-first order of the tree (children of
 * the virtual root first, then their children, ...): every vertex comes
 * after its immediate dominator, so a backward loop sums any per-vertex
 * quantity over subtrees. *n gets pl_dom_reachable. Valid until pl_dom_free.
 * NULL with *n = 0 when there is no memory for the children lists. */
const uint32_t *pl_dom_bfs(const pl_domtree *t, size_t *n);

/* The vertices of v's subtree (v's dominated set, v first), breadth-first,
 * children in vertex order; v may be PL_DOM_ROOT (every reachable vertex).
 * *out is malloc'ed (free() it; NULL with *n = 0 when v is unreachable or
 * not a vertex). O(answer) once the children lists exist. Returns 0 or
 * ENOMEM. */
int pl_dom_subtree(const pl_domtree *t, uint32_t v, uint32_t **out, size_t *n);

/* Depth of v in the tree: children of the virtual root have depth 1; 0 for
 * PL_DOM_ROOT, unreachable vertices and non-vertices. O(1) once the
 * depth/LCA structure exists (the first call builds it; if that fails for
 * lack of memory the answer is still right, found by walking up). */
uint32_t pl_dom_depth(const pl_domtree *t, uint32_t v);

/* Lowest common ancestor of a and b in the dominator tree: the deepest
 * vertex dominating both (a vertex dominates itself), or PL_DOM_ROOT when
 * only the virtual root does; either argument may be PL_DOM_ROOT.
 * PL_GRAPH_NONE if either is unreachable or not a vertex. O(log depth) with
 * skew-binary jump pointers (one per vertex, Myers 1983), built with the
 * depths on the first call of pl_dom_lca or pl_dom_depth: 8 bytes per vertex
 * instead of the n log n words of binary lifting or an Euler-tour sparse
 * table. Without memory for that structure it falls back to walking up. */
uint32_t pl_dom_lca(const pl_domtree *t, uint32_t a, uint32_t b);

/* pl_dom_lca by walking up the tree, without the index, in at most *budget
 * steps up in all (*budget is lowered by the steps taken): for a few LCAs
 * in a shallow tree, where building the index would cost more than the
 * walks. Returns 1 with the answer in *lca, or 0 with *budget at 0 when the
 * walk did not finish (then ask pl_dom_lca). */
int pl_dom_lca_walk(const pl_domtree *t, uint32_t a, uint32_t b, size_t *budget, uint32_t *lca);

/* retained[v] = sum of self_size[w] over the vertices w of v's subtree
 * (v included), for every vertex v < pl_dom_order(t) (0 for unreachable
 * ones); *root_total (may be NULL) gets the sum over all reachable vertices,
 * the virtual root's retained size. self_size and retained have
 * pl_dom_order(t) entries and belong to the caller; they may be the same
 * array (the sizes are then replaced by the retained sizes); no allocation.
 * Iterative: the vertices left out of the search first, then the others
 * backwards in the search's preorder (no children lists needed). Any
 * per-vertex quantity sums the same way: 1 for the instances of a type and
 * 0 elsewhere gives how many of them each vertex retains (leak suspects).
 * Returns 0, or PL_EBADARG for a NULL array with a non-empty tree. */
int pl_dom_retained(const pl_domtree *t, const uint64_t *self_size, uint64_t *retained,
                    uint64_t *root_total);

/* Frees the depth/LCA index (a later pl_dom_depth or pl_dom_lca builds it
 * again): 8 bytes per vertex back once the LCAs are computed. Unlike the
 * queries this changes the tree: no other thread may use t meanwhile. */
void pl_dom_release_index(pl_domtree *t);

/* Bytes held by the tree, the depth/LCA structure included once built (for
 * the budget of 100 bytes per vertex for graph, tree and retained sizes). */
size_t pl_dom_memory(const pl_domtree *t);

#endif
