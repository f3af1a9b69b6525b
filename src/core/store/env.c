/* The LMDB environment: open/close/forget, transactions (with the resize
 * lock), store-wide stats, and ranged and batched deletes. */
#include "store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#include "pyloot/error.h"

/* Begins a transaction on the calling thread, adopting a map size grown by
 * another process when LMDB asks for it. On success the resize lock is
 * read-held until txn_commit/txn_abort. */
int txn_begin(pl_store *s, int write, MDB_txn **txn)
{
    int rc = EINVAL, tries;

    if (write && s->read_only) {
        rc = EROFS;
        goto out;
    }
    for (tries = 0; tries < 4; tries++) {
        pthread_rwlock_rdlock(&s->resize_lock);
        guard_lock_taken(s, 1);
        rc = mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, txn);
        if (rc == 0) {
            guard_txn_begun(s, *txn, write);
            goto out;
        }
        guard_lock_taken(s, 0);
        pthread_rwlock_unlock(&s->resize_lock);
        if (rc != MDB_MAP_RESIZED)
            goto out;
        pthread_rwlock_wrlock(&s->resize_lock);
        mdb_env_set_mapsize(s->env, 0);
        guard_map_update(s); /* a remap may move the map */
        pthread_rwlock_unlock(&s->resize_lock);
    }
out:
    return rc;
}

/* LMDB reports a short write as EIO; a short write on a file system with
 * less than 1 MiB free is the device filling up, so say ENOSPC, the error
 * the user can act on. */
static int short_write_cause(const pl_store *s, int rc)
{
    struct statvfs fs;

    if (rc == EIO && statvfs(s->path, &fs) == 0 &&
        (uint64_t)fs.f_bavail * fs.f_frsize < ((uint64_t)1 << 20))
        rc = ENOSPC;
    return rc;
}

/* Commits txn and releases the resize lock; returns mdb_txn_commit's code
 * (EIO from a short write on a full device as ENOSPC). */
int txn_commit(pl_store *s, MDB_txn *txn)
{
    int rc = mdb_txn_commit(txn);

    guard_txn_ended(s, txn);
    guard_lock_taken(s, 0);
    pthread_rwlock_unlock(&s->resize_lock);
    return short_write_cause(s, rc);
}

/* Ends a write transaction: commits it when rc is 0, else aborts it.
 * Returns the commit's result, or rc. */
int txn_end(pl_store *s, MDB_txn *txn, int rc)
{
    if (rc == 0)
        return txn_commit(s, txn);
    txn_abort(s, txn);
    return rc;
}

/* Aborts txn (NULL is a no-op) and releases the resize lock. */
void txn_abort(pl_store *s, MDB_txn *txn)
{
    if (txn) {
        mdb_txn_abort(txn);
        guard_txn_ended(s, txn);
        guard_lock_taken(s, 0);
        pthread_rwlock_unlock(&s->resize_lock);
    }
}

/* 1 when rc says the map is full (MDB_MAP_FULL), else 0. */
int is_map_full(int rc)
{
    return rc == MDB_MAP_FULL || rc == MDB_TXN_FULL;
}

/* ----------------------------------------------------------- env, stats */

/* Opens the chunk tables (open_dbs' transaction, s->schema set):
 * ichunks and ichunks2, or chunks and chunks2 of an older store opened
 * read-only. */
