/* Witnesses: for a growing type, one instance's path from a root, recorded
 * by the collector so that the evidence outlives the worker.
 *
 *   witness   type_id(4) inc(12) time(8) part(1) -> the encoded path
 *
 * Type first, so that /api/witnesses?group= is one range scan. The path is
 * u16 n_steps, then for each step three strings (type, via, repr), each a
 * varint length and its bytes, then optionally one more string, the
 * instance's allocation site ("file:line in function"), all split into
 * parts of at most PART_MAX bytes. A reader that predates the site ignores
 * it: it stops after the steps.
 * The database is created when missing; a store written before it existed
 * opened read-only simply has no witnesses (s->witness == 0). */
#include "store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pyloot/error.h"

#define WITNESS_KEY 25u
#define WITNESS_PREFIX 24u
#define WITNESS_MAX_PARTS 256u

static void witness_key(uint8_t *k, uint32_t type_id, const pl_incarnation *inc, uint64_t time, uint8_t part)
{
    put_be32(k, type_id);
    inc_key(k + 4, inc);
    put_be64(k + 16, time);
    k[24] = part;
}

/* Length of s cut to at most `max` bytes, not inside a UTF-8 sequence. */
static size_t cut_utf8(const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n <= max)
        return n;
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
        n--;
    return n;
}

static int encode_path(const pl_witness_step *steps, size_t n, const char *site, pl_buf *out)
{
    uint16_t n16 = (uint16_t)n;
    uint8_t vb[10];

    pl_buf_append(out, &n16, 2);
    for (size_t i = 0; i < n; i++) {
        const char *f[3] = {steps[i].type, steps[i].via, steps[i].repr};
        for (int j = 0; j < 3; j++) {
            size_t len = cut_utf8(f[j], PL_WITNESS_MAX_TEXT);
            pl_buf_append(out, vb, pl_varint_put(vb, len));
            pl_buf_append(out, f[j], len);
        }
    }
    if (site) {
        size_t len = cut_utf8(site, PL_WITNESS_MAX_TEXT);
        pl_buf_append(out, vb, pl_varint_put(vb, len));
        pl_buf_append(out, site, len);
    }
    return out->err ? ENOMEM : 0;
}

static int put_txn(pl_store *s, const pl_incarnation *inc, uint32_t type_id, int64_t time_ms, const pl_buf *enc)
{
    MDB_txn *txn = NULL;
    struct proc_rec rec;
    uint8_t kb[WITNESS_KEY];
    MDB_val k = {WITNESS_KEY, kb}, v;
    size_t off = 0;
    int rc;

    rc = txn_begin(s, 1, &txn);
    if (rc)
        goto out;
    rc = rec_get(s, txn, inc, &rec);
    for (unsigned part = 0; rc == 0 && off < enc->len; part++) {
        size_t len = enc->len - off < PART_MAX ? enc->len - off : PART_MAX;
        witness_key(kb, type_id, inc, (uint64_t)time_ms, (uint8_t)part);
        v.mv_size = len;
        v.mv_data = enc->data + off;
        rc = mdb_put(txn, s->witness, &k, &v, 0);
        off += len;
    }
out:
    return txn_end(s, txn, rc);
}

/* See store_int.h. */
int witness_encode(pl_store *s, const pl_witness_step *steps, size_t n, const char *site, pl_buf *enc)
{
    if (!steps || n == 0 || n > PL_WITNESS_MAX_STEPS)
        return PL_EBADARG;
    for (size_t i = 0; i < n; i++)
        if (!steps[i].type || !steps[i].via || !steps[i].repr)
            return PL_EBADARG;
    if (s->read_only || !s->witness)
        return EROFS;
    int rc = encode_path(steps, n, site, enc);
    if (!rc && enc->len > (size_t)WITNESS_MAX_PARTS * PART_MAX)
        rc = PL_ETOOBIG;
    return rc;
}

/* See store_int.h. */
int witness_put_once(pl_store *s, const pl_incarnation *inc, uint32_t type_id, int64_t time_ms, const pl_buf *enc)
{
    return put_txn(s, inc, type_id, time_ms, enc);
}

/* Decodes one path (all its parts concatenated) into one malloc'ed block:
 * the step array followed by the NUL-terminated strings. */
static int decode_path(const uint8_t *p, size_t len, pl_witness *w)
{
    const uint8_t *end = p + len;
    uint16_t n;
    int rc = PL_ECORRUPT;

    if (len < 2)
        goto out;
    memcpy(&n, p, 2);
    p += 2;
    if (n == 0 || n > PL_WITNESS_MAX_STEPS)
        goto out;
    /* strings need at most len + 3n + 1 bytes with their NULs (the site's too) */
    size_t size = n * sizeof(pl_witness_step) + len + 3u * n + 1;
    pl_witness_step *steps = malloc(size);
    if (!steps) {
        rc = ENOMEM;
        goto out;
    }
    char *text = (char *)(steps + n);
    for (size_t i = 0; i < n; i++) {
        const char **f[3] = {&steps[i].type, &steps[i].via, &steps[i].repr};
        for (int j = 0; j < 3; j++) {
            uint64_t l;
            size_t used = pl_varint_get(p, end, &l);
            if (!used || l > (uint64_t)(end - p - (ptrdiff_t)used)) {
                free(steps);
                goto out;
            }
            memcpy(text, p + used, (size_t)l);
            text[l] = '\0';
            *f[j] = text;
            text += l + 1;
            p += used + l;
        }
    }
    w->site = NULL;
    if (p < end) {
        uint64_t l;
        size_t used = pl_varint_get(p, end, &l);
        if (used && l <= (uint64_t)(end - p - (ptrdiff_t)used)) {
            memcpy(text, p + used, (size_t)l);
            text[l] = '\0';
            w->site = text;
        }
    }
    w->steps = steps;
    w->n_steps = n;
    rc = 0;
out:
    return rc;
}

