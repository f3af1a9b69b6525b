/* Checking a store where a crash cannot hurt: pl_store_walk reads every
 * record of every database, then decodes the values of the tables the
 * readers decode (pl_store_check_records does that part in-process on an
 * open store); pl_store_verify runs the walk in a forked child under a time
 * bound and judges the child's end (see verify.h, docs/store.md).
 *
 * The child of a multithreaded process (a Python worker) may only rely on
 * what fork() makes safe: glibc resets malloc's locks in the child, and the
 * walk uses nothing but libc and LMDB on an environment it opens itself. It
 * never touches the parent's environments, Python, or a lock another thread
 * may hold, and it ends with _exit(). */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pyloot/error.h"
#include "pyloot/verify.h"

#define FREE_DBI 0
#define MAIN_DBI 1
#define NAME_MAX_LEN 511

/* LMDB codes that mean the file itself is bad (rather than the caller's
 * environment: permissions, a missing directory, no memory). */
static int is_damage(int rc)
{
    return rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND || rc == MDB_INVALID ||
           rc == MDB_VERSION_MISMATCH || rc == MDB_CURSOR_FULL || rc == MDB_BAD_VALSIZE ||
           rc == MDB_INCOMPATIBLE || rc == PL_EDAMAGED;
}

/* memcmp order with the shorter key first on a tie: LMDB's default. */
static int key_order(const MDB_val *a, const MDB_val *b)
{
    size_t n = a->mv_size < b->mv_size ? a->mv_size : b->mv_size;
    int c = n ? memcmp(a->mv_data, b->mv_data, n) : 0;

    if (c == 0 && a->mv_size != b->mv_size)
        c = a->mv_size < b->mv_size ? -1 : 1;
    return c;
}

struct walk {
    MDB_txn *txn;
    size_t last_pgno;
    char *why;
    size_t len;
    unsigned sink; /* values are read into it, so a bad mapping faults here */
};

/* A free-list record: the txn id key (size_t, integer order) and a page
 * list whose first word is its length; every page must exist. */
static int check_free(struct walk *w, const MDB_val *k, const MDB_val *v, size_t *prev_txn, int first)
{
    size_t txnid, n, pg;

    if (k->mv_size != sizeof(size_t) || v->mv_size < sizeof(size_t) || v->mv_size % sizeof(size_t))
        return PL_EDAMAGED;
    memcpy(&txnid, k->mv_data, sizeof txnid);
    if (!first && txnid <= *prev_txn)
        return PL_EDAMAGED;
    *prev_txn = txnid;
    memcpy(&n, v->mv_data, sizeof n);
    if (n != v->mv_size / sizeof(size_t) - 1)
        return PL_EDAMAGED;
    for (size_t i = 1; i <= n; i++) {
        memcpy(&pg, (const char *)v->mv_data + i * sizeof(size_t), sizeof pg);
        if (pg < 2 || pg > w->last_pgno)
            return PL_EDAMAGED;
    }
    return 0;
}

/* Reads every record of one database in order. */
static int walk_dbi(struct walk *w, MDB_dbi dbi, const char *name)
{
    MDB_cursor *cur = NULL;
    MDB_stat st;
    MDB_val k, v, prev;
    uint8_t prevbuf[NAME_MAX_LEN + 1];
    size_t n = 0, prev_txn = 0;
    int rc;

    if ((rc = mdb_stat(w->txn, dbi, &st)) || (rc = mdb_cursor_open(w->txn, dbi, &cur)))
        goto out;
    prev.mv_data = prevbuf;
    prev.mv_size = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *p = v.mv_data;

        if (k.mv_size > NAME_MAX_LEN || ++n > st.ms_entries) {
            rc = PL_EDAMAGED;
            snprintf(w->why, w->len, "database %s holds more records than it counts", name);
            goto out;
        }
        if (dbi == FREE_DBI) {
            rc = check_free(w, &k, &v, &prev_txn, n == 1);
        } else if (n > 1 && key_order(&prev, &k) >= 0) {
            rc = PL_EDAMAGED;
        }
        if (rc) {
            snprintf(w->why, w->len, "database %s has a record out of order or malformed", name);
            goto out;
        }
        memcpy(prevbuf, k.mv_data, k.mv_size);
        prev.mv_size = k.mv_size;
        for (size_t i = 0; i < v.mv_size; i += 4096)
            w->sink += p[i];
        if (v.mv_size)
            w->sink += p[v.mv_size - 1];
    }
    if (rc == MDB_NOTFOUND)
        rc = n == st.ms_entries ? 0 : PL_EDAMAGED;
    if (rc == PL_EDAMAGED && !*w->why)
        snprintf(w->why, w->len, "database %s holds %zu records but counts %zu", name, n,
                 (size_t)st.ms_entries);
    else if (rc)
        snprintf(w->why, w->len, "reading database %s: %s", name, pl_strerror(rc));
