/* The shared LMDB store. The layout, the retention rules and the reasons
 * behind them are in docs/store.md; this comment is the short version.
 *
 *   meta      "schema" -> u32, "ticket" -> u64 (last mailbox ticket)
 *   procs     inc(12) -> struct proc_rec
 *   types     id(4) -> name
 *   typenames hash(8) id(4) -> name            (names may exceed 511 bytes)
 *   log       inc(12) time(8) first_id(4) -> fixed 20-byte entries, sorted by id
 *   windows   inc(12) wtime(8) -> flags, n, time deltas   (one per compacted window)
 *   chunks    group(4) inc(12) wtime(8) part(1) -> 32 points of <=16 types  (level 1)
 *   chunks2   group(4) inc(12) wtime(8) part(1) -> 128 points of <=4 types  (level 2)
 *   snap      inc(12) first_id(4) -> the first live window's first sample (log format)
 *   mailbox   'q' to(12) ticket(8) part(1) | 't' ticket(8) | 'r' ticket(8) part(4)
 *
 * Keys are big-endian; values use host byte order (an LMDB file is not
 * portable across architectures anyway). Every value stays under PART_MAX
 * bytes so that no record ever needs overflow pages (contiguous free runs
 * that a fragmented free list may not have).
 *
 * An append writes one sample time-major into `log` (a few sequential
 * puts). Once an incarnation has more than WINDOW samples in the log, its
 * oldest WINDOW samples are compacted into `chunks` (level 1: 16 types per
 * value, so a compaction dirties ~types/16 pages) and deleted from the log.
 * Every fourth compaction instead merges the three newest level-1 windows
 * and the 32 log samples into one level-2 window of 128 samples with 4 types
 * per value, so that a reader visits ~25 values per type and incarnation
 * for 2,880 samples instead of 90. A history read fetches one type's whole
 * history with one range scan per level and incarnation, plus the short log. */
#include "pyloot/store.h"

#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "pyloot/error.h"

#define SCHEMA_VERSION 1u
#define DEFAULT_MAP_SIZE (1ull << 30)
#define DEFAULT_MAX_SAMPLES 2880u
#define DEFAULT_MAX_AGE_S (7ull * 86400)
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

/* Incarnations kept at most (dead ones are dropped oldest first). */
#define MAX_INCARNATIONS 1024u
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
    MDB_dbi meta, procs, types, names, log, windows, chunks, chunks2, snap, mailbox;
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
    int collide_hashes; /* test hook; set before use, never changed concurrently */
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
};

/* ------------------------------------------------------------------ bytes */

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    put_be32(p, (uint32_t)(v >> 32));
    put_be32(p + 4, (uint32_t)v);
}

static uint32_t get_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static uint64_t get_be64(const uint8_t *p)
{
    return ((uint64_t)get_be32(p) << 32) | get_be32(p + 4);
}

static void inc_key(uint8_t *k, const pl_incarnation *inc)
{
    put_be32(k, inc->pid);
    put_be64(k + 4, inc->start);
}

static void inc_from_key(pl_incarnation *inc, const uint8_t *k)
{
    inc->pid = get_be32(k);
    inc->start = get_be64(k + 4);
}

static size_t put_uv(uint8_t *p, uint64_t v)
{
    size_t n = 0;

    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* Reads a varint; returns bytes used or 0 on truncated/overlong input.
 * Most values in chunks are single bytes, hence the fast path. */
static inline size_t get_uv(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    size_t n = 0, used = 0;
    unsigned shift = 0;

    if (p < end && !(*p & 0x80)) {
        *v = *p;
        used = 1;
        goto out;
    }
    while (p + n < end && shift < 64) {
        uint8_t b = p[n++];
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            used = n;
            break;
        }
        shift += 7;
    }
out:
    return used;
}

static uint64_t zigzag(uint64_t delta)
{
    return (delta << 1) ^ (uint64_t)((int64_t)delta >> 63);
}

static uint64_t unzigzag(uint64_t z)
{
    return (z >> 1) ^ (uint64_t)(-(int64_t)(z & 1));
}

/* FNV-1a, then a murmur finalizer so that the high bytes (the key prefix)
 * are well mixed. Collisions are handled by the lookup, not avoided. */
static uint64_t name_hash(const pl_store *s, const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    size_t i;

    for (i = 0; i < n; i++) {
        h ^= (uint8_t)p[i];
        h *= 1099511628211ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return s->collide_hashes ? 42 : h;
}

/* ---------------------------------------------------------- transactions */

/* Begins a transaction on the calling thread, adopting a map size grown by
 * another process when LMDB asks for it. On success the resize lock is
 * read-held until txn_commit/txn_abort. */
static int txn_begin(pl_store *s, int write, MDB_txn **txn)
{
    int rc = EINVAL, tries;

    if (write && s->read_only) {
        rc = EROFS;
        goto out;
    }
    for (tries = 0; tries < 4; tries++) {
        pthread_rwlock_rdlock(&s->resize_lock);
        rc = mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, txn);
        if (rc == 0)
            goto out;
        pthread_rwlock_unlock(&s->resize_lock);
        if (rc != MDB_MAP_RESIZED)
            goto out;
        pthread_rwlock_wrlock(&s->resize_lock);
        mdb_env_set_mapsize(s->env, 0);
        pthread_rwlock_unlock(&s->resize_lock);
    }
out:
    return rc;
}

static int txn_commit(pl_store *s, MDB_txn *txn)
{
    int rc = mdb_txn_commit(txn);

    pthread_rwlock_unlock(&s->resize_lock);
    return rc;
}

static void txn_abort(pl_store *s, MDB_txn *txn)
{
    if (txn) {
        mdb_txn_abort(txn);
        pthread_rwlock_unlock(&s->resize_lock);
    }
}

static int is_map_full(int rc)
{
    return rc == MDB_MAP_FULL || rc == MDB_TXN_FULL;
}

/* ----------------------------------------------------------- env, stats */

static int open_dbs(pl_store *s)
{
    MDB_txn *txn = NULL;
    unsigned flags = s->read_only ? 0 : MDB_CREATE;
    MDB_val k, v;
    uint8_t schema[4];
    uint32_t version;
    int rc;

    rc = txn_begin(s, !s->read_only, &txn);
    if (rc)
        goto out;
    if ((rc = mdb_dbi_open(txn, "meta", flags, &s->meta)) ||
        (rc = mdb_dbi_open(txn, "procs", flags, &s->procs)) ||
        (rc = mdb_dbi_open(txn, "types", flags, &s->types)) ||
        (rc = mdb_dbi_open(txn, "typenames", flags, &s->names)) ||
        (rc = mdb_dbi_open(txn, "log", flags, &s->log)) ||
        (rc = mdb_dbi_open(txn, "windows", flags, &s->windows)) ||
        (rc = mdb_dbi_open(txn, "chunks", flags, &s->chunks)) ||
        (rc = mdb_dbi_open(txn, "chunks2", flags, &s->chunks2)) ||
        (rc = mdb_dbi_open(txn, "snap", flags, &s->snap)) ||
        (rc = mdb_dbi_open(txn, "mailbox", flags, &s->mailbox)))
        goto abort;
    k.mv_data = "schema";
    k.mv_size = 6;
    rc = mdb_get(txn, s->meta, &k, &v);
    if (rc == MDB_NOTFOUND && !s->read_only) {
        memcpy(schema, &(uint32_t){SCHEMA_VERSION}, 4);
        v.mv_data = schema;
        v.mv_size = 4;
        rc = mdb_put(txn, s->meta, &k, &v, 0);
        if (rc)
            goto abort;
    } else if (rc) {
        goto abort;
    } else {
        if (v.mv_size != 4) {
            rc = PL_ESCHEMA;
            goto abort;
        }
        memcpy(&version, v.mv_data, 4);
        if (version != SCHEMA_VERSION) {
            rc = PL_ESCHEMA;
            goto abort;
        }
    }
    rc = txn_commit(s, txn);
    txn = NULL;
    goto out;
abort:
    txn_abort(s, txn);
out:
    return rc;
}

/* Opens the store (see store.h). MDB_NOMETASYNC: the meta page is written
 * but not fsynced at commit; the next commit's data sync covers it. A system
 * crash can lose the last transaction, never corrupt the file, and it saves
 * one of the two fsyncs of every commit. */
int pl_store_open(pl_store **out, const pl_store_options *opt)
{
    pl_store *s = NULL;
    unsigned flags = MDB_NOTLS | MDB_NOMETASYNC;
    int rc = 0;
    int locks = 0;

    *out = NULL;
    if (!opt || !opt->path || !*opt->path) {
        rc = PL_EBADARG;
        goto out;
    }
    s = calloc(1, sizeof *s);
    if (!s) {
        rc = ENOMEM;
        goto out;
    }
    s->path = strdup(opt->path);
    if (!s->path) {
        rc = ENOMEM;
        goto fail;
    }
    s->read_only = opt->read_only != 0;
    s->map_size = opt->map_size ? opt->map_size : DEFAULT_MAP_SIZE;
    s->max_samples = opt->max_samples ? opt->max_samples : DEFAULT_MAX_SAMPLES;
    s->max_age_s = opt->max_age_s ? opt->max_age_s : DEFAULT_MAX_AGE_S;
    s->max_bytes = opt->max_bytes;
    if (pthread_rwlock_init(&s->resize_lock, NULL) != 0) {
        rc = ENOMEM;
        goto fail;
    }
    if (pthread_mutex_init(&s->prune_lock, NULL) != 0) {
        pthread_rwlock_destroy(&s->resize_lock);
        rc = ENOMEM;
        goto fail;
    }
    locks = 1;
    if (!s->read_only && mkdir(s->path, 0700) != 0 && errno != EEXIST) {
        rc = errno;
        goto fail;
    }
    if (s->read_only)
        flags |= MDB_RDONLY;
    if ((rc = mdb_env_create(&s->env)))
        goto fail;
    if ((rc = mdb_env_set_maxdbs(s->env, 16)) ||
        (rc = mdb_env_set_maxreaders(s->env, 1022)) ||
        (rc = mdb_env_set_mapsize(s->env, (size_t)s->map_size)))
        goto fail_env;
    if ((rc = mdb_env_open(s->env, s->path, flags, 0600)))
        goto fail_env;
    {
        /* Readers left behind by killed processes pin old pages; clear them. */
        int dead = 0;
        mdb_reader_check(s->env, &dead);
    }
    if ((rc = open_dbs(s)))
        goto fail_env;
    *out = s;
    goto out;
fail_env:
    mdb_env_close(s->env);
fail:
    if (locks) {
        pthread_mutex_destroy(&s->prune_lock);
        pthread_rwlock_destroy(&s->resize_lock);
    }
    free(s->path);
    free(s);
out:
    return rc;
}

/* Closes the env and frees the handle (see store.h). */
void pl_store_close(pl_store *s)
{
    if (s) {
        mdb_env_close(s->env);
        pthread_mutex_destroy(&s->prune_lock);
        pthread_rwlock_destroy(&s->resize_lock);
        free(s->path);
        free(s);
    }
}

/* Deliberately leaks the inherited handle: closing an env inherited through
 * fork() would release the parent's file locks (see store.h). */
void pl_store_forget(pl_store *s)
{
    (void)s;
}

/* The environment directory, owned by the store. */
const char *pl_store_path(const pl_store *s)
{
    return s->path;
}

/* Test hook (see store.h). */
void pl_store_test_collide_hashes(pl_store *s, int on)
{
    s->collide_hashes = on != 0;
}

/* The byte budget: max_bytes as given, or 3/4 of the map, never more than
 * the map. The map is read each time because another process may have
 * grown it (and this handle adopted the larger size). */
static uint64_t max_bytes(pl_store *s)
{
    MDB_envinfo info;
    uint64_t map = s->map_size;

    if (mdb_env_info(s->env, &info) == 0 && info.me_mapsize > map)
        map = info.me_mapsize;
    return !s->max_bytes ? map / 4 * 3 : s->max_bytes < map ? s->max_bytes : map;
}

/* Pages in use: every tree's branch, leaf and overflow pages plus the two
 * meta pages. Free pages (reusable) are not counted. */
static uint64_t used_bytes(pl_store *s, MDB_txn *txn)
{
    MDB_dbi dbis[] = {0, 1, s->meta, s->procs, s->types, s->names,
                      s->log, s->windows, s->chunks, s->chunks2, s->snap, s->mailbox};
    uint64_t pages = 2, psize = 4096;
    MDB_stat st;
    size_t i;

    for (i = 0; i < sizeof dbis / sizeof dbis[0]; i++) {
        if (mdb_stat(txn, dbis[i], &st) == 0) {
            pages += st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
            psize = st.ms_psize;
        }
    }
    return pages * psize;
}

/* Store-wide facts (see store.h). */
int pl_store_stat_get(pl_store *s, pl_store_stat *out)
{
    MDB_txn *txn = NULL;
    MDB_envinfo info;
    MDB_stat st;
    int rc;

    memset(out, 0, sizeof *out);
    rc = txn_begin(s, 0, &txn);
    if (rc)
        goto out;
    mdb_env_info(s->env, &info);
    out->map_size = info.me_mapsize;
    out->used_bytes = used_bytes(s, txn);
    out->max_bytes = max_bytes(s);
    out->max_samples = s->max_samples;
    out->max_age_s = s->max_age_s;
    rc = mdb_stat(txn, s->types, &st);
    if (rc == 0)
        out->types = (uint32_t)st.ms_entries;
    out->schema = SCHEMA_VERSION;
    txn_abort(s, txn);
out:
    return rc;
}

/* ----------------------------------------------------------------- procs */

static int rec_get(pl_store *s, MDB_txn *txn, const pl_incarnation *inc, struct proc_rec *rec)
{
    uint8_t kb[INC_KEY];
    MDB_val k = {INC_KEY, kb}, v;
    int rc;

    inc_key(kb, inc);
    rc = mdb_get(txn, s->procs, &k, &v);
    if (rc == MDB_NOTFOUND)
        rc = PL_ENOTFOUND;
    else if (rc == 0 && v.mv_size != sizeof *rec)
        rc = PL_ECORRUPT;
    else if (rc == 0)
        memcpy(rec, v.mv_data, sizeof *rec);
    return rc;
}

static int rec_put(pl_store *s, MDB_txn *txn, const pl_incarnation *inc,
                   const struct proc_rec *rec)
{
    uint8_t kb[INC_KEY];
    MDB_val k = {INC_KEY, kb}, v = {sizeof *rec, (void *)rec};

    inc_key(kb, inc);
    return mdb_put(txn, s->procs, &k, &v, 0);
}

static void copy_cstr(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);

    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Writes or refreshes this incarnation's procs record (see store.h). A
 * refresh keeps first_seen and the sample bookkeeping, and clears `ended`. */
int pl_store_register(pl_store *s, const pl_proc_info *info)
{
    MDB_txn *txn = NULL;
    struct proc_rec rec;
    int rc;

    rc = txn_begin(s, 1, &txn);
    if (rc)
        goto out;
    rc = rec_get(s, txn, &info->inc, &rec);
    if (rc == PL_ENOTFOUND) {
        memset(&rec, 0, sizeof rec);
        rec.first_seen_ms = info->first_seen_ms ? info->first_seen_ms : pl_now_ms();
        rc = 0;
    }
    if (rc)
        goto abort;
    copy_cstr(rec.host, sizeof rec.host, info->host);
    copy_cstr(rec.argv, sizeof rec.argv, info->argv);
    rec.interval_ms = info->interval_ms;
    rec.last_seen_ms = info->last_seen_ms ? info->last_seen_ms : pl_now_ms();
    if (rec.last_seen_ms < rec.first_seen_ms)
        rec.last_seen_ms = rec.first_seen_ms;
    rec.ended_ms = 0;
    rec.rss = info->rss;
    rc = rec_put(s, txn, &info->inc, &rec);
    if (rc)
        goto abort;
    rc = txn_commit(s, txn);
    goto out;
abort:
    txn_abort(s, txn);
out:
    return rc;
}

static int maybe_prune(pl_store *s, int64_t now_ms);

/* Updates last_seen and rss, then runs mdb_reader_check and retention when
 * they are due (see store.h). */
int pl_store_heartbeat(pl_store *s, const pl_incarnation *inc, int64_t now_ms, uint64_t rss)
{
    MDB_txn *txn = NULL;
    struct proc_rec rec;
    int rc;

    rc = txn_begin(s, 1, &txn);
    if (rc)
        goto out;
    rc = rec_get(s, txn, inc, &rec);
    if (rc)
        goto abort;
    if (now_ms > rec.last_seen_ms)
        rec.last_seen_ms = now_ms;
    rec.rss = rss;
    rc = rec_put(s, txn, inc, &rec);
    if (rc)
        goto abort;
    rc = txn_commit(s, txn);
    if (rc == 0)
        rc = maybe_prune(s, now_ms);
    goto out;
abort:
    txn_abort(s, txn);
out:
    return rc;
}

/* Marks an incarnation as ended cleanly (see store.h). */
int pl_store_end(pl_store *s, const pl_incarnation *inc, int64_t now_ms)
{
    MDB_txn *txn = NULL;
    struct proc_rec rec;
    int rc;

    rc = txn_begin(s, 1, &txn);
    if (rc)
        goto out;
    rc = rec_get(s, txn, inc, &rec);
    if (rc)
        goto abort;
    rec.ended_ms = now_ms > 0 ? now_ms : 1;
    if (now_ms > rec.last_seen_ms)
        rec.last_seen_ms = now_ms;
    rc = rec_put(s, txn, inc, &rec);
    if (rc)
        goto abort;
    rc = txn_commit(s, txn);
    goto out;
abort:
    txn_abort(s, txn);
out:
    return rc;
}

