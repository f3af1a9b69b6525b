/* The history query (pl_store_history): one read transaction; ranks the
 * types, builds the time axis, then fills the page. */
#include "store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pyloot/error.h"

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
        size_t dlen, lo_i;
        uint64_t wtime;

        if (k.mv_size != CHUNK_KEY || memcmp(k.mv_data, lo, 4 + INC_KEY) != 0)
            break;
        wtime = get_be64((const uint8_t *)k.mv_data + 4 + INC_KEY);
        lo_i = lower_bound(&v->wins[0].wtime, v->n_wins, sizeof *v->wins, 8, wtime);
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
        size_t m = val.mv_size / LOG_ENTRY, j, lo_j;
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

/* Phase 1: ranks the types. Sums each type's latest count and bytes and
 * its growth over the incarnations the query keys on (merged: the live
 * ones; pid: its latest one), then keeps every type of the store that
 * passes `top` and `q`, sorted as asked. *cands (malloc'ed, caller frees)
 * points at names inside txn; *n_cand is its length. */
static int rank_types(pl_store *s, MDB_txn *txn, const pl_history_query *q,
                      const struct hview *views, size_t nv, struct cand **cands_out,
                      size_t *n_out)
{
    MDB_cursor *cur = NULL;
    struct cand *cands = NULL;
    int64_t *growth = NULL;
    uint64_t *cnt = NULL, *byt = NULL;
    uint32_t max_id;
    size_t n_cand = 0, i, j, key_from, key_to;
    struct sample smp = {0};
    MDB_val k, val;
    MDB_stat st;
    int rc;

    /* Sort keys: merged = the live incarnations; pid = its latest one. */
    max_id = max_type_id(s, txn);
    cnt = calloc((size_t)max_id + 1, sizeof *cnt);
    byt = calloc((size_t)max_id + 1, sizeof *byt);
    growth = calloc((size_t)max_id + 1, sizeof *growth);
    if (!cnt || !byt || !growth) {
        rc = ENOMEM;
        goto out;
    }
    key_from = q->pid ? (nv ? nv - 1 : 0) : 0;
    key_to = nv;
    rc = mdb_cursor_open(txn, s->log, &cur);
    if (rc)
        goto out;
    for (i = key_from; i < key_to; i++) {
        const struct hview *v = &views[i];

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
    rc = 0;
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
    qsort(cands, n_cand, sizeof *cands,
          q->sort == PL_SORT_COUNT ? cmp_cand_count
          : q->sort == PL_SORT_GROWTH ? cmp_cand_growth : cmp_cand_name);
    *cands_out = cands;
    *n_out = n_cand;
    cands = NULL;
out:
    mdb_cursor_close(cur);
    free(cands);
    free(cnt);
    free(byt);
    free(growth);
    free(smp.e);
    return rc;
}

/* Phase 2: the time axis (h->times) and which sample each view shows in
 * each slot. */
static int lay_axis(struct hview *views, size_t nv, uint32_t max_points, pl_history *h)
{
    size_t i;
    int rc = build_axis(views, nv, max_points, h);

    for (i = 0; rc == 0 && i < nv; i++)
        rc = build_slots(&views[i], h);
    return rc;
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
    size_t i, j, max_times = 0, n_lines = 0;
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
        const struct cand *c = &page[j];
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

/* Answers a history query (see store.h and docs/store.md) from one read
 * transaction: loads a view per incarnation, then rank_types, lay_axis and
 * fill_page. */
int pl_store_history(pl_store *s, const pl_history_query *q, pl_history **out)
{
    MDB_txn *txn = NULL;
    struct inc_entry *list = NULL;
    struct hview *views = NULL;
    struct cand *cands = NULL;
    pl_history *h = NULL;
    uint32_t max_points;
    size_t n_incs = 0, nv = 0, n_cand = 0, i, page_off, page_n;
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
        if (q->host && *q->host && strncmp(list[i].rec.host, q->host, sizeof list[i].rec.host) != 0)
            continue;
        views[nv].inc = list[i].inc;
        views[nv].rec = list[i].rec;
        views[nv].alive = rec_alive(&list[i].inc, &list[i].rec, pl_now_ms());
        rc = hview_load(s, txn, &views[nv]);
        nv++;
        if (rc)
            goto out;
    }
    if ((q->pid || (q->host && *q->host)) && nv == 0) {
        rc = PL_ENOTFOUND;
        goto out;
    }
    rc = rank_types(s, txn, q, views, nv, &cands, &n_cand);
    if (rc)
        goto out;
    h->total = n_cand;
    page_off = q->offset < n_cand ? (size_t)q->offset : n_cand;
    page_n = n_cand - page_off < q->limit ? n_cand - page_off : (size_t)q->limit;
    rc = lay_axis(views, nv, max_points, h);
    if (rc)
        goto out;
    rc = fill_page(s, txn, q, views, nv, cands + page_off, page_n, h);
    if (rc)
        goto out;
    *out = h;
    h = NULL;
out:
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