out:
    if (cur)
        mdb_cursor_close(cur);
    return rc;
}

/* Walks the main database: each record names a database, walked in turn. */
static int walk_named(struct walk *w)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    char name[NAME_MAX_LEN + 1];
    int rc = walk_dbi(w, MAIN_DBI, "(main)");

    if (rc || (rc = mdb_cursor_open(w->txn, MAIN_DBI, &cur)))
        goto out;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        MDB_dbi dbi;
        int orc;

        if (k.mv_size == 0 || k.mv_size > NAME_MAX_LEN || memchr(k.mv_data, 0, k.mv_size))
            continue; /* not a database name */
        memcpy(name, k.mv_data, k.mv_size);
        name[k.mv_size] = 0;
        orc = mdb_dbi_open(w->txn, name, 0, &dbi);
        if (orc == MDB_INCOMPATIBLE || orc == MDB_NOTFOUND)
            continue; /* a plain record of the main database */
        if (orc) {
            rc = orc;
            snprintf(w->why, w->len, "opening database %s: %s", name, pl_strerror(rc));
            goto out;
        }
        rc = walk_dbi(w, dbi, name);
        if (rc)
            goto out;
    }
    if (rc == MDB_NOTFOUND)
        rc = 0;
    else if (!*w->why)
        snprintf(w->why, w->len, "listing the databases: %s", pl_strerror(rc));
out:
    if (cur)
        mdb_cursor_close(cur);
    return rc;
}

/* ------------------------------------------------- record decoding */

static double mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* The tables whose values the readers decode, as handles of one read
 * transaction, and the layout they were written in. */
enum { T_PROCS, T_TYPES, T_LOG, T_SNAP, T_WINDOWS, T_MEMORY, T_ROUTES, T_CHUNKS, T_CHUNKS2, T_COUNT };

struct tables {
    MDB_dbi dbi[T_COUNT];
    const char *name[T_COUNT];
    int open[T_COUNT];
    int packed;    /* log and snap values are packed (schema 4 on) */
    int inc_first; /* chunk keys lead with the incarnation (schema 4 on) */
};

/* "incarnation P/S" of a 12-byte incarnation key. */
static int put_inc(char *out, size_t len, const uint8_t *k)
{
    return snprintf(out, len, "incarnation %u/%llu", (unsigned)get_be32(k),
                    (unsigned long long)get_be64(k + 4));
}

/* Notes one record that does not decode: counts it, and describes the first
 * (table, key, what failed) in d->first. */
