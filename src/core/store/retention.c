/* Retention: max_samples and max_age per incarnation, the byte budget
 * (with a share per incarnation), dead incarnations, unused type names,
 * orphaned data, and pl_store_prune. Over 800 lines because every rule
 * deletes through the same batched, map-full-tolerant passes and the same
 * per-incarnation window lists; one function per rule. */
#include "store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pyloot/error.h"
#include "pyloot/proc.h"

/* Unused type names are pruned when the name tables take more than
 * 1/NAMES_SHARE of the byte budget (a store of 5,000 names never gets
 * there: ~1 MB), at most every NAMES_EVERY_MS: it reads the whole store. */
#define NAMES_SHARE 32u
#define NAMES_EVERY_MS 60000

/* Protects next_names_ms of every store of this process (one pruner of
 * names at a time; another arriving skips). */
static pthread_mutex_t names_lock = PTHREAD_MUTEX_INITIALIZER;

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

struct window_purge {
    const uint8_t *inck;
    uint64_t wtime;
    unsigned flags;
    uint32_t g, next_g; /* first chunk group of this batch; of the next one */
};

/* One batch of purge_window: chunk groups from g on, then (when all are
 * gone) the window record. A retried batch starts again from the same g. */
static int window_step(pl_store *s, MDB_txn *txn, size_t batch, int retry, void *arg, int *done)
{
    struct window_purge *w = arg;
    MDB_cursor *cur = NULL;
    uint8_t lo[CHUNK_KEY], hi[CHUNK_KEY], wkey[WIN_KEY];
    MDB_val k = {WIN_KEY, wkey};
    uint32_t gg, gmax;
    size_t deleted = 0;
    int rc, more = 0;

    if (!retry)
        w->g = w->next_g;
    gmax = max_type_id(s, txn) >> level_shift(w->flags);
    rc = mdb_cursor_open(txn, level_dbi(s, w->flags), &cur);
    if (rc)
        goto out;
    for (gg = w->g; gg <= gmax; gg++) {
        chunk_key(lo, layout4(s), gg, w->inck, w->wtime, 0);
        chunk_key(hi, layout4(s), gg, w->inck, w->wtime, 0xff);
        rc = del_range(cur, lo, CHUNK_KEY, hi, CHUNK_KEY, batch, &deleted, &more);
        if (rc || more)
            break;
    }
    if (rc == 0 && gg > gmax) {
        memcpy(wkey, w->inck, INC_KEY);
        put_be64(wkey + INC_KEY, w->wtime);
        rc = mdb_del(txn, s->windows, &k, NULL);
        if (rc == MDB_NOTFOUND)
            rc = 0;
    }
    w->next_g = gg;
    *done = gg > gmax;
out:
    mdb_cursor_close(cur);
    return rc;
}

/* Deletes every chunk of window (inck, wtime) at the level given by `flags`
 * in batched transactions (smaller when the map is full), then the window
 * record. */
static int purge_window(pl_store *s, const uint8_t *inck, uint64_t wtime, unsigned flags)
{
    struct window_purge w = {inck, wtime, flags, 0, 0};

    return batched_delete(s, window_step, &w);
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
        goto end;
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
end:
    rc = txn_end(s, txn, rc);
out:
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
        goto end;
    lo[0] = 'q';
    memcpy(lo + 1, inck, INC_KEY);
    memcpy(hi, lo, sizeof lo);
    memset(hi + sizeof lo, 0xff, sizeof hi - sizeof lo);
    rc = mdb_cursor_open(txn, s->mailbox, &cur);
    if (rc == 0)
        rc = del_range(cur, lo, sizeof lo, hi, sizeof hi, SIZE_MAX, &deleted, &more);
    mdb_cursor_close(cur);
end:
    rc = txn_end(s, txn, rc);
    if (rc == 0)
        rc = purge_inc_data(s, inck);
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
    uint8_t lo[LOG_KEY];
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
            rc = array_reserve(list, cap, *n + 1, INC_KEY, 8);
            if (rc)
                goto out;
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
    } *wins = NULL;
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
        rc = array_reserve(&wins, &cap_wins, n_wins + 1, sizeof *wins, 16);
        if (rc)
            goto abort;
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
int retain_inc(pl_store *s, const pl_incarnation *inc, int64_t now_ms)
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

