/* Dominators of an object graph: the roots, the dominator tree
 * (pyloot/dominators.h), retained sizes and leak suspects, computed in C on
 * a finished graph and its pl_heapinfo.
 *
 * The roots are the vertices referenced from outside the graph: more
 * references (reference count less pyloot's own) than edges entering them.
 * Vertices no root reaches (cyclic garbage the collector has not freed yet)
 * get roots of their own: the first of them in vertex order, then the first
 * that one does not reach, and so on, so that every vertex is in the tree.
 *
 * Nothing here needs the GIL except pl_objgraph_mark_type, which reads the
 * vertices' types. */
#include "graph_int.h"

#include <stdlib.h>
#include <string.h>

#include "pyloot/dominators.h"

struct pl_objgraph_dom {
    pl_domtree *tree;
    uint64_t *retained;  /* n */
    uint64_t root_total; /* everything: the virtual root's retained size */
    size_t nroots;       /* roots found by reference counts */
    size_t nextra;       /* roots added for unreachable vertices */
};

/* See graph_int.h. */
void pl_objgraph_dom_free(pl_objgraph_dom *d)
{
    if (!d)
        return;
    pl_dom_free(d->tree);
    free(d->retained);
    free(d);
}

/* Appends v to a growing array. */
static int push(uint32_t **a, size_t *len, size_t *cap, uint32_t v)
{
    if (*len == *cap) {
        size_t ncap = *cap ? *cap * 2 : 256;
        uint32_t *t = realloc(*a, ncap * sizeof(uint32_t));
        if (!t)
            return ENOMEM;
        *a = t;
        *cap = ncap;
    }
    (*a)[(*len)++] = v;
    return 0;
}

/* The vertices with more references than in-edges. */
static int find_roots(const pl_graph *g, const pl_heapinfo *h, uint32_t **roots, size_t *n,
                      size_t *cap)
{
    size_t order = pl_graph_order(g);
    const uint32_t *in_off;
    pl_graph_csr(g, NULL, NULL, &in_off, NULL);
    for (uint32_t v = 0; v < order; v++) {
        if (h->outside[v] > in_off[v + 1] - in_off[v] && push(roots, n, cap, v))
            return ENOMEM;
    }
    return 0;
}

/* Adds roots for the vertices the tree t left out (see the file comment). */
static int add_unreached_roots(const pl_graph *g, const pl_domtree *t, uint32_t **roots,
                               size_t *n, size_t *cap)
{
    size_t order = pl_graph_order(g);
    uint8_t *seen = calloc(order + 1, 1);
    uint32_t *queue = NULL;
    size_t qcap = 0;
    int rc = seen ? 0 : ENOMEM;
    for (uint32_t v = 0; v < order && !rc; v++)
        if (pl_dom_idom(t, v) != PL_GRAPH_NONE)
            seen[v] = 1;
    for (uint32_t v = 0; v < order && !rc; v++) {
        if (seen[v])
            continue;
        seen[v] = 1;
        size_t qlen = 0;
        if ((rc = push(roots, n, cap, v)) || (rc = push(&queue, &qlen, &qcap, v)))
            break;
        for (size_t i = 0; i < qlen && !rc; i++) {
            size_t k;
            const uint32_t *heads = pl_graph_out(g, queue[i], &k, NULL);
            for (size_t j = 0; j < k && !rc; j++)
                if (!seen[heads[j]]) {
                    seen[heads[j]] = 1;
                    rc = push(&queue, &qlen, &qcap, heads[j]);
                }
        }
    }
    free(seen);
    free(queue);
    return rc;
}

/* The untracked objects several vertices hold go to their lowest common
 * dominator (the root when only the virtual root dominates them all). Heaps
 * have a few hundred such groups (small ints, interned strings) in a
 * shallow tree: walking up is cheaper than the LCA index, which costs a
 * pass over the whole tree and 8 bytes per vertex. The walks stop at n
 * steps in all, so a deep tree falls back to the index; the index is given
 * back at the end. */
