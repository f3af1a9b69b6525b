/* pyloot core: growth per request of each route (pyloot/route_fit.h).
 *
 * The model: y_i = intercept + sum_r b_r x_ir + e_i, b_r >= 0, the intercept free. One function per
 * phase:
 *   accumulate  one pass over the observations: the mean of every route's requests and of y, and their
 *               centred co-moments (Welford's update, so large counts never cancel). Centring takes the
 *               intercept out: what is left is a p x p system, whatever the number of observations.
 *   scale       every route that varies to unit variance: the system becomes the routes' correlation
 *               matrix, so one tolerance means the same for every route whatever its traffic.
 *   nnls        Lawson-Hanson active set on that small system (the normal-equations form of Bro and
 *               de Jong's FNNLS); each step is a Cholesky solve whose pivot tolerance drops a column
 *               the active ones already span.
 *   separable   each route's share of variance the other routes do not explain (1 - R^2 of it on
 *               them, from a Cholesky of the others that skips the spanned ones).
 *   residuals   a second pass for the residual sum of squares (computed from the data: from the normal
 *               equations it would cancel when the fit is close), then r^2 and standard errors.
 * docs/routes.md tells the method, its assumptions and when it cannot separate routes. */
#include "pyloot/route_fit.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A column whose Cholesky pivot (its variance left unexplained by the columns before it, on the
 * correlation scale) is at or below this is taken as spanned by them: numerically dependent. */
#define PIVOT_TOL 1e-9
/* A route is separable when at least this share of its variance is its own (1 - R^2 of it on the
 * other routes; a variance inflation factor of at most 25). One other route correlated at
 * |r| > 0.98 leaves it less than 1 - 0.98^2 = 0.0396. */
#define SEPARABLE_MIN_OWN 0.04
/* A route enters the active set only when the correlation-scale gradient exceeds this times
 * the spread of y: rounding cannot pull a column in. */
#define GRADIENT_TOL 1e-10

enum col_state {
    COL_IDLE,      /* never varies: no slope can be told from the intercept */
    COL_FREE,      /* held at 0 by the constraint */
    COL_ACTIVE,    /* in the active set, positive */
    COL_DEPENDENT, /* spanned by the active columns when it would have entered */
};

/* Scratch of one fit, one allocation. p routes, m = p + 1 (the routes, then y). */
typedef struct fit_work {
    size_t p, m;
    double *mean;  /* m: running means */
    double *delta; /* m: this observation minus the old mean */
    double *com;   /* m x m: centred co-moments, upper triangle */
    double *scale; /* p: sqrt of the route's co-moment, 0 when idle */
    double *gram;  /* p x p: correlation matrix of the routes (idle rows unused) */
    double *rhs;   /* p: scaled X'y */
    double *z;     /* p: scaled solution */
    double *s;     /* p: trial solution on the active set (by position) */
    double *l;     /* p x p: Cholesky factor, lower, row stride p */
    double *v;     /* p: a forward-solve result */
    double *own;   /* p: share of each route's variance that is its own */
    size_t *active; /* p: active columns in order of entry */
    size_t *others; /* p: work list for the separability factor */
    unsigned char *state; /* p: enum col_state */
    size_t nactive;
} fit_work;

static int work_alloc(fit_work *fw, size_t p)
{
    size_t m = p + 1;
    size_t doubles = 3 * m + m * m + 6 * p + 2 * p * p;
    memset(fw, 0, sizeof *fw);
    fw->p = p;
    fw->m = m;
    double *d = calloc(doubles, sizeof *d);
    size_t *idx = calloc(2 * p + 1, sizeof *idx);
    unsigned char *st = calloc(p + 1, 1);
    if (!d || !idx || !st) {
        free(d);
        free(idx);
        free(st);
        return ENOMEM;
    }
    fw->mean = d;
    fw->delta = fw->mean + m;
    fw->com = fw->delta + m;
    fw->scale = fw->com + m * m;
    fw->gram = fw->scale + p;
    fw->rhs = fw->gram + p * p;
    fw->z = fw->rhs + p;
    fw->s = fw->z + p;
    fw->l = fw->s + p;
    fw->v = fw->l + p * p;
    fw->own = fw->v + p;
    fw->active = idx;
    fw->others = idx + p;
    fw->state = st;
    return 0;
}