/* One stored incarnation as read by the pruner and the history query. */
struct inc_entry {
    pl_incarnation inc;
    struct proc_rec rec;
    int alive;
};

static int cmp_inc_entry(const void *a, const void *b)
{
    const struct inc_entry *x = a, *y = b;

    if (x->rec.first_seen_ms != y->rec.first_seen_ms)
        return x->rec.first_seen_ms < y->rec.first_seen_ms ? -1 : 1;
    if (x->inc.pid != y->inc.pid)
        return x->inc.pid < y->inc.pid ? -1 : 1;
    if (x->inc.start != y->inc.start)
        return x->inc.start < y->inc.start ? -1 : 1;
    return 0;
}

/* Reads every procs record in `txn`, sorted by first_seen; liveness is not
 * filled (it needs syscalls; callers do it outside write transactions). */
static int read_incs(pl_store *s, MDB_txn *txn, struct inc_entry **out, size_t *n_out)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    struct inc_entry *list = NULL, *grown;
    size_t n = 0, cap = 0;
    int rc;

    rc = mdb_cursor_open(txn, s->procs, &cur);
    if (rc)
        goto out;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != INC_KEY || v.mv_size != sizeof(struct proc_rec))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            grown = realloc(list, cap * sizeof *list);
            if (!grown) {
                rc = ENOMEM;
                goto out;
            }
            list = grown;
        }
        inc_from_key(&list[n].inc, k.mv_data);
        memcpy(&list[n].rec, v.mv_data, sizeof list[n].rec);
        list[n].alive = 0;
        n++;
    }
    if (rc == MDB_NOTFOUND)
        rc = 0;
out:
    mdb_cursor_close(cur);
    if (rc == 0) {
        if (n > 1)
            qsort(list, n, sizeof *list, cmp_inc_entry);
        *out = list;
        *n_out = n;
    } else {
        free(list);
    }
    return rc;
}

static void fill_alive(struct inc_entry *list, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        list[i].alive = list[i].rec.ended_ms == 0 && pl_proc_alive(&list[i].inc);
}

/* Lists every stored incarnation (see store.h). */
int pl_store_procs(pl_store *s, pl_proc_info **out, size_t *n)
{
    MDB_txn *txn = NULL;
    struct inc_entry *list = NULL;
    pl_proc_info *infos = NULL;
    size_t count = 0, i;
    int rc;

    *out = NULL;
    *n = 0;
    rc = txn_begin(s, 0, &txn);
    if (rc)
        goto out;
    rc = read_incs(s, txn, &list, &count);
    txn_abort(s, txn);
    if (rc)
        goto out;
    fill_alive(list, count);
    infos = calloc(count ? count : 1, sizeof *infos);
    if (!infos) {
        rc = ENOMEM;
        goto out;
    }
    for (i = 0; i < count; i++) {
        pl_proc_info *p = &infos[i];
        const struct proc_rec *r = &list[i].rec;

        p->inc = list[i].inc;
        copy_cstr(p->host, sizeof p->host, r->host);
        copy_cstr(p->argv, sizeof p->argv, r->argv);
        p->interval_ms = r->interval_ms;
        p->first_seen_ms = r->first_seen_ms;
        p->last_seen_ms = r->last_seen_ms;
        p->ended_ms = r->ended_ms;
        p->rss = r->rss;
        p->samples = r->samples;
        p->alive = list[i].alive;
    }
    *out = infos;
    *n = count;
out:
    free(list);
    return rc;
}

/* ----------------------------------------------------------------- types */

/* Finds `name` among the typenames records with its hash. 0 and *id, or
 * MDB_NOTFOUND. */
static int name_lookup(pl_store *s, MDB_cursor *cur, const char *name, size_t len, uint32_t *id)
{
    uint8_t kb[12];
    MDB_val k = {12, kb}, v;
    int rc;

    put_be64(kb, name_hash(s, name, len));
    put_be32(kb + 8, 0);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 12 || memcmp(k.mv_data, kb, 8) != 0) {
            rc = MDB_NOTFOUND;
            break;
        }
        if (v.mv_size == len && memcmp(v.mv_data, name, len) == 0) {
            *id = get_be32((const uint8_t *)k.mv_data + 8);
            break;
        }
    }
    return rc;
}

/* Looks up or creates type ids (see store.h). The common case (all names
 * known) needs only a read transaction. */
int pl_store_type_ids(pl_store *s, const char *const *names, const size_t *lens, size_t n,
                      uint32_t *ids)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL, *tcur = NULL;
    size_t i, missing = 0;
    uint32_t next_id = 1;
    MDB_val k, v;
    uint8_t kb[12];
    int rc = 0;

    for (i = 0; i < n; i++) {
        if (lens[i] == 0 || lens[i] > PL_TYPE_NAME_MAX) {
            rc = lens[i] ? PL_ETOOBIG : PL_EBADARG;
            goto out;
        }
    }
    rc = txn_begin(s, 0, &txn);
    if (rc)
        goto out;
    rc = mdb_cursor_open(txn, s->names, &cur);
    if (rc)
        goto abort;
    for (i = 0; i < n; i++) {
        ids[i] = 0;
        rc = name_lookup(s, cur, names[i], lens[i], &ids[i]);
        if (rc == MDB_NOTFOUND)
            missing++;
        else if (rc)
            goto abort;
    }
    mdb_cursor_close(cur);
    cur = NULL;
    txn_abort(s, txn);
    txn = NULL;
    rc = 0;
    if (!missing)
        goto out;

    rc = txn_begin(s, 1, &txn);
    if (rc)
        goto out;
    if ((rc = mdb_cursor_open(txn, s->names, &cur)) || (rc = mdb_cursor_open(txn, s->types, &tcur)))
        goto abort;
    rc = mdb_cursor_get(tcur, &k, &v, MDB_LAST);
    if (rc == 0 && k.mv_size == 4)
        next_id = get_be32(k.mv_data) + 1;
    else if (rc != MDB_NOTFOUND && rc != 0)
        goto abort;
    for (i = 0; i < n; i++) {
        if (ids[i])
            continue;
        rc = name_lookup(s, cur, names[i], lens[i], &ids[i]);
        if (rc == 0)
            continue;
        if (rc != MDB_NOTFOUND)
            goto abort;
        if (next_id >= WIDE_BASE) {
            rc = PL_ETOOBIG;
            goto abort;
        }
        ids[i] = next_id++;
        put_be64(kb, name_hash(s, names[i], lens[i]));
        put_be32(kb + 8, ids[i]);
        k.mv_size = 12;
        k.mv_data = kb;
        v.mv_size = lens[i];
        v.mv_data = (void *)names[i];
        if ((rc = mdb_put(txn, s->names, &k, &v, 0)))
            goto abort;
        k.mv_size = 4;
        k.mv_data = kb + 8;
        if ((rc = mdb_put(txn, s->types, &k, &v, 0)))
            goto abort;
    }
    mdb_cursor_close(cur);
    mdb_cursor_close(tcur);
    cur = tcur = NULL;
    rc = txn_commit(s, txn);
    txn = NULL;
    goto out;
abort:
    mdb_cursor_close(cur);
    mdb_cursor_close(tcur);
    txn_abort(s, txn);
out:
    return rc;
}

/* Highest type id in use (0 when none). */
static uint32_t max_type_id(pl_store *s, MDB_txn *txn)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    uint32_t id = 0;

    if (mdb_cursor_open(txn, s->types, &cur) == 0) {
        if (mdb_cursor_get(cur, &k, &v, MDB_LAST) == 0 && k.mv_size == 4)
            id = get_be32(k.mv_data);
        mdb_cursor_close(cur);
    }
    return id;
}

/* ------------------------------------------------------------ key ranges */

static int key_cmp(const MDB_val *k, const uint8_t *b, size_t blen)
{
    size_t n = k->mv_size < blen ? k->mv_size : blen;
    int c = memcmp(k->mv_data, b, n);

    if (c == 0 && k->mv_size != blen)
        c = k->mv_size < blen ? -1 : 1;
    return c;
}

/* Deletes the keys in [lo, hi] (memcmp order), at most `max` of them
 * (counted in *deleted). *more is set when keys remain. */
static int del_range(MDB_cursor *cur, const uint8_t *lo, size_t lolen, const uint8_t *hi,
                     size_t hilen, size_t max, size_t *deleted, int *more)
{
    MDB_val k = {lolen, (void *)lo}, v;
    int rc;

    *more = 0;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0) {
        if (key_cmp(&k, hi, hilen) > 0)
            break;
        if (*deleted >= max) {
            *more = 1;
            break;
        }
        rc = mdb_cursor_del(cur, 0);
        if (rc)
            break;
        (*deleted)++;
        /* After a delete the cursor sits on the next key; when it fell off
         * the end of a page LMDB may report NOTFOUND, so seek again. */
        rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
        if (rc == MDB_NOTFOUND || rc == EINVAL) {
            k.mv_size = lolen;
            k.mv_data = (void *)lo;
            rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        }
    }
    if (rc == MDB_NOTFOUND)
        rc = 0;
    return rc;
}

/* ------------------------------------------------------------------- log */

/* One decoded sample of one incarnation. */
struct sample {
    int64_t time;
    pl_type_count *e; /* sorted by type_id */
    size_t n, cap;
};

static void log_key(uint8_t *k, const uint8_t *inck, uint64_t time, uint32_t first_id)
{
    memcpy(k, inck, INC_KEY);
    put_be64(k + INC_KEY, time);
    put_be32(k + INC_KEY + 8, first_id);
}

/* Adds one log or snapshot value (key first_id `first_id`) to smp: narrow
 * entries are appended; a wide part fixes the marked entries before it. */
static int sample_add_part(struct sample *smp, uint32_t first_id, const MDB_val *v)
{
    const uint8_t *p = v->mv_data;
    size_t esize = first_id >= WIDE_BASE ? WIDE_ENTRY : LOG_ENTRY;
    size_t m = v->mv_size / esize, i;
    int rc = 0;

    if (v->mv_size % esize) {
        rc = PL_ECORRUPT;
        goto out;
    }
    if (first_id >= WIDE_BASE) {
        for (i = 0; i < m; i++, p += WIDE_ENTRY) {
            uint32_t id;
            size_t a = 0, z = smp->n;

            memcpy(&id, p, 4);
            while (a < z) {
                size_t mid = (a + z) / 2;

                if (smp->e[mid].type_id < id)
                    a = mid + 1;
                else
                    z = mid;
            }
            if (a == smp->n || smp->e[a].type_id != id) {
                rc = PL_ECORRUPT;
                goto out;
            }
            memcpy(&smp->e[a].count, p + 4, 8);
            memcpy(&smp->e[a].bytes, p + 12, 8);
        }
        goto out;
    }
    if (smp->n + m > smp->cap) {
        size_t cap = smp->cap ? smp->cap : 256;
        pl_type_count *grown;

        while (cap < smp->n + m)
            cap *= 2;
        grown = realloc(smp->e, cap * sizeof *grown);
        if (!grown) {
            rc = ENOMEM;
            goto out;
        }
        smp->e = grown;
        smp->cap = cap;
    }
    for (i = 0; i < m; i++, p += LOG_ENTRY) {
        pl_type_count *c = &smp->e[smp->n++];
        uint32_t c32, b32;

        memcpy(&c->type_id, p, 4);
        memcpy(&c32, p + 4, 4);
        memcpy(&b32, p + 8, 4);
        c->count = c32;
        c->bytes = b32;
    }
out:
    return rc;
}

/* Reads every part of the log sample (inck, time) into smp (replacing it). */
static int log_read_sample(MDB_cursor *cur, const uint8_t *inck, uint64_t time, struct sample *smp)
{
    uint8_t lo[LOG_KEY];
    MDB_val k = {LOG_KEY, lo}, v;
    int rc;

    smp->n = 0;
    smp->time = (int64_t)time;
    log_key(lo, inck, time, 0);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != LOG_KEY || memcmp(k.mv_data, lo, INC_KEY + 8) != 0)
            break;
        rc = sample_add_part(smp, get_be32((const uint8_t *)k.mv_data + INC_KEY + 8), &v);
        if (rc)
            break;
    }
    if (rc == MDB_NOTFOUND)
        rc = 0;
    return rc;
}

/* Lists the distinct log times of an incarnation, ascending. *times is
 * malloc'ed. */
static int log_times(pl_store *s, MDB_txn *txn, const uint8_t *inck, int64_t **times, size_t *n)
{
    MDB_cursor *cur = NULL;
    uint8_t lo[LOG_KEY];
    MDB_val k = {LOG_KEY, lo}, v;
    int64_t *list = NULL, *grown;
    size_t count = 0, cap = 0;
    int rc;

    rc = mdb_cursor_open(txn, s->log, &cur);
    if (rc)
        goto out;
    log_key(lo, inck, 0, 0);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;) {
        int64_t t;

        if (k.mv_size != LOG_KEY || memcmp(k.mv_data, inck, INC_KEY) != 0)
            break;
        t = (int64_t)get_be64((const uint8_t *)k.mv_data + INC_KEY);
        if (count == cap) {
            cap = cap ? cap * 2 : 64;
            grown = realloc(list, cap * sizeof *list);
            if (!grown) {
                rc = ENOMEM;
                goto out;
            }
            list = grown;
        }
        list[count++] = t;
        /* Jump over the other parts of this sample. */
        log_key(lo, inck, (uint64_t)t + 1, 0);
        k.mv_size = LOG_KEY;
        k.mv_data = lo;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    }
    if (rc == MDB_NOTFOUND)
        rc = 0;
out:
    mdb_cursor_close(cur);
    if (rc == 0) {
        *times = list;
        *n = count;
    } else {
        free(list);
    }
    return rc;
}

/* -------------------------------------------------------- window records */

/* A window record decoded: its flags and sample times. */
struct window {
    uint64_t wtime;
    unsigned flags;
    uint32_t n;
    int64_t times[WINDOW2];
};

static int window_decode(const MDB_val *k, const MDB_val *v, struct window *w)
{
    const uint8_t *p = v->mv_data, *end = p + v->mv_size;
    uint64_t x;
    size_t used;
    uint32_t i;
    int rc = PL_ECORRUPT;

    if (k->mv_size != WIN_KEY || v->mv_size < 2)
        goto out;
    w->wtime = get_be64((const uint8_t *)k->mv_data + INC_KEY);
    w->flags = p[0];
    p++;
    used = get_uv(p, end, &x);
    if (!used || x == 0 || x > WINDOW2)
        goto out;
    p += used;
    w->n = (uint32_t)x;
    w->times[0] = (int64_t)w->wtime;
    for (i = 1; i < w->n; i++) {
        used = get_uv(p, end, &x);
        if (!used)
            goto out;
        p += used;
        w->times[i] = w->times[i - 1] + (int64_t)x;
    }
    rc = 0;
out:
    return rc;
}

static size_t window_encode(uint8_t *p, unsigned flags, const int64_t *times, uint32_t n)
{
    size_t len = 0;
    uint32_t i;

    p[len++] = (uint8_t)flags;
    len += put_uv(p + len, n);
    for (i = 1; i < n; i++)
        len += put_uv(p + len, (uint64_t)(times[i] - times[i - 1]));
    return len;
}

/* ---------------------------------------------------------------- chunks */

static void chunk_key(uint8_t *k, uint32_t group, const uint8_t *inck, uint64_t wtime, uint8_t part)
{
    put_be32(k, group);
    memcpy(k + 4, inck, INC_KEY);
    put_be64(k + 4 + INC_KEY, wtime);
    k[CHUNK_KEY - 1] = part;
}

/* Encodes one type's n points: the first count and bytes, then for each
 * following point either a run of unchanged points (2r) or a changed point
 * (2*zz(dcount)+1, zz(dbytes)), with 0 as an escape for huge deltas. */
static size_t chunk_encode(uint8_t *p, const uint64_t *c, const uint64_t *b, uint32_t n)
{
    size_t len = 0;
    uint32_t i = 1, r;

    len += put_uv(p + len, c[0]);
    len += put_uv(p + len, b[0]);
    while (i < n) {
        if (c[i] == c[i - 1] && b[i] == b[i - 1]) {
            r = 1;
            while (i + r < n && c[i + r] == c[i - 1] && b[i + r] == b[i - 1])
                r++;
            len += put_uv(p + len, (uint64_t)r << 1);
            i += r;
        } else {
            uint64_t zc = zigzag(c[i] - c[i - 1]), zb = zigzag(b[i] - b[i - 1]);

            if (zc < (1ull << 63)) {
                len += put_uv(p + len, (zc << 1) | 1);
            } else {
                len += put_uv(p + len, 0);
                len += put_uv(p + len, zc);
            }
            len += put_uv(p + len, zb);
            i++;
        }
    }
    return len;
}

/* Decodes n points into c and b (either may be NULL only when n == 1...
 * both are always given here). Only the first `want` points are needed;
 * want == 1 reads just the header. */
