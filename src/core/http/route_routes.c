/* GET /api/routes: the requests each route served over a window, merged
 * over the workers, and with group= the growth of one type per request of
 * each route (docs/http-api.md). Decode -> check -> read -> encode. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_int.h"
#include "pyloot/error.h"
#include "pyloot/json.h"
#include "pyloot/route_obs.h"

/* Routes listed at most without group= (limit=). */
#define ROUTES_LIMIT_MAX 1000

static void encode_window(pl_buf *b, const pl_routes_query *q, const pl_route_totals *t)
{
    pl_buf_puts(b, "\"pid\":");
    pl_http_json_pid_or_null(b, q->pid);
    pl_buf_puts(b, ",\"host\":");
    pl_http_json_host_or_null(b, q->host);
    pl_buf_puts(b, ",\"since\":");
    pl_http_json_time_or_null(b, q->since_ms);
    pl_buf_puts(b, ",\"until\":");
    pl_http_json_time_or_null(b, q->until_ms);
    pl_buf_printf(b, ",\"workers\":%zu,\"requests\":", t->workers);
    pl_json_u64(b, t->requests);
}

static void encode_totals(pl_buf *b, const pl_routes_query *q, const pl_route_totals *t, size_t limit)
{
    pl_buf_putc(b, '{');
    encode_window(b, q, t);
    pl_buf_printf(b, ",\"total\":%zu,\"routes\":[", t->n);
    for (size_t i = 0; i < t->n && i < limit; i++) {
        if (i)
            pl_buf_putc(b, ',');
        pl_buf_puts(b, "{\"route\":");
        pl_json_cstr(b, t->routes[i].name);
        pl_buf_puts(b, ",\"requests\":");
        pl_json_u64(b, t->routes[i].requests);
        pl_buf_putc(b, '}');
    }
    pl_buf_puts(b, "]}");
}

static void encode_growth(pl_buf *b, const pl_routes_query *q, const char *group, const pl_route_growth_result *g)
{
    pl_buf_puts(b, "{\"group\":");
    pl_json_cstr(b, group);
    pl_buf_puts(b, ",\"r2\":");
    pl_json_f64(b, g->fit.r2);
    pl_buf_puts(b, ",\"observations\":");
    pl_json_u64(b, g->fit.observations);
    pl_buf_puts(b, ",\"outliers\":");
    pl_json_u64(b, g->fit.outliers);
    pl_buf_puts(b, ",\"intercept\":");
    pl_json_f64(b, g->fit.intercept);
    pl_buf_putc(b, ',');
    encode_window(b, q, g->totals);
    pl_buf_puts(b, ",\"routes\":[");
    for (size_t i = 0; i < g->n; i++) {
        const pl_route_growth *r = &g->routes[i];
        if (i)
            pl_buf_putc(b, ',');
        pl_buf_puts(b, "{\"route\":");
        pl_json_cstr(b, r->name);
        pl_buf_puts(b, ",\"requests\":");
        pl_json_u64(b, r->requests);
        pl_buf_puts(b, ",\"per_request\":");
        pl_json_f64(b, r->coef.per_request);
        pl_buf_puts(b, ",\"stderr\":");
        pl_json_f64(b, r->coef.stderr_);
        pl_buf_puts(b, ",\"contribution\":");
        pl_json_f64(b, r->contribution);
        pl_buf_puts(b, ",\"separable\":");
        pl_json_bool(b, r->coef.separable);
        pl_buf_putc(b, '}');
    }
    pl_buf_puts(b, "]}");
}

/* See http_int.h. */
void pl_route_routes(pl_handler *h, const pl_request *req, const char *rest, pl_response *resp)
{
    pl_buf host = PL_BUF_INIT, group = PL_BUF_INIT;
    pl_route_totals *totals = NULL;
    pl_route_growth_result *growth = NULL;
    pl_routes_query q;
    const char *query = req->query;
    uint64_t pid = 0, limit = 0, points = 0;
    int64_t now = pl_now_ms();
    int rc, has_group;

    (void)rest;
    memset(&q, 0, sizeof q);
    if (pl_http_param_uint(query, "pid", 1, PL_PARAM_PID_MAX, 0, &pid, resp) ||
        pl_http_param_uint(query, "limit", 1, ROUTES_LIMIT_MAX, 100, &limit, resp) ||
        pl_http_param_uint(query, "points", 2, 5000, 720, &points, resp) ||
        pl_http_param_text(query, "host", 1, PL_PARAM_HOST_MAX, &host, resp) < 0 ||
        (has_group = pl_http_param_text(query, "group", 1, PL_TYPE_NAME_MAX, &group, resp)) < 0 ||
        pl_http_param_time(query, "since", now, &q.since_ms, resp) ||
        pl_http_param_time(query, "until", now, &q.until_ms, resp))
        goto done;
    q.host = host.len ? host.data : NULL;
    q.pid = (uint32_t)pid;
    if (pl_http_scope_check(h->opt.store, q.pid, q.host, q.since_ms, q.until_ms, resp))
        goto done;
    rc = pl_route_totals_read(h->opt.store, &q, &totals);
    if (rc == PL_ENOTFOUND) {
        pl_http_scope_not_found(resp, q.pid, q.host);
        goto done;
    }
    if (rc == PL_ETOOBIG) {
        pl_http_error(resp, 400, "more than %u stored route counts in the window: narrow it with since, until, "
                      "pid or host", PL_ROUTE_READ_MAX);
        goto done;
    }
    if (rc) {
        pl_http_error(resp, 503, "reading the requests by route failed: %s", pl_strerror(rc));
        goto done;
    }
    if (!has_group) {
        pl_http_json(resp, 200);
        encode_totals(&resp->body, &q, totals, (size_t)limit);
        goto done;
    }
    rc = pl_route_growth_read(h->opt.store, &q, totals, group.data, (uint32_t)points, now, &growth);
    totals = NULL;
    if (rc == PL_ENOTFOUND) {
        pl_http_error(resp, 404, "no type of that name in this store");
        goto done;
    }
    if (rc) {
        pl_http_error(resp, 503, "fitting the growth per request failed: %s", pl_strerror(rc));
        goto done;
    }
    pl_http_json(resp, 200);
    encode_growth(&resp->body, &q, group.data, growth);
done:
    pl_route_totals_free(totals);
    pl_route_growth_free(growth);
    pl_buf_free(&group);
    pl_buf_free(&host);
}