static int cmp_newest_first(const void *a, const void *b)
{
    const pl_witness *x = a, *y = b;

    if (x->time_ms != y->time_ms)
        return x->time_ms > y->time_ms ? -1 : 1;
    if (x->inc.pid != y->inc.pid)
        return x->inc.pid < y->inc.pid ? -1 : 1;
    return x->inc.start < y->inc.start ? -1 : x->inc.start > y->inc.start;
}

/* Reads the witnesses of one type (see store.h). */
int witnesses_unguarded(pl_store *s, const char *group, uint32_t pid, const char *host, size_t max,
                       pl_witness_list *out)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    pl_buf path = PL_BUF_INIT;
    pl_witness *list = NULL;
    size_t n = 0, cap = 0;
    uint32_t type_id;
    uint8_t lo[WITNESS_KEY], prev[WITNESS_PREFIX];
    MDB_val k, v;
    int rc, have = 0;

    memset(out, 0, sizeof *out);
    if (!s || !group || !*group) {
        rc = PL_EBADARG;
        goto out;
    }
    rc = txn_begin(s, 0, &txn);
    if (rc)
        goto out;
    rc = type_find(s, txn, group, strlen(group), &type_id);
    if (rc == MDB_NOTFOUND)
        rc = PL_ENOTFOUND;
    if (rc || !s->witness || max == 0)
        goto out;
    rc = mdb_cursor_open(txn, s->witness, &cur);
    if (rc)
        goto out;
    put_be32(lo, type_id);
    memset(lo + 4, 0, WITNESS_KEY - 4);
    k.mv_size = WITNESS_KEY;
    k.mv_data = lo;
    /* One extra turn after the last record flushes the path being gathered. */
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        int in_range = rc == 0 && k.mv_size == WITNESS_KEY && get_be32(k.mv_data) == type_id;
        if (rc && rc != MDB_NOTFOUND)
            goto out;
        if (have && (!in_range || memcmp(k.mv_data, prev, WITNESS_PREFIX) != 0)) {
            pl_witness w;
            struct proc_rec rec;
            memset(&w, 0, sizeof w);
            inc_from_key(&w.inc, prev + 4);
            w.time_ms = (int64_t)get_be64(prev + 16);
            w.type_id = type_id;
            have = 0;
            int r = rec_get(s, txn, &w.inc, &rec);
            if (r == PL_ENOTFOUND || (pid && w.inc.pid != pid) ||
                (r == 0 && host && *host && strncmp(rec.host, host, sizeof rec.host) != 0))
                goto skip;
            if (r) {
                rc = r;
                goto out;
            }
            memcpy(w.host, rec.host, sizeof w.host);
            w.host[sizeof w.host - 1] = '\0';
            if (path.err) {
                rc = ENOMEM;
                goto out;
            }
            r = decode_path((const uint8_t *)path.data, path.len, &w);
            if (r == PL_ECORRUPT)
                goto skip; /* one damaged record does not hide the others */
            if (r || (r = array_reserve(&list, &cap, n + 1, sizeof *list, 16)) != 0) {
                free(w.steps);
                rc = r;
                goto out;
            }
            list[n++] = w;
        skip:
            pl_buf_reset(&path);
        }
        if (!in_range)
            break;
        memcpy(prev, k.mv_data, WITNESS_PREFIX);
        have = 1;
        pl_buf_append(&path, v.mv_data, v.mv_size);
    }
    rc = 0;
    if (n > 1)
        qsort(list, n, sizeof *list, cmp_newest_first);
    for (size_t i = max; i < n; i++)
        free(list[i].steps);
    if (n > max)
        n = max;
out:
    mdb_cursor_close(cur);
    txn_abort(s, txn);
    pl_buf_free(&path);
    if (rc == 0) {
        out->w = list;
        out->n = n;
    } else {
        for (size_t i = 0; i < n; i++)
            free(list[i].steps);
        free(list);
    }
    return rc;
}

/* Frees a witness list (see store.h). */
void pl_witness_list_free(pl_witness_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        free(l->w[i].steps);
    free(l->w);
    l->w = NULL;
    l->n = 0;
}

/* See store_int.h: a witness goes with its incarnation and with the samples
 * it was taken from (dropped by max_samples, max_age or the byte budget);
 * witnesses of dropped data go on a later pass. */
int witness_retain(pl_store *s, int64_t now_ms)
{
    static const struct inc_time_key layout = {WITNESS_KEY, 4, 16, 0};

    return retain_by_inc(s, s->witness, &layout, now_ms);
}