static int chunk_decode(const uint8_t *p, size_t len, uint32_t n, uint32_t want, int64_t *c,
                        int64_t *b)
{
    const uint8_t *end = p + len;
    uint64_t x, y, cc, bb;
    uint32_t i = 1, r;
    size_t used;
    int rc = PL_ECORRUPT;

    if (want > n)
        want = n;
    if (!(used = get_uv(p, end, &cc)))
        goto out;
    p += used;
    if (!(used = get_uv(p, end, &bb)))
        goto out;
    p += used;
    c[0] = (int64_t)cc;
    b[0] = (int64_t)bb;
    while (i < want) {
        if (!(used = get_uv(p, end, &x)))
            goto out;
        p += used;
        if (x == 0 || (x & 1)) {
            if (x == 0) {
                if (!(used = get_uv(p, end, &x)))
                    goto out;
                p += used;
            } else {
                x >>= 1;
            }
            if (!(used = get_uv(p, end, &y)))
                goto out;
            p += used;
            cc += unzigzag(x);
            bb += unzigzag(y);
            c[i] = (int64_t)cc;
            b[i] = (int64_t)bb;
            i++;
        } else {
            r = (uint32_t)(x >> 1);
            if (x >> 1 > n - i)
                goto out;
            while (r-- && i < n) {
                c[i] = (int64_t)cc;
                b[i] = (int64_t)bb;
                i++;
            }
        }
    }
    rc = 0;
out:
    return rc;
}

/* Finds the entry of type `low` (id & 15) in a group value. */
static int group_find(const MDB_val *v, unsigned low, const uint8_t **data, size_t *len)
{
    const uint8_t *p = v->mv_data, *end = p + v->mv_size;
    uint64_t l;
    size_t used;
    int rc = MDB_NOTFOUND;

    while (p < end) {
        unsigned id = *p++;

        used = get_uv(p, end, &l);
        if (!used || l > (uint64_t)(end - p - (ptrdiff_t)used)) {
            rc = PL_ECORRUPT;
            break;
        }
        p += used;
        if (id == low) {
            *data = p;
            *len = (size_t)l;
            rc = 0;
            break;
        }
        p += l;
    }
    return rc;
}

/* ---------------------------------------------------------------- append */

static int cmp_count_id(const void *a, const void *b)
{
    const pl_type_count *x = a, *y = b;

    return x->type_id < y->type_id ? -1 : x->type_id > y->type_id;
}

static int put_sample_parts(MDB_txn *txn, MDB_dbi dbi, const uint8_t *prefix, size_t plen,
                            const pl_type_count *e, size_t n);

/* Writes one sample into the log and updates the procs record, in one
 * transaction. *over is set when the used pages exceed max_bytes. */
static int append_txn(pl_store *s, const pl_incarnation *inc, int64_t time_ms,
                      const pl_type_count *sorted, size_t n, struct proc_rec *rec, int *over)
{
    MDB_txn *txn = NULL;
    uint8_t inck[INC_KEY], kb[LOG_KEY];
    int rc;

    inc_key(inck, inc);
    rc = txn_begin(s, 1, &txn);
    if (rc)
        goto out;
    rc = rec_get(s, txn, inc, rec);
    if (rc)
        goto abort;
    /* Only ids handed out by pl_store_type_ids: compaction, merges and
     * deletions walk the groups up to the highest id. */
    if (n && (sorted[0].type_id == 0 || sorted[n - 1].type_id > max_type_id(s, txn))) {
        rc = PL_EBADARG;
        goto abort;
    }
    /* Times are strictly increasing per incarnation (they are part of the
     * key); a clock that steps back is clamped rather than losing data. */
    if (rec->last_time && time_ms <= rec->last_time)
        time_ms = rec->last_time + 1;
    log_key(kb, inck, (uint64_t)time_ms, 0);
    rc = put_sample_parts(txn, s->log, kb, INC_KEY + 8, sorted, n);
    if (rc)
        goto abort;
    rec->samples++;
    rec->n_log++;
    rec->last_time = time_ms;
    if (!rec->first_time)
        rec->first_time = time_ms;
    if (time_ms > rec->last_seen_ms)
        rec->last_seen_ms = time_ms;
    rc = rec_put(s, txn, inc, rec);
    if (rc)
        goto abort;
    *over = used_bytes(s, txn) > max_bytes(s);
    rc = txn_commit(s, txn);
    goto out;
abort:
    txn_abort(s, txn);
out:
    return rc;
}

static void samples_free(struct sample *smp, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        free(smp[i].e);
}

static int list_windows(pl_store *s, MDB_txn *txn, const uint8_t *inck, struct window **out,
                        size_t *n_out);

/* Writes the chunk value of one group (parts numbered from *part). */
static int flush_group(MDB_txn *txn, MDB_dbi dbi, uint32_t group, const uint8_t *inck,
                       uint64_t wtime, uint8_t *part, const uint8_t *buf, size_t len)
{
    uint8_t kb[CHUNK_KEY];
    MDB_val k = {CHUNK_KEY, kb}, v = {len, (void *)buf};
    int rc = 0;

    if (len) {
        chunk_key(kb, group, inck, wtime, *part);
        rc = mdb_put(txn, dbi, &k, &v, 0);
        (*part)++;
    }
    return rc;
}

/* Packs encoded type chunks into group values, flushing a value when the
 * group changes or the value is full. */
struct packer {
    MDB_txn *txn;
    MDB_dbi dbi;
    const uint8_t *inck;
    uint64_t wtime;
    unsigned shift;
    uint32_t group;
    uint8_t part;
    size_t len;
    uint8_t buf[PART_MAX];
};

static int pack_type(struct packer *pk, uint32_t id, const uint8_t *chunk, size_t tlen)
{
    uint32_t g = id >> pk->shift;
    int rc = 0;

    if (tlen + 3 > PART_MAX) {
        rc = PL_ETOOBIG;
        goto out;
    }
    if (g != pk->group) {
        rc = flush_group(pk->txn, pk->dbi, pk->group, pk->inck, pk->wtime, &pk->part, pk->buf,
                         pk->len);
        pk->group = g;
        pk->part = 0;
        pk->len = 0;
    } else if (pk->len + 3 + tlen > PART_MAX) {
        rc = flush_group(pk->txn, pk->dbi, pk->group, pk->inck, pk->wtime, &pk->part, pk->buf,
                         pk->len);
        pk->len = 0;
    }
    if (rc)
        goto out;
    pk->buf[pk->len++] = (uint8_t)(id & ((1u << pk->shift) - 1));
    pk->len += put_uv(pk->buf + pk->len, tlen);
    memcpy(pk->buf + pk->len, chunk, tlen);
    pk->len += tlen;
out:
    return rc;
}

static int pack_finish(struct packer *pk)
{
    return flush_group(pk->txn, pk->dbi, pk->group, pk->inck, pk->wtime, &pk->part, pk->buf,
                       pk->len);
}

/* Writes a sample (entries sorted by id) in the log's part format under
 * `dbi`, keys prefix(plen) + first_id(4): narrow parts, then wide parts for
 * the entries that do not fit 32 bits. Used for the log and the snapshot. */
static int put_sample_parts(MDB_txn *txn, MDB_dbi dbi, const uint8_t *prefix, size_t plen,
                            const pl_type_count *e, size_t n)
{
    uint8_t kb[LOG_KEY], val[PART_MAX];
    MDB_val k, v;
    size_t first = 0, m, i, n_wide = 0;
    uint32_t wide_part = WIDE_BASE;
    int rc = 0;

    memcpy(kb, prefix, plen);
    do {
        m = n - first < LOG_PER_PART ? n - first : LOG_PER_PART;
        for (i = 0; i < m; i++) {
            const pl_type_count *c = &e[first + i];
            uint8_t *p = val + i * LOG_ENTRY;
            uint32_t c32 = MARK, b32 = MARK;

            if (c->count < MARK && c->bytes < MARK) {
                c32 = (uint32_t)c->count;
                b32 = (uint32_t)c->bytes;
            } else {
                n_wide++;
            }
            memcpy(p, &c->type_id, 4);
            memcpy(p + 4, &c32, 4);
            memcpy(p + 8, &b32, 4);
        }
        put_be32(kb + plen, m ? e[first].type_id : 0);
        k.mv_size = plen + 4;
        k.mv_data = kb;
        v.mv_size = m * LOG_ENTRY;
        v.mv_data = val;
        rc = mdb_put(txn, dbi, &k, &v, 0);
        if (rc)
            goto out;
        first += m;
    } while (first < n);
    for (i = 0, m = 0; n_wide && i <= n; i++) {
        if (i < n && (e[i].count >= MARK || e[i].bytes >= MARK)) {
            memcpy(val + m * WIDE_ENTRY, &e[i].type_id, 4);
            memcpy(val + m * WIDE_ENTRY + 4, &e[i].count, 8);
            memcpy(val + m * WIDE_ENTRY + 12, &e[i].bytes, 8);
            m++;
        }
        if (m && (m == WIDE_PER_PART || i == n)) {
            if (wide_part == MARK) {
                rc = PL_ETOOBIG;
                goto out;
            }
            put_be32(kb + plen, wide_part++);
            k.mv_size = plen + 4;
            k.mv_data = kb;
            v.mv_size = m * WIDE_ENTRY;
            v.mv_data = val;
            rc = mdb_put(txn, dbi, &k, &v, 0);
            if (rc)
                goto out;
            m = 0;
        }
    }
out:
    return rc;
}

/* Replaces the first-sample snapshot of an incarnation (smp NULL: deletes
 * it). */
static int snap_put(pl_store *s, MDB_txn *txn, const uint8_t *inck, const struct sample *smp)
{
    MDB_cursor *cur = NULL;
    uint8_t lo[SNAP_KEY], hi[SNAP_KEY];
    size_t deleted = 0;
    int rc, more;

    memcpy(lo, inck, INC_KEY);
    memset(lo + INC_KEY, 0, 4);
    memcpy(hi, inck, INC_KEY);
    memset(hi + INC_KEY, 0xff, 4);
    rc = mdb_cursor_open(txn, s->snap, &cur);
    if (rc == 0)
        rc = del_range(cur, lo, SNAP_KEY, hi, SNAP_KEY, SIZE_MAX, &deleted, &more);
    mdb_cursor_close(cur);
    if (rc == 0 && smp)
        rc = put_sample_parts(txn, s->snap, inck, INC_KEY, smp->e, smp->n);
    return rc;
}

static MDB_dbi level_dbi(const pl_store *s, unsigned flags)
{
    return (flags & WIN_L2) ? s->chunks2 : s->chunks;
}

static unsigned level_shift(unsigned flags)
{
    return (flags & WIN_L2) ? GROUP2_SHIFT : GROUP_SHIFT;
}

static int sample_push(struct sample *smp, uint32_t id, uint64_t count, uint64_t bytes)
{
    int rc = 0;

    if (smp->n == smp->cap) {
        size_t cap = smp->cap ? smp->cap * 2 : 256;
        pl_type_count *grown = realloc(smp->e, cap * sizeof *grown);

        if (!grown) {
            rc = ENOMEM;
            goto out;
        }
        smp->e = grown;
        smp->cap = cap;
    }
    smp->e[smp->n].type_id = id;
    smp->e[smp->n].count = count;
    smp->e[smp->n].bytes = bytes;
    smp->n++;
out:
    return rc;
}

/* Reads the first point of every type of window w into smp (sorted). */
static int window_first_sample(pl_store *s, MDB_txn *txn, const uint8_t *inck,
                               const struct window *w, struct sample *smp)
{
    MDB_cursor *cur = NULL;
    uint8_t lo[CHUNK_KEY];
    MDB_val k, val;
    unsigned shift = level_shift(w->flags);
    uint32_t g, gmax = max_type_id(s, txn) >> shift;
    int rc;

    smp->n = 0;
    smp->time = (int64_t)w->wtime;
    rc = mdb_cursor_open(txn, level_dbi(s, w->flags), &cur);
    if (rc)
        goto out;
    for (g = 0; g <= gmax; g++) {
        chunk_key(lo, g, inck, w->wtime, 0);
        k.mv_size = CHUNK_KEY;
        k.mv_data = lo;
        for (rc = mdb_cursor_get(cur, &k, &val, MDB_SET_RANGE); rc == 0;
             rc = mdb_cursor_get(cur, &k, &val, MDB_NEXT)) {
            const uint8_t *p, *end;

            if (k.mv_size != CHUNK_KEY || memcmp(k.mv_data, lo, CHUNK_KEY - 1) != 0)
                break;
            p = val.mv_data;
            end = p + val.mv_size;
            while (p < end) {
                uint32_t id = (g << shift) | *p++;
                uint64_t l;
                size_t used = get_uv(p, end, &l);
                int64_t c0, b0;

                if (!used || l > (uint64_t)(end - p - (ptrdiff_t)used) ||
                    chunk_decode(p + used, (size_t)l, w->n, 1, &c0, &b0) != 0) {
                    rc = PL_ECORRUPT;
                    goto out;
                }
                p += used + l;
                if ((c0 || b0) && (rc = sample_push(smp, id, (uint64_t)c0, (uint64_t)b0)))
                    goto out;
            }
        }
        if (rc != MDB_NOTFOUND && rc != 0)
            goto out;
    }
    rc = 0;
out:
    mdb_cursor_close(cur);
    return rc;
}

/* Level-2 merge, inside compact_txn: reads the MERGE_RUN newest level-1
 * windows `w` group by group, adds the WINDOW log samples, writes 128-point
 * chunks into chunks2 and deletes the level-1 chunks. PL_ETOOBIG when a
 * type's points do not fit one value (the caller then compacts without
 * merging). */
static int merge_windows(pl_store *s, MDB_txn *txn, const uint8_t *inck, const struct window *w,
                         struct sample *smp)
{
    MDB_cursor *cur = NULL;
    uint64_t (*c)[WINDOW2] = NULL, (*b)[WINDOW2] = NULL;
    int64_t tc[WINDOW], tb[WINDOW];
    uint8_t lo[CHUNK_KEY], hi[CHUNK_KEY], tbuf[CHUNK_MAX(WINDOW2)];
    size_t pos[WINDOW], i, j, deleted;
    uint32_t g, gmax = max_type_id(s, txn) >> GROUP_SHIFT;
    struct packer *pk = NULL;
    int present[GROUP_SIZE];
    int rc, more;

    c = malloc(GROUP_SIZE * sizeof *c);
    b = malloc(GROUP_SIZE * sizeof *b);
    pk = malloc(sizeof *pk);
    if (!c || !b || !pk) {
        rc = ENOMEM;
        goto out;
    }
    pk->txn = txn;
    pk->dbi = s->chunks2;
    pk->inck = inck;
    pk->wtime = w[0].wtime;
    pk->shift = GROUP2_SHIFT;
    pk->group = UINT32_MAX;
    pk->part = 0;
    pk->len = 0;
    for (j = 0; j < WINDOW; j++) {
        pos[j] = 0;
        if (smp[j].n && (smp[j].e[smp[j].n - 1].type_id >> GROUP_SHIFT) > gmax)
            gmax = smp[j].e[smp[j].n - 1].type_id >> GROUP_SHIFT;
    }
    for (i = 0; i < MERGE_RUN; i++) {
        if (w[i].n != WINDOW || (w[i].flags & (WIN_L2 | WIN_DROPPING))) {
            rc = PL_ECORRUPT;
            goto out;
        }
    }
    rc = mdb_cursor_open(txn, s->chunks, &cur);
    if (rc)
        goto out;
    for (g = 0; g <= gmax; g++) {
        unsigned low;

        memset(present, 0, sizeof present);
        /* Decode (copy) before this group's writes: LMDB values are only
         * valid until the next update. */
        for (i = 0; i < MERGE_RUN; i++) {
            MDB_val k, val;

            chunk_key(lo, g, inck, w[i].wtime, 0);
            k.mv_size = CHUNK_KEY;
            k.mv_data = lo;
            for (rc = mdb_cursor_get(cur, &k, &val, MDB_SET_RANGE); rc == 0;
                 rc = mdb_cursor_get(cur, &k, &val, MDB_NEXT)) {
                const uint8_t *p, *end;

                if (k.mv_size != CHUNK_KEY || memcmp(k.mv_data, lo, CHUNK_KEY - 1) != 0)
                    break;
                p = val.mv_data;
                end = p + val.mv_size;
                while (p < end) {
                    uint64_t l;
                    size_t used;

                    low = *p++ & (GROUP_SIZE - 1);
                    used = get_uv(p, end, &l);
                    if (!used || l > (uint64_t)(end - p - (ptrdiff_t)used) ||
                        chunk_decode(p + used, (size_t)l, WINDOW, WINDOW, tc, tb) != 0) {
                        rc = PL_ECORRUPT;
                        goto out;
                    }
                    p += used + l;
                    if (!present[low]) {
                        memset(c[low], 0, sizeof c[low]);
                        memset(b[low], 0, sizeof b[low]);
                        present[low] = 1;
                    }
                    for (j = 0; j < WINDOW; j++) {
                        c[low][i * WINDOW + j] = (uint64_t)tc[j];
                        b[low][i * WINDOW + j] = (uint64_t)tb[j];
                    }
                }
            }
            if (rc != MDB_NOTFOUND && rc != 0)
                goto out;
        }
        for (j = 0; j < WINDOW; j++) {
            while (pos[j] < smp[j].n && (smp[j].e[pos[j]].type_id >> GROUP_SHIFT) == g) {
                const pl_type_count *e = &smp[j].e[pos[j]++];

                low = e->type_id & (GROUP_SIZE - 1);
                if (!present[low]) {
                    memset(c[low], 0, sizeof c[low]);
                    memset(b[low], 0, sizeof b[low]);
                    present[low] = 1;
                }
                c[low][MERGE_RUN * WINDOW + j] = e->count;
                b[low][MERGE_RUN * WINDOW + j] = e->bytes;
            }
        }
        for (i = 0; i < MERGE_RUN; i++) {
            chunk_key(lo, g, inck, w[i].wtime, 0);
            chunk_key(hi, g, inck, w[i].wtime, 0xff);
            deleted = 0;
            rc = del_range(cur, lo, CHUNK_KEY, hi, CHUNK_KEY, SIZE_MAX, &deleted, &more);
            if (rc)
                goto out;
        }
        for (low = 0; low < GROUP_SIZE; low++) {
            size_t tlen;

            if (!present[low])
                continue;
            tlen = chunk_encode(tbuf, c[low], b[low], WINDOW2);
            rc = pack_type(pk, (g << GROUP_SHIFT) | low, tbuf, tlen);
            if (rc)
                goto out;
        }
    }
    rc = pack_finish(pk);
out:
    mdb_cursor_close(cur);
    free(c);
    free(b);
    free(pk);
    return rc;
}