static void work_free(fit_work *fw)
{
    free(fw->mean);
    free(fw->active);
    free(fw->state);
}

/* ---- accumulate ---- */

/* Means and centred co-moments of the routes and y in one pass. EINVAL on a non-finite value, or
 * when the sums overflow. */
static int accumulate(fit_work *fw, size_t nobs, const double *x, const double *y)
{
    size_t p = fw->p, m = fw->m;
    double *mean = fw->mean, *delta = fw->delta, *com = fw->com;
    for (size_t i = 0; i < nobs; i++) {
        const double *row = x ? x + i * p : NULL;
        double inv = 1.0 / (double)(i + 1);
        for (size_t c = 0; c < m; c++) {
            double val = c < p ? row[c] : y[i];
            if (!isfinite(val))
                return EINVAL;
            delta[c] = val - mean[c];
            mean[c] += delta[c] * inv;
        }
        /* C += (v - old mean)(v - new mean)^T, and v - new mean = delta * i / (i + 1). */
        double keep = (double)i * inv;
        for (size_t a = 0; a < m; a++) {
            double da = delta[a] * keep;
            if (da == 0.0)
                continue;
            double *crow = com + a * m;
            for (size_t b = a; b < m; b++)
                crow[b] += da * delta[b];
        }
    }
    for (size_t a = 0; a < m; a++)
        for (size_t b = a; b < m; b++)
            if (!isfinite(com[a * m + b]))
                return EINVAL;
    return 0;
}

/* ---- scale ---- */

/* The correlation matrix of the varying routes and the scaled right-hand side; routes that never
 * vary are idle. */
static void scale(fit_work *fw, size_t nobs)
{
    size_t p = fw->p, m = fw->m;
    for (size_t r = 0; r < p; r++) {
        double var = fw->com[r * m + r];
        /* Never varies, or only by rounding of its own level. */
        int idle = !(var > 0.0) || sqrt(var / (double)nobs) <= 1e-12 * fabs(fw->mean[r]);
        fw->scale[r] = idle ? 0.0 : sqrt(var);
        fw->state[r] = idle ? COL_IDLE : COL_FREE;
    }
    for (size_t a = 0; a < p; a++) {
        if (fw->state[a] == COL_IDLE)
            continue;
        fw->rhs[a] = fw->com[a * m + p] / fw->scale[a];
        for (size_t b = a; b < p; b++) {
            if (fw->state[b] == COL_IDLE)
                continue;
            double g = a == b ? 1.0 : fw->com[a * m + b] / (fw->scale[a] * fw->scale[b]);
            fw->gram[a * p + b] = g;
            fw->gram[b * p + a] = g;
        }
    }
}

/* ---- Cholesky on a subset of the columns ---- */

/* Row k of the Cholesky factor of gram restricted to idx[0..k] (rows 0..k-1 already in l): the
 * off-diagonal entries are written, the diagonal is not. Returns the pivot, the part of column
 * idx[k]'s unit variance the columns idx[0..k) do not explain. */
static double chol_row(fit_work *fw, const size_t *idx, size_t k)
{
    size_t p = fw->p;
    const double *g = fw->gram;
    double *lk = fw->l + k * p;
    double pivot = g[idx[k] * p + idx[k]];
    for (size_t j = 0; j < k; j++) {
        double sum = g[idx[k] * p + idx[j]];
        const double *lj = fw->l + j * p;
        for (size_t t = 0; t < j; t++)
            sum -= lk[t] * lj[t];
        lk[j] = sum / lj[j];
        pivot -= lk[j] * lk[j];
    }
    return pivot;
}

/* Factors the active set in order of entry. Returns nactive, or the position of the first column
 * the ones before it span. */
static size_t factor_active(fit_work *fw)
{
    for (size_t k = 0; k < fw->nactive; k++) {
        double pivot = chol_row(fw, fw->active, k);
        if (!(pivot > PIVOT_TOL))
            return k;
        fw->l[k * fw->p + k] = sqrt(pivot);
    }
    return fw->nactive;
}

