/* Internal header of the LMDB store (the files of src/core/store/), not installed.
 * The layout, the retention rules and the reasons behind them are in docs/store.md; this comment is the short version.
 *
 *   meta      "schema" -> u32, "remote" -> u64 (last pushed incarnation), "typeid" -> u32 (highest type
 *             id given out, once names were pruned: types.c); "ticket" (u64) unused since mailbox
 *             tickets are random (mailbox.c)
 *   procs     inc(12) -> struct proc_rec
 *   types     id(4) -> name
 *   typenames hash(8) id(4) -> name            (names may exceed 511 bytes)
 *   log       inc(12) time(8) first_id(4) -> packed entries, sorted by id (PACKED_SCHEMA)
 *   windows   inc(12) wtime(8) -> flags, n, time deltas   (one per compacted window)
 *   ichunks   inc(12) group(4) wtime(8) part(1) -> 32 points of <=16 types  (level 1)
 *   ichunks2  inc(12) group(4) wtime(8) part(1) -> 128 points of <=4 types  (level 2)
 *   snap      inc(12) first_id(4) -> the first live window's first sample (log format)
 *
 * Schemas 1-3 had fixed 12-byte log entries (plus wide parts) and the chunk
 * tables `chunks`/`chunks2` keyed group(4) inc(12) wtime(8) part(1); a
 * read-only open reads them so, a writable one migrates (layout4()).
 *   mailbox   'q' to(12) ticket(8) part(1) | 't' ticket(8) | 'r' ticket(8) part(4)
 *   witness   type_id(4) inc(12) time(8) part(1) -> one witness path (witness.c)
 *   memory    inc(12) time(8) -> rss, python_bytes, allocator_free_bytes (schema 5; memory.c)
 *   routes    inc(12) time(8) part(1) -> requests by route id of one sample's interval (schema 6; routes.c)
 *   routeids  id(4) -> route name;  routenames  name -> id(4)     (schema 6; routes.c)
 *
 * Keys are big-endian; values use host byte order (an LMDB file is not
 * portable across architectures anyway). Every value stays under PART_MAX
 * bytes so that no record ever needs overflow pages (contiguous free runs
 * that a fragmented free list may not have).
 *
 * An append writes one sample time-major into `log` (a few sequential
 * puts). Once an incarnation has more than WINDOW samples in the log, its
 * oldest WINDOW samples are compacted into `ichunks` (level 1: 16 types per
 * value, adjacent since the incarnation leads the key) and deleted from the log.
 * Every fourth compaction instead merges the three newest level-1 windows
 * and the 32 log samples into one level-2 window of 128 samples with 4 types
 * per value, so that a reader visits ~25 values per type and incarnation
 * for 2,880 samples instead of 90. A history read fetches one type's whole
 * history with one range scan per level and incarnation, plus the short log.
 *
 * Files, each with one job; calls point down this list, never back up:
 *   recover.c    the guarded open: check in a child, move a damaged store aside, replace
 *   entry.c      the public entry points: each runs its *_unguarded body inside the guard
 *   api.c        bodies that run several subsystems (append, heartbeat, witness put)
 *   retention.c  max_samples, max_age, max_bytes, orphan sweeps, unused names, pl_store_prune
 *   compact.c    log -> level-1 / level-2 windows
 *   history.c    pl_store_history (read only)
 *   mailbox.c    live-object requests between incarnations
 *   remote.c     incarnations pushed by workers of other hosts
 *   witness.c    witness paths of growing types (encode, write once, read, retain)
 *   memory.c     where each sample's memory was: write, read as series, retain
 *   routes.c     each sample's requests by route and the route names: write, read, retain
 *   axis.c       the time axis of the series history.c and memory.c read
 *   open.c       open/close: the env, its tables, the schema; the recovery note
 *   migrate.c    the migration of schemas 1-3 to schema 4 (run by open.c)
 *   records.c    procs records, log samples, first-sample snapshots, window lists
 *   types.c      type names <-> ids
 *   verify.c     the check of a store's file in a forked child (pages and records)
 *   env.c        transactions, stat, ranged and batched deletes
 *   guard.c      damage met at run time: the cheap checks and the fault guard
 *   codec.c      keys, varints, window and chunk encodings (no LMDB calls)
 *
 * Ownership and threads: everything declared here works on a pl_store owned
 * by the caller, under the rules of store.h (any thread; each transaction
 * begun and ended on one thread). Buffers returned through `out` pointers
 * are malloc'ed and owned by the caller unless said otherwise. */
#ifndef PYLOOT_STORE_INT_H
#define PYLOOT_STORE_INT_H

#include <lmdb.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "pyloot/error.h"
#include "pyloot/store.h"
#include "pyloot/varint.h"

/* 2: procs records gained worker_start (pushed incarnations, remote.c).
 * 3: procs records gained collection_us and gil_held_us (the collector's
 * cost, /metrics).
 * 5: procs records gained end_how and end_value (how the incarnation ended,
 * as its parent saw it: pl_store_end_status).
 * An older store is migrated at a writable open (its records are read at
 * their old size, zero-extended) and read as it is by a read-only one. */
