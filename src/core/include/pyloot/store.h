/* pyloot core: the shared LMDB store.
 *
 * One LMDB environment (a directory) holds the typed count histories of every
 * process of one server. Each process *incarnation* (pid + process start
 * time) writes only its own records; readers merge. See docs/store.md for
 * the key layout, retention and the LMDB rules this module follows.
 *
 * Threads: a pl_store may be used from several threads of one process at
 * once (the env is opened with MDB_NOTLS; every function runs its own short
 * transaction, begun and committed on the calling thread). No function calls
 * into Python, so all of them may run with the GIL released.
 *
 * Fork: an env must never be used, nor closed, in a child process created by
 * fork() after pl_store_open. The child calls pl_store_forget() on the
 * inherited handle and opens a new one. */
#ifndef PYLOOT_STORE_H
#define PYLOOT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "pyloot/buf.h"
#include "pyloot/memory.h"
#include "pyloot/proc.h"
#include "pyloot/route_name.h"

/* The retention by age of a store opened without max_age_s: 7 days. */
#define PL_STORE_DEFAULT_MAX_AGE_S (7ull * 86400)

typedef struct pl_store pl_store;

typedef struct pl_store_options {
    const char *path;       /* environment directory; created (mode 0700) if missing */
    uint64_t map_size;      /* LMDB map size in bytes; 0 = default (1 GiB) */
    uint32_t max_samples;   /* per incarnation; 0 = default (2880). Dropped a compacted window
                             * (32 or 128 samples) at a time: see docs/store.md */
    uint64_t max_age_s;     /* samples and dead incarnations older than this are pruned; 0 = default
                             * (PL_STORE_DEFAULT_MAX_AGE_S) */
    uint64_t max_bytes;     /* prune when the used part of the map exceeds this; 0 = default (3/4 of
                             * the map, which may have been grown by another process); never more
                             * than the map */
    int read_only;          /* open for reading only (the CLI inspecting a store); never writes */
} pl_store_options;

/* Opens (creating if needed) the store at opt->path, runs mdb_reader_check,
 * and checks the schema version (PL_ESCHEMA if it differs). *out is owned by
 * the caller; free with pl_store_close. Thread-safe with respect to other
 * stores. */
int pl_store_open(pl_store **out, const pl_store_options *opt);

/* Closes the env and frees the handle. NULL is a no-op. No other thread may
 * be using the store. Never call in a forked child on an inherited handle.
 * A handle given up after damage (pl_store_damaged) is left as it is: its
 * env is abandoned on purpose, never closed. */
void pl_store_close(pl_store *s);

/* Drops a handle inherited through fork() without touching LMDB: its memory
 * and file descriptors are deliberately leaked, because closing an inherited
 * env would release the parent's locks (LMDB forbids using an env across
 * fork). NULL is a no-op. */
void pl_store_forget(pl_store *s);

/* The environment directory, as opened; owned by the store. */
const char *pl_store_path(const pl_store *s);

/* Damage met at run time (docs/store.md, "Damage at run time"). Before each
 * call a handle checks, without reading through LMDB's map, that data.mdb did
 * not shrink, that its meta pages decode and that the path still names the
 * file it opened; during each call a fault inside the store's map (SIGBUS,
 * SIGSEGV), an LMDB assertion or an LMDB error that means a bad file
 * (MDB_CORRUPTED, MDB_PAGE_NOTFOUND, ...) ends the call with PL_EDAMAGED
 * instead of the process. The handle is then given up for good: every later
 * call returns PL_EDAMAGED at once, pl_store_close leaves it alone (its env is
 * abandoned, not closed: another thread may still be inside it), and the
 * caller opens the store anew (pl_store_replace, verify.h). Returns 1 when s
 * was given up, with the reason in why (NUL-terminated, cut to len; why may
 * be NULL), else 0. Thread-safe; never touches LMDB. */
int pl_store_damaged(const pl_store *s, char *why, size_t len);

