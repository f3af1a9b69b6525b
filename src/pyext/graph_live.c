/* The list of live Graph objects (graph_int.h). The code that computes
 * roots (graph_heapinfo.c) must tell a Graph's own references apart from the
 * program's, so every Graph object is on this list while it lives.
 * graphobject.c and graph_heapinfo.c both call down into this file. */
#include "graph_int.h"

/* Every live Graph object. Protected by the GIL. */
static PlGraphObject *live_graphs;

/* See graph_int.h. */
void pl_objgraph_link(PlGraphObject *self)
{
    self->prev = NULL;
    self->next = live_graphs;
    if (live_graphs)
        live_graphs->prev = self;
    live_graphs = self;
}

/* See graph_int.h. */
void pl_objgraph_unlink(PlGraphObject *self)
{
    if (self->prev)
        self->prev->next = self->next;
    else if (live_graphs == self)
        live_graphs = self->next;
    if (self->next)
        self->next->prev = self->prev;
    self->prev = self->next = NULL;
}

/* See graph_int.h. */
void pl_objgraph_each(void (*fn)(const pl_graph *g, void *arg), void *arg)
{
    for (PlGraphObject *o = live_graphs; o; o = o->next)
        if (o->graph)
            fn(o->graph, arg);
}
