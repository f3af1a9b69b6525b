/* The time axis of the series a store reads (history.c, memory.c): slot
 * ends at multiples of a step, plus the end of the window. */
#include "store_int.h"

#include <errno.h>
#include <stdlib.h>

/* Grid points k * step in [lo, hi), plus hi itself. */
static size_t grid_len(int64_t lo, int64_t hi, int64_t step)
{
    int64_t g0 = (lo + step - 1) / step * step;

    return (g0 < hi ? (size_t)((hi - 1 - g0) / step) + 1 : 0) + 1;
}

/* See store_int.h. */
int axis_grid(int64_t base, uint32_t max_points, int64_t lo, int64_t hi, int64_t **times, size_t *n_times,
              int64_t *step_ms)
{
    int64_t step, g;
    size_t n;
    int rc = 0;

    if (base <= 0)
        base = 1000;
    if (lo > hi)
        lo = hi;
    step = base;
    if (grid_len(lo, hi, step) > max_points)
        step = base * ((hi - lo) / (base * (int64_t)(max_points - 1)) + 1);
    while ((n = grid_len(lo, hi, step)) > max_points)
        step += base;
    *times = malloc(n * sizeof **times);
    if (!*times) {
        rc = ENOMEM;
        goto out;
    }
    *step_ms = step;
    *n_times = 0;
    for (g = (lo + step - 1) / step * step; g < hi; g += step)
        (*times)[(*n_times)++] = g;
    (*times)[(*n_times)++] = hi;
out:
    return rc;
}
