/* GET /metrics: Prometheus or OpenMetrics text of the merged store (the
 * text itself is metrics.c's). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_int.h"
#include "pyloot/error.h"
#include "pyloot/json.h"
#include "pyloot/metrics.h"

/* See http_int.h. */
void pl_route_metrics(pl_handler *h, const pl_request *req, const char *rest, pl_response *resp)
{
    uint64_t workers = 0, top = 0;
    if (pl_http_param_uint(req->query, "workers", 0, 1, 0, &workers, resp) ||
        pl_http_param_uint(req->query, "top", 1, PL_METRICS_TOP_MAX, PL_METRICS_TOP_DEFAULT, &top, resp))
        return;
    pl_metrics_query mq = {(uint32_t)top, (int)workers, pl_metrics_wants_openmetrics(req->accept),
                           h->opt.metrics_types, pl_now_ms()};
    int rc = pl_metrics_render(h->opt.store, &mq, &resp->body);
    if (rc) {
        pl_http_error(resp, 503, "reading the store failed: %s", pl_strerror(rc));
        return;
    }
    resp->status = 200;
    resp->content_type = mq.openmetrics ? PL_METRICS_OPENMETRICS_TYPE : PL_METRICS_TEXT_TYPE;
    resp->cache_control = "no-store";
}
