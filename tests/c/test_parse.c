/* The one parser of numbers and times from outside (pyloot/parse.h). */
#include <stdint.h>

#include "pyloot/parse.h"
#include "test.h"

static int u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *v)
{
    return pl_parse_u64(s, strlen(s), lo, hi, v);
}

static void test_u64(void)
{
    uint64_t v = 0;
    CHECK_OK(u64("0", 0, 10, &v));
    CHECK_EQ_INT(v, 0);
    CHECK_OK(u64("0042", 0, 100, &v));
    CHECK_EQ_INT(v, 42);
    CHECK_OK(u64("18446744073709551615", 0, UINT64_MAX, &v));
    CHECK(v == UINT64_MAX);
    /* Past 2^64 - 1: refused, never wrapped. */
    CHECK(u64("18446744073709551616", 0, UINT64_MAX, &v) == PL_EBADARG);
    CHECK(u64("99999999999999999999999", 0, UINT64_MAX, &v) == PL_EBADARG);
    CHECK(u64("92233720368547758070", 0, UINT64_MAX, &v) == PL_EBADARG);
    /* Range, empty and anything but digits. */
    CHECK(u64("11", 0, 10, &v) == PL_EBADARG);
    CHECK(u64("0", 1, 10, &v) == PL_EBADARG);
    CHECK(u64("", 0, 10, &v) == PL_EBADARG);
    CHECK(u64("+1", 0, 10, &v) == PL_EBADARG);
    CHECK(u64("-1", 0, 10, &v) == PL_EBADARG);
    CHECK(u64(" 1", 0, 10, &v) == PL_EBADARG);
    CHECK(u64("1x", 0, 10, &v) == PL_EBADARG);
    CHECK(pl_parse_u64("12\0", 3, 0, 100, &v) == PL_EBADARG);
    v = 7;
    CHECK(pl_parse_u64(NULL, 0, 0, 10, &v) == PL_EBADARG);
    CHECK_EQ_INT(v, 7);
}

static int unix_ms(const char *s, int64_t *ms)
{
    return pl_parse_unix_ms(s, strlen(s), ms);
}

static void test_unix_ms(void)
{
    int64_t ms = 0;
    CHECK_OK(unix_ms("1764320000", &ms));
    CHECK_EQ_INT(ms, 1764320000000LL);
    CHECK_OK(unix_ms("1764320000.25", &ms));
    CHECK_EQ_INT(ms, 1764320000250LL);
    CHECK_OK(unix_ms("1764320000.007", &ms));
    CHECK_EQ_INT(ms, 1764320000007LL);
    CHECK_OK(unix_ms("0.001", &ms));
    CHECK_EQ_INT(ms, 1);
    CHECK_OK(unix_ms("253402300799.999", &ms));
    CHECK_EQ_INT(ms, PL_PARSE_TIME_MAX_MS);
    /* The values that once overflowed a signed multiplication. */
    CHECK(unix_ms("92233720368547758", &ms) == PL_EBADARG);
    CHECK(unix_ms("18446745870000000", &ms) == PL_EBADARG);
    CHECK(unix_ms("253402300800", &ms) == PL_EBADARG);
    CHECK(unix_ms("0", &ms) == PL_EBADARG);
    CHECK(unix_ms("1.2345", &ms) == PL_EBADARG);
    CHECK(unix_ms("1.", &ms) == PL_EBADARG);
    CHECK(unix_ms(".5", &ms) == PL_EBADARG);
    CHECK(unix_ms("1e9", &ms) == PL_EBADARG);
    CHECK(unix_ms("-1", &ms) == PL_EBADARG);
    CHECK(unix_ms("1.2.3", &ms) == PL_EBADARG);
}

static int iso(const char *s, int64_t *ms)
{
    return pl_parse_iso8601_ms(s, strlen(s), ms);
}

static void test_iso8601(void)
{
    int64_t ms = 0;
    CHECK_OK(iso("2026-11-28", &ms));
    CHECK_EQ_INT(ms, 1795824000000LL);
    CHECK_OK(iso("2026-11-28T09:30:00Z", &ms));
    CHECK_EQ_INT(ms, 1795858200000LL);
    CHECK_OK(iso("2026-11-28 09:30", &ms));
    CHECK_EQ_INT(ms, 1795858200000LL);
    CHECK_OK(iso("2026-11-28T10:30:00+01:00", &ms));
    CHECK_EQ_INT(ms, 1795858200000LL);
    CHECK_OK(iso("2026-11-28T09:30:00.25z", &ms));
    CHECK_EQ_INT(ms, 1795858200250LL);
    CHECK_OK(iso("1970-01-01", &ms));
    CHECK_EQ_INT(ms, 0);
    CHECK_OK(iso("9999-12-31T23:59:59.999Z", &ms));
    CHECK_EQ_INT(ms, PL_PARSE_TIME_MAX_MS);
    CHECK(iso("1969-12-31", &ms) == PL_EBADARG);
    CHECK(iso("2026-13-01", &ms) == PL_EBADARG);
    CHECK(iso("2026-11-28T24:00", &ms) == PL_EBADARG);
    CHECK(iso("2026-11-28T09:30:00.", &ms) == PL_EBADARG);
    CHECK(iso("2026-11-28T09", &ms) == PL_EBADARG);
    CHECK(iso("2026-11-28x", &ms) == PL_EBADARG);
    CHECK(iso("2026-11-2", &ms) == PL_EBADARG);
    CHECK(iso("2026-11-28T09:30+1", &ms) == PL_EBADARG);
    /* A length that stops inside the text: nothing past it is read. */
    CHECK_OK(pl_parse_iso8601_ms("2026-11-28T09:30", 10, &ms));
    CHECK_EQ_INT(ms, 1795824000000LL);
}

static void test_contains_ci(void)
{
    CHECK(pl_contains_ci("demo_app.Session", 16, "SESSION", 7));
    CHECK(pl_contains_ci("demo_app.Session", 16, "", 0));
    CHECK(!pl_contains_ci("demo_app.Session", 16, "sessions", 8));
    CHECK(!pl_contains_ci("ab", 2, "abc", 3));
    CHECK(pl_contains_ci("x\xc3\xa9y", 4, "\xc3\xa9", 2)); /* other bytes compare exactly */
    CHECK(!pl_contains_ci("x\xc3\xa9y", 4, "\xc3\x89", 2));
}

int main(void)
{
    RUN(test_contains_ci);
    RUN(test_u64);
    RUN(test_unix_ms);
    RUN(test_iso8601);
    return TEST_EXIT();
}
