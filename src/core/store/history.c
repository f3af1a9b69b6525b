/* The history query (pl_store_history): one read transaction; ranks the
 * types, builds the time axis (axis.c), fills the page, then tells each
 * type's trend (trend.c). Long because the three phases share the view of
 * each incarnation (struct hview) and its readers of the log and the
 * windows, which no other file uses. */
#include "store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pyloot/error.h"
#include "pyloot/parse.h"
#include "pyloot/trend.h"

/* A live window as a history query keeps it (its times are in hview.times). */
struct win_ref {
    uint64_t wtime;
    unsigned flags;
    uint32_t n;
};

/* One part of a log sample, as read once by hview_load: its data stays
 * valid for the read transaction. */
struct lpart {
    uint32_t first_id;
    const uint8_t *p;
    size_t size;
};

/* The chunk values of one type group of one incarnation at one level, as
 * the last fill_level found them: the page's types of the same group (16
 * or 4 share a value) reuse them instead of seeking again. */
struct gcache {
    uint32_t group;
    int valid;
    struct gval {
        size_t win;   /* index in hview.wins */
        MDB_val val;  /* valid for the read transaction */
    } *v;
    size_t n, cap;
};

/* One incarnation taking part in a history query. */
struct hview {
    pl_incarnation inc;
    uint8_t inck[INC_KEY];
    struct proc_rec rec;
    int alive;
    int layout4;          /* the store's layout4() */
    struct win_ref *wins; /* live windows */
    size_t n_wins;
    size_t n_l1;         /* of which level 1 */
    size_t *win_off;     /* index in times of each window's first sample */
    int64_t *times;      /* every sample time, ascending: windows, then log */
    size_t n_times;
    size_t log_off;      /* times[log_off..] are log samples */
    struct lpart *parts; /* every log part, in key order */
    size_t *part_at;     /* log sample i: parts[part_at[i] .. part_at[i + 1]) */
    struct gcache gc[2]; /* per window level */
    int64_t *lcol;       /* log sample i: its column in the page's log values, or -1 */
    size_t n_lcols;      /* log samples some slot shows (columns) */
    int64_t end_ms;      /* last known alive: last sample or clean end, whichever is later */
    int64_t grace_ms;    /* a dead one counts as alive this long after end_ms (see alive_at) */
    int64_t *slot;       /* per slot: contributing sample index, or -1 */
    size_t slot_lo, slot_hi; /* slots [slot_lo, slot_hi) are the only ones it may fill */
};

