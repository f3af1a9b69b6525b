/* The live-object routes: /api/objects, /api/objects/<id>[/parents|
 * /children|/path|/graph], /api/retainers, /api/suspects, /api/tasks
 * (docs/http-api.md). A
 * query about this process is answered by the embedding's live function; one
 * about another worker goes through the store's mailbox. */
#include <time.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_int.h"
#include "pyloot/error.h"
#include "pyloot/json.h"

int pl_live_query_encode(const pl_live_query *q, pl_buf *out)
{
    return pl_buf_printf(out, "%d %" PRIu64 " %" PRIu64 " %" PRIu64 " %s", (int)q->kind, q->id, q->offset,
                         q->limit, q->group);
}

int pl_live_query_decode(const void *data, size_t len, pl_live_query *q)
{
    char tmp[PL_TYPE_NAME_MAX + 96];
    if (len >= sizeof tmp)
        return PL_EBADARG;
    memcpy(tmp, data, len);
    tmp[len] = '\0';
    memset(q, 0, sizeof *q);
    int kind = 0, used = 0;
    if (sscanf(tmp, "%d %" SCNu64 " %" SCNu64 " %" SCNu64 " %n", &kind, &q->id, &q->offset, &q->limit,
               &used) != 4)
        return PL_EBADARG;
    if ((kind < PL_LIVE_LIST || kind > PL_LIVE_HEAPDUMP) && kind != PL_LIVE_TASKS)
        return PL_EBADARG;
    q->kind = (pl_live_kind)kind;
    size_t glen = len - (size_t)used;
    if (glen > PL_TYPE_NAME_MAX)
        return PL_EBADARG;
    memcpy(q->group, tmp + used, glen);
    q->group[glen] = '\0';
    return 0;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* See http_int.h. */
int pl_http_live_find(pl_store *store, uint32_t pid, const char *host, pl_http_live_wait *w, pl_response *resp)
{
    pl_proc_info *procs = NULL;
    const pl_proc_info *target = NULL;
    const char *first_host = NULL;
    size_t n = 0;
    int ambiguous = 0, ret = -1;
    int rc = pl_store_procs(store, &procs, &n);

    memset(w, 0, sizeof *w);
    if (rc) {
        pl_http_error(resp, 503, "reading the store failed: %s", pl_strerror(rc));
        goto done;
    }
    /* The latest started live incarnation with the pid (on the host), and
     * a 400 rather than a guess when live ones on several hosts have it. */
    for (size_t i = 0; i < n; i++) {
        const pl_proc_info *p = &procs[i];
        if (p->inc.pid != pid || !p->alive || (host && strcmp(p->host, host) != 0))
            continue;
        if (!first_host)
            first_host = p->host;
        else if (strcmp(first_host, p->host) != 0)
            ambiguous = 1;
        if (!target || p->first_seen_ms >= target->first_seen_ms)
            target = p;
    }
    if (!target) {
        pl_http_error(resp, 404, "no live worker with pid %u%s%s in this store", pid, host ? " on host " : "",
                      host ? host : "");
        goto done;
    }
    if (ambiguous) {
        pl_http_error(resp, 400, "pid %u is alive on several hosts: add host= (see /api/procs)", pid);
        goto done;
    }
    w->inc = target->inc;
    w->remote = target->remote;
    snprintf(w->who, sizeof w->who, "worker %u on host %.63s", target->inc.pid, target->host);
    ret = 0;
done:
    free(procs);
    return ret;
}

/* See http_int.h. */
int pl_http_live_post(pl_store *store, const pl_live_query *q, pl_http_live_wait *w, pl_response *resp)
{
    pl_buf enc = PL_BUF_INIT;
    int rc = pl_live_query_encode(q, &enc) ? ENOMEM
                                           : pl_store_mailbox_post(store, &w->inc, enc.data, enc.len, pl_now_ms(),
                                                                   &w->ticket);
    if (rc == PL_ENOTFOUND)
        pl_http_error(resp, 404, "%s is not alive any more", w->who);
    else if (rc == PL_EBUSY)
        pl_http_error(resp, 503, "%s already has too many requests waiting; try again", w->who);
    else if (rc)
        pl_http_error(resp, 503, "forwarding to %s failed: %s", w->who, pl_strerror(rc));
    pl_buf_free(&enc);
    return rc ? -1 : 0;
}

/* See http_int.h. */
int pl_http_live_result(pl_store *store, pl_http_live_wait *w, int64_t now_ms, uint32_t timeout_ms,
                        pl_response *resp)
{
    int status = 0;
    pl_buf_reset(&resp->body);
    int rc = pl_store_mailbox_result(store, w->ticket, &status, &resp->body);
    if (rc == 0) {
        pl_http_json(resp, status);
        return 1;
    }
    if (rc == PL_ENOTFOUND && now_ms < w->deadline_ms)
        return 0;
    pl_store_mailbox_cancel(store, w->ticket);
    if (rc == PL_ENOTFOUND)
        pl_http_error(resp, 504, "%s did not answer within %.1f s", w->who, timeout_ms / 1000.0);
    else
        pl_http_error(resp, 503, "reading the answer of %s failed: %s", w->who, pl_strerror(rc));
    return 1;
}

/* A worker's handler, which has no event loop to suspend a request in:
 * posts q and waits for the answer here. */
static void forward_and_wait(pl_handler *h, uint32_t pid, const char *host, const pl_live_query *q,
                             pl_response *resp)
{
    pl_http_live_wait w;
    if (pl_http_live_find(h->opt.store, pid, host, &w, resp) || pl_http_live_post(h->opt.store, q, &w, resp))
        return;
    w.deadline_ms = pl_now_ms() + h->opt.live_timeout_ms;
    unsigned pause = 2;
    while (!pl_http_live_result(h->opt.store, &w, pl_now_ms(), h->opt.live_timeout_ms, resp)) {
        sleep_ms(pause);
        if (pause < 25)
            pause *= 2;
    }
}

/* The parameters of the dominator-tree routes (docs/http-api.md):
 * /api/objects/<id>?retained=1, /api/retainers?id=, /api/suspects?n=; and
 * depth= of /api/objects/<id>/graph (carried in q->limit).
 * Returns 0, or -1 with a 400 in resp. */
static int retained_params(const char *query, pl_live_query *q, pl_response *resp)
{
    uint64_t v = 0;
    if (q->kind == PL_LIVE_DETAIL) {
        if (pl_http_param_uint(query, "retained", 0, 1, 0, &v, resp))
            return -1;
        if (v)
            q->kind = PL_LIVE_RETAINED;
    } else if (q->kind == PL_LIVE_RETAINERS) {
        if (pl_http_param_uint(query, "id", 1, PL_PARAM_ID_MAX, 0, &q->id, resp))
            return -1;
    } else if (q->kind == PL_LIVE_SUSPECTS) {
        if (pl_http_param_uint(query, "n", 1, 10, 3, &q->limit, resp))
            return -1;
    } else if (q->kind == PL_LIVE_GRAPH) {
        if (pl_http_param_uint(query, "depth", 1, PL_GRAPH_DEPTH_MAX, 3, &q->limit, resp))
            return -1;
    }
    return 0;
}

/* state= of /api/tasks into q->group: pending (the default), done,
 * cancelled or all. 0, or -1 with a 400 in resp. */
static int tasks_state(const char *query, pl_live_query *q, pl_response *resp)
{
    static const char *const states[] = {"pending", "done", "cancelled", "all"};
    pl_buf state = PL_BUF_INIT;
    int rc = pl_http_param_text(query, "state", 1, 16, &state, resp), ret = -1;
    if (rc < 0)
        goto done;
    const char *s = rc ? pl_buf_cstr(&state) : "pending";
    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++) {
        if (strcmp(s, states[i]) == 0) {
            snprintf(q->group, sizeof q->group, "%s", states[i]);
            ret = 0;
        }
    }
    if (ret)
        pl_http_error(resp, 400, "parameter state must be pending, done, cancelled or all");
done:
    pl_buf_free(&state);
    return ret;
}

