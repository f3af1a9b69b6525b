/* pyloot core: the remote-mode routes of the central `pyloot` server
 * (docs/http-api.md, "Remote mode"): POST /api/samples (ingest), GET
 * /api/remote/poll and POST /api/remote/reply (the mailbox over HTTP), and
 * the /api/objects... routes, answered by forwarding to the worker.
 *
 * Two of them wait (a poll up to 25 s, an object query up to the live
 * timeout). They never block the calling thread: pl_remote_handle returns
 * PL_REMOTE_WAIT with a pl_remote_wait, the server parks the connection
 * (libmicrohttpd: MHD_suspend_connection) and calls pl_remote_continue when
 * `notify` says something may have arrived for it, or at its deadline.
 *
 * Threads: every function may be called from any thread at once. The
 * in-memory type-id maps of the pushing incarnations are protected by an
 * internal mutex; everything else is the store's. */
#ifndef PYLOOT_REMOTE_H
#define PYLOOT_REMOTE_H

#include <stddef.h>
#include <stdint.h>

#include "pyloot/committer.h"
#include "pyloot/handler.h"
#include "pyloot/store.h"

#define PL_REMOTE_POLL_MS 25000u          /* longest wait of a poll */
#define PL_REMOTE_REPLY_MAX (16u << 20)   /* a reply body, after inflating */
/* Bounds of what pushes may make the server keep (docs/http-api.md, "POST
 * /api/samples"): type names announced in one push and by one incarnation
 * over its life (each costs a stored name and 8 bytes of id map) and their
 * bytes, and the bytes of every in-memory id map together. A push past one is refused
 * with 413 (429 for the total) and {"error": ..., "bound": "<name>"}. */
#define PL_REMOTE_TYPES_PER_PUSH 32768u
#define PL_REMOTE_TYPES_PER_WORKER 65536u
#define PL_REMOTE_NAME_BYTES_PER_WORKER (8u << 20)
#define PL_REMOTE_MAPS_MAX_BYTES (256u << 20)
/* An id map whose incarnation has not pushed for max(this many intervals,
 * PL_REMOTE_MAP_IDLE_MS) is freed (the worker re-announces if it comes back). */
#define PL_REMOTE_MAP_IDLE_BEATS 4u
#define PL_REMOTE_MAP_IDLE_MS 60000u

/* Called after a query was posted for `inc` (inc != NULL: wake the polls of
 * that incarnation) or a reply was stored (inc == NULL: wake the waiting
 * askers). From any thread; must not call back into pl_remote. */
typedef void (*pl_remote_notify_fn)(void *ctx, const pl_incarnation *inc);

typedef struct pl_remote_options {
    pl_store *store;             /* borrowed; must outlive the pl_remote */
    const char *token;           /* NULL or "": no token; borrowed */
    int read_only;               /* refuse pushes, polls and replies with 403 */
    uint32_t live_timeout_ms;    /* wait for a worker's answer; 0 = 5000 */
    uint32_t poll_ms;            /* longest poll; 0 = PL_REMOTE_POLL_MS */
    pl_remote_notify_fn notify;  /* may be NULL */
    void *notify_ctx;
    /* Group commit: when set, pushes are queued to a pl_committer and wait
     * (PL_WAIT_COMMIT) until the transaction holding them committed; it is
     * called with the highest ticket done (wake those waits). NULL: each
     * push is stored on the calling thread before pl_remote_handle returns. */
    pl_commit_done_fn committed;
    void *committed_ctx;
    /* The bounds above; 0 = the PL_REMOTE_* default (tests scale them). */
    uint32_t types_per_push;
    uint32_t types_per_worker;
    size_t name_bytes_per_worker;
    size_t maps_max_bytes;
    uint32_t map_idle_ms;        /* 0 = PL_REMOTE_MAP_IDLE_MS */
} pl_remote_options;

typedef struct pl_remote pl_remote;

/* What the remote-mode routes need of a request beyond pl_request. */
typedef struct pl_remote_request {
    const pl_request *http;        /* method, path, query, body */
    const char *authorization;     /* headers, each may be NULL */
    const char *content_type;
    const char *content_encoding;
    const char *pyloot_status;     /* X-Pyloot-Status */
} pl_remote_request;

enum { PL_WAIT_QUERY = 1, PL_WAIT_ANSWER = 2, PL_WAIT_COMMIT = 3 };

/* A parked request: a poll waiting for a query (QUERY), an object query
 * waiting for the worker's answer (ANSWER), or a push waiting for the
 * transaction that stores it (COMMIT). Owned by the caller; a COMMIT wait
 * holds a queued job that pl_remote_continue or pl_remote_abandon ends. */
typedef struct pl_remote_wait {
    int kind;
    pl_incarnation inc;        /* QUERY: whose queries; ANSWER: the worker asked */
    uint64_t ticket;           /* ANSWER: the mailbox ticket; COMMIT: the committer's ticket */
    pl_commit_job *job;        /* COMMIT: the queued push */
    int64_t deadline_ms;
    char who[112];             /* ANSWER: "worker 123 on host web-2", for the 504 */
    int download;              /* ANSWER: a heap dump, sent as a file (200) */
} pl_remote_wait;

enum { PL_REMOTE_PASS = 0, PL_REMOTE_DONE = 1, PL_REMOTE_WAIT = 2 };

int pl_remote_new(pl_remote **out, const pl_remote_options *opt);
/* NULL is a no-op. No call may be running. */
void pl_remote_free(pl_remote *r);

/* Handles a request if its path is a remote-mode route. Returns
 * PL_REMOTE_PASS (not one: *resp untouched, answer it with pl_handler_handle),
 * PL_REMOTE_DONE (*resp filled; *ticket_header nonzero means send
 * "X-Pyloot-Ticket"), or PL_REMOTE_WAIT (*w filled; *resp empty). */
int pl_remote_handle(pl_remote *r, const pl_remote_request *req, pl_response *resp, uint64_t *ticket_header,
                     pl_remote_wait *w);

/* Looks again for what *w waits for: PL_REMOTE_DONE with *resp filled (the
 * query, the answer, 204 after a poll's deadline, 504 after an answer's), or
 * PL_REMOTE_WAIT. */
int pl_remote_continue(pl_remote *r, pl_remote_wait *w, int64_t now_ms, pl_response *resp,
                       uint64_t *ticket_header);

/* Ends a COMMIT wait without returning to the event loop: waits for its
 * transaction (one commit at most) and fills *resp. For other waits, same
 * as pl_remote_abandon plus a 503. Used when the server stops. */
void pl_remote_finish(pl_remote *r, pl_remote_wait *w, pl_response *resp);

/* The client of a parked request went away: withdraws an ANSWER's ticket,
 * or leaves a COMMIT's job to be freed after its transaction. */
void pl_remote_abandon(pl_remote *r, const pl_remote_wait *w);

/* Incarnations with an id map in memory (the tests read it). */
size_t pl_remote_known(pl_remote *r);

/* Bytes the id maps hold, bookkeeping included (tests). */
size_t pl_remote_map_bytes(pl_remote *r);

#endif