/* Bytes of the values of dbi with keys in [lo, hi] (keylen bytes each). */
static uint64_t range_bytes(MDB_txn *txn, MDB_dbi dbi, const uint8_t *lo, const uint8_t *hi, size_t keylen)
{
    MDB_cursor *cur = NULL;
    MDB_val k = {keylen, (void *)lo}, v;
    uint64_t bytes = 0;
    int rc;

    if (mdb_cursor_open(txn, dbi, &cur))
        return 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 && k.mv_size == keylen &&
                                                           memcmp(k.mv_data, hi, keylen) <= 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        bytes += k.mv_size + v.mv_size;
    mdb_cursor_close(cur);
    return bytes;
}

/* What an incarnation's samples take, estimated without reading them all:
 * its stored samples times the larger of its first sample (the snapshot)
 * and its newest log sample, in log format. Compacted windows take less
 * per sample, so this errs high, alike for every incarnation: it ranks
 * them by what they hold (types x samples). */
static uint64_t inc_estimate(pl_store *s, MDB_txn *txn, const uint8_t *inck, const struct proc_rec *rec,
                             const int64_t *lt, size_t nl)
{
    uint8_t lo[LOG_KEY], hi[LOG_KEY];
    uint64_t one, newest = 0;

    log_key(lo, inck, 0, 0);
    log_key(hi, inck, 0, 0);
    memset(hi + INC_KEY, 0xff, 4);
    one = range_bytes(txn, s->snap, lo, hi, SNAP_KEY);
    if (nl) {
        log_key(lo, inck, (uint64_t)lt[nl - 1], 0);
        log_key(hi, inck, (uint64_t)lt[nl - 1], UINT32_MAX);
        newest = range_bytes(txn, s->log, lo, hi, LOG_KEY);
    }
    return (uint64_t)rec->samples * (newest > one ? newest : one);
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

/* What drop_oldest knows of one incarnation. */
struct drop_view {
    int64_t first_log;   /* its oldest log sample, 0 when it has fewer than 2 (or none) */
    int64_t only_log;    /* its oldest log sample whatever their number, 0 when none */
    uint64_t window;     /* its oldest window not being dropped */
    int has_window;
    uint64_t estimate;   /* inc_estimate() */
};

/* Drops the oldest unit of incarnation i: its oldest window, else (with
 * more than one, or `last_resort`) its oldest log sample. */
static int drop_unit(pl_store *s, const struct inc_entry *e, const struct drop_view *d, int last_resort,
                     int *dropped)
{
    int rc = 0;

    *dropped = 0;
    if (d->has_window) {
        rc = drop_window(s, &e->inc, d->window);
        *dropped = rc == 0;
    } else if (d->first_log || (last_resort && d->only_log)) {
        rc = drop_log_sample(s, &e->inc, d->first_log ? d->first_log : d->only_log);
        *dropped = rc == 0;
    }
    return rc;
}

/* Drops the least valuable unit of data. First the dead incarnation seen
 * last longest ago goes whole. Then an incarnation over its share of the
 * byte budget (max_bytes / the incarnations holding samples) by the
 * estimate, the largest first, loses its oldest unit: one worker that
 * pushes huge samples cannot make the others' history go. Then the oldest
 * window of any incarnation; then the oldest log sample of one that has
 * more than one; with `last_resort`, even an incarnation's only sample.
 * *dropped tells whether it found one. */
static int drop_oldest(pl_store *s, int last_resort, int *dropped)
{
    MDB_txn *txn = NULL;
    struct inc_entry *list = NULL;
    struct drop_view *views = NULL;
    size_t n = 0, i, best = SIZE_MAX, bw = SIZE_MAX, top = SIZE_MAX, holders = 0;
    int64_t best_time = INT64_MAX, best_wt = INT64_MAX;
    uint64_t share;
    int rc;

    *dropped = 0;
    rc = txn_begin(s, 0, &txn);
    if (rc)
        goto out;
    rc = read_incs(s, txn, &list, &n);
    if (rc)
        goto abort;
    fill_alive(list, n);
    views = calloc(n ? n : 1, sizeof *views);
    if (!views) {
        rc = ENOMEM;
        goto abort;
    }
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
            views[i].has_window = w < nw;
            views[i].window = w < nw ? wins[w].wtime : 0;
            views[i].first_log = nl > 1 ? lt[0] : 0;
            views[i].only_log = nl ? lt[0] : 0;
            views[i].estimate = inc_estimate(s, txn, inck, &list[i].rec, lt, nl);
            holders += list[i].rec.samples > 0;
        }
        free(wins);
        free(lt);
        if (rc)
            goto abort;
    }
    txn_abort(s, txn);
    txn = NULL;

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
    share = max_bytes(s) / (holders ? holders : 1);
    for (i = 0; i < n; i++)
        if (views[i].estimate > share && (views[i].has_window || views[i].first_log) &&
            (top == SIZE_MAX || views[i].estimate > views[top].estimate))
            top = i;
    if (top != SIZE_MAX) {
        rc = drop_unit(s, &list[top], &views[top], 0, dropped);
        goto out;
    }
    for (i = 0; i < n; i++) {
        int64_t lt0 = last_resort ? views[i].only_log : views[i].first_log;

        if (views[i].has_window && (int64_t)views[i].window < best_wt) {
            best_wt = (int64_t)views[i].window;
            bw = i;
        }
        if (lt0 && lt0 < best_time) {
            best_time = lt0;
            best = i;
        }
    }
    if (bw != SIZE_MAX) {
        rc = drop_window(s, &list[bw].inc, views[bw].window);
        *dropped = rc == 0;
    } else if (best != SIZE_MAX) {
        rc = drop_log_sample(s, &list[best].inc, best_time);
        *dropped = rc == 0;
    }
    goto out;
