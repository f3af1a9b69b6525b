/* The `pyloot` server's remote-mode side (central.c): the routes of
 * pyloot/remote.h on libmicrohttpd, with waiting requests parked by
 * MHD_suspend_connection instead of holding a thread, so thousands of
 * workers can keep a long poll open on a handful of threads. */
#ifndef PYLOOT_CLI_CENTRAL_H
#define PYLOOT_CLI_CENTRAL_H

#include <stdint.h>

#include <microhttpd.h>

#include "pyloot/handler.h"
#include "pyloot/remote.h"
#include "pyloot/store.h"

struct central;

/* Per-connection state, embedded in the server's connection struct. Zeroed
 * at the start of a connection. Its list fields are protected by the
 * central's lock. */
struct central_conn {
    struct central_conn *prev, *next; /* in the parked list while parked */
    struct MHD_Connection *mhd;
    pl_remote_wait wait;
    int parked;        /* suspended, waiting for pl_remote_continue */
    int listed;        /* in the parked list (protected by the central's lock) */
    uint64_t seq;      /* events seen before the last look */
};

/* Creates the remote-mode routes over `store` (borrowed) and starts the
 * thread that wakes parked requests at their deadline. 0 or an errno. */
int central_new(struct central **out, pl_store *store, const char *token, int read_only);

/* Answers one request (headers and body complete, or a parked one resumed)
 * if it is a remote-mode route: returns MHD_YES/MHD_NO after queueing or
 * parking it, or -1 when the shared handler should answer (it applies the
 * access rule itself). `req` carries the access fields (authorization,
 * cookie, peer, proxied): the remote routes apply the same rule.
 * Runs on MHD's threads. */
int central_request(struct central *c, struct MHD_Connection *conn, struct central_conn *cc, const pl_request *req);

/* Queues a handler's response with all its headers (and X-Pyloot-Ticket
 * when ticket is not 0): MHD's result. Used for every answer of the server. */
enum MHD_Result central_send(struct MHD_Connection *conn, const pl_response *resp, uint64_t ticket);

/* A connection ends: withdraws what it was waiting for. */
void central_conn_done(struct central *c, struct central_conn *cc);

/* Resumes every parked request (they answer 503) so the daemon can stop. */
void central_stop(struct central *c);

/* Stops the thread and frees. Call after MHD_stop_daemon. NULL is a no-op. */
void central_free(struct central *c);

#endif