/* Garbage in a page does not always fault: it can also read as wrong
 * answers (a missing record, an id not given out). After an error it cannot
 * explain, a caller checks the store where a crash cannot hurt: this runs
 * pl_store_verify (verify.h: a walk in a forked child, bounded by timeout_ms,
 * 0 = its default) and gives s up (pl_store_damaged) when the file is
 * damaged. Returns 0 (sound), PL_EDAMAGED, or the check's other error.
 * Thread-safe; forks, so callers rate-limit it (the collector: once per
 * outage). */
int pl_store_check_now(pl_store *s, unsigned timeout_ms);

/* Writes or refreshes this incarnation's procs record (first_seen is kept if
 * the record exists). */
int pl_store_register(pl_store *s, const pl_proc_info *info);

/* Updates last_seen, rss and (unless stats is NULL) the collector's stats
 * of an incarnation in one write transaction; also runs mdb_reader_check
 * and retention when they are due. */
int pl_store_heartbeat(pl_store *s, const pl_incarnation *inc, int64_t now_ms, uint64_t rss,
                       const pl_proc_stats *stats);

/* Marks an incarnation as ended at now_ms: what a process writes itself on
 * its way out (listed as ended cleanly unless its parent says otherwise). */
int pl_store_end(pl_store *s, const pl_incarnation *inc, int64_t now_ms);

/* Marks an incarnation as ended at now_ms (an end already written keeps its
 * time) and stores how, as the parent that reaped it saw it: `how` is a
 * PL_END_* of proc.h, `value` the exit code (PL_END_EXITED) or the signal
 * (PL_END_KILLED). PL_END_NONE leaves a stored status as it is.
 * PL_ENOTFOUND for an incarnation not stored, PL_EBADARG for another how. */
int pl_store_end_status(pl_store *s, const pl_incarnation *inc, int64_t now_ms, int how, int value);

/* Lists every stored incarnation, alive or dead, sorted by first_seen.
 * *out is malloc'ed (free() it), *n its length. `alive` is computed. */
int pl_store_procs(pl_store *s, pl_proc_info **out, size_t *n);

/* Looks up the type ids of n names (names[i] has lens[i] bytes, no NUL
 * needed; at most PL_TYPE_NAME_MAX bytes), creating missing ones in one
 * write transaction. ids are global to the store: the same name gets the
 * same id in every process. */
#define PL_TYPE_NAME_MAX 1024
int pl_store_type_ids(pl_store *s, const char *const *names, const size_t *lens, size_t n,
                      uint32_t *ids);

/* One type's count in one sample. */
typedef struct pl_type_count {
    uint32_t type_id;
    uint64_t count;         /* live objects of that type */
    uint64_t bytes;         /* their shallow size */
} pl_type_count;

/* Sorts the entries of one sample by type id, in place (nothing to do for
 * entries already in order, as senders usually give them), and checks that
 * no id appears twice. 0, or PL_EBADARG for a repeated id. The one rule of
 * every writer of samples (the store's append, the central server's
 * ingest). Thread-safe. */
int pl_type_counts_sort(pl_type_count *c, size_t n);

/* Appends one sample of an incarnation taken at time_ms: the counts of every
 * type present (types absent from the sample count 0 in it). `counts` need
 * not be sorted. Prunes by retention first when it is due, and on
 * MDB_MAP_FULL prunes and retries instead of failing. Returns PL_ENOTFOUND
 * if `inc` is not registered, PL_EBADARG for a duplicate type id, an id not
 * given out by pl_store_type_ids, or time_ms < 0. A time not after the
 * incarnation's previous sample is moved to 1 ms after it (a clock stepping
 * back must not lose samples). Entries with count and bytes 0 are not
 * stored. Thread-safe. */
int pl_store_append(pl_store *s, const pl_incarnation *inc, int64_t time_ms,
                    const pl_type_count *counts, size_t n);

/* pl_store_append with the sample's memory figures (NULL: none), stored
 * beside it in the same transaction (docs/store.md, "Memory"). */
int pl_store_append_memory(pl_store *s, const pl_incarnation *inc, int64_t time_ms,
                           const pl_type_count *counts, size_t n, const pl_memory_sample *memory);