#define SCHEMA_VERSION 6u
#define SCHEMA_OLDEST 1u
#define DEFAULT_MAP_SIZE (1ull << 30)
#define DEFAULT_MAX_SAMPLES 2880u
#define DEFAULT_MAX_AGE_S PL_STORE_DEFAULT_MAX_AGE_S
#define DEFAULT_MAX_POINTS 720u

/* Samples per compacted window: large enough that the per-chunk key and
 * header overhead is small, small enough that the uncompacted log a reader
 * has to scan stays short. */
#define WINDOW 32u
/* Types per chunk group: 16 types share one value, so a compaction dirties
 * ~(types / 16) pages instead of one page per type. */
#define GROUP_SHIFT 4
#define GROUP_SIZE (1u << GROUP_SHIFT)
/* Largest value written: keeps key + value inside one node of a 4 KiB page
 * (LMDB moves larger nodes to overflow pages). */
#define PART_MAX 1900u
/* Log and snapshot entries: id, count and bytes as u32 (12 bytes, so a
 * 5,000-type sample is 32 values). A count or bytes of 2^32-1 or more is
 * stored as the marker MARK in both fields, and the full values go to
 * "wide" parts (id u32, count u64, bytes u64) keyed first_id >= WIDE_BASE,
 * after the sample's other parts. Type ids stay below WIDE_BASE. */
#define LOG_ENTRY 12u
#define LOG_PER_PART (PART_MAX / LOG_ENTRY)
#define WIDE_ENTRY 20u
#define WIDE_PER_PART (PART_MAX / WIDE_ENTRY)
#define WIDE_BASE 0xffffff00u
#define MARK 0xffffffffu
/* Schema 4 on ("packed"): a log or snapshot value is a header byte, then
 * entries of one width within the value: id - first_id (the key's), count
 * and bytes, in host byte order, each 1, 2, 4 or 8 bytes wide as the header's
 * bits 0-1, 2-3 and 4-5 say (log2 of the width). A 5,000-type sample of
 * small counts takes 6 bytes an entry instead of 12 and no wide parts. A
 * value holds at most PACKED_MAX bytes: LMDB leaves a page that takes
 * another node room for one more, so values of 1,900 bytes got a page each
 * and values of <= 780 bytes go four to a page (docs/store.md). */
#define PACKED_SCHEMA 4u
#define PACKED_MAX 780u
/* An open packed value: entry i is at p + 1 + i * esize. */
struct packed {
    const uint8_t *p;
    size_t n;
    uint32_t first_id;
    uint8_t wi, wc, wb, esize;
};

/* Incarnations kept at most (dead ones are dropped oldest first). */
#define MAX_INCARNATIONS 1024u
/* Names created this recently are never pruned (see prune_types). */
#define FRESH_NAMES_MS 10000
#define PRUNE_EVERY_MS 300000
#define MAILBOX_TTL_MS 60000
#define DELETE_BATCH 2048u
/* Log values a history query holds at once (x 16 bytes): bounds its memory
 * when many incarnations and a large page meet. */
#define LOG_CELLS (1u << 22)

#define INC_KEY 12u
#define LOG_KEY 24u
#define WIN_KEY 20u
#define CHUNK_KEY 25u

#define WIN_DROPPING 1u
#define WIN_L2 2u
/* Level 2: MERGE_RUN level-1 windows plus WINDOW log samples. */
#define MERGE_RUN 3u
#define WINDOW2 ((MERGE_RUN + 1) * WINDOW)
#define GROUP2_SHIFT 2
#define SNAP_KEY 16u
/* Worst-case encoded size of one type's points in a window of n. */
#define CHUNK_MAX(n) (20u + (n) * 21u)