/* Solves L L^T s = b (b indexed by position, as s) for the k x k factor in fw->l. */
static void chol_solve(const fit_work *fw, size_t k, const double *b, double *s)
{
    size_t p = fw->p;
    for (size_t i = 0; i < k; i++) {
        double sum = b[i];
        for (size_t t = 0; t < i; t++)
            sum -= fw->l[i * p + t] * s[t];
        s[i] = sum / fw->l[i * p + i];
    }
    for (size_t i = k; i-- > 0;) {
        double sum = s[i];
        for (size_t t = i + 1; t < k; t++)
            sum -= fw->l[t * p + i] * s[t];
        s[i] = sum / fw->l[i * p + i];
    }
}

/* ---- nnls ---- */

static void drop_position(fit_work *fw, size_t pos, unsigned char state)
{
    size_t col = fw->active[pos];
    fw->state[col] = state;
    fw->z[col] = 0.0;
    memmove(fw->active + pos, fw->active + pos + 1, (fw->nactive - pos - 1) * sizeof *fw->active);
    fw->nactive--;
}

/* The free column with the largest gradient above gtol, or SIZE_MAX. */
static size_t entering_column(fit_work *fw, double gtol)
{
    size_t p = fw->p, best = SIZE_MAX;
    double best_w = gtol;
    for (size_t j = 0; j < p; j++) {
        if (fw->state[j] != COL_FREE)
            continue;
        double w = fw->rhs[j];
        for (size_t k = 0; k < fw->nactive; k++)
            w -= fw->gram[j * p + fw->active[k]] * fw->z[fw->active[k]];
        if (w > best_w) {
            best_w = w;
            best = j;
        }
    }
    return best;
}

/* Solves the active set's equations into fw->s (by position), dropping columns the others span.
 * Returns 0, or -1 when the column that just entered (the last) was dropped. */
static int solve_active(fit_work *fw)
{
    for (;;) {
        size_t ok = factor_active(fw);
        if (ok == fw->nactive)
            break;
        int was_last = ok == fw->nactive - 1;
        drop_position(fw, ok, COL_DEPENDENT);
        if (was_last)
            return -1;
    }
    for (size_t k = 0; k < fw->nactive; k++)
        fw->v[k] = fw->rhs[fw->active[k]];
    chol_solve(fw, fw->nactive, fw->v, fw->s);
    return 0;
}

/* Lawson-Hanson: grow the active set by the steepest free column; when the unconstrained solution on
 * the active set leaves a column at or below zero, step back towards it until the first one reaches
 * zero and free it. Bounded in steps: each column enters at most a few times on real data. */
static void nnls(fit_work *fw, double gtol)
{
    size_t steps = 0, max_steps = 4 * fw->p + 16;
    for (;;) {
        size_t j = entering_column(fw, gtol);
        if (j == SIZE_MAX || ++steps > max_steps)
            return;
        fw->state[j] = COL_ACTIVE;
        fw->active[fw->nactive++] = j;
        int first = 1;
        for (;;) {
            if (solve_active(fw) < 0)
                break;
            size_t k = fw->nactive;
            size_t low = SIZE_MAX;
            double alpha = 1.0;
            for (size_t i = 0; i < k; i++) {
                if (fw->s[i] > 0.0)
                    continue;
                double zi = fw->z[fw->active[i]];
                double a = zi / (zi - fw->s[i]);
                if (low == SIZE_MAX || a < alpha) {
                    alpha = a;
                    low = i;
                }
            }
            if (low == SIZE_MAX) {
                for (size_t i = 0; i < k; i++)
                    fw->z[fw->active[i]] = fw->s[i];
                break;
            }
            if (first && fw->active[low] == j && fw->z[j] == 0.0) {
                /* Its gradient says it should rise but the solve says it cannot: rounding on a
                 * nearly spanned column. Keep it out rather than loop on it. */
                drop_position(fw, low, COL_DEPENDENT);
                break;
            }
            first = 0;
            for (size_t i = 0; i < k; i++) {
                double zi = fw->z[fw->active[i]];
                fw->z[fw->active[i]] = zi + alpha * (fw->s[i] - zi);
            }
            fw->z[fw->active[low]] = 0.0;
            for (size_t i = fw->nactive; i-- > 0;)
                if (!(fw->z[fw->active[i]] > 0.0))
                    drop_position(fw, i, COL_FREE);
            if (++steps > max_steps)
                return;
        }
    }
}

