/* Encodings of the store: keys, window records, chunk values and log
 * parts. Pure functions over bytes; no LMDB calls. */
#include "store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pyloot/error.h"

/* Grows the malloc'ed array whose pointer is at pp (capacity *cap elements
 * of `size` bytes) to hold at least `need`: the capacity starts at `first`
 * and doubles. 0, or ENOMEM with the array and *cap unchanged. */
int array_reserve(void *pp, size_t *cap, size_t need, size_t size, size_t first)
{
    size_t c = *cap;
    void *p;

    if (need <= c)
        return 0;
    c = c ? c * 2 : first;
    while (c < need)
        c *= 2;
    memcpy(&p, pp, sizeof p);
    p = realloc(p, c * size);
    if (!p)
        return ENOMEM;
    memcpy(pp, &p, sizeof p);
    *cap = c;
    return 0;
}

/* Writes the log key inc(12) time(8) first_id(4) into k (LOG_KEY bytes). */
void log_key(uint8_t *k, const uint8_t *inck, uint64_t time, uint32_t first_id)
{
    memcpy(k, inck, INC_KEY);
    put_be64(k + INC_KEY, time);
    put_be32(k + INC_KEY + 8, first_id);
}

/* ---------------------------------------------------------- log values */

/* log2 of the bytes (1, 2, 4 or 8) that hold x. */
static unsigned width_code(uint64_t x)
{
    return x <= 0xff ? 0 : x <= 0xffff ? 1 : x <= 0xffffffffu ? 2 : 3;
}

/* Stores x in w (1, 2, 4 or 8) bytes at p, host byte order. */
static inline void put_w(uint8_t *p, uint64_t x, unsigned w)
{
    uint16_t x16 = (uint16_t)x;
    uint32_t x32 = (uint32_t)x;

    switch (w) {
    case 1:
        *p = (uint8_t)x;
        break;
    case 2:
        memcpy(p, &x16, 2);
        break;
    case 4:
        memcpy(p, &x32, 4);
        break;
    default:
        memcpy(p, &x, 8);
    }
}

static inline uint64_t get_w(const uint8_t *p, unsigned w)
{
    uint16_t x16;
    uint32_t x32;
    uint64_t x;

    switch (w) {
    case 1:
        return *p;
    case 2:
        memcpy(&x16, p, 2);
        return x16;
    case 4:
        memcpy(&x32, p, 4);
        return x32;
    default:
        memcpy(&x, p, 8);
        return x;
    }
}

int packed_open(struct packed *pk, uint32_t first_id, const MDB_val *v)
{
    const uint8_t *p = v->mv_data;
    unsigned h;

    if (v->mv_size < 1)
        return PL_ECORRUPT;
    h = p[0];
    /* Ids are 32-bit: an id offset is at most 4 bytes wide. */
    if ((h & 0xc0) || (h & 3) == 3)
        return PL_ECORRUPT;
    pk->p = p;
    pk->first_id = first_id;
    pk->wi = (uint8_t)(1u << (h & 3));
    pk->wc = (uint8_t)(1u << ((h >> 2) & 3));
    pk->wb = (uint8_t)(1u << ((h >> 4) & 3));
    pk->esize = (uint8_t)(pk->wi + pk->wc + pk->wb);
    if ((v->mv_size - 1) % pk->esize)
        return PL_ECORRUPT;
    pk->n = (v->mv_size - 1) / pk->esize;
    /* The last id must stay below WIDE_BASE; ids ascend, so all do. */
    if (pk->n && first_id + get_w(p + 1 + (pk->n - 1) * pk->esize, pk->wi) >= WIDE_BASE)
        return PL_ECORRUPT;
    return 0;
}

void packed_get(const struct packed *pk, size_t i, uint32_t *id, uint64_t *count, uint64_t *bytes)
{
    const uint8_t *e = pk->p + 1 + i * pk->esize;

    *id = pk->first_id + (uint32_t)get_w(e, pk->wi);
    *count = get_w(e + pk->wi, pk->wc);
    *bytes = get_w(e + pk->wi + pk->wc, pk->wb);
}

