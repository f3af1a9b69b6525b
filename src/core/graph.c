/* Graph algorithms over compact arrays. */
#include "pyloot/graph.h"
