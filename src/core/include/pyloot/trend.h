/* pyloot core: a type's trend over a window, from its count series: steady
 * growth, growth that has stopped (a cache or pool that filled), flat or
 * falling. One rule (docs/http-api.md, "Trend"), used by /api/history (the
 * merged series and each worker's), by the UI through it, by `pyloot
 * history` and by `pyloot report`.
 *
 * Thread-safe (no state); allocates only its own scratch. */
#ifndef PYLOOT_TREND_H
#define PYLOOT_TREND_H

#include <stddef.h>
#include <stdint.h>

enum {
    PL_TREND_FLAT = 0,     /* no change beyond the noise, or too few points to tell */
    PL_TREND_GROWING = 1,  /* grew, and still grows over the last stretch */
    PL_TREND_LEVELLED = 2, /* grew, then stopped for the last stretch: a filled cache or pool? */
    PL_TREND_FALLING = 3,  /* ended lower than it started, beyond the noise */
    PL_TREND_N = 4
};

/* Fewer known points than this read flat: too few to tell growth from noise. */
#define PL_TREND_MIN_POINTS 6

/* The trends' names ("flat", "growing", "levelled", "falling"), indexed by
 * PL_TREND_*: the one list the JSON, the trend= filter and the CLI use. */
extern const char *const pl_trend_names[PL_TREND_N];
/* "growing, levelled, flat or falling": for error messages. */
extern const char pl_trend_list[];

/* The PL_TREND_* named by s[0..len), or -1. */
int pl_trend_from_name(const char *s, size_t len);

/* A comma-separated list of trend names ("growing,levelled") into a mask of
 * bits (1u << PL_TREND_*). 0 with *mask set (never 0 bits), or PL_EBADARG
 * for an empty list, an empty item or an unknown name. */
int pl_trend_mask_parse(const char *s, size_t len, unsigned *mask);

/* The trend of series[0..n) (values in time order; negative values are
 * gaps, skipped): the rule of docs/http-api.md. 0 with *trend set to a
 * PL_TREND_*, or ENOMEM (then *trend is PL_TREND_FLAT). */
int pl_trend_classify(const int64_t *series, size_t n, int *trend);

#endif
