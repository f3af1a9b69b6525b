/* Internal header of the HTTP subsystem (src/core/http/), not installed:
 * what every file of it shares, under one set of names (pl_http_*).
 *
 * Files, each with one job; calls point down this list, never back up:
 *   handler.c          pl_handler_new/free, the one route table, dispatch, access, gzip
 *   route_procs.c      GET /api/procs
 *   route_history.c    GET /api/history and its JSON encoder
 *   route_routes.c     GET /api/routes: requests by route, growth per request of a type
 *   route_live.c       the live-object routes and their one mailbox forward
 *   route_witnesses.c  GET /api/witnesses, the witness JSON and its "held by" line
 *   route_metrics.c    GET /metrics (the text is metrics.c's)
 *   route_assets.c     GET /, /index.html, /static/<file>
 *   route_login.c      POST /api/login, /api/logout
 *   route_samples.c    POST /api/samples where no pushes are taken
 *   params.c           the query string and its parameters: the one parser of every route
 *   response.c         status reasons, JSON and error responses, JSON numbers and times
 *
 * A new route is one function in the file of its group (declared below)
 * and one row of the table in handler.c; it answers the same way on a
 * worker and on the central server, which call the same handler. A row may
 * also name the central server's own function (remote.c: pushes, long
 * polls, replies, forwarded object queries), which can suspend a request;
 * the central server looks it up in the same table (pl_remote_handle).
 *
 * Threads and ownership as handler.h: a handler holds no mutable state
 * after pl_handler_new, so every function here may run on any thread. */
#ifndef PYLOOT_HTTP_INT_H
#define PYLOOT_HTTP_INT_H

#include "pyloot/handler.h"
#include "pyloot/parse.h"
#include "pyloot/remote.h"

/* Everything declared below is internal to the core (see CMakeLists.txt). */
#pragma GCC visibility push(hidden)

/* A handler: its options (copied; opt.store borrowed) and what it owns. */
struct pl_handler {
    pl_handler_options opt;
    char *unavailable; /* owned copy of opt.unavailable */
};

/* ---- parameters (params.c): the one parser of every route ----
 *
 * Every integer is read with overflow checks into its documented range,
 * every text parameter is checked as UTF-8 without control characters
 * before any work is done, and anything else is a 400 naming the
 * parameter (docs/http-api.md, "Conventions"). */

/* The documented ranges. */
#define PL_PARAM_PID_MAX 4194304ULL           /* the largest pid_max Linux allows */
#define PL_PARAM_OFFSET_MAX 1000000000ULL     /* offset= of the paged routes */
#define PL_PARAM_ID_MAX 999999999999999999ULL /* an object id: 18 digits */
#define PL_PARAM_TIME_MAX_S (PL_PARSE_TIME_MAX_MS / 1000) /* since=/until=: 9999-12-31T23:59:59Z */
#define PL_PARAM_QUERY_MAX 256                /* q= of /api/history, bytes */
#define PL_PARAM_HOST_MAX 63                  /* host=, bytes */
#define PL_GRAPH_DEPTH_MAX 4                  /* depth= of /api/objects/<id>/graph */
#define PL_TASKS_GROUPS_MAX 100               /* limit= of /api/tasks: groups listed */

/* Finds the first `name=value` of a raw query string (NULL: none) and
 * URL-decodes the value into out (NUL-terminated). 1 found, 0 absent,
 * PL_EBADARG for a malformed escape, ENOMEM. */
int pl_http_param(const char *query, const char *name, pl_buf *out);
/* 1 when s[0..len) is well-formed UTF-8 with no control byte (0x00-0x1f, 0x7f). */
int pl_http_text_valid(const char *s, size_t len);
/* Integer parameter `name` within [lo, hi]; absent: def. 0, or a 400 naming
 * the parameter and its range in resp and -1. */
int pl_http_param_uint(const char *query, const char *name, uint64_t lo, uint64_t hi, uint64_t def, uint64_t *out,
                  pl_response *resp);
/* Text parameter `name` into out (NUL-terminated): 1 found, with min..max
 * bytes of pl_text_valid text; 0 absent; -1 with a 400 in resp otherwise. */