/* Requests one route served in one sample's interval (docs/store.md,
 * "Routes"). name is a route name of pyloot/route_name.h (len bytes, no NUL
 * needed); a name that is not valid (pl_route_name_valid) counts under
 * PL_ROUTE_OTHER. */
typedef struct pl_route_count {
    const char *name;
    size_t len;
    uint64_t requests;
} pl_route_count;

/* The requests by route of one sample's interval: n entries (a name may
 * repeat: its requests add up). A sample with a route sample, even an
 * empty one, says that its worker counts requests (track_requests). */
typedef struct pl_route_sample {
    const pl_route_count *routes; /* borrowed */
    size_t n;
} pl_route_sample;

/* pl_store_append_memory with the requests by route of the sample's
 * interval (NULL: none), stored beside it in the same transaction. */
int pl_store_append_routes(pl_store *s, const pl_incarnation *inc, int64_t time_ms, const pl_type_count *counts,
                           size_t n, const pl_memory_sample *memory, const pl_route_sample *routes);

/* One sample of a batch item: like pl_store_append's arguments. */
typedef struct pl_store_sample {
    int64_t time_ms;
    const pl_type_count *counts; /* need not be sorted; borrowed */
    size_t n;
} pl_store_sample;

/* One item of pl_store_append_batch: the samples of one incarnation (in
 * time order), with a pushed incarnation's register/heartbeat first and its
 * end last when asked. The item is stored whole or not at all. */
typedef struct pl_store_batch_item {
    /* in */
    const pl_proc_info *remote;   /* non-NULL: register or refresh this pushed incarnation first, as
                                     pl_store_remote_register at `now_ms` (inc is then an output) */
    int64_t now_ms;               /* with remote: its last_seen; with end: its end time */
    int end;                      /* mark the incarnation ended (pl_store_end at now_ms) after the samples */
    const pl_store_sample *samples; /* borrowed */
    size_t n_samples;
    const pl_memory_sample *memory; /* NULL, or n_samples entries: where the process's memory was at
                                     * each sample (stored beside it, table `memory`); borrowed */
    const pl_route_sample *routes; /* NULL, or n_samples entries: the requests by route of each
                                     * sample's interval (table `routes`); borrowed */
    /* in (without remote) or out (with remote) */
    pl_incarnation inc;
    /* out */
    int rc;                       /* 0: stored; else why not (the codes of pl_store_append) */
} pl_store_batch_item;

/* Stores n items (one incarnation or several, an incarnation may repeat) in
 * ONE write transaction, so one commit (and one fsync) covers them all.
 * Each item gets its own result in items[i].rc, with the rules of
 * pl_store_append and pl_store_remote_register: an item with a bad argument
 * (PL_EBADARG: time < 0, a duplicate or unknown type id, an empty host or
 * pid 0 ...) or an unregistered incarnation (PL_ENOTFOUND) stores nothing
 * and does not stop the others. Due retention runs before the write; on
 * MDB_MAP_FULL the store makes room and the whole transaction is retried;
 * compaction and retention of the touched incarnations run after the
 * commit, so a failure there never loses a stored item. Returns 0 when the
 * transaction committed and the work after it succeeded; the commit's error
 * (then every item's rc is that error and nothing is stored); or, with
 * every stored item's rc 0, the error of the work after the commit.
 * items[i] and what it points to must stay valid during the call.
 * Thread-safe. */
int pl_store_append_batch(pl_store *s, pl_store_batch_item *items, size_t n);

/* Runs retention now (samples, age, bytes). Normally called by append and
 * heartbeat when due. */
int pl_store_prune(pl_store *s, int64_t now_ms);

/* Store-wide facts for /api/procs. */
typedef struct pl_store_stat {
    uint64_t map_size;
    uint64_t used_bytes;    /* pages in use * page size */
    uint64_t max_bytes;
    uint32_t max_samples;
    uint64_t max_age_s;
    uint32_t types;         /* number of type names */
    uint32_t schema;
} pl_store_stat;
int pl_store_stat_get(pl_store *s, pl_store_stat *out);

/* ---- history query (GET /api/history) ---- */