static void note_damage(pl_store_damage *d, const struct tables *t, int kind, const MDB_val *k,
                        const char *what)
{
    const uint8_t *p = k->mv_data;
    char key[200];
    size_t n = 0;

    if (d->records++)
        return;
    key[0] = 0;
    if ((kind == T_PROCS && k->mv_size == INC_KEY) || (kind == T_LOG && k->mv_size == LOG_KEY) ||
        (kind == T_SNAP && k->mv_size == SNAP_KEY) || (kind == T_WINDOWS && k->mv_size == WIN_KEY) ||
        (kind == T_MEMORY && k->mv_size == MEMORY_KEY) || (kind == T_ROUTES && k->mv_size == ROUTES_KEY))
        n = (size_t)put_inc(key, sizeof key, p);
    if (kind == T_LOG && n)
        snprintf(key + n, sizeof key - n, " time %llu first type %u",
                 (unsigned long long)get_be64(p + INC_KEY), (unsigned)get_be32(p + INC_KEY + 8));
    else if (kind == T_SNAP && n)
        snprintf(key + n, sizeof key - n, " first type %u", (unsigned)get_be32(p + INC_KEY));
    else if (kind == T_MEMORY && n)
        snprintf(key + n, sizeof key - n, " time %llu", (unsigned long long)get_be64(p + INC_KEY));
    else if (kind == T_ROUTES && n)
        snprintf(key + n, sizeof key - n, " time %llu part %u", (unsigned long long)get_be64(p + INC_KEY),
                 (unsigned)p[INC_KEY + 8]);
    else if (kind == T_WINDOWS && n)
        snprintf(key + n, sizeof key - n, " window %llu", (unsigned long long)get_be64(p + INC_KEY));
    else if (kind == T_TYPES && k->mv_size == 4)
        snprintf(key, sizeof key, "type %u", (unsigned)get_be32(p));
    else if (kind >= T_CHUNKS && k->mv_size == CHUNK_KEY) {
        const uint8_t *inc = t->inc_first ? p : p + 4;
        uint32_t group = get_be32(t->inc_first ? p + INC_KEY : p);

        n = (size_t)put_inc(key, sizeof key, inc);
        snprintf(key + n, sizeof key - n, " types %u-%u window %llu part %u",
                 (unsigned)(group << (kind == T_CHUNKS ? GROUP_SHIFT : GROUP2_SHIFT)),
                 (unsigned)(((group + 1) << (kind == T_CHUNKS ? GROUP_SHIFT : GROUP2_SHIFT)) - 1),
                 (unsigned long long)get_be64(p + 16), (unsigned)p[CHUNK_KEY - 1]);
    }
    if (!key[0])
        snprintf(key, sizeof key, "of %zu bytes", k->mv_size);
    snprintf(d->first, sizeof d->first, "table %s, key %s: %s", t->name[kind], key, what);
}

/* The windows of the incarnation whose chunks are being decoded (chunk
 * keys of either layout keep one incarnation's chunks together), loaded
 * once per run of its chunks instead of one lookup per chunk. */
struct win_brief {
    uint64_t wtime;
    uint32_t n;
    unsigned flags;
};

struct chunk_ctx {
    uint8_t inc[INC_KEY]; /* whose windows these are */
    int loaded;
    struct win_brief *wins; /* malloc'ed, ascending wtime */
    size_t n, cap;
};

/* Loads the windows of incarnation `inc` (those that do not decode are
 * left out: the windows table's own scan reports them). 0, ENOMEM or an
 * LMDB error. */
static int load_windows(MDB_txn *txn, const struct tables *t, const uint8_t *inc, struct chunk_ctx *cx)
{
    MDB_cursor *cur = NULL;
    uint8_t lo[WIN_KEY];
    MDB_val k = {WIN_KEY, lo}, v;
    struct window w;
    int rc;

    cx->n = 0;
    cx->loaded = 0;
    memcpy(cx->inc, inc, INC_KEY);
    memcpy(lo, inc, INC_KEY);
    memset(lo + INC_KEY, 0, 8);
    if ((rc = mdb_cursor_open(txn, t->dbi[T_WINDOWS], &cur)))
        return rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < INC_KEY || memcmp(k.mv_data, inc, INC_KEY) != 0)
            break;
        if (window_decode(&k, &v, &w) != 0)
            continue;
        if (cx->n == cx->cap) {
            size_t cap = cx->cap ? cx->cap * 2 : 128;
            struct win_brief *more = realloc(cx->wins, cap * sizeof *more);
            if (!more) {
                rc = ENOMEM;
                break;
            }
            cx->wins = more;
            cx->cap = cap;
        }
        cx->wins[cx->n].wtime = w.wtime;
        cx->wins[cx->n].n = w.n;
        cx->wins[cx->n++].flags = w.flags;
    }
    mdb_cursor_close(cur);
    if (rc == 0 || rc == MDB_NOTFOUND) {
        rc = 0;
        cx->loaded = 1;
    }
    return rc;
}

/* The window of wtime among the loaded ones, or NULL (dropped meanwhile,
 * or an orphan the pruner sweeps: not damage). */
