/* Public entry points that run several subsystems: an append writes the
 * sample, then compacts and applies retention (one sample, or a batch of
 * several incarnations' samples in one transaction); a heartbeat updates
 * the procs record, then prunes when due. */
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
int heartbeat_unguarded(pl_store *s, const pl_incarnation *inc, int64_t now_ms, uint64_t rss,
                        const pl_proc_stats *stats)
{
    struct beat b = {now_ms, rss, stats};
    int rc = update_rec(s, inc, 0, edit_heartbeat, &b);

    if (rc == 0)
        rc = maybe_prune(s, now_ms);
    return rc;
}

/* ---------------------------------------------------------------- append */

/* Checks one sample's arguments and makes its sorted copy without the zero
 * entries (*out malloc'ed, *m entries). 0, PL_EBADARG or ENOMEM. */
static int prepare_sample(const pl_store_sample *smp, pl_type_count **out, size_t *m)
{
    pl_type_count *sorted = NULL;
    size_t i, k = 0;
    int rc = 0;

    if (smp->time_ms < 0 || (smp->n && !smp->counts) || smp->n > (1u << 24)) {
        rc = PL_EBADARG;
        goto out;
    }
    sorted = malloc((smp->n ? smp->n : 1) * sizeof *sorted);
    if (!sorted) {
        rc = ENOMEM;
        goto out;
    }
    for (i = 0; i < smp->n; i++)
        if (smp->counts[i].count || smp->counts[i].bytes)
            sorted[k++] = smp->counts[i];
    rc = pl_type_counts_sort(sorted, k);
out:
    if (rc) {
        free(sorted);
        sorted = NULL;
        k = 0;
    }
    *out = sorted;
    *m = k;
    return rc;
}

/* What a batch holds besides the caller's items: per sample its sorted
 * copy, per item the result of the checks made before the transaction and
 * the procs record as last written. */
struct batch {
    pl_store_batch_item *items;
    size_t n;
    pl_type_count **sorted;   /* one per sample, items in order */
    size_t *lens;
    int *checked;             /* per item: 0 or the error found before the write */
    struct proc_rec *recs;    /* per item, valid when items[i].rc == 0 after the commit */
};

/* Writes one checked item inside txn. An error the item alone causes (found
 * before it writes anything) goes to item->rc and 0 is returned; any other
 * error fails the whole transaction and is returned. */
static int item_txn(pl_store *s, MDB_txn *txn, pl_store_batch_item *item, pl_type_count *const *sorted,
                    const size_t *lens, struct proc_rec *rec)
{
    size_t j;
    int rc = 0;

    for (j = 0; j < item->n_samples; j++) {
        if (!ids_in_range(s, txn, sorted[j], lens[j])) {
            item->rc = PL_EBADARG;
            goto out;
        }
    }
    if (item->remote) {
        rc = remote_register_txn(s, txn, item->remote, item->now_ms, &item->inc, rec);
    } else {
        rc = rec_get(s, txn, &item->inc, rec);
        if (rc == PL_ENOTFOUND || rc == PL_ECORRUPT) {
            item->rc = rc;
            rc = 0;
            goto out;
        }
    }
    for (j = 0; rc == 0 && j < item->n_samples; j++) {
        rc = log_append(s, txn, &item->inc, item->samples[j].time_ms, sorted[j], lens[j], rec);
        /* Under the sample's time as stored (log_append may move it). */
        if (rc == 0 && item->memory)
            rc = memory_put(s, txn, &item->inc, rec->last_time, &item->memory[j]);
        if (rc == 0 && item->routes)
            rc = routes_put(s, txn, &item->inc, rec->last_time, &item->routes[j]);
    }
    if (rc == 0 && item->end) {
        rec->ended_ms = item->now_ms > 0 ? item->now_ms : 1;
        if (item->now_ms > rec->last_seen_ms)
            rec->last_seen_ms = item->now_ms;
        rc = rec_put(s, txn, &item->inc, rec);
    }
out:
    return rc;
}

static int same_inc(const pl_incarnation *a, const pl_incarnation *b)
{
    return a->pid == b->pid && a->start == b->start;
}

/* Index of the last stored item of items[i]'s incarnation (i itself when
 * none follows). */
static size_t last_of_inc(const pl_store_batch_item *items, size_t n, size_t i)
{
    size_t j, last = i;

    for (j = i + 1; j < n; j++)
        if (items[j].rc == 0 && same_inc(&items[j].inc, &items[i].inc))
            last = j;
    return last;
}

/* Compacts, in nested transactions of the batch's, the incarnations whose
 * log grew past WINDOW, so that their compaction shares the batch's commit
 * instead of costing one of its own. A nested failure (MDB_MAP_FULL, a
 * type too noisy ...) aborts only the compaction: the samples stay in the
 * log and after_commit tries again in a transaction of its own. */
static void compact_in_batch(pl_store *s, MDB_txn *txn, struct batch *b)
{
    size_t i;
    int rc;

    for (i = 0; i < b->n; i++) {
        pl_store_batch_item *item = &b->items[i];

        if (item->rc || !item->n_samples || last_of_inc(b->items, b->n, i) != i || b->recs[i].n_log <= WINDOW)
            continue;
        rc = compact_nested(s, txn, &item->inc, 1, WINDOW);
        if (rc == PL_ETOOBIG)
            rc = compact_nested(s, txn, &item->inc, 0, WINDOW);
        if (rc == 0)
            rec_get(s, txn, &item->inc, &b->recs[i]);
    }
}

/* The batch's one write transaction. *over is set when the used pages
 * exceed max_bytes. */
