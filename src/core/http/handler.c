/* The HTTP request handler of every server: the WSGI/ASGI app of each
 * worker (through the extension) and the `pyloot` command (through
 * libmicrohttpd) call pl_handler_handle. The one route table, the access
 * rule, the store check and gzip; each route's work is in its route_*.c
 * file (http_int.h lists them). Every route is documented in
 * docs/http-api.md; keep the two in step. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_int.h"
#include "pyloot/error.h"
#include "pyloot/json.h"
#include "pyloot/access.h"
#include "pyloot/gzip.h"

#define PL_GZIP_MIN 256 /* smaller bodies are sent as they are */

int pl_handler_new(pl_handler **out, const pl_handler_options *opt)
{
    *out = NULL;
    pl_handler *h = calloc(1, sizeof *h);
    if (!h)
        return ENOMEM;
    h->opt = *opt;
    if (opt->unavailable || !opt->store) {
        h->unavailable = strdup(opt->unavailable ? opt->unavailable : "the store is not open");
        if (!h->unavailable) {
            free(h);
            return ENOMEM;
        }
        h->opt.unavailable = h->unavailable;
    }
    if (!h->opt.live_timeout_ms)
        h->opt.live_timeout_ms = 5000;
    *out = h;
    return 0;
}

void pl_handler_free(pl_handler *h)
{
    if (h)
        free(h->unavailable);
    free(h);
}

/* Applies the access rule (pyloot/access.h). Returns 0 to go on, or fills
 * a 401/403 response and returns -1. */
static int check_access(pl_handler *h, const pl_request *req, const char *path, pl_response *resp)
{
    pl_access_request ar = {req->authorization, req->cookie, req->peer, req->proxied, req->allowed, req->host,
                            h->opt.allowed_hosts};
    char why[400];
    int status = pl_access_check(h->opt.token, pl_access_classify(path), &ar, why, sizeof why);
    if (!status)
        return 0;
    pl_http_error(resp, status, "%s", why);
    if (status == 401)
        resp->www_authenticate = "Bearer realm=\"pyloot\"";
    return -1;
}

/* ---- dispatch ---- */

/* What a route takes and needs. */
enum {
    ROUTE_GET = 1,        /* GET and HEAD */
    ROUTE_POST = 2,       /* POST */
    ROUTE_STORE = 4,      /* reads the store: 503 JSON when it cannot be used */
    ROUTE_STORE_TEXT = 8, /* reads the store: 503 text/plain (/metrics: Prometheus shows the body as it is) */
    ROUTE_OPEN = 16,      /* answered before the access rule (logging in is how a browser passes it) */
};

/* The one route table of every server, first match wins. A route that
 * reads the store says so here, so that no route function ever runs with a
 * store that cannot be used; a method a route does not take is a 405 with
 * Allow, here too. */
static const struct route {
    const char *path;
    int prefix; /* path is a prefix; the function gets the rest */
    int flags;  /* ROUTE_* */
    pl_http_route_fn fn;             /* every server; NULL: the central server's route only */
    pl_http_central_fn central;      /* the central server first (remote.c); NULL: fn only */
} routes[] = {
    {"/", 0, ROUTE_GET, pl_route_index, NULL},
    {"/index.html", 0, ROUTE_GET, pl_route_index, NULL},
    {"/static/", 1, ROUTE_GET, pl_route_static, NULL},
    {"/api/login", 0, ROUTE_POST | ROUTE_OPEN, pl_route_login, NULL},
    {"/api/logout", 0, ROUTE_POST | ROUTE_OPEN, pl_route_logout, NULL},
    {"/api/procs", 0, ROUTE_GET | ROUTE_STORE, pl_route_procs, NULL},
    {"/api/history", 0, ROUTE_GET | ROUTE_STORE, pl_route_history, NULL},
    {"/api/memory", 0, ROUTE_GET | ROUTE_STORE, pl_route_memory, NULL},
    {"/api/routes", 0, ROUTE_GET | ROUTE_STORE, pl_route_routes, NULL},
    {"/metrics", 0, ROUTE_GET | ROUTE_STORE_TEXT, pl_route_metrics, NULL},
    {"/api/witnesses", 0, ROUTE_GET | ROUTE_STORE, pl_route_witnesses, NULL},
    {"/api/objects", 0, ROUTE_GET | ROUTE_STORE, pl_route_objects, pl_central_objects},
    {"/api/objects/", 0, ROUTE_GET | ROUTE_STORE, pl_route_objects, pl_central_objects},
    {"/api/retainers", 0, ROUTE_GET | ROUTE_STORE, pl_route_retainers, pl_central_objects},
    {"/api/suspects", 0, ROUTE_GET | ROUTE_STORE, pl_route_suspects, pl_central_objects},
    {"/api/tasks", 0, ROUTE_GET | ROUTE_STORE, pl_route_tasks, pl_central_objects},
    {"/api/objects/*/graph", 0, ROUTE_GET | ROUTE_STORE, pl_route_object_graph, pl_central_objects},
    {"/api/heapdump", 0, ROUTE_GET | ROUTE_STORE, pl_route_heapdump, pl_central_objects},
    {"/api/heap", 0, ROUTE_GET | ROUTE_POST, pl_route_heap, NULL},
    {"/api/objects/", 1, ROUTE_GET | ROUTE_STORE, pl_route_object, pl_central_objects},
    {"/api/samples", 0, ROUTE_GET | ROUTE_POST, pl_route_samples, pl_central_samples},
    {"/api/remote/poll", 0, ROUTE_GET, NULL, pl_central_poll},
    {"/api/remote/reply", 0, ROUTE_POST, NULL, pl_central_reply},
};

