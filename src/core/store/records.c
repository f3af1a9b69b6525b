/* Per-incarnation records: the procs record (register, end, list), log
 * samples, first-sample snapshots and the list of an incarnation's windows. */
#include "store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pyloot/error.h"

/* Reads the procs record of inc; 0, PL_ENOTFOUND, PL_ECORRUPT or an LMDB code. */
int rec_get(pl_store *s, MDB_txn *txn, const pl_incarnation *inc, struct proc_rec *rec)
{
    uint8_t kb[INC_KEY];
    MDB_val k = {INC_KEY, kb}, v;
    int rc;

    inc_key(kb, inc);
    rc = mdb_get(txn, s->procs, &k, &v);
    if (rc == MDB_NOTFOUND)
        rc = PL_ENOTFOUND;
    else if (rc == 0)
        rc = rec_decode(&v, rec);
    return rc;
}

/* Decodes a procs value of schema 5, or of schema 4, 3, 2 or 1 (zero-extended). */
int rec_decode(const MDB_val *v, struct proc_rec *rec)
{
    if (!PROC_REC_SIZE_OK(v->mv_size))
        return PL_ECORRUPT;
    memset(rec, 0, sizeof *rec);
    memcpy(rec, v->mv_data, v->mv_size);
    return 0;
}

/* Liveness of an incarnation (see store_int.h). */
int rec_alive(const pl_incarnation *inc, const struct proc_rec *rec, int64_t now_ms)
{
    if (rec->ended_ms)
        return 0;
    if (inc->start & REMOTE_START) {
        int64_t window = (int64_t)rec->interval_ms * REMOTE_BEATS;
        if (window < REMOTE_MIN_MS)
            window = REMOTE_MIN_MS;
        return now_ms - rec->last_seen_ms < window;
    }
    return pl_proc_alive(inc);
}

/* Writes the procs record of inc; 0 or an LMDB code. */
int rec_put(pl_store *s, MDB_txn *txn, const pl_incarnation *inc,
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

/* Reads the procs record of inc, lets edit() change it and writes it back,
 * in one write transaction. With `create`, a missing record starts zeroed
 * (edit is told so); without, a missing record is PL_ENOTFOUND. */
int update_rec(pl_store *s, const pl_incarnation *inc, int create,
               void (*edit)(struct proc_rec *rec, int created, const void *arg), const void *arg)
{
    MDB_txn *txn = NULL;
    struct proc_rec rec;
    int rc, created = 0;

    rc = txn_begin(s, 1, &txn);
    if (rc)
        goto out;
    rc = rec_get(s, txn, inc, &rec);
    if (rc == PL_ENOTFOUND && create) {
        memset(&rec, 0, sizeof rec);
        created = 1;
        rc = 0;
    }
    if (rc == 0) {
        edit(&rec, created, arg);
        rc = rec_put(s, txn, inc, &rec);
    }
    rc = txn_end(s, txn, rc);
out:
    return rc;
}

static void edit_register(struct proc_rec *rec, int created, const void *arg)
{
    const pl_proc_info *info = arg;

    if (created)
        rec->first_seen_ms = info->first_seen_ms ? info->first_seen_ms : pl_now_ms();
    copy_cstr(rec->host, sizeof rec->host, info->host);
    copy_cstr(rec->argv, sizeof rec->argv, info->argv);
    rec->interval_ms = info->interval_ms;
    rec->last_seen_ms = info->last_seen_ms ? info->last_seen_ms : pl_now_ms();
    if (rec->last_seen_ms < rec->first_seen_ms)
        rec->last_seen_ms = rec->first_seen_ms;
    rec->ended_ms = 0;
    rec->end_how = PL_END_NONE;
    rec->end_value = 0;
    rec->rss = info->rss;
}

/* Writes or refreshes this incarnation's procs record (see store.h). A
 * refresh keeps first_seen and the sample bookkeeping, and clears `ended`. */
int register_unguarded(pl_store *s, const pl_proc_info *info)
{
    return update_rec(s, &info->inc, 1, edit_register, info);
}

struct end_arg {
    int64_t now_ms;
    int how, value;
};

/* An end already written (by the process itself on its way out) keeps its
 * time; a status from the parent is added to it. */
static void edit_end(struct proc_rec *rec, int created, const void *arg)
{
    const struct end_arg *e = arg;

    (void)created;
    if (!rec->ended_ms) {
        rec->ended_ms = e->now_ms > 0 ? e->now_ms : 1;
        if (e->now_ms > rec->last_seen_ms)
            rec->last_seen_ms = e->now_ms;
    }
    if (e->how != PL_END_NONE) {
        rec->end_how = e->how;
        rec->end_value = e->value;
    }
}

/* Marks an incarnation as ended, with how when known (see store.h). */
int end_unguarded(pl_store *s, const pl_incarnation *inc, int64_t now_ms, int how, int value)
{
    struct end_arg e = {now_ms, how, value};

    if (how < PL_END_NONE || how > PL_END_KILLED)
        return PL_EBADARG;
    return update_rec(s, inc, 0, edit_end, &e);
}

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
int read_incs(pl_store *s, MDB_txn *txn, struct inc_entry **out, size_t *n_out)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    struct inc_entry *list = NULL;
    size_t n = 0, cap = 0;
    int rc;

    rc = mdb_cursor_open(txn, s->procs, &cur);
    if (rc)
        goto out;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != INC_KEY || !PROC_REC_SIZE_OK(v.mv_size))
            continue;
        rc = array_reserve(&list, &cap, n + 1, sizeof *list, 16);
        if (rc)
            goto out;
        inc_from_key(&list[n].inc, k.mv_data);
        rec_decode(&v, &list[n].rec);
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

