/* The per-route growth fit (pl_route_fit): recovery of known per-request
 * growth from synthetic intervals with noise, the non-negative constraint,
 * routes it cannot tell apart, too few observations, bad input, and
 * standard errors that hold what they claim.
 *
 * `test_route_fit --bench` also times 64 routes x 100,000 observations
 * against a plain pass over the same data (bench/README.md). */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pyloot/route_fit.h"
#include "test.h"

/* ---- deterministic random numbers (splitmix64) ---- */

static uint64_t rng_state;

static void rng_seed(uint64_t seed) { rng_state = seed; }

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double uniform(void) { return (double)(rng_next() >> 11) * 0x1.0p-53; }

/* An integer in [lo, hi]. */
static double uniform_int(int lo, int hi) { return (double)(lo + (int)(uniform() * (hi - lo + 1))); }

/* Approximately normal, mean 0, standard deviation sd (sum of 12 uniforms). */
static double noise(double sd)
{
    double s = 0.0;
    for (int i = 0; i < 12; i++)
        s += uniform();
    return (s - 6.0) * sd;
}

/* ---- data sets ---- */

typedef struct data {
    size_t n, p;
    double *x, *y;
    pl_route_coef coef[PL_ROUTE_FIT_MAX_ROUTES];
    pl_route_fit_result res;
} data;

static data *data_new(size_t n, size_t p)
{
    data *d = calloc(1, sizeof *d);
    d->n = n;
    d->p = p;
    d->x = calloc(n * p + 1, sizeof *d->x);
    d->y = calloc(n + 1, sizeof *d->y);
    if (!d->x || !d->y) {
        perror("calloc");
        exit(2);
    }
    return d;
}

static void data_free(data *d)
{
    free(d->x);
    free(d->y);
    free(d);
}

/* y = intercept + sum_r per[r] x_r + noise(sd), x already filled. */
static void make_y(data *d, const double *per, double intercept, double sd)
{
    for (size_t i = 0; i < d->n; i++) {
        double y = intercept + noise(sd);
        for (size_t r = 0; r < d->p; r++)
            y += per[r] * d->x[i * d->p + r];
        d->y[i] = y;
    }
}

/* Every route's requests drawn independently in [0, hi]. */
static void random_mix(data *d, int hi)
{
    for (size_t i = 0; i < d->n * d->p; i++)
        d->x[i] = uniform_int(0, hi);
}

static int fit(data *d) { return pl_route_fit(d->n, d->p, d->x, d->y, d->coef, &d->res); }

static int close_to(double got, double want, double rel)
{
    return fabs(got - want) <= rel * fabs(want);
}

/* ---- tests ---- */

/* Routes leaking 1.0, 0.1 and 0 per request, random mixes under a varying load, freed garbage as
 * noise: each within 5 %, the one that does not leak under 0.02, all separable. */
static void test_recovery(void)
{
    static const double per[3] = {1.0, 0.1, 0.0};
    rng_seed(1);
    data *d = data_new(5000, 3);
    for (size_t i = 0; i < d->n; i++) {
        int load = (int)uniform_int(5, 60);
        for (size_t r = 0; r < 3; r++)
            d->x[i * 3 + r] = uniform_int(0, load);
    }
    make_y(d, per, 3.0, 1.0);
    CHECK_OK(fit(d));
    CHECK_EQ_INT(d->res.observations, 5000);
    CHECK(close_to(d->coef[0].per_request, 1.0, 0.05));
    CHECK(close_to(d->coef[1].per_request, 0.1, 0.05));
    CHECK(d->coef[2].per_request >= 0.0 && d->coef[2].per_request < 0.02);
    CHECK(fabs(d->res.intercept - 3.0) < 0.5);
    CHECK(d->res.r2 > 0.9 && d->res.r2 <= 1.0);
    for (int r = 0; r < 3; r++) {
        CHECK(d->coef[r].separable);
        CHECK(isfinite(d->coef[r].stderr_) && d->coef[r].stderr_ > 0.0);
        /* The error it states covers its miss. */
        CHECK(fabs(d->coef[r].per_request - per[r]) < 5.0 * d->coef[r].stderr_);
    }
    data_free(d);
}

