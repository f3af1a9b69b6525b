/* Heap dump files: encoding and decoding (pyloot/heapdump.h,
 * docs/heapdump.md).
 *
 * File: a 40-byte header, then one zlib stream holding the payload.
 *   0  magic "PYLOOTHD"            8
 *   8  version (1)                 u32 little-endian
 *  12  flags (0)                   u32
 *  16  payload bytes (raw)         u64
 *  24  compressed bytes            u64 (the file is exactly 40 + this long)
 *  32  CRC-32 of the raw payload   u32
 *  36  CRC-32 of bytes 0..35       u32
 * The payload is column by column (what compresses best), every integer a
 * varint (pyloot/varint.h): meta, strings, types, vertices (address deltas,
 * types, sizes, flags, description lengths then bytes, out-degrees), edges
 * (zigzag head - tail, then labels), groups, root size. The decoder checks
 * every count against the bytes left before allocating for it, so a
 * hostile file cannot make it allocate much more than its payload. */
#include "pyloot/heapdump.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "pyloot/error.h"
#include "pyloot/graph.h"
#include "pyloot/varint.h"

/* See heapdump.h. */
void pl_heapdump_free(pl_heapdump *d)
{
    if (!d)
        return;
    free(d->host);
    free(d->argv);
    free(d->python);
    for (size_t i = 0; d->strings && i < d->nstrings; i++)
        free(d->strings[i]);
    free(d->strings);
    free(d->type_name);
    free(d->addr);
    free(d->type);
    free(d->size);
    free(d->flags);
    free(d->repr_off);
    free(d->repr);
    free(d->out_off);
    free(d->head);
    free(d->label);
    free(d->group_off);
    free(d->group_holder);
    free(d->group_size);
    free(d);
}

/* See heapdump.h. */
int pl_heapdump_label(const pl_heapdump *d, uint32_t e, pl_buf *out)
{
    uint32_t l = d->label[e];
    if (l & PL_HEAPDUMP_ITEM)
        return pl_buf_printf(out, "item[%u]", l & ~PL_HEAPDUMP_ITEM) ? ENOMEM : 0;
    if (l)
        return pl_buf_puts(out, d->strings[l - 1]) ? ENOMEM : 0;
    return 0;
}

/* ---- encoding ---- */

static void put_varint(pl_buf *b, uint64_t v)
{
    uint8_t tmp[PL_VARINT_MAX];
    pl_buf_append(b, tmp, pl_varint_put(tmp, v));
}

static void put_text(pl_buf *b, const char *s, size_t max)
{
    size_t len = s ? strnlen(s, max) : 0;
    put_varint(b, len);
    pl_buf_append(b, s ? s : "", len);
}