enum {
    PL_SORT_COUNT = 0,        /* latest count, descending */
    PL_SORT_GROWTH = 1,       /* count growth, descending */
    PL_SORT_NAME = 2,         /* name, ascending */
    PL_SORT_BYTES = 3,        /* latest shallow bytes, descending */
    PL_SORT_BYTES_GROWTH = 4, /* bytes growth, descending */
    PL_SORT_N = 5
};

/* The sorts' names ("count", "growth", "name", "bytes", "bytes_growth"),
 * indexed by PL_SORT_*: the one list that sort= of /api/history, --sort of
 * the commands and their error messages use. */
extern const char *const pl_sort_names[PL_SORT_N];
/* "growth, count, name, bytes or bytes_growth": the list for error
 * messages and usage texts. */
extern const char pl_sort_list[];
/* The PL_SORT_* named by s[0..len), or -1. Thread-safe. */
int pl_sort_from_name(const char *s, size_t len);

typedef struct pl_history_query {
    const char *q;          /* case-insensitive substring of the type name; NULL or "" = all */
    int sort;               /* PL_SORT_*: name sorts ascending, the others descending */
    uint64_t offset;        /* into the sorted, filtered list of types */
    uint64_t limit;         /* types to return (1..1000) */
    uint64_t top;           /* 0 = all; else only the `top` types with the largest count (before q and sort) */
    uint32_t pid;           /* 0 = merged over incarnations; else only incarnations with this pid */
    int per_worker;         /* also return one series per incarnation */
    uint32_t max_points;    /* 0 = default (720): points on the time axis at most */
    int64_t now_ms;         /* the query's "now" (0 = the clock): the as-of moment of a live store */
    int64_t since_ms;       /* window start, unix ms; 0 = the first sample. growth is counted from it */
    int64_t until_ms;       /* the as-of moment, unix ms; 0 = now when an incarnation is alive,
                             * else the last moment one was (pl_history.as_of_ms says which) */
    const char *host;       /* NULL or "" = every host; else only incarnations of this host */
    unsigned trends;        /* 0 = every type; else only types whose trend (PL_TREND_*, trend.h) has
                             * its bit (1u << trend) set: before offset/limit, total counts them */
} pl_history_query;

/* How far after the clock a since/until may be (clock skew between hosts);
 * callers refuse later times as bad arguments. */
#define PL_HISTORY_FUTURE_MS 3600000

/* One incarnation's line for one type, aligned with pl_history.times. */
typedef struct pl_history_line {
    pl_incarnation inc;
    char host[64];          /* of the incarnation's procs record, NUL-terminated */
    int64_t *counts;        /* n_times entries; -1 where the incarnation has no value */
    int64_t *bytes;         /* n_times entries, its bytes; -1 likewise */
    int trend;              /* PL_TREND_* of counts (trend.h) */
} pl_history_line;

typedef struct pl_history_type {
    char *name;             /* NUL-terminated */
    uint32_t type_id;
    uint64_t count;         /* latest count summed over alive incarnations (or the pid's latest) */
    uint64_t bytes;         /* same, bytes */
    int64_t growth;         /* sum over those incarnations of (latest - first stored count) */
    int64_t bytes_growth;   /* same, bytes */
    int64_t *counts;        /* n_times entries, merged; -1 where no incarnation has a value */
    int64_t *bytes_series;  /* n_times entries, merged bytes; -1 likewise */
    pl_history_line *lines; /* per_worker only: n_lines entries, else NULL */
    size_t n_lines;
    int trend;              /* PL_TREND_* of the merged counts over the window (trend.h) */
} pl_history_type;

typedef struct pl_history {
    int64_t *times;         /* unix ms of each point, ascending */
    size_t n_times;
    uint64_t total;         /* types matching q (before offset/limit) */
    pl_history_type *types; /* at most limit entries, in sort order */
    size_t n_types;
    int64_t as_of_ms;       /* the moment count/bytes are taken at: until_ms, now, or the last
                             * moment an incarnation was alive; 0 for a store without samples */
    int64_t since_ms;       /* the window's start as used (0: from each incarnation's first sample) */
    int live;               /* 1 when as_of_ms is now (no until_ms, some incarnation alive) */
    int64_t step_ms;        /* the slot grid's step (times[] but the last are multiples of it) */
} pl_history;

