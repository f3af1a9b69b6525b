/* pyloot core: requests by route read back (GET /api/routes, pyloot
 * report): the totals of a window, and the growth of one type per request
 * of each route, fitted (pyloot/route_fit.h) on one observation per worker
 * per interval.
 *
 * Thread-safe (no state); reads the store through its public functions. */
#ifndef PYLOOT_ROUTE_OBS_H
#define PYLOOT_ROUTE_OBS_H

#include <stddef.h>
#include <stdint.h>

#include "pyloot/route_fit.h"
#include "pyloot/store.h"

/* One route's requests over a window, merged over the incarnations. */
typedef struct pl_route_total {
    const char *name;      /* owned by the result it belongs to */
    uint32_t route_id;
    uint64_t requests;
} pl_route_total;

typedef struct pl_route_totals {
    pl_route_total *routes; /* ranked by requests, descending, then by name */
    size_t n;
    uint64_t requests;      /* summed over every route */
    size_t workers;         /* incarnations with requests by route in the window */
    pl_route_data *data;    /* owns the names */
} pl_route_totals;

/* Reads the requests by route of the incarnations matching q, summed per
 * route. The errors of pl_store_routes. *out is malloc'ed; free with
 * pl_route_totals_free (NULL is a no-op). */
int pl_route_totals_read(pl_store *s, const pl_routes_query *q, pl_route_totals **out);
void pl_route_totals_free(pl_route_totals *t);

/* One route's part in a type's growth. */
typedef struct pl_route_growth {
    const char *name;      /* owned by the result */
    uint64_t requests;     /* over the window, merged */
    pl_route_coef coef;    /* per_request, stderr_ (NAN: unknown), separable */
    double contribution;   /* per_request x requests */
} pl_route_growth;

typedef struct pl_route_growth_result {
    pl_route_fit_result fit;  /* intercept, r2, observations */
    pl_route_growth *routes;  /* the routes in the fit, ranked by contribution, descending */
    size_t n;
    pl_route_totals *totals;  /* owns the names */
} pl_route_growth_result;

/* Fits the growth of the type named group per request of each route, over
 * totals (pl_route_totals_read of the same q; taken: the result owns it,
 * or it is freed on failure):
 * one observation per incarnation and pair of consecutive points of the
 * history's time axis (pl_store_history of q's pid, host, since and
 * until; points at most) between which requests by route were stored, y
 * the change of the type's count, x[r] the requests of route r stored with
 * the samples in between. The PL_ROUTE_FIT_MAX_ROUTES most requested routes
 * of the window take part. Returns PL_ENOTFOUND when the store has no
 * history of group, the errors of pl_store_history and pl_route_fit
 * otherwise. *out is
 * malloc'ed; free with pl_route_growth_free (NULL is a no-op). */
int pl_route_growth_read(pl_store *s, const pl_routes_query *q, pl_route_totals *totals, const char *group,
                         uint32_t points, int64_t now_ms, pl_route_growth_result **out);
void pl_route_growth_free(pl_route_growth_result *g);

#endif