/* ---- separable ---- */

/* For each varying route, the share of its variance the other varying routes leave unexplained. */
static void separability(fit_work *fw)
{
    size_t p = fw->p;
    for (size_t r = 0; r < p; r++) {
        fw->own[r] = 0.0;
        if (fw->state[r] == COL_IDLE)
            continue;
        size_t k = 0;
        for (size_t c = 0; c < p; c++) {
            if (c == r || fw->state[c] == COL_IDLE)
                continue;
            fw->others[k] = c;
            double pivot = chol_row(fw, fw->others, k);
            if (pivot > PIVOT_TOL) {
                fw->l[k * p + k] = sqrt(pivot);
                k++;
            }
        }
        fw->others[k] = r;
        double own = chol_row(fw, fw->others, k);
        fw->own[r] = own > 0.0 ? own : 0.0;
    }
}

/* ---- residuals, standard errors, the answer ---- */

/* Residual sum of squares of the fit b (per request, unscaled) around the means. */
static double residual_ss(const fit_work *fw, size_t nobs, const double *x, const double *y, const double *b)
{
    size_t p = fw->p;
    double rss = 0.0;
    for (size_t i = 0; i < nobs; i++) {
        double e = y[i] - fw->mean[p];
        for (size_t k = 0; k < fw->nactive; k++) {
            size_t r = fw->active[k];
            e -= b[r] * (x[i * p + r] - fw->mean[r]);
        }
        rss += e * e;
    }
    return rss;
}

/* The diagonal of the active set's inverse correlation matrix into fw->s (by position), from the
 * factor in fw->l: (A^-1)_ii is the squared norm of column i of L^-1. */
static void active_inverse_diagonal(fit_work *fw)
{
    size_t p = fw->p, k = fw->nactive;
    for (size_t i = 0; i < k; i++) {
        double sum2 = 0.0;
        for (size_t row = i; row < k; row++) {
            double sum = row == i ? 1.0 : 0.0;
            for (size_t t = i; t < row; t++)
                sum -= fw->l[row * p + t] * fw->v[t];
            fw->v[row] = sum / fw->l[row * p + row];
            sum2 += fw->v[row] * fw->v[row];
        }
        fw->s[i] = sum2;
    }
}

/* Standard errors: sigma^2 (X_P'X_P)^-1 for an active route; for a route held at 0, the error it
 * would have if it joined the active set (so "0 +- 0.001" tells a route that surely does not grow
 * it). NAN when the route is not separable, or no degree of freedom is left. */
static void standard_errors(fit_work *fw, size_t nobs, double rss, pl_route_coef *coef)
{
    size_t p = fw->p, k = fw->nactive;
    double sigma2 = nobs > k + 1 ? rss / (double)(nobs - k - 1) : NAN;
    if (factor_active(fw) != k) /* cannot happen: the same set factored in nnls */
        sigma2 = NAN;
    active_inverse_diagonal(fw);
    for (size_t i = 0; i < k; i++) {
        size_t r = fw->active[i];
        coef[r].stderr_ = sqrt(sigma2 * fw->s[i]) / fw->scale[r];
    }
    for (size_t r = 0; r < p; r++) {
        if (fw->state[r] != COL_FREE && fw->state[r] != COL_DEPENDENT)
            continue;
        fw->active[k] = r;
        double pivot = chol_row(fw, fw->active, k);
        coef[r].stderr_ = pivot > PIVOT_TOL ? sqrt(sigma2 / pivot) / fw->scale[r] : NAN;
    }
    for (size_t r = 0; r < p; r++)
        if (!coef[r].separable)
            coef[r].stderr_ = NAN;
}

