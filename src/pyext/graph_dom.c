/* Dominators of an object graph: the tree, retained sizes and leak
 * suspects, computed in C on a graph and its pl_heapinfo. */
#include "graph_int.h"

#include <stdlib.h>

struct pl_objgraph_dom {
    uint64_t *retained;
};

void pl_objgraph_dom_free(pl_objgraph_dom *d)
{
    if (!d)
        return;
    free(d->retained);
    free(d);
}
