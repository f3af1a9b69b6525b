/* pyloot core: growth per request of each route.
 *
 * One observation is one worker's one sample interval: y is the change of
 * one type's count (or bytes) over the interval, x[r] the requests route r
 * served in it. The fit finds per_request[r] >= 0 minimising
 * sum (y - sum_r per_request[r] * x[r] - intercept)^2 (non-negative least
 * squares; the intercept absorbs growth no route explains, e.g. a
 * background thread). docs/http-api.md (GET /api/routes) tells the method
 * and when it cannot separate two routes.
 *
 * Thread-safe (no state); allocates only its own scratch. */
#ifndef PYLOOT_ROUTE_FIT_H
#define PYLOOT_ROUTE_FIT_H

#include <stddef.h>

/* At most this many routes take part in one fit (the most requested). */
#define PL_ROUTE_FIT_MAX_ROUTES 64

typedef struct pl_route_coef {
    double per_request; /* >= 0 */
    double stderr_;     /* its standard error, NAN when it cannot be told */
    int separable;      /* 0: this route's requests move with another route's
                         * (their columns are nearly collinear), so its share
                         * cannot be told apart from that route's */
} pl_route_coef;

typedef struct pl_route_fit_result {
    double intercept; /* growth per interval not explained by requests */
    double r2;        /* coefficient of determination of the fit, 0..1 */
    size_t observations;
} pl_route_fit_result;

/* x: nobs rows of nroutes request counts (row-major), y: nobs changes.
 * coef: nroutes entries written. nroutes <= PL_ROUTE_FIT_MAX_ROUTES.
 * Returns 0, EINVAL (bad sizes, a non-finite input) or ENOMEM. With fewer
 * observations than nroutes + 2 every coefficient is 0 and not separable. */
int pl_route_fit(size_t nobs, size_t nroutes, const double *x, const double *y, pl_route_coef *coef,
                 pl_route_fit_result *res);

#endif