struct pl_store {
    MDB_env *env;
    MDB_dbi meta, procs, types, names, log, windows, snap, mailbox;
    MDB_dbi chunks, chunks2; /* ichunks, ichunks2 (or chunks, chunks2 of an older schema, read-only) */
    MDB_dbi witness; /* 0 when a read-only store predates witnesses (witness.c) */
    MDB_dbi memory;  /* 0 when a read-only store predates schema 5 (memory.c) */
    MDB_dbi routes, routeids, routenames; /* 0 when a read-only store predates schema 6 (routes.c) */
    /* Read-held by every transaction of this handle; write-held only to
     * adopt a map grown by another process (mdb_env_set_mapsize(env, 0)
     * requires that no transaction of this process is active). */
    pthread_rwlock_t resize_lock;
    /* Protects next_prune_ms and pruning (one pruner per handle). */
    pthread_mutex_t prune_lock;
    int64_t next_prune_ms;
    char *path;
    uint64_t map_size;
    uint64_t max_bytes;  /* as given; 0 = 3/4 of the current map (see max_bytes()) */
    uint64_t max_age_s;
    uint32_t max_samples;
    int read_only;
    uint32_t schema;    /* as found at open (a read-only open leaves an old schema as it is) */
    int collide_hashes; /* test hook; set before use, never changed concurrently */
    /* Pruning names: when it may run next (protected by the names lock of
     * retention.c), and the first id of each of the last FRESH_NAMES
     * creations of names through this handle (its first and last id) with
     * its time (protected by
     * the fresh lock of types.c): those ids are not pruned for
     * FRESH_NAMES_MS, so that the samples that use them can be stored. */
    int64_t next_names_ms;
    struct {
        int64_t ms;
        uint32_t first_id, last_id;
    } fresh[16];
    unsigned fresh_next;
    /* Damage at run time (guard.c). Set at open, then read only: */
    int fd;             /* LMDB's descriptor of data.mdb (fstat and pread only) */
    char *data_path;    /* path/data.mdb */
    dev_t dev;          /* of data.mdb as opened */
    ino_t ino;
    unsigned psize;     /* page size, from meta page 0 */
    pthread_mutex_t *wmutex; /* LMDB's writer lock in its map of lock.mdb (guard.c); NULL when not found */
    int skip_checks;    /* test hook: the guard alone, without the cheap checks */
    /* Atomics, shared by every thread using the handle: */
    _Atomic uint64_t seen_size;  /* largest size of data.mdb seen: LMDB never shrinks it */
    _Atomic uintptr_t map_lo;    /* the env's map of data.mdb, [map_lo, map_hi), for the */
    _Atomic uintptr_t map_hi;    /* fault handler; written at open and at a remap */
    atomic_int damaged;          /* 0; 1 while `damage` is written; 2 once it is */
    char damage[256];            /* why the handle was given up (written once) */
};

/* The procs value. Fixed size; host byte order. */
struct proc_rec {
    char host[64];
    char argv[256];
    uint32_t interval_ms;
    uint32_t samples;     /* stored samples: live windows + log */
    int64_t first_seen_ms;
    int64_t last_seen_ms;
    int64_t ended_ms;
    uint64_t rss;
    int64_t first_time;   /* first stored sample, 0 when none */
    int64_t last_time;    /* last sample ever appended, 0 when none */
    uint32_t n_log;       /* samples in the log */
    uint32_t n_windows;   /* live (not dropping) windows */
    /* Schema 2. A pushed incarnation (inc.start has REMOTE_START set) keeps
     * here the start the worker gave (its own clock ticks since boot); 0 for
     * a local incarnation. */
    uint64_t worker_start;
    /* Schema 3: the collector's cost at the last heartbeat (pl_proc_stats). */
    uint64_t collection_us;
    uint64_t gil_held_us;
    /* Schema 5: PL_END_* and the exit code or signal number (proc.h). */
    int32_t end_how;
    int32_t end_value;
};
/* The size of a schema-1 procs record: everything before worker_start. */
#define PROC_REC_V1 offsetof(struct proc_rec, worker_start)
/* The size of a schema-2 procs record: everything before collection_us. */
#define PROC_REC_V2 offsetof(struct proc_rec, collection_us)
/* The size of a schema-3 and -4 procs record: everything before end_how. */
#define PROC_REC_V4 offsetof(struct proc_rec, end_how)
/* 1 when n is the size of a procs record of a schema this code reads. */
#define PROC_REC_SIZE_OK(n)                                                                                       \
    ((n) == sizeof(struct proc_rec) || (n) == PROC_REC_V4 || (n) == PROC_REC_V2 || (n) == PROC_REC_V1)

/* Pushed incarnations are stored under a start the server assigns: this bit
 * plus a counter, so they never collide with a local start (clock ticks
 * since boot stay far below 2^63) nor with each other. */
#define REMOTE_START (1ull << 63)
/* A pushed incarnation is alive while its last push is younger than
 * max(REMOTE_BEATS x interval, REMOTE_MIN_MS). */
#define REMOTE_BEATS 3
#define REMOTE_MIN_MS 10000

/* One stored incarnation as read by the pruner and the history query. */
struct inc_entry {
    pl_incarnation inc;
    struct proc_rec rec;
    int alive;
};

/* ------------------------------------------------------------------- log */

/* One decoded sample of one incarnation. */
struct sample {
    int64_t time;
    pl_type_count *e; /* sorted by type_id */
    size_t n, cap;
};

/* -------------------------------------------------------- window records */

/* A window record decoded: its flags and sample times. */
struct window {
    uint64_t wtime;
    unsigned flags;
    uint32_t n;
    int64_t times[WINDOW2];
};

static inline void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void put_be64(uint8_t *p, uint64_t v)
{
    put_be32(p, (uint32_t)(v >> 32));
    put_be32(p + 4, (uint32_t)v);
}

static inline uint32_t get_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline uint64_t get_be64(const uint8_t *p)
{
    return ((uint64_t)get_be32(p) << 32) | get_be32(p + 4);
}

static inline void inc_key(uint8_t *k, const pl_incarnation *inc)
{
    put_be32(k, inc->pid);
    put_be64(k + 4, inc->start);
}

