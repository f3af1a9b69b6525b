/* Requests by route (tables routes, routeids, routenames; schema 6): each
 * sample's requests by route, written with the sample in its transaction,
 * read back per incarnation for GET /api/routes, retained with the samples;
 * the route names, bounded and pruned when no sample uses them. See
 * docs/store.md, "Routes". */
#include "store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pyloot/error.h"

/* Bytes of a routes value at most: four to a page, as the log's. */
#define ROUTES_PART_MAX PACKED_MAX

/* ------------------------------------------------------------------ names */

/* The id of a route name, created when missing (PL_ROUTE_OTHER's once the
 * store holds PL_ROUTE_NAMES_MAX names). */
static int name_id(pl_store *s, MDB_txn *txn, const char *name, size_t len, uint32_t *id)
{
    MDB_val k = {len, (void *)name}, v;
    MDB_stat st;
    MDB_cursor *cur = NULL;
    uint8_t idk[4];
    uint32_t next = 1;
    int rc;

    if (!pl_route_name_valid(name, len)) {
        name = PL_ROUTE_OTHER;
        len = strlen(PL_ROUTE_OTHER);
        k = (MDB_val){len, (void *)name};
    }
    rc = mdb_get(txn, s->routenames, &k, &v);
    if (rc == 0) {
        if (v.mv_size != 4)
            return PL_ECORRUPT;
        memcpy(id, v.mv_data, 4);
        return 0;
    }
    if (rc != MDB_NOTFOUND)
        return rc;
    if ((rc = mdb_stat(txn, s->routeids, &st)))
        return rc;
    if (st.ms_entries >= PL_ROUTE_NAMES_MAX && strcmp(name, PL_ROUTE_OTHER) != 0)
        return name_id(s, txn, PL_ROUTE_OTHER, strlen(PL_ROUTE_OTHER), id);
    /* Ids after the highest in use; one freed by pruning may be given out
     * again, as no stored sample names it any more. */
    if ((rc = mdb_cursor_open(txn, s->routeids, &cur)))
        return rc;
    MDB_val lk, lv;
    rc = mdb_cursor_get(cur, &lk, &lv, MDB_LAST);
    mdb_cursor_close(cur);
    if (rc == 0 && lk.mv_size == 4)
        next = get_be32(lk.mv_data) + 1;
    else if (rc && rc != MDB_NOTFOUND)
        return rc;
    if (next == 0)
        return PL_ETOOBIG;
    put_be32(idk, next);
    v = (MDB_val){4, &next};
    if ((rc = mdb_put(txn, s->routenames, &k, &v, 0)))
        return rc;
    MDB_val ik = {4, idk}, iv = {len, (void *)name};
    if ((rc = mdb_put(txn, s->routeids, &ik, &iv, 0)))
        return rc;
    *id = next;
    return 0;
}

static int by_route_id(const void *a, const void *b)
{
    uint32_t x = ((const pl_route_entry *)a)->route_id, y = ((const pl_route_entry *)b)->route_id;
    return x < y ? -1 : x > y;
}

/* ------------------------------------------------------------------ write */

static void put_varint(uint8_t *p, size_t *at, uint64_t v)
{
    *at += pl_varint_put(p + *at, v);
}