/* Moves the oldest `want` (<= WINDOW) log samples of `inc` into a level-1
 * window, or, when want is WINDOW, allow_merge is set and the incarnation's
 * MERGE_RUN newest windows are full level-1 windows, merges them with those
 * samples into one level-2 window. At least one sample stays in the log.
 * One transaction; nothing to do when the log is short enough. */
static int compact_txn(pl_store *s, const pl_incarnation *inc, int allow_merge, uint32_t want)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    struct sample smp[WINDOW];
    size_t pos[WINDOW];
    int64_t times[WINDOW2];
    uint64_t c[WINDOW], b[WINDOW];
    uint8_t inck[INC_KEY], lo[LOG_KEY], hi[LOG_KEY], wkey[WIN_KEY];
    uint8_t tbuf[CHUNK_MAX(WINDOW)], wval[16 + WINDOW2 * 10];
    struct proc_rec rec;
    struct window *wins = NULL;
    struct packer *pk = NULL;
    MDB_val k, v;
    size_t deleted = 0, i, nw = 0, run = 0;
    uint32_t ns = 0, n_times;
    int64_t *new_times;
    int rc, more, merge = 0;

    memset(smp, 0, sizeof smp);
    inc_key(inck, inc);
    rc = txn_begin(s, 1, &txn);
    if (rc)
        goto out;
    rc = rec_get(s, txn, inc, &rec);
    if (rc || want == 0 || want > WINDOW || rec.n_log <= want)
        goto abort;
    rc = mdb_cursor_open(txn, s->log, &cur);
    if (rc)
        goto abort;
    /* Decode (copy) the samples before any write: values returned by LMDB
     * are only valid until the next update in the transaction. */
    log_key(lo, inck, 0, 0);
    k.mv_size = LOG_KEY;
    k.mv_data = lo;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        int64_t t;

        if (k.mv_size != LOG_KEY || memcmp(k.mv_data, inck, INC_KEY) != 0)
            break;
        t = (int64_t)get_be64((const uint8_t *)k.mv_data + INC_KEY);
        if (ns == 0 || smp[ns - 1].time != t) {
            if (ns == want)
                break;
            smp[ns].time = t;
            ns++;
        }
        rc = sample_add_part(&smp[ns - 1], get_be32((const uint8_t *)k.mv_data + INC_KEY + 8),
                             &v);
        if (rc)
            goto abort;
    }
    if (rc && rc != MDB_NOTFOUND)
        goto abort;
    if (ns < want) {
        rc = PL_ECORRUPT;
        goto abort;
    }
    if (rec.n_windows == 0) {
        /* This becomes the first live window: its first sample is the
         * incarnation's first stored sample, which growth is measured from. */
        rc = snap_put(s, txn, inck, &smp[0]);
        if (rc)
            goto abort;
    }
    if (allow_merge && want == WINDOW) {
        rc = list_windows(s, txn, inck, &wins, &nw);
        if (rc)
            goto abort;
        while (run < nw && !(wins[nw - 1 - run].flags & (WIN_L2 | WIN_DROPPING)) &&
               wins[nw - 1 - run].n == WINDOW)
            run++;
        merge = run >= MERGE_RUN;
    }
    if (merge) {
        const struct window *w = &wins[nw - MERGE_RUN];

        rc = merge_windows(s, txn, inck, w, smp);
        if (rc)
            goto abort;
        n_times = 0;
        for (i = 0; i < MERGE_RUN; i++) {
            memcpy(times + n_times, w[i].times, WINDOW * sizeof *times);
            n_times += WINDOW;
        }
        /* The level-2 record takes the first level-1 window's key; the
         * others go. */
        for (i = 1; i < MERGE_RUN; i++) {
            memcpy(wkey, inck, INC_KEY);
            put_be64(wkey + INC_KEY, w[i].wtime);
            k.mv_size = WIN_KEY;
            k.mv_data = wkey;
            rc = mdb_del(txn, s->windows, &k, NULL);
            if (rc)
                goto abort;
        }
        rec.n_windows -= MERGE_RUN - 1;
    } else {
        pk = malloc(sizeof *pk);
        if (!pk) {
            rc = ENOMEM;
            goto abort;
        }
        pk->txn = txn;
        pk->dbi = s->chunks;
        pk->inck = inck;
        pk->wtime = (uint64_t)smp[0].time;
        pk->shift = GROUP_SHIFT;
        pk->group = UINT32_MAX;
        pk->part = 0;
        pk->len = 0;
        for (i = 0; i < want; i++)
            pos[i] = 0;
        for (;;) {
            uint32_t id = UINT32_MAX;
            int found = 0;

            for (i = 0; i < want; i++) {
                if (pos[i] < smp[i].n && (!found || smp[i].e[pos[i]].type_id < id)) {
                    id = smp[i].e[pos[i]].type_id;
                    found = 1;
                }
            }
            if (!found)
                break;
            for (i = 0; i < want; i++) {
                if (pos[i] < smp[i].n && smp[i].e[pos[i]].type_id == id) {
                    c[i] = smp[i].e[pos[i]].count;
                    b[i] = smp[i].e[pos[i]].bytes;
                    pos[i]++;
                } else {
                    c[i] = b[i] = 0;
                }
            }
            rc = pack_type(pk, id, tbuf, chunk_encode(tbuf, c, b, want));
            if (rc)
                goto abort;
        }
        rc = pack_finish(pk);
        if (rc)
            goto abort;
        n_times = 0;
        rec.n_windows++;
    }
    new_times = times + n_times;
    for (i = 0; i < want; i++)
        new_times[i] = smp[i].time;
    n_times += want;
    memcpy(wkey, inck, INC_KEY);
    put_be64(wkey + INC_KEY, (uint64_t)times[0]);
    k.mv_size = WIN_KEY;
    k.mv_data = wkey;
    v.mv_data = wval;
    v.mv_size = window_encode(wval, merge ? WIN_L2 : 0, times, n_times);
    rc = mdb_put(txn, s->windows, &k, &v, 0);
    if (rc)
        goto abort;
    log_key(lo, inck, 0, 0);
    log_key(hi, inck, (uint64_t)smp[want - 1].time, UINT32_MAX);
    rc = del_range(cur, lo, LOG_KEY, hi, LOG_KEY, SIZE_MAX, &deleted, &more);
    if (rc)
        goto abort;
    rec.n_log -= want;
    rc = rec_put(s, txn, inc, &rec);
    if (rc)
        goto abort;
    mdb_cursor_close(cur);
    cur = NULL;
    rc = txn_commit(s, txn);
    goto out;
abort:
    mdb_cursor_close(cur);
    txn_abort(s, txn);
out:
    samples_free(smp, WINDOW);
    free(wins);
    free(pk);
    return rc;
}

/* ------------------------------------------------------------- retention */

/* First live sample time of an incarnation (windows not being dropped, then
 * the log), 0 when it has none. */
static int first_live_time(pl_store *s, MDB_txn *txn, const uint8_t *inck, int64_t *first)
{
    MDB_cursor *cur = NULL;
    uint8_t lo[LOG_KEY];
    MDB_val k, v;
    int rc;

    *first = 0;
    rc = mdb_cursor_open(txn, s->windows, &cur);
    if (rc)
        goto out;
    k.mv_size = INC_KEY;
    k.mv_data = (void *)inck;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != WIN_KEY || memcmp(k.mv_data, inck, INC_KEY) != 0)
            break;
        if (v.mv_size && !(((const uint8_t *)v.mv_data)[0] & WIN_DROPPING)) {
            *first = (int64_t)get_be64((const uint8_t *)k.mv_data + INC_KEY);
            goto out;
        }
    }
    mdb_cursor_close(cur);
    cur = NULL;
    rc = mdb_cursor_open(txn, s->log, &cur);
    if (rc)
        goto out;
    log_key(lo, inck, 0, 0);
    k.mv_size = LOG_KEY;
    k.mv_data = lo;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (rc == 0 && k.mv_size == LOG_KEY && memcmp(k.mv_data, inck, INC_KEY) == 0)
        *first = (int64_t)get_be64((const uint8_t *)k.mv_data + INC_KEY);
out:
    if (rc == MDB_NOTFOUND)
        rc = 0;
    mdb_cursor_close(cur);
    return rc;
}

/* Deletes every chunk of window (inck, wtime) at the level given by `flags`,
 * in transactions of at most
 * `batch` deletions (smaller when the map is full), then the window record. */
static int purge_window(pl_store *s, const uint8_t *inck, uint64_t wtime, unsigned flags)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    uint8_t lo[CHUNK_KEY], hi[CHUNK_KEY], wkey[WIN_KEY];
    MDB_val k = {WIN_KEY, wkey};
    uint32_t g = 0, gg, gmax;
    size_t batch = DELETE_BATCH, deleted;
    int rc = 0, more = 0;

    memcpy(wkey, inck, INC_KEY);
    put_be64(wkey + INC_KEY, wtime);
    for (;;) {
        rc = txn_begin(s, 1, &txn);
        if (rc)
            goto out;
        gmax = max_type_id(s, txn) >> level_shift(flags);
        rc = mdb_cursor_open(txn, level_dbi(s, flags), &cur);
        if (rc)
            goto abort;
        deleted = 0;
        for (gg = g; gg <= gmax; gg++) {
            chunk_key(lo, gg, inck, wtime, 0);
            chunk_key(hi, gg, inck, wtime, 0xff);
            rc = del_range(cur, lo, CHUNK_KEY, hi, CHUNK_KEY, batch, &deleted, &more);
            if (rc || more)
                break;
        }
        if (rc == 0 && gg > gmax) {
            rc = mdb_del(txn, s->windows, &k, NULL);
            if (rc == MDB_NOTFOUND)
                rc = 0;
        }
        mdb_cursor_close(cur);
        cur = NULL;
        if (rc == 0)
            rc = txn_commit(s, txn);
        else
            txn_abort(s, txn);
        txn = NULL;
        if (is_map_full(rc) && batch > 1) {
            batch = batch / 8 ? batch / 8 : 1;
            continue;
        }
        if (rc || gg > gmax)
            goto out;
        g = gg;
    }
abort:
    mdb_cursor_close(cur);
    txn_abort(s, txn);
out:
    return rc;
}

/* Deletes the keys in [lo, hi] of `dbi` in batched transactions. */
static int purge_range(pl_store *s, MDB_dbi dbi, const uint8_t *lo, size_t lolen,
                       const uint8_t *hi, size_t hilen)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    size_t batch = DELETE_BATCH, deleted;
    int rc, more;

    for (;;) {
        rc = txn_begin(s, 1, &txn);
        if (rc)
            break;
        rc = mdb_cursor_open(txn, dbi, &cur);
        deleted = 0;
        more = 0;
        if (rc == 0)
            rc = del_range(cur, lo, lolen, hi, hilen, batch, &deleted, &more);
        mdb_cursor_close(cur);
        cur = NULL;
        if (rc == 0)
            rc = txn_commit(s, txn);
        else
            txn_abort(s, txn);
        txn = NULL;
        if (is_map_full(rc) && batch > 1) {
            batch = batch / 8 ? batch / 8 : 1;
            continue;
        }
        if (rc || !more)
            break;
    }
    return rc;
}

/* Rewrites the first-sample snapshot from the first live window (deletes it
 * when no window is live: the first log sample is then the first sample). */
static int refresh_snap(pl_store *s, MDB_txn *txn, const uint8_t *inck)
{
    struct window *wins = NULL;
    struct sample smp = {0};
    size_t n = 0, i;
    int rc;

    rc = list_windows(s, txn, inck, &wins, &n);
    if (rc)
        goto out;
    for (i = 0; i < n && (wins[i].flags & WIN_DROPPING); i++)
        ;
    if (i < n) {
        rc = window_first_sample(s, txn, inck, &wins[i], &smp);
        if (rc == 0)
            rc = snap_put(s, txn, inck, &smp);
    } else {
        rc = snap_put(s, txn, inck, NULL);
    }
out:
    free(wins);
    free(smp.e);
    return rc;
}

/* Drops one window of an incarnation: first marks it dropping and takes its
 * samples out of the procs record (readers skip it from then on), then
 * deletes its chunks. A crash in between leaves a marked window that the
 * next sweep finishes. */
static int drop_window(pl_store *s, const pl_incarnation *inc, uint64_t wtime)
{
    MDB_txn *txn = NULL;
    uint8_t inck[INC_KEY], wkey[WIN_KEY], wval[16 + WINDOW2 * 10];
    MDB_val k = {WIN_KEY, wkey}, v;
    struct window w;
    struct proc_rec rec;
    int rc;

    inc_key(inck, inc);
    memcpy(wkey, inck, INC_KEY);
    put_be64(wkey + INC_KEY, wtime);
    rc = txn_begin(s, 1, &txn);
    if (rc)
        goto out;
    rc = mdb_get(txn, s->windows, &k, &v);
    if (rc == MDB_NOTFOUND) {
        rc = 0;
        goto abort;
    }
    if (rc || (rc = window_decode(&k, &v, &w)))
        goto abort;
    if (!(w.flags & WIN_DROPPING)) {
        v.mv_data = wval;
        v.mv_size = window_encode(wval, w.flags | WIN_DROPPING, w.times, w.n);
        rc = mdb_put(txn, s->windows, &k, &v, 0);
        if (rc)
            goto abort;
        rc = rec_get(s, txn, inc, &rec);
        if (rc == 0) {
            rec.samples = rec.samples > w.n ? rec.samples - w.n : 0;
            if (rec.n_windows)
                rec.n_windows--;
            rc = first_live_time(s, txn, inck, &rec.first_time);
            if (rc == 0)
                rc = rec_put(s, txn, inc, &rec);
        } else if (rc == PL_ENOTFOUND) {
            rc = 0;
        }
        if (rc == 0)
            rc = refresh_snap(s, txn, inck);
        if (rc)
            goto abort;
    }
    rc = txn_commit(s, txn);
    txn = NULL;
    if (rc == 0)
        rc = purge_window(s, inck, wtime, w.flags);
    goto out;
abort:
    txn_abort(s, txn);
out:
    return rc;
}

/* Drops the log sample (inc, time) and accounts for it. */
static int drop_log_sample(pl_store *s, const pl_incarnation *inc, int64_t time)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    uint8_t inck[INC_KEY], lo[LOG_KEY], hi[LOG_KEY];
    struct proc_rec rec;
    size_t deleted = 0;
    int rc, more;

    inc_key(inck, inc);
    log_key(lo, inck, (uint64_t)time, 0);
    log_key(hi, inck, (uint64_t)time, UINT32_MAX);
    rc = txn_begin(s, 1, &txn);
    if (rc)
        goto out;
    rc = mdb_cursor_open(txn, s->log, &cur);
    if (rc == 0)
        rc = del_range(cur, lo, LOG_KEY, hi, LOG_KEY, SIZE_MAX, &deleted, &more);
    mdb_cursor_close(cur);
    if (rc)
        goto abort;
    rc = rec_get(s, txn, inc, &rec);
    if (rc == 0 && deleted) {
        rec.samples = rec.samples ? rec.samples - 1 : 0;
        rec.n_log = rec.n_log ? rec.n_log - 1 : 0;
        rc = first_live_time(s, txn, inck, &rec.first_time);
        if (rc == 0)
            rc = rec_put(s, txn, inc, &rec);
    } else if (rc == PL_ENOTFOUND) {
        rc = 0;
    }
    if (rc)
        goto abort;
    rc = txn_commit(s, txn);
    goto out;
abort:
    txn_abort(s, txn);
out:
    return rc;
}

/* Lists the window records of an incarnation (all, dropping or not). */
static int list_windows(pl_store *s, MDB_txn *txn, const uint8_t *inck, struct window **out,
                        size_t *n_out)
{
    MDB_cursor *cur = NULL;
    MDB_val k = {INC_KEY, (void *)inck}, v;
    struct window *list = NULL, *grown;
    size_t n = 0, cap = 0;
    int rc;

    rc = mdb_cursor_open(txn, s->windows, &cur);
    if (rc)
        goto out;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != WIN_KEY || memcmp(k.mv_data, inck, INC_KEY) != 0)
            break;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            grown = realloc(list, cap * sizeof *list);
            if (!grown) {
                rc = ENOMEM;
                goto out;
            }
            list = grown;
        }
        if (window_decode(&k, &v, &list[n]) == 0)
            n++;
    }
    if (rc == MDB_NOTFOUND)
        rc = 0;
