/* POST /api/samples on a worker's /_pyloot, which takes no pushes. The
 * central server's ingest answers the route before this handler (central.c,
 * remote.c); here the push was sent to the wrong address, which is the
 * client's mistake: a 404 that says where pushes go, never a 5xx that
 * monitoring would count as an outage. */
#include "http_int.h"

/* See http_int.h. */
void pl_route_samples(pl_handler *h, const pl_request *req, const char *rest, pl_response *resp)
{
    pl_http_error(resp, 404,
                  "this is a worker's /_pyloot, which takes no pushes: samples go to the central server, "
                  "`pyloot -h HOST -p PORT`, and workers push to it with PyLoot(host=..., port=...)");
}
