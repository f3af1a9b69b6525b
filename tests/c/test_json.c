/* JSON writer, buffers, gzip and Accept-Encoding parsing. */
#include <stdint.h>
#include <string.h>

#include <errno.h>

#include <lmdb.h>
#include <zlib.h>

#include "pyloot/buf.h"
#include "pyloot/gzip.h"
#include "pyloot/hash.h"
#include "pyloot/json.h"
#include "pyloot/varint.h"
#include "test.h"

static void test_escapes(void)
{
    pl_buf b = PL_BUF_INIT;
    pl_json_str(&b, "a\"b\\c\nd\te\x01", 10);
    CHECK_EQ_STR(pl_buf_cstr(&b), "\"a\\\"b\\\\c\\nd\\te\\u0001\"");
    pl_buf_reset(&b);
    pl_json_str(&b, "x\0y", 3);
    CHECK_EQ_STR(pl_buf_cstr(&b), "\"x\\u0000y\"");
    pl_buf_free(&b);
}

static void test_utf8(void)
{
    pl_buf b = PL_BUF_INIT;
    pl_json_cstr(&b, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x8d");
    CHECK_EQ_STR(pl_buf_cstr(&b), "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x8d\"");
    pl_buf_reset(&b);
    /* invalid: lone continuation, overlong, surrogate, truncated */
    pl_json_cstr(&b, "a\x80" "b\xc0\xaf" "c\xed\xa0\x80" "d\xe2\x82");
    CHECK_EQ_STR(pl_buf_cstr(&b),
                 "\"a\\ufffdb\\ufffd\\ufffdc\\ufffd\\ufffd\\ufffdd\\ufffd\\ufffd\"");
    pl_buf_free(&b);
}

static void test_numbers(void)
{
    pl_buf b = PL_BUF_INIT;
    pl_json_u64(&b, UINT64_MAX);
    pl_buf_putc(&b, ' ');
    pl_json_i64(&b, INT64_MIN);
    pl_buf_putc(&b, ' ');
    pl_json_f64(&b, 0.5);
    pl_buf_putc(&b, ' ');
    pl_json_f64(&b, 1.0 / 0.0);
    CHECK_EQ_STR(pl_buf_cstr(&b), "18446744073709551615 -9223372036854775808 0.5 null");
    pl_buf_reset(&b);
    pl_json_error(&b, "no \"such\" thing");
    CHECK_EQ_STR(pl_buf_cstr(&b), "{\"error\":\"no \\\"such\\\" thing\"}");
    pl_buf_free(&b);
}

static void test_buf_growth(void)
{
    pl_buf b = PL_BUF_INIT;
    for (int i = 0; i < 100000; i++)
        pl_buf_printf(&b, "%d,", i % 10);
    CHECK_EQ_INT(b.len, 200000);
    CHECK_EQ_INT(b.err, 0);
    size_t len;
    char *data = pl_buf_detach(&b, &len);
    CHECK_EQ_INT(len, 200000);
    CHECK(data && data[0] == '0' && data[1] == ',');
    CHECK(b.data == NULL && b.len == 0);
    free(data);
    pl_buf_free(&b); /* on an empty buffer: no-op */
}

static void test_gzip_round_trip(void)
{
    pl_buf in = PL_BUF_INIT, out = PL_BUF_INIT;
    for (int i = 0; i < 5000; i++)
        pl_buf_printf(&in, "{\"name\":\"type%d\",\"count\":%d}", i % 50, i);
    CHECK_OK(pl_gzip(in.data, in.len, &out));
    CHECK(out.len > 18 && out.len < in.len / 4);
    CHECK((unsigned char)out.data[0] == 0x1f && (unsigned char)out.data[1] == 0x8b);
    unsigned char *back = malloc(in.len);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    CHECK(inflateInit2(&zs, 15 + 16) == Z_OK);
    zs.next_in = (unsigned char *)out.data;
    zs.avail_in = (uInt)out.len;
    zs.next_out = back;
    zs.avail_out = (uInt)in.len;
    CHECK(inflate(&zs, Z_FINISH) == Z_STREAM_END);
    CHECK_EQ_INT(zs.total_out, in.len);
    CHECK(memcmp(back, in.data, in.len) == 0);
    inflateEnd(&zs);
    free(back);
    pl_buf_free(&in);
    pl_buf_free(&out);
}

static void test_accept_encoding(void)
{
    CHECK(pl_accepts_gzip("gzip"));
    CHECK(pl_accepts_gzip("deflate, gzip;q=0.5"));
    CHECK(pl_accepts_gzip("GZIP"));
    CHECK(pl_accepts_gzip("*"));
    CHECK(pl_accepts_gzip("br, x-gzip"));
    CHECK(!pl_accepts_gzip(NULL));
    CHECK(!pl_accepts_gzip(""));
    CHECK(!pl_accepts_gzip("identity"));
    CHECK(!pl_accepts_gzip("gzip;q=0"));
    CHECK(!pl_accepts_gzip("gzipx"));
    CHECK(!pl_accepts_gzip("deflate, br"));
}

static void test_strerror(void)
{
    CHECK(strstr(pl_strerror(MDB_MAP_FULL), "MDB_MAP_FULL") != NULL);
    CHECK(strstr(pl_strerror(MDB_KEYEXIST), "MDB_KEYEXIST") != NULL);
    CHECK_EQ_STR(pl_strerror(PL_ETIMEOUT), "no answer in time");
    CHECK_EQ_STR(pl_strerror(ENOENT), "No such file or directory");
    CHECK_EQ_STR(pl_strerror(-1), "unknown error");
}

/* One varint rule: values round-trip, and more than 64 bits is refused like truncation. */
static void test_varint(void)
{
    const uint64_t values[] = {0, 1, 127, 128, 300, 1ull << 32, UINT64_MAX - 1, UINT64_MAX};
    uint8_t b[PL_VARINT_MAX + 2];
    uint64_t v = 0;
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        size_t n = pl_varint_put(b, values[i]);
        CHECK(n >= 1 && n <= PL_VARINT_MAX);
        CHECK(pl_varint_get(b, b + n, &v) == n && v == values[i]);
        CHECK(pl_varint_get(b, b + n - 1, &v) == 0); /* one byte short */
    }
    /* Ten bytes whose last carries more than the 64th bit. */
    memset(b, 0xff, 9);
    b[9] = 0x02;
    v = 7;
    CHECK(pl_varint_get(b, b + 10, &v) == 0 && v == 7);
    /* An eleventh byte. */
    memset(b, 0x80, 10);
    b[10] = 0x00;
    CHECK(pl_varint_get(b, b + 11, &v) == 0);
    CHECK(pl_varint_get(b, b, &v) == 0);
}

/* The store keys its type names by this hash: it must never change. */
static void test_name_hash_is_stable(void)
{
    CHECK(pl_fnv1a64("builtins.dict", 13) == 0x37ea9e7f67999f0fULL);
    CHECK(pl_hash_mix(pl_fnv1a64("builtins.dict", 13)) == 0x4cf7594f92975ad7ULL);
    CHECK(pl_fnv1a64("", 0) == PL_FNV1A64_INIT);
}

int main(void)
{
    RUN(test_varint);
    RUN(test_name_hash_is_stable);
    RUN(test_strerror);
    RUN(test_escapes);
    RUN(test_utf8);
    RUN(test_numbers);
    RUN(test_buf_growth);
    RUN(test_gzip_round_trip);
    RUN(test_accept_encoding);
    return TEST_EXIT();
}
