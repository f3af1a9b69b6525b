/* pyloot core: directed graphs in compact arrays and their algorithms. */
#ifndef PYLOOT_GRAPH_H
#define PYLOOT_GRAPH_H

#endif
