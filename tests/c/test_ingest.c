/* The remote-mode message decoder (src/core/ingest.c) and pl_gunzip: a valid
 * message round-trips, and every malformed case of docs/http-api.md is
 * refused with PL_EBADARG (or PL_ETOOBIG) and a sentence. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pyloot/buf.h"
#include "pyloot/gzip.h"
#include "pyloot/ingest.h"
#include "pyloot/store.h"
#include "test.h"

#define NOW 1790000000000LL

static void uv(pl_buf *b, uint64_t v)
{
    while (v >= 0x80) {
        pl_buf_putc(b, (char)(v | 0x80));
        v >>= 7;
    }
    pl_buf_putc(b, (char)v);
}

static void str(pl_buf *b, const char *s)
{
    uv(b, strlen(s));
    pl_buf_puts(b, s);
}

static void header(pl_buf *b, unsigned flags, const char *host)
{
    pl_buf_puts(b, "PLS1");
    uv(b, flags);
    str(b, host);
    uv(b, 4242);        /* pid */
    uv(b, 987654321);   /* start */
    uv(b, 30000);       /* interval */
    uv(b, 1u << 26);    /* rss */
    str(b, "gunicorn app:app");
    if (flags & PL_INGEST_STATS) {
        uv(b, 41000);   /* collection_us */
        uv(b, 1234567); /* gil_held_us */
    }
}

/* A valid message: 2 types, 2 samples. */
static void valid(pl_buf *b)
{
    header(b, PL_INGEST_NEW_SPACE, "web-1");
    uv(b, 2);
    uv(b, 3);
    str(b, "builtins.dict");
    uv(b, 7);
    str(b, "app.Session");
    uv(b, 2);
    uv(b, (uint64_t)NOW - 1000);
    uv(b, 2);
    uv(b, 3), uv(b, 100), uv(b, 6400);
    uv(b, 4), uv(b, 5), uv(b, 240);
    uv(b, (uint64_t)NOW);
    uv(b, 1);
    uv(b, 7), uv(b, 6), uv(b, 288);
}

static int decode(const pl_buf *b, pl_ingest_msg *m, char *why, size_t n)
{
    return pl_ingest_decode(b->data, b->len, NOW, m, why, n);
}

static void test_valid(void)
{
    pl_buf b = PL_BUF_INIT;
    pl_ingest_msg m;
    char why[256];
    valid(&b);
    CHECK_OK(decode(&b, &m, why, sizeof why));
    CHECK_EQ_INT(m.flags, PL_INGEST_NEW_SPACE);
    CHECK_EQ_STR(m.host, "web-1");
    CHECK_EQ_STR(m.argv, "gunicorn app:app");
    CHECK_EQ_INT(m.pid, 4242);
    CHECK_EQ_INT(m.start, 987654321);
    CHECK_EQ_INT(m.interval_ms, 30000);
    CHECK(m.collection_us == 0 && m.gil_held_us == 0); /* no bit2: an older worker's message */
    CHECK_EQ_INT(m.n_types, 2);
    CHECK(m.n_types == 2 && m.types[1].local_id == 7 && m.types[1].len == 11 &&
          memcmp(m.types[1].name, "app.Session", 11) == 0);
    CHECK_EQ_INT(m.n_samples, 2);
    CHECK_EQ_INT(m.n_entries, 3);
    if (m.n_samples == 2 && m.n_entries == 3) {
        CHECK_EQ_INT(m.samples[0].time_ms, NOW - 1000);
        CHECK_EQ_INT(m.samples[0].n, 2);
        CHECK_EQ_INT(m.entries[1].local_id, 7); /* 3 + delta 4 */
        CHECK_EQ_INT(m.entries[1].count, 5);
        CHECK_EQ_INT(m.samples[1].first, 2);
        CHECK_EQ_INT(m.entries[2].local_id, 7);
        CHECK_EQ_INT(m.entries[2].bytes, 288);
    }
    pl_ingest_msg_free(&m);
    pl_ingest_msg_free(NULL);
    pl_buf_free(&b);
}