size_t packed_lower_bound(const struct packed *pk, uint32_t id)
{
    size_t a = 0, z = pk->n;
    uint64_t off;

    if (id < pk->first_id)
        return 0;
    off = id - pk->first_id;
    while (a < z) {
        size_t mid = (a + z) / 2;

        if (get_w(pk->p + 1 + mid * pk->esize, pk->wi) < off)
            a = mid + 1;
        else
            z = mid;
    }
    return a;
}

size_t packed_encode(uint8_t *out, const pl_type_count *e, size_t n, size_t *used)
{
    unsigned ci = 0, cc = 0, cb = 0, esize = 3;
    size_t m = 0, i, len = 1;

    /* Greedy: take entries while the value, at the widths they need, fits. */
    while (m < n) {
        unsigned ni = ci, nc = cc, nb = cb, w;

        w = width_code(e[m].type_id - e[0].type_id);
        ni = w > ni ? w : ni;
        w = width_code(e[m].count);
        nc = w > nc ? w : nc;
        w = width_code(e[m].bytes);
        nb = w > nb ? w : nb;
        w = (1u << ni) + (1u << nc) + (1u << nb);
        if (m && 1 + (m + 1) * w > PACKED_MAX)
            break;
        ci = ni;
        cc = nc;
        cb = nb;
        esize = w;
        m++;
    }
    out[0] = (uint8_t)(ci | cc << 2 | cb << 4);
    for (i = 0; i < m; i++, len += esize) {
        put_w(out + len, e[i].type_id - e[0].type_id, 1u << ci);
        put_w(out + len + (1u << ci), e[i].count, 1u << cc);
        put_w(out + len + (1u << ci) + (1u << cc), e[i].bytes, 1u << cb);
    }
    *used = m;
    return len;
}

/* Adds one log or snapshot value (key first_id `first_id`) to smp: packed
 * entries, or (older schemas) narrow entries are appended and a wide part
 * fixes the marked entries before it. */
int sample_add_part(struct sample *smp, int packed, uint32_t first_id, const MDB_val *v)
{
    const uint8_t *p = v->mv_data;
    size_t esize = first_id >= WIDE_BASE ? WIDE_ENTRY : LOG_ENTRY;
    size_t m = v->mv_size / esize, i;
    int rc = 0;

    if (packed) {
        struct packed pk;

        rc = packed_open(&pk, first_id, v);
        if (rc == 0)
            rc = array_reserve(&smp->e, &smp->cap, smp->n + pk.n, sizeof *smp->e, 256);
        for (i = 0; rc == 0 && i < pk.n; i++) {
            pl_type_count *c = &smp->e[smp->n++];

            packed_get(&pk, i, &c->type_id, &c->count, &c->bytes);
        }
        goto out;
    }
    if (v->mv_size % esize) {
        rc = PL_ECORRUPT;
        goto out;
    }
    if (first_id >= WIDE_BASE) {
        for (i = 0; i < m; i++, p += WIDE_ENTRY) {
            uint32_t id;
            size_t a;

            memcpy(&id, p, 4);
            a = lower_bound((const uint8_t *)smp->e + offsetof(pl_type_count, type_id), smp->n,
                            sizeof *smp->e, 4, id);
            if (a == smp->n || smp->e[a].type_id != id) {
                rc = PL_ECORRUPT;
                goto out;
            }
            memcpy(&smp->e[a].count, p + 4, 8);
            memcpy(&smp->e[a].bytes, p + 12, 8);
        }
        goto out;
    }
    rc = array_reserve(&smp->e, &smp->cap, smp->n + m, sizeof *smp->e, 256);
    if (rc)
        goto out;
    for (i = 0; i < m; i++, p += LOG_ENTRY) {
        pl_type_count *c = &smp->e[smp->n++];
        uint32_t c32, b32;

        memcpy(&c->type_id, p, 4);
        memcpy(&c32, p + 4, 4);
        memcpy(&b32, p + 8, 4);
        c->count = c32;
        c->bytes = b32;
    }
out:
    return rc;
}