static const struct win_brief *find_window(const struct chunk_ctx *cx, uint64_t wtime)
{
    size_t a = 0, z = cx->n;

    while (a < z) {
        size_t m = a + (z - a) / 2;
        if (cx->wins[m].wtime < wtime)
            a = m + 1;
        else
            z = m;
    }
    return a < cx->n && cx->wins[a].wtime == wtime ? &cx->wins[a] : NULL;
}

/* Decodes one chunk-group value against its window: every type's points,
 * as a history read does. *what says what failed. */
static int check_chunk(MDB_txn *txn, const struct tables *t, int kind, const MDB_val *k, const MDB_val *v,
                       struct chunk_ctx *cx, int64_t *c, int64_t *b, const char **what)
{
    const struct win_brief *w;
    const uint8_t *inc;
    unsigned shift = kind == T_CHUNKS ? GROUP_SHIFT : GROUP2_SHIFT, low;
    unsigned level = kind == T_CHUNKS ? 0 : WIN_L2;
    struct group_iter it;
    const uint8_t *data;
    size_t len;
    int rc;

    *what = "its key is malformed";
    if (k->mv_size != CHUNK_KEY)
        return PL_ECORRUPT;
    inc = (const uint8_t *)k->mv_data + (t->inc_first ? 0 : 4);
    if (!cx->loaded || memcmp(cx->inc, inc, INC_KEY) != 0) {
        if ((rc = load_windows(txn, t, inc, cx)))
            return rc;
    }
    if (!(w = find_window(cx, get_be64((const uint8_t *)k->mv_data + 16))) || (w->flags & WIN_L2) != level)
        return 0; /* no such window, or being merged: the readers skip it too */
    group_iter_init(&it, v);
    while ((rc = group_next(&it, &low, &data, &len)) == 1) {
        if (low >= (1u << shift)) {
            *what = "a type of the group is out of range";
            return PL_ECORRUPT;
        }
        if (chunk_decode(data, len, w->n, w->n, c, b) != 0) {
            *what = "a type's points do not decode";
            return PL_ECORRUPT;
        }
    }
    *what = "a type's entry runs past the value";
    return rc;
}

/* Decodes one record of a table (not chunks); *what says what failed. */
static int check_value(const struct tables *t, int kind, const MDB_val *k, const MDB_val *v,
                       struct window *w, const char **what)
{
    struct packed pk;

    switch (kind) {
    case T_PROCS:
        *what = "its key is not a 12-byte incarnation";
        if (k->mv_size != INC_KEY)
            return PL_ECORRUPT;
        *what = "the incarnation record has a size no schema wrote";
        return PROC_REC_SIZE_OK(v->mv_size) ? 0 : PL_ECORRUPT;
    case T_TYPES:
        *what = "its key is not a 4-byte type id";
        if (k->mv_size != 4)
            return PL_ECORRUPT;
        *what = "the type name is empty or holds a NUL byte";
        return v->mv_size && !memchr(v->mv_data, 0, v->mv_size) ? 0 : PL_ECORRUPT;
    case T_LOG:
    case T_SNAP: {
        size_t klen = kind == T_LOG ? LOG_KEY : SNAP_KEY;
        uint32_t first;

        *what = "its key is malformed";
        if (k->mv_size != klen)
            return PL_ECORRUPT;
        first = get_be32((const uint8_t *)k->mv_data + klen - 4);
        *what = "its type counts do not decode";
        if (t->packed)
            return packed_open(&pk, first, v);
        return v->mv_size % (first >= WIDE_BASE ? WIDE_ENTRY : LOG_ENTRY) ? PL_ECORRUPT : 0;
    }
    case T_WINDOWS:
        *what = "the window's sample times do not decode";
        return window_decode(k, v, w);
    case T_MEMORY:
        *what = "its key is malformed";
        if (k->mv_size != MEMORY_KEY)
            return PL_ECORRUPT;
        *what = "the memory figures are shorter than 24 bytes";
        return v->mv_size >= MEMORY_VALUE ? 0 : PL_ECORRUPT;
    case T_ROUTES: {
        const uint8_t *p = v->mv_data, *end = p + v->mv_size;
        uint64_t x;
        size_t used, fields = 0;

        *what = "its key is malformed";
        if (k->mv_size != ROUTES_KEY)
            return PL_ECORRUPT;
        /* Part 0: a count, then (every part) pairs of route id and requests. */
        *what = "its requests by route do not decode";
        if (((const uint8_t *)k->mv_data)[INC_KEY + 8] == 0) {
            if (!(used = pl_varint_get(p, end, &x)))
                return PL_ECORRUPT;
            p += used;
        }
        for (; p < end; p += used, fields++)
            if (!(used = pl_varint_get(p, end, &x)))
                return PL_ECORRUPT;
        return fields % 2 ? PL_ECORRUPT : 0;
    }
    }
    return 0;
}

