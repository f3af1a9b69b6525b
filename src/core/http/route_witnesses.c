/* GET /api/witnesses: the recorded paths from a root to instances of a
 * growing type, answered from the store (docs/http-api.md). */
#include "http_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "pyloot/error.h"
#include "pyloot/json.h"

#define WITNESS_LIMIT_DEFAULT 10
#define WITNESS_LIMIT_MAX 100

/* See handler.h. */
int pl_witness_held_by(const pl_witness *w, pl_buf *out)
{
    for (size_t i = 0; i < w->n_steps; i++) {
        const pl_witness_step *s = &w->steps[i];
        if (i)
            pl_buf_printf(out, " \xE2\x86\x92 %s \xE2\x86\x92 ", s->via);
        pl_buf_puts(out, s->type);
        const char *q = strchr(s->repr, '\'');
        const char *e = q ? strchr(q + 1, '\'') : NULL;
        if (i == 0 && strcmp(s->type, "module") == 0 && strncmp(s->repr, "<module '", 9) == 0 && e)
            pl_buf_printf(out, " %.*s", (int)(e - q - 1), q + 1);
    }
    return out->err ? ENOMEM : 0;
}

/* See handler.h. */
int pl_json_witness(pl_buf *b, const pl_witness *w)
{
    pl_buf line = PL_BUF_INIT;
    pl_buf_puts(b, "{\"pid\":");
    pl_json_u64(b, w->inc.pid);
    pl_buf_puts(b, ",\"start\":");
    pl_json_u64_str(b, w->inc.start);
    pl_buf_puts(b, ",\"host\":");
    pl_json_cstr(b, w->host);
    pl_buf_printf(b, ",\"time\":%" PRId64 ".%03d,\"held_by\":", w->time_ms / 1000, (int)(w->time_ms % 1000));
    if (pl_witness_held_by(w, &line))
        b->err = ENOMEM;
    pl_json_str(b, line.data ? line.data : "", line.len);
    pl_buf_free(&line);
    pl_buf_puts(b, ",\"path\":[");
    for (size_t i = 0; i < w->n_steps; i++) {
        const pl_witness_step *st = &w->steps[i];
        pl_buf_puts(b, i ? ",{\"type\":" : "{\"type\":");
        pl_json_cstr(b, st->type);
        pl_buf_puts(b, ",\"via\":");
        if (i == 0)
            pl_buf_puts(b, "null");
        else
            pl_json_cstr(b, st->via);
        pl_buf_puts(b, ",\"repr\":");
        pl_json_cstr(b, st->repr);
        pl_buf_putc(b, '}');
    }
    pl_buf_putc(b, ']');
    if (w->site) {
        pl_buf_puts(b, ",\"created_at\":");
        pl_json_cstr(b, w->site);
    }
    pl_buf_putc(b, '}');
    return b->err ? ENOMEM : 0;
}

/* See http_int.h. */
void pl_route_witnesses(pl_handler *h, const pl_request *req, const char *rest, pl_response *resp)
{
    pl_buf group = PL_BUF_INIT, host = PL_BUF_INIT;
    pl_witness_list list = {0};
    uint64_t pid = 0, limit = WITNESS_LIMIT_DEFAULT;
    int rc;

    rc = pl_http_param_text(req->query, "group", 1, PL_TYPE_NAME_MAX, &group, resp);
    if (rc < 0)
        goto done;
    if (rc == 0) {
        pl_http_error(resp, 400, "parameter group is required (a type name as in /api/history)");
        goto done;
    }
    if (pl_http_param_uint(req->query, "pid", 1, PL_PARAM_PID_MAX, 0, &pid, resp) ||
        pl_http_param_uint(req->query, "limit", 1, WITNESS_LIMIT_MAX, WITNESS_LIMIT_DEFAULT, &limit, resp) ||
        pl_http_param_text(req->query, "host", 1, PL_PARAM_HOST_MAX, &host, resp) < 0)
        goto done;
    rc = pl_store_witnesses(h->opt.store, group.data, (uint32_t)pid, host.len ? host.data : NULL, (size_t)limit, &list);
    if (rc == PL_ENOTFOUND) {
        pl_http_error(resp, 404, "no type of that name in this store");
        goto done;
    }
    if (rc) {
        pl_http_error(resp, 503, "reading the store failed: %s", pl_strerror(rc));
        goto done;
    }
    pl_buf *b = &resp->body;
    pl_buf_reset(b);
    pl_http_json(resp, 200);
    pl_buf_puts(b, "{\"group\":");
    pl_json_str(b, group.data, group.len);
    pl_buf_puts(b, ",\"witnesses\":[");
    for (size_t i = 0; i < list.n; i++) {
        if (i)
            pl_buf_putc(b, ',');
        pl_json_witness(b, &list.w[i]);
    }
    pl_buf_puts(b, "]}");
done:
    pl_witness_list_free(&list);
    pl_buf_free(&group);
    pl_buf_free(&host);
}