static inline void inc_from_key(pl_incarnation *inc, const uint8_t *k)
{
    inc->pid = get_be32(k);
    inc->start = get_be64(k + 4);
}

/* Binary search: the first of n keys (unsigned, `width` 4 or 8 bytes, host
 * order, one every `stride` bytes from base) that is not below `key`; n
 * when there is none. Keys must ascend. */
static inline size_t lower_bound(const void *base, size_t n, size_t stride, size_t width,
                                 uint64_t key)
{
    const uint8_t *b = base;
    size_t a = 0, z = n;

    while (a < z) {
        size_t mid = (a + z) / 2;
        uint64_t x;

        if (width == 4) {
            uint32_t x32;

            memcpy(&x32, b + mid * stride, 4);
            x = x32;
        } else {
            memcpy(&x, b + mid * stride, 8);
        }
        if (x < key)
            a = mid + 1;
        else
            z = mid;
    }
    return a;
}

/* Walks the entries of one chunk-group value: each is the type id's low
 * byte, a varint length and that many bytes of encoded points. */
struct group_iter {
    const uint8_t *p, *end;
};

static inline void group_iter_init(struct group_iter *it, const MDB_val *v)
{
    it->p = v->mv_data;
    it->end = it->p + v->mv_size;
}

/* The next entry: 1 with *low, *data and *len set, 0 after the last one,
 * PL_ECORRUPT (negative) when a length runs past the value. */
static inline int group_next(struct group_iter *it, unsigned *low, const uint8_t **data,
                             size_t *len)
{
    uint64_t l;
    size_t used;

    if (it->p >= it->end)
        return 0;
    *low = *it->p++;
    used = pl_varint_get(it->p, it->end, &l);
    if (!used || l > (uint64_t)(it->end - it->p - (ptrdiff_t)used))
        return PL_ECORRUPT;
    *data = it->p + used;
    *len = (size_t)l;
    it->p += used + l;
    return 1;
}

static inline uint64_t zigzag(uint64_t delta)
{
    return (delta << 1) ^ (uint64_t)((int64_t)delta >> 63);
}

static inline uint64_t unzigzag(uint64_t z)
{
    return (z >> 1) ^ (uint64_t)(-(int64_t)(z & 1));
}

/* 1 when s has schema 4's layout: packed log and snapshot values, chunk
 * keys inc first (ichunks, ichunks2). A writable open migrates an older
 * store; a read-only one reads it as it is. */
static inline int layout4(const pl_store *s)
{
    return s->schema >= PACKED_SCHEMA;
}

#pragma GCC visibility push(hidden)

/* ---- guard.c: damage met at run time (docs/store.md, "Damage at run time") ---- */

#define GUARD_TXNS 4
/* One guarded call on one thread: frames form a per-thread stack. */
struct guard {
    struct guard *prev;
    pl_store *s;
    sigjmp_buf jb;
    MDB_txn *txns[GUARD_TXNS]; /* top-level transactions begun in this call and not ended */
    unsigned char write[GUARD_TXNS]; /* txns[i] is a write transaction */
    unsigned n_txns;
    unsigned n_locks;          /* read holds of s->resize_lock taken in this call */
    volatile int caught;       /* the signal, or -1 for an LMDB assertion */
    void *volatile addr;       /* the faulting address */
    char what[200];            /* an assertion's text */
};

/* Enters a guarded call on s: PL_EDAMAGED (without entering) when s was
 * given up before or the cheap checks find damage now; else 0 with g on top
 * of this thread's stack. */
int guard_enter(pl_store *s, struct guard *g);
/* Leaves normally: pops g; an LMDB code that means a damaged file gives
 * the store up and becomes PL_EDAMAGED. Returns rc. */
int guard_leave(struct guard *g, int rc);
/* After a fault or assertion jumped back to g: gives the store up, ends
 * the transactions g holds so that other processes never wait for this
 * one's writer lock nor keep pages for its reader slot, pops g; returns
 * PL_EDAMAGED. */
