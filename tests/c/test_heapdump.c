/* Heap dump files: round trip, analysis, and refusal of damaged,
 * truncated and hostile files (pyloot/heapdump.h). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "pyloot/heapdump.h"
#include "pyloot/varint.h"
#include "test.h"

static char *dupstr(const char *s)
{
    char *r = malloc(strlen(s) + 1);
    strcpy(r, s);
    return r;
}

/* module(root) -> list -> a, b ; a -> b ; c unreachable (cycle c <-> d).
 * Types: module, list, Item. Sizes 100, 50, 10, 20, 1, 2. */
static pl_heapdump *sample(void)
{
    pl_heapdump *d = calloc(1, sizeof *d);
    d->time_ms = 1700000000000;
    d->pid = 4242;
    d->start = 99;
    d->host = dupstr("box");
    d->argv = dupstr("gunicorn app:app --password <redacted>");
    d->python = dupstr("3.11.9");
    const char *strings[] = {"module", "list", "demo.Item", "attribute 'items'", "attribute 'peer'"};
    d->nstrings = 5;
    d->strings = calloc(5, sizeof(char *));
    for (int i = 0; i < 5; i++)
        d->strings[i] = dupstr(strings[i]);
    d->ntypes = 3;
    d->type_name = calloc(3, sizeof(uint32_t));
    for (uint32_t i = 0; i < 3; i++)
        d->type_name[i] = i;
    size_t n = d->n = 6;
    d->addr = calloc(n, sizeof(uint64_t));
    d->type = calloc(n, sizeof(uint32_t));
    d->size = calloc(n, sizeof(uint64_t));
    d->flags = calloc(n, 1);
    d->repr_off = calloc(n + 1, sizeof(uint32_t));
    d->out_off = calloc(n + 1, sizeof(uint32_t));
    uint32_t types[] = {0, 1, 2, 2, 2, 2};
    uint64_t sizes[] = {100, 50, 10, 20, 1, 2};
    const char *reprs[] = {"module\\ndemo", "list[2]", "object\\ndemo.Item", "object\\ndemo.Item",
                           "object\\ndemo.Item", "object\\ndemo.Item"};
    pl_buf rb = PL_BUF_INIT;
    for (size_t v = 0; v < n; v++) {
        d->addr[v] = 0x1000 + 0x40 * v;
        d->type[v] = types[v];
        d->size[v] = sizes[v];
        d->repr_off[v] = (uint32_t)rb.len;
        pl_buf_puts(&rb, reprs[v]);
    }
    d->repr_off[n] = (uint32_t)rb.len;
    d->repr = rb.data;
    d->flags[0] = PL_HEAPDUMP_ROOT | PL_HEAPDUMP_MODULE;
    /* edges: 0->1 (attr items), 1->2 item[0], 1->3 item[1], 2->3 (attr peer), 4->5, 5->4 */
    uint32_t off[] = {0, 1, 3, 4, 4, 5, 6};
    uint32_t heads[] = {1, 2, 3, 3, 5, 4};
    uint32_t labels[] = {4, PL_HEAPDUMP_ITEM | 0, PL_HEAPDUMP_ITEM | 1, 5, 0, 0};
    memcpy(d->out_off, off, sizeof off);
    d->head = calloc(6, sizeof(uint32_t));
    d->label = calloc(6, sizeof(uint32_t));
    memcpy(d->head, heads, sizeof heads);
    memcpy(d->label, labels, sizeof labels);
    /* one untracked object of 7 bytes shared by a and b: goes to the list */
    d->ngroups = 1;
    d->group_off = calloc(2, sizeof(uint32_t));
    d->group_off[1] = 2;
    d->group_holder = calloc(2, sizeof(uint32_t));
    d->group_holder[0] = 2;
    d->group_holder[1] = 3;
    d->group_size = calloc(1, sizeof(uint64_t));
    d->group_size[0] = 7;
    d->root_size = 1000;
    return d;
}

