/* pyloot extension: former name of heap.h, kept so that files written
 * against it build unchanged. New code includes heap.h. */
#ifndef PYLOOT_OBJECTS_GC_H
#define PYLOOT_OBJECTS_GC_H
#include "heap.h"
#endif
