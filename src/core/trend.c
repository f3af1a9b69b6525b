/* A type's trend over a window (trend.h): the rule of docs/http-api.md
 * ("Trend"), on the known points of one count series. Each step is robust to
 * garbage that comes and goes: levels are medians, the noise is measured
 * against a running median, and a change counts only beyond it. */
#include "pyloot/trend.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pyloot/error.h"

/* See trend.h. */
const char *const pl_trend_names[PL_TREND_N] = {"flat", "growing", "levelled", "falling"};

/* See trend.h. */
const char pl_trend_list[] = "growing, levelled, flat or falling";

/* See trend.h. */
int pl_trend_from_name(const char *s, size_t len)
{
    for (int i = 0; s && i < PL_TREND_N; i++)
        if (strlen(pl_trend_names[i]) == len && memcmp(s, pl_trend_names[i], len) == 0)
            return i;
    return -1;
}

/* See trend.h. */
int pl_trend_mask_parse(const char *s, size_t len, unsigned *mask)
{
    unsigned m = 0;
    size_t a = 0;

    if (!s || !len)
        return PL_EBADARG;
    while (a <= len) {
        size_t z = a;
        int t;

        while (z < len && s[z] != ',')
            z++;
        t = pl_trend_from_name(s + a, z - a);
        if (t < 0)
            return PL_EBADARG;
        m |= 1u << t;
        a = z + 1;
    }
    *mask = m;
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

/* The median of src[0..n) (n >= 1; the mean of the two middle values for
 * an even n), sorted in the scratch tmp. */
static int64_t median(const int64_t *src, size_t n, int64_t *tmp)
{
    memcpy(tmp, src, n * sizeof *tmp);
    if (n > 8) {
        qsort(tmp, n, sizeof *tmp, cmp_i64);
    } else {
        for (size_t i = 1; i < n; i++)
            for (size_t j = i; j > 0 && tmp[j - 1] > tmp[j]; j--) {
                int64_t t = tmp[j];

                tmp[j] = tmp[j - 1];
                tmp[j - 1] = t;
            }
    }
    if (n % 2)
        return tmp[n / 2];
    return tmp[n / 2 - 1] + (tmp[n / 2] - tmp[n / 2 - 1]) / 2;
}

/* The least-squares growth of x[0..n) (n >= 3) from its first point to
 * its last (the fitted slope times n - 1), and its variance. */
static double fitted_growth(const int64_t *x, size_t n, double *var)
{
    double mt = (double)(n - 1) / 2, mx = 0, sxy = 0, sxx = 0, slope, rss = 0;

    for (size_t i = 0; i < n; i++)
        mx += (double)x[i];
    mx /= (double)n;
    for (size_t i = 0; i < n; i++) {
        sxy += ((double)i - mt) * ((double)x[i] - mx);
        sxx += ((double)i - mt) * ((double)i - mt);
    }
    slope = sxy / sxx;
    for (size_t i = 0; i < n; i++) {
        double r = (double)x[i] - mx - slope * ((double)i - mt);

        rss += r * r;
    }
    *var = rss / (double)(n - 2) / sxx * (double)(n - 1) * (double)(n - 1);
    return slope * (double)(n - 1);
}

/* Growing or levelled, for a series x (smoothed: y, m points) that grew by
 * total beyond tol; eps is the larger of tol and a twentieth of total.
 * Levelled when both: over its last quarter (3 points at least) it did not
 * grow by more than an eighth of total (half what steady growth adds in a
 * quarter) and three standard errors at once (the least-squares line
 * through x there); and it reached its final level (the first point within
 * an eighth of total of its highest, the rise the last quarter may have,
 * and within eps) at least that quarter before the end, and longer
 * before it than any pause while it grew: between two new highs (values
 * above every earlier one by more than eps) before it got there. A type growing in
 * steps is not levelled during a pause no longer than its usual ones. */
static int grown_trend(const int64_t *x, const int64_t *y, size_t m, int64_t total, int64_t tol)
{
    int64_t eps = total / 20 > tol ? total / 20 : tol, near = total / 8 > eps ? total / 8 : eps;
    int64_t high = y[0], top = y[0];
    size_t last = 0, longest = 0, need = (m + 3) / 4, reach = 0, i;
    double late, var;

    if (need < 3)
        need = 3;
    late = fitted_growth(x + m - need, need, &var);
    if (late > (double)total / 8 && late * late > 9 * var)
        return PL_TREND_GROWING;
    for (i = 1; i < m; i++)
        if (y[i] > top)
            top = y[i];
    while (y[reach] < top - near)
        reach++;
    for (i = 1; i <= reach; i++) {
        if (y[i] <= high + eps)
            continue;
        if (last && i - last - 1 > longest)
            longest = i - last - 1;
        last = i;
        high = y[i];
    }
    if (m - 1 - reach >= need && m - 1 - reach > longest)
        return PL_TREND_LEVELLED;
    return PL_TREND_GROWING;
}

/* See trend.h. */
int pl_trend_classify(const int64_t *series, size_t n, int *trend)
{
    int64_t *x = NULL, *y, *tmp, *dev, start, end, total, tol, sum = 0;
    size_t m = 0, i, k;
    int rc = 0;

    *trend = PL_TREND_FLAT;
    for (i = 0; i < n; i++)
        m += series[i] >= 0;
    if (m < PL_TREND_MIN_POINTS)
        goto out;
    x = malloc(4 * m * sizeof *x);
    if (!x) {
        rc = ENOMEM;
        goto out;
    }
    y = x + m;
    tmp = y + m;
    dev = tmp + m;
    for (i = 0, m = 0; i < n; i++)
        if (series[i] >= 0)
            x[m++] = series[i];
    /* y: the running median of 5 (fewer near the ends, centred), which
     * drops a spike of one or two points; the noise is how far the points
     * stray from it (dev). */
    for (i = 0; i < m; i++) {
        size_t h = i < 2 ? i : 2;

        if (m - 1 - i < h)
            h = m - 1 - i;
        y[i] = median(x + i - h, 2 * h + 1, tmp);
        dev[i] = x[i] > y[i] ? x[i] - y[i] : y[i] - x[i];
        sum += dev[i];
    }
    /* The tolerance: 4 times the mean deviation (rare spikes), twice its
     * 90th percentile (temporaries present in many samples), a thousandth
     * of the level, 2 at least. */
    qsort(dev, m, sizeof *dev, cmp_i64);
    tol = 4 * sum / (int64_t)m;
    if (tol < 2 * dev[9 * m / 10])
        tol = 2 * dev[9 * m / 10];
    /* The levels at the ends: medians of the first and last sixth (an odd
     * number of points, 3 at least). */
    k = (m / 6 < 3 ? 3 : m / 6) | 1;
    start = median(x, k, tmp);
    end = median(x + m - k, k, tmp);
    total = end - start;
    if (tol < start / 1000)
        tol = start / 1000;
    if (tol < 2)
        tol = 2;
    if (total < -tol)
        *trend = PL_TREND_FALLING;
    else if (total > tol)
        *trend = grown_trend(x, y, m, total, tol);
out:
    free(x);
    return rc;
}
