/* pyloot core: the worker side of remote mode's sample push (docs/http-api.md,
 * "Remote mode"). A pusher holds the worker's identity, its local type ids
 * (name -> small integer, announced once per type-id space), a bounded queue
 * of unsent samples, and the backoff state of its central server; it encodes
 * messages ("PLS1", gzip'ed) and POSTs them with pl_http_do.
 *
 * Threads: a pusher belongs to one thread (the collector thread), except
 * pl_push_stats, which any thread may call. No function takes the GIL or
 * needs it; pl_push_send does network I/O bounded by its timeout. */
#ifndef PYLOOT_PUSH_H
#define PYLOOT_PUSH_H

#include <stddef.h>
#include <stdint.h>

#include "pyloot/buf.h"
#include "pyloot/proc.h"
#include "pyloot/store.h"

#define PL_PUSH_DEFAULT_SAMPLES 256
#define PL_PUSH_DEFAULT_BYTES (8u << 20)
#define PL_PUSH_BACKOFF_MIN_MS 1000
#define PL_PUSH_BACKOFF_MAX_MS 60000
#define PL_PUSH_HOST_MAX 63

typedef struct pl_push_options {
    const char *server_host;   /* the central server; copied */
    uint16_t server_port;
    const char *token;         /* sent as "Authorization: Bearer"; NULL or "" for none; copied */
    const char *host_name;     /* this worker's host (identity), 1..63 bytes, no control chars; copied */
    pl_incarnation self;
    uint32_t interval_ms;
    const char *argv;          /* shown in /api/procs, truncated to 255 bytes; copied; may be NULL */
    size_t max_samples;        /* queue bound; 0: PL_PUSH_DEFAULT_SAMPLES */
    size_t max_bytes;          /* queue bound in encoded bytes; 0: PL_PUSH_DEFAULT_BYTES */
    int timeout_ms;            /* per request; 0: 5000 */
} pl_push_options;

typedef struct pl_push pl_push;

typedef struct pl_push_stats {
    uint64_t queued;           /* samples waiting now */
    uint64_t queued_bytes;
    uint64_t delivered;        /* samples the server accepted */
    uint64_t dropped;          /* samples dropped: beyond the bound, or refused as malformed (4xx) */
    uint64_t messages;         /* messages sent with a 200 */
    uint64_t failures;         /* failed attempts (network errors, 5xx, 401/403/404) */
    uint64_t reannounces;      /* 409s answered by a new type-id space */
    uint64_t wire_bytes;       /* compressed bytes of the messages sent with a 200 */
    int outage;                /* 1 while the server is unreachable */
    int last_status;           /* HTTP status of the last attempt, 0 for a network error */
    int last_error;            /* core error of the last failed attempt, 0 if none */
} pl_push_stats;

/* Creates a pusher (copies every string of *opt). Returns 0, PL_EBADARG for a
 * bad host name or port, ENOMEM. Free it with pl_push_free. */
int pl_push_new(pl_push **out, const pl_push_options *opt);
/* Frees a pusher; NULL is a no-op. */
void pl_push_free(pl_push *p);

/* Local ids of n type names (lens[i] bytes each, truncated to
 * PL_TYPE_NAME_MAX), assigned on first sight; they stay valid as long as
 * pl_push_generation returns the same value. Returns 0 or ENOMEM. */
int pl_push_type_ids(pl_push *p, const char *const *names, const size_t *lens, size_t n, uint32_t *ids);
/* Changes when the pusher forgets its ids (it never does today: one per pusher). */
uint64_t pl_push_generation(const pl_push *p);

/* Queues one sample (ids from pl_push_type_ids; need not be sorted; sorted in
 * place) and records rss for the next message. The oldest samples are
 * dropped (and counted) beyond the bounds. Returns 0, PL_EBADARG for a
 * duplicate id, ENOMEM. */
int pl_push_add(pl_push *p, int64_t time_ms, pl_type_count *counts, size_t n, uint64_t rss);
/* pl_push_add with the sample's memory figures (memory->rss is the rss):
 * they travel with the sample (flags bit3; a message holds samples that all
 * have figures or all have none). */
int pl_push_add_memory(pl_push *p, int64_t time_ms, pl_type_count *counts, size_t n,
                       const pl_memory_sample *memory);

/* pl_push_add_memory with the requests by route of the sample's interval
 * (NULL: the worker counts none): they travel with the sample (flags bit4;
 * a message holds samples that all have them or all have none). */
int pl_push_add_sample(pl_push *p, int64_t time_ms, pl_type_count *counts, size_t n,
                       const pl_memory_sample *memory, const pl_route_sample *routes);

/* Records the collector's stats (copied) for the messages built from now
 * on: they carry them (flags bit2) once this has been called. */
void pl_push_set_stats(pl_push *p, const pl_proc_stats *stats);

/* 1 when pl_push_send should be called now: samples wait and the backoff
 * (after a failure) has passed. */
int pl_push_due(const pl_push *p, int64_t now_ms);

/* Sends the queued samples, oldest first, several per message, until the
 * queue is empty, an attempt fails (backoff starts) or timeout_ms has
 * passed. With `end`, the last message carries the clean-end flag (sent even
 * with no samples) unless the server is in an outage. Outage start and end
 * lines ("pyloot: central server ... ") are appended to `log` (may be NULL).
 * Returns 0 when everything queued was delivered, else the error of the
 * failed attempt (an errno value, PL_E*, or PL_EBUSY for an HTTP error). */
int pl_push_send(pl_push *p, int64_t now_ms, int end, int timeout_ms, pl_buf *log);

/* Encodes the next message (the queued samples that fit, announcements,
 * `end` flag) gzip'ed into out, without sending or dequeuing: for tests and
 * the wire benchmark. *n_samples gets the samples it holds. Returns 0 or
 * ENOMEM/EIO. */
int pl_push_encode(pl_push *p, int end, pl_buf *out, size_t *n_samples);

/* Marks every name announced, as a 200 for the message pl_push_encode just
 * built would: for benchmarks that measure steady-state messages. */
void pl_push_mark_announced(pl_push *p);
/* Dequeues every sample without sending (benchmarks). */
void pl_push_clear(pl_push *p);

/* A copy of the counters. Thread-safe. */
void pl_push_stats_get(pl_push *p, pl_push_stats *out);

#endif
