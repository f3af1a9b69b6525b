/* The LMDB environment once open (open.c opens it): transactions (with the
 * resize lock), store-wide stats, and ranged and batched deletes. */
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

/* ----------------------------------------------------------- stats */

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
                      s->log, s->windows, s->chunks, s->chunks2, s->snap, s->mailbox, s->witness,
                      s->memory, s->routes, s->routeids, s->routenames};
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