/* See store_int.h. */
int routes_put(pl_store *s, MDB_txn *txn, const pl_incarnation *inc, int64_t time_ms, const pl_route_sample *r)
{
    pl_route_entry *e = NULL;
    uint8_t kb[ROUTES_KEY], val[ROUTES_PART_MAX + 2 * PL_VARINT_MAX];
    size_t n = 0, i, at, done = 0;
    uint8_t part = 0;
    int rc = 0;

    if (!s->routes)
        return 0;
    e = malloc((r->n ? r->n : 1) * sizeof *e);
    if (!e)
        return ENOMEM;
    for (i = 0; i < r->n; i++) {
        if ((rc = name_id(s, txn, r->routes[i].name, r->routes[i].len, &e[i].route_id)))
            goto out;
        e[i].requests = r->routes[i].requests;
    }
    qsort(e, r->n, sizeof *e, by_route_id);
    for (i = 0; i < r->n; i++) {
        if (n && e[n - 1].route_id == e[i].route_id) {
            uint64_t sum = e[n - 1].requests + e[i].requests;
            e[n - 1].requests = sum < e[i].requests ? UINT64_MAX : sum;
        } else {
            e[n++] = e[i];
        }
    }
    inc_key(kb, inc);
    put_be64(kb + INC_KEY, (uint64_t)time_ms);
    /* Part 0 leads with the entry count; parts follow until every entry is
     * written (an empty sample is one part of one byte). */
    do {
        size_t start = done;
        uint32_t prev = 0;
        at = 0;
        if (part == 0)
            put_varint(val, &at, n);
        while (done < n && at <= ROUTES_PART_MAX - 2 * PL_VARINT_MAX) {
            put_varint(val, &at, e[done].route_id - (done == start ? 0 : prev));
            put_varint(val, &at, e[done].requests);
            prev = e[done].route_id;
            done++;
        }
        kb[INC_KEY + 8] = part;
        MDB_val k = {sizeof kb, kb}, v = {at, val};
        if ((rc = mdb_put(txn, s->routes, &k, &v, 0)))
            goto out;
    } while (done < n && ++part != 0);
    if (done < n)
        rc = PL_ETOOBIG;
out:
    free(e);
    return rc;
}

/* -------------------------------------------------------------- retention */

/* Deletes the route names no stored sample uses (one write transaction). */
static int prune_names(pl_store *s)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    MDB_stat st;
    uint8_t *used = NULL;
    int rc;

    rc = txn_begin(s, 1, &txn);
    if (rc)
        return rc;
    if ((rc = mdb_stat(txn, s->routeids, &st)) || st.ms_entries < ROUTE_NAMES_PRUNE)
        goto out;
    /* Ids are below 2^32 but given out in order from 1: the highest in use
     * bounds the bitmap. */
    if ((rc = mdb_cursor_open(txn, s->routeids, &cur)) || (rc = mdb_cursor_get(cur, &k, &v, MDB_LAST)))
        goto out;
    mdb_cursor_close(cur);
    cur = NULL;
    uint32_t top = k.mv_size == 4 ? get_be32(k.mv_data) : 0;
    used = calloc((size_t)top / 8 + 1, 1);
    if (!used) {
        rc = ENOMEM;
        goto out;
    }
    if ((rc = mdb_cursor_open(txn, s->routes, &cur)))
        goto out;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *p = v.mv_data, *end = p + v.mv_size;
        uint64_t x, id = 0, n;
        size_t got;
        if (k.mv_size != ROUTES_KEY)
            continue;
        if (((const uint8_t *)k.mv_data)[INC_KEY + 8] == 0) {
            if (!(got = pl_varint_get(p, end, &n)))
                continue;
            p += got;
        }
        for (int first = 1; p < end; first = 0) {
            if (!(got = pl_varint_get(p, end, &x)))
                break;
            p += got;
            id = first ? x : id + x;
            if (!(got = pl_varint_get(p, end, &x)))
                break;
            p += got;
            if (id <= top)
                used[id / 8] |= (uint8_t)(1u << (id % 8));
        }
    }
    mdb_cursor_close(cur);
    cur = NULL;
    if (rc != MDB_NOTFOUND)
        goto out;
    /* The unused names, then their deletion (a cursor's position after a
     * deletion is left alone). */
    for (uint32_t id = 1; id <= top; id++) {
        uint8_t kb[4];
        MDB_val ik = {4, kb}, name;
        if ((used[id / 8] >> (id % 8)) & 1)
            continue;
        put_be32(kb, id);
        rc = mdb_get(txn, s->routeids, &ik, &name);
        if (rc == MDB_NOTFOUND)
            continue;
        if (rc)
            goto out;
        /* A copy: data read in a write transaction is valid only until the next change. */
        uint8_t copy[511];
        MDB_val nk = {name.mv_size < sizeof copy ? name.mv_size : sizeof copy, copy};
        memcpy(copy, name.mv_data, nk.mv_size);
        rc = mdb_del(txn, s->routenames, &nk, NULL);
        if (rc && rc != MDB_NOTFOUND)
            goto out;
        if ((rc = mdb_del(txn, s->routeids, &ik, NULL)))
            goto out;
    }
    rc = 0;
    if (rc == MDB_NOTFOUND)
        rc = 0;