/* Answers a history query from one read transaction, as of a moment
 * (until_ms; else now while an incarnation is alive, else the last moment
 * one was: h->as_of_ms, h->live). count/bytes are at that moment over the
 * incarnations alive then; growth is from since_ms (or each one's first
 * sample). The time axis is a grid of slots aligned to the collection
 * interval (see docs/store.md): an incarnation contributes to a slot its
 * last sample at or before the slot's end while it was alive (a dead one
 * until 1.5 intervals after its last sign of life). The merged line sums
 * those contributions. Each type (and line) gets the trend of its count
 * series (pl_trend_classify); with `trends`, only the types of those trends
 * count, which reads the series of every candidate (in batches, in the same
 * transaction). Candidates are every type of the store; ties sort by
 * name, then id. Returns PL_EBADARG for a limit outside 1..1000, an unknown
 * sort, a negative since/until or until not after since, a trends bit
 * past PL_TREND_N, PL_ENOTFOUND when
 * `pid` (or `host`) has no incarnation. Callers zero-initialise the query.
 * *out is malloc'ed; free it with pl_history_free (NULL is a no-op). */
int pl_store_history(pl_store *s, const pl_history_query *q, pl_history **out);
void pl_history_free(pl_history *h);

/* ---- memory series (GET /api/memory) ---- */

typedef struct pl_memory_query {
    uint32_t pid;           /* 0 = every incarnation; else only those with this pid */
    const char *host;       /* NULL or "" = every host; else only incarnations of this host */
    int64_t since_ms;       /* window start, unix ms; 0 = the first sample */
    int64_t until_ms;       /* the as-of moment, unix ms; 0 = as pl_store_history */
    int64_t now_ms;         /* the query's "now" (0 = the clock) */
    uint32_t max_points;    /* 0 = default (720) */
} pl_memory_query;

/* Four series aligned with pl_memory.times; -1 where nothing contributes. */
typedef struct pl_memory_series {
    int64_t *rss;
    int64_t *python_bytes;
    int64_t *allocator_free_bytes;
    int64_t *other_bytes;   /* pl_memory_other of each contribution, summed */
    /* Over the window: a worker's from its first slot with figures to its
     * last (pl_memory_growth_of); the merged one is the sum of the growths
     * of the workers with figures in the newest slot (as the history's
     * growth, so a worker that starts or stops is not growth). */
    pl_memory_growth growth;
} pl_memory_series;

/* One incarnation's series. */
typedef struct pl_memory_worker {
    pl_incarnation inc;
    char host[64];          /* of its procs record, NUL-terminated */
    pl_memory_series s;
} pl_memory_worker;

typedef struct pl_memory {
    int64_t *times;         /* slot ends, unix ms, ascending: the grid of pl_store_history */
    size_t n_times;
    int64_t as_of_ms;       /* as pl_history.as_of_ms; 0 when no sample has memory figures */
    int live;
    int64_t step_ms;
    pl_memory_series merged; /* the sum over the incarnations alive at each slot's end */
    pl_memory_worker *workers; /* the incarnations with memory figures, in procs order */
    size_t n_workers;
} pl_memory;

/* Answers a memory query from one read transaction, on the time axis and
 * with the liveness rules of pl_store_history (docs/store.md, "Memory"):
 * an incarnation contributes to a slot its last memory figures at or before
 * the slot's end while it was alive then; the merged series sum the
 * contributions. Returns PL_EBADARG for a negative since/until or until not
 * after since, PL_ENOTFOUND when `pid` (or `host`) has no incarnation. A
 * store without the memory table (a read-only open of schema 4 or older)
 * answers empty series. Callers zero-initialise the query. *out is
 * malloc'ed; free it with pl_memory_free (NULL is a no-op). Thread-safe. */
int pl_store_memory(pl_store *s, const pl_memory_query *q, pl_memory **out);
void pl_memory_free(pl_memory *m);

/* ---- requests by route (GET /api/routes) ---- */