static void test_round_trip(void)
{
    pl_heapdump *d = sample(), *r = NULL;
    pl_buf img = PL_BUF_INIT;
    char err[256];
    CHECK_OK(pl_heapdump_encode(d, 6, &img));
    CHECK_OK(pl_heapdump_decode(img.data, img.len, &r, err, sizeof err));
    if (!r) {
        fprintf(stderr, "decode: %s\n", err);
        return;
    }
    CHECK_EQ_INT(r->n, 6);
    CHECK_EQ_INT(r->pid, 4242);
    CHECK_EQ_INT(r->start, 99);
    CHECK(strcmp(r->host, "box") == 0);
    CHECK(strcmp(r->python, "3.11.9") == 0);
    CHECK_EQ_INT(r->root_size, 1000);
    for (size_t v = 0; v < 6; v++) {
        CHECK_EQ_INT(r->addr[v], d->addr[v]);
        CHECK_EQ_INT(r->type[v], d->type[v]);
        CHECK_EQ_INT(r->size[v], d->size[v]);
        CHECK_EQ_INT(r->flags[v], d->flags[v]);
        CHECK_EQ_INT(r->out_off[v + 1], d->out_off[v + 1]);
    }
    CHECK(memcmp(r->repr, d->repr, d->repr_off[6]) == 0);
    for (uint32_t e = 0; e < 6; e++) {
        CHECK_EQ_INT(r->head[e], d->head[e]);
        CHECK_EQ_INT(r->label[e], d->label[e]);
    }
    pl_buf lb = PL_BUF_INIT;
    CHECK_OK(pl_heapdump_label(r, 2, &lb));
    CHECK(lb.len == 7 && memcmp(lb.data, "item[1]", 7) == 0);
    pl_buf_reset(&lb);
    CHECK_OK(pl_heapdump_label(r, 3, &lb));
    CHECK(lb.len == 16 && memcmp(lb.data, "attribute 'peer'", 16) == 0);
    pl_buf_free(&lb);

    /* write + read through a file */
    char path[] = "/tmp/pyloot_test_heapdump_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    CHECK_OK(pl_heapdump_write(d, 1, path, NULL));
    pl_heapdump *f = NULL;
    CHECK_OK(pl_heapdump_read(path, &f, err, sizeof err));
    CHECK(f && f->n == 6 && f->head[3] == 3);
    pl_heapdump_free(f);
    unlink(path);
    pl_heapdump_free(r);
    pl_heapdump_free(d);
    pl_buf_free(&img);
}

static void test_retained(void)
{
    pl_heapdump *d = sample();
    pl_heapdump_dom *t = NULL;
    CHECK_OK(pl_heapdump_dom_build(d, &t));
    if (!t)
        return;
    /* list dominates a and b, and gets the 7 shared bytes */
    CHECK_EQ_INT(pl_heapdump_retained(t, 1), 50 + 10 + 20 + 7);
    CHECK_EQ_INT(pl_heapdump_retained(t, 0), 100 + 87);
    CHECK_EQ_INT(pl_heapdump_retained(t, 2), 10);
    CHECK_EQ_INT(pl_heapdump_idom(t, 3), 1);
    /* the unreachable cycle gets a root of its own: 4 first */
    CHECK_EQ_INT(pl_heapdump_retained(t, 4), 3);
    CHECK_EQ_INT(pl_heapdump_total(t), 100 + 87 + 3 + 1000);
    pl_heapdump_dom_free(t);

    pl_buf js = PL_BUF_INIT;
    pl_heapdump_report *rep = NULL;
    CHECK_OK(pl_heapdump_report_make(d, NULL, &rep));
    CHECK_OK(pl_heapdump_report_json(rep, &js));
    pl_heapdump_report_free(rep);
    pl_buf_putc(&js, '\0');
    CHECK(strstr(js.data, "\"objects\":6") != NULL);
    CHECK(strstr(js.data, "{\"name\":\"module\",\"count\":1,\"bytes\":100}") != NULL);
    /* the module first, then the list with its path from the module */
    CHECK(strstr(js.data, "\"retainers\":[{\"id\":4096,\"type\":\"module\"") != NULL);
    CHECK(strstr(js.data, "},{\"id\":4160,\"type\":\"list\",\"repr\":\"list[2]\",\"size\":50,\"retained\":87") != NULL);
    if (test_failures)
        fprintf(stderr, "%s\n", js.data);
    CHECK(strstr(js.data, "\"via\":\"attribute 'items'\"") != NULL);
    pl_buf_free(&js);
    pl_heapdump_free(d);
}

