/* pyloot core: requests by route read back, totals and the per-route
 * growth fit's observations (pyloot/route_obs.h). */
#include "pyloot/route_obs.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pyloot/error.h"

/* ----------------------------------------------------------------- totals */

static int by_requests(const void *a, const void *b)
{
    const pl_route_total *x = a, *y = b;
    if (x->requests != y->requests)
        return x->requests > y->requests ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* See route_obs.h. */
int pl_route_totals_read(pl_store *s, const pl_routes_query *q, pl_route_totals **out)
{
    pl_route_totals *t = NULL;
    uint64_t *sum = NULL;
    size_t i;
    int rc;

    *out = NULL;
    t = calloc(1, sizeof *t);
    if (!t)
        return ENOMEM;
    rc = pl_store_routes(s, q, &t->data);
    if (rc)
        goto out;
    const pl_route_data *d = t->data;
    t->workers = d->n_workers;
    sum = calloc(d->n_names ? d->n_names : 1, sizeof *sum);
    t->routes = calloc(d->n_names ? d->n_names : 1, sizeof *t->routes);
    if (!sum || !t->routes) {
        rc = ENOMEM;
        goto out;
    }
    for (i = 0; i < d->n_entries; i++) {
        uint64_t *v = &sum[d->entries[i].route_id];
        uint64_t r = d->entries[i].requests;
        *v = *v + r < r ? UINT64_MAX : *v + r;
        t->requests = t->requests + r < r ? UINT64_MAX : t->requests + r;
    }
    for (i = 0; i < d->n_names; i++)
        if (d->names[i] && sum[i])
            t->routes[t->n++] = (pl_route_total){d->names[i], (uint32_t)i, sum[i]};
    qsort(t->routes, t->n, sizeof *t->routes, by_requests);
    *out = t;
    t = NULL;
out:
    free(sum);
    pl_route_totals_free(t);
    return rc;
}

/* See route_obs.h. */
void pl_route_totals_free(pl_route_totals *t)
{
    if (!t)
        return;
    free(t->routes);
    pl_route_data_free(t->data);
    free(t);
}

/* ----------------------------------------------------------- observations */

/* The history of exactly the type named group (per worker): the page of
 * the name-sorted, substring-filtered list that holds it. *type points into
 * *out. PL_ENOTFOUND when there is none. */
static int read_history(pl_store *s, const pl_routes_query *q, const char *group, uint32_t points, int64_t now_ms,
                        pl_history **out, const pl_history_type **type)
{
    pl_history_query hq;
    uint64_t offset = 0;
    int rc;

    *out = NULL;
    *type = NULL;
    for (;;) {
        pl_history *h = NULL;
        memset(&hq, 0, sizeof hq);
        hq.q = group;
        hq.sort = PL_SORT_NAME;
        hq.offset = offset;
        hq.limit = 50;
        hq.pid = q->pid;
        hq.host = q->host;
        hq.per_worker = 1;
        hq.max_points = points;
        hq.now_ms = now_ms;
        hq.since_ms = q->since_ms;
        hq.until_ms = q->until_ms;
        if ((rc = pl_store_history(s, &hq, &h)))
            return rc;
        for (size_t i = 0; i < h->n_types; i++) {
            if (strcmp(h->types[i].name, group) == 0) {
                *out = h;
                *type = &h->types[i];
                return 0;
            }
        }
        offset += h->n_types;
        int more = h->n_types && offset < h->total;
        pl_history_free(h);
        if (!more)
            return PL_ENOTFOUND;
    }
}

static int same_inc(const pl_incarnation *a, const pl_incarnation *b)
{
    return a->pid == b->pid && a->start == b->start;
}

/* The observations of one worker: appends rows to *x (ncols wide) and *y. */
static int worker_obs(const pl_route_data *d, const pl_route_worker *w, const pl_history *h,
                      const pl_history_line *line, const int *col, size_t ncols, double **x, double **y,
                      size_t *nobs, size_t *cap)
{
    size_t r = 0, i;

    /* Records at or before the first point belong to no observation. */
    while (r < w->n_records && h->n_times && w->records[r].time_ms <= h->times[0])
        r++;
    for (i = 1; i < h->n_times; i++) {
        size_t r0 = r;
        while (r < w->n_records && w->records[r].time_ms <= h->times[i])
            r++;
        if (r == r0 || line->counts[i - 1] < 0 || line->counts[i] < 0)
            continue;
        if (*nobs == *cap) {
            size_t c = *cap ? *cap * 2 : 256;
            double *nx = realloc(*x, c * (ncols ? ncols : 1) * sizeof *nx);
            if (!nx)
                return ENOMEM;
            *x = nx;
            double *ny = realloc(*y, c * sizeof *ny);
            if (!ny)
                return ENOMEM;
            *y = ny;
            *cap = c;
        }
        double *row = *x + *nobs * ncols;
        for (size_t c = 0; c < ncols; c++)
            row[c] = 0;
        for (size_t k = r0; k < r; k++) {
            const pl_route_record *rec = &w->records[k];
            for (size_t e = rec->first; e < rec->first + rec->n; e++) {
                uint32_t id = d->entries[e].route_id;
                if (id < d->n_names && col[id] >= 0)
                    row[col[id]] += (double)d->entries[e].requests;
            }
        }
        (*y)[*nobs] = (double)(line->counts[i] - line->counts[i - 1]);
        (*nobs)++;
    }
    return 0;
}

static int by_contribution(const void *a, const void *b)
{
    const pl_route_growth *x = a, *y = b;
    if (x->contribution != y->contribution)
        return x->contribution > y->contribution ? -1 : 1;
    if (x->requests != y->requests)
        return x->requests > y->requests ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* See route_obs.h. */
int pl_route_growth_read(pl_store *s, const pl_routes_query *q, pl_route_totals *totals, const char *group,
                         uint32_t points, int64_t now_ms, pl_route_growth_result **out)
{
    pl_route_growth_result *g = NULL;
    pl_history *h = NULL;
    const pl_history_type *type = NULL;
    pl_route_coef *coef = NULL;
    double *x = NULL, *y = NULL;
    int *col = NULL;
    size_t ncols, nobs = 0, cap = 0, i;
    int rc;

    *out = NULL;
    g = calloc(1, sizeof *g);
    if (!g) {
        pl_route_totals_free(totals);
        return ENOMEM;
    }
    g->totals = totals;
    if ((rc = read_history(s, q, group, points, now_ms, &h, &type)))
        goto out;
    const pl_route_data *d = g->totals->data;
    ncols = g->totals->n < PL_ROUTE_FIT_MAX_ROUTES ? g->totals->n : PL_ROUTE_FIT_MAX_ROUTES;
    col = malloc((d->n_names ? d->n_names : 1) * sizeof *col);
    coef = calloc(ncols ? ncols : 1, sizeof *coef);
    g->routes = calloc(ncols ? ncols : 1, sizeof *g->routes);
    if (!col || !coef || !g->routes) {
        rc = ENOMEM;
        goto out;
    }
    for (i = 0; i < d->n_names; i++)
        col[i] = -1;
    for (i = 0; i < ncols; i++)
        col[g->totals->routes[i].route_id] = (int)i;
    for (i = 0; i < type->n_lines; i++) {
        const pl_history_line *line = &type->lines[i];
        for (size_t j = 0; j < d->n_workers; j++) {
            if (same_inc(&d->workers[j].inc, &line->inc)) {
                if ((rc = worker_obs(d, &d->workers[j], h, line, col, ncols, &x, &y, &nobs, &cap)))
                    goto out;
                break;
            }
        }
    }
    if ((rc = pl_route_fit_robust(nobs, ncols, x, y, coef, &g->fit)))
        goto out;
    for (i = 0; i < ncols; i++) {
        pl_route_growth *r = &g->routes[i];
        r->name = g->totals->routes[i].name;
        r->requests = g->totals->routes[i].requests;
        r->coef = coef[i];
        r->contribution = coef[i].per_request * (double)r->requests;
    }
    g->n = ncols;
    qsort(g->routes, g->n, sizeof *g->routes, by_contribution);
    *out = g;
    g = NULL;
out:
    pl_history_free(h);
    free(coef);
    free(col);
    free(x);
    free(y);
    pl_route_growth_free(g);
    return rc;
}

/* See route_obs.h. */
void pl_route_growth_free(pl_route_growth_result *g)
{
    if (!g)
        return;
    free(g->routes);
    pl_route_totals_free(g->totals);
    free(g);
}
