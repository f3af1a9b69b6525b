/* Numbers, points in time and sort names from outside (pyloot/parse.h;
 * the sort names are declared with the history query in pyloot/store.h). */
#include "pyloot/parse.h"

#include <string.h>

#include "pyloot/error.h"
#include "pyloot/store.h"

int pl_parse_u64(const char *s, size_t len, uint64_t lo, uint64_t hi, uint64_t *out)
{
    uint64_t v = 0;

    if (!s || len == 0)
        return PL_EBADARG;
    for (size_t i = 0; i < len; i++) {
        unsigned d = (unsigned char)s[i] - '0';
        if (d > 9 || v > (UINT64_MAX - d) / 10)
            return PL_EBADARG;
        v = v * 10 + d;
    }
    if (v < lo || v > hi)
        return PL_EBADARG;
    *out = v;
    return 0;
}

int pl_parse_unix_ms(const char *s, size_t len, int64_t *out_ms)
{
    const char *dot = s ? memchr(s, '.', len) : NULL;
    size_t ilen = dot ? (size_t)(dot - s) : len, flen = dot ? len - ilen - 1 : 0;
    uint64_t sec = 0, frac = 0;

    if (!s || (dot && (flen == 0 || flen > 3)))
        return PL_EBADARG;
    if (pl_parse_u64(s, ilen, 0, (uint64_t)(PL_PARSE_TIME_MAX_MS / 1000), &sec) ||
        (dot && pl_parse_u64(dot + 1, flen, 0, 999, &frac)))
        return PL_EBADARG;
    for (size_t i = flen; i < 3; i++)
        frac *= 10;
    if (sec == 0 && frac == 0)
        return PL_EBADARG;
    *out_ms = (int64_t)(sec * 1000 + frac);
    return 0;
}

/* Reads exactly n digits at *p (before end) into *v and advances *p. */
static int digits(const char **p, const char *end, int n, int *v)
{
    uint64_t x = 0;

    if (end - *p < n || pl_parse_u64(*p, (size_t)n, 0, 9999, &x))
        return -1;
    *p += n;
    *v = (int)x;
    return 0;
}

/* Days from 1970-01-01 to y-m-d of the proleptic Gregorian calendar (the
 * days-from-civil method: years counted from March, in 400-year eras). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int pl_parse_iso8601_ms(const char *s, size_t len, int64_t *out_ms)
{
    const char *p = s, *end = s + len;
    int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0;

    if (!s || digits(&p, end, 4, &y) || p == end || *p++ != '-' || digits(&p, end, 2, &mo) || p == end ||
        *p++ != '-' || digits(&p, end, 2, &d))
        return PL_EBADARG;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31)
        return PL_EBADARG;
    if (p < end && (*p == 'T' || *p == 't' || *p == ' ')) {
        p++;
        if (digits(&p, end, 2, &h) || p == end || *p++ != ':' || digits(&p, end, 2, &mi))
            return PL_EBADARG;
        if (p < end && *p == ':') {
            p++;
            if (digits(&p, end, 2, &sec))
                return PL_EBADARG;
            if (p < end && *p == '.') {
                int scale = 100, n = 0;
                for (p++; p < end && *p >= '0' && *p <= '9'; p++, n++, scale /= 10)
                    ms += (*p - '0') * scale;
                if (n == 0)
                    return PL_EBADARG;
            }
        }
        if (h > 23 || mi > 59 || sec > 60)
            return PL_EBADARG;
    }
    int64_t t = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60 + sec;
    if (p < end && (*p == 'Z' || *p == 'z')) {
        p++;
    } else if (p < end && (*p == '+' || *p == '-')) {
        int sign = *p++ == '+' ? 1 : -1, oh, om;
        if (digits(&p, end, 2, &oh))
            return PL_EBADARG;
        if (p < end && *p == ':')
            p++;
        if (digits(&p, end, 2, &om) || oh > 23 || om > 59)
            return PL_EBADARG;
        t -= sign * (oh * 3600 + om * 60);
    }
    if (p != end)
        return PL_EBADARG;
    t = t * 1000 + ms;
    if (t < 0 || t > PL_PARSE_TIME_MAX_MS)
        return PL_EBADARG;
    *out_ms = t;
    return 0;
}

/* See store.h. */
const char *const pl_sort_names[PL_SORT_N] = {"count", "growth", "name", "bytes", "bytes_growth"};

/* See store.h. */
const char pl_sort_list[] = "growth, count, name, bytes or bytes_growth";

/* See store.h. */
int pl_sort_from_name(const char *s, size_t len)
{
    for (int i = 0; s && i < PL_SORT_N; i++)
        if (strlen(pl_sort_names[i]) == len && memcmp(s, pl_sort_names[i], len) == 0)
            return i;
    return -1;
}

static int ascii_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* See parse.h. */
int pl_contains_ci(const char *hay, size_t n, const char *needle, size_t m)
{
    size_t i, j;
    int found = m == 0;

    for (i = 0; !found && i + m <= n; i++) {
        for (j = 0; j < m && ascii_lower((unsigned char)hay[i + j]) == ascii_lower((unsigned char)needle[j]); j++)
            ;
        found = j == m;
    }
    return found;
}