static void test_diff(void)
{
    pl_heapdump *o = sample(), *d = sample();
    /* new: object 3 replaced by a new address (gone + new), plus 2 more items held by the list */
    free(d->label);
    free(d->head);
    d->n = 8;
    d->addr = realloc(d->addr, 8 * sizeof(uint64_t));
    d->type = realloc(d->type, 8 * sizeof(uint32_t));
    d->size = realloc(d->size, 8 * sizeof(uint64_t));
    d->flags = realloc(d->flags, 8);
    d->repr_off = realloc(d->repr_off, 9 * sizeof(uint32_t));
    d->out_off = realloc(d->out_off, 9 * sizeof(uint32_t));
    for (size_t v = 6; v < 8; v++) {
        d->addr[v] = 0x1000 + 0x40 * v;
        d->type[v] = 2;
        d->size[v] = 10;
        d->flags[v] = 0;
        d->repr_off[v + 1] = d->repr_off[6];
    }
    uint32_t off[] = {0, 1, 5, 6, 6, 7, 8, 8, 8};
    uint32_t heads[] = {1, 2, 3, 6, 7, 3, 5, 4};
    memcpy(d->out_off, off, sizeof off);
    d->head = malloc(sizeof heads);
    memcpy(d->head, heads, sizeof heads);
    d->label = calloc(8, sizeof(uint32_t));
    pl_buf js = PL_BUF_INIT;
    pl_heapdump_diff *f = NULL;
    CHECK_OK(pl_heapdump_diff_make(o, d, NULL, &f));
    CHECK_OK(pl_heapdump_diff_json(f, &js));
    pl_heapdump_diff_free(f);
    pl_buf_putc(&js, '\0');
    CHECK(strstr(js.data, "\"types\":[{\"name\":\"demo.Item\",\"count_change\":2,\"bytes_change\":20") != NULL);
    CHECK(strstr(js.data, "\"new_held_by_old\":[{\"id\":4160,\"type\":\"list\"") != NULL);
    CHECK(strstr(js.data, "\"new_objects\":2,\"new_bytes\":20,\"new_type\":\"demo.Item\"") != NULL);
    CHECK(strstr(js.data, "\"grown\":[{\"id\":4096") != NULL);
    if (test_failures)
        fprintf(stderr, "%s\n", js.data);
    pl_buf_free(&js);
    pl_heapdump_free(o);
    pl_heapdump_free(d);
}

/* A file around an arbitrary payload, with valid checksums. */
static void wrap(const uint8_t *raw, size_t len, pl_buf *out)
{
    uLongf clen = compressBound(len);
    pl_buf_reset(out);
    pl_buf_reserve(out, 40 + clen);
    uint8_t *h = (uint8_t *)out->data;
    compress2(h + 40, &clen, raw, len, 6);
    memcpy(h, "PYLOOTHD", 8);
    uint64_t f[] = {1, len, clen, crc32(0L, raw, (uInt)len)};
    memset(h + 8, 0, 32);
    h[8] = 1;
    for (int i = 0; i < 8; i++) {
        h[16 + i] = (uint8_t)(f[1] >> (8 * i));
        h[24 + i] = (uint8_t)(f[2] >> (8 * i));
    }
    for (int i = 0; i < 4; i++)
        h[32 + i] = (uint8_t)(f[3] >> (8 * i));
    uint32_t hc = (uint32_t)crc32(0L, h, 36);
    for (int i = 0; i < 4; i++)
        h[36 + i] = (uint8_t)(hc >> (8 * i));
    out->len = 40 + clen;
}