out:
    mdb_cursor_close(cur);
    if (rc == 0) {
        *out = list;
        *n_out = n;
    } else {
        free(list);
    }
    return rc;
}

/* Deletes every window, chunk and log record of an incarnation whose procs
 * record is already gone. */
static int purge_inc_data(pl_store *s, const uint8_t *inck)
{
    MDB_txn *txn = NULL;
    struct window *wins = NULL;
    size_t n = 0, i;
    uint8_t lo[LOG_KEY], hi[LOG_KEY];
    int rc;

    rc = txn_begin(s, 0, &txn);
    if (rc)
        goto out;
    rc = list_windows(s, txn, inck, &wins, &n);
    txn_abort(s, txn);
    for (i = 0; rc == 0 && i < n; i++)
        rc = purge_window(s, inck, wins[i].wtime, wins[i].flags);
    if (rc == 0) {
        log_key(lo, inck, 0, 0);
        log_key(hi, inck, UINT64_MAX, UINT32_MAX);
        rc = purge_range(s, s->log, lo, LOG_KEY, hi, LOG_KEY);
    }
    if (rc == 0) {
        /* snap keys are inc(12) + id(4): the first 16 bytes of a log key. */
        log_key(lo, inck, 0, 0);
        memset(hi + INC_KEY, 0xff, 4);
        rc = purge_range(s, s->snap, lo, SNAP_KEY, hi, SNAP_KEY);
    }
out:
    free(wins);
    return rc;
}

/* Deletes an incarnation: its procs record and pending mailbox requests in
 * one transaction, then its data. */
static int delete_inc(pl_store *s, const pl_incarnation *inc)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    uint8_t inck[INC_KEY], lo[1 + INC_KEY], hi[1 + INC_KEY + 9];
    MDB_val k = {INC_KEY, inck};
    size_t deleted = 0;
    int rc, more;

    inc_key(inck, inc);
    rc = txn_begin(s, 1, &txn);
    if (rc)
        goto out;
    rc = mdb_del(txn, s->procs, &k, NULL);
    if (rc == MDB_NOTFOUND)
        rc = 0;
    if (rc)
        goto abort;
    lo[0] = 'q';
    memcpy(lo + 1, inck, INC_KEY);
    memcpy(hi, lo, sizeof lo);
    memset(hi + sizeof lo, 0xff, sizeof hi - sizeof lo);
    rc = mdb_cursor_open(txn, s->mailbox, &cur);
    if (rc == 0)
        rc = del_range(cur, lo, sizeof lo, hi, sizeof hi, SIZE_MAX, &deleted, &more);
    mdb_cursor_close(cur);
    if (rc)
        goto abort;
    rc = txn_commit(s, txn);
    if (rc == 0)
        rc = purge_inc_data(s, inck);
    goto out;
abort:
    txn_abort(s, txn);
out:
    return rc;
}

static int inck_cmp(const void *a, const void *b)
{
    return memcmp(a, b, INC_KEY);
}

/* Appends to *list the incarnations (12-byte key prefixes) that have keys
 * of length keylen in `dbi` but are not in `known` (sorted). */
static int collect_orphans(MDB_txn *txn, MDB_dbi dbi, size_t keylen, const uint8_t *known,
                           size_t n_known, uint8_t **list, size_t *n, size_t *cap)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    uint8_t lo[LOG_KEY], *grown;
    int rc;

    rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc)
        goto out;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;) {
        if (k.mv_size != keylen) {
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
            continue;
        }
        if (!bsearch(k.mv_data, known, n_known, INC_KEY, inck_cmp) &&
            (*n == 0 || memcmp(*list + INC_KEY * (*n - 1), k.mv_data, INC_KEY) != 0)) {
            if (*n == *cap) {
                *cap = *cap ? *cap * 2 : 8;
                grown = realloc(*list, *cap * INC_KEY);
                if (!grown) {
                    rc = ENOMEM;
                    goto out;
                }
                *list = grown;
            }
            memcpy(*list + INC_KEY * (*n)++, k.mv_data, INC_KEY);
        }
        /* Skip to the next incarnation. */
        memcpy(lo, k.mv_data, INC_KEY);
        memset(lo + INC_KEY, 0xff, keylen - INC_KEY);
        k.mv_size = keylen;
        k.mv_data = lo;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (rc == 0 && memcmp(k.mv_data, lo, keylen) == 0)
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc == MDB_NOTFOUND)
        rc = 0;
out:
    mdb_cursor_close(cur);
    return rc;
}

/* Finishes interrupted drops: windows marked dropping, and windows or log
 * records of incarnations that no longer have a procs record. */
static int sweep_orphans(pl_store *s)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    uint8_t *known = NULL, *orphan_incs = NULL;
    struct {
        uint8_t inck[INC_KEY];
        uint64_t wtime;
        unsigned flags;
    } *wins = NULL, *wgrown;
    MDB_dbi per_inc[2];
    size_t keylen[2] = {LOG_KEY, SNAP_KEY}, d;
    size_t n_known = 0, n_wins = 0, cap_wins = 0, n_orphans = 0, cap_orphans = 0, i;
    int rc;

    rc = txn_begin(s, 0, &txn);
    if (rc)
        goto out;
    {
        MDB_stat st;

        rc = mdb_stat(txn, s->procs, &st);
        if (rc)
            goto abort;
        known = malloc((st.ms_entries + 1) * INC_KEY);
        if (!known) {
            rc = ENOMEM;
            goto abort;
        }
    }
    rc = mdb_cursor_open(txn, s->procs, &cur);
    if (rc)
        goto abort;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        if (k.mv_size == INC_KEY)
            memcpy(known + INC_KEY * n_known++, k.mv_data, INC_KEY);
    mdb_cursor_close(cur);
    cur = NULL;
    /* procs keys come out sorted, so bsearch works on `known`. */
    rc = mdb_cursor_open(txn, s->windows, &cur);
    if (rc)
        goto abort;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        int dropping = v.mv_size && (((const uint8_t *)v.mv_data)[0] & WIN_DROPPING);

        if (k.mv_size != WIN_KEY)
            continue;
        if (!dropping && bsearch(k.mv_data, known, n_known, INC_KEY, inck_cmp))
            continue;
        if (n_wins == cap_wins) {
            cap_wins = cap_wins ? cap_wins * 2 : 16;
            wgrown = realloc(wins, cap_wins * sizeof *wins);
            if (!wgrown) {
                rc = ENOMEM;
                goto abort;
            }
            wins = wgrown;
        }
        memcpy(wins[n_wins].inck, k.mv_data, INC_KEY);
        wins[n_wins].wtime = get_be64((const uint8_t *)k.mv_data + INC_KEY);
        wins[n_wins].flags = v.mv_size ? ((const uint8_t *)v.mv_data)[0] : 0;
        n_wins++;
    }
    mdb_cursor_close(cur);
    cur = NULL;
    if (rc != MDB_NOTFOUND)
        goto abort;
    rc = 0;
    per_inc[0] = s->log;
    per_inc[1] = s->snap;
    for (d = 0; rc == 0 && d < 2; d++)
        rc = collect_orphans(txn, per_inc[d], keylen[d], known, n_known, &orphan_incs, &n_orphans,
                             &cap_orphans);
    if (rc)
        goto abort;
    txn_abort(s, txn);
    txn = NULL;
    rc = 0;
    for (i = 0; rc == 0 && i < n_wins; i++)
        rc = purge_window(s, wins[i].inck, wins[i].wtime, wins[i].flags);
    for (i = 0; rc == 0 && i < n_orphans; i++)
        rc = purge_inc_data(s, orphan_incs + INC_KEY * i);
    goto out;
abort:
    mdb_cursor_close(cur);
    txn_abort(s, txn);
out:
    free(known);
    free(wins);
    free(orphan_incs);
    return rc;
}

/* Applies max_samples and max_age to one incarnation. */
static int retain_inc(pl_store *s, const pl_incarnation *inc, int64_t now_ms)
{
    MDB_txn *txn = NULL;
    uint8_t inck[INC_KEY];
    struct proc_rec rec;
    struct window *wins = NULL;
    int64_t *ltimes = NULL;
    size_t n_wins = 0, n_lt = 0, i, w;
    int64_t cutoff = now_ms - (int64_t)(s->max_age_s * 1000);
    int rc = 0, iter;

    inc_key(inck, inc);
    for (iter = 0; iter < 100000; iter++) {
        int need_count, need_age;

        free(wins);
        free(ltimes);
        wins = NULL;
        ltimes = NULL;
        rc = txn_begin(s, 0, &txn);
        if (rc)
            break;
        rc = rec_get(s, txn, inc, &rec);
        if (rc == 0)
            rc = list_windows(s, txn, inck, &wins, &n_wins);
        if (rc == 0)
            rc = log_times(s, txn, inck, &ltimes, &n_lt);
        txn_abort(s, txn);
        txn = NULL;
        if (rc == PL_ENOTFOUND)
            rc = 0;
        if (rc)
            break;
        need_count = rec.samples > s->max_samples;
        need_age = rec.first_time && rec.first_time < cutoff;
        if (!need_count && !need_age)
            break;
        for (w = 0; w < n_wins && (wins[w].flags & WIN_DROPPING); w++)
            ;
        if (w < n_wins) {
            if (need_count || wins[w].times[wins[w].n - 1] < cutoff)
                rc = drop_window(s, inc, wins[w].wtime);
            else
                break;
        } else if (n_lt) {
            if ((need_count && n_lt > 1) || ltimes[0] < cutoff)
                rc = drop_log_sample(s, inc, ltimes[0]);
            else
                break;
        } else {
            break;
        }
        if (rc)
            break;
        (void)i;
    }
    free(wins);
    free(ltimes);
    return rc;
}

static int64_t last_activity(const struct proc_rec *r)
{
    int64_t t = r->last_seen_ms;

    if (r->ended_ms > t)
        t = r->ended_ms;
    if (r->last_time > t)
        t = r->last_time;
    return t;
}

/* Drops the least valuable unit of data: the dead incarnation seen last
 * longest ago, else the oldest window of any incarnation, else the oldest
 * log sample of an incarnation that has more than one; with `last_resort`,
 * even an incarnation's only sample. *dropped tells whether it found one. */
static int drop_oldest(pl_store *s, int last_resort, int *dropped)
{
    MDB_txn *txn = NULL;
    struct inc_entry *list = NULL;
    size_t n = 0, i, best = SIZE_MAX, bw = SIZE_MAX;
    int64_t best_time = INT64_MAX, best_wt = INT64_MAX;
    uint64_t best_w = 0;
    int rc, kind = 0;

    *dropped = 0;
    rc = txn_begin(s, 0, &txn);
    if (rc)
        goto out;
    rc = read_incs(s, txn, &list, &n);
    if (rc)
        goto abort;
    txn_abort(s, txn);
    txn = NULL;
    fill_alive(list, n);
    for (i = 0; i < n; i++) {
        if (!list[i].alive && last_activity(&list[i].rec) < best_time) {
            best_time = last_activity(&list[i].rec);
            best = i;
        }
    }
    if (best != SIZE_MAX) {
        rc = delete_inc(s, &list[best].inc);
        *dropped = rc == 0;
        goto out;
    }
    rc = txn_begin(s, 0, &txn);
    if (rc)
        goto out;
    for (i = 0; i < n; i++) {
        uint8_t inck[INC_KEY];
        struct window *wins = NULL;
        int64_t *lt = NULL;
        size_t nw = 0, nl = 0, w;

        inc_key(inck, &list[i].inc);
        rc = list_windows(s, txn, inck, &wins, &nw);
        if (rc == 0)
            rc = log_times(s, txn, inck, &lt, &nl);
        if (rc == 0) {
            for (w = 0; w < nw && (wins[w].flags & WIN_DROPPING); w++)
                ;
            if (w < nw && (int64_t)wins[w].wtime < best_wt) {
                best_wt = (int64_t)wins[w].wtime;
                best_w = wins[w].wtime;
                bw = i;
            }
            if (nl > (last_resort ? 0u : 1u) && lt[0] < best_time) {
                best_time = lt[0];
                best = i;
            }
        }
        free(wins);
        free(lt);
        if (rc)
            goto abort;
    }
    txn_abort(s, txn);
    txn = NULL;
    if (bw != SIZE_MAX) {
        kind = 1;
        rc = drop_window(s, &list[bw].inc, best_w);
    } else if (best != SIZE_MAX) {
        kind = 2;
        rc = drop_log_sample(s, &list[best].inc, best_time);
    }
    *dropped = kind != 0 && rc == 0;
    goto out;
abort:
    txn_abort(s, txn);
out:
    free(list);
    return rc;
}

/* Drops data until the used pages fit max_bytes. */
static int prune_bytes(pl_store *s)
{
    MDB_txn *txn = NULL;
    uint64_t used;
    int rc = 0, dropped = 1, iter;

    for (iter = 0; iter < 100000 && dropped; iter++) {
        rc = txn_begin(s, 0, &txn);
        if (rc)
            break;
        used = used_bytes(s, txn);
        txn_abort(s, txn);
        if (used <= max_bytes(s))
            break;
        rc = drop_oldest(s, 0, &dropped);
        if (rc)
            break;
    }
    return rc;
}

/* Makes room after MDB_MAP_FULL: clears stale readers (their snapshots pin
 * freed pages), then drops one unit of data. *dropped tells whether
 * anything was freed. */
static int make_room(pl_store *s, int *dropped)
{
    int dead = 0;

    mdb_reader_check(s->env, &dead);
    return drop_oldest(s, 1, dropped);
}

static int mailbox_sweep(pl_store *s, int64_t now_ms, const struct inc_entry *list, size_t n);

/* Full retention pass; the caller holds prune_lock. */
static int prune_locked(pl_store *s, int64_t now_ms)
{
    MDB_txn *txn = NULL;
    struct inc_entry *list = NULL;
    size_t n = 0, i, live = 0;
    int64_t cutoff = now_ms - (int64_t)(s->max_age_s * 1000);
    int rc, dead = 0;

    if (s->read_only) {
        rc = 0;
        goto out;
    }
    mdb_reader_check(s->env, &dead);
    rc = txn_begin(s, 0, &txn);
    if (rc)
        goto out;
    rc = read_incs(s, txn, &list, &n);
    txn_abort(s, txn);
    if (rc)
        goto out;
    fill_alive(list, n);
    for (i = 0; rc == 0 && i < n; i++) {
        if (!list[i].alive && last_activity(&list[i].rec) < cutoff) {
            rc = delete_inc(s, &list[i].inc);
            list[i].inc.pid = 0; /* gone */
        } else {
            live++;
        }
    }
    while (rc == 0 && live > MAX_INCARNATIONS) {
        size_t best = SIZE_MAX;

        for (i = 0; i < n; i++)
            if (list[i].inc.pid && !list[i].alive &&
                (best == SIZE_MAX || last_activity(&list[i].rec) < last_activity(&list[best].rec)))
                best = i;
        if (best == SIZE_MAX)
            break;
        rc = delete_inc(s, &list[best].inc);
        list[best].inc.pid = 0;
        live--;
    }
    for (i = 0; rc == 0 && i < n; i++)
        if (list[i].inc.pid)
            rc = retain_inc(s, &list[i].inc, now_ms);
    /* A dead incarnation's log is never compacted by its writer: move all
     * but its last sample into (partial) windows, so that readers of a
     * store with many short-lived workers find a few values per type and
     * incarnation instead of every log part. */
    for (i = 0; rc == 0 && i < n; i++) {
        uint32_t n_log = list[i].rec.n_log;

        if (!list[i].inc.pid || list[i].alive)
            continue;
        while (rc == 0 && n_log > 1) {
            uint32_t want = n_log - 1 < WINDOW ? n_log - 1 : WINDOW;

            rc = compact_txn(s, &list[i].inc, 0, want);
            n_log -= want;
        }
        if (is_map_full(rc))
            rc = 0; /* stays in the log; bytes pruning below makes room */
    }
    if (rc == 0)
        rc = sweep_orphans(s);
    if (rc == 0)
        rc = mailbox_sweep(s, now_ms, list, n);
    if (rc == 0)
        rc = prune_bytes(s);
out:
    free(list);
    return rc;
}

/* Runs retention when it is due; a second thread arriving while one prunes
 * does not wait. */
static int maybe_prune(pl_store *s, int64_t now_ms)
{
    int rc = 0;

    if (s->read_only || pthread_mutex_trylock(&s->prune_lock) != 0)
        goto out;
    if (s->next_prune_ms == 0 || now_ms >= s->next_prune_ms ||
        now_ms < s->next_prune_ms - 2 * PRUNE_EVERY_MS) {
        s->next_prune_ms = now_ms + PRUNE_EVERY_MS;
        rc = prune_locked(s, now_ms);
    }
    pthread_mutex_unlock(&s->prune_lock);
out:
    return rc;
}

/* Runs retention now (see store.h). */
int pl_store_prune(pl_store *s, int64_t now_ms)
{
    int rc;

    pthread_mutex_lock(&s->prune_lock);
    s->next_prune_ms = now_ms + PRUNE_EVERY_MS;
    rc = prune_locked(s, now_ms);
    pthread_mutex_unlock(&s->prune_lock);
    return rc;
}

