/* GET /api/heapdump?pid=&host= (docs/http-api.md, docs/heapdump.md): a heap
 * dump file of a live worker. A live-object route like /api/objects: the
 * same access rule, answered by this process or, through the store's
 * mailbox, by the worker named by pid (route_live.c). The worker bounds the
 * file it sends (PYLOOT_HEAPDUMP_MAX_BYTES, docs/security.md); errors stay
 * JSON, a dump is sent as a download.
 *
 * GET /api/heap: what `pyloot --heap FILE [--heap NEW]` serves to the UI's
 * Heap view, the report (and comparison) the command built at start. */
#include <stdio.h>
#include <string.h>

#include "http_int.h"

/* See http_int.h. */
void pl_route_heapdump(pl_handler *h, const pl_request *req, const char *rest, pl_response *resp)
{
    (void)rest;
    pl_http_live_handle(h, req, PL_LIVE_HEAPDUMP, 0, resp);
    if (resp->status != 200)
        return;
    resp->content_type = "application/octet-stream";
    /* The file names the worker and the moment (header fields 8..35 of the
     * dump are not parsed here: the time is the server's). */
    snprintf(resp->content_disposition, sizeof resp->content_disposition,
             "attachment; filename=\"pyloot-heap-%lld.plheap\"", (long long)pl_now_ms());
}

/* See http_int.h. */
void pl_route_heap(pl_handler *h, const pl_request *req, const char *rest, pl_response *resp)
{
    (void)req;
    (void)rest;
    if (!h->opt.heap_json) {
        pl_http_error(resp, 404, "no heap dump is loaded here: start pyloot --heap FILE (docs/heapdump.md)");
        return;
    }
    pl_buf_reset(&resp->body);
    pl_buf_puts(&resp->body, h->opt.heap_json);
    pl_http_json(resp, 200);
}
