/* Compaction: the oldest log samples of an incarnation become a level-1
 * window, and every fourth time three level-1 windows and the log become
 * one level-2 window (see docs/store.md). */
#include "store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pyloot/error.h"

/* Writes the chunk value of one group (parts numbered from *part). */
static int flush_group(MDB_txn *txn, MDB_dbi dbi, int inc_first, uint32_t group, const uint8_t *inck,
                       uint64_t wtime, uint8_t *part, const uint8_t *buf, size_t len)
{
    uint8_t kb[CHUNK_KEY];
    MDB_val k = {CHUNK_KEY, kb}, v = {len, (void *)buf};
    int rc = 0;

    if (len) {
        chunk_key(kb, inc_first, group, inck, wtime, *part);
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
    int inc_first; /* chunk_key's */
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
        rc = flush_group(pk->txn, pk->dbi, pk->inc_first, pk->group, pk->inck, pk->wtime, &pk->part, pk->buf,
                         pk->len);
        pk->group = g;
        pk->part = 0;
        pk->len = 0;
    } else if (pk->len + 3 + tlen > PART_MAX) {
        rc = flush_group(pk->txn, pk->dbi, pk->inc_first, pk->group, pk->inck, pk->wtime, &pk->part, pk->buf,
                         pk->len);
        pk->len = 0;
    }
    if (rc)
        goto out;
    pk->buf[pk->len++] = (uint8_t)(id & ((1u << pk->shift) - 1));
    pk->len += pl_varint_put(pk->buf + pk->len, tlen);
    memcpy(pk->buf + pk->len, chunk, tlen);
    pk->len += tlen;
out:
    return rc;
}

static int pack_finish(struct packer *pk)
{
    return flush_group(pk->txn, pk->dbi, pk->inc_first, pk->group, pk->inck, pk->wtime, &pk->part, pk->buf,
                       pk->len);
}