out:
    mdb_cursor_close(cur);
    free(used);
    return txn_end(s, txn, rc);
}

/* See store_int.h. */
int routes_retain(pl_store *s, int64_t now_ms)
{
    static const struct inc_time_key layout = {ROUTES_KEY, 0, INC_KEY, 1};
    int rc;

    if (s->read_only || !s->routes)
        return 0;
    rc = retain_by_inc(s, s->routes, &layout, now_ms);
    if (rc == 0)
        rc = prune_names(s);
    return is_map_full(rc) ? 0 : rc;
}

/* ------------------------------------------------------------------- read */

/* Reads the route samples of one incarnation in (since, until] into d as
 * worker w. */
static int load_worker(pl_store *s, MDB_txn *txn, const pl_routes_query *q, pl_route_data *d, pl_route_worker *w,
                       size_t *cap_e)
{
    MDB_cursor *cur = NULL;
    uint8_t lo[ROUTES_KEY];
    MDB_val k = {sizeof lo, lo}, v;
    size_t cap_r = 0;
    int rc;

    inc_key(lo, &w->inc);
    put_be64(lo + INC_KEY, (uint64_t)(q->since_ms ? q->since_ms + 1 : 0));
    lo[INC_KEY + 8] = 0;
    if ((rc = mdb_cursor_open(txn, s->routes, &cur)))
        return rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *kb = k.mv_data, *p = v.mv_data, *end = p + v.mv_size;
        uint64_t x, id = 0;
        size_t got;
        if (k.mv_size != ROUTES_KEY || memcmp(kb, lo, INC_KEY) != 0)
            break;
        int64_t t = (int64_t)get_be64(kb + INC_KEY);
        if (q->until_ms && t > q->until_ms)
            break;
        if (kb[INC_KEY + 8] == 0) {
            if ((rc = array_reserve(&w->records, &cap_r, w->n_records + 1, sizeof *w->records, 64)))
                goto out;
            w->records[w->n_records++] = (pl_route_record){t, d->n_entries, 0};
            if (!(got = pl_varint_get(p, end, &x))) {
                rc = PL_ECORRUPT;
                goto out;
            }
            p += got;
        } else if (!w->n_records || w->records[w->n_records - 1].time_ms != t) {
            continue; /* a part without its first (cut by a window's edge) */
        }
        pl_route_record *r = &w->records[w->n_records - 1];
        for (int first = 1; p < end; first = 0) {
            if (!(got = pl_varint_get(p, end, &x))) {
                rc = PL_ECORRUPT;
                goto out;
            }
            p += got;
            id = first ? x : id + x;
            if (!(got = pl_varint_get(p, end, &x)) || id > UINT32_MAX) {
                rc = PL_ECORRUPT;
                goto out;
            }
            p += got;
            if (d->n_entries >= PL_ROUTE_READ_MAX) {
                rc = PL_ETOOBIG;
                goto out;
            }
            if ((rc = array_reserve(&d->entries, cap_e, d->n_entries + 1, sizeof *d->entries, 256)))
                goto out;
            d->entries[d->n_entries++] = (pl_route_entry){(uint32_t)id, x};
            r->n++;
        }
    }
    if (rc == MDB_NOTFOUND)
        rc = 0;
out:
    mdb_cursor_close(cur);
    return rc;
}

static int by_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Replaces the stored ids of d's entries by indexes into d->names (ids
 * ascending; so ids stay ascending within a record) and reads the name of
 * each: memory in the routes read, whatever the ids pruning left. */
