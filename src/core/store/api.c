/* Public entry points that run several subsystems: an append writes the
 * sample, then compacts and applies retention; a heartbeat updates the
 * procs record, then prunes when due. */
#include "store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pyloot/error.h"

struct beat {
    int64_t now_ms;
    uint64_t rss;
    const pl_proc_stats *stats;
};

static void edit_heartbeat(struct proc_rec *rec, int created, const void *arg)
{
    const struct beat *b = arg;

    if (b->now_ms > rec->last_seen_ms)
        rec->last_seen_ms = b->now_ms;
    rec->rss = b->rss;
    if (b->stats) {
        rec->collection_us = b->stats->collection_us;
        rec->gil_held_us = b->stats->gil_held_us;
    }
}

/* Updates last_seen, rss and the stats, then runs mdb_reader_check and
 * retention when they are due (see store.h). */
int pl_store_heartbeat(pl_store *s, const pl_incarnation *inc, int64_t now_ms, uint64_t rss,
                       const pl_proc_stats *stats)
{
    struct beat b = {now_ms, rss, stats};
    int rc = update_rec(s, inc, 0, edit_heartbeat, &b);

    if (rc == 0)
        rc = maybe_prune(s, now_ms);
    return rc;
}

/* ---------------------------------------------------------------- append */

static int cmp_count_id(const void *a, const void *b)
{
    const pl_type_count *x = a, *y = b;

    return x->type_id < y->type_id ? -1 : x->type_id > y->type_id;
}

/* Appends one sample (see store.h). Zero entries are not stored (absent
 * types count 0). Due store-wide retention (maybe_prune) runs before the
 * write; compaction and this incarnation's trims run after the sample is
 * committed, so a failure there never loses the sample. */
int pl_store_append(pl_store *s, const pl_incarnation *inc, int64_t time_ms,
                    const pl_type_count *counts, size_t n)
{
    pl_type_count *sorted = NULL;
    struct proc_rec rec;
    size_t m = 0, i;
    int rc = 0, over = 0, dropped, attempt;

    if (time_ms < 0 || (n && !counts) || n > (1u << 24)) {
        rc = PL_EBADARG;
        goto out;
    }
    sorted = malloc((n ? n : 1) * sizeof *sorted);
    if (!sorted) {
        rc = ENOMEM;
        goto out;
    }
    for (i = 0; i < n; i++)
        if (counts[i].count || counts[i].bytes)
            sorted[m++] = counts[i];
    qsort(sorted, m, sizeof *sorted, cmp_count_id);
    for (i = 1; i < m; i++) {
        if (sorted[i].type_id == sorted[i - 1].type_id) {
            rc = PL_EBADARG;
            goto out;
        }
    }
    maybe_prune(s, time_ms);
    for (attempt = 0; attempt < 100000; attempt++) {
        rc = append_txn(s, inc, time_ms, sorted, m, &rec, &over);
        if (!is_map_full(rc))
            break;
        if (make_room(s, &dropped) != 0 || !dropped)
            break;
    }
    if (rc)
        goto out;
    /* The sample is committed; what follows only reorganizes and trims. */
    if (rec.n_log > WINDOW) {
        for (attempt = 0; attempt < 1000; attempt++) {
            rc = compact_txn(s, inc, 1, WINDOW);
            if (rc == PL_ETOOBIG) /* a type too noisy for one level-2 value */
                rc = compact_txn(s, inc, 0, WINDOW);
            if (!is_map_full(rc))
                break;
            if (make_room(s, &dropped) != 0 || !dropped)
                break;
        }
        if (is_map_full(rc))
            rc = 0; /* the log simply stays longer; retried on the next append */
        if (rc)
            goto out;
    }
    if (rec.samples > s->max_samples ||
        (rec.first_time && rec.first_time < time_ms - (int64_t)(s->max_age_s * 1000))) {
        rc = retain_inc(s, inc, time_ms);
        if (rc)
            goto out;
    }
    if (over)
        rc = prune_bytes(s);
out:
    free(sorted);
    return rc;
}
