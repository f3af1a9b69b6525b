/* GET /api/procs: the store and every incarnation in it (docs/http-api.md). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_int.h"
#include "pyloot/error.h"
#include "pyloot/json.h"
#include "pyloot/redact.h"
#include "pyloot/verify.h"

/* ,"recovered_from":...,"recovered_reason":...,"recovered_at":... of a store
 * started in place of a damaged one (null when it was not). */
static void json_recovery(pl_store *store, pl_buf *b)
{
    pl_buf moved = PL_BUF_INIT, reason = PL_BUF_INIT;
    int64_t when = 0;

    if (pl_store_recovery(store, &moved, &reason, &when) == 0) {
        pl_buf_puts(b, ",\"recovered_from\":");
        pl_json_cstr(b, pl_buf_cstr(&moved));
        pl_buf_puts(b, ",\"recovered_reason\":");
        pl_json_cstr(b, pl_buf_cstr(&reason));
        pl_buf_puts(b, ",\"recovered_at\":");
        pl_http_json_time(b, when);
    } else {
        pl_buf_puts(b, ",\"recovered_from\":null,\"recovered_reason\":null,\"recovered_at\":null");
    }
    pl_buf_free(&moved);
    pl_buf_free(&reason);
}

/* See handler.h. */
void pl_json_proc_end(pl_buf *b, const pl_proc_info *p)
{
    int value = 0, how = pl_proc_end_kind(p, &value);
    const char *name = pl_signal_name(value);

    if (how == PL_END_NONE) {
        pl_buf_puts(b, "null");
    } else if (how == PL_END_CLEAN) {
        pl_buf_puts(b, "{\"how\":\"clean\"}");
    } else if (how == PL_END_EXITED) {
        pl_buf_printf(b, "{\"how\":\"exited\",\"code\":%d}", value);
    } else if (!value) {
        pl_buf_puts(b, "{\"how\":\"killed\",\"signal\":null,\"name\":null}");
    } else {
        pl_buf_printf(b, "{\"how\":\"killed\",\"signal\":%d,\"name\":", value);
        if (name)
            pl_json_cstr(b, name);
        else
            pl_buf_puts(b, "null");
        pl_buf_putc(b, '}');
    }
}

/* See http_int.h. */
void pl_route_procs(pl_handler *h, const pl_request *req, const char *rest, pl_response *resp)
{
    pl_buf argv = PL_BUF_INIT;
    pl_store_stat st;
    pl_proc_info *procs = NULL;
    size_t n = 0;
    int rc = pl_store_stat_get(h->opt.store, &st);
    if (!rc)
        rc = pl_store_procs(h->opt.store, &procs, &n);
    if (rc) {
        pl_http_error(resp, 503, "reading the store failed: %s", pl_strerror(rc));
        goto done;
    }
    pl_buf *b = &resp->body;
    pl_http_json(resp, 200);
    pl_buf_puts(b, "{\"store\":{\"path\":");
    pl_json_cstr(b, pl_store_path(h->opt.store));
    pl_buf_printf(b,
                  ",\"map_size\":%" PRIu64 ",\"used_bytes\":%" PRIu64 ",\"max_bytes\":%" PRIu64
                  ",\"max_samples\":%u,\"max_age_s\":%" PRIu64 ",\"types\":%u,\"schema\":%u",
                  st.map_size, st.used_bytes, st.max_bytes, st.max_samples, st.max_age_s, st.types,
                  st.schema);
    json_recovery(h->opt.store, b);
    pl_buf_puts(b, "},");
    pl_json_key(b, "self");
    if (h->opt.self.pid)
        pl_http_json_incarnation(b, &h->opt.self);
    else
        pl_buf_puts(b, "null");
    pl_buf_puts(b, ",\"procs\":[");
    for (size_t i = 0; i < n; i++) {
        const pl_proc_info *p = &procs[i];
        if (i)
            pl_buf_putc(b, ',');
        pl_buf_printf(b, "{\"pid\":%u,\"start\":\"%" PRIu64 "\",\"alive\":%s,\"started\":", p->inc.pid,
                      p->inc.start, p->alive ? "true" : "false");
        pl_http_json_time(b, p->first_seen_ms);
        pl_buf_puts(b, ",\"last_seen\":");
        pl_http_json_time(b, p->last_seen_ms);
        pl_buf_puts(b, ",\"ended\":");
        if (p->ended_ms)
            pl_http_json_time(b, p->ended_ms);
        else
            pl_buf_puts(b, "null");
        pl_buf_puts(b, ",\"end\":");
        pl_json_proc_end(b, p);
        pl_buf_puts(b, ",\"host\":");
        pl_json_cstr(b, p->host);
        /* Summary routes are open to everyone by default: the command
         * line is shown with its secrets redacted (pyloot/redact.h). */
        pl_buf_puts(b, ",\"argv\":");
        pl_buf_reset(&argv);
        if (pl_redact_cmdline(NULL, p->argv, &argv)) {
            pl_http_error(resp, 500, "out of memory");
            goto done;
        }
        pl_json_str(b, argv.data ? argv.data : "", argv.len);
        pl_buf_printf(b, ",\"interval\":%.3f,\"rss\":%" PRIu64 ",\"samples\":%u", p->interval_ms / 1000.0,
                      p->rss, p->samples);
        pl_buf_printf(b, ",\"collection_seconds\":%.6f,\"gil_held_seconds_total\":%.6f",
                      p->stats.collection_us / 1e6, p->stats.gil_held_us / 1e6);
        pl_buf_printf(b, ",\"remote\":%s", p->remote ? "true" : "false");
        if (p->remote)
            pl_buf_printf(b, ",\"worker_start\":\"%" PRIu64 "\"", p->worker_start);
        pl_buf_putc(b, '}');
    }
    pl_buf_puts(b, "]}");
done:
    pl_buf_free(&argv);
    free(procs);
}