/* Appends one sample (see store.h). Zero entries are not stored (absent
 * types count 0). Retention runs after the sample is committed, so a
 * failure there never loses the sample. */
int pl_store_append(pl_store *s, const pl_incarnation *inc, int64_t time_ms,
                    const pl_type_count *counts, size_t n)
{
    pl_type_count *sorted = NULL;
    struct proc_rec rec;
    size_t m = 0, i;
    int rc = 0, over = 0, dropped, attempt;

    if (time_ms < 0 || (n && !counts) || n > (1u << 24)) {
        rc = PL_EBADARG;
        goto out;
    }
    sorted = malloc((n ? n : 1) * sizeof *sorted);
    if (!sorted) {
        rc = ENOMEM;
        goto out;
    }
    for (i = 0; i < n; i++)
        if (counts[i].count || counts[i].bytes)
            sorted[m++] = counts[i];
    qsort(sorted, m, sizeof *sorted, cmp_count_id);
    for (i = 1; i < m; i++) {
        if (sorted[i].type_id == sorted[i - 1].type_id) {
            rc = PL_EBADARG;
            goto out;
        }
    }
    maybe_prune(s, time_ms);
    for (attempt = 0; attempt < 100000; attempt++) {
        rc = append_txn(s, inc, time_ms, sorted, m, &rec, &over);
        if (!is_map_full(rc))
            break;
        if (make_room(s, &dropped) != 0 || !dropped)
            break;
    }
    if (rc)
        goto out;
    /* The sample is committed; what follows only reorganizes and trims. */
    if (rec.n_log > WINDOW) {
        for (attempt = 0; attempt < 1000; attempt++) {
            rc = compact_txn(s, inc, 1, WINDOW);
            if (rc == PL_ETOOBIG) /* a type too noisy for one level-2 value */
                rc = compact_txn(s, inc, 0, WINDOW);
            if (!is_map_full(rc))
                break;
            if (make_room(s, &dropped) != 0 || !dropped)
                break;
        }
        if (is_map_full(rc))
            rc = 0; /* the log simply stays longer; retried on the next append */
        if (rc)
            goto out;
    }
    if (rec.samples > s->max_samples ||
        (rec.first_time && rec.first_time < time_ms - (int64_t)(s->max_age_s * 1000))) {
        rc = retain_inc(s, inc, time_ms);
        if (rc)
            goto out;
    }
    if (over)
        rc = prune_bytes(s);
out:
    free(sorted);
    return rc;
}

/* --------------------------------------------------------------- history */

/* A live window as a history query keeps it (its times are in hview.times). */
struct win_ref {
    uint64_t wtime;
    unsigned flags;
    uint32_t n;
};

/* One incarnation taking part in a history query. */
struct hview {
    pl_incarnation inc;
    uint8_t inck[INC_KEY];
    struct proc_rec rec;
    int alive;
    struct win_ref *wins; /* live windows */
    size_t n_wins;
    size_t n_l1;         /* of which level 1 */
    size_t *win_off;     /* index in times of each window's first sample */
    int64_t *times;      /* every sample time, ascending: windows, then log */
    size_t n_times;
    size_t log_off;      /* times[log_off..] are log samples */
    int64_t *slot;       /* per slot: contributing sample index, or -1 */
    size_t slot_lo, slot_hi; /* slots [slot_lo, slot_hi) are the only ones it may fill */
};

/* A candidate type of a history query. */
struct cand {
    uint32_t id;
    const char *name; /* owned by the read transaction */
    size_t len;
    uint64_t count, bytes;
    int64_t growth;
};

static int name_cmp(const struct cand *x, const struct cand *y)
{
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->name, y->name, n);

    if (c == 0 && x->len != y->len)
        c = x->len < y->len ? -1 : 1;
    if (c == 0 && x->id != y->id)
        c = x->id < y->id ? -1 : 1;
    return c;
}

static int cmp_cand_count(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;

    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return name_cmp(x, y);
}