static int open_chunks(pl_store *s, MDB_txn *txn, unsigned flags)
{
    int old = !layout4(s);
    int rc = mdb_dbi_open(txn, old ? "chunks" : "ichunks", flags, &s->chunks);

    return rc ? rc : mdb_dbi_open(txn, old ? "chunks2" : "ichunks2", flags, &s->chunks2);
}

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
        (rc = mdb_dbi_open(txn, "snap", flags, &s->snap)) ||
        (rc = mdb_dbi_open(txn, "mailbox", flags, &s->mailbox)))
        goto abort;
    /* Added after schema 1 without a bump: older readers ignore it, and a
     * read-only open of an older store has no witnesses. */
    rc = mdb_dbi_open(txn, "witness", flags, &s->witness);
    if (rc == MDB_NOTFOUND && s->read_only)
        s->witness = 0;
    else if (rc)
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
        s->schema = SCHEMA_VERSION;
    } else if (rc) {
        goto abort;
    } else {
        if (v.mv_size != 4) {
            rc = PL_ESCHEMA;
            goto abort;
        }
        memcpy(&version, v.mv_data, 4);
        if (version < SCHEMA_OLDEST || version > SCHEMA_VERSION) {
            rc = PL_ESCHEMA;
            goto abort;
        }
        if (version < SCHEMA_VERSION && !s->read_only) {
            /* Migration: schemas 2 and 3 only appended fields to procs
             * records (worker_start; collection_us, gil_held_us), which
             * rec_decode reads at any of the sizes; records are rewritten
             * at the new size when next updated. Schema 4 changed the
             * layout of the log, the snapshots and the chunk tables:
             * migrate_layout4 rewrites them here. */
            if (version < PACKED_SCHEMA && (rc = migrate_layout4(s, txn)))
                goto abort;
            memcpy(schema, &(uint32_t){SCHEMA_VERSION}, 4);
            v.mv_data = schema;
            v.mv_size = 4;
            rc = mdb_put(txn, s->meta, &k, &v, 0);
            if (rc)
                goto abort;
        }
        s->schema = version < SCHEMA_VERSION && s->read_only ? version : SCHEMA_VERSION;
    }
    rc = open_chunks(s, txn, flags);
    if (rc)
        goto abort;
    rc = txn_commit(s, txn);
    txn = NULL;
    goto out;
abort:
    txn_abort(s, txn);
out:
    return rc;
}

/* The part of the open that reads the map (guarded by pl_store_open):
 * clears dead readers and opens (creating, migrating) the databases. */
int open_unguarded(pl_store *s)
{
    int rc, tries, dead = 0;

    /* Readers left behind by killed processes pin old pages; clear them. */
    mdb_reader_check(s->env, &dead);
    /* A migration to schema 4 holds a second copy of the chunks until its
     * commit: when the map is too small for that, grow it and try again. */
    for (tries = 0; (rc = open_dbs(s)) == MDB_MAP_FULL && !s->read_only && tries < 3; tries++) {
        MDB_envinfo info;

        if (mdb_env_info(s->env, &info) || mdb_env_set_mapsize(s->env, info.me_mapsize * 2))
            break;
        guard_map_update(s);
    }
    return rc;
}

/* Opens the store (see store.h). MDB_NOMETASYNC: the meta page is written
 * but not fsynced at commit; the next commit's data sync covers it. A system
 * crash can lose the last transaction, never corrupt the file, and it saves
 * one of the two fsyncs of every commit. */
int pl_store_open(pl_store **out, const pl_store_options *opt)
{
    return store_open(out, opt, NULL, 0);
}

/* See store_int.h. */
int store_open(pl_store **out, const pl_store_options *opt, char *why, size_t len)
{
    pl_store *s = NULL;
    unsigned flags = MDB_NOTLS | MDB_NOMETASYNC;
    int rc = 0;
    int locks = 0, mapped = 0;

    *out = NULL;
    if (why && len)
        why[0] = 0;
    if (!opt || !opt->path || !*opt->path) {
        rc = PL_EBADARG;
        goto out;
    }
    s = calloc(1, sizeof *s);
    if (!s) {
        rc = ENOMEM;
        goto out;
    }
    s->fd = -1;
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
    /* Its assertions jump through the guard rather than abort() (guard.c). */
    mdb_env_set_assert(s->env, guard_on_assert);
    if ((rc = mdb_env_set_maxdbs(s->env, 16)) ||
        (rc = mdb_env_set_maxreaders(s->env, 1022)) ||
        (rc = mdb_env_set_mapsize(s->env, (size_t)s->map_size)))
        goto fail_env;
    /* mdb_env_open reads the meta pages with pread(), never through the map. */
    if ((rc = mdb_env_open(s->env, s->path, flags, 0600)))
        goto fail_env;
    if ((rc = guard_attach(s)))
        goto fail_env; /* nothing read through the map yet: closing is safe */
    mapped = 1;
    rc = STORE_GUARDED(s, open_unguarded(s));
    if (rc)
        goto fail_env;
    *out = s;
    goto out;
fail_env:
    if (mapped && pl_store_damaged(s, why, len)) {
        /* Abandoned, never closed: see guard.c. Its memory and descriptors
         * are leaked on purpose (the caller moves the store aside). */
        rc = PL_EDAMAGED;
        goto out;
    }
    if (rc == PL_EDAMAGED && why && len)
        pl_store_damaged(s, why, len);
    mdb_env_close(s->env);
fail:
    if (locks) {
        pthread_mutex_destroy(&s->prune_lock);
        pthread_rwlock_destroy(&s->resize_lock);
    }
    free(s->data_path);
    free(s->path);
    free(s);
out:
    return rc;
}

