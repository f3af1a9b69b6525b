/* Incarnations pushed by workers of other hosts (remote mode). Each is
 * stored under a start the store assigns (REMOTE_START plus a counter in
 * meta "remote"), so pushed incarnations never collide with local ones nor
 * with each other, whatever their pids and starts; the procs record keeps
 * the host and the worker's own start, which is how a push finds its
 * incarnation again, after a restart of the server too. */
#include "store_int.h"

#include <errno.h>
#include <string.h>

#include "pyloot/error.h"

/* Finds, in txn, the stored incarnation of (host, pid, worker_start):
 * 0 with *inc and *rec filled, PL_ENOTFOUND, or an LMDB code. The pushed
 * incarnations of one pid are the procs keys from pid + REMOTE_START on. */
static int find_remote(pl_store *s, MDB_txn *txn, const char *host, uint32_t pid, uint64_t worker_start,
                       pl_incarnation *inc, struct proc_rec *rec)
{
    MDB_cursor *cur = NULL;
    uint8_t kb[INC_KEY];
    MDB_val k = {INC_KEY, kb}, v;
    pl_incarnation first = {pid, REMOTE_START};
    int rc;

    inc_key(kb, &first);
    rc = mdb_cursor_open(txn, s->procs, &cur);
    if (rc)
        return rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != INC_KEY)
            continue;
        inc_from_key(inc, k.mv_data);
        if (inc->pid != pid)
            break;
        if (rec_decode(&v, rec) == 0 && rec->worker_start == worker_start &&
            strncmp(rec->host, host, sizeof rec->host) == 0)
            break;
    }
    if (rc == 0 && inc->pid != pid)
        rc = MDB_NOTFOUND;
    if (rc == MDB_NOTFOUND)
        rc = PL_ENOTFOUND;
    mdb_cursor_close(cur);
    return rc;
}

/* Finds a pushed incarnation (see store.h). */
int remote_find_unguarded(pl_store *s, const char *host, uint32_t pid, uint64_t worker_start, pl_incarnation *out)
{
    MDB_txn *txn = NULL;
    struct proc_rec rec;
    int rc = txn_begin(s, 0, &txn);

    if (rc)
        return rc;
    rc = find_remote(s, txn, host, pid, worker_start, out, &rec);
    if (rc == 0 && rec.ended_ms)
        rc = PL_ENOTFOUND;
    txn_abort(s, txn);
    return rc;
}

static void copy_cstr(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);

    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Registers or refreshes a pushed incarnation inside txn (see store_int.h). */
int remote_register_txn(pl_store *s, MDB_txn *txn, const pl_proc_info *info, int64_t now_ms,
                        pl_incarnation *inc, struct proc_rec *rec)
{
    MDB_val k, v;
    uint64_t n = 0;
    int rc;

    if (!info->host[0] || !info->inc.pid || now_ms <= 0)
        return PL_EBADARG;
    rc = find_remote(s, txn, info->host, info->inc.pid, info->inc.start, inc, rec);
    if (rc == PL_ENOTFOUND) {
        k.mv_size = 6;
        k.mv_data = "remote";
        rc = mdb_get(txn, s->meta, &k, &v);
        if (rc == 0 && v.mv_size == 8)
            memcpy(&n, v.mv_data, 8);
        else if (rc != MDB_NOTFOUND && rc != 0)
            goto end;
        n++;
        v.mv_size = 8;
        v.mv_data = &n;
        rc = mdb_put(txn, s->meta, &k, &v, 0);
        if (rc)
            goto end;
        memset(rec, 0, sizeof *rec);
        inc->pid = info->inc.pid;
        inc->start = REMOTE_START | (n & ~REMOTE_START);
        rec->first_seen_ms = now_ms;
        rec->worker_start = info->inc.start;
        copy_cstr(rec->host, sizeof rec->host, info->host);
    } else if (rc) {
        goto end;
    }
    copy_cstr(rec->argv, sizeof rec->argv, info->argv);
    rec->interval_ms = info->interval_ms;
    rec->rss = info->rss;
    rec->collection_us = info->stats.collection_us;
    rec->gil_held_us = info->stats.gil_held_us;
    if (now_ms > rec->last_seen_ms)
        rec->last_seen_ms = now_ms;
    rc = rec_put(s, txn, inc, rec);
end:
    return rc;
}

/* Registers or refreshes a pushed incarnation (see store.h). */
int remote_register_unguarded(pl_store *s, const pl_proc_info *info, int64_t now_ms, pl_incarnation *out)
{
    MDB_txn *txn = NULL;
    struct proc_rec rec;
    pl_incarnation inc;
    int rc;

    if (!info->host[0] || !info->inc.pid || now_ms <= 0)
        return PL_EBADARG;
    rc = txn_begin(s, 1, &txn);
    if (rc)
        return rc;
    rc = remote_register_txn(s, txn, info, now_ms, &inc, &rec);
    rc = txn_end(s, txn, rc);
    if (rc == 0)
        *out = inc;
    return rc;
}