static int cmp_cand_top(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;

    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int cmp_cand_growth(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;

    if (x->growth != y->growth)
        return x->growth > y->growth ? -1 : 1;
    return name_cmp(x, y);
}

static int cmp_cand_name(const void *a, const void *b)
{
    return name_cmp(a, b);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* ASCII case-insensitive substring test (type names are identifiers; other
 * bytes compare exactly). */
static int contains_ci(const char *hay, size_t n, const char *needle, size_t m)
{
    size_t i, j;
    int found = m == 0;

    for (i = 0; !found && i + m <= n; i++) {
        for (j = 0; j < m && lower((unsigned char)hay[i + j]) == lower((unsigned char)needle[j]); j++)
            ;
        found = j == m;
    }
    return found;
}

static int cmp_hview_key(const void *a, const void *b)
{
    const struct hview *x = *(const struct hview *const *)a, *y = *(const struct hview *const *)b;

    return memcmp(x->inck, y->inck, INC_KEY);
}

static void hview_free(struct hview *v)
{
    free(v->wins);
    free(v->win_off);
    free(v->times);
    free(v->slot);
}

/* Loads the live windows and log times of one incarnation. */
static int hview_load(pl_store *s, MDB_txn *txn, struct hview *v)
{
    struct window *all = NULL;
    int64_t *lt = NULL;
    size_t n_all = 0, n_lt = 0, i, t = 0;
    int rc;

    inc_key(v->inck, &v->inc);
    rc = list_windows(s, txn, v->inck, &all, &n_all);
    if (rc == 0)
        rc = log_times(s, txn, v->inck, &lt, &n_lt);
    if (rc)
        goto out;
    v->wins = malloc((n_all + 1) * sizeof *v->wins);
    v->n_wins = 0;
    v->n_l1 = 0;
    for (i = 0; v->wins && i < n_all; i++)
        if (!(all[i].flags & WIN_DROPPING))
            t += all[i].n;
    v->times = malloc((t + n_lt + 1) * sizeof *v->times);
    v->win_off = malloc((n_all + 1) * sizeof *v->win_off);
    if (!v->wins || !v->times || !v->win_off) {
        rc = ENOMEM;
        goto out;
    }
    t = 0;
    for (i = 0; i < n_all; i++) {
        struct win_ref *w = &v->wins[v->n_wins];

        if (all[i].flags & WIN_DROPPING)
            continue;
        w->wtime = all[i].wtime;
        w->flags = all[i].flags;
        w->n = all[i].n;
        v->n_l1 += !(w->flags & WIN_L2);
        v->win_off[v->n_wins++] = t;
        memcpy(v->times + t, all[i].times, all[i].n * sizeof *v->times);
        t += all[i].n;
    }
    v->log_off = t;
    if (n_lt)
        memcpy(v->times + t, lt, n_lt * sizeof *lt);
    v->n_times = t + n_lt;
out:
    free(all);
    free(lt);
    return rc;
}

/* Adds the incarnation's first-sample snapshot counts, times `sign`, into acc. */
static int add_snap(pl_store *s, MDB_txn *txn, const struct hview *v, uint32_t max_id,
                    int64_t *acc, int sign)
{
    MDB_cursor *cur = NULL;
    MDB_val k = {INC_KEY, (void *)v->inck}, val;
    int rc;

    rc = mdb_cursor_open(txn, s->snap, &cur);
    if (rc)
        goto out;
    for (rc = mdb_cursor_get(cur, &k, &val, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &val, MDB_NEXT)) {
        const uint8_t *p = val.mv_data;
        int wide;
        size_t esize, m, i;

        if (k.mv_size != SNAP_KEY || memcmp(k.mv_data, v->inck, INC_KEY) != 0)
            break;
        /* Marked narrow entries are skipped; their wide part comes later. */
        wide = get_be32((const uint8_t *)k.mv_data + INC_KEY) >= WIDE_BASE;
        esize = wide ? WIDE_ENTRY : LOG_ENTRY;
        m = val.mv_size / esize;
        for (i = 0; i < m; i++, p += esize) {
            uint32_t id, c32;
            uint64_t c;

            memcpy(&id, p, 4);
            if (wide) {
                memcpy(&c, p + 4, 8);
            } else {
                memcpy(&c32, p + 4, 4);
                c = c32 == MARK ? 0 : c32;
            }
            if (id <= max_id)
                acc[id] += sign * (int64_t)c;
        }
    }
    if (rc == MDB_NOTFOUND)
        rc = 0;
out:
    mdb_cursor_close(cur);
    return rc;
}

/* Fills c/b at the windows of one level (cur is on that level's DB) with one
 * type's points; marks the windows it filled. */
static int fill_level(MDB_cursor *cur, const struct hview *v, uint32_t id, unsigned level,
                      int64_t *c, int64_t *b, uint8_t *filled)
{
    uint8_t lo[CHUNK_KEY];
    MDB_val k = {CHUNK_KEY, lo}, val;
    unsigned shift = level_shift(level);
    int rc;

    chunk_key(lo, id >> shift, v->inck, 0, 0);
    for (rc = mdb_cursor_get(cur, &k, &val, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &val, MDB_NEXT)) {
        const uint8_t *data;
        size_t dlen, lo_i = 0, hi_i = v->n_wins;
        uint64_t wtime;

        if (k.mv_size != CHUNK_KEY || memcmp(k.mv_data, lo, 4 + INC_KEY) != 0)
            break;
        wtime = get_be64((const uint8_t *)k.mv_data + 4 + INC_KEY);
        while (lo_i < hi_i) {
            size_t mid = (lo_i + hi_i) / 2;

            if (v->wins[mid].wtime < wtime)
                lo_i = mid + 1;
            else
                hi_i = mid;
        }
        if (lo_i == v->n_wins || v->wins[lo_i].wtime != wtime ||
            (v->wins[lo_i].flags & WIN_L2) != level)
            continue; /* a window being dropped or merged meanwhile */
        rc = group_find(&val, id & ((1u << shift) - 1), &data, &dlen);
        if (rc == MDB_NOTFOUND)
            continue;
        if (rc)
            break;
        rc = chunk_decode(data, dlen, v->wins[lo_i].n, v->wins[lo_i].n, c + v->win_off[lo_i],
                          b + v->win_off[lo_i]);
        if (rc)
            break;
        filled[lo_i] = 1;
    }
    if (rc == MDB_NOTFOUND)
        rc = 0;
    return rc;
}

/* Fills c[0..log_off) and b[...] with one type's windowed points (0 where
 * the type is absent from a window). */
static int fill_windows(MDB_cursor *cur1, MDB_cursor *cur2, const struct hview *v, uint32_t id,
                        int64_t *c, int64_t *b, uint8_t *filled)
{
    size_t i;
    int rc = 0;

    if (!v->n_wins)
        goto out;
    memset(filled, 0, v->n_wins);
    if (v->n_l1)
        rc = fill_level(cur1, v, id, 0, c, b, filled);
    if (rc == 0 && v->n_wins > v->n_l1)
        rc = fill_level(cur2, v, id, WIN_L2, c, b, filled);
    for (i = 0; rc == 0 && i < v->n_wins; i++) {
        if (!filled[i]) {
            memset(c + v->win_off[i], 0, v->wins[i].n * sizeof *c);
            memset(b + v->win_off[i], 0, v->wins[i].n * sizeof *b);
        }
    }
out:
    return rc;
}

/* Finds the full values of a marked entry in the wide parts of log sample
 * (inck, t), with its own cursor (rare: counts or bytes of 2^32 or more). */
static int wide_lookup(MDB_txn *txn, MDB_dbi dbi, const uint8_t *inck, int64_t t, uint32_t id,
                       uint64_t *count, uint64_t *bytes)
{
    MDB_cursor *cur = NULL;
    uint8_t lo[LOG_KEY];
    MDB_val k = {LOG_KEY, lo}, val;
    int rc;

    log_key(lo, inck, (uint64_t)t, WIDE_BASE);
    rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc)
        goto out;
    for (rc = mdb_cursor_get(cur, &k, &val, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &val, MDB_NEXT)) {
        const uint8_t *p = val.mv_data;
        size_t m = val.mv_size / WIDE_ENTRY, i;

        if (k.mv_size != LOG_KEY || memcmp(k.mv_data, lo, INC_KEY + 8) != 0)
            break;
        for (i = 0; i < m; i++, p += WIDE_ENTRY) {
            uint32_t got;

            memcpy(&got, p, 4);
            if (got == id) {
                memcpy(count, p + 4, 8);
                memcpy(bytes, p + 12, 8);
                goto out;
            }
        }
    }
    rc = PL_ECORRUPT;
out:
    mdb_cursor_close(cur);
    return rc;
}

/* Reads the page types' values from every log sample of one incarnation
 * into lc/lb[j * stride + base + i] for page type j (ids sorted in `ids`,
 * original index in `idx`) and log sample i. The caller zeroes lc/lb. */
static int fill_log(pl_store *s, MDB_txn *txn, const struct hview *v, const uint32_t *ids,
                    const size_t *idx, size_t n_ids, int64_t *lc, int64_t *lb, size_t stride,
                    size_t base)
{
    MDB_cursor *cur = NULL;
    uint8_t lo[LOG_KEY];
    MDB_val k = {LOG_KEY, lo}, val;
    size_t n_log = v->n_times - v->log_off, li = 0;
    int rc;

    if (!n_log || !n_ids) {
        rc = 0;
        goto out;
    }
    rc = mdb_cursor_open(txn, s->log, &cur);
    if (rc)
        goto out;
    log_key(lo, v->inck, (uint64_t)v->times[v->log_off], 0);
    for (rc = mdb_cursor_get(cur, &k, &val, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &val, MDB_NEXT)) {
        const uint8_t *p = val.mv_data;
        size_t m = val.mv_size / LOG_ENTRY, j, lo_j, hi_j;
        int64_t t;
        uint32_t first, last;

        if (k.mv_size != LOG_KEY || memcmp(k.mv_data, v->inck, INC_KEY) != 0)
            break;
        if (get_be32((const uint8_t *)k.mv_data + INC_KEY + 8) >= WIDE_BASE)
            continue; /* read on demand below, for marked entries */
        t = (int64_t)get_be64((const uint8_t *)k.mv_data + INC_KEY);
        while (li < n_log && v->times[v->log_off + li] < t)
            li++;
        if (li == n_log)
            break;
        if (v->times[v->log_off + li] != t || !m)
            continue;
        memcpy(&first, p, 4);
        memcpy(&last, p + (m - 1) * LOG_ENTRY, 4);
        /* Page ids inside [first, last]: find the first with a binary search. */
        lo_j = 0;
        hi_j = n_ids;
        while (lo_j < hi_j) {
            size_t mid = (lo_j + hi_j) / 2;

            if (ids[mid] < first)
                lo_j = mid + 1;
            else
                hi_j = mid;
        }
        for (j = lo_j; j < n_ids && ids[j] <= last; j++) {
            size_t a = 0, z = m;

            while (a < z) {
                size_t mid = (a + z) / 2;
                uint32_t mid_id;

                memcpy(&mid_id, p + mid * LOG_ENTRY, 4);
                if (mid_id < ids[j])
                    a = mid + 1;
                else
                    z = mid;
            }
            if (a < m) {
                uint32_t got;

                memcpy(&got, p + a * LOG_ENTRY, 4);
                if (got == ids[j]) {
                    uint32_t c32, b32;
                    uint64_t cc, bb;

                    memcpy(&c32, p + a * LOG_ENTRY + 4, 4);
                    memcpy(&b32, p + a * LOG_ENTRY + 8, 4);
                    cc = c32;
                    bb = b32;
                    if (c32 == MARK && b32 == MARK) {
                        rc = wide_lookup(txn, s->log, v->inck, t, ids[j], &cc, &bb);
                        if (rc)
                            goto out;
                    }
                    lc[idx[j] * stride + base + li] = (int64_t)cc;
                    lb[idx[j] * stride + base + li] = (int64_t)bb;
                }
            }
        }
    }
    if (rc == MDB_NOTFOUND)
        rc = 0;
out:
    mdb_cursor_close(cur);
    return rc;
}

/* Builds the slot ends: every distinct sample time when they fit in
 * max_points, else max_points evenly spaced ends from the first to the last
 * sample. */
static int build_axis(struct hview *views, size_t nv, uint32_t max_points, pl_history *h)
{
    size_t total = 0, i, j, n = 0;
    int64_t *all = NULL;
    int rc = 0;

    for (i = 0; i < nv; i++)
        total += views[i].n_times;
    if (!total)
        goto out;
    all = malloc(total * sizeof *all);
    if (!all) {
        rc = ENOMEM;
        goto out;
    }
    if (nv <= 16) {
        /* Each incarnation's times are sorted: merge them (few incarnations). */
        size_t pos[16] = {0};

        while (n < total) {
            size_t best = SIZE_MAX;

            for (i = 0; i < nv; i++)
                if (pos[i] < views[i].n_times &&
                    (best == SIZE_MAX || views[i].times[pos[i]] < views[best].times[pos[best]]))
                    best = i;
            all[n++] = views[best].times[pos[best]++];
        }
    } else {
        for (i = 0; i < nv; i++) {
            memcpy(all + n, views[i].times, views[i].n_times * sizeof *all);
            n += views[i].n_times;
        }
        qsort(all, n, sizeof *all, cmp_i64);
    }
    for (i = 1, j = 1; i < n; i++)
        if (all[i] != all[j - 1])
            all[j++] = all[i];
    n = j;
    if (n <= max_points) {
        h->times = all;
        h->n_times = n;
        all = NULL;
    } else {
        int64_t t0 = all[0], t1 = all[n - 1];

        h->times = malloc(max_points * sizeof *h->times);
        if (!h->times) {
            rc = ENOMEM;
            goto out;
        }
        for (i = 0; i < max_points; i++)
            h->times[i] = t0 + (int64_t)((double)(t1 - t0) * (double)i / (double)(max_points - 1));
        h->times[max_points - 1] = t1;
        h->n_times = max_points;
    }
out:
    free(all);
    return rc;
}

/* Which sample of view v each slot shows: its last sample at or before the
 * slot's end, from its first sample on; a dead incarnation stops in the slot
 * holding its last sample, a live one carries it to the newest slot. */
static int build_slots(struct hview *v, const pl_history *h)
{
    size_t i, j = 0;
    int rc = 0;

    v->slot = malloc((h->n_times + 1) * sizeof *v->slot);
    if (!v->slot) {
        rc = ENOMEM;
        goto out;
    }
    v->slot_lo = h->n_times;
    v->slot_hi = 0;
    for (i = 0; i < h->n_times; i++) {
        while (j < v->n_times && v->times[j] <= h->times[i])
            j++;
        if (j == 0 || (!v->alive && i > 0 && v->times[v->n_times - 1] <= h->times[i - 1])) {
            v->slot[i] = -1;
        } else {
            v->slot[i] = (int64_t)j - 1;
            if (i < v->slot_lo)
                v->slot_lo = i;
            v->slot_hi = i + 1;
        }
    }
out:
    return rc;
}

static int64_t *new_series(size_t n)
{
    int64_t *p = malloc((n ? n : 1) * sizeof *p);
    size_t i;

    if (p)
        for (i = 0; i < n; i++)
            p[i] = -1;
    return p;
}

/* Answers a history query (see store.h and docs/store.md). */
int pl_store_history(pl_store *s, const pl_history_query *q, pl_history **out)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL, *cur2 = NULL;
    struct inc_entry *list = NULL;
    struct hview *views = NULL;
    uint8_t *filled = NULL;
    size_t max_wins = 0, total_log = 0, batch, b0;
    struct hview **vord = NULL;
    size_t *line_of = NULL, *lbase = NULL;
    struct cand *cands = NULL;
    pl_history *h = NULL;
    int64_t *growth = NULL, *fc = NULL, *lc = NULL, *lb = NULL, *arr_c = NULL, *arr_b = NULL;
    uint64_t *cnt = NULL, *byt = NULL;
    uint32_t *ids = NULL, max_id, max_points;
    size_t *idx = NULL;
    size_t n_incs = 0, nv = 0, n_cand = 0, i, j, page_off, page_n, max_times = 0;
    size_t key_from, key_to, n_lines = 0;
    struct sample smp = {0};
    MDB_val k, val;
    int rc;

    *out = NULL;
    if (!q || q->limit < 1 || q->limit > 1000 || q->sort < PL_SORT_COUNT ||
        q->sort > PL_SORT_NAME) {
        rc = PL_EBADARG;
        goto out;
    }
    max_points = q->max_points ? q->max_points : DEFAULT_MAX_POINTS;
    if (max_points < 2)
        max_points = 2;
    h = calloc(1, sizeof *h);
    if (!h) {
        rc = ENOMEM;
        goto out;
    }
    rc = txn_begin(s, 0, &txn);
    if (rc)
        goto out;
    rc = read_incs(s, txn, &list, &n_incs);
    if (rc)
        goto out;
    views = calloc(n_incs + 1, sizeof *views);
    if (!views) {
        rc = ENOMEM;
        goto out;
    }
    for (i = 0; i < n_incs; i++) {
        if (q->pid && list[i].inc.pid != q->pid)
            continue;
        views[nv].inc = list[i].inc;
        views[nv].rec = list[i].rec;
        views[nv].alive = list[i].rec.ended_ms == 0 && pl_proc_alive(&list[i].inc);
        rc = hview_load(s, txn, &views[nv]);
        nv++;
        if (rc)
            goto out;
    }
    if (q->pid && nv == 0) {
        rc = PL_ENOTFOUND;
        goto out;
    }

    /* Sort keys: merged = the live incarnations; pid = its latest one. */
    max_id = max_type_id(s, txn);
    cnt = calloc((size_t)max_id + 1, sizeof *cnt);
    byt = calloc((size_t)max_id + 1, sizeof *byt);
    growth = calloc((size_t)max_id + 1, sizeof *growth);
    fc = calloc((size_t)max_id + 1, sizeof *fc);
    if (!cnt || !byt || !growth || !fc) {
        rc = ENOMEM;
        goto out;
    }
    key_from = q->pid ? (nv ? nv - 1 : 0) : 0;
    key_to = nv;
    rc = mdb_cursor_open(txn, s->log, &cur);
    if (rc)
        goto out;
    for (i = key_from; i < key_to; i++) {
        struct hview *v = &views[i];

        if ((!q->pid && !v->alive) || v->n_times == v->log_off)
            continue;
        rc = log_read_sample(cur, v->inck, (uint64_t)v->times[v->n_times - 1], &smp);
        if (rc)
            goto out;
        for (j = 0; j < smp.n; j++) {
            if (smp.e[j].type_id > max_id)
                continue;
            cnt[smp.e[j].type_id] += smp.e[j].count;
            byt[smp.e[j].type_id] += smp.e[j].bytes;
            growth[smp.e[j].type_id] += (int64_t)smp.e[j].count;
        }
        if (v->n_wins) {
            rc = add_snap(s, txn, v, max_id, growth, -1);
        } else {
            rc = log_read_sample(cur, v->inck, (uint64_t)v->times[0], &smp);
            for (j = 0; rc == 0 && j < smp.n; j++)
                if (smp.e[j].type_id <= max_id)
                    growth[smp.e[j].type_id] -= (int64_t)smp.e[j].count;
        }
        if (rc)
            goto out;
    }
    mdb_cursor_close(cur);
    cur = NULL;

    /* Candidates: every type of the store. */
    {
        MDB_stat st;

        rc = mdb_stat(txn, s->types, &st);
        if (rc)
            goto out;
        cands = malloc((st.ms_entries + 1) * sizeof *cands);
        if (!cands) {
            rc = ENOMEM;
            goto out;
        }
        rc = mdb_cursor_open(txn, s->types, &cur);
        if (rc)
            goto out;
        for (rc = mdb_cursor_get(cur, &k, &val, MDB_FIRST); rc == 0 && n_cand < st.ms_entries;
             rc = mdb_cursor_get(cur, &k, &val, MDB_NEXT)) {
            struct cand *c = &cands[n_cand];

            if (k.mv_size != 4)
                continue;
            c->id = get_be32(k.mv_data);
            c->name = val.mv_data;
            c->len = val.mv_size;
            c->count = c->id <= max_id ? cnt[c->id] : 0;
            c->bytes = c->id <= max_id ? byt[c->id] : 0;
            c->growth = c->id <= max_id ? growth[c->id] : 0;
            n_cand++;
        }
        if (rc != MDB_NOTFOUND && rc != 0)
            goto out;
        mdb_cursor_close(cur);
        cur = NULL;
    }
    if (q->top && q->top < n_cand) {
        qsort(cands, n_cand, sizeof *cands, cmp_cand_top);
        n_cand = (size_t)q->top;
    }
    if (q->q && q->q[0]) {
        size_t m = strlen(q->q);

        for (i = 0, j = 0; i < n_cand; i++)
            if (contains_ci(cands[i].name, cands[i].len, q->q, m))
                cands[j++] = cands[i];
        n_cand = j;
    }
    h->total = n_cand;
    qsort(cands, n_cand, sizeof *cands,
          q->sort == PL_SORT_COUNT ? cmp_cand_count
          : q->sort == PL_SORT_GROWTH ? cmp_cand_growth : cmp_cand_name);
    page_off = q->offset < n_cand ? (size_t)q->offset : n_cand;
    page_n = n_cand - page_off < q->limit ? n_cand - page_off : (size_t)q->limit;

    /* Time axis and which sample each incarnation shows in each slot. */
    rc = build_axis(views, nv, max_points, h);
    if (rc)
        goto out;
    for (i = 0; i < nv; i++) {
        rc = build_slots(&views[i], h);
        if (rc)
            goto out;
        if (views[i].n_times)
            n_lines++;
        if (views[i].n_times > max_times)
            max_times = views[i].n_times;
        if (views[i].n_wins > max_wins)
            max_wins = views[i].n_wins;
    }

    /* Views in key order, so that consecutive seeks for one type land on
     * the same or the next leaf page (LMDB searches the current page first);
     * log values of all views for a batch of page types in shared arrays. */
    vord = malloc((nv + 1) * sizeof *vord);
    line_of = malloc((nv + 1) * sizeof *line_of);
    lbase = malloc((nv + 1) * sizeof *lbase);
    if (!vord || !line_of || !lbase) {
        rc = ENOMEM;
        goto out;
    }
    n_lines = 0;
    for (i = 0; i < nv; i++) {
        vord[i] = &views[i];
        lbase[i] = total_log;
        total_log += views[i].n_times - views[i].log_off;
        line_of[i] = n_lines;
        if (views[i].n_times)
            n_lines++;
    }
    qsort(vord, nv, sizeof *vord, cmp_hview_key);
    batch = total_log ? LOG_CELLS / total_log : page_n;
    if (batch < 1)
        batch = 1;
    if (batch > page_n)
        batch = page_n;

    h->types = calloc(page_n ? page_n : 1, sizeof *h->types);
    ids = malloc((page_n + 1) * sizeof *ids * 2);
    idx = malloc((page_n + 1) * sizeof *idx);
    lc = malloc((batch * total_log + 1) * sizeof *lc);
    lb = malloc((batch * total_log + 1) * sizeof *lb);
    arr_c = malloc((max_times + 1) * sizeof *arr_c);
    arr_b = malloc((max_times + 1) * sizeof *arr_b);
    filled = malloc(max_wins + 1);
    if (!h->types || !ids || !idx || !lc || !lb || !arr_c || !arr_b || !filled) {
        rc = ENOMEM;
        goto out;
    }
    h->n_types = page_n;
    for (j = 0; j < page_n; j++) {
        const struct cand *c = &cands[page_off + j];
        pl_history_type *t = &h->types[j];

        t->name = malloc(c->len + 1);
        t->counts = new_series(h->n_times);
        t->bytes_series = new_series(h->n_times);
        if (!t->name || !t->counts || !t->bytes_series) {
            rc = ENOMEM;
            goto out;
        }
        memcpy(t->name, c->name, c->len);
        t->name[c->len] = '\0';
        t->type_id = c->id;
        t->count = c->count;
        t->bytes = c->bytes;
        t->growth = c->growth;
        if (q->per_worker) {
            t->lines = calloc(n_lines ? n_lines : 1, sizeof *t->lines);
            if (!t->lines) {
                rc = ENOMEM;
                goto out;
            }
            t->n_lines = n_lines;
            for (i = 0; i < nv; i++) {
                if (!views[i].n_times)
                    continue;
                t->lines[line_of[i]].inc = views[i].inc;
                t->lines[line_of[i]].counts = new_series(h->n_times);
                if (!t->lines[line_of[i]].counts) {
                    rc = ENOMEM;
                    goto out;
                }
            }
        }
    }

    rc = mdb_cursor_open(txn, s->chunks, &cur);
    if (rc == 0)
        rc = mdb_cursor_open(txn, s->chunks2, &cur2);
    if (rc)
        goto out;
    for (b0 = 0; b0 < page_n; b0 += batch) {
        size_t nb = page_n - b0 < batch ? page_n - b0 : batch;

        /* This batch's ids sorted, with their index in the batch. */
        for (j = 0; j < nb; j++) {
            ids[2 * j] = h->types[b0 + j].type_id;
            ids[2 * j + 1] = (uint32_t)j;
        }
        qsort(ids, nb, 2 * sizeof *ids, cmp_u32);
        for (j = 0; j < nb; j++) {
            idx[j] = ids[2 * j + 1];
            ids[j] = ids[2 * j];
        }
        memset(lc, 0, (nb * total_log + 1) * sizeof *lc);
        memset(lb, 0, (nb * total_log + 1) * sizeof *lb);
        for (i = 0; i < nv; i++) {
            rc = fill_log(s, txn, &views[i], ids, idx, nb, lc, lb, total_log, lbase[i]);
            if (rc)
                goto out;
        }
        for (j = 0; j < nb; j++) {
            pl_history_type *t = &h->types[b0 + j];

            for (i = 0; i < nv; i++) {
                struct hview *v = vord[i];
                size_t vi = (size_t)(v - views), n_log = v->n_times - v->log_off, si;
                pl_history_line *line = q->per_worker ? &t->lines[line_of[vi]] : NULL;

                if (!v->n_times)
                    continue;
                rc = fill_windows(cur, cur2, v, t->type_id, arr_c, arr_b, filled);
                if (rc)
                    goto out;
                memcpy(arr_c + v->log_off, lc + j * total_log + lbase[vi], n_log * sizeof *arr_c);
                memcpy(arr_b + v->log_off, lb + j * total_log + lbase[vi], n_log * sizeof *arr_b);
                for (si = v->slot_lo; si < v->slot_hi; si++) {
                    int64_t k_i = v->slot[si];

                    if (k_i < 0)
                        continue;
                    if (t->counts[si] < 0)
                        t->counts[si] = t->bytes_series[si] = 0;
                    t->counts[si] += arr_c[k_i];
                    t->bytes_series[si] += arr_b[k_i];
                    if (line)
                        line->counts[si] = arr_c[k_i];
                }
            }
        }
    }
    mdb_cursor_close(cur);
    mdb_cursor_close(cur2);
    cur = cur2 = NULL;
    *out = h;
    h = NULL;
out:
    mdb_cursor_close(cur);
    mdb_cursor_close(cur2);
    free(filled);
    free(vord);
    free(line_of);
    free(lbase);
    txn_abort(s, txn);
    for (i = 0; views && i < nv; i++)
        hview_free(&views[i]);
    free(views);
    free(list);
    free(cands);
    free(cnt);
    free(byt);
    free(growth);
    free(fc);
    free(ids);
    free(idx);
    free(lc);
    free(lb);
    free(arr_c);
    free(arr_b);
    free(smp.e);
    pl_history_free(h);
    return rc;
}

/* Frees a history answer. NULL is a no-op. */
void pl_history_free(pl_history *h)
{
    size_t i, j;

    for (i = 0; h && h->types && i < h->n_types; i++) {
        pl_history_type *t = &h->types[i];

        free(t->name);
        free(t->counts);
        free(t->bytes_series);
        for (j = 0; t->lines && j < t->n_lines; j++)
            free(t->lines[j].counts);
        free(t->lines);
    }
    if (h) {
        free(h->types);
        free(h->times);
        free(h);
    }
}

/* --------------------------------------------------------------- mailbox */

#define MB_REQ_KEY (1 + INC_KEY + 8 + 1)
#define MB_TICKET_KEY 9
#define MB_REPLY_KEY 13
#define MB_REQ_MAX 4096u
#define MB_TICKET_VAL (INC_KEY + 8 + 1)

enum { MB_WAITING = 0, MB_TAKEN = 1, MB_REPLIED = 2 };

static void mb_req_key(uint8_t *k, const uint8_t *tok, uint64_t ticket, uint8_t part)
{
    k[0] = 'q';
    memcpy(k + 1, tok, INC_KEY);
    put_be64(k + 1 + INC_KEY, ticket);
    k[MB_REQ_KEY - 1] = part;
}

static void mb_ticket_key(uint8_t *k, uint64_t ticket)
{
    k[0] = 't';
    put_be64(k + 1, ticket);
}

static void mb_reply_key(uint8_t *k, uint64_t ticket, uint32_t part)
{
    k[0] = 'r';
    put_be64(k + 1, ticket);
    put_be32(k + 9, part);
}

/* Deletes a request (its parts, the ticket record and any reply parts). */
static int mb_delete(pl_store *s, MDB_txn *txn, MDB_cursor *cur, uint64_t ticket)
{
    uint8_t tk[MB_TICKET_KEY], lo[MB_REQ_KEY], hi[MB_REQ_KEY], rlo[MB_REPLY_KEY],
        rhi[MB_REPLY_KEY];
    MDB_val k = {MB_TICKET_KEY, tk}, v;
    size_t deleted = 0;
    int rc, more;

    mb_ticket_key(tk, ticket);
    rc = mdb_get(txn, s->mailbox, &k, &v);
    if (rc == 0 && v.mv_size == MB_TICKET_VAL) {
        uint8_t to[INC_KEY];

        memcpy(to, v.mv_data, INC_KEY);
        mb_req_key(lo, to, ticket, 0);
        mb_req_key(hi, to, ticket, 0xff);
        rc = del_range(cur, lo, MB_REQ_KEY, hi, MB_REQ_KEY, SIZE_MAX, &deleted, &more);
        if (rc == 0)
            rc = mdb_del(txn, s->mailbox, &k, NULL);
    }
    if (rc == MDB_NOTFOUND || rc == 0) {
        mb_reply_key(rlo, ticket, 0);
        mb_reply_key(rhi, ticket, UINT32_MAX);
        rc = del_range(cur, rlo, MB_REPLY_KEY, rhi, MB_REPLY_KEY, SIZE_MAX, &deleted, &more);
    }
    return rc;
}