static void test_refused(void)
{
    pl_heapdump *d = sample(), *r = NULL;
    pl_buf img = PL_BUF_INIT;
    char err[256];
    CHECK_OK(pl_heapdump_encode(d, 6, &img));
    /* every truncation */
    for (size_t len = 0; len < img.len; len++) {
        int rc = pl_heapdump_decode(img.data, len, &r, err, sizeof err);
        CHECK(rc != 0 && r == NULL && err[0]);
    }
    CHECK(pl_heapdump_decode(img.data, 20, &r, err, sizeof err) == PL_ECORRUPT);
    CHECK(strstr(err, "not a pyloot heap dump") != NULL);
    /* every single-byte change */
    for (size_t i = 0; i < img.len; i++) {
        img.data[i] ^= 0x5a;
        int rc = pl_heapdump_decode(img.data, img.len, &r, err, sizeof err);
        CHECK(rc != 0 && r == NULL && err[0]);
        img.data[i] ^= 0x5a;
    }
    /* a newer version */
    pl_buf bad = PL_BUF_INIT;
    uint8_t raw[64];
    size_t k = 0;
    memset(raw, 0, sizeof raw);
    /* hostile: meta, no strings, no types, then 2^31 objects in a few bytes */
    k = 0;
    raw[k++] = 1; /* time */
    raw[k++] = 1; /* pid */
    raw[k++] = 1; /* start */
    raw[k++] = 0;
    raw[k++] = 0;
    raw[k++] = 0; /* host, argv, python */
    raw[k++] = 0; /* strings */
    raw[k++] = 0; /* types */
    k += pl_varint_put(raw + k, 1u << 31);
    wrap(raw, k + 8, &bad);
    CHECK(pl_heapdump_decode(bad.data, bad.len, &r, err, sizeof err) == PL_ECORRUPT);
    CHECK(strstr(err, "number of objects") != NULL);
    /* hostile: an edge pointing outside the graph */
    pl_heapdump_free(d);
    d = sample();
    d->head[0] = 1;
    pl_buf_reset(&img);
    CHECK_OK(pl_heapdump_encode(d, 6, &img));
    d->head[0] = 9;
    CHECK(pl_heapdump_encode(d, 6, &img) == PL_EBADARG);
    /* a payload with trailing bytes */
    raw[8] = 0;
    raw[9] = 0;  /* no objects, no groups */
    raw[10] = 0; /* root size */
    wrap(raw, 11, &bad);
    CHECK_OK(pl_heapdump_decode(bad.data, bad.len, &r, err, sizeof err));
    pl_heapdump_free(r);
    r = NULL;
    wrap(raw, 12, &bad);
    CHECK(pl_heapdump_decode(bad.data, bad.len, &r, err, sizeof err) == PL_ECORRUPT);
    CHECK(strstr(err, "follow the end") != NULL);
    /* a version this reader does not know */
    bad.data[8] = 2;
    uint32_t hc = (uint32_t)crc32(0L, (const Bytef *)bad.data, 36);
    for (int i = 0; i < 4; i++)
        bad.data[36 + i] = (char)(hc >> (8 * i));
    CHECK(pl_heapdump_decode(bad.data, bad.len, &r, err, sizeof err) == PL_ESCHEMA);
    /* a decompression bomb claim */
    wrap(raw, 11, &bad);
    bad.data[16 + 4] = 0x7f; /* raw length ~ 2^38 */
    hc = (uint32_t)crc32(0L, (const Bytef *)bad.data, 36);
    for (int i = 0; i < 4; i++)
        bad.data[36 + i] = (char)(hc >> (8 * i));
    CHECK(pl_heapdump_decode(bad.data, bad.len, &r, err, sizeof err) == PL_ETOOBIG);
    /* hostile sizes: one past the bound, and two that only pass it together */
    pl_heapdump_free(d);
    d = sample();
    d->size[1] = PL_HEAPDUMP_BYTES_MAX + 1;
    pl_buf_reset(&img);
    CHECK_OK(pl_heapdump_encode(d, 6, &img));
    CHECK(pl_heapdump_decode(img.data, img.len, &r, err, sizeof err) == PL_ECORRUPT);
    CHECK(strstr(err, "a size makes the dump's bytes pass") != NULL);
    d->size[1] = d->size[2] = PL_HEAPDUMP_BYTES_MAX / 2 + 1;
    pl_buf_reset(&img);
    CHECK_OK(pl_heapdump_encode(d, 6, &img));
    CHECK(pl_heapdump_decode(img.data, img.len, &r, err, sizeof err) == PL_ECORRUPT);
    d->size[2] = 10;
    d->root_size = UINT64_MAX;
    pl_buf_reset(&img);
    CHECK_OK(pl_heapdump_encode(d, 6, &img));
    CHECK(pl_heapdump_decode(img.data, img.len, &r, err, sizeof err) == PL_ECORRUPT);
    CHECK(strstr(err, "the root size") != NULL);
    /* at the bound: accepted, and a diff against a small dump does not overflow */
    d->size[1] = PL_HEAPDUMP_BYTES_MAX - 200;
    d->root_size = 0;
    pl_buf_reset(&img);
    CHECK_OK(pl_heapdump_encode(d, 6, &img));
    CHECK_OK(pl_heapdump_decode(img.data, img.len, &r, err, sizeof err));
    pl_heapdump *small = sample();
    pl_heapdump_diff *f = NULL;
    CHECK_OK(pl_heapdump_diff_make(small, r, NULL, &f));
    CHECK(f && f->ntypes > 0 && f->types[0].bytes_change == (int64_t)(PL_HEAPDUMP_BYTES_MAX - 250));
    pl_heapdump_diff_free(f);
    pl_heapdump_free(small);
    pl_heapdump_free(r);
    r = NULL;
    /* a missing file */
    CHECK(pl_heapdump_read("/nonexistent/dump.plh", &r, err, sizeof err) == ENOENT);
    pl_buf_free(&bad);
    pl_buf_free(&img);
    pl_heapdump_free(d);
}

int main(void)
{
    test_round_trip();
    test_retained();
    test_diff();
    test_refused();
    if (test_failures)
        fprintf(stderr, "%d failure(s)\n", test_failures);
    return test_failures ? 1 : 0;
}
