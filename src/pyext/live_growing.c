/* live_growing.c: the holders of growing types in a dominator tree, which
 * the biggest retainers rank first (live_growing.h). */
#include "live_growing.h"

#include <stdlib.h>
#include <string.h>

/* 1 for a module, or a dict that a module refers to as its __dict__: what
 * every import holds, never the leak, however many instances it holds. */
static int module_or_its_dict(const pl_graph *g, uint32_t v)
{
    PyObject *o = pl_vertex_obj(g, v);
    if (PyModule_Check(o))
        return 1;
    if (!PyDict_CheckExact(o))
        return 0;
    size_t k;
    const uint32_t *from = pl_graph_in(g, v, &k);
    for (size_t i = 0; i < k; i++) {
        PyObject *m = pl_vertex_obj(g, from[i]);
        if (PyModule_Check(m) && PyModule_GetDict(m) == o)
            return 1;
    }
    return 0;
}

static int taken(const pl_growing_holder *out, size_t n, uint32_t v)
{
    for (size_t i = 0; i < n; i++)
        if (out[i].vertex == v)
            return 1;
    return 0;
}

/* Whether holder a ranks before b: the larger share of its type's
 * instances (the leak's holder has nearly all of them; a holder of a few
 * of a common type does not), then the more instances. */
static int before(const pl_growing_holder *a, const pl_growing_holder *b)
{
    unsigned __int128 x = (unsigned __int128)a->count * b->instances, y = (unsigned __int128)b->count * a->instances;
    return x != y ? x > y : a->count > b->count;
}

/* See live_growing.h. */
int pl_growing_holders(PlGraphObject *t, pl_growing_holder *out)
{
    pl_growing_type types[PL_WITNESS_GROWING];
    size_t ntypes = pl_witness_growing(types, PL_WITNESS_GROWING);
    if (!ntypes)
        return 0;
    const pl_graph *g = t->graph;
    size_t order = pl_graph_order(g);
    uint8_t *mark = malloc(order + 1);
    if (!mark) {
        PyErr_NoMemory();
        return -1;
    }
    pl_growing_holder found[PL_WITNESS_GROWING];
    size_t nfound = 0;
    int rc = 0;
    for (size_t k = 0; k < ntypes; k++) {
        uint64_t instances = 0;
        for (uint32_t v = 0; v < order; v++) {
            mark[v] = Py_TYPE(pl_vertex_obj(g, v)) == types[k].tp;
            instances += mark[v];
        }
        if (instances < types[k].growth || !instances)
            continue; /* a type the gc does not track (str, float): not in the tree */
        pl_suspect *s = NULL;
        size_t ns = 0;
        int err;
        Py_BEGIN_ALLOW_THREADS
        err = pl_objgraph_suspects(g, t->dom, mark, PL_GROWING_ROWS + 1, &s, &ns);
        Py_END_ALLOW_THREADS
        if (err) {
            pl_raise(NULL, err, "the graph operation");
            rc = -1;
            break;
        }
        for (size_t i = 0; i < ns; i++) {
            if (s[i].count < types[k].growth || module_or_its_dict(g, s[i].vertex))
                continue;
            pl_growing_holder h = {.vertex = s[i].vertex, .type = types[k], .count = s[i].count,
                                   .instances = instances};
            size_t at = nfound++;
            while (at > 0 && before(&h, &found[at - 1])) {
                found[at] = found[at - 1];
                at--;
            }
            found[at] = h;
            break;
        }
        pl_objgraph_suspects_free(s, ns);
    }
    free(mark);
    if (rc < 0)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < nfound && n < PL_GROWING_ROWS; i++)
        if (!taken(out, n, found[i].vertex))
            out[n++] = found[i];
    return (int)n;
}
