/* The shared LMDB store. */
#include "pyloot/store.h"