/* Reads the parameters of a live-object query (group, offset, limit, pid,
 * host into host[PL_PARAM_HOST_MAX + 1] ("" when absent) and those of the
 * dominator-tree routes), all of them before any work is done.
 * Returns 0, or fills a 400 response and returns -1. */
static int live_params(const pl_request *req, pl_live_kind kind, uint64_t id, pl_live_query *q, uint64_t *pid,
                       char *host, pl_response *resp)
{
    pl_buf group = PL_BUF_INIT, hostb = PL_BUF_INIT;
    const char *query = req->query;
    int ret = -1;
    memset(q, 0, sizeof *q);
    q->kind = kind;
    q->id = id;
    *pid = 0;
    if (kind == PL_LIVE_LIST || kind == PL_LIVE_SUSPECTS) {
        int rc = pl_http_param_text(query, "group", 1, PL_TYPE_NAME_MAX, &group, resp);
        if (rc < 0)
            goto done;
        if (rc == 0) {
            pl_http_error(resp, 400, "parameter group is required (a type name as in /api/history)");
            goto done;
        }
        memcpy(q->group, group.data, group.len + 1);
    }
    if (kind == PL_LIVE_TASKS && tasks_state(query, q, resp))
        goto done;
    if (pl_http_param_uint(query, "offset", 0, PL_PARAM_OFFSET_MAX, 0, &q->offset, resp) ||
        pl_http_param_uint(query, "limit", 1, kind == PL_LIVE_TASKS ? PL_TASKS_GROUPS_MAX : 10000,
                           kind == PL_LIVE_TASKS ? 20 : 100, &q->limit, resp) ||
        pl_http_param_uint(query, "pid", 1, PL_PARAM_PID_MAX, 0, pid, resp) || retained_params(query, q, resp) ||
        pl_http_param_text(query, "host", 1, PL_PARAM_HOST_MAX, &hostb, resp) < 0)
        goto done;
    memcpy(host, hostb.len ? hostb.data : "", hostb.len + 1);
    ret = 0;
done:
    pl_buf_free(&group);
    pl_buf_free(&hostb);
    return ret;
}