/* A candidate type of a history query. */
struct cand {
    uint32_t id;
    const char *name; /* owned by the read transaction */
    size_t len;
    uint64_t count, bytes;
    int64_t growth, bytes_growth;
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

static int cmp_cand_bytes(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;

    if (x->bytes != y->bytes)
        return x->bytes > y->bytes ? -1 : 1;
    return name_cmp(x, y);
}

static int cmp_cand_bytes_growth(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;

    if (x->bytes_growth != y->bytes_growth)
        return x->bytes_growth > y->bytes_growth ? -1 : 1;
    return name_cmp(x, y);
}

static int cmp_cand_name(const void *a, const void *b)
{
    return name_cmp(a, b);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
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
    free(v->parts);
    free(v->part_at);
    free(v->gc[0].v);
    free(v->gc[1].v);
    free(v->lcol);
}

/* Gives each log sample that some slot of v shows a column (v->lcol,
 * v->n_lcols): the page reads and keeps only those. */
static int mark_shown(struct hview *v)
{
    size_t n_log = v->n_times - v->log_off, i, si;
    int rc = 0;

    v->n_lcols = 0;
    free(v->lcol); /* from the previous batch of a trend= query */
    v->lcol = malloc((n_log + 1) * sizeof *v->lcol);
    if (!v->lcol) {
        rc = ENOMEM;
        goto out;
    }
    for (i = 0; i < n_log; i++)
        v->lcol[i] = -1;
    for (si = v->slot_lo; si < v->slot_hi; si++)
        if (v->slot[si] >= (int64_t)v->log_off)
            v->lcol[v->slot[si] - (int64_t)v->log_off] = 0;
    for (i = 0; i < n_log; i++)
        if (v->lcol[i] >= 0)
            v->lcol[i] = (int64_t)v->n_lcols++;
out:
    return rc;
}

/* Reads the whole log of an incarnation once (one seek, then the next keys):
 * its distinct times into *times (*n of them), and every part into v->parts
 * with v->part_at indexing them by sample. */
static int log_scan(MDB_cursor *cur, struct hview *v, int64_t **times, size_t *n)
{
    uint8_t lo[LOG_KEY];
    MDB_val k = {LOG_KEY, lo}, val;
    int64_t *list = NULL, t;
    size_t count = 0, cap = 0, n_parts = 0, pcap = 0, acap = 0;
    int rc;

    log_key(lo, v->inck, 0, 0);
    for (rc = mdb_cursor_get(cur, &k, &val, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &val, MDB_NEXT)) {
        if (k.mv_size != LOG_KEY || memcmp(k.mv_data, v->inck, INC_KEY) != 0)
            break;
        t = (int64_t)get_be64((const uint8_t *)k.mv_data + INC_KEY);
        if (!count || list[count - 1] != t) {
            rc = array_reserve(&list, &cap, count + 1, sizeof *list, 64);
            if (rc == 0)
                rc = array_reserve(&v->part_at, &acap, count + 2, sizeof *v->part_at, 64);
            if (rc)
                goto out;
            v->part_at[count] = n_parts;
            list[count++] = t;
        }
        rc = array_reserve(&v->parts, &pcap, n_parts + 1, sizeof *v->parts, 256);
        if (rc)
            goto out;
        v->parts[n_parts].first_id = get_be32((const uint8_t *)k.mv_data + INC_KEY + 8);
        v->parts[n_parts].p = val.mv_data;
        v->parts[n_parts].size = val.mv_size;
        n_parts++;
    }
    if (rc == MDB_NOTFOUND)
        rc = 0;
    if (rc == 0 && !v->part_at)
        rc = array_reserve(&v->part_at, &acap, 1, sizeof *v->part_at, 1);
    if (rc == 0)
        v->part_at[count] = n_parts;
out:
    if (rc == 0) {
        *times = list;
        *n = count;
    } else {
        free(list);
    }
    return rc;
}

/* Reads log sample li of v (all its parts, wide ones included) into smp,
 * replacing it: what log_read_sample reads, from the parts hview_load kept. */
static int log_sample(const struct hview *v, size_t li, struct sample *smp)
{
    size_t i;
    int rc = 0;

    smp->n = 0;
    smp->time = v->times[v->log_off + li];
    for (i = v->part_at[li]; rc == 0 && i < v->part_at[li + 1]; i++) {
        MDB_val val = {v->parts[i].size, (void *)v->parts[i].p};

        rc = sample_add_part(smp, v->layout4, v->parts[i].first_id, &val);
    }
    return rc;
}

/* Loads the live windows and the log (times and parts) of one incarnation;
 * logcur is a cursor on the log. */
static int hview_load(pl_store *s, MDB_txn *txn, MDB_cursor *logcur, struct hview *v)
{
    struct window *all = NULL;
    int64_t *lt = NULL;
    size_t n_all = 0, n_lt = 0, i, t = 0;
    int rc;

    inc_key(v->inck, &v->inc);
    v->layout4 = layout4(s);
    rc = list_windows(s, txn, v->inck, &all, &n_all);
    if (rc == 0)
        rc = log_scan(logcur, v, &lt, &n_lt);
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

/* Fills c/b at the windows of one level (cur is on that level's DB) with one
 * type's points; marks the windows it filled. The group's chunk values are
 * looked up once per incarnation and kept in v->gc for the next type. */
static int fill_level(MDB_cursor *cur, struct hview *v, uint32_t id, unsigned level,
                      int64_t *c, int64_t *b, uint8_t *filled)
{
    struct gcache *g = &v->gc[level ? 1 : 0];
    uint8_t lo[CHUNK_KEY];
    MDB_val k = {CHUNK_KEY, lo}, val;
    unsigned shift = level_shift(level);
    size_t i;
    int rc = 0;

    if (!g->valid || g->group != id >> shift) {
        g->valid = 0;
        g->n = 0;
        chunk_key(lo, v->layout4, id >> shift, v->inck, 0, 0);
        for (rc = mdb_cursor_get(cur, &k, &val, MDB_SET_RANGE); rc == 0;
             rc = mdb_cursor_get(cur, &k, &val, MDB_NEXT)) {
            uint64_t wtime;
            size_t lo_i;

            if (k.mv_size != CHUNK_KEY || memcmp(k.mv_data, lo, 4 + INC_KEY) != 0)
                break;
            wtime = get_be64((const uint8_t *)k.mv_data + 4 + INC_KEY);
            lo_i = lower_bound(&v->wins[0].wtime, v->n_wins, sizeof *v->wins, 8, wtime);
            if (lo_i == v->n_wins || v->wins[lo_i].wtime != wtime ||
                (v->wins[lo_i].flags & WIN_L2) != level)
                continue; /* a window being dropped or merged meanwhile */
            rc = array_reserve(&g->v, &g->cap, g->n + 1, sizeof *g->v, 8);
            if (rc)
                goto out;
            g->v[g->n].win = lo_i;
            g->v[g->n++].val = val;
        }
        if (rc != MDB_NOTFOUND && rc != 0)
            goto out;
        rc = 0;
        g->group = id >> shift;
        g->valid = 1;
    }
    for (i = 0; i < g->n; i++) {
        const struct win_ref *w = &v->wins[g->v[i].win];
        const uint8_t *data;
        size_t dlen;

        rc = group_find(&g->v[i].val, id & ((1u << shift) - 1), &data, &dlen);
        if (rc == MDB_NOTFOUND) {
            rc = 0;
            continue;
        }
        if (rc)
            break;
        rc = chunk_decode(data, dlen, w->n, w->n, c + v->win_off[g->v[i].win],
                          b + v->win_off[g->v[i].win]);
        if (rc)
            break;
        filled[g->v[i].win] = 1;
    }
out:
    return rc;
}

/* Fills c[0..log_off) and b[...] with one type's windowed points (0 where
 * the type is absent from a window). */
static int fill_windows(MDB_cursor *cur1, MDB_cursor *cur2, struct hview *v, uint32_t id,
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

/* fill_log for one packed log part: the page types (ids sorted, original
 * index in idx) it holds go to lc/lb[idx[j] * stride + at]. */
static int fill_packed(const struct lpart *part, const uint32_t *ids, const size_t *idx,
                       size_t n_ids, int64_t *lc, int64_t *lb, size_t stride, size_t at)
{
    MDB_val val = {part->size, (void *)part->p};
    struct packed pk;
    uint32_t last, id;
    uint64_t cc, bb;
    size_t j, a;
    int rc;

    rc = packed_open(&pk, part->first_id, &val);
    if (rc || pk.n == 0)
        return rc;
    packed_get(&pk, pk.n - 1, &last, &cc, &bb);
    /* Page ids inside [first, last]: find the first with a binary search. */
    for (j = lower_bound(ids, n_ids, sizeof *ids, 4, pk.first_id); j < n_ids && ids[j] <= last; j++) {
        a = packed_lower_bound(&pk, ids[j]);
        if (a < pk.n) {
            packed_get(&pk, a, &id, &cc, &bb);
            if (id == ids[j]) {
                lc[idx[j] * stride + at] = (int64_t)cc;
                lb[idx[j] * stride + at] = (int64_t)bb;
            }
        }
    }
    return 0;
}

/* Reads the page types' values from the log samples of one incarnation that
 * its slots show (columns from mark_shown) into lc/lb[j * stride + base +
 * col] for page type j (ids sorted in `ids`, original index in `idx`) and
 * the sample's column col, from the parts hview_load kept. The caller
 * zeroes lc/lb. */
static int fill_log(pl_store *s, MDB_txn *txn, const struct hview *v, const uint32_t *ids,
                    const size_t *idx, size_t n_ids, int64_t *lc, int64_t *lb, size_t stride,
                    size_t base)
{
    size_t n_log = v->n_times - v->log_off, li, pi;
    int rc = 0;

    for (li = 0; n_ids && li < n_log; li++) {
        size_t col = (size_t)v->lcol[li];

        if (v->lcol[li] < 0)
            continue;
        for (pi = v->part_at[li]; pi < v->part_at[li + 1]; pi++) {
            const uint8_t *p = v->parts[pi].p;
            size_t m = v->parts[pi].size / LOG_ENTRY, j, lo_j;
            int64_t t = v->times[v->log_off + li];
            uint32_t first, last;

            if (v->layout4) {
                rc = fill_packed(&v->parts[pi], ids, idx, n_ids, lc, lb, stride, base + col);
                if (rc)
                    goto out;
                continue;
            }
            if (v->parts[pi].first_id >= WIDE_BASE || !m)
                continue; /* wide parts are read on demand below, for marked entries */
            memcpy(&first, p, 4);
            memcpy(&last, p + (m - 1) * LOG_ENTRY, 4);
            /* Page ids inside [first, last]: find the first with a binary search. */
            lo_j = lower_bound(ids, n_ids, sizeof *ids, 4, first);
            for (j = lo_j; j < n_ids && ids[j] <= last; j++) {
                size_t a = lower_bound(p, m, LOG_ENTRY, 4, ids[j]);

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
                        lc[idx[j] * stride + base + col] = (int64_t)cc;
                        lb[idx[j] * stride + base + col] = (int64_t)bb;
                    }
                }
            }
        }
    }
out:
    return rc;
}

/* Index of v's last sample at or before t, or -1. */
static ptrdiff_t sample_at(const struct hview *v, int64_t t)
{
    size_t a = 0, z = v->n_times;

    while (a < z) {
        size_t mid = (a + z) / 2;

        if (v->times[mid] <= t)
            a = mid + 1;
        else
            z = mid;
    }
    return (ptrdiff_t)a - 1;
}

/* Whether v was alive at t: from its first sample on, and, once dead, until
 * grace_ms after its last sign of life. The grace (1.5 collection
 * intervals: the next sample would have come by then) is what keeps the
 * workers of a server that stopped as a whole, whose last samples are up
 * to an interval apart, in the merged line together to its end. */
static int alive_at(const struct hview *v, int64_t t)
{
    if (!v->n_times || v->times[0] > t)
        return 0;
    return v->alive || t <= v->end_ms + v->grace_ms;
}

/* Builds the slot ends from lo to hi: multiples of the smallest collection
 * interval (or of a multiple of it, so that there are at most max_points)
 * inside [lo, hi), then hi. */
static int build_axis(const struct hview *views, size_t nv, uint32_t max_points, int64_t lo,
                      int64_t hi, pl_history *h)
{
    int64_t base = 0;
    size_t i;

    for (i = 0; i < nv; i++)
        if (views[i].n_times && views[i].rec.interval_ms &&
            (!base || views[i].rec.interval_ms < base))
            base = views[i].rec.interval_ms;
    return axis_grid(base, max_points, lo, hi, &h->times, &h->n_times, &h->step_ms);
}

/* Which sample of view v each slot shows: its last sample at or before the
 * slot's end, in the slots whose end it was alive at (alive_at); the newest
 * slot of a live query only for incarnations alive now. */
static int build_slots(struct hview *v, const pl_history *h)
{
    int now_slot;
    size_t i;
    int rc = 0;

    v->slot = malloc((h->n_times + 1) * sizeof *v->slot);
    if (!v->slot) {
        rc = ENOMEM;
        goto out;
    }
    v->slot_lo = h->n_times;
    v->slot_hi = 0;
    for (i = 0; i < h->n_times; i++) {
        /* The newest slot of a live query is "now": only what is alive. */
        now_slot = h->live && i + 1 == h->n_times;
        v->slot[i] = (now_slot ? v->alive && v->n_times : alive_at(v, h->times[i]))
                         ? sample_at(v, h->times[i])
                         : -1;
        if (v->slot[i] >= 0) {
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

/* Adds sample k of view v, times sign, into c (and b unless NULL): from
 * the log when it is there, else from the window holding it. */
static int add_sample(pl_store *s, MDB_txn *txn, const struct hview *v,
                      size_t k, uint32_t max_id, int64_t *c, int64_t *b, int sign,
                      struct sample *smp)
{
    size_t j, w;
    int rc;

    if (k >= v->log_off) {
        rc = log_sample(v, k - v->log_off, smp);
    } else {
        for (w = 0; w + 1 < v->n_wins && v->win_off[w + 1] <= k; w++)
            ;
        rc = window_sample(s, txn, v->inck, v->wins[w].wtime, v->wins[w].flags, v->wins[w].n,
                           (uint32_t)(k - v->win_off[w]), smp);
    }
    for (j = 0; rc == 0 && j < smp->n; j++) {
        if (smp->e[j].type_id > max_id)
            continue;
        c[smp->e[j].type_id] += sign * (int64_t)smp->e[j].count;
        if (b)
            b[smp->e[j].type_id] += sign * (int64_t)smp->e[j].bytes;
    }
    return rc;
}

/* Whether the ranking keys on view i: merged, the incarnations alive at
 * `until` (a live query: those alive now); with pid, its latest
 * incarnation that has a sample by `until`. */
static int keys_on(const pl_history_query *q, const struct hview *views, size_t nv, size_t i,
                   int64_t until, int live)
{
    size_t j;

    if (!q->pid)
        return live ? views[i].alive && views[i].n_times : alive_at(&views[i], until);
    for (j = nv; j-- > 0;)
        if (views[j].n_times && views[j].times[0] <= until)
            return j == i;
    return i + 1 == nv;
}

/* Phase 1: ranks the types. Sums each type's count and bytes at `until`
 * and its growth since `since` (each incarnation's count at until minus its
 * count at since, or its first sample) over the incarnations keys_on
 * picks, then keeps every type of the store that passes `top` and `q`,
 * sorted as asked. *cands (malloc'ed, caller frees) points at names inside
 * txn; *n_cand is its length. */
static int rank_types(pl_store *s, MDB_txn *txn, const pl_history_query *q,
                      const struct hview *views, size_t nv, int64_t since, int64_t until,
                      int live, struct cand **cands_out, size_t *n_out)
{
    MDB_cursor *cur = NULL;
    struct cand *cands = NULL;
    int64_t *growth = NULL, *bgrowth = NULL, *cnt = NULL, *byt = NULL;
    uint32_t max_id;
    size_t n_cand = 0, i, j;
    struct sample smp = {0};
    MDB_val k, val;
    MDB_stat st;
    int rc;

    max_id = max_type_id(s, txn);
    cnt = calloc((size_t)max_id + 1, sizeof *cnt);
    byt = calloc((size_t)max_id + 1, sizeof *byt);
    growth = calloc((size_t)max_id + 1, sizeof *growth);
    bgrowth = calloc((size_t)max_id + 1, sizeof *bgrowth);
    if (!cnt || !byt || !growth || !bgrowth) {
        rc = ENOMEM;
        goto out;
    }
    for (i = 0; i < nv; i++) {
        const struct hview *v = &views[i];
        ptrdiff_t at, base;

        if (!keys_on(q, views, nv, i, until, live) || (at = sample_at(v, until)) < 0)
            continue;
        rc = add_sample(s, txn, v, (size_t)at, max_id, cnt, byt, 1, &smp);
        base = since ? sample_at(v, since) : 0;
        if (base < 0)
            base = 0;
        if (rc == 0 && base == 0 && v->n_wins)
            rc = snap_add(s, txn, v->inck, v->layout4, max_id, growth, bgrowth, -1);
        else if (rc == 0)
            rc = add_sample(s, txn, v, (size_t)base, max_id, growth, bgrowth, -1, &smp);
        if (rc)
            goto out;
    }
    for (j = 0; j <= max_id; j++) {
        growth[j] += cnt[j];
        bgrowth[j] += byt[j];
    }

    /* Candidates: every type of the store. */
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
        c->count = c->id <= max_id && cnt[c->id] > 0 ? (uint64_t)cnt[c->id] : 0;
        c->bytes = c->id <= max_id && byt[c->id] > 0 ? (uint64_t)byt[c->id] : 0;
        c->growth = c->id <= max_id ? growth[c->id] : 0;
        c->bytes_growth = c->id <= max_id ? bgrowth[c->id] : 0;
        n_cand++;
    }
    if (rc != MDB_NOTFOUND && rc != 0)
        goto out;
    rc = 0;
    if (q->top && q->top < n_cand) {
        qsort(cands, n_cand, sizeof *cands, cmp_cand_top);
        n_cand = (size_t)q->top;
    }
    if (q->q && q->q[0]) {
        size_t m = strlen(q->q);

        for (i = 0, j = 0; i < n_cand; i++)
            if (pl_contains_ci(cands[i].name, cands[i].len, q->q, m))
                cands[j++] = cands[i];
        n_cand = j;
    }
    qsort(cands, n_cand, sizeof *cands,
          q->sort == PL_SORT_COUNT          ? cmp_cand_count
          : q->sort == PL_SORT_GROWTH       ? cmp_cand_growth
          : q->sort == PL_SORT_BYTES        ? cmp_cand_bytes
          : q->sort == PL_SORT_BYTES_GROWTH ? cmp_cand_bytes_growth
                                            : cmp_cand_name);
    *cands_out = cands;
    *n_out = n_cand;
    cands = NULL;
out:
    mdb_cursor_close(cur);
    free(cands);
    free(cnt);
    free(byt);
    free(growth);
    free(bgrowth);
    free(smp.e);
    return rc;
}

/* Phase 2: the time axis (h->times) and which sample each view shows in
 * each slot. */
static int lay_axis(struct hview *views, size_t nv, uint32_t max_points, int64_t lo, int64_t hi,
                    pl_history *h)
{
    size_t i;
    int rc = build_axis(views, nv, max_points, lo, hi, h);

    for (i = 0; rc == 0 && i < nv; i++)
        rc = build_slots(&views[i], h);
    return rc;
}

/* Phase 3: h->types[0..page_n) for the page's types: name, count, bytes,
 * growth, empty series, and with q->per_worker an empty line per view that
 * has samples (line_of[i] is view i's line). */
static int page_types(const pl_history_query *q, const struct hview *views, size_t nv, const size_t *line_of,
                      size_t n_lines, const struct cand *page, size_t page_n, pl_history *h)
{
    for (size_t j = 0; j < page_n; j++) {
        const struct cand *c = &page[j];
        pl_history_type *t = &h->types[j];

        t->name = malloc(c->len + 1);
        t->counts = new_series(h->n_times);
        t->bytes_series = new_series(h->n_times);
        if (!t->name || !t->counts || !t->bytes_series)
            return ENOMEM;
        memcpy(t->name, c->name, c->len);
        t->name[c->len] = '\0';
        t->type_id = c->id;
        t->count = c->count;
        t->bytes = c->bytes;
        t->growth = c->growth;
        t->bytes_growth = c->bytes_growth;
        if (!q->per_worker)
            continue;
        t->lines = calloc(n_lines ? n_lines : 1, sizeof *t->lines);
        if (!t->lines)
            return ENOMEM;
        t->n_lines = n_lines;
        for (size_t i = 0; i < nv; i++) {
            pl_history_line *line = &t->lines[line_of[i]];

            if (!views[i].n_times)
                continue;
            line->inc = views[i].inc;
            memcpy(line->host, views[i].rec.host, sizeof line->host);
            line->host[sizeof line->host - 1] = '\0';
            line->counts = new_series(h->n_times);
            line->bytes = new_series(h->n_times);
            if (!line->counts || !line->bytes)
                return ENOMEM;
        }
    }
    return 0;
}

/* Phase 3: adds view v's values of one type to t's merged series (and its
 * line): from the windows (arr_c/arr_b) or the log (vc/vb, by log column). */
static void add_series(const struct hview *v, const int64_t *arr_c, const int64_t *arr_b, const int64_t *vc,
                       const int64_t *vb, pl_history_type *t, pl_history_line *line)
{
    for (size_t si = v->slot_lo; si < v->slot_hi; si++) {
        int64_t k_i = v->slot[si], cv, bv;

        if (k_i < 0)
            continue;
        if (k_i >= (int64_t)v->log_off) {
            cv = vc[v->lcol[k_i - (int64_t)v->log_off]];
            bv = vb[v->lcol[k_i - (int64_t)v->log_off]];
        } else {
            cv = arr_c[k_i];
            bv = arr_b[k_i];
        }
        if (t->counts[si] < 0)
            t->counts[si] = t->bytes_series[si] = 0;
        t->counts[si] += cv;
        t->bytes_series[si] += bv;
        if (line) {
            line->counts[si] = cv;
            line->bytes[si] = bv;
        }
    }
}

/* Phase 3: ids[0..nb) the ids of types[0..nb) ascending, idx[k] the index in
 * types of ids[k] (ids has room for 2 * nb values). */
static void sort_batch(const pl_history_type *types, size_t nb, uint32_t *ids, size_t *idx)
{
    for (size_t j = 0; j < nb; j++) {
        ids[2 * j] = types[j].type_id;
        ids[2 * j + 1] = (uint32_t)j;
    }
    qsort(ids, nb, 2 * sizeof *ids, cmp_u32);
    for (size_t j = 0; j < nb; j++) {
        idx[j] = ids[2 * j + 1];
        ids[j] = ids[2 * j];
    }
}

/* Phase 3: fills h->types with the page's n types (page[0..n)): names,
 * keys, and their merged (and per_worker) series read from the windows and
 * the log. */
static int fill_page(pl_store *s, MDB_txn *txn, const pl_history_query *q, struct hview *views,
                     size_t nv, const struct cand *page, size_t page_n, pl_history *h)
{
    MDB_cursor *cur = NULL, *cur2 = NULL;
    uint8_t *filled = NULL;
    size_t max_wins = 0, total_log = 0, batch, b0;
    struct hview **vord = NULL;
    size_t *line_of = NULL, *lbase = NULL;
    int64_t *lc = NULL, *lb = NULL, *arr_c = NULL, *arr_b = NULL;
    uint32_t *ids = NULL;
    size_t *idx = NULL;
    size_t i, jj, max_times = 0, n_lines = 0;
    int rc;

    for (i = 0; i < nv; i++) {
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
    for (i = 0; i < nv; i++) {
        rc = mark_shown(&views[i]);
        if (rc)
            goto out;
        vord[i] = &views[i];
        lbase[i] = total_log;
        total_log += views[i].n_lcols;
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
    rc = page_types(q, views, nv, line_of, n_lines, page, page_n, h);
    if (rc)
        goto out;

    rc = mdb_cursor_open(txn, s->chunks, &cur);
    if (rc == 0)
        rc = mdb_cursor_open(txn, s->chunks2, &cur2);
    if (rc)
        goto out;
    for (b0 = 0; b0 < page_n; b0 += batch) {
        size_t nb = page_n - b0 < batch ? page_n - b0 : batch;

        sort_batch(h->types + b0, nb, ids, idx);
        memset(lc, 0, (nb * total_log + 1) * sizeof *lc);
        memset(lb, 0, (nb * total_log + 1) * sizeof *lb);
        for (i = 0; i < nv; i++) {
            rc = fill_log(s, txn, &views[i], ids, idx, nb, lc, lb, total_log, lbase[i]);
            if (rc)
                goto out;
        }
        /* In id order: the types of one chunk group follow each other, so
         * each incarnation's group values are looked up once (fill_level). */
        for (jj = 0; jj < nb; jj++) {
            pl_history_type *t = &h->types[b0 + idx[jj]];

            for (i = 0; i < nv; i++) {
                struct hview *v = vord[i];
                size_t vi = (size_t)(v - views);
                const int64_t *vc = lc + idx[jj] * total_log + lbase[vi];
                const int64_t *vb = lb + idx[jj] * total_log + lbase[vi];
                pl_history_line *line = q->per_worker ? &t->lines[line_of[vi]] : NULL;

                if (!v->n_times)
                    continue;
                rc = fill_windows(cur, cur2, v, t->type_id, arr_c, arr_b, filled);
                if (rc)
                    goto out;
                add_series(v, arr_c, arr_b, vc, vb, t, line);
            }
        }
    }
out:
    mdb_cursor_close(cur);
    mdb_cursor_close(cur2);
    free(filled);
    free(vord);
    free(line_of);
    free(lbase);
    free(ids);
    free(idx);
    free(lc);
    free(lb);
    free(arr_c);
    free(arr_b);
    return rc;
}

/* Phase 4: the trend of each type of h (and of each of its lines). */
static int classify_page(pl_history *h)
{
    int rc = 0;

    for (size_t j = 0; rc == 0 && j < h->n_types; j++) {
        pl_history_type *t = &h->types[j];

        rc = pl_trend_classify(t->counts, h->n_times, &t->trend);
        for (size_t i = 0; rc == 0 && i < t->n_lines; i++)
            rc = pl_trend_classify(t->lines[i].counts, h->n_times, &t->lines[i].trend);
    }
    return rc;
}

static void type_free(pl_history_type *t)
{
    free(t->name);
    free(t->counts);
    free(t->bytes_series);
    for (size_t j = 0; t->lines && j < t->n_lines; j++) {
        free(t->lines[j].counts);
        free(t->lines[j].bytes);
    }
    free(t->lines);
}

/* Phases 3 and 4 of a query with `trends`: fills and classifies the
 * candidates TREND_BATCH at a time and keeps those of the trends asked,
 * from the offset-th on, up to limit; h->total counts them all. */
#define TREND_BATCH 256
static int fill_by_trend(pl_store *s, MDB_txn *txn, const pl_history_query *q, struct hview *views,
                         size_t nv, const struct cand *cands, size_t n_cand, pl_history *h)
{
    uint64_t matched = 0;
    size_t kept = 0;
    int rc = 0;

    h->types = calloc(q->limit, sizeof *h->types);
    if (!h->types)
        return ENOMEM;
    for (size_t b0 = 0; rc == 0 && b0 < n_cand; b0 += TREND_BATCH) {
        pl_history part = *h;

        part.types = NULL;
        part.n_types = 0;
        rc = fill_page(s, txn, q, views, nv, cands + b0, n_cand - b0 < TREND_BATCH ? n_cand - b0 : TREND_BATCH,
                       &part);
        if (rc == 0)
            rc = classify_page(&part);
        for (size_t j = 0; j < part.n_types; j++) {
            pl_history_type *t = &part.types[j];

            if (rc == 0 && (q->trends >> t->trend & 1u) && matched++ >= q->offset && kept < q->limit) {
                h->types[kept++] = *t;
                memset(t, 0, sizeof *t);
            }
            type_free(t);
        }
        free(part.types);
    }
    h->n_types = kept;
    h->total = matched;
    return rc;
}

/* Answers a history query (see store.h and docs/store.md) from one read
 * transaction: loads a view per incarnation, then rank_types, lay_axis and
 * fill_page. */
int history_unguarded(pl_store *s, const pl_history_query *q, pl_history **out)
{
    MDB_txn *txn = NULL;
    MDB_cursor *logcur = NULL;
    struct inc_entry *list = NULL;
    struct hview *views = NULL;
    struct cand *cands = NULL;
    pl_history *h = NULL;
    struct hview *v;
    uint32_t max_points;
    size_t n_incs = 0, nv = 0, n_cand = 0, i, page_off, page_n;
    int64_t first = 0, newest = 0, last_alive = 0, until, axis_hi;
    int any_alive = 0, rc;

    *out = NULL;
    if (!q || q->limit < 1 || q->limit > 1000 || q->sort < PL_SORT_COUNT ||
        q->sort >= PL_SORT_N || q->since_ms < 0 || q->until_ms < 0 ||
        (q->since_ms && q->until_ms && q->until_ms <= q->since_ms) || q->trends >> PL_TREND_N) {
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
    if (rc == 0)
        rc = mdb_cursor_open(txn, s->log, &logcur);
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
        if (q->host && *q->host && strncmp(list[i].rec.host, q->host, sizeof list[i].rec.host) != 0)
            continue;
        views[nv].inc = list[i].inc;
        views[nv].rec = list[i].rec;
        views[nv].alive = rec_alive(&list[i].inc, &list[i].rec, pl_now_ms());
        rc = hview_load(s, txn, logcur, &views[nv]);
        nv++;
        if (rc)
            goto out;
        v = &views[nv - 1];
        v->grace_ms = (int64_t)v->rec.interval_ms * 3 / 2;
        v->end_ms = v->rec.ended_ms;
        if (v->n_times && v->times[v->n_times - 1] > v->end_ms)
            v->end_ms = v->times[v->n_times - 1];
        if (v->n_times) {
            if (!first || v->times[0] < first)
                first = v->times[0];
            if (v->times[v->n_times - 1] > newest)
                newest = v->times[v->n_times - 1];
            if (v->alive)
                any_alive = 1;
            else if (v->end_ms > last_alive)
                last_alive = v->end_ms;
        }
    }
    if ((q->pid || (q->host && *q->host)) && nv == 0) {
        rc = PL_ENOTFOUND;
        goto out;
    }
    /* The as-of moment: until, else now while an incarnation is alive, else
     * the last moment one was. A live axis ends at the newest sample. */
    h->live = !q->until_ms && any_alive;
    until = q->until_ms ? q->until_ms : any_alive ? (q->now_ms ? q->now_ms : pl_now_ms())
                                                  : last_alive;
    h->as_of_ms = first ? until : 0;
    h->since_ms = q->since_ms;
    axis_hi = h->live ? newest : until;
    rc = rank_types(s, txn, q, views, nv, q->since_ms, until, h->live, &cands, &n_cand);
    if (rc)
        goto out;
    h->total = n_cand;
    page_off = q->offset < n_cand ? (size_t)q->offset : n_cand;
    page_n = n_cand - page_off < q->limit ? n_cand - page_off : (size_t)q->limit;
    if (first)
        rc = lay_axis(views, nv, max_points, q->since_ms > first ? q->since_ms : first, axis_hi, h);
    if (rc)
        goto out;
    if (q->trends) {
        rc = fill_by_trend(s, txn, q, views, nv, cands, n_cand, h);
    } else {
        rc = fill_page(s, txn, q, views, nv, cands + page_off, page_n, h);
        if (rc == 0)
            rc = classify_page(h);
    }
    if (rc)
        goto out;
    *out = h;
    h = NULL;
out:
    mdb_cursor_close(logcur);
    txn_abort(s, txn);
    for (i = 0; views && i < nv; i++)
        hview_free(&views[i]);
    free(views);
    free(list);
    free(cands);
    pl_history_free(h);
    return rc;
}

/* Frees a history answer. NULL is a no-op. */
void pl_history_free(pl_history *h)
{
    for (size_t i = 0; h && h->types && i < h->n_types; i++)
        type_free(&h->types[i]);
    if (h) {
        free(h->types);
        free(h->times);
        free(h);
    }
}