/* Closes the env and frees the handle (see store.h). A handle given up
 * after damage is left as it is: see guard.c. */
void pl_store_close(pl_store *s)
{
    if (s && !pl_store_damaged(s, NULL, 0)) {
        mdb_env_close(s->env);
        pthread_mutex_destroy(&s->prune_lock);
        pthread_rwlock_destroy(&s->resize_lock);
        free(s->data_path);
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

void pl_store_test_schema(pl_store *s, uint32_t schema)
{
    s->schema = schema;
}

/* The byte budget: max_bytes as given, or 3/4 of the map, never more than
 * the map. The map is read each time because another process may have
 * grown it (and this handle adopted the larger size). */
uint64_t max_bytes(pl_store *s)
{
    MDB_envinfo info;
    uint64_t map = s->map_size;

    if (mdb_env_info(s->env, &info) == 0 && info.me_mapsize > map)
        map = info.me_mapsize;
    return !s->max_bytes ? map / 4 * 3 : s->max_bytes < map ? s->max_bytes : map;
}

/* Pages in use: every tree's branch, leaf and overflow pages plus the two
 * meta pages. Free pages (reusable) are not counted. */
uint64_t used_bytes(pl_store *s, MDB_txn *txn)
{
    MDB_dbi dbis[] = {0, 1, s->meta, s->procs, s->types, s->names,
                      s->log, s->windows, s->chunks, s->chunks2, s->snap, s->mailbox, s->witness};
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
int stat_get_unguarded(pl_store *s, pl_store_stat *out)
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
    out->schema = s->schema ? s->schema : SCHEMA_VERSION;
    txn_abort(s, txn);
out:
    return rc;
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
int del_range(MDB_cursor *cur, const uint8_t *lo, size_t lolen, const uint8_t *hi,
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

/* Runs step() in write transactions until it says *done: each call may
 * delete at most `batch` keys. On MDB_MAP_FULL (a delete needs free pages
 * too) the batch shrinks eightfold and the step runs again with retry set. */
int batched_delete(pl_store *s, batch_step step, void *arg)
{
    MDB_txn *txn = NULL;
    size_t batch = DELETE_BATCH;
    int rc, done, retry = 0;

    for (;;) {
        rc = txn_begin(s, 1, &txn);
        if (rc)
            break;
        done = 0;
        rc = txn_end(s, txn, step(s, txn, batch, retry, arg, &done));
        txn = NULL;
        retry = is_map_full(rc) && batch > 1;
        if (retry) {
            batch = batch / 8 ? batch / 8 : 1;
            continue;
        }
        if (rc || done)
            break;
    }
    return rc;
}

struct range {
    MDB_dbi dbi;
    const uint8_t *lo, *hi;
    size_t lolen, hilen;
};

static int range_step(pl_store *s, MDB_txn *txn, size_t batch, int retry, void *arg, int *done)
{
    const struct range *r = arg;
    MDB_cursor *cur = NULL;
    size_t deleted = 0;
    int more = 0, rc = mdb_cursor_open(txn, r->dbi, &cur);

    if (rc == 0)
        rc = del_range(cur, r->lo, r->lolen, r->hi, r->hilen, batch, &deleted, &more);
    mdb_cursor_close(cur);
    *done = !more;
    return rc;
}

/* Deletes the keys in [lo, hi] of `dbi` in batched transactions. */
int purge_range(pl_store *s, MDB_dbi dbi, const uint8_t *lo, size_t lolen,
                const uint8_t *hi, size_t hilen)
{
    struct range r = {dbi, lo, hi, lolen, hilen};

    return batched_delete(s, range_step, &r);
}
