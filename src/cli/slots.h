/* The `pyloot` server's guard of its connection slots against slow clients
 * (slots.c; docs/cli.md, "Limits of the server"). libmicrohttpd closes a
 * connection only after `idle` seconds without a byte, so a client that
 * sends one byte every few seconds could hold a slot forever, and enough of
 * them, from enough addresses, every slot. The guard gives each request
 * deadlines that bytes do not reset:
 *
 *   - the request line and headers within `header_timeout_s` of the
 *     connection's start (or, on a kept-alive connection, of its request
 *     line);
 *   - the body within `request_timeout_s` of the headers;
 *   - the next request line within `idle_timeout_s` of the last answer;
 *
 * and keeps at most `max_pending` connections whose request is not received
 * whole yet (headers or body): a new one over that number ends the oldest.
 * A request that was received whole (being answered, or parked waiting for
 * a worker) has no deadline here.
 *
 * A connection past a deadline is ended by shutdown(2) of its socket from
 * the guard's timer thread; libmicrohttpd then sees the end and closes it.
 * The shutdown is done under the guard's lock while the connection is
 * listed, and libmicrohttpd's MHD_CONNECTION_NOTIFY_CLOSED (which unlists
 * it under the same lock) comes before its close(2) of the socket, so the
 * guard never touches a descriptor that was closed and reused.
 *
 * Threads: every function may be called from any thread. */
#ifndef PYLOOT_CLI_SLOTS_H
#define PYLOOT_CLI_SLOTS_H

#include <microhttpd.h>

struct slots_options {
    unsigned header_timeout_s;   /* request line + headers */
    unsigned request_timeout_s;  /* the body, after the headers */
    unsigned idle_timeout_s;     /* between two requests of a kept-alive connection */
    unsigned max_pending;        /* connections whose request is not received whole */
};

struct slots;

/* Creates the guard and starts its timer thread. 0 or an errno. */
int slots_new(struct slots **out, const struct slots_options *opt);

/* Stops the thread and frees. Call after MHD_stop_daemon. NULL is a no-op. */
void slots_free(struct slots *s);

/* MHD_OPTION_NOTIFY_CONNECTION's callback; cls is the struct slots. */
void slots_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                  enum MHD_ConnectionNotificationCode code);

/* A request line arrived (MHD_OPTION_URI_LOG_CALLBACK). */
void slots_request_line(struct slots *s, struct MHD_Connection *c);

/* The request's headers are complete (the access handler's first call). */
void slots_headers_done(struct slots *s, struct MHD_Connection *c);

/* The request was received whole (the access handler's last call). */
void slots_body_done(struct slots *s, struct MHD_Connection *c);

/* The request was answered (MHD_OPTION_NOTIFY_COMPLETED): the connection
 * waits for its next request. */
void slots_request_done(struct slots *s, struct MHD_Connection *c);

/* Connections whose request is not received whole (tests, logs). */
unsigned slots_pending(struct slots *s);

#endif