static void place_groups(pl_domtree *t, const pl_heapinfo *h, uint64_t *self, uint64_t *to_root)
{
    size_t budget = pl_dom_order(t);
    for (size_t i = 0; i < h->ngroups; i++) {
        uint32_t lca = h->group_holder[h->group_off[i]];
        for (uint32_t k = h->group_off[i] + 1; k < h->group_off[i + 1] && lca != PL_DOM_ROOT;
             k++) {
            uint32_t b = h->group_holder[k];
            if (!pl_dom_lca_walk(t, lca, b, &budget, &lca))
                lca = pl_dom_lca(t, lca, b);
        }
        if (lca == PL_DOM_ROOT || lca == PL_GRAPH_NONE)
            *to_root += h->group_size[i];
        else
            self[lca] += h->group_size[i];
    }
    pl_dom_release_index(t);
}

/* pl_objgraph_dom_build, taking h's arrays when `consume` (see
 * pl_objgraph_dom_build_consume). */
static int dom_build(const pl_graph *g, pl_heapinfo *h, int consume, pl_objgraph_dom **out)
{
    *out = NULL;
    size_t n = pl_graph_order(g), nroots = 0, cap = 0;
    uint32_t *roots = NULL;
    uint64_t *self = NULL;
    void *work = NULL;
    size_t work_bytes = 0;
    pl_objgraph_dom *d = calloc(1, sizeof(*d));
    int rc = d ? find_roots(g, h, &roots, &nroots, &cap) : ENOMEM;
    if (rc)
        goto done;
    d->nroots = nroots;
    /* The counts of outside references are done with once the roots are
     * known: their array can hold the tree's immediate dominators. */
    uint32_t *space = consume ? h->outside : NULL;
    if ((rc = pl_dom_build_into(g, roots, nroots, space, &d->tree, &work, &work_bytes)))
        goto done;
    if (consume)
        h->outside = NULL; /* the tree's now */
    if (pl_dom_reachable(d->tree) < n) {
        if ((rc = add_unreached_roots(g, d->tree, &roots, &nroots, &cap)))
            goto done;
        d->nextra = nroots - d->nroots;
        pl_dom_free(d->tree);
        d->tree = NULL;
        free(work);
        /* (space went with the first tree.) */
        if ((rc = pl_dom_build_keep_work(g, roots, nroots, &d->tree, &work, &work_bytes)))
            goto done;
    }
    /* The sizes become the retained sizes in place: in h's own array when
     * it is given, else in the build's work array when every vertex is in
     * the tree (its pages are mapped), else in a fresh one. */
    if (consume) {
        self = d->retained = h->size;
        h->size = NULL;
    } else {
        if (work_bytes >= (n + 1) * sizeof(uint64_t)) {
            self = d->retained = work;
            work = NULL;
        } else if (!(self = d->retained = malloc((n + 1) * sizeof(uint64_t)))) {
            rc = ENOMEM;
            goto done;
        }
        memcpy(self, h->size, n * sizeof(uint64_t));
    }
    uint64_t to_root = h->root_size;
    place_groups(d->tree, h, self, &to_root);
    rc = pl_dom_retained(d->tree, self, self, &d->root_total);
    d->root_total += to_root;
done:
    free(roots);
    free(work);
    if (rc)
        pl_objgraph_dom_free(d);
    else
        *out = d;
    return rc;
}

/* See graph_int.h. */
int pl_objgraph_dom_build(const pl_graph *g, const pl_heapinfo *h, pl_objgraph_dom **out)
{
    return dom_build(g, (pl_heapinfo *)h, 0, out); /* not consumed: not written */
}

/* See graph_int.h. */
int pl_objgraph_dom_build_consume(const pl_graph *g, pl_heapinfo *h, pl_objgraph_dom **out)
{
    return dom_build(g, h, 1, out);
}

/* See graph_int.h. */
uint64_t pl_objgraph_retained(const pl_objgraph_dom *d, uint32_t v)
{
    return v == PL_DOM_ROOT ? d->root_total : d->retained[v];
}

/* See graph_int.h. */
uint32_t pl_objgraph_idom(const pl_objgraph_dom *d, uint32_t v)
{
    return pl_dom_idom(d->tree, v);
}

/* See graph_int.h. */
void pl_objgraph_dom_roots(const pl_objgraph_dom *d, size_t *counted, size_t *added)
{
    *counted = d->nroots;
    *added = d->nextra;
}

/* See graph_int.h. */
size_t pl_objgraph_dom_memory(const pl_objgraph_dom *d)
{
    return sizeof(*d) + pl_dom_memory(d->tree) + pl_dom_order(d->tree) * sizeof(uint64_t);
}

static const pl_objgraph_dom *sort_dom; /* qsort has no context argument */

