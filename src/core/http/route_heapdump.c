/* GET /api/heapdump?pid=&host= (docs/http-api.md, docs/heapdump.md): a heap
 * dump file of a live worker. A live-object route like /api/objects: the
 * same access rule, answered by this process or, through the store's
 * mailbox, by the worker named by pid (route_live.c). The worker bounds the
 * file it sends (PYLOOT_HEAPDUMP_MAX_BYTES, docs/security.md); errors stay
 * JSON, a dump is sent as a download.
 *
 * GET /api/heap: what `pyloot --heap FILE [--heap NEW]` serves to the UI's
 * Heap view, the report (and comparison) the command built at start. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "http_int.h"
#include "pyloot/error.h"
#include "pyloot/heapdump.h"

/* See http_int.h. */
void pl_route_heapdump(pl_handler *h, const pl_request *req, const char *rest, pl_response *resp)
{
    (void)rest;
    pl_http_live_handle(h, req, PL_LIVE_HEAPDUMP, 0, resp);
    pl_http_heapdump_download(resp);
}

/* See http_int.h. */
void pl_http_heapdump_download(pl_response *resp)
{
    if (resp->status != 200)
        return;
    resp->content_type = "application/octet-stream";
    /* The file names the worker and the moment (header fields 8..35 of the
     * dump are not parsed here: the time is the server's). */
    snprintf(resp->content_disposition, sizeof resp->content_disposition,
             "attachment; filename=\"pyloot-heap-%lld.plheap\"", (long long)pl_now_ms());
}

/* Splits an uploaded body into one or two dump files (each one's length is
 * in its header) and decodes them. Returns the number of dumps (1 or 2), or
 * -1 with a 400 or 413 in resp. */
static int decode_upload(const pl_request *req, pl_heapdump **dumps, pl_response *resp)
{
    const uint8_t *p = req->body;
    size_t left = req->body_len, n = 0;
    char err[256];
    while (left && n < 2) {
        if (left < PL_HEAPDUMP_HEADER) {
            pl_http_error(resp, 400, "dump %zu of the upload is cut short (%zu bytes)", n + 1, left);
            return -1;
        }
        uint64_t raw = 0, clen = 0;
        for (int i = 7; i >= 0; i--) {
            raw = raw << 8 | p[16 + i];
            clen = clen << 8 | p[24 + i];
        }
        if (raw > PL_HEAPDUMP_UPLOAD_RAW_MAX) {
            pl_http_error(resp, 413, "dump %zu of the upload would inflate to %llu bytes (at most %llu here; "
                          "read it with pyloot heap FILE)", n + 1, (unsigned long long)raw,
                          (unsigned long long)PL_HEAPDUMP_UPLOAD_RAW_MAX);
            return -1;
        }
        size_t len = clen <= left - PL_HEAPDUMP_HEADER ? (size_t)clen + PL_HEAPDUMP_HEADER : left;
        int rc = pl_heapdump_decode(p, len, &dumps[n], err, sizeof err);
        if (rc) {
            pl_http_error(resp, rc == ENOMEM ? 503 : 400, "dump %zu of the upload is not a usable heap dump: %s",
                          n + 1, err);
            return -1;
        }
        n++;
        p += len;
        left -= len;
    }
    if (n == 0 || left) {
        pl_http_error(resp, 400, n ? "the upload holds more than two dumps" : "the upload is empty: send one "
                                                                                "dump file, or two (old then new) "
                                                                                "one after the other");
        return -1;
    }
    return (int)n;
}

/* See http_int.h. */
void pl_route_heap(pl_handler *h, const pl_request *req, const char *rest, pl_response *resp)
{
    (void)rest;
    if (strcmp(req->method, "POST") == 0) {
        if (!h->opt.heap_upload) {
            pl_http_error(resp, 404, "uploads of heap dumps are taken by pyloot --heap only (docs/heapdump.md)");
            return;
        }
        if (req->body_len > PL_HEAPDUMP_UPLOAD_MAX) {
            pl_http_error(resp, 413, "an upload is at most %u MiB", PL_HEAPDUMP_UPLOAD_MAX >> 20);
            return;
        }
        pl_heapdump *dumps[2] = {NULL, NULL};
        int n = decode_upload(req, dumps, resp);
        if (n > 0) {
            static const char *const names[2] = {"upload 1", "upload 2"};
            pl_buf_reset(&resp->body);
            int rc = pl_heapdump_page_json(dumps, names, (size_t)n, &resp->body);
            if (rc)
                pl_http_error(resp, 503, "analysing the upload failed: %s", pl_strerror(rc));
            else
                pl_http_json(resp, 200);
        }
        pl_heapdump_free(dumps[0]);
        pl_heapdump_free(dumps[1]);
        return;
    }
    if (!h->opt.heap_json) {
        pl_http_error(resp, 404, "no heap dump is loaded here: start pyloot --heap FILE (docs/heapdump.md)");
        return;
    }
    pl_buf_reset(&resp->body);
    pl_buf_puts(&resp->body, h->opt.heap_json);
    pl_http_json(resp, 200);
}