static uint64_t zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* The rules a dump must hold to be written (the decoder's checks). */
static int valid(const pl_heapdump *d)
{
    if (d->n > PL_GRAPH_MAX || (d->n && (!d->addr || !d->type || !d->size || !d->flags)) || !d->out_off ||
        !d->repr_off)
        return 0;
    for (size_t i = 0; i < d->ntypes; i++)
        if (d->type_name[i] >= d->nstrings)
            return 0;
    for (size_t v = 0; v < d->n; v++)
        if (!d->addr[v] || (v && d->addr[v] <= d->addr[v - 1]) || d->type[v] >= d->ntypes ||
            d->out_off[v + 1] < d->out_off[v] || d->repr_off[v + 1] < d->repr_off[v] ||
            d->repr_off[v + 1] - d->repr_off[v] > PL_HEAPDUMP_REPR_MAX)
            return 0;
    for (uint32_t e = 0; e < d->out_off[d->n]; e++) {
        uint32_t l = d->label[e];
        if (d->head[e] >= d->n || (!(l & PL_HEAPDUMP_ITEM) && l > d->nstrings))
            return 0;
    }
    for (size_t g = 0; g < d->ngroups; g++) {
        if (d->group_off[g + 1] <= d->group_off[g])
            return 0;
        for (uint32_t k = d->group_off[g]; k < d->group_off[g + 1]; k++)
            if (d->group_holder[k] >= d->n)
                return 0;
    }
    return 1;
}

static void encode_payload(const pl_heapdump *d, pl_buf *b)
{
    put_varint(b, (uint64_t)d->time_ms);
    put_varint(b, d->pid);
    put_varint(b, d->start);
    put_text(b, d->host, PL_HEAPDUMP_META_MAX);
    put_text(b, d->argv, PL_HEAPDUMP_META_MAX);
    put_text(b, d->python, PL_HEAPDUMP_META_MAX);
    put_varint(b, d->nstrings);
    for (size_t i = 0; i < d->nstrings; i++)
        put_text(b, d->strings[i], PL_HEAPDUMP_STRING_MAX);
    put_varint(b, d->ntypes);
    for (size_t i = 0; i < d->ntypes; i++)
        put_varint(b, d->type_name[i]);
    size_t n = d->n;
    put_varint(b, n);
    for (size_t v = 0; v < n; v++)
        put_varint(b, v ? d->addr[v] - d->addr[v - 1] : d->addr[0]);
    for (size_t v = 0; v < n; v++)
        put_varint(b, d->type[v]);
    for (size_t v = 0; v < n; v++)
        put_varint(b, d->size[v]);
    pl_buf_append(b, d->flags, n);
    for (size_t v = 0; v < n; v++)
        put_varint(b, d->repr_off[v + 1] - d->repr_off[v]);
    pl_buf_append(b, d->repr, d->repr_off[n]);
    for (size_t v = 0; v < n; v++)
        put_varint(b, d->out_off[v + 1] - d->out_off[v]);
    for (size_t v = 0; v < n; v++)
        for (uint32_t e = d->out_off[v]; e < d->out_off[v + 1]; e++)
            put_varint(b, zigzag((int64_t)d->head[e] - (int64_t)v));
    for (uint32_t e = 0; e < d->out_off[n]; e++) {
        uint32_t l = d->label[e];
        if (l & PL_HEAPDUMP_ITEM) {
            put_varint(b, 1);
            put_varint(b, l & ~PL_HEAPDUMP_ITEM);
        } else {
            put_varint(b, l ? (uint64_t)l + 1 : 0);
        }
    }
    put_varint(b, d->ngroups);
    for (size_t g = 0; g < d->ngroups; g++) {
        put_varint(b, d->group_off[g + 1] - d->group_off[g]);
        int64_t prev = 0;
        for (uint32_t k = d->group_off[g]; k < d->group_off[g + 1]; k++) {
            put_varint(b, zigzag((int64_t)d->group_holder[k] - prev));
            prev = d->group_holder[k];
        }
        put_varint(b, d->group_size[g]);
    }
    put_varint(b, d->root_size);
}

/* See heapdump.h. */
int pl_heapdump_encode(const pl_heapdump *d, int level, pl_buf *out)
{
    if (!valid(d))
        return PL_EBADARG;
    pl_buf raw = PL_BUF_INIT;
    int rc = 0;
    encode_payload(d, &raw);
    if (raw.err) {
        rc = ENOMEM;
        goto done;
    }
    uLong bound = compressBound((uLong)raw.len);
    size_t start = out->len;
    if (pl_buf_reserve(out, PL_HEAPDUMP_HEADER + bound)) {
        rc = ENOMEM;
        goto done;
    }
    uint8_t *h = (uint8_t *)out->data + start;
    uLongf clen = bound;
    if (compress2(h + PL_HEAPDUMP_HEADER, &clen, (const Bytef *)(raw.data ? raw.data : ""), (uLong)raw.len,
                  level) != Z_OK) {
        rc = ENOMEM;
        goto done;
    }
    memcpy(h, PL_HEAPDUMP_MAGIC, 8);
    put_le(h + 8, PL_HEAPDUMP_VERSION, 4);
    put_le(h + 12, 0, 4);
    put_le(h + 16, raw.len, 8);
    put_le(h + 24, clen, 8);
    put_le(h + 32, crc32_z(0L, (const Bytef *)(raw.data ? raw.data : ""), (z_size_t)raw.len), 4);
    put_le(h + 36, crc32(0L, h, 36), 4);
    out->len = start + PL_HEAPDUMP_HEADER + clen;
done:
    pl_buf_free(&raw);
    return rc;
}

/* See heapdump.h. */
int pl_heapdump_write(const pl_heapdump *d, int level, const char *path, size_t *bytes)
{
    pl_buf img = PL_BUF_INIT, tmp = PL_BUF_INIT;
    int rc = pl_heapdump_encode(d, level, &img);
    int fd = -1;
    if (rc)
        goto done;
    if (pl_buf_printf(&tmp, "%s.tmp%ld", path, (long)getpid())) {
        rc = ENOMEM;
        goto done;
    }
    fd = open(tmp.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = errno;
        goto done;
    }
    for (size_t off = 0; off < img.len;) {
        ssize_t w = write(fd, img.data + off, img.len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = w < 0 ? errno : EIO;
            goto done;
        }
        off += (size_t)w;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = errno;
        goto done;
    }
    fd = -1;
    if (rename(tmp.data, path) != 0)
        rc = errno;
    else if (bytes)
        *bytes = img.len;
done:
    if (fd >= 0)
        close(fd);
    if (rc && tmp.data)
        unlink(tmp.data);
    pl_buf_free(&img);
    pl_buf_free(&tmp);
    return rc;
}

/* ---- decoding ---- */

typedef struct reader {
    const uint8_t *p, *end;
    char *err;
    size_t errlen;
    int failed;
} reader;

static int fail(reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(reader *r, const char *fmt, ...)
{
    if (!r->failed && r->err && r->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->err, r->errlen, fmt, ap);
        va_end(ap);
    }
    r->failed = 1;
    return -1;
}

static uint64_t get_varint(reader *r, const char *what)
{
    uint64_t v = 0;
    if (r->failed)
        return 0;
    size_t k = pl_varint_get(r->p, r->end, &v);
    if (!k) {
        fail(r, "the payload ends inside %s", what);
        return 0;
    }
    r->p += k;
    return v;
}

/* A count of items that take at least one byte each. */
static size_t get_count(reader *r, const char *what, uint64_t max)
{
    uint64_t v = get_varint(r, what);
    if (!r->failed && (v > (uint64_t)(r->end - r->p) || v > max)) {
        fail(r, "%s (%llu) is larger than the file can hold", what, (unsigned long long)v);
        return 0;
    }
    return (size_t)v;
}

static char *get_text(reader *r, const char *what, size_t max)
{
    uint64_t len = get_varint(r, what);
    if (r->failed)
        return NULL;
    if (len > max || len > (uint64_t)(r->end - r->p)) {
        fail(r, "%s is %llu bytes long (at most %zu, and within the file)", what, (unsigned long long)len, max);
        return NULL;
    }
    if (memchr(r->p, 0, (size_t)len)) {
        fail(r, "%s holds a NUL byte", what);
        return NULL;
    }
    char *s = malloc((size_t)len + 1);
    if (!s) {
        fail(r, "out of memory");
        return NULL;
    }
    memcpy(s, r->p, (size_t)len);
    s[len] = '\0';
    r->p += len;
    return s;
}

/* base plus a zigzag delta, or -1 when that leaves [0, n). Unsigned
 * arithmetic: a lying delta wraps instead of overflowing. */
static int64_t add_zigzag(uint64_t base, uint64_t z, uint64_t n)
{
    uint64_t k = z >> 1;
    uint64_t u = (z & 1) ? base - k - 1 : base + k;
    if ((z & 1) ? k >= base : u < base || u >= n)
        return -1;
    return (int64_t)u;
}

/* Adds a byte figure to a running total, failing once the total passes
 * PL_HEAPDUMP_BYTES_MAX: sums and differences of sizes then fit an int64. */
static uint64_t get_bytes(reader *r, const char *what, uint64_t *total)
{
    uint64_t v = get_varint(r, what);
    if (!r->failed && (v > PL_HEAPDUMP_BYTES_MAX || (*total += v) > PL_HEAPDUMP_BYTES_MAX))
        fail(r, "%s makes the dump's bytes pass %llu", what, (unsigned long long)PL_HEAPDUMP_BYTES_MAX);
    return v;
}

static void *alloc_n(reader *r, size_t n, size_t each)
{
    if (r->failed)
        return NULL;
    void *p = calloc(n + 1, each);
    if (!p)
        fail(r, "out of memory");
    return p;
}

static void decode_strings(reader *r, pl_heapdump *d)
{
    d->time_ms = (int64_t)get_varint(r, "the time");
    uint64_t pid = get_varint(r, "the pid");
    if (pid > UINT32_MAX)
        fail(r, "the pid is out of range");
    d->pid = (uint32_t)pid;
    d->start = get_varint(r, "the start time");
    d->host = get_text(r, "the host", PL_HEAPDUMP_META_MAX);
    d->argv = get_text(r, "the command line", PL_HEAPDUMP_META_MAX);
    d->python = get_text(r, "the Python version", PL_HEAPDUMP_META_MAX);
    d->nstrings = get_count(r, "the number of strings", UINT32_MAX / 2);
    d->strings = alloc_n(r, d->nstrings, sizeof(char *));
    for (size_t i = 0; i < d->nstrings && !r->failed; i++)
        d->strings[i] = get_text(r, "a string", PL_HEAPDUMP_STRING_MAX);
    d->ntypes = get_count(r, "the number of types", UINT32_MAX);
    d->type_name = alloc_n(r, d->ntypes, sizeof(uint32_t));
    for (size_t i = 0; i < d->ntypes && !r->failed; i++) {
        uint64_t s = get_varint(r, "a type name");
        if (s >= d->nstrings)
            fail(r, "type %zu names string %llu of %zu", i, (unsigned long long)s, d->nstrings);
        d->type_name[i] = (uint32_t)s;
    }
}

static void decode_vertices(reader *r, pl_heapdump *d)
{
    size_t n = d->n = get_count(r, "the number of objects", PL_GRAPH_MAX);
    d->addr = alloc_n(r, n, sizeof(uint64_t));
    d->type = alloc_n(r, n, sizeof(uint32_t));
    d->size = alloc_n(r, n, sizeof(uint64_t));
    d->flags = alloc_n(r, n, 1);
    d->repr_off = alloc_n(r, n, sizeof(uint32_t));
    d->out_off = alloc_n(r, n, sizeof(uint32_t));
    uint64_t a = 0;
    for (size_t v = 0; v < n && !r->failed; v++) {
        uint64_t delta = get_varint(r, "an address");
        if (delta == 0 || a + delta < a)
            fail(r, "the addresses are not strictly ascending (object %zu)", v);
        d->addr[v] = a += delta;
    }
    for (size_t v = 0; v < n && !r->failed; v++) {
        uint64_t t = get_varint(r, "a type");
        if (t >= d->ntypes)
            fail(r, "object %zu has type %llu of %zu", v, (unsigned long long)t, d->ntypes);
        d->type[v] = (uint32_t)t;
    }
    uint64_t bytes = 0;
    for (size_t v = 0; v < n && !r->failed; v++)
        d->size[v] = get_bytes(r, "a size", &bytes);
    if (!r->failed && (size_t)(r->end - r->p) < n)
        fail(r, "the payload ends inside the flags");
    for (size_t v = 0; v < n && !r->failed; v++)
        if ((d->flags[v] = r->p[v]) & ~(PL_HEAPDUMP_ROOT | PL_HEAPDUMP_MODULE))
            fail(r, "object %zu has unknown flags 0x%x", v, d->flags[v]);
    if (!r->failed)
        r->p += n;
    uint64_t total = 0;
    for (size_t v = 0; v < n && !r->failed; v++) {
        uint64_t len = get_varint(r, "a description length");
        if (len > PL_HEAPDUMP_REPR_MAX)
            fail(r, "object %zu has a %llu-byte description (at most %d)", v, (unsigned long long)len,
                 PL_HEAPDUMP_REPR_MAX);
        d->repr_off[v] = (uint32_t)total;
        total += len;
    }
    if (!r->failed && total > (uint64_t)(r->end - r->p))
        fail(r, "the payload ends inside the descriptions");
    if (r->failed)
        return;
    d->repr_off[n] = (uint32_t)total;
    d->repr = alloc_n(r, (size_t)total, 1);
    if (d->repr)
        memcpy(d->repr, r->p, (size_t)total);
    r->p += total;
}

static void decode_edges(reader *r, pl_heapdump *d)
{
    size_t n = d->n;
    uint64_t m = 0;
    for (size_t v = 0; v < n && !r->failed; v++) {
        d->out_off[v] = (uint32_t)m;
        m += get_varint(r, "an out-degree");
        if (m > PL_GRAPH_MAX || m > (uint64_t)(r->end - r->p))
            fail(r, "there are more edges than the file can hold");
    }
    if (r->failed)
        return;
    d->out_off[n] = (uint32_t)m;
    d->head = alloc_n(r, (size_t)m, sizeof(uint32_t));
    d->label = alloc_n(r, (size_t)m, sizeof(uint32_t));
    for (size_t v = 0; v < n && !r->failed; v++)
        for (uint32_t e = d->out_off[v]; e < d->out_off[v + 1] && !r->failed; e++) {
            int64_t h = add_zigzag(v, get_varint(r, "an edge"), n);
            if (h < 0)
                fail(r, "edge %u of object %zu points outside the graph", e, v);
            d->head[e] = (uint32_t)h;
        }
    for (uint32_t e = 0; e < m && !r->failed; e++) {
        uint64_t l = get_varint(r, "an edge label");
        if (l == 1) {
            uint64_t i = get_varint(r, "an item index");
            if (i >= PL_HEAPDUMP_ITEM)
                fail(r, "edge %u has item index %llu", e, (unsigned long long)i);
            d->label[e] = PL_HEAPDUMP_ITEM | (uint32_t)i;
        } else if (l) {
            if (l - 2 >= d->nstrings)
                fail(r, "edge %u has label %llu of %zu strings", e, (unsigned long long)l, d->nstrings);
            d->label[e] = (uint32_t)(l - 1);
        }
    }
}

static void decode_groups(reader *r, pl_heapdump *d)
{
    size_t ng = d->ngroups = get_count(r, "the number of groups", UINT32_MAX);
    d->group_off = alloc_n(r, ng, sizeof(uint32_t));
    d->group_size = alloc_n(r, ng, sizeof(uint64_t));
    /* Each holder takes at least one byte: bounded by what is left. */
    size_t left = (size_t)(r->end - r->p);
    d->group_holder = alloc_n(r, left, sizeof(uint32_t));
    uint64_t total = 0, group_bytes = 0;
    for (size_t g = 0; g < ng && !r->failed; g++) {
        d->group_off[g] = (uint32_t)total;
        uint64_t k = get_varint(r, "a group");
        if (k == 0 || k > (uint64_t)(r->end - r->p) || total + k > left) {
            fail(r, "group %zu has a bad number of holders", g);
            break;
        }
        int64_t prev = 0;
        for (uint64_t j = 0; j < k && !r->failed; j++) {
            int64_t h = add_zigzag((uint64_t)prev, get_varint(r, "a group holder"), d->n);
            if (h < 0)
                fail(r, "group %zu has a holder outside the graph", g);
            d->group_holder[total + j] = (uint32_t)h;
            prev = h;
        }
        total += k;
        d->group_size[g] = get_bytes(r, "a group size", &group_bytes);
    }
    if (!r->failed)
        d->group_off[ng] = (uint32_t)total;
    d->root_size = get_bytes(r, "the root size", &group_bytes);
    if (!r->failed && r->p != r->end)
        fail(r, "%zu bytes follow the end of the payload", (size_t)(r->end - r->p));
}

static uint64_t get_le(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* Checks the header; *raw_len gets the payload's size. */
static int check_header(reader *r, const uint8_t *h, size_t len, uint64_t *raw_len, int *rc)
{
    *rc = PL_ECORRUPT;
    if (len < PL_HEAPDUMP_HEADER || memcmp(h, PL_HEAPDUMP_MAGIC, 8) != 0)
        return fail(r, "not a pyloot heap dump (no %s header)", PL_HEAPDUMP_MAGIC);
    if (crc32(0L, h, 36) != get_le(h + 36, 4))
        return fail(r, "the header is damaged (checksum mismatch)");
    uint64_t version = get_le(h + 8, 4), clen = get_le(h + 24, 8);
    *raw_len = get_le(h + 16, 8);
    if (version != PL_HEAPDUMP_VERSION) {
        *rc = PL_ESCHEMA;
        return fail(r, "format version %llu (this pyloot reads version %d)", (unsigned long long)version,
                    PL_HEAPDUMP_VERSION);
    }
    if (get_le(h + 12, 4) != 0)
        return fail(r, "unknown flags in the header");
    if (clen != len - PL_HEAPDUMP_HEADER)
        return fail(r, "the file is %zu bytes, the header says %llu: truncated or padded", len,
                    (unsigned long long)(clen + PL_HEAPDUMP_HEADER));
    if (*raw_len > PL_HEAPDUMP_RAW_MAX || *raw_len / PL_HEAPDUMP_RATIO_MAX > clen) {
        *rc = PL_ETOOBIG;
        return fail(r, "the payload claims %llu bytes from %llu compressed (refused)",
                    (unsigned long long)*raw_len, (unsigned long long)clen);
    }
    return 0;
}

/* See heapdump.h. */
int pl_heapdump_decode(const void *data, size_t len, pl_heapdump **out, char *err, size_t errlen)
{
    reader r = {NULL, NULL, err, errlen, 0};
    uint64_t raw_len = 0;
    int rc = PL_ECORRUPT;
    uint8_t *raw = NULL;
    pl_heapdump *d = NULL;
    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    if (check_header(&r, data, len, &raw_len, &rc))
        return rc;
    raw = malloc(raw_len ? (size_t)raw_len : 1);
    d = calloc(1, sizeof *d);
    if (!raw || !d) {
        fail(&r, "out of memory");
        rc = ENOMEM;
        goto done;
    }
    uLongf got = (uLongf)raw_len;
    int zrc = uncompress(raw, &got, (const Bytef *)data + PL_HEAPDUMP_HEADER, (uLong)(len - PL_HEAPDUMP_HEADER));
    if (zrc != Z_OK || got != raw_len) {
        fail(&r, "the compressed payload is damaged (%s)", zrc == Z_OK ? "short" : zError(zrc));
        goto done;
    }
    if (crc32_z(0L, raw, (z_size_t)raw_len) != get_le((const uint8_t *)data + 32, 4)) {
        fail(&r, "the payload is damaged (checksum mismatch)");
        goto done;
    }
    r.p = raw;
    r.end = raw + raw_len;
    decode_strings(&r, d);
    if (!r.failed)
        decode_vertices(&r, d);
    if (!r.failed)
        decode_edges(&r, d);
    if (!r.failed)
        decode_groups(&r, d);
    if (!r.failed)
        rc = 0;
    else if (err && strcmp(err, "out of memory") == 0)
        rc = ENOMEM;
done:
    free(raw);
    if (rc)
        pl_heapdump_free(d);
    else
        *out = d;
    return rc;
}

/* See heapdump.h. */
int pl_heapdump_read(const char *path, pl_heapdump **out, char *err, size_t errlen)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    uint8_t *data = NULL;
    int rc = 0;
    if (fd < 0 || fstat(fd, &st) != 0) {
        rc = errno;
        snprintf(err, errlen, "cannot open it: %s", strerror(rc));
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = PL_EBADARG;
        snprintf(err, errlen, "not a regular file");
        goto done;
    }
    size_t len = (size_t)st.st_size;
    data = malloc(len ? len : 1);
    if (!data) {
        rc = ENOMEM;
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    size_t got = 0;
    while (got < len) {
        ssize_t k = read(fd, data + got, len - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    rc = pl_heapdump_decode(data, got, out, err, errlen);
done:
    if (fd >= 0)
        close(fd);
    free(data);
    return rc;
}
