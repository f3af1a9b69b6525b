/* GET /api/memory: where the workers' memory was over time (RSS split into
 * Python objects, allocator free and other), merged and per worker, on the
 * history's time axis (docs/http-api.md). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_int.h"
#include "pyloot/error.h"
#include "pyloot/json.h"

static void encode_series(pl_buf *b, const pl_memory_series *s, size_t n)
{
    const pl_memory_growth g = s->growth;

    pl_buf_puts(b, "\"growth\":");
    if (g.known)
        pl_buf_printf(b,
                      "{\"rss\":%" PRId64 ",\"python_bytes\":%" PRId64 ",\"allocator_free_bytes\":%" PRId64
                      ",\"other_bytes\":%" PRId64 ",\"outside_python\":%s},",
                      g.rss, g.python_bytes, g.allocator_free_bytes, g.other_bytes,
                      pl_memory_outside_python(&g) ? "true" : "false");
    else
        pl_buf_puts(b, "null,");
    pl_buf_puts(b, "\"rss\":");
    pl_http_json_series(b, s->rss, n);
    pl_buf_puts(b, ",\"python_bytes\":");
    pl_http_json_series(b, s->python_bytes, n);
    pl_buf_puts(b, ",\"allocator_free_bytes\":");
    pl_http_json_series(b, s->allocator_free_bytes, n);
    pl_buf_puts(b, ",\"other_bytes\":");
    pl_http_json_series(b, s->other_bytes, n);
}

static void encode_memory(pl_buf *b, const pl_memory *m, const pl_memory_query *q)
{
    pl_buf_puts(b, "{\"time\":[");
    for (size_t i = 0; i < m->n_times; i++) {
        if (i)
            pl_buf_putc(b, ',');
        pl_http_json_time(b, m->times[i]);
    }
    pl_buf_puts(b, "],\"pid\":");
    pl_http_json_pid_or_null(b, q->pid);
    pl_buf_puts(b, ",\"host\":");
    pl_http_json_host_or_null(b, q->host);
    pl_buf_puts(b, ",\"as_of\":");
    pl_http_json_time_or_null(b, m->as_of_ms);
    pl_buf_printf(b, ",\"live\":%s,\"since\":", m->live ? "true" : "false");
    pl_http_json_time_or_null(b, q->since_ms);
    pl_buf_puts(b, ",\"until\":");
    pl_http_json_time_or_null(b, q->until_ms);
    pl_buf_puts(b, ",\"step\":");
    pl_http_json_time(b, m->step_ms);
    pl_buf_puts(b, ",\"merged\":{");
    encode_series(b, &m->merged, m->n_times);
    pl_buf_puts(b, "},\"workers\":[");
    for (size_t j = 0; j < m->n_workers; j++) {
        const pl_memory_worker *w = &m->workers[j];
        if (j)
            pl_buf_putc(b, ',');
        pl_buf_printf(b, "{\"pid\":%u,\"start\":\"%" PRIu64 "\",\"host\":", w->inc.pid, w->inc.start);
        pl_json_cstr(b, w->host);
        pl_buf_putc(b, ',');
        encode_series(b, &w->s, m->n_times);
        pl_buf_putc(b, '}');
    }
    pl_buf_puts(b, "]}");
}

/* See http_int.h. */
void pl_route_memory(pl_handler *h, const pl_request *req, const char *rest, pl_response *resp)
{
    pl_buf host = PL_BUF_INIT;
    pl_memory *mem = NULL;
    pl_memory_query mq;
    const char *query = req->query;
    uint64_t pid = 0, points = 0;
    int64_t now = pl_now_ms();
    int rc;

    memset(&mq, 0, sizeof mq);
    if (pl_http_param_uint(query, "pid", 1, PL_PARAM_PID_MAX, 0, &pid, resp) ||
        pl_http_param_uint(query, "points", 2, 5000, 720, &points, resp) ||
        pl_http_param_text(query, "host", 1, PL_PARAM_HOST_MAX, &host, resp) < 0 ||
        pl_http_param_time(query, "since", now, &mq.since_ms, resp) ||
        pl_http_param_time(query, "until", now, &mq.until_ms, resp))
        goto done;
    mq.host = host.len ? host.data : NULL;
    mq.pid = (uint32_t)pid;
    mq.max_points = (uint32_t)points;
    mq.now_ms = now;
    if (pl_http_scope_check(h->opt.store, mq.pid, mq.host, mq.since_ms, mq.until_ms, resp))
        goto done;
    rc = pl_store_memory(h->opt.store, &mq, &mem);
    if (rc == PL_ENOTFOUND && (pid || mq.host)) {
        pl_http_scope_not_found(resp, mq.pid, mq.host);
        goto done;
    }
    if (rc) {
        pl_http_error(resp, 503, "reading the memory figures failed: %s", pl_strerror(rc));
        goto done;
    }
    pl_http_json(resp, 200);
    encode_memory(&resp->body, mem, &mq);
done:
    pl_memory_free(mem);
    pl_buf_free(&host);
}