/* Decodes a windows record (key and value) into *w; 0 or PL_ECORRUPT. */
int window_decode(const MDB_val *k, const MDB_val *v, struct window *w)
{
    const uint8_t *p = v->mv_data, *end = p + v->mv_size;
    uint64_t x;
    size_t used;
    uint32_t i;
    int rc = PL_ECORRUPT;

    if (k->mv_size != WIN_KEY || v->mv_size < 2)
        goto out;
    w->wtime = get_be64((const uint8_t *)k->mv_data + INC_KEY);
    w->flags = p[0];
    p++;
    used = pl_varint_get(p, end, &x);
    if (!used || x == 0 || x > WINDOW2)
        goto out;
    p += used;
    w->n = (uint32_t)x;
    w->times[0] = (int64_t)w->wtime;
    for (i = 1; i < w->n; i++) {
        used = pl_varint_get(p, end, &x);
        if (!used)
            goto out;
        p += used;
        w->times[i] = w->times[i - 1] + (int64_t)x;
    }
    rc = 0;
out:
    return rc;
}

/* Encodes a window value (flags, n, time deltas) into p; returns its length. */
size_t window_encode(uint8_t *p, unsigned flags, const int64_t *times, uint32_t n)
{
    size_t len = 0;
    uint32_t i;

    p[len++] = (uint8_t)flags;
    len += pl_varint_put(p + len, n);
    for (i = 1; i < n; i++)
        len += pl_varint_put(p + len, (uint64_t)(times[i] - times[i - 1]));
    return len;
}

/* ---------------------------------------------------------------- chunks */

/* Writes the chunk key inc(12) group(4) wtime(8) part(1) into k (CHUNK_KEY
 * bytes), or group(4) inc(12) wtime(8) part(1) when !inc_first (schemas 1-3:
 * a compaction then dirtied a page per group, all over the table). */
void chunk_key(uint8_t *k, int inc_first, uint32_t group, const uint8_t *inck, uint64_t wtime, uint8_t part)
{
    if (inc_first) {
        memcpy(k, inck, INC_KEY);
        put_be32(k + INC_KEY, group);
    } else {
        put_be32(k, group);
        memcpy(k + 4, inck, INC_KEY);
    }
    put_be64(k + 4 + INC_KEY, wtime);
    k[CHUNK_KEY - 1] = part;
}

/* Encodes one type's n points: the first count and bytes, then for each
 * following point either a run of unchanged points (2r) or a changed point
 * (2*zz(dcount)+1, zz(dbytes)), with 0 as an escape for huge deltas. */
size_t chunk_encode(uint8_t *p, const uint64_t *c, const uint64_t *b, uint32_t n)
{
    size_t len = 0;
    uint32_t i = 1, r;

    len += pl_varint_put(p + len, c[0]);
    len += pl_varint_put(p + len, b[0]);
    while (i < n) {
        if (c[i] == c[i - 1] && b[i] == b[i - 1]) {
            r = 1;
            while (i + r < n && c[i + r] == c[i - 1] && b[i + r] == b[i - 1])
                r++;
            len += pl_varint_put(p + len, (uint64_t)r << 1);
            i += r;
        } else {
            uint64_t zc = zigzag(c[i] - c[i - 1]), zb = zigzag(b[i] - b[i - 1]);

            if (zc < (1ull << 63)) {
                len += pl_varint_put(p + len, (zc << 1) | 1);
            } else {
                len += pl_varint_put(p + len, 0);
                len += pl_varint_put(p + len, zc);
            }
            len += pl_varint_put(p + len, zb);
            i++;
        }
    }
    return len;
}

