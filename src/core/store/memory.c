/* Where each sample's memory was (table `memory`, schema 5): written with
 * the sample in its transaction, read as series on the history's time axis
 * (per incarnation and merged), retained with the samples. See
 * docs/store.md, "Memory". */
#include "store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pyloot/error.h"

/* See store_int.h. */
int memory_put(pl_store *s, MDB_txn *txn, const pl_incarnation *inc, int64_t time_ms,
               const pl_memory_sample *m)
{
    uint8_t kb[MEMORY_KEY];
    uint64_t vals[3] = {m->rss, m->python_bytes, m->allocator_free_bytes};
    MDB_val k = {sizeof kb, kb}, v = {sizeof vals, vals};

    if (!s->memory)
        return 0;
    inc_key(kb, inc);
    put_be64(kb + INC_KEY, (uint64_t)time_ms);
    return mdb_put(txn, s->memory, &k, &v, 0);
}

/* ------------------------------------------------------------- retention */

/* See store_int.h. */
int memory_retain(pl_store *s, int64_t now_ms)
{
    static const struct inc_time_key layout = {MEMORY_KEY, 0, INC_KEY, MEMORY_VALUE};

    return retain_by_inc(s, s->memory, &layout, now_ms);
}

/* ------------------------------------------------------------------ read */

/* One incarnation's stored figures, in time order. */
struct mview {
    pl_incarnation inc;
    struct proc_rec rec;
    int alive;
    int64_t end_ms, grace_ms;
    int64_t *times;
    pl_memory_sample *m;
    size_t n;
};

/* Loads w's records from the last one at or before from_ms (the figures a
 * slot at from_ms shows) on; from_ms 0: all of them. */
static int mview_load(pl_store *s, MDB_txn *txn, struct mview *w, int64_t from_ms)
{
    MDB_cursor *cur = NULL;
    uint8_t lo[MEMORY_KEY];
    MDB_val k = {sizeof lo, lo}, v;
    size_t cap_t = 0, cap_m = 0;
    int rc;

    inc_key(lo, &w->inc);
    put_be64(lo + INC_KEY, (uint64_t)from_ms);
    rc = mdb_cursor_open(txn, s->memory, &cur);
    if (rc)
        goto out;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (from_ms && (rc == 0 || rc == MDB_NOTFOUND)) {
        /* One record back: the last one before from_ms, when it is w's. */
        int back = rc == 0 ? mdb_cursor_get(cur, &k, &v, MDB_PREV) : mdb_cursor_get(cur, &k, &v, MDB_LAST);
        if (back == 0 && (k.mv_size != MEMORY_KEY || memcmp(k.mv_data, lo, INC_KEY) != 0))
            back = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        else if (back == MDB_NOTFOUND)
            back = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        rc = back;
    }
    for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != MEMORY_KEY || memcmp(k.mv_data, lo, INC_KEY) != 0)
            break;
        if (v.mv_size < MEMORY_VALUE) {
            rc = PL_ECORRUPT;
            goto out;
        }
        if ((rc = array_reserve(&w->times, &cap_t, w->n + 1, sizeof *w->times, 64)) ||
            (rc = array_reserve(&w->m, &cap_m, w->n + 1, sizeof *w->m, 64)))
            goto out;
        w->times[w->n] = (int64_t)get_be64((const uint8_t *)k.mv_data + INC_KEY);
        memcpy(&w->m[w->n].rss, (const uint8_t *)v.mv_data, 8);
        memcpy(&w->m[w->n].python_bytes, (const uint8_t *)v.mv_data + 8, 8);
        memcpy(&w->m[w->n].allocator_free_bytes, (const uint8_t *)v.mv_data + 16, 8);
        w->n++;
    }
    if (rc == MDB_NOTFOUND)
        rc = 0;
out:
    mdb_cursor_close(cur);
    return rc;
}