/* Distinct route names a store keeps at most: past it, new names count
 * under PL_ROUTE_OTHER until retention drops names no sample uses. */
#define PL_ROUTE_NAMES_MAX 65536u
/* Route entries one read returns at most (PL_ETOOBIG past it): bounds its
 * memory whatever the window and the number of workers. */
#define PL_ROUTE_READ_MAX (1u << 21)

typedef struct pl_routes_query {
    uint32_t pid;           /* 0 = every incarnation; else only those with this pid */
    const char *host;       /* NULL or "" = every host */
    int64_t since_ms;       /* only samples after this (unix ms); 0 = from the first */
    int64_t until_ms;       /* only samples at or before this; 0 = to the last */
} pl_routes_query;

/* One entry of a stored route sample. */
typedef struct pl_route_entry {
    uint32_t route_id;      /* as read: the index of its name in pl_route_data.names */
    uint64_t requests;
} pl_route_entry;

/* One stored route sample: entries[first .. first + n) of pl_route_data,
 * sorted by route_id. */
typedef struct pl_route_record {
    int64_t time_ms;        /* the time of the sample it was stored with */
    size_t first, n;
} pl_route_record;

/* One incarnation's route samples in the window, in time order. */
typedef struct pl_route_worker {
    pl_incarnation inc;
    char host[64];
    pl_route_record *records;
    size_t n_records;
} pl_route_worker;

typedef struct pl_route_data {
    pl_route_worker *workers; /* the incarnations with route samples in the window */
    size_t n_workers;
    pl_route_entry *entries;
    size_t n_entries;
    char **names;            /* the names of the routes the entries use, indexed by their route_id */
    size_t n_names;
} pl_route_data;

/* Reads the stored requests by route of the incarnations matching q (one
 * read transaction). PL_EBADARG for a negative since/until or until not
 * after since, PL_ENOTFOUND when pid (or host) has no incarnation,
 * PL_ETOOBIG past PL_ROUTE_READ_MAX entries. A store without the tables
 * answers no workers. *out is malloc'ed; free it with pl_route_data_free
 * (NULL is a no-op). Thread-safe. */
int pl_store_routes(pl_store *s, const pl_routes_query *q, pl_route_data **out);
void pl_route_data_free(pl_route_data *d);

/* ---- mailbox: live-object requests forwarded between incarnations ---- */

/* Posts a request (opaque bytes, at most 4096) for incarnation `to`.
 * Returns PL_ENOTFOUND if `to` is not a registered live incarnation,
 * PL_EBUSY if it already has PL_MAILBOX_MAX_PENDING requests waiting.
 * *ticket identifies the request for pl_store_mailbox_result. */
#define PL_MAILBOX_MAX_PENDING 32
int pl_store_mailbox_post(pl_store *s, const pl_incarnation *to, const void *req, size_t len,
                          int64_t now_ms, uint64_t *ticket);

/* Takes the oldest request waiting for incarnation `me`: returns 0 and fills
 * *ticket and req (appended), or PL_ENOTFOUND when there is none. Requests
 * older than max_age_ms are discarded instead of returned. */
int pl_store_mailbox_take(pl_store *s, const pl_incarnation *me, int64_t now_ms,
                          int64_t max_age_ms, uint64_t *ticket, pl_buf *req);

/* Stores the reply to a taken request: an HTTP status and a body (any size).
 * Returns PL_ENOTFOUND (dropping the reply) when the request was withdrawn
 * or swept meanwhile. */
int pl_store_mailbox_reply(pl_store *s, uint64_t ticket, int status, const void *body, size_t len,
                           int64_t now_ms);

/* Fetches and deletes the reply to `ticket`: 0 with *status and body filled,
 * PL_ENOTFOUND if it is not there yet. */
int pl_store_mailbox_result(pl_store *s, uint64_t ticket, int *status, pl_buf *body);

/* Withdraws a request and any reply (the waiter gave up). Missing is not an error. */
int pl_store_mailbox_cancel(pl_store *s, uint64_t ticket);

/* ---- witnesses: recorded paths from a root to an instance of a growing type ---- */