/* Real traffic: every route rises and falls with one load (four cycles over the window, from half
 * to one and a half times its mean), in fixed average shares, the mix varying by up to 20 % from one
 * interval to the next. The routes correlate through the load, yet each varies enough on its own:
 * all separable, each within its error, the leaking ones within 10 %. */
static void test_common_load(void)
{
    static const double per[10] = {1.0, 0.0, 0.0, 0.2, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
    rng_seed(13);
    data *d = data_new(960, 10);
    for (size_t i = 0; i < d->n; i++) {
        double load = 400.0 * (1.0 + 0.5 * sin((double)i * 4.0 * 6.283185307179586 / (double)d->n));
        for (size_t r = 0; r < 10; r++)
            d->x[i * 10 + r] = floor(load / (double)(r + 1) * (1.0 + 0.2 * (2.0 * uniform() - 1.0)) + 0.5);
    }
    make_y(d, per, 0.0, 20.0);
    CHECK_OK(fit(d));
    for (int r = 0; r < 10; r++) {
        CHECK(d->coef[r].separable);
        CHECK(fabs(d->coef[r].per_request - per[r]) < 5.0 * d->coef[r].stderr_);
        if (per[r] > 0.0)
            CHECK(close_to(d->coef[r].per_request, per[r], 0.10));
    }
    data_free(d);
}

/* Two routes always called together in a fixed proportion cannot be told apart: neither is
 * separable and neither states an error, but their sum is right; a third, independent route is
 * unaffected. A route correlated at > 0.98 with another is not separable either. */
static void test_collinear(void)
{
    rng_seed(2);
    data *d = data_new(800, 3);
    for (size_t i = 0; i < d->n; i++) {
        double a = uniform_int(0, 30);
        d->x[i * 3 + 0] = a;
        d->x[i * 3 + 1] = 2.0 * a;
        d->x[i * 3 + 2] = uniform_int(0, 30);
    }
    static const double per[3] = {0.6, 0.2, 0.5};
    make_y(d, per, 0.0, 0.5);
    CHECK_OK(fit(d));
    CHECK(!d->coef[0].separable);
    CHECK(!d->coef[1].separable);
    CHECK(isnan(d->coef[0].stderr_) && isnan(d->coef[1].stderr_));
    CHECK(close_to(d->coef[0].per_request + 2.0 * d->coef[1].per_request, 1.0, 0.05));
    CHECK(d->coef[2].separable);
    CHECK(close_to(d->coef[2].per_request, 0.5, 0.05));

    /* Nearly collinear: b is a plus a request now and then. */
    for (size_t i = 0; i < d->n; i++) {
        double a = uniform_int(0, 30);
        d->x[i * 3 + 0] = a;
        d->x[i * 3 + 1] = a + (uniform() < 0.1 ? 1.0 : 0.0);
        d->x[i * 3 + 2] = uniform_int(0, 30);
    }
    make_y(d, per, 0.0, 0.5);
    CHECK_OK(fit(d));
    CHECK(!d->coef[0].separable);
    CHECK(!d->coef[1].separable);
    CHECK(d->coef[2].separable);
    data_free(d);
}

/* All routes moving with one load in fixed shares: none separable. */
static void test_fixed_proportions(void)
{
    rng_seed(3);
    data *d = data_new(500, 4);
    for (size_t i = 0; i < d->n; i++) {
        double load = uniform_int(1, 100);
        for (size_t r = 0; r < 4; r++)
            d->x[i * 4 + r] = load * (double)(r + 1);
    }
    static const double per[4] = {0.5, 0.0, 0.0, 0.0};
    make_y(d, per, 0.0, 0.5);
    CHECK_OK(fit(d));
    for (int r = 0; r < 4; r++)
        CHECK(!d->coef[r].separable);
    data_free(d);
}

/* A route whose requests free more than they make is clipped to 0; the others stay right. */
static void test_negative_clipped(void)
{
    static const double per[3] = {1.0, -0.5, 0.2};
    rng_seed(4);
    data *d = data_new(2000, 3);
    /* The freeing route is called a few times per interval: what it frees, no route explains. */
    for (size_t i = 0; i < d->n; i++) {
        d->x[i * 3 + 0] = uniform_int(0, 40);
        d->x[i * 3 + 1] = uniform_int(0, 4);
        d->x[i * 3 + 2] = uniform_int(0, 40);
    }
    make_y(d, per, 1.0, 1.0);
    CHECK_OK(fit(d));
    CHECK(d->coef[1].per_request == 0.0);
    CHECK(close_to(d->coef[0].per_request, 1.0, 0.05));
    CHECK(close_to(d->coef[2].per_request, 0.2, 0.05));
    for (int r = 0; r < 3; r++)
        CHECK(d->coef[r].per_request >= 0.0);
    /* Held at 0, it still states how sure that is. */
    CHECK(d->coef[1].separable && isfinite(d->coef[1].stderr_));

    /* A route that enters first and must leave: called with both leaking routes (and a little on
     * its own), it frees half a unit per request. Unconstrained it would be -0.5; held at 0, the
     * other two take y = 0.5 x0 + 0.5 x2 - 0.5 u. */
    static const double per2[3] = {1.0, -0.5, 1.0};
    for (size_t i = 0; i < d->n; i++) {
        double a = uniform_int(0, 40), b = uniform_int(0, 40);
        d->x[i * 3 + 0] = a;
        d->x[i * 3 + 1] = a + b + uniform_int(0, 5);
        d->x[i * 3 + 2] = b;
    }
    make_y(d, per2, 0.0, 0.5);
    CHECK_OK(fit(d));
    CHECK(d->coef[1].per_request == 0.0);
    CHECK(close_to(d->coef[0].per_request, 0.5, 0.05));
    CHECK(close_to(d->coef[2].per_request, 0.5, 0.05));
    data_free(d);
}

/* Fewer observations than routes + 2: all zeros, none separable, no error stated. */
static void test_too_few(void)
{
    static const double per[4] = {1.0, 1.0, 1.0, 1.0};
    rng_seed(5);
    data *d = data_new(5, 4);
    random_mix(d, 10);
    make_y(d, per, 0.0, 0.0);
    CHECK_OK(fit(d));
    CHECK_EQ_INT(d->res.observations, 5);
    CHECK(d->res.r2 == 0.0);
    for (int r = 0; r < 4; r++) {
        CHECK(d->coef[r].per_request == 0.0);
        CHECK(!d->coef[r].separable);
        CHECK(isnan(d->coef[r].stderr_));
    }
    /* One more is enough to fit. */
    data *e = data_new(6, 4);
    random_mix(e, 10);
    make_y(e, per, 0.0, 0.0);
    CHECK_OK(fit(e));
    CHECK(e->coef[0].per_request > 0.0);
    data_free(e);
    /* No observation at all. */
    pl_route_fit_result res;
    pl_route_coef c[2];
    CHECK_OK(pl_route_fit(0, 2, NULL, NULL, c, &res));
    CHECK(res.observations == 0 && res.intercept == 0.0 && c[0].per_request == 0.0 && !c[1].separable);
    data_free(d);
}

/* NaN or infinity anywhere, too many routes, missing arrays, sums that overflow: EINVAL, and
 * nothing written. */
static void test_bad_input(void)
{
    rng_seed(6);
    data *d = data_new(50, 2);
    random_mix(d, 10);
    static const double per[2] = {1.0, 0.0};
    make_y(d, per, 0.0, 1.0);
    pl_route_coef sentinel = {42.0, 42.0, 42};
    pl_route_fit_result rsentinel = {42.0, 42.0, 42, 42};

#define EXPECT_EINVAL(call)                                                                     \
    do {                                                                                        \
        d->coef[0] = d->coef[1] = sentinel;                                                     \
        d->res = rsentinel;                                                                     \
        CHECK_EQ_INT((call), EINVAL);                                                           \
        CHECK(d->coef[0].per_request == 42.0 && d->coef[1].separable == 42);                    \
        CHECK(d->res.observations == 42);                                                       \
    } while (0)

    d->x[17] = NAN;
    EXPECT_EINVAL(fit(d));
    d->x[17] = INFINITY;
    EXPECT_EINVAL(fit(d));
    d->x[17] = 3.0;
    d->y[49] = -INFINITY;
    EXPECT_EINVAL(fit(d));
    d->y[49] = NAN;
    EXPECT_EINVAL(fit(d));
    d->y[49] = 1.0;
    d->y[0] = 1e200; /* its square overflows */
    EXPECT_EINVAL(fit(d));
    d->y[0] = 1.0;
    EXPECT_EINVAL(pl_route_fit(d->n, PL_ROUTE_FIT_MAX_ROUTES + 1, d->x, d->y, d->coef, &d->res));
    EXPECT_EINVAL(pl_route_fit(d->n, 2, NULL, d->y, d->coef, &d->res));
    EXPECT_EINVAL(pl_route_fit(d->n, 2, d->x, NULL, d->coef, &d->res));
    EXPECT_EINVAL(pl_route_fit(d->n, 2, d->x, d->y, NULL, &d->res));
    EXPECT_EINVAL(pl_route_fit(SIZE_MAX / 2, 3, d->x, d->y, d->coef, &d->res)); /* nobs x nroutes overflows */
    CHECK_EQ_INT(pl_route_fit(d->n, 2, d->x, d->y, d->coef, NULL), EINVAL);
#undef EXPECT_EINVAL
    CHECK_OK(fit(d));
    data_free(d);
}

/* A route that never varies (always 7 requests, or never called) cannot be told from the
 * intercept: 0, not separable, no error. The others are fitted. */
static void test_idle_routes(void)
{
    static const double per[3] = {0.5, 0.3, 0.0};
    rng_seed(7);
    data *d = data_new(300, 3);
    for (size_t i = 0; i < d->n; i++) {
        d->x[i * 3 + 0] = uniform_int(0, 20);
        d->x[i * 3 + 1] = 7.0;
        d->x[i * 3 + 2] = 0.0;
    }
    make_y(d, per, 0.0, 0.2);
    CHECK_OK(fit(d));
    CHECK(close_to(d->coef[0].per_request, 0.5, 0.05) && d->coef[0].separable);
    for (int r = 1; r < 3; r++) {
        CHECK(d->coef[r].per_request == 0.0);
        CHECK(!d->coef[r].separable);
        CHECK(isnan(d->coef[r].stderr_));
    }
    /* The constant route's growth lands in the intercept: 0.3 x 7. */
    CHECK(fabs(d->res.intercept - 2.1) < 0.1);
    data_free(d);
}

/* Without noise the fit is exact, whatever the scale of the counts. */
static void test_exact_and_scale(void)
{
    static const double per[3] = {2.5, 0.0, 0.75};
    rng_seed(8);
    data *d = data_new(200, 3);
    random_mix(d, 50);
    make_y(d, per, -4.0, 0.0);
    CHECK_OK(fit(d));
    CHECK(d->res.r2 > 1.0 - 1e-12);
    CHECK(fabs(d->coef[0].per_request - 2.5) < 1e-9);
    CHECK(d->coef[1].per_request < 1e-9);
    CHECK(fabs(d->coef[2].per_request - 0.75) < 1e-9);
    CHECK(fabs(d->res.intercept + 4.0) < 1e-7);

    /* Counts around a million per interval, one route's effect a million times the other's. */
    static const double big[2] = {1e-3, 1e3};
    data *e = data_new(400, 2);
    for (size_t i = 0; i < e->n * 2; i++)
        e->x[i] = 1e6 + uniform_int(0, 1000);
    make_y(e, big, 5e6, 0.0);
    CHECK_OK(fit(e));
    CHECK(close_to(e->coef[0].per_request, 1e-3, 1e-6));
    CHECK(close_to(e->coef[1].per_request, 1e3, 1e-9));
    CHECK(e->coef[0].separable && e->coef[1].separable);
    data_free(e);
    data_free(d);
}

/* One route only: separable (there is no other), its slope is all the growth that moves with it;
 * y that never changes: nothing grows, r2 is 0. */
static void test_one_route_and_flat(void)
{
    static const double per[1] = {0.25};
    rng_seed(9);
    data *d = data_new(100, 1);
    random_mix(d, 40);
    make_y(d, per, 1.0, 0.1);
    CHECK_OK(fit(d));
    CHECK(d->coef[0].separable);
    CHECK(close_to(d->coef[0].per_request, 0.25, 0.05));

    for (size_t i = 0; i < d->n; i++)
        d->y[i] = 12.0;
    CHECK_OK(fit(d));
    CHECK(d->coef[0].per_request == 0.0);
    CHECK(d->res.r2 == 0.0);
    CHECK(d->res.intercept == 12.0);
    data_free(d);
}

/* Over many fits of fresh noise, |estimate - truth| < 2 stderr about 95 % of the time. */
static void test_stderr_coverage(void)
{
    static const double per[3] = {0.8, 0.3, 0.05};
    rng_seed(10);
    int inside = 0, total = 0;
    data *d = data_new(300, 3);
    for (int round = 0; round < 300; round++) {
        random_mix(d, 20);
        make_y(d, per, 2.0, 2.0);
        CHECK_OK(fit(d));
        for (int r = 0; r < 3; r++) {
            total++;
            inside += fabs(d->coef[r].per_request - per[r]) < 2.0 * d->coef[r].stderr_;
        }
    }
    double share = (double)inside / total;
    fprintf(stderr, "  within 2 stderr: %.3f of %d estimates\n", share, total);
    CHECK(share > 0.91 && share < 0.99);
    data_free(d);
}

/* 64 routes with sparse random traffic, 8 of them leaking at rates from 0.05 to 3. */
static data *many_routes(size_t n, double *per)
{
    data *d = data_new(n, PL_ROUTE_FIT_MAX_ROUTES);
    for (size_t r = 0; r < PL_ROUTE_FIT_MAX_ROUTES; r++)
        per[r] = 0.0;
    for (size_t k = 0; k < 8; k++)
        per[k * 8 + 3] = 0.05 * (double)(1 << k) * 0.75;
    for (size_t i = 0; i < n; i++)
        for (size_t r = 0; r < PL_ROUTE_FIT_MAX_ROUTES; r++)
            d->x[i * PL_ROUTE_FIT_MAX_ROUTES + r] = uniform() < 0.3 ? uniform_int(1, 30) : 0.0;
    make_y(d, per, 10.0, 3.0);
    return d;
}

static void test_many_routes(void)
{
    double per[PL_ROUTE_FIT_MAX_ROUTES];
    rng_seed(11);
    data *d = many_routes(20000, per);
    CHECK_OK(fit(d));
    for (size_t r = 0; r < PL_ROUTE_FIT_MAX_ROUTES; r++) {
        CHECK(d->coef[r].separable);
        if (per[r] > 0.0)
            CHECK(close_to(d->coef[r].per_request, per[r], 0.05));
        else
            CHECK(d->coef[r].per_request < 0.02);
    }
    data_free(d);
}

/* A worker's warm-up: three observations of 60 (one per worker started) where the type jumps by
 * 3000, the others 1.0 per request of route 0 with a little noise. Plain least squares gives every
 * route 0 (the jumps swamp it); the robust fit leaves out exactly those three and finds 1.0. Data
 * with most residuals equal (exact growth) leaves nothing out; outliers beyond a tenth neither. */
static void test_robust_warmup(void)
{
    static const double per[2] = {1.0, 0.0};
    rng_seed(7);
    data *d = data_new(60, 2);
    random_mix(d, 6);
    make_y(d, per, 0.0, 0.3);
    d->y[0] += 3000;
    d->y[20] += 3000;
    d->y[40] += 3000;
    CHECK_OK(fit(d));
    CHECK(d->coef[0].per_request < 0.5);
    CHECK_OK(pl_route_fit_robust(d->n, d->p, d->x, d->y, d->coef, &d->res));
    CHECK_EQ_INT(d->res.observations, 60);
    CHECK_EQ_INT(d->res.outliers, 3);
    CHECK(close_to(d->coef[0].per_request, 1.0, 0.1));
    CHECK(d->coef[1].per_request < 0.1);
    CHECK(fabs(d->res.intercept) < 1.0);
    /* Exact growth: every residual 0, nothing left out. */
    make_y(d, per, 0.0, 0.0);
    CHECK_OK(pl_route_fit_robust(d->n, d->p, d->x, d->y, d->coef, &d->res));
    CHECK_EQ_INT(d->res.outliers, 0);
    CHECK(close_to(d->coef[0].per_request, 1.0, 1e-9));
    /* Seven jumps of 60 observations are more than a tenth: kept, as plain least squares has it. */
    make_y(d, per, 0.0, 0.3);
    for (int i = 0; i < 7; i++)
        d->y[i * 8] += 3000;
    CHECK_OK(pl_route_fit_robust(d->n, d->p, d->x, d->y, d->coef, &d->res));
    CHECK_EQ_INT(d->res.outliers, 0);
    /* Too few observations, no routes, bad input: as pl_route_fit. */
    CHECK_OK(pl_route_fit_robust(3, 2, d->x, d->y, d->coef, &d->res));
    CHECK_EQ_INT(d->res.outliers, 0);
    CHECK_OK(pl_route_fit_robust(60, 0, NULL, d->y, NULL, &d->res));
    CHECK(pl_route_fit_robust(60, 2, NULL, d->y, d->coef, &d->res) == EINVAL);
    data_free(d);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The fit of 64 routes x 100,000 observations against one plain pass that sums every value of the
 * same data (the least any fit must do) and against the raw X'X products (what accumulating the
 * normal equations costs without centring). Prints, asserts nothing about time. */
static void bench(void)
{
    double per[PL_ROUTE_FIT_MAX_ROUTES];
    const size_t n = 100000, p = PL_ROUTE_FIT_MAX_ROUTES;
    rng_seed(12);
    data *d = many_routes(n, per);
    double best_fit = 1e9, best_pass = 1e9, best_raw = 1e9, sink = 0.0;
    static double xtx[PL_ROUTE_FIT_MAX_ROUTES * PL_ROUTE_FIT_MAX_ROUTES];
    for (int round = 0; round < 5; round++) {
        double t0 = now_s();
        for (size_t i = 0; i < n * p; i++)
            sink += d->x[i];
        for (size_t i = 0; i < n; i++)
            sink += d->y[i];
        double t1 = now_s();
        memset(xtx, 0, sizeof xtx);
        for (size_t i = 0; i < n; i++) {
            const double *row = d->x + i * p;
            for (size_t a = 0; a < p; a++)
                for (size_t b = a; b < p; b++)
                    xtx[a * p + b] += row[a] * row[b];
        }
        sink += xtx[p + 1];
        double t2 = now_s();
        CHECK_OK(fit(d));
        double t3 = now_s();
        best_pass = fmin(best_pass, t1 - t0);
        best_raw = fmin(best_raw, t2 - t1);
        best_fit = fmin(best_fit, t3 - t2);
    }
    printf("route_fit 64 routes x 100000 observations: fit %.1f ms; one pass over the data %.1f ms (x%.1f); "
           "raw X'X %.1f ms (x%.2f)  [sink %g]\n",
           best_fit * 1e3, best_pass * 1e3, best_fit / best_pass, best_raw * 1e3, best_fit / best_raw, sink > 0 ? 1.0 : 0.0);
    int off = 0;
    for (size_t r = 0; r < p; r++)
        off += per[r] > 0.0 ? !close_to(d->coef[r].per_request, per[r], 0.05) : d->coef[r].per_request >= 0.02;
    printf("route_fit: %d of 64 routes outside 5 %% (leaking) or above 0.02 (not leaking); r2 %.4f\n", off, d->res.r2);
    fflush(stdout);
    CHECK(off == 0);
    data_free(d);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--bench") == 0) {
        RUN(bench);
        return TEST_EXIT();
    }
    RUN(test_recovery);
    RUN(test_collinear);
    RUN(test_fixed_proportions);
    RUN(test_common_load);
    RUN(test_negative_clipped);
    RUN(test_too_few);
    RUN(test_bad_input);
    RUN(test_idle_routes);
    RUN(test_exact_and_scale);
    RUN(test_one_route_and_flat);
    RUN(test_stderr_coverage);
    RUN(test_many_routes);
    RUN(test_robust_warmup);
    return TEST_EXIT();
}
