/* Facts about processes: incarnation, liveness, rss. */
#include "pyloot/store.h"