/* Level-2 merge, inside compact_txn: reads the MERGE_RUN newest level-1
 * windows `w` group by group, adds the WINDOW log samples, writes 128-point
 * chunks into chunks2 and deletes the level-1 chunks. PL_ETOOBIG when a
 * type's points do not fit one value (the caller then compacts without
 * merging). About 120 lines: one pass over the groups does read, merge and
 * write, so that each group's values are visited once. */
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
    pk->inc_first = layout4(s);
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
            MDB_val val;

            chunk_key(lo, layout4(s), g, inck, w[i].wtime, 0);
            for (rc = chunk_part(cur, lo, 1, &val); rc == 0; rc = chunk_part(cur, lo, 0, &val)) {
                struct group_iter it;
                const uint8_t *data;
                size_t len;
                int got;

                group_iter_init(&it, &val);
                while ((got = group_next(&it, &low, &data, &len)) == 1) {
                    low &= GROUP_SIZE - 1;
                    if (chunk_decode(data, len, WINDOW, WINDOW, tc, tb) != 0)
                        break;
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
                if (got != 0) {
                    rc = PL_ECORRUPT;
                    goto out;
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
            chunk_key(lo, layout4(s), g, inck, w[i].wtime, 0);
            chunk_key(hi, layout4(s), g, inck, w[i].wtime, 0xff);
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
int compact_txn(pl_store *s, const pl_incarnation *inc, int allow_merge, uint32_t want)
{
    return compact_nested(s, NULL, inc, allow_merge, want);
}

/* compact_txn in a transaction of its own (parent NULL) or nested in
 * `parent` (see store_int.h). */
/* Phase 1 of a compaction: copies the `want` oldest log samples of the
 * incarnation keyed inck into smp (values returned by LMDB are only valid
 * until the next update in the transaction, so they are decoded before any
 * write). PL_ECORRUPT when the log holds fewer. */
static int read_oldest(pl_store *s, MDB_cursor *cur, const uint8_t *inck, uint32_t want, struct sample *smp)
{
    uint8_t lo[LOG_KEY];
    MDB_val k, v;
    uint32_t ns = 0;
    int rc;

    log_key(lo, inck, 0, 0);
    k.mv_size = LOG_KEY;
    k.mv_data = lo;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
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
        rc = sample_add_part(&smp[ns - 1], layout4(s), get_be32((const uint8_t *)k.mv_data + INC_KEY + 8), &v);
        if (rc)
            return rc;
    }
    if (rc && rc != MDB_NOTFOUND)
        return rc;
    return ns < want ? PL_ECORRUPT : 0;
}

/* Phase 2, level 1: writes the chunk values of one new window from the
 * `want` samples smp, type by type in id order (a type missing from a
 * sample counts 0 there). */
static int pack_level1(pl_store *s, MDB_txn *txn, const uint8_t *inck, const struct sample *smp, uint32_t want)
{
    uint8_t tbuf[CHUNK_MAX(WINDOW)];
    uint64_t c[WINDOW], b[WINDOW];
    size_t pos[WINDOW], i;
    struct packer *pk = malloc(sizeof *pk);
    int rc = 0;

    if (!pk)
        return ENOMEM;
    pk->txn = txn;
    pk->dbi = s->chunks;
    pk->inc_first = layout4(s);
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
            goto out;
    }
    rc = pack_finish(pk);
out:
    free(pk);
    return rc;
}

/* Phase 2, level 2: merges the MERGE_RUN level-1 windows w and the samples
 * smp into one level-2 window, which takes the first window's key (the
 * others' window records go), and copies the merged windows' sample times
 * into times (*n_times of them). */
static int merge_level2(pl_store *s, MDB_txn *txn, const uint8_t *inck, const struct window *w,
                        struct sample *smp, int64_t *times, uint32_t *n_times)
{
    uint8_t wkey[WIN_KEY];
    MDB_val k;
    int rc = merge_windows(s, txn, inck, w, smp);

    if (rc)
        return rc;
    *n_times = 0;
    for (size_t i = 0; i < MERGE_RUN; i++) {
        memcpy(times + *n_times, w[i].times, WINDOW * sizeof *times);
        *n_times += WINDOW;
    }
    for (size_t i = 1; i < MERGE_RUN; i++) {
        memcpy(wkey, inck, INC_KEY);
        put_be64(wkey + INC_KEY, w[i].wtime);
        k.mv_size = WIN_KEY;
        k.mv_data = wkey;
        rc = mdb_del(txn, s->windows, &k, NULL);
        if (rc)
            return rc;
    }
    return 0;
}

/* Phase 3: writes the window record (its n_times sample times, level 2 when
 * l2) and deletes the compacted samples, up to last_time, from the log. */
static int finish_window(pl_store *s, MDB_txn *txn, MDB_cursor *cur, const uint8_t *inck, int l2,
                         const int64_t *times, uint32_t n_times, int64_t last_time)
{
    uint8_t lo[LOG_KEY], hi[LOG_KEY], wkey[WIN_KEY], wval[16 + WINDOW2 * 10];
    size_t deleted = 0;
    MDB_val k, v;
    int more, rc;

    memcpy(wkey, inck, INC_KEY);
    put_be64(wkey + INC_KEY, (uint64_t)times[0]);
    k.mv_size = WIN_KEY;
    k.mv_data = wkey;
    v.mv_data = wval;
    v.mv_size = window_encode(wval, l2 ? WIN_L2 : 0, times, n_times);
    rc = mdb_put(txn, s->windows, &k, &v, 0);
    if (rc)
        return rc;
    log_key(lo, inck, 0, 0);
    log_key(hi, inck, (uint64_t)last_time, UINT32_MAX);
    return del_range(cur, lo, LOG_KEY, hi, LOG_KEY, SIZE_MAX, &deleted, &more);
}

int compact_nested(pl_store *s, MDB_txn *parent, const pl_incarnation *inc, int allow_merge, uint32_t want)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    struct sample smp[WINDOW];
    int64_t times[WINDOW2];
    uint8_t inck[INC_KEY];
    struct proc_rec rec;
    struct window *wins = NULL;
    size_t nw = 0, run = 0;
    uint32_t n_times = 0;
    int rc, merge = 0;

    memset(smp, 0, sizeof smp);
    inc_key(inck, inc);
    /* A nested transaction needs no resize lock: its parent holds it. */
    rc = parent ? mdb_txn_begin(s->env, parent, 0, &txn) : txn_begin(s, 1, &txn);
    if (rc)
        goto out;
    rc = rec_get(s, txn, inc, &rec);
    if (rc || want == 0 || want > WINDOW || rec.n_log <= want)
        goto abort;
    rc = mdb_cursor_open(txn, s->log, &cur);
    if (!rc)
        rc = read_oldest(s, cur, inck, want, smp);
    if (rc)
        goto abort;
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
        while (run < nw && !(wins[nw - 1 - run].flags & (WIN_L2 | WIN_DROPPING)) && wins[nw - 1 - run].n == WINDOW)
            run++;
        merge = run >= MERGE_RUN;
    }
    if (merge) {
        rc = merge_level2(s, txn, inck, &wins[nw - MERGE_RUN], smp, times, &n_times);
        rec.n_windows -= MERGE_RUN - 1;
    } else {
        rc = pack_level1(s, txn, inck, smp, want);
        rec.n_windows++;
    }
    if (rc)
        goto abort;
    for (uint32_t i = 0; i < want; i++)
        times[n_times + i] = smp[i].time;
    n_times += want;
    rc = finish_window(s, txn, cur, inck, merge, times, n_times, smp[want - 1].time);
    if (rc)
        goto abort;
    rec.n_log -= want;
    rc = rec_put(s, txn, inc, &rec);
    if (rc)
        goto abort;
    mdb_cursor_close(cur);
    cur = NULL;
    rc = parent ? mdb_txn_commit(txn) : txn_commit(s, txn);
    goto out;
abort:
    mdb_cursor_close(cur);
    if (parent)
        mdb_txn_abort(txn);
    else
        txn_abort(s, txn);
out:
    samples_free(smp, WINDOW);
    free(wins);
    return rc;
}