int pl_http_param_text(const char *query, const char *name, size_t min, size_t max, pl_buf *out, pl_response *resp);
/* A time in unix seconds with up to 3 decimals, 0.001 to
 * PL_PARAM_TIME_MAX_S and at most PL_HISTORY_FUTURE_MS after now_ms, into
 * *out_ms. Absent or empty: 0 and *out_ms 0. Else -1 with a 400 in resp. */
int pl_http_param_time(const char *query, const char *name, int64_t now_ms, int64_t *out_ms, pl_response *resp);

/* ---- responses (response.c) ---- */

/* Sets a JSON content type, `status` and no caching on resp. */
void pl_http_json(pl_response *resp, int status);
/* Replaces resp's body with {"error": <the formatted message>} (cut to 511
 * bytes) and sets status: the one error shape of every route. */
void pl_http_error(pl_response *resp, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Unix milliseconds as seconds with three decimals ("1764320000.250"). */
void pl_http_json_time(pl_buf *b, int64_t ms);
/* The optional parts of an answer's window: a time (0: null), a pid (0:
 * null), a host (NULL: null). */
void pl_http_json_time_or_null(pl_buf *b, int64_t ms);
void pl_http_json_pid_or_null(pl_buf *b, uint64_t pid);
void pl_http_json_host_or_null(pl_buf *b, const char *host);
/* {"pid": ..., "start": ...} */
void pl_http_json_incarnation(pl_buf *b, const pl_incarnation *inc);
/* [v0, v1, ...] with null for a negative value (no sample there). */
void pl_http_json_series(pl_buf *b, const int64_t *v, size_t n);

/* A central server's hosts may each have had a worker with the same pid:
 * pid= alone would then silently answer for one of them. Returns 1 with a
 * 400 in resp naming two of the hosts, else 0 (a failed read is left to the
 * query that follows, which reports it). For every route taking pid= and
 * host= over the store (route_history.c). */
int pl_http_pid_on_several_hosts(pl_store *store, uint32_t pid, pl_response *resp);

/* The checks of the scope of a windowed route over the store (pid=, host=,
 * since=, until=) once parsed: until after since, and a pid alone that is on
 * several hosts. 0, or -1 with a 400 in resp (params.c). */
int pl_http_scope_check(pl_store *store, uint32_t pid, const char *host, int64_t since_ms, int64_t until_ms,
                        pl_response *resp);
/* The 404 of a scope (pid and/or host) with no incarnation in the store. */
void pl_http_scope_not_found(pl_response *resp, uint32_t pid, const char *host);

/* ---- routes: one function per route, rest is what follows a prefix route's path ---- */

typedef void (*pl_http_route_fn)(pl_handler *h, const pl_request *req, const char *rest, pl_response *resp);

/* The central server's side of a route (remote.c), which may suspend the
 * request: pl_remote_handle's contract (pyloot/remote.h), PL_REMOTE_PASS
 * for the handler to answer it as every server does. */
typedef int (*pl_http_central_fn)(pl_remote *r, const pl_remote_request *req, pl_response *resp,
                                  uint64_t *ticket_header, pl_remote_wait *w);

/* handler.c: the central server's function of the route table's row for
 * path, NULL when the row has none (the handler answers) or there is no row. */
pl_http_central_fn pl_http_route_central(const char *path);

/* remote.c: the central server's routes. */
int pl_central_samples(pl_remote *r, const pl_remote_request *req, pl_response *resp, uint64_t *ticket_header,
                       pl_remote_wait *w);
int pl_central_poll(pl_remote *r, const pl_remote_request *req, pl_response *resp, uint64_t *ticket_header,
                    pl_remote_wait *w);
int pl_central_reply(pl_remote *r, const pl_remote_request *req, pl_response *resp, uint64_t *ticket_header,
                     pl_remote_wait *w);
int pl_central_objects(pl_remote *r, const pl_remote_request *req, pl_response *resp, uint64_t *ticket_header,
                       pl_remote_wait *w);

void pl_route_procs(pl_handler *h, const pl_request *req, const char *rest, pl_response *resp);
void pl_route_history(pl_handler *h, const pl_request *req, const char *rest, pl_response *resp);
void pl_route_memory(pl_handler *h, const pl_request *req, const char *rest, pl_response *resp);
void pl_route_routes(pl_handler *h, const pl_request *req, const char *rest, pl_response *resp);
void pl_route_objects(pl_handler *h, const pl_request *req, const char *rest, pl_response *resp);
void pl_route_object(pl_handler *h, const pl_request *req, const char *rest, pl_response *resp);
void pl_route_object_graph(pl_handler *h, const pl_request *req, const char *rest, pl_response *resp);
void pl_route_retainers(pl_handler *h, const pl_request *req, const char *rest, pl_response *resp);
void pl_route_suspects(pl_handler *h, const pl_request *req, const char *rest, pl_response *resp);
void pl_route_allocations(pl_handler *h, const pl_request *req, const char *rest, pl_response *resp);
void pl_route_tasks(pl_handler *h, const pl_request *req, const char *rest, pl_response *resp);
void pl_route_witnesses(pl_handler *h, const pl_request *req, const char *rest, pl_response *resp);
void pl_route_metrics(pl_handler *h, const pl_request *req, const char *rest, pl_response *resp);
void pl_route_index(pl_handler *h, const pl_request *req, const char *rest, pl_response *resp);
void pl_route_static(pl_handler *h, const pl_request *req, const char *rest, pl_response *resp);
void pl_route_login(pl_handler *h, const pl_request *req, const char *rest, pl_response *resp);
void pl_route_logout(pl_handler *h, const pl_request *req, const char *rest, pl_response *resp);
void pl_route_samples(pl_handler *h, const pl_request *req, const char *rest, pl_response *resp);

/* ---- live objects of another process (route_live.c) ----
 *
 * One forward through the store's mailbox for both servers: a worker's
 * handler posts and waits in place (it has no event loop); the central
 * server posts, suspends the connection and takes the answer when the
 * worker has written it (remote.c, central.c). */

/* Reads a live-object query from the path (one of the live-object routes)
 * and its parameters: pid (0 when absent) and host into
 * host[PL_PARAM_HOST_MAX + 1] ("" when absent). 0, or -1 with a 4xx in resp. */
/* Answers a live-object query of `kind` (route_live.c): reads its
 * parameters, then answers here (no pid, or this process's) or forwards
 * to the worker and waits. resp gets the worker's status and body. */
void pl_http_live_handle(pl_handler *h, const pl_request *req, pl_live_kind kind, uint64_t id,
                         pl_response *resp);
/* route_heapdump.c: GET /api/heapdump, and GET /api/heap (the dumps `pyloot --heap` serves). */
void pl_route_heapdump(pl_handler *h, const pl_request *req, const char *rest, pl_response *resp);
/* Turns a 200 answer of /api/heapdump (the dump file as the body) into a
 * download: its content type and file name. Other statuses stay JSON. */
void pl_http_heapdump_download(pl_response *resp);
void pl_route_heap(pl_handler *h, const pl_request *req, const char *rest, pl_response *resp);

int pl_http_live_query(const pl_request *req, const char *path, pl_live_query *q, uint64_t *pid, char *host,
                       pl_response *resp);

/* A query posted to a worker, until its answer is taken. */
typedef struct pl_http_live_wait {
    pl_incarnation inc; /* the worker */
    int remote;         /* it pushes to this server (remote mode) */
    uint64_t ticket;
    int64_t deadline_ms; /* set by the caller */
    char who[96];        /* "worker PID on host HOST", for messages */
} pl_http_live_wait;

/* Finds the live incarnation of pid (on host; NULL: any), the latest
 * started one: 0 with w's inc, remote and who set, or -1 with the answer in
 * resp (404 no such live worker, 400 alive on several hosts without host=,
 * 503 the store could not be read). */
int pl_http_live_find(pl_store *store, uint32_t pid, const char *host, pl_http_live_wait *w, pl_response *resp);
/* Posts q to w's worker: 0 with w->ticket set, or -1 with the answer in
 * resp (404 it ended, 503 too many requests waiting or the store failed). */
int pl_http_live_post(pl_store *store, const pl_live_query *q, pl_http_live_wait *w, pl_response *resp);
/* Takes the answer of w: 1 with resp the worker's answer, or a 504 past
 * w->deadline_ms (timeout_ms is said in it) or 503 on a failed read (the
 * request is withdrawn); 0 when it is not there yet. */
int pl_http_live_result(pl_store *store, pl_http_live_wait *w, int64_t now_ms, uint32_t timeout_ms,
                        pl_response *resp);

#pragma GCC visibility pop

#endif