/* Bit2: the collector's stats follow argv; a heartbeat carrying them. */
static void test_stats(void)
{
    pl_buf b = PL_BUF_INIT;
    pl_ingest_msg m;
    char why[256];
    header(&b, PL_INGEST_STATS, "web-1");
    uv(&b, 0); /* no types */
    uv(&b, 0); /* no samples */
    CHECK_OK(decode(&b, &m, why, sizeof why));
    CHECK_EQ_INT(m.flags, PL_INGEST_STATS);
    CHECK_EQ_STR(m.argv, "gunicorn app:app");
    CHECK(m.collection_us == 41000 && m.gil_held_us == 1234567);
    pl_ingest_msg_free(&m);
    for (size_t n = 0; n < b.len; n++) { /* every prefix is truncated */
        CHECK_EQ_INT(pl_ingest_decode(b.data, n, NOW, &m, why, sizeof why), PL_EBADARG);
        CHECK(why[0] != '\0');
    }
    pl_buf_free(&b);
}

/* Bit3: each sample's memory figures follow its entries. */
static void test_memory(void)
{
    pl_buf b = PL_BUF_INIT;
    pl_ingest_msg m;
    char why[256];
    header(&b, PL_INGEST_MEMORY | PL_INGEST_NEW_SPACE, "web-1");
    uv(&b, 1);
    uv(&b, 3);
    str(&b, "app.Blob");
    uv(&b, 2);
    uv(&b, (uint64_t)NOW - 1000);
    uv(&b, 1);
    uv(&b, 3), uv(&b, 100), uv(&b, 6400);
    uv(&b, 1u << 26), uv(&b, 6400), uv(&b, 4096);
    uv(&b, (uint64_t)NOW);
    uv(&b, 0);
    uv(&b, PL_INGEST_MEMORY_MAX), uv(&b, 0), uv(&b, 0);
    CHECK_OK(decode(&b, &m, why, sizeof why));
    CHECK_EQ_INT(m.n_samples, 2);
    if (m.n_samples == 2) {
        CHECK_EQ_INT(m.samples[0].memory.rss, 1u << 26);
        CHECK_EQ_INT(m.samples[0].memory.python_bytes, 6400);
        CHECK_EQ_INT(m.samples[0].memory.allocator_free_bytes, 4096);
        CHECK_EQ_INT(m.samples[1].memory.rss, PL_INGEST_MEMORY_MAX);
    }
    pl_ingest_msg_free(&m);
    for (size_t n = 0; n < b.len; n++) { /* every prefix is truncated */
        CHECK_EQ_INT(pl_ingest_decode(b.data, n, NOW, &m, why, sizeof why), PL_EBADARG);
        CHECK(why[0] != '\0');
    }
    pl_buf_free(&b);
}

static void routes_sample(pl_buf *b, size_t n, uint64_t requests, const char *name);

/* Bit4: each sample's requests by route follow (after its memory figures
 * when bit3 is set too); the bounds are accepted. */