static int by_retained(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    uint64_t ra = sort_dom->retained[a], rb = sort_dom->retained[b];
    if (ra != rb)
        return ra > rb ? -1 : 1;
    return a < b ? -1 : a > b;
}

/* See graph_int.h. */
int pl_objgraph_dom_children(const pl_objgraph_dom *d, uint32_t v, uint32_t **out, size_t *n)
{
    size_t k, r;
    /* The children lists are laid out on first need: none (NULL) when
     * there was no memory for them, not "no children". */
    if (!pl_dom_bfs(d->tree, &r) && pl_dom_reachable(d->tree))
        return ENOMEM;
    const uint32_t *kids = pl_dom_children(d->tree, v, &k);
    *n = k;
    *out = malloc((k + 1) * sizeof(uint32_t));
    if (!*out)
        return ENOMEM;
    if (k)
        memcpy(*out, kids, k * sizeof(uint32_t));
    /* Not thread-safe through sort_dom: callers hold the GIL. */
    sort_dom = d;
    qsort(*out, k, sizeof(uint32_t), by_retained);
    sort_dom = NULL;
    return 0;
}

/* See graph_int.h. */
int pl_objgraph_dominated(const pl_objgraph_dom *d, uint32_t v, uint32_t **out, size_t *n)
{
    int rc = pl_dom_subtree(d->tree, v, out, n);
    if (rc || *n)
        return rc;
    /* A vertex outside the tree dominates itself alone. */
    if (!(*out = malloc(sizeof(uint32_t))))
        return ENOMEM;
    (*out)[0] = v;
    *n = 1;
    return 0;
}

/* ---- leak suspects ---- */

/* See graph_int.h. */
void pl_objgraph_suspects_free(pl_suspect *s, size_t n)
{
    for (size_t i = 0; s && i < n; i++)
        free(s[i].path);
    free(s);
}

/* Whether suspect a ranks before b: a higher score, then more instances,
 * then deeper (the more precise of two equal answers), then the lower vertex
 * number. */
static int ranks_before(const pl_objgraph_dom *d, const uint32_t *count, uint32_t a, uint64_t sa,
                        uint32_t b, uint64_t sb)
{
    if (sa != sb)
        return sa > sb;
    if (count[a] != count[b])
        return count[a] > count[b];
    uint32_t da = pl_dom_depth(d->tree, a), db = pl_dom_depth(d->tree, b);
    if (da != db)
        return da > db;
    return a < b;
}

/* The path from v's top-level dominator (a root) to v along references. */
static int suspect_path(const pl_graph *g, const pl_objgraph_dom *d, pl_suspect *s)
{
    uint32_t top = s->vertex;
    for (uint32_t up = pl_dom_idom(d->tree, top); up != PL_DOM_ROOT && up != PL_GRAPH_NONE;
         up = pl_dom_idom(d->tree, top))
        top = up;
    uint32_t *back = NULL;
    size_t k = 0;
    int rc = pl_graph_shortest_path(g, top, s->vertex, &back, &k);
    if (rc)
        return rc;
    /* pl_graph_shortest_path lists end back to start. */
    for (size_t i = 0; i < k / 2; i++) {
        uint32_t t = back[i];
        back[i] = back[k - 1 - i];
        back[k - 1 - i] = t;
    }
    s->path = back;
    s->npath = k;
    return 0;
}

