/* pyloot core: the decoder of remote-mode sample messages (POST /api/samples,
 * docs/http-api.md "Remote mode"). Pure functions over caller memory: no
 * store, no global state; thread-safe. */
#ifndef PYLOOT_INGEST_H
#define PYLOOT_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "pyloot/memory.h"
#include "pyloot/route_name.h"
#include "pyloot/store.h"

#define PL_INGEST_MAGIC "PLS1"
#define PL_INGEST_ENDED 1u        /* flags bit0: the incarnation ended cleanly after these samples */
#define PL_INGEST_NEW_SPACE 2u    /* flags bit1: a new type-id space starts with this message */
#define PL_INGEST_STATS 4u        /* flags bit2: the collector's stats follow argv */
#define PL_INGEST_MEMORY 8u       /* flags bit3: each sample's memory figures follow its entries */
#define PL_INGEST_ROUTES 16u      /* flags bit4: each sample's requests by route follow */
#define PL_INGEST_MEMORY_MAX (1ull << 50) /* a memory figure (bytes) of 1 PiB at most */
#define PL_INGEST_ROUTES_MAX (PL_ROUTES_PER_WORKER + 1u) /* routes of one sample (the bound and `other`) */
#define PL_INGEST_REQUESTS_MAX (1ull << 40) /* requests of one route in one interval */
#define PL_INGEST_COLLECTION_MAX_US 86400000000ull /* a pass of a day at most */
#define PL_INGEST_HOST_MAX 63u
#define PL_INGEST_ARGV_MAX 255u
#define PL_INGEST_MAX_BODY (4u << 20)      /* compressed */
#define PL_INGEST_MAX_MESSAGE (16u << 20)  /* decompressed */
#define PL_INGEST_MIN_TIME_MS 1577836800000LL  /* 2020-01-01 */
#define PL_INGEST_FUTURE_MS (10LL * 60 * 1000) /* at most this far after the server's clock */

/* One announced type: a local id and its name (pointing into the message). */
typedef struct pl_ingest_type {
    uint32_t local_id;
    const char *name;       /* not NUL-terminated; borrowed from the decoded message */
    size_t len;
} pl_ingest_type;

/* One entry of a sample (local ids strictly ascending within a sample). */
typedef struct pl_ingest_entry {
    uint32_t local_id;
    uint64_t count;
    uint64_t bytes;
} pl_ingest_entry;

/* One sample: entries[first .. first + n) of the message. */
typedef struct pl_ingest_sample {
    int64_t time_ms;
    size_t first;
    size_t n;
    pl_memory_sample memory;        /* PL_INGEST_MEMORY: where the worker's memory was; else zeros */
    size_t first_route, n_routes;   /* PL_INGEST_ROUTES: routes[first_route .. + n_routes); else 0 */
} pl_ingest_sample;

typedef struct pl_ingest_msg {
    unsigned flags;                 /* PL_INGEST_* */
    char host[PL_INGEST_HOST_MAX + 1];
    char argv[PL_INGEST_ARGV_MAX + 1];
    uint32_t pid;
    uint64_t start;                 /* the worker's own process start */
    uint32_t interval_ms;
    uint64_t rss;
    uint64_t collection_us;         /* PL_INGEST_STATS: the last pass's wall time; else 0 */
    uint64_t gil_held_us;           /* PL_INGEST_STATS: GIL held by pyloot since start; else 0 */
    pl_ingest_type *types;          /* malloc'ed, n_types */
    size_t n_types;
    pl_ingest_sample *samples;      /* malloc'ed, n_samples */
    size_t n_samples;
    pl_ingest_entry *entries;       /* malloc'ed, all samples' entries */
    size_t n_entries;
    pl_route_count *routes;         /* malloc'ed, all samples' requests by route; names point into
                                     * the message, each a valid route name (pl_route_name_valid) */
    size_t n_routes;
} pl_ingest_msg;

/* Decodes one decompressed message of `len` bytes. now_ms is the server's
 * clock (sample times must lie in [PL_INGEST_MIN_TIME_MS, now_ms +
 * PL_INGEST_FUTURE_MS]). Returns 0 with *out filled (names point into
 * `data`, which must outlive *out; free with pl_ingest_msg_free), PL_EBADARG
 * with a sentence in why (always NUL-terminated) for malformed input, or
 * ENOMEM. On error *out holds nothing to free. Allocations are bounded by
 * len (each counted item needs at least one byte of input). */
int pl_ingest_decode(const void *data, size_t len, int64_t now_ms, pl_ingest_msg *out, char *why,
                     size_t whylen);

/* Frees the arrays of a decoded message (not the message itself); NULL or a
 * zeroed message is a no-op. */
void pl_ingest_msg_free(pl_ingest_msg *m);

#endif