/* The index of w's last record at or before t, or -1. */
static ptrdiff_t record_at(const struct mview *w, int64_t t)
{
    size_t lo = 0, hi = w->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (w->times[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (ptrdiff_t)lo - 1;
}

/* The history's rule (history.c alive_at): from the first sample on and,
 * once dead, until 1.5 intervals after its last sign of life. */
static int alive_at(const struct mview *w, int64_t t)
{
    if (!w->n || w->times[0] > t)
        return 0;
    return w->alive || t <= w->end_ms + w->grace_ms;
}

static int series_new(pl_memory_series *s, size_t n)
{
    int64_t **arr[4] = {&s->rss, &s->python_bytes, &s->allocator_free_bytes, &s->other_bytes};

    for (int f = 0; f < 4; f++) {
        *arr[f] = malloc((n ? n : 1) * sizeof **arr[f]);
        if (!*arr[f])
            return ENOMEM;
        for (size_t i = 0; i < n; i++)
            (*arr[f])[i] = -1;
    }
    return 0;
}

static void series_free(pl_memory_series *s)
{
    free(s->rss);
    free(s->python_bytes);
    free(s->allocator_free_bytes);
    free(s->other_bytes);
}

static void series_set(pl_memory_series *s, size_t i, const pl_memory_sample *m, int add)
{
    int64_t vals[4] = {(int64_t)m->rss, (int64_t)m->python_bytes, (int64_t)m->allocator_free_bytes,
                       (int64_t)pl_memory_other(m)};
    int64_t *arr[4] = {s->rss, s->python_bytes, s->allocator_free_bytes, s->other_bytes};

    for (int f = 0; f < 4; f++)
        arr[f][i] = add && arr[f][i] >= 0 ? arr[f][i] + vals[f] : vals[f];
}

/* Fills the series of every view and the merged ones on m's axis. */
static int fill_series(struct mview *views, size_t nv, pl_memory *m)
{
    size_t i, j, k = 0;
    ptrdiff_t r;
    int rc;

    if ((rc = series_new(&m->merged, m->n_times)))
        return rc;
    m->workers = calloc(nv ? nv : 1, sizeof *m->workers);
    if (!m->workers)
        return ENOMEM;
    for (j = 0; j < nv; j++) {
        struct mview *w = &views[j];
        pl_memory_worker *out;

        if (!w->n)
            continue;
        out = &m->workers[k++];
        m->n_workers = k;
        out->inc = w->inc;
        memcpy(out->host, w->rec.host, sizeof out->host);
        out->host[sizeof out->host - 1] = '\0';
        if ((rc = series_new(&out->s, m->n_times)))
            return rc;
        for (i = 0; i < m->n_times; i++) {
            /* The newest slot of a live answer is "now": only what is alive. */
            int now_slot = m->live && i + 1 == m->n_times;
            if (!(now_slot ? w->alive : alive_at(w, m->times[i])))
                continue;
            r = record_at(w, m->times[i]);
            if (r < 0)
                continue;
            series_set(&out->s, i, &w->m[r], 0);
            series_set(&m->merged, i, &w->m[r], 1);
        }
        pl_memory_series *ws = &out->s;
        pl_memory_growth_of(ws->rss, ws->python_bytes, ws->allocator_free_bytes, ws->other_bytes, m->n_times,
                            &ws->growth);
        if (ws->growth.known && m->n_times && ws->rss[m->n_times - 1] >= 0) {
            m->merged.growth.known = 1;
            m->merged.growth.rss += ws->growth.rss;
            m->merged.growth.python_bytes += ws->growth.python_bytes;
            m->merged.growth.allocator_free_bytes += ws->growth.allocator_free_bytes;
            m->merged.growth.other_bytes += ws->growth.other_bytes;
        }
    }
    return 0;
}

int memory_unguarded(pl_store *s, const pl_memory_query *q, pl_memory **out)
{
    MDB_txn *txn = NULL;
    struct inc_entry *list = NULL;
    struct mview *views = NULL;
    pl_memory *m = NULL;
    size_t n_incs = 0, nv = 0, i;
    int64_t first = 0, newest = 0, last_alive = 0, base = 0, until, now;
    int any_alive = 0, rc;

    *out = NULL;
    if (!q || q->since_ms < 0 || q->until_ms < 0 || (q->since_ms && q->until_ms && q->until_ms <= q->since_ms)) {
        rc = PL_EBADARG;
        goto out;
    }
    now = q->now_ms ? q->now_ms : pl_now_ms();
    m = calloc(1, sizeof *m);
    if (!m) {
        rc = ENOMEM;
        goto out;
    }
    rc = txn_begin(s, 0, &txn);
    if (rc == 0)
        rc = read_incs(s, txn, &list, &n_incs);
    if (rc)
        goto out;
    views = calloc(n_incs ? n_incs : 1, sizeof *views);
    if (!views) {
        rc = ENOMEM;
        goto out;
    }
    for (i = 0; i < n_incs; i++) {
        struct mview *w;

        if (q->pid && list[i].inc.pid != q->pid)
            continue;
        if (q->host && *q->host && strncmp(list[i].rec.host, q->host, sizeof list[i].rec.host) != 0)
            continue;
        w = &views[nv++];
        w->inc = list[i].inc;
        w->rec = list[i].rec;
        w->alive = rec_alive(&w->inc, &w->rec, now);
        if (s->memory && (rc = mview_load(s, txn, w, q->since_ms)))
            goto out;
        if (!w->n)
            continue;
        w->grace_ms = (int64_t)w->rec.interval_ms * 3 / 2;
        w->end_ms = w->rec.ended_ms > w->times[w->n - 1] ? w->rec.ended_ms : w->times[w->n - 1];
        if (!first || w->times[0] < first)
            first = w->times[0];
        if (w->times[w->n - 1] > newest)
            newest = w->times[w->n - 1];
        if (w->alive)
            any_alive = 1;
        else if (w->end_ms > last_alive)
            last_alive = w->end_ms;
        if (w->rec.interval_ms && (!base || w->rec.interval_ms < base))
            base = w->rec.interval_ms;
    }
    if ((q->pid || (q->host && *q->host)) && nv == 0) {
        rc = PL_ENOTFOUND;
        goto out;
    }
    /* The as-of moment and the axis, as pl_store_history's. */
    m->live = !q->until_ms && any_alive;
    until = q->until_ms ? q->until_ms : any_alive ? now : last_alive;
    m->as_of_ms = first ? until : 0;
    if (first) {
        int64_t lo = q->since_ms > first ? q->since_ms : first;
        rc = axis_grid(base, q->max_points ? (q->max_points < 2 ? 2 : q->max_points) : DEFAULT_MAX_POINTS, lo,
                       m->live ? newest : until, &m->times, &m->n_times, &m->step_ms);
        if (rc)
            goto out;
    }
    rc = fill_series(views, nv, m);
    if (rc)
        goto out;
    *out = m;
    m = NULL;
out:
    txn_abort(s, txn);
    for (i = 0; views && i < nv; i++) {
        free(views[i].times);
        free(views[i].m);
    }
    free(views);
    free(list);
    pl_memory_free(m);
    return rc;
}

/* See store.h. */
void pl_memory_free(pl_memory *m)
{
    if (!m)
        return;
    free(m->times);
    series_free(&m->merged);
    for (size_t i = 0; i < m->n_workers; i++)
        series_free(&m->workers[i].s);
    free(m->workers);
    free(m);
}