/* Sets each entry's alive flag with rec_alive(). */
void fill_alive(struct inc_entry *list, size_t n)
{
    int64_t now_ms = pl_now_ms();
    size_t i;

    for (i = 0; i < n; i++)
        list[i].alive = rec_alive(&list[i].inc, &list[i].rec, now_ms);
}

/* Lists every stored incarnation (see store.h). */
int procs_unguarded(pl_store *s, pl_proc_info **out, size_t *n)
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
        p->remote = (list[i].inc.start & REMOTE_START) != 0;
        p->worker_start = r->worker_start;
        p->stats.collection_us = r->collection_us;
        p->stats.gil_held_us = r->gil_held_us;
        p->end_how = r->end_how;
        p->end_value = r->end_value;
    }
    *out = infos;
    *n = count;
out:
    free(list);
    return rc;
}

/* Lists the distinct log times of an incarnation, ascending. *times is
 * malloc'ed. */
int log_times(pl_store *s, MDB_txn *txn, const uint8_t *inck, int64_t **times, size_t *n)
{
    MDB_cursor *cur = NULL;
    uint8_t lo[LOG_KEY];
    MDB_val k = {LOG_KEY, lo}, v;
    int64_t *list = NULL;
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
        rc = array_reserve(&list, &cap, count + 1, sizeof *list, 64);
        if (rc)
            goto out;
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

/* See store_int.h. */
int put_sample_parts(MDB_txn *txn, MDB_dbi dbi, int packed, const uint8_t *prefix, size_t plen,
                     const pl_type_count *e, size_t n)
{
    uint8_t kb[LOG_KEY], val[PART_MAX];
    MDB_val k, v;
    size_t first = 0, m, i, n_wide = 0;
    uint32_t wide_part = WIDE_BASE;
    int rc = 0;

    memcpy(kb, prefix, plen);
    k.mv_size = plen + 4;
    k.mv_data = kb;
    v.mv_data = val;
    if (packed) {
        /* An empty sample is one empty value, so that its time is listed. */
        do {
            m = 0;
            v.mv_size = 1;
            val[0] = 0;
            if (n)
                v.mv_size = packed_encode(val, e + first, n - first, &m);
            put_be32(kb + plen, n ? e[first].type_id : 0);
            rc = mdb_put(txn, dbi, &k, &v, 0);
            first += m;
        } while (rc == 0 && first < n);
        goto out;
    }
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

/* Writes one sample (sorted, ids already checked) into the log inside txn
 * and updates *rec, the procs record of inc as read in txn, then writes it
 * back. A time not after the previous sample is moved to 1 ms after it. */
int log_append(pl_store *s, MDB_txn *txn, const pl_incarnation *inc, int64_t time_ms,
               const pl_type_count *sorted, size_t n, struct proc_rec *rec)
{
    uint8_t inck[INC_KEY], kb[LOG_KEY];
    int rc;

    inc_key(inck, inc);
    /* Times are strictly increasing per incarnation (they are part of the
     * key); a clock that steps back is clamped rather than losing data. */
    if (rec->last_time && time_ms <= rec->last_time)
        time_ms = rec->last_time + 1;
    log_key(kb, inck, (uint64_t)time_ms, 0);
    rc = put_sample_parts(txn, s->log, layout4(s), kb, INC_KEY + 8, sorted, n);
    if (rc)
        goto out;
    rec->samples++;
    rec->n_log++;
    rec->last_time = time_ms;
    if (!rec->first_time)
        rec->first_time = time_ms;
    if (time_ms > rec->last_seen_ms)
        rec->last_seen_ms = time_ms;
    rc = rec_put(s, txn, inc, rec);
out:
    return rc;
}

/* 1 when every id of a sorted sample was given out by pl_store_type_ids
 * (compaction, merges and deletions walk the groups up to the highest id). */
int ids_in_range(pl_store *s, MDB_txn *txn, const pl_type_count *sorted, size_t n)
{
    return !n || (sorted[0].type_id != 0 && sorted[n - 1].type_id <= max_type_id(s, txn));
}

/* Replaces the first-sample snapshot of an incarnation (smp NULL: deletes
 * it). */
int snap_put(pl_store *s, MDB_txn *txn, const uint8_t *inck, const struct sample *smp)
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
        rc = put_sample_parts(txn, s->snap, layout4(s), inck, INC_KEY, smp->e, smp->n);
    return rc;
}

/* Adds the first-sample snapshot counts of incarnation inck, times
 * `sign`, into acc (and its bytes into bacc unless NULL). */
int snap_add(pl_store *s, MDB_txn *txn, const uint8_t *inck, int packed, uint32_t max_id, int64_t *acc,
             int64_t *bacc, int sign)
{
    MDB_cursor *cur = NULL;
    MDB_val k = {INC_KEY, (void *)inck}, val;
    int rc;

    rc = mdb_cursor_open(txn, s->snap, &cur);
    if (rc)
        goto out;
    for (rc = mdb_cursor_get(cur, &k, &val, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &val, MDB_NEXT)) {
        const uint8_t *p = val.mv_data;
        int wide;
        size_t esize, m, i;

        if (k.mv_size != SNAP_KEY || memcmp(k.mv_data, inck, INC_KEY) != 0)
            break;
        if (packed) {
            struct packed pk;

            rc = packed_open(&pk, get_be32((const uint8_t *)k.mv_data + INC_KEY), &val);
            if (rc)
                goto out;
            for (i = 0; i < pk.n; i++) {
                uint32_t id;
                uint64_t c, b;

                packed_get(&pk, i, &id, &c, &b);
                if (id <= max_id) {
                    acc[id] += sign * (int64_t)c;
                    if (bacc)
                        bacc[id] += sign * (int64_t)b;
                }
            }
            continue;
        }
        /* Marked narrow entries are skipped; their wide part comes later. */
        wide = get_be32((const uint8_t *)k.mv_data + INC_KEY) >= WIDE_BASE;
        esize = wide ? WIDE_ENTRY : LOG_ENTRY;
        m = val.mv_size / esize;
        for (i = 0; i < m; i++, p += esize) {
            uint32_t id, c32, b32;
            uint64_t c, b;

            memcpy(&id, p, 4);
            if (wide) {
                memcpy(&c, p + 4, 8);
                memcpy(&b, p + 12, 8);
            } else {
                memcpy(&c32, p + 4, 4);
                memcpy(&b32, p + 8, 4);
                c = c32 == MARK ? 0 : c32;
                b = c32 == MARK ? 0 : b32;
            }
            if (id <= max_id) {
                acc[id] += sign * (int64_t)c;
                if (bacc)
                    bacc[id] += sign * (int64_t)b;
            }
        }
    }
    if (rc == MDB_NOTFOUND)
        rc = 0;
out:
    mdb_cursor_close(cur);
    return rc;
}

/* Finds the full values of a marked entry in the wide parts of log sample
 * (inck, t), with its own cursor (rare: counts or bytes of 2^32 or more). */
int wide_lookup(MDB_txn *txn, MDB_dbi dbi, const uint8_t *inck, int64_t t, uint32_t id, uint64_t *count,
                uint64_t *bytes)
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

/* Steps cur through the parts of one chunk, whose part-0 key is lo: first
 * seeks to part 0, else moves to the next part. 0 with *val set,
 * MDB_NOTFOUND after the last part, or an LMDB code. */
int chunk_part(MDB_cursor *cur, const uint8_t *lo, int first, MDB_val *val)
{
    MDB_val k = {CHUNK_KEY, (void *)lo};
    int rc = mdb_cursor_get(cur, &k, val, first ? MDB_SET_RANGE : MDB_NEXT);

    if (rc == 0 && (k.mv_size != CHUNK_KEY || memcmp(k.mv_data, lo, CHUNK_KEY - 1) != 0))
        rc = MDB_NOTFOUND;
    return rc;
}

/* Reads point `idx` of every type of the window (wtime, flags, n) into smp
 * (sorted by id; zero entries left out). */
int window_sample(pl_store *s, MDB_txn *txn, const uint8_t *inck, uint64_t wtime, unsigned flags,
                  uint32_t n, uint32_t idx, struct sample *smp)
{
    MDB_cursor *cur = NULL;
    uint8_t lo[CHUNK_KEY];
    MDB_val val;
    unsigned shift = level_shift(flags);
    uint32_t g, gmax = max_type_id(s, txn) >> shift;
    int64_t c[WINDOW2], b[WINDOW2];
    int rc;

    smp->n = 0;
    smp->time = (int64_t)wtime;
    if (idx >= n || n > WINDOW2) {
        rc = PL_EBADARG;
        goto out;
    }
    rc = mdb_cursor_open(txn, level_dbi(s, flags), &cur);
    if (rc)
        goto out;
    for (g = 0; g <= gmax; g++) {
        chunk_key(lo, layout4(s), g, inck, wtime, 0);
        for (rc = chunk_part(cur, lo, 1, &val); rc == 0; rc = chunk_part(cur, lo, 0, &val)) {
            struct group_iter it;
            const uint8_t *data;
            size_t len;
            unsigned low;
            int got;

            group_iter_init(&it, &val);
            while ((got = group_next(&it, &low, &data, &len)) != 0) {
                uint32_t id = (g << shift) | low;

                if (got < 0 || chunk_decode(data, len, n, idx + 1, c, b) != 0) {
                    rc = PL_ECORRUPT;
                    goto out;
                }
                if ((c[idx] || b[idx]) &&
                    (rc = sample_push(smp, id, (uint64_t)c[idx], (uint64_t)b[idx])))
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

/* Rewrites the first-sample snapshot from the first live window (deletes it
 * when no window is live: the first log sample is then the first sample). */
int refresh_snap(pl_store *s, MDB_txn *txn, const uint8_t *inck)
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
        rc = window_sample(s, txn, inck, wins[i].wtime, wins[i].flags, wins[i].n, 0, &smp);
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

/* Lists the window records of an incarnation (all, dropping or not). */
int list_windows(pl_store *s, MDB_txn *txn, const uint8_t *inck, struct window **out,
                        size_t *n_out)
{
    MDB_cursor *cur = NULL;
    MDB_val k = {INC_KEY, (void *)inck}, v;
    struct window *list = NULL;
    size_t n = 0, cap = 0;
    int rc;

    rc = mdb_cursor_open(txn, s->windows, &cur);
    if (rc)
        goto out;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != WIN_KEY || memcmp(k.mv_data, inck, INC_KEY) != 0)
            break;
        rc = array_reserve(&list, &cap, n + 1, sizeof *list, 16);
        if (rc)
            goto out;
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

static int cmp_inc_only(const void *a, const void *b)
{
    const struct inc_entry *x = a, *y = b;

    if (x->inc.pid != y->inc.pid)
        return x->inc.pid < y->inc.pid ? -1 : 1;
    return x->inc.start < y->inc.start ? -1 : x->inc.start > y->inc.start;
}

/* One write transaction of retain_by_inc: at most DELETE_BATCH deletions;
 * *more says whether some remain. */
static int retain_by_inc_batch(pl_store *s, MDB_dbi dbi, const struct inc_time_key *layout, int64_t now_ms,
                               int *more)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    struct inc_entry *list = NULL, key;
    size_t n = 0, deleted = 0;
    int64_t cutoff = now_ms - (int64_t)(s->max_age_s * 1000);
    MDB_val k, v;
    int rc;

    *more = 0;
    rc = txn_begin(s, 1, &txn);
    if (rc)
        goto out;
    rc = read_incs(s, txn, &list, &n);
    if (rc)
        goto out;
    if (n > 1)
        qsort(list, n, sizeof *list, cmp_inc_only);
    rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc)
        goto out;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *kb = k.mv_data;
        int drop = k.mv_size != layout->key_size || v.mv_size < layout->min_value;
        if (!drop) {
            inc_from_key(&key.inc, kb + layout->inc_at);
            const struct inc_entry *e = n ? bsearch(&key, list, n, sizeof *list, cmp_inc_only) : NULL;
            int64_t t = (int64_t)get_be64(kb + layout->time_at);
            drop = !e || !e->rec.first_time || t < e->rec.first_time || t < cutoff;
        }
        if (!drop)
            continue;
        if (deleted == DELETE_BATCH) {
            *more = 1;
            break;
        }
        rc = mdb_cursor_del(cur, 0);
        if (rc)
            break;
        deleted++;
    }
    if (rc == MDB_NOTFOUND)
        rc = 0;
out:
    mdb_cursor_close(cur);
    free(list);
    return txn_end(s, txn, rc);
}

/* See store_int.h. */
int retain_by_inc(pl_store *s, MDB_dbi dbi, const struct inc_time_key *layout, int64_t now_ms)
{
    int rc = 0, more = 1;

    if (s->read_only || !dbi)
        return 0;
    for (int i = 0; rc == 0 && more && i < 1000; i++)
        rc = retain_by_inc_batch(s, dbi, layout, now_ms, &more);
    /* A full map is handled by the byte pruning that follows. */
    return is_map_full(rc) ? 0 : rc;
}