/* See http_int.h. */
void pl_http_live_handle(pl_handler *h, const pl_request *req, pl_live_kind kind, uint64_t id,
                         pl_response *resp)
{
    pl_live_query q;
    uint64_t pid = 0;
    char host[PL_PARAM_HOST_MAX + 1];
    if (live_params(req, kind, id, &q, &pid, host, resp))
        return;
    if (!h->opt.live) {
        pl_http_error(resp, 501, "live objects are answered by the workers themselves, not by this server");
        return;
    }
    if (pid == 0 || (pid == h->opt.self.pid && !host[0])) {
        int status = 500;
        pl_buf_reset(&resp->body);
        int rc = h->opt.live(h->opt.live_ctx, &q, &resp->body, &status);
        if (rc)
            pl_http_error(resp, 500, "answering failed: %s", pl_strerror(rc));
        else
            pl_http_json(resp, status);
    } else {
        forward_and_wait(h, (uint32_t)pid, host[0] ? host : NULL, &q, resp);
    }
}

/* Parses "/api/objects/<id>[/parents|/children|/path|/graph]". Returns 0 and fills
 * kind/id, or fills a 4xx response and returns -1. */
static int parse_object_route(const char *rest, pl_live_kind *kind, uint64_t *id, pl_response *resp)
{
    const char *slash = strchr(rest, '/');
    size_t idlen = slash ? (size_t)(slash - rest) : strlen(rest);
    if (pl_parse_u64(rest, idlen, 0, PL_PARAM_ID_MAX, id)) {
        pl_http_error(resp, 400, "object id must be a decimal integer from 0 to %llu",
                       (unsigned long long)PL_PARAM_ID_MAX);
        return -1;
    }
    if (!slash || strcmp(slash, "/") == 0)
        *kind = PL_LIVE_DETAIL;
    else if (strcmp(slash, "/parents") == 0)
        *kind = PL_LIVE_PARENTS;
    else if (strcmp(slash, "/children") == 0)
        *kind = PL_LIVE_CHILDREN;
    else if (strcmp(slash, "/path") == 0)
        *kind = PL_LIVE_PATH;
    else if (strcmp(slash, "/graph") == 0)
        *kind = PL_LIVE_GRAPH;
    else {
        pl_http_error(resp, 404, "no such route");
        return -1;
    }
    return 0;
}

/* See http_int.h. */
int pl_http_live_query(const pl_request *req, const char *path, pl_live_query *q, uint64_t *pid, char *host,
                       pl_response *resp)
{
    pl_live_kind kind = PL_LIVE_LIST;
    uint64_t id = 0;
    if (strcmp(path, "/api/retainers") == 0)
        kind = PL_LIVE_RETAINERS;
    else if (strcmp(path, "/api/heapdump") == 0)
        kind = PL_LIVE_HEAPDUMP;
    else if (strcmp(path, "/api/suspects") == 0)
        kind = PL_LIVE_SUSPECTS;
    else if (strcmp(path, "/api/tasks") == 0)
        kind = PL_LIVE_TASKS;
    else if (strcmp(path, "/api/objects") != 0 && strcmp(path, "/api/objects/") != 0 &&
             parse_object_route(path + 13, &kind, &id, resp))
        return -1;
    return live_params(req, kind, id, q, pid, host, resp);
}

/* See http_int.h. */
void pl_route_objects(pl_handler *h, const pl_request *req, const char *rest, pl_response *resp)
{
    pl_http_live_handle(h, req, PL_LIVE_LIST, 0, resp);
}

/* See http_int.h. */
void pl_route_retainers(pl_handler *h, const pl_request *req, const char *rest, pl_response *resp)
{
    pl_http_live_handle(h, req, PL_LIVE_RETAINERS, 0, resp);
}

/* See http_int.h. */
void pl_route_suspects(pl_handler *h, const pl_request *req, const char *rest, pl_response *resp)
{
    pl_http_live_handle(h, req, PL_LIVE_SUSPECTS, 0, resp);
}

/* See http_int.h. */
void pl_route_tasks(pl_handler *h, const pl_request *req, const char *rest, pl_response *resp)
{
    pl_http_live_handle(h, req, PL_LIVE_TASKS, 0, resp);
}

/* See http_int.h. */
void pl_route_object(pl_handler *h, const pl_request *req, const char *rest, pl_response *resp)
{
    pl_live_kind kind;
    uint64_t id;
    if (parse_object_route(rest, &kind, &id, resp) == 0)
        pl_http_live_handle(h, req, kind, id, resp);
}

/* See http_int.h: /api/objects/<id>/graph, whose row matches the id as a
 * path segment (the id is read from the path, as for the other subroutes). */
void pl_route_object_graph(pl_handler *h, const pl_request *req, const char *rest, pl_response *resp)
{
    (void)rest;
    pl_route_object(h, req, req->path + strlen("/api/objects/"), resp);
}