/* One step of a witness path: the object's type name, how the previous step
 * holds it (the edge vocabulary of docs/edges.md; "" for the root) and a
 * short repr. Each string is NUL-terminated. */
typedef struct pl_witness_step {
    const char *type;
    const char *via;
    const char *repr;
} pl_witness_step;

#define PL_WITNESS_MAX_STEPS 64       /* longer paths are refused (PL_EBADARG) */
#define PL_WITNESS_MAX_TEXT 1024      /* bytes of each string; longer ones are cut (at a UTF-8 boundary) */

/* Stores one witness of incarnation `inc` for type `type_id` (an id given out
 * by pl_store_type_ids) taken at time_ms: the path from its root (steps[0])
 * to the instance (steps[n - 1]), 1..PL_WITNESS_MAX_STEPS steps. Returns
 * PL_ENOTFOUND when `inc` is not registered, PL_EBADARG for n out of range,
 * a NULL string or time_ms < 0. One write transaction; on MDB_MAP_FULL it
 * makes room as an append does. Thread-safe. */
int pl_store_witness_put(pl_store *s, const pl_incarnation *inc, uint32_t type_id, int64_t time_ms,
                         const pl_witness_step *steps, size_t n);

/* One witness as read back. `steps` is one malloc'ed block holding the
 * strings too, owned by the list. */
typedef struct pl_witness {
    pl_incarnation inc;
    char host[64];          /* of the incarnation's procs record */
    int64_t time_ms;
    uint32_t type_id;
    pl_witness_step *steps; /* n_steps entries, root first */
    size_t n_steps;
} pl_witness;

typedef struct pl_witness_list {
    pl_witness *w;          /* newest first */
    size_t n;
} pl_witness_list;

/* Reads the witnesses of the type named `group` (PL_ENOTFOUND when the store
 * has no such type; an empty list when it has no witness), optionally only
 * of incarnations with `pid` (0: all) and `host` (NULL: all), newest first,
 * at most `max` of them. Witnesses of incarnations no longer in the store
 * are skipped. *out is filled with malloc'ed memory; free it with
 * pl_witness_list_free. Read only. Thread-safe. */
int pl_store_witnesses(pl_store *s, const char *group, uint32_t pid, const char *host, size_t max,
                       pl_witness_list *out);

/* Frees what pl_store_witnesses filled; a zeroed list is a no-op. */
void pl_witness_list_free(pl_witness_list *l);

/* ---- remote mode: incarnations pushed by workers of other hosts ---- */

/* Registers or refreshes the incarnation of a pushing worker: info->host,
 * info->inc.pid and info->inc.start (the worker's own start) identify it;
 * argv, interval_ms, rss and stats are stored; last_seen becomes now_ms. The first
 * push creates it under a start assigned by the store (top bit set, never
 * equal to a local start nor to another pushed incarnation's), written to
 * *out; later ones (after a restart of the server too) find the same one.
 * `ended` is left as it is. PL_EBADARG for an empty host or pid 0.
 * Thread-safe (one write transaction). */
int pl_store_remote_register(pl_store *s, const pl_proc_info *info, int64_t now_ms, pl_incarnation *out);

/* Finds the stored incarnation of a pushing worker (host, pid, its own
 * start) without writing: 0 with *out, PL_ENOTFOUND when there is none or it
 * has ended. Thread-safe. */
int pl_store_remote_find(pl_store *s, const char *host, uint32_t pid, uint64_t worker_start, pl_incarnation *out);

/* Test hook: when `on`, this handle hashes every type name to the same value
 * so that name-hash collisions can be exercised. Only for tests, on a store
 * that is never opened without the hook. */
void pl_store_test_collide_hashes(pl_store *s, int on);

/* Test hook: this handle skips the checks made before each call (the
 * fault guard alone stands between a damaged file and the process). Only for
 * tests. */
void pl_store_test_skip_checks(pl_store *s, int on);

/* Test hook: this handle writes log and snapshot values as a store of
 * `schema` would (3: the format before packed values), so that the C tests
 * can build what an older pyloot wrote. Only for tests. */
void pl_store_test_schema(pl_store *s, uint32_t schema);

#endif
