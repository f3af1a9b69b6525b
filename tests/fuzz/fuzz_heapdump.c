/* libFuzzer target for the heap dump reader (src/core/heapdump.c) and the
 * analysis of what it accepts (heapdump_dom.c, heapdump_report.c). Built
 * only with -DPYLOOT_FUZZ=ON (clang); CI runs it for a short bounded time
 * over tests/fuzz/corpus/heapdump/ (tools/bootstrap.sh, run_fuzz);
 * `bench/fuzz.sh heapdump` runs it for long.
 *
 * Input: one flags byte, then the body. Flag bit 0: the body is a payload,
 * wrapped here in a valid header (zlib, CRC-32) so that the fuzzer reaches
 * the payload decoder past the checksums; else the body is a whole file.
 * The body is copied into a buffer of its exact size, so that
 * AddressSanitizer sees a read past its end. A decoded dump is checked
 * against the rules its users rely on, then reported and diffed with
 * itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "pyloot/buf.h"
#include "pyloot/heapdump.h"

static void check(int cond)
{
    if (!cond)
        abort();
}

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint8_t *wrap(const uint8_t *raw, size_t len, size_t *out_len)
{
    uLongf clen = compressBound((uLong)len);
    uint8_t *img = malloc(PL_HEAPDUMP_HEADER + clen);
    if (!img || compress2(img + PL_HEAPDUMP_HEADER, &clen, raw, (uLong)len, 1) != Z_OK) {
        free(img);
        return NULL;
    }
    memcpy(img, PL_HEAPDUMP_MAGIC, 8);
    put_le(img + 8, PL_HEAPDUMP_VERSION, 4);
    put_le(img + 12, 0, 4);
    put_le(img + 16, len, 8);
    put_le(img + 24, clen, 8);
    put_le(img + 32, crc32(0L, raw, (uInt)len), 4);
    put_le(img + 36, crc32(0L, img, 36), 4);
    *out_len = PL_HEAPDUMP_HEADER + clen;
    return img;
}

static void check_dump(const pl_heapdump *d)
{
    for (size_t v = 0; v < d->n; v++) {
        check(d->addr[v] && (v == 0 || d->addr[v] > d->addr[v - 1]));
        check(d->type[v] < d->ntypes && d->out_off[v] <= d->out_off[v + 1]);
        check(d->repr_off[v + 1] - d->repr_off[v] <= PL_HEAPDUMP_REPR_MAX);
    }
    for (uint32_t e = 0; e < d->out_off[d->n]; e++)
        check(d->head[e] < d->n && ((d->label[e] & PL_HEAPDUMP_ITEM) || d->label[e] <= d->nstrings));
    for (size_t g = 0; g < d->ngroups; g++)
        for (uint32_t k = d->group_off[g]; k < d->group_off[g + 1]; k++)
            check(d->group_holder[k] < d->n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1u << 20))
        return 0;
    size_t len = size - 1;
    uint8_t *body = malloc(len ? len : 1);
    if (!body)
        return 0;
    memcpy(body, data + 1, len);
    if (data[0] & 1) {
        size_t ilen = 0;
        uint8_t *img = wrap(body, len, &ilen);
        free(body);
        if (!img)
            return 0;
        body = img;
        len = ilen;
    }
    pl_heapdump *d = NULL;
    char err[256];
    int rc = pl_heapdump_decode(body, len, &d, err, sizeof err);
    check(rc ? d == NULL && err[0] : d != NULL);
    if (d) {
        check_dump(d);
        pl_buf out = PL_BUF_INIT;
        pl_heapdump_report *r = NULL;
        pl_heapdump_diff *f = NULL;
        if (pl_heapdump_report_make(d, NULL, &r) == 0)
            check(pl_heapdump_report_json(r, &out) == 0);
        pl_heapdump_report_free(r);
        if (pl_heapdump_diff_make(d, d, NULL, &f) == 0) {
            check(f->new_objects == 0 && f->gone_objects == 0 && f->ntypes == 0);
            check(pl_heapdump_diff_json(f, &out) == 0);
        }
        pl_heapdump_diff_free(f);
        pl_buf_free(&out);
        /* What was read writes back and reads again the same. */
        pl_buf img = PL_BUF_INIT;
        pl_heapdump *again = NULL;
        check(pl_heapdump_encode(d, 1, &img) == 0);
        check(pl_heapdump_decode(img.data, img.len, &again, err, sizeof err) == 0);
        check(again->n == d->n && again->out_off[again->n] == d->out_off[d->n]);
        pl_heapdump_free(again);
        pl_buf_free(&img);
        pl_heapdump_free(d);
    }
    free(body);
    return 0;
}