/* Decodes every record of the tables in t, counting those that do not
 * decode into d, until deadline (monotonic ms; 0: none), past which it
 * stops and sets d->incomplete. 0, or an LMDB error from reading. */
static int scan_records(MDB_txn *txn, const struct tables *t, double deadline, pl_store_damage *d)
{
    size_t seen = 0;
    struct chunk_ctx cw = {{0}, 0, NULL, 0, 0};
    struct window w;
    int64_t c[WINDOW2], b[WINDOW2];
    int rc = 0;

    for (int kind = 0; kind < T_COUNT && rc == 0; kind++) {
        MDB_cursor *cur = NULL;
        MDB_val k, v;

        if (!t->open[kind])
            continue;
        cw.loaded = 0;
        if ((rc = mdb_cursor_open(txn, t->dbi[kind], &cur)))
            break;
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            const char *what = "";
            int bad = kind >= T_CHUNKS ? check_chunk(txn, t, kind, &k, &v, &cw, c, b, &what)
                                       : check_value(t, kind, &k, &v, &w, &what);

            if (bad == PL_ECORRUPT)
                note_damage(d, t, kind, &k, what);
            else if (bad) {
                rc = bad;
                break;
            }
            if (deadline > 0 && ++seen % 4096 == 0 && mono_ms() > deadline) {
                d->incomplete = 1;
                break;
            }
        }
        if (rc == MDB_NOTFOUND)
            rc = 0;
        mdb_cursor_close(cur);
        if (d->incomplete)
            break;
    }
    free(cw.wins);
    return rc;
}

/* Opens the decoded tables by name in txn. A store of a schema this code
 * does not know is left alone (nothing opened: a newer pyloot's records are
 * not ours to judge). Returns 0, PL_EDAMAGED with *missing naming a table
 * that every store of its schema has (the read-only open needs it too), or
 * an LMDB error. */