int pl_route_fit(size_t nobs, size_t nroutes, const double *x, const double *y, pl_route_coef *coef,
                 pl_route_fit_result *res)
{
    if (nroutes > PL_ROUTE_FIT_MAX_ROUTES || (nobs && (!y || (nroutes && !x))) || (nroutes && !coef) || !res ||
        (nroutes && nobs > SIZE_MAX / nroutes))
        return EINVAL;
    fit_work fw;
    int rc = work_alloc(&fw, nroutes);
    if (rc)
        return rc;
    rc = accumulate(&fw, nobs, x, y);
    if (rc)
        goto out;
    size_t p = nroutes;
    memset(res, 0, sizeof *res);
    res->observations = nobs;
    res->intercept = nobs ? fw.mean[p] : 0.0;
    for (size_t r = 0; r < p; r++)
        coef[r] = (pl_route_coef){0.0, NAN, 0};
    if (nobs < nroutes + 2)
        goto out;

    double syy = fw.com[p * fw.m + p];
    scale(&fw, nobs);
    nnls(&fw, GRADIENT_TOL * sqrt(syy));
    separability(&fw);
    double intercept = fw.mean[p];
    for (size_t k = 0; k < fw.nactive; k++) {
        size_t r = fw.active[k];
        coef[r].per_request = fw.z[r] / fw.scale[r];
        intercept -= coef[r].per_request * fw.mean[r];
    }
    for (size_t r = 0; r < p; r++)
        coef[r].separable = fw.state[r] != COL_IDLE && fw.own[r] >= SEPARABLE_MIN_OWN;
    /* The per-request values by route index, for the residual pass. */
    for (size_t r = 0; r < p; r++)
        fw.delta[r] = coef[r].per_request;
    double rss = residual_ss(&fw, nobs, x, y, fw.delta);
    res->intercept = intercept;
    res->r2 = syy > 0.0 ? 1.0 - rss / syy : 0.0;
    if (!(res->r2 > 0.0))
        res->r2 = 0.0;
    if (res->r2 > 1.0)
        res->r2 = 1.0;
    standard_errors(&fw, nobs, rss, coef);
out:
    work_free(&fw);
    return rc;
}

/* ---- robust ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median_of(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int pl_route_fit_robust(size_t nobs, size_t nroutes, const double *x, const double *y, pl_route_coef *coef,
                        pl_route_fit_result *res)
{
    int rc = pl_route_fit(nobs, nroutes, x, y, coef, res);
    if (rc || nobs < nroutes + 2 || nobs < 10)
        return rc;
    double *r = malloc(2 * nobs * sizeof *r);
    if (!r)
        return ENOMEM;
    double *tmp = r + nobs;
    for (size_t i = 0; i < nobs; i++) {
        double f = res->intercept;
        for (size_t k = 0; k < nroutes; k++)
            f += coef[k].per_request * x[i * nroutes + k];
        r[i] = y[i] - f;
        tmp[i] = r[i];
    }
    double med = median_of(tmp, nobs);
    for (size_t i = 0; i < nobs; i++)
        tmp[i] = fabs(r[i] - med);
    double cut = PL_ROUTE_FIT_OUTLIER_MADS * 1.4826 * median_of(tmp, nobs);
    size_t out = 0;
    for (size_t i = 0; i < nobs; i++)
        out += fabs(r[i] - med) > cut;
    if (!(cut > 0.0) || !out || out > nobs / 10) {
        free(r);
        return 0;
    }
    /* The kept rows, compacted into a copy (x and y are the caller's). */
    double *kx = malloc((nobs - out) * (nroutes ? nroutes : 1) * sizeof *kx), *ky = malloc((nobs - out) * sizeof *ky);
    if (!kx || !ky) {
        free(kx);
        free(ky);
        free(r);
        return ENOMEM;
    }
    size_t n = 0;
    for (size_t i = 0; i < nobs; i++) {
        if (fabs(r[i] - med) > cut)
            continue;
        if (nroutes)
            memcpy(kx + n * nroutes, x + i * nroutes, nroutes * sizeof *kx);
        ky[n++] = y[i];
    }
    rc = pl_route_fit(n, nroutes, kx, ky, coef, res);
    if (!rc) {
        res->observations = nobs;
        res->outliers = out;
    }
    free(kx);
    free(ky);
    free(r);
    return rc;
}
