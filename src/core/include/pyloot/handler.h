/* pyloot core: the HTTP request handler shared by the WSGI/ASGI app (through
 * the extension) and the `pyloot` CLI (through libmicrohttpd).
 *
 * Route + query in, status + headers + body out; every JSON body is built
 * here. See docs/http-api.md for the routes, parameters and errors.
 *
 * Threads: pl_handler_handle may be called from several threads at once; the
 * handler itself holds no mutable state after pl_handler_new. */
#ifndef PYLOOT_HANDLER_H
#define PYLOOT_HANDLER_H

#include <stddef.h>
#include <stdint.h>

#include "pyloot/buf.h"
#include "pyloot/store.h"

/* ---- live objects ---- */

typedef enum pl_live_kind {
    PL_LIVE_LIST = 1,      /* objects of one type: group, offset, limit */
    PL_LIVE_DETAIL = 2,    /* one object: id */
    PL_LIVE_PARENTS = 3,   /* its referrers: id, offset, limit */
    PL_LIVE_CHILDREN = 4,  /* its referents: id, offset, limit */
    PL_LIVE_PATH = 5,      /* shortest referrer chain from a root: id */
    PL_LIVE_RETAINED = 6,  /* PL_LIVE_DETAIL plus retained size and immediate dominator: id */
    PL_LIVE_RETAINERS = 7, /* dominator-tree children of id (0: the top level): offset, limit */
    PL_LIVE_SUSPECTS = 8,  /* leak suspects of the type `group`: limit (1..10) of them */
    PL_LIVE_GRAPH = 9,     /* its referrers as nodes and edges, with its path: id, limit = depth (1..4) */
    PL_LIVE_HEAPDUMP = 10, /* a heap dump file of the whole heap (docs/heapdump.md) */
    PL_LIVE_TASKS = 12,    /* asyncio tasks by coroutine: group = the state shown ("pending", "done",
                            * "cancelled", "all"), limit = groups (1..100) */
} pl_live_kind;

/* A live-object query, already validated by the handler. */
typedef struct pl_live_query {
    pl_live_kind kind;
    char group[PL_TYPE_NAME_MAX + 1]; /* NUL-terminated; PL_LIVE_LIST, PL_LIVE_SUSPECTS; the state
                                       * of PL_LIVE_TASKS */
    uint64_t id;                      /* object id as shown in responses; never a pointer to dereference
                                       * (PL_LIVE_RETAINERS: 0 for the top level) */
    uint64_t offset;
    uint64_t limit;
} pl_live_query;

/* Answers a live-object query in this process: appends a complete JSON body
 * to `body` and sets *status (200, 404 when the object is gone, ...).
 * Called WITHOUT the GIL, from any thread; the implementation takes the GIL
 * itself. Returns 0, or an error code when no body could be produced (the
 * handler then answers 500). */
typedef int (*pl_live_fn)(void *ctx, const pl_live_query *q, pl_buf *body, int *status);

/* Serialises a query for the mailbox, and back. decode returns PL_EBADARG on
 * malformed input. */
int pl_live_query_encode(const pl_live_query *q, pl_buf *out);
int pl_live_query_decode(const void *data, size_t len, pl_live_query *q);

/* ---- handler ---- */

typedef struct pl_handler_options {
    pl_store *store;          /* borrowed; must outlive the handler */
    int disable_gzip;
    pl_live_fn live;          /* NULL: live-object routes answer 501 (the CLI) */
    void *live_ctx;
    pl_incarnation self;      /* this process (live routes without pid) */
    uint32_t live_timeout_ms; /* wait for another worker's answer; 0 = default (5000) */
    int refuse_multiprocess;  /* answer 500 with the seed's message (InMemoryBackend) */
    const char *token;        /* access token (pyloot/access.h); NULL or "" for none; borrowed */
    const char *allowed_hosts;/* names allowed in Host besides loopback ones, newline-separated
                               * (pyloot/access.h); NULL for none; borrowed */
    const char *metrics_types;/* /metrics: newline-separated names or patterns always exported; borrowed */
    int heap_upload;          /* POST /api/heap analyses uploaded dumps (the `pyloot` command's
                               * --heap mode only; docs/heapdump.md); 0: 405/404 */
    const char *heap_json;    /* GET /api/heap: the JSON of the heap dumps `pyloot --heap` serves
                               * (docs/heapdump.md); NULL: 404. Borrowed */
    const char *unavailable;  /* with store NULL: why the store cannot be used (copied); the UI
                               * is served and every route that reads the store answers 503
                               * with it (JSON; /metrics: text/plain) */
} pl_handler_options;