static int open_tables(MDB_txn *txn, struct tables *t, const char **missing)
{
    static const char *const names[T_COUNT] = {"procs", "types", "log", "snap", "windows", "memory", "routes",
                                               "ichunks", "ichunks2"};
    static const char *const others[] = {"typenames", "mailbox"};
    MDB_dbi meta, dbi;
    MDB_val k = {6, "schema"}, v;
    uint32_t schema = 0;
    int rc = mdb_dbi_open(txn, "meta", 0, &meta);

    memset(t, 0, sizeof *t);
    *missing = NULL;
    if (rc == MDB_NOTFOUND) {
        /* No meta: an environment pyloot never set up, unless it holds our tables. */
        rc = mdb_dbi_open(txn, "procs", 0, &dbi);
        if (rc == 0) {
            *missing = "meta";
            return PL_EDAMAGED;
        }
        return rc == MDB_NOTFOUND || rc == MDB_INCOMPATIBLE ? 0 : rc;
    }
    if (rc == 0 && (rc = mdb_get(txn, meta, &k, &v)) == 0 && v.mv_size == 4)
        memcpy(&schema, v.mv_data, 4);
    if (rc == MDB_NOTFOUND)
        return 0; /* meta without a schema yet: nothing written */
    if (rc)
        return rc;
    if (schema < SCHEMA_OLDEST || schema > SCHEMA_VERSION)
        return 0;
    t->packed = t->inc_first = schema >= PACKED_SCHEMA;
    for (int kind = 0; kind < T_COUNT; kind++) {
        t->name[kind] = names[kind];
        if (kind == T_MEMORY && schema < MEMORY_SCHEMA)
            continue; /* schema 5 added it */
        if (kind == T_ROUTES && schema < ROUTES_SCHEMA)
            continue; /* schema 6 added it */
        if (kind >= T_CHUNKS && !t->inc_first)
            t->name[kind] = kind == T_CHUNKS ? "chunks" : "chunks2";
        rc = mdb_dbi_open(txn, t->name[kind], 0, &t->dbi[kind]);
        if (rc == MDB_NOTFOUND || rc == MDB_INCOMPATIBLE) {
            *missing = t->name[kind];
            return PL_EDAMAGED;
        }
        if (rc)
            return rc;
        t->open[kind] = 1;
    }
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        rc = mdb_dbi_open(txn, others[i], 0, &dbi);
        if (rc == MDB_NOTFOUND || rc == MDB_INCOMPATIBLE) {
            *missing = others[i];
            return PL_EDAMAGED;
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* See verify.h. */
int pl_store_check_records(pl_store *s, pl_store_damage *d)
{
    MDB_txn *txn = NULL;
    const char *missing;
    struct tables t;
    int rc;

    memset(d, 0, sizeof *d);
    if ((rc = txn_begin(s, 0, &txn)))
        return rc;
    rc = open_tables(txn, &t, &missing);
    if (rc == 0)
        rc = scan_records(txn, &t, 0, d);
    txn_abort(s, txn);
    return rc;
}

/* pl_store_walk, decoding records until PL_VERIFY_DECODE_MS after the page
 * checks or until not_after (monotonic ms), whichever comes first. */
static int walk_store(const char *path, char *why, size_t len, double not_after)
{
    double deadline;
    MDB_env *env = NULL;
    MDB_envinfo info;
    MDB_stat est;
    struct stat st;
    struct walk w;
    struct tables tables;
    pl_store_damage damage;
    const char *missing = NULL;
    char data[4096];
    int rc;

    memset(&w, 0, sizeof w);
    memset(&damage, 0, sizeof damage);
    w.why = why;
    w.len = len;
    if (len)
        why[0] = 0;
    if ((size_t)snprintf(data, sizeof data, "%s/data.mdb", path) >= sizeof data) {
        rc = ENAMETOOLONG;
        goto out;
    }
    if ((rc = mdb_env_create(&env)) || (rc = mdb_env_set_maxdbs(env, 256)))
        goto out;
    rc = mdb_env_open(env, path, MDB_RDONLY | MDB_NOTLS, 0600);
    if (rc) {
        snprintf(why, len, "opening it: %s", pl_strerror(rc));
        goto out;
    }
    if (stat(data, &st) != 0) {
        rc = errno;
        goto out;
    }
    mdb_env_info(env, &info);
    mdb_env_stat(env, &est);
    w.last_pgno = info.me_last_pgno;
    if ((uint64_t)(info.me_last_pgno + 1) * est.ms_psize > (uint64_t)st.st_size) {
        rc = PL_EDAMAGED;
        snprintf(why, len, "data.mdb is %lld bytes but its pages reach %llu (truncated)",
                 (long long)st.st_size, (unsigned long long)(info.me_last_pgno + 1) * est.ms_psize);
        goto out;
    }
    if ((rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &w.txn))) {
        snprintf(why, len, "beginning a read: %s", pl_strerror(rc));
        goto out;
    }
    rc = walk_dbi(&w, FREE_DBI, "(free pages)");
    if (!rc)
        rc = walk_named(&w);
    /* The pages are sound: now what the readers make of the values. */
    deadline = mono_ms() + PL_VERIFY_DECODE_MS;
    if (deadline > not_after)
        deadline = not_after;
    if (!rc && (rc = open_tables(w.txn, &tables, &missing)) == PL_EDAMAGED)
        snprintf(why, len, "table %s is missing", missing);
    else if (!rc && (rc = scan_records(w.txn, &tables, deadline, &damage)) == 0 && damage.records) {
        rc = PL_ECORRUPT;
        snprintf(why, len, "%llu record%s could not be read (first: %s)", (unsigned long long)damage.records,
                 damage.records == 1 ? "" : "s", damage.first);
    } else if (rc && rc != PL_EDAMAGED && !is_damage(rc) && !*why) {
        snprintf(why, len, "decoding the records: %s", pl_strerror(rc));
    }
    mdb_txn_abort(w.txn);
out:
    if (env)
        mdb_env_close(env);
    if (rc && is_damage(rc))
        rc = PL_EDAMAGED;
    return rc;
}

/* See verify.h. */
int pl_store_walk(const char *path, char *why, size_t len)
{
    return walk_store(path, why, len, mono_ms() + PL_VERIFY_DECODE_MS);
}

/* ------------------------------------------------------------ the child */

static const char *signal_name(int sig)
{
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGILL: return "SIGILL";
    case SIGFPE: return "SIGFPE";
    case SIGABRT: return "SIGABRT";
    case SIGKILL: return "SIGKILL";
    case SIGTERM: return "SIGTERM";
    case SIGALRM: return "SIGALRM";
    default: return "a signal";
    }
}