/* Decodes n points into c and b (either may be NULL only when n == 1...
 * both are always given here). Only the first `want` points are needed;
 * want == 1 reads just the header. */
int chunk_decode(const uint8_t *p, size_t len, uint32_t n, uint32_t want, int64_t *c,
                        int64_t *b)
{
    const uint8_t *end = p + len;
    uint64_t x, y, cc, bb;
    uint32_t i = 1, r;
    size_t used;
    int rc = PL_ECORRUPT;

    if (want > n)
        want = n;
    if (!(used = pl_varint_get(p, end, &cc)))
        goto out;
    p += used;
    if (!(used = pl_varint_get(p, end, &bb)))
        goto out;
    p += used;
    c[0] = (int64_t)cc;
    b[0] = (int64_t)bb;
    while (i < want) {
        if (!(used = pl_varint_get(p, end, &x)))
            goto out;
        p += used;
        if (x == 0 || (x & 1)) {
            if (x == 0) {
                if (!(used = pl_varint_get(p, end, &x)))
                    goto out;
                p += used;
            } else {
                x >>= 1;
            }
            if (!(used = pl_varint_get(p, end, &y)))
                goto out;
            p += used;
            cc += unzigzag(x);
            bb += unzigzag(y);
            c[i] = (int64_t)cc;
            b[i] = (int64_t)bb;
            i++;
        } else {
            r = (uint32_t)(x >> 1);
            if (x >> 1 > n - i)
                goto out;
            while (r-- && i < n) {
                c[i] = (int64_t)cc;
                b[i] = (int64_t)bb;
                i++;
            }
        }
    }
    rc = 0;
out:
    return rc;
}

/* Finds the entry of type `low` (id & 15) in a group value. */
int group_find(const MDB_val *v, unsigned low, const uint8_t **data, size_t *len)
{
    struct group_iter it;
    unsigned id;
    int rc;

    group_iter_init(&it, v);
    while ((rc = group_next(&it, &id, data, len)) == 1 && id != low)
        ;
    return rc == 1 ? 0 : rc == 0 ? MDB_NOTFOUND : rc;
}

/* Frees the entries of n samples (not the array itself). */
void samples_free(struct sample *smp, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        free(smp[i].e);
}

/* The chunks table of a window level (WIN_L2 in flags: level 2). */
MDB_dbi level_dbi(const pl_store *s, unsigned flags)
{
    return (flags & WIN_L2) ? s->chunks2 : s->chunks;
}

/* Group shift of a window level: types per chunk-group value = 1 << shift. */
unsigned level_shift(unsigned flags)
{
    return (flags & WIN_L2) ? GROUP2_SHIFT : GROUP_SHIFT;
}

/* Appends one entry to smp (ids must ascend); 0 or ENOMEM. */
int sample_push(struct sample *smp, uint32_t id, uint64_t count, uint64_t bytes)
{
    int rc = array_reserve(&smp->e, &smp->cap, smp->n + 1, sizeof *smp->e, 256);

    if (rc)
        goto out;
    smp->e[smp->n].type_id = id;
    smp->e[smp->n].count = count;
    smp->e[smp->n].bytes = bytes;
    smp->n++;
out:
    return rc;
}

static int cmp_count_id(const void *a, const void *b)
{
    const pl_type_count *x = a, *y = b;

    return x->type_id < y->type_id ? -1 : x->type_id > y->type_id;
}

/* See store.h. */
int pl_type_counts_sort(pl_type_count *c, size_t n)
{
    size_t i;

    for (i = 1; i < n && c[i - 1].type_id < c[i].type_id; i++)
        ;
    if (i < n)
        qsort(c, n, sizeof *c, cmp_count_id);
    for (i = 1; i < n; i++)
        if (c[i].type_id == c[i - 1].type_id)
            return PL_EBADARG;
    return 0;
}