static int batch_txn(pl_store *s, struct batch *b, int *over)
{
    MDB_txn *txn = NULL;
    size_t i, k = 0;
    int rc;

    rc = txn_begin(s, 1, &txn);
    if (rc)
        goto out;
    for (i = 0; i < b->n; i++) {
        pl_store_batch_item *item = &b->items[i];

        item->rc = b->checked[i];
        if (item->rc == 0 && (rc = item_txn(s, txn, item, b->sorted + k, b->lens + k, &b->recs[i])))
            break;
        k += item->n_samples;
    }
    if (rc == 0)
        compact_in_batch(s, txn, b);
    if (rc == 0)
        *over = used_bytes(s, txn) > max_bytes(s);
    rc = txn_end(s, txn, rc);
out:
    return rc;
}

/* Compacts and trims one incarnation after its samples were committed;
 * time_ms is its newest sample's. */
static int after_commit(pl_store *s, const pl_incarnation *inc, const struct proc_rec *rec, int64_t time_ms)
{
    int rc = 0, attempt, dropped;

    if (rec->n_log > WINDOW) {
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
    if (rec->samples > s->max_samples ||
        (rec->first_time && rec->first_time < time_ms - (int64_t)(s->max_age_s * 1000)))
        rc = retain_inc(s, inc, time_ms);
out:
    return rc;
}

/* Appends a batch in one transaction (see store.h). Due store-wide
 * retention (maybe_prune) runs before the write; compaction and the trims
 * of each touched incarnation (once, with its last record) run after the
 * commit, so a failure there never loses a sample. */
int append_batch_unguarded(pl_store *s, pl_store_batch_item *items, size_t n)
{
    struct batch b;
    size_t i, j, k, total = 0;
    int64_t latest = 0;
    int rc = 0, rc2, over = 0, dropped, attempt;

    memset(&b, 0, sizeof b);
    if (n && !items) {
        rc = PL_EBADARG;
        goto out;
    }
    b.items = items;
    b.n = n;
    for (i = 0; i < n; i++)
        total += items[i].n_samples;
    b.sorted = calloc(total ? total : 1, sizeof *b.sorted);
    b.lens = calloc(total ? total : 1, sizeof *b.lens);
    b.checked = calloc(n ? n : 1, sizeof *b.checked);
    b.recs = calloc(n ? n : 1, sizeof *b.recs);
    if (!b.sorted || !b.lens || !b.checked || !b.recs) {
        rc = ENOMEM;
        goto out;
    }
    for (i = 0, k = 0; i < n; i++) {
        const pl_store_batch_item *item = &items[i];
        const pl_proc_info *info = item->remote;

        if ((item->n_samples && !item->samples) ||
            (info && (!info->host[0] || !info->inc.pid || item->now_ms <= 0)))
            b.checked[i] = PL_EBADARG;
        for (j = 0; j < item->n_samples && !b.checked[i]; j++) {
            b.checked[i] = prepare_sample(&item->samples[j], &b.sorted[k + j], &b.lens[k + j]);
            if (item->samples[j].time_ms > latest)
                latest = item->samples[j].time_ms;
        }
        if (b.checked[i] == ENOMEM) {
            rc = ENOMEM;
            goto out;
        }
        if (item->now_ms > latest)
            latest = item->now_ms;
        k += item->n_samples;
    }
    maybe_prune(s, latest);
    for (attempt = 0; attempt < 100000; attempt++) {
        rc = batch_txn(s, &b, &over);
        if (!is_map_full(rc))
            break;
        if (make_room(s, &dropped) != 0 || !dropped)
            break;
    }
    if (rc)
        goto out;
    /* Every item is committed or refused; what follows only reorganizes
     * and trims. */
    for (i = 0; i < n; i++) {
        int64_t newest = 0;

        if (items[i].rc || !items[i].n_samples)
            continue;
        for (j = i + 1; j < n; j++)
            if (items[j].rc == 0 && same_inc(&items[j].inc, &items[i].inc))
                break;
        if (j < n)
            continue; /* a later item of this incarnation has the newer record */
        for (j = 0; j < n; j++)
            if (items[j].rc == 0 && same_inc(&items[j].inc, &items[i].inc) && items[j].n_samples &&
                items[j].samples[items[j].n_samples - 1].time_ms > newest)
                newest = items[j].samples[items[j].n_samples - 1].time_ms;
        rc2 = after_commit(s, &items[i].inc, &b.recs[i], newest);
        if (rc2 && !rc)
            rc = rc2;
    }
    if (over && (rc2 = prune_bytes(s)) != 0 && !rc)
        rc = rc2;
    goto done;
out:
    for (i = 0; i < n && items; i++)
        items[i].rc = rc;
done:
    for (i = 0; b.sorted && i < total; i++)
        free(b.sorted[i]);
    free(b.sorted);
    free(b.lens);
    free(b.checked);
    free(b.recs);
    return rc;
}


/* Stores one witness (see store.h): encoded by witness.c, written in one
 * transaction, and when the map is full, room made by retention.c and the
 * write tried again. */
int witness_put_unguarded(pl_store *s, const pl_incarnation *inc, uint32_t type_id, int64_t time_ms,
                          const pl_witness_step *steps, size_t n)
{
    pl_buf enc = PL_BUF_INIT;
    int rc, dropped = 0;

    if (!s || !inc || time_ms < 0 || type_id >= WIDE_BASE)
        return PL_EBADARG;
    rc = witness_encode(s, steps, n, &enc);
    for (int attempt = 0; rc == 0 && attempt < 1000; attempt++) {
        rc = witness_put_once(s, inc, type_id, time_ms, &enc);
        if (!is_map_full(rc) || make_room(s, &dropped) != 0 || !dropped)
            break;
        rc = 0; /* room was made: try again */
    }
    pl_buf_free(&enc);
    return rc;
}
