/* pyloot core: growth per request of each route.
 *
 * One observation is one worker's one sample interval: y is the change of
 * one type's count (or bytes) over the interval, x[r] the requests route r
 * served in it. The fit finds per_request[r] >= 0 minimising
 * sum (y - sum_r per_request[r] * x[r] - intercept)^2 (non-negative least
 * squares; the intercept, not constrained, absorbs growth no route
 * explains, e.g. a background thread, or garbage freed). docs/routes.md
 * tells the method, its assumptions and when it cannot separate two routes.
 *
 * Thread-safe (no state); allocates only its own scratch (about
 * 3 x (nroutes + 1)^2 doubles), freed before it returns. Time: one pass
 * of about nroutes^2 / 2 multiply-adds per observation, a second of one
 * per kept route, and work on the small system that does not depend on
 * nobs (64 routes x 100,000 observations: ~0.15 s, bench/README.md). */
#ifndef PYLOOT_ROUTE_FIT_H
#define PYLOOT_ROUTE_FIT_H

#include <stddef.h>

/* At most this many routes take part in one fit (the most requested). */
#define PL_ROUTE_FIT_MAX_ROUTES 64

typedef struct pl_route_coef {
    double per_request; /* >= 0 */
    double stderr_;     /* its standard error: from the residual variance and
                         * (X'X)^-1 of the routes the fit kept; for a route held
                         * at 0, the error it would have if it joined them.
                         * NAN when it cannot be told (not separable, or no
                         * degree of freedom left) */
    int separable;      /* 0: this route's requests move with another route's
                         * (less than 4 % of its variance is its own: 1 - R^2
                         * of it on the other routes < 0.04, which any other
                         * route correlated at |r| > 0.98 causes), or never
                         * vary at all, so its share cannot be told apart from
                         * that route's or from the intercept */
} pl_route_coef;

typedef struct pl_route_fit_result {
    double intercept; /* growth per interval not explained by requests */
    double r2;        /* coefficient of determination of the fit, 0..1; 0 when
                       * y never changes or too few observations */
    size_t observations;
    size_t outliers;  /* observations left out by pl_route_fit_robust */
} pl_route_fit_result;

/* x: nobs rows of nroutes request counts (row-major), y: nobs changes.
 * coef: nroutes entries written. nroutes <= PL_ROUTE_FIT_MAX_ROUTES.
 * Returns 0, EINVAL (bad sizes, a NULL array, a non-finite input, values so
 * large their squares overflow) or ENOMEM; on an error nothing is written.
 * With fewer observations than nroutes + 2 every coefficient is 0 and not
 * separable, the intercept is the mean of y and r2 is 0. */
int pl_route_fit(size_t nobs, size_t nroutes, const double *x, const double *y, pl_route_coef *coef,
                 pl_route_fit_result *res);

/* pl_route_fit, then once more without the outliers of that fit: the
 * observations whose residual is beyond PL_ROUTE_FIT_OUTLIER_MADS times
 * the residuals' scaled median absolute deviation (1.4826 MAD, sigma for
 * normal noise), when there are at most a tenth of them and the MAD is not
 * 0. A worker's warm-up (imports and caches filled by its first requests: a
 * jump of thousands of str in one interval) is such an outlier, and in a
 * least-squares fit it alone can push every route to 0. res->outliers says
 * how many were left out; res->observations counts all. Same errors. */
#define PL_ROUTE_FIT_OUTLIER_MADS 5.0
int pl_route_fit_robust(size_t nobs, size_t nroutes, const double *x, const double *y, pl_route_coef *coef,
                        pl_route_fit_result *res);

#endif