static void test_routes(void)
{
    pl_buf b = PL_BUF_INIT;
    pl_ingest_msg m;
    char why[256];
    routes_sample(&b, PL_INGEST_ROUTES_MAX, PL_INGEST_REQUESTS_MAX, NULL);
    CHECK_OK(decode(&b, &m, why, sizeof why));
    CHECK_EQ_INT(m.n_samples, 1);
    CHECK_EQ_INT(m.n_routes, PL_INGEST_ROUTES_MAX);
    if (m.n_samples == 1 && m.n_routes == PL_INGEST_ROUTES_MAX) {
        CHECK_EQ_INT(m.samples[0].n_routes, PL_INGEST_ROUTES_MAX);
        CHECK(m.routes[2].len == 7 && memcmp(m.routes[2].name, "GET /r2", 7) == 0);
        CHECK_EQ_INT(m.routes[2].requests, PL_INGEST_REQUESTS_MAX);
    }
    pl_ingest_msg_free(&m);
    pl_buf_free(&b);

    header(&b, PL_INGEST_ROUTES | PL_INGEST_MEMORY, "h");
    uv(&b, 0);
    uv(&b, 2);
    uv(&b, (uint64_t)NOW - 1000), uv(&b, 0), uv(&b, 100), uv(&b, 10), uv(&b, 0);
    uv(&b, 0); /* no requests */
    uv(&b, (uint64_t)NOW), uv(&b, 0), uv(&b, 100), uv(&b, 10), uv(&b, 0);
    uv(&b, 2), str(&b, "GET /login/<user>"), uv(&b, 7), str(&b, "other"), uv(&b, 1);
    CHECK_OK(decode(&b, &m, why, sizeof why));
    if (m.n_samples == 2 && m.n_routes == 2) {
        CHECK_EQ_INT(m.samples[0].n_routes, 0);
        CHECK_EQ_INT(m.samples[1].first_route, 0);
        CHECK_EQ_INT(m.samples[1].n_routes, 2);
        CHECK_EQ_INT(m.samples[1].memory.rss, 100);
        CHECK_EQ_INT(m.routes[0].requests, 7);
    } else {
        CHECK(0);
    }
    pl_ingest_msg_free(&m);
    for (size_t n = 0; n < b.len; n++) /* every prefix is truncated */
        CHECK_EQ_INT(pl_ingest_decode(b.data, n, NOW, &m, why, sizeof why), PL_EBADARG);
    pl_buf_free(&b);
}

/* Every strict prefix of a valid message is truncated: refused, no crash. */
static void test_truncated(void)
{
    pl_buf b = PL_BUF_INIT;
    pl_ingest_msg m;
    char why[256];
    valid(&b);
    for (size_t n = 0; n < b.len; n++) {
        int rc = pl_ingest_decode(b.data, n, NOW, &m, why, sizeof why);
        CHECK_EQ_INT(rc, PL_EBADARG);
        CHECK(why[0] != '\0');
        CHECK(m.types == NULL && m.samples == NULL && m.entries == NULL);
    }
    pl_buf_free(&b);
}

/* Builds a message from `valid` with one byte range replaced. */
static int decode_edit(const char *expect_in_why, void (*build)(pl_buf *))
{
    pl_buf b = PL_BUF_INIT;
    pl_ingest_msg m;
    char why[256];
    build(&b);
    int rc = decode(&b, &m, why, sizeof why);
    if (rc == PL_EBADARG && !strstr(why, expect_in_why)) {
        fprintf(stderr, "  why = \"%s\", expected to contain \"%s\"\n", why, expect_in_why);
        rc = -1;
    }
    pl_ingest_msg_free(&m);
    pl_buf_free(&b);
    return rc;
}

static void bad_magic(pl_buf *b)
{
    valid(b);
    b->data[3] = '2';
}

static void varint_overflow(pl_buf *b)
{
    pl_buf_puts(b, "PLS1");
    pl_buf_append(b, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 10);
}

static void varint_too_long(pl_buf *b)
{
    pl_buf_puts(b, "PLS1");
    pl_buf_append(b, "\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x00", 11);
}

static void unknown_flags(pl_buf *b)
{
    header(b, 32, "h");
}

/* Bit4: one sample without entries whose requests by route follow: n
 * routes named GET /r<i>, `requests` each (name: a name instead). */
static void routes_sample(pl_buf *b, size_t n, uint64_t requests, const char *name)
{
    header(b, PL_INGEST_ROUTES, "h");
    uv(b, 0);
    uv(b, 1);
    uv(b, (uint64_t)NOW);
    uv(b, 0);
    uv(b, n);
    for (size_t i = 0; i < n; i++) {
        char route[32];
        snprintf(route, sizeof route, "GET /r%zu", i);
        str(b, name ? name : route);
        uv(b, requests);
    }
}

static void too_many_routes(pl_buf *b)
{
    routes_sample(b, PL_INGEST_ROUTES_MAX + 1, 1, NULL);
}

static void requests_too_many(pl_buf *b)
{
    routes_sample(b, 1, PL_INGEST_REQUESTS_MAX + 1, NULL);
}