/* See graph_int.h. */
int pl_objgraph_suspects(const pl_graph *g, const pl_objgraph_dom *d, const uint8_t *mark,
                         size_t want, pl_suspect **out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    size_t n = pl_graph_order(g), r;
    const uint32_t *order = pl_dom_bfs(d->tree, &r);
    uint32_t *count = calloc(n + 1, sizeof(uint32_t)), *branches = calloc(n + 1, sizeof(uint32_t));
    uint32_t *best = malloc((want + 1) * sizeof(uint32_t));
    uint64_t *score = malloc((want + 1) * sizeof(uint64_t));
    pl_suspect *s = calloc(want + 1, sizeof(pl_suspect));
    size_t nbest = 0;
    int rc = count && branches && best && score && s && (order || !pl_dom_reachable(d->tree)) ? 0 : ENOMEM;
    if (rc)
        goto done;
    /* Backwards over the tree's breadth-first order: every vertex is done
     * before its dominator. count: the instances v dominates; branches: what
     * its children bring, an instance child all the instances it dominates
     * (a chain of them hangs from its head), another child 1 if it holds any
     * (the list or dict below it is the better answer for those). */
    for (size_t i = r; i-- > 0;) {
        uint32_t v = order[i], p = pl_dom_idom(d->tree, v);
        count[v] += mark[v];
        if (p == PL_DOM_ROOT || p == PL_GRAPH_NONE)
            continue;
        count[p] += count[v];
        branches[p] += mark[v] ? count[v] : count[v] > 0;
    }
    /* Keep the `want` best, insertion-sorted. */
    for (size_t i = 0; i < r && want; i++) {
        uint32_t v = order[i];
        uint64_t sc = branches[v];
        if (mark[v] || !sc)
            continue;
        if (nbest == want && !ranks_before(d, count, v, sc, best[nbest - 1], score[nbest - 1]))
            continue;
        size_t at = nbest < want ? nbest++ : nbest - 1;
        while (at > 0 && ranks_before(d, count, v, sc, best[at - 1], score[at - 1])) {
            best[at] = best[at - 1];
            score[at] = score[at - 1];
            at--;
        }
        best[at] = v;
        score[at] = sc;
    }
    for (size_t i = 0; i < nbest && !rc; i++) {
        s[i].vertex = best[i];
        s[i].count = count[best[i]];
        s[i].retained = d->retained[best[i]];
        rc = suspect_path(g, d, &s[i]);
    }
done:
    free(count);
    free(branches);
    free(best);
    free(score);
    if (rc) {
        pl_objgraph_suspects_free(s, nbest);
        return rc;
    }
    *out = s;
    *nout = nbest;
    return 0;
}

/* ---- marking a type's instances (GIL held) ---- */

/* Whether tp is the type `name` names: its __name__, its module-qualified
 * name ("pkg.mod.Class.Inner") or its tp_name. */
static int type_named(PyTypeObject *tp, const char *name)
{
    if (strcmp(tp->tp_name, name) == 0)
        return 1;
    const char *dot = strrchr(tp->tp_name, '.');
    if (!(tp->tp_flags & Py_TPFLAGS_HEAPTYPE))
        return strcmp(dot ? dot + 1 : tp->tp_name, name) == 0;
    PyHeapTypeObject *ht = (PyHeapTypeObject *)tp;
    const char *short_name = ht->ht_name ? PyUnicode_AsUTF8(ht->ht_name) : NULL;
    const char *qual = ht->ht_qualname ? PyUnicode_AsUTF8(ht->ht_qualname) : NULL;
    PyObject *mod = tp->tp_dict ? PyDict_GetItemString(tp->tp_dict, "__module__") : NULL;
    const char *module = mod && PyUnicode_Check(mod) ? PyUnicode_AsUTF8(mod) : NULL;
    PyErr_Clear();
    if (short_name && strcmp(short_name, name) == 0)
        return 1;
    if (!qual || !module)
        return 0;
    size_t ml = strlen(module);
    return strncmp(name, module, ml) == 0 && name[ml] == '.' && strcmp(name + ml + 1, qual) == 0;
}

/* See graph_int.h. */
int pl_objgraph_mark_type(const pl_graph *g, PyObject *type_or_name, uint8_t *mark)
{
    size_t n = pl_graph_order(g);
    PyTypeObject *want = NULL;
    const char *name = NULL;
    if (PyType_Check(type_or_name)) {
        want = (PyTypeObject *)type_or_name;
    } else if (PyUnicode_Check(type_or_name)) {
        if (!(name = PyUnicode_AsUTF8(type_or_name)))
            return -1;
    } else {
        PyErr_SetString(PyExc_TypeError, "suspects() needs a type or a type name");
        return -1;
    }
    /* One answer per type: the last few types seen, in a small cache. */
    PyTypeObject *seen[64] = {0};
    uint8_t answer[64];
    for (uint32_t v = 0; v < n; v++) {
        PyTypeObject *tp = Py_TYPE(pl_vertex_obj(g, v));
        if (want) {
            mark[v] = tp == want;
            continue;
        }
        size_t slot = ((uintptr_t)tp >> 4) & 63;
        if (seen[slot] != tp) {
            seen[slot] = tp;
            answer[slot] = (uint8_t)type_named(tp, name);
        }
        mark[v] = answer[slot];
    }
    return 0;
}
