/* Requests by route counted in this process (requests.c). */
#ifndef PYLOOT_PYEXT_REQUESTS_H
#define PYLOOT_PYEXT_REQUESTS_H

#include "pyext.h"
#include "pyloot/store.h"

/* A copy of the routes counted since the last sample. */
typedef struct pl_requests_taken {
    pl_route_count *routes; /* n entries; names point into `names` or are static */
    size_t n;
    char *names;
    int tracking;           /* the process counts requests (send a route sample, even empty) */
} pl_requests_taken;

/* Copies the table into *t, and with reset empties it (the collector, at
 * each sample). 0 or ENOMEM (then *t holds nothing). Any thread; the GIL
 * need not be held. Free *t with pl_requests_taken_free. */
int pl_requests_copy(pl_requests_taken *t, int reset);
void pl_requests_taken_free(pl_requests_taken *t);

/* In a fork() child (module.c's pthread_atfork handler): empties the table. */
void pl_requests_atfork_child(void);

/* Adds count_request, route_name, requests_enable, requests_counted. GIL held. */
int pl_requests_module_exec(PyObject *module);

#endif