typedef struct pl_handler pl_handler;

/* Creates a handler from a copy of *opt (opt->store is borrowed). *out is
 * owned by the caller; free it with pl_handler_free. Returns 0 or ENOMEM. */
int pl_handler_new(pl_handler **out, const pl_handler_options *opt);
/* Frees a handler (not its store). NULL is a no-op. No call may be running. */
void pl_handler_free(pl_handler *h);

typedef struct pl_request {
    const char *method;           /* "GET", "POST", ... */
    const char *path;             /* relative to the mount point, starts with '/' ("" means "/") */
    const char *query;            /* raw query string without '?', may be NULL */
    const char *accept_encoding;  /* header value, may be NULL */
    int multiprocess;             /* wsgi.multiprocess of the request */
    const void *body;
    size_t body_len;
    /* Access (pyloot/access.h); all may be left zero/NULL. */
    const char *authorization;    /* Authorization header */
    const char *cookie;           /* Cookie header */
    const char *peer;             /* peer's numeric address; NULL/"" when unknown (not loopback) */
    int proxied;                  /* X-Forwarded-For, Forwarded or X-Real-IP present */
    int allowed;                  /* PL_ALLOW_*: the embedding's allow callable (0: none) */
    const char *mount;            /* the mount point ("/_pyloot"; "" at the root): cookie path */
    int secure;                   /* https: the login cookie gets Secure */
    const char *accept;           /* Accept header (/metrics: OpenMetrics) */
    const char *host;             /* Host header; NULL/"" when the request has none */
} pl_request;

typedef struct pl_response {
    int status;
    const char *content_type;     /* static string */
    const char *content_encoding; /* "gzip" or NULL */
    int vary_accept_encoding;     /* send "Vary: Accept-Encoding" */
    const char *cache_control;    /* static string or NULL */
    pl_buf body;                  /* owned; free with pl_response_free */
    const char *www_authenticate; /* static string or NULL (401) */
    const char *allow;            /* static string or NULL: the Allow header of a 405 */
    char set_cookie[1600];        /* Set-Cookie value, "" for none */
    char content_disposition[128];/* Content-Disposition value, "" for none (a download) */
} pl_response;

/* Handles one request. Always fills *resp with a complete answer (JSON
 * errors included); returns 0, or ENOMEM when even the error could not be
 * built (resp->status is then 500 with an empty body). The call may block
 * up to live_timeout_ms waiting for another worker. */
int pl_handler_handle(pl_handler *h, const pl_request *req, pl_response *resp);
/* Frees the body of a response filled by pl_handler_handle (not resp itself). */
void pl_response_free(pl_response *resp);

/* Appends one witness as the JSON object /api/witnesses lists:
 * {"pid", "start", "host", "time", "held_by", "path": [{"type", "via",
 * "repr"}, ...]} ("via" null for the root). Returns 0 or ENOMEM. */
int pl_json_witness(pl_buf *b, const pl_witness *w);

/* Appends how an incarnation ended as /api/procs shows it (pl_proc_end_kind):
 * {"how":"killed","signal":9,"name":"SIGKILL"} (signal and name null when
 * not seen), {"how":"exited","code":3}, {"how":"clean"}, or null while alive. */
void pl_json_proc_end(pl_buf *b, const pl_proc_info *p);

/* Appends the one "held by" line of a witness, as the UI and `pyloot report`
 * both show it: "module demo_app → attribute '_sessions' → list → item[3] →
 * demo_app.Session" (the root module's name from its repr). Built here, once,
 * so that the two never word a path differently. Returns 0 or ENOMEM. */
int pl_witness_held_by(const pl_witness *w, pl_buf *out);

/* The reason phrase of an HTTP status ("Not Found"); "Unknown" for others. */
const char *pl_http_reason(int status);

#endif