static void route_control(pl_buf *b)
{
    routes_sample(b, 1, 1, "GET /a\r\nb");
}

static void route_not_utf8(pl_buf *b)
{
    routes_sample(b, 1, 1, "GET /\xc3(");
}

static void route_too_long(pl_buf *b)
{
    char name[PL_ROUTE_NAME_MAX + 2];
    memset(name, 'a', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    routes_sample(b, 1, 1, name);
}

/* Bit3: a memory figure beyond PL_INGEST_MEMORY_MAX. */
static void memory_too_big(pl_buf *b)
{
    header(b, PL_INGEST_MEMORY, "h");
    uv(b, 0);
    uv(b, 1);
    uv(b, (uint64_t)NOW);
    uv(b, 0);
    uv(b, 1u << 26);
    uv(b, PL_INGEST_MEMORY_MAX + 1);
    uv(b, 0);
}

static void collection_too_long(pl_buf *b)
{
    header(b, 0, "h");
    b->data[4] = PL_INGEST_STATS; /* the flags byte, then the stats by hand */
    uv(b, PL_INGEST_COLLECTION_MAX_US + 1);
    uv(b, 1);
    uv(b, 0);
    uv(b, 0);
}

static void empty_host(pl_buf *b)
{
    header(b, 0, "");
}

static void control_host(pl_buf *b)
{
    header(b, 0, "web\n1");
}

static void long_host(pl_buf *b)
{
    header(b, 0, "0123456789012345678901234567890123456789012345678901234567890123");
}

static void long_name(pl_buf *b)
{
    header(b, 2, "h");
    uv(b, 1);
    uv(b, 1);
    uv(b, PL_TYPE_NAME_MAX + 1);
    for (int i = 0; i <= PL_TYPE_NAME_MAX; i++)
        pl_buf_putc(b, 'x');
    uv(b, 0);
}

static void duplicate_id(pl_buf *b)
{
    header(b, 2, "h");
    uv(b, 0);
    uv(b, 1);
    uv(b, (uint64_t)NOW);
    uv(b, 2);
    uv(b, 5), uv(b, 1), uv(b, 1);
    uv(b, 0), uv(b, 1), uv(b, 1);
}

static void future_time(pl_buf *b)
{
    header(b, 2, "h");
    uv(b, 0);
    uv(b, 1);
    uv(b, (uint64_t)NOW + 11 * 60 * 1000);
    uv(b, 0);
}

static void old_time(pl_buf *b)
{
    header(b, 2, "h");
    uv(b, 0);
    uv(b, 1);
    uv(b, 1000);
    uv(b, 0);
}

static void trailing(pl_buf *b)
{
    valid(b);
    pl_buf_putc(b, 0);
}

static void huge_count(pl_buf *b)
{
    header(b, 2, "h");
    uv(b, UINT64_MAX / 2);
}

static void id_overflow(pl_buf *b)
{
    header(b, 2, "h");
    uv(b, 0);
    uv(b, 1);
    uv(b, (uint64_t)NOW);
    uv(b, 2);
    uv(b, UINT32_MAX), uv(b, 1), uv(b, 1);
    uv(b, 1), uv(b, 1), uv(b, 1);
}

static void test_malformed(void)
{
    CHECK_EQ_INT(decode_edit("PLS1", bad_magic), PL_EBADARG);
    CHECK_EQ_INT(decode_edit("overflows", varint_overflow), PL_EBADARG);
    CHECK_EQ_INT(decode_edit("overflows", varint_too_long), PL_EBADARG);
    CHECK_EQ_INT(decode_edit("unknown flags", unknown_flags), PL_EBADARG);
    CHECK_EQ_INT(decode_edit("python_bytes must be", memory_too_big), PL_EBADARG);
    CHECK_EQ_INT(decode_edit("routes, more than", too_many_routes), PL_EBADARG);
    CHECK_EQ_INT(decode_edit("requests must be", requests_too_many), PL_EBADARG);
    CHECK_EQ_INT(decode_edit("control characters", route_control), PL_EBADARG);
    CHECK_EQ_INT(decode_edit("not UTF-8", route_not_utf8), PL_EBADARG);
    CHECK_EQ_INT(decode_edit("route name must be", route_too_long), PL_EBADARG);
    CHECK_EQ_INT(decode_edit("collection_us must be", collection_too_long), PL_EBADARG);
    CHECK_EQ_INT(decode_edit("host", empty_host), PL_EBADARG);
    CHECK_EQ_INT(decode_edit("control character", control_host), PL_EBADARG);
    CHECK_EQ_INT(decode_edit("host must be", long_host), PL_EBADARG);
    CHECK_EQ_INT(decode_edit("type name must be", long_name), PL_EBADARG);
    CHECK_EQ_INT(decode_edit("appears twice", duplicate_id), PL_EBADARG);
    CHECK_EQ_INT(decode_edit("10 minutes", future_time), PL_EBADARG);
    CHECK_EQ_INT(decode_edit("before 2020", old_time), PL_EBADARG);
    CHECK_EQ_INT(decode_edit("follow the last sample", trailing), PL_EBADARG);
    CHECK_EQ_INT(decode_edit("more than the rest", huge_count), PL_EBADARG);
    CHECK_EQ_INT(decode_edit("exceeds 2^32-1", id_overflow), PL_EBADARG);
}

static void test_gunzip(void)
{
    pl_buf plain = PL_BUF_INIT, gz = PL_BUF_INIT, out = PL_BUF_INIT;
    valid(&plain);
    CHECK_OK(pl_gzip(plain.data, plain.len, &gz));
    CHECK_OK(pl_gunzip(gz.data, gz.len, 1 << 20, &out));
    CHECK(out.len == plain.len && memcmp(out.data, plain.data, plain.len) == 0);

    /* Exactly at the cap passes; one byte under it is a bomb. */
    pl_buf_reset(&out);
    CHECK_OK(pl_gunzip(gz.data, gz.len, plain.len, &out));
    pl_buf_reset(&out);
    CHECK_EQ_INT(pl_gunzip(gz.data, gz.len, plain.len - 1, &out), PL_ETOOBIG);
    CHECK_EQ_INT(out.len, 0);

    /* A 64 MiB run of zeros compresses to ~64 KB: refused at 16 MiB. */
    pl_buf zeros = PL_BUF_INIT, bomb = PL_BUF_INIT;
    size_t big = 64u << 20;
    char *z = calloc(1, big);
    CHECK(z != NULL);
    if (z) {
        CHECK_OK(pl_gzip(z, big, &bomb));
        free(z);
        CHECK(bomb.len < 200000);
        CHECK_EQ_INT(pl_gunzip(bomb.data, bomb.len, PL_INGEST_MAX_MESSAGE, &zeros), PL_ETOOBIG);
        CHECK_EQ_INT(zeros.len, 0);
    }

    /* Not gzip, truncated gzip, gzip with trailing garbage. */
    pl_buf_reset(&out);
    CHECK_EQ_INT(pl_gunzip(plain.data, plain.len, 1 << 20, &out), PL_EBADARG);
    CHECK_EQ_INT(pl_gunzip(gz.data, gz.len - 5, 1 << 20, &out), PL_EBADARG);
    pl_buf_putc(&gz, 'x');
    CHECK_EQ_INT(pl_gunzip(gz.data, gz.len, 1 << 20, &out), PL_EBADARG);
    CHECK_EQ_INT(pl_gunzip("", 0, 1 << 20, &out), PL_EBADARG);
    CHECK_EQ_INT(out.len, 0);
    pl_buf_free(&plain);
    pl_buf_free(&gz);
    pl_buf_free(&out);
    pl_buf_free(&zeros);
    pl_buf_free(&bomb);
}

int main(void)
{
    RUN(test_valid);
    RUN(test_truncated);
    RUN(test_stats);
    RUN(test_memory);
    RUN(test_routes);
    RUN(test_malformed);
    RUN(test_gunzip);
    return TEST_EXIT();
}
