/* The UI: GET /, /index.html and /static/<file>, from the files of web/
 * embedded at build time (pyloot/assets.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_int.h"
#include "pyloot/error.h"
#include "pyloot/json.h"
#include "pyloot/assets.h"

static int valid_asset_name(const char *name)
{
    if (!*name || *name == '.')
        return 0;
    for (const char *p = name; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static void handle_asset(const char *name, pl_response *resp)
{
    const pl_asset *a = valid_asset_name(name) ? pl_asset_find(name, strlen(name)) : NULL;
    if (!a) {
        pl_http_error(resp, 404, "no such file");
        return;
    }
    resp->status = 200;
    resp->content_type = a->content_type;
    resp->cache_control = "no-cache";
    pl_buf_append(&resp->body, a->data, a->len);
}

/* See http_int.h. */
void pl_route_index(pl_handler *h, const pl_request *req, const char *rest, pl_response *resp)
{
    handle_asset("index.html", resp);
}

/* See http_int.h. */
void pl_route_static(pl_handler *h, const pl_request *req, const char *rest, pl_response *resp)
{
    handle_asset(rest, resp);
}