/* 1 when path matches pattern, where a '*' stands for one non-empty path segment. */
static int path_matches(const char *pattern, const char *path)
{
    const char *star = strchr(pattern, '*');
    size_t n = star ? (size_t)(star - pattern) : 0, seg;
    if (!star)
        return strcmp(path, pattern) == 0;
    seg = strncmp(path, pattern, n) == 0 ? strcspn(path + n, "/") : 0;
    return seg > 0 && strcmp(path + n + seg, star + 1) == 0;
}

static const struct route *find_route(const char *path)
{
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        const struct route *r = &routes[i];
        size_t n = strlen(r->path);
        if (r->prefix ? strncmp(path, r->path, n) == 0 : path_matches(r->path, path))
            return r;
    }
    return NULL;
}

/* See http_int.h. */
pl_http_central_fn pl_http_route_central(const char *path)
{
    const struct route *r = find_route(path ? path : "/");
    return r ? r->central : NULL;
}

/* The store cannot be used: the one answer of every route that reads it. */
static void store_unavailable(pl_handler *h, int flags, pl_response *resp)
{
    if (flags & ROUTE_STORE_TEXT) {
        pl_buf_reset(&resp->body);
        resp->status = 503;
        resp->content_type = "text/plain; charset=utf-8";
        resp->cache_control = "no-store";
        pl_buf_printf(&resp->body, "pyloot: %s\n", h->opt.unavailable);
        return;
    }
    pl_http_error(resp, 503, "%s", h->opt.unavailable);
}

/* 1 when the route takes the method; else a 405 naming the ones it takes. */
static int method_allowed(const struct route *r, const char *method, pl_response *resp)
{
    int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0, post = strcmp(method, "POST") == 0;
    if ((get && (r->flags & ROUTE_GET)) || (post && (r->flags & ROUTE_POST)))
        return 1;
    if (!(r->flags & ROUTE_GET)) {
        pl_http_error(resp, 405, "use POST for %s", r->path);
        resp->allow = "POST";
    } else {
        pl_http_error(resp, 405, "method %.16s is not allowed here", method);
        resp->allow = r->flags & ROUTE_POST ? "GET, HEAD, POST" : "GET, HEAD";
    }
    return 0;
}

static void route(pl_handler *h, const pl_request *req, pl_response *resp)
{
    const char *path = req->path && *req->path ? req->path : "/";
    const char *method = req->method ? req->method : "GET";

    if (h->opt.refuse_multiprocess && req->multiprocess) {
        pl_http_error(resp, 500,
                      "pyloot middleware is not usable in a multi-process environment with "
                      "InMemoryBackend; use the default store");
        return;
    }
    const struct route *r = find_route(path);
    if (!(r && (r->flags & ROUTE_OPEN)) && check_access(h, req, path, resp))
        return;
    if (!r || !r->fn) {
        pl_http_error(resp, 404, "no such route");
        return;
    }
    if (!method_allowed(r, method, resp))
        return;
    if ((r->flags & (ROUTE_STORE | ROUTE_STORE_TEXT)) && !h->opt.store) {
        store_unavailable(h, r->flags, resp);
        return;
    }
    r->fn(h, req, r->prefix ? path + strlen(r->path) : "", resp);
}

int pl_handler_handle(pl_handler *h, const pl_request *req, pl_response *resp)
{
    memset(resp, 0, sizeof *resp);
    route(h, req, resp);
    if (resp->body.err) {
        pl_buf_free(&resp->body);
        pl_http_error(resp, 500, "out of memory");
        if (resp->body.err) {
            pl_buf_free(&resp->body);
            resp->status = 500;
            return ENOMEM;
        }
    }
    resp->vary_accept_encoding = 1;
    /* A heap dump is compressed already. */
    int binary = resp->content_type && strcmp(resp->content_type, "application/octet-stream") == 0;
    if (!h->opt.disable_gzip && !binary && resp->body.len >= PL_GZIP_MIN && pl_accepts_gzip(req->accept_encoding)) {
        pl_buf gz = PL_BUF_INIT;
        if (pl_gzip(resp->body.data, resp->body.len, &gz) == 0) {
            pl_buf_free(&resp->body);
            resp->body = gz;
            resp->content_encoding = "gzip";
        } else {
            pl_buf_free(&gz); /* send it uncompressed rather than fail */
        }
    }
    return 0;
}
