/* The route of each grower in `pyloot report`: the route whose requests
 * explain most of the type's growth (pl_route_growth_read: the same fit as
 * GET /api/routes?group=), when the workers counted their requests. */
#include "report.h"

#include <stdio.h>
#include <stdlib.h>

#include "pyloot/error.h"
#include "pyloot/json.h"

/* See report.h. */
int pl_cli_report_route_read(pl_store *store, const char *type, pl_route_growth_result **out)
{
    pl_routes_query q = {0};
    pl_route_totals *totals = NULL;
    int rc;

    *out = NULL;
    rc = pl_route_totals_read(store, &q, &totals);
    if (rc)
        return rc;
    if (!totals->n) {
        pl_route_totals_free(totals);
        return 0;
    }
    rc = pl_route_growth_read(store, &q, totals, type, 0, pl_now_ms(), out);
    return rc == PL_ENOTFOUND ? 0 : rc;
}

/* The route of g with the largest contribution, when it is above 0. */
static const pl_route_growth *top_route(const pl_route_growth_result *g)
{
    return g && g->n && g->routes[0].contribution > 0 ? &g->routes[0] : NULL;
}

/* See report.h. */
void pl_cli_report_route_text(const pl_route_growth_result *g)
{
    const pl_route_growth *r = top_route(g);

    if (!g)
        return;
    if (!r) {
        printf("    grows with: no route's requests explain it (%zu observations)\n", g->fit.observations);
        return;
    }
    printf("    grows with %s: %+.2f per request (%.0f of its growth over %llu requests%s)\n", r->name,
           r->coef.per_request, r->contribution, (unsigned long long)r->requests,
           r->coef.separable ? "" : "; not told apart from another route");
}

/* See report.h. */
void pl_cli_report_route_json(pl_buf *b, const pl_route_growth_result *g)
{
    const pl_route_growth *r = top_route(g);

    pl_buf_puts(b, "\"route\":");
    if (!r) {
        pl_buf_puts(b, "null");
        return;
    }
    pl_buf_puts(b, "{\"route\":");
    pl_json_cstr(b, r->name);
    pl_buf_puts(b, ",\"per_request\":");
    pl_json_f64(b, r->coef.per_request);
    pl_buf_puts(b, ",\"requests\":");
    pl_json_u64(b, r->requests);
    pl_buf_puts(b, ",\"contribution\":");
    pl_json_f64(b, r->contribution);
    pl_buf_puts(b, ",\"separable\":");
    pl_json_bool(b, r->coef.separable);
    pl_buf_puts(b, ",\"r2\":");
    pl_json_f64(b, g->fit.r2);
    pl_buf_putc(b, '}');
}