static int load_names(pl_store *s, MDB_txn *txn, pl_route_data *d)
{
    uint32_t *ids = malloc((d->n_entries ? d->n_entries : 1) * sizeof *ids);
    size_t i, m = 0;
    int rc = 0;

    if (!ids)
        return ENOMEM;
    for (i = 0; i < d->n_entries; i++)
        ids[i] = d->entries[i].route_id;
    qsort(ids, d->n_entries, sizeof *ids, by_u32);
    for (i = 0; i < d->n_entries; i++)
        if (!m || ids[m - 1] != ids[i])
            ids[m++] = ids[i];
    d->names = calloc(m ? m : 1, sizeof *d->names);
    if (!d->names) {
        rc = ENOMEM;
        goto out;
    }
    d->n_names = m;
    for (i = 0; i < d->n_entries; i++)
        d->entries[i].route_id = (uint32_t)lower_bound(ids, m, sizeof *ids, sizeof *ids, d->entries[i].route_id);
    for (i = 0; i < m; i++) {
        uint8_t kb[4];
        MDB_val k = {4, kb}, v;
        put_be32(kb, ids[i]);
        rc = mdb_get(txn, s->routeids, &k, &v);
        if (rc == MDB_NOTFOUND)
            v = (MDB_val){strlen(PL_ROUTE_OTHER), PL_ROUTE_OTHER};
        else if (rc)
            goto out;
        d->names[i] = malloc(v.mv_size + 1);
        if (!d->names[i]) {
            rc = ENOMEM;
            goto out;
        }
        memcpy(d->names[i], v.mv_data, v.mv_size);
        d->names[i][v.mv_size] = '\0';
    }
    rc = 0;
out:
    free(ids);
    return rc;
}

int routes_unguarded(pl_store *s, const pl_routes_query *q, pl_route_data **out)
{
    MDB_txn *txn = NULL;
    struct inc_entry *list = NULL;
    pl_route_data *d = NULL;
    size_t n_incs = 0, matched = 0, cap_e = 0, i;
    int rc;

    *out = NULL;
    if (!q || q->since_ms < 0 || q->until_ms < 0 || (q->since_ms && q->until_ms && q->until_ms <= q->since_ms))
        return PL_EBADARG;
    d = calloc(1, sizeof *d);
    if (!d)
        return ENOMEM;
    rc = txn_begin(s, 0, &txn);
    if (rc == 0)
        rc = read_incs(s, txn, &list, &n_incs);
    if (rc)
        goto out;
    d->workers = calloc(n_incs + 1, sizeof *d->workers);
    if (!d->workers) {
        rc = ENOMEM;
        goto out;
    }
    for (i = 0; i < n_incs; i++) {
        pl_route_worker *w = &d->workers[d->n_workers];
        if (q->pid && list[i].inc.pid != q->pid)
            continue;
        if (q->host && *q->host && strncmp(list[i].rec.host, q->host, sizeof list[i].rec.host) != 0)
            continue;
        matched++;
        if (!s->routes)
            continue;
        w->inc = list[i].inc;
        memcpy(w->host, list[i].rec.host, sizeof w->host);
        w->host[sizeof w->host - 1] = '\0';
        if ((rc = load_worker(s, txn, q, d, w, &cap_e)))
            goto out;
        if (w->n_records)
            d->n_workers++;
        else
            free(w->records), w->records = NULL;
    }
    if ((q->pid || (q->host && *q->host)) && !matched) {
        rc = PL_ENOTFOUND;
        goto out;
    }
    if (s->routes && (rc = load_names(s, txn, d)))
        goto out;
    *out = d;
    d = NULL;
out:
    txn_abort(s, txn);
    free(list);
    pl_route_data_free(d);
    return rc;
}

/* See store.h. */
void pl_route_data_free(pl_route_data *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n_workers; i++)
        free(d->workers[i].records);
    /* A worker being loaded when the read failed is past n_workers. */
    if (d->workers)
        free(d->workers[d->n_workers].records);
    free(d->workers);
    free(d->entries);
    for (size_t i = 0; i < d->n_names; i++)
        free(d->names[i]);
    free(d->names);
    free(d);
}