int guard_caught(struct guard *g);
/* Gives s up for good, saying why (the first reason wins). */
void guard_mark(pl_store *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Sets s's fd, dev, ino, data path, page size and map range once its env is
 * open; installs the handlers (once per process). 0, errno or PL_EDAMAGED. */
int guard_attach(pl_store *s);
/* Reads the range of s's map again (after mdb_env_set_mapsize remapped it). */
void guard_map_update(pl_store *s);
/* Bookkeeping of txn_begin/txn_commit/txn_abort for the innermost frame of s. */
void guard_lock_taken(pl_store *s, int taken);
void guard_txn_begun(pl_store *s, MDB_txn *txn, int write);
void guard_txn_ended(pl_store *s, MDB_txn *txn);
/* LMDB's assertion callback (mdb_env_set_assert). */
void guard_on_assert(MDB_env *env, const char *msg);

/* The body of a guarded entry point: `return STORE_GUARDED(s, call);` runs
 * call inside a guard. sigsetjmp must run in the frame that stays live during
 * the call, hence a macro; it saves no signal mask (no system call): the
 * handler unblocks the signal itself before it jumps. */
#define STORE_GUARDED(s, call)                                                   \
    __extension__({                                                              \
        struct guard g_;                                                         \
        int rc_ = guard_enter((s), &g_);                                         \
        if (rc_ == 0) {                                                          \
            if (sigsetjmp(g_.jb, 0) == 0)                                        \
                rc_ = guard_leave(&g_, (call));                                  \
            else                                                                 \
                rc_ = guard_caught(&g_);                                         \
        }                                                                        \
        rc_;                                                                     \
    })

/* The bodies of the guarded public entry points (see store.h and verify.h). */
int open_unguarded(pl_store *s);
int register_unguarded(pl_store *s, const pl_proc_info *info);
int heartbeat_unguarded(pl_store *s, const pl_incarnation *inc, int64_t now_ms, uint64_t rss,
                        const pl_proc_stats *stats);
int end_unguarded(pl_store *s, const pl_incarnation *inc, int64_t now_ms, int how, int value);
int procs_unguarded(pl_store *s, pl_proc_info **out, size_t *n);
int type_ids_unguarded(pl_store *s, const char *const *names, const size_t *lens, size_t n, uint32_t *ids);
int append_batch_unguarded(pl_store *s, pl_store_batch_item *items, size_t n);
int prune_unguarded(pl_store *s, int64_t now_ms);
int stat_get_unguarded(pl_store *s, pl_store_stat *out);
int history_unguarded(pl_store *s, const pl_history_query *q, pl_history **out);
int mailbox_post_unguarded(pl_store *s, const pl_incarnation *to, const void *req, size_t len,
                           int64_t now_ms, uint64_t *ticket);
int mailbox_take_unguarded(pl_store *s, const pl_incarnation *me, int64_t now_ms, int64_t max_age_ms,
                           uint64_t *ticket, pl_buf *req);
int mailbox_reply_unguarded(pl_store *s, uint64_t ticket, int status, const void *body, size_t len,
                            int64_t now_ms);
int mailbox_result_unguarded(pl_store *s, uint64_t ticket, int *status, pl_buf *body);
int mailbox_cancel_unguarded(pl_store *s, uint64_t ticket);
int witness_put_unguarded(pl_store *s, const pl_incarnation *inc, uint32_t type_id, int64_t time_ms,
                          const pl_witness_step *steps, size_t n);
int witnesses_unguarded(pl_store *s, const char *group, uint32_t pid, const char *host, size_t max,
                        pl_witness_list *out);
int remote_register_unguarded(pl_store *s, const pl_proc_info *info, int64_t now_ms, pl_incarnation *out);
int remote_find_unguarded(pl_store *s, const char *host, uint32_t pid, uint64_t worker_start,
                          pl_incarnation *out);
int note_recovery_unguarded(pl_store *s, const char *moved_to, const char *reason, int64_t when_ms);
int recovery_unguarded(pl_store *s, pl_buf *moved_to, pl_buf *reason, int64_t *when_ms);

/* ---- codec.c: pure encodings, no LMDB calls ---- */

/* Grows the malloc'ed array at pp (a T **) to hold `need` elements; 0 or ENOMEM (unchanged). */
int array_reserve(void *pp, size_t *cap, size_t need, size_t size, size_t first);
/* Writes the log key inc(12) time(8) first_id(4) into k (LOG_KEY bytes). */
void log_key(uint8_t *k, const uint8_t *inck, uint64_t time, uint32_t first_id);
/* Adds one log or snapshot value to smp: packed (schema 4 on), or a narrow
 * or wide part of the older format; 0 or ENOMEM/PL_ECORRUPT. */
int sample_add_part(struct sample *smp, int packed, uint32_t first_id, const MDB_val *v);
/* Opens the packed value v keyed first_id; 0 or PL_ECORRUPT. */
int packed_open(struct packed *pk, uint32_t first_id, const MDB_val *v);
/* Entry i of an open packed value. */
void packed_get(const struct packed *pk, size_t i, uint32_t *id, uint64_t *count, uint64_t *bytes);
/* The first entry of pk whose id is not below id; pk->n when none. */
size_t packed_lower_bound(const struct packed *pk, uint32_t id);
/* Encodes a prefix of the n entries e (sorted by id, n >= 1) as one packed
 * value into out (PACKED_MAX bytes); returns its length, *used the entries
 * it holds (at least 1). */
size_t packed_encode(uint8_t *out, const pl_type_count *e, size_t n, size_t *used);
/* Decodes a windows record (key and value) into *w; 0 or PL_ECORRUPT. */
int window_decode(const MDB_val *k, const MDB_val *v, struct window *w);
/* Encodes a window value (flags, n, time deltas) into p; returns its length. */
size_t window_encode(uint8_t *p, unsigned flags, const int64_t *times, uint32_t n);
/* Writes the chunk key inc(12) group(4) wtime(8) part(1) into k (CHUNK_KEY
 * bytes); group(4) inc(12) ... when !inc_first (schemas 1-3). Either way the
 * first 16 bytes name (group, inc) and wtime is at byte 16. */
void chunk_key(uint8_t *k, int inc_first, uint32_t group, const uint8_t *inck, uint64_t wtime, uint8_t part);
/* Encodes one type's n points into p (at most CHUNK_MAX(n) bytes); returns the length. */
size_t chunk_encode(uint8_t *p, const uint64_t *c, const uint64_t *b, uint32_t n);
/* Decodes one type's points (see codec.c for `want`); 0 or PL_ECORRUPT. */
int chunk_decode(const uint8_t *p, size_t len, uint32_t n, uint32_t want, int64_t *c,
                 int64_t *b);
/* Finds type `low`'s entry in a chunk-group value; 0, PL_ENOTFOUND or PL_ECORRUPT. */
int group_find(const MDB_val *v, unsigned low, const uint8_t **data, size_t *len);
/* Frees the entries of n samples (not the array itself). */
void samples_free(struct sample *smp, size_t n);
/* The chunks table of a window level (WIN_L2 in flags: level 2). */
MDB_dbi level_dbi(const pl_store *s, unsigned flags);
/* Group shift of a window level: types per chunk-group value = 1 << shift. */
unsigned level_shift(unsigned flags);
/* Appends one entry to smp (ids must ascend); 0 or ENOMEM. */
int sample_push(struct sample *smp, uint32_t id, uint64_t count, uint64_t bytes);

/* ---- env.c: transactions and deletes ---- */

/* pl_store_open, saying in why (NUL-terminated, cut to len; may be NULL)
 * what damage made it fail with PL_EDAMAGED. */
int store_open(pl_store **out, const pl_store_options *opt, char *why, size_t len);
/* Begins a transaction (read-holds the resize lock until commit/abort); 0 or an LMDB/errno code. */
int txn_begin(pl_store *s, int write, MDB_txn **txn);
/* Commits txn and releases the resize lock; returns mdb_txn_commit's code
 * (EIO from a short write on a full device as ENOSPC). */
int txn_commit(pl_store *s, MDB_txn *txn);
/* Aborts txn (NULL is a no-op) and releases the resize lock. */
void txn_abort(pl_store *s, MDB_txn *txn);
/* Commits txn when rc is 0, else aborts it; returns the commit's code or rc. */
int txn_end(pl_store *s, MDB_txn *txn, int rc);
/* 1 when rc says the map is full (MDB_MAP_FULL), else 0. */
int is_map_full(int rc);
/* The byte budget: max_bytes as given, or 3/4 of the current map. */
uint64_t max_bytes(pl_store *s);
/* Bytes of pages in use as seen by txn. */
uint64_t used_bytes(pl_store *s, MDB_txn *txn);
/* Deletes at most `max` keys of [lo, hi] at cur; *more set when some remain. */
int del_range(MDB_cursor *cur, const uint8_t *lo, size_t lolen, const uint8_t *hi,
              size_t hilen, size_t max, size_t *deleted, int *more);
/* One batch of a batched delete: at most `batch` deletions in txn; sets *done after the last. */
typedef int (*batch_step)(pl_store *s, MDB_txn *txn, size_t batch, int retry, void *arg,
                          int *done);
/* Runs step in write transactions until done, shrinking the batch on MDB_MAP_FULL. */
int batched_delete(pl_store *s, batch_step step, void *arg);
/* Deletes the keys in [lo, hi] of dbi in batched write transactions. */
int purge_range(pl_store *s, MDB_dbi dbi, const uint8_t *lo, size_t lolen,
                const uint8_t *hi, size_t hilen);

/* ---- records.c: procs records, log samples, snapshots, window lists ---- */

/* Reads the procs record of inc; 0, PL_ENOTFOUND, PL_ECORRUPT or an LMDB code. */
int rec_get(pl_store *s, MDB_txn *txn, const pl_incarnation *inc, struct proc_rec *rec);
/* Writes the procs record of inc; 0 or an LMDB code. */
int rec_put(pl_store *s, MDB_txn *txn, const pl_incarnation *inc,
            const struct proc_rec *rec);
/* Reads every procs record, sorted by first_seen (*out malloc'ed); alive not filled. */
int read_incs(pl_store *s, MDB_txn *txn, struct inc_entry **out, size_t *n_out);
/* Where a key of a table kept per incarnation and time holds them. */
struct inc_time_key {
    size_t key_size; /* keys of another size are dropped */
    size_t inc_at;   /* the 12-byte incarnation */
    size_t time_at;  /* the big-endian time in ms */
    size_t min_value; /* values shorter than this are dropped */
};
/* Retention of a table whose records describe an incarnation's samples
 * (witnesses, memory figures): a record goes with its incarnation, and when
 * it is older than the incarnation's first stored sample (dropped by
 * max_samples, max_age or the byte budget) or than max_age. Batches of
 * DELETE_BATCH deletions, one write transaction each. 0 (also for a full
 * map: the byte pruning that follows makes room) or an LMDB code. */
int retain_by_inc(pl_store *s, MDB_dbi dbi, const struct inc_time_key *layout, int64_t now_ms);
/* Sets each entry's alive flag with rec_alive(). */
void fill_alive(struct inc_entry *list, size_t n);
/* Decodes a procs value of either schema into *rec; 0 or PL_ECORRUPT. */
int rec_decode(const MDB_val *v, struct proc_rec *rec);
/* 1 when inc is alive: not ended, and for a local incarnation pl_proc_alive()
 * (reads /proc), for a pushed one (start has REMOTE_START) its last push
 * younger than max(REMOTE_BEATS x interval, REMOTE_MIN_MS) at now_ms. */
int rec_alive(const pl_incarnation *inc, const struct proc_rec *rec, int64_t now_ms);
/* Writes a sample (entries sorted by id) in the log's part format under
 * `dbi`, keys prefix(plen) + first_id(4): packed values when `packed`, else
 * the narrow and wide parts of schemas 1-3 (the log, the snapshots, and
 * their migration). */
int put_sample_parts(MDB_txn *txn, MDB_dbi dbi, int packed, const uint8_t *prefix, size_t plen,
                     const pl_type_count *e, size_t n);
/* Lists the distinct log times of an incarnation, ascending (*times malloc'ed). */
int log_times(pl_store *s, MDB_txn *txn, const uint8_t *inck, int64_t **times, size_t *n);
/* Writes one sorted, checked sample into the log inside txn; updates and writes back *rec. */
int log_append(pl_store *s, MDB_txn *txn, const pl_incarnation *inc, int64_t time_ms,
               const pl_type_count *sorted, size_t n, struct proc_rec *rec);
/* 1 when the ids of a sorted sample are all given out by pl_store_type_ids. */
int ids_in_range(pl_store *s, MDB_txn *txn, const pl_type_count *sorted, size_t n);
/* Steps cur through the parts of the chunk whose part-0 key is lo (first: seek); MDB_NOTFOUND after the last. */
int chunk_part(MDB_cursor *cur, const uint8_t *lo, int first, MDB_val *val);
/* Replaces (smp NULL: deletes) the first-sample snapshot of an incarnation. */
int snap_put(pl_store *s, MDB_txn *txn, const uint8_t *inck, const struct sample *smp);
/* Adds the first-sample snapshot of inck (packed: the store's layout4()),
 * times sign, into acc[id] (and bacc[id] unless NULL) for ids <= max_id. */
int snap_add(pl_store *s, MDB_txn *txn, const uint8_t *inck, int packed, uint32_t max_id, int64_t *acc,
             int64_t *bacc, int sign);
/* The full count and bytes of a marked narrow log entry (type id of log
 * sample (inck, t)), from the wide parts; PL_ECORRUPT when they lack it. */
int wide_lookup(MDB_txn *txn, MDB_dbi dbi, const uint8_t *inck, int64_t t, uint32_t id, uint64_t *count,
                uint64_t *bytes);
/* Reads point idx (< n) of every type of one window into smp (sorted, zero entries left out). */
int window_sample(pl_store *s, MDB_txn *txn, const uint8_t *inck, uint64_t wtime, unsigned flags,
                  uint32_t n, uint32_t idx, struct sample *smp);
/* Rewrites the first-sample snapshot from the first live window. */
int refresh_snap(pl_store *s, MDB_txn *txn, const uint8_t *inck);
/* Lists the window records of an incarnation (*out malloc'ed; the caller frees it). */
int list_windows(pl_store *s, MDB_txn *txn, const uint8_t *inck, struct window **out,
                 size_t *n_out);

/* Read-edit-write of inc's procs record in one transaction (create: a missing one starts zeroed). */
int update_rec(pl_store *s, const pl_incarnation *inc, int create,
               void (*edit)(struct proc_rec *rec, int created, const void *arg), const void *arg);

/* ---- types.c ---- */

/* Highest type id in use (0 when none). */
uint32_t max_type_id(pl_store *s, MDB_txn *txn);
/* Finds the id of a type name without creating it; 0 or MDB_NOTFOUND. */
int type_find(pl_store *s, MDB_txn *txn, const char *name, size_t len, uint32_t *id);
/* Deletes the names that no log, snapshot, chunk or witness uses, except
 * those this handle created in the last FRESH_NAMES_MS (one read scan of
 * the store, then batched deletes; schema 4 only); *pruned says how many.
 * Ids are never given out again. */
int prune_types(pl_store *s, size_t *pruned);

/* ---- remote.c ---- */

/* Registers or refreshes a pushed incarnation inside txn (see
 * pl_store_remote_register); fills *inc and *rec as written. */
int remote_register_txn(pl_store *s, MDB_txn *txn, const pl_proc_info *info, int64_t now_ms,
                        pl_incarnation *inc, struct proc_rec *rec);

/* ---- compact.c ---- */

/* Moves the oldest `want` log samples of inc into a window (one transaction). */
int compact_txn(pl_store *s, const pl_incarnation *inc, int allow_merge, uint32_t want);
/* The same, nested in the write transaction `parent` (NULL: its own): a
 * failure aborts only the nested transaction, never what parent wrote. */
int compact_nested(pl_store *s, MDB_txn *parent, const pl_incarnation *inc, int allow_merge, uint32_t want);

/* ---- mailbox.c ---- */

/* Deletes expired mailbox entries and those of dead incarnations in list. */
int mailbox_sweep(pl_store *s, int64_t now_ms, const struct inc_entry *list, size_t n);

/* ---- migrate.c ---- */

/* The migration of an older store to schema 4 inside txn (open.c's
 * open_dbs): every log and snapshot value packed, chunks/chunks2 moved into
 * ichunks/ichunks2 with inc-first keys and dropped. */
int migrate_layout4(pl_store *s, MDB_txn *txn);

/* ---- axis.c ---- */

/* The time axis of every series read (history, memory): slot ends at the
 * multiples of the step inside [lo, hi), then hi; the step is `base` (the
 * smallest collection interval; <= 0: 1 s) or the smallest multiple of it
 * that keeps at most max_points (>= 2) slots. *times is malloc'ed. 0 or
 * ENOMEM. */
int axis_grid(int64_t base, uint32_t max_points, int64_t lo, int64_t hi, int64_t **times, size_t *n_times,
              int64_t *step_ms);

/* ---- memory.c ---- */

/* memory: inc(12) time(8) -> rss, python_bytes, allocator_free_bytes (u64
 * each, host order; a reader takes the first MEMORY_VALUE bytes, so fields
 * may be appended). Schema 5. */
#define MEMORY_KEY (INC_KEY + 8)
#define MEMORY_VALUE 24u
#define MEMORY_SCHEMA 5u

/* Writes one sample's memory figures under the sample's (final) time, in
 * the sample's transaction. A store without the table writes nothing. */
int memory_put(pl_store *s, MDB_txn *txn, const pl_incarnation *inc, int64_t time_ms,
               const pl_memory_sample *m);
/* Retention of the memory table, run by the retention pass after the
 * samples': a record goes with its incarnation, and when it is older than
 * the incarnation's first stored sample or than max_age. */
int memory_retain(pl_store *s, int64_t now_ms);
int memory_unguarded(pl_store *s, const pl_memory_query *q, pl_memory **out);

/* ---- routes.c ---- */

/* routes: inc(12) time(8) part(1) -> varint n, then n x (varint route id
 * delta, varint requests), ids ascending across the parts of one sample.
 * Schema 6. */
#define ROUTES_KEY (INC_KEY + 9)
#define ROUTES_SCHEMA 6u
/* Route names are pruned (those no sample uses) once there are this many. */
#define ROUTE_NAMES_PRUNE 1024u

/* Writes one sample's requests by route under the sample's (final) time,
 * in the sample's transaction, creating the names it needs. A store without
 * the tables writes nothing. */
int routes_put(pl_store *s, MDB_txn *txn, const pl_incarnation *inc, int64_t time_ms, const pl_route_sample *r);
/* Retention of the routes table (as memory_retain), then of the route
 * names no stored sample uses once there are ROUTE_NAMES_PRUNE of them. */
int routes_retain(pl_store *s, int64_t now_ms);
int routes_unguarded(pl_store *s, const pl_routes_query *q, pl_route_data **out);

/* ---- witness.c ---- */

/* Checks and encodes a witness path (the parts put_once writes): 0,
 * PL_EBADARG for a bad path, PL_ETOOBIG past WITNESS_MAX_PARTS, EROFS when
 * this handle writes no witnesses. */
int witness_encode(pl_store *s, const pl_witness_step *steps, size_t n, pl_buf *enc);
/* Writes one encoded witness in one transaction (no retry: a full map is
 * the caller's, api.c's witness_put_unguarded). */
int witness_put_once(pl_store *s, const pl_incarnation *inc, uint32_t type_id, int64_t time_ms, const pl_buf *enc);
/* Drops witnesses whose incarnation is gone, that are older than its first
 * stored sample, or older than max_age (batched write transactions). */
int witness_retain(pl_store *s, int64_t now_ms);

/* ---- retention.c ---- */

/* Applies max_samples and max_age to one incarnation. */
int retain_inc(pl_store *s, const pl_incarnation *inc, int64_t now_ms);
/* Drops the oldest data until the used pages fit max_bytes. */
int prune_bytes(pl_store *s);
/* Makes room after MDB_MAP_FULL; *dropped says whether anything was freed. */
int make_room(pl_store *s, int *dropped);
/* Runs retention when due (one pruner per handle; others skip); returns its code. */
int maybe_prune(pl_store *s, int64_t now_ms);

#pragma GCC visibility pop

#endif