/* Posts a request for `to` (see store.h). */
int pl_store_mailbox_post(pl_store *s, const pl_incarnation *to, const void *req, size_t len,
                          int64_t now_ms, uint64_t *ticket)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    struct proc_rec rec;
    uint8_t tok[INC_KEY], kb[MB_REQ_KEY], tk[MB_TICKET_KEY], val[PART_MAX], tval[MB_TICKET_VAL];
    MDB_val k, v;
    uint64_t t = 0, last_ticket = UINT64_MAX;
    size_t pending = 0, off = 0, hdr;
    uint8_t part = 0;
    int rc;

    if (len > MB_REQ_MAX || (len && !req)) {
        rc = PL_ETOOBIG;
        goto out;
    }
    if (!pl_proc_alive(to)) {
        rc = PL_ENOTFOUND;
        goto out;
    }
    inc_key(tok, to);
    rc = txn_begin(s, 1, &txn);
    if (rc)
        goto out;
    rc = rec_get(s, txn, to, &rec);
    if (rc == 0 && rec.ended_ms)
        rc = PL_ENOTFOUND;
    if (rc)
        goto abort;
    rc = mdb_cursor_open(txn, s->mailbox, &cur);
    if (rc)
        goto abort;
    mb_req_key(kb, tok, 0, 0);
    k.mv_size = MB_REQ_KEY;
    k.mv_data = kb;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint64_t tt;

        if (k.mv_size != MB_REQ_KEY || memcmp(k.mv_data, kb, 1 + INC_KEY) != 0)
            break;
        tt = get_be64((const uint8_t *)k.mv_data + 1 + INC_KEY);
        if (tt != last_ticket) {
            pending++;
            last_ticket = tt;
        }
    }
    if (rc != 0 && rc != MDB_NOTFOUND)
        goto abort;
    if (pending >= PL_MAILBOX_MAX_PENDING) {
        rc = PL_EBUSY;
        goto abort;
    }
    k.mv_size = 6;
    k.mv_data = "ticket";
    rc = mdb_get(txn, s->meta, &k, &v);
    if (rc == 0 && v.mv_size == 8)
        memcpy(&t, v.mv_data, 8);
    else if (rc != MDB_NOTFOUND && rc != 0)
        goto abort;
    t++;
    v.mv_size = 8;
    v.mv_data = &t;
    rc = mdb_put(txn, s->meta, &k, &v, 0);
    if (rc)
        goto abort;
    do {
        size_t m;

        hdr = 0;
        if (part == 0) {
            uint32_t l32 = (uint32_t)len;

            memcpy(val, &now_ms, 8);
            memcpy(val + 8, &l32, 4);
            hdr = 12;
        }
        m = len - off < PART_MAX - hdr ? len - off : PART_MAX - hdr;
        if (m)
            memcpy(val + hdr, (const uint8_t *)req + off, m);
        mb_req_key(kb, tok, t, part++);
        k.mv_size = MB_REQ_KEY;
        k.mv_data = kb;
        v.mv_size = hdr + m;
        v.mv_data = val;
        rc = mdb_put(txn, s->mailbox, &k, &v, 0);
        if (rc)
            goto abort;
        off += m;
    } while (off < len);
    memcpy(tval, tok, INC_KEY);
    memcpy(tval + INC_KEY, &now_ms, 8);
    tval[INC_KEY + 8] = MB_WAITING;
    mb_ticket_key(tk, t);
    k.mv_size = MB_TICKET_KEY;
    k.mv_data = tk;
    v.mv_size = MB_TICKET_VAL;
    v.mv_data = tval;
    rc = mdb_put(txn, s->mailbox, &k, &v, 0);
    if (rc)
        goto abort;
    mdb_cursor_close(cur);
    cur = NULL;
    rc = txn_commit(s, txn);
    if (rc == 0)
        *ticket = t;
    goto out;
abort:
    mdb_cursor_close(cur);
    txn_abort(s, txn);
out:
    return rc;
}

/* Takes the oldest request for `me` (see store.h). Polling an empty mailbox
 * costs one read transaction, never a write. */
int pl_store_mailbox_take(pl_store *s, const pl_incarnation *me, int64_t now_ms,
                          int64_t max_age_ms, uint64_t *ticket, pl_buf *req)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    uint8_t mek[INC_KEY], kb[MB_REQ_KEY], lo[MB_REQ_KEY], hi[MB_REQ_KEY], tk[MB_TICKET_KEY];
    uint8_t body[MB_REQ_MAX + 16], tval[MB_TICKET_VAL];
    MDB_val k, v;
    int rc, found = 0, more;

    inc_key(mek, me);
    mb_req_key(kb, mek, 0, 0);
    rc = txn_begin(s, 0, &txn);
    if (rc)
        goto out;
    rc = mdb_cursor_open(txn, s->mailbox, &cur);
    if (rc == 0) {
        k.mv_size = MB_REQ_KEY;
        k.mv_data = kb;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        found = rc == 0 && k.mv_size == MB_REQ_KEY && memcmp(k.mv_data, kb, 1 + INC_KEY) == 0;
        if (rc == MDB_NOTFOUND)
            rc = 0;
    }
    mdb_cursor_close(cur);
    cur = NULL;
    txn_abort(s, txn);
    txn = NULL;
    if (rc == 0 && !found)
        rc = PL_ENOTFOUND;
    if (rc)
        goto out;

    rc = txn_begin(s, 1, &txn);
    if (rc)
        goto out;
    rc = mdb_cursor_open(txn, s->mailbox, &cur);
    if (rc)
        goto abort;
    for (;;) {
        uint64_t t, posted;
        size_t blen = 0, deleted = 0;
        uint32_t l32;

        k.mv_size = MB_REQ_KEY;
        k.mv_data = kb;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (rc == MDB_NOTFOUND ||
            (rc == 0 && (k.mv_size != MB_REQ_KEY || memcmp(k.mv_data, kb, 1 + INC_KEY) != 0))) {
            rc = PL_ENOTFOUND;
            break;
        }
        if (rc)
            break;
        t = get_be64((const uint8_t *)k.mv_data + 1 + INC_KEY);
        mb_req_key(lo, mek, t, 0);
        mb_req_key(hi, mek, t, 0xff);
        for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            if (k.mv_size != MB_REQ_KEY || memcmp(k.mv_data, lo, MB_REQ_KEY - 1) != 0)
                break;
            if (blen + v.mv_size > sizeof body) {
                rc = PL_ECORRUPT;
                break;
            }
            memcpy(body + blen, v.mv_data, v.mv_size);
            blen += v.mv_size;
        }
        if (rc == MDB_NOTFOUND)
            rc = 0;
        if (rc == 0)
            rc = del_range(cur, lo, MB_REQ_KEY, hi, MB_REQ_KEY, SIZE_MAX, &deleted, &more);
        if (rc)
            break;
        mb_ticket_key(tk, t);
        k.mv_size = MB_TICKET_KEY;
        k.mv_data = tk;
        if (blen < 12) {
            mdb_del(txn, s->mailbox, &k, NULL);
            continue;
        }
        memcpy(&posted, body, 8);
        memcpy(&l32, body + 8, 4);
        if (l32 != blen - 12 || (max_age_ms > 0 && now_ms - (int64_t)posted > max_age_ms)) {
            rc = mdb_del(txn, s->mailbox, &k, NULL);
            if (rc && rc != MDB_NOTFOUND)
                break;
            rc = 0;
            continue;
        }
        rc = mdb_get(txn, s->mailbox, &k, &v);
        if (rc == 0 && v.mv_size == MB_TICKET_VAL) {
            memcpy(tval, v.mv_data, MB_TICKET_VAL);
            tval[INC_KEY + 8] = MB_TAKEN;
            v.mv_data = tval;
            rc = mdb_put(txn, s->mailbox, &k, &v, 0);
        } else if (rc == MDB_NOTFOUND) {
            rc = 0; /* withdrawn meanwhile: still hand it out; the reply is dropped */
        }
        if (rc)
            break;
        pl_buf_append(req, body + 12, l32);
        if (req->err) {
            rc = req->err;
            break;
        }
        *ticket = t;
        found = 2;
        break;
    }
    mdb_cursor_close(cur);
    cur = NULL;
    if (rc == 0 || rc == PL_ENOTFOUND) {
        /* Commit the discarded stale requests even when none was returned. */
        int crc = txn_commit(s, txn);

        txn = NULL;
        if (crc)
            rc = crc;
        goto out;
    }
abort:
    mdb_cursor_close(cur);
    txn_abort(s, txn);
out:
    return rc;
}

/* Stores the reply to a taken request (see store.h). Returns PL_ENOTFOUND
 * (and drops the reply) when the request was withdrawn or swept. */
int pl_store_mailbox_reply(pl_store *s, uint64_t ticket, int status, const void *body, size_t len,
                           int64_t now_ms)
{
    MDB_txn *txn = NULL;
    uint8_t tk[MB_TICKET_KEY], rk[MB_REPLY_KEY], val[PART_MAX], tval[MB_TICKET_VAL];
    MDB_val k = {MB_TICKET_KEY, tk}, v;
    size_t off = 0, hdr;
    uint32_t part = 0;
    int rc;

    if (len && !body) {
        rc = PL_EBADARG;
        goto out;
    }
    rc = txn_begin(s, 1, &txn);
    if (rc)
        goto out;
    mb_ticket_key(tk, ticket);
    rc = mdb_get(txn, s->mailbox, &k, &v);
    if (rc == MDB_NOTFOUND || (rc == 0 && v.mv_size != MB_TICKET_VAL))
        rc = PL_ENOTFOUND;
    if (rc)
        goto abort;
    memcpy(tval, v.mv_data, MB_TICKET_VAL);
    memcpy(tval + INC_KEY, &now_ms, 8);
    tval[INC_KEY + 8] = MB_REPLIED;
    v.mv_size = MB_TICKET_VAL;
    v.mv_data = tval;
    rc = mdb_put(txn, s->mailbox, &k, &v, 0);
    if (rc)
        goto abort;
    do {
        size_t m;

        hdr = 0;
        if (part == 0) {
            int32_t st = status;
            uint64_t total = len;

            memcpy(val, &st, 4);
            memcpy(val + 4, &total, 8);
            hdr = 12;
        }
        m = len - off < PART_MAX - hdr ? len - off : PART_MAX - hdr;
        if (m)
            memcpy(val + hdr, (const uint8_t *)body + off, m);
        mb_reply_key(rk, ticket, part++);
        k.mv_size = MB_REPLY_KEY;
        k.mv_data = rk;
        v.mv_size = hdr + m;
        v.mv_data = val;
        rc = mdb_put(txn, s->mailbox, &k, &v, 0);
        if (rc)
            goto abort;
        off += m;
    } while (off < len);
    rc = txn_commit(s, txn);
    goto out;
abort:
    txn_abort(s, txn);
out:
    return rc;
}

/* Fetches and deletes the reply to `ticket` (see store.h). Polling before
 * the reply exists costs one read transaction. */
int pl_store_mailbox_result(pl_store *s, uint64_t ticket, int *status, pl_buf *body)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    uint8_t rk[MB_REPLY_KEY];
    MDB_val k = {MB_REPLY_KEY, rk}, v;
    uint64_t total = 0, got = 0;
    int32_t st = 0;
    int rc;

    mb_reply_key(rk, ticket, 0);
    rc = txn_begin(s, 0, &txn);
    if (rc)
        goto out;
    rc = mdb_get(txn, s->mailbox, &k, &v);
    txn_abort(s, txn);
    txn = NULL;
    if (rc == MDB_NOTFOUND)
        rc = PL_ENOTFOUND;
    if (rc)
        goto out;
    rc = txn_begin(s, 1, &txn);
    if (rc)
        goto out;
    rc = mdb_cursor_open(txn, s->mailbox, &cur);
    if (rc)
        goto abort;
    k.mv_size = MB_REPLY_KEY;
    k.mv_data = rk;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *p = v.mv_data;
        size_t n = v.mv_size;

        if (k.mv_size != MB_REPLY_KEY || memcmp(k.mv_data, rk, 9) != 0)
            break;
        if (get_be32((const uint8_t *)k.mv_data + 9) == 0) {
            if (n < 12) {
                rc = PL_ECORRUPT;
                goto abort;
            }
            memcpy(&st, p, 4);
            memcpy(&total, p + 4, 8);
            p += 12;
            n -= 12;
        }
        pl_buf_append(body, p, n);
        got += n;
    }
    if (rc != MDB_NOTFOUND && rc != 0)
        goto abort;
    if (body->err) {
        rc = body->err;
        goto abort;
    }
    if (got != total) {
        rc = PL_ECORRUPT;
        goto abort;
    }
    rc = mb_delete(s, txn, cur, ticket);
    if (rc)
        goto abort;
    mdb_cursor_close(cur);
    cur = NULL;
    rc = txn_commit(s, txn);
    if (rc == 0)
        *status = st;
    goto out;
abort:
    mdb_cursor_close(cur);
    txn_abort(s, txn);
out:
    return rc;
}

/* Withdraws a request and any reply (see store.h). */
int pl_store_mailbox_cancel(pl_store *s, uint64_t ticket)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    int rc;

    rc = txn_begin(s, 1, &txn);
    if (rc)
        goto out;
    rc = mdb_cursor_open(txn, s->mailbox, &cur);
    if (rc == 0)
        rc = mb_delete(s, txn, cur, ticket);
    mdb_cursor_close(cur);
    if (rc) {
        txn_abort(s, txn);
        goto out;
    }
    rc = txn_commit(s, txn);
out:
    return rc;
}

/* Deletes requests and replies older than MAILBOX_TTL_MS, requests waiting
 * for an incarnation that is gone, and records without a ticket. */
static int mailbox_sweep(pl_store *s, int64_t now_ms, const struct inc_entry *list, size_t n)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    MDB_stat st;
    uint64_t *doomed = NULL, *grown;
    size_t n_doomed = 0, cap = 0, i;
    int rc;

    /* Most passes find the mailbox empty: check that without a write txn. */
    rc = txn_begin(s, 0, &txn);
    if (rc)
        goto out;
    rc = mdb_stat(txn, s->mailbox, &st);
    txn_abort(s, txn);
    txn = NULL;
    if (rc || st.ms_entries == 0)
        goto out;
    rc = txn_begin(s, 1, &txn);
    if (rc)
        goto out;
    rc = mdb_cursor_open(txn, s->mailbox, &cur);
    if (rc)
        goto abort;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *kp = k.mv_data;
        uint64_t t = 0;
        int doom = 0;

        if (k.mv_size == MB_TICKET_KEY && kp[0] == 't') {
            int64_t when;
            pl_incarnation to;
            int alive = 0;

            t = get_be64(kp + 1);
            if (v.mv_size != MB_TICKET_VAL) {
                doom = 1;
            } else {
                memcpy(&when, (const uint8_t *)v.mv_data + INC_KEY, 8);
                inc_from_key(&to, v.mv_data);
                for (i = 0; i < n; i++)
                    if (list[i].inc.pid == to.pid && list[i].inc.start == to.start)
                        alive = list[i].alive;
                doom = now_ms - when > MAILBOX_TTL_MS ||
                       (!alive && ((const uint8_t *)v.mv_data)[INC_KEY + 8] == MB_WAITING);
            }
        } else if ((k.mv_size == MB_REPLY_KEY && kp[0] == 'r') ||
                   (k.mv_size == MB_REQ_KEY && kp[0] == 'q')) {
            uint8_t tk[MB_TICKET_KEY];
            MDB_val tkv = {MB_TICKET_KEY, tk}, tv;

            t = kp[0] == 'r' ? get_be64(kp + 1) : get_be64(kp + 1 + INC_KEY);
            mb_ticket_key(tk, t);
            doom = mdb_get(txn, s->mailbox, &tkv, &tv) == MDB_NOTFOUND;
        }
        if (doom && (n_doomed == 0 || doomed[n_doomed - 1] != t)) {
            if (n_doomed == cap) {
                cap = cap ? cap * 2 : 16;
                grown = realloc(doomed, cap * sizeof *doomed);
                if (!grown) {
                    rc = ENOMEM;
                    goto abort;
                }
                doomed = grown;
            }
            doomed[n_doomed++] = t;
        }
    }
    if (rc != MDB_NOTFOUND)
        goto abort;
    rc = 0;
    for (i = 0; rc == 0 && i < n_doomed; i++)
        rc = mb_delete(s, txn, cur, doomed[i]);
    /* 'q' records whose ticket record is gone are not reached by mb_delete. */
    for (i = 0; rc == 0 && i < n_doomed; i++) {
        size_t j;

        for (j = 0; rc == 0 && j < n; j++) {
            uint8_t tok[INC_KEY], lo[MB_REQ_KEY], hi[MB_REQ_KEY];
            size_t deleted = 0;
            int more;

            inc_key(tok, &list[j].inc);
            mb_req_key(lo, tok, doomed[i], 0);
            mb_req_key(hi, tok, doomed[i], 0xff);
            rc = del_range(cur, lo, MB_REQ_KEY, hi, MB_REQ_KEY, SIZE_MAX, &deleted, &more);
        }
    }
    if (rc)
        goto abort;
    mdb_cursor_close(cur);
    cur = NULL;
    rc = txn_commit(s, txn);
    goto out;
abort:
    mdb_cursor_close(cur);
    txn_abort(s, txn);
out:
    free(doomed);
    return rc;
}
