/* GET /api/history: counts by type over time, merged or per worker, read
 * from the store by whichever process gets the request (docs/http-api.md). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_int.h"
#include "pyloot/error.h"
#include "pyloot/json.h"
#include "pyloot/trend.h"

/* The JSON of a history page (docs/http-api.md): the time axis, the query as
 * it was understood, and the page's types with their series. */
static void encode_history(pl_buf *b, const pl_history *hist, const pl_history_query *hq, const char *q,
                           size_t qlen)
{
    pl_buf_puts(b, "{\"times\":[");
    for (size_t i = 0; i < hist->n_times; i++) {
        if (i)
            pl_buf_putc(b, ',');
        pl_http_json_time(b, hist->times[i]);
    }
    pl_buf_printf(b, "],\"total\":%" PRIu64 ",\"offset\":%" PRIu64 ",\"limit\":%" PRIu64 ",\"sort\":\"%s\",\"q\":",
                  hist->total, hq->offset, hq->limit, pl_sort_names[hq->sort]);
    pl_json_str(b, q, qlen);
    pl_buf_puts(b, ",\"pid\":");
    pl_http_json_pid_or_null(b, hq->pid);
    pl_buf_puts(b, ",\"as_of\":");
    pl_http_json_time_or_null(b, hist->as_of_ms);
    pl_buf_printf(b, ",\"live\":%s,\"since\":", hist->live ? "true" : "false");
    pl_http_json_time_or_null(b, hist->since_ms);
    pl_buf_puts(b, ",\"until\":");
    pl_http_json_time_or_null(b, hq->until_ms);
    pl_buf_printf(b, ",\"step\":");
    pl_http_json_time(b, hist->step_ms);
    pl_buf_puts(b, ",\"host\":");
    pl_http_json_host_or_null(b, hq->host);
    pl_buf_puts(b, ",\"trend\":");
    if (hq->trends) {
        pl_buf_putc(b, '[');
        for (int i = 0, n = 0; i < PL_TREND_N; i++)
            if (hq->trends >> i & 1u)
                pl_buf_printf(b, "%s\"%s\"", n++ ? "," : "", pl_trend_names[i]);
        pl_buf_putc(b, ']');
    } else {
        pl_buf_puts(b, "null");
    }
    pl_buf_puts(b, ",\"types\":[");
    for (size_t i = 0; i < hist->n_types; i++) {
        const pl_history_type *t = &hist->types[i];
        if (i)
            pl_buf_putc(b, ',');
        pl_buf_puts(b, "{\"name\":");
        pl_json_cstr(b, t->name);
        pl_buf_printf(b,
                      ",\"count\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"growth\":%" PRId64
                      ",\"bytes_growth\":%" PRId64 ",\"trend\":\"%s\",\"counts\":",
                      t->count, t->bytes, t->growth, t->bytes_growth, pl_trend_names[t->trend]);
        pl_http_json_series(b, t->counts, hist->n_times);
        pl_buf_puts(b, ",\"bytes_series\":");
        pl_http_json_series(b, t->bytes_series, hist->n_times);
        if (hq->per_worker) {
            pl_buf_puts(b, ",\"workers\":[");
            for (size_t j = 0; j < t->n_lines; j++) {
                if (j)
                    pl_buf_putc(b, ',');
                pl_buf_printf(b, "{\"pid\":%u,\"start\":\"%" PRIu64 "\",\"host\":", t->lines[j].inc.pid,
                              t->lines[j].inc.start);
                pl_json_cstr(b, t->lines[j].host);
                pl_buf_printf(b, ",\"trend\":\"%s\",\"counts\":", pl_trend_names[t->lines[j].trend]);
                pl_http_json_series(b, t->lines[j].counts, hist->n_times);
                pl_buf_putc(b, '}');
            }
            pl_buf_putc(b, ']');
        }
        pl_buf_putc(b, '}');
    }
    pl_buf_puts(b, "]}");
}

/* See http_int.h. */
void pl_route_history(pl_handler *h, const pl_request *req, const char *rest, pl_response *resp)
{
    pl_buf q = PL_BUF_INIT, tmp = PL_BUF_INIT, host = PL_BUF_INIT, trend = PL_BUF_INIT;
    pl_history *hist = NULL;
    pl_history_query hq;
    memset(&hq, 0, sizeof hq);

    const char *query = req->query;
    uint64_t pid = 0, workers = 0, points = 0;
    int rc;
    if (pl_http_param_text(query, "q", 0, PL_PARAM_QUERY_MAX, &q, resp) < 0 ||
        pl_http_param_text(query, "sort", 1, 16, &tmp, resp) < 0)
        goto done;
    hq.q = q.len ? q.data : NULL;
    hq.sort = PL_SORT_GROWTH;
    if (tmp.len && (hq.sort = pl_sort_from_name(tmp.data, tmp.len)) < 0) {
        pl_http_error(resp, 400, "parameter sort must be %s", pl_sort_list);
        goto done;
    }
    hq.now_ms = pl_now_ms();
    if (pl_http_param_uint(query, "offset", 0, PL_PARAM_OFFSET_MAX, 0, &hq.offset, resp) ||
        pl_http_param_uint(query, "limit", 1, 1000, 50, &hq.limit, resp) ||
        pl_http_param_uint(query, "top", 1, 100000, 0, &hq.top, resp) ||
        pl_http_param_uint(query, "pid", 1, PL_PARAM_PID_MAX, 0, &pid, resp) ||
        pl_http_param_uint(query, "workers", 0, 1, 0, &workers, resp) ||
        pl_http_param_uint(query, "points", 2, 5000, 720, &points, resp) ||
        pl_http_param_text(query, "host", 1, PL_PARAM_HOST_MAX, &host, resp) < 0 ||
        pl_http_param_time(query, "since", hq.now_ms, &hq.since_ms, resp) ||
        pl_http_param_time(query, "until", hq.now_ms, &hq.until_ms, resp) ||
        pl_http_param_text(query, "trend", 1, 64, &trend, resp) < 0)
        goto done;
    if (trend.len && pl_trend_mask_parse(trend.data, trend.len, &hq.trends)) {
        pl_http_error(resp, 400, "parameter trend must be a comma-separated list of %s", pl_trend_list);
        goto done;
    }
    hq.host = host.len ? host.data : NULL;
    hq.pid = (uint32_t)pid;
    hq.per_worker = (int)workers;
    hq.max_points = (uint32_t)points;
    if (pl_http_scope_check(h->opt.store, hq.pid, hq.host, hq.since_ms, hq.until_ms, resp))
        goto done;
    rc = pl_store_history(h->opt.store, &hq, &hist);
    if (rc == PL_ENOTFOUND && (pid || hq.host)) {
        pl_http_scope_not_found(resp, hq.pid, hq.host);
        goto done;
    }
    if (rc) {
        pl_http_error(resp, 503, "reading the history failed: %s", pl_strerror(rc));
        goto done;
    }
    pl_http_json(resp, 200);
    encode_history(&resp->body, hist, &hq, q.data ? q.data : "", q.len);
done:
    pl_history_free(hist);
    pl_buf_free(&q);
    pl_buf_free(&tmp);
    pl_buf_free(&host);
    pl_buf_free(&trend);
}
