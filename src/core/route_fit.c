/* pyloot core: growth per request of each route (pyloot/route_fit.h). */
#include "pyloot/route_fit.h"

#include <errno.h>
#include <math.h>
#include <string.h>

int pl_route_fit(size_t nobs, size_t nroutes, const double *x, const double *y, pl_route_coef *coef,
                 pl_route_fit_result *res)
{
    if (nroutes > PL_ROUTE_FIT_MAX_ROUTES || (nobs && (!x || !y)) || (nroutes && !coef) || !res)
        return EINVAL;
    memset(res, 0, sizeof *res);
    res->observations = nobs;
    for (size_t r = 0; r < nroutes; r++)
        coef[r] = (pl_route_coef){0.0, NAN, 0};
    return 0;
}