abort:
    txn_abort(s, txn);
out:
    free(views);
    free(list);
    return rc;
}

/* Prunes the type names no record uses when the name tables are over
 * their share, at most every NAMES_EVERY_MS (prune_types spares the names
 * just created). */
static int maybe_prune_names(pl_store *s, int64_t now_ms)
{
    MDB_txn *txn = NULL;
    MDB_stat st;
    uint64_t pages = 0, psize = 4096;
    size_t pruned = 0;
    int rc = 0;

    if (s->read_only || pthread_mutex_trylock(&names_lock) != 0)
        return 0;
    /* A clock that went back (sample times may run 10 minutes ahead)
     * only delays the next scan. */
    if (now_ms < s->next_names_ms)
        goto unlock;
    rc = txn_begin(s, 0, &txn);
    if (rc)
        goto unlock;
    if (mdb_stat(txn, s->types, &st) == 0) {
        pages += st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
        psize = st.ms_psize;
    }
    if (mdb_stat(txn, s->names, &st) == 0)
        pages += st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
    txn_abort(s, txn);
    if (pages * psize * NAMES_SHARE > max_bytes(s)) {
        s->next_names_ms = now_ms + NAMES_EVERY_MS;
        rc = prune_types(s, &pruned);
    }
unlock:
    pthread_mutex_unlock(&names_lock);
    return rc;
}

/* Drops data until the used pages fit max_bytes: unused names first (when
 * due), then units of history (drop_oldest). */
int prune_bytes(pl_store *s)
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
        if (iter == 0 && (rc = maybe_prune_names(s, pl_now_ms())) != 0)
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
int make_room(pl_store *s, int *dropped)
{
    int dead = 0;

    mdb_reader_check(s->env, &dead);
    return drop_oldest(s, 1, dropped);
}


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
        rc = witness_retain(s, now_ms);
    if (rc == 0)
        rc = memory_retain(s, now_ms);
    if (rc == 0)
        rc = routes_retain(s, now_ms);
    if (rc == 0)
        rc = sweep_orphans(s);
    if (rc == 0)
        rc = mailbox_sweep(s, now_ms, list, n);
    if (rc == 0)
        rc = maybe_prune_names(s, now_ms);
    if (rc == 0)
        rc = prune_bytes(s);
out:
    free(list);
    return rc;
}

/* Runs retention when it is due; a second thread arriving while one prunes
 * does not wait. */
int maybe_prune(pl_store *s, int64_t now_ms)
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
int prune_unguarded(pl_store *s, int64_t now_ms)
{
    int rc;

    pthread_mutex_lock(&s->prune_lock);
    s->next_prune_ms = now_ms + PRUNE_EVERY_MS;
    rc = prune_locked(s, now_ms);
    pthread_mutex_unlock(&s->prune_lock);
    return rc;
}