/* In the child: walk, report "<code> <why>" on fd, _exit. Never returns. */
static void child_main(const char *path, int fd, unsigned timeout_ms)
{
    char why[480], line[512];
    int rc, n;

    /* Never outlive the bound, nor the parent. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    alarm(timeout_ms / 1000 + 2);
    /* The decoding leaves a quarter of the bound: a slow page walk must
     * not turn into a timeout because of it. */
    rc = walk_store(path, why, sizeof why, mono_ms() + timeout_ms * 0.75);
    n = snprintf(line, sizeof line, "%d %s", rc, why);
    if (n > 0 && write(fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1) < 0)
        rc = EIO;
    _exit(rc == 0 ? 0 : 1);
}

/* Reads what the child reported (appending to buf). */
static void drain(int fd, char *buf, size_t cap, size_t *used)
{
    ssize_t r;

    while (*used + 1 < cap && (r = read(fd, buf + *used, cap - 1 - *used)) > 0)
        *used += (size_t)r;
    buf[*used] = 0;
}

/* Turns the child's end (exit status or signal) and its report into a code. */
static int judge(int status, int reaped, const char *report, char *why, size_t len)
{
    const char *sp = strchr(report, ' ');
    int code = 0, have = sscanf(report, "%d", &code) == 1;

    if (reaped && WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        snprintf(why, len, "reading it crashed the checking process (%s)", signal_name(sig));
        if (sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGABRT)
            return PL_EDAMAGED;
        return EINTR;
    }
    if (!have) {
        /* Reaped by someone else (SIGCHLD ignored) and no report: it died. */
        snprintf(why, len, "the checking process ended without a report");
        return reaped && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : PL_EDAMAGED;
    }
    snprintf(why, len, "%s", sp ? sp + 1 : "");
    return code;
}

/* See verify.h. */
int pl_store_verify(const char *path, unsigned timeout_ms, char *why, size_t len)
{
    char report[512];
    size_t used = 0;
    int fds[2], status = 0, reaped = 0, rc;
    double deadline;
    pid_t pid;

    if (len)
        why[0] = 0;
    report[0] = 0;
    if (!timeout_ms)
        timeout_ms = PL_VERIFY_TIMEOUT_MS;
    if (pipe2(fds, O_CLOEXEC) != 0)
        return errno;
    pid = fork();
    if (pid < 0) {
        rc = errno;
        close(fds[0]);
        close(fds[1]);
        snprintf(why, len, "could not start the checking process: %s", strerror(rc));
        return rc;
    }
    if (pid == 0) {
        close(fds[0]);
        child_main(path, fds[1], timeout_ms);
    }
    close(fds[1]);
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    deadline = mono_ms() + timeout_ms;
    for (;;) {
        struct pollfd p = {fds[0], POLLIN, 0};
        pid_t w = waitpid(pid, &status, WNOHANG);

        if (w == pid || (w < 0 && errno == ECHILD)) {
            reaped = w == pid;
            break;
        }
        if (mono_ms() >= deadline) {
            kill(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
            close(fds[0]);
            snprintf(why, len, "checking it took more than %u s", timeout_ms / 1000);
            return PL_ETIMEOUT;
        }
        if (poll(&p, 1, 20) > 0)
            drain(fds[0], report, sizeof report, &used);
    }
    drain(fds[0], report, sizeof report, &used);
    close(fds[0]);
    return judge(status, reaped, report, why, len);
}
