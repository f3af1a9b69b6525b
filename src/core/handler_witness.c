/* GET /api/witnesses: the recorded paths from a root to instances of a
 * growing type, answered from the store (docs/http-api.md). */
#include "handler_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "pyloot/error.h"
#include "pyloot/json.h"

#define WITNESS_LIMIT_DEFAULT 10
#define WITNESS_LIMIT_MAX 100

/* Strict decimal in [lo, hi]; 0 or -1. */
static int parse_bounded(const pl_buf *b, uint64_t lo, uint64_t hi, uint64_t *out)
{
    uint64_t v = 0;

    if (!b->len || b->len > 18)
        return -1;
    for (size_t i = 0; i < b->len; i++) {
        if (b->data[i] < '0' || b->data[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(b->data[i] - '0');
    }
    if (v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* See handler.h. */
int pl_json_witness(pl_buf *b, const pl_witness *w)
{
    pl_buf_puts(b, "{\"pid\":");
    pl_json_u64(b, w->inc.pid);
    pl_buf_puts(b, ",\"start\":");
    pl_json_u64(b, w->inc.start);
    pl_buf_puts(b, ",\"host\":");
    pl_json_cstr(b, w->host);
    pl_buf_printf(b, ",\"time\":%" PRId64 ".%03d,\"path\":[", w->time_ms / 1000, (int)(w->time_ms % 1000));
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
    pl_buf_puts(b, "]}");
    return b->err ? ENOMEM : 0;
}

/* See handler_int.h. */
void pl_handle_witnesses(pl_store *store, const char *query, pl_response *resp)
{
    pl_buf group = PL_BUF_INIT, tmp = PL_BUF_INIT, host = PL_BUF_INIT;
    pl_witness_list list = {0};
    uint64_t pid = 0, limit = WITNESS_LIMIT_DEFAULT;
    int rc;

    rc = pl_query_param(query, "group", &group);
    if (rc <= 0 || group.len == 0) {
        pl_response_error(resp, 400, "parameter group is required (a type name as in /api/history)");
        goto done;
    }
    if (group.len > PL_TYPE_NAME_MAX || memchr(group.data, '\0', group.len)) {
        pl_response_error(resp, 400, "parameter group must be 1 to 1024 bytes without NUL");
        goto done;
    }
    rc = pl_query_param(query, "pid", &tmp);
    if (rc != 0 && (rc < 0 || parse_bounded(&tmp, 1, 4194304, &pid))) {
        pl_response_error(resp, 400, "parameter pid must be an integer from 1 to 4194304");
        goto done;
    }
    rc = pl_query_param(query, "limit", &tmp);
    if (rc != 0 && (rc < 0 || parse_bounded(&tmp, 1, WITNESS_LIMIT_MAX, &limit))) {
        pl_response_error(resp, 400, "parameter limit must be an integer from 1 to 100");
        goto done;
    }
    rc = pl_query_param(query, "host", &host);
    if (rc != 0 && (rc < 0 || host.len == 0 || host.len > 63 || memchr(host.data, '\0', host.len))) {
        pl_response_error(resp, 400, "parameter host must be 1 to 63 bytes without NUL");
        goto done;
    }
    rc = pl_store_witnesses(store, group.data, (uint32_t)pid, host.len ? host.data : NULL, (size_t)limit, &list);
    if (rc == PL_ENOTFOUND) {
        pl_response_error(resp, 404, "no type of that name in this store");
        goto done;
    }
    if (rc) {
        char msg[256];
        snprintf(msg, sizeof msg, "reading the store failed: %s", pl_strerror(rc));
        pl_response_error(resp, pl_store_error_status(rc), msg);
        goto done;
    }
    pl_buf *b = &resp->body;
    pl_buf_reset(b);
    pl_response_json(resp, 200);
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
    pl_buf_free(&tmp);
    pl_buf_free(&host);
}
